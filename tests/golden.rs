//! Snapshot tests: the human, JSON, SARIF and GitHub output of a clean pair, a transposed pair, a
//! metadata-mismatch pair and a fatal error, compared with the files in `tests/golden/`. A wording or
//! format change is then a reviewed diff.
//!
//! Regenerate after an intended change: `APR_LINT_UPDATE_GOLDEN=1 cargo test --test golden`, then
//! review `git diff tests/golden`.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use apr_lint::format::gguf;
use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{TINY, gguf_model};
use apr_lint::quant::DType;

fn bin() -> Command {
    Command::new(
        std::env::var_os("APR_LINT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_apr-lint").into()),
    )
}

/// The files of one case, written into a fresh directory the binary runs in, so every path in the
/// output is the relative one given on the command line.
fn case_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = gguf_model(&TINY, DType::F32, 7);
    g.write(&d.join("ref.gguf")).unwrap();
    let parsed = gguf::read(apr_lint::format::Source::open(&d.join("ref.gguf")).unwrap()).unwrap();
    let mut apr = gguf_to_apr(&parsed, Flavour::Aprender);
    match name {
        "clean" => {}
        "transposed" => {
            let t = apr
                .tensors
                .iter_mut()
                .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
                .unwrap();
            let v: Vec<f32> = t
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let n = 256;
            assert_eq!(v.len(), n * n);
            let mut out = Vec::with_capacity(v.len() * 4);
            for r in 0..n {
                for c in 0..n {
                    out.extend_from_slice(&v[c * n + r].to_le_bytes());
                }
            }
            t.bytes = out;
        }
        "metadata" => {
            apr.metadata
                .iter_mut()
                .filter(|(k, _)| k == "rope_theta")
                .for_each(|e| e.1 = serde_json::json!(10000.0));
        }
        "fatal" => {
            let bytes = std::fs::read(d.join("ref.gguf")).unwrap();
            std::fs::write(d.join("ref.gguf"), &bytes[..bytes.len() / 2]).unwrap();
        }
        _ => unreachable!(),
    }
    apr.write(&d.join("model.apr")).unwrap();
    dir
}

fn output(dir: &Path, format: &str) -> (i32, String) {
    let o = bin()
        .args(["model.apr", "--against", "ref.gguf", "--format", format])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("APR_LINT_NO_TIMINGS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let code = o.status.code().unwrap_or(-1);
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    if format == "human" && code == 2 {
        // A fatal error's human report is on stderr (after the load log, which is not snapshotted).
        text = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| !l.starts_with("[APR-LOAD]"))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    if format == "sarif" {
        sarif::parse(&text);
        // The rule metadata is the whole registry (checked by the schema above): left out of the
        // snapshot, so a new code or an edited explanation does not rewrite every SARIF snapshot.
        let mut log: serde_json::Value = serde_json::from_str(&text).unwrap();
        log["runs"][0]["tool"]["driver"]["rules"] = serde_json::json!("(every registered lint)");
        text = serde_json::to_string_pretty(&log).unwrap() + "\n";
    }
    (code, text.replace(env!("CARGO_PKG_VERSION"), "VERSION"))
}

fn check(case: &str, want_code: i32) {
    let dir = case_dir(case);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("APR_LINT_UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (format, ext) in [
        ("human", "txt"),
        ("json", "json"),
        ("sarif", "sarif"),
        ("github", "github"),
    ] {
        let (code, text) = output(dir.path(), format);
        assert_eq!(code, want_code, "{case} {format}:\n{text}");
        let file = golden.join(format!("{case}.{ext}"));
        if update {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "no {}; run `APR_LINT_UPDATE_GOLDEN=1 cargo test --test golden`",
                file.display()
            )
        });
        if want != text {
            stale.push(format!(
                "{} differs; if the change is intended, run `APR_LINT_UPDATE_GOLDEN=1 cargo test --test golden` and review the diff\n--- want\n{want}\n--- got\n{text}",
                file.display()
            ));
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn golden_clean_pair() {
    check("clean", 0);
}

#[test]
fn golden_transposed_pair() {
    check("transposed", 1);
}

#[test]
fn golden_metadata_mismatch_pair() {
    check("metadata", 1);
}

#[test]
fn golden_fatal_error() {
    check("fatal", 2);
}

/// `rosetta` of an oracle model's clean APR (`clean`), the same with layer 1's `ffn_gate` and
/// `ffn_up` swapped (`swapped`: layer 0 agrees, layer 1's FFN diverges) and a K-quant model in the
/// `ggml` mode, written into a fresh directory as `model.apr` beside `ref.gguf`.
fn rosetta_dir(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gguf = match case {
        "ggml" => "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        _ => "gguf/tiny-llama-q8_0.gguf",
    };
    std::fs::copy(fixture(gguf), d.join("ref.gguf")).unwrap();
    let mut apr = clean_apr(gguf, Flavour::Realizar);
    if case == "swapped" {
        let pos = |n: &str| apr.tensors.iter().position(|t| t.name == n).unwrap();
        let (gi, ui) = (pos("blk.1.ffn_gate.weight"), pos("blk.1.ffn_up.weight"));
        let gate = apr.tensors[gi].bytes.clone();
        apr.tensors[gi].bytes = apr.tensors[ui].bytes.clone();
        apr.tensors[ui].bytes = gate;
    }
    apr.write(&d.join("model.apr")).unwrap();
    dir
}

/// Both files of each trace step run at once (issue 13): the reports must stay byte for byte
/// those of the trace that ran A's step, then B's. The snapshots were written by the binary of
/// commit bf144ce, which did; a stage of one side compared against the wrong stage of the other,
/// or stages reordered, changes them. Four threads, so the two sides overlap even on one core.
#[test]
fn golden_rosetta_reports() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("APR_LINT_UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (case, name, args, want_code) in [
        ("clean", "rosetta-clean.txt", &[][..], 0),
        ("swapped", "rosetta-swapped-v.txt", &["-v"][..], 0),
        (
            "swapped",
            "rosetta-swapped-teacher-forced.json",
            &["--teacher-forced", "--format", "json"][..],
            0,
        ),
        (
            "swapped",
            "rosetta-swapped-stop-at-first.json",
            &["--stop-at-first", "--format", "json", "--assert-match"][..],
            1,
        ),
        (
            "ggml",
            "rosetta-ggml.json",
            &["--mode", "ggml", "--format", "json"][..],
            0,
        ),
    ] {
        let dir = rosetta_dir(case);
        let o = bin()
            .args(["rosetta", "model.apr", "ref.gguf"])
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("APR_LINT_NO_TIMINGS", "1")
            .env("RAYON_NUM_THREADS", "4")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).replace(env!("CARGO_PKG_VERSION"), "VERSION");
        assert_eq!(o.status.code(), Some(want_code), "{name}:\n{text}");
        let file = golden.join(name);
        if update {
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        let want =
            std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("no {}", file.display()));
        if want != text {
            stale.push(format!(
                "{} differs\n--- want\n{want}\n--- got\n{text}",
                file.display()
            ));
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}
