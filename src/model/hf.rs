//! A Hugging Face checkpoint as a view: its SafeTensors tensors (dims as stored, which is already
//! the canonical row-major order, each tagged with the shard holding its bytes), its `config.json`
//! read into the shared `Config`, and its `tokenizer.json` (+ `tokenizer_config.json`) read into an
//! `HfTokenizer`.
//!
//! Takes a resolved `HfCheckpoint` (`format::hf`); reads the sidecar JSON files (small, read
//! whole), never tensor data.

use std::path::Path;

use super::TensorView;
use super::config::Config;
use super::hf_config::read_config_json;
use super::hf_tokenizer::{HfTokenizer, read_tokenizer};
use crate::diag::{Finding, ReadError, Severity};
use crate::format::Source;
use crate::format::hf::HfCheckpoint;
use crate::format::lints;

/// The tensors apr-lint reads, in checkpoint order (file by file, each in header order). A tensor
/// whose dtype has no row in the dtype table (U16–U64, F8, C64) is left out: `dtype_findings`
/// names it.
pub(crate) fn tensors(h: &HfCheckpoint) -> Vec<TensorView> {
    h.tensors
        .iter()
        .filter_map(|t| {
            let s = &t.tensor;
            Some(TensorView {
                name: s.name.clone(),
                dims: s.shape.clone(),
                file_dims: s.shape.clone(),
                dtype: s.dtype.to_dtype()?,
                data: s.data,
                record: s.entry,
                dims_span: s.entry,
                apr_dtype: None,
                file: t.source,
            })
        })
        .collect()
}

/// A warning per tensor left out of the view for its dtype.
pub(crate) fn dtype_findings(h: &HfCheckpoint) -> Vec<Finding> {
    h.tensors
        .iter()
        .filter(|t| t.tensor.dtype.to_dtype().is_none())
        .map(|t| {
            let s = &t.tensor;
            Finding::new(
                &lints::ST_DTYPE,
                format!(
                    "tensor `{}` is {}, a dtype apr-lint does not read: it is not checked",
                    s.name,
                    s.dtype.name()
                ),
            )
            .severity(Severity::Warning)
            .tensor(&s.name)
            .span(s.entry)
            .file(h.file_of(t).source.path())
            .help("compare it by other means; every other tensor is checked")
        })
        .collect()
}

/// What the JSON files beside the weights say.
pub(crate) struct Sidecars {
    pub config: Config,
    pub tokenizer: Option<HfTokenizer>,
    /// Findings from reading them, each with its file.
    pub findings: Vec<Finding>,
    /// The first file that could not be read (its `ReadError`, with its path).
    pub error: Option<ReadError>,
}

fn read_file(path: &Path) -> Result<Source, ReadError> {
    Source::open(path)
}

/// `config.json` as a `Config` (empty when the checkpoint has none), and the findings of reading it.
pub(crate) fn read_config(h: &HfCheckpoint) -> Result<(Config, Vec<Finding>), ReadError> {
    let Some(p) = &h.sidecars.config else {
        return Ok((Config::default(), Vec::new()));
    };
    let c = read_config_json(read_file(p)?.bytes()).map_err(|e| e.with_path(p))?;
    Ok((
        c.config,
        c.findings.into_iter().map(|f| f.file(p)).collect(),
    ))
}

/// Read `config.json`, `tokenizer.json` and `tokenizer_config.json` where present.
pub(crate) fn read_sidecars(h: &HfCheckpoint) -> Sidecars {
    let mut out = Sidecars {
        config: Config::default(),
        tokenizer: None,
        findings: Vec::new(),
        error: None,
    };
    match read_config(h) {
        Ok((config, findings)) => {
            out.config = config;
            out.findings = findings;
        }
        Err(e) => out.error = Some(e),
    }
    if let Some(p) = &h.sidecars.tokenizer {
        let tc = match &h.sidecars.tokenizer_config {
            Some(q) => match read_file(q) {
                Ok(s) => Some(s),
                Err(e) => {
                    out.error.get_or_insert(e);
                    None
                }
            },
            None => None,
        };
        let read = read_file(p).and_then(|s| {
            read_tokenizer(s.bytes(), tc.as_ref().map(|t| t.bytes())).map_err(|e| e.with_path(p))
        });
        match read {
            Ok(mut t) => {
                out.findings.extend(
                    std::mem::take(&mut t.findings)
                        .into_iter()
                        .map(|f| if f.file.is_some() { f } else { f.file(p) }),
                );
                out.tokenizer = Some(t);
            }
            Err(e) => {
                out.error.get_or_insert(e);
            }
        }
    }
    out
}
