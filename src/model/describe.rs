//! What a file's own records say, for the checks and reports that quote them: the tokenizer's
//! arrays as the file stores them, the APR-style `tensor_shapes` map, layout flags, the header and
//! metadata fields around a byte, a summary of the container for `inspect`.
//!
//! Returns neutral values (names, numbers, spans, lines of text); renders nothing and decides no
//! verdict. With `facts.rs`, the only place outside `format/` that looks inside a container.

use std::ops::Range;

use serde_json::json;

use super::ModelView;
use super::tokenizer::count_array;
use crate::diag::{Span, fmt_dims};
use crate::format::Container;
use crate::format::apr::{Footer, HEADER_LEN, flags};
use crate::format::gguf::Value;

pub use crate::format::gguf::ValueType as ElemType;

/// One of the tokenizer's parallel arrays as the file stores it.
#[derive(Clone, Debug)]
pub struct ArrayFact {
    pub len: u64,
    pub strings: bool,
    /// Element type, when the format types its arrays (None: not an array, or untyped JSON).
    pub elem: Option<ElemType>,
    pub span: Option<Span>,
}

/// The keys of the tokenizer's arrays in this file, and whether its loader holds them to a type.
#[derive(Clone, Copy, Debug)]
pub struct TokenizerKeys {
    pub merges: &'static str,
    pub scores: &'static str,
    pub types: &'static str,
    /// The loader checks array element types and refuses duplicate token strings (llama.cpp).
    pub strict: bool,
}

/// The records around a byte that is no tensor's: what they are and their decoded lines (the same
/// shape as a file that did not read decodes to, `format::partial`).
pub use crate::format::partial::{Line, Region};

fn line(field: impl Into<String>, value: impl Into<String>, label: Option<(String, bool)>) -> Line {
    Line {
        field: field.into(),
        value: value.into(),
        label,
    }
}

fn contains(outer: Span, at: u64) -> bool {
    at >= outer.offset && at < outer.end().max(outer.offset + 1)
}

fn bytes(s: Span) -> String {
    format!("bytes {}..{} ({} bytes)", s.offset, s.end(), s.len)
}

fn gguf_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 80 => {
            format!("{:?}…", s.chars().take(77).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Bool(x) => x.to_string(),
        Value::F32(x) => crate::diag::fmt_float(*x as f64),
        Value::F64(x) => crate::diag::fmt_float(*x),
        Value::Array(a) => format!("array of {} {:?}", a.len, a.elem).to_lowercase(),
        other => other.as_int().map(|i| i.to_string()).unwrap_or_default(),
    }
}

impl ModelView {
    /// The keys of the tokenizer's arrays, and how strictly the loader reads them.
    pub fn tokenizer_keys(&self) -> TokenizerKeys {
        match &self.container {
            Container::Gguf(_) => TokenizerKeys {
                merges: "tokenizer.ggml.merges",
                scores: "tokenizer.ggml.scores",
                types: "tokenizer.ggml.token_type",
                strict: true,
            },
            Container::Apr(_) => TokenizerKeys {
                merges: "tokenizer.merges",
                scores: "tokenizer.scores",
                types: "tokenizer.token_type",
                strict: false,
            },
            Container::Hf(_) => TokenizerKeys {
                merges: "model.merges",
                scores: "model.vocab",
                types: "added_tokens",
                strict: false,
            },
        }
    }

    /// The array stored under `key`, if any.
    pub fn tokenizer_array(&self, key: &str) -> Option<ArrayFact> {
        match &self.container {
            Container::Gguf(g) => {
                let kv = g.get(key)?;
                match &kv.value {
                    Value::Array(a) => Some(ArrayFact {
                        len: a.len,
                        strings: a.elem == ElemType::String,
                        elem: Some(a.elem),
                        span: Some(kv.span),
                    }),
                    _ => Some(ArrayFact {
                        len: 0,
                        strings: false,
                        elem: None,
                        span: Some(kv.span),
                    }),
                }
            }
            Container::Apr(f) => {
                let e = f.get(key)?;
                let raw = e.raw.get();
                if raw == "null" {
                    return None;
                }
                let span = Some(f.metadata_span);
                // The merge list was counted when the view was opened (`Tokenizer::read` counts
                // the same text the same way): a 150k-entry list is not walked again.
                let counted = match (key, self.tokenizer.n_merges) {
                    ("tokenizer.merges", Some(n)) => Some(n),
                    _ => count_array(raw),
                };
                Some(match counted {
                    Some(len) => ArrayFact {
                        len,
                        // Non-string elements are found when visiting: a JSON array of strings
                        // starts with `"` after `[` (or is empty).
                        strings: raw
                            .trim_start_matches('[')
                            .trim_start()
                            .starts_with(['"', ']']),
                        elem: None,
                        span,
                    },
                    None => ArrayFact {
                        len: 0,
                        strings: false,
                        elem: None,
                        span,
                    },
                })
            }
            // `tokenizer.json`: its reader checked the vocabulary (`APRL-F061`, `F063`) and wrote
            // each merge as `"left right"`; there are no parallel score or type arrays.
            Container::Hf(_) => {
                let t = self.hf_tokenizer.as_deref()?;
                (key == "model.merges" && !t.merges.is_empty()).then_some(ArrayFact {
                    len: t.merges.len() as u64,
                    strings: true,
                    elem: None,
                    span: None,
                })
            }
        }
    }

    /// The span of the token list's record, when the format gives each key its own.
    pub fn token_list_span(&self) -> Option<Span> {
        match &self.container {
            Container::Gguf(g) => g.get("tokenizer.ggml.tokens").map(|kv| kv.span),
            Container::Apr(_) | Container::Hf(_) => None,
        }
    }

    /// The file's `tensor_shapes` map (name → dims as JSON) and the span of the metadata holding it.
    pub fn tensor_shapes(&self) -> Option<(serde_json::Map<String, serde_json::Value>, Span)> {
        let Container::Apr(a) = &self.container else {
            return None;
        };
        match a.get_value("tensor_shapes") {
            Some(serde_json::Value::Object(m)) => Some((m, a.metadata_span)),
            _ => None,
        }
    }

    /// The header flags, when they say the weights are stored column-major.
    pub fn column_major_flags(&self) -> Option<u16> {
        match &self.container {
            Container::Apr(a) if a.header.flags & flags::LAYOUT_COLUMN_MAJOR != 0 => {
                Some(a.header.flags)
            }
            _ => None,
        }
    }

    /// The metadata span, when the metadata's `format` says the file is an entrenar training
    /// checkpoint (linear weights stored `[in, out]`).
    pub fn training_checkpoint(&self) -> Option<Span> {
        match &self.container {
            Container::Apr(a)
                if a.get_value("format")
                    .and_then(|v| v.as_str().map(|s| s == "entrenar-checkpoint"))
                    == Some(true) =>
            {
                Some(a.metadata_span)
            }
            _ => None,
        }
    }

    /// How to add a missing hyperparameter, in this format's keys.
    pub fn config_key_help(&self) -> &'static str {
        match &self.container {
            Container::Gguf(_) => "write the `<arch>.*` key llama.cpp reads",
            Container::Apr(_) => {
                "write the typed key (`hidden_size`, `num_layers`, `num_heads`, `vocab_size`, `intermediate_size`)"
            }
            Container::Hf(_) => {
                "write the key transformers reads into `config.json` (`hidden_size`, `num_hidden_layers`, `num_attention_heads`, `vocab_size`, `intermediate_size`)"
            }
        }
    }

    /// What a tensor's header record is called (`tensor info`, `tensor index entry`).
    pub fn tensor_record_name(&self) -> &'static str {
        match &self.container {
            Container::Gguf(_) => "tensor info",
            Container::Apr(_) => "tensor index entry",
            Container::Hf(_) => "SafeTensors header entry",
        }
    }

    /// The dims field of a tensor as its record names it, with its value (GGUF shows the canonical
    /// dims beside the reversed `ne`).
    pub fn dims_field(&self, t: &super::TensorView) -> (&'static str, String) {
        match &self.container {
            Container::Gguf(_) => (
                "ne",
                format!(
                    "{} (canonical dims {})",
                    fmt_dims(&t.file_dims),
                    fmt_dims(&t.dims)
                ),
            ),
            Container::Apr(_) => ("dims", fmt_dims(&t.file_dims)),
            Container::Hf(_) => ("shape", fmt_dims(&t.file_dims)),
        }
    }

    /// Container facts for `inspect --format json`: the key (`gguf`, `apr`) and its object.
    pub fn container_json(&self) -> (&'static str, serde_json::Value) {
        match &self.container {
            Container::Apr(a) => (
                "apr",
                json!({
                    "flags": a.header.flags, "flag_names": flags::names(a.header.flags),
                    "header_crc_ok": a.header.header_crc == a.header.computed_crc,
                    "footer": a.footer, "metadata_keys": a.metadata.len(),
                    "data_offset": a.header.data_offset,
                }),
            ),
            Container::Gguf(g) => (
                "gguf",
                json!({"alignment": g.alignment, "data_offset": g.data_offset, "metadata_keys": g.metadata.len()}),
            ),
            Container::Hf(h) => {
                let path =
                    |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
                (
                    "hf",
                    json!({
                        "dir": h.dir.display().to_string(),
                        "index": path(&h.index),
                        "files": h.files.iter().map(|f| json!({
                            "path": f.source.path().display().to_string(),
                            "bytes": f.source.len(),
                            "tensors": f.tensors.len(),
                            "data_offset": f.data.offset,
                            "metadata": f.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                        })).collect::<Vec<_>>(),
                        "config": path(&h.sidecars.config),
                        "tokenizer": path(&h.sidecars.tokenizer),
                        "tokenizer_config": path(&h.sidecars.tokenizer_config),
                        "generation_config": path(&h.sidecars.generation_config),
                    }),
                )
            }
        }
    }

    /// The header line `inspect` prints under the title (flags and checksums), if the format has one.
    pub fn header_summary(&self) -> Option<String> {
        if let Container::Hf(h) = &self.container {
            let name = |p: &std::path::Path| {
                p.file_name().map_or(p.display().to_string(), |n| {
                    n.to_string_lossy().into_owned()
                })
            };
            let files: Vec<String> = h.files.iter().map(|f| name(f.source.path())).collect();
            let sidecars: Vec<String> = [
                &h.sidecars.config,
                &h.sidecars.tokenizer,
                &h.sidecars.tokenizer_config,
                &h.sidecars.generation_config,
            ]
            .into_iter()
            .flatten()
            .map(|p| name(p))
            .collect();
            return Some(format!(
                "SafeTensors: {}{}; beside it: {}",
                files.join(", "),
                h.index
                    .as_deref()
                    .map(|i| format!(
                        " (index {}; offsets are within each tensor's shard)",
                        name(i)
                    ))
                    .unwrap_or_default(),
                if sidecars.is_empty() {
                    "no JSON files".to_owned()
                } else {
                    sidecars.join(", ")
                }
            ));
        }
        let Container::Apr(a) = &self.container else {
            return None;
        };
        Some(format!(
            "flags {:#06x} [{}], header CRC {}, {}",
            a.header.flags,
            flags::names(a.header.flags).join(" "),
            if a.header.header_crc == a.header.computed_crc {
                "ok"
            } else {
                "BAD"
            },
            match a.footer {
                Footer::Absent => "no footer".to_owned(),
                Footer::Valid => "footer CRC ok".to_owned(),
                Footer::Invalid { stored, computed } => format!(
                    "footer CRC BAD (stored {stored:#010x}, the bytes give {computed:#010x})"
                ),
                Footer::Unverified =>
                    "footer CRC not verified (large file; --verify-footer)".to_owned(),
            }
        ))
    }

    /// The header, metadata or footer record a byte that is no tensor's falls in, decoded. `here`
    /// labels the exact field; `keys` and `tensor` (a finding's) pick the metadata keys shown, the
    /// first key labelled as the primary.
    pub fn region_at(
        &self,
        span: Span,
        here: &str,
        keys: &[String],
        tensor: Option<&str>,
    ) -> Option<Region> {
        let here = || here.to_owned();
        match &self.container {
            Container::Gguf(g) => {
                if let Some((i, kv)) = g
                    .metadata
                    .iter()
                    .enumerate()
                    .find(|(_, kv)| contains(kv.span, span.offset))
                {
                    return Some(Region {
                        what: format!("metadata key {} of {}", i + 1, g.metadata.len()),
                        lines: vec![line(&kv.key, gguf_value(&kv.value), Some((here(), true)))],
                    });
                }
                if span.offset < 24 {
                    return Some(Region {
                        what: "GGUF header".into(),
                        lines: vec![
                            line("magic", "GGUF", Some((here(), true))),
                            line("version", g.version.to_string(), None),
                            line("tensors", g.tensors.len().to_string(), None),
                            line("keys", g.metadata.len().to_string(), None),
                        ],
                    });
                }
                None
            }
            Container::Apr(a) => {
                if span.offset < HEADER_LEN {
                    // apr-v2.md "Header": the byte range of each field, for the label.
                    let h = &a.header;
                    let fields: [(&str, Range<u64>, String); 8] = [
                        (
                            "magic",
                            0..4,
                            String::from_utf8_lossy(&h.magic)
                                .trim_end_matches('\0')
                                .to_owned(),
                        ),
                        (
                            "version",
                            4..6,
                            format!("{}.{}", h.version_major, h.version_minor),
                        ),
                        (
                            "flags",
                            6..8,
                            format!("{:#06x} [{}]", h.flags, flags::names(h.flags).join(" ")),
                        ),
                        ("tensors", 8..12, h.tensor_count.to_string()),
                        (
                            "metadata",
                            12..24,
                            bytes(Span::new(h.metadata_offset, h.metadata_size as u64)),
                        ),
                        ("index", 24..32, format!("byte {}", h.tensor_index_offset)),
                        ("data", 32..40, format!("byte {}", h.data_offset)),
                        (
                            "crc",
                            40..HEADER_LEN,
                            format!(
                                "{:#010x} (the header gives {:#010x})",
                                h.header_crc, h.computed_crc
                            ),
                        ),
                    ];
                    let lines = fields
                        .into_iter()
                        .map(|(name, range, value)| {
                            let label = range.contains(&span.offset).then(|| (here(), true));
                            line(name, value, label)
                        })
                        .collect();
                    return Some(Region {
                        what: "APR header".into(),
                        lines,
                    });
                }
                if contains(a.metadata_span, span.offset) {
                    // The finding's keys, in its order, decoded (the JSON text is kept per key).
                    let mut lines = Vec::new();
                    let mut shown = 0;
                    let mut named: Vec<&str> = Vec::new();
                    for k in keys {
                        if !named.contains(&k.as_str()) {
                            named.push(k);
                        }
                    }
                    let entries = named
                        .into_iter()
                        .filter_map(|k| a.metadata.iter().find(|e| e.key == k));
                    for e in entries {
                        if shown < 4 {
                            // A per-tensor map (`tensor_shapes`): the finding's tensor's entry.
                            let entry = tensor.and_then(|n| {
                                let v = e.parse()?;
                                let x = v.get(n)?;
                                let text = match x.as_array().map(|a| {
                                    a.iter()
                                        .map(serde_json::Value::as_u64)
                                        .collect::<Option<Vec<_>>>()
                                }) {
                                    Some(Some(d)) => fmt_dims(&d),
                                    _ => x.to_string(),
                                };
                                Some((format!("{}[\"{n}\"]:", e.key), text))
                            });
                            let (field, raw) = entry
                                .unwrap_or_else(|| (format!("{}:", e.key), e.raw.get().to_owned()));
                            let value: String = if raw.chars().count() > 80 {
                                raw.chars().take(77).collect::<String>() + "…"
                            } else {
                                raw
                            };
                            lines.push(line(
                                field,
                                value,
                                Some((format!("`{}`", e.key), shown == 0)),
                            ));
                            shown += 1;
                        }
                    }
                    lines.push(line(
                        "metadata",
                        format!(
                            "JSON, {} keys, {}",
                            a.metadata.len(),
                            bytes(a.metadata_span)
                        ),
                        Some((here(), shown == 0)),
                    ));
                    return Some(Region {
                        what: "APR metadata".into(),
                        lines,
                    });
                }
                let len = a.source.len();
                if a.footer != Footer::Absent && len >= 4 && span.offset >= len - 4 {
                    let value = match a.footer {
                        Footer::Invalid { stored, computed } => {
                            format!("CRC-32 {stored:#010x}; the file's bytes give {computed:#010x}")
                        }
                        Footer::Valid => "CRC-32 matches the file's bytes".into(),
                        _ => "CRC-32 (not verified)".into(),
                    };
                    return Some(Region {
                        what: "APR footer".into(),
                        lines: vec![line("footer", value, Some((here(), true)))],
                    });
                }
                None
            }
            Container::Hf(_) => None,
        }
    }
}
