//! IQ4_XS: 256 weights in 136 bytes (4.25 bits per weight): IQ4_NL's table with 8 sub-blocks of
//! 32, each with a 6-bit scale.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | `d`           | f16 super-block scale |
//! | 2 | `scales_h`    | u16 LE: high 2 bits of sub-block `ib`'s scale at bits `2ib..2ib+2` |
//! | 4 | `scales_l[4]` | low 4 bits of sub-block `ib`'s scale: nibble `ib % 2` of byte `ib / 2` |
//! | 8 | `qs[128]`     | sub-block `ib` is bytes `16ib..16ib+16`: element `j` low nibble, `j + 16` high nibble |
//!
//! value = (d · (ls − 32)) · KVALUES[index]. Mirrors `block_iq4_xs` and `dequantize_row_iq4_xs`.

use super::blocks::{f16_at, for_each_block_simd};
use super::iq4_nl::KVALUES;
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 136;
const _: () = assert!(BLOCK_BYTES == 2 + 2 + BLOCK_ELEMS / 64 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let scales_h = u16::from_le_bytes([b[2], b[3]]);
    let scales_l = &b[4..8];
    for ib in 0..8 {
        let low = (scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
        let high = ((scales_h >> (2 * ib)) & 3) as u8;
        let ls = i32::from(low | (high << 4));
        let dl = d * (ls - 32) as f32;
        let qs = &b[8 + 16 * ib..8 + 16 * ib + 16];
        let (lo, hi) = y[32 * ib..32 * ib + 32].split_at_mut(16);
        for (j, &q) in qs.iter().enumerate() {
            lo[j] = dl * f32::from(KVALUES[usize::from(q & 0x0F)]);
            hi[j] = dl * f32::from(KVALUES[usize::from(q >> 4)]);
        }
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
