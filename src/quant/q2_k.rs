//! Q2_K: 256 weights in 84 bytes (2.625 bits per weight): 16 sub-blocks of 16, each with a 4-bit
//! scale and a 4-bit min, on top of two f16 super-block scales.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `scales[16]` | u8: low nibble = scale, high nibble = min of sub-block `i` |
//! | 16 | `qs[64]`     | 2-bit quants, see below |
//! | 80 | `d`          | f16 super-block scale for the scales |
//! | 82 | `dmin`       | f16 super-block scale for the mins |
//!
//! Element `128·n + 32·j + l` (n < 2, j < 4, l < 32) is bits `2j..2j+2` of `qs[32·n + l]`; its
//! sub-block is `8·n + 2·j + l/16`. value = (d · sc) · q − (dmin · m), each product rounded
//! separately. Mirrors `block_q2_K` and `dequantize_row_q2_K`
//! (`dl = d * (sc & 0xF); ml = min * (sc >> 4); y = dl * q - ml`).

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 84;
const _: () = assert!(BLOCK_BYTES == BLOCK_ELEMS / 16 + BLOCK_ELEMS / 4 + 2 + 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(80), ScaleField::F16(82)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 80);
    let min = f16_at(b, 82);
    let scales = &b[0..16];
    for n in 0..2 {
        let q = &b[16 + 32 * n..16 + 32 * n + 32];
        for j in 0..4 {
            let shift = 2 * j;
            for half in 0..2 {
                let sc = scales[8 * n + 2 * j + half];
                let dl = d * f32::from(sc & 0xF);
                let ml = min * f32::from(sc >> 4);
                let start = 128 * n + 32 * j + 16 * half;
                let out = &mut y[start..start + 16];
                for (v, &qb) in out.iter_mut().zip(&q[16 * half..16 * half + 16]) {
                    *v = dl * f32::from((qb >> shift) & 3) - ml;
                }
            }
        }
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
