//! Guarantees: read-only inputs, changed files refused, deterministic output.

mod common;
use common::*;

use std::io::Write;

use apr_lint::format::writer::apr::Flavour;
use apr_lint::model::ModelView;
use apr_lint::pipeline::{self, Options, Verdict};

#[test]
fn a_file_that_changes_while_checked_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let apr = dir.path().join("m.apr");
    clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender)
        .write(&apr)
        .unwrap();
    let gguf = gguf_view("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let view = ModelView::open(&apr).unwrap();
    assert_eq!(
        pipeline::lint(&view, Some(&gguf), &Options::default()).verdict,
        Verdict::Pass
    );
    // A writer appends to the file after it was mapped (a download still in progress).
    std::fs::OpenOptions::new()
        .append(true)
        .open(&apr)
        .unwrap()
        .write_all(&[0u8; 64])
        .unwrap();
    let o = pipeline::lint(&view, Some(&gguf), &Options::default());
    assert!(
        o.findings.iter().any(|f| f.code == "APRL-T002"),
        "{}",
        describe(&o)
    );
    assert_eq!(o.verdict, Verdict::Fail);
}

#[test]
fn inputs_are_not_modified_by_any_command() {
    let dir = tempfile::tempdir().unwrap();
    let apr = dir.path().join("m.apr");
    let gguf = dir.path().join("m.gguf");
    clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender)
        .write(&apr)
        .unwrap();
    std::fs::copy(fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf"), &gguf).unwrap();
    let before = (std::fs::read(&apr).unwrap(), std::fs::read(&gguf).unwrap());
    let mtimes = (
        std::fs::metadata(&apr).unwrap().modified().unwrap(),
        std::fs::metadata(&gguf).unwrap().modified().unwrap(),
    );
    let bin = env!("CARGO_BIN_EXE_apr-lint");
    let out = dir.path().join("t.npy");
    for args in [
        vec![
            apr.to_str().unwrap(),
            "--against",
            gguf.to_str().unwrap(),
            "-q",
        ],
        vec!["inspect", "-q", apr.to_str().unwrap()],
        vec![
            "dump",
            "-q",
            apr.to_str().unwrap(),
            "model.norm.weight",
            "-o",
            out.to_str().unwrap(),
        ],
        vec![
            "dump",
            "-q",
            gguf.to_str().unwrap(),
            "token_embd.weight",
            "-o",
            out.to_str().unwrap(),
        ],
    ] {
        std::process::Command::new(bin)
            .args(&args)
            .output()
            .unwrap();
    }
    assert_eq!(
        before,
        (std::fs::read(&apr).unwrap(), std::fs::read(&gguf).unwrap())
    );
    assert_eq!(
        mtimes,
        (
            std::fs::metadata(&apr).unwrap().modified().unwrap(),
            std::fs::metadata(&gguf).unwrap().modified().unwrap()
        )
    );
}

#[test]
fn mmap_and_owned_buffer_give_one_answer() {
    let path = fixture("gguf/tiny-llama-q8_0.gguf");
    let a = ModelView::open(&path).unwrap();
    let b = ModelView::from_source(apr_lint::Source::from_vec(
        std::fs::read(&path).unwrap(),
        path.clone(),
    ))
    .unwrap();
    let oa = lint_one(&a);
    let ob = lint_one(&b);
    assert_eq!(format!("{:?}", oa.findings), format!("{:?}", ob.findings));
    for t in &a.tensors {
        assert_eq!(
            a.dequantize(t).unwrap(),
            b.dequantize(b.tensor(&t.name).unwrap()).unwrap()
        );
    }
}

/// A mapped input that shrinks under the process: the SIGBUS guard turns the fault into exit 2 with
/// a coded message. Runs in a child process (this test binary, re-invoked), since the fault is real.
#[cfg(unix)]
#[test]
fn a_file_that_shrinks_while_mapped_exits_2_with_a_code() {
    if let Ok(path) = std::env::var("APR_LINT_SHRINK_CHILD") {
        apr_lint::format::source::install_sigbus_guard();
        let src = apr_lint::Source::open(std::path::Path::new(&path)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        // Touch the vanished pages.
        let sum: u64 = src.bytes().iter().step_by(4096).map(|&b| b as u64).sum();
        println!("read {sum} without a fault");
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::copy(fixture("gguf/tiny-llama-q8_0.gguf"), &p).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_file_that_shrinks_while_mapped_exits_2_with_a_code",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("APR_LINT_SHRINK_CHILD", &p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {} stderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("APRL-T002"), "{err}");
}
