//! Layout checks of one file: every tensor's canonical dims against its role's formula.
//!
//! `dims-reversed` when the dims are exactly the reverse of the rule's (GH-186/187/188:
//! embedding recorded `[hidden, vocab]` → PAD-token floods), `shape-mismatch` otherwise; K-quant
//! rows a multiple of 256; square weights whose orientation only numbers can see (info, so nobody is
//! misled into thinking a transposed square q_proj was checked); the APR `LAYOUT_COLUMN_MAJOR` flag
//! and entrenar checkpoints (stored `[in, out]` under an `[out, in]`-looking shape).

use crate::diag::{Finding, Lint, Severity};
use crate::model::ModelView;
use crate::quant::DType;
use crate::rules::Resolved;

pub static DIMS_REVERSED: Lint = Lint {
    code: "APRL-L001",
    class: "dims-reversed",
    severity: Severity::Error,
    summary: "a 2-D tensor's dims are recorded in GGML order ([in, out])",
    explain: "What it catches: a tensor whose dims are exactly the reverse of what its role's rule says, e.g. an embedding recorded as [hidden, vocab] instead of [vocab, hidden], or a projection as [in, out].
Why it matters: GGUF lists dims contiguous-first over bytes that are row-major [out, in]; a converter that copies `ne` without reversing it produces a file that loads and computes nonsense (the classic PAD-token flood).
How to fix: reverse the dims in the converter and keep the bytes unchanged (a correct GGUF→APR conversion never moves data).
Precedent: aprender GH-186/187/188, BUG-IMPORT-001.",
};

pub static SHAPE_MISMATCH: Lint = Lint {
    code: "APRL-L002",
    class: "shape-mismatch",
    severity: Severity::Error,
    summary: "a tensor's dims disagree with its role's rule",
    explain: "What it catches: dims that are neither the rule's nor their reverse: a wrong head count, a padded vocab, a fused QKV split wrongly, a K projection sized with n_head instead of n_head_kv.
Why it matters: the loader either refuses the file or multiplies mismatched matrices.
How to fix: check the converter's shape arithmetic against the config (`apr-lint rules --arch <arch>` shows the formulas).
Precedent: llama.cpp `check_tensor_dims` (\"expected 3840, 262144, got 3840, 256000\"), mlxcel PR #928.",
};

pub static KQUANT_ROW: Lint = Lint {
    code: "APRL-L003",
    class: "dims-reversed",
    severity: Severity::Error,
    summary: "retired, never emitted: replaced by APRL-L006 (dims-reversed) and APRL-L007 (quant-block-corrupt)",
    explain: "RETIRED: this code is no longer emitted. It concluded two bug classes at run time; each now has its own code: APRL-L006 (dims-reversed) and APRL-L007 (quant-block-corrupt).
What it catches: nothing any more. It used to flag a 2-D Q2_K…Q6_K tensor whose last (contiguous) dim is not a multiple of the 256-element super-block.
Why it matters: a code keeps one class, so SARIF rule metadata, `-A <class>`, JSON and `explain` agree.
How to fix: read APRL-L006 or APRL-L007; `-D/-W/-A APRL-L003` still applies to both.
Precedent: aprender LAYOUT-001 (#155).",
};

pub static KQUANT_ROW_REVERSED: Lint = Lint {
    code: "APRL-L006",
    class: "dims-reversed",
    severity: Severity::Error,
    summary: "a K-quantized tensor's row length is not a multiple of 256 but its first dim is",
    explain: "What it catches: a 2-D Q2_K…Q6_K tensor whose last (contiguous) dim is not a multiple of the 256-element super-block while its first dim is: the dims are recorded in GGML order.
Why it matters: ggml blocks run along rows; a row that is not a whole number of blocks cannot be decoded, and a loader that trusts the dims reads every block at the wrong place.
How to fix: reverse the dims and keep the bytes.
Precedent: aprender LAYOUT-001 (#155), GH-186/187/188.",
};

pub static KQUANT_ROW_BLOCKS: Lint = Lint {
    code: "APRL-L007",
    class: "quant-block-corrupt",
    severity: Severity::Error,
    summary: "a K-quantized tensor's rows cannot be whole 256-element super-blocks",
    explain: "What it catches: a 2-D Q2_K…Q6_K tensor where neither dim is a multiple of the 256-element super-block: the quantizer let blocks cross rows.
Why it matters: ggml decodes K-quant blocks along rows; blocks that cross a row boundary decode to the wrong values (or the loader refuses the tensor).
How to fix: re-quantize from the float weights (llama-quantize falls back to a non-K type for such rows).
Precedent: aprender LAYOUT-001 (#155), llama-quantize's fallback for rows % 256 != 0.",
};

pub static ORIENTATION_UNCHECKED: Lint = Lint {
    code: "APRL-L004",
    class: "transposed",
    severity: Severity::Info,
    summary: "square weights: their orientation can only be checked with values",
    explain: "What it catches: nothing wrong yet — it says which tensors are square ([n, n]), where a transposed copy has the same dims as a correct one.
Why it matters: no static rule can see a transposed square q_proj or o_proj; only the numeric stage (`--against` a reference) can.
How to fix: run `apr-lint model.apr --against model.gguf` so values are compared.
Precedent: aprender GH-202 (importer transposed data), realizar PR #160.",
};

pub static COLUMN_MAJOR: Lint = Lint {
    code: "APRL-L005",
    class: "column-major",
    severity: Severity::Error,
    summary: "the APR file says its tensors are column-major",
    explain: "What it catches: the LAYOUT_COLUMN_MAJOR flag (0x0800), or metadata `format: \"entrenar-checkpoint\"` (entrenar stores linear weights [in, out] under an [out, in]-looking shape).
Why it matters: every [out, in] kernel misreads such weights; aprender refuses the flag.
How to fix: transpose the data of every 2-D weight and clear the flag (or export the checkpoint with `apr export`).
Precedent: aprender GH-202 (V1), entrenar checkpoints (cuBLAS layout).",
};

pub static ALL: &[&Lint] = &[
    &DIMS_REVERSED,
    &SHAPE_MISMATCH,
    &KQUANT_ROW,
    &ORIENTATION_UNCHECKED,
    &COLUMN_MAJOR,
    &KQUANT_ROW_REVERSED,
    &KQUANT_ROW_BLOCKS,
];

fn is_kquant(d: DType) -> bool {
    matches!(
        d,
        DType::Q2_K | DType::Q3_K | DType::Q4_K | DType::Q5_K | DType::Q6_K | DType::Q8_K
    )
}

pub fn check(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let mut square = Vec::new();
    // A config value the shapes contradict (`metadata.rs` leads with it): the help of every shape
    // mismatch it explains names that fix instead of the converter's arithmetic.
    let mut metadata_fix: Option<Option<String>> = None;
    for (i, t) in view.tensors.iter().enumerate() {
        if let Some((role, layer)) = r.role_of(i) {
            let Ok(expected) = r.expected_dims(role) else {
                continue;
            };
            if t.dims != expected {
                let rev: Vec<u64> = t.dims.iter().rev().copied().collect();
                if t.dims.len() >= 2 && rev == expected {
                    out.push(
                        Finding::new(
                            &DIMS_REVERSED,
                            format!(
                                "`{}` dims {:?} are in GGML order; the `{}` rule expects {:?}",
                                t.name, t.dims, role.key, expected
                            ),
                        )
                        .tensor(&t.name)
                        .layer(layer)
                        .span(t.dims_span)
                        .help("reverse the dims and keep the bytes"),
                    );
                } else {
                    let fix = metadata_fix.get_or_insert_with(|| {
                        let fits = super::config_fit::fits(view, r);
                        (!fits.is_empty()).then(|| super::config_fit::tensor_help(&fits))
                    });
                    let f = Finding::new(
                        &SHAPE_MISMATCH,
                        format!(
                            "`{}` dims {:?} disagree with the `{}` rule {:?} = [{}]",
                            t.name,
                            t.dims,
                            role.key,
                            expected,
                            role.dims.join(", ")
                        ),
                    )
                    .tensor(&t.name)
                    .layer(layer)
                    .span(t.dims_span);
                    out.push(match fix {
                        Some(fix) => f.help_from(crate::diag::HelpFrom::ShapeFits, fix.clone()),
                        None => f.help("check the converter's shape arithmetic against the config (`apr-lint rules` shows the formulas)"),
                    });
                }
                continue;
            }
            if t.dims.len() == 2 && t.dims[0] == t.dims[1] {
                square.push(t.name.clone());
            }
        }
        if t.dims.len() == 2 && is_kquant(t.dtype) && t.dims[1] % 256 != 0 {
            let reversible = t.dims[0] % 256 == 0;
            let f = Finding::new(
                if reversible {
                    &KQUANT_ROW_REVERSED
                } else {
                    &KQUANT_ROW_BLOCKS
                },
                format!(
                    "`{}` is {} but its row length {} is not a multiple of 256{}",
                    t.name,
                    t.dtype,
                    t.dims[1],
                    if reversible {
                        format!("; {} is", t.dims[0])
                    } else {
                        String::new()
                    }
                ),
            )
            .tensor(&t.name)
            .span(t.dims_span)
            .help(if reversible {
                "reverse the dims and keep the bytes"
            } else {
                "re-quantize: these blocks cannot be whole rows"
            });
            out.push(f);
        }
    }
    if !square.is_empty() {
        out.push(
            Finding::new(
                &ORIENTATION_UNCHECKED,
                format!("{} ({}{}) cannot show a transpose in their dims; only the numeric stage can verify their orientation", crate::diag::count(square.len(), "square tensor"), square.iter().take(3).cloned().collect::<Vec<_>>().join(", "), if square.len() > 3 { ", …" } else { "" }),
            )
            .help("run with `--against <reference.gguf>` so their values are compared"),
        );
    }
    if let Some(flags) = view.column_major_flags() {
        out.push(
            Finding::new(&COLUMN_MAJOR, format!("flags {flags:#06x} include LAYOUT_COLUMN_MAJOR (0x0800); aprender refuses such a file"))
                .span(crate::diag::Span::new(6, 2))
                .help("transpose every 2-D weight's data and clear the flag"),
        );
    }
    if let Some(metadata_span) = view.training_checkpoint() {
        out.push(
            Finding::new(&COLUMN_MAJOR, "metadata `format` is \"entrenar-checkpoint\": linear weights are stored [in, out] under an [out, in]-looking shape")
                .at_key("format", Some(metadata_span))
                .help("export the checkpoint with `apr export` (which transposes) before serving it"),
        );
    }
}
