//! The layer-0 probe: our forward pass against llama.cpp's own activations, and the probe's verdicts
//! on damaged pairs.

mod common;
use common::*;

use apr_lint::format::writer::apr::Flavour;
use apr_lint::numeric::probe::forward;
use apr_lint::pipeline::Verdict;
use apr_lint::rules::{Resolved, RuleSet};
use serde_json::json;

#[test]
fn forward_matches_llama_cpp() {
    let rules = RuleSet::builtin();
    for (model, file, q_name, k_name, v_name) in [
        (
            "tiny-qwen2-tied-q8_0",
            "gguf/tiny-qwen2-tied-q8_0.gguf",
            "Qcur-0__2",
            "Kcur-0__2",
            "Vcur-0__2",
        ),
        (
            "tiny-llama-q8_0",
            "gguf/tiny-llama-q8_0.gguf",
            "Qcur-0__1",
            "Kcur-0__1",
            "Vcur-0__1",
        ),
        // The same llama with a `rope_freqs.weight` (divisors 0.5..8, shuffled): llama.cpp's
        // rotation with frequency factors.
        (
            "tiny-llama-ropefreqs-q8_0",
            "gguf/tiny-llama-ropefreqs-q8_0.gguf",
            "Qcur-0__1",
            "Kcur-0__1",
            "Vcur-0__1",
        ),
    ] {
        let v = gguf_view(file);
        let r = Resolved::new(&v, &rules);
        let ids = act_tokens(model);
        let a = forward(&v, &r, &ids).unwrap();
        // Embedding rows: exactly ggml's get_rows.
        assert_eq!(a.embedding, act(model, "embd"), "{model} embedding");
        // RMSNorm × weight: ggml sums in double, scales in float.
        assert!(
            rel_max(&a.attn_norm, &act(model, "attn_norm-0")) < 1e-5,
            "{model} attn_norm"
        );
        // Q/K/V and Q/K after RoPE: ggml rounds the matmul input to Q8_0, so ~1e-2 (README §9).
        for (mine, theirs) in [
            (&a.q, q_name),
            (&a.k, k_name),
            (&a.v, v_name),
            (&a.q_rope, "Qcur-0"),
            (&a.k_rope, "Kcur-0"),
        ] {
            let t = act(model, theirs);
            let g = agreement(mine, &t);
            assert!(
                g.cosine > 0.999 && g.rel_max < 5e-2,
                "{model} {theirs}: {g:?}"
            );
        }
        // RoPE with the wrong pairing does not match llama.cpp: the check above can fail.
        let mut wrong = a.q.clone();
        let hd = 64;
        let n = ids.len();
        let other = if a.rope == apr_lint::model::RopeType::Norm {
            apr_lint::model::RopeType::Neox
        } else {
            apr_lint::model::RopeType::Norm
        };
        for t in 0..n {
            apr_lint::numeric::forward::rope::rope(
                &mut wrong[t * a.q_dim..(t + 1) * a.q_dim],
                hd,
                t as u64,
                1e6,
                other,
                None,
            );
        }
        assert!(
            agreement(&wrong, &act(model, "Qcur-0")).cosine < 0.99,
            "{model}: the wrong rotation also matched"
        );
        // With frequency factors: the right pairing without them, or with their inverses (inverse
        // frequencies stored as if divisors), does not match either.
        if let Some(ff) = &a.rope_factors {
            let theta = v.config.rope_theta.as_ref().map_or(10000.0, |t| t.value);
            let inverse: Vec<f32> = ff.iter().map(|f| 1.0 / f).collect();
            for (what, factors) in [
                ("no factors", None),
                ("inverted factors", Some(&inverse[..])),
            ] {
                let mut x = a.q.clone();
                for t in 0..n {
                    apr_lint::numeric::forward::rope::rope(
                        &mut x[t * a.q_dim..(t + 1) * a.q_dim],
                        hd,
                        t as u64,
                        theta,
                        a.rope,
                        factors,
                    );
                }
                assert!(
                    agreement(&x, &act(model, "Qcur-0")).cosine < 0.99,
                    "{model}: RoPE with {what} also matched"
                );
            }
        }
    }
    // The factors were read, and are llama.cpp's: the fixture's GGUF holds them.
    let v = gguf_view("gguf/tiny-llama-ropefreqs-q8_0.gguf");
    let r = Resolved::new(&v, &rules);
    let a = forward(&v, &r, &act_tokens("tiny-llama-ropefreqs-q8_0")).unwrap();
    assert_eq!(a.rope_factors.as_ref().map(Vec::len), Some(32));
}

#[test]
fn clean_pairs_pass_the_probe() {
    for g in [
        "gguf/tiny-qwen2-lq-q4_k_m.gguf",
        "gguf/tiny-llama-q8_0.gguf",
        "gguf/tiny-qwen2-tied-q8_0.gguf",
    ] {
        let o = lint_pair(&apr_view(&clean_apr(g, Flavour::Aprender)), &gguf_view(g));
        let p = o
            .probe
            .as_ref()
            .unwrap_or_else(|| panic!("{g}: no probe\n{}", describe(&o)));
        assert!(
            p["stages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["pass"] == true),
            "{g}: {p}"
        );
        assert_eq!(p["stages"].as_array().unwrap().len(), 9);
        assert_eq!(o.verdict, Verdict::Pass, "{g}\n{}", describe(&o));
    }
}

#[test]
fn rope_theta_wrong_is_seen_after_rope() {
    let g = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
    let mut w = clean_apr(g, Flavour::Aprender);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "rope_theta")
        .for_each(|e| e.1 = json!(10000.0));
    let o = lint_pair(&apr_view(&w), &gguf_view(g));
    let p = o.probe.as_ref().unwrap();
    let st = |n: &str| {
        p["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == n)
            .unwrap()["pass"]
            .as_bool()
            .unwrap()
    };
    assert!(st("q") && st("k"), "projections are unaffected");
    assert!(!st("q_rope_far") && !st("k_rope_far"));
    assert!(
        o.findings.iter().any(|f| f.code == "APRL-N031"
            && f.class() == "metadata-mismatch"
            && f.message.contains("θ")),
        "{}",
        describe(&o)
    );
}

#[test]
fn llama_apr_in_hf_order_is_legitimate_only_with_neox() {
    let g = "gguf/tiny-llama-q8_0.gguf";
    let unpermute = |w: &mut apr_lint::format::writer::apr::AprWriter| {
        for t in &mut w.tensors {
            let heads = if t.name.contains("attn_q.") {
                4
            } else if t.name.contains("attn_k.") {
                2
            } else {
                continue;
            };
            // Q8_0 rows: 256 values = 8 blocks of 34 bytes; move whole rows.
            let row_bytes = t.bytes.len() / (heads * 64);
            let mut out = t.bytes.clone();
            for h in 0..heads {
                for i in 0..32 {
                    for j in 0..2 {
                        let gguf_row = h * 64 + 2 * i + j;
                        let hf_row = h * 64 + j * 32 + i;
                        out[hf_row * row_bytes..(hf_row + 1) * row_bytes].copy_from_slice(
                            &t.bytes[gguf_row * row_bytes..(gguf_row + 1) * row_bytes],
                        );
                    }
                }
            }
            t.bytes = out;
        }
    };
    let mut w = clean_apr(g, Flavour::Aprender);
    unpermute(&mut w);
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "rope_type")
        .for_each(|e| e.1 = json!(2));
    let o = lint_pair(&apr_view(&w), &gguf_view(g));
    let p = o.probe.as_ref().unwrap();
    assert_eq!(p["unpermuted"], true);
    assert!(
        p["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["pass"] == true),
        "{p}"
    );
    // Same rows, declared NORM: wrong.
    let mut w = clean_apr(g, Flavour::Aprender);
    unpermute(&mut w);
    let o = lint_pair(&apr_view(&w), &gguf_view(g));
    assert!(
        o.findings.iter().any(|f| f.class() == "rope-permuted"),
        "{}",
        describe(&o)
    );
    assert_eq!(o.verdict, Verdict::Fail);
}

#[test]
fn tokenizer_that_splits_the_prompt_differently() {
    let g = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
    let mut w = clean_apr(g, Flavour::Aprender);
    // Drop the merges: the same vocabulary now splits "Hello" into bytes.
    w.metadata
        .iter_mut()
        .filter(|(k, _)| k == "tokenizer.merges")
        .for_each(|e| e.1 = json!([]));
    let v = apr_view(&w);
    let opts = apr_lint::pipeline::Options {
        prompt: "Hello my name is Tiny".into(),
        ..Default::default()
    };
    let o = apr_lint::pipeline::lint(&v, Some(&gguf_view(g)), &opts);
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-N023" && f.class() == "tokenizer-mismatch"),
        "{}",
        describe(&o)
    );
    // The probe still ran, on the reference's ids.
    assert_eq!(
        o.probe.as_ref().unwrap()["tokens"],
        json!([357, 267, 121, 273, 359, 32, 336, 32, 455])
    );
}

#[test]
fn hostile_config_makes_the_probe_skip_not_panic() {
    let g = "gguf/tiny-qwen2-lq-q4_k_m.gguf";
    for (key, v) in [
        ("head_dim", json!(0)),
        ("head_dim", json!(63)),
        ("hidden_size", json!(0)),
        ("num_heads", json!(0)),
    ] {
        let mut w = clean_apr(g, Flavour::Aprender);
        w.metadata.retain(|(k, _)| k != key);
        w.metadata.push((key.into(), v));
        let a = apr_view(&w);
        let o = lint_pair(&a, &gguf_view(g));
        assert_ne!(o.verdict, Verdict::Pass, "{key}");
        let r = apr_lint::pipeline::rosetta(
            &a,
            &gguf_view(g),
            &apr_lint::pipeline::Options::default(),
            false,
            None,
        );
        let _ = r.trace;
    }
}

#[test]
fn different_architectures_skip_the_probe() {
    let o = lint_pair(
        &gguf_view("gguf/tiny-llama-q8_0.gguf"),
        &gguf_view("gguf/tiny-qwen2-lq-q4_k_m.gguf"),
    );
    assert!(o.probe.is_none());
    assert!(
        o.findings
            .iter()
            .any(|f| f.code == "APRL-N022" && f.message.contains("different architectures")),
        "{}",
        describe(&o)
    );
    assert!(o.findings.iter().any(|f| f.code == "APRL-M020"));
    assert_eq!(o.verdict, Verdict::Fail);
}
