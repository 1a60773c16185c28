//! llama.cpp's Q/K row permutation (`bug-classes.md`, "The RoPE permutation, exactly"): within each
//! head of `d` rows, GGUF row `h·d + 2i + j` holds Hugging Face row `h·d + j·(d/2) + i`. NEOX on
//! Hugging Face order equals NORM on the permuted order. The one implementation of the map: [`row`]
//! for row indices, the functions here for rows of values built on it.

/// The map on row indices.
pub mod row {
    /// GGUF row `r` holds Hugging Face row `gguf_to_hf(r, d)` (heads of `d` rows).
    pub fn gguf_to_hf(r: u64, d: u64) -> u64 {
        let (h, w) = (r / d, r % d);
        h * d + (w % 2) * (d / 2) + w / 2
    }

    /// Hugging Face row `x` is GGUF row `hf_to_gguf(x, d)`: the inverse of [`gguf_to_hf`].
    pub fn hf_to_gguf(x: u64, d: u64) -> u64 {
        let (h, w) = (x / d, x % d);
        h * d + 2 * (w % (d / 2)) + w / (d / 2)
    }
}

/// `out[p] = x[from(p)]`, zero where `from(p)` falls outside `x`.
fn gather(x: &[f32], d: usize, from: fn(u64, u64) -> u64) -> Vec<f32> {
    (0..x.len() as u64)
        .map(|p| {
            x.get(from(p, d as u64) as usize)
                .copied()
                .unwrap_or_default()
        })
        .collect()
}

/// Values in Hugging Face row order → llama.cpp's permuted order, per head of `d` values.
pub fn hf_to_gguf(x: &[f32], d: usize) -> Vec<f32> {
    gather(x, d, row::gguf_to_hf)
}

/// llama.cpp's permuted order → Hugging Face order (the inverse of [`hf_to_gguf`]).
pub fn gguf_to_hf(x: &[f32], d: usize) -> Vec<f32> {
    gather(x, d, row::hf_to_gguf)
}

/// Put one file's rows (each `width` values, heads of `d`) in the other order: a file rotating
/// with NEOX holds Hugging Face order and goes to llama.cpp's, a NORM one the other way.
pub fn to_other_order(x: &[f32], width: usize, d: usize, from: crate::model::RopeType) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for r in x.chunks(width.max(1)) {
        out.extend(match from {
            crate::model::RopeType::Neox => hf_to_gguf(r, d),
            crate::model::RopeType::Norm => gguf_to_hf(r, d),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RopeType;
    use crate::numeric::forward::rope::rope;

    #[test]
    fn permutation_round_trip_and_rope_equivalence() {
        let d = 8;
        let x: Vec<f32> = (0..16).map(|i| i as f32 * 0.37 - 2.0).collect();
        assert_eq!(gguf_to_hf(&hf_to_gguf(&x, d), d), x);
        // NEOX on HF order == NORM on the permuted order, permuted.
        let mut a = x.clone();
        rope(&mut a, d, 7, 10000.0, RopeType::Neox, None);
        let mut b = hf_to_gguf(&x, d);
        rope(&mut b, d, 7, 10000.0, RopeType::Norm, None);
        let a2 = hf_to_gguf(&a, d);
        for (p, q) in a2.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5);
        }
    }

    #[test]
    fn value_maps_follow_the_index_map() {
        for d in [2u64, 4, 8, 64] {
            for r in 0..3 * d {
                assert_eq!(row::hf_to_gguf(row::gguf_to_hf(r, d), d), r);
            }
            let x: Vec<f32> = (0..3 * d).map(|i| i as f32).collect();
            for (p, v) in hf_to_gguf(&x, d as usize).iter().enumerate() {
                assert_eq!(*v as u64, row::gguf_to_hf(p as u64, d));
            }
        }
    }
}
