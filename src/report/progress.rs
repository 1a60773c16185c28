//! Progress on stderr, which the CLI installs only on a terminal and without `-q`: the `--deep`
//! bar and the `rosetta` line.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::numeric::scan::Progress;
use crate::numeric::trace::{Plan, Step};

/// A bar of bytes checked, drawn on stderr, cleared when the scan ends.
pub fn stderr_bar() -> Progress {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "--deep {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Progress(Arc::new(move |n, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.inc(n);
        if bar.position() >= total {
            bar.finish_and_clear();
        }
    }))
}

/// The `rosetta` progress line on stderr (`layer 12/28 · 3.1 s · eta 4.2 s`), redrawn a few times a
/// second, cleared when the trace ends. The estimate of the time left is proportional to the
/// weight values the remaining steps read ([`Plan`]), so the heavy logits step is counted.
pub struct TraceBar {
    bar: ProgressBar,
    n_layer: u32,
    plan: Plan,
}

impl TraceBar {
    /// Draw on stderr (the caller checks that stderr is a terminal and `-q` is not given).
    pub fn stderr(plan: &Plan) -> TraceBar {
        let bar = ProgressBar::with_draw_target(
            Some(plan.total_values().max(1)),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{msg} · {since}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("since", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&elapsed_and_eta(s.elapsed(), s.pos(), s.len()));
                }),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        TraceBar {
            bar,
            n_layer: plan.n_layer,
            plan: plan.clone(),
        }
    }

    /// `step` is about to run.
    pub fn running(&self, step: Step) {
        self.bar.set_message(step_label(step, self.n_layer));
    }

    /// `step` was compared.
    pub fn compared(&self, step: Step) {
        self.bar.set_position(self.plan.values_done(step));
    }

    /// Hide the line while `f` writes to the terminal (the streamed report), then redraw it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Clear the line for good.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for TraceBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// `layer 12/28` (1-based: the layer being run), `embedding`, `logits`.
pub fn step_label(step: Step, n_layer: u32) -> String {
    match step {
        Step::Embedding => "embedding".to_string(),
        Step::Layer(l) => format!("layer {}/{n_layer}", l + 1),
        Step::Head => "logits".to_string(),
    }
}

/// `3.1 s · eta 4.2 s`: the time so far and, once some work is done, the rest at the same pace.
pub fn elapsed_and_eta(elapsed: Duration, done: u64, total: Option<u64>) -> String {
    let secs = elapsed.as_secs_f64();
    match total {
        Some(total) if done > 0 && done <= total => format!(
            "{secs:.1} s · eta {:.1} s",
            secs * (total - done) as f64 / done as f64
        ),
        _ => format!("{secs:.1} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_as_the_issue_asks() {
        let line = format!(
            "{} · {}",
            step_label(Step::Layer(11), 28),
            elapsed_and_eta(Duration::from_millis(3100), 31, Some(73))
        );
        assert_eq!(line, "layer 12/28 · 3.1 s · eta 4.2 s");
        // No estimate before anything is done.
        assert_eq!(elapsed_and_eta(Duration::ZERO, 0, Some(10)), "0.0 s");
        assert_eq!(step_label(Step::Head, 28), "logits");
    }
}
