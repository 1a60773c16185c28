//! The always-on `[APR-LOAD]` block: three lines per APR tensor (cli.md, "Always-on load log").

use std::fmt::Write as _;

/// What the rules say about one tensor's dims.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The dims agree with the role's expected `[out, in]` dims.
    Ok,
    /// The dims contradict the rule (reversed or otherwise).
    TransposeNeeded { expected: Vec<u64> },
    /// No rule covers this tensor (unknown role or 1-D); nothing to contradict.
    Unchecked,
}

pub struct LoadLine<'a> {
    pub name: &'a str,
    pub dims: &'a [u64],
    pub dtype: &'a str,
    pub expected_layout: &'a str,
    pub verdict: Verdict,
}

pub fn render(lines: &[LoadLine<'_>]) -> String {
    let mut s = String::new();
    for l in lines {
        let _ = writeln!(
            s,
            "[APR-LOAD] Tensor '{}': dims={:?}, dtype={}",
            l.name, l.dims, l.dtype
        );
        let _ = writeln!(s, "[APR-LOAD] Expected layout: {}", l.expected_layout);
        let v = match &l.verdict {
            Verdict::Ok => "OK".to_string(),
            Verdict::TransposeNeeded { expected } => {
                format!("TRANSPOSE NEEDED (expected {expected:?})")
            }
            Verdict::Unchecked => "OK (no rule for this tensor)".to_string(),
        };
        let _ = writeln!(s, "[APR-LOAD] Actual layout: {:?} - {}", l.dims, v);
    }
    s
}
