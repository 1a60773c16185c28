//! Batch mode (`apr-lint PATH…`): files found by magic in directories, pairing (same stem, common
//! stem, `[[pair]]`, `--against`, `--find-references`), skipped paths, the combined report in
//! every format and the worst verdict as the exit code. Run as a user would: the binary on a
//! directory of generated pairs.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use apr_lint::format::gguf;
use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{TINY, gguf_model};
use apr_lint::quant::DType;
use serde_json::Value;

fn bin() -> Command {
    Command::new(
        std::env::var_os("APR_LINT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_apr-lint").into()),
    )
}

const LFS: &str = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";

/// A GGUF at `gguf` and its APR conversion at `apr` (`transposed`: layer 0's Q weight transposed).
fn write_pair(gguf_path: &Path, apr_path: &Path, seed: u64, transposed: bool) {
    gguf_model(&TINY, DType::F32, seed)
        .write(gguf_path)
        .unwrap();
    let parsed = gguf::read(apr_lint::format::Source::open(gguf_path).unwrap()).unwrap();
    let mut apr = gguf_to_apr(&parsed, Flavour::Aprender);
    if transposed {
        let t = apr
            .tensors
            .iter_mut()
            .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
            .unwrap();
        let n = 256;
        let v: Vec<f32> = t
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        t.bytes = (0..n * n)
            .flat_map(|i| v[(i % n) * n + i / n].to_le_bytes())
            .collect();
    }
    apr.write(apr_path).unwrap();
}

/// `good.apr` ↔ `good.gguf`, `bad-q4_k.apr` ↔ `bad.gguf` (transposed), `lonely.apr` (no
/// reference), a model inside `.git/` and an LFS pointer `pulled-later.gguf`.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("models/.git")).unwrap();
    write_pair(
        &d.join("models/good.gguf"),
        &d.join("models/good.apr"),
        1,
        false,
    );
    write_pair(
        &d.join("models/bad.gguf"),
        &d.join("models/bad-q4_k.apr"),
        2,
        true,
    );
    std::fs::copy(d.join("models/good.apr"), d.join("models/lonely.apr")).unwrap();
    std::fs::copy(
        d.join("models/good.gguf"),
        d.join("models/.git/hidden.gguf"),
    )
    .unwrap();
    std::fs::write(d.join("models/pulled-later.gguf"), LFS).unwrap();
    std::fs::write(d.join("models/README.md"), "not a model").unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = bin()
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("APR_LINT_NO_TIMINGS", "1")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (code, out, err) = run(dir, &a);
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v)
}

/// (test, reference, pairing, verdict) of every entry.
fn entries(v: &Value) -> Vec<(String, Option<String>, String, String)> {
    v["pairs"]
        .as_array()
        .unwrap_or_else(|| panic!("no pairs: {v:#}"))
        .iter()
        .map(|p| {
            (
                p["test"].as_str().unwrap().to_string(),
                p["reference"].as_str().map(str::to_string),
                p["pairing"].as_str().unwrap().to_string(),
                p["summary"]["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn a_directory_is_paired_by_stem_and_the_worst_verdict_is_the_exit_code() {
    let dir = repo();
    let (code, v) = json(dir.path(), &["models"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        entries(&v),
        vec![
            (
                s("models/bad-q4_k.apr"),
                Some(s("models/bad.gguf")),
                s("common-stem"),
                s("fail")
            ),
            (
                s("models/good.apr"),
                Some(s("models/good.gguf")),
                s("same-stem"),
                s("pass")
            ),
            (s("models/lonely.apr"), None, s("unpaired"), s("pass")),
        ]
    );
    let pairs = v["pairs"].as_array().unwrap();
    assert!(
        pairs[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "APRL-N002"),
        "{:#}",
        pairs[0]
    );
    assert!(
        pairs[2]["note"]
            .as_str()
            .unwrap()
            .starts_with("not compared"),
        "{:#}",
        pairs[2]
    );
    let skipped: Vec<(&str, &str)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["path"].as_str().unwrap(), n["message"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, "models/.git");
    assert_eq!(skipped[1].0, "models/pulled-later.gguf");
    assert!(skipped[1].1.contains("git lfs pull"), "{skipped:?}");
    let sum = &v["summary"];
    assert_eq!(sum["verdict"], "fail");
    assert_eq!(
        (sum["files"].as_u64(), sum["compared"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        (sum["pass"].as_u64(), sum["fail"].as_u64()),
        (Some(2), Some(1))
    );
}

#[test]
fn human_report_ends_with_the_table() {
    let dir = repo();
    let (code, out, _) = run(dir.path(), &["models"]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let n = lines.len();
    assert!(n > 5, "{out}");
    let head: Vec<&str> = lines[n - 5].split_whitespace().collect();
    assert_eq!(
        head,
        ["file", "reference", "verdict", "errors", "warnings", "time"]
    );
    let row = |i: usize| lines[n - 4 + i].split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        row(0),
        [
            "models/bad-q4_k.apr",
            "models/bad.gguf",
            "FAIL",
            "2",
            "0",
            "0",
            "ms"
        ]
    );
    assert_eq!(row(1)[..3], ["models/good.apr", "models/good.gguf", "PASS"]);
    assert_eq!(row(2)[..3], ["models/lonely.apr", "(alone)", "PASS"]);
    assert!(lines[n - 1].starts_with("FAIL: 3 file(s)"), "{out}");
    // Each job's own report precedes the table, titled with its pair.
    assert!(
        out.contains("── models/bad-q4_k.apr against models/bad.gguf (common stem) ──"),
        "{out}"
    );
    assert!(out.contains("APRL-N002 transposed"), "{out}");
    // -q: the table and the verdict line only.
    let (_, quiet, err) = run(dir.path(), &["models", "-q"]);
    assert_eq!(quiet.lines().count(), 5, "{quiet}");
    assert!(!err.contains("[APR-LOAD]"), "{err}");
}

#[test]
fn sarif_is_one_run_with_every_result_and_github_annotates_each_file() {
    let dir = repo();
    let (code, out, _) = run(dir.path(), &["models", "--format", "sarif"]);
    assert_eq!(code, 1);
    let log = sarif::parse(&out);
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["invocations"][0]["exitCode"], 1);
    let uris: Vec<&str> = runs[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(uris.contains(&"models/bad-q4_k.apr"), "{uris:?}");
    assert!(uris.contains(&"models/lonely.apr") || uris.contains(&"models/good.apr"));
    assert_eq!(runs[0]["properties"]["pairs"].as_array().unwrap().len(), 3);

    let (code, out, _) = run(dir.path(), &["models", "--format", "github"]);
    assert_eq!(code, 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with("::error file=models/bad-q4_k.apr,title=APRL-N002::")),
        "{out}"
    );
    assert!(
        out.lines().any(
            |l| l.starts_with("::notice file=models/lonely.apr,") && l.contains("not compared")
        ),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("::notice file=models/pulled-later.gguf,")
                && l.contains("git lfs pull")),
        "{out}"
    );
}

#[test]
fn declared_pairs_against_and_named_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::create_dir_all(d.join("src")).unwrap();
    // Different stems in different directories: only the config pairs them.
    write_pair(
        &d.join("src/base.gguf"),
        &d.join("out/converted.apr"),
        3,
        false,
    );
    std::fs::write(
        d.join("apr-lint.toml"),
        "[[pair]]\ntest = \"out/converted.apr\"\nreference = \"src/base.gguf\"\n",
    )
    .unwrap();
    let (code, v) = json(d, &["out", "src"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        entries(&v),
        vec![(
            s("out/converted.apr"),
            Some(s("src/base.gguf")),
            s("declared"),
            s("pass")
        )]
    );
    assert!(
        v["pairs"][0]["note"]
            .as_str()
            .unwrap()
            .contains("apr-lint.toml line"),
        "{v:#}"
    );
    // `--against` once for all: every other model against it.
    std::fs::remove_file(d.join("apr-lint.toml")).unwrap();
    std::fs::copy(d.join("out/converted.apr"), d.join("out/copy.apr")).unwrap();
    let (code, v) = json(d, &["out", "--against", "src/base.gguf"]);
    assert_eq!(code, 0, "{v:#}");
    let e = entries(&v);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter()
            .all(|x| x.1.as_deref() == Some("src/base.gguf") && x.2 == "against")
    );
    // Two files named: batch mode; different stems in two directories pair with nothing, so
    // each is linted alone.
    let (code, v) = json(d, &["src/base.gguf", "out/converted.apr"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["summary"]["alone"], 2);
    assert_eq!(v["summary"]["compared"], 0);
}

#[test]
fn find_references_pairs_a_named_file_with_its_partner_beside_it() {
    let dir = repo();
    let d = dir.path();
    // Only the APR changed: its GGUF is found beside it.
    let (code, v) = json(d, &["--find-references", "models/bad-q4_k.apr"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(
        entries(&v),
        vec![(
            s("models/bad-q4_k.apr"),
            Some(s("models/bad.gguf")),
            s("common-stem"),
            s("fail")
        )]
    );
    // Only the GGUF changed: the APR converted from it is found, and nothing else is linted.
    let (code, v) = json(d, &["--find-references", "models/good.gguf"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        entries(&v),
        vec![(
            s("models/good.apr"),
            Some(s("models/good.gguf")),
            s("same-stem"),
            s("pass")
        )]
    );
    // Both sides named: one job, not two.
    let (_, v) = json(
        d,
        &["--find-references", "models/good.gguf", "models/good.apr"],
    );
    assert_eq!(entries(&v).len(), 1, "{v:#}");
}

#[test]
fn a_named_lfs_pointer_says_run_git_lfs_pull() {
    let dir = repo();
    let d = dir.path();
    // Single-file mode.
    let (code, v) = json(d, &["models/pulled-later.gguf"]);
    assert_eq!(code, 2);
    assert_eq!(v["findings"][0]["code"], "APRL-F004", "{v:#}");
    assert!(
        v["findings"][0]["help"]
            .as_str()
            .unwrap()
            .contains("git lfs pull")
    );
    // Batch mode: the pointer is an error of its own job; the other job still runs.
    let (code, v) = json(
        d,
        &[
            "--find-references",
            "models/pulled-later.gguf",
            "models/good.apr",
        ],
    );
    assert_eq!(code, 2, "{v:#}");
    let e = entries(&v);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].3, "error");
    assert_eq!(v["pairs"][0]["findings"][0]["code"], "APRL-F004");
    assert_eq!(e[1].3, "pass");
    let (_, out, err) = run(d, &["--find-references", "models/pulled-later.gguf"]);
    assert!(
        err.contains("git lfs pull") || out.contains("git lfs pull"),
        "{out}\n{err}"
    );
    assert!(!out.contains("neither GGUF nor APR"), "{out}");
}

#[test]
fn an_empty_directory_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let (code, v) = json(dir.path(), &["."]);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["summary"]["verdict"], "inconclusive");
    assert_eq!(v["summary"]["files"], 0);
}

/// A copy of a fixture checkpoint directory (config.json, tokenizer files, model.safetensors).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_checkpoint_directory_is_one_model_and_pairs_with_its_conversions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixture("hf/tiny-qwen2-f32"), &d.join("hub/tiny-qwen2"));
    std::fs::copy(
        fixture("hf/tiny-qwen2-f32-hf-converted-q8_0.gguf"),
        d.join("hub/tiny-qwen2-q8_0.gguf"),
    )
    .unwrap();
    std::fs::copy(
        fixture("hf/tiny-qwen2-f32-hf-converted-bf16.gguf"),
        d.join("hub/tiny-qwen2/converted-bf16.gguf"),
    )
    .unwrap();
    let (code, v) = json(d, &["hub"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        entries(&v),
        vec![
            (
                s("hub/tiny-qwen2/converted-bf16.gguf"),
                Some(s("hub/tiny-qwen2")),
                s("checkpoint"),
                s("pass")
            ),
            (
                s("hub/tiny-qwen2-q8_0.gguf"),
                Some(s("hub/tiny-qwen2")),
                s("common-stem"),
                s("pass")
            ),
        ]
    );
    // A changed shard names its checkpoint: both conversions are checked against it.
    let (code, v) = json(
        d,
        &["--find-references", "hub/tiny-qwen2/model.safetensors"],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(entries(&v).len(), 2, "{v:#}");
    assert!(
        entries(&v)
            .iter()
            .all(|e| e.1.as_deref() == Some("hub/tiny-qwen2")),
        "{v:#}"
    );
}

#[test]
fn files_in_the_current_directory_pair_however_they_are_written() {
    let dir = repo();
    let models = dir.path().join("models");
    // `a.gguf` and `./a.apr` lie in one directory.
    let (code, v) = json(&models, &["./good.apr", "good.gguf"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        entries(&v),
        vec![(
            s("./good.apr"),
            Some(s("good.gguf")),
            s("same-stem"),
            s("pass")
        )]
    );
}

/// A named pipe in a searched directory is not opened (opening one blocks until a writer comes):
/// the batch finishes with the models beside it.
#[test]
fn a_named_pipe_in_a_directory_does_not_hang_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pair(&d.join("m.gguf"), &d.join("m.apr"), 1, false);
    let made = Command::new("mkfifo").arg(d.join("pipe.gguf")).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let mut child = bin()
        .args([d.to_str().unwrap(), "-q", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = status.expect("the batch hung on a named pipe");
    assert_eq!(status.code(), Some(0));
}

/// A pair's entry of a batch report without the batch's own keys, and a single run's report
/// without its envelope: what must be equal.
fn comparable(mut v: Value, keys: &[&str]) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// Files of one model share work in a batch: one reference read once for several files under test
/// (stem pairing and `--against`), and the token and merge lists of files with the same vocabulary
/// scanned once. Each pair's entry must still be exactly what a single run of that pair reports,
/// including a pair whose merges differ from the others' by one swap (its own lists, not the
/// shared ones, decide its tokenizer finding).
#[test]
fn shared_references_and_vocabularies_give_each_pair_its_single_run_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("m")).unwrap();
    // One reference, three files under test: two good, one transposed.
    write_pair(
        &d.join("m/model.gguf"),
        &d.join("m/model-q8_0.apr"),
        1,
        false,
    );
    std::fs::copy(d.join("m/model-q8_0.apr"), d.join("m/model-f16.apr")).unwrap();
    write_pair(&d.join("m/x.gguf"), &d.join("m/model-bad.apr"), 1, true);
    std::fs::remove_file(d.join("m/x.gguf")).unwrap();
    // Another model with the same vocabulary (another seed).
    write_pair(&d.join("m/other.gguf"), &d.join("m/other.apr"), 2, false);
    // A pair whose GGUF's merges differ from the APR's (and from every other file's).
    write_pair(
        &d.join("m/swapped.gguf"),
        &d.join("m/swapped.apr"),
        3,
        false,
    );
    let mut g = gguf_model(&TINY, DType::F32, 3);
    for (k, v) in &mut g.metadata {
        if k == "tokenizer.ggml.merges"
            && let apr_lint::format::writer::gguf::MetaValue::ArrayString(m) = v
        {
            m.swap(0, 1);
        }
    }
    g.write(&d.join("m/swapped.gguf")).unwrap();

    let (code, v) = json(d, &["m"]);
    assert_eq!(code, 1, "{v:#}");
    let pairs = v["pairs"].as_array().unwrap().clone();
    assert_eq!(
        entries(&v)
            .iter()
            .map(|e| (e.0.as_str(), e.1.as_deref(), e.3.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("m/model-bad.apr", Some("m/model.gguf"), "fail"),
            ("m/model-f16.apr", Some("m/model.gguf"), "pass"),
            ("m/model-q8_0.apr", Some("m/model.gguf"), "pass"),
            ("m/other.apr", Some("m/other.gguf"), "pass"),
            ("m/swapped.apr", Some("m/swapped.gguf"), "fail"),
        ]
    );
    let (_, against) = json(d, &["m", "--against", "m/model.gguf"]);
    let against = against["pairs"].as_array().unwrap().clone();
    for p in pairs.iter().chain(&against) {
        let (test, reference) = (
            p["test"].as_str().unwrap(),
            p["reference"].as_str().unwrap(),
        );
        let (_, single) = json(d, &[test, "--against", reference]);
        assert_eq!(
            comparable(
                p.clone(),
                &["test", "reference", "pairing", "note", "elapsed_ms"]
            ),
            comparable(single, &["schema_version", "tool", "config"]),
            "{test} against {reference}"
        );
    }
    // The swapped merges are found in the batch as in the single run.
    let swapped = &pairs[4];
    assert!(
        swapped["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "APRL-M025"),
        "{swapped:#}"
    );
}
