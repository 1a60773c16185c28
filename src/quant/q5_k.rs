//! Q5_K: 256 weights in 176 bytes (5.5 bits per weight): Q4_K plus a fifth bit per weight.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0  | `d`          | f16 super-block scale for the scales |
//! | 2  | `dmin`       | f16 super-block scale for the mins |
//! | 4  | `scales[12]` | eight 6-bit scales and mins, packed as in Q4_K |
//! | 16 | `qh[32]`     | fifth bits: element `64·j + l` uses bit `2j` of `qh[l]`, element `64·j + 32 + l` bit `2j + 1` |
//! | 48 | `qs[128]`    | low 4 bits, laid out as Q4_K's `qs` |
//!
//! value = (d · sc) · q − (dmin · m). Mirrors `block_q5_K` and `dequantize_row_q5_K`
//! (`y = d1 * ((ql & 0xF) + (qh & u1 ? 16 : 0)) - m1`).

use super::blocks::{f16_at, for_each_block_simd};
use super::q4_k::{K_SCALE_SIZE, scale_min_k4};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 176;
const _: () = assert!(BLOCK_BYTES == 2 + 2 + K_SCALE_SIZE + BLOCK_ELEMS / 8 + BLOCK_ELEMS / 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(0), ScaleField::F16(2)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let mut scales = [0u8; K_SCALE_SIZE];
    scales.copy_from_slice(&b[4..16]);
    let qh = &b[16..48];
    for j in 0..4 {
        let (sc, m) = scale_min_k4(2 * j, &scales);
        let (d1, m1) = (d * f32::from(sc), min * f32::from(m));
        let (sc, m) = scale_min_k4(2 * j + 1, &scales);
        let (d2, m2) = (d * f32::from(sc), min * f32::from(m));
        let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
        let ql = &b[48 + 32 * j..48 + 32 * j + 32];
        let (lo, hi) = y[64 * j..64 * j + 64].split_at_mut(32);
        for (((a, c), &qb), &hb) in lo.iter_mut().zip(hi.iter_mut()).zip(ql).zip(qh) {
            let h1 = if hb & u1 != 0 { 16 } else { 0 };
            let h2 = if hb & u2 != 0 { 16 } else { 0 };
            *a = d1 * f32::from((qb & 0xF) + h1) - m1;
            *c = d2 * f32::from((qb >> 4) + h2) - m2;
        }
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
