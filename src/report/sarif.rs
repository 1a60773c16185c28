//! SARIF 2.1.0: one result per finding, rule metadata from the registry.

use serde_json::{Value, json};

use crate::diag::Severity;
use crate::pipeline::Outcome;

pub fn outcome(o: &Outcome) -> Value {
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
    let results: Vec<Value> = o
        .findings
        .iter()
        .map(|f| {
            let mut region = json!({});
            if let Some(s) = f.span {
                region = json!({"byteOffset": s.offset, "byteLength": s.len});
            }
            let uri = f.file.clone().or_else(|| o.inputs.first().map(|i| i.path.clone())).unwrap_or_default();
            json!({
                "ruleId": f.code, "level": level(f.severity),
                "message": {"text": if f.help.is_empty() { f.message.clone() } else { format!("{} (help: {})", f.message, f.help) }},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}],
                "properties": {"class": f.class, "tensor": f.tensor, "layer": f.layer},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "apr-lint", "version": env!("CARGO_PKG_VERSION"), "rules": rules}}, "results": results,
            "properties": {"value_checks": o.values}}]
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}
