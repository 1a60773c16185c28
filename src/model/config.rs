//! The transformer config of a file, read from that format's own keys: GGUF
//! `<arch>.embedding_length`…, APR typed keys and the aliases realizar accepts. Every value keeps the
//! key it came from and that key's byte span, so a finding can point at it.

use crate::diag::Span;
use crate::format::Container;
use crate::format::gguf::{MetaKv, Value, ValueType};
use crate::model::TensorView;

/// Rotary embedding pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeType {
    /// Rotate adjacent pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM, APR `rope_type` 0.
    Norm,
    /// Rotate pairs (i, i + d/2): LLAMA_ROPE_TYPE_NEOX, APR `rope_type` 2.
    Neox,
}

impl RopeType {
    pub fn from_code(code: i64) -> Option<RopeType> {
        match code {
            0 => Some(RopeType::Norm),
            2 => Some(RopeType::Neox),
            _ => None,
        }
    }
    pub fn code(self) -> i64 {
        match self {
            RopeType::Norm => 0,
            RopeType::Neox => 2,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RopeType::Norm => "norm",
            RopeType::Neox => "neox",
        }
    }
}

/// How a file stretches RoPE for a longer context: GGUF `<arch>.rope.scaling.*` (llama.cpp's
/// `load_hparams` and `llama_context`), APR a Hugging Face-style `rope_scaling` object (apr-v2 has no
/// typed key; a producer that carries HF's config writes this).
#[derive(Clone, Debug, PartialEq)]
pub struct RopeScaling {
    /// `none`, `linear`, `yarn`, `longrope`, or what the file says (llama.cpp refuses anything else).
    pub kind: String,
    /// Context-extension factor; llama.cpp rotates by angle / factor (`freq_scale` = 1 / factor). A
    /// recorded 0 means 1, as in llama.cpp.
    pub factor: f64,
    /// The context the model was trained at before extension (YaRN's correction range); GGUF
    /// `rope.scaling.original_context_length`, else the context length.
    pub original_context: Option<u64>,
    /// GGUF `rope.scaling.attn_factor`: multiplies the rotation's magnitude (default 1).
    pub attn_factor: f64,
    /// Hugging Face `llama3` only (APR): `low_freq_factor`, `high_freq_factor` (defaults 1 and 4,
    /// as llama.cpp's converter has them).
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
}

impl RopeScaling {
    /// Whether the rotation is stretched beyond plain RoPE. Hugging Face's `llama3` is not: it
    /// stands for per-pair frequency divisors, which GGUF stores as `rope_freqs.weight` (see
    /// [`RopeScaling::llama3_factors`]) and which are compared as such.
    /// Hugging Face's `dynamic` (NTK) scaling changes nothing within the trained context, and
    /// llama.cpp's converter drops it: not a stretch either.
    pub fn is_effective(&self) -> bool {
        match self.kind.as_str() {
            "none" | "llama3" | "dynamic" => self.attn_factor != 1.0,
            "linear" | "yarn" => self.factor != 1.0 || self.attn_factor != 1.0,
            _ => true,
        }
    }

    /// Whether `factor` is used at all (llama.cpp ignores it for `none`).
    pub fn uses_factor(&self) -> bool {
        !matches!(self.kind.as_str(), "none" | "dynamic")
    }

    /// The divisors llama.cpp's converter writes as `rope_freqs.weight` for Hugging Face's
    /// `llama3` scaling (`conversion/llama.py`, `generate_extra_tensors`), for RoPE base `base`
    /// and `dim` rotated dims. None for other kinds.
    pub fn llama3_factors(&self, base: f64, dim: usize) -> Option<Vec<f32>> {
        if self.kind != "llama3" {
            return None;
        }
        let old = self.original_context.unwrap_or(8192) as f64;
        let (low, high, factor) = (self.low_freq_factor, self.high_freq_factor, self.factor);
        let (low_wl, high_wl) = (old / low, old / high);
        Some(
            (0..dim / 2)
                .map(|i| {
                    let freq = 1.0 / base.powf(2.0 * i as f64 / dim as f64);
                    let wavelen = 2.0 * std::f64::consts::PI / freq;
                    let f = if wavelen < high_wl {
                        1.0
                    } else if wavelen > low_wl {
                        factor
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        1.0 / ((1.0 - smooth) / factor + smooth)
                    };
                    f as f32
                })
                .collect(),
        )
    }

    /// One line for messages: `yarn ×4 (original context 32768)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} ×{}", self.kind, crate::diag::fmt_float(self.factor));
        if self.kind == "yarn"
            && let Some(n) = self.original_context
        {
            s += &format!(" (original context {n})");
        }
        if self.attn_factor != 1.0 {
            s += &format!(", attn_factor {}", crate::diag::fmt_float(self.attn_factor));
        }
        s
    }
}

/// One config quantity and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigValue<T> {
    pub value: T,
    /// The key it was read from (`qwen2.embedding_length`, `hidden_size`, `n_embd` …), or a
    /// description of how it was derived (`derived: hidden / n_head`).
    pub key: String,
    pub span: Option<Span>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub architecture: Option<ConfigValue<String>>,
    pub hidden: Option<ConfigValue<u64>>,
    pub layers: Option<ConfigValue<u64>>,
    pub heads: Option<ConfigValue<u64>>,
    pub kv_heads: Option<ConfigValue<u64>>,
    pub head_dim: Option<ConfigValue<u64>>,
    pub vocab: Option<ConfigValue<u64>>,
    pub ffn: Option<ConfigValue<u64>>,
    pub context_length: Option<ConfigValue<u64>>,
    pub rope_theta: Option<ConfigValue<f64>>,
    /// Rope type: APR `rope_type`; GGUF has no key, so it is left empty here and the rules supply
    /// the architecture's rope type.
    pub rope_type: Option<ConfigValue<i64>>,
    pub rms_eps: Option<ConfigValue<f64>>,
    /// Dims of each head that RoPE rotates: GGUF `<arch>.rope.dimension_count` (APR has no
    /// such key: aprender and realizar always rotate all of `head_dim`). Absent means `head_dim`.
    pub rope_dims: Option<ConfigValue<u64>>,
    /// Width of each V head: GGUF `<arch>.attention.value_length` (no APR key). Absent means
    /// `head_dim`.
    pub value_dim: Option<ConfigValue<u64>>,
    /// APR `tied_embeddings`; GGUF has no flag.
    pub tied: Option<ConfigValue<bool>>,
    /// RoPE context scaling, when the file records any (absent: plain RoPE).
    pub rope_scaling: Option<ConfigValue<RopeScaling>>,
    /// Hugging Face `torch_dtype` / `dtype` (`float32`, `bfloat16` …): the dtype the checkpoint
    /// was saved in. Only a `config.json` has it.
    pub dtype: Option<ConfigValue<String>>,
    /// Hugging Face `architectures` (`["Qwen2ForCausalLM"]`): the model classes. Only a
    /// `config.json` has it; `architecture` comes from `model_type`.
    pub hf_classes: Option<ConfigValue<Vec<String>>>,
    /// Keys that were present with the wrong JSON/GGUF type, or that collide with an alias:
    /// (key, problem, span).
    pub problems: Vec<(String, String, Option<Span>)>,
}

/// A GGUF hyperparameter of a type llama.cpp refuses. llama.cpp reads every integer
/// hyperparameter as `uint32_t` and every float one as `float` (`llama_model_loader::get_key`);
/// `GGUFMeta::GKV::get_kv` throws for any other GGUF type, naming both types as ggml does.
fn llama_type_problem(kv: &MetaKv, want: ValueType) -> (String, String, Option<Span>) {
    let (found, want) = (kv.value.value_type().ggml_name(), want.ggml_name());
    (
        kv.key.clone(),
        format!(
            "GGUF type {found}, but llama.cpp reads this key as {want} and refuses the file \
             (\"key {key} has wrong type {found} but expected type {want}\"); write it as {want}",
            key = kv.key
        ),
        Some(kv.span),
    )
}

/// APR typed keys and the aliases realizar accepts (apr-v2.md, "Metadata").
pub const APR_ALIASES: &[(&str, &[&str])] = &[
    ("hidden_size", &["hidden_dim", "d_model", "n_embd"]),
    ("num_layers", &["num_hidden_layers", "n_layers", "n_layer"]),
    ("num_heads", &["num_attention_heads", "n_heads", "n_head"]),
    ("num_kv_heads", &["num_key_value_heads", "n_kv_heads"]),
    ("vocab_size", &["n_vocab"]),
    (
        "intermediate_size",
        &["ffn_dim", "intermediate_dim", "n_inner"],
    ),
    (
        "max_position_embeddings",
        &["max_seq_len", "context_length", "n_ctx"],
    ),
    ("rms_norm_eps", &["layer_norm_eps", "norm_eps", "eps"]),
];

/// A flat JSON object of Hugging Face-style keys: APR metadata or a `config.json`. Both are read by
/// [`read_json_keys`], so a key means the same in both.
pub(crate) trait JsonKeys {
    /// The value of `key` (the last one if repeated, as Python's and serde's readers keep); None when
    /// absent or null.
    fn value(&self, key: &str) -> Option<serde_json::Value>;
    /// Where `key`'s value is: APR the whole metadata section, `config.json` the value itself.
    fn span(&self, key: &str) -> Option<Span>;
}

/// Which file the keys are in: the keys that exist in only one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// APR metadata: `architecture`, `tied_embeddings`, the integer `rope_type`, realizar's aliases
    /// (two of one quantity make realizar drop all metadata).
    Apr,
    /// A Hugging Face `config.json`: `model_type`, `architectures`, `tie_word_embeddings`,
    /// `torch_dtype` / `dtype`.
    HfConfig,
}

struct AprKeys<'a>(&'a crate::format::apr::AprFile);

impl JsonKeys for AprKeys<'_> {
    fn value(&self, key: &str) -> Option<serde_json::Value> {
        self.0.get_value(key)
    }
    fn span(&self, _key: &str) -> Option<Span> {
        Some(self.0.metadata_span)
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_f64() => "a float",
        serde_json::Value::Number(_) => "an integer",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Read the config quantities from Hugging Face-style keys (APR metadata, `config.json`). Each value
/// keeps the key it came from and its span; a key of the wrong JSON type is a problem and no value.
pub(crate) fn read_json_keys(src: &dyn JsonKeys, dialect: Dialect) -> Config {
    let mut cfg = Config::default();
    let find = |names: &[&str]| -> Option<(String, serde_json::Value, Option<Span>)> {
        names
            .iter()
            .find_map(|k| src.value(k).map(|v| ((*k).to_owned(), v, src.span(k))))
    };
    let keys_for = |canon: &'static str| -> Vec<&'static str> {
        let mut v = vec![canon];
        if let Some((_, al)) = APR_ALIASES.iter().find(|(k, _)| *k == canon) {
            v.extend_from_slice(al);
        }
        v
    };
    let int = |cfg: &mut Config, canon: &'static str| -> Option<ConfigValue<u64>> {
        let (key, v, span) = find(&keys_for(canon))?;
        match v.as_u64() {
            Some(x) => Some(ConfigValue {
                value: x,
                key,
                span,
            }),
            None => {
                cfg.problems.push((
                    key,
                    format!("expected a non-negative integer, found {v}"),
                    span,
                ));
                None
            }
        }
    };
    let float = |cfg: &mut Config, canon: &'static str| -> Option<ConfigValue<f64>> {
        let (key, v, span) = find(&keys_for(canon))?;
        match v.as_f64() {
            Some(x) => Some(ConfigValue {
                value: x,
                key,
                span,
            }),
            None => {
                cfg.problems
                    .push((key, format!("expected a number, found {v}"), span));
                None
            }
        }
    };
    let string = |cfg: &mut Config, names: &[&str]| -> Option<ConfigValue<String>> {
        let (key, v, span) = find(names)?;
        match v.as_str() {
            Some(s) => Some(ConfigValue {
                value: s.to_owned(),
                key,
                span,
            }),
            None => {
                cfg.problems.push((
                    key,
                    format!("expected a string, found {}", json_type(&v)),
                    span,
                ));
                None
            }
        }
    };
    let arch_keys: &[&str] = match dialect {
        Dialect::Apr => &["architecture", "model_type", "hf_model_type"],
        Dialect::HfConfig => &["model_type"],
    };
    cfg.architecture = match dialect {
        // APR has always skipped a non-string architecture here (APRL-M001 then names it missing).
        Dialect::Apr => find(arch_keys).and_then(|(key, v, span)| {
            v.as_str().map(|s| ConfigValue {
                value: s.to_owned(),
                key,
                span,
            })
        }),
        Dialect::HfConfig => string(&mut cfg, arch_keys),
    };
    cfg.hidden = int(&mut cfg, "hidden_size");
    cfg.layers = int(&mut cfg, "num_layers");
    cfg.heads = int(&mut cfg, "num_heads");
    cfg.kv_heads = int(&mut cfg, "num_kv_heads");
    cfg.head_dim = int(&mut cfg, "head_dim");
    cfg.vocab = int(&mut cfg, "vocab_size");
    cfg.ffn = int(&mut cfg, "intermediate_size");
    cfg.context_length = int(&mut cfg, "max_position_embeddings");
    cfg.rope_theta = float(&mut cfg, "rope_theta");
    cfg.rms_eps = float(&mut cfg, "rms_norm_eps");
    if dialect == Dialect::Apr
        && let Some((key, v, span)) = find(&["rope_type"])
    {
        match v.as_i64() {
            Some(x) => {
                cfg.rope_type = Some(ConfigValue {
                    value: x,
                    key,
                    span,
                })
            }
            None => cfg
                .problems
                .push((key, format!("expected an integer, found {v}"), span)),
        }
    }
    // Hugging Face's `rope_scaling`: {"rope_type" | "type": …, "factor": …,
    // "original_max_position_embeddings": …}; null means none.
    if let Some((key, v, span)) = find(&["rope_scaling"]) {
        match &v {
            serde_json::Value::Object(o) => {
                cfg.rope_scaling = rope_scaling_of(&mut cfg, o, &key, span, false);
            }
            other => cfg.problems.push((
                key,
                format!("expected an object (Hugging Face's `rope_scaling`), found {other}"),
                span,
            )),
        }
    }
    // transformers 5's `rope_parameters`: `rope_theta` and the scaling in one object
    // ({"rope_theta": …, "rope_type": "default" | "linear" | "yarn" | "llama3" …, "factor": …}).
    // "default" is plain RoPE, as an absent `rope_scaling` is.
    if let Some((key, v, span)) = find(&["rope_parameters"]) {
        match &v {
            // Per-layer-type parameters (Gemma 3 and others: {"full_attention": {…},
            // "sliding_attention": {…}}): one config cannot hold two RoPE settings.
            serde_json::Value::Object(o) if !o.is_empty() && o.values().all(|v| v.is_object()) => {
                cfg.problems.push((
                    key,
                    format!(
                        "per-layer-type RoPE parameters ({}) are not read; each layer type has its own `rope_theta`",
                        o.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    ),
                    span,
                ))
            }
            serde_json::Value::Object(o) => {
                if let Some(t) = o.get("rope_theta") {
                    let k = format!("{key}.rope_theta");
                    match t.as_f64() {
                        Some(x) => {
                            if let Some(old) = &cfg.rope_theta
                                && old.value != x
                            {
                                cfg.problems.push((
                                    format!("{}, {k}", old.key),
                                    format!(
                                        "`{}` is {} but `{k}` is {}; transformers 5 reads `{k}`",
                                        old.key,
                                        crate::diag::fmt_float(old.value),
                                        crate::diag::fmt_float(x)
                                    ),
                                    span,
                                ));
                            }
                            cfg.rope_theta = Some(ConfigValue {
                                value: x,
                                key: k,
                                span,
                            });
                        }
                        None => cfg.problems.push((
                            k,
                            format!("expected a number, found {}", json_type(t)),
                            span,
                        )),
                    }
                }
                if let Some(s) = rope_scaling_of(&mut cfg, o, &key, span, true) {
                    cfg.rope_scaling = Some(s);
                }
            }
            other => cfg.problems.push((
                key,
                format!(
                    "expected an object (transformers 5's `rope_parameters`), found {}",
                    json_type(other)
                ),
                span,
            )),
        }
    }
    let tied_key = match dialect {
        Dialect::Apr => "tied_embeddings",
        Dialect::HfConfig => "tie_word_embeddings",
    };
    if let Some((key, v, span)) = find(&[tied_key]) {
        match v.as_bool() {
            Some(x) => {
                cfg.tied = Some(ConfigValue {
                    value: x,
                    key,
                    span,
                })
            }
            None => cfg
                .problems
                .push((key, format!("expected true or false, found {v}"), span)),
        }
    }
    match dialect {
        Dialect::Apr => {
            // A key and its alias both present: realizar drops ALL metadata.
            for (canon, aliases) in APR_ALIASES {
                let present: Vec<&str> = std::iter::once(*canon)
                    .chain(aliases.iter().copied())
                    .filter(|k| src.value(k).is_some())
                    .collect();
                if present.len() > 1 {
                    cfg.problems.push((
                        present.join(", "),
                        format!(
                            "keys {} are aliases of one quantity; realizar then drops all metadata",
                            present
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        ),
                        src.span(canon),
                    ));
                }
            }
        }
        Dialect::HfConfig => {
            // transformers 5 writes `dtype`, older versions `torch_dtype`; both are read.
            let new = string(&mut cfg, &["dtype"]);
            let old = string(&mut cfg, &["torch_dtype"]);
            if let (Some(n), Some(o)) = (&new, &old)
                && n.value != o.value
            {
                cfg.problems.push((
                    "dtype, torch_dtype".into(),
                    format!(
                        "`dtype` is \"{}\" but `torch_dtype` is \"{}\"; transformers 5 reads `dtype`",
                        n.value, o.value
                    ),
                    n.span,
                ));
            }
            cfg.dtype = new.or(old);
            if let Some((key, v, span)) = find(&["architectures"]) {
                let names: Option<Vec<String>> = v
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect());
                match names {
                    Some(value) => cfg.hf_classes = Some(ConfigValue { value, key, span }),
                    None => cfg.problems.push((
                        key,
                        format!("expected an array of strings, found {v}"),
                        span,
                    )),
                }
            }
        }
    }
    cfg
}

/// RoPE scaling from a Hugging Face `rope_scaling` or `rope_parameters` object (`key` is its name).
/// `default_is_none`: `rope_parameters` always names a type, and "default" is plain RoPE.
fn rope_scaling_of(
    cfg: &mut Config,
    o: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    span: Option<Span>,
    default_is_none: bool,
) -> Option<ConfigValue<RopeScaling>> {
    let kind_v = o.get("rope_type").or_else(|| o.get("type"));
    if let Some(k) = kind_v
        && !k.is_string()
    {
        cfg.problems.push((
            format!("{key}.rope_type"),
            format!("expected a string, found {}", json_type(k)),
            span,
        ));
    }
    let kind = kind_v
        .and_then(|k| k.as_str())
        .unwrap_or("linear")
        .to_lowercase();
    for k in [
        "low_freq_factor",
        "high_freq_factor",
        "original_max_position_embeddings",
    ] {
        if let Some(x) = o.get(k)
            && !(x.is_f64() || x.is_u64() || x.is_i64())
        {
            cfg.problems.push((
                format!("{key}.{k}"),
                format!("expected a number, found {x}"),
                span,
            ));
        }
    }
    let factor = o.get("factor").and_then(|x| x.as_f64());
    if let Some(f) = o.get("factor")
        && factor.is_none()
    {
        cfg.problems.push((
            format!("{key}.factor"),
            format!("expected a number, found {f}"),
            span,
        ));
    }
    if default_is_none && kind == "default" && factor.is_none() {
        return None;
    }
    // llama.cpp's converter: llama3 defaults to factor 8 over 8192.
    let llama3 = kind == "llama3";
    let default_ctx = if llama3 {
        Some(8192)
    } else {
        cfg.context_length.as_ref().map(|v| v.value)
    };
    Some(ConfigValue {
        value: RopeScaling {
            kind: if kind == "default" {
                "none".into()
            } else {
                kind
            },
            factor: factor.map_or(if llama3 { 8.0 } else { 1.0 }, |f| {
                if f == 0.0 { 1.0 } else { f }
            }),
            // llama.cpp's converter keeps an explicit 0 for llama3 (every divisor is then
            // `factor`); YaRN's 0 means the context length (llama_context).
            original_context: o
                .get("original_max_position_embeddings")
                .and_then(|x| x.as_u64())
                .filter(|n| llama3 || *n != 0)
                .or(default_ctx),
            attn_factor: 1.0,
            low_freq_factor: o
                .get("low_freq_factor")
                .and_then(|x| x.as_f64())
                .unwrap_or(1.0),
            high_freq_factor: o
                .get("high_freq_factor")
                .and_then(|x| x.as_f64())
                .unwrap_or(4.0),
        },
        key: key.to_owned(),
        span,
    })
}

impl Config {
    pub fn read(c: &Container, tensors: &[TensorView]) -> Config {
        match c {
            Container::Gguf(g) => {
                let mut cfg = Config::default();
                let arch = g.get("general.architecture").and_then(|kv| {
                    kv.value.as_str().map(|s| ConfigValue {
                        value: s.to_owned(),
                        key: kv.key.clone(),
                        span: Some(kv.span),
                    })
                });
                let a = arch.as_ref().map(|v| v.value.clone()).unwrap_or_default();
                // `llama_reads`: llama.cpp reads the key for this file, as `uint32_t`. A value of
                // another integer type is kept (the other checks see what the file says) and its
                // type reported.
                let int = |cfg: &mut Config,
                           suffix: &str,
                           llama_reads: bool|
                 -> Option<ConfigValue<u64>> {
                    let key = format!("{a}.{suffix}");
                    let kv = g.get(&key)?;
                    match kv.value.as_int() {
                        Some(v) if v >= 0 && v <= u64::MAX as i128 => {
                            if llama_reads && kv.value.value_type() != ValueType::U32 {
                                cfg.problems.push(llama_type_problem(kv, ValueType::U32));
                            }
                            Some(ConfigValue {
                                value: v as u64,
                                key,
                                span: Some(kv.span),
                            })
                        }
                        _ => {
                            cfg.problems.push((
                                key,
                                format!(
                                    "expected a non-negative integer, found {:?}",
                                    kv.value.value_type()
                                ),
                                Some(kv.span),
                            ));
                            None
                        }
                    }
                };
                // Every float hyperparameter is read as `float` (f32).
                let float = |cfg: &mut Config, suffix: &str| -> Option<ConfigValue<f64>> {
                    let key = format!("{a}.{suffix}");
                    let kv = g.get(&key)?;
                    match kv.value {
                        Value::F32(v) => Some(ConfigValue {
                            value: v as f64,
                            key,
                            span: Some(kv.span),
                        }),
                        Value::F64(v) => {
                            cfg.problems.push(llama_type_problem(kv, ValueType::F32));
                            Some(ConfigValue {
                                value: v,
                                key,
                                span: Some(kv.span),
                            })
                        }
                        ref v => {
                            cfg.problems.push((
                                key,
                                format!("expected a float, found {:?}", v.value_type()),
                                Some(kv.span),
                            ));
                            None
                        }
                    }
                };
                // `<arch>.vocab_size` is read only by llama.cpp's llama and deepseek2 loaders
                // (`models/llama.cpp`, `models/deepseek2.cpp`) and for a vocabulary of type
                // `none` (`llama-vocab.cpp`); other architectures count the token list.
                let vocab_read = matches!(a.as_str(), "llama" | "deepseek2")
                    || g.get("tokenizer.ggml.model")
                        .and_then(|kv| kv.value.as_str())
                        == Some("none");
                cfg.hidden = int(&mut cfg, "embedding_length", true);
                cfg.layers = int(&mut cfg, "block_count", true);
                cfg.heads = int(&mut cfg, "attention.head_count", true);
                cfg.kv_heads = int(&mut cfg, "attention.head_count_kv", true);
                cfg.head_dim = int(&mut cfg, "attention.key_length", true);
                cfg.ffn = int(&mut cfg, "feed_forward_length", true);
                cfg.context_length = int(&mut cfg, "context_length", true);
                cfg.vocab = int(&mut cfg, "vocab_size", vocab_read);
                cfg.rope_theta = float(&mut cfg, "rope.freq_base");
                cfg.rms_eps = float(&mut cfg, "attention.layer_norm_rms_epsilon");
                cfg.rope_dims = int(&mut cfg, "rope.dimension_count", true);
                cfg.value_dim = int(&mut cfg, "attention.value_length", true);
                // llama.cpp: type defaults to "linear", factor from `rope.scaling.factor` else the
                // old `rope.scale_linear` (0 = none), original context defaults to the context.
                let kind_kv = g.get(&format!("{a}.rope.scaling.type"));
                let factor = float(&mut cfg, "rope.scaling.factor")
                    .or_else(|| float(&mut cfg, "rope.scale_linear"));
                let orig = int(&mut cfg, "rope.scaling.original_context_length", true);
                let attn = float(&mut cfg, "rope.scaling.attn_factor");
                if kind_kv.is_some() || factor.is_some() || orig.is_some() || attn.is_some() {
                    let kind = match kind_kv.map(|kv| (kv, kv.value.as_str())) {
                        None => "linear".to_owned(),
                        Some((_, Some(k))) => k.to_owned(),
                        Some((kv, None)) => {
                            cfg.problems.push((
                                kv.key.clone(),
                                format!("expected a string, found {:?}", kv.value.value_type()),
                                Some(kv.span),
                            ));
                            "linear".to_owned()
                        }
                    };
                    let (key, span) = kind_kv
                        .map(|kv| (kv.key.clone(), Some(kv.span)))
                        .or_else(|| factor.as_ref().map(|v| (v.key.clone(), v.span)))
                        .or_else(|| orig.as_ref().map(|v| (v.key.clone(), v.span)))
                        .or_else(|| attn.as_ref().map(|v| (v.key.clone(), v.span)))
                        .unwrap_or_default();
                    cfg.rope_scaling = Some(ConfigValue {
                        value: RopeScaling {
                            kind,
                            factor: factor
                                .map_or(1.0, |f| if f.value == 0.0 { 1.0 } else { f.value }),
                            // llama_context: 0 (or absent) means the training context.
                            original_context: orig
                                .map(|v| v.value)
                                .filter(|n| *n != 0)
                                .or(cfg.context_length.as_ref().map(|v| v.value)),
                            attn_factor: attn.map_or(1.0, |v| v.value),
                            low_freq_factor: 1.0,
                            high_freq_factor: 4.0,
                        },
                        key,
                        span,
                    });
                }
                if cfg.vocab.is_none()
                    && let Some(kv) = g.get("tokenizer.ggml.tokens")
                    && let Value::Array(arr) = &kv.value
                {
                    cfg.vocab = Some(ConfigValue {
                        value: arr.len,
                        key: "tokenizer.ggml.tokens (length)".into(),
                        span: Some(kv.span),
                    });
                }
                cfg.architecture = arch;
                cfg.derive(tensors);
                cfg
            }
            Container::Apr(f) => {
                let mut cfg = read_json_keys(&AprKeys(f), Dialect::Apr);
                cfg.derive(tensors);
                cfg
            }
            // `config.json` (an unreadable one is refused by `ModelView::open`).
            Container::Hf(h) => super::hf::read_config(h)
                .map(|(c, _)| c)
                .unwrap_or_default(),
        }
    }

    /// Fill what the format leaves implicit: head_dim = hidden / n_head when not given.
    pub(crate) fn derive(&mut self, _tensors: &[TensorView]) {
        if self.head_dim.is_none()
            && let (Some(h), Some(n)) = (&self.hidden, &self.heads)
            && n.value > 0
            && h.value % n.value == 0
        {
            self.head_dim = Some(ConfigValue {
                value: h.value / n.value,
                key: "derived: hidden / n_head".into(),
                span: None,
            });
        }
    }

    /// The RoPE base a loader uses: the recorded one, else llama.cpp's default 10000.
    pub fn rope_base(&self) -> f64 {
        self.rope_theta.as_ref().map_or(10000.0, |v| v.value)
    }

    pub fn arch(&self) -> Option<&str> {
        self.architecture.as_ref().map(|v| v.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::format::Source;
    use crate::format::writer::generate::{Shape, gguf_model};
    use crate::format::writer::gguf::MetaValue;
    use crate::model::ModelView;
    use crate::quant::DType;

    fn config_with(arch: &'static str, key: &str, v: MetaValue) -> super::Config {
        let shape = Shape {
            arch,
            hidden: 32,
            layers: 1,
            heads: 4,
            kv_heads: 2,
            ffn: 64,
            vocab: 300,
            tied: false,
        };
        let mut w = gguf_model(&shape, DType::F32, 1);
        let key = format!("{arch}.{key}");
        match w.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 = v,
            None => w.metadata.push((key, v)),
        }
        let view = ModelView::from_source(Source::from_vec(w.to_bytes(), "m.gguf")).expect("reads");
        view.config
    }

    /// llama.cpp reads integer hyperparameters as u32 and float ones as f32, and refuses a file
    /// with any other type: the problem names the key, its type and the type llama.cpp needs,
    /// and the value is still read.
    #[test]
    fn hyperparameters_of_a_type_llama_cpp_refuses_are_problems() {
        let c = config_with("qwen2", "block_count", MetaValue::U64(1));
        assert_eq!(c.layers.as_ref().map(|v| v.value), Some(1));
        let [(key, problem, span)] = &c.problems[..] else {
            panic!("{:?}", c.problems)
        };
        assert_eq!(key, "qwen2.block_count");
        assert!(span.is_some());
        assert!(
            problem.contains("GGUF type u64")
                && problem
                    .contains("key qwen2.block_count has wrong type u64 but expected type u32"),
            "{problem}"
        );
        for (key, v) in [
            ("context_length", MetaValue::U64(32768)),
            ("embedding_length", MetaValue::I32(32)),
            ("attention.head_count", MetaValue::U16(4)),
            ("rope.freq_base", MetaValue::F64(10000.0)),
            ("attention.layer_norm_rms_epsilon", MetaValue::F64(1e-6)),
        ] {
            let c = config_with("qwen2", key, v);
            assert_eq!(c.problems.len(), 1, "{key}: {:?}", c.problems);
            assert!(c.problems[0].1.contains("wrong type"), "{:?}", c.problems);
        }
        // The types llama.cpp reads are clean.
        assert!(
            config_with("qwen2", "block_count", MetaValue::U32(1))
                .problems
                .is_empty()
        );
        assert!(
            config_with("qwen2", "rope.freq_base", MetaValue::F32(1e4))
                .problems
                .is_empty()
        );
        // `vocab_size` is read (as u32) by llama.cpp's llama loader only.
        let c = config_with("llama", "vocab_size", MetaValue::U64(300));
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        let c = config_with("qwen2", "vocab_size", MetaValue::U64(300));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.vocab.map(|v| v.value), Some(300));
    }
}
