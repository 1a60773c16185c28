//! GitHub Actions workflow commands: `::error file=<model>::<code> <message>`.

use std::fmt::Write as _;

use crate::diag::Severity;
use crate::pipeline::Outcome;

fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

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
            .or_else(|| o.inputs.first().map(|i| i.path.clone()))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "::{cmd} file={},title={}::{} {}",
            escape(&file).replace(',', "%2C"),
            f.code,
            f.code,
            escape(&f.message)
        );
    }
    s
}
