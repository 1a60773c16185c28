//! APR_Q4 (APR-native, not GGML): 32 weights in 18 bytes, symmetric 4-bit.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | scale    | f16, max\|x\| / 7 when APR quantizes |
//! | 2 | `qs[16]` | u8: element `2i` in the low nibble of byte `i`, element `2i + 1` in the high nibble |
//!
//! value = (nibble − 8) · scale. Same size as Q4_0 but a different element order (Q4_0 puts
//! elements 0..16 in the low nibbles). See `apr-v2.md`, "Dtype codes" (codes 128 and legacy 8).

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
    let scale = f16_at(b, 0);
    let (pairs, _) = y.as_chunks_mut::<2>();
    for (pair, &q) in pairs.iter_mut().zip(&b[2..]) {
        pair[0] = (i32::from(q & 0x0F) - 8) as f32 * scale;
        pair[1] = (i32::from(q >> 4) - 8) as f32 * scale;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
