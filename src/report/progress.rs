//! The `--deep` progress bar on stderr (the CLI installs it only on a terminal, without `-q`).

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::numeric::scan::Progress;

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
