//! `inspect` output: the header, config and tensor table of one file, human or JSON (cli.md).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::model::ModelView;
use crate::rules::Resolved;

/// The JSON document of `inspect --format json` (schema_version 1).
pub fn json(view: &ModelView, resolved: &Resolved<'_>) -> Value {
    let c = &view.config;
    let cfg = json!({
        "hidden_size": c.hidden.as_ref().map(|v| v.value),
        "num_layers": c.layers.as_ref().map(|v| v.value),
        "num_heads": c.heads.as_ref().map(|v| v.value),
        "num_kv_heads": c.kv_heads.as_ref().map(|v| v.value),
        "vocab_size": c.vocab.as_ref().map(|v| v.value),
        "intermediate_size": c.ffn.as_ref().map(|v| v.value),
        "rope_theta": c.rope_theta.as_ref().map(|v| v.value),
        "rope_type": c.rope_type.as_ref().map(|v| v.value),
        "rms_norm_eps": c.rms_eps.as_ref().map(|v| v.value),
        "head_dim": c.head_dim.as_ref().map(|v| v.value),
        "context_length": c.context_length.as_ref().map(|v| v.value),
        "tied_embeddings": c.tied.as_ref().map(|v| v.value),
        "rope_scaling": c.rope_scaling.as_ref().map(|v| json!({
            "type": v.value.kind,
            "factor": v.value.factor,
            "original_context_length": v.value.original_context,
            "attn_factor": v.value.attn_factor,
        })),
    });
    let tensors: Vec<Value> = view
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (role, layer) = match resolved.role_of(i) {
                Some((r, l)) => (Some(r.key.clone()), l),
                None => (None, None),
            };
            let mut o = json!({
                "name": t.name, "role": role, "layer": layer, "dtype": t.dtype.name(),
                "dims": t.dims, "file_dims": t.file_dims, "offset": t.data.offset, "size": t.data.len,
            });
            if let Some(r) = &t.apr_dtype {
                o["dtype_code"] = json!(r.code);
            }
            if view.sources().len() > 1 {
                // A sharded checkpoint: `offset` is inside this file.
                o["file"] = json!(view.source_of(t).path().display().to_string());
            }
            o
        })
        .collect();
    let mut doc = json!({
        "schema_version": 1,
        "path": view.path().display().to_string(),
        "format": view.format_name(),
        "version": view.version(),
        "architecture": c.arch(),
        "config": cfg,
        "tokenizer": view.tokenizer,
        "tensor_count": view.tensors.len(),
        "tensors": tensors,
    });
    let (key, facts) = view.container_json();
    doc[key] = facts;
    doc
}

pub fn human(view: &ModelView, resolved: &Resolved<'_>) -> String {
    let mut s = String::new();
    let c = &view.config;
    let _ = writeln!(
        s,
        "{} — {}{}, {} bytes",
        view.path().display(),
        view.format_name().to_uppercase(),
        match view.version() {
            0 => String::new(),
            v => format!(" v{v}"),
        },
        view.sources().iter().map(|s| s.len()).sum::<u64>()
    );
    if let Some(line) = view.header_summary() {
        let _ = writeln!(s, "{line}");
    }
    let o = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
    let _ = writeln!(
        s,
        "architecture {} (rules: {}), hidden {}, layers {}, heads {}/{} kv, head_dim {}, vocab {}, ffn {}",
        c.arch().unwrap_or("?"),
        resolved.arch.map(|a| a.arch.as_str()).unwrap_or("none"),
        o(c.hidden.as_ref().map(|v| v.value)),
        o(c.layers.as_ref().map(|v| v.value)),
        o(c.heads.as_ref().map(|v| v.value)),
        o(c.kv_heads.as_ref().map(|v| v.value)),
        o(c.head_dim.as_ref().map(|v| v.value)),
        o(c.vocab.as_ref().map(|v| v.value)),
        o(c.ffn.as_ref().map(|v| v.value)),
    );
    let t = &view.tokenizer;
    let _ = writeln!(
        s,
        "rope θ {}{}, rms eps {}, tokenizer {} ({} tokens, {} merges)\n",
        c.rope_theta
            .as_ref()
            .map(|v| crate::diag::fmt_float(v.value))
            .unwrap_or("?".into()),
        c.rope_scaling
            .as_ref()
            .map(|v| format!(" (scaling {})", v.value.describe()))
            .unwrap_or_default(),
        c.rms_eps
            .as_ref()
            .map(|v| crate::diag::fmt_float(v.value))
            .unwrap_or("?".into()),
        t.model.as_deref().unwrap_or("none"),
        o(t.n_tokens),
        o(t.n_merges)
    );
    let _ = writeln!(
        s,
        "{:<52} {:<12} {:<7} {:<18} {:>12} {:>10}",
        "tensor", "role", "dtype", "dims [out, in]", "offset", "bytes"
    );
    for (i, tv) in view.tensors.iter().enumerate() {
        let role = resolved
            .role_of(i)
            .map(|(r, _)| r.key.as_str())
            .unwrap_or("-");
        let _ = writeln!(
            s,
            "{:<52} {:<12} {:<7} {:<18} {:>12} {:>10}",
            tv.name,
            role,
            tv.dtype.name(),
            crate::diag::fmt_dims(&tv.dims),
            tv.data.offset,
            tv.data.len
        );
    }
    s
}
