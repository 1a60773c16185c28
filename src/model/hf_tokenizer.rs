//! A Hugging Face `tokenizer.json` (and `tokenizer_config.json`), read into the token data the GGUF
//! and APR paths give: token strings by id, merges as `"a b"`, GGUF token types, special ids, the
//! pre-tokenizer's GGUF name and `add_bos`, so `TextTokenizer::from_hf` runs it like a GGUF's.
//!
//! What the converter does is the reference: llama.cpp's `convert_hf_to_gguf.py` (`get_vocab_base`,
//! `does_token_look_special`) turns one of these into `tokenizer.ggml.*`. The BPE model is read with
//! merges as strings (`"a b"`, tokenizers < 0.20) or pairs (`["a", "b"]`), `byte_fallback`, and
//! `added_tokens`; the pre-tokenizer is recognised when it is ByteLevel with GPT-2's pattern, a
//! Sequence of a Split with the qwen2 or Llama 3 pattern and a regex-less ByteLevel (what
//! transformers writes for both), or Metaspace (SentencePiece style). Anything else is read as far
//! as it goes and named (`APRL-F062`).

use serde_json::Value;

use super::hf_config::JsonObject;
use super::hf_lints::{HF_PRE_TOKENIZER, HF_TOKEN_IDS, HF_TOKENIZER_FIELD, HF_TOKENIZER_MODEL};
use crate::diag::{Finding, ReadError, Severity, Span};

/// GGUF token types (`gguf.TokenType`, llama.cpp's `llama_token_type`).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// The pre-tokenizer patterns transformers writes, with the GGUF `tokenizer.ggml.pre` name that
/// llama.cpp runs them under (its `llm_tokenizer_bpe` regexes).
const PATTERNS: &[(&str, &str)] = &[
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen2",
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "llama-bpe",
    ),
    (
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        "gpt2",
    ),
];

/// A `tokenizer.json` as the GGUF and APR readers' tokenizer data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HfTokenizer {
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece-style BPE: Metaspace or byte fallback), as
    /// GGUF's `tokenizer.ggml.model`.
    pub model: String,
    /// The pre-tokenizer's GGUF name (`qwen2`, `llama-bpe`, `gpt2`); None when not recognised or
    /// SentencePiece-style.
    pub pre: Option<String>,
    /// Token strings, index = id; ids no entry names are `[PAD<id>]`, as the converter writes them.
    pub tokens: Vec<String>,
    /// GGUF token type of each token.
    pub token_types: Vec<i32>,
    /// Merges in rank order, `"a b"`.
    pub merges: Vec<String>,
    /// SentencePiece-style scores for `llama`: minus the rank of the merge that makes the token
    /// (tokens no merge makes: minus the merge count), so that the highest-scoring pair is the
    /// lowest-ranked merge. Empty for `gpt2`.
    pub scores: Vec<f32>,
    pub byte_fallback: bool,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// `tokenizer_config.json`'s `add_bos_token`, else whether the post-processor's single-sequence
    /// template starts with a special token.
    pub add_bos: Option<bool>,
    /// Readable, but worth saying (an unrecognised pre-tokenizer, a BOS name that is no token).
    pub findings: Vec<Finding>,
}

fn field_error(message: String, span: Span) -> ReadError {
    ReadError::new(&HF_TOKENIZER_FIELD, message)
        .span(span)
        .help("re-save the tokenizer with `save_pretrained` from a working copy")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A top-level value of `obj` (None when absent).
fn top(obj: &JsonObject<'_>, key: &str) -> Option<(Value, Span)> {
    let e = obj.entry(key)?;
    serde_json::from_str(obj.raw(e)).ok().map(|v| (v, e.span))
}

/// Read `tokenizer.json` (its bytes) and, when present, `tokenizer_config.json`.
pub fn read_tokenizer(json: &[u8], config: Option<&[u8]>) -> Result<HfTokenizer, ReadError> {
    let obj = JsonObject::parse(json, "`tokenizer.json`")?;
    let mut out = HfTokenizer {
        findings: obj.duplicate_findings("`tokenizer.json`"),
        ..HfTokenizer::default()
    };
    let (model, model_span) = top(&obj, "model")
        .ok_or_else(|| field_error("`tokenizer.json` has no `model`".into(), Span::at(0)))?;
    let model = model.as_object().ok_or_else(|| {
        field_error(
            format!("`model` is {}, not an object", kind(&model)),
            model_span,
        )
    })?;
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") | None if model.contains_key("merges") => {}
        other => {
            return Err(ReadError::new(
                &HF_TOKENIZER_MODEL,
                format!(
                    "the tokenizer model is {}, not BPE; apr-lint reads BPE only",
                    other.map_or("untyped".into(), |t| format!("`{t}`"))
                ),
            )
            .span(model_span)
            .help("compare against a GGUF or APR reference instead"));
        }
    }
    out.byte_fallback = match model.get("byte_fallback") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(field_error(
                format!("`model.byte_fallback` is {}, not true or false", kind(v)),
                model_span,
            ));
        }
    };

    // Vocabulary: token → id. Ids are bounded by the file (every entry takes bytes), so the table
    // sized by the largest id is never larger than the file.
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            field_error(
                "`model.vocab` is not an object of token ids".into(),
                model_span,
            )
        })?;
    let bound = json.len() as u64;
    let mut by_id: Vec<Option<String>> = Vec::new();
    let mut put = |id: u64, s: &str, what: &str| -> Result<(), ReadError> {
        if id >= bound {
            return Err(ReadError::new(
                &HF_TOKEN_IDS,
                format!("{what} `{s}` has id {id}, more than a {bound}-byte file can describe"),
            )
            .span(model_span)
            .help("give every token one id below the vocabulary size"));
        }
        let i = id as usize;
        if by_id.len() <= i {
            by_id.resize(i + 1, None);
        }
        match &by_id[i] {
            Some(old) if old != s => Err(ReadError::new(
                &HF_TOKEN_IDS,
                format!("id {id} is both `{old}` and {what} `{s}`"),
            )
            .span(model_span)
            .help("give every token one id")),
            _ => {
                by_id[i] = Some(s.to_owned());
                Ok(())
            }
        }
    };
    for (s, id) in vocab {
        let id = id.as_u64().ok_or_else(|| {
            field_error(
                format!("`model.vocab` entry `{s}` is {}, not an id", kind(id)),
                model_span,
            )
        })?;
        put(id, s, "token")?;
    }
    // Added tokens: the converter marks them CONTROL when special (or looking special), else
    // USER_DEFINED.
    let mut added: Vec<(usize, bool)> = Vec::new();
    if let Some((v, span)) = top(&obj, "added_tokens") {
        let list = v.as_array().ok_or_else(|| {
            field_error(
                format!("`added_tokens` is {}, not an array", kind(&v)),
                span,
            )
        })?;
        for (n, t) in list.iter().enumerate() {
            let (Some(id), Some(content)) = (
                t.get("id").and_then(Value::as_u64),
                t.get("content").and_then(Value::as_str),
            ) else {
                return Err(field_error(
                    format!("`added_tokens[{n}]` lacks an integer `id` or a string `content`"),
                    span,
                ));
            };
            let special = match t.get("special") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => {
                    return Err(field_error(
                        format!(
                            "`added_tokens[{n}].special` is {}, not true or false",
                            kind(v)
                        ),
                        span,
                    ));
                }
            };
            put(id, content, "added token").map_err(|e| e.span(span))?;
            added.push((id as usize, special));
        }
    }
    out.tokens = by_id
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.unwrap_or_else(|| format!("[PAD{i}]")))
        .collect();
    out.token_types = out
        .tokens
        .iter()
        .map(|s| {
            if s.starts_with("[PAD") && !vocab.contains_key(s.as_str()) {
                token_type::UNUSED
            } else {
                token_type::NORMAL
            }
        })
        .collect();
    for &(id, special) in &added {
        if let (Some(ty), Some(s)) = (out.token_types.get_mut(id), out.tokens.get(id)) {
            *ty = if special || looks_special(s) {
                token_type::CONTROL
            } else {
                token_type::USER_DEFINED
            };
        }
    }

    // Merges: "a b" strings, or ["a", "b"] pairs (tokenizers ≥ 0.20 writes pairs, so a part may
    // hold a space; such a merge cannot be written as GGUF's "a b" and is named).
    let merges = match model.get("merges") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(field_error(
                format!("`model.merges` is {}, not an array", kind(v)),
                model_span,
            ));
        }
    };
    out.merges.reserve(merges.len());
    for (rank, m) in merges.iter().enumerate() {
        let merge = match m {
            Value::String(s) => s.clone(),
            Value::Array(p) => match (
                p.first().and_then(Value::as_str),
                p.get(1).and_then(Value::as_str),
                p.len(),
            ) {
                (Some(a), Some(b), 2) => format!("{a} {b}"),
                _ => {
                    return Err(field_error(
                        format!("merge {rank} is {m}, not a pair of strings"),
                        model_span,
                    ));
                }
            },
            other => {
                return Err(field_error(
                    format!(
                        "merge {rank} is {}, not \"a b\" or [\"a\", \"b\"]",
                        kind(other)
                    ),
                    model_span,
                ));
            }
        };
        out.merges.push(merge);
    }

    // Pre-tokenizer (and the normalizer, for SentencePiece-style tokenizers without one).
    let pre = top(&obj, "pre_tokenizer");
    let normalizer = top(&obj, "normalizer").map(|(v, _)| v);
    let (model_name, pre_name, problem) = classify(
        pre.as_ref().map(|(v, _)| v),
        normalizer.as_ref(),
        out.byte_fallback,
    );
    out.model = model_name.to_owned();
    out.pre = pre_name.map(str::to_owned);
    if let Some(p) = problem {
        out.findings.push(
            Finding::new(&HF_PRE_TOKENIZER, p)
                .span(pre.map_or(Span::at(0), |(_, s)| s))
                .help("compare tokenizers against a GGUF or APR reference, which names its pre-tokenizer"),
        );
    }
    if out.model == "llama" {
        // SentencePiece's engine merges the highest-scoring pair: score = −rank of the merge that
        // makes the token.
        let n = out.merges.len() as f32;
        let mut scores = vec![-n; out.tokens.len()];
        let ids: std::collections::HashMap<&str, usize> = out
            .tokens
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        for (rank, m) in out.merges.iter().enumerate().rev() {
            if let Some(&id) = ids.get(m.replacen(' ', "", 1).as_str()) {
                scores[id] = -(rank as f32);
            }
        }
        for (i, s) in out.tokens.iter().enumerate() {
            if is_byte_token(s) && out.token_types[i] == token_type::NORMAL {
                out.token_types[i] = token_type::BYTE;
            }
        }
        out.scores = scores;
    }

    // BOS/EOS and add_bos.
    let post = top(&obj, "post_processor").map(|(v, _)| v);
    let template_bos = post.as_ref().and_then(template_bos);
    let cfg = match config {
        Some(bytes) => Some(JsonObject::parse(bytes, "`tokenizer_config.json`")?),
        None => None,
    };
    let id_of = |name: &str| out.tokens.iter().position(|t| t == name).map(|i| i as u32);
    let mut special = |key: &str| -> Result<Option<u32>, ReadError> {
        let Some((v, span)) = cfg.as_ref().and_then(|c| top(c, key)) else {
            return Ok(None);
        };
        let name = match &v {
            Value::Null => return Ok(None),
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("content").and_then(Value::as_str).ok_or_else(|| {
                field_error(
                    format!("`{key}` is an object without a string `content`"),
                    span,
                )
            })?,
            other => {
                return Err(field_error(
                    format!(
                        "`{key}` is {}, not a token or an AddedToken object",
                        kind(other)
                    ),
                    span,
                ));
            }
        };
        let id = id_of(name);
        if id.is_none() {
            out.findings.push(
                Finding::new(
                    &HF_TOKEN_IDS,
                    format!("`{key}` `{name}` is not a token of `tokenizer.json`"),
                )
                .severity(Severity::Warning)
                .span(span)
                .help("name a token of the vocabulary or of `added_tokens`"),
            );
        }
        Ok(id)
    };
    let bos = special("bos_token")?;
    let eos = special("eos_token")?;
    out.bos = bos.or(template_bos);
    out.eos = eos;
    out.add_bos = match cfg.as_ref().and_then(|c| top(c, "add_bos_token")) {
        Some((Value::Bool(b), _)) => Some(b),
        Some((Value::Null, _)) | None => post
            .as_ref()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("TemplateProcessing"))
            .map(|_| template_bos.is_some()),
        Some((v, span)) => {
            return Err(field_error(
                format!("`add_bos_token` is {}, not true or false", kind(&v)),
                span,
            ));
        }
    };
    Ok(out)
}

/// `<0xAB>`: SentencePiece's byte-fallback tokens.
fn is_byte_token(s: &str) -> bool {
    s.len() == 6
        && s.starts_with("<0x")
        && s.ends_with('>')
        && s[3..5].chars().all(|c| c.is_ascii_hexdigit())
}

/// `convert_hf_to_gguf.py`'s `does_token_look_special`: added tokens that are control tokens even
/// when not marked special.
fn looks_special(s: &str) -> bool {
    matches!(s, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (s.starts_with("<|") && s.ends_with("|>"))
        || (s.starts_with("<\u{ff5c}") && s.ends_with("\u{ff5c}>"))
        || (s.starts_with("<unused") && s.ends_with('>'))
}

/// The id the post-processor's single-sequence template puts first, if it is a special token
/// (`TemplateProcessing {single: [{SpecialToken: {id}}, {Sequence: A}], special_tokens: {id: {ids}}}`).
fn template_bos(post: &Value) -> Option<u32> {
    if post.get("type").and_then(Value::as_str) != Some("TemplateProcessing") {
        return None;
    }
    let name = post
        .get("single")?
        .get(0)?
        .get("SpecialToken")?
        .get("id")?
        .as_str()?;
    let id = post
        .get("special_tokens")?
        .get(name)?
        .get("ids")?
        .get(0)?
        .as_u64()?;
    u32::try_from(id).ok()
}

/// (GGUF model name, pre-tokenizer name, problem) of a pre-tokenizer and normalizer.
fn classify(
    pre: Option<&Value>,
    normalizer: Option<&Value>,
    byte_fallback: bool,
) -> (&'static str, Option<&'static str>, Option<String>) {
    let ty = |v: &Value| v.get("type").and_then(Value::as_str).map(str::to_owned);
    let sentencepiece_normalizer = normalizer.is_some_and(|n| n.to_string().contains('\u{2581}'));
    let Some(pre) = pre.filter(|p| !p.is_null()) else {
        return if byte_fallback || sentencepiece_normalizer {
            ("llama", None, None)
        } else {
            ("gpt2", None, Some("`tokenizer.json` has no pre-tokenizer and no SentencePiece normalizer; the text is not split before BPE".into()))
        };
    };
    match ty(pre).as_deref() {
        Some("Metaspace") => ("llama", None, None),
        Some("ByteLevel") => {
            if pre.get("use_regex").and_then(Value::as_bool) == Some(false) {
                (
                    "gpt2",
                    None,
                    Some("ByteLevel without its regex and no Split before it".into()),
                )
            } else if pre.get("add_prefix_space").and_then(Value::as_bool) == Some(true) {
                ("gpt2", Some("gpt2"), Some("ByteLevel with `add_prefix_space`: apr-lint does not add the leading space".into()))
            } else {
                ("gpt2", Some("gpt2"), None)
            }
        }
        Some("Sequence") => {
            let parts = pre.get("pretokenizers").and_then(Value::as_array);
            let split = parts.and_then(|p| p.first());
            let byte_level = parts.and_then(|p| p.get(1));
            let pattern = split
                .filter(|s| ty(s).as_deref() == Some("Split"))
                .filter(|s| s.get("behavior").and_then(Value::as_str) == Some("Isolated"))
                .filter(|s| s.get("invert").and_then(Value::as_bool) != Some(true))
                .and_then(|s| s.get("pattern")?.get("Regex")?.as_str());
            let byte_level_ok = byte_level.is_some_and(|b| {
                ty(b).as_deref() == Some("ByteLevel")
                    && b.get("use_regex").and_then(Value::as_bool) == Some(false)
                    && b.get("add_prefix_space").and_then(Value::as_bool) != Some(true)
            }) && parts.is_some_and(|p| p.len() == 2);
            match pattern.and_then(|r| PATTERNS.iter().find(|(p, _)| *p == r)) {
                Some((_, name)) if byte_level_ok => ("gpt2", Some(name), None),
                _ => (
                    "gpt2",
                    None,
                    Some(format!(
                        "pre-tokenizer Sequence {} is not a Split of a known pattern (qwen2, Llama 3, GPT-2) before a regex-less ByteLevel",
                        pre
                    )),
                ),
            }
        }
        other => (
            "gpt2",
            None,
            Some(format!(
                "pre-tokenizer type {} is not one apr-lint runs (ByteLevel, Sequence of Split and ByteLevel, Metaspace)",
                other.map_or("(none)".into(), |t| format!("`{t}`"))
            )),
        ),
    }
}
