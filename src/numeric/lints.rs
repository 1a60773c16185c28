//! Numeric lints (`APRL-N…`).

use crate::diag::Lint;

pub static ALL: &[&Lint] = &[];
