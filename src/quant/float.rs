//! Plain floating-point types: one element per "block", little-endian.
//!
//! | type | bytes | widening to f32 | ggml |
//! |---|---|---|---|
//! | F32  | 4 | identity | `GGML_TYPE_F32` |
//! | F16  | 2 | exact (IEEE half ⊂ single) | `ggml_fp16_to_fp32_row` |
//! | BF16 | 2 | exact: the 16 bits become the high half of an f32 | `ggml_bf16_to_fp32_row` (`bits << 16`) |
//! | F64  | 8 | rounded to nearest (`as f32`); out-of-range becomes ±inf | none (`GGML_TYPE_F64` has no `to_float`) |

use half::slice::HalfFloatSliceExt;

use super::blocks::for_each_block;
use super::table::Layout;

pub(super) const F32: Layout = Layout::blocks(1, 4, decode_f32, &[]);
pub(super) const F16: Layout = Layout::blocks(1, 2, decode_f16, &[]);
pub(super) const BF16: Layout = Layout::blocks(1, 2, decode_bf16, &[]);
pub(super) const F64: Layout = Layout::blocks(1, 8, decode_f64, &[]);

fn decode_f32(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 4], o: &mut [f32; 1]| {
        o[0] = f32::from_le_bytes(*b)
    });
}

fn decode_f16(data: &[u8], out: &mut [f32]) {
    // Through a stack buffer so `half` can widen whole slices (F16C when the CPU has it): the
    // per-element `to_f32` re-checks CPU features every call and runs at a third of the speed.
    const CHUNK: usize = 256;
    let mut halves = [half::f16::ZERO; CHUNK];
    for (bytes, values) in data.chunks(2 * CHUNK).zip(out.chunks_mut(CHUNK)) {
        let halves = &mut halves[..values.len()];
        for (h, b) in halves.iter_mut().zip(bytes.as_chunks::<2>().0) {
            *h = half::f16::from_le_bytes(*b);
        }
        halves.convert_to_f32_slice(values);
    }
}

fn decode_bf16(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 2], o: &mut [f32; 1]| {
        o[0] = f32::from_bits(u32::from(u16::from_le_bytes(*b)) << 16);
    });
}

fn decode_f64(data: &[u8], out: &mut [f32]) {
    for_each_block(data, out, |b: &[u8; 8], o: &mut [f32; 1]| {
        o[0] = f64::from_le_bytes(*b) as f32
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn bf16_keeps_bits() {
        let mut out = [0.0f32; 2];
        super::decode_bf16(&[0x80, 0x3f, 0xc0, 0x7f], &mut out);
        assert_eq!(out[0], 1.0);
        assert_eq!(out[1].to_bits(), 0x7fc0_0000);
    }
}
