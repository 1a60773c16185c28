//! The command line, end to end: inspect JSON contract, dump against ggml's own values, exit codes.

mod common;
use common::*;

use std::process::Command;

use apr_lint::format::npy;
use apr_lint::format::writer::apr::Flavour;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apr-lint"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = bin()
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn inspect_json_dims_are_reversed_ne() {
    for name in [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        "gguf/tiny-llama-q8_0.gguf",
        "gguf/tiny-qwen2-tied-q8_0.gguf",
    ] {
        let path = fixture(name);
        let (code, out, _) = run(&["inspect", "--format", "json", path.to_str().unwrap()]);
        assert_eq!(code, 0);
        let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["format"], "gguf");
        assert_eq!(doc["version"], 3);
        let g = gguf_file(name);
        let tensors = doc["tensors"].as_array().expect("tensors");
        assert_eq!(tensors.len(), g.tensors.len());
        for (t, info) in tensors.iter().zip(&g.tensors) {
            assert_eq!(t["name"], info.name);
            let ne: Vec<u64> = info.ne.clone();
            let rev: Vec<u64> = ne.iter().rev().copied().collect();
            assert_eq!(t["file_dims"], serde_json::json!(ne));
            assert_eq!(t["dims"], serde_json::json!(rev));
            assert!(t["role"].is_string(), "{} has no role", info.name);
        }
    }
    // The oracle's manifest records the types llama.cpp's writer used.
    let manifest =
        std::fs::read_to_string(fixture("weights/tiny-qwen2-lq-q4_k_m/manifest.tsv")).unwrap();
    let (_, out, _) = run(&[
        "inspect",
        "--format",
        "json",
        fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf").to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let t = doc["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == cols[1])
            .expect("tensor in manifest");
        assert!(
            t["dtype"].as_str().unwrap().eq_ignore_ascii_case(cols[3]),
            "{}",
            cols[1]
        );
        assert_eq!(t["file_dims"][0].as_u64().unwrap().to_string(), cols[4]);
        assert_eq!(t["file_dims"][1].as_u64().unwrap().to_string(), cols[5]);
    }
}

#[test]
fn inspect_apr_lists_tensors_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.apr");
    clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender)
        .write(&p)
        .unwrap();
    let (code, out, err) = run(&["inspect", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        err.contains("[APR-LOAD] Tensor 'lm_head.weight': dims=[512, 256], dtype=Q6_K"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["format"], "apr");
    for t in doc["tensors"].as_array().unwrap() {
        assert_eq!(t["dims"], t["file_dims"]);
    }
    // -q silences the load log.
    let (_, _, err) = run(&["inspect", "-q", p.to_str().unwrap()]);
    assert!(!err.contains("[APR-LOAD]"));
}

/// `dump` equals ggml's own `to_float` of the same tensors, bit for bit.
#[test]
fn dump_equals_ggml_dequantization() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let apr = dir.path().join("m.apr");
    clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Realizar)
        .write(&apr)
        .unwrap();
    for name in [
        "token_embd.weight",
        "blk.0.attn_k.weight",
        "blk.1.attn_v.weight",
        "blk.1.ffn_down.weight",
    ] {
        let want = npy::read_f32(
            &std::fs::read(fixture(&format!("weights/tiny-qwen2-lq-q4_k_m/{name}.npy"))).unwrap(),
        )
        .unwrap();
        for file in [&gguf, &apr] {
            let out = dir.path().join("t.npy");
            let (code, _, err) = run(&[
                "dump",
                "-q",
                file.to_str().unwrap(),
                name,
                "-o",
                out.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{err}");
            let got = npy::read_f32(&std::fs::read(&out).unwrap()).unwrap();
            assert_eq!(got.0, want.0, "{name} shape");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&got.1) == bits(&want.1),
                "{name} from {} differs from ggml",
                file.display()
            );
        }
    }
}

#[test]
fn dump_refuses_to_write_over_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::copy(fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf"), &p).unwrap();
    let before = std::fs::read(&p).unwrap();
    let (code, _, err) = run(&[
        "dump",
        p.to_str().unwrap(),
        "output_norm.weight",
        "-o",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    // 0: clean pair.
    let good = dir.path().join("good.apr");
    clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender)
        .write(&good)
        .unwrap();
    assert_eq!(
        run(&[
            good.to_str().unwrap(),
            "--against",
            gguf.to_str().unwrap(),
            "-q"
        ])
        .0,
        0
    );
    // Either order.
    assert_eq!(
        run(&[
            gguf.to_str().unwrap(),
            "--against",
            good.to_str().unwrap(),
            "-q"
        ])
        .0,
        0
    );
    // 1: dims reversed.
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.tensors
        .iter_mut()
        .filter(|t| t.name == "lm_head.weight")
        .for_each(|t| t.dims.reverse());
    let bad = dir.path().join("bad.apr");
    w.write(&bad).unwrap();
    let (code, out, err) = run(&[
        bad.to_str().unwrap(),
        "--against",
        gguf.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("TRANSPOSE NEEDED"), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["summary"]["verdict"], "fail");
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["class"] == "dims-reversed"
                && f["tensor"] == "lm_head.weight"
                && f["byte_offset"].is_u64())
    );
    // 2: corrupt input, with a code.
    let trunc = dir.path().join("trunc.gguf");
    let bytes = std::fs::read(&gguf).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err) = run(&[trunc.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("APRL-F017"), "{err}");
    let (code, _, _) = run(&["/nonexistent/model.apr"]);
    assert_eq!(code, 2);
    // 3: inconclusive (unknown architecture).
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "architecture")
        .for_each(|e| e.1 = serde_json::json!("rwkv"));
    let unk = dir.path().join("unk.apr");
    w.write(&unk).unwrap();
    assert_eq!(run(&[unk.to_str().unwrap(), "-q"]).0, 3);
    // -A drops a finding, -D promotes one.
    let (code, out, _) = run(&[
        bad.to_str().unwrap(),
        "--against",
        gguf.to_str().unwrap(),
        "-q",
        "-A",
        "dims-reversed",
        "-A",
        "APRL-L010",
        "-A",
        "APRL-M006",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(run(&[good.to_str().unwrap(), "-q", "-D", "APRL-L004"]).0, 1);
}

#[test]
fn sarif_and_github_formats() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.tensors
        .iter_mut()
        .filter(|t| t.name == "lm_head.weight")
        .for_each(|t| t.dims.reverse());
    let bad = dir.path().join("bad.apr");
    w.write(&bad).unwrap();
    let (_, out, _) = run(&[
        bad.to_str().unwrap(),
        "--against",
        gguf.to_str().unwrap(),
        "-q",
        "--format",
        "sarif",
    ]);
    let doc = sarif::parse(&out);
    assert_eq!(doc["version"], "2.1.0");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "APRL-L001"
        && r["locations"][0]["physicalLocation"]["region"]["byteOffset"].is_u64()));
    let (_, out, _) = run(&[
        bad.to_str().unwrap(),
        "--against",
        gguf.to_str().unwrap(),
        "-q",
        "--format",
        "github",
    ]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("::error file=") && l.contains("APRL-L001")),
        "{out}"
    );
}

#[test]
fn explain_and_rules() {
    let (code, out, _) = run(&["explain", "aprl-l001"]);
    assert_eq!(code, 0);
    assert!(out.contains("dims-reversed") && out.contains("How to fix"));
    assert_eq!(run(&["explain", "APRL-X999"]).0, 2);
    let (code, out, _) = run(&["rules", "--arch", "llama", "--format", "json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["architectures"][0]["arch"], "llama");
    // Every registered code explains itself with the four sections.
    for l in apr_lint::registry::all() {
        for s in [
            "What it catches",
            "Why it matters",
            "How to fix",
            "Precedent",
        ] {
            assert!(l.explain.contains(s), "{} lacks `{s}`", l.code);
        }
    }
    let codes: Vec<&str> = apr_lint::registry::all().iter().map(|l| l.code).collect();
    let mut dedup = codes.clone();
    dedup.dedup();
    assert_eq!(codes, dedup, "duplicate codes");
}

#[test]
fn json_output_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let good = dir.path().join("good.apr");
    clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender)
        .write(&good)
        .unwrap();
    let once = || {
        bin()
            .args([
                good.to_str().unwrap(),
                "--against",
                gguf.to_str().unwrap(),
                "-q",
                "--format",
                "json",
            ])
            .env("APR_LINT_NO_TIMINGS", "1")
            .output()
            .unwrap()
            .stdout
    };
    let a = once();
    let b = once();
    assert_eq!(a, b);
    let c = bin()
        .args([
            good.to_str().unwrap(),
            "--against",
            gguf.to_str().unwrap(),
            "-q",
            "--format",
            "json",
        ])
        .env("APR_LINT_NO_TIMINGS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
        .stdout;
    assert_eq!(a, c, "thread count changes the report");
}
