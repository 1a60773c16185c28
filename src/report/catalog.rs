//! `explain` and `rules` output, human and JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::diag::Lint;
use crate::registry;
use crate::rules::Arch;

/// `explain --format json`: the lint's registry entry.
pub fn explain_json(l: &Lint) -> Value {
    json!({"code": l.code, "class": l.class, "severity": l.severity, "family": registry::family(l.code), "summary": l.summary, "explain": l.explain})
}

/// `explain`: the lint's code, class, severity and explain text.
pub fn explain_human(l: &Lint) -> String {
    format!(
        "{} [{}] {} ({}, default {})\n\n{}\n",
        l.code,
        l.class,
        l.summary,
        registry::family(l.code),
        l.severity,
        l.explain
    )
}

/// `rules --format json`: the architectures' rules and every registered check.
pub fn rules_json(archs: &[&Arch]) -> Value {
    let lints: Vec<_> = registry::all()
        .iter()
        .map(|l| json!({"code": l.code, "class": l.class, "severity": l.severity, "summary": l.summary}))
        .collect();
    json!({"schema_version": 1, "architectures": archs, "lints": lints})
}

/// `rules`: the architectures' rules and every registered check, as text.
pub fn rules_human(archs: &[&Arch]) -> String {
    let mut s = String::new();
    for a in archs {
        let _ = writeln!(
            s,
            "{} ({}) — names {:?}, rope {}, GGUF Q/K rows in {} order",
            a.arch,
            a.file.display(),
            a.names,
            a.rope_type.as_str(),
            a.gguf_qk_order.as_str()
        );
        for (k, v) in &a.config {
            let _ = writeln!(s, "  config {k} = {v} (when the file does not give it)");
        }
        for r in &a.roles {
            let join = |t: &[crate::rules::Template]| {
                t.iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            };
            let _ = writeln!(
                s,
                "  {:<12} {:<9} {:<8} dims [{}]{}{}\n    gguf: {}\n    hf:   {}",
                r.key,
                if r.per_layer { "per-layer" } else { "global" },
                if r.required { "required" } else { "optional" },
                r.dims.join(", "),
                r.rope_rows
                    .as_ref()
                    .map(|x| format!(", RoPE rows per {x}"))
                    .unwrap_or_default(),
                r.tied_to
                    .as_ref()
                    .map(|x| format!(", may be tied to {x}"))
                    .unwrap_or_default(),
                join(&r.gguf),
                join(&r.hf),
            );
        }
        let _ = writeln!(
            s,
            "  tolerances: {}",
            a.tolerance
                .iter()
                .map(|(k, t)| format!(
                    "{k} nmse≤{} cos≥{}",
                    crate::diag::fmt_float(t.nmse),
                    crate::diag::fmt_float(t.cosine)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(s, "\nchecks:");
    for l in registry::all() {
        let _ = writeln!(
            s,
            "  {} {:<8} {:<22} {}",
            l.code,
            l.severity.as_str(),
            l.class,
            l.summary
        );
    }
    s
}
