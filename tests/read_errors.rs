//! A file that shrinks after it was opened: the lint's positioned reads of the sampled rows and
//! small tensors find the bytes missing, and the run ends with a coded finding at the byte
//! offset of the read, exit 2, and no panic (through the memory map the same read was a SIGBUS).
//! For a GGUF reference and for one shard of a Hugging Face checkpoint.

mod common;
use common::*;

use std::path::Path;

use apr_lint::format::gguf;
use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{TINY, gguf_model};
use apr_lint::model::{ModelView, TensorView};
use apr_lint::pipeline::{Options, Verdict, lint};
use apr_lint::quant::DType;

/// The last tensor in `file` of `v` by data offset: it is cut in half below.
fn last_tensor(v: &ModelView, file: usize) -> &TensorView {
    v.tensors
        .iter()
        .filter(|t| t.file == file)
        .max_by_key(|t| t.data.offset)
        .expect("a tensor")
}

/// Cut `path` inside `t`'s data (the tensors before it keep their bytes), lint, and check the
/// report: exit 2, an `APRL-F001` finding on `path` whose span is a read of `t`'s bytes that
/// runs past the new end.
fn truncate_and_lint(model: &ModelView, against: &ModelView, t: &TensorView, path: &Path) {
    // Not what the probe reads through the map (layer 0, the embedding): only the positioned
    // reads may meet the missing bytes, or the test process would die of SIGBUS.
    assert!(
        !t.name.contains(".0.") && !t.name.contains("embed"),
        "{}",
        t.name
    );
    assert!(t.data.len < 1 << 20, "{} is read through the map", t.name);
    let cut = t.data.offset + t.data.len / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("opens")
        .set_len(cut)
        .expect("truncates");
    let outcome = lint(model, Some(against), &Options::default());
    assert_eq!(outcome.verdict, Verdict::Error, "{:#?}", outcome.findings);
    assert_eq!(outcome.verdict.exit_code(), 2);
    let f = outcome
        .findings
        .iter()
        .find(|f| f.code == "APRL-F001")
        .unwrap_or_else(|| panic!("no read error among {:#?}", outcome.findings));
    assert_eq!(f.file.as_deref(), Some(path.display().to_string().as_str()));
    let span = f.span.expect("the read's bytes");
    assert!(
        span.offset >= t.data.offset && span.end() > cut && span.end() <= t.data.end(),
        "read {span:?} of `{}` (data {:?}, cut at {cut})",
        t.name,
        t.data
    );
    assert!(
        f.message
            .contains(&format!("at byte offset {}", span.offset)),
        "{}",
        f.message
    );
}

#[test]
fn a_reference_that_shrank_after_opening_is_a_read_error_with_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gguf_path, apr_path) = (dir.path().join("m.gguf"), dir.path().join("m.apr"));
    gguf_model(&TINY, DType::Q4_K, 7)
        .write(&gguf_path)
        .expect("writes");
    let parsed =
        gguf::read(apr_lint::format::Source::open(&gguf_path).expect("opens")).expect("reads");
    gguf_to_apr(&parsed, Flavour::Aprender)
        .write(&apr_path)
        .expect("writes");
    let (apr, reference) = (
        ModelView::open(&apr_path).expect("apr"),
        ModelView::open(&gguf_path).expect("gguf"),
    );
    // Clean before the cut.
    let outcome = lint(&apr, Some(&reference), &Options::default());
    assert_eq!(outcome.verdict, Verdict::Pass, "{:#?}", outcome.findings);
    let t = last_tensor(&reference, 0);
    // Sampled (not read whole), so the failing read is a cluster's.
    assert!(t.data.len > apr_lint::numeric::sample::SMALL_BYTES);
    truncate_and_lint(&apr, &reference, t, &gguf_path);
}

#[test]
fn a_shard_that_shrank_after_opening_names_the_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = fixture("hf").join("tiny-qwen2-f32-hf-bf16-sharded");
    for e in std::fs::read_dir(&from).expect("fixture") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copies");
    }
    let model = ModelView::open(&fixture("hf").join("tiny-qwen2-f32-hf-converted-bf16.gguf"))
        .expect("gguf");
    let checkpoint = ModelView::open(dir.path()).expect("checkpoint");
    let outcome = lint(&model, Some(&checkpoint), &Options::default());
    assert_ne!(outcome.verdict, Verdict::Error, "{:#?}", outcome.findings);
    let shard = checkpoint
        .tensors
        .iter()
        .map(|t| t.file)
        .max()
        .expect("tensors");
    assert!(shard > 0, "the fixture has several shards");
    let t = last_tensor(&checkpoint, shard);
    let path = checkpoint.source_of(t).path().to_path_buf();
    truncate_and_lint(&model, &checkpoint, t, &path);
}
