//! The trace's `ggml` mode: linear layers computed as ggml-cpu computes them, so that a GGUF's
//! activations match llama.cpp's to ~1e-6 instead of ~1e-2.
//!
//! ggml does not multiply a quantized weight by f32 activations: it first rounds the activations
//! to the weight type's `vec_dot_type` (Q8_K for the K-quants, Q8_0 for Q8_0/Q4_0…, f16 for F16),
//! then takes integer dot products. Here each token's activations are quantized once per linear
//! layer ([`crate::quant::dot`]); dtypes with an integer kernel (Q4_K, Q6_K, Q8_0, Q4_0) then run
//! it over tiles of rows × all tokens on the thread pool, and the other dtypes ggml rounds for run
//! their rounded activations through the f32 product (`super::linear`). F32 weights and dtypes
//! ggml has no product for are the f32 mode unchanged.

use super::linear;
use crate::model::ModelView;
use crate::quant::DType;
use crate::quant::dot::{self, ActRounding, QRow};
use crate::rules::Resolved;

/// How the trace computes linear layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Dequantized weights times f32 activations (the reference semantics).
    #[default]
    F32,
    /// As ggml-cpu computes: activations rounded to the weight type's dot type, integer dot
    /// products where there is a kernel.
    Ggml,
}

/// How one weight tensor's product runs in the `ggml` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// Quantized activations and integer dot products, as ggml.
    Integer,
    /// Activations rounded as ggml rounds them, then the f32 product.
    Rounded,
    /// The f32 product (F32 weights, or a dtype ggml has no product for).
    F32,
}

/// The path a weight of `dtype` with rows of `cols` values takes in the `ggml` mode.
pub fn path_of(dtype: DType, cols: usize) -> Path {
    match dot::rounding_of(dtype) {
        Some(ActRounding::Q8K) if !cols.is_multiple_of(dot::QK_K) => Path::F32,
        Some(ActRounding::Q8_0) if !cols.is_multiple_of(dot::QK8_0) => Path::F32,
        Some(ActRounding::None) | None => Path::F32,
        Some(_) if dot::has_kernel(dtype) => Path::Integer,
        Some(_) => Path::Rounded,
    }
}

/// Rows per parallel tile of the integer product.
const TILE_ROWS: usize = 64;

/// [`super::linear`] in the `ggml` mode: y = x Wᵀ (+ b), `n` tokens of `inp` features.
pub(crate) fn linear_ggml(
    view: &ModelView,
    r: &Resolved<'_>,
    role: &str,
    layer: Option<u32>,
    x: &[f32],
    n: usize,
    inp: usize,
) -> Result<(Vec<f32>, usize), String> {
    let Some(i) = r.find(role, layer) else {
        return linear(view, r, role, layer, x, n, inp);
    };
    let t = &view.tensors[i];
    let (rows, cols) = t.rows_cols();
    let path = path_of(t.dtype, cols as usize);
    // Every size error is the f32 path's to report, in its words.
    if path == Path::F32 || !t.size_ok() || cols as usize != inp || x.len() != n * inp {
        return linear(view, r, role, layer, x, n, inp);
    }
    let rounding = dot::rounding_of(t.dtype).unwrap_or(ActRounding::None);
    if path == Path::Rounded {
        return linear(view, r, role, layer, &dot::round_trip(rounding, x), n, inp);
    }
    let out = rows as usize;
    let data = view.bytes(t);
    let row_bytes = data.len().checked_div(out).unwrap_or(0);
    // Each token's activations quantized once.
    let (mut qk, mut q0) = (Vec::new(), Vec::new());
    let per = if rounding == ActRounding::Q8K {
        crate::quant::q8k_fast::quantize_q8_k(x, &mut qk);
        inp / dot::QK_K
    } else {
        dot::quantize_q8_0(x, &mut q0);
        inp / dot::QK8_0
    };
    let xs: Vec<QRow<'_>> = (0..n)
        .map(|tok| {
            if rounding == ActRounding::Q8K {
                QRow::K(&qk[tok * per..(tok + 1) * per])
            } else {
                QRow::Zero(&q0[tok * per..(tok + 1) * per])
            }
        })
        .collect();
    let y = super::tiled(
        view,
        r,
        (role, layer),
        (n, out, TILE_ROWS),
        || (),
        |_, r0, r1, yt_tile| {
            let rows = data.get(r0 * row_bytes..r1 * row_bytes).unwrap_or(&[]);
            if dot::dot_rows(t.dtype, rows, row_bytes, &xs, yt_tile) {
                Ok(())
            } else {
                Err(format!(
                    "`{}`: rows of {row_bytes} bytes do not fit its dtype",
                    t.name
                ))
            }
        },
    );
    view.release(t);
    y
}

/// The linear roles of a decoder block and the head.
const LINEAR_ROLES: [&str; 8] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
    "output",
];

/// How many of one file's linear weights of one dtype take one [`Path`] in the `ggml` mode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PathUse {
    /// The dtype's printed name.
    pub dtype: String,
    /// The path its products take.
    pub path: Path,
    /// Linear weight tensors of that dtype.
    pub tensors: usize,
}

/// Which of a file's linear weights run which path in the `ggml` mode, by dtype (in first-seen
/// order).
pub fn paths(view: &ModelView, r: &Resolved<'_>) -> Vec<PathUse> {
    let mut out: Vec<PathUse> = Vec::new();
    for (i, t) in view.tensors.iter().enumerate() {
        let Some((role, _)) = r.role_of(i) else {
            continue;
        };
        if !LINEAR_ROLES.contains(&role.key.as_str()) {
            continue;
        }
        let dtype = t.dtype.to_string();
        let path = path_of(t.dtype, t.rows_cols().1 as usize);
        match out.iter_mut().find(|p| p.dtype == dtype && p.path == path) {
            Some(p) => p.tensors += 1,
            None => out.push(PathUse {
                dtype,
                path,
                tensors: 1,
            }),
        }
    }
    out
}
