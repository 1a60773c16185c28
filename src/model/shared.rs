//! Work that several views of one batch can share, so a batch does it once:
//! - the pass over the token and merge lists (`ModelView::tokenizer_scan`) and the prompt's token
//!   ids (`ModelView::tokenize`) of files whose tokenizer records are byte-for-byte the same — the
//!   quantizations and fine-tunes of one model in a model repository, which all carry the base
//!   model's vocabulary;
//! - a file that several jobs read (`OpenViews`: one reference for several files under test).
//!
//! Takes views; keeps, per distinct (format, tokenizer record bytes), one copy of those bytes and
//! what was computed from them. A view is given a kept result only when its records are equal to
//! the kept bytes (compared in full, never by a hash), so the result is the one it would have
//! computed itself. Must not read anything but the tokenizer records.

use std::sync::{Arc, Mutex, OnceLock};

use super::ModelView;
use super::tokenize::TokenizeError;
use super::tokenizer::{Tokenizer, TokenizerScan};
use crate::format::{Container, Format};

/// The scans and tokenizations of a batch's distinct tokenizers (see the module docs). Shared by
/// the batch's workers; a list seen by two workers at once is scanned once, the second waiting for
/// the first.
#[derive(Debug, Default)]
pub struct SharedTokenizers {
    entries: Mutex<Vec<Arc<Entry>>>,
}

/// The texts one tokenizer has tokenized, and their ids (or why it could not).
#[derive(Debug, Default)]
pub struct Tokenized {
    texts: Mutex<Vec<(String, Arc<TokenizeCell>)>>,
}

type TokenizeCell = OnceLock<Result<Vec<u32>, TokenizeError>>;

impl Tokenized {
    /// The ids of `text`, made by `tokenize` the first time `text` is asked for.
    pub(super) fn get_or(
        &self,
        text: &str,
        tokenize: impl FnOnce() -> Result<Vec<u32>, TokenizeError>,
    ) -> Result<Vec<u32>, TokenizeError> {
        let cell = match self.texts.lock() {
            Ok(mut texts) => match texts.iter().find(|(t, _)| t == text) {
                Some((_, c)) => Arc::clone(c),
                None => {
                    let c = Arc::new(TokenizeCell::new());
                    texts.push((text.to_owned(), Arc::clone(&c)));
                    c
                }
            },
            Err(_) => return tokenize(),
        };
        cell.get_or_init(tokenize).clone()
    }
}

/// What a GGUF's or APR's text tokenizer is built from besides its token and merge lists: the
/// score record and the summary read from the other tokenizer keys.
#[derive(Debug)]
struct TokenizerEntry {
    scores: Vec<u8>,
    summary: Tokenizer,
    tokenized: Arc<Tokenized>,
}

/// One distinct pair of token and merge lists: their bytes, their scan and the text tokenizers
/// built on them.
#[derive(Debug)]
struct Entry {
    format: Format,
    lists: [Vec<u8>; 2],
    scan: OnceLock<TokenizerScan>,
    tokenizers: Mutex<Vec<TokenizerEntry>>,
}

impl SharedTokenizers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct lists were scanned.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// No list was scanned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Give `view` the scan of an earlier view whose token and merge list records are the same
    /// bytes (same format), or scan its lists now and keep the scan for the views that follow; and
    /// let it share the token ids of the texts it tokenizes with the views whose tokenizer records
    /// (scores and the other tokenizer keys too) are all the same. A view whose scan was already
    /// made, or whose lists are not in its container's records (a Hugging Face checkpoint's
    /// `tokenizer.json`), is left as it is.
    pub fn share(&self, view: &ModelView) {
        if view.scan.get().is_some() {
            return;
        }
        let (Some(lists), Some(scores)) = (
            list_bytes(view),
            record_bytes(view, "tokenizer.ggml.scores", "tokenizer.scores"),
        ) else {
            return;
        };
        let format = view.format();
        let entry = {
            let Ok(mut entries) = self.entries.lock() else {
                return;
            };
            match entries
                .iter()
                .find(|e| e.format == format && e.lists[0] == lists[0] && e.lists[1] == lists[1])
            {
                Some(e) => Arc::clone(e),
                None => {
                    let e = Arc::new(Entry {
                        format,
                        lists: lists.map(<[u8]>::to_vec),
                        scan: OnceLock::new(),
                        tokenizers: Mutex::new(Vec::new()),
                    });
                    entries.push(Arc::clone(&e));
                    e
                }
            }
        };
        // The same lists: the text tokenizer is the same when the scores and the summary are.
        if let Ok(mut tokenizers) = entry.tokenizers.lock() {
            let shared = match tokenizers
                .iter()
                .find(|t| t.summary == view.tokenizer && t.scores == scores)
            {
                Some(t) => Arc::clone(&t.tokenized),
                None => {
                    let tokenized = Arc::new(Tokenized::default());
                    tokenizers.push(TokenizerEntry {
                        scores: scores.to_vec(),
                        summary: view.tokenizer.clone(),
                        tokenized: Arc::clone(&tokenized),
                    });
                    tokenized
                }
            };
            let _ = view.tokenized.set(shared);
        }
        let scan = entry.scan.get_or_init(|| view.scan_tokenizer());
        let _ = view.scan.set(scan.clone());
    }
}

/// The bytes of the records the scan reads: the GGUF key-value records of the token and merge
/// arrays (key, type, count and every string), or the APR metadata's raw JSON of the vocabulary and
/// merges. An absent list is empty bytes (its scan is an empty list's either way).
fn list_bytes(view: &ModelView) -> Option<[&[u8]; 2]> {
    Some([
        record_bytes(view, "tokenizer.ggml.tokens", "tokenizer.vocabulary")?,
        record_bytes(view, "tokenizer.ggml.merges", "tokenizer.merges")?,
    ])
}

/// The bytes of the GGUF key-value record `gguf_key` (key, type, count and value) or of the APR
/// metadata's raw JSON under `apr_key`; empty when absent, None for a Hugging Face checkpoint.
fn record_bytes<'v>(view: &'v ModelView, gguf_key: &str, apr_key: &str) -> Option<&'v [u8]> {
    match &view.container {
        Container::Gguf(g) => match g.get(gguf_key) {
            Some(kv) => g.source.slice(kv.span.offset, kv.span.len),
            None => Some(&[]),
        },
        Container::Apr(a) => Some(a.get(apr_key).map_or(&[][..], |e| e.raw.get().as_bytes())),
        Container::Hf(_) => None,
    }
}

/// The files of a batch that several jobs read (one reference for several files under test:
/// `--against REF`, or `model-q4_k.apr` and `model-q8_0.apr` both paired with `model.gguf`): each
/// is opened and read once, kept while a job that reads it is left, and closed after its last job.
/// A file only one job reads is not kept (memory stays bounded by the jobs running). Keyed by the
/// path as the jobs spell it, so each job's report names the file as a single run would.
#[derive(Debug, Default)]
pub struct OpenViews {
    slots: Mutex<Vec<Slot>>,
}

type Opened = Result<Arc<ModelView>, crate::diag::ReadError>;

#[derive(Debug)]
struct Slot {
    path: std::path::PathBuf,
    /// Jobs that still have to read it.
    left: usize,
    view: Arc<OnceLock<Opened>>,
}

impl OpenViews {
    /// The set for a batch whose jobs read `paths` (one entry per job and file; a path that
    /// appears once is not kept).
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a std::path::Path>) -> Self {
        let mut slots: Vec<Slot> = Vec::new();
        for p in paths {
            match slots.iter_mut().find(|s| s.path == p) {
                Some(s) => s.left += 1,
                None => slots.push(Slot {
                    path: p.to_path_buf(),
                    left: 1,
                    view: Arc::new(OnceLock::new()),
                }),
            }
        }
        slots.retain(|s| s.left > 1);
        OpenViews {
            slots: Mutex::new(slots),
        }
    }

    /// How many files are read by more than one job (and still open or to be opened).
    pub fn shared(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.len())
    }

    /// The view of `path`: the kept one (opened by `open` on first use, a second caller waiting for
    /// the first), or, for a path no other job reads, `open`'s own. An error is every job's.
    pub fn open(
        &self,
        path: &std::path::Path,
        open: impl FnOnce(&std::path::Path) -> Result<ModelView, crate::diag::ReadError>,
    ) -> Opened {
        let cell = self.slots.lock().ok().and_then(|slots| {
            slots
                .iter()
                .find(|s| s.path == path)
                .map(|s| Arc::clone(&s.view))
        });
        match cell {
            Some(cell) => cell.get_or_init(|| open(path).map(Arc::new)).clone(),
            None => open(path).map(Arc::new),
        }
    }

    /// A job is done with `path`: after the last job, the kept view is dropped (its mapping
    /// closes once the jobs still holding it end).
    pub fn done(&self, path: &std::path::Path) {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(i) = slots.iter().position(|s| s.path == path)
        {
            slots[i].left = slots[i].left.saturating_sub(1);
            if slots[i].left == 0 {
                slots.swap_remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Source;
    use crate::format::writer::generate::{TINY, gguf_model};
    use crate::format::writer::gguf::MetaValue;
    use crate::quant::DType;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn gguf(seed: u64, swap_merges: bool) -> ModelView {
        let mut g = gguf_model(&TINY, DType::F32, seed);
        if swap_merges {
            for (k, v) in &mut g.metadata {
                if k == "tokenizer.ggml.merges"
                    && let MetaValue::ArrayString(m) = v
                {
                    m.swap(0, 1);
                }
            }
        }
        ModelView::from_source(Source::from_vec(g.to_bytes(), format!("{seed}.gguf")))
            .expect("a generated GGUF reads")
    }

    #[test]
    fn equal_lists_share_one_scan_and_different_lists_get_their_own() {
        let shared = SharedTokenizers::new();
        let (a, b, c) = (gguf(1, false), gguf(2, false), gguf(3, true));
        for v in [&a, &b, &c] {
            shared.share(v);
        }
        // Seeds 1 and 2 carry the same vocabulary; 3's merges differ by one swap.
        assert_eq!(shared.len(), 2);
        for v in [&a, &b, &c] {
            assert_eq!(v.tokenizer_scan(), &v.scan_tokenizer());
        }
        assert_ne!(a.tokenizer_scan().merges, c.tokenizer_scan().merges);
        // The prompt's ids: shared between a and b, made once.
        assert_eq!(a.tokenize("2+2="), b.tokenize("2+2="));
        assert!(Arc::ptr_eq(
            a.tokenized.get().expect("shared"),
            b.tokenized.get().expect("shared")
        ));
        assert!(!Arc::ptr_eq(
            a.tokenized.get().expect("shared"),
            c.tokenized.get().expect("shared")
        ));
    }

    #[test]
    fn a_file_several_jobs_read_is_opened_once_and_closed_after_its_last_job() {
        let (r, x, y) = (Path::new("r.gguf"), Path::new("x.apr"), Path::new("y.apr"));
        let views = OpenViews::new([x, r, y, r]);
        assert_eq!(views.shared(), 1);
        let opened = AtomicUsize::new(0);
        let open = |_: &Path| {
            opened.fetch_add(1, Ordering::Relaxed);
            Ok(gguf(1, false))
        };
        let first = views.open(r, open).expect("opens");
        let second = views.open(r, open).expect("opens");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(opened.load(Ordering::Relaxed), 1);
        // A file one job reads is opened by its job and not kept.
        let _ = views.open(x, open);
        assert_eq!(opened.load(Ordering::Relaxed), 2);
        views.done(r);
        assert_eq!(views.shared(), 1);
        views.done(r);
        assert_eq!(views.shared(), 0);
    }
}
