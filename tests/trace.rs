//! The rosetta trace's forward pass against llama.cpp's own activations, every layer and the logits.

mod common;
use common::*;

use apr_lint::numeric::forward::{Model, run_all};
use apr_lint::rules::{Resolved, RuleSet};

#[test]
fn full_forward_matches_llama_cpp() {
    let rules = RuleSet::builtin();
    for (model, file) in [
        ("tiny-qwen2-tied-q8_0", "gguf/tiny-qwen2-tied-q8_0.gguf"),
        ("tiny-llama-q8_0", "gguf/tiny-llama-q8_0.gguf"),
        (
            "tiny-llama-ropefreqs-q8_0",
            "gguf/tiny-llama-ropefreqs-q8_0.gguf",
        ),
    ] {
        let v = gguf_view(file);
        let r = Resolved::new(&v, &rules);
        let m = Model::new(&v, &r).unwrap();
        let acts = run_all(&m, &act_tokens(model)).unwrap();
        let get = |stage: &str, layer: Option<u32>| {
            acts.iter()
                .find(|a| a.stage == stage && a.layer == layer)
                .unwrap()
                .values
                .clone()
        };
        // ggml rounds Q8_0 matmul inputs to Q8_0: an f32 forward agrees to ~1e-2 (oracle README §9).
        for (stage, layer, theirs) in [
            ("ffn_norm", Some(0), "ffn_norm-0"),
            ("ffn_out", Some(0), "ffn_out-0"),
            ("layer_out", Some(0), "l_out-0"),
            ("layer_out", Some(1), "l_out-1"),
            ("output_norm", None, "result_norm"),
            ("logits", None, "logits"),
        ] {
            let mine = get(stage, layer);
            let t = act(model, theirs);
            let g = agreement(&mine, &t);
            let (cos, rel) = (g.cosine, g.rel_max);
            eprintln!("{model} {theirs}: cosine {cos:.6}, rel {rel:.2e}");
            assert!(
                cos > 0.999 && rel < 5e-2,
                "{model} {theirs}: cosine {cos}, rel {rel}"
            );
        }
    }
}

#[test]
fn rosetta_localises_the_first_divergence() {
    use apr_lint::format::writer::apr::Flavour;
    use apr_lint::pipeline::{Options, rosetta};
    let g = "gguf/tiny-llama-q8_0.gguf";
    let gv = gguf_view(g);
    let clean = apr_view(&clean_apr(g, Flavour::Realizar));
    let r = rosetta(&clean, &gv, &Options::default(), false, None);
    let t = r.trace.as_ref().unwrap();
    assert!(t.first_divergence.is_none(), "{t:?}");
    assert_eq!(t.stages.len(), 1 + 2 * 10 + 2);
    // gate ↔ up swapped in layer 1: layers 0 agree, layer 1's FFN is the first to diverge.
    let mut w = clean_apr(g, Flavour::Realizar);
    let gi = w
        .tensors
        .iter()
        .position(|t| t.name == "blk.1.ffn_gate.weight")
        .unwrap();
    let ui = w
        .tensors
        .iter()
        .position(|t| t.name == "blk.1.ffn_up.weight")
        .unwrap();
    let gb = w.tensors[gi].bytes.clone();
    w.tensors[gi].bytes = w.tensors[ui].bytes.clone();
    w.tensors[ui].bytes = gb;
    let bad = apr_view(&w);
    for teacher in [false, true] {
        let r = rosetta(&bad, &gv, &Options::default(), teacher, None);
        let t = r.trace.as_ref().unwrap();
        assert_eq!(
            t.first_divergence,
            Some(serde_json::json!({"layer": 1, "stage": "ffn_out"})),
            "teacher {teacher}"
        );
        let later: Vec<_> = t
            .stages
            .iter()
            .filter(|s| !s.pass)
            .map(|s| (s.layer, s.stage))
            .collect();
        // Free-running, the error propagates to the logits; teacher-forced, the head gets the
        // reference's input and agrees.
        assert_eq!(later.contains(&(None, "logits")), !teacher, "{later:?}");
    }
    // --save-activations writes both sides.
    let dir = tempfile::tempdir().unwrap();
    rosetta(&bad, &gv, &Options::default(), false, Some(dir.path()))
        .trace
        .unwrap();
    assert!(
        dir.path().join("a-001-ffn_out.npy").exists() && dir.path().join("b-logits.npy").exists()
    );
}

/// The oracle comparisons' own metric (`common::agreement`), on values computed by hand.
#[test]
fn the_independent_metric_is_right() {
    // [1, 2, 3] vs [1, 2, 4]: max |d| = 1, max |ref| = 4, cosine = 17 / √(14·21).
    let g = agreement(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
    assert_eq!(g.max_abs, 1.0);
    assert_eq!(g.rel_max, 0.25);
    assert!((g.cosine - 17.0 / 294f64.sqrt()).abs() < 1e-15, "{g:?}");
    assert!((g.cosine - 0.991_460_133_983_667).abs() < 1e-12, "{g:?}");
    // Orthogonal, opposite, equal.
    assert_eq!(agreement(&[1.0, 0.0], &[0.0, 1.0]).cosine, 0.0);
    let g = agreement(&[1.0, -1.0], &[-1.0, 1.0]);
    assert_eq!((g.max_abs, g.rel_max), (2.0, 2.0));
    assert!((g.cosine + 1.0).abs() < 1e-15, "{g:?}");
    let g = agreement(&[0.5, 0.25], &[0.5, 0.25]);
    assert_eq!((g.max_abs, g.rel_max), (0.0, 0.0));
    assert!((g.cosine - 1.0).abs() < 1e-15, "{g:?}");
    // f64 sums: squares of 3e38 overflow f32, not f64.
    let g = agreement(&[3e38, 3e38], &[3e38, 3e38]);
    assert!((g.cosine - 1.0).abs() < 1e-15, "{g:?}");
    // A NaN on either side, or inf − inf, poisons every metric, and every bound fails.
    for (a, b) in [
        ([1.0, f32::NAN], [1.0, 2.0]),
        ([1.0, 2.0], [f32::NAN, 2.0]),
        ([f32::INFINITY, 1.0], [f32::INFINITY, 1.0]),
    ] {
        let g = agreement(&a, &b);
        assert!(
            g.max_abs.is_nan() && g.rel_max.is_nan() && g.cosine.is_nan(),
            "{a:?} {b:?}: {g:?}"
        );
        assert!(!matches_llama_cpp(&a, &b) && !differs_from_llama_cpp(&a, &b));
    }
    // An infinite value on one side is a difference, not a match.
    assert!(!matches_llama_cpp(&[f32::INFINITY, 1.0], &[1.0, 1.0]));
}
