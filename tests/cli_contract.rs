//! The output contract of every command (cli.md, issue 10): one verdict, one JSON envelope, SARIF and
//! GitHub output even on a fatal error, every code registered, every typed number checked.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use apr_lint::format::writer::apr::Flavour;
use serde_json::Value;

const G: &str = "gguf/tiny-qwen2-lq-q4_k_m.gguf";

/// The binary under test; `APR_LINT_BIN` points these tests at another build (to check that a test
/// fails on the code before a change).
fn bin() -> Command {
    Command::new(
        std::env::var_os("APR_LINT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_apr-lint").into()),
    )
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run_in(dir: Option<&Path>, args: &[&str]) -> Run {
    let mut c = bin();
    c.args(args)
        .env("NO_COLOR", "1")
        .env("APR_LINT_NO_TIMINGS", "1");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let o = c.output().expect("runs");
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into(),
        err: String::from_utf8_lossy(&o.stderr).into(),
    }
}

fn run(args: &[&str]) -> Run {
    run_in(None, args)
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); exit {}\n{}\n{}",
            r.code, r.out, r.err
        )
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Pair {
    dir: tempfile::TempDir,
    good: PathBuf,
    gguf: PathBuf,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.apr");
    clean_apr(G, Flavour::Aprender).write(&good).unwrap();
    Pair {
        gguf: fixture(G),
        good,
        dir,
    }
}

/// An APR whose RoPE base disagrees with the reference: a metadata error and a probe divergence.
fn theta_apr(dir: &Path) -> PathBuf {
    let mut w = clean_apr(G, Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "rope_theta")
        .for_each(|e| e.1 = serde_json::json!(10000.0));
    let p = dir.join("theta.apr");
    w.write(&p).unwrap();
    p
}

fn codes(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Fatal inputs: the file, and the code it must be reported with.
fn fatal_cases(dir: &Path) -> Vec<(Vec<String>, &'static str)> {
    let gguf = fixture(G);
    let bytes = std::fs::read(&gguf).unwrap();
    let trunc = dir.join("trunc.gguf");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let lfs = dir.join("lfs.gguf");
    std::fs::write(
        &lfs,
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nsize 123456\n",
    )
    .unwrap();
    let rules = dir.join("badrules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("x.toml"), "arch = [unclosed\n").unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "allow = 3\n").unwrap();
    let st = |p: &Path| p.to_str().unwrap().to_string();
    vec![
        (vec![st(&trunc)], "APRL-F017"),
        (vec![st(&lfs)], "APRL-F004"),
        (vec![st(&dir.join("missing.apr"))], "APRL-F001"),
        (vec![st(&gguf), "--rules".into(), st(&rules)], "APRL-R001"),
        (vec![st(&gguf), "--config".into(), st(&cfg)], "APRL-R001"),
        (
            vec![st(&gguf), "--threshold".into(), "NaN".into()],
            "APRL-T008",
        ),
    ]
}

#[test]
fn fatal_error_uses_the_one_envelope_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for (args, code) in fatal_cases(dir.path()) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        // JSON: findings hold the error, verdict "error", exit 2.
        let mut j = a.clone();
        j.extend(["--format", "json"]);
        let r = run(&j);
        assert_eq!(r.code, 2, "{args:?}\n{}", r.err);
        let doc = json(&r);
        assert_eq!(doc["summary"]["verdict"], "error", "{args:?}");
        assert_eq!(doc["schema_version"], 1);
        let f = &doc["findings"][0];
        assert_eq!(f["severity"], "error");
        assert!(f["code"].as_str().unwrap().starts_with("APRL-"), "{f}");
        assert_eq!(f["code"], code, "{args:?}");
        assert!(f["class"].is_string());
        assert_eq!(doc["summary"]["errors"], 1);
        let the_code = f["code"].as_str().unwrap().to_string();
        // SARIF: a valid log with the error as a result and a notification.
        let mut sa = a.clone();
        sa.extend(["--format", "sarif"]);
        let r = run(&sa);
        assert_eq!(r.code, 2, "{args:?}");
        let log = sarif::parse(&r.out);
        let run0 = &log["runs"][0];
        assert_eq!(run0["results"][0]["ruleId"], the_code.as_str());
        assert_eq!(run0["results"][0]["level"], "error");
        let inv = &run0["invocations"][0];
        assert_eq!(inv["executionSuccessful"], false);
        assert_eq!(inv["exitCode"], 2);
        assert_eq!(
            inv["toolExecutionNotifications"][0]["descriptor"]["id"],
            the_code.as_str()
        );
        // GitHub: an ::error line.
        let mut gh = a.clone();
        gh.extend(["--format", "github"]);
        let r = run(&gh);
        assert_eq!(r.code, 2);
        assert!(
            r.out
                .lines()
                .any(|l| l.starts_with("::error ") && l.contains(&the_code)),
            "{args:?}: {}",
            r.out
        );
    }
}

#[test]
fn json_of_a_file_with_a_byte_offset_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture(G)).unwrap();
    let trunc = dir.path().join("trunc.gguf");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let doc = json(&run(&[s(&trunc), "--format", "json"]));
    let f = &doc["findings"][0];
    assert_eq!(f["file"], s(&trunc));
    assert!(f["byte_offset"].is_u64(), "{f}");
}

#[test]
fn rosetta_verdict_json_human_and_exit_code_agree() {
    let p = pair();
    // An empty prompt is bad usage: exit 2 and verdict "error", not "pass" and 3.
    let r = run(&[
        "rosetta",
        s(&p.good),
        s(&p.gguf),
        "--prompt",
        "",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert_eq!(json(&r)["summary"]["verdict"], "error");
    // Activations into a directory that cannot be created: exit 2 with APRL-T007.
    let blocker = p.dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let under = blocker.join("acts");
    let r = run(&[
        "rosetta",
        s(&p.good),
        s(&p.gguf),
        "--save-activations",
        s(&under),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{}", r.err);
    let doc = json(&r);
    assert_eq!(doc["summary"]["verdict"], "error");
    assert!(codes(&doc).contains(&"APRL-T007".to_string()), "{doc}");
    let r = run(&[
        "rosetta",
        s(&p.good),
        s(&p.gguf),
        "--save-activations",
        s(&under),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.out.lines().last().unwrap().starts_with("ERROR:"),
        "{}",
        r.out
    );
    // A clean pair: pass everywhere.
    let r = run(&["rosetta", s(&p.good), s(&p.gguf), "--format", "json"]);
    assert_eq!(r.code, 0);
    assert_eq!(json(&r)["summary"]["verdict"], "pass");
    let r = run(&["rosetta", s(&p.good), s(&p.gguf), "--format", "sarif"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        sarif::parse(&r.out)["runs"][0]["invocations"][0]["exitCode"],
        0
    );
    let r = run(&["rosetta", s(&p.good), s(&p.gguf)]);
    assert_eq!(r.code, 0);
    assert!(
        r.out.lines().last().unwrap().starts_with("PASS:"),
        "{}",
        r.out
    );
    // A divergence with --assert-match: fail (1) everywhere.
    let theta = theta_apr(p.dir.path());
    let r = run(&[
        "rosetta",
        s(&theta),
        s(&p.gguf),
        "--assert-match",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert_eq!(json(&r)["summary"]["verdict"], "fail");
    let r = run(&["rosetta", s(&theta), s(&p.gguf), "--assert-match", "-q"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.out.lines().count(), 1, "{}", r.out);
    assert!(r.out.starts_with("FAIL:"), "{}", r.out);
    assert!(
        !r.err.contains("[APR-LOAD]"),
        "rosetta -q keeps the load log"
    );
}

#[test]
fn a_write_failure_is_exit_2() {
    let p = pair();
    // The report itself cannot be written.
    let out = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = bin()
        .args([s(&p.good), "--against", s(&p.gguf), "--format", "json"])
        .stdout(out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("APRL-T007"));
    // A dump into a directory that does not exist.
    let r = run(&[
        "dump",
        s(&p.gguf),
        "output_norm.weight",
        "-o",
        s(&p.dir.path().join("no/such/dir/x.npy")),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("APRL-T007"), "{}", r.err);
}

#[test]
fn a_pair_of_one_file_is_not_a_pass() {
    let p = pair();
    for other in [p.gguf.clone(), {
        let c = p.dir.path().join("copy.gguf");
        std::fs::copy(&p.gguf, &c).unwrap();
        c
    }] {
        let r = run(&[s(&p.gguf), "--against", s(&other), "--format", "json"]);
        assert_eq!(r.code, 3, "{}", r.out);
        let doc = json(&r);
        assert_eq!(doc["summary"]["verdict"], "inconclusive");
        assert!(codes(&doc).contains(&"APRL-T009".to_string()));
        let r = run(&["rosetta", s(&p.gguf), s(&other), "--format", "json"]);
        assert_eq!(r.code, 3, "{}", r.out);
        assert_eq!(json(&r)["summary"]["verdict"], "inconclusive");
        let r = run(&["rosetta", s(&p.gguf), s(&other), "-q"]);
        assert!(
            r.out.starts_with("INCONCLUSIVE:") && r.out.contains("APRL-T009"),
            "{}",
            r.out
        );
        let r = run(&[s(&p.gguf), "--against", s(&other)]);
        assert!(
            r.out.contains("APRL-T009") && r.out.contains("nothing was really"),
            "{}",
            r.out
        );
    }
}

#[test]
fn an_allowed_divergence_says_so_and_by_what() {
    let p = pair();
    let theta = theta_apr(p.dir.path());
    let r = run(&[s(&theta), "--against", s(&p.gguf), "--format", "json"]);
    assert_eq!(r.code, 1);
    let doc = json(&r);
    let found = codes(&doc);
    let toml = format!(
        "# allow what the RoPE base change produces\nallow = [\n{}]\n",
        found
            .iter()
            .map(|c| format!("  \"{c}\",\n"))
            .collect::<String>()
    );
    std::fs::write(p.dir.path().join("apr-lint.toml"), &toml).unwrap();
    let r = run_in(Some(p.dir.path()), &[s(&theta), "--against", s(&p.gguf)]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        !r.out.contains("[ROSETTA] FAILED"),
        "FAILED above PASS:\n{}",
        r.out
    );
    // The line of the config that allowed the probe's finding.
    // (the probe's divergence codes, APRL-N030…N033, successors of the retired N020)
    let n020 = 1 + toml
        .lines()
        .position(|l| {
            ["APRL-N030", "APRL-N031", "APRL-N032", "APRL-N033"]
                .iter()
                .any(|c| l.contains(c))
        })
        .unwrap();
    assert!(
        r.out.contains("the divergence was allowed")
            && r.out.contains(&format!("./apr-lint.toml line {n020}")),
        "{}",
        r.out
    );
    // The config file is named, with its counts, in the human report and in JSON.
    let n = found.len();
    assert!(
        r.out.contains(&format!(
            "config: ./apr-lint.toml ({n} allow{})",
            if n == 1 { "" } else { "s" }
        )),
        "{}",
        r.out
    );
    let doc = json(&run_in(
        Some(p.dir.path()),
        &[s(&theta), "--against", s(&p.gguf), "--format", "json"],
    ));
    assert_eq!(doc["config"]["path"], "./apr-lint.toml");
    assert_eq!(doc["config"]["allow"], n);
    assert!(
        doc["allowed"][0]["by"]
            .as_str()
            .unwrap()
            .contains("apr-lint.toml line ")
    );
    // The same by flag.
    let mut args = vec![s(&theta), "--against", s(&p.gguf)];
    for c in &found {
        args.extend(["-A", c.as_str()]);
    }
    let r = run(&args);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("by -A APRL-N031"), "{}", r.out);
    // Demoted to warnings (-W): no FAILED above the PASS either.
    let mut args = vec![s(&theta), "--against", s(&p.gguf)];
    for c in &found {
        args.extend(["-W", c.as_str()]);
    }
    let r = run(&args);
    assert_eq!(r.code, 0);
    assert!(
        !r.out.contains("[ROSETTA] FAILED") && r.out.contains("DIVERGED (warning)"),
        "{}",
        r.out
    );
}

#[test]
fn unknown_codes_and_classes_are_usage_errors() {
    let p = pair();
    let r = run(&[s(&p.good), "--against", s(&p.gguf), "-A", "APRL-L01"]);
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(
        r.err.contains("APRL-T003") && r.err.contains("did you mean APRL-L0"),
        "{}",
        r.err
    );
    let r = run(&[s(&p.good), "-D", "dims-reversd"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("did you mean dims-reversed"), "{}", r.err);
    let r = run(&[s(&p.good), "-W", "L004"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("APRL-L004"), "{}", r.err);
    std::fs::write(
        p.dir.path().join("apr-lint.toml"),
        "warn = [\"trasposed\"]\n",
    )
    .unwrap();
    let r = run_in(Some(p.dir.path()), &[s(&p.good), "--format", "json"]);
    assert_eq!(r.code, 2);
    let doc = json(&r);
    assert_eq!(doc["findings"][0]["code"], "APRL-T003");
    assert!(
        doc["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("apr-lint.toml line 1"),
        "{doc}"
    );
    // explain suggests the full code, or the codes of a class.
    let r = run(&["explain", "L001"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("APRL-L001"), "{}", r.err);
    let r = run(&["explain", "transposed"]);
    assert_eq!(r.code, 2);
    let want: Vec<&str> = apr_lint::registry::all()
        .into_iter()
        .filter(|l| l.class == "transposed")
        .map(|l| l.code)
        .collect();
    assert!(!want.is_empty());
    for c in want {
        assert!(r.err.contains(c), "{c} not suggested: {}", r.err);
    }
}

#[test]
fn every_typed_number_is_checked() {
    let p = pair();
    // ≥ 1 is out of range too: `max_diff ≤ 1 × max|ref|` passes an all-zero output, and 1e9 passes
    // a norm scaled by 0.5 just as `inf` did.
    for t in ["NaN", "-1", "inf", "0", "-inf", "1", "1e9"] {
        let t = &format!("--threshold={t}");
        let r = run(&[s(&p.good), "--against", s(&p.gguf), t]);
        assert_eq!(r.code, 2, "--threshold {t}: {}", r.out);
        assert!(
            r.err.contains("APRL-T008") && r.err.contains("--threshold"),
            "{}",
            r.err
        );
        let r = run(&["rosetta", s(&p.good), s(&p.gguf), t]);
        assert_eq!(r.code, 2, "rosetta --threshold {t}");
        // The machine report's finding carries a help line, as every finding does.
        let r = run(&[s(&p.good), "--against", s(&p.gguf), t, "--format", "json"]);
        let help = json(&r)["findings"][0]["help"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(help.contains("--threshold"), "help `{help}`");
    }
    let r = run(&[s(&p.good), "--against", s(&p.gguf), "--tokens", "1,99999"]);
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(
        r.err.contains("99999") && r.err.contains("512"),
        "{}",
        r.err
    );
    let r = run(&["rosetta", s(&p.good), s(&p.gguf), "--tokens", "512"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("vocabulary size 512"), "{}", r.err);
    let r = run(&[s(&p.good), "--against", s(&p.gguf), "--prompt", ""]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("--prompt"), "{}", r.err);
    // In range: accepted.
    assert_eq!(
        run(&[
            s(&p.good),
            "--against",
            s(&p.gguf),
            "--threshold",
            "0.01",
            "--tokens",
            "1,2,511"
        ])
        .code,
        0
    );
}

#[test]
fn subcommands_refuse_formats_they_cannot_produce() {
    let gguf = fixture(G);
    for args in [
        vec!["explain", "APRL-L001"],
        vec!["rules"],
        vec!["inspect", gguf.to_str().unwrap()],
    ] {
        for f in ["sarif", "github"] {
            let mut a = args.clone();
            a.extend(["--format", f]);
            let r = run(&a);
            assert_eq!(r.code, 2, "{a:?}: {}", r.out);
            assert!(r.err.contains("APRL-T008"), "{}", r.err);
            if f == "sarif" {
                sarif::parse(&r.out);
            } else {
                assert!(r.out.starts_with("::error "), "{}", r.out);
            }
        }
    }
    // `dump` writes a .npy (to stdout with `-o -`), never a report: every machine format is refused
    // in that format, and nothing is written (it used to print a human line under `--format json`).
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("n.npy");
    for f in ["json", "sarif", "github"] {
        let r = run(&[
            "--format",
            f,
            "dump",
            gguf.to_str().unwrap(),
            "output_norm.weight",
            "-o",
            s(&npy),
        ]);
        assert_eq!(r.code, 2, "dump --format {f}: {}", r.out);
        assert!(r.err.contains("APRL-T008"), "{}", r.err);
        match f {
            "json" => assert_eq!(json(&r)["summary"]["verdict"], "error"),
            "sarif" => {
                sarif::parse(&r.out);
            }
            _ => assert!(r.out.starts_with("::error "), "{}", r.out),
        }
        assert!(!npy.exists(), "dump --format {f} wrote {}", npy.display());
    }
}

#[test]
fn sarif_regions_and_uris() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("my models #1");
    std::fs::create_dir_all(&sub).unwrap();
    let gguf = sub.join("ref ä.gguf");
    std::fs::copy(fixture(G), &gguf).unwrap();
    let mut w = clean_apr(G, Flavour::Aprender);
    w.tensors
        .iter_mut()
        .filter(|t| t.name == "lm_head.weight")
        .for_each(|t| t.dims.reverse());
    let bad = sub.join("bad model.apr");
    w.write(&bad).unwrap();
    let r = run(&[s(&bad), "--against", s(&gguf), "-q", "--format", "sarif"]);
    assert_eq!(r.code, 1);
    let log = sarif::parse(&r.out);
    let results = log["runs"][0]["results"].as_array().unwrap();
    let mut with_region = 0;
    let mut without = 0;
    for res in results {
        let loc = &res["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.contains(' ') && !uri.contains('#'), "{uri}");
        assert!(uri.contains("my%20models%20%231"), "{uri}");
        match loc.get("region") {
            Some(r) => {
                assert!(r["byteOffset"].is_u64(), "{r}");
                with_region += 1;
            }
            None => without += 1,
        }
    }
    assert!(with_region > 0, "{results:?}");
    assert!(without > 0, "every finding had a span: {results:?}");
}

#[test]
fn options_before_or_after_the_command_and_typos() {
    let gguf = fixture(G);
    let g = gguf.to_str().unwrap();
    let a = run(&["-q", "inspect", g]);
    assert_eq!(a.code, 0, "{}", a.err);
    assert_eq!(a.out, run(&["inspect", "-q", g]).out);
    let r = run(&["--format", "json", "rules"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(json(&r)["architectures"].is_array());
    let r = run(&["--format", "json", "explain", "APRL-L001"]);
    assert_eq!(json(&r)["code"], "APRL-L001");
    // Main job with options first.
    let r = run(&["--format", "json", g]);
    assert!(json(&r)["summary"]["verdict"].is_string());
    // A usage error clap finds is reported in the format asked for, too.
    let r = run(&["--format", "json", g, "--no-such-option"]);
    assert_eq!(r.code, 2);
    let doc = json(&r);
    assert_eq!(doc["summary"]["verdict"], "error");
    assert_eq!(doc["findings"][0]["code"], "APRL-T008");
    // A typo of a command: the nearest command, not "cannot read".
    let r = run(&["rosseta", g, g]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("apr-lint rosetta"), "{}", r.err);
    assert!(!r.err.contains("cannot"), "{}", r.err);
    let r = run(&["inpsect", g]);
    assert!(r.err.contains("apr-lint inspect"), "{}", r.err);
    // A file with a command-like name is a model path.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&gguf, dir.path().join("rosseta")).unwrap();
    let r = run_in(Some(dir.path()), &["rosseta", "-q"]);
    assert_eq!(r.code, 0, "{}", r.err);
    // Options without a model: the model is missing, not the option unknown (it said "unexpected
    // argument '-q' found"), in every format.
    for args in [
        vec!["-q"],
        vec!["--format", "json"],
        vec!["--threshold", "0.01"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}");
        let said = format!("{}{}", r.out, r.err);
        assert!(
            said.contains("<MODEL>") && !said.contains("unexpected argument"),
            "{args:?}: {said}"
        );
    }
    // Options with `--help` and no command: the main job's help (it said "unexpected argument").
    let r = run(&["-q", "--help"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("--against"), "{}", r.out);
    assert_eq!(run(&["--help"]).code, 0);
    assert_eq!(run(&["-V"]).code, 0);
    // Global options with `-V`: the version (it said "unexpected argument '-q'").
    for args in [&["-q", "-V"][..], &["--format", "json", "--version"][..]] {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.err);
        assert!(r.out.starts_with("apr-lint "), "{}", r.out);
    }
    // A machine format gets the whole usage message, not its first line ("… were not provided:").
    let r = run(&["rosetta", s(&gguf), "--format", "github"]);
    assert_eq!(r.code, 2);
    assert!(
        r.out.starts_with("::error ") && r.out.contains("<B>"),
        "{}",
        r.out
    );
    let r = run(&["rosetta", s(&gguf), "--format", "json"]);
    assert!(
        json(&r)["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("<B>"),
        "{}",
        r.out
    );
}

#[test]
fn help_leads_with_the_main_form_and_explains_every_option() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    let usage = r.out.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(usage.contains("<MODEL> --against <REFERENCE>"), "{usage}");
    for cmd in ["lint", "rosetta", "inspect", "dump", "explain", "rules"] {
        let r = run(&["help", cmd]);
        assert_eq!(r.code, 0);
        // Every argument and option line has a help text after the name.
        let mut in_list = false;
        for l in r.out.lines() {
            if l == "Arguments:" || l == "Options:" {
                in_list = true;
                continue;
            }
            if l.is_empty() {
                in_list = false;
            }
            if in_list && !l.starts_with("          ") {
                let t = l.trim_start();
                let name_end = t.find("  ").unwrap_or(t.len());
                assert!(t[name_end..].trim().len() > 3, "`{cmd}`: no help for `{t}`");
            }
        }
        let listed = |o: &str| r.out.contains(o);
        match cmd {
            "explain" => {
                assert!(!listed("--verify-footer") && !listed("-A <CODE>") && !listed("--quiet"))
            }
            "rules" => {
                assert!(!listed("--verify-footer") && !listed("-A <CODE>") && !listed("--quiet"))
            }
            // `-v` there prints the whole [APR-LOAD] log, and says so.
            "inspect" | "dump" => {
                assert!(!listed("-A <CODE>") && listed("--verbose") && listed("[APR-LOAD]"))
            }
            _ => assert!(listed("-A <CODE>")),
        }
    }
}

#[test]
fn quiet_keeps_one_verdict_line() {
    let p = pair();
    let r = run(&[s(&p.good), "--against", s(&p.gguf), "-q"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.out.lines().count(), 1, "{}", r.out);
    assert!(r.out.starts_with("PASS:"), "{}", r.out);
    assert!(!r.err.contains("[APR-LOAD]"));
    let theta = theta_apr(p.dir.path());
    let r = run(&[s(&theta), "--against", s(&p.gguf), "-q"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.out.lines().count(), 1, "{}", r.out);
    assert!(r.out.starts_with("FAIL:"), "{}", r.out);
    let r = run(&["rosetta", s(&p.good), s(&p.gguf), "-q"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.out.lines().count(), 1, "{}", r.out);
    assert!(r.err.is_empty(), "{}", r.err);
}

#[test]
fn dump_names_the_other_scheme_writes_stdout_and_says_what_it_wrote() {
    let p = pair();
    // A GGUF name asked of the APR: the APR's name for it.
    let r = run(&[
        "dump",
        "-q",
        s(&p.good),
        "blk.0.attn_q.weight",
        "-o",
        s(&p.dir.path().join("x.npy")),
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("model.layers.0.self_attn.q_proj.weight"),
        "{}",
        r.err
    );
    assert!(r.err.contains("APRL-T005"));
    // And the other way round.
    let r = run(&[
        "dump",
        s(&p.gguf),
        "model.layers.1.mlp.down_proj.weight",
        "-o",
        s(&p.dir.path().join("x.npy")),
    ]);
    assert!(r.err.contains("blk.1.ffn_down.weight"), "{}", r.err);
    // -o - writes the .npy to stdout.
    let o = bin()
        .args(["dump", s(&p.gguf), "output_norm.weight", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let (shape, values) = apr_lint::format::npy::read_f32(&o.stdout).unwrap();
    assert_eq!(shape, vec![256]);
    assert_eq!(values.len(), 256);
    // A successful dump to a file prints one line: tensor, shape, dtype, path.
    let out = p.dir.path().join("n.npy");
    let r = run(&["dump", s(&p.gguf), "blk.0.attn_k.weight", "-o", s(&out)]);
    assert_eq!(r.code, 0);
    assert_eq!(r.out.lines().count(), 1, "{}", r.out);
    assert!(
        r.out.contains("[128, 256]") && r.out.contains("f32") && r.out.contains(s(&out)),
        "{}",
        r.out
    );
}

/// Every `APRL-X000` string in the source is a registered code (the emit sites and the lint tables).
#[test]
fn every_code_in_the_source_is_registered() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut seen = 0;
    let mut missing = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let b = text.as_bytes();
        for (i, _) in text.match_indices("APRL-") {
            let c = &b[i + 5..(i + 9).min(b.len())];
            if c.len() == 4 && c[0].is_ascii_uppercase() && c[1..].iter().all(u8::is_ascii_digit) {
                let code = &text[i..i + 9];
                // The lint! macro's own documentation placeholder.
                if code == "APRL-X000" {
                    continue;
                }
                seen += 1;
                if apr_lint::registry::find(code).is_none() {
                    missing.push(format!("{code} in {}", f.display()));
                }
            }
        }
    }
    assert!(seen > 50, "{seen}");
    assert!(missing.is_empty(), "not registered: {missing:?}");
    // T003…T006 answer `explain`.
    for c in ["APRL-T003", "APRL-T004", "APRL-T005", "APRL-T006"] {
        let r = run(&["explain", c]);
        assert_eq!(r.code, 0, "{c}: {}", r.err);
    }
}

/// For every kind of ending, the exit code, JSON `summary.verdict`, the human summary word and SARIF's
/// `exitCode` are one value.
#[test]
fn the_verdict_agrees_in_every_format() {
    let p = pair();
    let theta = theta_apr(p.dir.path());
    let mut w = clean_apr(G, Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "architecture")
        .for_each(|e| e.1 = serde_json::json!("rwkv"));
    let unknown = p.dir.path().join("unk.apr");
    w.write(&unknown).unwrap();
    let bytes = std::fs::read(&p.gguf).unwrap();
    let trunc = p.dir.path().join("t.gguf");
    std::fs::write(&trunc, &bytes[..bytes.len() / 3]).unwrap();
    let word = |code: i32| match code {
        0 => "pass",
        1 => "fail",
        2 => "error",
        3 => "inconclusive",
        _ => panic!("exit {code}"),
    };
    let cases: Vec<Vec<&str>> = vec![
        vec![s(&p.good), "--against", s(&p.gguf)],
        vec![s(&theta), "--against", s(&p.gguf)],
        vec![s(&unknown)],
        vec![s(&p.gguf), "--against", s(&p.gguf)],
        vec![s(&trunc), "--against", s(&p.gguf)],
        vec!["rosetta", s(&p.good), s(&p.gguf)],
        vec!["rosetta", s(&theta), s(&p.gguf), "--assert-match"],
        vec!["rosetta", s(&theta), s(&p.gguf)],
        vec!["rosetta", s(&p.good), s(&p.gguf), "--tokens", "9999"],
    ];
    let mut seen = std::collections::BTreeSet::new();
    for args in cases {
        let with = |f: &str| {
            let mut a = args.clone();
            a.extend(["--format", f]);
            run(&a)
        };
        let human = run(&args);
        let expect = word(human.code);
        seen.insert(expect);
        // Every exit, a fatal error's too, ends stdout with the verdict line.
        let last = human.out.lines().last().unwrap_or("");
        assert!(
            last.starts_with(&format!("{}:", expect.to_uppercase())),
            "{args:?}: exit {} but `{last}`",
            human.code
        );
        let j = with("json");
        assert_eq!(j.code, human.code, "{args:?}");
        assert_eq!(json(&j)["summary"]["verdict"], expect, "{args:?}");
        let sa = with("sarif");
        assert_eq!(sa.code, human.code, "{args:?}");
        assert_eq!(
            sarif::parse(&sa.out)["runs"][0]["invocations"][0]["exitCode"],
            human.code,
            "{args:?}"
        );
        assert_eq!(with("github").code, human.code, "{args:?}");
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}
