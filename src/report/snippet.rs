//! What the bytes a finding points at mean: the decoded record around its byte span, as a few lines
//! of text with labels on the exact field (cli.md: "binary spans render through one decoded view").
//!
//! A tensor finding shows the tensor's index entry (name, dtype, dims, data offset, size) with its
//! data span as a second label; a metadata finding the decoded `key: value`; a container finding
//! the header fields. Everything comes from the readers' records (`ModelView`, `GgufFile`,
//! `AprFile`); nothing here parses bytes. Spans nothing decodes fall back to a short hex view.

use std::fmt::Write as _;
use std::ops::Range;

use crate::diag::{Finding, Span, fmt_dims};
use crate::format::Container;
use crate::format::apr::{Footer, HEADER_LEN, flags};
use crate::format::gguf::Value;
use crate::model::{ModelView, TensorView};

/// A decoded view of the record a span falls in.
#[derive(Clone, Debug, PartialEq)]
pub struct Snippet {
    /// What the lines show and where the span starts: `m.apr, tensor index entry, byte 6866 (0x1ad2)`.
    pub title: String,
    pub text: String,
    /// Byte ranges of `text` with their label; the first is the primary one.
    pub labels: Vec<(Range<usize>, String)>,
}

struct Builder {
    text: String,
    labels: Vec<(Range<usize>, String)>,
    /// The primary label, put first when done.
    primary: Option<(Range<usize>, String)>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            text: String::new(),
            labels: Vec::new(),
            primary: None,
        }
    }
    /// Add `field value`; returns the byte range of the value in the text.
    fn line(&mut self, field: &str, value: &str) -> Range<usize> {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        let _ = write!(self.text, "{field:<8} ");
        let start = self.text.len();
        self.text.push_str(value);
        start..self.text.len()
    }
    fn label(&mut self, at: Range<usize>, text: String, primary: bool) {
        if primary && self.primary.is_none() {
            self.primary = Some((at, text));
        } else {
            self.labels.push((at, text));
        }
    }
    fn done(mut self, title: String) -> Snippet {
        if let Some(p) = self.primary.take() {
            self.labels.insert(0, p);
        }
        Snippet {
            title,
            text: self.text,
            labels: self.labels,
        }
    }
}

fn contains(outer: Span, at: u64) -> bool {
    at >= outer.offset && at < outer.end().max(outer.offset + 1)
}

fn where_(span: Span) -> String {
    if span.len > 1 {
        format!("byte {} (+{} bytes)", span.offset, span.len)
    } else {
        format!("byte {}", span.offset)
    }
}

fn bytes(s: Span) -> String {
    format!("bytes {}..{} ({} bytes)", s.offset, s.end(), s.len)
}

/// The decoded record `f`'s span falls in, in `view`'s file.
pub fn decode(view: &ModelView, f: &Finding) -> Option<Snippet> {
    let span = f.span?;
    let file = view.path().display().to_string();
    let title = |what: &str| format!("{file}, {what}, byte {} ({:#x})", span.offset, span.offset);
    // A tensor: the span is in its index record or its data.
    let by_record = view
        .tensors
        .iter()
        .position(|t| contains(t.record, span.offset));
    let by_data = || {
        view.tensors.iter().position(|t| {
            contains(t.data, span.offset) && f.tensor.as_deref().is_none_or(|n| n == t.name)
        })
    };
    if let Some(i) = by_record.or_else(by_data) {
        let what = if by_record.is_none() {
            "tensor data"
        } else {
            match view.container {
                Container::Gguf(_) => "tensor info",
                Container::Apr(_) => "tensor index entry",
            }
        };
        return Some(tensor(view, i, span).done(title(what)));
    }
    match &view.container {
        Container::Gguf(g) => {
            if let Some((i, kv)) = g
                .metadata
                .iter()
                .enumerate()
                .find(|(_, kv)| contains(kv.span, span.offset))
            {
                let mut b = Builder::new();
                let at = b.line(&kv.key, &gguf_value(&kv.value));
                b.label(at, where_(span), true);
                return Some(b.done(title(&format!(
                    "metadata key {} of {}",
                    i + 1,
                    g.metadata.len()
                ))));
            }
            if span.offset < 24 {
                let mut b = Builder::new();
                let at = b.line("magic", "GGUF");
                b.label(at, where_(span), true);
                b.line("version", &g.version.to_string());
                b.line("tensors", &g.tensors.len().to_string());
                b.line("keys", &g.metadata.len().to_string());
                return Some(b.done(title("GGUF header")));
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
                let mut b = Builder::new();
                for (name, range, value) in fields {
                    let at = b.line(name, &value);
                    if range.contains(&span.offset) {
                        b.label(at, where_(span), true);
                    }
                }
                return Some(b.done(title("APR header")));
            }
            if contains(a.metadata_span, span.offset) {
                // The keys the message names, decoded (the JSON text is kept per key).
                let mut b = Builder::new();
                let mut shown = 0;
                for e in &a.metadata {
                    if shown < 4 && f.message.contains(&format!("`{}`", e.key)) {
                        // A per-tensor map (`tensor_shapes`): the finding's tensor's entry.
                        let entry = f.tensor.as_ref().and_then(|n| {
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
                        let at = b.line(&field, &value);
                        b.label(at, format!("`{}`", e.key), shown == 0);
                        shown += 1;
                    }
                }
                let at = b.line(
                    "metadata",
                    &format!(
                        "JSON, {} keys, {}",
                        a.metadata.len(),
                        bytes(a.metadata_span)
                    ),
                );
                b.label(at, where_(span), shown == 0);
                return Some(b.done(title("APR metadata")));
            }
            let len = a.source.len();
            if a.footer != Footer::Absent && len >= 4 && span.offset >= len - 4 {
                let mut b = Builder::new();
                let at = b.line(
                    "footer",
                    &match a.footer {
                        Footer::Invalid { stored, computed } => {
                            format!("CRC-32 {stored:#010x}; the file's bytes give {computed:#010x}")
                        }
                        Footer::Valid => "CRC-32 matches the file's bytes".into(),
                        _ => "CRC-32 (not verified)".into(),
                    },
                );
                b.label(at, where_(span), true);
                return Some(b.done(title("APR footer")));
            }
            None
        }
    }
}

fn tensor(view: &ModelView, i: usize, span: Span) -> Builder {
    let t: &TensorView = &view.tensors[i];
    let mut b = Builder::new();
    let name = b.line(
        "name",
        &format!("{} (#{} of {})", t.name, i + 1, view.tensors.len()),
    );
    let code = t
        .apr_dtype
        .as_ref()
        .map(|r| format!(" (code {})", r.code))
        .unwrap_or_default();
    let dtype = b.line("dtype", &format!("{}{code}", t.dtype.name()));
    let dims = match view.container {
        Container::Gguf(_) => b.line(
            "ne",
            &format!(
                "{} (canonical dims {})",
                fmt_dims(&t.file_dims),
                fmt_dims(&t.dims)
            ),
        ),
        Container::Apr(_) => b.line("dims", &fmt_dims(&t.file_dims)),
    };
    let data = b.line(
        "data",
        &format!("offset {}, size {}", t.data.offset, t.data.len),
    );
    let here = where_(span);
    if contains(t.dims_span, span.offset) {
        b.label(dims, format!("{here}: the dims"), true);
    } else if contains(t.data, span.offset) && !contains(t.record, span.offset) {
        b.label(data.clone(), format!("{here}: in the data"), true);
    } else if span.offset > t.dims_span.end() && span.offset < t.record.end() {
        b.label(dtype, here, true);
    } else {
        b.label(name, format!("{here}: this entry"), true);
    }
    if !contains(t.data, span.offset) {
        b.label(data, format!("the data: {}", bytes(t.data)), false);
    }
    b
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
