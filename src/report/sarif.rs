//! SARIF 2.1.0: one result per finding, rule metadata from the registry. A fatal error (verdict
//! `error`) is a result too, and a tool execution notification of a failed invocation.

use serde_json::{Value, json};

use crate::diag::{Finding, Severity};
use crate::pipeline::{Outcome, Verdict};

/// `--format sarif`: a SARIF 2.1.0 log of the run, verdict from `o`.
pub fn outcome(o: &Outcome) -> Value {
    log(o, o.verdict)
}

/// A SARIF log of `o` with an explicit verdict (`rosetta`'s comes from its trace).
pub fn log(o: &Outcome, verdict: Verdict) -> Value {
    run_of(&[o], verdict, json!({"value_checks": o.value_checks()}))
}

/// One SARIF run holding the results of several outcomes (batch mode), each finding without a file
/// placed on its own outcome's first input; `verdict` is the run's, `properties` the run's
/// properties.
pub fn run_of(outcomes: &[&Outcome], verdict: Verdict, properties: Value) -> Value {
    let rules: Vec<Value> = crate::registry::all()
        .iter()
        .map(|l| {
            json!({
                "id": l.code, "name": l.class, "shortDescription": {"text": l.summary},
                "fullDescription": {"text": l.explain},
                "defaultConfiguration": {"level": level(l.severity)},
                "properties": {"class": l.class, "family": crate::registry::family(l.code)},
            })
        })
        .collect();
    let mut results: Vec<Value> = Vec::new();
    let mut notes: Vec<Value> = Vec::new();
    for o in outcomes {
        let fallback = o.inputs.first().map(|i| i.path.as_str());
        results.extend(o.findings.iter().map(|f| result(f, fallback)));
        if o.verdict == Verdict::Error || verdict == Verdict::Error && outcomes.len() == 1 {
            notes.extend(
                o.findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .map(|f| {
                        let mut n = json!({
                            "level": "error",
                            "message": {"text": message(f)},
                            "descriptor": {"id": f.code},
                        });
                        if let Some(loc) = location(f, fallback) {
                            n["locations"] = json!([loc]);
                        }
                        n
                    }),
            );
        }
    }
    let mut invocation = json!({
        // An interrupted `rosetta` (Ctrl-C) did not finish its job either.
        "executionSuccessful": !matches!(verdict, Verdict::Error | Verdict::Interrupted),
        "exitCode": verdict.exit_code(),
    });
    if verdict == Verdict::Error {
        invocation["toolExecutionNotifications"] = json!(notes);
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "apr-lint", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "invocations": [invocation],
            "results": results,
            "properties": properties,
        }]
    })
}

fn message(f: &Finding) -> String {
    if f.help.is_empty() {
        f.message.clone()
    } else {
        format!("{} (help: {})", f.message, f.help)
    }
}

/// The file (and the byte span, only when there is one); `None` when the finding names no file.
fn location(f: &Finding, fallback: Option<&str>) -> Option<Value> {
    let path = f.file.as_deref().or(fallback)?;
    let mut physical = json!({"artifactLocation": {"uri": uri(path)}});
    if let Some(s) = f.span {
        physical["region"] = if s.len > 0 {
            json!({"byteOffset": s.offset, "byteLength": s.len})
        } else {
            json!({"byteOffset": s.offset})
        };
    }
    Some(json!({"physicalLocation": physical}))
}

fn result(f: &Finding, fallback: Option<&str>) -> Value {
    let mut r = json!({
        "ruleId": f.code, "level": level(f.severity),
        "message": {"text": message(f)},
        "properties": {"class": f.class()},
    });
    if let Some(loc) = location(f, fallback) {
        r["locations"] = json!([loc]);
    }
    if let Some(t) = &f.tensor {
        r["properties"]["tensor"] = json!(t);
    }
    if let Some(l) = f.layer {
        r["properties"]["layer"] = json!(l);
    }
    r
}

/// A path as a URI reference: every byte but unreserved characters and `/` percent-encoded
/// (RFC 3986), so spaces, `#`, `%` and non-ASCII names stay one valid reference. An absolute path
/// is a `file://` URI (a bare `/work/x.apr` is a network-path-less reference viewers cannot map);
/// a relative one stays relative to the working directory, as code scanning expects.
pub fn uri(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 7);
    if path.starts_with('/') {
        s.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn absolute_paths_are_file_uris_relative_ones_stay_relative() {
        assert_eq!(super::uri("/work/a b.apr"), "file:///work/a%20b.apr");
        assert_eq!(super::uri("out/m#1.gguf"), "out/m%231.gguf");
    }
}
