//! Bytes as a `.safetensors` (and, when UTF-8, as a `model.safetensors.index.json`): the strict
//! reader and the index parser (see `apr_lint_fuzz::read_safetensors` for the invariants asserted).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apr_lint_fuzz::read_safetensors(data);
});
