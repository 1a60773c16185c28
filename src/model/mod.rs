//! One view of a model file, whichever its format: per tensor its name, canonical dims (row-major,
//! outermost first: GGUF `ne` reversed, APR and SafeTensors dims as stored), the dims as recorded,
//! dtype, byte spans and the file holding its bytes (a sharded Hugging Face checkpoint has several);
//! per model the config and a tokenizer summary read from that format's own keys (a checkpoint's
//! from its `config.json` and `tokenizer.json`).
//!
//! Takes a `Container`; returns a `ModelView`, whose container stays private: the checks, numerics
//! and reports see only the view's tensors, config and tokenizer and its per-file facts
//! (`facts.rs`: naming schemes, runtime, RoPE rotation, Q/K order, Llama 3 divisors; `describe.rs`:
//! the file's records quoted neutrally). Must not know about roles or rules (the rule engine maps
//! names to roles), print, or read tensor data beyond what is asked.

pub mod config;
// Used by the stages, reports and tests; not part of the documented API.
#[doc(hidden)]
pub mod describe;
pub mod facts;
#[doc(hidden)]
pub mod hf;
#[doc(hidden)]
pub mod hf_config;
#[doc(hidden)]
pub mod hf_lints;
#[doc(hidden)]
pub mod hf_tokenizer;
pub mod shared;
#[doc(hidden)]
pub mod tokenize;
pub mod tokenizer;

use std::path::Path;

use crate::diag::{Finding, ReadError, Span};
use crate::format::apr::DtypeResolution;
use crate::format::{self, Container, Format, Source};
use crate::quant::{self, DType, DequantError};

pub use config::{Config, ConfigValue, RopeType};
pub use facts::{NamingScheme, Runtime};
pub use tokenizer::Tokenizer;

use tokenize::{TextTokenizer, TokenizeError};

/// A prompt and its ids by the file's own tokenizer.
type PromptIds = (String, Result<Vec<u32>, TokenizeError>);

/// One tensor as every stage sees it, whichever the format.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorView {
    /// Its name in the file.
    pub name: String,
    /// Canonical row-major dims, outermost first (`[out, in]` for a correct weight).
    pub dims: Vec<u64>,
    /// As the file records them (GGUF `ne`, APR dims as stored).
    pub file_dims: Vec<u64>,
    /// Element type, resolved from the file's type id or code.
    pub dtype: DType,
    /// Absolute byte range of the data.
    pub data: Span,
    /// The header record (GGUF tensor info, APR index entry).
    pub record: Span,
    /// The dims field inside the record.
    pub dims_span: Span,
    /// APR only: how the dtype code was resolved.
    pub apr_dtype: Option<DtypeResolution>,
    /// The file holding the data and the record, as an index into the model's files (0 unless
    /// the model is a sharded checkpoint); `ModelView::source_of` gives it.
    pub file: usize,
}

impl TensorView {
    /// Number of elements (product of the dims).
    pub fn n_elems(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Number of rows (all dims but the last) and row length (the last dim).
    pub fn rows_cols(&self) -> (u64, u64) {
        match self.dims.split_last() {
            Some((&cols, rest)) => (rest.iter().product(), cols),
            None => (1, 1),
        }
    }
    /// The byte size the dtype and dims need equals the bytes the file holds.
    pub fn size_ok(&self) -> bool {
        quant::tensor_n_bytes(self.dtype, &self.dims) == Some(self.data.len)
    }
}

/// One model file, whichever its format: tensors in canonical order, config, tokenizer and
/// the findings of reading its container. Open one with [`ModelView::open`].
#[derive(Clone, Debug)]
pub struct ModelView {
    /// The reader's records: only `model/` looks inside (checks, numerics and reports ask the
    /// view's facts, `facts.rs` and `describe.rs`).
    container: Container,
    /// Every tensor of the file.
    pub tensors: Vec<TensorView>,
    /// Hyperparameters read from the file's own keys, each with its key and byte span.
    pub config: Config,
    /// What the file says about its tokenizer.
    pub tokenizer: Tokenizer,
    /// Findings from reading the container.
    pub findings: Vec<Finding>,
    /// One pass over the token and merge lists, made when first asked for.
    scan: std::sync::OnceLock<tokenizer::TokenizerScan>,
    /// A prompt tokenized in that pass ([`ModelView::tokenizer_scan_for`]), and its ids.
    prompt_ids: std::sync::OnceLock<PromptIds>,
    /// Token ids of texts, shared with a batch's other views of the same tokenizer
    /// (`shared::SharedTokenizers`); unset outside a batch.
    tokenized: std::sync::OnceLock<std::sync::Arc<shared::Tokenized>>,
    /// A Hugging Face checkpoint's `tokenizer.json`, read (the other formats keep their tokenizer
    /// in the container's records).
    hf_tokenizer: Option<std::sync::Arc<hf_tokenizer::HfTokenizer>>,
    /// How many [`HeldPages`] guards are alive: while any is, a caller releases the pages
    /// itself, a run of tensors at a time, and [`ModelView::release`] does nothing.
    pages_held: HoldCount,
}

/// The number of [`HeldPages`] guards of one view. A clone of the view starts with none: the
/// guards borrow the view they were made from.
#[derive(Debug, Default)]
struct HoldCount(std::sync::atomic::AtomicUsize);

impl Clone for HoldCount {
    fn clone(&self) -> Self {
        HoldCount::default()
    }
}

/// While alive, the view's per-tensor [`ModelView::release`] does nothing
/// ([`ModelView::hold_pages`]).
pub struct HeldPages<'v> {
    view: &'v ModelView,
}

impl Drop for HeldPages<'_> {
    fn drop(&mut self) {
        self.view
            .pages_held
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl ModelView {
    /// Open a model file, or a Hugging Face checkpoint (directory, `model.safetensors` or
    /// `model.safetensors.index.json`). A checkpoint's `config.json` or `tokenizer.json` that
    /// cannot be read is a `ReadError`, as a corrupt container is.
    pub fn open(path: &Path) -> Result<ModelView, ReadError> {
        Self::try_from_container(format::open(path)?)
    }

    /// The same from bytes already in hand (`Source::from_vec`).
    pub fn from_source(source: Source) -> Result<ModelView, ReadError> {
        Self::try_from_container(format::read_source(source)?)
    }

    /// The view of a container; a checkpoint's unreadable `config.json` or `tokenizer.json` is
    /// kept as an error finding (`open` refuses it instead).
    pub fn from_container(container: Container) -> ModelView {
        let (mut view, error) = Self::build(container);
        if let Some(e) = error {
            view.findings.push(e.to_finding());
        }
        view
    }

    fn try_from_container(container: Container) -> Result<ModelView, ReadError> {
        match Self::build(container) {
            (view, None) => Ok(view),
            (_, Some(e)) => Err(e),
        }
    }

    /// The view, and the first sidecar file of a checkpoint that could not be read.
    fn build(container: Container) -> (ModelView, Option<ReadError>) {
        let (tensors, mut findings): (Vec<TensorView>, Vec<Finding>) = match &container {
            Container::Gguf(g) => (
                g.tensors
                    .iter()
                    .map(|t| TensorView {
                        name: t.name.clone(),
                        dims: t.ne.iter().rev().copied().collect(),
                        file_dims: t.ne.clone(),
                        dtype: t.dtype,
                        data: t.data_span(g.data_offset),
                        record: t.record,
                        dims_span: t.ne_span,
                        apr_dtype: None,
                        file: 0,
                    })
                    .collect(),
                g.findings.clone(),
            ),
            Container::Apr(a) => (
                a.tensors
                    .iter()
                    .map(|t| TensorView {
                        name: t.name.clone(),
                        dims: t.dims.clone(),
                        file_dims: t.dims.clone(),
                        dtype: t.dtype(),
                        data: t.data_span(a.header.data_offset),
                        record: t.record,
                        dims_span: t.dims_span,
                        apr_dtype: Some(t.resolution.clone()),
                        file: 0,
                    })
                    .collect(),
                a.findings.clone(),
            ),
            Container::Hf(h) => (
                hf::tensors(h),
                h.findings
                    .iter()
                    .cloned()
                    .chain(hf::dtype_findings(h))
                    .collect(),
            ),
        };
        let (config, tokenizer, hf_tokenizer, error) = match &container {
            Container::Hf(h) => {
                let side = hf::read_sidecars(h);
                findings.extend(side.findings);
                let mut config = side.config;
                config.derive(&tensors);
                let tokenizer = side
                    .tokenizer
                    .as_ref()
                    .map(Tokenizer::from_hf)
                    .unwrap_or_default();
                let hf_tokenizer = side.tokenizer.map(std::sync::Arc::new);
                (config, tokenizer, hf_tokenizer, side.error)
            }
            _ => (
                Config::read(&container, &tensors),
                Tokenizer::read(&container),
                None,
                None,
            ),
        };
        let view = ModelView {
            container,
            tensors,
            config,
            tokenizer,
            findings,
            scan: std::sync::OnceLock::new(),
            prompt_ids: std::sync::OnceLock::new(),
            tokenized: std::sync::OnceLock::new(),
            hf_tokenizer,
            pages_held: HoldCount::default(),
        };
        (view, error)
    }

    /// Fingerprints of the token and merge lists, malformed merges and repeated tokens, from one
    /// pass over the lists (made on first use, then kept).
    pub fn tokenizer_scan(&self) -> &tokenizer::TokenizerScan {
        self.scan.get_or_init(|| self.scan_tokenizer())
    }

    /// [`Self::tokenizer_scan`], with `prompt` tokenized in the same pass over the lists when this
    /// call makes the scan (a 150k-entry list is then read once for both): a later
    /// [`Self::tokenize`] of the same text gives the ids kept here.
    pub fn tokenizer_scan_for(&self, prompt: &str) -> &tokenizer::TokenizerScan {
        self.scan.get_or_init(|| match &self.container {
            Container::Hf(_) => self.scan_tokenizer(),
            _ => {
                let (scan, ids) =
                    TextTokenizer::scan_and_tokenize(&self.container, &self.tokenizer, prompt);
                let _ = self.prompt_ids.set((prompt.to_owned(), ids));
                scan
            }
        })
    }

    pub(crate) fn format(&self) -> Format {
        self.container.format()
    }
    /// The file the model was read from; for a sharded checkpoint, its first shard (a tensor's
    /// bytes are in `source_of(t)`).
    pub fn source(&self) -> &Source {
        self.container.source()
    }
    /// The file holding `t`'s data and record.
    pub fn source_of(&self, t: &TensorView) -> &Source {
        match &self.container {
            Container::Hf(h) => h.files.get(t.file).map_or(self.source(), |f| &f.source),
            _ => self.source(),
        }
    }
    /// The file a finding's byte span (on this view, about `tensor` if it names one) is in, when
    /// it is known: a sharded checkpoint's spans are in the tensor's shard, and a checkpoint's
    /// spans that name no tensor may be in `config.json` (None).
    pub fn source_for_span(&self, tensor: Option<&str>) -> Option<&Source> {
        match &self.container {
            Container::Hf(_) => tensor
                .and_then(|n| self.tensor(n))
                .map(|t| self.source_of(t)),
            _ => Some(self.source()),
        }
    }
    /// The file a finding's span is in, when it is another file than `path()`: for a checkpoint,
    /// the shard of the tensor `tensor` when `span` lies in that tensor's header entry or data.
    pub fn file_of_span(&self, tensor: Option<&str>, span: Span) -> Option<&Path> {
        let Container::Hf(_) = &self.container else {
            return None;
        };
        let t = self.tensor(tensor?)?;
        let inside = |outer: Span| span.offset >= outer.offset && span.end() <= outer.end();
        (inside(t.record) || inside(t.data)).then(|| self.source_of(t).path())
    }
    /// Is `file` (a finding's) this model's path or one of its files?
    pub fn has_file(&self, file: &str) -> bool {
        self.path().display().to_string() == file
            || self
                .sources()
                .iter()
                .any(|s| s.path().display().to_string() == file)
    }
    /// Every file the tensors' bytes live in.
    pub fn sources(&self) -> Vec<&Source> {
        self.container.sources()
    }
    /// True when every file still has the length and mtime it had when mapped.
    pub fn is_unchanged(&self) -> bool {
        self.sources().iter().all(|s| s.is_unchanged())
    }
    /// The path the model was opened from (a checkpoint's directory or index, as given).
    pub fn path(&self) -> &Path {
        self.container.path()
    }
    /// The tensor named `name` (as the file writes it).
    pub fn tensor(&self, name: &str) -> Option<&TensorView> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// Tell the kernel this process is done with `t`'s bytes for now (see `Source::release`).
    /// Does nothing while [`Self::hold_pages`] is in effect.
    pub fn release(&self, t: &TensorView) {
        if !self.pages_are_held() {
            self.source_of(t).release(t.data);
        }
    }
    /// Whether a [`HeldPages`] guard of this view is alive.
    fn pages_are_held(&self) -> bool {
        self.pages_held.0.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
    /// Until the returned guard is dropped, [`Self::release`] of one tensor does nothing: the
    /// caller releases the pages itself, several tensors per call ([`Self::release_all`]). Each
    /// `madvise(MADV_DONTNEED)` costs a TLB shootdown on every core the process runs on, so the
    /// trace, which maps a layer's weights ahead in one go, releases them in one go too, instead of
    /// once per matrix as the forward pass reads them. Memory is unchanged: the layer's pages were
    /// all mapped at once anyway.
    pub fn hold_pages(&self) -> HeldPages<'_> {
        // A count, not a flag: two holders of one view (a file traced against itself through
        // one view) each keep the hold until both have let go.
        self.pages_held
            .0
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeldPages { view: self }
    }
    /// [`Self::release`] of several tensors (indices into `tensors`) at once: the data ranges of
    /// one file that lie within 4 MiB of each other are released by one call. Each call is a
    /// `madvise` and, with several threads, a TLB shootdown; a gap released with its neighbours
    /// only drops page-table entries that a later read maps again.
    pub fn release_all(&self, tensors: &[usize]) {
        for (src, span) in self.merged_spans(tensors, 4 << 20) {
            src.release(span);
        }
    }
    /// The data ranges of `tensors` (indices into `tensors`), merged per file where they lie within
    /// `gap` bytes of each other, each with the file holding it: what [`Self::release_all`] and
    /// [`Self::populate_all`] hand to one `madvise` each.
    fn merged_spans(
        &self,
        tensors: &[usize],
        gap: u64,
    ) -> impl Iterator<Item = (&Source, crate::diag::Span)> + '_ {
        let spans: Vec<(usize, u64, u64, usize)> = tensors
            .iter()
            .filter_map(|&i| {
                self.tensors
                    .get(i)
                    .map(|t| (t.file, t.data.offset, t.data.end(), i))
            })
            .collect();
        merged_ranges(spans, gap)
            .into_iter()
            .map(move |(start, end, first)| {
                (
                    self.source_of(&self.tensors[first]),
                    crate::diag::Span {
                        offset: start,
                        len: end - start,
                    },
                )
            })
    }
    /// Bytes `range` of `t`'s data (offsets from the start of the data) into `out`, which is
    /// `range`'s length, with one positioned read of the file holding `t`
    /// ([`Source::read_at`]): the pages are never mapped into this process. For the scattered
    /// reads of a few KB (sampled rows, small tensors); read large tensors whole through
    /// [`Self::bytes`]. A range outside the data, or a file that shrank since it was opened, is a
    /// [`ReadFailure`] (the file keeps the first one: [`Self::read_failures`]).
    ///
    /// [`ReadFailure`]: crate::format::source::ReadFailure
    pub fn read_tensor_range(
        &self,
        t: &TensorView,
        range: std::ops::Range<u64>,
        out: &mut [u8],
    ) -> Result<(), crate::format::source::ReadFailure> {
        let src = self.source_of(t);
        let len = range.end.saturating_sub(range.start);
        let inside = range.start <= range.end && range.end <= t.data.len;
        if !inside || len != out.len() as u64 {
            // Our own bug, not the file's: record it like any failed read so nothing passes on it.
            return src.read_at(u64::MAX, out);
        }
        src.read_at(t.data.offset + range.start, out)
    }
    /// The first failed positioned read of each of the model's files that had one: (file, what).
    pub fn read_failures(&self) -> Vec<(&Path, crate::format::source::ReadFailure)> {
        self.sources()
            .into_iter()
            .filter_map(|s| s.read_failure().map(|f| (s.path(), f)))
            .collect()
    }

    /// Map the pages of several tensors (indices into `tensors`) into this process ahead of a
    /// pass that reads them whole: one `MADV_POPULATE_READ` per run of neighbouring tensors of one
    /// file (gaps of up to 64 KiB included), instead of a page fault per 64 KiB as they are read.
    /// Best effort: where the kernel refuses the advice, the reads fault the pages in as usual.
    pub fn populate_all(&self, tensors: &[usize]) {
        for (src, span) in self.merged_spans(tensors, 64 << 10) {
            src.populate(span);
        }
    }
    /// The raw bytes of a tensor's data (in bounds: the reader checked).
    pub fn bytes(&self, t: &TensorView) -> &[u8] {
        self.source_of(t)
            .slice(t.data.offset, t.data.len)
            .unwrap_or(&[])
    }
    /// The whole tensor as f32, in canonical order.
    pub fn dequantize(&self, t: &TensorView) -> Result<Vec<f32>, DequantError> {
        quant::dequantize_to_vec(t.dtype, self.bytes(t), &t.dims)
    }
    /// Rows `rows` of a tensor (canonical order), touching only their bytes.
    pub fn dequantize_rows(
        &self,
        t: &TensorView,
        rows: std::ops::Range<u64>,
    ) -> Result<Vec<f32>, DequantError> {
        let (n_rows, cols) = t.rows_cols();
        if rows.end > n_rows || rows.start > rows.end {
            return Err(DequantError::RowRange {
                start: rows.start,
                end: rows.end,
                rows: n_rows,
            });
        }
        let data = self.bytes(t);
        // An APR entry's dims may describe far more values than its bytes hold (a size finding,
        // not a read error): check the bytes back the dims before allocating from the dims.
        let expected = quant::tensor_n_bytes(t.dtype, &t.dims);
        if expected != Some(data.len() as u64) {
            return Err(DequantError::SizeMismatch {
                dtype: t.dtype,
                dims: t.dims.clone(),
                expected: expected.unwrap_or(u64::MAX),
                got: data.len() as u64,
            });
        }
        let n = (rows.end.saturating_sub(rows.start)).saturating_mul(cols);
        let mut out = vec![0f32; n as usize];
        quant::dequantize_rows(t.dtype, data, &t.dims, rows, &mut out)?;
        Ok(out)
    }
    /// Check an APR footer that was left unverified (files above
    /// `format::apr::AUTO_VERIFY_FOOTER_MAX`): reads every byte. A mismatch becomes a finding.
    pub fn verify_footer(&mut self) {
        let Container::Apr(a) = &mut self.container else {
            return;
        };
        if a.footer != crate::format::apr::Footer::Unverified {
            return;
        }
        a.footer = a.verify_footer();
        if let crate::format::apr::Footer::Invalid { stored, computed } = a.footer {
            let len = a.source.len();
            self.findings.push(
                Finding::new(&crate::format::lints::FOOTER_CRC, format!("footer CRC is {stored:#010x}, the file's bytes give {computed:#010x}"))
                    .span(Span::new(len - 4, 4))
                    .file(a.source.path())
                    .help("some bytes changed after writing; re-convert or compare checksums with the source"),
            );
        }
    }

    /// The version of the container (GGUF 2/3, APR major 2; 0 for SafeTensors, which has none).
    pub fn version(&self) -> u32 {
        match &self.container {
            Container::Gguf(g) => g.version,
            Container::Apr(a) => a.header.version_major as u32,
            // SafeTensors has no version field.
            Container::Hf(_) => 0,
        }
    }
}

/// `(file, start, end, tensor)` ranges merged per file where they lie within `gap` bytes of each
/// other: `(start, end, a tensor of that file)` for each merged range.
fn merged_ranges(mut spans: Vec<(usize, u64, u64, usize)>, gap: u64) -> Vec<(u64, u64, usize)> {
    spans.sort_unstable();
    let mut out = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let (file, start, mut end, first) = spans[i];
        let mut j = i + 1;
        while j < spans.len() && spans[j].0 == file && spans[j].1 <= end.saturating_add(gap) {
            end = end.max(spans[j].2);
            j += 1;
        }
        out.push((start, end, first));
        i = j;
    }
    out
}

#[cfg(test)]
mod release_tests {
    use super::merged_ranges;

    #[test]
    fn ranges_merge_within_the_gap_and_never_across_files() {
        // file, start, end, tensor — given out of order.
        let spans = vec![
            (0, 500, 600, 3),
            (0, 0, 100, 1),
            (1, 100, 200, 4),
            (0, 110, 200, 2),
            (0, 150, 180, 5),
        ];
        assert_eq!(
            merged_ranges(spans, 10),
            vec![(0, 200, 1), (500, 600, 3), (100, 200, 4)]
        );
        assert_eq!(
            merged_ranges(vec![(0, 0, 100, 1), (0, 111, 120, 2)], 10).len(),
            2
        );
        assert!(merged_ranges(Vec::new(), 10).is_empty());
    }

    #[test]
    fn pages_stay_held_until_the_last_guard_goes_and_clones_start_unheld() {
        use crate::format::Source;
        use crate::format::writer::generate::{TINY, gguf_model};
        let g = gguf_model(&TINY, crate::quant::DType::F32, 1);
        let view = super::ModelView::from_source(Source::from_vec(g.to_bytes(), "x.gguf"))
            .expect("a generated GGUF reads");
        assert!(!view.pages_are_held());
        let first = view.hold_pages();
        let second = view.hold_pages();
        assert!(view.pages_are_held());
        assert!(!view.clone().pages_are_held());
        drop(first);
        assert!(view.pages_are_held(), "the second guard still holds");
        drop(second);
        assert!(!view.pages_are_held());
    }
}
