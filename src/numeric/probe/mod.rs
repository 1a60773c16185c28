//! The layer-0 probe: both files, each with its own metadata, run the prompt's tokens through the
//! embedding, RMSNorm with `attn_norm`, Q/K/V (+ bias), and RoPE with each file's own θ and rope
//! type — at the prompt positions and at one far position, because RoPE-order and θ bugs are
//! invisible at position 0. Stages are compared one by one; a row order that the weight stage or the
//! declared rope types prove legitimate (a llama APR in Hugging Face order with NEOX) is undone first.
//!
//! Reads the embedding rows of the prompt's tokens, one norm vector and layer 0's Q/K/V weights:
//! never the rest of the model.
//!
//! One concern per file: `lints` (the codes), `layer0` (one file's layer-0 activations through
//! the forward leaf), `stages` (the stage-by-stage comparison), `diagnosis` (the first failing
//! stage → a finding with its bug class); this file runs them in order. The RoPE math and the
//! forward pass live in [`crate::numeric::forward`], the metrics and the pass criterion in
//! [`crate::numeric::stage`].

mod diagnosis;
mod layer0;
mod lints;
mod stages;

pub use diagnosis::{RopeSide, divisors_mismatch, finding};
pub use layer0::{Activations, FAR_POSITION, forward};
pub use lints::*;
pub use stages::{Probe, compare};

use crate::diag::Finding;
use crate::model::ModelView;
use crate::numeric::Settings;
use crate::numeric::stage::{Criterion, activation_cosine};
use crate::numeric::tokens::prompt_tokens;
use crate::rules::Resolved;
use diagnosis::bos_only;

/// The layer-0 tensors the probe reads whole. It also reads rows of `token_embd` (the prompt's
/// embeddings), so its dtype check covers that too; the prefetch
/// (`numeric::prefetch::PROBE_ROLES`) asks for these and `rope_freqs`.
pub const LAYER0_ROLES: [&str; 7] = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_q_bias",
    "attn_k_bias",
    "attn_v_bias",
];

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
    // `--tokens` helps only where the prompt could not be tokenized; a file that does not load as a
    // model (or a pair that does not match) needs the other findings fixed first.
    const FIX_FINDINGS: &str = "fix what the message and the other findings name; the probe runs once both files load as the same model";
    const PASS_TOKENS: &str = "pass `--tokens 1,2,3`, or fix what the message names";
    let skipped = |out: &mut Vec<Finding>, why: String, help: &str| {
        out.push(
            Finding::new(&PROBE_SKIPPED, format!("probe skipped: {why}"))
                .file(a.path())
                .help(help),
        );
    };
    let (Some(arch), Some(arch_b)) = (ra.arch, rb.arch) else {
        skipped(
            out,
            "no rule set for the architecture".into(),
            "add a rule set for the architecture (`--rules DIR`); `apr-lint rules` lists the built-in ones",
        );
        return None;
    };
    if arch.arch != arch_b.arch {
        skipped(
            out,
            format!(
                "the files are different architectures ({} and {})",
                arch.arch, arch_b.arch
            ),
            "pair the file with the one it was converted from",
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
            skipped(out, format!("{e}; pass `--tokens`"), PASS_TOKENS);
            return None;
        }
    };
    if tokens.is_empty() {
        skipped(out, "the prompt gives no tokens".into(), PASS_TOKENS);
        return None;
    }
    // The prompt's embedding rows are the probe's only scattered reads: ask for them together.
    for (v, r) in [(a, ra), (b, rb)] {
        v.source()
            .prefetch(&crate::numeric::prefetch::embedding_rows(v, r, &tokens));
    }
    let (fa, fb) = rayon::join(|| forward(a, ra, &tokens), || forward(b, rb, &tokens));
    let fa = match fa {
        Ok(x) => x,
        Err(e) => {
            skipped(out, format!("`{}`: {e}", a.path().display()), FIX_FINDINGS);
            return None;
        }
    };
    let fb = match fb {
        Ok(x) => x,
        Err(e) => {
            skipped(out, format!("reference: {e}"), FIX_FINDINGS);
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
            FIX_FINDINGS,
        );
        return None;
    }
    // Same values expected only when every tensor the probe reads has the same dtype on both sides.
    let mut exact = true;
    let mut min_cos: f64 = 1.0;
    for role in std::iter::once("token_embd").chain(LAYER0_ROLES) {
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
