//! Static checks: the rule set against each file's metadata and tensor table, then the two files
//! against each other. No tensor data is read here (a few header bytes at most).
//!
//! Takes `ModelView`s and their `Resolved` rules; returns `Finding`s. Must not print, read flags or
//! decide exit codes. Checks are grouped by stage: `layout` (dims vs rules), `metadata` (config,
//! roles, tokenizer size of one file), `config_values` (values no model runs with),
//! `tokenizer_arrays` (merges, scores, token types), `pair` (the two files against each other). Each group file holds
//! its lints (code, class, explain text), its builders and its tests.

pub mod config_fit;
pub mod config_values;
pub mod layout;
pub mod metadata;
pub mod pair;
pub mod tokenizer_arrays;

use crate::diag::{Finding, Lint};
use crate::model::ModelView;
use crate::rules::Resolved;

/// Every static lint, in code order.
pub fn lints() -> Vec<&'static Lint> {
    let mut v: Vec<&'static Lint> = Vec::new();
    v.extend_from_slice(layout::ALL);
    v.extend_from_slice(metadata::ALL);
    v.extend_from_slice(config_values::ALL);
    v.extend_from_slice(tokenizer_arrays::ALL);
    v.extend_from_slice(pair::ALL);
    v
}

/// All per-file checks for one file.
pub fn check_file(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let start = out.len();
    metadata::check(view, r, out);
    config_values::check(view, r, out);
    tokenizer_arrays::check(view, out);
    layout::check(view, r, out);
    let path = view.path().display().to_string();
    for f in &mut out[start..] {
        if f.file.is_none() {
            f.file = Some(path.clone());
        }
    }
}
