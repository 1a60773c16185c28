//! Q4_0: 32 weights in 18 bytes (4.5 bits per weight), symmetric 4-bit.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `d`      | f16 scale |
//! | 2  | `qs[16]` | u8: element `j` in the low nibble of byte `j`, element `j + 16` in the high nibble |
//!
//! value = (nibble − 8) · d. Mirrors `block_q4_0` (`ggml-common.h`) and `dequantize_row_q4_0`
//! (`ggml-quants.c`): `y[j] = x0*d` with `x0` an int.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 18;
const _: () = assert!(BLOCK_BYTES == 2 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[2..].iter().enumerate() {
        lo[j] = (i32::from(q & 0x0F) - 8) as f32 * d;
        hi[j] = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
