//! Numeric stage: sampled weight comparison with transform search, and the probe.
//!
//! Takes two `ModelView`s with their resolved rules; returns findings and counts. Reads only the
//! sampled rows and blocks it needs (never whole tensors it does not need).
//!
//! The weight comparison covers every role present in both files, every layer (and the file under
//! test's output matrix against the reference's embedding when the reference ties them), one rayon
//! task per role, findings in the reference's tensor order. Per role (`compare`): identical
//! bytes on a deterministic sample settle it without dequantizing; otherwise a few KB of sampled
//! values per side are compared with
//!
//! - `max_diff = max|a − b|`, `mean_diff = mean|a − b|`,
//! - `cosine = Σab / √(Σa²·Σb²)`,
//! - `NMSE = Σ(a − b)² / Σb²` (normalised by the reference's energy),
//!
//! against `--threshold` (same dtype: max_diff ≤ threshold · max|b|) or the rules' per-dtype
//! tolerance of the coarser side (different dtypes: NMSE and cosine). A role that disagrees goes to
//! the transform search ([`transforms`]), whose winner names the bug class and the fix. Legitimate
//! differences (quantization noise, Hugging Face Q/K row order with a NEOX rope type) are
//! summarised in one info finding each.
//!
//! Must not print, read flags other than its own [`Settings`] (the pipeline builds them), or repeat
//! what the static pair check reports (roles on one side only, dims that differ, config that
//! differs): where values confirm a static finding, the confirmation is info.
//!
//! Beside the sample, [`scan`] tests whole tensors: every float value by default (while a file's
//! floats total ≤ 256 MiB), and with `--deep` every value and block scale of both files, the
//! byte comparison of every same-dtype pair (whose result [`run_with`] uses) and the footer CRC.
//!
//! Layout: [`forward`] is the leaf forward pass (model, RoPE, norms, attention, Q/K row
//! permutation); [`stage`] the one stage comparator (metrics and pass criterion); [`tokens`] the
//! prompt's ids. The layer-0 [`probe`] and the full [`trace`] both build on those three and never
//! import each other. Nothing here imports `pipeline` or `report`.

mod block_corrupt;
mod compare;
mod degenerate;
pub mod forward;
pub mod lints;
pub mod metrics;
mod non_finite;
pub mod prefetch;
pub mod probe;
pub mod sample;
pub mod scan;
pub mod stage;
pub mod tokens;
pub mod trace;
pub mod transforms;

use rayon::prelude::*;
use serde_json::json;

use crate::diag::Finding;
use crate::model::ModelView;
use crate::rules::Resolved;
use compare::{Env, Pair, RoleResult};
use metrics::{finite_or_null, fmt_cos, fmt_sci};

/// What the numeric stage needs from the command line; the pipeline builds it from its options.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `--threshold`: same-dtype values agree when `max_diff ≤ threshold · max|ref|`.
    pub threshold: f64,
    /// `--prompt`: the text the probe and the trace tokenize when no `--tokens` are given.
    pub prompt: String,
    /// `--tokens`: the ids to run instead of the prompt's.
    pub tokens: Option<Vec<u32>>,
    /// `--no-probe`: skip the layer-0 probe.
    pub no_probe: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: 1e-3,
            prompt: "2+2=".into(),
            tokens: None,
            no_probe: false,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct NumericResult {
    /// The stage ran (false: not implemented for this pair, or skipped).
    pub ran: bool,
    pub tensors_compared: usize,
    pub probe: Option<serde_json::Value>,
    /// Bytes of tensor data the weight comparison read, both files together.
    pub bytes_read: u64,
}

/// (tensor of `a`, tensor of `b`) of every role the weight comparison covers.
pub fn pair_indices(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
) -> Vec<(usize, usize)> {
    pairs(ra, b, rb, a).iter().map(|p| (p.ia, p.ib)).collect()
}

/// The roles to compare, in the reference's tensor order, then tied outputs.
fn pairs<'r>(
    a_res: &Resolved<'r>,
    b: &ModelView,
    b_res: &Resolved<'r>,
    a: &ModelView,
) -> Vec<Pair<'r>> {
    let mut out = Vec::new();
    for ib in 0..b.tensors.len() {
        let Some((role, layer)) = b_res.role_of(ib) else {
            continue;
        };
        if let Some(ia) = a_res.find(&role.key, layer) {
            out.push(Pair {
                ia,
                ib,
                role,
                layer,
                tied: false,
            });
        }
    }
    for ia in 0..a.tensors.len() {
        let Some((role, layer)) = a_res.role_of(ia) else {
            continue;
        };
        if b_res.find(&role.key, layer).is_some() {
            continue;
        }
        if let Some(ib) = role.tied_to.as_deref().and_then(|t| b_res.find(t, None)) {
            out.push(Pair {
                ia,
                ib,
                role,
                layer,
                tied: true,
            });
        }
    }
    out
}

pub fn run(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    settings: &Settings,
    out: &mut Vec<Finding>,
) -> NumericResult {
    run_with(a, ra, b, rb, settings, None, out)
}

/// [`run`], with the whole-tensor comparisons of `--deep` ([`scan::run`]) deciding the pairs
/// they cover.
pub fn run_with(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    settings: &Settings,
    scan: Option<&scan::ScanResult>,
    out: &mut Vec<Finding>,
) -> NumericResult {
    let (Some(arch), Some(arch_b)) = (ra.arch, rb.arch) else {
        return NumericResult::default();
    };
    if arch.arch != arch_b.arch {
        return NumericResult::default();
    }
    let env = Env {
        a,
        b,
        ra,
        rb,
        arch,
        settings,
        full: scan.map(|s| &s.full),
    };
    let pairs = pairs(ra, b, rb, a);
    // Nothing to release afterwards: the comparison reads the sampled bytes with positioned
    // reads (`sample::Reader`), so none of their pages is mapped into the process.
    let results: Vec<RoleResult> = pairs
        .par_iter()
        .map(|p| compare::compare(&env, p))
        .collect();
    let mut compared = 0;
    let mut bytes_read = 0;
    for r in &results {
        compared += usize::from(r.compared);
        bytes_read += r.touched;
        out.extend(r.findings.iter().cloned());
    }
    compared += usize::from(llama3_divisors(a, ra, b, rb, out));
    summarise_noise(a, &results, out);
    summarise_rope(a, &results, out);
    summarise_skipped(a, &results, out);
    NumericResult {
        ran: true,
        tensors_compared: compared,
        probe: None,
        bytes_read,
    }
}

/// One info finding for every role that holds another quantization of the reference's weights.
fn summarise_noise(a: &ModelView, results: &[RoleResult], out: &mut Vec<Finding>) {
    let noisy: Vec<&compare::Noise> = results.iter().filter_map(|r| r.noise.as_ref()).collect();
    let Some(worst) = noisy
        .iter()
        .copied()
        .max_by(|x, y| x.metrics.nmse.total_cmp(&y.metrics.nmse))
    else {
        return;
    };
    let lowest = noisy
        .iter()
        .copied()
        .min_by(|x, y| x.metrics.cosine.total_cmp(&y.metrics.cosine))
        .unwrap_or(worst);
    let mut pairs: Vec<String> = noisy
        .iter()
        .map(|n| format!("{}→{}", n.dtypes.1, n.dtypes.0))
        .collect();
    pairs.sort();
    pairs.dedup();
    let t = worst.tolerance;
    out.push(
        Finding::new(
            &lints::QUANT_NOISE,
            format!(
                "{} {} another quantization of the reference's weights (reference→this file: {}): worst NMSE {} (`{}`), lowest cosine {} (`{}`), within the rules' tolerance ({}: NMSE ≤ {}, cosine ≥ {})",
                crate::diag::count(noisy.len(), "role"),
                if noisy.len() == 1 { "holds" } else { "hold" },
                pairs.join(", "),
                fmt_sci(worst.metrics.nmse),
                worst.tensor,
                fmt_cos(lowest.metrics.cosine),
                lowest.tensor,
                worst.tolerance_dtype,
                fmt_sci(t.nmse),
                t.cosine
            ),
        )
        .file(a.path())
        .help("nothing to do if the re-quantization was intended")
        .evidence(json!({
            "roles": noisy.len(),
            "dtypes": pairs,
            "worst_nmse": finite_or_null(worst.metrics.nmse),
            "worst_nmse_tensor": worst.tensor,
            "min_cosine": finite_or_null(lowest.metrics.cosine),
            "min_cosine_tensor": lowest.tensor,
            "criterion": "rule tolerance of the coarser dtype (NMSE and cosine)",
            "tolerance": {"dtype": worst.tolerance_dtype.name(), "nmse": t.nmse, "cosine": t.cosine},
        })),
    );
}

/// One info finding for every Q/K tensor whose row order differs legitimately.
fn summarise_rope(a: &ModelView, results: &[RoleResult], out: &mut Vec<Finding>) {
    let ok: Vec<&(String, transforms::Explanation)> =
        results.iter().filter_map(|r| r.rope_ok.as_ref()).collect();
    let Some((first, e)) = ok.first() else {
        return;
    };
    let min_cos = ok
        .iter()
        .map(|(_, e)| e.after.cosine)
        .fold(f64::INFINITY, f64::min);
    let names: Vec<&str> = ok.iter().map(|(n, _)| n.as_str()).collect();
    out.push(
        Finding::new(
            &lints::ROPE_ORDER_OK,
            format!(
                "{} {} a row order other than the reference's that their declared rope type rotates correctly (lowest cosine after the permutation {}); e.g. {}",
                crate::diag::count(ok.len(), "Q/K tensor"),
                if ok.len() == 1 { "holds" } else { "hold" },
                fmt_cos(min_cos),
                e.message
            ),
        )
        .tensor(first.as_str())
        .file(a.path())
        .help(e.help.clone())
        .evidence(json!({
            "tensors": names,
            "transform": e.transform,
            "min_cosine_after_fix": finite_or_null(min_cos),
        })),
    );
}

/// One warning listing the roles whose values could not be compared.
fn summarise_skipped(a: &ModelView, results: &[RoleResult], out: &mut Vec<Finding>) {
    let why: Vec<&str> = results
        .iter()
        .filter_map(|r| r.not_compared.as_deref())
        .collect();
    if why.is_empty() {
        return;
    }
    out.push(
        Finding::new(
            &lints::NOT_COMPARED,
            format!(
                "{} could not be compared by value: {}{}",
                crate::diag::count(why.len(), "role"),
                why.iter().take(4).copied().collect::<Vec<_>>().join("; "),
                if why.len() > 4 { "; …" } else { "" }
            ),
        )
        .file(a.path())
        .help("compare against a reference in a dtype with values, or fix the size problems the static stage reports"),
    );
}

/// Llama 3's RoPE frequency divisors held as `rope_freqs.weight` on one side and as Hugging
/// Face's `llama3` `rope_scaling` (APR) on the other: the role comparison has no tensor pair for
/// them, so the derived values are compared with the tensor's here (the probe sees their effect,
/// but may be skipped). Returns whether a comparison was made.
fn llama3_divisors(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    out: &mut Vec<Finding>,
) -> bool {
    let tensor = |v: &ModelView, r: &Resolved<'_>| -> Option<(String, Vec<f32>)> {
        let t = &v.tensors[r.find("rope_freqs", None)?];
        if t.n_elems() > 1 << 16 {
            return None;
        }
        Some((t.name.clone(), v.dequantize(t).ok()?))
    };
    let derived = |v: &ModelView, r: &Resolved<'_>| -> Option<Vec<f32>> {
        if r.find("rope_freqs", None).is_some() {
            return None;
        }
        llama3_divisors_of(v, *r.env.get("head_dim")? as usize)
    };
    let (mine, theirs, a_derived) = match (derived(a, ra), tensor(b, rb)) {
        (Some(x), Some((name, y))) => (x, (name, y), true),
        _ => match (tensor(a, ra), derived(b, rb)) {
            (Some((_, x)), Some(y)) => (
                x,
                ("the reference's `llama3` `rope_scaling`".to_owned(), y),
                false,
            ),
            _ => return false,
        },
    };
    let (name, theirs) = theirs;
    if let Some(why) = probe::divisors_mismatch(&mine, &theirs) {
        let what = if a_derived {
            format!(
                "the RoPE frequency divisors `{}`'s `llama3` `rope_scaling` gives differ from the reference's `{name}`",
                a.path().display()
            )
        } else {
            format!(
                "`{}`'s `rope_freqs.weight` differs from the divisors {name} gives",
                a.path().display()
            )
        };
        out.push(
            Finding::new(&lints::VALUE_MISMATCH, format!("{what} ({why}): the two rotate by other angles"))
                .file(a.path())
                .help("make the `llama3` `rope_scaling` (factor, low/high_freq_factor, original_max_position_embeddings) the one the `rope_freqs.weight` was computed from"),
        );
    }
    true
}

/// The divisors a file's Hugging Face `llama3` `rope_scaling` stands for, for `hd`-wide heads: a
/// per-file fact of the view (`ModelView::llama3_divisors`).
pub fn llama3_divisors_of(v: &ModelView, hd: usize) -> Option<Vec<f32>> {
    v.llama3_divisors(hd)
}
