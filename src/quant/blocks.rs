//! Helpers shared by the layout files: walking whole blocks and reading scale fields.

/// Calls `f` on every whole block of `data` and the matching `E` values of `out`.
///
/// Callers pass `data.len() == k * B` and `out.len() == k * E` (the driver in `dequant.rs`
/// guarantees it); a trailing partial chunk on either side is ignored.
#[inline(always)]
pub(super) fn for_each_block<const B: usize, const E: usize>(
    data: &[u8],
    out: &mut [f32],
    f: impl Fn(&[u8; B], &mut [f32; E]),
) {
    let (blocks, _) = data.as_chunks::<B>();
    let (outs, _) = out.as_chunks_mut::<E>();
    debug_assert_eq!(blocks.len(), outs.len());
    for (block, values) in blocks.iter().zip(outs) {
        f(block, values);
    }
}

/// The little-endian f16 at `at`, widened exactly as ggml's `GGML_FP16_TO_FP32`.
#[inline(always)]
pub(super) fn f16_at<const B: usize>(block: &[u8; B], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([block[at], block[at + 1]])).to_f32()
}
