//! Every lint the tool can emit, in code order: read by `explain`, `rules`, SARIF rule metadata and
//! the test harness that checks every finding's code is registered.

use crate::diag::Lint;

/// All lints, sorted by code.
pub fn all() -> Vec<&'static Lint> {
    let mut v: Vec<&'static Lint> = Vec::new();
    v.extend_from_slice(crate::format::lints::ALL);
    v.extend_from_slice(crate::model::hf_lints::ALL);
    v.extend_from_slice(crate::rules::lints::ALL);
    v.extend(crate::check::lints());
    v.extend_from_slice(crate::numeric::lints::ALL);
    v.extend_from_slice(crate::numeric::probe::ALL);
    v.extend_from_slice(crate::tool::ALL);
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

/// The lint registered for `code` (case and surrounding space ignored), retired ones included.
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

/// Every class slug some registered code has.
pub fn classes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = all().iter().map(|l| l.class).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Is `word` a registered code or class (case-insensitive)?
pub fn is_code_or_class(word: &str) -> bool {
    find(word).is_some()
        || classes()
            .iter()
            .any(|c| c.eq_ignore_ascii_case(word.trim()))
}

/// What `word` (not a code or class) probably meant: the code it abbreviates (`L001` →
/// `APRL-L001`), the codes of the class it names, else the nearest code or class by edit distance.
pub fn suggest(word: &str) -> Vec<String> {
    let w = word.trim().to_ascii_uppercase();
    if let Some(l) = find(&format!("APRL-{w}")) {
        return vec![l.code.to_string()];
    }
    let by_class: Vec<String> = all()
        .iter()
        .filter(|l| l.class.eq_ignore_ascii_case(word.trim()))
        .map(|l| l.code.to_string())
        .collect();
    if !by_class.is_empty() {
        return by_class;
    }
    let lower = word.trim().to_ascii_lowercase();
    let mut best: Vec<(usize, String)> = all()
        .iter()
        .map(|l| (edit_distance(&w, l.code), l.code.to_string()))
        .chain(
            classes()
                .into_iter()
                .map(|c| (edit_distance(&lower, c), c.to_string())),
        )
        .collect();
    best.sort();
    match best.first() {
        Some((d, _)) if *d <= 3.max(w.len() / 3) => {
            let d = best[0].0;
            best.into_iter()
                .take_while(|(x, _)| *x == d)
                .map(|(_, s)| s)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
