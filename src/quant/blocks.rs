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
/// lanes the CPU has, picked at run time by `pulp` ([`dispatch`]: AVX-512 on x86-64-v4, else
/// AVX2 + FMA on x86-64-v3, NEON on aarch64, baseline code otherwise). Expands to the body of a layout file's `dequantize_blocks`, and
/// uses that file's `BLOCK_BYTES` and `BLOCK_ELEMS`.
///
/// The block body is called directly (it is `#[inline(always)]`), so it is inlined into the
/// dispatched function and the compiler vectorises it with that instruction set; a fn pointer
/// or closure would stay a separate, baseline-compiled function. One dispatch covers all of
/// `data` (a tile of rows), not one block. The arithmetic is the same IEEE operations in the
/// same order (Rust never contracts a multiply and an add into an FMA on its own), so the values
/// are bit-identical to the baseline build of the same body, whichever instruction set (the
/// decoders are elementwise: no sum whose order the lane count could change): `tests` below
/// checks it on random blocks of every type, under each level this CPU has.
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
        $crate::quant::blocks::dispatch(Run {
            data: $data,
            out: $out,
        });
    }};
}
pub(super) use for_each_block_simd;

/// Runs `op` compiled for the widest instruction set the CPU has (pulp's `Arch`, with its
/// `x86-v4` level: V4 → V3 → scalar on x86-64). In tests a thread can force one level
/// (`tests::forced`) to compare them.
#[inline(always)]
pub(super) fn dispatch<Op: pulp::WithSimd>(op: Op) -> Op::Output {
    #[cfg(test)]
    if let Some(level) = tests::FORCED.get() {
        return tests::run_forced(level, op);
    }
    pulp::Arch::new().dispatch(op)
}

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
    use std::cell::Cell;

    /// An instruction set a test runs the decoders on.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(crate) enum Level {
        /// Baseline x86-64 (or the target's baseline).
        Scalar,
        /// AVX2 + FMA.
        V3,
        /// AVX-512 (F/BW/CD/DQ/VL).
        V4,
    }

    thread_local! {
        /// The level [`super::dispatch`] uses on this thread, `None` for the CPU's best.
        pub(crate) static FORCED: Cell<Option<Level>> = const { Cell::new(None) };
    }

    /// `op` on `level`; panics when the CPU lacks it (callers check [`available`] first).
    pub(crate) fn run_forced<Op: pulp::WithSimd>(level: Level, op: Op) -> Op::Output {
        use pulp::Simd;
        match level {
            Level::Scalar => Simd::vectorize(pulp::Scalar::new(), op),
            #[cfg(target_arch = "x86_64")]
            Level::V3 => Simd::vectorize(pulp::x86::V3::try_new().expect("AVX2"), op),
            #[cfg(target_arch = "x86_64")]
            Level::V4 => Simd::vectorize(pulp::x86::V4::try_new().expect("AVX-512"), op),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("x86-64 levels on another target"),
        }
    }

    /// Whether this CPU can run `level`.
    fn available(level: Level) -> bool {
        match level {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::V3 => pulp::x86::V3::try_new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Level::V4 => pulp::x86::V4::try_new().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// `f` with this thread's decoders forced to `level`.
    pub(crate) fn forced<R>(level: Level, f: impl FnOnce() -> R) -> R {
        FORCED.set(Some(level));
        let r = f();
        FORCED.set(None);
        r
    }

    /// The dispatched (SIMD-compiled) decoder of each block type, reached through the serial
    /// driver (`dequantize_rows_serial`, which the table routes through it) on each level the CPU
    /// has (AVX-512, AVX2 + FMA, and the CPU's best without forcing), against the same block
    /// body built for baseline x86-64 (`for_each_block`, outside any dispatch), on random valid
    /// blocks: every value bit-identical. Levels the CPU lacks are skipped, saying so.
    fn same_bits<const B: usize, const E: usize>(dt: DType, f: fn(&[u8; B], &mut [f32; E])) {
        const N: usize = 300;
        for seed in 0..3 {
            let data = crate::quant::bench_support_random_blocks(dt, N as u64, seed);
            let mut scalar = vec![f32::NAN; N * E];
            for_each_block(&data, &mut scalar, f);
            for level in [None, Some(Level::V4), Some(Level::V3), Some(Level::Scalar)] {
                if level.is_some_and(|l| !available(l)) {
                    eprintln!("{dt}: skipped {level:?}, this CPU does not have it");
                    continue;
                }
                let mut simd = vec![f32::NAN; N * E];
                let mut decode = || {
                    crate::quant::dequantize_rows_serial(
                        dt,
                        &data,
                        &[(N * E) as u64],
                        0..1,
                        &mut simd,
                    )
                };
                match level {
                    Some(l) => forced(l, decode),
                    None => decode(),
                }
                .expect("decodes");
                for (i, (a, b)) in scalar.iter().zip(&simd).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits(),
                        "{dt} seed {seed} {level:?} value {i}: scalar {a} simd {b}"
                    );
                }
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
