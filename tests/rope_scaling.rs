//! RoPE context scaling (GGUF `rope.scaling.*`, APR `rope_scaling`): the forward pass stretches the
//! rotation as llama.cpp does (checked against llama.cpp's own activations for a linear-scaled llama
//! and a YaRN qwen2), the pair check names a scaling the converted file lost or changed, and values
//! llama.cpp refuses are per-file errors.

mod common;
use common::*;

use apr_lint::format::writer::apr::Flavour;
use apr_lint::numeric::forward::{Model, run_all};
use apr_lint::numeric::probe::forward;
use apr_lint::pipeline::Verdict;
use apr_lint::rules::{Resolved, RuleSet};
use serde_json::json;

/// Activations, base fixture, keys added, sha256 of the file llama.cpp ran (the bytes built here
/// must be that file, see `fixtures/act/README.md`).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const CASES: &[Case] = &[
    (
        "tiny-llama-linear-q8_0",
        "gguf/tiny-llama-q8_0.gguf",
        &[
            ("{arch}.rope.scaling.type", "linear"),
            ("{arch}.rope.scaling.factor", "4.0"),
            ("{arch}.rope.scaling.attn_factor", "0.5"),
        ],
        "e5dc2557a6311498ff1f989923ce9bd7c0b947c561c864613d56da2d5da04cc1",
    ),
    (
        "tiny-qwen2-yarn-q8_0",
        "gguf/tiny-qwen2-tied-q8_0.gguf",
        &[
            ("{arch}.rope.scaling.type", "yarn"),
            ("{arch}.rope.scaling.factor", "4.0"),
            ("{arch}.rope.scaling.original_context_length", "2048"),
        ],
        "8f660ab28e09c4c0cfdd8bb7ee313ffd0367593a0ae5caca1857fb3b95e984ac",
    ),
];

#[test]
fn scaled_rope_matches_llama_cpp() {
    let rules = RuleSet::builtin();
    for (model, base, keys, sha) in CASES {
        let bytes = gguf_with_keys(base, keys);
        assert_eq!(
            &sha256_hex(&bytes),
            sha,
            "{model}: not the file llama.cpp ran"
        );
        let v = view_of(bytes, "scaled.gguf");
        let r = Resolved::new(&v, &rules);
        let ids = act_tokens(model);
        let a = forward(&v, &r, &ids).unwrap();
        for (mine, theirs) in [(&a.q_rope, "Qcur-0"), (&a.k_rope, "Kcur-0")] {
            let t = act(model, theirs);
            assert!(
                matches_llama_cpp(mine, &t),
                "{model} {theirs}: cosine {}, rel {}",
                agreement(mine, &t).cosine,
                rel_max(mine, &t)
            );
        }
        // The whole forward pass, to the logits.
        let m = Model::new(&v, &r).unwrap();
        let acts = run_all(&m, &ids).unwrap();
        let logits = &acts.iter().find(|x| x.stage == "logits").unwrap().values;
        assert!(
            matches_llama_cpp(logits, &act(model, "logits")),
            "{model} logits"
        );
        // The unscaled file does not match these activations: the checks above can fail.
        let plain = gguf_view(base);
        let rp = Resolved::new(&plain, &rules);
        let p = forward(&plain, &rp, &ids).unwrap();
        assert!(
            differs_from_llama_cpp(&p.q_rope, &act(model, "Qcur-0")),
            "{model}: plain RoPE also matched"
        );
    }
}

fn yarn_gguf() -> apr_lint::model::ModelView {
    let (_, base, keys, _) = CASES[1];
    view_of(gguf_with_keys(base, keys), "yarn.gguf")
}

/// The YaRN GGUF converted by apr-lint's own converter (which records `rope_scaling`), with its
/// `rope_scaling` replaced by `scaling` (None: dropped).
fn yarn_apr(scaling: Option<serde_json::Value>) -> apr_lint::model::ModelView {
    let (_, base, keys, _) = CASES[1];
    let bytes = gguf_with_keys(base, keys);
    let g = apr_lint::format::gguf::read(apr_lint::format::Source::from_vec(bytes, "y.gguf"))
        .expect("reads");
    let mut w = apr_lint::format::writer::convert::gguf_to_apr(&g, Flavour::Aprender);
    assert!(
        w.metadata.iter().any(|(k, v)| k == "rope_scaling"
            && *v
                == json!({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048})),
        "the converter records the scaling: {:?}",
        w.metadata.iter().find(|(k, _)| k == "rope_scaling")
    );
    w.metadata.retain(|(k, _)| k != "rope_scaling");
    if let Some(s) = scaling {
        w.metadata.push(("rope_scaling".into(), s));
    }
    apr_view(&w)
}

#[test]
fn a_conversion_that_keeps_the_scaling_passes() {
    let s = json!({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048});
    let o = lint_pair(&yarn_apr(Some(s)), &yarn_gguf());
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
}

#[test]
fn a_dropped_or_changed_scaling_is_named() {
    for (what, s) in [
        ("dropped", None),
        (
            "factor 2",
            Some(
                json!({"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 2048}),
            ),
        ),
        (
            "linear instead of yarn",
            Some(json!({"type": "linear", "factor": 4.0})),
        ),
        (
            "other original context",
            Some(
                json!({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}),
            ),
        ),
    ] {
        let o = lint_pair(&yarn_apr(s), &yarn_gguf());
        assert_eq!(o.verdict, Verdict::Fail, "{what}\n{}", describe(&o));
        assert!(
            finds(&o, "APRL-M023", None, "RoPE"),
            "{what}\n{}",
            describe(&o)
        );
        // The probe agrees: Q and K match before RoPE, not after, and it says why.
        assert!(
            finds(&o, "APRL-N031", Some("metadata-mismatch"), "RoPE scaling"),
            "{what}\n{}",
            describe(&o)
        );
    }
}

#[test]
fn scaling_llama_cpp_refuses_is_a_per_file_error() {
    for (what, keys) in [
        (
            "unknown type",
            &[("{arch}.rope.scaling.type", "dynamic")][..],
        ),
        (
            "negative factor",
            &[
                ("{arch}.rope.scaling.type", "linear"),
                ("{arch}.rope.scaling.factor", "-2.0"),
            ][..],
        ),
        (
            "YaRN without an original context (0 means the context length, itself 0)",
            &[
                ("{arch}.rope.scaling.type", "yarn"),
                ("{arch}.rope.scaling.factor", "4.0"),
                ("{arch}.rope.scaling.original_context_length", "0"),
                ("{arch}.context_length", "0"),
            ][..],
        ),
    ] {
        let v = view_of(
            gguf_with_keys("gguf/tiny-qwen2-tied-q8_0.gguf", keys),
            "bad.gguf",
        );
        let o = lint_one(&v);
        assert!(
            o.findings.iter().any(|f| f.code == "APRL-M013"
                && f.severity == apr_lint::Severity::Error
                && f.message.contains("rope.scaling")),
            "{what}\n{}",
            describe(&o)
        );
    }
    // Valid scaling stays clean of it: YaRN, an original context of 0 (llama.cpp then uses the
    // context length), and any factor with type none (llama.cpp ignores it).
    for keys in [
        &[][..],
        &[("{arch}.rope.scaling.original_context_length", "0")][..],
        &[
            ("{arch}.rope.scaling.type", "none"),
            ("{arch}.rope.scaling.factor", "-3.0"),
        ][..],
    ] {
        let (_, base, yarn, _) = CASES[1];
        let mut all: Vec<(&str, &str)> = yarn.to_vec();
        all.extend_from_slice(keys);
        let o = lint_one(&view_of(gguf_with_keys(base, &all), "ok.gguf"));
        assert!(
            !o.findings.iter().any(|f| f.code == "APRL-M013"),
            "{keys:?}\n{}",
            describe(&o)
        );
    }
}

#[test]
fn hf_dynamic_scaling_is_not_a_difference() {
    // llama.cpp's converter drops Hugging Face's dynamic NTK scaling, which changes nothing within
    // the trained context: an APR that kept it pairs with the plain GGUF.
    let g = "gguf/tiny-qwen2-tied-q8_0.gguf";
    let mut w = clean_apr(g, Flavour::Aprender);
    w.metadata.push((
        "rope_scaling".into(),
        json!({"type": "dynamic", "factor": 2.0}),
    ));
    let o = lint_pair(&apr_view(&w), &gguf_view(g));
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
}
