//! The forward pass's inner loops on SIMD lanes: the tile product behind every linear layer
//! ([`tile_product`]), and the dot products and sums of squares of attention and RMSNorm.
//!
//! The lanes are picked at run time by `pulp` (AVX2 + FMA on an x86-64-v3 machine, plain scalar
//! code on an x86-64 without them, NEON on aarch64); the code is safe Rust, generic over
//! `pulp::Simd` (the project has no `unsafe` outside the mmap, and `-C target-cpu` is not assumed).
//!
//! The last digits of an f32 result depend on the lane count and on FMA, so reports (the golden
//! files) are those of an AVX2 + FMA machine. pulp's AVX-512 lanes (feature `x86-v4`) are not
//! enabled for that reason, though they took ~17 % less CPU time at 64 tokens on the bench machine.
//!
//! Accuracy: a dot product of length k is accumulated in f32, each SIMD lane summing every
//! lane-th product of a block of [`BLOCK_VECS`] vectors, each block's lanes added into a second set
//! of lanes, the lanes reduced pairwise at the end. Each f32 partial sum so covers at most a few
//! dozen products, so the result stays within ~1e-7 of the f64 dot product relative to the sum of
//! |products| for k up to tens of thousands (the f64 reference in `reference.rs` checks it).

use pulp::{Arch, Simd, WithSimd};

/// Vectors per inner block of a dot product (256 values with AVX2's 8 lanes).
const BLOCK_VECS: usize = 32;

/// `out[r · n + t] = Σ_c w[r · k + c] · x[t · k + c]`: rows of `w` (`w.len() / k` of them, each
/// `k` long) against `n` tokens of `x` (`n · k` values), written row-major `(rows, n)` into `out`.
pub(crate) fn tile_product(w: &[f32], x: &[f32], k: usize, n: usize, out: &mut [f32]) {
    if k == 0 {
        out.fill(0.0);
        return;
    }
    Arch::new().dispatch(TileProduct { w, x, k, n, out });
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
    Arch::new().dispatch(Dot {
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
    Arch::new().dispatch(Dot { a: x, b: x })
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
            tile_product(&w, &x, k, n, &mut out);
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
            tile_product(&w, &x, k, n, &mut out);
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

    fn tile_product_zero_k() -> Vec<f32> {
        let mut out = vec![1.0; 6];
        tile_product(&[], &[], 0, 3, &mut out);
        out
    }
}
