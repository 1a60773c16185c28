//! A correct GGUF → APR converter: what a bug-free `apr import` does (`apr-v2.md`, "Dimension
//! order"). Every tensor's `ne` is reversed into APR dims and its bytes are copied unchanged, float
//! and quantized alike, under the canonical code of its type ([`apr_code`]). No type is
//! dequantized or re-quantized (real aprender would dequantize types other than F32/F16/BF16/
//! Q4_K/Q6_K; the layout question this crate checks is the same either way).
//!
//! Names: realizar keeps GGUF names; aprender uses Hugging Face names for qwen2/qwen3 and keeps GGUF
//! names for every other architecture. A GGUF without `output.weight` (tied embeddings) gets, in the
//! aprender flavour, a byte copy of the embedding under the output's name (`lm_head.weight` for
//! qwen2/qwen3, `output.weight` otherwise) and `tied_embeddings: true`.
//!
//! Metadata: the typed config keys from `<arch>.*`, `rope_type` (2 = NEOX for qwen2/qwen3, 0 = NORM
//! for everything else, since GGUF's llama Q/K rows are permuted for NORM rotation),
//! `original_format: "gguf"`, `tensor_shapes` and the tokenizer.

use std::io;
use std::path::Path;

use serde_json::{Value as Json, json};

use super::apr::{AprTensor, AprTensorRef, AprWriter, Flavour, apr_code};
use crate::format::gguf::{GgufFile, TensorInfo, Value};

/// Architectures whose aprender import uses Hugging Face names and NEOX rope.
const HF_ARCHS: &[&str] = &["qwen2", "qwen3"];

/// One output tensor: its APR name, dims, code, and where its bytes come from.
#[derive(Clone, Debug)]
pub struct Planned<'a> {
    pub name: String,
    pub dims: Vec<u64>,
    pub code: u8,
    /// The GGUF tensor the bytes are copied from.
    pub source: &'a TensorInfo,
}

/// The APR name of a GGUF tensor for `arch` in `flavour`.
pub fn apr_name(arch: &str, flavour: Flavour, gguf_name: &str) -> String {
    if flavour == Flavour::Realizar || !HF_ARCHS.contains(&arch) {
        return gguf_name.to_owned();
    }
    hf_name(gguf_name).unwrap_or_else(|| gguf_name.to_owned())
}

/// Hugging Face name of a GGUF llama-family tensor name, None when there is no mapping.
pub fn hf_name(gguf_name: &str) -> Option<String> {
    let top = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(t.to_owned());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (n, role) = rest.split_once('.')?;
    n.parse::<u64>().ok()?;
    let sub = match role {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_q.bias" => "self_attn.q_proj.bias",
        "attn_k.bias" => "self_attn.k_proj.bias",
        "attn_v.bias" => "self_attn.v_proj.bias",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "attn_q_norm.weight" => "self_attn.q_norm.weight",
        "attn_k_norm.weight" => "self_attn.k_norm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{n}.{sub}"))
}

/// A JSON number for a GGUF float: f32 values go through their shortest decimal form, so
/// `1e-6f32` becomes `1e-6`, not `9.999999974752427e-7`.
fn json_float(v: &Value) -> Option<Json> {
    let x = match *v {
        Value::F32(x) => x.to_string().parse::<f64>().ok()?,
        Value::F64(x) => x,
        _ => v.as_int()? as f64,
    };
    serde_json::Number::from_f64(x).map(Json::Number)
}

fn json_int(v: &Value) -> Option<Json> {
    let i = v.as_int()?;
    if let Ok(u) = u64::try_from(i) {
        Some(json!(u))
    } else {
        i64::try_from(i).ok().map(|x| json!(x))
    }
}

/// The converter's output without payloads: metadata and header fields in an `AprWriter` with no
/// tensors, plus the tensors to write (in GGUF order, a synthesized lm_head last).
pub fn plan<'a>(g: &'a GgufFile, flavour: Flavour) -> (AprWriter, Vec<Planned<'a>>) {
    let arch = g
        .get("general.architecture")
        .and_then(|kv| kv.value.as_str())
        .unwrap_or("")
        .to_owned();
    let mut tensors: Vec<Planned<'a>> = g
        .tensors
        .iter()
        .map(|t| Planned {
            name: apr_name(&arch, flavour, &t.name),
            dims: t.ne.iter().rev().copied().collect(),
            code: apr_code(t.dtype),
            source: t,
        })
        .collect();
    let mut tied = false;
    if flavour == Flavour::Aprender
        && g.tensor("output.weight").is_none()
        && let Some(embd) = g.tensor("token_embd.weight")
    {
        tied = true;
        tensors.push(Planned {
            name: apr_name(&arch, flavour, "output.weight"),
            dims: embd.ne.iter().rev().copied().collect(),
            code: apr_code(embd.dtype),
            source: embd,
        });
    }

    let mut w = AprWriter::new(flavour);
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let get = |k: &str| g.get(k).map(|kv| &kv.value);
    w.meta("architecture", json!(arch));
    let ints: [(&str, String); 6] = [
        ("hidden_size", key("embedding_length")),
        ("num_layers", key("block_count")),
        ("num_heads", key("attention.head_count")),
        ("num_kv_heads", key("attention.head_count_kv")),
        ("vocab_size", key("vocab_size")),
        ("intermediate_size", key("feed_forward_length")),
    ];
    for (apr_key, gguf_key) in &ints {
        let v = get(gguf_key).and_then(json_int).or_else(|| {
            // GGUF often leaves the vocab size to the token list (or the embedding).
            (*apr_key == "vocab_size")
                .then(|| vocab_size(g))
                .flatten()
                .map(|n| json!(n))
        });
        if let Some(v) = v {
            w.meta(*apr_key, v);
        }
    }
    if let Some(v) = get(&key("context_length")).and_then(json_int) {
        w.meta("max_position_embeddings", v);
    }
    if let Some(v) = get(&key("rope.freq_base")).and_then(json_float) {
        w.meta("rope_theta", v);
    }
    // RoPE context scaling: apr-v2 has no typed key; Hugging Face's `rope_scaling` object is what a
    // producer carrying the model's config writes (and what apr-lint reads back).
    let kind = get(&key("rope.scaling.type")).and_then(|v| v.as_str().map(str::to_owned));
    let factor = get(&key("rope.scaling.factor"))
        .or_else(|| get(&key("rope.scale_linear")))
        .and_then(json_float);
    if kind.as_deref().is_some_and(|k| k != "none") || (kind.is_none() && factor.is_some()) {
        let mut o = serde_json::Map::new();
        o.insert(
            "rope_type".into(),
            json!(kind.unwrap_or_else(|| "linear".into())),
        );
        if let Some(f) = factor {
            o.insert("factor".into(), f);
        }
        if let Some(n) = get(&key("rope.scaling.original_context_length")).and_then(json_int) {
            o.insert("original_max_position_embeddings".into(), n);
        }
        w.meta("rope_scaling", Json::Object(o));
    }
    w.meta(
        "rope_type",
        json!(if HF_ARCHS.contains(&arch.as_str()) {
            2
        } else {
            0
        }),
    );
    if let Some(v) = get(&key("attention.layer_norm_rms_epsilon")).and_then(json_float) {
        w.meta("rms_norm_eps", v);
    }
    if let Some(v) = get(&key("attention.key_length")).and_then(json_int) {
        w.meta("head_dim", v);
    }
    w.meta("original_format", json!("gguf"));
    if tied {
        w.meta("tied_embeddings", json!(true));
    }
    let shapes: serde_json::Map<String, Json> = tensors
        .iter()
        .map(|t| (t.name.clone(), json!(t.dims)))
        .collect();
    w.meta("tensor_shapes", Json::Object(shapes));
    tokenizer_meta(g, &mut w);
    (w, tensors)
}

fn vocab_size(g: &GgufFile) -> Option<u64> {
    if let Some(Value::Array(a)) = g.get("tokenizer.ggml.tokens").map(|kv| &kv.value) {
        return Some(a.len);
    }
    g.tensor("token_embd.weight")
        .and_then(|t| t.ne.get(1).copied())
}

fn tokenizer_meta(g: &GgufFile, w: &mut AprWriter) {
    let get = |k: &str| g.get(k).map(|kv| &kv.value);
    if let Some(Value::Array(a)) = get("tokenizer.ggml.tokens") {
        w.meta("tokenizer.vocabulary", json!(g.array_strings(a)));
    }
    if let Some(Value::Array(a)) = get("tokenizer.ggml.merges") {
        w.meta("tokenizer.merges", json!(g.array_strings(a)));
    }
    if let Some(s) = get("tokenizer.ggml.model").and_then(Value::as_str) {
        w.meta("tokenizer.model", json!(s));
    }
    if let Some(s) = get("tokenizer.ggml.pre").and_then(Value::as_str) {
        w.meta("tokenizer.pre_type", json!(s));
    }
    for (apr_key, gguf_key) in [
        ("tokenizer.bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("tokenizer.eos_token_id", "tokenizer.ggml.eos_token_id"),
    ] {
        if let Some(v) = get(gguf_key).and_then(json_int) {
            w.meta(apr_key, v);
        }
    }
    if let Some(b) = get("tokenizer.ggml.add_bos_token").and_then(Value::as_bool) {
        w.meta("tokenizer.add_bos_token", json!(b));
    }
    if let Some(Value::Array(a)) = get("tokenizer.ggml.token_type") {
        let types: Vec<i64> = g.array_numbers(a).into_iter().map(|x| x as i64).collect();
        w.meta("tokenizer.token_type", json!(types));
    }
}

/// Convert a read GGUF into an APR writer holding copies of every tensor's bytes.
pub fn gguf_to_apr(g: &GgufFile, flavour: Flavour) -> AprWriter {
    let (mut w, planned) = plan(g, flavour);
    w.tensors = planned
        .into_iter()
        .map(|p| AprTensor {
            bytes: g.tensor_bytes(p.source).to_vec(),
            name: p.name,
            dims: p.dims,
            code: p.code,
        })
        .collect();
    w
}

/// Convert and stream to `path`, reading payloads straight from `g`'s bytes (no copy of the model
/// in memory: for benchmark-size files).
pub fn write_gguf_as_apr(g: &GgufFile, flavour: Flavour, path: &Path) -> io::Result<()> {
    let (w, planned) = plan(g, flavour);
    let refs: Vec<AprTensorRef<'_>> = planned
        .iter()
        .map(|p| AprTensorRef {
            name: &p.name,
            dims: &p.dims,
            code: p.code,
            bytes: g.tensor_bytes(p.source),
        })
        .collect();
    w.write_refs(path, &refs)
}
