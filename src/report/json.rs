//! `--format json` of the main job (cli.md, schema_version 1).

use serde_json::{Value, json};

use crate::diag::{Finding, Severity};
use crate::pipeline::Outcome;

pub fn finding(f: &Finding) -> Value {
    json!({
        "code": f.code, "severity": f.severity, "class": f.class, "message": f.message,
        "file": f.file, "tensor": f.tensor, "layer": f.layer,
        "byte_offset": f.span.map(|s| s.offset), "byte_length": f.span.map(|s| s.len),
        "help": f.help, "evidence": f.evidence,
    })
}

pub fn outcome(o: &Outcome, timings: bool) -> Value {
    json!({
        "schema_version": 1,
        "tool": {"name": "apr-lint", "version": env!("CARGO_PKG_VERSION")},
        "inputs": o.inputs,
        "findings": o.findings.iter().map(finding).collect::<Vec<_>>(),
        "probe": o.probe,
        "summary": {
            "verdict": o.verdict,
            "errors": o.count(Severity::Error),
            "warnings": o.count(Severity::Warning),
            "infos": o.count(Severity::Info),
            "tensors_compared": o.tensors_compared,
            "value_checks": o.values,
            "elapsed_ms": if timings { json!(o.elapsed_ms) } else { json!(0) },
        }
    })
}
