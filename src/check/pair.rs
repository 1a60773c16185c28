//! Pair checks: the file under test (APR) against its reference (GGUF), role by role and key by
//! key, before any tensor data is read: the same roles on both sides, canonical dims equal per role,
//! dtypes compatible (and whether bytes can be compared directly), every config value equal, rope
//! type against the row order the rules expect, and tokenizer agreement.

use serde_json::json;

use crate::diag::{Finding, HelpFrom, Lint, fmt_dims, fmt_float};
use crate::model::{ModelView, RopeType};
use crate::rules::Resolved;

use crate::diag::lint;

lint!(ARCH_DIFFERS, "APRL-M020", "metadata-mismatch", Error, "the two files name different architectures",
"What it catches: the file under test and the reference select different rule sets (qwen2 vs llama).
Why it matters: nothing else can be compared role by role.
How to fix: pair the APR file with the GGUF it was converted from, or fix the architecture key.
Precedent: —");

lint!(ROLE_ONE_SIDE, "APRL-M021", "missing-tensor", Error, "retired, never emitted: replaced by APRL-M030 (missing-tensor) and APRL-M031 (unexpected-tensor)",
"RETIRED: this code is no longer emitted. It concluded two bug classes at run time; each now has its own code: APRL-M030 (missing-tensor) and APRL-M031 (unexpected-tensor).
What it catches: nothing any more. It used to flag a role (with its layer) present in one file of the pair only.
Why it matters: a code keeps one class, so SARIF rule metadata, `-A <class>`, JSON and `explain` agree.
How to fix: read APRL-M030 or APRL-M031; `-D/-W/-A APRL-M021` still applies to both.
Precedent: aprender #194.");

lint!(DIMS_DIFFER, "APRL-L010", "dims-reversed", Error, "retired, never emitted: replaced by APRL-L011 (dims-reversed) and APRL-L012 (shape-mismatch)",
"RETIRED: this code is no longer emitted. It concluded two bug classes at run time; each now has its own code: APRL-L011 (dims-reversed) and APRL-L012 (shape-mismatch).
What it catches: nothing any more. It used to flag a role whose canonical dims differ between the two files.
Why it matters: a code keeps one class, so SARIF rule metadata, `-A <class>`, JSON and `explain` agree.
How to fix: read APRL-L011 or APRL-L012; `-D/-W/-A APRL-L010` still applies to both.
Precedent: aprender GH-186/187/188.");

lint!(ROLE_MISSING, "APRL-M030", "missing-tensor", Error, "a role of the reference is missing from the file under test",
"What it catches: a role (with its layer) that the reference has and the file under test lacks; the finding names the tensor expected, in the file under test's own naming scheme (the rules' name template), and its layer.
Why it matters: the converter dropped a weight; loaders zero-fill what is missing, and the model runs and produces garbage.
How to fix: fix the converter's name mapping (a missing `model.` prefix is the usual cause), or write the tensor.
Precedent: aprender #194 (100 of 291 tensors missing), GH-190.");

lint!(ROLE_EXTRA, "APRL-M031", "unexpected-tensor", Warning, "a role of the file under test is not in the reference",
"What it catches: a role (with its layer) that the file under test has and its reference lacks (a tied output synthesized from the reference's embedding is not counted).
Why it matters: the converter invented a weight, or the two files are not a conversion pair; nothing can be compared for it.
How to fix: drop it, or check that the reference is the file this one was converted from.
Precedent: —");

lint!(DIMS_REVERSED, "APRL-L011", "dims-reversed", Error, "a role's dims are the reverse of the reference's",
"What it catches: the same role with exactly reversed canonical dims in the two files (e.g. [hidden, vocab] against [vocab, hidden]).
Why it matters: a correct conversion keeps the canonical [out, in] dims (GGUF `ne` reversed equals the APR dims); a reversed shape over the same bytes makes the loader read every row at the wrong place.
How to fix: reverse the dims and keep the bytes.
Precedent: aprender GH-186/187/188.");

lint!(DIMS_MISMATCH, "APRL-L012", "shape-mismatch", Error, "a role's dims differ from the reference's and are not a reversal",
"What it catches: the same role with canonical dims that differ between the two files other than by reversal: a padded or trimmed vocabulary, a wrong head count, a fused QKV split wrongly.
Why it matters: the loader refuses the file or multiplies mismatched matrices.
How to fix: fix the converter's shape arithmetic (`apr-lint rules --arch <arch>` shows the formulas).
Precedent: llama.cpp `check_tensor_dims`, mlxcel PR #928.");

lint!(DTYPE_NOTE, "APRL-M022", "value-mismatch", Info, "dtypes differ: values will be compared within the quantization tolerance",
"What it catches: roles stored in different dtypes on the two sides (APR F32 vs GGUF Q4_K, a re-quantization).
Why it matters: bytes cannot be compared directly; the numeric stage compares dequantized values with the rule set's per-dtype tolerance.
How to fix: nothing, if the re-quantization was intended.
Precedent: —");

lint!(CONFIG_DIFFERS, "APRL-M023", "metadata-mismatch", Error, "a config value differs between the files",
"What it catches: hidden, layers, heads, kv heads, head_dim, vocab, ffn, rope θ, RoPE context scaling (GGUF `rope.scaling.*`, APR `rope_scaling`), rms eps or the tied flag disagreeing between the file under test and its reference.
Why it matters: the loader builds the model from these numbers: a wrong rope θ only shows at far positions, a wrong eps shifts every norm.
How to fix: copy the reference's value.
Precedent: aprender CORRECTNESS-011, F-REGR-231 (`eps`); llama.cpp PR #2773 (rope base).");

lint!(ROPE_ORDER, "APRL-M024", "rope-permuted", Info, "the APR rope type implies a Q/K row order the numbers must confirm",
"What it catches: a llama-family APR whose declared rope type needs Hugging Face (un-permuted) Q/K rows while its GGUF reference holds llama.cpp's permuted rows, or the other way round.
Why it matters: both are legitimate if the rows match the rotation; the numeric stage checks the rows.
How to fix: nothing if the numeric stage agrees; otherwise permute the rows or change `rope_type`.
Precedent: llama.cpp #2376, transformers #31766.");

lint!(TOKENIZER_DIFFERS, "APRL-M025", "tokenizer-mismatch", Error, "the two files carry different tokenizers",
"What it catches: a different vocabulary size, BOS/EOS ids, token strings or merges.
Why it matters: the same prompt becomes different ids: every comparison after the embedding is meaningless, and generation emits the wrong text.
How to fix: copy the reference's tokenizer into the converted file.
Precedent: aprender #1623, PR #1105.");

lint!(PLACEHOLDER_HEAD, "APRL-M032", "tied-embedding", Error, "lm_head is a 0-byte placeholder and the pair does not declare a tie",
"What it catches: an output matrix (`lm_head.weight`) recorded with its full [vocab, hidden] dims and 0 bytes, when the reference has its own output matrix, or the file under test does not declare the tie (`tied_embeddings: true`). With a tied reference and the flag set, the placeholder stays a warning (APRL-M010).
Why it matters: the model computes its logits from nothing: a loader that does not tie reads zeros or whatever follows in the file, and with a distinct reference output matrix even a tying loader computes the wrong logits.
How to fix: copy the reference's output matrix into the file; if the reference is tied, write the embedding as the output matrix or drop it and set `tied_embeddings: true`.
Precedent: aprender #2309, #2441 (0-byte lm_head placeholders), PR #2209.");

pub static ALL: &[&Lint] = &[
    &ARCH_DIFFERS,
    &ROLE_ONE_SIDE,
    &DIMS_DIFFER,
    &DTYPE_NOTE,
    &CONFIG_DIFFERS,
    &ROPE_ORDER,
    &TOKENIZER_DIFFERS,
    &ROLE_MISSING,
    &ROLE_EXTRA,
    &DIMS_REVERSED,
    &DIMS_MISMATCH,
    &PLACEHOLDER_HEAD,
];

/// Compare `a` (under test) with `b` (reference). Returns the number of roles matched on both sides.
pub fn check(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    out: &mut Vec<Finding>,
) -> usize {
    let pa = a.path().display().to_string();
    let (Some(arch_a), Some(arch_b)) = (ra.arch, rb.arch) else {
        return 0;
    };
    if arch_a.arch != arch_b.arch {
        out.push(
            Finding::new(
                &ARCH_DIFFERS,
                format!(
                    "`{}` is {} but the reference is {}",
                    pa, arch_a.arch, arch_b.arch
                ),
            )
            .help("pair the APR file with the GGUF it was converted from"),
        );
        return 0;
    }
    config(a, ra, b, rb, &pa, out);
    rope_factors(a, ra, b, rb, &pa, out);
    // Roles on both sides.
    let mut matched = 0;
    let mut dtype_diffs: Vec<String> = Vec::new();
    for (ib, tb) in b.tensors.iter().enumerate() {
        let Some((role, layer)) = rb.role_of(ib) else {
            continue;
        };
        match ra.find(&role.key, layer) {
            None => {
                if role.key == ROPE_FREQS && llama3(a) {
                    continue; // the divisors come from A's `llama3` rope_scaling (probe-checked)
                }
                if role
                    .tied_to
                    .as_deref()
                    .is_some_and(|t| ra.find(t, None).is_some())
                    && a.config.tied.as_ref().is_some_and(|v| v.value)
                {
                    continue;
                }
                let expected = expected_name(ra, a, &role.key, layer);
                let mut f = Finding::new(
                    &ROLE_MISSING,
                    format!(
                        "`{}`{} is in the reference (`{}`) but not in `{pa}`{}",
                        role.key,
                        layer_txt(layer),
                        tb.name,
                        expected
                            .as_deref()
                            .map(|n| format!(" (expected `{n}`)"))
                            .unwrap_or_default()
                    ),
                );
                if let Some(n) = expected {
                    f = f.tensor(n);
                }
                out.push(
                    f.layer(layer)
                        .file(a.path())
                        .help("fix the converter's name mapping"),
                );
            }
            Some(ia) => {
                matched += 1;
                let ta = &a.tensors[ia];
                if ta.dims != tb.dims && ta.data.len != 0 {
                    let rev: Vec<u64> = ta.dims.iter().rev().copied().collect();
                    let reversed = rev == tb.dims;
                    let f = Finding::new(
                        if reversed {
                            &DIMS_REVERSED
                        } else {
                            &DIMS_MISMATCH
                        },
                        format!(
                            "`{}` dims {} differ from the reference's {} (`{}`)",
                            ta.name,
                            fmt_dims(&ta.dims),
                            fmt_dims(&tb.dims),
                            tb.name
                        ),
                    )
                    .tensor(&ta.name)
                    .layer(layer)
                    .span(ta.dims_span)
                    .file(a.path())
                    .help(if reversed {
                        "reverse the dims and keep the bytes"
                    } else {
                        "fix the converter's shape arithmetic"
                    });
                    out.push(f);
                }
                if ta.dtype != tb.dtype && dtype_diffs.len() < 1000 {
                    dtype_diffs.push(format!("{} {}→{}", role.key, tb.dtype, ta.dtype));
                }
            }
        }
    }
    for (ia, ta) in a.tensors.iter().enumerate() {
        let Some((role, layer)) = ra.role_of(ia) else {
            continue;
        };
        if rb.find(&role.key, layer).is_none() {
            if role.key == ROPE_FREQS && llama3(b) {
                continue;
            }
            if role.tied_to.is_some()
                && rb
                    .find(role.tied_to.as_deref().unwrap_or(""), None)
                    .is_some()
            {
                continue; // lm_head synthesized from a tied embedding (checked numerically).
            }
            let f = Finding::new(
                &ROLE_EXTRA,
                format!(
                    "`{}`{} (`{}`) is in `{pa}` but not in the reference",
                    role.key,
                    layer_txt(layer),
                    ta.name
                ),
            )
            .tensor(&ta.name)
            .layer(layer)
            .span(ta.record)
            .file(a.path())
            .help("drop it, or check that the reference is the file this one was converted from");
            out.push(f);
        }
    }
    if !dtype_diffs.is_empty() {
        dtype_diffs.sort();
        dtype_diffs.dedup();
        out.push(
            Finding::new(&DTYPE_NOTE, format!("{} role dtypes differ between the files ({}{}); values are compared within the rules' tolerance", dtype_diffs.len(), dtype_diffs.iter().take(4).cloned().collect::<Vec<_>>().join(", "), if dtype_diffs.len() > 4 { ", …" } else { "" }))
                .file(a.path())
                .help("nothing to do if the re-quantization was intended"),
        );
    }
    rope_order(a, ra, b, rb, out);
    tokenizer(a, b, out);
    placeholder_head(a, ra, b, rb, out);
    matched
}

/// A 0-byte output matrix with full dims is a tie only when the reference is tied too and the file
/// under test declares it; otherwise the logits come from nothing. Replaces the per-file warning.
fn placeholder_head(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    out: &mut Vec<Finding>,
) {
    let Some(arch) = ra.arch else { return };
    let Some(role) = arch.roles.iter().find(|r| r.tied_to.is_some()) else {
        return;
    };
    let Some(t) = ra.find(&role.key, None).map(|i| &a.tensors[i]) else {
        return;
    };
    if t.data.len != 0 || t.n_elems() == 0 {
        return;
    }
    let reference_head = rb.find(&role.key, None).map(|i| &b.tensors[i]);
    let declared = a.config.tied.as_ref().is_some_and(|v| v.value);
    let (why, help) = match (reference_head, declared) {
        (None, true) => return,
        (Some(h), _) => (
            format!(
                "the reference has its own output matrix `{}` ({}, {:?})",
                h.name, h.dtype, h.dims
            ),
            format!(
                "copy the reference's `{}` into `{}`; do not tie",
                h.name, t.name
            ),
        ),
        (None, false) => (
            format!(
                "the reference is tied but `{}` does not declare the tie (no `tied_embeddings: true`)",
                a.path().display()
            ),
            format!(
                "set `tied_embeddings: true`, or write `{}` as a copy of the embedding",
                t.name
            ),
        ),
    };
    let path = a.path().display().to_string();
    out.retain(|f| {
        !(f.code == crate::check::metadata::TIED_EMBEDDING.code
            && f.tensor.as_deref() == Some(t.name.as_str())
            && f.file.as_deref() == Some(path.as_str()))
    });
    out.push(
        Finding::new(
            &PLACEHOLDER_HEAD,
            format!(
                "`{}` has dims {:?} but 0 bytes, and {why}: the logits are computed from nothing",
                t.name, t.dims
            ),
        )
        .tensor(&t.name)
        .span(t.record)
        .file(a.path())
        .help(help),
    );
}

/// The name a role would have in `v`, in its own naming scheme (the rules' first template for its
/// format), at `layer`.
fn expected_name(r: &Resolved<'_>, v: &ModelView, key: &str, layer: Option<u32>) -> Option<String> {
    let role = r.arch?.role(key)?;
    role.templates(v.naming_schemes())
        .next()
        .map(|t| t.instantiate(layer))
}

fn layer_txt(l: Option<u32>) -> String {
    l.map(|l| format!(" (layer {l})")).unwrap_or_default()
}

fn config(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    pa: &str,
    out: &mut Vec<Finding>,
) {
    use super::config_fit::{config_help, fits, shapes_agree_on, tensor_help};
    let (ca, cb) = (&a.config, &b.config);
    let ints = [
        ("hidden size", "hidden", &ca.hidden, &cb.hidden),
        ("layer count", "n_layer", &ca.layers, &cb.layers),
        ("head count", "n_head", &ca.heads, &cb.heads),
        ("KV head count", "n_head_kv", &ca.kv_heads, &cb.kv_heads),
        ("head_dim", "head_dim", &ca.head_dim, &cb.head_dim),
        ("vocabulary size", "vocab", &ca.vocab, &cb.vocab),
        ("feed-forward width", "ffn", &ca.ffn, &cb.ffn),
    ];
    let (fa, fb) = (fits(a, ra), fits(b, rb));
    for (what, sym, x, y) in ints {
        if let (Some(x), Some(y)) = (x, y)
            && x.value != y.value
        {
            // Two derived values differ because what they derive from does (reported there).
            if x.key.starts_with("derived") && y.key.starts_with("derived") {
                continue;
            }
            // Which side do the tensors agree with? A reference that contradicts its own
            // tensors must not make a correct file look wrong.
            let shapes_a = shapes_agree_on(a, ra, sym, &fa);
            let shapes_b = shapes_agree_on(b, rb, sym, &fb);
            let (msg_tail, help) = if shapes_a == Some(y.value) {
                // The reference settles which of the file's own candidate fixes is right.
                let one: Vec<_> = fa.iter().filter(|f| f.sym == sym).cloned().collect();
                if fa.len() > 1 && one.len() == 1 {
                    let path = a.path().display().to_string();
                    for f in out.iter_mut().filter(|f| f.file.as_deref() == Some(&path)) {
                        match f.help_from {
                            Some(HelpFrom::ConfigFits) => f.help = config_help(&one, true),
                            Some(HelpFrom::ShapeFits) => f.help = tensor_help(&one),
                            None => {}
                        }
                    }
                }
                (
                    String::new(),
                    format!(
                        "set `{}` to {} (the reference and the tensor shapes agree on {})",
                        x.key, y.value, y.value
                    ),
                )
            } else if shapes_b == Some(x.value) && shapes_a != Some(y.value) {
                (
                    format!(
                        "; the reference contradicts its own tensor shapes, which agree on {}",
                        x.value
                    ),
                    format!(
                        "keep `{}` = {}: fix the reference's `{}` (or pair the file this one was converted from)",
                        x.key, x.value, y.key
                    ),
                )
            } else {
                (String::new(), format!("set `{}` to {}", x.key, y.value))
            };
            let mut f = Finding::new(
                &CONFIG_DIFFERS,
                format!(
                    "{what}: `{}` = {} in `{pa}`, `{}` = {} in the reference{msg_tail}",
                    x.key, x.value, y.key, y.value
                ),
            )
            .help(help)
            .file(a.path())
            .evidence(json!({"apr": x.value, "reference": y.value}));
            f = f.at_key(x.key.as_str(), x.span);
            out.push(f);
        }
    }
    let floats = [
        ("rope θ", &ca.rope_theta, &cb.rope_theta, 1e-6),
        ("rms eps", &ca.rms_eps, &cb.rms_eps, 1e-3),
    ];
    for (what, x, y, rel) in floats {
        if let (Some(x), Some(y)) = (x, y)
            && (x.value - y.value).abs() > rel * y.value.abs().max(f64::MIN_POSITIVE)
        {
            let (xv, yv) = (fmt_float(x.value), fmt_float(y.value));
            let mut f = Finding::new(
                &CONFIG_DIFFERS,
                format!(
                    "{what}: `{}` = {xv} in `{pa}`, `{}` = {yv} in the reference",
                    x.key, y.key
                ),
            )
            .help(format!("set `{}` to {yv}", x.key))
            .file(a.path())
            .evidence(json!({"apr": x.value, "reference": y.value}));
            f = f.at_key(x.key.as_str(), x.span);
            out.push(f);
        }
    }
    rope_scaling(a, b, pa, out);
}

/// The role of Llama 3's per-pair RoPE frequency divisors (rules: `rope_freqs`).
const ROPE_FREQS: &str = "rope_freqs";

/// Hugging Face's `llama3` RoPE scaling: the same divisors as `rope_freqs.weight`, as a formula.
/// APR only (llama.cpp refuses that type in a GGUF); a factor of 1 divides by nothing.
fn llama3(v: &ModelView) -> bool {
    v.llama3_scaling().is_some_and(|s| s.factor != 1.0)
}

/// One file has Llama 3 frequency divisors only as a `llama3` `rope_scaling` and the other has
/// none at all (no tensor, no such scaling). The tensor on one side without the other is the
/// role check's `APRL-M030`; the values are compared by the weight stage and the probe.
fn rope_factors(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    pa: &str,
    out: &mut Vec<Finding>,
) {
    let has = |v: &ModelView, r: &Resolved<'_>| llama3(v) || r.find(ROPE_FREQS, None).is_some();
    let msg = if llama3(a) && !has(b, rb) {
        format!(
            "`{pa}` records Hugging Face `llama3` RoPE scaling (per-pair frequency divisors) and the reference has neither those nor a `rope_freqs.weight`: llama.cpp runs the reference with plain RoPE"
        )
    } else if llama3(b) && !has(a, ra) {
        format!(
            "the reference records Hugging Face `llama3` RoPE scaling (per-pair frequency divisors) and `{pa}` has neither those nor a `rope_freqs.weight`: its loader runs plain RoPE"
        )
    } else {
        return;
    };
    let mut f = Finding::new(&CONFIG_DIFFERS, msg)
        .help("convert again with the frequency factors (llama.cpp's converter writes `rope_freqs.weight` for `llama3`; ik_llama.cpp PR #402 fixed a converter that left it out)")
        .file(a.path());
    if let Some(s) = &a.config.rope_scaling {
        f = f.at_key(s.key.as_str(), s.span);
    }
    out.push(f);
}

/// RoPE context scaling: llama.cpp stretches the rotation by what the GGUF's `rope.scaling.*` keys
/// say; a converted file that records nothing (apr-v2 has no typed key) or something else rotates
/// differently at every position past 0.
fn rope_scaling(a: &ModelView, b: &ModelView, pa: &str, out: &mut Vec<Finding>) {
    fn eff(
        v: &ModelView,
    ) -> Option<&crate::model::config::ConfigValue<crate::model::config::RopeScaling>> {
        v.config
            .rope_scaling
            .as_ref()
            .filter(|s| s.value.is_effective())
    }
    let (x, y) = (eff(a), eff(b));
    let same = |p: &crate::model::config::RopeScaling, q: &crate::model::config::RopeScaling| {
        p.kind == q.kind
            && (p.factor - q.factor).abs() <= 1e-6 * q.factor.abs()
            && (p.attn_factor - q.attn_factor).abs() <= 1e-6 * q.attn_factor.abs()
            && (p.kind != "yarn" || p.original_context == q.original_context)
    };
    let (msg, help, span) = match (x, y) {
        (None, None) => return,
        (Some(x), Some(y)) if same(&x.value, &y.value) => return,
        (None, Some(y))
            if y.value.attn_factor != 1.0
                && !a.records_rope_attn_factor() =>
        (
            format!("the reference stretches RoPE ({}, `{}`) and `{pa}` records no RoPE scaling: its loader rotates unscaled", y.value.describe(), y.key),
            format!("the reference multiplies every rotated Q and K value by `rope.scaling.attn_factor` {}, and APR metadata has no key for it: loaders of the converted file cannot reproduce that rotation", fmt_float(y.value.attn_factor)),
            None,
        ),
        (None, Some(y)) => (
            format!("the reference stretches RoPE ({}, `{}`) and `{pa}` records no RoPE scaling: its loader rotates unscaled, so every position past 0 is rotated by other angles", y.value.describe(), y.key),
            format!("record the reference's scaling in the APR metadata, e.g. `\"rope_scaling\": {{\"rope_type\": \"{}\", \"factor\": {}{}}}`", y.value.kind, fmt_float(y.value.factor), match (y.value.kind.as_str(), y.value.original_context) {("yarn", Some(n)) => format!(", \"original_max_position_embeddings\": {n}"), _ => String::new()}),
            None,
        ),
        (Some(x), None) => (
            format!("`{pa}` stretches RoPE ({}, `{}`) and the reference does not", x.value.describe(), x.key),
            "drop the scaling from the converted file, or check that the reference is the file it was converted from".to_owned(),
            x.span,
        ),
        (Some(x), Some(y)) => (
            format!("RoPE scaling: {} in `{pa}` (`{}`), {} in the reference (`{}`)", x.value.describe(), x.key, y.value.describe(), y.key),
            if y.value.attn_factor != x.value.attn_factor && !a.records_rope_attn_factor() {
                format!("the reference multiplies every rotated Q and K value by `rope.scaling.attn_factor` {}, and APR metadata has no key for it: loaders of the converted file cannot reproduce that rotation", fmt_float(y.value.attn_factor))
            } else {
                format!("copy the reference's scaling ({})", y.value.describe())
            },
            x.span,
        ),
    };
    let mut f = Finding::new(&CONFIG_DIFFERS, msg)
        .help(help)
        .file(a.path())
        .evidence(json!({
            "apr": x.map(|s| s.value.describe()),
            "reference": y.map(|s| s.value.describe()),
        }));
    if let (Some(x), Some(_)) = (x, span) {
        f = f.at_key(x.key.as_str(), span);
    }
    out.push(f);
}

/// What rotation each side will apply, against the Q/K row order each side holds.
fn rope_order(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    out: &mut Vec<Finding>,
) {
    let Some(arch) = ra.arch else { return };
    let _ = rb;
    let declared = a
        .config
        .rope_type
        .as_ref()
        .and_then(|v| RopeType::from_code(v.value));
    let reference_rope = b.rope_rotation(arch.rope_type);
    if let Some(d) = declared
        && d != reference_rope
    {
        if arch.gguf_qk_order == RopeType::Norm && d == RopeType::Neox {
            out.push(
                Finding::new(
                    &ROPE_ORDER,
                    format!("`{}` declares rope_type {} (NEOX): legitimate only if its Q/K rows are in Hugging Face order, i.e. un-permuted from the reference's", a.path().display(), d.code()),
                )
                .file(a.path())
                .help("the numeric stage checks the Q/K rows; nothing to do if it passes"),
            );
        } else if arch.gguf_qk_order == RopeType::Norm && d == RopeType::Norm {
            // A reference that rotates NEOX (a Hugging Face checkpoint) against a file in
            // llama.cpp's permuted order: the converter's own layout, right if the rows are permuted.
            out.push(
                Finding::new(
                    &ROPE_ORDER,
                    format!("`{}` declares rope_type {} (NORM) and the reference rotates NEOX: legitimate only if its Q/K rows are in llama.cpp's permuted order, i.e. permuted from the reference's", a.path().display(), d.code()),
                )
                .file(a.path())
                .help("the numeric stage checks the Q/K rows; nothing to do if it passes"),
            );
        } else {
            let mut f = Finding::new(
                &CONFIG_DIFFERS,
                format!("`{}` declares rope_type {} ({}), the reference rotates {} and the {} rules expect {}", a.path().display(), d.code(), d.as_str(), reference_rope.as_str(), arch.arch, reference_rope.as_str()),
            )
            .file(a.path())
            .help(format!("set `rope_type` to {}", reference_rope.code()));
            if let Some(v) = &a.config.rope_type {
                f = f.at_key(v.key.as_str(), v.span);
            }
            out.push(f);
        }
    }
}

fn tokenizer(a: &ModelView, b: &ModelView, out: &mut Vec<Finding>) {
    let (ta, tb) = (&a.tokenizer, &b.tokenizer);
    let mut diffs = Vec::new();
    let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "none".into());
    if ta.n_tokens.is_some() && tb.n_tokens.is_some() && ta.n_tokens != tb.n_tokens {
        diffs.push(format!(
            "vocabulary {} vs {} tokens",
            opt(ta.n_tokens),
            opt(tb.n_tokens)
        ));
    }
    if ta.bos.is_some() && tb.bos.is_some() && ta.bos != tb.bos {
        diffs.push(format!("BOS {} vs {}", opt(ta.bos), opt(tb.bos)));
    }
    if ta.eos.is_some() && tb.eos.is_some() && ta.eos != tb.eos {
        diffs.push(format!("EOS {} vs {}", opt(ta.eos), opt(tb.eos)));
    }
    if diffs.is_empty() && ta.n_tokens.is_some() && ta.n_tokens == tb.n_tokens {
        // Fingerprints first (no allocation); the lists only to name the first difference.
        if a.tokenizer_scan().tokens != b.tokenizer_scan().tokens {
            let (xa, xb) = (a.token_strings(), b.token_strings());
            let first = xa.iter().zip(&xb).position(|(x, y)| x != y);
            diffs.push(match first {
                Some(i) => format!("token {i} is {:?} vs {:?}", xa[i], xb[i]),
                None => "token lists differ".into(),
            });
        }
        if ta.n_merges.is_some() && tb.n_merges.is_some() {
            let (ma, mb) = (a.tokenizer_scan().merges, b.tokenizer_scan().merges);
            if ma != mb {
                diffs.push(format!("merges differ ({} vs {})", ma.1, mb.1));
            }
        }
    }
    if !diffs.is_empty() {
        out.push(
            Finding::new(
                &TOKENIZER_DIFFERS,
                format!(
                    "`{}` and the reference carry different tokenizers: {}",
                    a.path().display(),
                    diffs.join("; ")
                ),
            )
            .file(a.path())
            .help("copy the reference's tokenizer into the converted file"),
        );
    }
}
