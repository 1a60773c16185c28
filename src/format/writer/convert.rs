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
//!
//! [`hf_to_apr`] is the same for a Hugging Face checkpoint (aprender's canonical import path): HF
//! names, SafeTensors shapes and bytes unchanged, HF Q/K order with NEOX rope.

use std::io;
use std::path::Path;

use serde_json::{Value as Json, json};

use super::apr::{AprTensor, AprTensorRef, AprWriter, Flavour, apr_code};
use crate::format::gguf::{GgufFile, TensorInfo, Value};
use crate::format::hf::HfCheckpoint;

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
    config_tail(
        &mut w,
        get(&key("attention.layer_norm_rms_epsilon")).and_then(json_float),
        get(&key("attention.key_length")).and_then(json_int),
        "gguf",
        tied,
        tensors.iter().map(|t| (&t.name, &t.dims)),
    );
    tokenizer_meta(g, &mut w);
    (w, tensors)
}

/// The keys both converters end the config with, in this order: `rms_norm_eps` and `head_dim`
/// (where the source has them), `original_format`, `tied_embeddings` (when the output was
/// synthesized from the embedding) and `tensor_shapes` (name → dims of every tensor written).
fn config_tail<'t>(
    w: &mut AprWriter,
    rms_norm_eps: Option<Json>,
    head_dim: Option<Json>,
    original_format: &str,
    tied: bool,
    tensors: impl Iterator<Item = (&'t String, &'t Vec<u64>)>,
) {
    if let Some(v) = rms_norm_eps {
        w.meta("rms_norm_eps", v);
    }
    if let Some(v) = head_dim {
        w.meta("head_dim", v);
    }
    w.meta("original_format", json!(original_format));
    if tied {
        w.meta("tied_embeddings", json!(true));
    }
    let shapes: serde_json::Map<String, Json> = tensors
        .map(|(name, dims)| (name.clone(), json!(dims)))
        .collect();
    w.meta("tensor_shapes", Json::Object(shapes));
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

// -------------------------------------------------------------------------------------------------
// Hugging Face → APR

/// A correct Hugging Face → APR conversion (aprender's canonical `apr import hf://…` path): every
/// tensor under its Hugging Face name with its SafeTensors shape as APR dims and its bytes copied
/// unchanged (F32, F16 and BF16 stay what they are), Q/K rows in Hugging Face order with
/// `rope_type` 2 (NEOX: Hugging Face rotates half-split pairs, for llama as for qwen2), a tied
/// checkpoint's `lm_head.weight` synthesized as a copy of the embedding with
/// `tied_embeddings: true`, the typed config keys from `config.json` (classic `rope_theta` /
/// `rope_scaling` or transformers 5's `rope_parameters`), `original_format: "safetensors"`,
/// `tensor_shapes`, and the tokenizer keys from `tokenizer.json` / `tokenizer_config.json`.
///
/// Reads the sidecars itself with serde_json (the writers sit above `model/` and do not use its
/// readers); a missing or malformed `config.json` is an `InvalidData` error.
pub fn hf_to_apr(ck: &HfCheckpoint) -> io::Result<AprWriter> {
    let read_json = |p: Option<&std::path::PathBuf>| -> io::Result<Option<Json>> {
        match p {
            None => Ok(None),
            Some(p) => {
                let v: Json = serde_json::from_slice(&std::fs::read(p)?).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
                })?;
                Ok(Some(v))
            }
        }
    };
    let config = read_json(ck.sidecars.config.as_ref())?
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no config.json"))?;
    let tokenizer = read_json(ck.sidecars.tokenizer.as_ref())?;
    let tokenizer_config = read_json(ck.sidecars.tokenizer_config.as_ref())?;

    let mut w = AprWriter::new(Flavour::Aprender);
    let mut tensors = Vec::with_capacity(ck.tensors.len() + 1);
    for t in &ck.tensors {
        let st = &t.tensor;
        let dt = st.dtype.to_dtype().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}`: {} has no APR dtype", st.name, st.dtype.name()),
            )
        })?;
        let bytes = ck.file_of(t).bytes_of(st).unwrap_or(&[]).to_vec();
        tensors.push(AprTensor::new(st.name.clone(), st.shape.clone(), dt, bytes));
    }
    let tied_flag = config
        .get("tie_word_embeddings")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let mut tied = false;
    if !tensors.iter().any(|t| t.name == "lm_head.weight")
        && let Some(e) = tensors
            .iter()
            .find(|t| t.name == "model.embed_tokens.weight")
            .cloned()
        && tied_flag
    {
        tied = true;
        tensors.push(AprTensor {
            name: "lm_head.weight".into(),
            ..e
        });
    }

    let get = |k: &str| config.get(k).filter(|v| !v.is_null()).cloned();
    let model_type = get("model_type").and_then(|v| v.as_str().map(str::to_owned));
    w.meta(
        "architecture",
        json!(model_type.clone().unwrap_or_default()),
    );
    if let Some(a) = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Json::as_str)
    {
        w.meta("hf_architecture", json!(a));
    }
    if let Some(m) = &model_type {
        w.meta("hf_model_type", json!(m));
    }
    for (apr_key, hf_key) in [
        ("hidden_size", "hidden_size"),
        ("num_layers", "num_hidden_layers"),
        ("num_heads", "num_attention_heads"),
        ("num_kv_heads", "num_key_value_heads"),
        ("vocab_size", "vocab_size"),
        ("intermediate_size", "intermediate_size"),
        ("max_position_embeddings", "max_position_embeddings"),
    ] {
        if let Some(v) = get(hf_key) {
            w.meta(apr_key, v);
        }
    }
    let rope = config.get("rope_parameters").filter(|v| v.is_object());
    if let Some(theta) =
        get("rope_theta").or_else(|| rope.and_then(|r| r.get("rope_theta")).cloned())
    {
        w.meta("rope_theta", theta);
    }
    // The scaling object in Hugging Face's classic form (what apr-lint reads from APR metadata).
    let scaling = get("rope_scaling").or_else(|| {
        let r = rope?.as_object()?;
        let kind = r.get("rope_type").and_then(Json::as_str)?;
        (kind != "default").then(|| {
            Json::Object(
                r.iter()
                    .filter(|(k, _)| *k != "rope_theta")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        })
    });
    if let Some(s) = scaling {
        w.meta("rope_scaling", s);
    }
    w.meta("rope_type", json!(2));
    config_tail(
        &mut w,
        get("rms_norm_eps"),
        get("head_dim"),
        "safetensors",
        tied,
        tensors.iter().map(|t| (&t.name, &t.dims)),
    );
    if let Some(tok) = &tokenizer {
        hf_tokenizer_meta(tok, tokenizer_config.as_ref(), &config, &mut w);
    }
    w.tensors = tensors;
    Ok(w)
}

/// The tokenizer keys an APR carries, from a byte-level BPE `tokenizer.json`: tokens by id (the
/// model's vocab and the added tokens), merges as `"a b"`, `gpt2` and the llama.cpp pre-tokenizer
/// name of the split regex, BOS/EOS ids (`tokenizer_config.json`'s tokens, else `config.json`'s ids),
/// `add_bos_token` (`tokenizer_config.json`, else a BOS in the post-processor's template) and token
/// types (3 for special added tokens, 4 for other added tokens, 1 otherwise).
fn hf_tokenizer_meta(tok: &Json, tok_config: Option<&Json>, config: &Json, w: &mut AprWriter) {
    use super::safetensors::{LLAMA3_SPLIT, QWEN2_SPLIT};
    let model = &tok["model"];
    let mut by_id: Vec<(u64, String)> = model["vocab"]
        .as_object()
        .map(|v| {
            v.iter()
                .filter_map(|(t, id)| Some((id.as_u64()?, t.clone())))
                .collect()
        })
        .unwrap_or_default();
    let added = tok["added_tokens"].as_array().cloned().unwrap_or_default();
    for a in &added {
        if let (Some(id), Some(t)) = (a["id"].as_u64(), a["content"].as_str())
            && !by_id.iter().any(|(i, _)| *i == id)
        {
            by_id.push((id, t.to_owned()));
        }
    }
    by_id.sort();
    let n = by_id.last().map_or(0, |(i, _)| i + 1) as usize;
    let mut tokens = vec![String::new(); n.min(by_id.len().max(1) * 2)];
    for (id, t) in &by_id {
        if let Some(slot) = tokens.get_mut(*id as usize) {
            *slot = t.clone();
        }
    }
    let mut types = vec![1i64; tokens.len()];
    for a in &added {
        if let Some(slot) = a["id"].as_u64().and_then(|i| types.get_mut(i as usize)) {
            *slot = if a["special"].as_bool() == Some(true) {
                3
            } else {
                4
            };
        }
    }
    let merges: Vec<String> = model["merges"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| match x {
                    Json::String(s) => Some(s.clone()),
                    Json::Array(p) => {
                        Some(format!("{} {}", p.first()?.as_str()?, p.get(1)?.as_str()?))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let id_of = |key: &str| -> Option<Json> {
        let t = tok_config?.get(key)?;
        let s = t.as_str().or_else(|| t.get("content")?.as_str())?;
        tokens.iter().position(|x| x == s).map(|i| json!(i))
    };
    let pre = tok["pre_tokenizer"]["pretokenizers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&tok["pre_tokenizer"]))
        .find_map(|p| p["pattern"]["Regex"].as_str())
        .and_then(|r| match r {
            QWEN2_SPLIT => Some("qwen2"),
            LLAMA3_SPLIT => Some("llama-bpe"),
            _ => None,
        });
    w.meta("tokenizer.vocabulary", json!(tokens));
    w.meta("tokenizer.merges", json!(merges));
    if model["type"].as_str() == Some("BPE") {
        w.meta("tokenizer.model", json!("gpt2"));
    }
    if let Some(p) = pre {
        w.meta("tokenizer.pre_type", json!(p));
    }
    for (apr_key, tc_key, cfg_key) in [
        ("tokenizer.bos_token_id", "bos_token", "bos_token_id"),
        ("tokenizer.eos_token_id", "eos_token", "eos_token_id"),
    ] {
        if let Some(v) =
            id_of(tc_key).or_else(|| config.get(cfg_key).filter(|v| v.is_u64()).cloned())
        {
            w.meta(apr_key, v);
        }
    }
    let template_bos = tok["post_processor"]["single"]
        .as_array()
        .and_then(|s| s.first())
        .is_some_and(|p| p.get("SpecialToken").is_some());
    let add_bos = tok_config
        .and_then(|c| c.get("add_bos_token"))
        .and_then(Json::as_bool)
        .unwrap_or(template_bos);
    w.meta("tokenizer.add_bos_token", json!(add_bos));
    w.meta("tokenizer.token_type", json!(types));
}

/// Convert the checkpoint at `path` (a directory, `model.safetensors` or an index) and write the
/// APR to `out`.
pub fn write_hf_as_apr(path: &Path, out: &Path) -> io::Result<()> {
    let ck = crate::format::hf::open(path).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} {}", e.code(), e.message),
        )
    })?;
    hf_to_apr(&ck)?.write(out)
}
