//! Metadata checks of one file: architecture recognised, config complete and self-consistent, every
//! required role present in every layer (with name-prefix mistakes named), nothing unclaimed, APR
//! `tensor_shapes` vs the index, key aliases that make realizar drop all metadata, dtype codes that
//! aprender and realizar read differently, and the tied-embedding conventions.

use std::collections::BTreeSet;

use crate::diag::{Finding, Lint, Severity};
use crate::model::{ModelView, RopeType};
use crate::rules::Resolved;
use crate::rules::resolve::resolve_name;

use crate::diag::lint;

lint!(UNKNOWN_ARCH, "APRL-M001", "metadata-mismatch", Warning, "the architecture has no rule set",
"What it catches: an architecture name (GGUF `general.architecture`, APR `architecture`) that no rule file covers, or none at all.
Why it matters: without rules no role, dims or naming convention can be checked: the result is inconclusive, never a pass.
How to fix: add `rules/<arch>.toml` (see the README's rule schema) and pass `--rules DIR`, or fix the architecture key.
Precedent: APR files written without `architecture`.");

lint!(CONFIG_MISSING, "APRL-M002", "metadata-mismatch", Error, "a config quantity the rules need is missing",
"What it catches: hidden size, layer count, head counts, vocab or ffn width absent from the file's metadata.
Why it matters: loaders fall back to defaults that rarely match the weights.
How to fix: write the key (GGUF `<arch>.embedding_length` …, APR `hidden_size` …).
Precedent: aprender CORRECTNESS-011, APR files without `num_kv_heads`.");

lint!(CONFIG_INCONSISTENT, "APRL-M003", "metadata-mismatch", Error, "config values contradict each other",
"What it catches: n_head not a multiple of n_head_kv, hidden not divisible by n_head without an explicit head_dim, a layer count that disagrees with the blocks present, a vocab size that disagrees with the tokenizer.
Why it matters: attention reshapes and GQA grouping use these numbers directly.
How to fix: correct the metadata to match the tensors.
Precedent: llama.cpp PR #3364 (GQA head counts).");

lint!(ALIAS_DUPLICATE, "APRL-M004", "metadata-mismatch", Error, "a metadata key and its alias are both present",
"What it catches: e.g. `hidden_size` together with `n_embd`, or `num_heads` with `num_attention_heads`.
Why it matters: realizar then drops ALL metadata silently and runs with defaults.
How to fix: keep the canonical key only.
Precedent: aprender C-APR-MERGE-RUNNABLE, F-REGR-231 (`eps`).");

lint!(CONFIG_TYPE, "APRL-M005", "metadata-mismatch", Error, "a config key has the wrong type",
"What it catches: a config key present with a value of the wrong type (a string where a number belongs, a float head count), or a GGUF hyperparameter of a type llama.cpp's loader refuses (it reads integer ones as u32 and float ones as f32: \"key … has wrong type u64 but expected type u32\").
Why it matters: strict loaders fail; lenient ones silently use a default.
How to fix: write the value with the right type.
Precedent: —");

lint!(TENSOR_SHAPES, "APRL-M006", "metadata-mismatch", Error, "APR `tensor_shapes` disagrees with the index",
"What it catches: a `tensor_shapes` metadata entry whose dims differ from the index entry's, or names a tensor the index lacks.
Why it matters: loaders that trust `tensor_shapes` reshape the bytes differently from loaders that trust the index.
How to fix: regenerate `tensor_shapes` from the index.
Precedent: aprender GH-186 (shapes recorded in GGML order in one place only).");

lint!(
    MISSING_TENSOR,
    "APRL-M007",
    "missing-tensor",
    Error,
    "a required tensor is absent",
    "What it catches: a role the architecture requires, absent in a layer (or globally). The finding names the tensor expected (the first missing layer's, in the file's own naming scheme) and that layer.
Why it matters: loaders zero-fill missing weights silently; the model runs and produces garbage.
How to fix: fix the converter's name mapping (a missing `model.` prefix is the usual cause).
Precedent: aprender #194 (100 of 291 tensors missing), GH-190 (name prefix)."
);

lint!(UNEXPECTED_TENSOR, "APRL-M008", "unexpected-tensor", Warning, "a tensor no rule claims",
"What it catches: a tensor whose name matches no role template of the architecture, or a layer index ≥ the layer count.
Why it matters: usually a misnamed required tensor (so the loader never finds it), sometimes an extra the rules do not know yet.
How to fix: rename it to the template the rules give, or add a role to the rule file.
Precedent: aprender GH-190 (`layers.N…` without `model.`).");

lint!(AMBIGUOUS_DTYPE, "APRL-M009", "ambiguous-dtype-code", Warning, "an APR dtype code that aprender and realizar read differently",
"What it catches: codes 2, 3, 6, 7, 8, 10, 11, 13 (and other GGML ids), where aprender and realizar disagree on the type (F64 vs Q4_1, I8 vs Q5_0, APR_Q4 vs Q8_0…).
Why it matters: the same file decodes to different values in the two loaders.
How to fix: use an unambiguous code (F32 0, F16 1, Q4_K 12, Q6_K 14, BF16 30, APR_Q4 128, APR_Q8 129) or convert with the tool that will load it.
Precedent: aprender #375, GH-438.");

lint!(TIED_EMBEDDING, "APRL-M010", "tied-embedding", Warning, "lm_head is a placeholder or contradicts the tie flag",
"What it catches: a 0-byte `lm_head.weight` with a full [vocab, hidden] shape (a known defect; loaders treat it as tied), `tied_embeddings: true` with an independent lm_head, or an absent lm_head without the flag. Against a reference, the placeholder is an error (APRL-M032) unless the reference is tied too and the file declares the tie.
Why it matters: a loader that does not tie reads zeros or garbage logits.
How to fix: write lm_head as a copy of the embedding and set `tied_embeddings: true`, or drop it and set the flag.
Precedent: aprender PR #2209, #2309, #2441.");

lint!(ROPE_TYPE, "APRL-M011", "metadata-mismatch", Error, "the declared rope type cannot be right for this architecture",
"What it catches: an APR `rope_type` other than 0 (NORM) or 2 (NEOX), or one that contradicts an architecture whose weights have only one legitimate row order (qwen2/qwen3 need NEOX = 2).
Why it matters: the wrong rotation pairs the wrong dimensions: outputs degrade after the first few tokens.
How to fix: set `rope_type` to what the architecture needs (2 for qwen2).
Precedent: aprender CORRECTNESS-011 (rope_type 0 vs 2).");

lint!(TOKENIZER_SIZE, "APRL-M012", "tokenizer-mismatch", Error, "the tokenizer's vocabulary size disagrees with the embedding",
"What it catches: a token list longer than the embedding's rows (ids past the end), or special token ids outside the vocabulary.
Why it matters: such ids index past the embedding.
How to fix: write the tokenizer of the model the weights belong to.
Precedent: aprender #1623.");

pub static ALL: &[&Lint] = &[
    &UNKNOWN_ARCH,
    &CONFIG_MISSING,
    &CONFIG_INCONSISTENT,
    &ALIAS_DUPLICATE,
    &CONFIG_TYPE,
    &TENSOR_SHAPES,
    &MISSING_TENSOR,
    &UNEXPECTED_TENSOR,
    &AMBIGUOUS_DTYPE,
    &TIED_EMBEDDING,
    &ROPE_TYPE,
    &TOKENIZER_SIZE,
];

pub fn check(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let c = &view.config;
    for (key, problem, span) in &c.problems {
        let lint = if problem.contains("aliases") {
            &ALIAS_DUPLICATE
        } else {
            &CONFIG_TYPE
        };
        let mut f =
            Finding::new(lint, format!("`{key}`: {problem}")).help(if lint == &ALIAS_DUPLICATE {
                "keep the canonical key only"
            } else {
                "write the value with the right type"
            });
        f = f.at_key(key.as_str(), *span);
        out.push(f);
    }
    dtype_codes(view, out);
    tensor_shapes(view, out);
    let Some(arch) = r.arch else {
        let known = crate::rules::RuleSet::builtin().arch_names().join(", ");
        out.push(
            Finding::new(&UNKNOWN_ARCH, match c.arch() {
                Some(a) => format!("architecture `{a}` has no rule set (known: {known}); roles and dims were not checked"),
                None => format!("the file names no architecture; roles and dims were not checked (known: {known})"),
            })
            .help("add `rules/<arch>.toml` and pass `--rules DIR`, or set the architecture key"),
        );
        return;
    };
    // Config completeness.
    for (sym, what) in [
        ("hidden", "hidden size"),
        ("n_layer", "layer count"),
        ("n_head", "head count"),
        ("vocab", "vocabulary size"),
        ("ffn", "feed-forward width"),
    ] {
        if !r.env.contains_key(sym) {
            out.push(
                Finding::new(
                    &CONFIG_MISSING,
                    format!("the {what} (`{sym}`) is not in the metadata"),
                )
                .help(view.config_key_help()),
            );
        }
    }
    if let (Some(&h), Some(&kv)) = (r.env.get("n_head"), r.env.get("n_head_kv"))
        && (kv == 0 || h % kv != 0)
    {
        let mut f = Finding::new(
            &CONFIG_INCONSISTENT,
            format!("n_head {h} is not a multiple of n_head_kv {kv}"),
        )
        .help("correct the head counts to the model's");
        if let Some(v) = &c.kv_heads {
            f = f.at_key(v.key.as_str(), v.span);
        }
        out.push(f);
    }
    if !r.env.contains_key("head_dim")
        && let (Some(&h), Some(&n)) = (r.env.get("hidden"), r.env.get("n_head"))
    {
        out.push(
            Finding::new(
                &CONFIG_INCONSISTENT,
                format!("hidden {h} is not divisible by n_head {n} and no head_dim is given"),
            )
            .help("write `head_dim` explicitly"),
        );
    }
    config_contradicts_shapes(view, r, out);
    if let Some(rt) = &c.rope_type {
        match RopeType::from_code(rt.value) {
            None => out.push(Finding::new(&ROPE_TYPE, format!("`{}` is {}; only 0 (NORM) and 2 (NEOX) exist", rt.key, rt.value)).help("set 0 or 2")),
            Some(t) if arch.gguf_qk_order == RopeType::Neox && arch.rope_type == RopeType::Neox && t != RopeType::Neox => out.push(
                Finding::new(&ROPE_TYPE, format!("`{}` is {} ({}), but {} weights are in Hugging Face row order and need NEOX (2)", rt.key, rt.value, t.as_str(), arch.arch))
                    .help("set `rope_type` to 2"),
            ),
            Some(_) => {}
        }
    }
    // Roles: presence per layer, unclaimed tensors.
    let n_layer = r.n_layers().unwrap_or(0);
    let mut present: BTreeSet<(usize, Option<u32>)> = BTreeSet::new();
    // Tensors of blocks at or past the configured layer count: (layer, tensor index).
    let mut beyond: Vec<(u32, usize)> = Vec::new();
    for (i, t) in view.tensors.iter().enumerate() {
        match r.roles[i] {
            Some(tr) => {
                if let Some(l) = tr.layer
                    && r.n_layers().is_some_and(|n| (l as u64) >= n)
                {
                    beyond.push((l, i));
                }
                present.insert((tr.role, tr.layer));
            }
            None => {
                let hint = prefix_hint(arch, view.naming_schemes(), &t.name);
                let msg = match &hint {
                    Some(fixed) => format!(
                        "`{}` matches no role; `{fixed}` would (name-prefix mistake)",
                        t.name
                    ),
                    None => format!("`{}` matches no role of the `{}` rules", t.name, arch.arch),
                };
                let mut f = Finding::new(&UNEXPECTED_TENSOR, msg)
                    .tensor(&t.name)
                    .span(t.record)
                    .help(match &hint {
                        Some(fixed) => format!("rename it to `{fixed}`"),
                        None => {
                            "rename it to a template the rules give, or add a role to the rule file"
                                .into()
                        }
                    });
                if hint.is_some() {
                    f.severity = Severity::Error;
                }
                out.push(f);
            }
        }
    }
    // Blocks past the configured count: loaders build `n_layer` blocks and then refuse (llama.cpp:
    // "wrong number of tensors") or ignore the rest. One finding, not one per tensor.
    if let Some(&(_, first)) = beyond.first() {
        let max = beyond.iter().map(|&(l, _)| l).max().unwrap_or(0);
        let t = &view.tensors[first];
        let mut f = Finding::new(
            &CONFIG_INCONSISTENT,
            format!(
                "the config says {n_layer} layers but {} tensors belong to blocks {}..={max} (e.g. `{}`)",
                beyond.len(),
                n_layer,
                t.name
            ),
        )
        .tensor(&t.name)
        .help("correct the layer count in the metadata, or drop the extra blocks");
        f = match &view.config.layers {
            Some(v) if v.span.is_some() => f.at_key(v.key.as_str(), v.span),
            _ => f.span(t.record),
        };
        out.push(f);
    }
    let has_tensor = |key: &str| {
        arch.roles
            .iter()
            .position(|r| r.key == key)
            .is_some_and(|ri| present.iter().any(|(r, _)| *r == ri))
    };
    // Each block needs at least one tensor, so a layer count above the tensor count cannot be
    // right: it is reported once and not iterated (a hostile `block_count` of 2^32 must not
    // allocate per layer). Otherwise every layer is checked, so dropped blocks are missing tensors.
    let seen_layers = present
        .iter()
        .filter_map(|(_, l)| *l)
        .map(|l| l as u64 + 1)
        .max()
        .unwrap_or(0);
    let check_layers = if n_layer <= view.tensors.len() as u64 {
        n_layer as u32
    } else {
        let mut f = Finding::new(
            &CONFIG_INCONSISTENT,
            format!("the config says {n_layer} layers but the file holds {} tensors (blocks seen: {seen_layers})", view.tensors.len()),
        )
        .help("correct the layer count in the metadata");
        if let Some(v) = &view.config.layers {
            f = f.at_key(v.key.as_str(), v.span);
        }
        out.push(f);
        seen_layers as u32
    };
    for (ri, role) in arch.roles.iter().enumerate() {
        if !role.required {
            continue;
        }
        let layers: Vec<Option<u32>> = if role.per_layer {
            (0..check_layers).map(Some).collect()
        } else {
            vec![None]
        };
        let mut missing: Vec<Option<u32>> = layers
            .into_iter()
            .filter(|l| !present.contains(&(ri, *l)))
            .collect();
        if missing.is_empty() {
            continue;
        }
        if let Some(t) = &role.tied_to
            && has_tensor(t)
        {
            continue;
        }
        let example = role
            .templates(view.naming_schemes())
            .next()
            .map(|t| t.instantiate(missing[0]))
            .unwrap_or_default();
        let n = missing.len();
        let first_layer = missing[0];
        missing.truncate(6);
        let msg = if role.per_layer {
            format!(
                "`{}` is missing in {n} of {n_layer} layers (layers {}{}), e.g. `{example}`",
                role.key,
                missing
                    .iter()
                    .map(|l| l.map(|x| x.to_string()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", "),
                if n > 6 { ", …" } else { "" }
            )
        } else {
            format!("`{}` is missing (`{example}`)", role.key)
        };
        let mut f = Finding::new(&MISSING_TENSOR, msg)
            .layer(first_layer)
            .help("fix the converter's name mapping; loaders zero-fill missing weights silently");
        if !example.is_empty() {
            f = f.tensor(example);
        }
        out.push(f);
    }
    tied(view, r, out);
    tokenizer(view, r, out);
}

/// A name that matches a template once a missing or extra prefix is fixed.
fn prefix_hint(
    arch: &crate::rules::Arch,
    naming: &[crate::model::NamingScheme],
    name: &str,
) -> Option<String> {
    for p in ["model.", "model.model.", "transformer."] {
        let with = format!("{p}{name}");
        if resolve_name(arch, naming, &with).is_some() {
            return Some(with);
        }
        if let Some(without) = name.strip_prefix(p)
            && resolve_name(arch, naming, without).is_some()
        {
            return Some(without.to_string());
        }
    }
    None
}

fn dtype_codes(view: &ModelView, out: &mut Vec<Finding>) {
    let mut by_code: std::collections::BTreeMap<u8, Vec<&str>> = Default::default();
    for t in &view.tensors {
        if let Some(res) = &t.apr_dtype
            && (res.is_ambiguous() || (res.aprender.is_none() && res.realizar.is_none()))
        {
            by_code.entry(res.code).or_default().push(&t.name);
        }
    }
    for (code, names) in by_code {
        let Some(t) = view.tensors.iter().find(|t| t.name == names[0]) else {
            continue;
        };
        let Some(res) = &t.apr_dtype else { continue };
        let name = |d: Option<crate::quant::DType>| {
            d.map(|d| d.name().to_string())
                .unwrap_or_else(|| "rejects it".into())
        };
        out.push(
            Finding::new(
                &AMBIGUOUS_DTYPE,
                format!(
                    "dtype code {code} on {} (`{}`…): aprender reads {}, realizar reads {}; the byte size says {}",
                    crate::diag::count(names.len(), "tensor"),
                    names[0],
                    name(res.aprender),
                    name(res.realizar),
                    res.dtype
                ),
            )
            .tensor(names[0])
            .span(t.record)
            .help("use an unambiguous code (F32 0, F16 1, Q4_K 12, Q6_K 14, BF16 30, APR_Q4 128, APR_Q8 129)"),
        );
    }
}

fn tensor_shapes(view: &ModelView, out: &mut Vec<Finding>) {
    let Some((shapes, metadata_span)) = view.tensor_shapes() else {
        return;
    };
    for (name, v) in shapes {
        let dims: Option<Vec<u64>> = v
            .as_array()
            .and_then(|arr| arr.iter().map(|x| x.as_u64()).collect());
        match (view.tensor(&name), dims) {
            (None, _) => out.push(
                Finding::new(&TENSOR_SHAPES, format!("`tensor_shapes` names `{name}`, which the index lacks"))
                    .tensor(&name)
                    .at_key("tensor_shapes", Some(metadata_span))
                    .help("regenerate `tensor_shapes` from the index"),
            ),
            (Some(t), Some(d)) if d != t.dims => out.push(
                Finding::new(&TENSOR_SHAPES, format!("`tensor_shapes` says `{name}` is {}; the index says {}", crate::diag::fmt_dims(&d), crate::diag::fmt_dims(&t.dims)))
                    .tensor(&name)
                    .at_key("tensor_shapes", Some(metadata_span))
                    .help("regenerate `tensor_shapes` from the index (and check which of the two the converter got right)"),
            ),
            (Some(_), None) => out.push(
                Finding::new(&TENSOR_SHAPES, format!("`tensor_shapes` entry for `{name}` is not an array of integers"))
                    .tensor(&name)
                    .at_key("tensor_shapes", Some(metadata_span))
                    .help("regenerate `tensor_shapes` from the index"),
            ),
            _ => {}
        }
    }
}

fn tied(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let Some(arch) = r.arch else { return };
    let Some(role) = arch.roles.iter().find(|ro| ro.tied_to.is_some()) else {
        return;
    };
    let Some(target) = role.tied_to.as_deref() else {
        return;
    };
    let head = r.find(&role.key, None).map(|i| &view.tensors[i]);
    let flag = view.config.tied.as_ref().map(|v| v.value);
    match head {
        Some(t) if t.data.len == 0 && t.n_elems() > 0 => out.push(
            Finding::new(&TIED_EMBEDDING, format!("`{}` has dims {} but 0 bytes: a tied-embedding placeholder", t.name, crate::diag::fmt_dims(&t.dims)))
                .tensor(&t.name)
                .span(t.record)
                .help(format!("write `{}` as a copy of the `{target}` tensor with `tied_embeddings: true`, or drop it", t.name)),
        ),
        None if view.has_tied_flag() && flag != Some(true) && r.find(target, None).is_some() => {
            let key = view.tied_flag_key().unwrap_or("tied_embeddings");
            out.push(
                Finding::new(&TIED_EMBEDDING, format!("no `{}` tensor and no `{key}: true`: loaders must guess that the output is tied", role.key))
                    .help(format!("set `{key}: true` (or write the output tensor)")),
            )
        }
        Some(t) if view.tie_replaces_stored_head() && flag == Some(true) => {
            let key = view.tied_flag_key().unwrap_or("tied_embeddings");
            let emb = r.find(target, None).map_or(target.to_owned(), |i| view.tensors[i].name.clone());
            out.push(
                Finding::new(&TIED_EMBEDDING, format!("`{}` is stored but `{key}` is true: the loader ties the output to `{emb}` and never reads these bytes", t.name))
                    .tensor(&t.name)
                    .span(t.record)
                    .help(format!("drop `{}`, or set `{key}: false` if it is the model's own output matrix", t.name)),
            )
        }
        _ => {}
    }
}

fn tokenizer(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let tk = &view.tokenizer;
    let emb_rows = r
        .find("token_embd", None)
        .and_then(|i| view.tensors[i].dims.first().copied());
    if let (Some(n), Some(rows)) = (tk.n_tokens, emb_rows)
        && n > rows
    {
        out.push(
            Finding::new(&TOKENIZER_SIZE, format!("the tokenizer has {n} tokens but the embedding has {rows} rows: ids ≥ {rows} index past it"))
                .help("write the tokenizer of the model these weights belong to"),
        );
    }
    for (what, id) in [("BOS", tk.bos), ("EOS", tk.eos)] {
        if let (Some(id), Some(n)) = (id, tk.n_tokens.or(emb_rows))
            && id >= n
        {
            out.push(
                Finding::new(
                    &TOKENIZER_SIZE,
                    format!("{what} token id {id} is outside the vocabulary of {n}"),
                )
                .help("write the special token ids of this tokenizer"),
            );
        }
    }
}

/// One stated config value the tensor shapes contradict (`num_heads` = 8 where every K/V projection
/// was made with 4): one finding that leads with the metadata fix, ahead of the per-tensor
/// shape mismatches it explains.
fn config_contradicts_shapes(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let fits = super::config_fit::fits(view, r);
    let Some(first) = fits.first() else {
        return;
    };
    let bad: Vec<&crate::model::TensorView> = view
        .tensors
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            r.role_of(*i)
                .and_then(|(role, _)| r.expected_dims(role).ok())
                .is_some_and(|e| e != t.dims && !t.dims.iter().rev().eq(e.iter()))
        })
        .map(|(_, t)| t)
        .collect();
    let example = bad
        .first()
        .map(|t| format!(" (e.g. `{}` {})", t.name, crate::diag::fmt_dims(&t.dims)))
        .unwrap_or_default();
    let help = super::config_fit::config_help(&fits, false);
    let mut f = Finding::new(
        &CONFIG_INCONSISTENT,
        format!(
            "the tensor shapes contradict the config: {} tensor{}{example} fit the rules only with {}",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            fits.iter()
                .map(|f| format!("`{}` = {} (not {})", f.key, f.shapes, f.stated))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    )
    .help_from(crate::diag::HelpFrom::ConfigFits, help);
    let value = match first.sym {
        "hidden" => view.config.hidden.as_ref(),
        "n_head" => view.config.heads.as_ref(),
        "n_head_kv" => view.config.kv_heads.as_ref(),
        "head_dim" => view.config.head_dim.as_ref(),
        "vocab" => view.config.vocab.as_ref(),
        _ => view.config.ffn.as_ref(),
    };
    if let Some(v) = value {
        f = f.at_key(v.key.as_str(), v.span);
    }
    out.push(f);
}
