//! Q8_0: 32 weights in 34 bytes (8.5 bits per weight), symmetric 8-bit.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | `d`      | f16 scale |
//! | 2 | `qs[32]` | i8, element order |
//!
//! value = q · d. Mirrors `block_q8_0` and `dequantize_row_q8_0` (`y[j] = x[i].qs[j]*d`).

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 34;
const _: () = assert!(BLOCK_BYTES == 2 + BLOCK_ELEMS);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    for (v, &q) in y.iter_mut().zip(&b[2..]) {
        *v = f32::from(q as i8) * d;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
