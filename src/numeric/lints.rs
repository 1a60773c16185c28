//! Numeric lints (`APRL-N0xx`) of the weight comparison: one per class it names. The probe keeps
//! its own (`APRL-N02x`, in `probe.rs`).
//!
//! Severity: a layout bug the numbers prove is an error; a finding that only confirms, with values,
//! what a static check already reported (dims reversed, a sub-block shape) is info, so one bug is
//! counted once; differences that are legitimate (quantization noise, Hugging Face row order with a
//! NEOX rope type) are info summaries, one per run.

use crate::diag::Lint;

use crate::diag::lint;

lint!(VALUE_MISMATCH, "APRL-N001", "value-mismatch", Error,
"a tensor's values differ from the reference's and no candidate fix explains it",
"What it catches: a role whose sampled values differ from the reference's beyond the tolerance (the `--threshold` when both sides hold the same dtype, the rules' per-dtype NMSE and cosine otherwise) when no candidate transform (transpose, dims, RoPE row permutation, swap, dtype reinterpretation, sub-block) makes them agree.
Why it matters: the file computes something else than its reference; the numbers say how far off it is, but not why.
How to fix: compare how the converter writes this tensor with how the reference was written; the tool names no fix it cannot prove.
Precedent: —");

lint!(TRANSPOSED, "APRL-N002", "transposed", Error,
"a tensor holds the reference's data transposed under the correct dims",
"What it catches: a weight whose bytes are the reference's matrix transposed while its dims are what the rule says; for a square q_proj or o_proj no static check can see it.
Why it matters: the matmul uses W^T instead of W: the model loads and runs and produces garbage.
How to fix: transpose the data in the converter (the dims are already right).
Precedent: aprender GH-202 (importer transposed data), realizar PR #160.");

lint!(COLUMN_MAJOR, "APRL-N003", "column-major", Error,
"a tensor is stored column-major: data transposed and dims swapped",
"What it catches: a weight stored as a consistent [in, out] row-major matrix (the data transposed and the dims swapped), which an [out, in] kernel misreads.
Why it matters: a reader that only reverses the dims (the fix for dims-reversed) still computes with W^T.
How to fix: transpose the data back to [out, in] row-major and record the dims as [out, in].
Precedent: aprender GH-202 (V1), entrenar checkpoints (cuBLAS layout).");

lint!(DIMS_REVERSED, "APRL-N004", "dims-reversed", Info,
"values confirm a dims-only reversal: the bytes are the reference's",
"What it catches: a tensor whose dims differ from the reference's (reported by the static stage) while its bytes are the reference's unchanged: only the recorded dims are in GGML order.
Why it matters: it tells the fix apart from column-major storage: here the data must not move.
How to fix: reverse the dims and keep the bytes.
Precedent: aprender GH-186/187/188, BUG-IMPORT-001.");

lint!(ROPE_PERMUTED, "APRL-N005", "rope-permuted", Error,
"Q/K rows are in the other RoPE pairing order than the declared rope type needs",
"What it catches: Q or K rows (or biases) permuted per head relative to what the file's declared rope type needs: llama.cpp's NORM (adjacent-pair) order under a NEOX rope type, Hugging Face order under NORM, or a qwen2 file whose rows were permuted although qwen2 keeps Hugging Face order.
Why it matters: position 0 is unrotated, so a short test passes; generation degrades after a few tokens.
How to fix: make the row order and `rope_type` agree: Hugging Face order needs rope_type 2 (NEOX), llama.cpp's permuted order needs 0 (NORM); or (un)permute the rows.
Precedent: llama.cpp #2376, karpathy/llama2.c PR #286, transformers #31766, aprender CORRECTNESS-011.");

lint!(ROPE_WRONG_HEADS, "APRL-N006", "rope-permuted-wrong-heads", Error,
"Q/K rows were RoPE-permuted with the other head count",
"What it catches: rows that match the reference only under the per-head RoPE permutation computed with the other head count: K permuted with n_head where n_head_kv was needed (GQA), or Q with n_head_kv.
Why it matters: every head's pairs are scrambled across heads: the model produces gibberish (Llama-2-70B after the GQA change).
How to fix: permute the rows with the head count of their own role: n_head for Q, n_head_kv for K.
Precedent: llama.cpp PR #3364, #2376 (Llama-2-70B gibberish), TinyLlama #24.");

lint!(SWAPPED, "APRL-N007", "swapped-tensors", Error,
"a tensor holds another role's or another layer's data",
"What it catches: two tensors' contents exchanged: q and k (when their shapes are equal), gate and up, or the same role of two layers.
Why it matters: shapes agree, so loaders accept the file; the model computes with the wrong weights.
How to fix: fix the converter's name map so each tensor gets its own data.
Precedent: upstream name-map mix-ups (gate/up order in fused MLP conversions).");

lint!(DTYPE_MISLABELED, "APRL-N008", "dtype-mislabeled", Error,
"a tensor's bytes are another dtype of the same width than its label",
"What it catches: bytes whose values match the reference only when read as another dtype of the same block geometry: BF16 labelled F16, F16 labelled BF16, and the like.
Why it matters: every value is wrong by a bit pattern reinterpretation (a norm read as 7.06 instead of 7.56).
How to fix: relabel the tensor with the dtype its bytes are, keeping the bytes.
Precedent: aprender PR #1601, GH-438, PR #1922; modular #6660.");

lint!(QUANT_BLOCK_CORRUPT, "APRL-N009", "quant-block-corrupt", Error,
"quantized blocks disagree with the reference block by block",
"What it catches: a tensor of the reference's dtype whose values disagree in a block-periodic pattern: some blocks byte-identical and others wrong, or every block keeping the reference's bytes at the same offsets (the scales) while the rest differs (nibble order, scale packing).
Why it matters: a loader decodes the blocks without complaint; the weights are wrong wherever the blocks are.
How to fix: compare the converter's block writer with ggml's block layout for this dtype (`quantize_row_*` / `dequantize_row_*`).
Precedent: aprender LAYOUT-001 (#155), GH-370, PR #2115 (Q3_K), PR #1924 (Q2_K); mlx PR #3664.");

lint!(NON_FINITE, "APRL-N010", "non-finite", Error,
"NaN or Inf in sampled values or in quantized block scales",
"What it catches: NaN or infinite values among the sampled elements of a tensor, or a non-finite scale field (d, dmin …) in any block of a sampled row.
Why it matters: one NaN propagates through every matmul it touches: the output becomes NaN from that layer on.
How to fix: re-export the tensor from the source weights; check the converter's f16 scale conversion for overflow.
Precedent: ggml `validate_row_data`; aprender f16-scale issues.");

lint!(QUANT_NOISE, "APRL-N011", "value-mismatch", Info,
"roles hold another quantization of the reference's weights, within the rules' tolerance",
"What it catches: nothing wrong: roles stored in different dtypes (APR F32 against a Q4_K reference, a re-quantization) whose values differ by quantization noise within the rule set's per-dtype NMSE and cosine.
Why it matters: it shows how far apart the two files are, so a later change in the noise is visible.
How to fix: nothing if the re-quantization was intended.
Precedent: —");

lint!(DEGENERATE, "APRL-N012", "degenerate", Error,
"a tensor's sampled values are all zero or constant where the reference's are not",
"What it catches: a tensor whose sampled rows hold one value (all zeros, all ones) while the reference's vary: valid structure, garbage content.
Why it matters: loaders accept it; the layer is silently dead.
How to fix: copy the tensor's data from the source weights; check the converter for zero-filled placeholders.
Precedent: aprender PMAT-234, PR #2337.");

lint!(SUB_BLOCK, "APRL-N013", "shape-mismatch", Info,
"values confirm a shape mismatch: one tensor is a row sub-block of the other",
"What it catches: a role whose dims differ from the reference's (reported by the static stage) where the rows of one are a contiguous sub-block of the other's: padding trimmed or added, a fused QKV split at the wrong offset.
Why it matters: it says which rows the converter kept, so the shape arithmetic can be fixed.
How to fix: write the rows the reference has, at the offset the evidence names.
Precedent: llama.cpp `check_tensor_dims`, mlxcel PR #928.");

lint!(ROPE_ORDER_OK, "APRL-N014", "rope-permuted", Info,
"Q/K rows are in Hugging Face order with a NEOX rope type: equivalent to the reference",
"What it catches: nothing wrong: a llama-family file whose Q/K rows are in Hugging Face order (un-permuted from the GGUF's NORM order) and whose declared rope type is NEOX, which rotates exactly that order.
Why it matters: it proves the legitimate difference instead of assuming it; the probe undoes the permutation before comparing activations.
How to fix: nothing.
Precedent: llama.cpp #2376, aprender CORRECTNESS-011.");

lint!(NOT_COMPARED, "APRL-N015", "value-mismatch", Warning,
"roles present in both files whose values could not be compared",
"What it catches: roles whose bytes differ from the reference's while one side's dtype has no dequantizer here (IQ1/IQ2/IQ3, TQ, MXFP4) or a tensor's byte size does not match its dims.
Why it matters: these roles were not checked; a pass says nothing about them.
How to fix: compare against a reference in a dtype with values, or fix the size problem the static stage reports.
Precedent: aprender #2394 (a corrupt file called VALID).");

lint!(DEAD_REFERENCE, "APRL-N017", "degenerate", Warning,
"both files agree on a weight matrix that is constant (all zeros) in the reference",
"What it catches: a 2-D weight (embedding, projection, FFN matrix) whose sampled values are all one value in the reference, and the same in the file under test.
Why it matters: the files agree, so every other check passes, but no trained model has a constant matrix: the reference itself is broken (a zero-filled export, a failed quantization, a truncated download padded with zeros), and the comparison proves nothing about that tensor.
How to fix: re-create or re-download the reference, then convert again.
Precedent: aprender PMAT-234 (zero-filled tensors that loaded fine).");

lint!(TIED_NOT_COPY, "APRL-N016", "tied-embedding", Error,
"the output matrix is not the embedding the reference ties it to",
"What it catches: a file under test that carries its own output matrix (lm_head) while the reference has none (tied embeddings), and whose values are not the reference's embedding.
Why it matters: the reference computes logits with the embedding; this file computes them with something else.
How to fix: write the embedding's bytes as the output matrix (or drop it and set the tied flag).
Precedent: aprender PR #2209, #2309, #2441.");

lint!(TIED_UNEXPECTED, "APRL-N035", "tied-embedding", Error,
"the output matrix holds the embedding while the reference keeps a distinct output matrix",
"What it catches: a file under test whose output matrix (lm_head) holds its own embedding's values while the reference has its own, different output matrix: a tie the reference does not have (the embedding itself is right, so this is not a swap).
Why it matters: the model computes its logits with the embedding instead of the trained output matrix: it loads, runs and produces other text.
How to fix: copy the reference's output matrix; do not tie.
Precedent: aprender PR #2209, #2309, #2441 (tied-embedding conventions in converters).");

/// Every numeric weight-comparison lint, in code order.
pub static ALL: &[&Lint] = &[
    &VALUE_MISMATCH,
    &TRANSPOSED,
    &COLUMN_MAJOR,
    &DIMS_REVERSED,
    &ROPE_PERMUTED,
    &ROPE_WRONG_HEADS,
    &SWAPPED,
    &DTYPE_MISLABELED,
    &QUANT_BLOCK_CORRUPT,
    &NON_FINITE,
    &QUANT_NOISE,
    &DEGENERATE,
    &SUB_BLOCK,
    &ROPE_ORDER_OK,
    &NOT_COMPARED,
    &TIED_NOT_COPY,
    &DEAD_REFERENCE,
    &TIED_UNEXPECTED,
];
