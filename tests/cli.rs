//! The command line, end to end: inspect JSON contract, dump against ggml's own values, exit codes.

mod common;
use common::*;

use std::process::Command;

use apr_lint::format::npy;
use apr_lint::format::writer::apr::{Flavour, apr_code};

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
    let w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.write(&p).unwrap();
    let n = w.tensors.len();
    let (code, out, err) = run(&["inspect", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    // A clean file: the summary line only; every tensor with `--load-log full`.
    assert!(!err.contains("[APR-LOAD] Tensor"), "{err}");
    assert!(
        err.contains(&format!("[APR-LOAD] {n} tensors: {n} OK\n")),
        "{err}"
    );
    let (_, _, full) = run(&["inspect", "--load-log", "full", p.to_str().unwrap()]);
    assert!(
        full.contains("[APR-LOAD] Tensor 'lm_head.weight': dims=[512, 256], dtype=Q6_K"),
        "{full}"
    );
    // `-v` is `--load-log full` in every command that loads an APR (it used to be accepted and
    // ignored by inspect and dump).
    let npy = dir.path().join("n.npy");
    for args in [
        vec!["inspect", "-v", p.to_str().unwrap()],
        vec!["-v", "inspect", p.to_str().unwrap()],
        vec![
            "dump",
            "-v",
            p.to_str().unwrap(),
            "model.norm.weight",
            "-o",
            npy.to_str().unwrap(),
        ],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("[APR-LOAD] Tensor '"))
                .count(),
            n,
            "{args:?}: {err}"
        );
    }
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
    assert!(err.contains("DIMS REVERSED"), "{err}");
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

/// The `[APR-LOAD]` lines of `stderr`.
fn load_log(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("[APR-LOAD]"))
        .collect()
}

fn transpose_f32(bytes: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// §6: the log shows the tensors that are not OK and a summary; the word is the final result
/// (a dims-only reversal is `DIMS REVERSED`, not `TRANSPOSE NEEDED`); `-v` / `--load-log full`
/// show every tensor.
#[test]
fn load_log_lists_what_is_not_ok_with_the_findings_word() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    let n = w.tensors.len();
    w.tensors
        .iter_mut()
        .filter(|t| t.name == "lm_head.weight")
        .for_each(|t| t.dims.reverse());
    let bad = dir.path().join("bad.apr");
    w.write(&bad).unwrap();
    let (code, _, err) = run(&[bad.to_str().unwrap(), "--against", gguf.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        load_log(&err),
        [
            "[APR-LOAD] Tensor 'lm_head.weight': dims=[256, 512], dtype=Q6_K",
            "[APR-LOAD] Expected layout: [vocab, hidden] (row = token)",
            "[APR-LOAD] Actual layout: [256, 512] - DIMS REVERSED (expected [512, 256]; APRL-L001)",
            &format!("[APR-LOAD] {n} tensors: {} OK, 1 DIMS REVERSED", n - 1),
        ],
        "{err}"
    );
    for flag in ["-v", "--load-log=full"] {
        let (_, _, err) = run(&[
            bad.to_str().unwrap(),
            "--against",
            gguf.to_str().unwrap(),
            flag,
        ]);
        let log = load_log(&err);
        assert_eq!(log.len(), 3 * n + 1, "{flag}: {err}");
        assert_eq!(log.iter().filter(|l| l.ends_with(" - OK")).count(), n - 1);
    }
    // The static verdict alone (inspect) says the same.
    let (_, _, err) = run(&["inspect", bad.to_str().unwrap()]);
    assert!(
        err.contains("[APR-LOAD] Actual layout: [256, 512] - DIMS REVERSED"),
        "{err}"
    );
    let (_, _, err) = run(&["inspect", "-q", bad.to_str().unwrap()]);
    assert!(load_log(&err).is_empty(), "{err}");
}

/// §6: a transposed square `q_proj` has the right dims; only the weight comparison sees it, and the
/// log says so instead of `OK`.
#[test]
fn load_log_word_of_a_transposed_square_matrix_comes_from_the_weights() {
    use apr_lint::format::writer::generate::{TINY, gguf_model};
    use apr_lint::quant::DType;
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("m.gguf");
    gguf_model(&TINY, DType::F32, 7).write(&gguf).unwrap();
    let g = apr_lint::format::gguf::read(apr_lint::Source::open(&gguf).unwrap()).unwrap();
    let mut w = apr_lint::format::writer::convert::gguf_to_apr(&g, Flavour::Aprender);
    let name = "model.layers.0.self_attn.q_proj.weight";
    let t = w.tensors.iter_mut().find(|t| t.name == name).unwrap();
    assert_eq!(t.dims, [256, 256]);
    t.bytes = transpose_f32(&t.bytes, 256, 256);
    let apr = dir.path().join("m.apr");
    w.write(&apr).unwrap();
    let (code, _, err) = run(&[apr.to_str().unwrap(), "--against", gguf.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let log = load_log(&err);
    assert!(
        log.contains(&"[APR-LOAD] Actual layout: [256, 256] - TRANSPOSE NEEDED (APRL-N002)"),
        "{err}"
    );
    assert!(
        log.contains(&format!("[APR-LOAD] Tensor '{name}': dims=[256, 256], dtype=F32").as_str()),
        "{err}"
    );
}

/// §7: no Rust debug text, float noise, `1 roles` or `[4,256]` in what a person reads.
#[test]
fn human_output_has_no_debug_formatting() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    // The GGUF stores rms eps as the f32 nearest 1e-6.
    let (code, out, _) = run(&["inspect", gguf.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("rms eps 1e-6,"), "{out}");
    // One role in another dtype: "1 role holds", dims and token ids as `[4, 256]`.
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.norm.weight")
        .unwrap();
    assert_eq!(t.code, apr_code(apr_lint::DType::F32));
    t.bytes = t
        .bytes
        .chunks_exact(4)
        .flat_map(|c| {
            half::f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()
        })
        .collect();
    t.code = apr_code(apr_lint::DType::F16);
    let apr = dir.path().join("m.apr");
    w.write(&apr).unwrap();
    let (code, out, err) = run(&[
        apr.to_str().unwrap(),
        "--against",
        gguf.to_str().unwrap(),
        "-v",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 role holds another quantization"), "{out}");
    assert!(out.contains("[ROSETTA] Token IDs: ["), "{out}");
    for l in out.lines().filter(|l| l.starts_with("[ROSETTA]")) {
        let squeezed = l
            .bytes()
            .zip(l.bytes().skip(1))
            .any(|(a, b)| a == b',' && b.is_ascii_digit());
        assert!(!squeezed, "{l}");
    }
    // Tolerances in the rule listing.
    let out = human(&["rules", "--arch", "qwen2"]);
    assert!(out.contains("F32 nmse≤1e-10 cos≥0.999999"), "{out}");
    // A footer whose CRC does not match is said in words.
    let mut bytes = std::fs::read(&apr).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = dir.path().join("bad.apr");
    std::fs::write(&bad, &bytes).unwrap();
    let (_, out, err) = run(&["inspect", bad.to_str().unwrap()]);
    assert!(out.contains("footer CRC BAD (stored 0x"), "{out}{err}");
    assert!(!out.contains("Invalid {"), "{out}");
}

/// Human report of `args` (stdout).
fn human(args: &[&str]) -> String {
    run(args).1
}

/// No snippet header of a binary file reads `file:line:col`, and no raw hex is shown where a record
/// decodes the bytes.
fn assert_no_line_col_or_hex(out: &str) {
    for l in out.lines() {
        if let Some(i) = l.find("╭─[") {
            let head = &l[i..];
            let digits_colon = head
                .split(':')
                .skip(1)
                .all(|p| p.trim_end_matches(']').chars().all(|c| c.is_ascii_digit()));
            assert!(!digits_colon || !head.contains(':'), "line:col header: {l}");
        }
        assert!(!l.contains(": 0x0"), "hex dump: {l}");
    }
}

/// §7: a snippet shows what the bytes mean: the tensor's index entry (with the data as a second
/// label), the metadata `key: value`, the header fields — titled with the byte offset.
#[test]
fn snippets_decode_the_record_a_finding_points_at() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    // A tensor: dims reversed.
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.tensors
        .iter_mut()
        .filter(|t| t.name == "lm_head.weight")
        .for_each(|t| t.dims.reverse());
    let bad = dir.path().join("bad.apr");
    w.write(&bad).unwrap();
    let v = apr_lint::ModelView::open(&bad).unwrap();
    let t = v.tensor("lm_head.weight").unwrap();
    let out = human(&[bad.to_str().unwrap()]);
    assert!(
        out.contains(&format!(
            "bad.apr, tensor index entry, byte {} ({:#x})]",
            t.dims_span.offset, t.dims_span.offset
        )),
        "{out}"
    );
    assert!(out.contains("name     lm_head.weight"), "{out}");
    // The metadata entry for that tensor, decoded.
    assert!(
        out.contains("tensor_shapes[\"lm_head.weight\"]: [512, 256]"),
        "{out}"
    );
    assert!(out.contains("dtype    Q6_K"), "{out}");
    assert!(out.contains("dims     [256, 512]"), "{out}");
    assert!(
        out.contains(&format!(
            "the data: bytes {}..{} ({} bytes)",
            t.data.offset,
            t.data.offset + t.data.len,
            t.data.len
        )),
        "{out}"
    );
    assert_no_line_col_or_hex(&out);
    // Metadata: the key and its value.
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "num_heads")
        .for_each(|e| e.1 = serde_json::json!(8));
    let heads = dir.path().join("heads.apr");
    w.write(&heads).unwrap();
    let out = human(&[heads.to_str().unwrap(), "--against", gguf.to_str().unwrap()]);
    assert!(out.contains("heads.apr, APR metadata, byte "), "{out}");
    assert!(out.contains("│ num_heads: 8\n"), "{out}");
    assert_no_line_col_or_hex(&out);
    // A GGUF key: decoded from the reader's record.
    let g = dir.path().join("ref.gguf");
    std::fs::write(
        &g,
        gguf_with_keys(
            "gguf/tiny-qwen2-lq-q4_k_m.gguf",
            &[("{arch}.attention.head_count", "8")],
        ),
    )
    .unwrap();
    let out = human(&[g.to_str().unwrap()]);
    assert!(out.contains("ref.gguf, metadata key "), "{out}");
    assert!(out.contains("qwen2.attention.head_count 8"), "{out}");
    assert_no_line_col_or_hex(&out);
    // The header: the flags a column-major finding points at.
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.flags |= 0x0800;
    let cm = dir.path().join("cm.apr");
    w.write(&cm).unwrap();
    let out = human(&[cm.to_str().unwrap()]);
    assert!(out.contains("cm.apr, APR header, byte 6 (0x6)]"), "{out}");
    assert!(
        out.contains("flags    0x0c00 [LAYOUT_ROW_MAJOR LAYOUT_COLUMN_MAJOR]"),
        "{out}"
    );
    assert!(out.contains("tensors  27"), "{out}");
    assert_no_line_col_or_hex(&out);
}

/// The APR metadata keys a snippet shows are the finding's own (typed), not the keys its message
/// happens to name: a head-count finding whose message names no key shows `num_kv_heads`, and a
/// finding about `num_kv_heads` labels it first even when `num_heads` comes before it.
#[test]
fn an_apr_metadata_snippet_shows_the_findings_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "num_kv_heads")
        .for_each(|e| e.1 = serde_json::json!(3));
    let kv = dir.path().join("kv.apr");
    w.write(&kv).unwrap();
    let out = human(&[kv.to_str().unwrap()]);
    let block = out
        .split("\n\n")
        .find(|b| b.contains("is not a multiple of n_head_kv 3"))
        .unwrap_or_else(|| panic!("no head-count finding: {out}"));
    assert!(block.contains("kv.apr, APR metadata, byte "), "{block}");
    assert!(block.contains("│ num_kv_heads: 3\n"), "{block}");
    assert!(!block.contains("│ num_heads: "), "{block}");
}

/// A NaN in a norm weight: the main job's `[ROSETTA]` lines print the stage's max_diff as the
/// finding and `rosetta` do (`inf`), not `NaN` (the JSON `null` was rendered as NaN).
#[test]
fn a_non_finite_probe_stage_reads_the_same_in_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nan.apr");
    let mut w = clean_apr("gguf/tiny-qwen2-lq-q4_k_m.gguf", Flavour::Aprender);
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.layers.0.input_layernorm.weight")
        .unwrap();
    t.bytes[4 * 129..4 * 130].copy_from_slice(&f32::NAN.to_le_bytes());
    w.write(&p).unwrap();
    let g = fixture("gguf/tiny-qwen2-lq-q4_k_m.gguf");
    let line = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("[ROSETTA] attn_norm "))
            .unwrap_or_else(|| panic!("no attn_norm line:\n{out}"))
            .to_string()
    };
    let (code, main, _) = run(&[p.to_str().unwrap(), "--against", g.to_str().unwrap()]);
    assert_eq!(code, 1, "{main}");
    let (_, trace, _) = run(&["rosetta", p.to_str().unwrap(), g.to_str().unwrap()]);
    for l in [line(&main), line(&trace)] {
        assert!(
            l.contains("max_diff=inf, mean_diff=inf") && !l.contains("NaN"),
            "{l}"
        );
    }
    assert!(
        main.contains("diverges first at `attn_norm`: max_diff inf"),
        "{main}"
    );
}

/// A fatal error (a file that does not read, exit 2) shows the record reading stopped in, decoded
/// as far as it can be followed, as a finding in a readable file does: the GGUF key/value, the APR
/// header fields, the APR index entry, the SafeTensors JSON text — titled with the byte offset.
#[test]
fn fatal_errors_show_the_record_reading_stopped_in() {
    let dir = tempfile::tempdir().unwrap();
    let name = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
    let fatal = |path: &std::path::Path, code: &str| {
        let (exit, _, err) = run(&[path.to_str().unwrap()]);
        assert_eq!(exit, 2, "{err}");
        assert!(err.contains(code), "{err}");
        assert_no_line_col_or_hex(&err);
        err
    };
    // GGUF: the first key's value type id is 99.
    let g = gguf_file(name);
    let kv = &g.metadata[0];
    let type_at = (kv.span.offset + 8 + kv.key.len() as u64) as usize;
    let mut bytes = std::fs::read(fixture(name)).unwrap();
    bytes[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let p = dir.path().join("type.gguf");
    std::fs::write(&p, &bytes).unwrap();
    let err = fatal(&p, "APRL-F");
    assert!(
        err.contains(&format!(
            "type.gguf, metadata key 1 of {}, byte {type_at} ({type_at:#x})]",
            g.metadata.len()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} value type id 99", kv.key)),
        "{err}"
    );
    // APR: version 3.0 in the header.
    let w = clean_apr(name, Flavour::Aprender);
    let mut bytes = w.to_bytes();
    bytes[4] = 3;
    let p = dir.path().join("v3.apr");
    std::fs::write(&p, &bytes).unwrap();
    let err = fatal(&p, "APRL-F");
    assert!(err.contains("v3.apr, APR header, byte 4 (0x4)]"), "{err}");
    assert!(err.contains("version  3.0"), "{err}");
    assert!(err.contains("tensors  27"), "{err}");
    // APR: the first index entry says ndim 200.
    let good = dir.path().join("good.apr");
    w.write(&good).unwrap();
    let v = apr_lint::ModelView::open(&good).unwrap();
    let t = &v.tensors[0];
    let ndim_at = (t.record.offset + 2 + t.name.len() as u64 + 1) as usize;
    let mut bytes = w.to_bytes();
    bytes[ndim_at] = 200;
    let p = dir.path().join("ndim.apr");
    std::fs::write(&p, &bytes).unwrap();
    let err = fatal(&p, "APRL-F");
    assert!(
        err.contains(&format!(
            "ndim.apr, tensor index entry 1 of 27, byte {ndim_at} ({ndim_at:#x})]"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("name     \"{}\"", t.name)), "{err}");
    assert!(err.contains("ndim     200"), "{err}");
    // SafeTensors: a header that is not JSON.
    let header = r#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, oops}"#;
    let bytes = apr_lint::format::safetensors::with_header(header, &[0; 4]);
    let p = dir.path().join("model.safetensors");
    std::fs::write(&p, &bytes).unwrap();
    let err = fatal(&p, "APRL-F051");
    assert!(
        err.contains("model.safetensors, SafeTensors header, byte "),
        "{err}"
    );
    assert!(err.contains("oops}"), "{err}");
}

/// `--help` lists every exit code of the README's table (130 was missing: `rosetta` stopped by
/// Ctrl-C).
#[test]
fn help_lists_every_exit_code() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for c in [
        "0 pass",
        "1 fail",
        "2 error",
        "3 inconclusive",
        "130 interrupted",
    ] {
        assert!(out.contains(c), "--help lacks `{c}`: {out}");
    }
}
