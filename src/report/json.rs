//! `--format json` of the main job (cli.md, schema_version 1).

use serde_json::{Value, json};

use crate::diag::{Finding, Severity};
use crate::pipeline::{Outcome, Verdict};

/// One finding as JSON reports write it.
pub fn finding(f: &Finding) -> Value {
    json!({
        "code": f.code, "severity": f.severity, "class": f.class(), "message": f.message,
        "file": f.file, "tensor": f.tensor, "layer": f.layer,
        "byte_offset": f.span.map(|s| s.offset), "byte_length": f.span.map(|s| s.len),
        "help": f.help, "evidence": f.evidence,
    })
}

/// The one JSON envelope of every command that reports findings (the main job, `rosetta`, and any
/// command's fatal error): `summary.verdict` is `o.verdict` unless `verdict` says otherwise.
pub fn outcome(o: &Outcome, timings: bool) -> Value {
    envelope(o, o.verdict, timings)
}

/// The envelope with an explicit verdict (`rosetta`'s comes from its trace).
pub fn envelope(o: &Outcome, verdict: Verdict, timings: bool) -> Value {
    let mut doc = json!({
        "schema_version": 1,
        "tool": {"name": "apr-lint", "version": env!("CARGO_PKG_VERSION")},
        "inputs": o.inputs,
        "config": o.config,
        "findings": o.findings.iter().map(finding).collect::<Vec<_>>(),
        "allowed": o.allowed,
        "probe": o.probe,
        "summary": {
            "verdict": verdict,
            "errors": o.count(Severity::Error),
            "warnings": o.count(Severity::Warning),
            "infos": o.count(Severity::Info),
            "tensors_compared": o.tensors_compared,
            "value_checks": o.value_checks(),
            "elapsed_ms": if timings { json!(o.elapsed_ms) } else { json!(0) },
        }
    });
    if verdict == Verdict::Error
        && let Some(f) = o.findings.iter().find(|f| f.severity == Severity::Error)
    {
        // Kept for readers of the old error document.
        doc["error"] = finding(f);
    }
    doc
}
