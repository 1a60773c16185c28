//! apr-lint: catches layout bugs between an `.apr` (or `.gguf`) model and the `.gguf` or Hugging Face
//! checkpoint it was converted from.
//!
//! The pipeline, data flowing one way:
//!
//! ```text
//! format (readers: bytes → records with byte spans)
//!   → model (one view of any format: canonical [out, in] dims, config, tokenizer)
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
//!
//! # Use in a loader
//!
//! A loader links the library without the command line's dependencies
//! (`apr-lint = { version = "0.1", default-features = false }`), maps the model, runs the
//! load-time checks and decides by severity. `examples/loader.rs` is the whole program.
//!
//! **One file.** [`ModelView::open`] maps the file read-only and checks its container strictly: a
//! file that cannot be trusted is a [`ReadError`] with its `APRL-F…` code and byte offset.
//! [`pipeline::lint`] runs the checks and returns an [`pipeline::Outcome`] of typed [`Finding`]s
//! and one [`pipeline::Verdict`].
//!
//! ```
//! use apr_lint::pipeline::{self, Options, Verdict};
//! use apr_lint::{ModelView, Severity};
//!
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gguf/tiny-qwen2-lq-q4_k_m.gguf");
//! let view = ModelView::open(path.as_ref())
//!     .map_err(|e| format!("cannot read {path}: {} {e}", e.code()))?;
//! let outcome = pipeline::lint(&view, None, &Options::default());
//! for f in &outcome.findings {
//!     // Code, bug class, severity, message, and where: tensor, layer, byte span.
//!     println!("{} {} {} {}", f.code, f.class(), f.severity.as_str(), f.message);
//! }
//! assert_eq!(outcome.count(Severity::Error), 0);
//! assert_eq!(outcome.verdict, Verdict::Pass);
//! # Ok::<(), String>(())
//! ```
//!
//! **A file and its reference.** With the GGUF it was converted from, the pair is compared too:
//! roles, dims, config, tokenizer, sampled weights with the transform that explains a difference,
//! and layer 0 on a prompt. The `[APR-LOAD]` lines go to the caller's callback (here a `Vec`; a
//! loader passes `|line| log::info!("{line}")` or its own logger), and an error finding refuses
//! the load:
//!
//! ```
//! use apr_lint::pipeline::{self, Options};
//! use apr_lint::{LoadLogMode, ModelView, Severity, load_log};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gguf/tiny-qwen2-lq-q4_k_m.gguf");
//! # let model_path = dir.path().join("model.apr");
//! # let g = apr_lint::format::gguf::read(apr_lint::Source::open(reference.as_ref()).unwrap()).unwrap();
//! # apr_lint::format::writer::convert::write_gguf_as_apr(
//! #     &g, apr_lint::format::writer::apr::Flavour::Aprender, &model_path).unwrap();
//! // `model_path`: the APR converted from `reference`.
//! let model = ModelView::open(&model_path).map_err(|e| format!("{} {e}", e.code()))?;
//! let reference = ModelView::open(reference.as_ref()).map_err(|e| format!("{} {e}", e.code()))?;
//! let opts = Options::default();
//! let outcome = pipeline::lint(&model, Some(&reference), &opts);
//!
//! let mut logged = Vec::new();
//! load_log(&model, &opts.rules, &outcome.findings, LoadLogMode::Summary, |line| {
//!     logged.push(line.to_string())
//! });
//! assert!(logged.iter().all(|l| l.starts_with("[APR-LOAD]")) && !logged.is_empty());
//!
//! if let Some(f) = outcome.findings.iter().find(|f| f.severity == Severity::Error) {
//!     return Err(format!("refusing to load: {} ({}) {}", f.code, f.class(), f.message));
//! }
//! assert!(outcome.tensors_compared > 0);
//! # Ok::<(), String>(())
//! ```
//!
//! **Deciding by severity.** [`Severity`] is ordered (`Info < Warning < Error`), so a loader can
//! refuse at any level; [`pipeline::Verdict::exit_code`] gives the command line's exit code
//! (0 pass, 1 fail, 2 error, 3 inconclusive: nothing was compared). Overrides such as `-A CODE`
//! are [`pipeline::Options::overrides`]; [`config`] reads `apr-lint.toml`.
//!
//! ```
//! use apr_lint::pipeline::{self, Options};
//! use apr_lint::{ModelView, Severity};
//!
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gguf/tiny-qwen2-lq-q4_k_m.gguf");
//! let view = ModelView::open(path.as_ref()).map_err(|e| e.to_string())?;
//! let outcome = pipeline::lint(&view, None, &Options::default());
//! let worst = outcome.findings.iter().map(|f| f.severity).max();
//! let refuse = worst.is_some_and(|s| s >= Severity::Warning);  // a stricter loader
//! println!("worst {worst:?}, refuse {refuse}, exit {}", outcome.verdict.exit_code());
//! # Ok::<(), String>(())
//! ```
//!
//! # Features
//!
//! `cli` (default): the `apr-lint` binary and what only it needs — clap, clap_complete,
//! clap_mangen, miette's graphical renderer ([`report::human`]) and the `--deep` progress bar
//! (`report::progress`). `bench`: the `apr-lint-bench` binary. `format::writer` (test and
//! benchmark files) and `quant::bench_support_random_blocks` are public for the tests, examples
//! and benchmark only and hidden from these docs.

#![warn(missing_docs)]

// The stages the pipeline runs: public for the tests, fuzzers and benchmark, not part of the
// documented API (a loader calls `pipeline::lint`).
#[doc(hidden)]
pub mod batch;
#[doc(hidden)]
pub mod check;
pub mod config;
pub mod diag;
pub mod format;
pub mod model;
#[doc(hidden)]
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
