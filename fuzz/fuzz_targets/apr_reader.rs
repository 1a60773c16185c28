//! Bytes as an `.apr`: `read_source` and `ModelView::from_source`, then row 0 of every tensor and
//! the tokenizer lists (see `apr_lint_fuzz::read_and_view` for the invariants asserted). The
//! container is recognised by magic, so the seeds (APR files) steer this target, not the name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = apr_lint_fuzz::read_and_view(data, "fuzz.apr");
});
