//! IQ4_NL: 32 weights in 18 bytes (4.5 bits per weight), 4-bit indices into a non-linear table.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | `d`      | f16 scale |
//! | 2 | `qs[16]` | u8: element `j` index in the low nibble of byte `j`, element `j + 16` in the high nibble |
//!
//! value = d · KVALUES[index]. Mirrors `block_iq4_nl`, `kvalues_iq4nl` (`ggml-common.h`) and
//! `dequantize_row_iq4_nl`.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 32;
pub(super) const BLOCK_BYTES: usize = 18;
const _: () = assert!(BLOCK_BYTES == 2 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

/// `kvalues_iq4nl` in `ggml-common.h`, shared with IQ4_XS.
pub(super) const KVALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let (lo, hi) = y.split_at_mut(16);
    for (j, &q) in b[2..].iter().enumerate() {
        lo[j] = d * f32::from(KVALUES[usize::from(q & 0x0F)]);
        hi[j] = d * f32::from(KVALUES[usize::from(q >> 4)]);
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
