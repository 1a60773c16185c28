//! `degenerate`: the file under test's sampled values are all one value (zeros from a placeholder,
//! ones) while the reference's vary: valid structure, garbage content (aprender PMAT-234, PR #2337).
//! And the reference's own matrix constant while the file under test agrees with it: a dead
//! reference, against which agreement proves nothing.

use crate::diag::Finding;
use crate::model::TensorView;
use crate::numeric::lints;
use crate::numeric::metrics::is_constant;

/// `a` sampled from the file under test, `b` the reference's values at the same (or flat) positions.
pub fn check(a: &[f32], b: &[f32], ta: &TensorView, tb: &TensorView) -> Option<Finding> {
    if a.is_empty() || !is_constant(a) || is_constant(b) {
        return None;
    }
    let v = a.iter().find(|x| x.is_finite()).copied().unwrap_or(0.0);
    Some(
        Finding::new(
            &lints::DEGENERATE,
            format!(
                "every one of the {} sampled values of `{}` is {v} while the reference's `{}` vary",
                a.len(),
                ta.name,
                tb.name
            ),
        )
        .help("copy the tensor's data from the source weights; look for a zero-filled placeholder in the converter"),
    )
}

/// A 2-D weight of the reference whose sampled values `b` are all one value (the file under test
/// agrees with it: `a` is constant too, or its bytes are identical). Norm vectors and biases can be
/// constant legitimately (an untrained norm is all ones), matrices cannot.
pub fn dead_reference(a: &[f32], b: &[f32], tb: &TensorView) -> Option<Finding> {
    if b.len() < 2 || tb.dims.len() != 2 || !is_constant(b) || !is_constant(a) {
        return None;
    }
    // The same finite value on both sides, up to quantization rounding (non-finite values are
    // `APRL-N010`'s; a different constant is a disagreement, left to the comparison).
    let first = |x: &[f32]| x.iter().find(|v| v.is_finite()).copied();
    let v = first(b)?;
    let w = first(a)?;
    if (w - v).abs() > 1e-2 * v.abs() {
        return None;
    }
    Some(
        Finding::new(
            &lints::DEAD_REFERENCE,
            format!(
                "the reference's `{}` is {v} at every one of the {} sampled values, and this file agrees: a constant weight matrix, so the comparison proves nothing about it",
                tb.name,
                b.len()
            ),
        )
        .help("re-create or re-download the reference, then convert again"),
    )
}
