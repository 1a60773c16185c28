//! `rosetta` as it runs: the two files in step, each layer's `[ROSETTA]` lines on stdout as soon as
//! the layer is compared, `--stop-at-first`, Ctrl-C (exit 130 with what was compared), and the
//! progress line: on a terminal (a pseudo-terminal from util-linux `script`), not with `-q`, not
//! when stderr is not a terminal.
//!
//! The CLI tests run a 2-layer oracle model (`tiny-llama-q8_0`), which traces in milliseconds; the
//! test-only `APR_LINT_TEST_STEP_DELAY_MS` pauses after each layer, so "layer 0 was printed before
//! the end" and "interrupted after layer 0" are measured, not raced.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apr_lint::format::writer::apr::{AprWriter, Flavour};
use apr_lint::numeric::trace::{Observer, Plan, Step, Stop, Trace, TraceOptions, TraceStage};
use apr_lint::pipeline::{self, InputInfo, Options, Outcome, RosettaObserver};

const GGUF: &str = "gguf/tiny-llama-q8_0.gguf";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_apr-lint"));
    c.env("NO_COLOR", "1").env("APR_LINT_NO_TIMINGS", "1");
    c
}

/// The clean APR of the oracle model, and the same with `ffn_gate` ↔ `ffn_up` swapped in layer 1
/// (layer 0 agrees; layer 1's `ffn_out` is the first stage to diverge, `tests/trace.rs`).
fn pair_writers() -> (AprWriter, AprWriter) {
    let clean = clean_apr(GGUF, Flavour::Realizar);
    let mut bad = clean_apr(GGUF, Flavour::Realizar);
    let pos = |n: &str| bad.tensors.iter().position(|t| t.name == n).unwrap();
    let (gi, ui) = (pos("blk.1.ffn_gate.weight"), pos("blk.1.ffn_up.weight"));
    let gate = bad.tensors[gi].bytes.clone();
    bad.tensors[gi].bytes = bad.tensors[ui].bytes.clone();
    bad.tensors[ui].bytes = gate;
    (clean, bad)
}

fn write(dir: &Path, name: &str, w: &AprWriter) -> PathBuf {
    let p = dir.join(name);
    w.write(&p).unwrap();
    p
}

/// Read stdout line by line, noting when each arrived.
fn timed_lines(out: impl Read) -> Vec<(Instant, String)> {
    BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .map(|l| (Instant::now(), l))
        .collect()
}

#[test]
fn each_layer_is_printed_as_soon_as_it_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = pair_writers();
    let a = write(dir.path(), "clean.apr", &clean);
    let delay = Duration::from_millis(400);
    let mut child = bin()
        .args([
            "rosetta",
            a.to_str().unwrap(),
            fixture(GGUF).to_str().unwrap(),
        ])
        .env("APR_LINT_TEST_STEP_DELAY_MS", delay.as_millis().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = timed_lines(child.stdout.take().unwrap());
    let end = Instant::now();
    assert!(child.wait().unwrap().success());
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|(_, l)| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {lines:#?}"))
    };
    let layer0 = at("[ROSETTA] === Layer 0 ===");
    let layer0_out = layer0 + 1;
    assert!(lines[layer0_out].1.starts_with("[ROSETTA] layer_out "));
    assert!(layer0 < at("[ROSETTA] === Layer 1 ===") && layer0 < at("[ROSETTA] === Summary ==="));
    // Layer 1 (and its pause) and the head still had to run after layer 0's lines arrived: printed
    // at the end, they would arrive with everything else.
    let early = end - lines[layer0_out].0;
    assert!(
        early >= delay,
        "layer 0's lines arrived only {early:?} before the end"
    );
}

/// The streamed pieces of the human report add up to the report rendered whole.
#[test]
fn the_streamed_report_is_the_whole_report() {
    struct Pieces {
        inputs: Vec<InputInfo>,
        report: apr_lint::report::rosetta::TraceReport,
        text: String,
        steps: Vec<Step>,
    }
    impl Observer for Pieces {
        fn started(&mut self, t: &Trace, plan: &Plan) {
            assert_eq!(plan.n_layer, 2);
            self.text += &self.report.header(&self.inputs, t);
        }
        fn compared(&mut self, step: Step, stages: &[TraceStage]) {
            self.steps.push(step);
            self.text += &self.report.stages(stages);
        }
    }
    impl RosettaObserver for Pieces {
        fn linted(&mut self, lint: &Outcome) {
            self.inputs = lint.inputs.clone();
        }
    }
    let gv = gguf_view(GGUF);
    let (clean, bad) = pair_writers();
    for (w, verbose) in [(&clean, false), (&bad, false), (&bad, true)] {
        let av = apr_view(w);
        let mut p = Pieces {
            inputs: Vec::new(),
            report: apr_lint::report::rosetta::TraceReport::new(verbose),
            text: String::new(),
            steps: Vec::new(),
        };
        let how = TraceOptions::default();
        let r = pipeline::rosetta_with(&av, &gv, &Options::default(), &how, &mut p);
        p.text += &p.report.finish(&r);
        assert_eq!(
            p.steps,
            [Step::Embedding, Step::Layer(0), Step::Layer(1), Step::Head]
        );
        assert_eq!(
            p.text,
            apr_lint::report::rosetta::render_trace(&r, verbose),
            "verbose {verbose}"
        );
    }
}

#[test]
fn stop_at_first_ends_the_trace_at_the_first_divergent_stage() {
    let gv = gguf_view(GGUF);
    let (_, bad) = pair_writers();
    let av = apr_view(&bad);
    for teacher_forced in [false, true] {
        let how = TraceOptions {
            teacher_forced,
            stop_at_first: true,
            save: None,
            ..Default::default()
        };
        let r = pipeline::rosetta_with(
            &av,
            &gv,
            &Options::default(),
            &how,
            &mut apr_lint::numeric::trace::Silent,
        );
        let t = r.trace.as_ref().unwrap();
        let last = t.stages.last().unwrap();
        assert_eq!(
            (last.layer, last.stage, last.pass),
            (Some(1), "ffn_out", false)
        );
        // The embedding, layer 0's ten stages, layer 1's up to `ffn_out`.
        assert_eq!(
            t.stages.len(),
            1 + 10 + 9,
            "teacher-forced {teacher_forced}"
        );
        assert_eq!(t.stopped, Some(Stop::FirstDivergence));
        assert_eq!(
            t.first_divergence,
            Some(serde_json::json!({"layer": 1, "stage": "ffn_out"}))
        );
    }
    // The command line: the verdict stays the divergence (`--assert-match`: exit 1).
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "bad.apr", &bad);
    let g = fixture(GGUF);
    let args = [
        "rosetta",
        a.to_str().unwrap(),
        g.to_str().unwrap(),
        "--stop-at-first",
    ];
    let o = bin()
        .args(args)
        .args(["--format", "json", "--assert-match"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["summary"]["verdict"], "fail");
    assert_eq!(doc["trace"]["stopped"], "first_divergence");
    let stages = doc["trace"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 20);
    assert_eq!(stages[19]["stage"], "ffn_out");
    let o = bin().args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("first divergence at Layer 1 ffn_out"), "{out}");
    assert!(out.contains("(`--stop-at-first`)"), "{out}");
    assert!(!out.contains("=== Output ==="), "{out}");
}

/// SIGINT to a running trace: the report of what was compared, exit 130.
#[test]
fn ctrl_c_stops_the_trace_with_what_was_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = pair_writers();
    let a = write(dir.path(), "clean.apr", &clean);
    let g = fixture(GGUF);
    let sigint = |pid: u32| {
        let ok = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    // Human: interrupted in the pause after layer 0 (long enough never to end on its own first).
    let mut child = bin()
        .args(["rosetta", a.to_str().unwrap(), g.to_str().unwrap()])
        .env("APR_LINT_TEST_STEP_DELAY_MS", "20000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        seen += &line;
        let done = line.starts_with("[ROSETTA] layer_out ");
        line.clear();
        if done {
            sigint(child.id());
            break;
        }
    }
    out.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(15), "{seen}");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("[ROSETTA] === Layer 0 ==="), "{seen}");
    assert!(!seen.contains("=== Layer 1 ==="), "{seen}");
    assert!(
        seen.contains("[ROSETTA] INTERRUPTED: stopped (Ctrl-C) after 11 compared stages"),
        "{seen}"
    );
    assert!(seen.ends_with("no divergence until then\n"), "{seen}");
    assert!(seen.contains("\nINTERRUPTED: "), "{seen}");

    // JSON: the envelope at the end, with the partial trace. The [APR-LOAD] log on stderr comes
    // after the handler is installed and before the trace starts.
    let mut child = bin()
        .args(["rosetta", a.to_str().unwrap(), g.to_str().unwrap()])
        .args(["--format", "json"])
        .env("APR_LINT_TEST_STEP_DELAY_MS", "20000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(first.starts_with("[APR-LOAD]"), "{first}");
    sigint(child.id());
    let mut json = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["summary"]["verdict"], "interrupted");
    assert_eq!(doc["trace"]["stopped"], "interrupted");
    // Stopped before the trace began, or in the pause after layer 0 at the latest.
    let stages = doc["trace"]["stages"].as_array().unwrap();
    assert!(stages.len() <= 11, "{json}");
}

#[test]
fn no_progress_line_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = pair_writers();
    let a = write(dir.path(), "clean.apr", &clean);
    let o = bin()
        .args([
            "rosetta",
            a.to_str().unwrap(),
            fixture(GGUF).to_str().unwrap(),
        ])
        .env("APR_LINT_TEST_STEP_DELAY_MS", "300")
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for progress in ["layer 1/2", "layer 2/2", "logits ·", " · eta "] {
        assert!(!err.contains(progress), "{err}");
    }
    assert!(err.contains("[APR-LOAD]"), "{err}");
}

/// The observer is asked twice per step whether to stop: before the step runs, and once both
/// files have run it, before it is compared (the two files' step run at once, so there is no
/// point between them). A stop at any of these ends the trace with exactly the steps before it
/// compared, and the observer is told the same things in the same order as when the two files ran
/// one after the other.
#[test]
fn a_stop_at_any_point_ends_the_trace_after_the_steps_before_it() {
    struct StopAt {
        at: usize,
        calls: usize,
        log: Vec<String>,
    }
    impl Observer for StopAt {
        fn running(&mut self, step: Step) {
            self.log.push(format!("running {step:?}"));
        }
        fn compared(&mut self, step: Step, stages: &[TraceStage]) {
            self.log
                .push(format!("compared {step:?}: {}", stages.len()));
        }
        fn stop_requested(&mut self) -> bool {
            self.calls += 1;
            self.log.push(format!("stop? {}", self.calls));
            self.calls == self.at
        }
    }
    impl RosettaObserver for StopAt {}
    let gv = gguf_view(GGUF);
    let (clean, _) = pair_writers();
    let av = apr_view(&clean);
    let steps = [
        (Step::Embedding, 1),
        (Step::Layer(0), 10),
        (Step::Layer(1), 10),
        (Step::Head, 2),
    ];
    for at in 1..=2 * steps.len() + 1 {
        let mut obs = StopAt {
            at,
            calls: 0,
            log: Vec::new(),
        };
        let r = pipeline::rosetta_with(
            &av,
            &gv,
            &Options::default(),
            &TraceOptions::default(),
            &mut obs,
        );
        let t = r.trace.as_ref().unwrap();
        let mut want = Vec::new();
        let mut n_stages = 0;
        for (i, (step, n)) in steps.iter().enumerate() {
            want.push(format!("stop? {}", 2 * i + 1));
            if at == 2 * i + 1 {
                break;
            }
            want.push(format!("running {step:?}"));
            want.push(format!("stop? {}", 2 * i + 2));
            if at == 2 * i + 2 {
                break;
            }
            want.push(format!("compared {step:?}: {n}"));
            n_stages += n;
        }
        assert_eq!(obs.log, want, "stop at call {at}");
        assert_eq!(t.stages.len(), n_stages, "stop at call {at}");
        let stopped = (at <= 2 * steps.len()).then_some(Stop::Interrupted);
        assert_eq!(t.stopped, stopped, "stop at call {at}");
    }
}

/// Run `apr-lint` with a pseudo-terminal as stdin, stdout and stderr (util-linux `script`, which
/// copies what the terminal shows to its own stdout): what a user at a terminal sees.
fn on_a_terminal(args: &[&str]) -> (bool, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let cmd = std::iter::once(env!("CARGO_BIN_EXE_apr-lint"))
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("APR_LINT_NO_TIMINGS", "1")
        .env("APR_LINT_TEST_STEP_DELAY_MS", "400")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn a_progress_line_on_a_terminal_and_none_with_q() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = pair_writers();
    let a = write(dir.path(), "clean.apr", &clean);
    let g = fixture(GGUF);
    let (a, g) = (a.to_str().unwrap(), g.to_str().unwrap());

    let (ok, shown) = on_a_terminal(&["rosetta", a, g]);
    assert!(ok, "{shown}");
    // The report itself, and the progress line between its layers: the layer being run, the time
    // so far and, after layer 0 was compared, the estimate.
    assert!(shown.contains("[ROSETTA] === Layer 1 ==="), "{shown}");
    assert!(shown.contains("layer 2/2 · "), "{shown}");
    assert!(shown.contains(" s · eta "), "{shown}");

    let (ok, shown) = on_a_terminal(&["rosetta", a, g, "-q"]);
    assert!(ok, "{shown}");
    for progress in ["layer 1/2", "layer 2/2", " · eta "] {
        assert!(!shown.contains(progress), "{shown}");
    }
}
