//! Layer 0 of one file through the forward leaf: the embedding rows of the prompt's tokens,
//! `attn_norm`, Q/K/V (+ bias) and Q/K after RoPE at the prompt positions and at [`FAR_POSITION`].

use crate::model::{ModelView, RopeType};
use crate::numeric::forward::Model;
use crate::numeric::forward::rope::Stretch;
use crate::rules::Resolved;

/// The far position Q/K are also rotated to: RoPE-order and θ bugs are invisible at position 0.
pub const FAR_POSITION: u64 = 4096;

/// Layer-0 activations of one file. Matrices are row-major `(tokens, features)`.
#[derive(Clone, Debug)]
pub struct Activations {
    pub n_tokens: usize,
    pub embedding: Vec<f32>,
    pub attn_norm: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub q_rope: Vec<f32>,
    pub k_rope: Vec<f32>,
    /// The last token's Q/K rotated as if at `FAR_POSITION`.
    pub q_far: Vec<f32>,
    pub k_far: Vec<f32>,
    pub hidden: usize,
    pub q_dim: usize,
    pub kv_dim: usize,
    pub rope: RopeType,
    /// Per-pair RoPE frequency divisors (`rope_freqs.weight`, or from a `llama3` `rope_scaling`).
    pub rope_factors: Option<Vec<f32>>,
    pub rope_factors_source: &'static str,
    /// RoPE context scaling as applied.
    pub stretch: Stretch,
}

/// Run layer 0 of one file on `tokens`.
pub fn forward(view: &ModelView, r: &Resolved<'_>, tokens: &[u32]) -> Result<Activations, String> {
    if tokens.is_empty() {
        return Err("no tokens".into());
    }
    let m = Model::new(view, r)?;
    let n = tokens.len();
    let embedding = m.embed(tokens)?;
    let ai = m.attention_inputs(0, &embedding, n)?;
    let far = |x: &[f32], dim: usize| {
        let mut f = x[(n - 1) * dim..n * dim].to_vec();
        m.rope_at(&mut f, FAR_POSITION);
        f
    };
    Ok(Activations {
        n_tokens: n,
        hidden: embedding.len() / n.max(1),
        q_far: far(&ai.q, ai.q_dim),
        k_far: far(&ai.k, ai.kv_dim),
        embedding,
        attn_norm: ai.normed,
        q: ai.q,
        k: ai.k,
        v: ai.v,
        q_rope: ai.q_rope,
        k_rope: ai.k_rope,
        q_dim: ai.q_dim,
        kv_dim: ai.kv_dim,
        rope: m.rope_type(),
        rope_factors: m.rope_factors().map(<[f32]>::to_vec),
        rope_factors_source: m.rope_factors_source(),
        stretch: m.stretch(),
    })
}
