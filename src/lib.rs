//! apr-lint: catches layout bugs between an `.apr` model and the `.gguf` it was converted from.
//!
//! The pipeline, data flowing one way:
//!
//! ```text
//! format (readers: bytes → records with byte spans)
//!   → model (one view of either format: canonical [out, in] dims, config, tokenizer)
//!     → rules (TOML per architecture: roles, name templates, dim formulas)
//!       → check (static findings, per file and per pair)
//!         → numeric (sampled weight comparison, transform search, probe)
//!           → pipeline (the order of stages, the Outcome) → report (human, JSON, SARIF, GitHub)
//! ```
//!
//! `diag` and `quant` are leaves every stage may use; `tool`, `config` and `registry` hold the
//! tool's own lints, the config file and every lint in code order. Only `model` sees a container:
//! the stages below ask the `ModelView` for facts. The module map and the one-way import rule
//! (checked by `tests/architecture.rs`) are in ARCHITECTURE.md.

pub mod batch;
pub mod check;
pub mod config;
pub mod diag;
pub mod format;
pub mod model;
pub mod numeric;
pub mod pipeline;
pub mod quant;
pub mod registry;
pub mod report;
pub mod rules;
pub mod tool;

pub use diag::{Finding, Lint, ReadError, Severity, Span};
pub use format::{Container, Format, Source};
pub use model::ModelView;
pub use quant::DType;
pub use report::load_log::{Mode as LoadLogMode, load_log};
