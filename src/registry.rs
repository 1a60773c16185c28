//! Every lint the tool can emit, in code order: read by `explain`, `rules`, SARIF rule metadata and
//! the test harness that checks every finding's code is registered.

use crate::diag::Lint;

/// All lints, sorted by code.
pub fn all() -> Vec<&'static Lint> {
    let mut v: Vec<&'static Lint> = Vec::new();
    v.extend_from_slice(crate::format::lints::ALL);
    v.extend_from_slice(crate::rules::lints::ALL);
    v.extend(crate::check::lints());
    v.extend_from_slice(crate::numeric::lints::ALL);
    v.extend_from_slice(crate::numeric::probe::ALL);
    v.extend_from_slice(crate::pipeline::ALL);
    v.sort_by_key(|l| l.code);
    v
}

pub fn find(code: &str) -> Option<&'static Lint> {
    let c = code.trim().to_ascii_uppercase();
    all().into_iter().find(|l| l.code == c)
}

/// Severity families by code letter.
pub fn family(code: &str) -> &'static str {
    match code.as_bytes().get(5) {
        Some(b'F') => "container",
        Some(b'R') => "rule file",
        Some(b'L') => "layout",
        Some(b'M') => "metadata",
        Some(b'Q') => "quantization",
        Some(b'N') => "numeric",
        Some(b'T') => "tool",
        _ => "other",
    }
}
