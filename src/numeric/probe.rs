//! The layer-0 probe: both files, each with its own metadata, run the prompt's tokens through the
//! embedding, RMSNorm with `attn_norm`, Q/K/V (+ bias), and RoPE with each file's own θ and rope
//! type — at the prompt positions and at one far position, because RoPE-order and θ bugs are
//! invisible at position 0. Stages are compared one by one; a row order that the weight stage or the
//! declared rope types prove legitimate (a llama APR in Hugging Face order with NEOX) is undone first.
//!
//! Reads the embedding rows of the prompt's tokens, one norm vector and layer 0's Q/K/V weights:
//! never the rest of the model.

use crate::diag::{Finding, Lint, Severity};
use crate::model::{ModelView, RopeType};
use crate::numeric::Settings;
use crate::numeric::forward::permute;
use crate::numeric::forward::rope::Stretch;
use crate::numeric::stage::{self, Criterion, Stage, activation_cosine};
use crate::numeric::tokens::prompt_tokens;
use crate::rules::Resolved;

pub const FAR_POSITION: u64 = 4096;

pub static PROBE_DIVERGES_RETIRED: Lint = Lint {
    code: "APRL-N020",
    class: "value-mismatch",
    severity: Severity::Error,
    summary: "retired, never emitted: replaced by APRL-N030 (value-mismatch), APRL-N031 (metadata-mismatch), APRL-N032 (missing-tensor) and APRL-N033 (unexpected-tensor)",
    explain: "RETIRED: this code is no longer emitted. It concluded four bug classes at run time; each now has its own code: APRL-N030 (value-mismatch: the probe diverges), APRL-N031 (metadata-mismatch: a RoPE setting, θ or context scaling, differs), APRL-N032 (missing-tensor: Llama 3's RoPE frequency divisors were dropped) and APRL-N033 (unexpected-tensor: divisors the reference does not have).
What it catches: nothing any more. It used to flag the first stage of layer 0 where the two files' activations differ.
Why it matters: a code keeps one class, so SARIF rule metadata, `-A <class>`, JSON and `explain` agree.
How to fix: read APRL-N030 … APRL-N033; `-D/-W/-A APRL-N020` still applies to all four.
Precedent: llama.cpp PR #2773, ik_llama.cpp PR #402.",
};

pub static PROBE_DIVERGES: Lint = Lint {
    code: "APRL-N030",
    class: "value-mismatch",
    severity: Severity::Error,
    summary: "the layer-0 probe diverges between the two files",
    explain: "What it catches: the first stage of layer 0 (embedding, attn_norm, Q, K, V, Q/K after RoPE at the prompt positions or at a far position) where the two files' activations differ beyond the threshold, when no RoPE setting or tensor explains it (those are APRL-N031 … N033); also RoPE frequency divisors present on both sides with different values.
Why it matters: this is what the model computes; a divergence here means the converted file produces different text.
How to fix: read the stage: embedding → the embedding rows or the tokenizer; attn_norm → norm weight or eps; q/k/v → that projection's layout; only after RoPE → the rope type, the Q/K row order or Llama 3's `rope_freqs.weight` values (inverse frequencies stored instead of divisors).
Precedent: karpathy/llama2.c PR #286 (degenerates after ~20 tokens), aprender CORRECTNESS-011.",
};

pub static PROBE_ROPE_SETTING: Lint = Lint {
    code: "APRL-N031",
    class: "metadata-mismatch",
    severity: Severity::Error,
    summary: "the probe diverges after RoPE because a RoPE setting differs (θ or context scaling)",
    explain: "What it catches: Q and K that agree before RoPE while the rotated Q/K differ, with the two files' rope θ or RoPE context scaling (GGUF `rope.scaling.*`, APR `rope_scaling`) different; or a divergence only at the far position (θ).
Why it matters: position 0 is unrotated, so short tests pass; every later position is rotated by other angles.
How to fix: copy `rope_theta` and the RoPE scaling from the reference.
Precedent: llama.cpp PR #2773 (rope base), aprender CORRECTNESS-011.",
};

pub static PROBE_FACTORS_MISSING: Lint = Lint {
    code: "APRL-N032",
    class: "missing-tensor",
    severity: Severity::Error,
    summary: "the probe diverges after RoPE: Llama 3's RoPE frequency divisors were dropped",
    explain: "What it catches: Q and K that agree before RoPE while the rotated Q/K differ, with the reference dividing its rotary angles by Llama 3's frequency factors (`rope_freqs.weight` or a `llama3` `rope_scaling`) and the file under test having neither.
Why it matters: the converted model rotates with plain RoPE: it degrades beyond the original context and differs from the reference at every position past 0.
How to fix: copy `rope_freqs.weight` from the reference unchanged (F32, one divisor per rotary pair), or record the `llama3` `rope_scaling`.
Precedent: ik_llama.cpp PR #402, porting llama.cpp PR #9396 (the converter silently left out `rope_freqs.weight` of Llama-3.1-based models).",
};

pub static PROBE_FACTORS_EXTRA: Lint = Lint {
    code: "APRL-N033",
    class: "unexpected-tensor",
    severity: Severity::Error,
    summary: "the probe diverges after RoPE: the file divides its rotary angles by factors the reference does not have",
    explain: "What it catches: Q and K that agree before RoPE while the rotated Q/K differ, with the file under test dividing its rotary angles by frequency factors (`rope_freqs.weight` or a `llama3` `rope_scaling`) that the reference does not have.
Why it matters: the converted model rotates differently from its reference at every position past 0.
How to fix: drop the factors, or check that the reference is the file this one was converted from.
Precedent: ik_llama.cpp PR #402.",
};

pub static PROBE_ROPE: Lint = Lint {
    code: "APRL-N021",
    class: "rope-permuted",
    severity: Severity::Error,
    summary: "Q/K agree before RoPE but not after it",
    explain: "What it catches: projections that match while the rotated Q/K differ: the Q/K row order does not match the rope type the file declares (NORM needs llama.cpp's permuted rows, NEOX the Hugging Face order), or θ differs (then only the far position diverges).
Why it matters: position 0 is unrotated, so short tests pass; generation degrades after a few tokens.
How to fix: set `rope_type` to what the row order needs (HF order → 2, GGUF order → 0), or permute the rows; for θ copy `rope_theta` from the reference.
Precedent: llama.cpp #2376, transformers #31766, aprender CORRECTNESS-011.",
};

pub static PROBE_SKIPPED: Lint = Lint {
    code: "APRL-N022",
    class: "value-mismatch",
    severity: Severity::Warning,
    summary: "the probe could not run",
    explain: "What it catches: a probe that could not run: no tokenizer and no `--tokens`, missing layer-0 tensors, a dtype without values, an unknown config quantity.
Why it matters: the activations were not compared; other stages may still have compared weights.
How to fix: pass `--tokens 1,2,3`, or fix what the message names.
Precedent: —",
};

pub static PROBE_TOKENS: Lint = Lint {
    code: "APRL-N023",
    class: "tokenizer-mismatch",
    severity: Severity::Error,
    summary: "the two files tokenize the prompt differently",
    explain: "What it catches: the prompt's ids from the file under test's own tokenizer differ from the reference's.
Why it matters: the same text becomes a different input; the probe then runs on the reference's ids.
How to fix: copy the reference's tokenizer (vocabulary, merges, pre-tokenizer type, BOS handling).
Precedent: aprender #1623, PR #1105.",
};

pub static PROBE_BOS_POLICY: Lint = Lint {
    code: "APRL-N034",
    class: "tokenizer-mismatch",
    severity: Severity::Warning,
    summary: "the file under test does not record whether to add BOS, and the two tokenizations differ only by it",
    explain: "What it catches: a file under test with no BOS policy (no `tokenizer.add_bos_token`) whose prompt ids differ from the reference's only by the leading BOS token, vocabulary, merges and special ids agreeing. The probe runs with the reference's ids (the same BOS) on both sides.
Why it matters: a loader of the converted file must guess whether to prepend BOS; a wrong guess shifts every position and changes the output, most for short prompts.
How to fix: record the reference's policy in the metadata, e.g. `\"tokenizer.add_bos_token\": true`.
Precedent: llama.cpp `tokenizer.ggml.add_bos_token`; Hugging Face `add_bos_token` in tokenizer_config.json; aprender #1623.",
};

pub static ALL: &[&Lint] = &[
    &PROBE_DIVERGES_RETIRED,
    &PROBE_ROPE,
    &PROBE_SKIPPED,
    &PROBE_TOKENS,
    &PROBE_DIVERGES,
    &PROBE_ROPE_SETTING,
    &PROBE_FACTORS_MISSING,
    &PROBE_FACTORS_EXTRA,
    &PROBE_BOS_POLICY,
];

/// Layer-0 activations of one file. Matrices are row-major `(tokens, features)`.
#[derive(Clone, Debug)]
pub struct Activations {
    pub n_tokens: usize,
    pub embedding: Vec<f32>,
    pub attn_norm: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub q_rope: Vec<f32>,
    pub k_rope: Vec<f32>,
    /// The last token's Q/K rotated as if at `FAR_POSITION`.
    pub q_far: Vec<f32>,
    pub k_far: Vec<f32>,
    pub hidden: usize,
    pub q_dim: usize,
    pub kv_dim: usize,
    pub rope: RopeType,
    /// Per-pair RoPE frequency divisors (`rope_freqs.weight`, or from a `llama3` `rope_scaling`).
    pub rope_factors: Option<Vec<f32>>,
    pub rope_factors_source: &'static str,
    /// RoPE context scaling as applied.
    pub stretch: Stretch,
}

/// Run layer 0 of one file on `tokens`.
pub fn forward(view: &ModelView, r: &Resolved<'_>, tokens: &[u32]) -> Result<Activations, String> {
    if tokens.is_empty() {
        return Err("no tokens".into());
    }
    let m = crate::numeric::forward::Model::new(view, r)?;
    let n = tokens.len();
    let embedding = m.embed(tokens)?;
    let ai = m.attention_inputs(0, &embedding, n)?;
    let far = |x: &[f32], dim: usize| {
        let mut f = x[(n - 1) * dim..n * dim].to_vec();
        m.rope_at(&mut f, FAR_POSITION);
        f
    };
    Ok(Activations {
        n_tokens: n,
        hidden: embedding.len() / n.max(1),
        q_far: far(&ai.q, ai.q_dim),
        k_far: far(&ai.k, ai.kv_dim),
        embedding,
        attn_norm: ai.normed,
        q: ai.q,
        k: ai.k,
        v: ai.v,
        q_rope: ai.q_rope,
        k_rope: ai.k_rope,
        q_dim: ai.q_dim,
        kv_dim: ai.kv_dim,
        rope: m.rope_type(),
        rope_factors: m.rope_factors().map(<[f32]>::to_vec),
        rope_factors_source: m.rope_factors_source(),
        stretch: m.stretch(),
    })
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Probe {
    pub tokens: Vec<u32>,
    pub far_position: u64,
    /// Q/K rows of the file under test were put in the reference's order before comparing.
    pub unpermuted: bool,
    pub stages: Vec<Stage>,
}

/// Compare the two files' activations stage by stage.
pub fn compare(
    a: &Activations,
    b: &Activations,
    tokens: Vec<u32>,
    hd: usize,
    crit: &Criterion,
) -> Probe {
    // A file whose rotation differs from the reference's holds the other row order (if it is right);
    // put its Q/K rows in the reference's order so the stages line up.
    let unpermuted = a.rope != b.rope;
    let fix = |x: &[f32], dim: usize| -> Vec<f32> {
        if unpermuted {
            permute::to_other_order(x, dim, hd, a.rope)
        } else {
            x.to_vec()
        }
    };
    let n = a.n_tokens;
    let mut stages = Vec::new();
    let mut push = |name: &'static str,
                    layer: Option<u32>,
                    x: &[f32],
                    y: &[f32],
                    dims: Vec<usize>,
                    hd_other: Option<usize>| {
        let mut st = crit.judge(name, layer, (x, y), (dims.clone(), dims), |m| {
            crit.for_stage(m)
        });
        if !st.pass
            && let Some(d) = hd_other
        {
            // The other row order: permute the file-under-test's rows both ways and retry.
            for perm in [permute::hf_to_gguf(x, d), permute::gguf_to_hf(x, d)] {
                st.passes_in_other_row_order |= crit.passes(&stage::metrics(&perm, y));
            }
        }
        stages.push(st);
    };
    push(
        "embedding",
        None,
        &a.embedding,
        &b.embedding,
        vec![n, a.hidden],
        None,
    );
    push(
        "attn_norm",
        Some(0),
        &a.attn_norm,
        &b.attn_norm,
        vec![n, a.hidden],
        None,
    );
    push(
        "q",
        Some(0),
        &fix(&a.q, a.q_dim),
        &b.q,
        vec![n, a.q_dim],
        Some(hd),
    );
    push(
        "k",
        Some(0),
        &fix(&a.k, a.kv_dim),
        &b.k,
        vec![n, a.kv_dim],
        Some(hd),
    );
    push("v", Some(0), &a.v, &b.v, vec![n, a.kv_dim], None);
    push(
        "q_rope",
        Some(0),
        &fix(&a.q_rope, a.q_dim),
        &b.q_rope,
        vec![n, a.q_dim],
        None,
    );
    push(
        "k_rope",
        Some(0),
        &fix(&a.k_rope, a.kv_dim),
        &b.k_rope,
        vec![n, a.kv_dim],
        None,
    );
    push(
        "q_rope_far",
        Some(0),
        &fix(&a.q_far, a.q_dim),
        &b.q_far,
        vec![1, a.q_dim],
        None,
    );
    push(
        "k_rope_far",
        Some(0),
        &fix(&a.k_far, a.kv_dim),
        &b.k_far,
        vec![1, a.kv_dim],
        None,
    );
    Probe {
        tokens,
        far_position: FAR_POSITION,
        unpermuted,
        stages,
    }
}

/// Where two sets of rotary frequency divisors disagree: different lengths, or the first pair
/// whose values differ beyond F16 rounding. None when they agree.
pub fn divisors_mismatch(x: &[f32], y: &[f32]) -> Option<String> {
    if x.len() != y.len() {
        return Some(format!("{} divisors against {}", x.len(), y.len()));
    }
    x.iter()
        .zip(y)
        .enumerate()
        .find(|(_, (p, q))| ((**p - **q).abs() as f64) > 1e-3 * (**q as f64).abs())
        .map(|(i, (p, q))| format!("pair {i}: {p} against {q}"))
}

/// Whether two files' rotary frequency divisors differ: present in one only, or different.
fn factors_differ(a: Option<&[f32]>, b: Option<&[f32]>) -> bool {
    match (a, b) {
        (None, None) => false,
        (Some(x), Some(y)) => divisors_mismatch(x, y).is_some(),
        _ => true,
    }
}

/// What one file's RoPE is made of, for the probe's verdict after RoPE.
pub struct RopeSide<'a> {
    pub theta: f64,
    pub factors: Option<&'a [f32]>,
    /// "`rope_freqs.weight`" or "the `llama3` `rope_scaling`".
    pub factors_source: &'static str,
    pub stretch: Stretch,
    /// The context scaling as [`RopeScaling::describe`] puts it; None: not stretched.
    ///
    /// [`RopeScaling::describe`]: crate::model::config::RopeScaling::describe
    pub scaling: Option<String>,
}

/// Turn the first failing stage into a finding; `sides` are the file under test's RoPE and the
/// reference's.
pub fn finding(p: &Probe, a: &ModelView, sides: (&RopeSide<'_>, &RopeSide<'_>)) -> Option<Finding> {
    let (sa, sb) = sides;
    let thetas = (sa.theta, sb.theta);
    let first = p.stages.iter().find(|s| !s.pass)?;
    let theta_differs = (thetas.0 - thetas.1).abs() > 1e-6 * thetas.1.abs();
    let pre_ok = |name: &str| {
        p.stages
            .iter()
            .find(|s| s.stage == name)
            .is_some_and(|s| s.pass)
    };
    let ev = serde_json::json!({"stage": first.stage, "max_diff": first.max_diff, "mean_diff": first.mean_diff, "cosine": first.cosine, "criterion": first.criterion});
    if first.passes_in_other_row_order {
        return Some(
            Finding::new(
                &PROBE_ROPE,
                format!("layer-0 {} matches the reference only with its rows in the other RoPE order (cosine {:.4} as stored): the Q/K rows and the declared rope type disagree", first.stage, first.cosine),
            )
            .help("set `rope_type` to what the row order needs (HF order → 2 NEOX, llama.cpp order → 0 NORM), or permute the Q/K rows")
            .file(a.path())
            .layer(first.layer)
            .evidence(ev),
        );
    }
    let (lint, msg, help) = match first.stage {
        "q_rope" | "k_rope" | "q_rope_far" | "k_rope_far"
            if !sa.stretch.close_to(&sb.stretch) && pre_ok("q") && pre_ok("k") =>
        {
            let none = || "none".to_owned();
            let f = Finding::new(
                &PROBE_ROPE_SETTING,
                format!(
                    "layer-0 {} diverges after RoPE (cosine {:.4}) while Q and K agree before it: RoPE scaling is {} here and {} in the reference",
                    first.stage,
                    first.cosine,
                    sa.scaling.clone().unwrap_or_else(none),
                    sb.scaling.clone().unwrap_or_else(none)
                ),
            );
            return Some(
                f.help("record the reference's RoPE scaling (APR `rope_scaling`)")
                    .file(a.path())
                    .layer(Some(0))
                    .evidence(ev),
            );
        }
        "q_rope" | "k_rope" | "q_rope_far" | "k_rope_far"
            if factors_differ(sa.factors, sb.factors) && pre_ok("q") && pre_ok("k") =>
        {
            let (what, lint) = match (sa.factors, sb.factors) {
                (None, _) => (
                    format!(
                        "this file has no RoPE frequency divisors (no `rope_freqs.weight`, no `llama3` `rope_scaling`) while the reference divides its rotary angles by {}: the Llama 3 frequency factors were dropped",
                        sb.factors_source
                    ),
                    &PROBE_FACTORS_MISSING,
                ),
                (_, None) => (
                    format!(
                        "this file divides its rotary angles by {}, which the reference does not have",
                        sa.factors_source
                    ),
                    &PROBE_FACTORS_EXTRA,
                ),
                _ => (
                    format!(
                        "the divisors from {} differ from the reference's {} (inverse frequencies stored instead of divisors, or another model's factors)",
                        sa.factors_source, sb.factors_source
                    ),
                    &PROBE_DIVERGES,
                ),
            };
            let help = if sa.factors_source.contains("llama3") {
                "make the `llama3` `rope_scaling` (factor, low/high_freq_factor, original_max_position_embeddings) the one the reference was converted from"
            } else {
                "copy `rope_freqs.weight` from the reference unchanged (F32, one divisor per rotary pair)"
            };
            let f = Finding::new(
                lint,
                format!(
                    "layer-0 {} diverges after RoPE (cosine {:.4}) while Q and K agree before it: {what}",
                    first.stage, first.cosine
                ),
            );
            return Some(f.help(help).file(a.path()).layer(Some(0)).evidence(ev));
        }
        "q_rope" | "k_rope" | "q_rope_far" | "k_rope_far"
            if theta_differs && pre_ok("q") && pre_ok("k") =>
        {
            let f = Finding::new(
                &PROBE_ROPE_SETTING,
                format!(
                    "layer-0 {} diverges after RoPE (cosine {:.4}) with rope θ {} here and {} in the reference",
                    first.stage, first.cosine, thetas.0, thetas.1
                ),
            );
            return Some(
                f.help(format!("set `rope_theta` to {}", thetas.1))
                    .file(a.path())
                    .layer(Some(0))
                    .evidence(ev),
            );
        }
        "q_rope" | "k_rope" if pre_ok("q") && pre_ok("k") => (
            &PROBE_ROPE,
            format!(
                "layer-0 {} agrees before RoPE but not after it (cosine {:.4}): the Q/K row order does not match the declared rope type",
                first.stage, first.cosine
            ),
            "set `rope_type` to what the row order needs (HF order → 2 NEOX, llama.cpp order → 0 NORM), or permute the Q/K rows",
        ),
        "q_rope_far" | "k_rope_far" => {
            let f = Finding::new(
                &PROBE_ROPE_SETTING,
                format!(
                    "layer-0 {} diverges only at position {} (cosine {:.4}; the prompt positions agree): rope θ differs",
                    first.stage, p.far_position, first.cosine
                ),
            );
            return Some(
                f.help("copy `rope_theta` from the reference")
                    .file(a.path())
                    .layer(Some(0))
                    .evidence(ev),
            );
        }
        s => (
            &PROBE_DIVERGES,
            format!(
                "layer-0 probe diverges first at `{s}`: max_diff {:.3e}, cosine {:.4} ({})",
                first.max_diff, first.cosine, first.criterion
            ),
            "the weight findings name the tensor; the stage names where the model first computes something else",
        ),
    };
    Some(
        Finding::new(lint, msg)
            .help(help)
            .file(a.path())
            .layer(first.layer)
            .evidence(ev),
    )
}

/// The two tokenizations differ only by a leading BOS and the file under test records no BOS
/// policy: a warning naming the id (the probe runs with the reference's ids, so the same BOS).
fn bos_only(a: &ModelView, b: &ModelView, x: &[u32], y: &[u32]) -> Option<Finding> {
    if a.tokenizer.add_bos.is_some() || x == y {
        return None;
    }
    let (ta, tb) = (&a.tokenizer, &b.tokenizer);
    let bos = |v: &[u32], w: &[u32], id: Option<u64>| {
        id.filter(|&id| v.first().map(|&f| f as u64) == Some(id) && &v[1..] == w)
    };
    let (id, adds) = match (bos(y, x, tb.bos), bos(x, y, ta.bos)) {
        (Some(id), _) => (id, true),
        (None, Some(id)) => (id, false),
        (None, None) => return None,
    };
    let pa = a.path().display();
    let msg = if adds {
        format!(
            "`{pa}` does not record whether to add BOS; the reference's tokenizer adds BOS (id {id}), so the prompt gives {x:?} here and {y:?} in the reference; the probe runs with the reference's ids on both sides"
        )
    } else {
        format!(
            "`{pa}` does not record whether to add BOS and its tokenizer adds BOS (id {id}) by default while the reference's does not; the probe runs with the reference's ids on both sides"
        )
    };
    Some(
        Finding::new(&PROBE_BOS_POLICY, msg)
            .file(a.path())
            .help(format!(
                "record the reference's policy in the metadata: `\"tokenizer.add_bos_token\": {adds}`"
            ))
            .evidence(serde_json::json!({"apr_tokens": x, "reference_tokens": y, "bos": id, "reference_adds_bos": adds})),
    )
}

/// The probe stage of the main job: tokens, both forwards, the comparison, and its finding.
pub fn run(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    settings: &Settings,
    out: &mut Vec<Finding>,
) -> Option<Probe> {
    if settings.no_probe {
        return None;
    }
    let skipped = |out: &mut Vec<Finding>, why: String| {
        out.push(
            Finding::new(&PROBE_SKIPPED, format!("probe skipped: {why}"))
                .file(a.path())
                .help("pass `--tokens 1,2,3`, or fix what the message names"),
        );
    };
    let (Some(arch), Some(arch_b)) = (ra.arch, rb.arch) else {
        skipped(out, "no rule set for the architecture".into());
        return None;
    };
    if arch.arch != arch_b.arch {
        skipped(
            out,
            format!(
                "the files are different architectures ({} and {})",
                arch.arch, arch_b.arch
            ),
        );
        return None;
    }
    let tokens = match prompt_tokens(a, b, settings) {
        Ok(t) => {
            if let Some((x, y)) = &t.both {
                if let Some(f) = bos_only(a, b, x, y) {
                    out.push(f);
                } else if x != y {
                    out.push(
                        Finding::new(&PROBE_TOKENS, format!("the prompt {:?} gives ids {x:?} in `{}` and {y:?} in the reference; the probe uses the reference's", settings.prompt, a.path().display()))
                            .file(a.path())
                            .help("copy the reference's tokenizer into the converted file")
                            .evidence(serde_json::json!({"apr_tokens": x, "reference_tokens": y})),
                    );
                }
            }
            t.ids
        }
        Err(e) => {
            skipped(out, format!("{e}; pass `--tokens`"));
            return None;
        }
    };
    if tokens.is_empty() {
        skipped(out, "the prompt gives no tokens".into());
        return None;
    }
    let (fa, fb) = rayon::join(|| forward(a, ra, &tokens), || forward(b, rb, &tokens));
    let fa = match fa {
        Ok(x) => x,
        Err(e) => {
            skipped(out, format!("`{}`: {e}", a.path().display()));
            return None;
        }
    };
    let fb = match fb {
        Ok(x) => x,
        Err(e) => {
            skipped(out, format!("reference: {e}"));
            return None;
        }
    };
    if fa.hidden != fb.hidden || fa.q_dim != fb.q_dim || fa.kv_dim != fb.kv_dim {
        skipped(
            out,
            format!(
                "layer-0 widths differ (hidden {}/{}, Q {}/{}, K {}/{}); the static findings say why",
                fa.hidden, fb.hidden, fa.q_dim, fb.q_dim, fa.kv_dim, fb.kv_dim
            ),
        );
        return None;
    }
    // Same values expected only when every tensor the probe reads has the same dtype on both sides.
    let roles = [
        "token_embd",
        "attn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_q_bias",
        "attn_k_bias",
        "attn_v_bias",
    ];
    let mut exact = true;
    let mut min_cos: f64 = 1.0;
    for role in roles {
        let layer = if role == "token_embd" { None } else { Some(0) };
        let (Some(i), Some(j)) = (ra.find(role, layer), rb.find(role, layer)) else {
            continue;
        };
        let (da, db) = (a.tensors[i].dtype, b.tensors[j].dtype);
        if da != db {
            exact = false;
            let r = arch.role(role);
            for d in [da, db] {
                if let Some(t) = arch.tolerance_for(r, d) {
                    min_cos = min_cos.min(t.cosine);
                }
            }
        }
    }
    let hd = ra.env.get("head_dim").copied().unwrap_or(1) as usize;
    let probe = compare(
        &fa,
        &fb,
        tokens,
        hd,
        &Criterion {
            exact,
            threshold: settings.threshold,
            min_cosine: if exact {
                1.0
            } else {
                activation_cosine(min_cos)
            },
        },
    );
    let scaling = |v: &ModelView| {
        v.config
            .rope_scaling
            .as_ref()
            .filter(|s| s.value.is_effective())
            .map(|s| s.value.describe())
    };
    let side = |v: &ModelView, x: &'_ Activations| RopeSide {
        theta: v.config.rope_base(),
        factors: None,
        factors_source: x.rope_factors_source,
        stretch: x.stretch,
        scaling: scaling(v),
    };
    let (mut sa, mut sb) = (side(a, &fa), side(b, &fb));
    sa.factors = fa.rope_factors.as_deref();
    sb.factors = fb.rope_factors.as_deref();
    if let Some(f) = finding(&probe, a, (&sa, &sb)) {
        out.push(f);
    }
    Some(probe)
}
