//! `degenerate`: the file under test's sampled values are all one value (zeros from a placeholder,
//! ones) while the reference's vary: valid structure, garbage content (aprender PMAT-234, PR #2337).

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
