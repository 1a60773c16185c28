//! Human output through miette: each finding with its code, message, help and — where it has a byte
//! span — a snippet of what the bytes it points at mean (`snippet.rs`: the tensor's index entry, the
//! metadata `key: value`, the header fields; a hex dump only where nothing decodes them), titled
//! with the file and byte offset, then a one-line summary.

use std::fmt::Write as _;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan,
};

use crate::diag::{Finding, Severity};
use crate::format::Source;
use crate::model::ModelView;
use crate::pipeline::Outcome;

struct Shown<'a> {
    f: &'a Finding,
    src: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
}

impl std::fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.f.message)
    }
}
impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.f.message)
    }
}
impl std::error::Error for Shown<'_> {}
impl Diagnostic for Shown<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("{} {}", self.f.code, self.f.class())))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.f.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (!self.f.help.is_empty()).then(|| Box::new(&self.f.help) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty())
            .then(|| Box::new(self.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

/// The decoded record the finding's span falls in, titled with the file and byte offset.
fn decoded_view(view: &ModelView, f: &Finding) -> Option<(NamedSource<String>, Vec<LabeledSpan>)> {
    crate::report::snippet::decode(view, f).map(to_miette)
}

/// A snippet as miette's source and labels (the first label primary).
fn to_miette(sn: crate::report::snippet::Snippet) -> (NamedSource<String>, Vec<LabeledSpan>) {
    let labels = sn
        .labels
        .iter()
        .enumerate()
        .map(|(i, (r, text))| {
            let span = SourceSpan::from(r.clone());
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(text.clone()), span)
            }
        })
        .collect();
    (NamedSource::new(sn.title, sn.text), labels)
}

/// The report handler: no line:column (the snippet's title carries the file and byte offset; a
/// line:column means nothing in a binary).
fn handler(color: bool) -> GraphicalReportHandler {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    GraphicalReportHandler::new_themed(theme)
        .with_width(110)
        .with_context_lines(8)
        .without_primary_span_start()
}

/// A hex view of up to 48 bytes around `span`, with the label over the span's own bytes (for spans
/// no record decodes).
fn hex_view(src: &Source, f: &Finding) -> Option<(NamedSource<String>, LabeledSpan)> {
    let span = f.span?;
    let file_len = src.len();
    if span.offset > file_len {
        return None;
    }
    let shown_len = span
        .len
        .clamp(1, 32)
        .min(file_len.saturating_sub(span.offset));
    let start = span.offset.saturating_sub(8);
    let end = (span.offset + shown_len + 8).min(file_len);
    let bytes = src.slice(start, end - start)?;
    let mut text = format!("{:#010x}: ", start);
    let mut lab_start = 0;
    let mut lab_end = 0;
    for (i, b) in bytes.iter().enumerate() {
        let off = start + i as u64;
        if off == span.offset {
            lab_start = text.len();
        }
        let _ = write!(text, "{b:02x}");
        if off + 1 == span.offset + shown_len {
            lab_end = text.len();
        }
        text.push(' ');
    }
    if lab_end <= lab_start {
        lab_end = text.len().min(lab_start + 2);
    }
    let label = if span.len > shown_len {
        format!("byte {} (+{} bytes)", span.offset, span.len)
    } else {
        format!("byte {}", span.offset)
    };
    let name = format!(
        "{}, byte {} ({:#x})",
        f.file.clone().unwrap_or_default(),
        span.offset,
        span.offset
    );
    Some((
        NamedSource::new(name, text),
        LabeledSpan::new_with_span(Some(label), SourceSpan::from(lab_start..lab_end)),
    ))
}

/// The human report of the main job; `views` are the files the findings name.
pub fn render(o: &Outcome, views: &[&ModelView], color: bool, verbose: bool) -> String {
    let handler = handler(color);
    let mut s = String::new();
    for f in &o.findings {
        if f.severity == Severity::Info && !verbose && f.code != "APRL-T001" {
            continue;
        }
        let view = views
            .iter()
            .find(|v| f.file.as_deref().is_some_and(|file| v.has_file(file)));
        let (src, labels) = match view.and_then(|v| decoded_view(v, f)) {
            Some((a, b)) => (Some(a), b),
            None => match view
                .and_then(|v| v.source_for_span(f.tensor.as_deref()))
                .and_then(|src| hex_view(src, f))
            {
                Some((a, b)) => (Some(a), vec![b]),
                None => (None, Vec::new()),
            },
        };
        let shown = Shown { f, src, labels };
        let _ = handler.render_report(&mut s, &shown);
        s.push('\n');
    }
    let ros = crate::report::rosetta::render(o);
    if !ros.is_empty() {
        s.push_str(&ros);
        s.push('\n');
    }
    if let Some(r) = crate::report::rosetta::recommendation(o) {
        let _ = writeln!(s, "{r}");
    }
    if let Some(c) = &o.config {
        let _ = writeln!(s, "config: {}", c.describe());
    }
    if let Some(v) = o.value_checks() {
        let _ = writeln!(s, "{}", v.describe());
    }
    s.push_str(&summary_line(o, verbose));
    s
}

/// The one verdict line (the line `-q` keeps): `PASS: 0 error(s), …`, its word from `Verdict::word`.
pub fn summary_line(o: &Outcome, verbose: bool) -> String {
    let infos = o.count(Severity::Info);
    format!(
        "{}: {} error(s), {} warning(s), {} info(s){}; {} tensors compared in {} ms\n",
        o.verdict.word(),
        o.count(Severity::Error),
        o.count(Severity::Warning),
        infos,
        if infos > 0 && !verbose {
            " (-v shows infos)"
        } else {
            ""
        },
        o.tensors_compared,
        o.elapsed_ms
    )
}

/// A fatal error (exit 2) for stderr: the code, `file: message (at byte offset …)`, the decoded
/// record at that byte (the file did not read: decoded leniently, as far as it can be followed),
/// the help.
pub fn render_error(f: &Finding, color: bool) -> String {
    let mut message = match &f.file {
        Some(p) => format!("{p}: {}", f.message),
        None => f.message.clone(),
    };
    if let Some(off) = f.byte_offset() {
        let _ = write!(message, " (at byte offset {off} = {off:#x})");
    }
    let mut shown_f = f.clone();
    shown_f.message = message;
    let (src, labels) = match crate::report::snippet::decode_unreadable(f).map(to_miette) {
        Some((src, labels)) => (Some(src), labels),
        None => (None, Vec::new()),
    };
    let shown = Shown {
        f: &shown_f,
        src,
        labels,
    };
    let mut s = String::new();
    let _ = handler(color).render_report(&mut s, &shown);
    s
}
