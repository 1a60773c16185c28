//! Bytes as two files (a u16 length prefix splits them: see `apr_lint_fuzz::split_pair`): both
//! read and viewed, then — when both are readable — the per-file checks of each and the pair check
//! under the built-in rules. `apr_lint::pipeline` has no `lint_sources`; `pipeline::lint` would
//! also run the numeric stage (whole-tensor dequantization), too slow per execution, so this
//! target calls `check::check_file` and `check::pair::check` as the pipeline does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (a, b) = apr_lint_fuzz::split_pair(data);
    let va = apr_lint_fuzz::read_and_view(a, "a.apr");
    let vb = apr_lint_fuzz::read_and_view(b, "b.gguf");
    if let (Some(va), Some(vb)) = (va, vb) {
        let _ = apr_lint_fuzz::check_pair(&va, &vb, apr_lint_fuzz::builtin_rules());
    }
});
