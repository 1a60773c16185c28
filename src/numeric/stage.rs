//! One compared stage of two forward passes, the probe's and the trace's alike: the one stage
//! comparator. The metrics are [`metrics`] (a NaN on either side makes that element's difference
//! +inf, so `max_diff` and `mean_diff` are +inf, the cosine 0, and no criterion passes); the pass
//! criterion is [`Criterion::passes`].
//!
//! Takes two activations of one stage; returns a [`Stage`] record. Must not run a model or emit
//! findings.

#[derive(Clone, Debug, serde::Serialize)]
pub struct Stage {
    pub stage: &'static str,
    pub layer: Option<u32>,
    pub apr_dims: Vec<usize>,
    pub gguf_dims: Vec<usize>,
    pub max_diff: f64,
    pub mean_diff: f64,
    pub cosine: f64,
    pub pass: bool,
    /// Which criterion decided `pass`.
    pub criterion: String,
    /// Q/K only: the stage would pass with the rows in the other RoPE order (HF ↔ llama.cpp).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub passes_in_other_row_order: bool,
}

/// Criteria: `threshold` on max_diff relative to the reference's largest value where both files hold
/// the same values (same dtypes for the weights involved); else the rules' cosine tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    pub exact: bool,
    pub threshold: f64,
    pub min_cosine: f64,
}

/// How far one stage's activations are apart, accumulated in f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// max |x − y|; +inf when a value on either side is NaN.
    pub max_diff: f64,
    /// mean |x − y| over the shorter side.
    pub mean_diff: f64,
    /// Σxy / (‖x‖ ‖y‖), clamped to [−1, 1]: 1 when both are all zero, 0 when one is or it is NaN.
    pub cosine: f64,
    /// max |y| (at least the smallest positive f64): what `--threshold` is relative to.
    pub scale: f64,
}

/// The metrics of one stage: `x` from the file under test, `y` from the reference, element by
/// element over the shorter.
///
/// The three sums run in element order, in f64, as they always have (their last digits are in
/// the reports). The two maxima do not depend on the order, so they are taken in a second pass on
/// SIMD lanes (`maxima`) instead of on the sums' serial chain.
pub fn metrics(x: &[f32], y: &[f32]) -> Metrics {
    let n = x.len().min(y.len()).max(1);
    let (mut sum, mut dot, mut na, mut nb) = (0f64, 0f64, 0f64, 0f64);
    for (a, b) in x.iter().zip(y) {
        let (a, b) = (*a as f64, *b as f64);
        sum += diff(a, b);
        dot += a * b;
        na += a * a;
        nb += b * b;
    }
    let (max, scale) = maxima(x, y);
    let cos = if na == 0.0 && nb == 0.0 {
        1.0
    } else if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    };
    Metrics {
        max_diff: max,
        mean_diff: sum / n as f64,
        cosine: if cos.is_nan() {
            0.0
        } else {
            cos.clamp(-1.0, 1.0)
        },
        scale: scale.max(f64::MIN_POSITIVE),
    }
}

/// |a − b|, or +inf where it is NaN (a NaN on either side, or inf − inf): never dropped by a max.
#[inline(always)]
fn diff(a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    if d.is_nan() { f64::INFINITY } else { d }
}

/// (max |x − y| over the shorter side as [`diff`] has it, max |y| over all of `y` ignoring
/// NaNs), both 0 for no elements: the values
/// `f64::max` folds from 0 give, in any order. Every [`diff`] is ≥ 0 and never NaN, so its bits
/// order as it does; |y| is taken on the f32 bits (a NaN's, above infinity's, count as 0, as
/// `f64::max` skips a NaN) and widened once, which is exact and keeps the order.
fn maxima(x: &[f32], y: &[f32]) -> (f64, f64) {
    pulp::Arch::new().dispatch(Maxima(x, y))
}

/// [`maxima`] compiled for one `pulp` level (the result does not depend on it).
struct Maxima<'a>(&'a [f32], &'a [f32]);

impl pulp::WithSimd for Maxima<'_> {
    type Output = (f64, f64);
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> (f64, f64) {
        let Maxima(x, y_all) = self;
        let len = x.len().min(y_all.len());
        let (x, y) = (&x[..len], &y_all[..len]);
        let abs_bits = |v: f32| {
            let a = v.to_bits() & 0x7fff_ffff;
            if a > 0x7f80_0000 { 0 } else { a }
        };
        let (mut dl, mut yl) = ([0u64; 8], [0u32; 8]);
        let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (a, b) in xc.zip(yc) {
            for j in 0..8 {
                dl[j] = dl[j].max(diff(a[j] as f64, b[j] as f64).to_bits());
                yl[j] = yl[j].max(abs_bits(b[j]));
            }
        }
        for (a, b) in xr.iter().zip(yr) {
            dl[0] = dl[0].max(diff(*a as f64, *b as f64).to_bits());
            yl[0] = yl[0].max(abs_bits(*b));
        }
        // The scale is over all of `y`, also past the shorter side.
        for b in &y_all[len..] {
            yl[0] = yl[0].max(abs_bits(*b));
        }
        let d = dl.iter().fold(0, |m, v| m.max(*v));
        let s = yl.iter().fold(0, |m, v| m.max(*v));
        (f64::from_bits(d), f32::from_bits(s) as f64)
    }
}

impl Criterion {
    /// The largest `max_diff` an exact comparison accepts.
    fn bound(&self, m: &Metrics) -> f64 {
        self.threshold * m.scale
    }

    /// Whether a stage with these metrics agrees.
    pub fn passes(&self, m: &Metrics) -> bool {
        if self.exact {
            m.max_diff <= self.bound(m)
        } else {
            m.cosine >= self.min_cosine
        }
    }

    /// The criterion as it decided one stage, with the bound in numbers.
    pub fn for_stage(&self, m: &Metrics) -> String {
        if self.exact {
            format!(
                "max_diff ≤ {} × max|ref| ({:.3e})",
                self.threshold,
                self.bound(m)
            )
        } else {
            self.summary()
        }
    }

    /// The criterion for a whole run.
    pub fn summary(&self) -> String {
        if self.exact {
            format!(
                "max_diff ≤ {} × max|ref| (both files hold the same values)",
                self.threshold
            )
        } else {
            format!(
                "cosine ≥ {} (dtypes differ: rule tolerance)",
                self.min_cosine
            )
        }
    }

    /// Compare one stage; `criterion` is what the record names as having decided it.
    pub fn judge(
        &self,
        name: &'static str,
        layer: Option<u32>,
        (x, y): (&[f32], &[f32]),
        (apr_dims, gguf_dims): (Vec<usize>, Vec<usize>),
        criterion: impl FnOnce(&Metrics) -> String,
    ) -> Stage {
        let m = metrics(x, y);
        Stage {
            stage: name,
            layer,
            pass: apr_dims == gguf_dims && self.passes(&m),
            criterion: criterion(&m),
            apr_dims,
            gguf_dims,
            max_diff: m.max_diff,
            mean_diff: m.mean_diff,
            cosine: m.cosine,
            passes_in_other_row_order: false,
        }
    }
}

/// Activations collect the noise of more than one weight (norm, projection, bias), so a per-weight
/// cosine tolerance `c` becomes `1 − 3·(1 − c)` for them: 0.995 → 0.985 for Q4_K, 0.92 → 0.76 for
/// Q2_K. A layout bug gives a cosine near 0 under any of these.
pub fn activation_cosine(weight_cosine: f64) -> f64 {
    (1.0 - 3.0 * (1.0 - weight_cosine.min(0.999))).max(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_fails_every_criterion() {
        for exact in [true, false] {
            let c = Criterion {
                exact,
                threshold: 1e9,
                min_cosine: activation_cosine(0.0),
            };
            for (x, y) in [([f32::NAN, 1.0], [1.0, 1.0]), ([1.0, 1.0], [1.0, f32::NAN])] {
                let m = metrics(&x, &y);
                assert!(m.max_diff == f64::INFINITY && m.mean_diff == f64::INFINITY);
                assert!(m.cosine == 0.0 && !c.passes(&m));
            }
        }
    }

    #[test]
    fn inf_minus_inf_is_not_dropped() {
        // (inf − inf) is NaN, which `f64::max` would skip: it must count as infinite.
        let m = metrics(&[f32::INFINITY, 1.0], &[f32::INFINITY, 1.0]);
        assert_eq!(m.max_diff, f64::INFINITY);
    }

    /// `metrics` as it was before its maxima moved to lanes: one pass, `f64::max` folds from 0.
    fn one_pass(x: &[f32], y: &[f32]) -> Metrics {
        let n = x.len().min(y.len()).max(1);
        let (mut max, mut sum, mut dot, mut na, mut nb) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for (a, b) in x.iter().zip(y) {
            let (a, b) = (*a as f64, *b as f64);
            let d = (a - b).abs();
            let d = if d.is_nan() { f64::INFINITY } else { d };
            max = max.max(d);
            sum += d;
            dot += a * b;
            na += a * a;
            nb += b * b;
        }
        let cos = if na == 0.0 && nb == 0.0 {
            1.0
        } else if na == 0.0 || nb == 0.0 {
            0.0
        } else {
            dot / (na.sqrt() * nb.sqrt())
        };
        Metrics {
            max_diff: max,
            mean_diff: sum / n as f64,
            cosine: if cos.is_nan() {
                0.0
            } else {
                cos.clamp(-1.0, 1.0)
            },
            scale: y
                .iter()
                .fold(0f64, |m, v| m.max((*v as f64).abs()))
                .max(f64::MIN_POSITIVE),
        }
    }

    #[test]
    fn same_bits_as_the_one_pass_metrics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let value = |r: u64| match r % 12 {
            0 => f32::from_bits(r as u32), // any pattern: NaNs, subnormals, huge
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => -0.0,
            4 => f32::NAN,
            _ => (r as i64 as f64 / i64::MAX as f64 * 8.0) as f32,
        };
        let bits = |m: Metrics| [m.max_diff, m.mean_diff, m.cosine, m.scale].map(f64::to_bits);
        for round in 0..400 {
            // Lengths around the lane width, unequal sides, and no special values half the time.
            let (lx, ly) = ((next() % 40) as usize, (next() % 40) as usize);
            let plain = round % 2 == 0;
            let mut side = |len: usize| -> Vec<f32> {
                (0..len)
                    .map(|_| {
                        let r = next();
                        if plain { value(5 + r % 7) } else { value(r) }
                    })
                    .collect()
            };
            let (x, y) = (side(lx), side(ly));
            let want = one_pass(&x, &y);
            assert_eq!(
                bits(metrics(&x, &y)),
                bits(want),
                "round {round}: {x:?} vs {y:?}"
            );
            // The maxima on every level, not only the one this CPU dispatches to.
            let m = |(d, s): (f64, f64)| (d.to_bits(), s.max(f64::MIN_POSITIVE).to_bits());
            let want = (want.max_diff.to_bits(), want.scale.to_bits());
            assert_eq!(
                m(pulp::Simd::vectorize(pulp::Scalar::new(), Maxima(&x, &y))),
                want
            );
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(v3) = pulp::x86::V3::try_new() {
                    assert_eq!(m(pulp::Simd::vectorize(v3, Maxima(&x, &y))), want);
                }
                if let Some(v4) = pulp::x86::V4::try_new() {
                    assert_eq!(m(pulp::Simd::vectorize(v4, Maxima(&x, &y))), want);
                }
            }
        }
        let big: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.37).sin()).collect();
        let other: Vec<f32> = big.iter().map(|v| v * 1.0001 + 1e-4).collect();
        assert_eq!(bits(metrics(&big, &other)), bits(one_pass(&big, &other)));
    }
}
