//! The probe's lints, in code order (the registry lists them through [`ALL`]).

use crate::diag::{Lint, Severity};

pub static PROBE_DIVERGES_RETIRED: Lint = Lint {
    code: "APRL-N020",
    class: "value-mismatch",
    severity: Severity::Error,
    summary: "retired, never emitted: replaced by APRL-N030 (value-mismatch), APRL-N031 (metadata-mismatch), APRL-N032 (missing-tensor) and APRL-N033 (unexpected-tensor)",
    explain: "RETIRED: this code is no longer emitted. It concluded four bug classes at run time; each now has its own code: APRL-N030 (value-mismatch: the probe diverges), APRL-N031 (metadata-mismatch: a RoPE setting, θ or context scaling, differs), APRL-N032 (missing-tensor: Llama 3's RoPE frequency divisors were dropped) and APRL-N033 (unexpected-tensor: divisors the reference does not have).
What it catches: nothing any more. It used to flag the first stage of layer 0 where the two files' activations differ.
Why it matters: a code keeps one class, so SARIF rule metadata, `-A <class>`, JSON and `explain` agree.
How to fix: read APRL-N030 … APRL-N033; `-D/-W/-A APRL-N020` still applies to all four.
Precedent: llama.cpp PR #2773, ik_llama.cpp PR #402.",
};

pub static PROBE_DIVERGES: Lint = Lint {
    code: "APRL-N030",
    class: "value-mismatch",
    severity: Severity::Error,
    summary: "the layer-0 probe diverges between the two files",
    explain: "What it catches: the first stage of layer 0 (embedding, attn_norm, Q, K, V, Q/K after RoPE at the prompt positions or at a far position) where the two files' activations differ beyond the threshold, when no RoPE setting or tensor explains it (those are APRL-N031 … N033); also RoPE frequency divisors present on both sides with different values.
Why it matters: this is what the model computes; a divergence here means the converted file produces different text.
How to fix: read the stage: embedding → the embedding rows or the tokenizer; attn_norm → norm weight or eps; q/k/v → that projection's layout; only after RoPE → the rope type, the Q/K row order or Llama 3's `rope_freqs.weight` values (inverse frequencies stored instead of divisors).
Precedent: karpathy/llama2.c PR #286 (degenerates after ~20 tokens), aprender CORRECTNESS-011.",
};

pub static PROBE_ROPE_SETTING: Lint = Lint {
    code: "APRL-N031",
    class: "metadata-mismatch",
    severity: Severity::Error,
    summary: "the probe diverges after RoPE because a RoPE setting differs (θ or context scaling)",
    explain: "What it catches: Q and K that agree before RoPE while the rotated Q/K differ, with the two files' rope θ or RoPE context scaling (GGUF `rope.scaling.*`, APR `rope_scaling`) different; or a divergence only at the far position (θ).
Why it matters: position 0 is unrotated, so short tests pass; every later position is rotated by other angles.
How to fix: copy `rope_theta` and the RoPE scaling from the reference.
Precedent: llama.cpp PR #2773 (rope base), aprender CORRECTNESS-011.",
};

pub static PROBE_FACTORS_MISSING: Lint = Lint {
    code: "APRL-N032",
    class: "missing-tensor",
    severity: Severity::Error,
    summary: "the probe diverges after RoPE: Llama 3's RoPE frequency divisors were dropped",
    explain: "What it catches: Q and K that agree before RoPE while the rotated Q/K differ, with the reference dividing its rotary angles by Llama 3's frequency factors (`rope_freqs.weight` or a `llama3` `rope_scaling`) and the file under test having neither.
Why it matters: the converted model rotates with plain RoPE: it degrades beyond the original context and differs from the reference at every position past 0.
How to fix: copy `rope_freqs.weight` from the reference unchanged (F32, one divisor per rotary pair), or record the `llama3` `rope_scaling`.
Precedent: ik_llama.cpp PR #402, porting llama.cpp PR #9396 (the converter silently left out `rope_freqs.weight` of Llama-3.1-based models).",
};

pub static PROBE_FACTORS_EXTRA: Lint = Lint {
    code: "APRL-N033",
    class: "unexpected-tensor",
    severity: Severity::Error,
    summary: "the probe diverges after RoPE: the file divides its rotary angles by factors the reference does not have",
    explain: "What it catches: Q and K that agree before RoPE while the rotated Q/K differ, with the file under test dividing its rotary angles by frequency factors (`rope_freqs.weight` or a `llama3` `rope_scaling`) that the reference does not have.
Why it matters: the converted model rotates differently from its reference at every position past 0.
How to fix: drop the factors, or check that the reference is the file this one was converted from.
Precedent: ik_llama.cpp PR #402.",
};

pub static PROBE_ROPE: Lint = Lint {
    code: "APRL-N021",
    class: "rope-permuted",
    severity: Severity::Error,
    summary: "Q/K agree before RoPE but not after it",
    explain: "What it catches: projections that match while the rotated Q/K differ: the Q/K row order does not match the rope type the file declares (NORM needs llama.cpp's permuted rows, NEOX the Hugging Face order), or θ differs (then only the far position diverges).
Why it matters: position 0 is unrotated, so short tests pass; generation degrades after a few tokens.
How to fix: set `rope_type` to what the row order needs (HF order → 2, GGUF order → 0), or permute the rows; for θ copy `rope_theta` from the reference.
Precedent: llama.cpp #2376, transformers #31766, aprender CORRECTNESS-011.",
};

pub static PROBE_SKIPPED: Lint = Lint {
    code: "APRL-N022",
    class: "value-mismatch",
    severity: Severity::Warning,
    summary: "the probe could not run",
    explain: "What it catches: a probe that could not run: no tokenizer and no `--tokens`, missing layer-0 tensors, a dtype without values, an unknown config quantity.
Why it matters: the activations were not compared; other stages may still have compared weights.
How to fix: where the prompt could not be tokenized, pass `--tokens 1,2,3`; otherwise fix what the message and the other findings name (the probe runs once both files load as the same model).
Precedent: —",
};

pub static PROBE_TOKENS: Lint = Lint {
    code: "APRL-N023",
    class: "tokenizer-mismatch",
    severity: Severity::Error,
    summary: "the two files tokenize the prompt differently",
    explain: "What it catches: the prompt's ids from the file under test's own tokenizer differ from the reference's.
Why it matters: the same text becomes a different input; the probe then runs on the reference's ids.
How to fix: copy the reference's tokenizer (vocabulary, merges, pre-tokenizer type, BOS handling).
Precedent: aprender #1623, PR #1105.",
};

pub static PROBE_BOS_POLICY: Lint = Lint {
    code: "APRL-N034",
    class: "tokenizer-mismatch",
    severity: Severity::Warning,
    summary: "the file under test does not record whether to add BOS, and the two tokenizations differ only by it",
    explain: "What it catches: a file under test with no BOS policy (no `tokenizer.add_bos_token`) whose prompt ids differ from the reference's only by the leading BOS token, vocabulary, merges and special ids agreeing. The probe runs with the reference's ids (the same BOS) on both sides.
Why it matters: a loader of the converted file must guess whether to prepend BOS; a wrong guess shifts every position and changes the output, most for short prompts.
How to fix: record the reference's policy in the metadata, e.g. `\"tokenizer.add_bos_token\": true`.
Precedent: llama.cpp `tokenizer.ggml.add_bos_token`; Hugging Face `add_bos_token` in tokenizer_config.json; aprender #1623.",
};

pub static ALL: &[&Lint] = &[
    &PROBE_DIVERGES_RETIRED,
    &PROBE_ROPE,
    &PROBE_SKIPPED,
    &PROBE_TOKENS,
    &PROBE_DIVERGES,
    &PROBE_ROPE_SETTING,
    &PROBE_FACTORS_MISSING,
    &PROBE_FACTORS_EXTRA,
    &PROBE_BOS_POLICY,
];
