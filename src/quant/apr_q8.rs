//! APR_Q8 (APR-native, not GGML): one f32 scale for the whole tensor, then one i8 per element.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | scale   | f32 LE, max\|x\| / 127 when APR quantizes (the tensor-wide header) |
//! | 4 | `q[n]`  | i8, element order |
//!
//! value = q · scale. Tensor bytes = 4 + n. There is no self-contained block: the table row has
//! 1-element, 1-byte "blocks" plus a 4-byte header handed to every decode call, so row ranges
//! still touch only their own bytes. See `apr-v2.md`, "Dtype codes" (codes 129 and legacy 9).

use super::table::{Decode, Layout, ScaleField};

pub(super) const HEADER_BYTES: usize = 4;
pub(super) const HEADER_SCALES: &[ScaleField] = &[ScaleField::F32(0)];
pub(super) const LAYOUT: Layout = Layout {
    block_elems: 1,
    block_bytes: 1,
    header_bytes: HEADER_BYTES,
    decode: Decode::WithHeader(dequantize_values),
    scales: &[],
    header_scales: HEADER_SCALES,
};

/// `header` is the tensor's first 4 bytes; `data` holds `out.len()` int8 values.
fn dequantize_values(header: &[u8], data: &[u8], out: &mut [f32]) {
    let scale = match header.first_chunk::<HEADER_BYTES>() {
        Some(b) => f32::from_le_bytes(*b),
        None => f32::NAN, // unreachable: the driver checks the size first
    };
    for (v, &q) in out.iter_mut().zip(data) {
        *v = f32::from(q as i8) * scale;
    }
}
