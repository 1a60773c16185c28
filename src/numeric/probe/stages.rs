//! The two files' layer-0 activations compared stage by stage with the one stage comparator
//! ([`crate::numeric::stage`]), Q/K rows put in the reference's order first where the rotations
//! differ.

use super::layer0::{Activations, FAR_POSITION};
use crate::numeric::forward::permute;
use crate::numeric::stage::{self, Criterion, Stage};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Probe {
    pub tokens: Vec<u32>,
    pub far_position: u64,
    /// Q/K rows of the file under test were put in the reference's order before comparing.
    pub unpermuted: bool,
    pub stages: Vec<Stage>,
}

/// Compare the two files' activations stage by stage.
pub fn compare(
    a: &Activations,
    b: &Activations,
    tokens: Vec<u32>,
    hd: usize,
    crit: &Criterion,
) -> Probe {
    // A file whose rotation differs from the reference's holds the other row order (if it is right);
    // put its Q/K rows in the reference's order so the stages line up.
    let unpermuted = a.rope != b.rope;
    let fix = |x: &[f32], dim: usize| -> Vec<f32> {
        if unpermuted {
            permute::to_other_order(x, dim, hd, a.rope)
        } else {
            x.to_vec()
        }
    };
    let n = a.n_tokens;
    let mut stages = Vec::new();
    let mut push = |name: &'static str,
                    layer: Option<u32>,
                    x: &[f32],
                    y: &[f32],
                    dims: Vec<usize>,
                    hd_other: Option<usize>| {
        let mut st = crit.judge(name, layer, (x, y), (dims.clone(), dims), |m| {
            crit.for_stage(m)
        });
        if !st.pass
            && let Some(d) = hd_other
        {
            // The other row order: permute the file-under-test's rows both ways and retry.
            for perm in [permute::hf_to_gguf(x, d), permute::gguf_to_hf(x, d)] {
                st.passes_in_other_row_order |= crit.passes(&stage::metrics(&perm, y));
            }
        }
        stages.push(st);
    };
    push(
        "embedding",
        None,
        &a.embedding,
        &b.embedding,
        vec![n, a.hidden],
        None,
    );
    push(
        "attn_norm",
        Some(0),
        &a.attn_norm,
        &b.attn_norm,
        vec![n, a.hidden],
        None,
    );
    push(
        "q",
        Some(0),
        &fix(&a.q, a.q_dim),
        &b.q,
        vec![n, a.q_dim],
        Some(hd),
    );
    push(
        "k",
        Some(0),
        &fix(&a.k, a.kv_dim),
        &b.k,
        vec![n, a.kv_dim],
        Some(hd),
    );
    push("v", Some(0), &a.v, &b.v, vec![n, a.kv_dim], None);
    push(
        "q_rope",
        Some(0),
        &fix(&a.q_rope, a.q_dim),
        &b.q_rope,
        vec![n, a.q_dim],
        None,
    );
    push(
        "k_rope",
        Some(0),
        &fix(&a.k_rope, a.kv_dim),
        &b.k_rope,
        vec![n, a.kv_dim],
        None,
    );
    push(
        "q_rope_far",
        Some(0),
        &fix(&a.q_far, a.q_dim),
        &b.q_far,
        vec![1, a.q_dim],
        None,
    );
    push(
        "k_rope_far",
        Some(0),
        &fix(&a.k_far, a.kv_dim),
        &b.k_far,
        vec![1, a.kv_dim],
        None,
    );
    Probe {
        tokens,
        far_position: FAR_POSITION,
        unpermuted,
        stages,
    }
}
