//! Llama 3's `rope_freqs.weight` (one divisor of the rotary angle per pair): claimed by the llama
//! rules, compared like any weight, and applied by the forward pass as llama.cpp applies it (the
//! fixture GGUF and its activations are llama.cpp's; see `fixtures/act/README.md`).

mod common;
use common::*;

use apr_lint::format::writer::apr::{AprWriter, Flavour};
use apr_lint::pipeline::Verdict;

const G: &str = "gguf/tiny-llama-ropefreqs-q8_0.gguf";

fn edit_factors(w: &mut AprWriter, f: impl Fn(f32) -> f32) {
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.name == "rope_freqs.weight")
        .expect("the converter keeps rope_freqs.weight");
    t.bytes = t
        .bytes
        .chunks_exact(4)
        .flat_map(|c| f(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
        .collect();
}

#[test]
fn the_reference_alone_is_clean() {
    let o = lint_one(&gguf_view(G));
    assert!(
        !o.findings.iter().any(|f| f.code == "APRL-M008"),
        "rope_freqs.weight is a llama role, not an unclaimed tensor\n{}",
        describe(&o)
    );
    assert!(errors(&o).is_empty(), "{}", describe(&o));
}

#[test]
fn a_faithful_conversion_passes() {
    for flavour in [Flavour::Aprender, Flavour::Realizar] {
        let o = lint_pair(&apr_view(&clean_apr(G, flavour)), &gguf_view(G));
        assert_eq!(o.verdict, Verdict::Pass, "{flavour:?}\n{}", describe(&o));
        let p = o.probe.as_ref().expect("probe ran");
        assert!(
            p["stages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["pass"] == true),
            "{p}"
        );
    }
}

#[test]
fn dropped_factors_are_named_statically_and_by_the_probe() {
    let mut w = clean_apr(G, Flavour::Aprender);
    w.tensors.retain(|t| t.name != "rope_freqs.weight");
    let o = lint_pair(&apr_view(&w), &gguf_view(G));
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    assert!(
        finds(&o, "APRL-M030", Some("missing-tensor"), "rope_freqs"),
        "{}",
        describe(&o)
    );
    // Q and K agree before RoPE; after it the probe names the dropped factors, and says to copy
    // the tensor (this file has no `llama3` scaling to fix).
    assert!(
        o.findings.iter().any(|f| f.code == "APRL-N032"
            && f.class() == "missing-tensor"
            && f.message.contains("rope_freqs.weight")
            && f.help.contains("copy `rope_freqs.weight`")),
        "{}",
        describe(&o)
    );
}

#[test]
fn inverse_frequencies_instead_of_divisors_are_caught() {
    let mut w = clean_apr(G, Flavour::Aprender);
    edit_factors(&mut w, |f| 1.0 / f);
    let o = lint_pair(&apr_view(&w), &gguf_view(G));
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    // The weight comparison sees the values differ …
    assert!(
        o.findings
            .iter()
            .any(|f| f.severity == apr_lint::Severity::Error
                && f.tensor.as_deref() == Some("rope_freqs.weight")),
        "{}",
        describe(&o)
    );
    // … and the probe says what that does to the rotation.
    assert!(
        finds(&o, "APRL-N030", Some("value-mismatch"), "rope_freqs.weight"),
        "{}",
        describe(&o)
    );
}

#[test]
fn non_finite_or_zero_factors_skip_the_probe_with_a_reason() {
    for bad in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        let mut w = clean_apr(G, Flavour::Aprender);
        edit_factors(&mut w, |f| if f == 8.0 { bad } else { f });
        let o = lint_pair(&apr_view(&w), &gguf_view(G));
        assert_ne!(o.verdict, Verdict::Pass, "{bad}\n{}", describe(&o));
        assert!(
            finds(&o, "APRL-N022", None, "rope_freqs.weight"),
            "{bad}\n{}",
            describe(&o)
        );
    }
}

// Hugging Face's `llama3` scaling in an APR stands for the divisors a GGUF stores as
// `rope_freqs.weight`. The oracles: llama.cpp's converter code itself
// (`conversion/llama.py`, `LlamaModel.generate_extra_tensors`, run on five configs by
// `scripts/llama3_divisors_converter.py` into `fixtures/rope/llama3_divisors.json`), and llama.cpp
// running a GGUF with the first config's divisors (written by `scripts/derive_gguf.py
// --llama3-freqs 8,1,4,16`, checked below to be bit-identical to the converter's).

const L3: &str = "tiny-llama-llama3-q8_0";

fn llama3_json(factor: f64, orig: u64) -> serde_json::Value {
    serde_json::json!({"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": orig})
}

/// `tiny-llama-q8_0` with the converter's `rope_freqs.weight` first, as gguf-py laid it out.
fn llama3_gguf() -> Vec<u8> {
    use apr_lint::format::writer::gguf::{GgufTensor, GgufWriter};
    let factors = act(L3, "rope_freqs");
    let mut w = GgufWriter::from_file(&gguf_file("gguf/tiny-llama-q8_0.gguf"));
    let bytes = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
    w.tensors.insert(
        0,
        GgufTensor::new(
            "rope_freqs.weight",
            vec![32],
            apr_lint::quant::DType::F32,
            bytes,
        ),
    );
    let b = w.to_bytes();
    assert_eq!(
        sha256_hex(&b),
        "3a39e8c236a29e372ebaf8ffd5a112cce30e5f4f749823019fb72d5b9521258b",
        "not the file llama.cpp ran"
    );
    b
}

/// The plain tiny llama converted, without `rope_freqs.weight`, with `scaling` as `rope_scaling`.
fn apr_with_scaling(scaling: serde_json::Value) -> apr_lint::model::ModelView {
    let mut w = clean_apr("gguf/tiny-llama-q8_0.gguf", Flavour::Aprender);
    w.metadata.push(("rope_scaling".into(), scaling));
    apr_view(&w)
}

/// `fixtures/rope/llama3_divisors.json`: per case the HF `rope_scaling`, RoPE base, head width
/// and the divisors llama.cpp's converter wrote.
fn converter_cases() -> Vec<(serde_json::Value, f64, usize, Vec<f32>)> {
    let j: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("rope/llama3_divisors.json")).expect("fixture"),
    )
    .expect("json");
    assert!(
        j["provenance"]
            .as_str()
            .unwrap()
            .contains("generate_extra_tensors")
    );
    j["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            (
                c["rope_scaling"].clone(),
                c["rope_theta"].as_f64().unwrap(),
                c["head_dim"].as_u64().unwrap() as usize,
                c["divisors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn hf_llama3_scaling_gives_llama_cpps_converter_factors() {
    let cases = converter_cases();
    assert_eq!(cases.len(), 5);
    for (scaling, theta, hd, theirs) in &cases {
        let v = apr_with_scaling(scaling.clone());
        let s = v.config.rope_scaling.as_ref().expect("read").value.clone();
        let mine = s.llama3_factors(*theta, *hd).expect("llama3");
        assert_eq!(mine.len(), theirs.len(), "{scaling}");
        for (i, (m, t)) in mine.iter().zip(theirs).enumerate() {
            // The converter computes in float32, apr-lint in f64 rounded once.
            assert!(
                (m - t).abs() <= 1e-6 * t.abs(),
                "{scaling} θ {theta} hd {hd}, pair {i}: {m} vs converter {t}"
            );
        }
        // Every case has pairs in the smooth band, not only 1 and the factor.
        let factor = theirs.iter().cloned().fold(0f32, f32::max);
        assert!(
            theirs.iter().any(|f| *f != 1.0 && *f != factor),
            "{scaling}"
        );
    }
    // The file llama.cpp ran carries exactly the converter's divisors for the first config …
    let ran = act(L3, "rope_freqs");
    assert_eq!(
        ran.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        cases[0].3.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        "fixtures/act/{L3}/rope_freqs.npy is not the converter's output"
    );
    assert_eq!(cases[0].0, llama3_json(8.0, 16));
    // … and they move the rotation at these positions: most pairs are divided by 8.
    assert!(ran.iter().filter(|f| **f == 8.0).count() > 20);
}

#[test]
fn hf_llama3_scaling_rotates_as_llama_cpp_does() {
    let rules = apr_lint::rules::RuleSet::builtin();
    for v in [
        view_of(llama3_gguf(), "l3.gguf"),
        apr_with_scaling(llama3_json(8.0, 16)),
    ] {
        let r = apr_lint::rules::Resolved::new(&v, &rules);
        let a = apr_lint::numeric::probe::forward(&v, &r, &act_tokens(L3)).unwrap();
        for (mine, theirs) in [(&a.q_rope, "Qcur-0"), (&a.k_rope, "Kcur-0")] {
            let t = act(L3, theirs);
            assert!(
                matches_llama_cpp(mine, &t),
                "{theirs}: cosine {}, rel {}",
                agreement(mine, &t).cosine,
                rel_max(mine, &t)
            );
        }
    }
    // Without the factors the same activations are not matched: the check above can fail.
    let v = gguf_view("gguf/tiny-llama-q8_0.gguf");
    let r = apr_lint::rules::Resolved::new(&v, &rules);
    let a = apr_lint::numeric::probe::forward(&v, &r, &act_tokens(L3)).unwrap();
    let t = act(L3, "Qcur-0");
    assert!(
        differs_from_llama_cpp(&a.q_rope, &t),
        "plain RoPE also matched"
    );
}

#[test]
fn an_apr_with_llama3_scaling_pairs_with_a_gguf_with_rope_freqs() {
    let g = view_of(llama3_gguf(), "l3.gguf");
    let o = lint_pair(&apr_with_scaling(llama3_json(8.0, 16)), &g);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    // Other factors: the probe names the divisors.
    let o = lint_pair(&apr_with_scaling(llama3_json(2.0, 16)), &g);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    assert!(
        finds(&o, "APRL-N030", Some("value-mismatch"), "rope_freqs.weight"),
        "{}",
        describe(&o)
    );
    // A reference without the divisors: named statically and by the probe.
    let o = lint_pair(
        &apr_with_scaling(llama3_json(8.0, 16)),
        &gguf_view("gguf/tiny-llama-q8_0.gguf"),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    assert!(finds(&o, "APRL-M023", None, "llama3"), "{}", describe(&o));
    assert!(
        o.findings.iter().any(|f| f.code == "APRL-N033"),
        "{}",
        describe(&o)
    );
}

#[test]
fn a_huge_head_dim_with_llama3_scaling_is_refused_not_allocated() {
    for hd in [1u64 << 40, 1 << 62, u64::MAX - 1] {
        let mut w = clean_apr("gguf/tiny-llama-q8_0.gguf", Flavour::Aprender);
        w.metadata
            .push(("rope_scaling".into(), llama3_json(8.0, 16)));
        w.metadata.retain(|(k, _)| k != "head_dim");
        w.metadata.push(("head_dim".into(), serde_json::json!(hd)));
        let o = lint_pair(&apr_view(&w), &gguf_view("gguf/tiny-llama-q8_0.gguf"));
        assert_ne!(o.verdict, Verdict::Pass, "{hd}\n{}", describe(&o));
    }
}

#[test]
fn llama3_divisors_are_compared_without_the_probe() {
    let g = view_of(llama3_gguf(), "l3.gguf");
    let opts = apr_lint::pipeline::Options {
        no_probe: true,
        ..Default::default()
    };
    for (factor, differs) in [(8.0, false), (2.0, true)] {
        let a = apr_with_scaling(llama3_json(factor, 16));
        let o = apr_lint::pipeline::lint(&a, Some(&g), &opts);
        let found = o.findings.iter().any(|f| {
            f.code == "APRL-N001" && f.message.contains("llama3") && f.message.contains("pair")
        });
        assert_eq!(found, differs, "factor {factor}\n{}", describe(&o));
        assert_eq!(
            o.verdict,
            if differs {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
            "factor {factor}\n{}",
            describe(&o)
        );
    }
}
