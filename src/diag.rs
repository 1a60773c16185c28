//! Shared vocabulary of every stage: byte spans, severities, lint metadata, findings and the
//! coded `ReadError` that stops the reading of a file.
//!
//! Takes nothing from the rest of the crate. Must not print, exit or know about any format.

use std::fmt;
use std::path::{Path, PathBuf};

/// An absolute byte range of a file: `offset` from the start of the file, `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    /// Bytes from the start of the file.
    pub offset: u64,
    /// Length in bytes (0: a position, not a range).
    pub len: u64,
}

impl Span {
    /// `len` bytes from `offset`.
    pub const fn new(offset: u64, len: u64) -> Self {
        Span { offset, len }
    }
    /// A position: `offset`, no length.
    pub const fn at(offset: u64) -> Self {
        Span { offset, len: 0 }
    }
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// How bad a finding is. Ordered `Info < Warning < Error`, so `max()` over a run's findings
/// is its worst; only `Error` fails a run (exit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; shown with `-v`.
    Info,
    /// Probably wrong or worth a look; does not fail the run.
    Warning,
    /// Wrong: the run fails (exit 1) and a loader should refuse the file.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`, as JSON and SARIF write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `explain`, the rule listing and SARIF know about one code. Every code the tool can emit has
/// exactly one `Lint`, listed in `registry.rs`.
#[derive(Debug)]
pub struct Lint {
    /// `APRL-` + stage letter + three digits. Never reused or renumbered.
    pub code: &'static str,
    /// Bug-class slug from `bug-classes.md`.
    pub class: &'static str,
    /// Default severity of its findings (before `-D/-W/-A` and the config).
    pub severity: Severity,
    /// One line, lowercase, no final period.
    pub summary: &'static str,
    /// Sections *What it catches / Why it matters / How to fix / Precedent*.
    pub explain: &'static str,
}

/// Declare a `pub static` [`Lint`]: `lint!(NAME, "APRL-X000", "class", Severity, "summary", "explain")`.
macro_rules! lint {
    ($name:ident, $code:literal, $class:literal, $sev:ident, $summary:literal, $explain:literal) => {
        #[doc = concat!("`", $code, "` (", $class, ", ", stringify!($sev), "): ", $summary, ".")]
        pub static $name: $crate::diag::Lint = $crate::diag::Lint {
            code: $code,
            class: $class,
            severity: $crate::diag::Severity::$sev,
            summary: $summary,
            explain: $explain,
        };
    };
}
pub(crate) use lint;

/// Something wrong (or worth knowing) in a file that could be read.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    /// `APRL-` + stage letter + three digits, as registered.
    pub code: &'static str,
    /// Severity after overrides.
    pub severity: Severity,
    /// The code's registered class, set from its [`Lint`] and never rewritten: a check that can
    /// conclude another class emits another code. Read it with [`Finding::class`].
    class: &'static str,
    /// What is wrong, with numbers: lowercase, no final period.
    pub message: String,
    /// The file it is about, as given on the command line.
    pub file: Option<String>,
    /// The tensor it is about, by its name in that file.
    pub tensor: Option<String>,
    /// The layer of that tensor, for per-layer roles.
    pub layer: Option<u32>,
    /// The bytes of the file it points at (absolute), where there are some.
    #[serde(skip)]
    pub span: Option<Span>,
    /// The fix, as a command or an action (may be empty).
    pub help: String,
    /// Machine-readable details (numbers compared, the transform found), as JSON writes them.
    pub evidence: Option<serde_json::Value>,
    /// What the help was made from, where a later check may narrow it (no report shows it).
    #[serde(skip)]
    pub help_from: Option<HelpFrom>,
    /// The metadata keys it is about, the one at fault first: a snippet of the file's metadata
    /// shows these (no report lists them).
    #[serde(skip)]
    pub keys: Vec<String>,
}

/// What a finding's help was made from, so that a later check can rewrite it without reading its
/// words: the pair check narrows the candidate config fixes of a file's own checks to the one the
/// reference agrees on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelpFrom {
    /// The config values the tensor shapes fit, on the finding about the config value itself.
    ConfigFits,
    /// The same values, on a shape mismatch they explain.
    ShapeFits,
}

impl PartialEq for Lint {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
    }
}

impl Finding {
    /// A finding with the lint's default severity and class.
    pub fn new(lint: &'static Lint, message: impl Into<String>) -> Self {
        Finding {
            code: lint.code,
            severity: lint.severity,
            class: lint.class,
            message: message.into(),
            file: None,
            tensor: None,
            layer: None,
            span: None,
            help: String::new(),
            evidence: None,
            help_from: None,
            keys: Vec::new(),
        }
    }
    /// Set the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }
    /// Set the help line and say what it was made from.
    pub fn help_from(mut self, from: HelpFrom, help: impl Into<String>) -> Self {
        self.help = help.into();
        self.help_from = Some(from);
        self
    }
    /// Point at `span`.
    pub fn span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }
    /// Name a metadata key it is about (the first named is the one at fault).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }
    /// Point at a metadata key's value: its key, and its bytes where there are some.
    pub fn at_key(self, key: impl Into<String>, span: Option<Span>) -> Self {
        let f = self.key(key);
        match span {
            Some(s) => f.span(s),
            None => f,
        }
    }
    /// Name the tensor.
    pub fn tensor(mut self, name: impl Into<String>) -> Self {
        self.tensor = Some(name.into());
        self
    }
    /// Name the layer.
    pub fn layer(mut self, layer: Option<u32>) -> Self {
        self.layer = layer;
        self
    }
    /// Name the file.
    pub fn file(mut self, path: &Path) -> Self {
        self.file = Some(path.display().to_string());
        self
    }
    /// Override the lint's default severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
    /// Attach machine-readable details.
    pub fn evidence(mut self, evidence: serde_json::Value) -> Self {
        self.evidence = Some(evidence);
        self
    }
    /// Where its span starts in the file.
    pub fn byte_offset(&self) -> Option<u64> {
        self.span.map(|s| s.offset)
    }
    /// The bug-class slug: always the class its code is registered with.
    pub fn class(&self) -> &'static str {
        self.class
    }
}

/// The file cannot be trusted: reading it stopped here. Always a container-level problem with a code
/// (`APRL-F…`), an absolute byte offset where one applies, and a help line.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadError {
    /// The container lint (`APRL-F…`) that stopped the read.
    pub lint: &'static Lint,
    /// What is wrong, with numbers.
    pub message: String,
    /// The file, once known.
    pub path: Option<PathBuf>,
    /// Where in the file reading stopped.
    pub span: Option<Span>,
    /// The fix (may be empty).
    pub help: String,
}

impl ReadError {
    /// An error of `lint` with no position yet.
    pub fn new(lint: &'static Lint, message: impl Into<String>) -> Self {
        ReadError {
            lint,
            message: message.into(),
            path: None,
            span: None,
            help: String::new(),
        }
    }
    /// At byte `offset`.
    pub fn at(mut self, offset: u64) -> Self {
        self.span = Some(Span::at(offset));
        self
    }
    /// Over the bytes of `span`.
    pub fn span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }
    /// Set the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }
    /// Name the file.
    pub fn with_path(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }
    /// Its `APRL-F…` code.
    pub fn code(&self) -> &'static str {
        self.lint.code
    }
    /// Where reading stopped, where known.
    pub fn byte_offset(&self) -> Option<u64> {
        self.span.map(|s| s.offset)
    }
    /// The same problem as a finding (for JSON reports of files that could not be read).
    pub fn to_finding(&self) -> Finding {
        let mut f = Finding::new(self.lint, self.message.clone())
            .help(self.help.clone())
            .severity(Severity::Error);
        f.span = self.span;
        if let Some(p) = &self.path {
            f = f.file(p);
        }
        f
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        f.write_str(&self.message)?;
        if let Some(off) = self.byte_offset() {
            write!(f, " (at byte offset {off} = {off:#x})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ReadError {}

impl miette::Diagnostic for ReadError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.lint.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.help.is_empty() {
            None
        } else {
            Some(Box::new(&self.help))
        }
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Error)
    }
}

/// Dims as every message and report prints them: `[896, 151936]` (comma and space).
pub fn fmt_dims(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// A float as a person reads it: the shortest text that reads back as the same value, of the `f32`
/// it was stored as when it is one (GGUF and APR store config floats as `f32`: `1e-6`, not
/// `0.0000009999999974752427`), in exponent form below 1e-3 and from 1e16.
pub fn fmt_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let small = x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e16);
    let as_f32 = x as f32;
    if as_f32 as f64 == x {
        if small {
            format!("{as_f32:e}")
        } else {
            format!("{as_f32}")
        }
    } else if small {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// `1 role`, `2 roles`: a count with its noun (plural by `s`).
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_shortest() {
        assert_eq!(fmt_float(1e-6f32 as f64), "1e-6");
        assert_eq!(fmt_float(1e-5), "1e-5");
        assert_eq!(fmt_float(1_000_000.0), "1000000");
        assert_eq!(fmt_float(0.5), "0.5");
        assert_eq!(fmt_float(0.1), "0.1");
        assert_eq!(fmt_float(0.1f32 as f64), "0.1");
        assert_eq!(fmt_float(f64::NAN), "NaN");
        assert_eq!(fmt_dims(&[5, 256]), "[5, 256]");
        assert_eq!(count(1, "role"), "1 role");
        assert_eq!(count(2, "role"), "2 roles");
    }
}
