//! What the bytes a finding points at mean: the decoded record around its byte span, as a few lines
//! of text with labels on the exact field (cli.md: "binary spans render through one decoded view").
//!
//! A tensor finding shows the tensor's index entry (name, dtype, dims, data offset, size) with its
//! data span as a second label; a metadata finding the decoded `key: value`; a container finding
//! the header fields. Everything comes from the view (`ModelView::region_at` decodes the
//! records around a byte); nothing here parses bytes. Spans nothing decodes fall back to a short hex view.
//! A file that did not read (a fatal error) is decoded leniently by `format::partial` around the
//! byte reading stopped at: the same kind of lines, titled the same way.

use std::fmt::Write as _;
use std::ops::Range;

use crate::diag::{Finding, Span};
use crate::model::{ModelView, TensorView};

/// A decoded view of the record a span falls in.
#[derive(Clone, Debug, PartialEq)]
pub struct Snippet {
    /// What the lines show and where the span starts: `m.apr, tensor index entry, byte 6866 (0x1ad2)`.
    pub title: String,
    /// The decoded lines.
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
            view.tensor_record_name()
        };
        return Some(tensor(view, i, span).done(title(what)));
    }
    let region = view.region_at(span, &where_(span), &f.keys, f.tensor.as_deref())?;
    Some(lines(&region).done(title(&region.what)))
}

/// The record a fatal error's span falls in, in the file it names (which did not read), decoded
/// leniently.
pub fn decode_unreadable(f: &Finding) -> Option<Snippet> {
    let span = f.span?;
    let file = f.file.as_deref()?;
    let region =
        crate::format::partial::region_at(std::path::Path::new(file), span, &where_(span))?;
    let title = format!(
        "{file}, {}, byte {} ({:#x})",
        region.what, span.offset, span.offset
    );
    Some(lines(&region).done(title))
}

fn lines(region: &crate::model::describe::Region) -> Builder {
    let mut b = Builder::new();
    for l in &region.lines {
        let at = b.line(&l.field, &l.value);
        if let Some((text, primary)) = &l.label {
            b.label(at, text.clone(), *primary);
        }
    }
    b
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
    let (field, value) = view.dims_field(t);
    let dims = b.line(field, &value);
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
