//! Every code keeps its class: a check that can conclude different bug classes emits one code per
//! class, and the codes it used before stay registered as retired (explained, never emitted).

mod common;
use common::*;

use std::process::Command;

use apr_lint::format::writer::apr::{AprWriter, Flavour};
use apr_lint::pipeline::{self, Options, Override};
use apr_lint::quant::DType;
use apr_lint::registry;

const QWEN: &str = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
const LLAMA: &str = "gguf/tiny-llama-q8_0.gguf";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apr-lint"))
}

fn stdout(args: &[&str]) -> (i32, String) {
    let o = bin().args(args).output().expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn retired_codes_name_their_successors_and_are_never_emitted() {
    assert!(!registry::RETIRED.is_empty());
    for (code, successors) in registry::RETIRED {
        let l = registry::find(code).unwrap_or_else(|| panic!("{code} not registered"));
        assert!(l.summary.starts_with("retired"), "{code}: {}", l.summary);
        assert!(l.explain.starts_with("RETIRED"), "{code}");
        let mut classes = Vec::new();
        for s in *successors {
            let n = registry::find(s).unwrap_or_else(|| panic!("{code} → {s} not registered"));
            assert!(!registry::is_retired(s), "{s} is retired too");
            assert!(
                l.summary.contains(s) && l.explain.contains(s),
                "{code} does not name {s}"
            );
            classes.push(n.class);
        }
        let n = classes.len();
        classes.sort();
        classes.dedup();
        assert_eq!(classes.len(), n, "{code}: two successors share a class");
    }
    // `explain` answers for a retired code and says what replaced it; `rules` marks it.
    let (code, out) = stdout(&["explain", "APRL-L010"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("RETIRED") && out.contains("APRL-L011") && out.contains("APRL-L012"),
        "{out}"
    );
    let (code, out) = stdout(&["rules"]);
    assert_eq!(code, 0);
    let line = out
        .lines()
        .find(|l| l.contains("APRL-N020"))
        .expect("rules lists N020");
    assert!(line.contains("retired"), "{line}");
}

/// Before: these findings carried codes registered with another class (`APRL-L010`
/// dims-reversed saying shape-mismatch, `APRL-M021` missing-tensor saying unexpected-tensor,
/// `APRL-L003` dims-reversed saying quant-block-corrupt).
#[test]
fn a_check_that_concludes_another_class_emits_another_code() {
    // The pair's dims differ and are not a reversal.
    let mut w = clean_apr(LLAMA, Flavour::Realizar);
    let k = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "blk.1.attn_k.weight")
        .expect("k");
    k.dims = vec![256, 256];
    k.bytes.extend(vec![0u8; k.bytes.len()]);
    let o = lint_pair(&apr_view(&w), &gguf_view(LLAMA));
    assert!(
        finds(
            &o,
            "APRL-L012",
            Some("shape-mismatch"),
            "blk.1.attn_k.weight"
        ),
        "{}",
        describe(&o)
    );

    // A role the file under test has and its reference lacks (an APR pair, in the order given).
    let full = clean_apr(QWEN, Flavour::Aprender);
    let mut less = full.clone();
    less.tensors
        .retain(|t| t.name != "model.layers.1.self_attn.q_proj.bias");
    let o = lint_pair(&apr_view(&full), &apr_view(&less));
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-M031")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.class(), "unexpected-tensor");
    assert_eq!(f.severity, apr_lint::Severity::Warning);

    // A K-quant tensor (one no role claims, so no rule gives its dims) neither of whose dims is a
    // whole number of super-blocks …
    let o = lint_one(&apr_view(&with_kquant_extra(|d| vec![d[0] + 1, d[1] - 1])));
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-L007" && f.class() == "quant-block-corrupt"),
        "{}",
        describe(&o)
    );
    // … and one whose first dim is: reversed dims, its own code.
    let o = lint_one(&apr_view(&with_kquant_extra(|d| vec![d[1], d[0]])));
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-L006" && f.class() == "dims-reversed"),
        "{}",
        describe(&o)
    );
}

/// The clean qwen2 APR plus a copy of a Q4_K matrix (rows a multiple of 256, row count not) under a
/// name no role claims, with dims `dims(original)`.
fn with_kquant_extra(dims: impl Fn(&[u64]) -> Vec<u64>) -> AprWriter {
    let mut w = clean_apr(QWEN, Flavour::Aprender);
    let q4k = apr_lint::format::writer::apr::apr_code(DType::Q4_K);
    let mut t = w
        .tensors
        .iter()
        .find(|t| {
            t.code == q4k && t.dims.len() == 2 && t.dims[1] % 256 == 0 && t.dims[0] % 256 != 0
        })
        .expect("a Q4_K matrix")
        .clone();
    t.name = "model.extra.weight".into();
    t.dims = dims(&t.dims);
    w.tensors.push(t);
    w
}

#[test]
fn a_retired_code_given_to_allow_or_deny_applies_to_its_successors() {
    let mut w = clean_apr(LLAMA, Flavour::Realizar);
    let k = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "blk.1.attn_k.weight")
        .expect("k");
    k.dims = vec![256, 256];
    k.bytes.extend(vec![0u8; k.bytes.len()]);
    let (a, b) = (apr_view(&w), gguf_view(LLAMA));
    let opts = Options {
        overrides: vec![("APRL-L010".into(), Override::Allow)],
        ..Options::default()
    };
    let o = pipeline::lint(&a, Some(&b), &opts);
    assert!(
        !o.findings.iter().any(|f| f.code == "APRL-L012"),
        "{}",
        describe(&o)
    );
    let opts = Options {
        overrides: vec![("aprl-l010".into(), Override::Warn)],
        ..Options::default()
    };
    let o = pipeline::lint(&a, Some(&b), &opts);
    let f = o
        .findings
        .iter()
        .find(|f| f.code == "APRL-L012")
        .unwrap_or_else(|| panic!("{}", describe(&o)));
    assert_eq!(f.severity, apr_lint::Severity::Warning);
}
