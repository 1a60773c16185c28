//! The whole main job on a pair, as the CLI runs it: bytes split into two files (see
//! `apr_lint_fuzz::split_pair`), both read and viewed with the reader invariants checked, then
//! `pipeline::lint` — static checks, the sampled weight comparison with its transform search, the
//! layer-0 probe with each file's own tokenizer — and the JSON, SARIF, GitHub and human reports of
//! the outcome (the `[ROSETTA]` probe report among them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (a, b) = apr_lint_fuzz::split_pair(data);
    let va = apr_lint_fuzz::read_and_view(a, "a.apr");
    let vb = apr_lint_fuzz::read_and_view(b, "b.gguf");
    if let (Some(va), Some(vb)) = (va, vb) {
        apr_lint_fuzz::lint_full(&va, &vb);
    }
});
