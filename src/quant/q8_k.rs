//! Q8_K: 256 weights in 292 bytes (9.125 bits per weight), ggml's K-quant activation format.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0   | `d`         | f32 scale |
//! | 4   | `qs[256]`   | i8, element order |
//! | 260 | `bsums[16]` | i16 LE, sums of 16 consecutive `qs` (dot products only) |
//!
//! value = d · q. Mirrors `block_q8_K` and `dequantize_row_q8_K` (`y = x[i].d * x[i].qs[j]`).

use super::blocks::for_each_block_simd;
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 292;
const _: () = assert!(BLOCK_BYTES == 4 + BLOCK_ELEMS + 2 * (BLOCK_ELEMS / 16));
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F32(0)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (v, &q) in y.iter_mut().zip(&b[4..4 + BLOCK_ELEMS]) {
        *v = d * f32::from(q as i8);
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
