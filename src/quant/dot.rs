//! ggml's quantized matrix products, reproduced: activations rounded to the weight type's
//! `vec_dot_type` (Q8_K for the K-quants, Q8_0 for Q8_0 and Q4_0) exactly as ggml-cpu rounds them,
//! and integer dot products of a weight row with those activations.
//!
//! Mirrors (ggml 0.25.3, llama.cpp 0c1e57098bba): `quantize_row_q8_K_ref` (`ggml-quants.c`; the x86
//! build calls it as is), the AVX2 `quantize_row_q8_0` (`ggml-cpu/arch/x86/quants.c`: d = amax/127
//! stored as f16, q = round-half-even(x · 127/amax)), and the integer sums of
//! `ggml_vec_dot_{q4_K,q6_K}_q8_K` and `ggml_vec_dot_{q8_0,q4_0}_q8_0`, in the f32 order of their
//! AVX2 bodies: each block's integer products are summed into 8 i32 lanes (lane l holds bytes
//! 4l..4l+3 of every 32-byte vector, as `madd(maddubs(·,·), ·)` leaves them; Q6_K's lanes minus
//! 32 · Σ sc·bsums, Q4_K's mins in 4 more lanes), each block's lanes are scaled and added into 8
//! f32 lanes with one FMA (`fmadd(d_x · d_w, lanes, acc)`), and the lanes are summed at the end of
//! the row as `hsum_float_8` sums them. The integer part of every block is exact, so it equals
//! ggml's on any machine. (llama.cpp itself runs Q4_K through its repacked GEMM on x86, whose f32
//! order differs again by ~1e-7 of the result.)
//!
//! Each kernel has a scalar body (the reference; `f32::mul_add` is the FMA) and, on x86-64 with
//! AVX2, a `pulp` V3 body (maddubs/madd on 32 bytes at a time, safe intrinsics, no `unsafe`) that
//! computes the same integers and combines them in the same order: the two are bit-identical
//! (tested). Keeping the row's sum in lanes until its end, instead of a horizontal sum per block,
//! is what makes the SIMD body fast. The K-quant body also unpacks each weight row once
//! (quants, i16 scale vectors, mins, f32 scales) and runs it against four tokens per pass, their
//! integer lanes in registers; a tile's rows go over chunks of 8 blocks in passes of 8 rows, so a
//! chunk's token blocks stay in L1 and the accumulators are small; the next row is prefetched.
//! Which of these loops runs first changes no sum: each token's f32 lanes still take the row's
//! blocks in order. On AVX-512 CPUs that body runs with `pulp`'s V4: 32 vector registers, and
//! for a whole group of four tokens 512-bit instructions — two of a block's 32-quant vectors per
//! multiply (their integer halves added at the end: the same integers), two tokens' f32 lanes per
//! FMA and all four tokens' mins lanes in one, each lane computed as the 256-bit body computes it.
//! Past 16 tokens a pass's rows are unpacked first and each token group (two whole groups at once
//! with 512-bit instructions) runs over all of them, so a group's token blocks stay in L1.
//!
//! Must not: read files, know tensor names, or allocate from a header field (callers pass whole
//! rows of validated tensors).

use super::DType;

/// Elements per K-quant super-block and per Q8_K block.
pub const QK_K: usize = 256;
/// Elements per Q8_0 / Q4_0 block.
pub const QK8_0: usize = 32;

/// One block of 256 activations rounded as ggml's Q8_K: `x ≈ d · q`, with the sum of each 16
/// quants (`bsums`, used by the K-quants' mins).
///
/// Laid out with the quants first on a 64-byte boundary, so the kernels' 32-byte loads of them
/// never straddle a cache line.
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct BlockQ8K {
    /// The quants.
    pub qs: [i8; QK_K],
    /// The scale (f32, `1 / iscale`).
    pub d: f32,
    /// Σ of each run of 16 quants.
    pub bsums: [i16; QK_K / 16],
    /// Σ of each run of 32 quants (`bsums` added in pairs, as ggml's `hadd` of them), for the
    /// Q4_K mins.
    pub pair_sums: [i16; QK_K / 32],
}

/// One block of 32 activations rounded as ggml's Q8_0 (x86): `x ≈ d · q`, d an f16 (held as f32).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockQ8_0 {
    /// The scale, already rounded to f16.
    pub d: f32,
    /// The quants.
    pub qs: [i8; QK8_0],
}

/// Which rounding ggml applies to a matrix product's activations for a weight type
/// (`type_traits_cpu[type].vec_dot_type` in `ggml-cpu.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActRounding {
    /// F32 weights: the activations stay f32.
    None,
    /// F16 weights: activations rounded to f16.
    F16,
    /// BF16 weights: activations rounded to bf16.
    BF16,
    /// Q4_0, Q5_0, Q8_0, IQ4_NL weights: Q8_0 (Q4_1 and Q5_1 use Q8_1, whose quants round the same
    /// way; its f16 block sum is not reproduced).
    Q8_0,
    /// The K-quants and IQ4_XS: Q8_K.
    Q8K,
}

/// The activation rounding ggml uses for weights of `dtype`; `None` for a dtype ggml has no
/// matrix product for (APR's own codes, integers).
pub fn rounding_of(dtype: DType) -> Option<ActRounding> {
    use DType::*;
    Some(match dtype {
        F32 => ActRounding::None,
        F16 => ActRounding::F16,
        BF16 => ActRounding::BF16,
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL => ActRounding::Q8_0,
        Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | IQ4_XS => ActRounding::Q8K,
        _ => return None,
    })
}

/// Whether `dtype` has an integer kernel here ([`dot_rows`]); other dtypes run their rounded
/// activations through the f32 product.
pub fn has_kernel(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_K | DType::Q6_K | DType::Q8_0 | DType::Q4_0)
}

/// ggml's `nearest_int`: round half to even through the f32 mantissa (|f| < 2²²).
#[inline(always)]
fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `x` (a multiple of 256 values) as Q8_K blocks, appended to `out` (`quantize_row_q8_K_ref`).
pub fn quantize_q8_k(x: &[f32], out: &mut Vec<BlockQ8K>) {
    for xb in x.chunks_exact(QK_K) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        let mut b = BlockQ8K {
            d: 0.0,
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
            pair_sums: [0; QK_K / 32],
        };
        if amax != 0.0 {
            let iscale = -127.0 / max;
            for (q, &v) in b.qs.iter_mut().zip(xb) {
                *q = nearest_int(iscale * v).min(127) as i8;
            }
            for (s, qs) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
                *s = qs.iter().map(|&q| i16::from(q)).sum();
            }
            for (s, pair) in b.pair_sums.iter_mut().zip(b.bsums.chunks_exact(2)) {
                *s = pair[0] + pair[1];
            }
            b.d = 1.0 / iscale;
        }
        out.push(b);
    }
}

/// `x` (a multiple of 32 values) as Q8_0 blocks, appended to `out`, as ggml-cpu's AVX2
/// `quantize_row_q8_0` rounds them.
pub fn quantize_q8_0(x: &[f32], out: &mut Vec<BlockQ8_0>) {
    for xb in x.chunks_exact(QK8_0) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = half::f16::from_f32(amax / 127.0).to_f32();
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut b = BlockQ8_0 { d, qs: [0; QK8_0] };
        for (q, &v) in b.qs.iter_mut().zip(xb) {
            *q = (v * id).round_ties_even() as i8;
        }
        out.push(b);
    }
}

/// `x` replaced by the values ggml's rounding leaves of it (quantize, then dequantize): the
/// activations an f32 product must use to compute what ggml computes. `x.len()` must be a multiple
/// of the block (256 for Q8_K, 32 for Q8_0); other lengths are returned unchanged.
pub fn round_trip(r: ActRounding, x: &[f32]) -> Vec<f32> {
    match r {
        ActRounding::None => x.to_vec(),
        ActRounding::F16 => x.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect(),
        ActRounding::BF16 => x
            .iter()
            .map(|v| half::bf16::from_f32(*v).to_f32())
            .collect(),
        ActRounding::Q8_0 if x.len().is_multiple_of(QK8_0) => {
            let mut b = Vec::with_capacity(x.len() / QK8_0);
            quantize_q8_0(x, &mut b);
            b.iter()
                .flat_map(|b| b.qs.map(|q| b.d * f32::from(q)))
                .collect()
        }
        ActRounding::Q8K if x.len().is_multiple_of(QK_K) => {
            let mut b = Vec::with_capacity(x.len() / QK_K);
            quantize_q8_k(x, &mut b);
            b.iter()
                .flat_map(|b| b.qs.map(|q| b.d * f32::from(q)))
                .collect()
        }
        _ => x.to_vec(),
    }
}

/// One token's activations, quantized for a kernel.
#[derive(Clone, Copy, Debug)]
pub enum QRow<'a> {
    /// Q8_K blocks (for Q4_K, Q6_K).
    K(&'a [BlockQ8K]),
    /// Q8_0 blocks (for Q8_0, Q4_0).
    Zero(&'a [BlockQ8_0]),
}

/// Bytes of one block of a weight dtype with a kernel.
fn block_bytes(dtype: DType) -> usize {
    match dtype {
        DType::Q4_K => 144,
        DType::Q6_K => 210,
        DType::Q8_0 => 34,
        DType::Q4_0 => 18,
        _ => 0,
    }
}

#[inline(always)]
fn f16_le(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// An f16's value as f32, inline and without branches on its value (the `half` crate's
/// conversion is a call per value on this path): exponent and mantissa moved into place and
/// scaled by 2¹¹² (exact for normal and subnormal values), infinities and NaNs (quieted, as F16C
/// converts them) rebuilt from the bits.
#[inline(always)]
fn f16_to_f32(h: u16) -> f32 {
    let sign = (u32::from(h) & 0x8000) << 16;
    let em = u32::from(h) & 0x7fff;
    let finite = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    let bits = if em >= 0x7c00 {
        0x7f80_0000 | (em & 0x3ff) << 13 | if em > 0x7c00 { 0x0040_0000 } else { 0 }
    } else {
        finite.to_bits()
    };
    f32::from_bits(sign | bits)
}

/// Q4_K's eight 6-bit scales and mins (`get_scale_min_k4`).
#[inline(always)]
fn scales_mins_k4(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        (sc[j], m[j]) = if j < 4 {
            (q[j] & 63, q[j + 4] & 63)
        } else {
            (
                (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
                (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
            )
        };
    }
    (sc, m)
}

/// ggml's `hsum_float_8`: the 8 f32 lanes summed as its AVX2 code sums them.
#[inline(always)]
fn hsum8(a: [f32; 8]) -> f32 {
    let r: [f32; 4] = core::array::from_fn(|i| a[i + 4] + a[i]);
    (r[0] + r[2]) + (r[1] + r[3])
}

/// The 4 f32 lanes of the Q4_K mins' accumulator summed as ggml's AVX2 code sums them.
#[inline(always)]
fn hsum4(a: [f32; 4]) -> f32 {
    (a[0] + a[2]) + (a[1] + a[3])
}

/// The 8 i32 lanes of one 32-byte vector's products, as `madd(maddubs(q, y), ·)` leaves them:
/// lane l = Σ of bytes 4l..4l+3 of `q` times those of `y`, times `scale(l)`.
#[inline(always)]
fn lanes32(q: impl Fn(usize) -> i32, y: &[i8], scale: impl Fn(usize) -> i32) -> [i32; 8] {
    core::array::from_fn(|l| {
        scale(l)
            * (0..4)
                .map(|b| q(4 * l + b) * i32::from(y[4 * l + b]))
                .sum::<i32>()
    })
}

/// The 8 integer lanes of one Q4_K block against one Q8_K block (`sumi` of ggml's AVX2
/// `ggml_vec_dot_q4_K_q8_K`) and the 4 lanes of its mins (`prod`).
#[inline(always)]
fn q4k_block_scalar(w: &[u8], x: &BlockQ8K) -> ([i32; 8], [i32; 4]) {
    let (sc, m) = scales_mins_k4(&w[4..16]);
    let mut sumi = [0i32; 8];
    for j in 0..4 {
        let q = &w[16 + 32 * j..48 + 32 * j];
        let lo = lanes32(
            |i| i32::from(q[i] & 0xF),
            &x.qs[64 * j..],
            |_| i32::from(sc[2 * j]),
        );
        let hi = lanes32(
            |i| i32::from(q[i] >> 4),
            &x.qs[64 * j + 32..],
            |_| i32::from(sc[2 * j + 1]),
        );
        for l in 0..8 {
            sumi[l] += lo[l] + hi[l];
        }
    }
    // Σ of each sub-block of 32's activations, then m_2i · S_2i + m_2i+1 · S_2i+1.
    let s: [i32; 8] =
        core::array::from_fn(|j| i32::from(x.bsums[2 * j]) + i32::from(x.bsums[2 * j + 1]));
    let prod = core::array::from_fn(|i| {
        i32::from(m[2 * i]) * s[2 * i] + i32::from(m[2 * i + 1]) * s[2 * i + 1]
    });
    (sumi, prod)
}

/// The six-bit quant of Q6_K element `e` (< 256) of block `w`, unsigned (0..63).
#[inline(always)]
fn q6_at(w: &[u8], e: usize) -> i32 {
    let (n, r) = (e / 128, e % 128);
    let (quarter, l) = (r / 32, r % 32);
    let ql = &w[64 * n..];
    let qh = w[128 + 32 * n + l];
    let low = match quarter {
        0 => ql[l] & 0xF,
        1 => ql[32 + l] & 0xF,
        2 => ql[l] >> 4,
        _ => ql[32 + l] >> 4,
    };
    i32::from(low | (((qh >> (2 * quarter)) & 3) << 4))
}

/// The 8 integer lanes of one Q6_K block against one Q8_K block (`sumi − q8sclsub` of ggml's
/// AVX2 `ggml_vec_dot_q6_K_q8_K`: the quants taken unsigned, 32 · Σ sc·bsums subtracted).
#[inline(always)]
fn q6k_block_scalar(w: &[u8], x: &BlockQ8K) -> [i32; 8] {
    let sc = |s: usize| i32::from(w[192 + s] as i8);
    let mut sumi = [0i32; 8];
    for k in 0..8 {
        let v = lanes32(
            |i| q6_at(w, 32 * k + i),
            &x.qs[32 * k..],
            |l| sc(2 * k + l / 4),
        );
        for l in 0..8 {
            sumi[l] += v[l];
        }
    }
    for (l, s) in sumi.iter_mut().enumerate() {
        *s -= 32
            * (sc(2 * l) * i32::from(x.bsums[2 * l])
                + sc(2 * l + 1) * i32::from(x.bsums[2 * l + 1]));
    }
    sumi
}

/// The 8 integer lanes of one Q8_0 (or Q4_0: q = nibble − 8, low nibbles first) block against
/// one Q8_0 block.
#[inline(always)]
fn q80_block_scalar(dtype: DType, w: &[u8], x: &BlockQ8_0) -> [i32; 8] {
    let q = |l: usize| -> i32 {
        if dtype == DType::Q8_0 {
            i32::from(w[2 + l] as i8)
        } else if l < 16 {
            i32::from(w[2 + l] & 0xF) - 8
        } else {
            i32::from(w[2 + l - 16] >> 4) - 8
        }
    };
    lanes32(q, &x.qs, |_| 1)
}

/// `acc[l] = fma(d, lanes[l], acc[l])`: one block's lanes into the row's f32 lanes
/// (`_mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc)`).
#[inline(always)]
fn fma_lanes<const L: usize>(d: f32, lanes: [i32; L], acc: &mut [f32; L]) {
    for (a, v) in acc.iter_mut().zip(lanes) {
        *a = d.mul_add(v as f32, *a);
    }
}

/// The dot product of one weight row (`row`: whole blocks of `dtype`) with one token's quantized
/// activations, by the scalar reference kernel. `None` if the dtype has no kernel or the sizes do
/// not match.
pub fn dot_scalar(dtype: DType, row: &[u8], x: QRow<'_>) -> Option<f32> {
    let bb = block_bytes(dtype);
    if bb == 0 || !row.len().is_multiple_of(bb) {
        return None;
    }
    let (mut acc, mut acc_m) = ([0f32; 8], [0f32; 4]);
    match (dtype, x) {
        (DType::Q4_K, QRow::K(xs)) if xs.len() * bb == row.len() => {
            for (w, xb) in row.chunks_exact(bb).zip(xs) {
                let (sumi, prod) = q4k_block_scalar(w, xb);
                fma_lanes(xb.d * f16_le(w, 0), sumi, &mut acc);
                fma_lanes(-xb.d * f16_le(w, 2), prod, &mut acc_m);
            }
        }
        (DType::Q6_K, QRow::K(xs)) if xs.len() * bb == row.len() => {
            for (w, xb) in row.chunks_exact(bb).zip(xs) {
                fma_lanes(xb.d * f16_le(w, 208), q6k_block_scalar(w, xb), &mut acc);
            }
        }
        (DType::Q8_0 | DType::Q4_0, QRow::Zero(xs)) if xs.len() * bb == row.len() => {
            for (w, xb) in row.chunks_exact(bb).zip(xs) {
                fma_lanes(
                    f16_le(w, 0) * xb.d,
                    q80_block_scalar(dtype, w, xb),
                    &mut acc,
                );
            }
        }
        _ => return None,
    }
    // ggml adds the mins' lanes for Q4_K only (`x + 0.0` would turn a −0.0 into +0.0).
    Some(if dtype == DType::Q4_K {
        hsum8(acc) + hsum4(acc_m)
    } else {
        hsum8(acc)
    })
}

/// `out[r · n + t]` = row r of `rows` (whole rows of `dtype`, `row_bytes` each) · token t of
/// `xs`, for every row and each of the `n` tokens — with the AVX2 body where the CPU has it, else
/// the scalar one. Returns `false` (and leaves `out`) if the dtype has no kernel or a size does
/// not fit.
pub fn dot_rows(
    dtype: DType,
    rows: &[u8],
    row_bytes: usize,
    xs: &[QRow<'_>],
    out: &mut [f32],
) -> bool {
    let bb = block_bytes(dtype);
    let n = xs.len();
    if bb == 0
        || row_bytes == 0
        || !row_bytes.is_multiple_of(bb)
        || !rows.len().is_multiple_of(row_bytes)
    {
        return false;
    }
    let nrows = rows.len() / row_bytes;
    let nb = row_bytes / bb;
    let fits = xs.iter().all(|x| match (dtype, x) {
        (DType::Q4_K | DType::Q6_K, QRow::K(b)) => b.len() == nb,
        (DType::Q8_0 | DType::Q4_0, QRow::Zero(b)) => b.len() == nb,
        _ => false,
    });
    if !fits || out.len() != nrows * n {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // The K-quant body runs the same instructions either way; AVX-512VL's 32 vector
        // registers keep a token group's accumulators out of memory.
        let k_quant = matches!(dtype, DType::Q4_K | DType::Q6_K);
        if let Some(v4) = pulp::x86::V4::try_new().filter(|_| k_quant && simd_level_allows_v4()) {
            let simd = *v4;
            let job = avx2::Rows {
                simd,
                wide: Some(v4),
                dtype,
                rows,
                row_bytes,
                xs,
                out,
            };
            v4.vectorize(job);
            return true;
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            let job = avx2::Rows {
                simd,
                wide: None,
                dtype,
                rows,
                row_bytes,
                xs,
                out,
            };
            simd.vectorize(job);
            return true;
        }
    }
    for (row, o) in rows
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(n.max(1)))
    {
        for (x, ot) in xs.iter().zip(o.iter_mut()) {
            *ot = dot_scalar(dtype, row, *x).unwrap_or(f32::NAN);
        }
    }
    true
}

/// Tokens from which the body runs token group by token group over a pass's rows instead:
/// past 16 tokens a chunk's token blocks no longer fit in L1 (measured on the bench pair's
/// shapes: from 24 tokens on, group by group is faster; at 8, row by row).
const BY_GROUP_FROM: usize = 17;

/// Whether the K-quant body may run with AVX-512's register file (tests force it off to compare).
#[cfg(target_arch = "x86_64")]
fn simd_level_allows_v4() -> bool {
    #[cfg(test)]
    if tests::NO_V4.get() {
        return false;
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 bodies: the same integer sums as the scalar ones, 32 quants per instruction.

    use super::*;
    use core::arch::x86_64::__m256i;
    use pulp::x86::{V3, V4};

    #[inline(always)]
    fn load(b: &[u8]) -> __m256i {
        let a: [u8; 32] = b[..32].try_into().unwrap_or([0; 32]);
        pulp::cast(a)
    }

    #[inline(always)]
    fn load_i8(b: &[i8]) -> __m256i {
        let a: [i8; 32] = b[..32].try_into().unwrap_or([0; 32]);
        pulp::cast(a)
    }

    #[inline(always)]
    fn load_i16(b: &[i16; 16]) -> __m256i {
        pulp::cast(*b)
    }

    /// Q8_0 / Q4_0 block `w`'s 32 signed quants.
    #[inline(always)]
    fn q80_unpack(s: V3, dtype: DType, w: &[u8]) -> __m256i {
        let a2 = s.avx2;
        if dtype == DType::Q8_0 {
            load(&w[2..])
        } else {
            // Q4_0: 16 low nibbles then 16 high nibbles, minus 8.
            let b: [u8; 16] = w[2..18].try_into().unwrap_or([0; 16]);
            let v: core::arch::x86_64::__m128i = pulp::cast(b);
            let both = s.avx._mm256_set_m128i(s.sse2._mm_srli_epi16::<4>(v), v);
            a2._mm256_sub_epi8(
                a2._mm256_and_si256(both, s.avx._mm256_set1_epi8(0x0F)),
                s.avx._mm256_set1_epi8(8),
            )
        }
    }

    /// One Q4_K or Q6_K weight block, unpacked once for every token: its 8 vectors of 32
    /// unsigned quants, the i16 scale vector of each, its mins (Q4_K, i16 in the low 128 bits)
    /// or its 16 scales (Q6_K, for 32 · Σ sc·bsums), and its f16 scales as f32.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct BlockU {
        q: [__m256i; 8],
        sc: [__m256i; 8],
        extra: __m256i,
        d: f32,
        dmin: f32,
    }

    /// `pshufb` masks: entry `[lo][hi]`'s low 128-bit lane broadcasts i16 `lo` (of 8) to all 8
    /// of the lane, its high lane i16 `hi`. Q4_K uses `[j][j]`, Q6_K `[2k][2k + 1]`.
    const fn splat16_masks() -> [[[u8; 32]; 8]; 8] {
        let mut m = [[[0u8; 32]; 8]; 8];
        let mut lo = 0;
        while lo < 8 {
            let mut hi = 0;
            while hi < 8 {
                let mut b = 0;
                while b < 32 {
                    let j = if b < 16 { lo } else { hi };
                    m[lo][hi][b] = (2 * j + b % 2) as u8;
                    b += 1;
                }
                hi += 1;
            }
            lo += 1;
        }
        m
    }

    const SPLAT16: [[[u8; 32]; 8]; 8] = splat16_masks();

    /// Q4_K's 8 scales (bytes 0..8) and 8 mins (bytes 8..16) from its 12 packed bytes, with
    /// 32-bit operations (as ggml's AVX2 code unpacks them); equal to [`scales_mins_k4`].
    #[inline(always)]
    pub(super) fn scales_mins_k4_u32(q: &[u8]) -> [u32; 4] {
        const KMASK1: u32 = 0x3f3f_3f3f;
        const KMASK2: u32 = 0x0f0f_0f0f;
        const KMASK3: u32 = 0x0303_0303;
        let w = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
        let (u0, u1, u2) = (w(0), w(1), w(2));
        [
            u0 & KMASK1,
            (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4),
            u1 & KMASK1,
            ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4),
        ]
    }

    #[inline(always)]
    fn unpack_q4k(s: V3, w: &[u8], u: &mut BlockU) {
        let a2 = s.avx2;
        let m4 = s.avx._mm256_set1_epi8(0x0F);
        for j in 0..4 {
            let q4 = load(&w[16 + 32 * j..]);
            u.q[2 * j] = a2._mm256_and_si256(q4, m4);
            u.q[2 * j + 1] = a2._mm256_and_si256(a2._mm256_srli_epi16::<4>(q4), m4);
        }
        let sm: core::arch::x86_64::__m128i = pulp::cast(scales_mins_k4_u32(&w[4..16]));
        // i16: the 8 scales in the low 128 bits, the 8 mins in the high.
        let sm16 = a2._mm256_cvtepu8_epi16(sm);
        let scales = a2._mm256_broadcastsi128_si256(s.avx._mm256_castsi256_si128(sm16));
        for (j, v) in u.sc.iter_mut().enumerate() {
            *v = a2._mm256_shuffle_epi8(scales, pulp::cast(SPLAT16[j][j]));
        }
        // The 8 mins in both halves, for two tokens' mins at once.
        u.extra = a2._mm256_permute4x64_epi64::<0xEE>(sm16);
        u.d = f16_le(w, 0);
        u.dmin = f16_le(w, 2);
    }

    #[inline(always)]
    fn unpack_q6k(s: V3, w: &[u8], u: &mut BlockU) {
        let a2 = s.avx2;
        let m4 = s.avx._mm256_set1_epi8(0x0F);
        let m2 = s.avx._mm256_set1_epi8(0x03);
        for n in 0..2 {
            let ql0 = load(&w[64 * n..]);
            let ql1 = load(&w[64 * n + 32..]);
            let qh = load(&w[128 + 32 * n..]);
            // ((qh >> 2k) & 3) << 4, within each byte.
            let hi = [
                a2._mm256_slli_epi16::<4>(a2._mm256_and_si256(qh, m2)),
                a2._mm256_slli_epi16::<4>(a2._mm256_and_si256(a2._mm256_srli_epi16::<2>(qh), m2)),
                a2._mm256_slli_epi16::<4>(a2._mm256_and_si256(a2._mm256_srli_epi16::<4>(qh), m2)),
                a2._mm256_slli_epi16::<4>(a2._mm256_and_si256(a2._mm256_srli_epi16::<6>(qh), m2)),
            ];
            u.q[4 * n] = a2._mm256_or_si256(a2._mm256_and_si256(ql0, m4), hi[0]);
            u.q[4 * n + 1] = a2._mm256_or_si256(a2._mm256_and_si256(ql1, m4), hi[1]);
            u.q[4 * n + 2] = a2._mm256_or_si256(
                a2._mm256_and_si256(a2._mm256_srli_epi16::<4>(ql0), m4),
                hi[2],
            );
            u.q[4 * n + 3] = a2._mm256_or_si256(
                a2._mm256_and_si256(a2._mm256_srli_epi16::<4>(ql1), m4),
                hi[3],
            );
        }
        let b: [u8; 16] = w[192..208].try_into().unwrap_or([0; 16]);
        let b: core::arch::x86_64::__m128i = pulp::cast(b);
        // The 16 signed scales as i16; vector k takes scale 2k in its low 8 lanes, 2k+1 in its
        // high 8.
        let scs = a2._mm256_cvtepi8_epi16(b);
        let halves = [
            a2._mm256_broadcastsi128_si256(s.avx._mm256_castsi256_si128(scs)),
            a2._mm256_broadcastsi128_si256(a2._mm256_extracti128_si256::<1>(scs)),
        ];
        for (k, v) in u.sc.iter_mut().enumerate() {
            let j = 2 * (k % 4);
            *v = a2._mm256_shuffle_epi8(halves[k / 4], pulp::cast(SPLAT16[j][j + 1]));
        }
        u.extra = scs;
        u.d = f16_le(w, 208);
        u.dmin = 0.0;
    }

    /// A token group's f32 accumulators for one row, kept between chunks of its blocks.
    #[derive(Clone, Copy)]
    struct Acc {
        acc: [core::arch::x86_64::__m256; GROUP],
        // Q4_K's mins lanes, two tokens to a register: token 2p in the low 4 lanes of `accm[p]`,
        // token 2p + 1 in the high 4 (each half is ggml's 4-lane accumulator; lanes are
        // independent).
        accm: [core::arch::x86_64::__m256; GROUP / 2],
    }

    /// Row blocks `u` against a group of `G` tokens (`xs`: the same blocks of each token):
    /// each block's integer lanes for all `G` tokens from one pass over its unpacked quants, then
    /// each token's f32 lanes updated as ggml updates them (the same FMAs, in block order, as the
    /// scalar reference).
    #[inline(always)]
    fn group<const G: usize>(
        s: V3,
        q4: bool,
        u: &[BlockU],
        xs: [&[BlockQ8K]; G],
        xds: &[[f32; GROUP]],
        st: &mut Acc,
    ) {
        use core::arch::x86_64::{__m128, __m256};
        let a2 = s.avx2;
        let mut acc: [__m256; G] = core::array::from_fn(|t| st.acc[t]);
        let mut accm = st.accm;
        let sign = s.sse._mm_set1_ps(-0.0);
        for ((b, ub), xd) in u.iter().enumerate().zip(xds) {
            let xb: [&BlockQ8K; G] = core::array::from_fn(|t| &xs[t][b]);
            let isum = isum_256(s, ub, xb);
            // xd_t · d for the group's tokens in one multiply (the scalar body's `x.d · d`).
            let xdv: __m128 = pulp::cast(*xd);
            let dv: [f32; 4] = pulp::cast(s.sse._mm_mul_ps(xdv, s.sse._mm_set1_ps(ub.d)));
            if q4 {
                // −xd_t · dmin: (−a)·b is −(a·b) exactly.
                let dm: __m256 = s.avx._mm256_castps128_ps256(
                    s.sse
                        ._mm_xor_ps(s.sse._mm_mul_ps(xdv, s.sse._mm_set1_ps(ub.dmin)), sign),
                );
                for (p, am) in accm.iter_mut().enumerate().take(G.div_ceil(2)) {
                    let (t0, t1) = (2 * p, (2 * p + 1).min(G - 1));
                    let q8s = a2._mm256_inserti128_si256::<1>(
                        s.avx._mm256_castsi128_si256(pulp::cast(xb[t0].pair_sums)),
                        pulp::cast(xb[t1].pair_sums),
                    );
                    let prod = a2._mm256_madd_epi16(ub.extra, q8s);
                    let (i0, i1) = (t0 as i32, t1 as i32);
                    let idx = s.avx._mm256_setr_epi32(i0, i0, i0, i0, i1, i1, i1, i1);
                    *am = s.fma._mm256_fmadd_ps(
                        a2._mm256_permutevar8x32_ps(dm, idx),
                        s.avx._mm256_cvtepi32_ps(prod),
                        *am,
                    );
                }
            }
            for t in 0..G {
                let sumi = if q4 {
                    isum[t]
                } else {
                    let sub = a2._mm256_slli_epi32::<5>(
                        a2._mm256_madd_epi16(load_i16(&xb[t].bsums), ub.extra),
                    );
                    a2._mm256_sub_epi32(isum[t], sub)
                };
                acc[t] = s.fma._mm256_fmadd_ps(
                    s.avx._mm256_set1_ps(dv[t]),
                    s.avx._mm256_cvtepi32_ps(sumi),
                    acc[t],
                );
            }
        }
        st.acc[..G].copy_from_slice(&acc);
        st.accm = accm;
    }

    /// [`group`] for a whole group with 512-bit instructions: the integer lanes as in
    /// [`isum_512`], then two tokens' f32 lanes per register (their FMAs, lane for lane, as
    /// [`group`] does them) and all four tokens' Q4_K mins lanes in one. Bit-identical to
    /// [`group`].
    #[inline(always)]
    fn group_wide<const P: usize, const G: usize>(
        s: V3,
        w: V4,
        q4: bool,
        u: &[BlockU],
        xs: [[&[BlockQ8K]; GROUP]; P],
        xds: [&[[f32; GROUP]]; P],
        st: [&mut Acc; P],
    ) {
        use core::arch::x86_64::{__m128, __m512i};
        let (f, bw) = (w.avx512f, w.avx512bw);
        let mut acc = [[f._mm512_setzero_ps(); 2]; P];
        let mut accm = [f._mm512_setzero_ps(); P];
        for p in 0..P {
            acc[p] = [
                pulp::cast([st[p].acc[0], st[p].acc[1]]),
                pulp::cast([st[p].acc[2], st[p].acc[3]]),
            ];
            accm[p] = pulp::cast(st[p].accm);
        }
        // Token 2p's scale in the low 8 lanes, 2p + 1's in the high 8; each token's in its 4
        // mins lanes.
        let pair_idx = [
            f._mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
            f._mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
        ];
        let quad_idx = f._mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        let sign = s.sse._mm_set1_ps(-0.0);
        for (b, ub) in u.iter().enumerate() {
            // The groups' tokens' blocks, group p's token t at 4p + t: one pass over the
            // row block's quants for all of them.
            let mut xb: [&BlockQ8K; G] = [&xs[0][0][b]; G];
            for (i, x) in xb.iter_mut().enumerate() {
                *x = &xs[i / GROUP][i % GROUP][b];
            }
            let z = isum_512(w, ub, xb);
            let extra = f._mm512_broadcast_i64x4(ub.extra);
            for p in 0..P {
                let xdv: __m128 = pulp::cast(xds[p][b]);
                let dv = f._mm512_castps128_ps512(s.sse._mm_mul_ps(xdv, s.sse._mm_set1_ps(ub.d)));
                let xb = &xb[GROUP * p..GROUP * p + GROUP];
                let z = &z[GROUP * p..GROUP * p + GROUP];
                if q4 {
                    let dm = s
                        .sse
                        ._mm_xor_ps(s.sse._mm_mul_ps(xdv, s.sse._mm_set1_ps(ub.dmin)), sign);
                    let q8s: __m512i = pulp::cast([
                        xb[0].pair_sums,
                        xb[1].pair_sums,
                        xb[2].pair_sums,
                        xb[3].pair_sums,
                    ]);
                    accm[p] = f._mm512_fmadd_ps(
                        f._mm512_permutexvar_ps(quad_idx, f._mm512_castps128_ps512(dm)),
                        f._mm512_cvtepi32_ps(bw._mm512_madd_epi16(extra, q8s)),
                        accm[p],
                    );
                }
                for (h, a) in acc[p].iter_mut().enumerate() {
                    let (z0, z1) = (z[2 * h], z[2 * h + 1]);
                    // Each token's two halves added: [z0.lo + z0.hi, z1.lo + z1.hi].
                    let mut sumi = f._mm512_add_epi32(
                        f._mm512_shuffle_i64x2::<0x44>(z0, z1),
                        f._mm512_shuffle_i64x2::<0xEE>(z0, z1),
                    );
                    if !q4 {
                        let bs: __m512i = pulp::cast([xb[2 * h].bsums, xb[2 * h + 1].bsums]);
                        let sub = f._mm512_slli_epi32::<5>(bw._mm512_madd_epi16(bs, extra));
                        sumi = f._mm512_sub_epi32(sumi, sub);
                    }
                    *a = f._mm512_fmadd_ps(
                        f._mm512_permutexvar_ps(pair_idx[h], dv),
                        f._mm512_cvtepi32_ps(sumi),
                        *a,
                    );
                }
            }
        }
        for (p, st) in st.into_iter().enumerate() {
            let [a0, a1]: [[core::arch::x86_64::__m256; 2]; 2] =
                [pulp::cast(acc[p][0]), pulp::cast(acc[p][1])];
            st.acc = [a0[0], a0[1], a1[0], a1[1]];
            st.accm = pulp::cast(accm[p]);
        }
    }

    /// Each token's 8 integer lanes of block `ub`: `madd(maddubs(q, x), sc)` summed over the
    /// block's 8 vectors of 32 quants.
    #[inline(always)]
    fn isum_256<const G: usize>(s: V3, ub: &BlockU, xb: [&BlockQ8K; G]) -> [__m256i; G] {
        let a2 = s.avx2;
        let mut isum = [s.avx._mm256_setzero_si256(); G];
        for k in 0..8 {
            for t in 0..G {
                let p = a2._mm256_maddubs_epi16(ub.q[k], load_i8(&xb[t].qs[32 * k..]));
                isum[t] = a2._mm256_add_epi32(isum[t], a2._mm256_madd_epi16(p, ub.sc[k]));
            }
        }
        isum
    }

    /// [`isum_256`] with 512-bit instructions: vectors 2j and 2j + 1 in one register (half the
    /// multiplies), their halves added at the end. Integer sums without overflow, so the lanes
    /// are the same integers.
    #[inline(always)]
    fn isum_512<const G: usize>(
        w: V4,
        ub: &BlockU,
        xb: [&BlockQ8K; G],
    ) -> [core::arch::x86_64::__m512i; G] {
        let (bw, f) = (w.avx512bw, w.avx512f);
        let mut isum = [f._mm512_setzero_si512(); G];
        for j in 0..4 {
            let q: core::arch::x86_64::__m512i = pulp::cast([ub.q[2 * j], ub.q[2 * j + 1]]);
            let sc: core::arch::x86_64::__m512i = pulp::cast([ub.sc[2 * j], ub.sc[2 * j + 1]]);
            for t in 0..G {
                let x: [i8; 64] = xb[t].qs[64 * j..64 * j + 64].try_into().unwrap_or([0; 64]);
                let p = bw._mm512_maddubs_epi16(q, pulp::cast(x));
                isum[t] = f._mm512_add_epi32(isum[t], bw._mm512_madd_epi16(p, sc));
            }
        }
        isum
    }

    /// Token `t`'s dot product from its group's accumulators, summed as ggml sums them.
    #[inline(always)]
    fn finish(q4: bool, st: &Acc, t: usize) -> f32 {
        let lanes: [f32; 8] = pulp::cast(st.acc[t]);
        if q4 {
            let m: [f32; 8] = pulp::cast(st.accm[t / 2]);
            let h = 4 * (t % 2);
            hsum8(lanes) + hsum4([m[h], m[h + 1], m[h + 2], m[h + 3]])
        } else {
            hsum8(lanes)
        }
    }

    /// Tokens per group of the K-quant body.
    const GROUP: usize = 4;

    /// Weight blocks per chunk when the body runs row by row: the tile's rows run over one
    /// chunk of blocks at a time, so the tokens' blocks of that chunk stay in L1 across rows
    /// (8 tokens × 8 blocks ≈ 20 KB).
    const CHUNK: usize = 8;

    /// Weight blocks per chunk when the body runs group by group: the pass's unpacked rows and
    /// one group's token blocks stay in L1 (8 rows × 6 blocks × 576 bytes + 4 tokens × 6 blocks
    /// × 320 bytes ≈ 35 KB); 6 blocks are a whole row of 1536 values.
    const CHUNK_BY_GROUP: usize = 6;

    /// Rows per pass over the chunks: their token groups' accumulators stay in L1 (8 rows × 16
    /// groups × 192 bytes at 64 tokens).
    const SUB: usize = 8;

    /// Blocks `b0..b1` of the `G` token rows from `xs[t0..]` (all `QRow::K` of `nb` blocks,
    /// checked by the caller).
    #[inline(always)]
    fn tokens<'b, const G: usize>(
        xs: &[QRow<'b>],
        t0: usize,
        b0: usize,
        b1: usize,
    ) -> [&'b [BlockQ8K]; G] {
        // A plain loop: `core::array::from_fn` here was left as a call (with a `vzeroupper`)
        // per row and group.
        let mut out: [&'b [BlockQ8K]; G] = [&[]; G];
        for (o, x) in out.iter_mut().zip(&xs[t0..]) {
            if let QRow::K(b) = x {
                *o = b.get(b0..b1).unwrap_or(&[]);
            }
        }
        out
    }

    /// What every group of a K-quant product shares.
    #[derive(Clone, Copy)]
    struct Body<'x, 'b> {
        s: V3,
        wide: Option<V4>,
        q4: bool,
        xs: &'x [QRow<'b>],
    }

    impl Body<'_, '_> {
        /// The token group from `t0` against row blocks `u` (the row's blocks `b0..b1`), into
        /// its accumulators `st`.
        #[inline(always)]
        fn run(
            self,
            u: &[BlockU],
            t0: usize,
            (b0, b1): (usize, usize),
            xd: &[[f32; GROUP]],
            st: &mut Acc,
        ) {
            let Body { s, wide, q4, xs } = self;
            match (xs.len() - t0, wide) {
                (1, _) => group::<1>(s, q4, u, tokens(xs, t0, b0, b1), xd, st),
                (2, _) => group::<2>(s, q4, u, tokens(xs, t0, b0, b1), xd, st),
                (3, _) => group::<3>(s, q4, u, tokens(xs, t0, b0, b1), xd, st),
                (_, Some(w)) => {
                    group_wide::<1, 4>(s, w, q4, u, [tokens(xs, t0, b0, b1)], [xd], [st])
                }
                (_, None) => group::<GROUP>(s, q4, u, tokens(xs, t0, b0, b1), xd, st),
            }
        }

        /// [`Body::run`] for the two whole token groups from `t0` at once (512-bit body only;
        /// returns `false`, having done nothing, without it).
        #[inline(always)]
        fn run2(
            self,
            u: &[BlockU],
            t0: usize,
            (b0, b1): (usize, usize),
            xd: [&[[f32; GROUP]]; 2],
            st: [&mut Acc; 2],
        ) -> bool {
            let Some(w) = self.wide.filter(|_| self.xs.len() >= t0 + 2 * GROUP) else {
                return false;
            };
            let xs = [
                tokens(self.xs, t0, b0, b1),
                tokens(self.xs, t0 + GROUP, b0, b1),
            ];
            group_wide::<2, 8>(self.s, w, self.q4, u, xs, xd, st);
            true
        }

        /// Unpacks weight blocks `w` into `u`.
        #[inline(always)]
        fn unpack(self, w: &[u8], u: &mut [BlockU]) {
            let bb = if self.q4 { 144 } else { 210 };
            for (ub, w) in u.iter_mut().zip(w.chunks_exact(bb)) {
                if self.q4 {
                    unpack_q4k(self.s, w, ub);
                } else {
                    unpack_q6k(self.s, w, ub);
                }
            }
        }

        /// Asks for `bytes` (the next weights to stream in) while the current ones are used.
        #[inline(always)]
        fn prefetch(self, bytes: Option<&[u8]>) {
            for line in bytes.unwrap_or(&[]).chunks(64) {
                self.s
                    .sse
                    ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast());
            }
        }
    }

    /// The K-quant body (Q4_K when `q4`, else Q6_K): every row of `rows` against every token.
    #[inline(always)]
    fn rows_k(
        s: V3,
        wide: Option<V4>,
        q4: bool,
        rows: &[u8],
        row_bytes: usize,
        xs: &[QRow<'_>],
        out: &mut [f32],
    ) {
        let body = Body { s, wide, q4, xs };
        let n = xs.len();
        let bb = if q4 { 144 } else { 210 };
        let nb = row_bytes / bb;
        let ngroups = n.div_ceil(GROUP);
        let by_group = n >= BY_GROUP_FROM;
        let chunk = if by_group { CHUNK_BY_GROUP } else { CHUNK };
        let zero = s.avx._mm256_setzero_si256();
        let blank = BlockU {
            q: [zero; 8],
            sc: [zero; 8],
            extra: zero,
            d: 0.0,
            dmin: 0.0,
        };
        let mut u = vec![blank; if by_group { SUB * chunk } else { chunk }];
        let zf = s.avx._mm256_setzero_ps();
        let zero_acc = Acc {
            acc: [zf; GROUP],
            accm: [zf; GROUP / 2],
        };
        let mut st = vec![zero_acc; SUB * ngroups];
        // Each token group's Q8_K scales, block by block (`xds[g][b][t]`), for one multiply
        // by the weight block's scale per group.
        let xds: Vec<Vec<[f32; GROUP]>> = xs
            .chunks(GROUP)
            .map(|g| {
                (0..nb)
                    .map(|b| {
                        core::array::from_fn(|t| match g.get(t) {
                            Some(QRow::K(x)) => x[b].d,
                            _ => 0.0,
                        })
                    })
                    .collect()
            })
            .collect();
        let subs = rows
            .chunks(SUB * row_bytes)
            .zip(out.chunks_mut(SUB * n.max(1)));
        for (si, (sub, out)) in subs.enumerate() {
            let (r0, nr) = (si * SUB, sub.len() / row_bytes);
            if by_group && nb <= chunk {
                // Rows of one chunk: unpack the pass's rows (asking for the next pass's), then
                // run each token group over all of them, its accumulators in registers.
                for (r, row) in sub.chunks_exact(row_bytes).enumerate() {
                    let next = (r0 + SUB + r) * row_bytes;
                    body.prefetch(rows.get(next..next + row_bytes));
                    body.unpack(row, &mut u[r * chunk..]);
                }
                let mut g = 0;
                while g < ngroups {
                    let t0 = g * GROUP;
                    let mut step = 1;
                    for (r, o) in out.chunks_exact_mut(n).enumerate() {
                        let u = &u[r * chunk..r * chunk + nb];
                        let (mut a, mut a2) = (zero_acc, zero_acc);
                        // A `match`, not a closure: a closure's body would be compiled
                        // without the SIMD target features (every intrinsic a call).
                        let pair = match xds.get(g + 1) {
                            Some(xd2) => {
                                body.run2(u, t0, (0, nb), [&xds[g], xd2], [&mut a, &mut a2])
                            }
                            None => false,
                        };
                        if pair {
                            step = 2;
                            for (t, ot) in o[t0..].iter_mut().take(2 * GROUP).enumerate() {
                                let acc = if t < GROUP { &a } else { &a2 };
                                *ot = finish(q4, acc, t % GROUP);
                            }
                        } else {
                            body.run(u, t0, (0, nb), &xds[g], &mut a);
                            for (t, ot) in o[t0..].iter_mut().take(GROUP).enumerate() {
                                *ot = finish(q4, &a, t);
                            }
                        }
                    }
                    g += step;
                }
                continue;
            }
            st.fill(zero_acc);
            for b0 in (0..nb).step_by(chunk) {
                let b1 = (b0 + chunk).min(nb);
                let cb = b1 - b0;
                if by_group {
                    // Unpack the pass's rows over this chunk (asking for each row's next
                    // chunk), then run each token group over all of them: a group's blocks
                    // stay in L1 while the rows use them.
                    for (r, row) in sub.chunks_exact(row_bytes).enumerate() {
                        let next = if b1 < nb {
                            (r0 + r) * row_bytes + b1 * bb
                        } else {
                            (r0 + SUB + r) * row_bytes
                        };
                        body.prefetch(rows.get(next..(next + chunk * bb).min(rows.len())));
                        body.unpack(&row[b0 * bb..b1 * bb], &mut u[r * chunk..]);
                    }
                    let mut g = 0;
                    while g < ngroups {
                        let mut step = 1;
                        for (r, st) in st.chunks_exact_mut(ngroups).take(nr).enumerate() {
                            let u = &u[r * chunk..r * chunk + cb];
                            let t0 = g * GROUP;
                            let pair = match (st.get_mut(g..g + 2), xds.get(g + 1)) {
                                (Some([s0, s1]), Some(xd2)) => body.run2(
                                    u,
                                    t0,
                                    (b0, b1),
                                    [&xds[g][b0..b1], &xd2[b0..b1]],
                                    [s0, s1],
                                ),
                                _ => false,
                            };
                            if pair {
                                step = 2;
                            } else {
                                body.run(u, t0, (b0, b1), &xds[g][b0..b1], &mut st[g]);
                            }
                        }
                        g += step;
                    }
                    continue;
                }
                let u = &mut u[..cb];
                let rows_st = sub
                    .chunks_exact(row_bytes)
                    .zip(st.chunks_exact_mut(ngroups.max(1)));
                for (r, (row, st)) in rows_st.enumerate() {
                    // The next row's chunk is asked for while this one is computed: the
                    // weights stream from memory once, and the tokens' work hides their
                    // latency.
                    let next = (r0 + r + 1) * row_bytes + b0 * bb;
                    body.prefetch(rows.get(next..next + cb * bb));
                    body.unpack(&row[b0 * bb..b1 * bb], u);
                    for (g, (st, xd)) in st.iter_mut().zip(&xds).enumerate() {
                        body.run(u, g * GROUP, (b0, b1), &xd[b0..b1], st);
                    }
                }
            }
            for (o, st) in out
                .chunks_exact_mut(n.max(1))
                .zip(st.chunks_exact(ngroups.max(1)))
            {
                for (t, ot) in o.iter_mut().enumerate() {
                    *ot = finish(q4, &st[t / GROUP], t % GROUP);
                }
            }
        }
    }

    pub(super) struct Rows<'a, 'b> {
        pub simd: V3,
        /// AVX-512's 512-bit integer instructions for the K-quants (the job runs under V4).
        pub wide: Option<V4>,
        pub dtype: DType,
        pub rows: &'a [u8],
        pub row_bytes: usize,
        pub xs: &'a [QRow<'b>],
        pub out: &'a mut [f32],
    }

    impl pulp::NullaryFnOnce for Rows<'_, '_> {
        type Output = ();

        #[inline(always)]
        fn call(self) {
            let Rows {
                simd: s,
                wide,
                dtype,
                rows,
                row_bytes,
                xs,
                out,
            } = self;
            if matches!(dtype, DType::Q4_K | DType::Q6_K) {
                return rows_k(s, wide, dtype == DType::Q4_K, rows, row_bytes, xs, out);
            }
            let n = xs.len();
            let bb = block_bytes(dtype);
            let a2 = s.avx2;
            let zero = s.avx._mm256_setzero_ps();
            // Each token's 8 f32 lanes of the current row.
            let mut acc = vec![zero; n];
            // Each weight block is unpacked once and multiplied with every token's block; each
            // token's lanes run over the blocks in order, as the scalar body's do.
            for (row, o) in rows
                .chunks_exact(row_bytes)
                .zip(out.chunks_exact_mut(n.max(1)))
            {
                acc.fill(zero);
                for (b, w) in row.chunks_exact(bb).enumerate() {
                    let q = q80_unpack(s, dtype, w);
                    let aq = a2._mm256_sign_epi8(q, q);
                    let dw = f16_le(w, 0);
                    let ones = s.avx._mm256_set1_epi16(1);
                    for (x, a) in xs.iter().zip(acc.iter_mut()) {
                        let QRow::Zero(xb) = x else { continue };
                        let xk = &xb[b];
                        // |q| · sign(x, q): maddubs needs its first operand unsigned.
                        let sy = a2._mm256_sign_epi8(load_i8(&xk.qs), q);
                        let p = a2._mm256_maddubs_epi16(aq, sy);
                        *a = s.fma._mm256_fmadd_ps(
                            s.avx._mm256_set1_ps(dw * xk.d),
                            s.avx._mm256_cvtepi32_ps(a2._mm256_madd_epi16(p, ones)),
                            *a,
                        );
                    }
                }
                for (ot, a) in o.iter_mut().zip(&acc) {
                    *ot = hsum8(pulp::cast(*a));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Set by a test to run the K-quant body with AVX2's register file only.
        pub(super) static NO_V4: Cell<bool> = const { Cell::new(false) };
    }

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 32) as u8
            })
            .collect()
    }

    fn floats(n: usize, seed: u64) -> Vec<f32> {
        bytes(4 * n, seed)
            .chunks_exact(4)
            .enumerate()
            .map(|(i, b)| {
                let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / u32::MAX as f32;
                let v = 2.0 * v - 1.0;
                if i.is_multiple_of(61) { v * 30.0 } else { v }
            })
            .collect()
    }

    /// Random blocks with finite, moderate f16 scales at the block's scale offsets.
    fn weights(dtype: DType, blocks: usize, seed: u64) -> Vec<u8> {
        let bb = block_bytes(dtype);
        let mut w = bytes(blocks * bb, seed);
        let scale_at: &[usize] = match dtype {
            DType::Q4_K => &[0, 2],
            DType::Q6_K => &[208],
            _ => &[0],
        };
        for (i, b) in w.chunks_exact_mut(bb).enumerate() {
            for (k, &at) in scale_at.iter().enumerate() {
                let v = half::f16::from_f32(0.001 * (1 + (i + k) % 7) as f32).to_bits();
                b[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        w
    }

    /// The inline f16 conversion equals the `half` crate's for every one of the 65,536 values
    /// (NaNs: a NaN of the same sign).
    #[test]
    fn f16_conversion_equals_half() {
        for h in 0..=u16::MAX {
            let (ours, theirs) = (f16_to_f32(h), half::f16::from_bits(h).to_f32());
            if theirs.is_nan() {
                assert!(ours.is_nan() && ours.is_sign_negative() == theirs.is_sign_negative());
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{h:#06x}");
            }
        }
    }

    /// ggml's 32-bit unpacking of Q4_K's scales and mins equals the reference unpacking.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn q4k_scales_by_words_equal_reference() {
        let b = bytes(12 * 4096, 3);
        for q in b.chunks_exact(12) {
            let (sc, m) = scales_mins_k4(q);
            let w = avx2::scales_mins_k4_u32(q);
            let by: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            assert_eq!(&by[..8], &sc, "{q:?}");
            assert_eq!(&by[8..], &m, "{q:?}");
        }
    }

    /// The quantization's rounding, by hand on values whose results are known: the largest
    /// |x| maps to ∓127 (Q8_K) or ±127 (Q8_0), halves round to even.
    #[test]
    fn q8_quantizers_round_as_ggml() {
        let mut x = vec![0f32; QK_K];
        // max = 127: iscale = −1 and id = 1 exactly, so the products are the values themselves.
        x[..5].copy_from_slice(&[127.0, -63.5, 0.5, 1.5, 2.5]);
        let mut b = Vec::new();
        quantize_q8_k(&x, &mut b);
        assert_eq!(&b[0].qs[..5], &[-127, 64, 0, -2, -2]);
        assert_eq!(b[0].d, -1.0);
        assert_eq!(b[0].bsums[0], -127 + 64 - 2 - 2);
        assert_eq!(b[0].pair_sums[0], b[0].bsums[0] + b[0].bsums[1]);
        let mut z = Vec::new();
        quantize_q8_0(&x[..32], &mut z);
        assert_eq!(&z[0].qs[..5], &[127, -64, 0, 2, 2]);
        assert_eq!(z[0].d, 1.0);
        let mut zero = Vec::new();
        quantize_q8_k(&[0.0; QK_K], &mut zero);
        assert_eq!(zero[0].d, 0.0);
    }

    /// The AVX2 bodies equal the scalar reference bit for bit, and both equal the f64 product of
    /// the dequantized weights (the crate's own decoders) with the dequantized activations.
    #[test]
    fn kernels_equal_scalar_reference_and_dequantized_product() {
        // 3 blocks (one chunk), and 19 (the K-quant body's chunks of 8 blocks, two whole and a
        // part; of 6 blocks group by group, three whole and a part).
        for (dtype, k) in [DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::Q4_0]
            .into_iter()
            .flat_map(|d| [(d, 3 * QK_K), (d, 19 * QK_K)])
        {
            let nb = k / if matches!(dtype, DType::Q4_K | DType::Q6_K) {
                QK_K
            } else {
                QK8_0
            };
            // 1 to 9 tokens: every size of the K-quant body's last token group, and more than
            // one group; 17 to 21 the same group by group; with AVX-512's register file (and
            // 512-bit instructions) and without.
            let sizes = (1..=9).chain(BY_GROUP_FROM..BY_GROUP_FROM + 5);
            for (n, no_v4) in sizes.flat_map(|n| [(n, false), (n, true)]) {
                NO_V4.set(no_v4);
                check_kernel(dtype, k, nb, n);
            }
            NO_V4.set(false);
        }
    }

    fn check_kernel(dtype: DType, k: usize, nb: usize, n: usize) {
        {
            let row_bytes = nb * block_bytes(dtype);
            // 11 rows: a whole pass of the K-quant body (8 rows) and a part.
            let nrows = 11;
            let w = weights(dtype, nrows * nb, 7);
            let x = floats(n * k, 9);
            let (mut qk, mut q0) = (Vec::new(), Vec::new());
            quantize_q8_k(&x, &mut qk);
            quantize_q8_0(&x, &mut q0);
            let xs: Vec<QRow<'_>> = (0..n)
                .map(|t| match dtype {
                    DType::Q4_K | DType::Q6_K => QRow::K(&qk[t * k / QK_K..(t + 1) * k / QK_K]),
                    _ => QRow::Zero(&q0[t * k / QK8_0..(t + 1) * k / QK8_0]),
                })
                .collect();
            let mut out = vec![0f32; nrows * n];
            assert!(dot_rows(dtype, &w, row_bytes, &xs, &mut out));
            let rounding = rounding_of(dtype).unwrap();
            let xr = round_trip(rounding, &x);
            for r in 0..nrows {
                let row = &w[r * row_bytes..(r + 1) * row_bytes];
                let mut wf = vec![0f32; k];
                crate::quant::dequantize(dtype, row, &[k as u64], &mut wf).unwrap();
                for t in 0..n {
                    let s = dot_scalar(dtype, row, xs[t]).unwrap();
                    assert_eq!(
                        out[r * n + t].to_bits(),
                        s.to_bits(),
                        "{dtype:?} row {r} token {t} of {n}"
                    );
                    let exact: f64 = wf
                        .iter()
                        .zip(&xr[t * k..(t + 1) * k])
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum();
                    let norm: f64 = wf
                        .iter()
                        .zip(&xr[t * k..(t + 1) * k])
                        .map(|(a, b)| (*a as f64 * *b as f64).abs())
                        .sum();
                    assert!(
                        (s as f64 - exact).abs() <= 1e-5 * norm,
                        "{dtype:?} row {r} token {t}: {s} vs {exact} (Σ|·| {norm})"
                    );
                }
            }
        }
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let w = weights(DType::Q4_K, 2, 1);
        let mut q = Vec::new();
        quantize_q8_k(&floats(QK_K, 2), &mut q);
        assert_eq!(dot_scalar(DType::Q4_K, &w, QRow::K(&q)), None);
        assert_eq!(dot_scalar(DType::F32, &w, QRow::K(&q)), None);
        let mut out = vec![0f32; 1];
        assert!(!dot_rows(DType::Q4_K, &w, 288, &[QRow::K(&q)], &mut out));
        assert!(!dot_rows(
            DType::Q4_K,
            &w,
            288,
            &[QRow::Zero(&[])],
            &mut out
        ));
    }
}
