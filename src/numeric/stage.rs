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
pub fn metrics(x: &[f32], y: &[f32]) -> Metrics {
    let n = x.len().min(y.len()).max(1);
    let (mut max, mut sum, mut dot, mut na, mut nb) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (a, b) in x.iter().zip(y) {
        let (a, b) = (*a as f64, *b as f64);
        // A NaN on either side, or inf − inf, is an infinite difference: never dropped by `max`.
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
}
