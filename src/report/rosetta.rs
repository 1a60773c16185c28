//! The `[ROSETTA]` report of the probe stages (cli.md), and the one-line recommendation.

use std::fmt::Write as _;

use serde_json::Value;

use crate::diag::Severity;
use crate::pipeline::Outcome;

/// A stage metric from the probe's JSON: `null` is a non-finite max/mean diff, which the probe's
/// metric makes +inf (a NaN on either side), as `rosetta` and the finding print it.
fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::INFINITY)
}

/// A JSON array of integers as dims are printed everywhere (`[4, 256]`).
fn list(v: &Value) -> String {
    match v
        .as_array()
        .map(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
    {
        Some(Some(d)) => crate::diag::fmt_dims(&d),
        _ => v.to_string(),
    }
}

/// The `[ROSETTA]` lines of the main job's probe.
pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let Some(p) = &o.probe else { return s };
    let a = o.inputs.first().map(|i| (i.format, i.path.as_str()));
    let b = o.inputs.get(1).map(|i| (i.format, i.path.as_str()));
    for (fmt, path) in [a, b].into_iter().flatten() {
        let _ = writeln!(s, "[ROSETTA] Loading {}: {path}", fmt.to_uppercase());
    }
    let _ = writeln!(s, "[ROSETTA] Token IDs: {}", list(&p["tokens"]));
    if p["unpermuted"] == true {
        let _ = writeln!(
            s,
            "[ROSETTA] Q/K rows compared after putting them in the reference's RoPE row order (declared rope types differ)"
        );
    }
    let mut layer: Option<Option<u64>> = None;
    for st in p["stages"].as_array().into_iter().flatten() {
        let l = st["layer"].as_u64();
        if layer != Some(l) {
            let _ = writeln!(
                s,
                "\n[ROSETTA] === {} ===",
                match l {
                    None => "Embedding".to_string(),
                    Some(n) => format!("Layer {n}"),
                }
            );
            layer = Some(l);
        }
        let ok = st["pass"] == true;
        let _ = writeln!(
            s,
            "[ROSETTA] {:<11} dims {} vs {}: max_diff={:.3e}, mean_diff={:.3e}, cosine={:.6} {}",
            st["stage"].as_str().unwrap_or("?"),
            list(&st["apr_dims"]),
            list(&st["gguf_dims"]),
            f(&st["max_diff"]),
            f(&st["mean_diff"]),
            f(&st["cosine"]),
            if ok {
                "✓".to_string()
            } else {
                format!("✗ DIVERGENCE! ({})", st["criterion"].as_str().unwrap_or(""))
            }
        );
    }
    let _ = writeln!(s, "\n[ROSETTA] === Summary ===");
    let first = p["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|st| st["pass"] != true);
    match first {
        None => {
            let _ = writeln!(s, "[ROSETTA] PASSED: every probe stage agrees");
        }
        Some(st) => {
            let at = format!(
                "{}{}",
                st["layer"]
                    .as_u64()
                    .map(|l| format!("Layer {l} "))
                    .unwrap_or_default(),
                st["stage"].as_str().unwrap_or("?")
            );
            match allowed_note(o) {
                Some(note) => {
                    let _ = writeln!(
                        s,
                        "[ROSETTA] DIVERGED (allowed): first divergence at {at}; {note}"
                    );
                }
                // No error left (e.g. `-W` made the probe's finding a warning): not a failure.
                None if o.count(Severity::Error) == 0 => {
                    let _ = writeln!(
                        s,
                        "[ROSETTA] DIVERGED (warning): first divergence at {at}; no error was reported for it"
                    );
                }
                None => {
                    let _ = writeln!(s, "[ROSETTA] FAILED: first divergence at {at}");
                }
            }
        }
    }
    s
}

/// When no error is left but findings were allowed: which ones, and by which config line or flag.
/// The probe's own findings first (they are what the divergence is about).
fn allowed_note(o: &Outcome) -> Option<String> {
    if o.count(Severity::Error) > 0 || o.allowed.is_empty() {
        return None;
    }
    let probe: Vec<_> = o
        .allowed
        .iter()
        .filter(|a| crate::numeric::probe::ALL.iter().any(|l| l.code == a.code))
        .collect();
    let shown: Vec<_> = if probe.is_empty() {
        o.allowed.iter().collect()
    } else {
        probe
    };
    let mut by: Vec<String> = Vec::new();
    for a in &shown {
        let x = format!("{} {} by {}", a.code, a.class, a.by);
        if !by.contains(&x) {
            by.push(x);
        }
    }
    Some(format!("the divergence was allowed: {}", by.join("; ")))
}

/// The first error finding's help, as one line: what to fix first.
pub fn recommendation(o: &Outcome) -> Option<String> {
    let f = o.findings.iter().find(|f| f.severity == Severity::Error)?;
    Some(format!(
        "Recommendation: {} ({} {}{})",
        f.help,
        f.code,
        f.class(),
        f.tensor
            .as_ref()
            .map(|t| format!(", `{t}`"))
            .unwrap_or_default()
    ))
}

/// The human `[ROSETTA]` report of `apr-lint rosetta`.
pub fn render_trace(r: &crate::pipeline::RosettaOutcome, verbose: bool) -> String {
    TraceReport::new(verbose).finish(r)
}

/// The human `[ROSETTA]` report in pieces, for printing it as the trace runs: [`TraceReport::header`]
/// once the trace has started, [`TraceReport::stages`] after each step, [`TraceReport::finish`] at
/// the end (whatever was not printed yet, the summary and the verdict line). The pieces add up to
/// [`render_trace`], byte for byte.
pub struct TraceReport {
    verbose: bool,
    header_done: bool,
    /// The layer of the last `=== … ===` heading printed.
    layer: Option<Option<u32>>,
    /// Stages already rendered.
    shown: usize,
}

impl TraceReport {
    /// An empty report; `verbose` shows every stage (otherwise the embedding, each layer's output,
    /// the logits and the divergent stages).
    pub fn new(verbose: bool) -> TraceReport {
        TraceReport {
            verbose,
            header_done: false,
            layer: None,
            shown: 0,
        }
    }

    /// The `Loading` lines of both inputs, the token ids and the criterion.
    pub fn header(
        &mut self,
        inputs: &[crate::pipeline::InputInfo],
        t: &crate::numeric::trace::Trace,
    ) -> String {
        let mut s = loading(inputs);
        self.trace_header(&mut s, t);
        s
    }

    fn trace_header(&mut self, s: &mut String, t: &crate::numeric::trace::Trace) {
        self.header_done = true;
        let _ = writeln!(s, "[ROSETTA] Token IDs: {:?}", t.tokens);
        let _ = writeln!(
            s,
            "[ROSETTA] Criterion: {}{}",
            t.criterion,
            if t.teacher_forced {
                " (teacher-forced)"
            } else {
                ""
            }
        );
    }

    /// The lines of newly compared stages (without `-v`: the embedding, each `layer_out`, the logits
    /// and every divergent stage).
    pub fn stages(&mut self, stages: &[crate::numeric::trace::TraceStage]) -> String {
        let mut s = String::new();
        self.shown += stages.len();
        for st in stages {
            let fail = !st.pass;
            if !self.verbose && !fail && !matches!(st.stage, "embedding" | "layer_out" | "logits") {
                continue;
            }
            if self.layer != Some(st.layer) {
                let _ = writeln!(
                    s,
                    "\n[ROSETTA] === {} ===",
                    match st.layer {
                        None if st.stage == "embedding" => "Embedding".to_string(),
                        None => "Output".to_string(),
                        Some(l) => format!("Layer {l}"),
                    }
                );
                self.layer = Some(st.layer);
            }
            let _ = writeln!(
                s,
                "[ROSETTA] {:<11} dims {:?} vs {:?}: max_diff={:.3e}, mean_diff={:.3e}, cosine={:.6} {}",
                st.stage,
                st.apr_dims,
                st.gguf_dims,
                st.max_diff,
                st.mean_diff,
                st.cosine,
                if fail { "✗ DIVERGENCE!" } else { "✓" }
            );
        }
        s
    }

    /// What was not printed yet, then the summary and the verdict line.
    pub fn finish(&mut self, r: &crate::pipeline::RosettaOutcome) -> String {
        use crate::numeric::trace::Stop;
        let mut s = String::new();
        if !self.header_done {
            s.push_str(&loading(&r.lint.inputs));
        }
        let t = match &r.trace {
            Ok(t) => t,
            Err(_) => {
                s.push_str(&verdict_line(r));
                return s;
            }
        };
        if !self.header_done {
            self.trace_header(&mut s, t);
        }
        let rest = t.stages.get(self.shown..).unwrap_or_default();
        s.push_str(&self.stages(rest));
        let _ = writeln!(s, "\n[ROSETTA] === Summary ===");
        let diagnosis = |s: &mut String| match r
            .lint
            .findings
            .iter()
            .find(|f| f.severity == crate::diag::Severity::Error)
        {
            Some(f) => {
                let _ = writeln!(
                    s,
                    "[ROSETTA] DIAGNOSIS: {} ({} {})",
                    f.message,
                    f.code,
                    f.class()
                );
                let _ = writeln!(s, "[ROSETTA] Recommendation: {}", f.help);
            }
            None => {
                let _ = writeln!(
                    s,
                    "[ROSETTA] DIAGNOSIS: no layout cause found in the weights; the values differ beyond the criterion"
                );
            }
        };
        match (divergence_at(t), t.stopped) {
            (at, Some(Stop::Interrupted)) => {
                let _ = writeln!(
                    s,
                    "[ROSETTA] INTERRUPTED: stopped (Ctrl-C) after {} compared stages; {}",
                    t.stages.len(),
                    at.as_deref()
                        .map_or("no divergence until then".to_string(), |w| format!(
                            "first divergence at {w}"
                        ))
                );
                if at.is_some() {
                    diagnosis(&mut s);
                }
            }
            (None, _) => {
                let _ = writeln!(
                    s,
                    "[ROSETTA] PASSED: no divergence in {} stages",
                    t.stages.len()
                );
            }
            (Some(at), stopped) => {
                if r.assert_match {
                    let _ = writeln!(s, "[ROSETTA] FAILED: first divergence at {at}");
                } else {
                    let _ = writeln!(
                        s,
                        "[ROSETTA] DIVERGED: first divergence at {at} (reported only; `--assert-match` makes it fail)"
                    );
                }
                if stopped == Some(Stop::FirstDivergence) {
                    let _ = writeln!(
                        s,
                        "[ROSETTA] Stopped there (`--stop-at-first`): {} stages compared",
                        t.stages.len()
                    );
                }
                diagnosis(&mut s);
            }
        }
        s.push_str(&verdict_line(r));
        s
    }
}

/// `Layer 3 ffn_out` / `logits`: where the trace first diverged, if it did.
fn divergence_at(t: &crate::numeric::trace::Trace) -> Option<String> {
    let d = t.first_divergence.as_ref()?;
    let stage = d["stage"].as_str().unwrap_or("?");
    Some(match d["layer"].as_u64() {
        Some(l) => format!("Layer {l} {stage}"),
        None => stage.to_string(),
    })
}

/// `[ROSETTA] Loading APR: path`, one line per input.
fn loading(inputs: &[crate::pipeline::InputInfo]) -> String {
    let mut s = String::new();
    for i in inputs {
        let _ = writeln!(
            s,
            "[ROSETTA] Loading {}: {}",
            i.format.to_uppercase(),
            i.path
        );
    }
    s
}

/// The one verdict line of `rosetta` (what `-q` keeps), its word from `RosettaOutcome::verdict`.
pub fn verdict_line(r: &crate::pipeline::RosettaOutcome) -> String {
    let v = r.verdict();
    let why = match &r.trace {
        Err(crate::numeric::trace::TraceError::Write(e)) => {
            format!("the activations could not be written: {e}")
        }
        Err(crate::numeric::trace::TraceError::Inconclusive(e)) => {
            format!("the trace could not run: {e}")
        }
        Ok(t) if t.stopped == Some(crate::numeric::trace::Stop::Interrupted) => format!(
            "the trace was stopped (Ctrl-C) after {} compared stages, {}",
            t.stages.len(),
            divergence_at(t).map_or("no divergence until then".to_string(), |w| format!(
                "first divergence at {w}"
            ))
        ),
        Ok(_) if r.same_input() => {
            "the two inputs are the same file or byte-identical (APRL-T009): nothing was really compared".to_string()
        }
        Ok(t) => match divergence_at(t) {
            None => format!("no divergence in {} stages", t.stages.len()),
            Some(at) if r.assert_match => format!("first divergence at {at}"),
            Some(at) => format!(
                "first divergence at {at}, reported only (`--assert-match` makes a divergence exit 1)"
            ),
        },
    };
    format!("{}: {why}\n", v.word())
}

/// JSON of `rosetta`: the main job's envelope with `trace` instead of `probe`, and the verdict of
/// the trace (`RosettaOutcome::verdict`).
pub fn trace_json(r: &crate::pipeline::RosettaOutcome, timings: bool) -> Value {
    let mut doc = crate::report::json::envelope(&r.lint, r.verdict(), timings);
    if let Some(o) = doc.as_object_mut() {
        o.remove("probe");
        o.insert(
            "trace".into(),
            match &r.trace {
                Ok(t) => serde_json::to_value(t).unwrap_or(Value::Null),
                Err(_) => Value::Null,
            },
        );
        if let Err(e) = &r.trace {
            o.insert("trace_error".into(), Value::String(e.to_string()));
        }
    }
    doc
}
