//! Q8_1: 32 weights in 36 bytes (9 bits per weight), 8-bit with a stored block sum.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | `d`      | f16 scale |
//! | 2 | `s`      | f16, d · Σ qs (used by dot products, not by the values) |
//! | 4 | `qs[32]` | i8, element order |
//!
//! value = q · d. Mirrors `block_q8_1` and `quantize_row_q8_1_ref` (`ggml-common.h`,
//! `ggml-quants.c`). ggml itself has no `dequantize_row_q8_1` (it is commented out: Q8_1 is
//! only an activation format), so the formula is the one the quantizer inverts.
//! gguf-py 0.19.0's `GGML_QUANT_SIZES` still says 40 bytes (an old layout with f32 `d`, `s`);
//! ggml's `static_assert` says 36.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 36;
const _: () = assert!(BLOCK_BYTES == 2 + 2 + BLOCK_ELEMS);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0), ScaleField::F16(2)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    for (v, &q) in y.iter_mut().zip(&b[4..]) {
        *v = f32::from(q as i8) * d;
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
