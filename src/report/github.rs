//! GitHub Actions workflow commands: `::error file=<model>,title=<code>::<code> <message>`, one per
//! finding (a fatal error included), `::warning` / `::notice` for the others.

use std::fmt::Write as _;

use crate::diag::Severity;
use crate::pipeline::Outcome;

/// Escape a command's message (data).
fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a command property value (`file=`, `title=`).
fn escape_property(s: &str) -> String {
    escape(s).replace(':', "%3A").replace(',', "%2C")
}

/// `--format github`: one workflow command (`::error file=…::`) per finding, then the verdict.
pub fn outcome(o: &Outcome) -> String {
    let mut s = String::new();
    for f in &o.findings {
        let cmd = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let file = f
            .file
            .clone()
            .or_else(|| o.inputs.first().map(|i| i.path.clone()));
        let file = file
            .filter(|p| !p.is_empty())
            .map(|p| format!("file={},", escape_property(&p)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "::{cmd} {file}title={}::{} {}",
            f.code,
            f.code,
            escape(&f.message)
        );
    }
    s
}

/// A `::notice` on a file (batch mode: a file linted alone, a skipped path).
pub fn notice(file: &str, message: &str) -> String {
    format!(
        "::notice file={},title=apr-lint::{}\n",
        escape_property(file),
        escape(message)
    )
}
