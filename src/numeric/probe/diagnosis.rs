//! What a failing probe means: the first failing stage, the two files' RoPE (θ, frequency
//! divisors, context scaling) and their tokenizations turned into one finding with its bug class.

use super::lints::*;
use super::stages::Probe;
use crate::diag::Finding;
use crate::model::ModelView;
use crate::numeric::forward::rope::Stretch;

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
pub(super) fn bos_only(a: &ModelView, b: &ModelView, x: &[u32], y: &[u32]) -> Option<Finding> {
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
