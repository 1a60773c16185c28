//! Agreement of two equally long samples: `a` from the file under test, `b` from the reference,
//! element `k` of one facing element `k` of the other. Accumulated in f64.
//!
//! - `max_diff  = max_k |a_k − b_k|`, `mean_diff = (1/n) Σ_k |a_k − b_k|`
//! - `cosine    = Σ a_k b_k / sqrt(Σ a_k² · Σ b_k²)` (1 when both are all zero, 0 when one is)
//! - `nmse      = Σ (a_k − b_k)² / Σ b_k²` (0 when both are all zero, +∞ when only `b` is)
//! - `max_abs_b = max_k |b_k|`, the scale `--threshold` is relative to
//!
//! A non-finite element makes `cosine` and `nmse` NaN, which no tolerance accepts.

use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    pub n: usize,
    pub max_diff: f64,
    pub mean_diff: f64,
    pub cosine: f64,
    pub nmse: f64,
    pub max_abs_b: f64,
}

impl Metrics {
    pub fn of(a: &[f32], b: &[f32]) -> Metrics {
        debug_assert_eq!(a.len(), b.len());
        let (mut ab, mut aa, mut bb, mut dd, mut sum_abs) = (0f64, 0f64, 0f64, 0f64, 0f64);
        let (mut max_diff, mut max_abs_b) = (0f64, 0f64);
        let mut finite = true;
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (x as f64, y as f64);
            if !x.is_finite() || !y.is_finite() {
                finite = false;
                continue;
            }
            let d = x - y;
            ab += x * y;
            aa += x * x;
            bb += y * y;
            dd += d * d;
            sum_abs += d.abs();
            max_diff = max_diff.max(d.abs());
            max_abs_b = max_abs_b.max(y.abs());
        }
        let n = a.len().min(b.len());
        let cosine = if !finite {
            f64::NAN
        } else if aa == 0.0 && bb == 0.0 {
            1.0
        } else if aa == 0.0 || bb == 0.0 {
            0.0
        } else {
            (ab / (aa.sqrt() * bb.sqrt())).clamp(-1.0, 1.0)
        };
        let nmse = if !finite {
            f64::NAN
        } else if bb == 0.0 {
            if dd == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            dd / bb
        };
        Metrics {
            n,
            max_diff: if finite { max_diff } else { f64::NAN },
            mean_diff: if n == 0 { 0.0 } else { sum_abs / n as f64 },
            cosine,
            nmse,
            max_abs_b,
        }
    }

    /// Every element equal to within `threshold · max|b|` (the `--threshold` rule for same-dtype pairs).
    pub fn within_threshold(&self, threshold: f64) -> bool {
        self.max_diff.is_finite() && self.max_diff <= threshold * self.max_abs_b
    }

    /// Within a rule tolerance (NMSE and cosine both).
    pub fn within(&self, nmse: f64, cosine: f64) -> bool {
        self.nmse <= nmse && self.cosine >= cosine
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "n": self.n,
            "max_diff": finite_or_null(self.max_diff),
            "mean_diff": finite_or_null(self.mean_diff),
            "cosine": finite_or_null(self.cosine),
            "nmse": finite_or_null(self.nmse),
        })
    }
}

/// JSON has no NaN or infinity.
pub fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

/// A cosine as people read it: 5 decimals near 1, 3 significant digits elsewhere.
pub fn fmt_cos(x: f64) -> String {
    if !x.is_finite() {
        "NaN".into()
    } else if x.abs() >= 0.99 {
        format!("{x:.5}")
    } else if x.abs() >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.1e}")
    }
}

/// An NMSE or a difference: 2 significant digits in scientific notation.
pub fn fmt_sci(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1e}")
    } else {
        "NaN".into()
    }
}

/// Are all finite values of `a` equal (all zero, all one …)?
pub fn is_constant(a: &[f32]) -> bool {
    let mut it = a.iter().filter(|x| x.is_finite());
    match it.next() {
        None => true,
        Some(&first) => it.all(|&x| x == first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_and_orthogonal() {
        let m = Metrics::of(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]);
        assert_eq!((m.cosine, m.nmse, m.max_diff), (1.0, 0.0, 0.0));
        assert!(m.within_threshold(0.0));
        let m = Metrics::of(&[1.0, 0.0], &[0.0, 1.0]);
        assert_eq!(m.cosine, 0.0);
        assert_eq!(m.nmse, 2.0);
    }

    #[test]
    fn non_finite_never_passes() {
        let m = Metrics::of(&[f32::NAN, 1.0], &[1.0, 1.0]);
        assert!(m.cosine.is_nan() && !m.within(1.0, 0.0) && !m.within_threshold(1.0));
    }

    #[test]
    fn zeros() {
        assert_eq!(Metrics::of(&[0.0; 4], &[0.0; 4]).cosine, 1.0);
        assert_eq!(Metrics::of(&[0.0; 4], &[1.0; 4]).cosine, 0.0);
        assert!(is_constant(&[0.0; 4]) && !is_constant(&[0.0, 1.0]));
    }
}
