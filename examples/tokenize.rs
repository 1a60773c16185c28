//! Print the token ids apr-lint's tokenizer gives each text, one JSON array per line, for
//! comparison with llama.cpp's `llama-tokenize --ids` (`scripts/tokenizer_oracle.sh`).
//!
//!     cargo run --example tokenize -- MODEL.gguf|MODEL.apr TEXT...

use apr_lint::model::ModelView;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, texts)) = args.split_first() else {
        eprintln!("usage: tokenize MODEL TEXT...");
        std::process::exit(2);
    };
    let view = match ModelView::open(std::path::Path::new(path)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let t = match view.text_tokenizer() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    for text in texts {
        println!("{:?}", t.encode(text));
    }
}
