//! The forward pass's inner loops on SIMD lanes: the tile product behind every linear layer
//! ([`tile_product`]), and the dot products and sums of squares of attention and RMSNorm.
//!
//! The lanes are picked at run time by `pulp` (AVX2 + FMA on an x86-64-v3 machine, plain scalar
//! code on an x86-64 without them, NEON on aarch64); the code is safe Rust, generic over
//! `pulp::Simd` (the project has no `unsafe` outside the mmap, and `-C target-cpu` is not assumed).
//!
//! The last digits of an f32 result depend on the lane count and on FMA, so reports (the golden
//! files) are those of an AVX2 + FMA machine: every result here is computed on 8-lane
//! accumulators, whatever the CPU. On an AVX-512 machine (pulp's `V4`) the tile product still
//! uses them, two to a 512-bit register: tokens are packed in pairs once per linear layer
//! ([`Tokens`]), `[x_t[8c..8c+8] | x_t+1[8c..8c+8]]`, each row's 8 values are broadcast into both
//! halves, and each half performs exactly the AVX2 path's FMAs and adds in the same order; the
//! halves are reduced with the AVX2 reduction. So the bits are those of the AVX2 path (tested
//! on many shapes), with half the instructions. `dot` and `sum_squares` stay on AVX2: one dot
//! product has only one 8-lane accumulator to fill.
//!
//! Accuracy: a dot product of length k is accumulated in f32, each SIMD lane summing every
//! lane-th product of a block of [`BLOCK_VECS`] vectors, each block's lanes added into a second set
//! of lanes, the lanes reduced pairwise at the end. Each f32 partial sum so covers at most a few
//! dozen products, so the result stays within ~1e-7 of the f64 dot product relative to the sum of
//! |products| for k up to tens of thousands (the f64 reference in `reference.rs` checks it).

use pulp::{Simd, WithSimd};

/// Vectors per inner block of a dot product (256 values with AVX2's 8 lanes).
const BLOCK_VECS: usize = 32;

/// Runs `op` on the 8-lane (AVX2 + FMA) level where the CPU has it, scalar code otherwise (NEON
/// on aarch64): never on AVX-512's 16 lanes, which would change the last digits.
#[inline(always)]
fn dispatch_8_lanes<Op: WithSimd>(op: Op) -> Op::Output {
    #[cfg(target_arch = "x86_64")]
    {
        match pulp::x86::V3::try_new() {
            Some(simd) => Simd::vectorize(simd, op),
            None => Simd::vectorize(pulp::Scalar::new(), op),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        pulp::Arch::new().dispatch(op)
    }
}

/// The `n` tokens (`n · k` values) a linear layer multiplies every tile of rows against, plus,
/// on an AVX-512 CPU, the same values packed for [`tile_product`]'s 512-bit path: for each pair
/// of tokens `(2p, 2p + 1)` and each vector `c` of 8 values, `x_2p[8c..8c+8]` then
/// `x_2p+1[8c..8c+8]` (zeros for the missing partner of an odd last token). Built once per
/// layer, shared by every tile.
pub(crate) struct Tokens<'a> {
    x: &'a [f32],
    k: usize,
    n: usize,
    #[cfg(target_arch = "x86_64")]
    pairs: Option<(pulp::x86::V4, Vec<f32>)>,
}

impl<'a> Tokens<'a> {
    /// `n` tokens of `k` values each (`x.len() >= n · k`).
    pub(crate) fn new(x: &'a [f32], k: usize, n: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let pairs = pulp::x86::V4::try_new().map(|simd| (simd, pack_pairs(x, k, n)));
            Tokens { x, k, n, pairs }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Tokens { x, k, n }
    }

    /// The same tokens without the packed copy: the 8-lane path even on an AVX-512 CPU (for
    /// tests comparing the two).
    #[cfg(test)]
    fn ymm_only(x: &'a [f32], k: usize, n: usize) -> Self {
        Tokens {
            x,
            k,
            n,
            #[cfg(target_arch = "x86_64")]
            pairs: None,
        }
    }
}

/// The pair-packed copy [`Tokens`] describes: `ceil(n / 2)` pairs of `k / 8` 16-value vectors.
#[cfg(target_arch = "x86_64")]
fn pack_pairs(x: &[f32], k: usize, n: usize) -> Vec<f32> {
    let nv = k / 8;
    let pairs = n.div_ceil(2);
    let mut packed = vec![0f32; pairs * nv * 16];
    if nv == 0 {
        return packed;
    }
    for (p, dst) in packed.chunks_exact_mut(nv * 16).enumerate() {
        for half in 0..2 {
            let t = 2 * p + half;
            if t >= n {
                continue;
            }
            let src = &x[t * k..t * k + nv * 8];
            for (d, s) in dst.chunks_exact_mut(16).zip(src.chunks_exact(8)) {
                d[8 * half..8 * half + 8].copy_from_slice(s);
            }
        }
    }
    packed
}

/// `out[r · n + t] = Σ_c w[r · k + c] · x[t · k + c]`: rows of `w` (`w.len() / k` of them, each
/// `k` long) against the `n` tokens of `x`, written row-major `(rows, n)` into `out`. Every
/// output has the bits of the AVX2 path's, on AVX-512 too (see the module doc).
pub(crate) fn tile_product(w: &[f32], x: &Tokens<'_>, out: &mut [f32]) {
    let (k, n) = (x.k, x.n);
    if k == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some((simd, packed)) = &x.pairs {
        simd.vectorize(v4::TilePairs {
            simd: *simd,
            w,
            x: x.x,
            packed,
            k,
            n,
            out,
        });
        return;
    }
    dispatch_8_lanes(TileProduct {
        w,
        x: x.x,
        k,
        n,
        out,
    });
}

struct TileProduct<'a> {
    w: &'a [f32],
    x: &'a [f32],
    k: usize,
    n: usize,
    out: &'a mut [f32],
}

impl WithSimd for TileProduct<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let TileProduct { w, x, k, n, out } = self;
        let rows = w.len() / k;
        debug_assert!(x.len() >= n * k && out.len() >= rows * n);
        let lanes = core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>();
        let nv = k / lanes;
        let zero = simd.splat_f32s(0.0);
        // One running total per (row, token), in the order `dots` keeps them: each block of
        // BLOCK_VECS vectors is accumulated from zero, then added to the total.
        let mut total = vec![zero; rows * n];
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + BLOCK_VECS).min(nv);
            let (c0, c1) = (v0 * lanes, v1 * lanes);
            // This block's slice of row r / token t: a few KB, read from L1 by every microtile.
            let wb = |r: usize| S::as_simd_f32s(&w[r * k + c0..r * k + c1]).0;
            let xb = |t: usize| S::as_simd_f32s(&x[t * k + c0..t * k + c1]).0;
            let mut r = 0;
            while r + 4 <= rows {
                let wr = [wb(r), wb(r + 1), wb(r + 2), wb(r + 3)];
                let mut t = 0;
                while t + 3 <= n {
                    let acc = block::<S, 4, 3>(simd, wr, [xb(t), xb(t + 1), xb(t + 2)]);
                    add_into(simd, &mut total, acc, r, t, n);
                    t += 3;
                }
                match n - t {
                    2 => {
                        let acc = block::<S, 4, 2>(simd, wr, [xb(t), xb(t + 1)]);
                        add_into(simd, &mut total, acc, r, t, n);
                    }
                    1 => {
                        let acc = block::<S, 4, 1>(simd, wr, [xb(t)]);
                        add_into(simd, &mut total, acc, r, t, n);
                    }
                    _ => {}
                }
                r += 4;
            }
            while r < rows {
                let wr = [wb(r)];
                let mut t = 0;
                while t + 4 <= n {
                    let acc = block::<S, 1, 4>(simd, wr, [xb(t), xb(t + 1), xb(t + 2), xb(t + 3)]);
                    add_into(simd, &mut total, acc, r, t, n);
                    t += 4;
                }
                while t < n {
                    let acc = block::<S, 1, 1>(simd, wr, [xb(t)]);
                    add_into(simd, &mut total, acc, r, t, n);
                    t += 1;
                }
                r += 1;
            }
            v0 = v1;
        }
        let c_tail = nv * lanes;
        for r in 0..rows {
            for t in 0..n {
                let mut tail = 0f32;
                for (a, b) in w[r * k + c_tail..(r + 1) * k]
                    .iter()
                    .zip(&x[t * k + c_tail..(t + 1) * k])
                {
                    tail += a * b;
                }
                out[r * n + t] = simd.reduce_sum_f32s(total[r * n + t]) + tail;
            }
        }
    }
}

/// The 512-bit tile product: two 8-lane accumulators per register, each half doing exactly what
/// the AVX2 path's register does (see the module doc).
#[cfg(target_arch = "x86_64")]
mod v4 {
    use super::BLOCK_VECS;
    use pulp::x86::{V3, V4};
    use pulp::{Simd, f32x8, f32x16};

    /// [`super::tile_product`] on the pair-packed tokens.
    pub(super) struct TilePairs<'a> {
        pub simd: V4,
        pub w: &'a [f32],
        pub x: &'a [f32],
        pub packed: &'a [f32],
        pub k: usize,
        pub n: usize,
        pub out: &'a mut [f32],
    }

    impl pulp::NullaryFnOnce for TilePairs<'_> {
        type Output = ();

        #[inline(always)]
        fn call(self) {
            let TilePairs {
                simd,
                w,
                x,
                packed,
                k,
                n,
                out,
            } = self;
            let rows = w.len() / k;
            let nv = k / 8;
            let pairs = n.div_ceil(2);
            debug_assert!(packed.len() >= pairs * nv * 16 && out.len() >= rows * n);
            let zero = simd.splat_f32s(0.0);
            // One running total per (row, pair of tokens): the AVX2 path's two totals side by side.
            let mut total = vec![zero; rows * pairs];
            let mut v0 = 0;
            while v0 < nv {
                let v1 = (v0 + BLOCK_VECS).min(nv);
                let wb = |r: usize| V3::as_simd_f32s(&w[r * k + v0 * 8..r * k + v1 * 8]).0;
                let xb =
                    |p: usize| V4::as_simd_f32s(&packed[(p * nv + v0) * 16..(p * nv + v1) * 16]).0;
                // Pairs outside, rows inside: a group's packed tokens (a few KB) stay in L1
                // while the tile's rows stream past.
                let mut p = 0;
                while p + 4 <= pairs {
                    let xp = [xb(p), xb(p + 1), xb(p + 2), xb(p + 3)];
                    rows_against(simd, &mut total, &wb, xp, rows, p, pairs);
                    p += 4;
                }
                match pairs - p {
                    3 => rows_against(
                        simd,
                        &mut total,
                        &wb,
                        [xb(p), xb(p + 1), xb(p + 2)],
                        rows,
                        p,
                        pairs,
                    ),
                    2 => rows_against(simd, &mut total, &wb, [xb(p), xb(p + 1)], rows, p, pairs),
                    1 => rows_against(simd, &mut total, &wb, [xb(p)], rows, p, pairs),
                    _ => {}
                }
                v0 = v1;
            }
            let ymm: V3 = *simd;
            let c_tail = nv * 8;
            for r in 0..rows {
                for p in 0..pairs {
                    let halves: [f32x8; 2] = pulp::cast(total[r * pairs + p]);
                    for (h, half) in halves.into_iter().enumerate() {
                        let t = 2 * p + h;
                        if t >= n {
                            continue;
                        }
                        let mut tail = 0f32;
                        for (a, b) in w[r * k + c_tail..(r + 1) * k]
                            .iter()
                            .zip(&x[t * k + c_tail..(t + 1) * k])
                        {
                            tail += a * b;
                        }
                        out[r * n + t] = ymm.reduce_sum_f32s(half) + tail;
                    }
                }
            }
        }
    }

    /// Every row of the tile against `P` pairs of tokens starting at pair `p`, for one block:
    /// 4 rows at a time, then the remaining rows one by one.
    #[inline(always)]
    fn rows_against<'w, const P: usize>(
        simd: V4,
        total: &mut [f32x16],
        wb: &impl Fn(usize) -> &'w [f32x8],
        xp: [&[f32x16]; P],
        rows: usize,
        p: usize,
        pairs: usize,
    ) {
        let mut r = 0;
        while r + 4 <= rows {
            let acc = block::<4, P>(simd, [wb(r), wb(r + 1), wb(r + 2), wb(r + 3)], xp);
            add_into(simd, total, acc, r, p, pairs);
            r += 4;
        }
        while r < rows {
            let acc = block::<1, P>(simd, [wb(r)], xp);
            add_into(simd, total, acc, r, p, pairs);
            r += 1;
        }
    }

    /// One block's R × P partial sums, each accumulated from zero: row `i`'s 8 values broadcast
    /// into both halves, multiplied into pair `j`'s two tokens with one FMA.
    #[inline(always)]
    fn block<const R: usize, const P: usize>(
        simd: V4,
        w: [&[f32x8]; R],
        x: [&[f32x16]; P],
    ) -> [[f32x16; P]; R] {
        let len = w[0].len();
        let w = w.map(|s| &s[..len]);
        let x = x.map(|s| &s[..len]);
        let zero = simd.splat_f32s(0.0);
        let mut acc = [[zero; P]; R];
        for v in 0..len {
            let mut xs = [zero; P];
            for j in 0..P {
                xs[j] = x[j][v];
            }
            for i in 0..R {
                let wi: f32x16 =
                    pulp::cast(simd.avx512dq._mm512_broadcast_f32x8(pulp::cast(w[i][v])));
                for j in 0..P {
                    acc[i][j] = simd.mul_add_e_f32s(wi, xs[j], acc[i][j]);
                }
            }
        }
        acc
    }

    /// `total[(r + i) · pairs + p + j] += acc[i][j]`.
    #[inline(always)]
    fn add_into<const R: usize, const P: usize>(
        simd: V4,
        total: &mut [f32x16],
        acc: [[f32x16; P]; R],
        r: usize,
        p: usize,
        pairs: usize,
    ) {
        for (i, ai) in acc.iter().enumerate() {
            let row = &mut total[(r + i) * pairs + p..(r + i) * pairs + p + P];
            for (tot, a) in row.iter_mut().zip(ai) {
                *tot = simd.add_f32s(*tot, *a);
            }
        }
    }
}

/// One block's R × T partial dot products of `R` row slices with `T` token slices (all of one
/// length, at most [`BLOCK_VECS`] vectors), each accumulated from zero on its own lanes: the
/// microkernel of [`tile_product`], R · T accumulators held in registers.
#[inline(always)]
fn block<S: Simd, const R: usize, const T: usize>(
    simd: S,
    w: [&[S::f32s]; R],
    x: [&[S::f32s]; T],
) -> [[S::f32s; T]; R] {
    let len = w[0].len();
    let w = w.map(|s| &s[..len]);
    let x = x.map(|s| &s[..len]);
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; T]; R];
    for v in 0..len {
        let mut xs = [zero; T];
        for j in 0..T {
            xs[j] = x[j][v];
        }
        for i in 0..R {
            let wi = w[i][v];
            for j in 0..T {
                acc[i][j] = simd.mul_add_e_f32s(wi, xs[j], acc[i][j]);
            }
        }
    }
    acc
}

/// `total[(r + i) · n + t + j] += acc[i][j]`.
#[inline(always)]
fn add_into<S: Simd, const R: usize, const T: usize>(
    simd: S,
    total: &mut [S::f32s],
    acc: [[S::f32s; T]; R],
    r: usize,
    t: usize,
    n: usize,
) {
    for (i, ai) in acc.iter().enumerate() {
        let row = &mut total[(r + i) * n + t..(r + i) * n + t + T];
        for (tot, a) in row.iter_mut().zip(ai) {
            *tot = simd.add_f32s(*tot, *a);
        }
    }
}

/// The R × T dot products of `R` rows with `T` vectors (all of one length), blocked as the module
/// says.
#[inline(always)]
fn dots<S: Simd, const R: usize, const T: usize>(
    simd: S,
    w: [&[f32]; R],
    x: [&[f32]; T],
) -> [[f32; T]; R] {
    let mut wv = [&[][..]; R];
    let mut wt = [&[][..]; R];
    for i in 0..R {
        (wv[i], wt[i]) = S::as_simd_f32s(w[i]);
    }
    let mut xv = [&[][..]; T];
    let mut xt = [&[][..]; T];
    for j in 0..T {
        (xv[j], xt[j]) = S::as_simd_f32s(x[j]);
    }
    let nv = wv[0].len();
    for s in wv.iter_mut().chain(xv.iter_mut()) {
        *s = &s[..nv];
    }
    let zero = simd.splat_f32s(0.0);
    let mut total = [[zero; T]; R];
    let mut start = 0;
    while start < nv {
        let end = (start + BLOCK_VECS).min(nv);
        let mut acc = [[zero; T]; R];
        for v in start..end {
            let mut xs = [zero; T];
            for j in 0..T {
                xs[j] = xv[j][v];
            }
            for i in 0..R {
                let wi = wv[i][v];
                for j in 0..T {
                    acc[i][j] = simd.mul_add_e_f32s(wi, xs[j], acc[i][j]);
                }
            }
        }
        for i in 0..R {
            for j in 0..T {
                total[i][j] = simd.add_f32s(total[i][j], acc[i][j]);
            }
        }
        start = end;
    }
    let mut res = [[0f32; T]; R];
    for i in 0..R {
        for j in 0..T {
            let mut tail = 0f32;
            for (a, b) in wt[i].iter().zip(xt[j]) {
                tail += a * b;
            }
            res[i][j] = simd.reduce_sum_f32s(total[i][j]) + tail;
        }
    }
    res
}

/// Σ a[i] · b[i] over the shorter length, blocked as the module says.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let k = a.len().min(b.len());
    dispatch_8_lanes(Dot {
        a: &a[..k],
        b: &b[..k],
    })
}

struct Dot<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl WithSimd for Dot<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        dots::<S, 1, 1>(simd, [self.a], [self.b])[0][0]
    }
}

/// Σ x[i]², blocked as the module says.
pub(crate) fn sum_squares(x: &[f32]) -> f32 {
    dispatch_8_lanes(Dot { a: x, b: x })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values in [-1, 1) (xorshift), some tens of times larger.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let v = (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
                if i % 97 == 0 { v * 40.0 } else { v }
            })
            .collect()
    }

    /// Every shape the tile loop distinguishes (rows mod 4, tokens mod 2 and mod 4, a length with
    /// a tail after the last vector) against f64 dot products, within 1e-6 of the largest output.
    #[test]
    fn tile_product_equals_f64_dot_products() {
        for (rows, n, k) in [
            (9, 7, 8960 + 3),
            (4, 2, 1536),
            (3, 5, 64),
            (1, 1, 5),
            (6, 64, 1536),
        ] {
            let w = values(rows * k, 1);
            let x = values(n * k, 2);
            let mut out = vec![f32::NAN; rows * n];
            tile_product(&w, &Tokens::new(&x, k, n), &mut out);
            let mut exact = vec![0f64; rows * n];
            for r in 0..rows {
                for t in 0..n {
                    exact[r * n + t] = (0..k)
                        .map(|c| w[r * k + c] as f64 * x[t * k + c] as f64)
                        .sum();
                }
            }
            let max = exact.iter().fold(0f64, |m, v| m.max(v.abs()));
            for (i, (a, e)) in out.iter().zip(&exact).enumerate() {
                assert!(
                    (*a as f64 - e).abs() <= 1e-6 * max,
                    "rows {rows} n {n} k {k} [{i}]: {a} vs {e} (max {max})"
                );
            }
        }
    }

    /// The blocked microkernels change only which products share a pass over the data, not the
    /// arithmetic of any one output: every output is bit-identical to the one-row, one-token
    /// dot product (`dot`, the order the golden reports were written with).
    #[test]
    fn tile_product_is_bit_identical_to_single_dots() {
        for (rows, n, k) in [
            (9, 7, 8960 + 3),
            (8, 8, 1536),
            (5, 64, 300),
            (3, 5, 64),
            (4, 3, 7),
        ] {
            let w = values(rows * k, 5);
            let x = values(n * k, 6);
            let mut out = vec![f32::NAN; rows * n];
            tile_product(&w, &Tokens::new(&x, k, n), &mut out);
            for r in 0..rows {
                for t in 0..n {
                    let one = dot(&w[r * k..(r + 1) * k], &x[t * k..(t + 1) * k]);
                    assert_eq!(
                        out[r * n + t].to_bits(),
                        one.to_bits(),
                        "rows {rows} n {n} k {k} [{r}, {t}]"
                    );
                }
            }
        }
    }

    #[test]
    fn dot_and_sum_squares_equal_f64() {
        let (a, b) = (values(1000, 3), values(1003, 4));
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64 * *y as f64).abs())
            .sum();
        assert!((dot(&a, &b) as f64 - exact).abs() <= 1e-6 * norm);
        let sq: f64 = a.iter().map(|x| *x as f64 * *x as f64).sum();
        assert!((sum_squares(&a) as f64 - sq).abs() <= 1e-6 * sq);
        assert_eq!(tile_product_zero_k(), vec![0.0; 6]);
    }

    /// The 512-bit path (two AVX2 accumulators per register) against the AVX2 path on the same
    /// inputs, bit for bit: tokens 1..=9 and 64 (odd counts leave a half empty), rows not a
    /// multiple of 4, lengths with and without a tail after the last 8 values, short and long
    /// blocks. Skipped, saying so, on a CPU without AVX-512 or AVX2.
    #[test]
    fn avx512_tile_product_is_bit_identical_to_avx2() {
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V4::try_new().is_none() || pulp::x86::V3::try_new().is_none() {
                eprintln!("skipped: this CPU has no AVX-512 (V4) and AVX2 (V3) to compare");
                return;
            }
            let mut compared = 0;
            for k in [32, 1536, 8960, 8960 + 3, 7, 260, 300 + 5] {
                for n in (1..=9).chain([64]) {
                    for rows in [1, 3, 4, 6, 13] {
                        if k * rows * n > 1 << 22 {
                            continue;
                        }
                        let w = values(rows * k, (k + rows) as u64);
                        let x = values(n * k, (k * 7 + n) as u64);
                        let mut wide = vec![f32::NAN; rows * n];
                        let mut ymm = vec![f32::NAN; rows * n];
                        let tokens = Tokens::new(&x, k, n);
                        assert!(tokens.pairs.is_some(), "the 512-bit path is taken");
                        tile_product(&w, &tokens, &mut wide);
                        tile_product(&w, &Tokens::ymm_only(&x, k, n), &mut ymm);
                        for (i, (a, b)) in wide.iter().zip(&ymm).enumerate() {
                            assert_eq!(
                                a.to_bits(),
                                b.to_bits(),
                                "rows {rows} n {n} k {k} [{i}]: avx512 {a} avx2 {b}"
                            );
                        }
                        compared += 1;
                    }
                }
            }
            assert!(compared > 300, "{compared} shapes");
        }
        #[cfg(not(target_arch = "x86_64"))]
        eprintln!("skipped: not an x86-64 CPU");
    }

    fn tile_product_zero_k() -> Vec<f32> {
        let mut out = vec![1.0; 6];
        tile_product(&[], &Tokens::new(&[], 0, 3), &mut out);
        out
    }
}
