//! Renderers: one per output format. They take computed results and turn them into text; they never
//! compute verdicts. `human` (miette's graphical renderer) and `progress` (the `--deep` bar) need
//! the default `cli` feature.

pub mod batch;
pub mod catalog;
pub mod github;
#[cfg(feature = "cli")]
pub mod human;
pub mod inspect;
pub mod json;
pub mod load_log;
#[cfg(feature = "cli")]
pub mod progress;
pub mod rosetta;
pub mod sarif;
pub mod snippet;
