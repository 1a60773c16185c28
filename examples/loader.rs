//! A minimal model loader that runs apr-lint's load-time checks before it trusts a file:
//!
//! ```text
//! cargo run --example loader -- MODEL [--against REFERENCE]
//! ```
//!
//! It maps MODEL (and REFERENCE when given) read-only, runs the checks of the pair (or of the one
//! file), routes the `[APR-LOAD]` lines through its own logger, and then decides by severity:
//! any error finding and it refuses to load (exit 1, its message naming the finding's code, class
//! and tensor); a file it cannot read at all is refused too (exit 2); otherwise it "loads" (exit 0).
//! Only the library is used, so the loader works with `default-features = false` as well.
use std::path::PathBuf;
use std::process::ExitCode;

use apr_lint::pipeline::{self, Options};
use apr_lint::{LoadLogMode, Severity, load_log};

const USAGE: &str = "usage: loader MODEL [--against REFERENCE]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model, reference) = match args.as_slice() {
        [m] => (PathBuf::from(m), None),
        [m, flag, r] if flag == "--against" => (PathBuf::from(m), Some(PathBuf::from(r))),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Map the files. A file that cannot be read is a coded `ReadError` with a byte offset.
    let open = |path: &PathBuf| {
        pipeline::load(path).map_err(|e| {
            eprintln!(
                "loader: refusing to load {}: cannot read it: {} {}",
                path.display(),
                e.code(),
                e
            );
            ExitCode::from(2)
        })
    };
    let view = match open(&model) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let reference = match reference.as_ref().map(open).transpose() {
        Ok(r) => r,
        Err(code) => return code,
    };

    // The checks: containers, rules, the pair, the sampled weight comparison and the probe.
    let opts = Options::default();
    let outcome = pipeline::lint(&view, reference.as_ref(), &opts);

    // The loader's own logger receives the `[APR-LOAD]` lines (an APR file has them; a GGUF none).
    load_log(
        &view,
        &opts.rules,
        &outcome.findings,
        LoadLogMode::Summary,
        |line| eprintln!("loader log: {line}"),
    );

    // Decide by severity: one error finding is enough to refuse.
    if let Some(f) = outcome
        .findings
        .iter()
        .find(|f| f.severity == Severity::Error)
    {
        let errors = outcome.count(Severity::Error);
        eprintln!(
            "loader: refusing to load {}: {} ({}){}: {} [{} error finding{}]",
            model.display(),
            f.code,
            f.class(),
            f.tensor
                .as_deref()
                .map(|t| format!(" in `{t}`"))
                .unwrap_or_default(),
            f.message,
            errors,
            if errors == 1 { "" } else { "s" }
        );
        return ExitCode::from(1);
    }
    let warnings = outcome.count(Severity::Warning);
    println!(
        "loader: loaded {} ({} tensors{}, {} warning{})",
        model.display(),
        view.tensors.len(),
        if reference.is_some() {
            ", checked against its reference"
        } else {
            ""
        },
        warnings,
        if warnings == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}
