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

/// Codes that are no longer emitted, each with the codes that replaced it (one per bug class). They
/// stay registered so `explain` and `rules` still answer for them, and `-D/-W/-A` with a retired code
/// applies to its successors.
pub static RETIRED: &[(&str, &[&str])] = &[
    ("APRL-L003", &["APRL-L006", "APRL-L007"]),
    ("APRL-L010", &["APRL-L011", "APRL-L012"]),
    ("APRL-M021", &["APRL-M030", "APRL-M031"]),
    (
        "APRL-N020",
        &["APRL-N030", "APRL-N031", "APRL-N032", "APRL-N033"],
    ),
];

/// The codes that replaced `code` when it is retired; None for a code that is emitted.
pub fn superseded_by(code: &str) -> Option<&'static [&'static str]> {
    let c = code.trim();
    RETIRED
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(c))
        .map(|(_, s)| *s)
}

/// Whether `code` is retired (registered for `explain`, never emitted).
pub fn is_retired(code: &str) -> bool {
    superseded_by(code).is_some()
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
