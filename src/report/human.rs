//! Human output through miette: each finding with its code, message, help and — where it has a byte
//! span — a snippet of a synthesized, decoded view of the bytes it points at (miette cannot show raw
//! binary, so the snippet is a hex dump of the span with the label on the exact field), then a
//! one-line summary.

use std::fmt::Write as _;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan,
};

use crate::diag::{Finding, Severity};
use crate::format::Source;
use crate::pipeline::{Outcome, Verdict};

struct Shown<'a> {
    f: &'a Finding,
    src: Option<NamedSource<String>>,
    label: Option<LabeledSpan>,
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
        Some(Box::new(format!("{} {}", self.f.code, self.f.class)))
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
        self.label
            .clone()
            .map(|l| Box::new(std::iter::once(l)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

/// A hex view of up to 48 bytes around `span`, with the label over the span's own bytes.
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
    let name = f.file.clone().unwrap_or_default();
    Some((
        NamedSource::new(name, text),
        LabeledSpan::new_with_span(Some(label), SourceSpan::from(lab_start..lab_end)),
    ))
}

pub fn render(o: &Outcome, sources: &[Source], color: bool, verbose: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(110);
    let mut s = String::new();
    for f in &o.findings {
        if f.severity == Severity::Info && !verbose && f.code != "APRL-T001" {
            continue;
        }
        let src = sources
            .iter()
            .find(|x| f.file.as_deref() == Some(&x.path().display().to_string()));
        let (src, label) = match src.and_then(|x| hex_view(x, f)) {
            Some((a, b)) => (Some(a), Some(b)),
            None => (None, None),
        };
        let shown = Shown { f, src, label };
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
    let _ = writeln!(s, "{}", o.values.describe());
    let infos = o.count(Severity::Info);
    let verdict = match o.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Inconclusive => "INCONCLUSIVE",
    };
    let _ = writeln!(
        s,
        "{verdict}: {} error(s), {} warning(s), {} info(s){}; {} tensors compared in {} ms",
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
    );
    s
}
