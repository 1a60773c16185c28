//! Q8_K rounding of activations ([`crate::quant::dot::quantize_q8_k`], ggml's
//! `quantize_row_q8_K_ref`), bit-identical to it but written so the compiler puts it on SIMD
//! lanes: the `ggml` mode of the trace rounds every linear layer's input this way.
//!
//! The reference finds the block's largest |v| with a branch per value (the first value whose
//! |v| is strictly larger than every earlier one, so the first of several equal maxima, and never
//! a NaN). Here the same value is found in two branch-free passes: the largest |v| as the largest
//! of the bit patterns `bits & 0x7fff_ffff` (for non-NaN floats these order as |v| does; a NaN's
//! pattern is above infinity's, and counts as 0 as the reference's `>` skips it), then the first
//! value with that pattern. The quants are the reference's own expression, `nearest_int(iscale ·
//! v).min(127) as i8`, on every value: IEEE multiplies and adds on lanes give the bits scalar
//! code gives, and no FMA is formed from them. Runs at the widest level `pulp` finds (the result
//! does not depend on it: tested on each level against the reference).
//!
//! Must not: read files, or allocate from anything but the length of `x`.

use super::dot::{BlockQ8K, QK_K};
use pulp::{Simd, WithSimd};

/// ggml's `nearest_int` (as `dot` has it): round half to even through the f32 mantissa.
#[inline(always)]
fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `x` (a multiple of 256 values) as Q8_K blocks, appended to `out`: the blocks
/// [`crate::quant::dot::quantize_q8_k`] appends, bit for bit.
pub fn quantize_q8_k(x: &[f32], out: &mut Vec<BlockQ8K>) {
    pulp::Arch::new().dispatch(Quantize { x, out });
}

/// [`quantize_q8_k`] compiled for one `pulp` level.
struct Quantize<'a> {
    x: &'a [f32],
    out: &'a mut Vec<BlockQ8K>,
}

impl WithSimd for Quantize<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        self.out.reserve(self.x.len() / QK_K);
        for xb in self.x.chunks_exact(QK_K) {
            self.out.push(block(xb));
        }
    }
}

/// One block of [`QK_K`] values.
#[inline(always)]
fn block(xb: &[f32]) -> BlockQ8K {
    let mut b = BlockQ8K {
        d: 0.0,
        qs: [0; QK_K],
        bsums: [0; QK_K / 16],
        pair_sums: [0; QK_K / 32],
    };
    // The largest |v|'s bit pattern, NaNs counted as 0: 16 running maxima (one per lane of a
    // 512-bit register), then the largest of them.
    let abs_bits = |v: f32| {
        let a = v.to_bits() & 0x7fff_ffff;
        if a > 0x7f80_0000 { 0 } else { a }
    };
    let mut lanes = [0u32; 16];
    for c in xb.chunks_exact(16) {
        for (m, v) in lanes.iter_mut().zip(c) {
            *m = (*m).max(abs_bits(*v));
        }
    }
    let amax = lanes.iter().fold(0, |m, v| m.max(*v));
    if amax == 0 {
        return b;
    }
    // The first value with that |v| (there is one: `amax` is one of the patterns), found 16 at a
    // time.
    let Some(max) = xb
        .chunks_exact(16)
        .find(|c| c.iter().fold(false, |hit, v| hit | (abs_bits(*v) == amax)))
        .and_then(|c| c.iter().find(|v| abs_bits(**v) == amax))
    else {
        return b;
    };
    let iscale = -127.0 / max;
    for (q, &v) in b.qs.iter_mut().zip(xb) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, qs) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
        *s = qs.iter().map(|&q| i16::from(q)).sum();
    }
    for (s, pair) in b.pair_sums.iter_mut().zip(b.bsums.chunks_exact(2)) {
        *s = pair[0] + pair[1];
    }
    b.d = 1.0 / iscale;
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dot;

    /// xorshift64*: deterministic test values.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn f32(&mut self) -> f32 {
            // Mostly ordinary activations, with every kind of awkward value mixed in.
            match self.next() % 16 {
                0 => f32::from_bits(self.next() as u32), // any pattern: NaNs, subnormals, huge
                1 => 0.0,
                2 => -0.0,
                3 => f32::INFINITY,
                4 => f32::NEG_INFINITY,
                5 => f32::from_bits(0x7fc0_0000 | (self.next() as u32 & 0x803f_ffff)), // NaN
                6 => ((self.next() % 255) as f32 - 127.0) * 0.5, // ties once scaled
                _ => (self.next() as i64 as f64 / i64::MAX as f64 * 4.0) as f32,
            }
        }
    }

    /// Blocks that catch a wrong "first maximum" or NaN rule.
    fn crafted() -> Vec<Vec<f32>> {
        let mut v = Vec::new();
        let base: Vec<f32> = (0..QK_K).map(|i| (i as f32 - 128.0) / 64.0).collect();
        // Equal |v| of opposite signs: the first one sets the scale's sign.
        for (first, second) in [(3.0f32, -3.0f32), (-3.0, 3.0)] {
            let mut b = base.clone();
            b[10] = first;
            b[200] = second;
            v.push(b);
        }
        let mut nan_first = base.clone();
        nan_first[0] = f32::NAN;
        v.push(nan_first);
        v.push(vec![0.0; QK_K]);
        v.push(vec![-0.0; QK_K]);
        v.push(vec![f32::NAN; QK_K]);
        let mut one_inf = base.clone();
        one_inf[77] = f32::NEG_INFINITY;
        v.push(one_inf);
        let mut tiny = vec![0.0f32; QK_K];
        tiny[5] = f32::from_bits(1); // the smallest subnormal
        tiny[6] = -f32::from_bits(1);
        v.push(tiny);
        v
    }

    fn check_on<S: Simd>(simd: S, x: &[f32], what: &str) {
        let (mut want, mut got) = (Vec::new(), Vec::new());
        dot::quantize_q8_k(x, &mut want);
        simd.vectorize(Quantize { x, out: &mut got });
        assert_eq!(want.len(), got.len(), "{what}");
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            let first_q = w.qs.iter().zip(&g.qs).position(|(a, b)| a != b);
            assert!(
                w.d.to_bits() == g.d.to_bits()
                    && first_q.is_none()
                    && w.bsums == g.bsums
                    && w.pair_sums == g.pair_sums,
                "{what}, block {i}: d {} vs {}, first differing quant {first_q:?}",
                w.d,
                g.d
            );
        }
    }

    fn check_all_levels(x: &[f32], what: &str) {
        check_on(pulp::Scalar::new(), x, what);
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(s) = pulp::x86::V3::try_new() {
                check_on(s, x, what);
            }
            if let Some(s) = pulp::x86::V4::try_new() {
                check_on(s, x, what);
            }
        }
        let (mut want, mut got) = (Vec::new(), Vec::new());
        dot::quantize_q8_k(x, &mut want);
        quantize_q8_k(x, &mut got);
        assert_eq!(want, got, "{what}: dispatched");
    }

    #[test]
    fn same_bits_as_the_reference_on_every_level() {
        for (i, b) in crafted().iter().enumerate() {
            check_all_levels(b, &format!("crafted block {i}"));
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let blocks = 1 + (rng.next() % 4) as usize;
            let x: Vec<f32> = (0..blocks * QK_K).map(|_| rng.f32()).collect();
            check_all_levels(&x, &format!("random round {round}"));
        }
        // Activations as a layer has them: no special values at all.
        for round in 0..50 {
            let x: Vec<f32> = (0..8 * QK_K)
                .map(|_| (rng.next() as i64 as f64 / i64::MAX as f64 * 3.0) as f32)
                .collect();
            check_all_levels(&x, &format!("plain round {round}"));
        }
    }

    #[test]
    fn a_partial_block_is_left_out_as_the_reference_leaves_it() {
        let x = vec![1.0f32; QK_K + 7];
        let mut got = Vec::new();
        quantize_q8_k(&x, &mut got);
        assert_eq!(got.len(), 1);
    }
}
