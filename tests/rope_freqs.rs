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
        o.findings.iter().any(|f| f.code == "APRL-M021"
            && f.class == "missing-tensor"
            && f.message.contains("rope_freqs")),
        "{}",
        describe(&o)
    );
    // Q and K agree before RoPE; after it the probe names the dropped factors.
    assert!(
        o.findings.iter().any(|f| f.code == "APRL-N020"
            && f.class == "missing-tensor"
            && f.message.contains("rope_freqs.weight")),
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
        o.findings.iter().any(|f| f.code == "APRL-N020"
            && f.class == "value-mismatch"
            && f.message.contains("rope_freqs.weight")),
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
            o.findings
                .iter()
                .any(|f| f.code == "APRL-N022" && f.message.contains("rope_freqs.weight")),
            "{bad}\n{}",
            describe(&o)
        );
    }
}
