//! Bytes as UTF-8 rule-file text: `RuleSet::from_texts`; when the rules are valid, resolve a small
//! model pair against them and run the per-file and pair checks (hostile formulas, templates and
//! tolerances meet real tensors).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use apr_lint::model::ModelView;
use apr_lint::rules::RuleSet;
use libfuzzer_sys::fuzz_target;

/// A micro qwen2 GGUF and its APR conversion, made once per process.
fn views() -> &'static (ModelView, ModelView) {
    static VIEWS: OnceLock<(ModelView, ModelView)> = OnceLock::new();
    VIEWS.get_or_init(|| {
        use apr_lint::format::writer::{apr::Flavour, convert::gguf_to_apr, generate};
        let shape = generate::Shape {
            arch: "qwen2",
            hidden: 32,
            layers: 2,
            heads: 2,
            kv_heads: 1,
            ffn: 64,
            vocab: 8,
            tied: false,
        };
        let gguf = generate::gguf_model(&shape, apr_lint::DType::Q8_0, 1).to_bytes();
        let g = apr_lint::format::gguf::read(apr_lint::Source::from_vec(gguf.clone(), "m.gguf"))
            .expect("writer output reads");
        let apr = gguf_to_apr(&g, Flavour::Aprender).to_bytes();
        let view = |b: Vec<u8>, n: &str| {
            ModelView::from_source(apr_lint::Source::from_vec(b, n)).expect("writer output reads")
        };
        (view(apr, "m.apr"), view(gguf, "m.gguf"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = RuleSet::from_texts(&[(PathBuf::from("x.toml"), text.to_owned())]) else {
        return;
    };
    let (a, b) = views();
    let _ = apr_lint_fuzz::check_pair(a, b, &rules);
});
