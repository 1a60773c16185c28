//! Verdicts that used to come out wrong on converted pairs (issue 10 §8): each test builds the pair
//! with the project's writers from the fixture GGUFs and checks the code, class, severity and what
//! the finding names, through the library and through the CLI's JSON and SARIF.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use apr_lint::Severity;
use apr_lint::format::writer::apr::{AprWriter, Flavour};
use apr_lint::pipeline::Verdict;

const QWEN: &str = "gguf/tiny-qwen2-lq-q4_k_m.gguf";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apr-lint"))
}

/// Run the CLI on `apr` against the fixture `gguf` in `format`; exit code and parsed stdout.
fn cli(dir: &Path, apr: &AprWriter, gguf: &str, format: &str) -> (i32, serde_json::Value) {
    let path = dir.join(format!("model-{format}.apr"));
    apr.write(&path).unwrap();
    let o = bin()
        .args([
            path.to_str().unwrap(),
            "--against",
            fixture(gguf).to_str().unwrap(),
            "-q",
            "--format",
            format,
        ])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let doc = if format == "sarif" {
        // Every SARIF the tests produce goes through the 2.1.0 schema validator.
        sarif::parse(&out)
    } else {
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    (o.status.code().unwrap_or(-1), doc)
}

/// JSON findings and SARIF results with `code`: (tensor, layer) of each.
fn named(dir: &Path, apr: &AprWriter, gguf: &str, code: &str) -> Vec<(String, String)> {
    let (_, json) = cli(dir, apr, gguf, "json");
    let (_, sarif) = cli(dir, apr, gguf, "sarif");
    let mut v = Vec::new();
    for f in json["findings"].as_array().unwrap() {
        if f["code"] == code {
            v.push((f["tensor"].to_string(), f["layer"].to_string()));
        }
    }
    for r in sarif["runs"][0]["results"].as_array().unwrap() {
        if r["ruleId"] == code {
            let p = &r["properties"];
            v.push((p["tensor"].to_string(), p["layer"].to_string()));
        }
    }
    v
}

#[test]
fn a_missing_tensor_is_named_with_its_layer_in_json_and_sarif() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    let gone = "model.layers.1.self_attn.q_proj.bias";
    w.tensors.retain(|t| t.name != gone);
    let o = lint_pair(&apr_view(&w), &gguf_view(QWEN));
    assert_eq!(o.verdict, Verdict::Fail);
    for code in ["APRL-M007", "APRL-M030"] {
        let f = o
            .findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code}:\n{}", describe(&o)));
        assert_eq!(f.tensor.as_deref(), Some(gone), "{code}: {}", f.message);
        assert_eq!(f.layer, Some(1), "{code}");
    }
    let dir = tempfile::tempdir().unwrap();
    for code in ["APRL-M007", "APRL-M030"] {
        let got = named(dir.path(), &w, QWEN, code);
        assert_eq!(got.len(), 2, "{code}: one in JSON, one in SARIF: {got:?}");
        for (tensor, layer) in got {
            assert_eq!(tensor, format!("\"{gone}\""), "{code}");
            assert_eq!(layer, "1", "{code}");
        }
    }
    // A global role: named in the file's own scheme, without a layer.
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    w.tensors.retain(|t| t.name != "model.norm.weight");
    let o = lint_pair(&apr_view(&w), &gguf_view(QWEN));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-M030")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.tensor.as_deref(), Some("model.norm.weight"));
    assert_eq!(f.layer, None);
    assert_eq!(f.severity, Severity::Error);
}

/// `tensor_count` patched to `count(n)` (APR: u32 at 8, CRC recomputed; GGUF: u64 at 8).
fn with_count(mut bytes: Vec<u8>, apr: bool, count: impl Fn(u64) -> u64) -> Vec<u8> {
    if apr {
        let n = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as u64;
        bytes[8..12].copy_from_slice(&(count(n) as u32).to_le_bytes());
        let crc = apr_lint::format::apr::header_crc(&bytes[..64]);
        bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    } else {
        let n = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
        bytes[8..16].copy_from_slice(&count(n).to_le_bytes());
    }
    bytes
}

#[test]
fn a_tensor_count_larger_than_the_index_is_named_as_such() {
    let apr = clean_apr(QWEN, Flavour::Aprender).to_bytes();
    let gguf = std::fs::read(fixture(QWEN)).unwrap();
    let ggufs = [
        gguf,
        std::fs::read(fixture("gguf/tiny-llama-q8_0.gguf")).unwrap(),
        std::fs::read(fixture("gguf/tiny-qwen2-tied-q8_0.gguf")).unwrap(),
    ];
    let mut cases: Vec<(String, Vec<u8>, u64)> = Vec::new();
    for extra in [1, 2, 5] {
        cases.push((
            format!("apr +{extra}"),
            with_count(apr.clone(), true, |n| n + extra),
            8,
        ));
    }
    for (i, g) in ggufs.iter().enumerate() {
        cases.push((
            format!("gguf {i} +1"),
            with_count(g.clone(), false, |n| n + 1),
            8,
        ));
    }
    for (what, bytes, at) in cases {
        let e =
            apr_lint::model::ModelView::from_source(apr_lint::format::Source::from_vec(bytes, "m"))
                .err()
                .unwrap_or_else(|| panic!("{what}: reads"));
        assert_eq!(e.code(), "APRL-F040", "{what}: {e}");
        assert_eq!(e.byte_offset(), Some(at), "{what}");
        assert!(e.message.contains("the header says"), "{what}: {e}");
    }
    // The CLI: exit 2 with the code.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.apr");
    std::fs::write(&p, with_count(apr, true, |n| n + 1)).unwrap();
    let o = bin().args([p.to_str().unwrap(), "-q"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("APRL-F040"), "{err}");
    assert!(!err.contains("not sorted"), "{err}");
}

const LLAMA: &str = "gguf/tiny-llama-q8_0.gguf";
const TIED: &str = "gguf/tiny-qwen2-tied-q8_0.gguf";

fn tensor<'a>(w: &'a AprWriter, name: &str) -> &'a apr_lint::format::writer::apr::AprTensor {
    w.tensors
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The APR names of the embedding and the output matrix (Hugging Face or GGUF naming).
fn emb_head(w: &AprWriter) -> (String, String) {
    let has = |n: &str| w.tensors.iter().any(|t| t.name == n);
    if has("model.embed_tokens.weight") {
        ("model.embed_tokens.weight".into(), "lm_head.weight".into())
    } else {
        ("token_embd.weight".into(), "output.weight".into())
    }
}

fn tensor_mut<'a>(
    w: &'a mut AprWriter,
    name: &str,
) -> &'a mut apr_lint::format::writer::apr::AprTensor {
    w.tensors
        .iter_mut()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Before: `APRL-N007 swapped-tensors` ("swap the data of `lm_head.weight` and
/// `model.embed_tokens.weight`"), although the embedding itself is right.
#[test]
fn an_output_tied_to_the_embedding_against_a_distinct_reference_output_is_a_tie() {
    for (g, flavour) in [(LLAMA, Flavour::Aprender), (QWEN, Flavour::Aprender)] {
        let mut w = clean_apr(g, flavour);
        let (e, h) = emb_head(&w);
        let emb = tensor(&w, &e).clone();
        let head = tensor_mut(&mut w, &h);
        head.bytes = emb.bytes;
        head.code = emb.code;
        let o = lint_pair(&apr_view(&w), &gguf_view(g));
        assert_eq!(o.verdict, Verdict::Fail, "{g}");
        let f = o
            .findings
            .iter()
            .find(|f| f.tensor.as_deref() == Some(h.as_str()) && f.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{g}: {}", describe(&o)));
        assert_eq!(f.code, "APRL-N035", "{g}: {}", describe(&o));
        assert_eq!(f.class(), "tied-embedding");
        assert!(f.help.contains("do not tie"), "{}", f.help);
        assert!(
            !o.findings.iter().any(|f| f.class() == "swapped-tensors"),
            "{g}: {}",
            describe(&o)
        );
    }
    // A real swap (both tensors exchanged) stays a swap.
    let mut w = clean_apr(LLAMA, Flavour::Aprender);
    let (e, h) = emb_head(&w);
    let emb = tensor(&w, &e).bytes.clone();
    let head = tensor(&w, &h).bytes.clone();
    tensor_mut(&mut w, &h).bytes = emb;
    tensor_mut(&mut w, &e).bytes = head;
    let o = lint_pair(&apr_view(&w), &gguf_view(LLAMA));
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-N007" && f.tensor.as_deref() == Some(h.as_str())),
        "{}",
        describe(&o)
    );
}

/// Before: `APRL-M010` (a warning) and a passing pair in both damaged cases.
#[test]
fn a_zero_byte_lm_head_is_an_error_unless_both_sides_tie() {
    let placeholder = |g: &str, flag: Option<bool>| {
        let mut w = clean_apr(g, Flavour::Aprender);
        let (_, h) = emb_head(&w);
        if !w.tensors.iter().any(|t| t.name == h) {
            panic!("{g}: no {h}");
        }
        tensor_mut(&mut w, &h).bytes.clear();
        w.metadata.retain(|(k, _)| k != "tied_embeddings");
        if let Some(v) = flag {
            w.metadata
                .push(("tied_embeddings".into(), serde_json::json!(v)));
        }
        (w, h)
    };
    // The reference has its own output matrix: an error whatever the flag says.
    for flag in [None, Some(true), Some(false)] {
        let (w, h) = placeholder(QWEN, flag);
        let o = lint_pair(&apr_view(&w), &gguf_view(QWEN));
        assert_eq!(o.verdict, Verdict::Fail, "flag {flag:?}: {}", describe(&o));
        let f = o
            .findings
            .iter()
            .find(|f| f.code == "APRL-M032")
            .unwrap_or_else(|| panic!("flag {flag:?}: {}", describe(&o)));
        assert_eq!(f.class(), "tied-embedding");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.tensor.as_deref(), Some(h.as_str()));
        assert!(f.message.contains("output.weight"), "{}", f.message);
        assert!(f.help.contains("do not tie"), "{}", f.help);
        // Said once, as the error.
        assert!(
            !o.findings.iter().any(|f| f.code == "APRL-M010"),
            "{}",
            describe(&o)
        );
    }
    // A tied reference, and the APR does not declare the tie: an error.
    for flag in [None, Some(false)] {
        let (w, _) = placeholder(TIED, flag);
        let o = lint_pair(&apr_view(&w), &gguf_view(TIED));
        assert_eq!(o.verdict, Verdict::Fail, "flag {flag:?}: {}", describe(&o));
        assert!(
            finds(
                &o,
                "APRL-M032",
                Some("tied-embedding"),
                "does not declare the tie"
            ),
            "{}",
            describe(&o)
        );
    }
    // Tied on both sides and declared: the placeholder stays a warning, the pair passes.
    let (w, h) = placeholder(TIED, Some(true));
    let o = lint_pair(&apr_view(&w), &gguf_view(TIED));
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-M010" && f.tensor.as_deref() == Some(h.as_str())),
        "{}",
        describe(&o)
    );
}

/// Before: `APRL-N023 tokenizer-mismatch` (an error) for an APR that only leaves out the BOS policy.
#[test]
fn an_apr_without_a_bos_policy_is_a_warning_and_the_probe_runs_with_one_bos() {
    let g = gguf_view(LLAMA);
    assert_eq!(
        g.tokenizer.add_bos,
        Some(true),
        "the fixture's tokenizer adds BOS"
    );
    let bos = g.tokenizer.bos.expect("a BOS id");
    let mut w = clean_apr(LLAMA, Flavour::Aprender);
    w.metadata.retain(|(k, _)| k != "tokenizer.add_bos_token");
    let o = lint_pair(&apr_view(&w), &g);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-N034")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.class(), "tokenizer-mismatch");
    assert!(
        f.message.contains(&format!("BOS (id {bos})")),
        "{}",
        f.message
    );
    assert!(f.help.contains("add_bos_token"), "{}", f.help);
    assert!(
        !o.findings.iter().any(|f| f.code == "APRL-N023"),
        "{}",
        describe(&o)
    );
    // The probe ran, with the BOS on both sides.
    let probe = o.probe.as_ref().expect("the probe ran");
    assert_eq!(probe["tokens"][0], bos);
    assert!(
        probe["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["pass"] == true),
        "{probe}"
    );

    // A recorded policy that contradicts the reference's is a real difference: still an error.
    let mut w = clean_apr(LLAMA, Flavour::Aprender);
    w.metadata.retain(|(k, _)| k != "tokenizer.add_bos_token");
    w.metadata
        .push(("tokenizer.add_bos_token".into(), serde_json::json!(false)));
    let o = lint_pair(&apr_view(&w), &g);
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-N023" && f.severity == Severity::Error),
        "{}",
        describe(&o)
    );
    assert!(!o.findings.iter().any(|f| f.code == "APRL-N034"));

    // So is a different vocabulary, with or without a BOS policy.
    let mut w = clean_apr(LLAMA, Flavour::Aprender);
    w.metadata.retain(|(k, _)| k != "tokenizer.add_bos_token");
    let vocab = w
        .metadata
        .iter_mut()
        .find(|(k, _)| k == "tokenizer.vocabulary")
        .expect("vocabulary");
    let toks = vocab.1.as_array_mut().unwrap();
    toks.swap(50, 51);
    let o = lint_pair(&apr_view(&w), &g);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    assert!(
        o.findings
            .iter()
            .any(|f| f.class() == "tokenizer-mismatch" && f.severity == Severity::Error),
        "{}",
        describe(&o)
    );
}

/// A probe skipped because a file does not load as a model (a head count its Q/K/V widths
/// contradict) says to fix what the findings name, not to pass `--tokens` (that cannot help).
#[test]
fn a_probe_skipped_for_a_model_that_does_not_load_does_not_suggest_tokens() {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "num_heads")
        .for_each(|e| e.1 = serde_json::json!(8));
    let o = lint_pair(&apr_view(&w), &gguf_view(QWEN));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-N022")
        .unwrap_or_else(|| panic!("no N022: {}", describe(&o)));
    assert!(
        !f.help.contains("--tokens") && f.help.contains("finding"),
        "{}",
        f.help
    );
}
