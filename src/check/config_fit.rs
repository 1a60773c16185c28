//! Which config value the tensor shapes agree on.
//!
//! When a file's dims disagree with its rules, the cause is often one wrong number in the metadata
//! (a `num_heads` of 8 where the weights were made with 4 makes every K and V projection look
//! mis-sized), not the converter's shape arithmetic. This asks, for each config quantity the file
//! states, whether another value of that one quantity makes every tensor's dims fit the rules; the
//! metadata and pair checks then lead with that fix, and can tell a reference that contradicts its
//! own tensors from a file under test that is wrong.

use std::collections::BTreeMap;

use crate::model::ModelView;
use crate::model::config::ConfigValue;
use crate::rules::Resolved;
use crate::rules::resolve::env_of;

/// One config quantity the tensor shapes contradict, and the value they agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    /// Formula symbol (`n_head`, `hidden`, …).
    pub sym: &'static str,
    /// The key the file states it under (`num_heads`, `qwen2.attention.head_count`).
    pub key: String,
    pub stated: u64,
    /// The value with which every tensor's dims fit the rules.
    pub shapes: u64,
}

/// The stated config quantities a fit may change: symbol, value, key.
fn stated(view: &ModelView) -> Vec<(&'static str, &ConfigValue<u64>)> {
    let c = &view.config;
    let mut v = Vec::new();
    for (sym, x) in [
        ("hidden", &c.hidden),
        ("n_head", &c.heads),
        ("n_head_kv", &c.kv_heads),
        ("head_dim", &c.head_dim),
        ("vocab", &c.vocab),
        ("ffn", &c.ffn),
    ] {
        if let Some(x) = x
            && !x.key.starts_with("derived")
        {
            v.push((sym, x));
        }
    }
    v
}

/// Whether tensor `i` (with a role) fits its rule or the rule's reverse under `env`.
fn fits_rule(view: &ModelView, r: &Resolved<'_>, env: &BTreeMap<&str, u64>, i: usize) -> bool {
    let Some((role, _)) = r.role_of(i) else {
        return true;
    };
    let Ok(expected) = role
        .dims_expr
        .iter()
        .map(|e| e.eval(env))
        .collect::<Result<Vec<u64>, _>>()
    else {
        return false;
    };
    let dims = &view.tensors[i].dims;
    *dims == expected || (dims.len() >= 2 && dims.iter().rev().eq(expected.iter()))
}

/// The tensors that do not fit under `env`.
fn misfits(view: &ModelView, r: &Resolved<'_>, env: &BTreeMap<&str, u64>) -> Vec<usize> {
    (0..view.tensors.len())
        .filter(|&i| !fits_rule(view, r, env, i))
        .collect()
}

/// Every (quantity, value) that alone makes all the file's dims fit, when its stated config does
/// not. Empty when the dims already fit (or no single change explains them).
pub fn fits(view: &ModelView, r: &Resolved<'_>) -> Vec<Fit> {
    let Some(arch) = r.arch else {
        return Vec::new();
    };
    let bad = misfits(view, r, &r.env);
    if bad.is_empty() {
        return Vec::new();
    }
    // Sizes appear as dims; head counts do not (they divide sizes), so those are searched.
    let mut dim_values: Vec<u64> = view.tensors.iter().flat_map(|t| t.dims.clone()).collect();
    dim_values.sort_unstable();
    dim_values.dedup();
    let max_heads = r.env.get("hidden").copied().unwrap_or(1024).clamp(1, 1024);
    let mut out = Vec::new();
    for (sym, x) in stated(view) {
        let candidates: Vec<u64> = match sym {
            "n_head" | "n_head_kv" => (1..=max_heads).collect(),
            _ => dim_values.clone(),
        };
        for v in candidates {
            if v == x.value {
                continue;
            }
            let env = env_of(&view.config, Some(arch), Some((sym, v)));
            let heads_ok = match (env.get("n_head"), env.get("n_head_kv")) {
                (Some(&h), Some(&kv)) => kv != 0 && h % kv == 0,
                _ => true,
            };
            // The tensors that misfit now first: most candidates fail on the first one.
            if heads_ok
                && bad.iter().all(|&i| fits_rule(view, r, &env, i))
                && (0..view.tensors.len()).all(|i| fits_rule(view, r, &env, i))
            {
                out.push(Fit {
                    sym,
                    key: x.key.clone(),
                    stated: x.value,
                    shapes: v,
                });
            }
        }
    }
    out
}

/// The value of `sym` the tensor shapes agree on: the stated one when every dims fits, else the
/// one value of `fits` for it (None when the shapes do not single one out).
pub fn shapes_agree_on(view: &ModelView, r: &Resolved<'_>, sym: &str, fits: &[Fit]) -> Option<u64> {
    if misfits(view, r, &r.env).is_empty() {
        return r.env.get(sym).copied();
    }
    let mut v = fits.iter().filter(|f| f.sym == sym).map(|f| f.shapes);
    match (v.next(), v.next()) {
        (Some(x), None) => Some(x),
        _ => None,
    }
}

/// "set `num_heads` to 4" or "set `num_heads` to 4 or `num_kv_heads` to 4".
pub fn fix_text(fits: &[Fit]) -> String {
    let parts: Vec<String> = fits
        .iter()
        .take(3)
        .map(|f| format!("`{}` to {}", f.key, f.shapes))
        .collect();
    format!("set {}", parts.join(" or "))
}

/// The help of the finding about the config value itself; `reference` when the reference agrees.
pub fn config_help(fits: &[Fit], reference: bool) -> String {
    match fits {
        [f] => format!(
            "set `{}` to {} (the {}tensor shapes agree on {})",
            f.key,
            f.shapes,
            if reference { "reference and the " } else { "" },
            f.shapes
        ),
        _ => format!(
            "{} (each makes every tensor's dims fit the rules)",
            fix_text(fits)
        ),
    }
}

/// The help of a shape mismatch the config value explains.
pub fn tensor_help(fits: &[Fit]) -> String {
    format!(
        "{}: with it every tensor's dims fit the rules, this one's included",
        fix_text(fits)
    )
}
