//! Batch mode's combined report (`apr-lint PATH…` with several files or a directory): each job's
//! own report, the skipped paths, then a table (human); one entry per job plus a summary (JSON); one
//! SARIF run with every result; GitHub annotations per file. The verdict is the worst job's.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::batch::{Job, Note, Pairing};
use crate::config::ConfigInfo;
use crate::diag::Severity;
use crate::pipeline::{JobOutcome, Verdict};

/// The batch's verdict: the worst of its jobs'; no job at all (no model found) is inconclusive.
pub fn verdict<T>(results: &[JobOutcome<T>]) -> Verdict {
    if results.is_empty() {
        return Verdict::Inconclusive;
    }
    Verdict::worst(results.iter().map(|r| r.outcome.verdict))
}

fn shown(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// `model.apr against model.gguf (same stem)`, `other.apr alone (not compared: …)`.
pub fn title(job: &Job) -> String {
    match (&job.reference, job.pairing) {
        (Some(r), how) => format!(
            "{} against {} ({}{})",
            shown(&job.test),
            shown(r),
            how.as_str().replace('-', " "),
            job.note
                .as_ref()
                .map(|n| format!(", {n}"))
                .unwrap_or_default()
        ),
        (None, _) => match &job.note {
            Some(n) => format!("{} alone ({n})", shown(&job.test)),
            None => shown(&job.test),
        },
    }
}

/// The table the human report ends with: file, reference, verdict, errors, warnings, time.
pub fn table<T>(results: &[JobOutcome<T>], timings: bool) -> String {
    let head = ["file", "reference", "verdict", "errors", "warnings", "time"];
    let rows: Vec<[String; 6]> = results
        .iter()
        .map(|r| {
            let o = &r.outcome;
            [
                shown(&r.job.test),
                match (&r.job.reference, r.job.pairing) {
                    (Some(p), _) => shown(p),
                    (None, Pairing::Unpaired) => "(alone)".into(),
                    (None, _) => "-".into(),
                },
                o.verdict.word().to_string(),
                o.count(Severity::Error).to_string(),
                o.count(Severity::Warning).to_string(),
                format!("{} ms", if timings { r.elapsed_ms } else { 0 }),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, cells: [&str; 6]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w - c.chars().count();
            // Numbers right-aligned, words left-aligned.
            if i >= 3 {
                let _ = write!(l, "{}{c}  ", " ".repeat(pad));
            } else {
                let _ = write!(l, "{c}{}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(s, "{}", l.trim_end());
    };
    line(&mut s, head);
    for row in &rows {
        line(&mut s, row.each_ref().map(String::as_str));
    }
    s
}

/// The last line: the batch's verdict word and counts.
pub fn summary_line<T>(results: &[JobOutcome<T>], elapsed_ms: u128) -> String {
    let count = |v: Verdict| results.iter().filter(|r| r.outcome.verdict == v).count();
    let compared = results.iter().filter(|r| r.job.reference.is_some()).count();
    format!(
        "{}: {} file(s): {} pass, {} fail, {} error, {} inconclusive; {} pair(s) compared, {} file(s) alone, in {} ms\n",
        verdict(results).word(),
        results.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::Inconclusive),
        compared,
        results.len() - compared,
        elapsed_ms
    )
}

/// The human report: `sections` holds each job's own report (in job order), then the skipped
/// paths, the table and the summary line. `quiet`: the table and the summary line only.
pub fn human<T>(
    results: &[JobOutcome<T>],
    sections: &[String],
    notes: &[Note],
    elapsed_ms: u128,
    timings: bool,
    quiet: bool,
) -> String {
    let mut s = String::new();
    if !quiet {
        for (r, text) in results.iter().zip(sections) {
            let _ = writeln!(s, "── {} ──\n", title(&r.job));
            s.push_str(text);
            s.push('\n');
        }
        for n in notes {
            let _ = writeln!(s, "{}: {}", n.path, n.message);
        }
        if !notes.is_empty() {
            s.push('\n');
        }
    }
    s.push_str(&table(results, timings));
    s.push_str(&summary_line(results, elapsed_ms));
    s
}

/// `--format json`: one entry per job (the single run's envelope, with `test`, `reference`,
/// `pairing` and `note`), the skipped paths, and a summary.
pub fn json<T>(
    results: &[JobOutcome<T>],
    notes: &[Note],
    config: Option<&ConfigInfo>,
    elapsed_ms: u128,
    timings: bool,
) -> Value {
    let pairs: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut e = crate::report::json::outcome(&r.outcome, timings);
            let mut entry = json!({
                "test": shown(&r.job.test),
                "reference": r.job.reference.as_deref().map(shown),
                "pairing": r.job.pairing,
                "note": r.job.note,
                "elapsed_ms": if timings { r.elapsed_ms } else { 0 },
            });
            if let (Some(e), Some(entry)) = (e.as_object_mut(), entry.as_object_mut()) {
                for k in ["schema_version", "tool", "config"] {
                    e.remove(k);
                }
                entry.extend(std::mem::take(e));
            }
            entry
        })
        .collect();
    let count = |v: Verdict| results.iter().filter(|r| r.outcome.verdict == v).count();
    let sum = |s: Severity| -> usize { results.iter().map(|r| r.outcome.count(s)).sum() };
    json!({
        "schema_version": 1,
        "tool": {"name": "apr-lint", "version": env!("CARGO_PKG_VERSION")},
        "mode": "batch",
        "config": config,
        "pairs": pairs,
        "skipped": notes,
        "summary": {
            "verdict": verdict(results),
            "files": results.len(),
            "compared": results.iter().filter(|r| r.job.reference.is_some()).count(),
            "alone": results.iter().filter(|r| r.job.reference.is_none()).count(),
            "pass": count(Verdict::Pass),
            "fail": count(Verdict::Fail),
            "error": count(Verdict::Error),
            "inconclusive": count(Verdict::Inconclusive),
            "errors": sum(Severity::Error),
            "warnings": sum(Severity::Warning),
            "infos": sum(Severity::Info),
            "elapsed_ms": if timings { elapsed_ms } else { 0 },
        }
    })
}

/// `--format sarif`: one run holding every job's results (a finding without a file is placed on
/// its job's file under test), the batch's exit code, and each job's verdict in the run's
/// properties.
pub fn sarif<T>(results: &[JobOutcome<T>], notes: &[Note]) -> Value {
    let outcomes: Vec<&crate::pipeline::Outcome> = results.iter().map(|r| &r.outcome).collect();
    let properties = json!({
        "pairs": results.iter().map(|r| json!({
            "test": shown(&r.job.test),
            "reference": r.job.reference.as_deref().map(shown),
            "pairing": r.job.pairing,
            "verdict": r.outcome.verdict,
            "value_checks": r.outcome.value_checks(),
        })).collect::<Vec<_>>(),
        "skipped": notes,
    });
    crate::report::sarif::run_of(&outcomes, verdict(results), properties)
}

/// `--format github`: each job's annotations (on its own files), a notice for each file linted
/// alone and for each skipped path.
pub fn github<T>(results: &[JobOutcome<T>], notes: &[Note]) -> String {
    let mut s = String::new();
    for r in results {
        let mut o = r.outcome.clone();
        if o.inputs.is_empty() {
            // A job whose file could not be read: its annotation goes on that file.
            for f in &mut o.findings {
                if f.file.is_none() {
                    *f = f.clone().file(&r.job.test);
                }
            }
        }
        s.push_str(&crate::report::github::outcome(&o));
        if r.job.reference.is_none()
            && let Some(n) = &r.job.note
        {
            s.push_str(&crate::report::github::notice(&shown(&r.job.test), n));
        }
    }
    for n in notes {
        s.push_str(&crate::report::github::notice(&n.path, &n.message));
    }
    s
}
