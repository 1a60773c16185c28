//! The shipped examples, run as a user runs them. `examples/convert` must never damage its input
//! and must report errors as messages with exit status 2.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const G: &str = "gguf/tiny-qwen2-lq-q4_k_m.gguf";

/// The example binary, built (or found up to date) by cargo with the profile this test was built
/// with (so the library is not compiled again), at the path cargo reports.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile dir>/deps/<test>: `release` for `cargo test --release`, else the test profile.
    let release = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::inherit());
    if release {
        cmd.arg("--release");
    } else {
        cmd.args(["--profile", "test"]);
    }
    let out = cmd.output().expect("cargo runs");
    assert!(out.status.success(), "cargo build --example {name} failed");
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for example {name}"));
    assert!(exe.is_file(), "{} not built", exe.display());
    exe
}

fn convert(args: &[&Path]) -> Output {
    static CONVERT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    Command::new(CONVERT.get_or_init(|| example("convert")))
        .args(args)
        .output()
        .expect("convert runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scratch copy of the fixture GGUF.
fn scratch_gguf(dir: &Path) -> (PathBuf, Vec<u8>) {
    let bytes = std::fs::read(fixture(G)).expect("fixture");
    let p = dir.join("in.gguf");
    std::fs::write(&p, &bytes).expect("write");
    (p, bytes)
}

fn refused_and_intact(o: &Output, input: &Path, bytes: &[u8]) {
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        stderr(o).contains("is the input file"),
        "no message: {}",
        stderr(o)
    );
    assert_eq!(
        std::fs::read(input).expect("input still there"),
        bytes,
        "the input was changed"
    );
}

#[test]
fn convert_writes_an_apr_that_lints_clean() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("tiny.apr");
    let o = convert(&[&fixture(G), &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let apr = apr_lint::model::ModelView::open(&out).expect("the converted APR reads");
    let o = lint_pair(&apr, &gguf_view(G));
    assert_eq!(
        o.verdict,
        apr_lint::pipeline::Verdict::Pass,
        "{}",
        describe(&o)
    );
    // Only the output is left: no temporary file next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tiny.apr"]);
}

#[test]
fn convert_replaces_an_existing_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("tiny.apr");
    std::fs::write(&out, b"old contents").unwrap();
    let o = convert(&[&fixture(G), &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"APR\0");
}

#[test]
fn convert_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, bytes) = scratch_gguf(dir.path());
    // The same path, and the same file by another spelling.
    refused_and_intact(&convert(&[&input, &input]), &input, &bytes);
    let other = dir.path().join(".").join("in.gguf");
    refused_and_intact(&convert(&[&input, &other]), &input, &bytes);
}

#[cfg(unix)]
#[test]
fn convert_refuses_a_link_to_its_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, bytes) = scratch_gguf(dir.path());
    let sym = dir.path().join("sym.apr");
    std::os::unix::fs::symlink(&input, &sym).unwrap();
    refused_and_intact(&convert(&[&input, &sym]), &input, &bytes);
    let hard = dir.path().join("hard.apr");
    std::fs::hard_link(&input, &hard).unwrap();
    refused_and_intact(&convert(&[&input, &hard]), &input, &bytes);
}

#[test]
fn convert_errors_are_messages_with_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out.apr");
    // Not a GGUF: the reader's coded error, as a sentence, not a Debug dump.
    let not_gguf = dir.path().join("x.gguf");
    std::fs::write(&not_gguf, b"this is not a model file at all").unwrap();
    let missing = dir.path().join("missing.gguf");
    for (args, want) in [
        (vec![not_gguf.as_path(), out.as_path()], "error[APRL-F"),
        (vec![missing.as_path(), out.as_path()], "error[APRL-"),
        (vec![not_gguf.as_path()], "usage: convert"),
    ] {
        let o = convert(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(
            !e.contains("ReadError") && !e.contains("Lint {") && !e.contains("Os {"),
            "{args:?}: debug output: {e}"
        );
    }
    assert!(!out.exists(), "an output was written for a failed run");
    // A failed run leaves an existing output as it was (it is replaced only by a complete file).
    std::fs::write(&out, b"previous output").unwrap();
    let o = convert(&[&not_gguf, &out]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"previous output");
    std::fs::remove_file(&out).unwrap();
    // An output directory that does not exist.
    let o = convert(&[&fixture(G), &dir.path().join("no/such/dir/out.apr")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("error: cannot"), "{}", stderr(&o));
}

// --- examples/loader: the library used as a loader would (issue 14 §5) ---

fn loader(args: &[&Path]) -> Output {
    static LOADER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    Command::new(LOADER.get_or_init(|| example("loader")))
        .args(args)
        .output()
        .expect("loader runs")
}

/// A clean APR of the fixture GGUF, and one whose layer-0 `attn_q` bytes are transposed.
fn loader_pair(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use apr_lint::format::writer::apr::Flavour;
    use apr_lint::format::writer::convert::gguf_to_apr;
    use apr_lint::format::writer::generate::{TINY, gguf_model};
    use apr_lint::quant::DType;
    let reference = dir.join("ref.gguf");
    gguf_model(&TINY, DType::F32, 7).write(&reference).unwrap();
    let parsed = gguf_file_at(&reference);
    let clean = gguf_to_apr(&parsed, Flavour::Aprender);
    let good = dir.join("good.apr");
    clean.write(&good).unwrap();
    let mut bad = clean;
    let t = bad
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
        .expect("layer 0 q_proj");
    let n = 256;
    let v: Vec<[u8; 4]> = t
        .bytes
        .chunks_exact(4)
        .map(|c| c.try_into().unwrap())
        .collect();
    assert_eq!(v.len(), n * n);
    t.bytes = (0..n * n).flat_map(|i| v[(i % n) * n + i / n]).collect();
    let broken = dir.join("transposed.apr");
    bad.write(&broken).unwrap();
    (good, broken, reference)
}

fn gguf_file_at(p: &Path) -> apr_lint::format::gguf::GgufFile {
    apr_lint::format::gguf::read(apr_lint::format::Source::open(p).unwrap()).unwrap()
}

#[test]
fn loader_loads_a_clean_pair_and_refuses_a_transposed_one() {
    let dir = tempfile::tempdir().unwrap();
    let (good, broken, reference) = loader_pair(dir.path());
    let against = Path::new("--against");

    let o = loader(&[&good, against, &reference]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("loader: loaded"));
    // The [APR-LOAD] lines went through the loader's own logger.
    assert!(
        stderr(&o).contains("loader log: [APR-LOAD]"),
        "{}",
        stderr(&o)
    );

    let o = loader(&[&broken, against, &reference]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("loader: refusing to load")
            && err.contains("APRL-N")
            && err.contains("(transposed)")
            && err.contains("model.layers.0.self_attn.q_proj.weight"),
        "the refusal names the finding: {err}"
    );

    // One file alone: the clean APR loads; a file it cannot read is refused with its code.
    assert_eq!(loader(&[&good]).status.code(), Some(0));
    let truncated = dir.path().join("truncated.apr");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let o = loader(&[&truncated]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("APRL-F"), "{}", stderr(&o));
    assert_eq!(loader(&[]).status.code(), Some(2), "usage");
}
