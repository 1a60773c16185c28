//! Q3_K: 256 weights in 110 bytes (3.4375 bits per weight): 16 sub-blocks of 16 with signed
//! 6-bit scales, no mins.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0   | `hmask[32]`  | high bit of each quant: element `128·n + 32·j + l` uses bit `4·n + j` of `hmask[l]` |
//! | 32  | `qs[64]`     | low 2 bits: element `128·n + 32·j + l` is bits `2j..2j+2` of `qs[32·n + l]` |
//! | 96  | `scales[12]` | sixteen 6-bit scales, packed (low nibbles in bytes 0..8, high 2 bits in 8..12) |
//! | 108 | `d`          | f16 super-block scale |
//!
//! q = low2 − (high bit set ? 0 : 4), value = (d · (scale − 32)) · q. Mirrors `block_q3_K` and
//! `dequantize_row_q3_K`, including its `aux[]` unpacking of the scales with `kmask1`/`kmask2`
//! on little-endian u32 words.

use super::blocks::{f16_at, for_each_block_simd};
use super::table::{Layout, ScaleField};

pub(super) const BLOCK_ELEMS: usize = 256;
pub(super) const BLOCK_BYTES: usize = 110;
const _: () = assert!(BLOCK_BYTES == BLOCK_ELEMS / 8 + BLOCK_ELEMS / 4 + 12 + 2);
pub(super) const SCALES: &[ScaleField] = &[ScaleField::F16(108)];
pub(super) const LAYOUT: Layout =
    Layout::blocks(BLOCK_ELEMS, BLOCK_BYTES, dequantize_blocks, SCALES);

/// The sixteen 6-bit scales, as `dequantize_row_q3_K` unpacks them (before subtracting 32).
#[inline(always)]
fn unpack_scales(s: &[u8]) -> [u8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0u8; 16];
    for (chunk, a) in out.chunks_exact_mut(4).zip(aux) {
        chunk.copy_from_slice(&a.to_le_bytes());
    }
    out
}

#[inline(always)]
pub(super) fn dequantize_block(b: &[u8; BLOCK_BYTES], y: &mut [f32; BLOCK_ELEMS]) {
    let d_all = f16_at(b, 108);
    let hmask = &b[0..32];
    let scales = unpack_scales(&b[96..108]);
    for n in 0..2 {
        let q = &b[32 + 32 * n..32 + 32 * n + 32];
        for j in 0..4 {
            let shift = 2 * j;
            let m = 1u8 << (4 * n + j);
            for half in 0..2 {
                let is = 8 * n + 2 * j + half;
                let dl = d_all * f32::from(scales[is] as i8 - 32);
                let start = 128 * n + 32 * j + 16 * half;
                let out = &mut y[start..start + 16];
                let lanes = q[16 * half..16 * half + 16]
                    .iter()
                    .zip(&hmask[16 * half..16 * half + 16]);
                for (v, (&qb, &hb)) in out.iter_mut().zip(lanes) {
                    let low = ((qb >> shift) & 3) as i8;
                    let q = low - if hb & m != 0 { 0 } else { 4 };
                    *v = dl * f32::from(q);
                }
            }
        }
    }
}

fn dequantize_blocks(data: &[u8], out: &mut [f32]) {
    for_each_block_simd!(data, out, dequantize_block);
}
