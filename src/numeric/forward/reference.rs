//! The forward pass's kernels as they were before the SIMD ones (test builds only): one thread,
//! f64 dot products per (token, row), f64 sums of squares, f64 scores and softmax. The reference
//! the fast kernels are held to: every stage of every fixture model within 1e-6 of the largest
//! value of that stage (`fast_kernels_equal_the_f64_reference`).
//!
//! [`with_reference`] switches the calling thread's `linear`, `rms_norm` and `attention` to these.

use std::cell::Cell;

use crate::model::ModelView;
use crate::rules::Resolved;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Are this thread's forward kernels the reference ones?
pub(super) fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// Run `f` with the reference kernels on this thread.
pub(super) fn with_reference<T>(f: impl FnOnce() -> T) -> T {
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    out
}

/// Rows dequantized at once in `linear`.
const CHUNK_ROWS: u64 = 512;

/// y = x Wᵀ (+ b) for `x` of `n` rows, W read `CHUNK_ROWS` rows at a time.
pub(super) fn linear(
    view: &ModelView,
    r: &Resolved<'_>,
    role: &str,
    layer: Option<u32>,
    x: &[f32],
    n: usize,
    inp: usize,
) -> Result<(Vec<f32>, usize), String> {
    let i = r.find(role, layer).ok_or_else(|| format!("no `{role}`"))?;
    let t = &view.tensors[i];
    if !t.size_ok() {
        return Err(format!("`{}` has the wrong byte size", t.name));
    }
    let (rows, cols) = t.rows_cols();
    if cols as usize != inp {
        return Err(format!("`{}` has rows of {cols}", t.name));
    }
    let out = rows as usize;
    let mut y = vec![0f32; n * out];
    let mut start = 0u64;
    while start < rows {
        let end = (start + CHUNK_ROWS).min(rows);
        let w = view
            .dequantize_rows(t, start..end)
            .map_err(|e| format!("`{}`: {e}", t.name))?;
        for tok in 0..n {
            let xt = &x[tok * inp..(tok + 1) * inp];
            for (k, row) in w.chunks_exact(inp).enumerate() {
                let mut acc = 0f64;
                for (a, b) in row.iter().zip(xt) {
                    acc += *a as f64 * *b as f64;
                }
                y[tok * out + start as usize + k] = acc as f32;
            }
        }
        start = end;
    }
    if let Some(bi) = r.find(&format!("{role}_bias"), layer) {
        let bt = &view.tensors[bi];
        let b = view
            .dequantize(bt)
            .map_err(|e| format!("`{}`: {e}", bt.name))?;
        if b.len() == out {
            for tok in 0..n {
                for o in 0..out {
                    y[tok * out + o] += b[o];
                }
            }
        }
    }
    Ok((y, out))
}

pub(super) fn rms_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    let h = w.len();
    let mut out = vec![0f32; x.len()];
    for (xt, ot) in x.chunks(h).zip(out.chunks_mut(h)) {
        let ms: f64 = xt.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / h as f64;
        let s = 1.0 / (ms + eps).sqrt();
        for i in 0..h {
            ot[i] = ((xt[i] as f64 * s) as f32) * w[i];
        }
    }
    out
}

pub(super) fn attention(
    q: &[f32],
    k: &[f32],
    vv: &[f32],
    n: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
) -> Vec<f32> {
    let (qd, kd) = (n_head * hd, n_kv * hd);
    let vd = kd;
    let group = n_head / n_kv;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut attn = vec![0f32; n * qd];
    for g in 0..n_head {
        let kvh = g / group;
        for t in 0..n {
            let qv = &q[t * qd + g * hd..t * qd + (g + 1) * hd];
            let mut scores: Vec<f64> = (0..=t)
                .map(|s| {
                    let kv = &k[s * kd + kvh * hd..s * kd + (kvh + 1) * hd];
                    qv.iter()
                        .zip(kv)
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut z = 0.0;
            for sc in scores.iter_mut() {
                *sc = (*sc - m).exp();
                z += *sc;
            }
            for (s, w) in scores.iter().enumerate() {
                let vrow = &vv[s * vd + kvh * hd..s * vd + (kvh + 1) * hd];
                for i in 0..hd {
                    attn[t * qd + g * hd + i] += (w / z * vrow[i] as f64) as f32;
                }
            }
        }
    }
    attn
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::forward::{Model, run_all};
    use crate::rules::RuleSet;

    fn view(file: &str) -> ModelView {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/gguf")
            .join(file);
        ModelView::open(&path).unwrap_or_else(|e| panic!("{file}: {e:?}"))
    }

    /// Every stage of every fixture model (qwen2 with biases and a Q4_K_M mix, llama, llama with
    /// `rope_freqs`, tied qwen2) through the fast kernels and through the f64 reference: equal
    /// within 1e-6 of the stage's largest |value|. Token ids cover both ends of the vocabulary.
    #[test]
    fn fast_kernels_equal_the_f64_reference() {
        let rules = RuleSet::builtin();
        for file in [
            "tiny-qwen2-lq-q4_k_m.gguf",
            "tiny-llama-q8_0.gguf",
            "tiny-llama-ropefreqs-q8_0.gguf",
            "tiny-qwen2-tied-q8_0.gguf",
        ] {
            let v = view(file);
            let r = Resolved::new(&v, &rules);
            let m = Model::new(&v, &r).unwrap();
            let tokens = [1u32, 17, 300, 2, 511, 9, 42, 128, 77];
            let fast = run_all(&m, &tokens).unwrap();
            let slow = with_reference(|| run_all(&m, &tokens)).unwrap();
            assert_eq!(fast.len(), slow.len());
            assert_eq!(fast.len(), 1 + 10 * m.n_layer as usize + 2, "{file}");
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!((f.stage, f.layer), (s.stage, s.layer));
                assert_eq!(f.values.len(), s.values.len());
                let max = s.values.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
                let diff = f
                    .values
                    .iter()
                    .zip(&s.values)
                    .fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
                assert!(
                    max > 0.0 && diff <= 1e-6 * max,
                    "{file} {} {:?}: max diff {diff:e}, max |reference| {max}",
                    f.stage,
                    f.layer
                );
            }
        }
    }
}
