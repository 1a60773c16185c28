//! Write a tiny generated pair (hidden 256, 2 layers, F32) to try batch mode or the pre-commit hook
//! on: a GGUF and its correct APR conversion, or, with `--transpose`, an APR whose layer-0 Q weight
//! holds the data transposed under the right dims (the bug `APRL-N002 transposed` names):
//! `cargo run --example make_pair -- OUT.gguf OUT.apr [--transpose]`. Exit 2 with a message on error.
use std::path::Path;
use std::process::ExitCode;

use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::gguf_to_apr;
use apr_lint::format::writer::generate::{TINY, gguf_model};
use apr_lint::format::{Source, gguf};
use apr_lint::quant::DType;

const USAGE: &str = "usage: make_pair OUT.gguf OUT.apr [--transpose]";
const TRANSPOSED: &str = "model.layers.0.self_attn.q_proj.weight";

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
    let (gguf_out, apr_out, transpose) = match args.as_slice() {
        [g, a] => (g, a, false),
        [g, a, t] if t == "--transpose" => (g, a, true),
        _ => return Err(USAGE.into()),
    };
    let (gguf_out, apr_out) = (Path::new(gguf_out), Path::new(apr_out));
    let fail = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        format!("error: cannot {what} `{}`: {e}", p.display())
    };
    gguf_model(&TINY, DType::F32, 7)
        .write(gguf_out)
        .map_err(|e| fail("write", gguf_out, &e))?;
    let src = Source::open(gguf_out).map_err(|e| fail("read back", gguf_out, &e))?;
    let g = gguf::read(src).map_err(|e| fail("read back", gguf_out, &e))?;
    let mut apr = gguf_to_apr(&g, Flavour::Aprender);
    if transpose {
        let t = apr
            .tensors
            .iter_mut()
            .find(|t| t.name == TRANSPOSED)
            .ok_or_else(|| format!("error: no `{TRANSPOSED}` in the generated model"))?;
        let n = TINY.hidden as usize;
        let v: Vec<f32> = t
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.len() != n * n {
            return Err(format!("error: `{TRANSPOSED}` is not {n}×{n} F32"));
        }
        t.bytes = (0..n * n)
            .flat_map(|i| v[(i % n) * n + i / n].to_le_bytes())
            .collect();
    }
    apr.write(apr_out).map_err(|e| fail("write", apr_out, &e))?;
    Ok(())
}
