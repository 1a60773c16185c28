//! Bytes as a `.gguf`: `read_source` and `ModelView::from_source`, then row 0 of every tensor and
//! the tokenizer lists (see `apr_lint_fuzz::read_and_view` for the invariants asserted).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = apr_lint_fuzz::read_and_view(data, "fuzz.gguf");
});
