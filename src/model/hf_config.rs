//! A Hugging Face `config.json`, read into the project's [`Config`] by the same code that reads APR
//! metadata (`config::read_json_keys`): the classic keys (`hidden_size`, `rope_theta`,
//! `rope_scaling` …) and transformers 5's `rope_parameters` object. Every value keeps its key and the
//! byte span of its value in the file; a key of the wrong JSON type is a `Config` problem
//! (`APRL-M005`, as for APR), a file that is not a JSON object an `APRL-F060` read error, a repeated
//! key an `APRL-F008` warning (Python's `json` keeps the last, as we do).

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::config::{Config, Dialect, JsonKeys, read_json_keys};
use super::hf_lints::HF_JSON;
use crate::diag::{Finding, ReadError, Severity, Span};

/// One top-level key of a JSON object and where its value is.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonEntry {
    pub key: String,
    /// The value's bytes in the file.
    pub span: Span,
}

/// The top level of a JSON object file, keys in file order (repeats kept).
#[derive(Clone, Debug)]
pub struct JsonObject<'t> {
    text: &'t str,
    pub entries: Vec<JsonEntry>,
}

impl<'t> JsonObject<'t> {
    /// Parse `bytes` (the whole file) as one JSON object; `what` names the file in messages.
    pub fn parse(bytes: &'t [u8], what: &str) -> Result<JsonObject<'t>, ReadError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ReadError::new(&HF_JSON, format!("{what} is not UTF-8: {e}"))
                .at(e.valid_up_to() as u64)
                .help("download the file again")
        })?;
        let base = text.as_ptr() as usize;
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de
            .deserialize_map(TopLevel)
            .map_err(|e| json_error(e, text, what))?;
        de.end().map_err(|e| json_error(e, text, what))?;
        let entries = raw
            .into_iter()
            .map(|(key, v)| JsonEntry {
                key,
                // The raw value borrows `text`: its address says where it is.
                span: Span::new(
                    (v.get().as_ptr() as usize).saturating_sub(base) as u64,
                    v.get().len() as u64,
                ),
            })
            .collect();
        Ok(JsonObject { text, entries })
    }

    /// The last entry named `key`.
    pub fn entry(&self, key: &str) -> Option<&JsonEntry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    /// The raw JSON text of a value.
    pub fn raw(&self, e: &JsonEntry) -> &'t str {
        self.text
            .get(e.span.offset as usize..e.span.end() as usize)
            .unwrap_or("")
    }

    /// `APRL-F008` warnings for keys written twice.
    pub fn duplicate_findings(&self, what: &str) -> Vec<Finding> {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .filter(|e| !seen.insert(e.key.as_str()))
            .map(|e| {
                Finding::new(
                    &crate::format::lints::DUPLICATE_KEY,
                    format!(
                        "{what} key `{}` occurs twice; Python's json keeps the last",
                        e.key
                    ),
                )
                .severity(Severity::Warning)
                .span(e.span)
                .help("write each key once")
            })
            .collect()
    }
}

impl JsonKeys for JsonObject<'_> {
    fn value(&self, key: &str) -> Option<serde_json::Value> {
        let e = self.entry(key)?;
        serde_json::from_str(self.raw(e))
            .ok()
            .filter(|v: &serde_json::Value| !v.is_null())
    }
    fn span(&self, key: &str) -> Option<Span> {
        self.entry(key).map(|e| e.span)
    }
}

struct TopLevel;
impl<'de> Visitor<'de> for TopLevel {
    type Value = Vec<(String, &'de RawValue)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(kv) = map.next_entry::<String, &'de RawValue>()? {
            out.push(kv);
        }
        Ok(out)
    }
}

/// serde_json's line and column as a byte offset.
fn json_error(e: serde_json::Error, text: &str, what: &str) -> ReadError {
    let mut off = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == e.line() {
            off += e.column().saturating_sub(1);
            break;
        }
        off += line.len();
    }
    ReadError::new(&HF_JSON, format!("{what} is not a valid JSON object: {e}"))
        .at(off.min(text.len()) as u64)
        .help("download the file again, or restore it from the model's repository")
}

/// A `config.json` read: the config and the findings of reading it.
#[derive(Clone, Debug)]
pub struct HfConfig {
    pub config: Config,
    pub findings: Vec<Finding>,
}

/// Read a `config.json` (its whole bytes). `head_dim` is derived as for APR when absent.
pub fn read_config_json(bytes: &[u8]) -> Result<HfConfig, ReadError> {
    let obj = JsonObject::parse(bytes, "`config.json`")?;
    let mut config = read_json_keys(&obj, Dialect::HfConfig);
    config.derive(&[]);
    Ok(HfConfig {
        config,
        findings: obj.duplicate_findings("`config.json`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::RopeScaling;

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{}/fixtures/hf/{p}", env!("CARGO_MANIFEST_DIR"))).expect(p)
    }

    fn read(text: &str) -> Config {
        read_config_json(text.as_bytes()).expect("reads").config
    }

    /// The values only (keys and spans differ between the two spellings).
    fn values(c: &Config) -> String {
        macro_rules! v {
            ($($f:ident),*) => { vec![$(format!("{}={:?}", stringify!($f), c.$f.as_ref().map(|v| &v.value))),*] };
        }
        v!(
            architecture,
            hidden,
            layers,
            heads,
            kv_heads,
            head_dim,
            vocab,
            ffn,
            context_length,
            rope_theta,
            rope_type,
            rms_eps,
            tied,
            rope_scaling,
            dtype,
            hf_classes
        )
        .join(" ")
    }

    /// The oracle's `config.json` files (written by transformers 5.25): every quantity read, with
    /// its key and the span of its value.
    #[test]
    fn oracle_configs_read() {
        for (model, tied, head_dim_key) in [
            ("tiny-qwen2-f32", false, "derived: hidden / n_head"),
            ("tiny-qwen2-tied-f32", true, "derived: hidden / n_head"),
            ("tiny-llama-f32", false, "head_dim"),
        ] {
            let bytes = fixture(&format!("{model}/config.json"));
            let r = read_config_json(&bytes).unwrap();
            let c = &r.config;
            assert!(c.problems.is_empty(), "{model}: {:?}", c.problems);
            assert!(r.findings.is_empty());
            let arch = if model.contains("llama") {
                "llama"
            } else {
                "qwen2"
            };
            assert_eq!(c.arch(), Some(arch));
            let get = |v: &Option<crate::model::ConfigValue<u64>>| v.as_ref().map(|v| v.value);
            assert_eq!(get(&c.hidden), Some(256));
            assert_eq!(get(&c.layers), Some(2));
            assert_eq!(get(&c.heads), Some(4));
            assert_eq!(get(&c.kv_heads), Some(2));
            assert_eq!(get(&c.head_dim), Some(64));
            assert_eq!(c.head_dim.as_ref().unwrap().key, head_dim_key);
            assert_eq!(get(&c.vocab), Some(512));
            assert_eq!(get(&c.ffn), Some(768));
            assert_eq!(get(&c.context_length), Some(512));
            assert_eq!(c.tied.as_ref().map(|v| v.value), Some(tied));
            assert_eq!(c.rope_base(), 1e6);
            assert_eq!(
                c.rope_theta.as_ref().unwrap().key,
                "rope_parameters.rope_theta"
            );
            assert_eq!(c.rope_scaling, None);
            assert_eq!(
                c.rms_eps.as_ref().map(|v| v.value),
                Some(9.999999974752427e-07)
            );
            assert_eq!(c.dtype.as_ref().map(|v| v.value.as_str()), Some("float32"));
            assert_eq!(c.dtype.as_ref().unwrap().key, "dtype");
            let class = if arch == "llama" {
                "LlamaForCausalLM"
            } else {
                "Qwen2ForCausalLM"
            };
            assert_eq!(c.hf_classes.as_ref().unwrap().value, vec![class.to_owned()]);
            // The span is the value's bytes.
            let s = c.hidden.as_ref().unwrap().span.unwrap();
            assert_eq!(&bytes[s.offset as usize..s.end() as usize], b"256");
            assert_eq!(c.hidden.as_ref().unwrap().key, "hidden_size");
        }
    }

    const CLASSIC: &str = r#"{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "vocab_size": 300, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
        "head_dim": 16, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        "architectures": ["LlamaForCausalLM"], "rope_theta": 500000.0, ROPE}"#;

    /// transformers 4's top-level `rope_theta` + `rope_scaling` and transformers 5's
    /// `rope_parameters` give one config.
    #[test]
    fn classic_and_rope_parameters_forms_agree() {
        let pairs = [
            (
                r#""rope_scaling": null"#,
                r#""rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}"#,
            ),
            (
                r#""rope_scaling": {"type": "linear", "factor": 4.0}"#,
                r#""rope_parameters": {"rope_theta": 500000.0, "rope_type": "linear", "factor": 4.0}"#,
            ),
            (
                r#""rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024}"#,
                r#""rope_parameters": {"rope_theta": 500000.0, "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024}"#,
            ),
            (
                r#""rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#,
                r#""rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#,
            ),
        ];
        for (classic, v5) in pairs {
            let a = read(&CLASSIC.replace("ROPE", classic));
            // transformers 5 has no top-level rope_theta.
            let b = read(
                &CLASSIC
                    .replace(r#""rope_theta": 500000.0, "#, "")
                    .replace("ROPE", v5)
                    .replace("torch_dtype", "dtype"),
            );
            assert!(
                a.problems.is_empty() && b.problems.is_empty(),
                "{:?} {:?}",
                a.problems,
                b.problems
            );
            assert_eq!(values(&a), values(&b), "{classic}");
            assert_eq!(a.rope_base(), 500000.0);
        }
        let yarn = read(&CLASSIC.replace("ROPE", pairs[2].1));
        assert_eq!(
            yarn.rope_scaling.map(|v| v.value),
            Some(RopeScaling {
                kind: "yarn".into(),
                factor: 4.0,
                original_context: Some(1024),
                attn_factor: 1.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
            })
        );
    }

    /// A key of the wrong JSON type is a problem naming the key, not a default.
    #[test]
    fn wrong_types_are_problems() {
        for (from, to, key) in [
            (
                r#""hidden_size": 64"#,
                r#""hidden_size": "64""#,
                "hidden_size",
            ),
            (
                r#""num_hidden_layers": 2"#,
                r#""num_hidden_layers": 2.5"#,
                "num_hidden_layers",
            ),
            (
                r#""num_key_value_heads": 2"#,
                r#""num_key_value_heads": -2"#,
                "num_key_value_heads",
            ),
            (
                r#""rms_norm_eps": 1e-5"#,
                r#""rms_norm_eps": "1e-5""#,
                "rms_norm_eps",
            ),
            (r#""head_dim": 16"#, r#""head_dim": [16]"#, "head_dim"),
            (
                r#""tie_word_embeddings": false"#,
                r#""tie_word_embeddings": "false""#,
                "tie_word_embeddings",
            ),
            (
                r#""torch_dtype": "bfloat16""#,
                r#""torch_dtype": 16"#,
                "torch_dtype",
            ),
            (
                r#""architectures": ["LlamaForCausalLM"]"#,
                r#""architectures": "LlamaForCausalLM""#,
                "architectures",
            ),
            (
                r#""model_type": "llama""#,
                r#""model_type": ["llama"]"#,
                "model_type",
            ),
            (
                r#""rope_theta": 500000.0"#,
                r#""rope_theta": "5e5""#,
                "rope_theta",
            ),
            ("ROPE", r#""rope_scaling": 4"#, "rope_scaling"),
            (
                "ROPE",
                r#""rope_scaling": {"type": "linear", "factor": "4"}"#,
                "rope_scaling.factor",
            ),
            (
                "ROPE",
                r#""rope_parameters": {"rope_type": 1}"#,
                "rope_parameters.rope_type",
            ),
            (
                "ROPE",
                r#""rope_parameters": {"rope_theta": "1e6"}"#,
                "rope_parameters.rope_theta",
            ),
            ("ROPE", r#""rope_parameters": [10000.0]"#, "rope_parameters"),
            (
                "ROPE",
                r#""rope_parameters": {"rope_theta": 10000.0}"#,
                "rope_theta, rope_parameters.rope_theta",
            ),
            ("ROPE", r#""dtype": "float16""#, "dtype, torch_dtype"),
            (
                "ROPE",
                r#""rope_parameters": {"full_attention": {"rope_theta": 1e6}, "sliding_attention": {"rope_theta": 1e4}}"#,
                "rope_parameters",
            ),
        ] {
            let text = CLASSIC
                .replace(from, to)
                .replace("ROPE", r#""rope_scaling": null"#);
            let text = if from == "ROPE" {
                CLASSIC.replace("ROPE", to)
            } else {
                text
            };
            let c = read(&text);
            let keys: Vec<&str> = c.problems.iter().map(|p| p.0.as_str()).collect();
            assert_eq!(keys, vec![key], "{to}");
            let clean = read(&CLASSIC.replace("ROPE", r#""rope_scaling": null"#));
            assert!(clean.problems.is_empty(), "{:?}", clean.problems);
        }
    }

    #[test]
    fn not_an_object_is_f060_with_offset() {
        for (text, offset) in [
            ("[1, 2]", 0),
            ("{\"a\": 1,}", 8),
            ("{\"a\": 1", 6),
            ("{} x", 3),
        ] {
            let e = read_config_json(text.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "APRL-F060", "{text}");
            assert_eq!(e.byte_offset(), Some(offset), "{text}: {e}");
        }
        let e = read_config_json(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!((e.code(), e.byte_offset()), ("APRL-F060", Some(7)));
    }

    #[test]
    fn repeated_key_is_a_warning_and_the_last_wins() {
        let r = read_config_json(br#"{"hidden_size": 32, "hidden_size": 64}"#).unwrap();
        assert_eq!(r.config.hidden.map(|v| v.value), Some(64));
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].code, "APRL-F008");
        assert_eq!(r.findings[0].byte_offset(), Some(35));
    }

    /// One code reads both: an APR whose metadata carries the `config.json` keys (as a producer that
    /// copies Hugging Face's config writes them) gives the same quantities, `rope_parameters` too.
    #[test]
    fn apr_metadata_with_the_same_keys_reads_the_same() {
        use crate::format::writer::apr::{AprWriter, Flavour};
        let bytes = fixture("tiny-llama-f32/config.json");
        let hf = read_config_json(&bytes).unwrap().config;
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes).unwrap();
        let mut w = AprWriter::new(Flavour::Aprender);
        for (k, v) in obj {
            w.meta(k, v);
        }
        let view = crate::model::ModelView::from_source(crate::format::Source::from_vec(
            w.to_bytes(),
            "m.apr",
        ))
        .expect("reads");
        let apr = view.config;
        assert!(apr.problems.is_empty(), "{:?}", apr.problems);
        // APR names the tie `tied_embeddings` and has no `dtype`/`architectures`.
        let strip = |mut c: Config| {
            c.tied = None;
            c.dtype = None;
            c.hf_classes = None;
            c
        };
        assert_eq!(values(&strip(hf)), values(&strip(apr.clone())));
        assert_eq!(apr.rope_base(), 1e6);
        assert_eq!(
            apr.rope_theta.map(|v| v.key).as_deref(),
            Some("rope_parameters.rope_theta")
        );
    }
}
