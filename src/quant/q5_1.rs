//! Q5_1: 32 weights in 24 bytes (6 bits per weight), 5-bit with a minimum.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `d`      | f16 scale |
//! | 2  | `m`      | f16 minimum |
//! | 4  | `qh[4]`  | u32 LE: bit `j` is the fifth bit of element `j` |
//! | 8  | `qs[16]` | u8: low 4 bits, element `j` low nibble, element `j + 16` high nibble of byte `j` |
//!
//! value = q · d + m (no fused multiply-add). Mirrors `block_q5_1` and `dequantize_row_q5_1`.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 24;
const _: () = assert!(BLOCK_BYTES == 2 + 2 + 4 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0), ScaleField::F16(2)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[8..].iter().enumerate() {
        let xh_0 = ((qh >> j) << 4) & 0x10;
        let xh_1 = (qh >> (j + 12)) & 0x10;
        lo[j] = (u32::from(q & 0x0F) | xh_0) as f32 * d + m;
        hi[j] = (u32::from(q >> 4) | xh_1) as f32 * d + m;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
