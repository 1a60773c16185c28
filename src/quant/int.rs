//! Plain integer types: one element per "block", little-endian, converted with `as f32`
//! (exact up to 2^24 in magnitude, rounded to nearest beyond). GGML has `I8`..`I64` ids but no
//! `to_float` for them; `U8` is APR code 7 as aprender reads it.

use super::blocks::for_each_block;
use super::table::Layout;

pub(super) const I8: Layout = Layout::blocks(1, 1, decode_i8, &[]);
pub(super) const I16: Layout = Layout::blocks(1, 2, decode_i16, &[]);
pub(super) const I32: Layout = Layout::blocks(1, 4, decode_i32, &[]);
pub(super) const I64: Layout = Layout::blocks(1, 8, decode_i64, &[]);
pub(super) const U8: Layout = Layout::blocks(1, 1, decode_u8, &[]);

fn decode_i8(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 1], o: &mut [f32; 1]| {
        o[0] = f32::from(i8::from_le_bytes(*b))
    });
}

fn decode_u8(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 1], o: &mut [f32; 1]| {
        o[0] = f32::from(b[0])
    });
}

fn decode_i16(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 2], o: &mut [f32; 1]| {
        o[0] = f32::from(i16::from_le_bytes(*b))
    });
}

fn decode_i32(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 4], o: &mut [f32; 1]| {
        o[0] = i32::from_le_bytes(*b) as f32
    });
}

fn decode_i64(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 8], o: &mut [f32; 1]| {
        o[0] = i64::from_le_bytes(*b) as f32
    });
}
