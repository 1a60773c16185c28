//! Q4_1: 32 weights in 20 bytes (5 bits per weight), 4-bit with a minimum.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `d`      | f16 scale |
//! | 2  | `m`      | f16 minimum |
//! | 4  | `qs[16]` | u8: element `j` in the low nibble of byte `j`, element `j + 16` in the high nibble |
//!
//! value = nibble · d + m (multiply, round, add, round: no fused multiply-add). Mirrors
//! `block_q4_1` and `dequantize_row_q4_1`: `y[j] = x0*d + m`.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 20;
const _: () = assert!(BLOCK_BYTES == 2 + 2 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0), ScaleField::F16(2)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[4..].iter().enumerate() {
        lo[j] = f32::from(q & 0x0F) * d + m;
        hi[j] = f32::from(q >> 4) * d + m;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
