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
use crate::diag::{Finding, ReadError, Severity};
use crate::model::ModelView;
use crate::rules::{Resolved, RuleSet};

pub use crate::config::{ConfigInfo, Override};
pub use crate::tool::{
    ALL, BAD_USAGE, CANNOT_DECODE, CANNOT_WRITE, INCONCLUSIVE, INPUT_CHANGED, NO_SUCH_TENSOR,
    OUTPUT_IS_INPUT, SAME_INPUT, UNKNOWN_CODE,
};

/// What a run checks and how: the rule set, severity overrides, the probe's input and
/// threshold, `--deep`. `Options::default()` is the command line's defaults (built-in rules).
#[derive(Clone, Debug)]
pub struct Options {
    /// The rule set (default: the built-in one).
    pub rules: RuleSet,
    /// `-D/-W/-A CODE`, in the order given (later wins).
    pub overrides: Vec<(String, Override)>,
    /// Where each override came from (`-A dims-reversed`, `./apr-lint.toml line 3`), same order as
    /// `overrides`; missing entries are described as `-A/-W/-D CODE`.
    pub override_origins: Vec<String>,
    /// The config file in force, if any.
    pub config: Option<ConfigInfo>,
    /// The probe's prompt, tokenized by each file's own tokenizer (default `2+2=`).
    pub prompt: String,
    /// Token ids for the probe instead of the prompt.
    pub tokens: Option<Vec<u32>>,
    /// Divergence threshold where both files hold the same values: a stage passes when
    /// `max_diff ≤ threshold × max|reference|` (default 1e-3).
    pub threshold: f64,
    /// Skip the probe (layer 0 on the prompt).
    pub no_probe: bool,
    /// `--deep`: every value of every tensor of both files, full comparison of same-dtype pairs,
    /// the APR footer CRC whatever the size.
    pub deep: bool,
    /// Progress of the `--deep` scan (the CLI draws a bar on a terminal).
    pub progress: Option<crate::numeric::scan::Progress>,
    /// `--verify-footer`, for the files `lint_batch` opens itself.
    pub verify_footer: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rules: RuleSet::builtin(),
            overrides: Vec::new(),
            override_origins: Vec::new(),
            config: None,
            prompt: "2+2=".into(),
            tokens: None,
            threshold: 1e-3,
            no_probe: false,
            deep: false,
            progress: None,
            verify_footer: false,
        }
    }
}

impl Options {
    /// The numeric stage's share of the options.
    pub fn numeric(&self) -> crate::numeric::Settings {
        crate::numeric::Settings {
            threshold: self.threshold,
            prompt: self.prompt.clone(),
            tokens: self.tokens.clone(),
            no_probe: self.no_probe,
        }
    }
}

/// The one verdict of a run. Its exit code, its JSON word and the human summary word all come from
/// here: `pass` 0, `fail` 1, `error` 2, `inconclusive` 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No error finding (exit 0).
    Pass,
    /// At least one error finding (exit 1).
    Fail,
    /// The command could not do its job (unreadable input, bad usage, an output it cannot write).
    Error,
    /// Nothing was compared (exit 3): not a pass.
    Inconclusive,
    /// Stopped by the user (Ctrl-C) with what was compared so far: exit 130, the shell's code for
    /// a process ended by SIGINT.
    Interrupted,
}

impl Verdict {
    /// The worst of several verdicts (a batch's): interrupted, error, fail, inconclusive, pass.
    pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let rank = |v: &Verdict| match v {
            Verdict::Pass => 0,
            Verdict::Inconclusive => 1,
            Verdict::Fail => 2,
            Verdict::Error => 3,
            Verdict::Interrupted => 4,
        };
        verdicts
            .into_iter()
            .max_by_key(rank)
            .unwrap_or(Verdict::Pass)
    }
    /// The command line's exit code: 0 pass, 1 fail, 2 error, 3 inconclusive.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Error => 2,
            Verdict::Inconclusive => 3,
            Verdict::Interrupted => 130,
        }
    }
    /// The word that starts the human summary line.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Interrupted => "INTERRUPTED",
        }
    }
}

/// A finding that `-A` or a config `allow` dropped, and which override dropped it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Allowed {
    /// The dropped finding's code.
    pub code: &'static str,
    /// Its bug class.
    pub class: &'static str,
    /// Its tensor, if it named one.
    pub tensor: Option<String>,
    /// `-A dims-reversed`, or `./apr-lint.toml line 3 (allow = [\"APRL-N020\"])`.
    pub by: String,
}

/// One input file of a run, as the reports list it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InputInfo {
    /// The path as given.
    pub path: String,
    /// The format's name (`gguf`, `apr`).
    pub format: &'static str,
    /// The architecture the file declares.
    pub architecture: Option<String>,
    /// How many tensors it holds.
    pub tensor_count: usize,
}

/// How much of the values the run checked (stated in every report).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ValueChecks {
    /// Some value check read a sample only (true unless `--deep`).
    pub sampled: bool,
    /// `--deep` was given: every value of both files was checked.
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

/// The result of a run: typed findings, the verdict and what was checked. Library code never
/// prints it; `report::*` renders it.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The files read, the one under test first.
    pub inputs: Vec<InputInfo>,
    /// How much of the values was checked.
    pub values: ValueChecks,
    /// Every finding after overrides (allowed ones are in `allowed`).
    pub findings: Vec<Finding>,
    /// The probe's stages as JSON reports them, when it ran.
    pub probe: Option<serde_json::Value>,
    /// Tensors whose values were compared with the reference (0 for one file).
    pub tensors_compared: usize,
    /// The one verdict: exit code and summary word.
    pub verdict: Verdict,
    /// Wall time of the run.
    pub elapsed_ms: u128,
    /// Findings dropped by an allow, with the override that dropped each.
    pub allowed: Vec<Allowed>,
    /// The config file in force.
    pub config: Option<ConfigInfo>,
}

impl Outcome {
    /// How many findings have severity `s`.
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
    /// The report of a command that could not do its job: the fatal error is the one finding and the
    /// verdict is `Error` (exit 2). Same envelope as a run, in every format.
    pub fn fatal(error: Finding, config: Option<ConfigInfo>) -> Outcome {
        Outcome {
            inputs: Vec::new(),
            findings: vec![error.severity(Severity::Error)],
            probe: None,
            tensors_compared: 0,
            verdict: Verdict::Error,
            elapsed_ms: 0,
            allowed: Vec::new(),
            config,
            values: ValueChecks::default(),
        }
    }
    /// What the value checks covered; None when no file was read (a fatal error).
    pub fn value_checks(&self) -> Option<&ValueChecks> {
        (!self.values.files.is_empty()).then_some(&self.values)
    }
}

/// Put the file under test first: an APR is under test against a GGUF or a Hugging Face checkpoint,
/// a GGUF against a checkpoint (where conversions start); two of one kind in the order given.
pub fn order_pair(model: ModelView, against: ModelView) -> (ModelView, ModelView) {
    if model.runtime().test_order() > against.runtime().test_order() {
        (against, model)
    } else {
        (model, against)
    }
}

fn info(v: &ModelView) -> InputInfo {
    InputInfo {
        path: v.path().display().to_string(),
        format: v.format_name(),
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
    let rb_early = against.map(|r| Resolved::new(r, &opts.rules));
    if let (Some(r), Some(rb)) = (against, &rb_early) {
        // Ask for every range the stages below will read, all at once (a cold page cache then
        // serves them in parallel, not one fault and one 8 MiB read-around at a time); `--deep`
        // reads everything in order and needs no list. Then the token and merge lists of both
        // files, one file per core (the per-file and pair checks below use them).
        // The ranges are asked for beside the scans: on a warm page cache the `madvise` calls
        // cost a few ms of one core and find every page already there.
        let prefetch = || {
            if !opts.deep {
                let [sa, sb] = crate::numeric::prefetch::spans(model, &ra, r, rb, !opts.no_probe);
                model.source().prefetch(&sa);
                r.source().prefetch(&sb);
            }
        };
        // The probe's prompt is tokenized in the same pass (the lists are read once).
        match (&opts.tokens, opts.no_probe) {
            (None, false) => rayon::join(
                || model.tokenizer_scan_for(&opts.prompt),
                || {
                    prefetch();
                    r.tokenizer_scan_for(&opts.prompt)
                },
            ),
            _ => rayon::join(
                || model.tokenizer_scan(),
                || {
                    prefetch();
                    r.tokenizer_scan()
                },
            ),
        };
    }
    check::check_file(model, &ra, &mut findings);
    let mut compared = 0usize;
    let mut probe = None;
    let mut inconclusive_why: Option<String> = None;
    // Whole-tensor value checks (floats by default, everything with `--deep`).
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
            if let Some(how) = same_input(model, reference) {
                findings.push(
                    Finding::new(
                        &SAME_INPUT,
                        format!("{how}: the pair checks compared the file with itself, so nothing was really compared"),
                    )
                    .file(reference.path())
                    .help("pass the converted file and the file it was converted from"),
                );
            }
            findings.extend(reference.findings.iter().cloned());
            let rb = rb_early.unwrap_or_else(|| Resolved::new(reference, &opts.rules));
            check::check_file(reference, &rb, &mut findings);
            let matched = check::pair::check(model, &ra, reference, &rb, &mut findings);
            let settings = opts.numeric();
            let mut weights = Vec::new();
            let numeric = crate::numeric::run_with(
                model,
                &ra,
                reference,
                &rb,
                &settings,
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
            probe =
                crate::numeric::probe::run(model, &ra, reference, &rb, &settings, &mut findings)
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
    // A positioned read that failed (a file that shrank after it was opened) left a stage
    // without its bytes: the run could not do its job, whatever the stages said.
    let mut read_failed = false;
    for v in std::iter::once(model).chain(against) {
        for (path, fail) in v.read_failures() {
            read_failed = true;
            findings.push(read_failure_finding(path, &fail));
        }
    }
    for v in std::iter::once(model).chain(against) {
        if !v.is_unchanged() {
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
    // A span inside one shard of a checkpoint names that shard, not the checkpoint.
    for f in &mut findings {
        let (Some(file), Some(span)) = (f.file.as_deref(), f.span) else {
            continue;
        };
        let shard = std::iter::once(model)
            .chain(against)
            .filter(|v| v.path().display().to_string() == file)
            .find_map(|v| v.file_of_span(f.tensor.as_deref(), span));
        if let Some(p) = shard {
            f.file = Some(p.display().to_string());
        }
    }
    let allowed = apply_overrides(&mut findings, &opts.overrides, &opts.override_origins);
    let has_error = findings.iter().any(|f| f.severity == Severity::Error);
    let same_input = findings.iter().any(|f| f.code == SAME_INPUT.code);
    let verdict = if read_failed {
        Verdict::Error
    } else if has_error {
        Verdict::Fail
    } else if inconclusive_why.is_some() || same_input {
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
        allowed,
        config: opts.config.clone(),
    }
}

/// The finding of a positioned read of `path` that failed (exit 2: the stage that asked for the
/// bytes compared nothing).
fn read_failure_finding(path: &Path, fail: &crate::format::source::ReadFailure) -> Finding {
    Finding::new(
        &crate::format::lints::IO,
        format!(
            "cannot read {} bytes of `{}` at byte offset {}: {}",
            fail.len,
            path.display(),
            fail.offset,
            fail.error
        ),
    )
    .file(path)
    .span(crate::diag::Span::new(fail.offset, fail.len))
    .help("the file changed or shrank while it was checked; wait for the program writing it to finish, then lint again")
}

/// `Some("same file")` when the two views are one file (same path after resolving links) or two files
/// with the same bytes.
fn same_input(a: &ModelView, b: &ModelView) -> Option<&'static str> {
    if let (Ok(x), Ok(y)) = (
        std::fs::canonicalize(a.path()),
        std::fs::canonicalize(b.path()),
    ) && x == y
    {
        return Some("both paths name the same file");
    }
    let (sa, sb) = (a.sources(), b.sources());
    (sa.len() == sb.len() && sa.iter().zip(&sb).all(|(x, y)| identical_bytes(x, y)))
        .then_some("the two files have identical bytes")
}

/// Byte-identical files, without reading two whole files for a pair that differs: 64 windows spread
/// over the files first (a damaged copy almost always differs in one of them), then the whole files
/// window by window, each window's pages released once compared.
fn identical_bytes(sa: &crate::format::Source, sb: &crate::format::Source) -> bool {
    use crate::diag::Span;
    let n = sa.len();
    if n != sb.len() {
        return false;
    }
    let same = |off: u64, len: u64| sa.slice(off, len) == sb.slice(off, len);
    let probe = 4096u64.min(n);
    if (0..64u64).any(|k| !same((n - probe) / 63 * k, probe)) {
        return false;
    }
    let w = 8u64 << 20;
    (0..n.div_ceil(w)).all(|k| {
        let span = Span::new(k * w, w.min(n - k * w));
        let eq = same(span.offset, span.len);
        sa.release(span);
        sb.release(span);
        eq
    })
}

/// `-D/-W/-A`: deny makes an error, warn a warning, allow drops the finding. Applied once, here.
/// Returns the dropped findings, each with the origin of the override that dropped it (`origins[i]`
/// describes `overrides[i]`).
pub fn apply_overrides(
    findings: &mut Vec<Finding>,
    overrides: &[(String, Override)],
    origins: &[String],
) -> Vec<Allowed> {
    let mut allowed = Vec::new();
    if overrides.is_empty() {
        return allowed;
    }
    findings.retain_mut(|f| {
        let mut dropped_by = None;
        for (i, (code, o)) in overrides.iter().enumerate() {
            let successor = crate::registry::superseded_by(code)
                .is_some_and(|s| s.iter().any(|c| c.eq_ignore_ascii_case(f.code)));
            if code.eq_ignore_ascii_case(f.code)
                || code.eq_ignore_ascii_case(f.class())
                || successor
            {
                match o {
                    Override::Deny => {
                        f.severity = Severity::Error;
                        dropped_by = None;
                    }
                    Override::Warn => {
                        f.severity = Severity::Warning;
                        dropped_by = None;
                    }
                    Override::Allow => dropped_by = Some(i),
                }
            }
        }
        if let Some(i) = dropped_by {
            allowed.push(Allowed {
                code: f.code,
                class: f.class(),
                tensor: f.tensor.clone(),
                by: origins
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("-A {}", overrides[i].0)),
            });
        }
        dropped_by.is_none()
    });
    allowed
}

/// Open a model file (read-only) into a view.
pub fn load(path: &Path) -> Result<ModelView, ReadError> {
    ModelView::open(path)
}

/// One job of a batch (`crate::batch::Job`) and what it found: its outcome (a file that could not be
/// read is a fatal outcome, verdict `error`), the caller's `each` result while the files were open
/// (None when they could not be opened) and the job's wall time.
pub struct JobOutcome<T> {
    /// The job: the file under test and its reference, if any.
    pub job: crate::batch::Job,
    /// What the job's checks found (fatal when a file could not be read).
    pub outcome: Outcome,
    /// The caller's `each` result (None when the files could not be opened).
    pub extra: Option<T>,
    /// The job's wall time.
    pub elapsed_ms: u128,
}

/// What `lint_batch` calls for each job while its files are open: the job, the file under test,
/// the reference, the outcome.
pub type EachJob<'a, T> =
    dyn Fn(&crate::batch::Job, &ModelView, Option<&ModelView>, &Outcome) -> T + Sync + 'a;

/// Lint every job of a batch, `workers` jobs at a time (each job's own stages use the rayon pool as
/// a single run does), in the jobs' order. A job's files are open only while it runs, so memory is
/// bounded by `workers` single runs, except a file several jobs read (one reference for several
/// files under test), which is opened once and kept until its last job ends. Files whose token and
/// merge lists are the same bytes share one pass over them (`model::shared`). Each job's outcome
/// is the one a single run of it gives. `each` is called while a job's files are open (its load
/// log, its report).
pub fn lint_batch<T: Send>(
    jobs: &[crate::batch::Job],
    opts: &Options,
    workers: usize,
    each: &EachJob<'_, T>,
) -> Vec<JobOutcome<T>> {
    use crate::model::shared::{OpenViews, SharedTokenizers};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<JobOutcome<T>>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let views = OpenViews::new(
        jobs.iter()
            .flat_map(|j| std::iter::once(j.test.as_path()).chain(j.reference.as_deref())),
    );
    let scans = SharedTokenizers::new();
    let run_one = |job: &crate::batch::Job| -> JobOutcome<T> {
        let t0 = Instant::now();
        let open = |p: &Path| {
            views.open(p, |p| {
                load(p).map(|mut v| {
                    if opts.verify_footer {
                        v.verify_footer();
                    }
                    v
                })
            })
        };
        let opened = open(&job.test).and_then(|a| match &job.reference {
            Some(r) => open(r).map(|b| {
                // `order_pair`'s order, on shared views.
                if a.runtime().test_order() > b.runtime().test_order() {
                    (b, Some(a))
                } else {
                    (a, Some(b))
                }
            }),
            None => Ok((a, None)),
        });
        let (outcome, extra) = match opened {
            Ok((a, b)) => {
                // Both files' lists at once, as `lint` scans them.
                rayon::join(|| scans.share(&a), || b.as_deref().map(|b| scans.share(b)));
                let o = lint(&a, b.as_deref(), opts);
                let extra = each(job, &a, b.as_deref(), &o);
                (o, Some(extra))
            }
            Err(e) => (Outcome::fatal(e.to_finding(), opts.config.clone()), None),
        };
        for p in std::iter::once(job.test.as_path()).chain(job.reference.as_deref()) {
            views.done(p);
        }
        JobOutcome {
            job: job.clone(),
            outcome,
            extra,
            elapsed_ms: t0.elapsed().as_millis(),
        }
    };
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = run_one(job);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// What `rosetta` found.
#[derive(Clone, Debug)]
pub struct RosettaOutcome {
    /// The main job's findings for the pair (static and weights; no probe), for the diagnosis; a
    /// trace that could not run or write adds its finding here (`APRL-T001`, `APRL-T007`).
    pub lint: Outcome,
    /// The per-layer trace of both files, or why it could not run.
    pub trace: Result<crate::numeric::trace::Trace, crate::numeric::trace::TraceError>,
    /// `--assert-match`: a divergence fails the run (exit 1); without it the trace only reports.
    pub assert_match: bool,
}

impl RosettaOutcome {
    /// The trace ran and found a first divergence.
    pub fn diverged(&self) -> bool {
        self.trace
            .as_ref()
            .is_ok_and(|t| t.first_divergence.is_some())
    }
    /// The two inputs are one file or byte-identical (an `APRL-T009` finding that was not allowed).
    pub fn same_input(&self) -> bool {
        self.lint.findings.iter().any(|f| f.code == SAME_INPUT.code)
    }
    /// The one verdict of `rosetta` (JSON, the human summary line and the exit code all use it).
    pub fn verdict(&self) -> Verdict {
        use crate::numeric::trace::{Stop, TraceError};
        match &self.trace {
            Err(TraceError::Write(_)) => Verdict::Error,
            Err(TraceError::Inconclusive(_)) => Verdict::Inconclusive,
            Ok(t) if t.stopped == Some(Stop::Interrupted) => Verdict::Interrupted,
            // A file traced against itself (or its copy) proves nothing.
            Ok(_) if self.same_input() => Verdict::Inconclusive,
            Ok(_) if self.diverged() && self.assert_match => Verdict::Fail,
            Ok(_) => Verdict::Pass,
        }
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
    let how = crate::numeric::trace::TraceOptions {
        teacher_forced,
        stop_at_first: false,
        save,
        ..Default::default()
    };
    rosetta_with(a, b, opts, &how, &mut crate::numeric::trace::Silent)
}

/// Told what `rosetta` does as it goes: the pair's findings once the main job's checks are done
/// (before the trace runs), then every step of the trace.
pub trait RosettaObserver: crate::numeric::trace::Observer {
    /// The pair's findings, once the main job's checks are done and before the trace runs.
    fn linted(&mut self, _lint: &Outcome) {}
}

impl RosettaObserver for crate::numeric::trace::Silent {}

/// [`rosetta`] with `--stop-at-first`, and an observer that sees each step as it is compared (the
/// CLI streams the report and draws the progress line) and can stop the trace (Ctrl-C).
pub fn rosetta_with(
    a: &ModelView,
    b: &ModelView,
    opts: &Options,
    how: &crate::numeric::trace::TraceOptions<'_>,
    obs: &mut dyn RosettaObserver,
) -> RosettaOutcome {
    use crate::numeric::trace::TraceError;
    let mut o = opts.clone();
    o.no_probe = true;
    let mut lint_outcome = lint(a, Some(b), &o);
    obs.linted(&lint_outcome);
    let ra = Resolved::new(a, &opts.rules);
    let rb = Resolved::new(b, &opts.rules);
    let trace = crate::numeric::trace::run((a, &ra), (b, &rb), &opts.numeric(), how, obs);
    match &trace {
        Err(TraceError::Write(why)) => lint_outcome.findings.push(
            Finding::new(&CANNOT_WRITE, format!("--save-activations: {why}"))
                .help("write the activations to a directory that can be created and written"),
        ),
        Err(TraceError::Inconclusive(why)) => lint_outcome.findings.push(
            Finding::new(
                &INCONCLUSIVE,
                format!("inconclusive: the trace could not run: {why}"),
            )
            .help("a trace that did not run is never a pass"),
        ),
        Ok(_) => {}
    }
    RosettaOutcome {
        lint: lint_outcome,
        trace,
        assert_match: false,
    }
}

#[cfg(test)]
mod tests {
    use super::identical_bytes;
    use crate::format::Source;

    #[test]
    fn identical_bytes_reads_past_the_probe_windows() {
        let n = 1 << 20;
        let a: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let src = |v: Vec<u8>| Source::from_vec(v, "x");
        assert!(identical_bytes(&src(a.clone()), &src(a.clone())));
        // One byte between two probe windows (they are 4 KiB every ~16.6 KB): only the full pass
        // sees it.
        let mut b = a.clone();
        b[10_000] ^= 1;
        assert!(!identical_bytes(&src(a.clone()), &src(b)));
        let mut c = a.clone();
        c.push(0);
        assert!(!identical_bytes(&src(a), &src(c)));
    }
}
