//! The tool's own lints (`APRL-T…`): runs that compared nothing, inputs that changed, usage,
//! outputs. Raised by the pipeline, the config reader and `main`; listed by the registry.

use crate::diag::{Lint, Severity};

/// `APRL-T001`: nothing was compared, the run is inconclusive (exit 3).
pub static INCONCLUSIVE: Lint = Lint {
    code: "APRL-T001",
    class: "value-mismatch",
    severity: Severity::Warning,
    summary: "nothing was compared: the result is inconclusive",
    explain: "What it catches: a run that could not compare what it must — no rule set for the architecture, no role matched in both files, a probe that could not run.
Why it matters: a check that compared nothing is not a pass; CI must not go green on it.
How to fix: read the other findings: add rules for the architecture, pair the right files, or pass `--tokens`.
Precedent: aprender #2394 (a corrupt file reported VALID).",
};

/// `APRL-T002`: an input changed while it was read.
pub static INPUT_CHANGED: Lint = Lint {
    code: "APRL-T002",
    class: "container",
    severity: Severity::Error,
    summary: "an input file changed while it was being checked",
    explain: "What it catches: a file whose size or modification time changed between mapping and reporting (a download or conversion still writing it).
Why it matters: the results describe bytes that no longer exist; a file that shrinks under a memory map can crash a reader.
How to fix: wait for the writer to finish and lint again.
Precedent: pre-commit hooks racing an editor or a converter.",
};

/// `APRL-T003`: an override or `explain` names no registered code or class.
pub static UNKNOWN_CODE: Lint = Lint {
    code: "APRL-T003",
    class: "tool",
    severity: Severity::Error,
    summary: "not an apr-lint code or class",
    explain: "What it catches: `explain`, `-D/-W/-A` or a config file's `deny/warn/allow` naming a code or class apr-lint does not have.
Why it matters: a misspelt `-A` would otherwise be ignored silently, and the finding it meant to allow (or deny) keeps (or loses) its severity without anyone noticing.
How to fix: use a code from `apr-lint rules` (`APRL-L001`) or a class slug (`dims-reversed`); the message names the nearest known one.
Precedent: clippy's `unknown_lints`.",
};

/// `APRL-T004`: the output path is an input file.
pub static OUTPUT_IS_INPUT: Lint = Lint {
    code: "APRL-T004",
    class: "tool",
    severity: Severity::Error,
    summary: "the output path is an input file",
    explain: "What it catches: `dump -o` (or another output) naming the file being read.
Why it matters: writing the output would truncate the input under its own memory map.
How to fix: write to another path.
Precedent: `cp a a` refusing to copy a file onto itself.",
};

/// `APRL-T005`: `dump` names a tensor the file does not have.
pub static NO_SUCH_TENSOR: Lint = Lint {
    code: "APRL-T005",
    class: "tool",
    severity: Severity::Error,
    summary: "no tensor of that name in the file",
    explain: "What it catches: `dump FILE NAME` where FILE has no tensor NAME.
Why it matters: nothing can be written; the message names the matching tensor in the file's own naming scheme (GGUF `blk.0.attn_q.weight` ↔ APR `model.layers.0.self_attn.q_proj.weight`) when the rules know it.
How to fix: use a name from `apr-lint inspect FILE`.
Precedent: GGUF and APR name the same tensor differently.",
};

/// `APRL-T006`: a tensor's dtype cannot be decoded to f32.
pub static CANNOT_DECODE: Lint = Lint {
    code: "APRL-T006",
    class: "tool",
    severity: Severity::Error,
    summary: "the tensor could not be decoded to f32",
    explain: "What it catches: `dump` of a tensor whose dtype apr-lint cannot dequantize, or whose bytes do not decode.
Why it matters: no values can be written.
How to fix: lint the file (`apr-lint FILE`) to see what is wrong with the tensor.
Precedent: dtypes with no f32 decoder.",
};

/// `APRL-T007`: an output cannot be written.
pub static CANNOT_WRITE: Lint = Lint {
    code: "APRL-T007",
    class: "tool",
    severity: Severity::Error,
    summary: "an output could not be written",
    explain: "What it catches: `--save-activations` into a directory that cannot be created, a `dump` output that cannot be written, a report that cannot be written to stdout.
Why it matters: the command did not do its job; a CI step must not read it as a pass or as an inconclusive model.
How to fix: write to a directory that exists and is writable (exit 2).
Precedent: read-only build directories in CI.",
};

/// `APRL-T008`: bad usage or option value.
pub static BAD_USAGE: Lint = Lint {
    code: "APRL-T008",
    class: "tool",
    severity: Severity::Error,
    summary: "bad command-line usage or option value",
    explain: "What it catches: an option value out of range (`--threshold NaN`, `-1`, `inf`, `1`), token ids not in the vocabulary, an empty `--prompt`, an unknown subcommand or option, a format the subcommand cannot produce.
Why it matters: a threshold of NaN or infinity makes every comparison pass or fail regardless of the model; at 1 or more an all-zero output passes.
How to fix: follow the message; `apr-lint help COMMAND` lists each command's options (`--threshold` is a finite number > 0 and < 1, `--tokens` ids are below the vocabulary size).
Precedent: `--threshold inf` passed a norm scaled by 0.5.",
};

/// `APRL-T009`: the pair is one file, or two identical files (inconclusive).
pub static SAME_INPUT: Lint = Lint {
    code: "APRL-T009",
    class: "value-mismatch",
    severity: Severity::Warning,
    summary: "the two inputs are the same file or byte-identical: nothing was really compared",
    explain: "What it catches: `apr-lint X --against X`, or a pair of files with identical bytes.
Why it matters: a file always agrees with itself; the pair checks prove nothing about a conversion, so the run is inconclusive (exit 3), not a pass.
How to fix: pass the converted file and the file it was converted from.
Precedent: CI scripts that pass the same variable twice.",
};

/// Every tool lint, in code order (read by the registry).
pub static ALL: &[&Lint] = &[
    &INCONCLUSIVE,
    &INPUT_CHANGED,
    &UNKNOWN_CODE,
    &OUTPUT_IS_INPUT,
    &NO_SUCH_TENSOR,
    &CANNOT_DECODE,
    &CANNOT_WRITE,
    &BAD_USAGE,
    &SAME_INPUT,
];
