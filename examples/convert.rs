//! Convert a GGUF to APR the way a bug-free converter does (reverse dims, copy bytes):
//! `cargo run --example convert -- IN.gguf OUT.apr [aprender|realizar]`.
//!
//! The input is never written: an output path that names the input (the same path, a symlink to
//! it or a hard link of it) is refused, and the APR is written to a temporary file in OUT's
//! directory that is renamed over OUT only once it is complete. Errors are printed as messages and
//! exit with status 2.
use std::path::Path;
use std::process::ExitCode;

use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::write_gguf_as_apr;
use apr_lint::format::{Source, gguf};

const USAGE: &str = "usage: convert IN.gguf OUT.apr [aprender|realizar]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (input, output, flavour) = match args.as_slice() {
        [i, o] => (i, o, Flavour::Aprender),
        [i, o, f] => (
            i,
            o,
            match f.as_str() {
                "aprender" => Flavour::Aprender,
                "realizar" => Flavour::Realizar,
                other => {
                    return Err(format!(
                        "error: unknown flavour `{other}` (aprender or realizar)\n{USAGE}"
                    ));
                }
            },
        ),
        _ => return Err(USAGE.into()),
    };
    let (input, output) = (Path::new(input), Path::new(output));
    if same_file(input, output) {
        return Err(format!(
            "error: the output `{}` is the input file; convert never writes to its input",
            output.display()
        ));
    }
    let read_error = |e: apr_lint::diag::ReadError| {
        let mut m = format!("error[{}]: {e}", e.code());
        if !e.help.is_empty() {
            m.push_str(&format!("\n  help: {}", e.help));
        }
        m
    };
    let src = Source::open(input).map_err(read_error)?;
    let g = gguf::read(src).map_err(read_error)?;

    // Write next to OUT (so the rename stays on one file system), then rename over OUT.
    let out_err = |what: &str, e: &dyn std::fmt::Display| {
        format!("error: cannot {what} `{}`: {e}", output.display())
    };
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".convert-")
        .suffix(".apr.tmp")
        .tempfile_in(dir)
        .map_err(|e| out_err("create a temporary file next to", &e))?;
    write_gguf_as_apr(&g, flavour, tmp.path()).map_err(|e| out_err("write", &e))?;
    if !g.source.is_unchanged() {
        return Err(format!(
            "error: `{}` changed while it was converted; nothing was written",
            input.display()
        ));
    }
    tmp.persist(output)
        .map_err(|e| out_err("rename the temporary file to", &e.error))?;
    Ok(())
}

/// Whether `a` and `b` name the same file: the same canonical path, or (on Unix) the same inode,
/// which also catches hard links.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::canonicalize(a), std::fs::canonicalize(b))
        && x == y
    {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}
