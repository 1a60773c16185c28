//! Renderers: one per output format. They take computed results and turn them into text; they never
//! compute verdicts.

pub mod batch;
pub mod catalog;
pub mod github;
pub mod human;
pub mod inspect;
pub mod json;
pub mod load_log;
pub mod progress;
pub mod rosetta;
pub mod sarif;
pub mod snippet;
