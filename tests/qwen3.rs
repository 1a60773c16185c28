//! Qwen3 (no q/k/v biases, per-head q_norm/k_norm, NEOX): a qwen3 GGUF made from the real qwen2
//! fixture by renaming the architecture, dropping the biases and adding the norms, then the rules,
//! the probe and the trace on it.

mod common;
use common::*;

use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::gguf::{GgufTensor, GgufWriter, MetaValue};
use apr_lint::format::{Source, gguf};
use apr_lint::model::ModelView;
use apr_lint::pipeline::Verdict;
use apr_lint::quant::DType;

fn qwen3_gguf() -> Vec<u8> {
    let mut w = GgufWriter::from_file(&gguf_file("gguf/tiny-qwen2-lq-q4_k_m.gguf"));
    for (k, v) in w.metadata.iter_mut() {
        if k == "general.architecture" {
            *v = MetaValue::String("qwen3".into());
        }
        if let Some(rest) = k.strip_prefix("qwen2.") {
            *k = format!("qwen3.{rest}");
        }
    }
    w.metadata
        .push(("qwen3.attention.key_length".into(), MetaValue::U32(64)));
    w.tensors.retain(|t| !t.name.ends_with(".bias"));
    for l in 0..2 {
        for (which, scale) in [("q", 0.01f32), ("k", -0.02)] {
            let v: Vec<f32> = (0..64).map(|i| 1.0 + scale * i as f32).collect();
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            w.tensors.push(GgufTensor::new(
                format!("blk.{l}.attn_{which}_norm.weight"),
                vec![64],
                DType::F32,
                bytes,
            ));
        }
    }
    w.to_bytes()
}

#[test]
fn qwen3_pair_passes_and_a_bad_k_norm_is_found() {
    let bytes = qwen3_gguf();
    let g = ModelView::from_source(Source::from_vec(bytes.clone(), "q3.gguf")).unwrap();
    let o = lint_one(&g);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    let gf = gguf::read(Source::from_vec(bytes, "q3.gguf")).unwrap();
    let w = gguf_to_apr(&gf, Flavour::Aprender);
    assert!(
        w.tensors
            .iter()
            .any(|t| t.name == "model.layers.0.self_attn.k_norm.weight")
    );
    let o = lint_pair(&apr_view(&w), &g);
    assert_eq!(o.verdict, Verdict::Pass, "{}", describe(&o));
    let p = o.probe.as_ref().expect("probe ran");
    assert!(
        p["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["pass"] == true),
        "{p}"
    );
    // A missing q_norm is a missing tensor.
    let mut m = w.clone();
    m.tensors
        .retain(|t| t.name != "model.layers.1.self_attn.q_norm.weight");
    assert!(has(&lint_one(&apr_view(&m)), "missing-tensor", None));
    // A k_norm with other values: the weights and the probe's K stage both see it.
    let mut bad = w.clone();
    let t = bad
        .tensors
        .iter_mut()
        .find(|t| t.name == "model.layers.0.self_attn.k_norm.weight")
        .unwrap();
    t.bytes = t
        .bytes
        .chunks_exact(4)
        .rev()
        .flat_map(|c| c.to_vec())
        .collect();
    let o = lint_pair(&apr_view(&bad), &g);
    assert_eq!(o.verdict, Verdict::Fail, "{}", describe(&o));
    assert!(
        o.findings
            .iter()
            .any(|f| f.tensor.as_deref() == Some("model.layers.0.self_attn.k_norm.weight")),
        "{}",
        describe(&o)
    );
    let p = o.probe.as_ref().unwrap();
    let k = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "k")
        .unwrap();
    assert_eq!(k["pass"], false, "{p}");
}
