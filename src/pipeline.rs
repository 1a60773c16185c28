//! The only place that knows the order of stages. Returns an `Outcome`; never prints or exits.
//!
//! 1. container checks of each file (done by the readers; their findings are collected here);
//! 2. the rule set against each file, then the pair (no tensor data);
//! 3. the whole-tensor value scan of each file (`numeric::scan`: every float value by default,
//!    everything with `--deep`), then the numeric stage (sampled weights with transform search,
//!    the probe) when a reference is given;
//! 4. severity overrides, applied once, then the verdict (a run that compared nothing is inconclusive).

use std::path::Path;
use std::time::Instant;

use crate::check;
use crate::diag::{Finding, Lint, ReadError, Severity};
use crate::format::Format;
use crate::model::ModelView;
use crate::rules::{Resolved, RuleSet};

pub static INCONCLUSIVE: Lint = Lint {
    code: "APRL-T001",
    class: "value-mismatch",
    severity: Severity::Warning,
    summary: "nothing was compared: the result is inconclusive",
    explain: "What it catches: a run that could not compare what it must — no rule set for the architecture, no role matched in both files, a probe that could not run.
Why it matters: a check that compared nothing is not a pass; CI must not go green on it.
How to fix: read the other findings: add rules for the architecture, pair the right files, or pass `--tokens`.
Precedent: aprender #2394 (a corrupt file reported VALID).",
};

pub static INPUT_CHANGED: Lint = Lint {
    code: "APRL-T002",
    class: "container",
    severity: Severity::Error,
    summary: "an input file changed while it was being checked",
    explain: "What it catches: a file whose size or modification time changed between mapping and reporting (a download or conversion still writing it).
Why it matters: the results describe bytes that no longer exist; a file that shrinks under a memory map can crash a reader.
How to fix: wait for the writer to finish and lint again.
Precedent: pre-commit hooks racing an editor or a converter.",
};

pub static ALL: &[&Lint] = &[&INCONCLUSIVE, &INPUT_CHANGED];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override {
    Deny,
    Warn,
    Allow,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub rules: RuleSet,
    /// `-D/-W/-A CODE`, in the order given (later wins).
    pub overrides: Vec<(String, Override)>,
    pub prompt: String,
    pub tokens: Option<Vec<u32>>,
    pub threshold: f64,
    pub no_probe: bool,
    /// `--deep`: every value of every tensor of both files, full comparison of same-dtype pairs,
    /// the APR footer CRC whatever the size.
    pub deep: bool,
    /// Progress of the `--deep` scan (the CLI draws a bar on a terminal).
    pub progress: Option<crate::numeric::scan::Progress>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rules: RuleSet::builtin(),
            overrides: Vec::new(),
            prompt: "2+2=".into(),
            tokens: None,
            threshold: 1e-3,
            no_probe: false,
            deep: false,
            progress: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct InputInfo {
    pub path: String,
    pub format: Format,
    pub architecture: Option<String>,
    pub tensor_count: usize,
}

/// How much of the values the run checked (stated in every report).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ValueChecks {
    /// Some value check read a sample only (true unless `--deep`).
    pub sampled: bool,
    pub deep: bool,
    /// Rows per tensor the sampled weight comparison reads, at most (the first and last rows).
    pub sampled_rows_per_tensor: u64,
    /// Float tensors are scanned whole by default while a file's total at most this many bytes.
    pub full_float_scan_max_bytes: u64,
    /// Per file: what was scanned whole.
    pub files: Vec<crate::numeric::scan::FileScan>,
}

impl ValueChecks {
    /// One line for the human report.
    pub fn describe(&self) -> String {
        use crate::numeric::scan::bytes_h;
        if self.deep {
            let n: usize = self.files.iter().map(|f| f.tensors_scanned).sum();
            let b: u64 = self.files.iter().map(|f| f.bytes_scanned).sum();
            let crc: Vec<String> = self
                .files
                .iter()
                .filter_map(|f| f.footer_crc.map(|c| format!("footer CRC {c}")))
                .collect();
            return format!(
                "value checks: every value (--deep): {n} tensors, {} of both files checked for NaN/Inf, same-dtype pairs compared in full{}",
                bytes_h(b),
                if crc.is_empty() {
                    String::new()
                } else {
                    format!(", {}", crc.join(", "))
                }
            );
        }
        let floats: Vec<String> = self
            .files
            .iter()
            .map(|f| {
                let name = std::path::Path::new(&f.path)
                    .file_name()
                    .map_or(f.path.clone(), |n| n.to_string_lossy().into_owned());
                if f.floats_scanned {
                    format!(
                        "{name}: every F32/F16/BF16 value ({})",
                        bytes_h(f.float_bytes)
                    )
                } else {
                    format!(
                        "{name}: floats sampled too ({} of floats > {} MiB)",
                        bytes_h(f.float_bytes),
                        self.full_float_scan_max_bytes >> 20
                    )
                }
            })
            .collect();
        if self.files.len() < 2 {
            return format!(
                "value checks: no reference, so no weight comparison; NaN/Inf scan: {}; --deep checks every value",
                floats.join("; ")
            );
        }
        format!(
            "value checks: sampled, up to {} rows per tensor (the first and last); NaN/Inf scan: {}; --deep checks every value",
            self.sampled_rows_per_tensor,
            floats.join("; ")
        )
    }
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub inputs: Vec<InputInfo>,
    pub values: ValueChecks,
    pub findings: Vec<Finding>,
    pub probe: Option<serde_json::Value>,
    pub tensors_compared: usize,
    pub verdict: Verdict,
    pub elapsed_ms: u128,
}

impl Outcome {
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// Put the file under test first: the APR side is under test and the GGUF the reference, unless
/// both are the same format (then the order given).
pub fn order_pair(model: ModelView, against: ModelView) -> (ModelView, ModelView) {
    if model.format() == Format::Gguf && against.format() == Format::Apr {
        (against, model)
    } else {
        (model, against)
    }
}

fn info(v: &ModelView) -> InputInfo {
    InputInfo {
        path: v.path().display().to_string(),
        format: v.format(),
        architecture: v.config.arch().map(str::to_owned),
        tensor_count: v.tensors.len(),
    }
}

/// Lint one file, or a pair (`against` = the reference).
pub fn lint(model: &ModelView, against: Option<&ModelView>, opts: &Options) -> Outcome {
    let t0 = Instant::now();
    let mut findings = Vec::new();
    let mut inputs = vec![info(model)];
    findings.extend(model.findings.iter().cloned());
    let ra = Resolved::new(model, &opts.rules);
    check::check_file(model, &ra, &mut findings);
    let mut compared = 0usize;
    let mut probe = None;
    let mut inconclusive_why: Option<String> = None;
    // Whole-tensor value checks (floats by default, everything with `--deep`).
    let rb_early = against.map(|r| Resolved::new(r, &opts.rules));
    let scan_pairs = match (against, &rb_early) {
        (Some(r), Some(rb)) if opts.deep => crate::numeric::pair_indices(model, &ra, r, rb),
        _ => Vec::new(),
    };
    let depth = if opts.deep {
        crate::numeric::scan::Depth::Deep
    } else {
        crate::numeric::scan::Depth::Floats
    };
    let scan =
        crate::numeric::scan::run(model, against, &scan_pairs, depth, opts.progress.as_ref());
    findings.extend(scan.findings.iter().cloned());
    let values = ValueChecks {
        sampled: !opts.deep,
        deep: opts.deep,
        sampled_rows_per_tensor: 2 * crate::numeric::sample::CLUSTER_ROWS,
        full_float_scan_max_bytes: crate::numeric::scan::FULL_FLOAT_SCAN_MAX,
        files: scan.files.clone(),
    };
    match against {
        None => {
            if ra.arch.is_none() {
                inconclusive_why = Some(
                    "no rule set applies to this file, so nothing was checked against rules".into(),
                );
            } else {
                compared = ra.roles.iter().filter(|r| r.is_some()).count();
                if compared == 0 {
                    inconclusive_why = Some("no tensor matched a role of the rules".into());
                }
            }
        }
        Some(reference) => {
            inputs.push(info(reference));
            findings.extend(reference.findings.iter().cloned());
            let rb = rb_early.unwrap_or_else(|| Resolved::new(reference, &opts.rules));
            check::check_file(reference, &rb, &mut findings);
            let matched = check::pair::check(model, &ra, reference, &rb, &mut findings);
            let mut weights = Vec::new();
            let numeric = crate::numeric::run_with(
                model,
                &ra,
                reference,
                &rb,
                opts,
                Some(&scan),
                &mut weights,
            );
            // A tensor the whole-tensor scan reported non-finite is reported once.
            let known = scan.non_finite_tensors();
            weights.retain(|f| {
                f.code != crate::numeric::lints::NON_FINITE.code
                    || !known.contains(&(f.file.clone(), f.tensor.clone()))
            });
            findings.extend(weights);
            compared = numeric
                .tensors_compared
                .max(if numeric.ran { 0 } else { matched });
            probe = crate::numeric::probe::run(model, &ra, reference, &rb, opts, &mut findings)
                .map(|p| serde_json::to_value(p).unwrap_or_default());
            if matched == 0 {
                inconclusive_why =
                    Some("no role was found in both files, so nothing was compared".into());
            } else if numeric.ran && numeric.tensors_compared == 0 {
                inconclusive_why =
                    Some("the numeric stage compared no tensor (every role was skipped)".into());
            }
        }
    }
    for v in std::iter::once(model).chain(against) {
        if !v.source().is_unchanged() {
            findings.push(
                Finding::new(
                    &INPUT_CHANGED,
                    format!(
                        "`{}` changed on disk while it was being checked",
                        v.path().display()
                    ),
                )
                .file(v.path())
                .help("wait for the writer to finish and lint again"),
            );
        }
    }
    if let Some(why) = &inconclusive_why {
        findings.push(
            Finding::new(&INCONCLUSIVE, format!("inconclusive: {why}"))
                .help("read the findings above; a run that compared nothing is never a pass"),
        );
    }
    apply_overrides(&mut findings, &opts.overrides);
    let has_error = findings.iter().any(|f| f.severity == Severity::Error);
    let verdict = if has_error {
        Verdict::Fail
    } else if inconclusive_why.is_some() {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    Outcome {
        inputs,
        values,
        findings,
        probe,
        tensors_compared: compared,
        verdict,
        elapsed_ms: t0.elapsed().as_millis(),
    }
}

/// `-D/-W/-A`: deny makes an error, warn a warning, allow drops the finding. Applied once, here.
pub fn apply_overrides(findings: &mut Vec<Finding>, overrides: &[(String, Override)]) {
    if overrides.is_empty() {
        return;
    }
    findings.retain_mut(|f| {
        let mut keep = true;
        for (code, o) in overrides {
            if code.eq_ignore_ascii_case(f.code) || code.eq_ignore_ascii_case(f.class) {
                match o {
                    Override::Deny => {
                        f.severity = Severity::Error;
                        keep = true;
                    }
                    Override::Warn => {
                        f.severity = Severity::Warning;
                        keep = true;
                    }
                    Override::Allow => keep = false,
                }
            }
        }
        keep
    });
}

/// Open a model file (read-only) into a view.
pub fn load(path: &Path) -> Result<ModelView, ReadError> {
    ModelView::open(path)
}

/// What `rosetta` found.
#[derive(Clone, Debug)]
pub struct RosettaOutcome {
    /// The main job's findings for the pair (static and weights; no probe), for the diagnosis.
    pub lint: Outcome,
    pub trace: Result<crate::numeric::trace::Trace, String>,
}

impl RosettaOutcome {
    pub fn diverged(&self) -> bool {
        self.trace
            .as_ref()
            .is_ok_and(|t| t.first_divergence.is_some())
    }
}

/// The full per-layer differential trace of a pair (`apr-lint rosetta`).
pub fn rosetta(
    a: &ModelView,
    b: &ModelView,
    opts: &Options,
    teacher_forced: bool,
    save: Option<&Path>,
) -> RosettaOutcome {
    use crate::numeric::trace::{Model, trace};
    let mut o = opts.clone();
    o.no_probe = true;
    let lint_outcome = lint(a, Some(b), &o);
    let ra = Resolved::new(a, &opts.rules);
    let rb = Resolved::new(b, &opts.rules);
    let run = || -> Result<crate::numeric::trace::Trace, String> {
        let tokens = match &opts.tokens {
            Some(t) => t.clone(),
            None => crate::model::tokenize::TextTokenizer::tokenize(&b.container, &opts.prompt)
                .or_else(|_| {
                    crate::model::tokenize::TextTokenizer::tokenize(&a.container, &opts.prompt)
                })
                .map_err(|e| format!("{e}; pass `--tokens`"))?,
        };
        if tokens.is_empty() {
            return Err("the prompt gives no tokens".into());
        }
        let ma = Model::new(a, &ra)?;
        let mb = Model::new(b, &rb)?;
        if ma.n_layer != mb.n_layer {
            return Err(format!(
                "layer counts differ ({} vs {})",
                ma.n_layer, mb.n_layer
            ));
        }
        // Same values are expected only when every role has the same dtype on both sides.
        let arch = ra.arch.ok_or("no rule set")?;
        let mut exact = true;
        let mut min_cos: f64 = 0.999;
        for (i, t) in a.tensors.iter().enumerate() {
            let Some((role, layer)) = ra.role_of(i) else {
                continue;
            };
            let Some(j) = rb.find(&role.key, layer) else {
                continue;
            };
            if t.dtype != b.tensors[j].dtype {
                exact = false;
                for d in [t.dtype, b.tensors[j].dtype] {
                    if let Some(tol) = arch.tolerance_for(Some(role), d) {
                        min_cos = min_cos.min(tol.cosine);
                    }
                }
            }
        }
        if let Some(dir) = save {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        trace(
            &ma,
            &mb,
            &tokens,
            exact,
            opts.threshold,
            crate::numeric::probe::activation_cosine(min_cos),
            teacher_forced,
            save,
        )
    };
    RosettaOutcome {
        lint: lint_outcome,
        trace: run(),
    }
}
