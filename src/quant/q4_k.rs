//! Q4_K: 256 weights in 144 bytes (4.5 bits per weight): 8 sub-blocks of 32, each with a 6-bit
//! scale and a 6-bit min, on top of two f16 super-block scales.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `d`          | f16 super-block scale for the scales |
//! | 2  | `dmin`       | f16 super-block scale for the mins |
//! | 4  | `scales[12]` | eight 6-bit scales and eight 6-bit mins, packed (`get_scale_min_k4`) |
//! | 16 | `qs[128]`    | 4-bit quants: element `64·j + l` is the low nibble of `qs[32·j + l]`, element `64·j + 32 + l` the high nibble (j < 4, l < 32) |
//!
//! value = (d · sc) · q − (dmin · m), each product rounded separately. Mirrors `block_q4_K` and
//! `dequantize_row_q4_K` (`d1 = d * sc; m1 = min * m; y = d1 * (q & 0xF) - m1`).

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 144;
const _: () = assert!(BLOCK_BYTES == 2 + 2 + K_SCALE_SIZE + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0), ScaleField::F16(2)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

/// Bytes of packed 6-bit scales and mins in Q4_K and Q5_K (`K_SCALE_SIZE` in `ggml-common.h`).
pub(super) const K_SCALE_SIZE: usize = 12;

/// Scale and min of sub-block `j` (< 8): ggml's `get_scale_min_k4`.
#[inline(always)]
pub(super) fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let mut scales = [0u8; K_SCALE_SIZE];
    scales.copy_from_slice(&b[4..16]);
    for j in 0..4 {
        let (sc, m) = scale_min_k4(2 * j, &scales);
        let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
        let (sc, m) = scale_min_k4(2 * j + 1, &scales);
        let (d2, m2) = (d * f32::from(sc), min * f32::from(m));
        let q = &b[16 + 32 * j..16 + 32 * j + 32];
        let (lo, hi) = y[64 * j..64 * j + 64].split_at_mut(32);
        for ((a, c), &qb) in lo.iter_mut().zip(hi.iter_mut()).zip(q) {
            *a = d1 * f32::from(qb & 0xF) - m1;
            *c = d2 * f32::from(qb >> 4) - m2;
        }
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
