//! Q5_0: 32 weights in 22 bytes (5.5 bits per weight), symmetric 5-bit.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `d`      | f16 scale |
//! | 2  | `qh[4]`  | u32 LE: bit `j` is the fifth bit of element `j` |
//! | 6  | `qs[16]` | u8: low 4 bits, element `j` low nibble, element `j + 16` high nibble of byte `j` |
//!
//! value = (q − 16) · d. Mirrors `block_q5_0` and `dequantize_row_q5_0`
//! (`xh_0 = ((qh >> j) << 4) & 0x10`, `xh_1 = (qh >> (j + 12)) & 0x10`).

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 22;
const _: () = assert!(BLOCK_BYTES == 2 + 4 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[6..].iter().enumerate() {
        let xh_0 = ((qh >> j) << 4) & 0x10;
        let xh_1 = (qh >> (j + 12)) & 0x10;
        lo[j] = ((u32::from(q & 0x0F) | xh_0) as i32 - 16) as f32 * d;
        hi[j] = ((u32::from(q >> 4) | xh_1) as i32 - 16) as f32 * d;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
