//! The always-on `[APR-LOAD]` log (cli.md, "Always-on load log"): one summary line per APR file,
//! and three lines per tensor whose result is not OK (every tensor with `Mode::Full`).
//!
//! The word on a tensor's last line comes from the findings that name it — the final result of the
//! run that made them (static checks, weight comparison, probe) — through one table from bug class
//! to word ([`WORDS`]; a shape mismatch one config value explains is [`METADATA_WRONG`]); the log
//! never judges a tensor on its own. Takes a view, its rules and the
//! findings; returns text lines (to a sink, so a loader can route them to its own logger).

use std::collections::BTreeMap;

use crate::diag::{Finding, HelpFrom, Severity};
use crate::model::ModelView;
use crate::rules::{Resolved, RuleSet};

/// How much of the log to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The three lines for each tensor that is not OK, then one summary line (the default).
    #[default]
    Summary,
    /// The three lines for every tensor, then the summary line (`-v`, `--load-log full`).
    Full,
}

/// Bug class → the word the log prints for a tensor with a finding of that class, most specific
/// first (when a tensor has several findings of the same severity, the earliest class here wins).
/// README ("The `[APR-LOAD]` log") lists the same words.
pub const WORDS: &[(&str, &str)] = &[
    ("dims-reversed", "DIMS REVERSED"),
    ("transposed", "TRANSPOSE NEEDED"),
    ("column-major", "COLUMN-MAJOR"),
    ("rope-permuted", "ROPE PERMUTED"),
    ("rope-permuted-wrong-heads", "ROPE PERMUTED (WRONG HEADS)"),
    ("swapped-tensors", "SWAPPED"),
    ("shape-mismatch", "SHAPE MISMATCH"),
    ("dtype-mislabeled", "DTYPE MISLABELED"),
    ("ambiguous-dtype-code", "AMBIGUOUS DTYPE"),
    ("quant-block-corrupt", "CORRUPT BLOCKS"),
    ("non-finite", "NON-FINITE"),
    ("tied-embedding", "TIED EMBEDDING"),
    ("tokenizer-mismatch", "TOKENIZER MISMATCH"),
    ("degenerate", "DEGENERATE"),
    ("value-mismatch", "VALUES DIFFER"),
    ("missing-tensor", "MISSING"),
    ("unexpected-tensor", "UNEXPECTED"),
    ("metadata-mismatch", "METADATA MISMATCH"),
    ("container", "CORRUPT"),
];

/// The word of a shape mismatch that one wrong config value explains (the finding's help is the
/// metadata fix, [`HelpFrom::ShapeFits`]): with a `num_heads` of 8 where the weights were made with
/// 4, every K and V projection misfits the rules, but the tensors are right and the metadata is not.
/// Ranked with `shape-mismatch`.
pub const METADATA_WRONG: &str = "METADATA WRONG";

/// The word of a tensor every check passed.
pub const OK: &str = "OK";
/// The word of a tensor no rule covers and no finding names.
pub const UNCHECKED: &str = "UNCHECKED";

/// One tensor's entry in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadLine<'a> {
    /// The tensor's name.
    pub name: &'a str,
    /// Canonical dims (APR: as stored).
    pub dims: &'a [u64],
    /// Its dtype's name.
    pub dtype: &'static str,
    /// The layout its role expects, in words.
    pub expected_layout: &'static str,
    /// The role's dims by the rules, when they differ from `dims`.
    pub expected_dims: Option<Vec<u64>>,
    /// `OK`, `UNCHECKED`, [`METADATA_WRONG`] or a word of [`WORDS`].
    pub word: &'static str,
    /// The code of the finding the word comes from.
    pub code: Option<&'static str>,
}

impl LoadLine<'_> {
    /// Whether the three lines are printed in `Mode::Summary`.
    pub fn is_flagged(&self) -> bool {
        self.word != OK && self.word != UNCHECKED
    }
}

/// The word for a tensor from the findings that name it: the most severe finding (warnings and
/// errors; infos do not make a tensor not OK), the earliest class of [`WORDS`] among equals; a
/// shape mismatch one config value explains is [`METADATA_WRONG`].
pub fn word_of<'f>(
    findings: impl IntoIterator<Item = &'f Finding>,
) -> Option<(&'static str, &'static str)> {
    findings
        .into_iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| {
            let rank = WORDS
                .iter()
                .position(|(c, _)| *c == f.class())
                .unwrap_or(WORDS.len());
            let word = match f.help_from {
                Some(HelpFrom::ShapeFits) => METADATA_WRONG,
                _ => WORDS.get(rank).map(|(_, w)| *w).unwrap_or("NOT OK"),
            };
            (std::cmp::Reverse(f.severity), rank, word, f.code)
        })
        .min()
        .map(|(_, _, w, c)| (w, c))
}

/// The log lines of an APR file: its tensors in file order, each with the word its findings give.
/// `findings` may hold findings of other files (a pair): only those whose `file` is this view's
/// path (or that name no file) count.
pub fn lines<'a>(view: &'a ModelView, r: &Resolved<'_>, findings: &[Finding]) -> Vec<LoadLine<'a>> {
    let path = view.path().display().to_string();
    let mut by_tensor: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        if let Some(t) = &f.tensor
            && f.file.as_deref().is_none_or(|p| p == path)
        {
            by_tensor.entry(t.as_str()).or_default().push(f);
        }
    }
    view.tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let role = r.role_of(i);
            let expected = role.and_then(|(role, _)| r.expected_dims(role).ok());
            let expected_layout = match (role, t.dims.len()) {
                (Some((ro, _)), 2) if ro.key == "token_embd" || ro.key == "output" => {
                    "[vocab, hidden] (row = token)"
                }
                (_, 2) => "[out_dim, in_dim] for matmul",
                (_, 1) => "[n] (1-D)",
                _ => "row-major, outermost first",
            };
            let found = by_tensor
                .get(t.name.as_str())
                .and_then(|fs| word_of(fs.iter().copied()));
            let (word, code) = match (found, &expected) {
                (Some((w, c)), _) => (w, Some(c)),
                (None, Some(_)) => (OK, None),
                (None, None) => (UNCHECKED, None),
            };
            LoadLine {
                name: &t.name,
                dims: &t.dims,
                dtype: t.dtype.name(),
                expected_layout,
                expected_dims: expected.filter(|e| *e != t.dims),
                word,
                code,
            }
        })
        .collect()
}

/// `[a, b]`: the one way dims are printed in every report.
pub fn dims(d: &[u64]) -> String {
    crate::diag::fmt_dims(d)
}

/// Emit the log of `lines` line by line (no trailing newline) to `sink`.
pub fn emit(lines: &[LoadLine<'_>], mode: Mode, sink: &mut dyn FnMut(&str)) {
    for l in lines {
        if mode == Mode::Summary && !l.is_flagged() {
            continue;
        }
        sink(&format!(
            "[APR-LOAD] Tensor '{}': dims={}, dtype={}",
            l.name,
            dims(l.dims),
            l.dtype
        ));
        sink(&format!(
            "[APR-LOAD] Expected layout: {}",
            l.expected_layout
        ));
        let mut notes = Vec::new();
        if let Some(e) = &l.expected_dims {
            // The rules' dims come from the config; when the config is what is wrong, say so.
            if l.word == METADATA_WRONG {
                notes.push(format!("the metadata gives {}", dims(e)));
            } else {
                notes.push(format!("expected {}", dims(e)));
            }
        }
        if let Some(c) = l.code {
            notes.push(c.to_owned());
        }
        if l.word == UNCHECKED {
            notes.push("no rule for this tensor".to_owned());
        }
        sink(&format!(
            "[APR-LOAD] Actual layout: {} - {}{}",
            dims(l.dims),
            l.word,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        ));
    }
    sink(&summary(lines));
}

/// `[APR-LOAD] 339 tensors: 337 OK, 2 DIMS REVERSED` (words in the order of [`WORDS`]).
pub fn summary(lines: &[LoadLine<'_>]) -> String {
    let mut counts: Vec<(usize, &str, usize)> = Vec::new();
    for l in lines {
        let rank = match l.word {
            OK => 0,
            UNCHECKED => WORDS.len() + 2,
            METADATA_WRONG => {
                1 + WORDS
                    .iter()
                    .position(|(c, _)| *c == "shape-mismatch")
                    .unwrap_or(WORDS.len())
            }
            w => {
                1 + WORDS
                    .iter()
                    .position(|(_, x)| *x == w)
                    .unwrap_or(WORDS.len())
            }
        };
        match counts.iter_mut().find(|(_, w, _)| *w == l.word) {
            Some(c) => c.2 += 1,
            None => counts.push((rank, l.word, 1)),
        }
    }
    counts.sort();
    let parts: Vec<String> = counts.iter().map(|(_, w, n)| format!("{n} {w}")).collect();
    format!(
        "[APR-LOAD] {} tensor{}: {}",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    )
}

/// The whole log as text (one `\n` after each line).
pub fn render(lines: &[LoadLine<'_>], mode: Mode) -> String {
    let mut s = String::new();
    emit(lines, mode, &mut |l| {
        s.push_str(l);
        s.push('\n');
    });
    s
}

/// The `[APR-LOAD]` log of `view` (nothing for a GGUF), line by line to `sink`, with the words
/// `findings` give: pass the run's findings (`Outcome::findings`) for the final result, or
/// [`static_findings`] for the rules' verdict alone. This is what `apr-lint` prints to stderr.
pub fn load_log(
    view: &ModelView,
    rules: &RuleSet,
    findings: &[Finding],
    mode: Mode,
    mut sink: impl FnMut(&str),
) {
    if view.runtime() != crate::model::Runtime::Aprender {
        return;
    }
    let r = Resolved::new(view, rules);
    emit(&lines(view, &r, findings), mode, &mut sink);
}

/// The findings of the file's own checks (container and static, no reference): the verdict of a
/// command that compares no values (`inspect`, `dump`).
pub fn static_findings(view: &ModelView, rules: &RuleSet) -> Vec<Finding> {
    let mut out = view.findings.clone();
    let r = Resolved::new(view, rules);
    crate::check::check_file(view, &r, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::layout::{DIMS_REVERSED, ORIENTATION_UNCHECKED, SHAPE_MISMATCH};

    fn f(lint: &'static crate::diag::Lint) -> Finding {
        Finding::new(lint, "x").tensor("t")
    }

    #[test]
    fn the_most_severe_finding_gives_the_word() {
        assert_eq!(
            word_of(&[f(&DIMS_REVERSED)]),
            Some(("DIMS REVERSED", "APRL-L001"))
        );
        // An info names nothing wrong.
        assert_eq!(word_of(&[f(&ORIENTATION_UNCHECKED)]), None);
        // An error outranks a warning of an earlier class.
        let w = f(&DIMS_REVERSED).severity(Severity::Warning);
        assert_eq!(
            word_of([&w, &f(&SHAPE_MISMATCH)]),
            Some(("SHAPE MISMATCH", "APRL-L002"))
        );
    }

    #[test]
    fn every_bug_class_has_a_word() {
        // The slugs of bug-classes.md.
        for c in [
            "dims-reversed",
            "transposed",
            "column-major",
            "rope-permuted",
            "rope-permuted-wrong-heads",
            "swapped-tensors",
            "dtype-mislabeled",
            "ambiguous-dtype-code",
            "quant-block-corrupt",
            "non-finite",
            "missing-tensor",
            "unexpected-tensor",
            "shape-mismatch",
            "metadata-mismatch",
            "tokenizer-mismatch",
            "tied-embedding",
            "degenerate",
            "value-mismatch",
            "container",
        ] {
            assert!(WORDS.iter().any(|(x, _)| *x == c), "no word for {c}");
        }
    }

    #[test]
    fn readme_lists_every_word() {
        let readme = include_str!("../../README.md");
        for (c, w) in WORDS.iter().chain([&("shape-mismatch", METADATA_WRONG)]) {
            assert!(
                readme.contains(&format!("`{w}`")),
                "README lacks the word {w} ({c})"
            );
        }
    }

    #[test]
    fn summary_counts_words() {
        let d = [2u64, 3];
        let l = |w| LoadLine {
            name: "t",
            dims: &d,
            dtype: "F32",
            expected_layout: "",
            expected_dims: None,
            word: w,
            code: None,
        };
        let v = vec![l("DIMS REVERSED"), l(OK), l(OK), l("TRANSPOSE NEEDED")];
        assert_eq!(
            summary(&v),
            "[APR-LOAD] 4 tensors: 2 OK, 1 DIMS REVERSED, 1 TRANSPOSE NEEDED"
        );
        assert_eq!(summary(&v[1..2]), "[APR-LOAD] 1 tensor: 1 OK");
    }
}
