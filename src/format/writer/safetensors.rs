//! A Hugging Face checkpoint writer: SafeTensors files laid out as the `safetensors` package writes
//! them, sharded as `huggingface_hub` shards them, and a model directory made from a GGUF the way
//! transformers' GGUF loader makes one (`from_pretrained(..., gguf_file=...)` then
//! `save_pretrained`).
//!
//! SafeTensors layout (safetensors 0.6, `serialize`): an 8-byte little-endian header length, a
//! compact JSON header (`__metadata__` first, then one `{"dtype","shape","data_offsets"}` entry per
//! tensor in data order) padded with spaces to a multiple of 8, then the data. Data order: larger
//! elements first, then by name — for a checkpoint of one dtype, simply by name.
//!
//! Shards (`huggingface_hub.split_torch_state_dict_into_shards`): tensors are taken in the model's
//! state-dict order; one that would take the current shard past `max_shard_size` starts a new shard;
//! one larger than `max_shard_size` gets a shard of its own. One shard is written as
//! `model.safetensors`; more as `model-0000i-of-0000n.safetensors` with a
//! `model.safetensors.index.json` (`metadata.total_parameters`, `metadata.total_size`, `weight_map`,
//! keys sorted, indent 2, final newline).
//!
//! From a GGUF (transformers 5's `integrations/ggml.py` and `modeling_gguf_pytorch_utils.py`):
//! names through [`hf_name`], dims = `ne` reversed, every tensor dequantized to f32 and cast to the
//! requested float type (round to nearest even, as torch casts), and, for the llama family (llama,
//! mistral), the Q/K rows llama.cpp's converter permuted for NORM rotation put back in Hugging Face
//! order (`reverse_permute_weights`, with `head_count` for Q and `head_count_kv` for K). A GGUF
//! without `output.weight` is a tied model: `tie_word_embeddings: true` and no `lm_head.weight`.
//! `config.json`, `generation_config.json`, `tokenizer.json` (byte-level BPE: vocab, merges, added
//! tokens, the pre-tokenizer's split regex, BOS/EOS template) and `tokenizer_config.json` hold what
//! transformers writes for these architectures, less its own bookkeeping (`transformers_version`,
//! `is_local`, `model_max_length`).
//!
//! Refused (an `InvalidInput` error naming what): an architecture other than qwen2, qwen3, llama
//! and mistral, a tensor with no Hugging Face name, `rope_freqs.weight` (Llama 3's divisors: the
//! `rope_scaling` parameters they came from are not in the GGUF), a tokenizer that is not a
//! byte-level BPE with a known pre-tokenizer, Q/K rows that do not split into the head count.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value as Json, json};

use super::convert::hf_name;
use crate::format::gguf::{GgufFile, Value};
use crate::format::hf::{INDEX_FILE, SINGLE_FILE};
use crate::format::safetensors::StDtype;
use crate::quant::{self, DType};

/// The float type a checkpoint is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfDtype {
    F32,
    F16,
    BF16,
}

impl HfDtype {
    pub fn st(self) -> StDtype {
        match self {
            HfDtype::F32 => StDtype::F32,
            HfDtype::F16 => StDtype::F16,
            HfDtype::BF16 => StDtype::BF16,
        }
    }
    /// The name `config.json` gives it (`dtype`).
    pub fn torch_name(self) -> &'static str {
        match self {
            HfDtype::F32 => "float32",
            HfDtype::F16 => "float16",
            HfDtype::BF16 => "bfloat16",
        }
    }
    fn dtype(self) -> DType {
        match self {
            HfDtype::F32 => DType::F32,
            HfDtype::F16 => DType::F16,
            HfDtype::BF16 => DType::BF16,
        }
    }
    fn from_st(d: StDtype) -> Option<HfDtype> {
        match d {
            StDtype::F32 => Some(HfDtype::F32),
            StDtype::F16 => Some(HfDtype::F16),
            StDtype::BF16 => Some(HfDtype::BF16),
            _ => None,
        }
    }
    /// Append `values` in this type, rounding to nearest even as torch's casts do.
    fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            HfDtype::F32 => values
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            HfDtype::F16 => values.iter().for_each(|x| {
                out.extend_from_slice(&half::f16::from_f32(*x).to_bits().to_le_bytes())
            }),
            HfDtype::BF16 => values.iter().for_each(|x| {
                out.extend_from_slice(&half::bf16::from_f32(*x).to_bits().to_le_bytes())
            }),
        }
    }
}

/// Where a tensor's bytes come from.
#[derive(Clone, Debug)]
pub enum Payload<'a> {
    /// Written verbatim; its length sets the data offsets (damage tests may make it disagree with
    /// the shape and dtype).
    Bytes(Vec<u8>),
    /// A GGUF tensor, converted while it is written: dequantized, rows of dim 0 put back in Hugging
    /// Face order when `unpermute_heads` is set, cast to the tensor's dtype.
    Gguf {
        src: &'a [u8],
        src_dtype: DType,
        /// Canonical dims of the source (`ne` reversed).
        dims: Vec<u64>,
        unpermute_heads: Option<u64>,
    },
}

/// One tensor to write.
#[derive(Clone, Debug)]
pub struct HfTensor<'a> {
    pub name: String,
    pub dtype: StDtype,
    /// Row-major, outermost first (Hugging Face's `[out, in]`).
    pub shape: Vec<u64>,
    pub payload: Payload<'a>,
}

fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

fn invalid_data(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Values per chunk when a tensor is converted row range by row range.
const CHUNK_ELEMS: u64 = 1 << 20;

impl<'a> HfTensor<'a> {
    /// A tensor with verbatim bytes.
    pub fn new(name: impl Into<String>, dtype: StDtype, shape: Vec<u64>, bytes: Vec<u8>) -> Self {
        HfTensor {
            name: name.into(),
            dtype,
            shape,
            payload: Payload::Bytes(bytes),
        }
    }

    /// Bytes in the data area: the verbatim payload's length, else product(shape) × dtype size.
    pub fn n_bytes(&self) -> u64 {
        match &self.payload {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Gguf { .. } => self.n_elems() * self.dtype.size(),
        }
    }

    pub fn n_elems(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The bytes as written (converted now for a GGUF payload).
    pub fn bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        match &self.payload {
            Payload::Bytes(b) => Ok(Cow::Borrowed(b)),
            Payload::Gguf { .. } => {
                let mut out = Vec::new();
                self.write_payload(&mut out)?;
                Ok(Cow::Owned(out))
            }
        }
    }

    /// The values as f32 (the payload decoded in the tensor's dtype).
    pub fn values(&self) -> io::Result<Vec<f32>> {
        let dt = HfDtype::from_st(self.dtype)
            .ok_or_else(|| invalid_input(format!("`{}` is not a float tensor", self.name)))?;
        quant::dequantize_to_vec(dt.dtype(), &self.bytes()?, &self.shape).map_err(invalid_data)
    }

    /// Replace the payload by `values` in the tensor's dtype.
    pub fn set_values(&mut self, values: &[f32]) -> io::Result<()> {
        let dt = HfDtype::from_st(self.dtype)
            .ok_or_else(|| invalid_input(format!("`{}` is not a float tensor", self.name)))?;
        let mut out = Vec::with_capacity(values.len() * dt.dtype().block_bytes() as usize);
        dt.encode(values, &mut out);
        self.payload = Payload::Bytes(out);
        Ok(())
    }

    fn write_payload(&self, w: &mut dyn Write) -> io::Result<()> {
        let (src, src_dtype, dims, unpermute_heads) = match &self.payload {
            Payload::Bytes(b) => return w.write_all(b),
            Payload::Gguf {
                src,
                src_dtype,
                dims,
                unpermute_heads,
            } => (*src, *src_dtype, dims, *unpermute_heads),
        };
        let out_dt = HfDtype::from_st(self.dtype)
            .ok_or_else(|| invalid_input(format!("`{}`: {:?} output", self.name, self.dtype)))?;
        if let Some(heads) = unpermute_heads {
            let values = quant::dequantize_to_vec(src_dtype, src, dims).map_err(invalid_data)?;
            let order = unpermuted_rows(&self.name, dims.first().copied().unwrap_or(0), heads)?;
            if order.is_empty() {
                return Ok(());
            }
            let stride = values.len() / order.len();
            let mut buf = Vec::with_capacity(values.len() * self.dtype.size() as usize);
            for r in order {
                let r = r as usize;
                out_dt.encode(&values[r * stride..(r + 1) * stride], &mut buf);
            }
            return w.write_all(&buf);
        }
        if src_dtype == out_dt.dtype() {
            return w.write_all(src);
        }
        let cols = dims.last().copied().unwrap_or(1).max(1);
        let rows: u64 = if dims.len() <= 1 {
            1
        } else {
            dims[..dims.len() - 1].iter().product()
        };
        let step = (CHUNK_ELEMS / cols).max(1);
        let mut values = Vec::new();
        let mut buf = Vec::new();
        let mut r = 0;
        while r < rows {
            let end = (r + step).min(rows);
            values.resize(((end - r) * cols) as usize, 0.0);
            quant::dequantize_rows(src_dtype, src, dims, r..end, &mut values)
                .map_err(invalid_data)?;
            buf.clear();
            out_dt.encode(&values, &mut buf);
            w.write_all(&buf)?;
            r = end;
        }
        Ok(())
    }
}

/// Source row (in llama.cpp's order) of every Hugging Face row of a Q or K projection with `n_rows`
/// rows in `heads` heads. llama.cpp's `permute` maps Hugging Face row `h·d + j·d/2 + i` to row
/// `h·d + 2i + j`; this is its inverse, as transformers' `reverse_permute_weights`.
pub fn unpermuted_rows(name: &str, n_rows: u64, heads: u64) -> io::Result<Vec<u64>> {
    if heads == 0 || !n_rows.is_multiple_of(heads) || !(n_rows / heads).is_multiple_of(2) {
        return Err(invalid_input(format!(
            "`{name}`: {n_rows} rows do not split into {heads} heads of an even size"
        )));
    }
    let d = n_rows / heads;
    let half = d / 2;
    Ok((0..n_rows)
        .map(|r| {
            let (h, w) = (r / d, r % d);
            let (j, i) = (w / half, w % half);
            h * d + 2 * i + j
        })
        .collect())
}

// -------------------------------------------------------------------------------------------------
// SafeTensors files

/// The order `safetensors` lays tensors out in: larger elements first, then by name.
pub fn data_order(tensors: &[&HfTensor<'_>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..tensors.len()).collect();
    idx.sort_by(|&a, &b| {
        let (a, b) = (tensors[a], tensors[b]);
        b.dtype
            .size()
            .cmp(&a.dtype.size())
            .then_with(|| a.name.cmp(&b.name))
    });
    idx
}

/// The 8-byte length and the padded JSON header of a file holding `tensors` (in data order).
pub fn header_bytes(tensors: &[&HfTensor<'_>], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut h = Map::new();
    if !metadata.is_empty() {
        let m: Map<String, Json> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        h.insert("__metadata__".into(), Json::Object(m));
    }
    let mut off = 0u64;
    for t in tensors {
        let n = t.n_bytes();
        h.insert(
            t.name.clone(),
            json!({"dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let mut text = serde_json::to_vec(&Json::Object(h)).expect("a JSON map serializes");
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out
}

/// The metadata transformers' `save_pretrained` writes.
pub const PT_METADATA: &[(&str, &str)] = &[("format", "pt")];

/// Write one SafeTensors file holding `tensors` (any order; laid out in [`data_order`]).
pub fn write_safetensors(
    w: &mut dyn Write,
    tensors: &[&HfTensor<'_>],
    metadata: &[(&str, &str)],
) -> io::Result<()> {
    let ordered: Vec<&HfTensor<'_>> = data_order(tensors)
        .into_iter()
        .map(|i| tensors[i])
        .collect();
    w.write_all(&header_bytes(&ordered, metadata))?;
    for t in ordered {
        t.write_payload(w)?;
    }
    Ok(())
}

/// [`write_safetensors`] into memory, with `PT_METADATA`.
pub fn safetensors_bytes(tensors: &[&HfTensor<'_>]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    write_safetensors(&mut out, tensors, PT_METADATA)?;
    Ok(out)
}

/// `huggingface_hub`'s shard split: indices of `sizes` (in state-dict order) per shard.
pub fn shard_split(sizes: &[u64], max_shard_size: u64) -> Vec<Vec<usize>> {
    let mut shards = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_size = 0u64;
    for (i, &n) in sizes.iter().enumerate() {
        if n > max_shard_size {
            shards.push(vec![i]);
            continue;
        }
        if current_size + n > max_shard_size && !current.is_empty() {
            shards.push(std::mem::take(&mut current));
            current_size = 0;
        }
        current.push(i);
        current_size += n;
    }
    if !current.is_empty() {
        shards.push(current);
    }
    shards
}

/// The file name of shard `i` (0-based) of `n`.
pub fn shard_name(i: usize, n: usize) -> String {
    format!("model-{:05}-of-{:05}.safetensors", i + 1, n)
}

fn write_json(path: &Path, v: &Json) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(v).map_err(invalid_data)?;
    text.push('\n');
    std::fs::write(path, text)
}

/// A JSON object with its keys sorted (Python's `json.dumps(..., sort_keys=True)`).
fn sorted(m: Map<String, Json>) -> Json {
    let b: BTreeMap<String, Json> = m.into_iter().collect();
    Json::Object(b.into_iter().collect())
}

// -------------------------------------------------------------------------------------------------
// A model directory

/// A Hugging Face model directory before it is written.
#[derive(Clone, Debug)]
pub struct HfModel<'a> {
    pub config: Map<String, Json>,
    pub generation_config: Map<String, Json>,
    pub tokenizer: Map<String, Json>,
    pub tokenizer_config: Map<String, Json>,
    /// In the model's state-dict order (the order shards are filled in).
    pub tensors: Vec<HfTensor<'a>>,
}

impl<'a> HfModel<'a> {
    pub fn tensor(&self, name: &str) -> Option<&HfTensor<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut HfTensor<'a>> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// Write the directory `dir` (created if needed): the JSON files and the weights, in one
    /// `model.safetensors` or, with `max_shard_size` (bytes) and more than one shard, sharded with
    /// an index. Files already in `dir` that this model does not write are left alone.
    pub fn write_dir(&self, dir: &Path, max_shard_size: Option<u64>) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_json(&dir.join("config.json"), &sorted(self.config.clone()))?;
        write_json(
            &dir.join("generation_config.json"),
            &sorted(self.generation_config.clone()),
        )?;
        write_json(
            &dir.join("tokenizer.json"),
            &Json::Object(self.tokenizer.clone()),
        )?;
        write_json(
            &dir.join("tokenizer_config.json"),
            &sorted(self.tokenizer_config.clone()),
        )?;
        let sizes: Vec<u64> = self.tensors.iter().map(HfTensor::n_bytes).collect();
        let shards = match max_shard_size {
            Some(max) => shard_split(&sizes, max),
            None => vec![(0..self.tensors.len()).collect()],
        };
        let write = |path: &Path, idx: &[usize]| -> io::Result<()> {
            let ts: Vec<&HfTensor<'_>> = idx.iter().map(|&i| &self.tensors[i]).collect();
            let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
            write_safetensors(&mut w, &ts, PT_METADATA)?;
            w.flush()
        };
        if shards.len() <= 1 {
            let all: Vec<usize> = shards.into_iter().flatten().collect();
            return write(&dir.join(SINGLE_FILE), &all);
        }
        let mut weight_map = BTreeMap::new();
        for (k, idx) in shards.iter().enumerate() {
            let name = shard_name(k, shards.len());
            write(&dir.join(&name), idx)?;
            for &i in idx {
                weight_map.insert(self.tensors[i].name.clone(), json!(name));
            }
        }
        let index = json!({
            "metadata": {
                "total_parameters": self.tensors.iter().map(HfTensor::n_elems).sum::<u64>(),
                "total_size": sizes.iter().sum::<u64>(),
            },
            "weight_map": weight_map,
        });
        write_json(&dir.join(INDEX_FILE), &index)
    }

    /// The model transformers' GGUF loader makes of `g`, in `dtype` (tensors converted lazily).
    pub fn from_gguf(g: &'a GgufFile, dtype: HfDtype) -> io::Result<HfModel<'a>> {
        let m = GgufMeta::new(g)?;
        let permuted = matches!(m.arch.as_str(), "llama" | "mistral");
        let mut tensors = Vec::with_capacity(g.tensors.len());
        for t in &g.tensors {
            if t.name == "rope_freqs.weight" {
                return Err(invalid_input(
                    "`rope_freqs.weight` has no Hugging Face tensor, and the `rope_scaling` \
                     parameters it was computed from are not in the GGUF",
                ));
            }
            let name = hf_name(&t.name)
                .ok_or_else(|| invalid_input(format!("`{}` has no Hugging Face name", t.name)))?;
            let dims: Vec<u64> = t.ne.iter().rev().copied().collect();
            let unpermute_heads = if !permuted {
                None
            } else if t.name.contains(".attn_q.") {
                Some(m.heads)
            } else if t.name.contains(".attn_k.") {
                Some(m.kv_heads)
            } else {
                None
            };
            tensors.push(HfTensor {
                name,
                dtype: dtype.st(),
                shape: dims.clone(),
                payload: Payload::Gguf {
                    src: g.tensor_bytes(t),
                    src_dtype: t.dtype,
                    dims,
                    unpermute_heads,
                },
            });
        }
        tensors.sort_by_key(|t| state_dict_rank(&t.name));
        let tied = g.tensor("output.weight").is_none();
        let tok = m.tokenizer()?;
        Ok(HfModel {
            config: m.config(dtype, tied, g.tensor("blk.0.attn_q.bias").is_some()),
            generation_config: m.generation_config(),
            tokenizer_config: m.tokenizer_config(&tok),
            tokenizer: tok.json,
            tensors,
        })
    }
}

/// Write the directory transformers would write for `g` (see [`HfModel::from_gguf`]), streaming
/// each tensor from `g`'s bytes.
pub fn write_gguf_as_hf(
    g: &GgufFile,
    dtype: HfDtype,
    max_shard_size: Option<u64>,
    dir: &Path,
) -> io::Result<()> {
    HfModel::from_gguf(g, dtype)?.write_dir(dir, max_shard_size)
}

/// Position of a Hugging Face tensor in a decoder's `state_dict()` (module declaration order:
/// `embed_tokens`, each layer's attention Q K V O (weight before bias) and norms, MLP gate up down,
/// the two layer norms, the final norm, `lm_head`).
fn state_dict_rank(name: &str) -> (u8, u64, u8) {
    const LAYER: &[&str] = &[
        "self_attn.q_proj.weight",
        "self_attn.q_proj.bias",
        "self_attn.k_proj.weight",
        "self_attn.k_proj.bias",
        "self_attn.v_proj.weight",
        "self_attn.v_proj.bias",
        "self_attn.o_proj.weight",
        "self_attn.q_norm.weight",
        "self_attn.k_norm.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
        "input_layernorm.weight",
        "post_attention_layernorm.weight",
    ];
    match name {
        "model.embed_tokens.weight" => return (0, 0, 0),
        "model.norm.weight" => return (2, 0, 0),
        "lm_head.weight" => return (3, 0, 0),
        _ => {}
    }
    let layer = name
        .strip_prefix("model.layers.")
        .and_then(|r| r.split_once('.'))
        .and_then(|(n, role)| Some((n.parse::<u64>().ok()?, role)));
    match layer {
        Some((n, role)) => {
            let k = LAYER.iter().position(|r| *r == role).unwrap_or(LAYER.len());
            (1, n, k as u8)
        }
        None => (4, 0, 0),
    }
}

// -------------------------------------------------------------------------------------------------
// Config and tokenizer from GGUF metadata

/// Qwen2's pre-tokenizer split (llama.cpp `qwen2`; Qwen2 tokenizer.json).
pub const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's (llama.cpp `llama-bpe`): digits in groups of up to three.
pub const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

struct GgufMeta<'g> {
    g: &'g GgufFile,
    arch: String,
    heads: u64,
    kv_heads: u64,
}

struct Tok {
    json: Map<String, Json>,
    tokens: Vec<String>,
}

impl<'g> GgufMeta<'g> {
    fn new(g: &'g GgufFile) -> io::Result<GgufMeta<'g>> {
        let arch = g
            .get("general.architecture")
            .and_then(|kv| kv.value.as_str())
            .ok_or_else(|| invalid_input("no `general.architecture`"))?
            .to_owned();
        if !matches!(arch.as_str(), "qwen2" | "qwen3" | "llama" | "mistral") {
            return Err(invalid_input(format!(
                "architecture `{arch}`: only qwen2, qwen3, llama and mistral are written"
            )));
        }
        let mut m = GgufMeta {
            g,
            arch,
            heads: 0,
            kv_heads: 0,
        };
        m.heads = m.int("attention.head_count").unwrap_or(0);
        m.kv_heads = m.int("attention.head_count_kv").unwrap_or(m.heads);
        Ok(m)
    }

    fn get(&self, key: &str) -> Option<&'g Value> {
        self.g.get(key).map(|kv| &kv.value)
    }
    fn int(&self, suffix: &str) -> Option<u64> {
        self.get(&format!("{}.{suffix}", self.arch))
            .and_then(Value::as_int)
            .and_then(|i| u64::try_from(i).ok())
    }
    /// A float as transformers reads it: the f32 widened to f64 (so 1e-6 is 9.999999974752427e-7).
    fn float(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }
    fn tok_id(&self, key: &str) -> Option<u64> {
        self.get(key)
            .and_then(Value::as_int)
            .and_then(|i| u64::try_from(i).ok())
    }

    fn strings(&self, key: &str) -> Option<Vec<String>> {
        match self.get(key)? {
            Value::Array(a) => Some(
                self.g
                    .array_strings(a)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => None,
        }
    }

    fn vocab_size(&self) -> Option<u64> {
        self.int("vocab_size")
            .or_else(|| match self.get("tokenizer.ggml.tokens") {
                Some(Value::Array(a)) => Some(a.len),
                _ => None,
            })
    }

    fn rope_parameters(&self) -> Json {
        let mut o = Map::new();
        if let Some(theta) = self.float(&format!("{}.rope.freq_base", self.arch)) {
            o.insert("rope_theta".into(), json!(theta));
        }
        let key = |s: &str| format!("{}.rope.scaling.{s}", self.arch);
        let kind = self
            .get(&key("type"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let factor = self
            .float(&key("factor"))
            .or_else(|| self.float(&format!("{}.rope.scale_linear", self.arch)));
        match (kind.as_deref(), factor) {
            (None | Some("none"), None) | (Some("none"), _) => {
                o.insert("rope_type".into(), json!("default"));
            }
            (k, f) => {
                o.insert("rope_type".into(), json!(k.unwrap_or("linear")));
                if let Some(f) = f {
                    o.insert("factor".into(), json!(f));
                }
                if let Some(n) = self
                    .get(&key("original_context_length"))
                    .and_then(Value::as_int)
                {
                    o.insert("original_max_position_embeddings".into(), json!(n as u64));
                }
            }
        }
        sorted(o)
    }

    fn config(&self, dtype: HfDtype, tied: bool, has_qkv_bias: bool) -> Map<String, Json> {
        let mut c = Map::new();
        let arch = self.arch.as_str();
        let class = match arch {
            "qwen2" => "Qwen2ForCausalLM",
            "qwen3" => "Qwen3ForCausalLM",
            "mistral" => "MistralForCausalLM",
            _ => "LlamaForCausalLM",
        };
        if let Some(n) = self.get("general.name").and_then(Value::as_str) {
            c.insert("_model_name_or_path".into(), json!(n));
        }
        c.insert("architectures".into(), json!([class]));
        c.insert("model_type".into(), json!(arch));
        c.insert("dtype".into(), json!(dtype.torch_name()));
        c.insert("attention_dropout".into(), json!(0.0));
        c.insert("hidden_act".into(), json!("silu"));
        c.insert("initializer_range".into(), json!(0.02));
        c.insert("use_cache".into(), json!(true));
        c.insert("tie_word_embeddings".into(), json!(tied));
        let hidden = self.int("embedding_length");
        for (hf, gguf) in [
            ("hidden_size", "embedding_length"),
            ("intermediate_size", "feed_forward_length"),
            ("num_hidden_layers", "block_count"),
            ("num_attention_heads", "attention.head_count"),
            ("num_key_value_heads", "attention.head_count_kv"),
            ("max_position_embeddings", "context_length"),
        ] {
            if let Some(v) = self.int(gguf) {
                c.insert(hf.into(), json!(v));
            }
        }
        if let Some(v) = self.vocab_size() {
            c.insert("vocab_size".into(), json!(v));
        }
        if let Some(e) = self.float(&format!("{arch}.attention.layer_norm_rms_epsilon")) {
            c.insert("rms_norm_eps".into(), json!(e));
        }
        c.insert("rope_parameters".into(), self.rope_parameters());
        let head_dim = self
            .int("attention.key_length")
            .or_else(|| hidden.filter(|_| self.heads > 0).map(|h| h / self.heads));
        let layers = self.int("block_count").unwrap_or(0);
        match arch {
            "qwen2" | "qwen3" => {
                c.insert(
                    "layer_types".into(),
                    json!(vec!["full_attention"; layers as usize]),
                );
                c.insert("max_window_layers".into(), json!(28));
                c.insert("sliding_window".into(), Json::Null);
                c.insert("use_sliding_window".into(), json!(false));
                if arch == "qwen3" {
                    c.insert("attention_bias".into(), json!(has_qkv_bias));
                    c.insert("head_dim".into(), json!(head_dim));
                } else if self.int("attention.key_length").is_some()
                    && head_dim != hidden.map(|h| h / self.heads.max(1))
                {
                    c.insert("head_dim".into(), json!(head_dim));
                }
            }
            _ => {
                c.insert("attention_bias".into(), json!(has_qkv_bias));
                c.insert("head_dim".into(), json!(head_dim));
                c.insert("mlp_bias".into(), json!(false));
                if arch == "llama" {
                    c.insert("pretraining_tp".into(), json!(1));
                } else {
                    c.insert("sliding_window".into(), Json::Null);
                }
            }
        }
        for (hf, gguf) in [
            ("bos_token_id", "tokenizer.ggml.bos_token_id"),
            ("eos_token_id", "tokenizer.ggml.eos_token_id"),
            ("pad_token_id", "tokenizer.ggml.padding_token_id"),
        ] {
            if let Some(v) = self.tok_id(gguf) {
                c.insert(hf.into(), json!(v));
            }
        }
        c
    }

    fn generation_config(&self) -> Map<String, Json> {
        let mut c = Map::new();
        c.insert("_from_model_config".into(), json!(true));
        for (hf, gguf) in [
            ("bos_token_id", "tokenizer.ggml.bos_token_id"),
            ("eos_token_id", "tokenizer.ggml.eos_token_id"),
            ("pad_token_id", "tokenizer.ggml.padding_token_id"),
        ] {
            if let Some(v) = self.tok_id(gguf) {
                c.insert(hf.into(), json!(v));
            }
        }
        c.insert("output_attentions".into(), json!(false));
        c.insert("output_hidden_states".into(), json!(false));
        c.insert("use_cache".into(), json!(true));
        c
    }

    /// `tokenizer.json` as transformers' GGUF tokenizer converter builds it for a byte-level BPE.
    fn tokenizer(&self) -> io::Result<Tok> {
        let model = self.get("tokenizer.ggml.model").and_then(Value::as_str);
        if model != Some("gpt2") {
            return Err(invalid_input(format!(
                "tokenizer model {model:?}: only byte-level BPE (`gpt2`) is written"
            )));
        }
        let pre = self
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let split = match pre {
            "qwen2" => QWEN2_SPLIT,
            "llama-bpe" | "llama3" => LLAMA3_SPLIT,
            other => {
                return Err(invalid_input(format!(
                    "pre-tokenizer `{other}`: only qwen2 and llama-bpe are written"
                )));
            }
        };
        let tokens = self
            .strings("tokenizer.ggml.tokens")
            .ok_or_else(|| invalid_input("no `tokenizer.ggml.tokens`"))?;
        let merges = self.strings("tokenizer.ggml.merges").unwrap_or_default();
        let types: Vec<i64> = match self.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => self
                .g
                .array_numbers(a)
                .into_iter()
                .map(|x| x as i64)
                .collect(),
            _ => Vec::new(),
        };
        let added: Vec<Json> = tokens
            .iter()
            .enumerate()
            .filter_map(|(id, t)| {
                let ty = types.get(id).copied().unwrap_or(1);
                (ty == 3 || ty == 4).then(|| {
                    json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                           "rstrip": false, "normalized": false, "special": ty == 3})
                })
            })
            .collect();
        let special = |key: &str| {
            self.tok_id(key)
                .and_then(|id| tokens.get(id as usize).map(|t| (id, t.clone())))
        };
        let flag = |key: &str| self.get(key).and_then(Value::as_bool).unwrap_or(false);
        let bos =
            special("tokenizer.ggml.bos_token_id").filter(|_| flag("tokenizer.ggml.add_bos_token"));
        let eos =
            special("tokenizer.ggml.eos_token_id").filter(|_| flag("tokenizer.ggml.add_eos_token"));
        let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
        let tok = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
        let (mut single, mut pair) = (Vec::new(), Vec::new());
        let mut specials = Map::new();
        for (part, type_id) in [("A", 0u32), ("B", 1)] {
            if let Some((id, t)) = &bos {
                pair.push(tok(t, type_id));
                if part == "A" {
                    single.push(tok(t, 0));
                }
                specials.insert(t.clone(), json!({"id": t, "ids": [id], "tokens": [t]}));
            }
            pair.push(seq(part, type_id));
            if part == "A" {
                single.push(seq("A", 0));
            }
            if let Some((id, t)) = &eos {
                pair.push(tok(t, type_id));
                if part == "A" {
                    single.push(tok(t, 0));
                }
                specials.insert(t.clone(), json!({"id": t, "ids": [id], "tokens": [t]}));
            }
        }
        let vocab: Map<String, Json> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let merges: Vec<Json> = merges
            .iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => json!([a, b]),
                None => json!([m, ""]),
            })
            .collect();
        let t = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
            ]},
            "post_processor": {"type": "TemplateProcessing", "single": single, "pair": pair,
                               "special_tokens": specials},
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                        "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false,
                      "byte_fallback": false, "ignore_merges": false, "vocab": vocab,
                      "merges": merges},
        });
        let Json::Object(json) = t else {
            unreachable!("json! of an object literal is an object")
        };
        Ok(Tok { json, tokens })
    }

    fn tokenizer_config(&self, tok: &Tok) -> Map<String, Json> {
        let name = |key: &str| {
            self.tok_id(key)
                .and_then(|id| tok.tokens.get(id as usize))
                .map_or(Json::Null, |t| json!(t))
        };
        let mut c = Map::new();
        c.insert("backend".into(), json!("tokenizers"));
        c.insert("bos_token".into(), name("tokenizer.ggml.bos_token_id"));
        c.insert("eos_token".into(), name("tokenizer.ggml.eos_token_id"));
        c.insert("pad_token".into(), name("tokenizer.ggml.padding_token_id"));
        c.insert("unk_token".into(), name("tokenizer.ggml.unknown_token_id"));
        if matches!(self.arch.as_str(), "qwen2" | "qwen3") {
            c.insert("add_prefix_space".into(), Json::Null);
            c.insert("tokenizer_class".into(), json!("Qwen2Tokenizer"));
        } else {
            c.insert("tokenizer_class".into(), json!("TokenizersBackend"));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp's permute for 2 heads of 4 rows: HF row h·4 + j·2 + i → GGUF row h·4 + 2i + j.
        let order = unpermuted_rows("q", 8, 2).unwrap();
        assert_eq!(order, vec![0, 2, 1, 3, 4, 6, 5, 7]);
        assert!(unpermuted_rows("q", 6, 4).is_err());
        assert!(unpermuted_rows("q", 6, 2).is_err());
    }

    #[test]
    fn an_empty_q_projection_writes_nothing_and_does_not_panic() {
        let t = HfTensor {
            name: "model.layers.0.self_attn.q_proj.weight".into(),
            dtype: StDtype::F32,
            shape: vec![0, 4],
            payload: Payload::Gguf {
                src: &[],
                src_dtype: DType::F32,
                dims: vec![0, 4],
                unpermute_heads: Some(2),
            },
        };
        assert!(t.bytes().unwrap().is_empty());
    }

    #[test]
    fn shards_split_like_huggingface_hub() {
        assert_eq!(shard_split(&[5, 5, 5], 10), vec![vec![0, 1], vec![2]]);
        // A tensor over the limit gets its own shard, ahead of the one being filled.
        assert_eq!(shard_split(&[3, 20, 3], 10), vec![vec![1], vec![0, 2]]);
        assert_eq!(shard_name(0, 2), "model-00001-of-00002.safetensors");
    }

    #[test]
    fn header_is_padded_to_eight_with_spaces_and_data_sorted_by_name() {
        let a = HfTensor::new("b", StDtype::BF16, vec![1], vec![1, 2]);
        let b = HfTensor::new("a", StDtype::BF16, vec![1], vec![3, 4]);
        let bytes = safetensors_bytes(&[&a, &b]).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert!(n.is_multiple_of(8));
        assert_eq!(&bytes[8 + n..], &[3, 4, 1, 2]);
        let text = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(text.starts_with(r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16""#));
    }
}
