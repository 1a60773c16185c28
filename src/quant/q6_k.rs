//! Q6_K: 256 weights in 210 bytes (6.5625 bits per weight): 16 sub-blocks of 16 with signed
//! 8-bit scales.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0   | `ql[128]`    | low 4 bits (see below) |
//! | 128 | `qh[64]`     | high 2 bits (see below) |
//! | 192 | `scales[16]` | i8 sub-block scales |
//! | 208 | `d`          | f16 super-block scale |
//!
//! For half n < 2 and l < 32, with `ql = ql[64n..]`, `qh = qh[32n..]`, `sc = scales[8n..]`,
//! `is = l / 16`: element `128n + l` is `ql[l] & 0xF | (qh[l] & 3) << 4` with scale `sc[is]`,
//! `+32` is `ql[l+32] & 0xF | (qh[l] >> 2 & 3) << 4` with `sc[is+2]`, `+64` is `ql[l] >> 4 |
//! (qh[l] >> 4 & 3) << 4` with `sc[is+4]`, `+96` is `ql[l+32] >> 4 | (qh[l] >> 6) << 4` with
//! `sc[is+6]`. value = (d · sc) · (q − 32), left to right as C evaluates `d * sc[is] * q1`.
//! Mirrors `block_q6_K` and `dequantize_row_q6_K`.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 210;
const _: () = assert!(BLOCK_BYTES == BLOCK_ELEMS / 2 + BLOCK_ELEMS / 4 + BLOCK_ELEMS / 16 + 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(208)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 208);
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let out = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            out[l] = d * f32::from(sc[is] as i8) * f32::from(q1);
            out[l + 32] = d * f32::from(sc[is + 2] as i8) * f32::from(q2);
            out[l + 64] = d * f32::from(sc[is + 4] as i8) * f32::from(q3);
            out[l + 96] = d * f32::from(sc[is + 6] as i8) * f32::from(q4);
        }
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
