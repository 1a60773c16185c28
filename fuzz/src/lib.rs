//! What the fuzz targets share: read bytes through both entry points and check the invariants the
//! corrupt corpus (`tests/corrupt_corpus.rs`) asserts, then run the static checks.
//!
//! A panic anywhere here is a finding for libFuzzer: an `assert!` below failing means a reader
//! broke an invariant (an error code outside `APRL-F…`, a byte offset past the end of the file, a
//! finding spanning bytes the file does not have, the two entry points disagreeing).

use std::sync::OnceLock;

use apr_lint::check;
use apr_lint::diag::Finding;
use apr_lint::format::{Source, read_source};
use apr_lint::model::ModelView;
use apr_lint::rules::{Resolved, RuleSet};

/// Kept for the harness's structure; the hostile-`block_count` crash it guarded against is fixed
/// (`check::metadata` no longer enumerates a layer count above the tensor count), so no config
/// is skipped any more.
pub const MAX_CHECKED_LAYERS: u64 = u64::MAX;

/// Read `data` as a file named `name` with `read_source` and `ModelView::from_source`; when it is
/// readable, decode row 0 of every tensor and the tokenizer's token and merge lists.
pub fn read_and_view(data: &[u8], name: &str) -> Option<ModelView> {
    let len = data.len() as u64;
    let src = Source::from_vec(data.to_vec(), name);
    let read = read_source(src.clone());
    let view = ModelView::from_source(src);
    match (&read, &view) {
        (Err(a), Err(b)) => {
            assert_eq!(
                (a.code(), a.byte_offset()),
                (b.code(), b.byte_offset()),
                "the two entry points disagree"
            );
            assert!(
                a.code().starts_with("APRL-F"),
                "read error code {}",
                a.code()
            );
            if let Some(o) = a.byte_offset() {
                assert!(
                    o <= len,
                    "{} at offset {o}, past the end of a {len}-byte file",
                    a.code()
                );
            }
        }
        (Ok(_), Ok(_)) => {}
        _ => panic!("read_source and ModelView::from_source disagree on whether the file reads"),
    }
    let view = view.ok()?;
    for f in &view.findings {
        if let Some(s) = f.span {
            assert_span_inside(f, s, len);
        }
    }
    for t in &view.tensors {
        let _ = view.dequantize_rows(t, 0..1);
    }
    let _ = view.token_strings();
    let _ = view.merge_strings();
    Some(view)
}

/// A finding's span must lie inside its `len`-byte file.
fn assert_span_inside(f: &Finding, s: apr_lint::diag::Span, len: u64) {
    assert!(
        s.offset.checked_add(s.len).is_some_and(|e| e <= len),
        "finding {} spans [{}, +{}) of a {len}-byte file",
        f.code,
        s.offset,
        s.len
    );
}

/// The rule files shipped in the binary, parsed once.
pub fn builtin_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(RuleSet::builtin)
}

/// May the static checks run on this view (see [`MAX_CHECKED_LAYERS`])?
pub fn checkable(view: &ModelView) -> bool {
    view.config
        .layers
        .as_ref()
        .is_none_or(|l| l.value <= MAX_CHECKED_LAYERS)
}

/// Per-file checks of one view under `rules`.
pub fn check_one(view: &ModelView, rules: &RuleSet) -> Vec<Finding> {
    let mut out = Vec::new();
    if checkable(view) {
        let r = Resolved::new(view, rules);
        check::check_file(view, &r, &mut out);
    }
    out
}

/// Per-file checks of both views, then the pair (`a` under test, `b` the reference).
pub fn check_pair(a: &ModelView, b: &ModelView, rules: &RuleSet) -> Vec<Finding> {
    let mut out = Vec::new();
    if checkable(a) && checkable(b) {
        let (ra, rb) = (Resolved::new(a, rules), Resolved::new(b, rules));
        check::check_file(a, &ra, &mut out);
        check::check_file(b, &rb, &mut out);
        check::pair::check(a, &ra, b, &rb, &mut out);
    }
    out
}

/// What `apr-lint A --against B` does after reading: the whole pipeline under the built-in rules
/// and default options (static checks, weight comparison, probe) and every report of its outcome.
/// Findings must carry registered codes. (`rosetta`'s full forward is left to
/// `tests/hostile_model.rs`: it would halve this target's speed.)
pub fn lint_full(a: &ModelView, b: &ModelView) {
    use apr_lint::pipeline::{self, Options};
    use apr_lint::report;
    static OPTS: OnceLock<Options> = OnceLock::new();
    let opts = OPTS.get_or_init(Options::default);
    let o = pipeline::lint(a, Some(b), opts);
    let len_of = |file: &str| {
        [a, b]
            .into_iter()
            .find(|v| v.path().display().to_string() == file)
            .map(|v| v.source().len())
    };
    for f in &o.findings {
        assert!(
            apr_lint::registry::find(f.code).is_some(),
            "unregistered code {}",
            f.code
        );
        if let (Some(s), Some(len)) = (f.span, f.file.as_deref().and_then(len_of)) {
            assert_span_inside(f, s, len);
        }
    }
    let _ = report::human::render(&o, &[a, b], false, true);
    let _ = report::json::outcome(&o, false);
    let _ = report::sarif::outcome(&o);
    let _ = report::github::outcome(&o);
    let _ = report::rosetta::render(&o);
}

/// Split a `lint_pair` input: a little-endian u16 length, then that many bytes of the first file
/// (fewer if the input is shorter), the rest the second file.
pub fn split_pair(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return (&[], &[]);
    };
    let n = (u16::from_le_bytes(*head) as usize).min(rest.len());
    rest.split_at(n)
}

/// The inverse of [`split_pair`] (the seed generator writes pairs with it).
pub fn join_pair(a: &[u8], b: &[u8]) -> Vec<u8> {
    let n = u16::try_from(a.len()).expect("the first file of a pair seed is under 64 KiB");
    [&n.to_le_bytes()[..], a, b].concat()
}

/// Read `data` as a SafeTensors file (`format::safetensors::read`) and, when it is UTF-8, as a
/// shard index (`format::hf::parse_index`). A read error must have an `APRL-F05x` code and an offset
/// inside the input; a readable file's tensors must tile its data area exactly, their header entries
/// lie inside the header, and their bytes be sliceable.
pub fn read_safetensors(data: &[u8]) {
    use apr_lint::format::{hf, safetensors};
    let len = data.len() as u64;
    let check_err = |e: &apr_lint::diag::ReadError| {
        assert!(e.code().starts_with("APRL-F05"), "error code {}", e.code());
        if let Some(s) = e.span {
            assert!(
                s.offset.checked_add(s.len).is_some_and(|end| end <= len),
                "{} spans [{}, +{}) of a {len}-byte input",
                e.code(),
                s.offset,
                s.len
            );
        }
    };
    match safetensors::read(Source::from_vec(data.to_vec(), "fuzz.safetensors")) {
        Err(e) => check_err(&e),
        Ok(f) => {
            assert_eq!(f.header.offset, 8);
            assert_eq!(f.data.offset, f.header.end());
            assert_eq!(f.data.end(), len);
            let mut spans: Vec<_> = f.tensors.iter().map(|t| t.data).collect();
            spans.sort_by_key(|s| (s.offset, s.end()));
            let mut pos = f.data.offset;
            for s in spans {
                assert_eq!(s.offset, pos, "tensors do not tile the data area");
                pos = s.end();
            }
            assert_eq!(pos, len);
            for t in &f.tensors {
                assert!(t.entry.offset >= f.header.offset && t.entry.end() <= f.header.end());
                let want = t
                    .shape
                    .iter()
                    .try_fold(t.dtype.size(), |a, &d| a.checked_mul(d));
                assert_eq!(want, Some(t.data.len));
                assert!(f.bytes_of(t).is_some());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = hf::parse_index(text) {
            check_err(&e);
        }
    }
}
