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

/// [`for_each_block`] with the layout file's `dequantize_block`, compiled for the widest SIMD
/// lanes the CPU has, picked at run time by `pulp` (AVX2 + FMA on x86-64-v3, NEON on aarch64,
/// baseline code otherwise). Expands to the body of a layout file's `dequantize_blocks`, and
/// uses that file's `BLOCK_BYTES` and `BLOCK_ELEMS`.
///
/// The block body is called directly (it is `#[inline(always)]`), so it is inlined into the
/// dispatched function and the compiler vectorises it with that instruction set; a fn pointer
/// or closure would stay a separate, baseline-compiled function. One dispatch covers all of
/// `data` (a tile of rows), not one block. The arithmetic is the same IEEE operations in the
/// same order (Rust never contracts a multiply and an add into an FMA on its own), so the values
/// are bit-identical to the baseline build of the same body: `tests` below checks it on random
/// blocks of every type.
macro_rules! for_each_block_simd {
    ($data:expr, $out:expr, $block:path) => {{
        struct Run<'a> {
            data: &'a [u8],
            out: &'a mut [f32],
        }
        impl pulp::WithSimd for Run<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _simd: S) {
                let (blocks, _) = self.data.as_chunks::<BLOCK_BYTES>();
                let (outs, _) = self.out.as_chunks_mut::<BLOCK_ELEMS>();
                debug_assert_eq!(blocks.len(), outs.len());
                for (block, values) in blocks.iter().zip(outs) {
                    $block(block, values);
                }
            }
        }
        pulp::Arch::new().dispatch(Run {
            data: $data,
            out: $out,
        });
    }};
}
pub(super) use for_each_block_simd;

/// The little-endian f16 at `at`, widened exactly as ggml's `GGML_FP16_TO_FP32`.
#[inline(always)]
pub(super) fn f16_at<const B: usize>(block: &[u8; B], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([block[at], block[at + 1]])).to_f32()
}

#[cfg(test)]
mod tests {
    use super::super::table::DType;
    use super::super::*;
    use super::for_each_block;

    /// The dispatched (SIMD-compiled) decoder of each block type, reached through the public
    /// driver (`dequantize`, which the table routes through it), against the same block body
    /// built for baseline x86-64 (`for_each_block`, outside any dispatch), on random valid
    /// blocks: every value bit-identical.
    fn same_bits<const B: usize, const E: usize>(dt: DType, f: fn(&[u8; B], &mut [f32; E])) {
        const N: usize = 300;
        for seed in 0..3 {
            let data = crate::quant::bench_support_random_blocks(dt, N as u64, seed);
            let mut scalar = vec![f32::NAN; N * E];
            for_each_block(&data, &mut scalar, f);
            let mut simd = vec![f32::NAN; N * E];
            crate::quant::dequantize(dt, &data, &[(N * E) as u64], &mut simd).expect("decodes");
            for (i, (a, b)) in scalar.iter().zip(&simd).enumerate() {
                assert!(
                    a.to_bits() == b.to_bits(),
                    "{dt} seed {seed} value {i}: scalar {a} simd {b}"
                );
            }
        }
    }

    #[test]
    fn simd_decoders_are_bit_identical_to_the_scalar_build() {
        use DType as D;
        same_bits(D::Q4_0, q4_0::dequantize_block);
        same_bits(D::Q4_1, q4_1::dequantize_block);
        same_bits(D::Q5_0, q5_0::dequantize_block);
        same_bits(D::Q5_1, q5_1::dequantize_block);
        same_bits(D::Q8_0, q8_0::dequantize_block);
        same_bits(D::Q8_1, q8_1::dequantize_block);
        same_bits(D::Q2_K, q2_k::dequantize_block);
        same_bits(D::Q3_K, q3_k::dequantize_block);
        same_bits(D::Q4_K, q4_k::dequantize_block);
        same_bits(D::Q5_K, q5_k::dequantize_block);
        same_bits(D::Q6_K, q6_k::dequantize_block);
        same_bits(D::Q8_K, q8_k::dequantize_block);
        same_bits(D::IQ4_NL, iq4_nl::dequantize_block);
        same_bits(D::IQ4_XS, iq4_xs::dequantize_block);
        same_bits(D::AprQ4, apr_q4::dequantize_block);
    }
}
