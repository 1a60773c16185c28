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

/// The members of `model` apr-lint reads; `vocab` and `merges` stay raw text (borrowed from the
/// file) until walked.
#[derive(serde::Deserialize)]
struct ModelFields<'a> {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    byte_fallback: Option<Value>,
    #[serde(borrow, default)]
    vocab: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    merges: Option<&'a serde_json::value::RawValue>,
}

/// A JSON object's members in file order, keys borrowed unless escaped.
struct Entries;

impl<'de> serde::de::Visitor<'de> for Entries {
    type Value = Vec<(std::borrow::Cow<'de, str>, Value)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            out.push((k, map.next_value::<Value>()?));
        }
        Ok(out)
    }
}

/// One merge, `"a b"` or `["a", "b"]`, as `"a b"` (read without buffering the element).
struct Merge(String);

impl<'de> serde::Deserialize<'de> for Merge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Merge, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Merge;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"a b\" or [\"a\", \"b\"]")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Merge, E> {
                Ok(Merge(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Merge, A::Error> {
                use serde::de::Error;
                let a: std::borrow::Cow<'de, str> = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("empty pair"))?;
                let b: std::borrow::Cow<'de, str> = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("one-element pair"))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("more than two parts"));
                }
                let mut m = String::with_capacity(a.len() + 1 + b.len());
                m.push_str(&a);
                m.push(' ');
                m.push_str(&b);
                Ok(Merge(m))
            }
        }
        d.deserialize_any(V)
    }
}

/// Appends every merge as `"a b"`; fails at the first element that is neither form.
struct Merges<'o>(&'o mut Vec<String>);

impl<'de> serde::de::Visitor<'de> for Merges<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of merges")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.reserve(seq.size_hint().unwrap_or(0));
        while let Some(Merge(m)) = seq.next_element()? {
            self.0.push(m);
        }
        Ok(())
    }
}

/// `model` read in one pass: `vocab` and `merges` built as they are met, not kept as raw text and
/// walked again (the model is ~all of a real `tokenizer.json`, so each pass over it costs about a
/// third of the read). Anything this refuses (a malformed field, a key twice) is read again by the
/// field-by-field path below, which says what is wrong: so a tokenizer it accepts reads exactly
/// as before, and one it refuses gets the same error.
#[derive(Default)]
struct FastModel<'a> {
    kind: Option<Value>,
    byte_fallback: Option<Value>,
    vocab: Option<Vec<(std::borrow::Cow<'a, str>, u64)>>,
    /// `merges` was there (`null` included).
    has_merges: bool,
    merges: Vec<String>,
}

struct FastModelVisitor;

impl<'de> serde::de::Visitor<'de> for FastModelVisitor {
    type Value = FastModel<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a BPE model object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut m = FastModel::default();
        let mut seen = [false; 4];
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let i = match k.as_ref() {
                "type" => 0,
                "byte_fallback" => 1,
                "vocab" => 2,
                "merges" => 3,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(A::Error::custom("duplicate field"));
            }
            match i {
                0 => m.kind = map.next_value()?,
                1 => m.byte_fallback = map.next_value()?,
                2 => m.vocab = Some(map.next_value_seed(VocabSeed)?),
                _ => {
                    m.has_merges = true;
                    m.merges = map.next_value_seed(MergesSeed)?;
                }
            }
        }
        Ok(m)
    }
}

/// `vocab`: token → id, in file order (keys borrowed unless escaped); any id that is not a
/// non-negative integer fails it.
struct VocabSeed;

impl<'de> serde::de::DeserializeSeed<'de> for VocabSeed {
    type Value = Vec<(std::borrow::Cow<'de, str>, u64)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for VocabSeed {
    type Value = Vec<(std::borrow::Cow<'de, str>, u64)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of token ids")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            out.push((k, map.next_value::<u64>()?));
        }
        Ok(out)
    }
}

/// `merges`: an array of merges, or `null` (none).
struct MergesSeed;

impl<'de> serde::de::DeserializeSeed<'de> for MergesSeed {
    type Value = Vec<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MergesSeed {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of merges or null")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        serde::de::Visitor::visit_seq(Merges(&mut out), seq)?;
        Ok(out)
    }
}

/// `model` in one pass, or None when the field-by-field path must read it (to name a problem).
fn fast_model(raw: &str) -> Option<FastModel<'_>> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_str(raw);
    let m = de.deserialize_map(FastModelVisitor).ok()?;
    de.end().ok()?;
    m.vocab.is_some().then_some(m)
}

/// What is wrong with a `model.merges` the fast path refused (read again as values to say it).
fn merge_problem(raw: &str) -> String {
    let v: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(_) => return "`model.merges` is not JSON".into(),
    };
    let Some(list) = v.as_array() else {
        return format!("`model.merges` is {}, not an array", kind(&v));
    };
    for (rank, m) in list.iter().enumerate() {
        match m {
            Value::String(_) => {}
            Value::Array(p) if p.len() == 2 && p.iter().all(Value::is_string) => {}
            Value::Array(_) => return format!("merge {rank} is {m}, not a pair of strings"),
            other => {
                return format!(
                    "merge {rank} is {}, not \"a b\" or [\"a\", \"b\"]",
                    kind(other)
                );
            }
        }
    }
    "`model.merges` could not be read".into()
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

/// `model` as raw fields (the path that names what is wrong).
fn slow_model<'a>(
    obj: &JsonObject<'a>,
    model_entry: &super::hf_config::JsonEntry,
) -> Result<ModelFields<'a>, ReadError> {
    let model_span = model_entry.span;
    Some(obj.raw(model_entry))
        .filter(|r| r.trim_start().starts_with('{'))
        .ok_or(())
        .and_then(|r| serde_json::from_str(r).map_err(|_| ()))
        .map_err(|_| {
            let what = serde_json::from_str::<Value>(obj.raw(model_entry))
                .map_or("not JSON", |v| kind(&v));
            field_error(format!("`model` is {what}, not an object"), model_span)
        })
}

/// Read `tokenizer.json` (its bytes) and, when present, `tokenizer_config.json`.
pub fn read_tokenizer(json: &[u8], config: Option<&[u8]>) -> Result<HfTokenizer, ReadError> {
    let obj = JsonObject::parse(json, "`tokenizer.json`")?;
    let mut out = HfTokenizer {
        findings: obj.duplicate_findings("`tokenizer.json`"),
        ..HfTokenizer::default()
    };
    let model_entry = obj
        .entry("model")
        .ok_or_else(|| field_error("`tokenizer.json` has no `model`".into(), Span::at(0)))?;
    let model_span = model_entry.span;
    // The vocabulary and merges are the bulk of the file (150k entries each in a real one): they
    // stay raw text here and are walked once below, never built into `Value` maps.
    // (A derived struct would also accept an array: only an object is a model.)
    let model_raw = obj.raw(model_entry);
    let mut fast = fast_model(model_raw);
    let model: ModelFields<'_> = match &mut fast {
        Some(f) => ModelFields {
            kind: f.kind.take(),
            byte_fallback: f.byte_fallback.take(),
            vocab: None,
            merges: None,
        },
        None => slow_model(&obj, model_entry)?,
    };
    let has_merges = fast
        .as_ref()
        .map_or(model.merges.is_some(), |f| f.has_merges);
    match model.kind.as_ref().map(|v| v.as_str()) {
        Some(Some("BPE")) => {}
        None if has_merges => {}
        other => {
            return Err(ReadError::new(
                &HF_TOKENIZER_MODEL,
                format!(
                    "the tokenizer model is {}, not BPE; apr-lint reads BPE only",
                    match other {
                        Some(Some(t)) => format!("`{t}`"),
                        Some(None) => "not named by a string".into(),
                        None => "untyped".into(),
                    }
                ),
            )
            .span(model_span)
            .help("compare against a GGUF or APR reference instead"));
        }
    }
    out.byte_fallback = match &model.byte_fallback {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(field_error(
                format!("`model.byte_fallback` is {}, not true or false", kind(v)),
                model_span,
            ));
        }
    };

    // Vocabulary: token → id. The table is sized by the largest id, and every id no entry names
    // becomes a `[PAD<id>]` string (~170 bytes of memory, through `TextTokenizer`), so ids are
    // bounded by the entries plus one gap per 16 bytes of file: a dense vocabulary always fits,
    // and a sparse id in a file padded with whitespace cannot make the table ~100× the file.
    // (`bad`: the first entry whose id is not one, and what it is instead: an error when the
    // walk below reaches it.)
    let mut bad: Option<(usize, &'static str)> = None;
    let vocab: Vec<(std::borrow::Cow<'_, str>, u64)> = match fast.as_mut() {
        Some(f) => f.vocab.take(),
        None => model.vocab.and_then(|raw| {
            use serde::Deserializer as _;
            let entries = serde_json::Deserializer::from_str(raw.get())
                .deserialize_map(Entries)
                .ok()?;
            let mut ids = Vec::with_capacity(entries.len());
            for (i, (s, v)) in entries.into_iter().enumerate() {
                if v.as_u64().is_none() && bad.is_none() {
                    bad = Some((i, kind(&v)));
                }
                ids.push((s, v.as_u64().unwrap_or(0)));
            }
            Some(ids)
        }),
    }
    .ok_or_else(|| {
        field_error(
            "`model.vocab` is not an object of token ids".into(),
            model_span,
        )
    })?;
    let n_added = top(&obj, "added_tokens")
        .and_then(|(v, _)| v.as_array().map(Vec::len))
        .unwrap_or(0);
    let bound = (vocab.len() + n_added) as u64 + json.len() as u64 / 16;
    let mut by_id: Vec<Option<String>> = Vec::new();
    let mut put = |id: u64, s: &str, what: &str| -> Result<(), ReadError> {
        if id >= bound {
            return Err(ReadError::new(
                &HF_TOKEN_IDS,
                format!(
                    "{what} `{s}` has id {id}; a {}-byte file with {} entries describes ids below {bound}",
                    json.len(),
                    vocab.len() + n_added
                ),
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
    for (i, (s, id)) in vocab.iter().enumerate() {
        if let Some((_, what)) = bad.filter(|&(j, _)| j == i) {
            return Err(field_error(
                format!("`model.vocab` entry `{s}` is {what}, not an id"),
                model_span,
            ));
        }
        put(*id, s, "token")?;
    }
    // Vocabulary strings that look like the `[PAD<id>]` filler (a real token, not a gap).
    let pad_like: std::collections::HashSet<&str> = vocab
        .iter()
        .map(|(s, _)| s.as_ref())
        .filter(|s| s.starts_with("[PAD"))
        .collect();
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
            if s.starts_with("[PAD") && !pad_like.contains(s.as_str()) {
                token_type::UNUSED
            } else {
                token_type::NORMAL
            }
        })
        .collect();
    drop(pad_like);
    drop(vocab);
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
    if let Some(f) = fast {
        out.merges = f.merges;
    } else if let Some(raw) = model.merges.filter(|r| r.get() != "null") {
        use serde::Deserializer as _;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        if de.deserialize_seq(Merges(&mut out.merges)).is_err() {
            return Err(field_error(merge_problem(raw.get()), model_span));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{}/fixtures/hf/{p}", env!("CARGO_MANIFEST_DIR"))).expect(p)
    }

    /// The qwen2 fixture's `tokenizer.json`, changed by `edit`.
    fn qwen2_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value =
            serde_json::from_slice(&fixture("tiny-qwen2-f32/tokenizer.json")).unwrap();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn code(r: Result<HfTokenizer, ReadError>) -> &'static str {
        match r {
            Ok(t) => panic!("read: {:?}", t.findings),
            Err(e) => e.code(),
        }
    }

    #[test]
    fn merges_as_strings_read_as_pairs_do() {
        let pairs = read_tokenizer(&fixture("tiny-qwen2-f32/tokenizer.json"), None).unwrap();
        let strings = read_tokenizer(
            &qwen2_with(|v| {
                let m: Vec<Value> = v["model"]["merges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        json!(format!(
                            "{} {}",
                            p[0].as_str().unwrap(),
                            p[1].as_str().unwrap()
                        ))
                    })
                    .collect();
                v["model"]["merges"] = json!(m);
            }),
            None,
        )
        .unwrap();
        assert_eq!(pairs.merges.len(), 253);
        assert_eq!(pairs.merges[0], "Ġ t");
        assert_eq!(pairs, strings);
    }

    /// The one-pass reader takes well-formed models (pairs, strings, `null` merges) and leaves
    /// malformed ones to the field-by-field path, which names the problem.
    #[test]
    fn well_formed_models_take_the_one_pass_reader() {
        let model = |v: &Value| v["model"].to_string();
        let v: Value = serde_json::from_slice(&fixture("tiny-qwen2-f32/tokenizer.json")).unwrap();
        let raw = model(&v);
        let f = fast_model(&raw).expect("pairs");
        assert_eq!((f.vocab.unwrap().len(), f.merges.len()), (512, 253));
        let mut w = v.clone();
        w["model"]["merges"] = json!(["a b", "c d"]);
        assert_eq!(fast_model(&model(&w)).unwrap().merges, ["a b", "c d"]);
        w["model"]["merges"] = Value::Null;
        let raw = model(&w);
        let f = fast_model(&raw).unwrap();
        assert!(f.has_merges && f.merges.is_empty());
        for bad in [
            r#"{"type": "BPE", "vocab": {"a": -1}}"#,
            r#"{"type": "BPE", "vocab": {"a": 0}, "merges": [7]}"#,
            r#"{"type": "BPE", "type": "BPE", "vocab": {}}"#,
            r#"{"type": "BPE", "merges": []}"#,
            r#"[]"#,
        ] {
            assert!(fast_model(bad).is_none(), "{bad}");
        }
    }

    /// Each malformed field stops reading with its code.
    #[test]
    fn malformed_fields_are_coded() {
        type Edit = fn(&mut Value);
        let cases: &[(&str, Edit)] = &[
            ("APRL-F061", |v| {
                v.as_object_mut().unwrap().remove("model");
            }),
            ("APRL-F061", |v| v["model"] = json!([1])),
            ("APRL-F061", |v| v["model"]["vocab"] = json!(["a", "b"])),
            ("APRL-F061", |v| v["model"]["vocab"]["Ā"] = json!("0")),
            ("APRL-F061", |v| v["model"]["vocab"]["Ā"] = json!(-1)),
            ("APRL-F061", |v| v["model"]["merges"][3] = json!(7)),
            ("APRL-F061", |v| {
                v["model"]["merges"][3] = json!(["a", "b", "c"])
            }),
            ("APRL-F061", |v| v["model"]["merges"] = json!("a b")),
            ("APRL-F061", |v| v["model"]["byte_fallback"] = json!("no")),
            ("APRL-F061", |v| v["added_tokens"][0]["id"] = json!("509")),
            ("APRL-F061", |v| v["added_tokens"][0]["special"] = json!(1)),
            ("APRL-F061", |v| v["added_tokens"] = json!({})),
            ("APRL-F062", |v| {
                v["model"] = json!({"type": "WordPiece", "vocab": {}})
            }),
            ("APRL-F062", |v| {
                v["model"] = json!({"type": "Unigram", "vocab": []})
            }),
            // Two strings for one id, in the vocab and between an added token and the vocab.
            ("APRL-F063", |v| v["model"]["vocab"]["Ā"] = json!(1)),
            ("APRL-F063", |v| {
                v["added_tokens"][0]["content"] = json!("<|other|>")
            }),
            // An id no file of this size could describe: not a 4-billion-entry table.
            ("APRL-F063", |v| {
                v["model"]["vocab"]["Ā"] = json!(4_000_000_000u64)
            }),
        ];
        for (want, edit) in cases {
            assert_eq!(
                code(read_tokenizer(&qwen2_with(edit), None)),
                *want,
                "{want}"
            );
        }
        assert_eq!(code(read_tokenizer(b"{\"model\": ", None)), "APRL-F060");
        assert_eq!(code(read_tokenizer(b"[]", None)), "APRL-F060");
    }

    /// One sparse id in a file padded with whitespace: not a table of `[PAD<id>]` strings ~100×
    /// the file's size (each costs about 170 bytes of memory, a byte of whitespace 1 byte of file).
    #[test]
    fn a_sparse_id_padded_with_whitespace_is_refused() {
        let n = 200_000;
        let mut s = format!(
            r#"{{"model": {{"type": "BPE", "vocab": {{"a": {}}}"#,
            n - 1000
        );
        s.push_str(&" ".repeat(n - s.len() - 2));
        s.push_str("}}");
        assert_eq!(s.len(), n);
        assert_eq!(code(read_tokenizer(s.as_bytes(), None)), "APRL-F063");
    }

    #[test]
    fn tokenizer_config_fields_are_strict() {
        let json = fixture("tiny-qwen2-f32/tokenizer.json");
        let read = |cfg: &str| read_tokenizer(&json, Some(cfg.as_bytes()));
        // A string or an AddedToken object.
        let t = read(r#"{"bos_token": {"content": "<|im_start|>", "special": true}, "eos_token": "<|im_end|>", "add_bos_token": true}"#).unwrap();
        assert_eq!(
            (t.bos, t.eos, t.add_bos),
            (Some(510), Some(511), Some(true))
        );
        assert!(t.findings.is_empty());
        for bad in [
            r#"{"bos_token": 509}"#,
            r#"{"eos_token": {"id": 511}}"#,
            r#"{"add_bos_token": "true"}"#,
        ] {
            assert_eq!(code(read(bad)), "APRL-F061", "{bad}");
        }
        assert_eq!(code(read("{")), "APRL-F060");
        // A name that is no token: read, and said.
        let t = read(r#"{"bos_token": "<s>"}"#).unwrap();
        assert_eq!(t.bos, None);
        let codes: Vec<&str> = t.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, ["APRL-F063"]);
        // Without `add_bos_token`, the post-processor's template decides (qwen2's adds nothing).
        assert_eq!(read("{}").unwrap().add_bos, Some(false));
    }

    /// A pre-tokenizer apr-lint does not run is read on and named.
    #[test]
    fn unknown_pre_tokenizers_are_named() {
        type Edit = fn(&mut Value);
        let cases: &[Edit] = &[
            |v| v["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = json!(r"\w+|\s+"),
            |v| v["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = json!(true),
            |v| v["pre_tokenizer"]["pretokenizers"][0]["invert"] = json!(true),
            |v| v["pre_tokenizer"] = json!({"type": "Whitespace"}),
            |v| v["pre_tokenizer"] = json!({"type": "ByteLevel", "add_prefix_space": true}),
            |v| v["pre_tokenizer"] = Value::Null,
        ];
        for edit in cases {
            let t = read_tokenizer(&qwen2_with(*edit), None).unwrap();
            let codes: Vec<&str> = t.findings.iter().map(|f| f.code).collect();
            assert_eq!(codes, ["APRL-F064"], "{:?}", t.pre);
            assert_ne!(t.pre.as_deref(), Some("qwen2"));
        }
        // GPT-2's own: ByteLevel with its regex.
        let t = read_tokenizer(
            &qwen2_with(|v| {
                v["pre_tokenizer"] =
                    json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})
            }),
            None,
        )
        .unwrap();
        assert!(t.findings.is_empty());
        assert_eq!(t.pre.as_deref(), Some("gpt2"));
    }

    /// SentencePiece-style BPE (Metaspace, byte fallback): `llama`, byte tokens typed BYTE, and
    /// the merges' order as scores, so the engine merges as BPE does.
    #[test]
    fn metaspace_bpe_reads_as_sentencepiece() {
        let json = json!({
            "added_tokens": [
                {"id": 0, "content": "<unk>", "special": true},
                {"id": 1, "content": "<s>", "special": true},
                {"id": 2, "content": "</s>", "special": true}
            ],
            "normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
            "model": {"type": "BPE", "byte_fallback": true,
                "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x21>": 3, "▁": 4, "h": 5, "i": 6, "hi": 7, "▁hi": 8},
                "merges": ["h i", "▁ hi"]}
        });
        let t = read_tokenizer(json.to_string().as_bytes(), None).unwrap();
        assert!(t.findings.is_empty(), "{:?}", t.findings);
        assert_eq!(t.model, "llama");
        assert_eq!(t.pre, None);
        assert_eq!(t.token_types, [3, 3, 3, 6, 1, 1, 1, 1, 1]);
        assert_eq!((t.bos, t.add_bos), (Some(1), Some(true)));
        let tok = crate::model::tokenize::TextTokenizer::from_hf(&t).unwrap();
        // "hi hi!": ▁hi ▁hi, then `!` by byte fallback.
        assert_eq!(tok.encode("hi hi!"), [1, 8, 8, 3]);
    }

    /// Token types as `convert_hf_to_gguf.py` writes them: special added tokens and added tokens
    /// that look special (`<|…|>`) CONTROL, other added tokens USER_DEFINED, ids no entry names
    /// `[PAD<id>]` UNUSED.
    #[test]
    fn token_types_follow_the_converter() {
        let json = json!({
            "added_tokens": [
                {"id": 3, "content": "<|x|>", "special": false},
                {"id": 4, "content": "foo", "special": false},
                {"id": 6, "content": "<pad>", "special": false},
                {"id": 7, "content": "bar", "special": true}
            ],
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}
        });
        let t = read_tokenizer(json.to_string().as_bytes(), None).unwrap();
        assert_eq!(
            t.tokens,
            ["a", "b", "ab", "<|x|>", "foo", "[PAD5]", "<pad>", "bar"]
        );
        assert_eq!(t.token_types, [1, 1, 1, 3, 4, 5, 3, 3]);
        assert_eq!(t.merges, ["a b"]);
        assert_eq!((t.bos, t.add_bos), (None, None));
    }
}
