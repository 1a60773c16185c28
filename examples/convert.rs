//! Convert a GGUF to APR the way a bug-free converter does (reverse dims, copy bytes):
//! `cargo run --example convert -- in.gguf out.apr [aprender|realizar]`.
use apr_lint::format::writer::apr::Flavour;
use apr_lint::format::writer::convert::write_gguf_as_apr;
use apr_lint::format::{Source, gguf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: convert IN.gguf OUT.apr [aprender|realizar]");
        std::process::exit(2);
    }
    let flavour = match args.get(3).map(String::as_str) {
        Some("realizar") => Flavour::Realizar,
        _ => Flavour::Aprender,
    };
    let g = gguf::read(Source::open(std::path::Path::new(&args[1]))?)?;
    write_gguf_as_apr(&g, flavour, std::path::Path::new(&args[2]))?;
    Ok(())
}
