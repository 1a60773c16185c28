//! The forward pass both the probe and the trace run: a plain f32 reference forward pass of a
//! decoder-only transformer (embedding, RMSNorm, Q/K/V with bias and Qwen3's Q/K norms, RoPE with
//! the file's own rotation, θ, frequency divisors and context scaling, GQA attention with causal
//! softmax, SwiGLU FFN, final norm, logits), stage by stage.
//!
//! Takes one `ModelView` with its resolved rules; returns named activations (`Act`). Weights are
//! dequantized a tile of rows at a time per thread (`linear`) and multiplied against all tokens on
//! SIMD lanes (`lanes`), so memory stays at one layer's activations plus 512 KB of dequantized rows
//! per thread, whatever the model size. `reference` (tests only) keeps the former f64 kernels
//! the fast ones are checked against.
//!
//! A leaf of `numeric`: must not compare two files, judge a stage or emit findings (the probe and
//! the trace do), and imports neither of them.

pub mod exact;
mod lanes;
pub mod permute;
#[cfg(test)]
mod reference;
pub mod rope;

use crate::model::{ModelView, RopeType};
use crate::rules::Resolved;
pub use exact::Mode;
use rayon::prelude::*;
use rope::{Stretch, rope_scaled};

/// Dequantized values per tile of rows in `linear` (512 KB of f32): a tile stays in the core's
/// L2 cache while every token is multiplied against it.
const TILE_ELEMS: usize = 1 << 17;

/// Rows per tile for rows of `cols` values: a multiple of 4 (the tile product's row block), at
/// least 4, at most 64.
fn tile_rows(cols: usize) -> usize {
    (TILE_ELEMS / cols.max(1) / 4 * 4).clamp(4, 64)
}

/// y = x Wᵀ (+ b) for `x` of `n` rows (tokens) of `inp` features; returns y (`n` rows of
/// `out` values) and `out`.
///
/// W is cut into tiles of [`tile_rows`] rows, split over the thread pool; each tile is
/// dequantized once into a buffer that stays in cache and multiplied against all `n` tokens at
/// once ([`lanes::tile_product`]), so each weight byte is read once per call.
pub(crate) fn linear(
    view: &ModelView,
    r: &Resolved<'_>,
    role: &str,
    layer: Option<u32>,
    x: &[f32],
    n: usize,
    inp: usize,
) -> Result<(Vec<f32>, usize), String> {
    #[cfg(test)]
    if reference::active() {
        return reference::linear(view, r, role, layer, x, n, inp);
    }
    let i = r.find(role, layer).ok_or_else(|| {
        format!(
            "no `{role}`{}",
            layer.map(|l| format!(" in layer {l}")).unwrap_or_default()
        )
    })?;
    let t = &view.tensors[i];
    if !t.size_ok() {
        return Err(format!(
            "`{}` has the wrong byte size for its dtype",
            t.name
        ));
    }
    let (rows, cols) = t.rows_cols();
    if cols as usize != inp {
        return Err(format!(
            "`{}` has rows of {cols}, the input has {inp} features",
            t.name
        ));
    }
    if x.len() != n * inp {
        return Err(format!(
            "`{}`: the input holds {} values, not {n} tokens of {inp}",
            t.name,
            x.len()
        ));
    }
    let out = rows as usize;
    let data = view.bytes(t);
    let xs = lanes::Tokens::new(x, inp, n);
    let y = tiled(
        view,
        r,
        (role, layer),
        (n, out, tile_rows(inp)),
        Vec::new,
        |w: &mut Vec<f32>, r0, r1, yt_tile| {
            w.resize((r1 - r0) * inp, 0.0);
            crate::quant::dequantize_rows_serial(t.dtype, data, &t.dims, r0 as u64..r1 as u64, w)
                .map_err(|e| format!("`{}`: {e}", t.name))?;
            lanes::tile_product(w, &xs, yt_tile);
            Ok(())
        },
    );
    view.release(t);
    y
}

/// y (`n` rows of `out` values) of a linear layer computed a tile of `tile` weight rows at a
/// time on the pool, plus the role's bias when the model has one.
///
/// `product(state, r0, r1, yt)` writes every value of the tile's yᵀ (row-major `(r1 − r0, n)`)
/// into a per-thread buffer that stays in cache (`state` is the thread's own, from `init`); the
/// tile is then written into y transposed, each token's part as one contiguous run, the bias
/// added as it is written (y = yt + b, the one addition the bias ever had). No whole yᵀ is
/// ever held: y is the one buffer of the layer's size, and it crosses memory once.
pub(super) fn tiled<S, I, P>(
    view: &ModelView,
    r: &Resolved<'_>,
    (role, layer): (&str, Option<u32>),
    (n, out, tile): (usize, usize, usize),
    init: I,
    product: P,
) -> Result<(Vec<f32>, usize), String>
where
    I: Fn() -> S + Sync + Send,
    P: Fn(&mut S, usize, usize, &mut [f32]) -> Result<(), String> + Sync + Send,
{
    let bias_role = format!("{role}_bias");
    let bias = match r.find(&bias_role, layer) {
        Some(bi) => {
            let bt = &view.tensors[bi];
            let b = view
                .dequantize(bt)
                .map_err(|e| format!("`{}`: {e}", bt.name))?;
            (b.len() == out).then_some(b)
        }
        None => None,
    };
    let mut y = vec![0f32; n * out];
    if out > 0 && n > 0 {
        let tile = tile.max(1);
        // blocks[k][j]: token j's outputs of tile k.
        let mut blocks: Vec<Vec<&mut [f32]>> = (0..out.div_ceil(tile))
            .map(|_| Vec::with_capacity(n))
            .collect();
        for row in y.chunks_exact_mut(out) {
            for (parts, part) in blocks.iter_mut().zip(row.chunks_mut(tile)) {
                parts.push(part);
            }
        }
        blocks.into_par_iter().enumerate().try_for_each_init(
            || (init(), Vec::new()),
            |(state, yt), (k, mut parts)| {
                let o0 = k * tile;
                let o1 = (o0 + tile).min(out);
                yt.resize((o1 - o0) * n, 0.0);
                product(state, o0, o1, yt)?;
                let b = bias.as_deref().and_then(|b| b.get(o0..o1));
                for (j, dst) in parts.iter_mut().enumerate().take(n) {
                    // Output o0 + i of token j is value j of the tile's row i.
                    let src = yt.chunks_exact(n);
                    match b {
                        Some(b) => {
                            for ((v, r), bv) in dst.iter_mut().zip(src).zip(b) {
                                *v = r[j] + bv;
                            }
                        }
                        None => {
                            for (v, r) in dst.iter_mut().zip(src) {
                                *v = r[j];
                            }
                        }
                    }
                }
                Ok::<(), String>(())
            },
        )?;
    }
    Ok((y, out))
}

fn vector(
    view: &ModelView,
    r: &Resolved<'_>,
    role: &str,
    layer: Option<u32>,
    len: usize,
) -> Result<Vec<f32>, String> {
    let i = r.find(role, layer).ok_or_else(|| format!("no `{role}`"))?;
    let t = &view.tensors[i];
    let v = view
        .dequantize(t)
        .map_err(|e| format!("`{}`: {e}", t.name))?;
    if v.len() != len {
        return Err(format!(
            "`{}` has {} values, {len} expected",
            t.name,
            v.len()
        ));
    }
    Ok(v)
}

/// RMSNorm of each row of `x` (rows of `w.len()`), times `w`.
fn rms_norm(x: &[f32], w: &[f32], eps: f64) -> Vec<f32> {
    #[cfg(test)]
    if reference::active() {
        return reference::rms_norm(x, w, eps);
    }
    let h = w.len();
    let mut out = vec![0f32; x.len()];
    for (xt, ot) in x.chunks(h.max(1)).zip(out.chunks_mut(h.max(1))) {
        let ms = lanes::sum_squares(xt) as f64 / h as f64;
        let s = (1.0 / (ms + eps).sqrt()) as f32;
        for ((o, v), wv) in ot.iter_mut().zip(xt).zip(w) {
            *o = (v * s) * wv;
        }
    }
    out
}

/// Causal GQA attention of `n` tokens: query head g reads KV head g / (n_head / n_kv); `q` is
/// `n` rows of `n_head · hd`, `k` and `v` `n` rows of `n_kv · hd`. Returns `n` rows of
/// `n_head · hd`. Heads are split over the thread pool; scores and the softmax are f32 with the
/// dot products on SIMD lanes.
fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
) -> Vec<f32> {
    #[cfg(test)]
    if reference::active() {
        return reference::attention(q, k, v, n, n_head, n_kv, hd);
    }
    let (qd, kd) = (n_head * hd, n_kv * hd);
    let group = n_head / n_kv;
    let scale = (1.0 / (hd as f64).sqrt()) as f32;
    // Per head, (n, hd) row-major; interleaved into (n, qd) afterwards.
    let heads: Vec<Vec<f32>> = (0..n_head)
        .into_par_iter()
        .map(|g| {
            let kvh = g / group;
            let mut out = vec![0f32; n * hd];
            let mut scores = Vec::with_capacity(n);
            for t in 0..n {
                let qv = &q[t * qd + g * hd..t * qd + (g + 1) * hd];
                scores.clear();
                scores.extend((0..=t).map(|s| {
                    lanes::dot(qv, &k[s * kd + kvh * hd..s * kd + (kvh + 1) * hd]) * scale
                }));
                let m = scores.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
                let mut z = 0f32;
                for sc in scores.iter_mut() {
                    *sc = (*sc - m).exp();
                    z += *sc;
                }
                let ot = &mut out[t * hd..(t + 1) * hd];
                for (s, w) in scores.iter().enumerate() {
                    let w = w / z;
                    let vrow = &v[s * kd + kvh * hd..s * kd + (kvh + 1) * hd];
                    for (o, x) in ot.iter_mut().zip(vrow) {
                        *o += w * x;
                    }
                }
            }
            out
        })
        .collect();
    let mut attn = vec![0f32; n * qd];
    for (g, head) in heads.iter().enumerate() {
        for t in 0..n {
            attn[t * qd + g * hd..t * qd + (g + 1) * hd]
                .copy_from_slice(&head[t * hd..(t + 1) * hd]);
        }
    }
    attn
}

/// The attention inputs of one block (row-major `(tokens, features)`).
pub struct AttnInputs {
    pub normed: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub q_rope: Vec<f32>,
    pub k_rope: Vec<f32>,
    pub q_dim: usize,
    pub kv_dim: usize,
}

/// Which positions' logits the head computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Logits {
    /// Every position's (each one compared).
    #[default]
    All,
    /// The last position's only, as an engine computes them to pick the next token (and as
    /// `llama-bench` does): the output product for one token instead of every token; its
    /// weights are read once either way. The final norm is still every position's.
    Last,
}

/// One named stage of one layer.
#[derive(Clone, Debug)]
pub struct Act {
    pub stage: &'static str,
    pub layer: Option<u32>,
    pub values: Vec<f32>,
    pub width: usize,
}

pub struct Model<'a> {
    pub view: &'a ModelView,
    pub r: &'a Resolved<'a>,
    hidden: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
    eps: f64,
    theta: f64,
    rope: RopeType,
    /// `rope_freqs.weight` (Llama 3.1+): one divisor of the rotation angle per rotary pair.
    rope_factors: Option<Vec<f32>>,
    /// Where they came from: "`rope_freqs.weight`" or "the `llama3` `rope_scaling`".
    rope_factors_source: &'static str,
    /// RoPE context scaling (`rope.scaling.*` / `rope_scaling`), as llama.cpp applies it.
    stretch: Stretch,
    pub n_layer: u32,
    /// How linear layers are computed ([`Model::with_mode`]).
    mode: Mode,
}

impl<'a> Model<'a> {
    pub fn new(view: &'a ModelView, r: &'a Resolved<'a>) -> Result<Model<'a>, String> {
        let arch = r.arch.ok_or("no rule set for the architecture")?;
        let get = |k: &str| {
            r.env
                .get(k)
                .copied()
                .map(|v| v as usize)
                .ok_or_else(|| format!("`{k}` is not known"))
        };
        let n_head = get("n_head")?;
        let n_kv = get("n_head_kv")?;
        if n_kv == 0 || n_head % n_kv != 0 {
            return Err("n_head is not a multiple of n_head_kv".into());
        }
        // Every width below divides or chunks by these: zero (or an odd head_dim, which RoPE cannot
        // pair) from a hostile config must be an error, not a panic.
        let (hidden, hd) = (get("hidden")?, get("head_dim")?);
        if hidden == 0 || hd == 0 || hd % 2 != 0 {
            return Err(format!(
                "hidden {hidden} / head_dim {hd} cannot be run (zero or odd head_dim)"
            ));
        }
        // Real heads are at most a few hundred wide; the divisors below are computed per pair.
        if hd > 1 << 16 {
            return Err(format!("head_dim {hd} is wider than any model's"));
        }
        let theta = view.config.rope_base();
        let (rope_factors, source) = match r.find("rope_freqs", None) {
            // Hugging Face's `llama3` scaling stands for the divisors GGUF stores as a tensor.
            None => match crate::numeric::llama3_divisors_of(view, hd) {
                Some(f) => (Some(f), "the `llama3` `rope_scaling`"),
                None => (None, "no divisors"),
            },
            Some(_) => (
                Some(vector(view, r, "rope_freqs", None, hd / 2)?),
                "`rope_freqs.weight`",
            ),
        };
        // llama.cpp divides each pair's angle by its factor: a zero, negative or non-finite one
        // makes every rotation after position 0 meaningless, so it is not run.
        if let Some((i, v)) = rope_factors
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(format!(
                "{source} gives {v} for rotary pair {i}: llama.cpp divides that pair's angle by it"
            ));
        }
        let stretch = match &view.config.rope_scaling {
            Some(s) => Stretch::of(&s.value, hd, theta)?,
            None => Stretch::NONE,
        };
        Ok(Model {
            view,
            r,
            rope_factors,
            rope_factors_source: source,
            stretch,
            hidden: get("hidden")?,
            n_head,
            n_kv,
            hd: get("head_dim")?,
            eps: view
                .config
                .rms_eps
                .as_ref()
                .map(|v| v.value)
                .ok_or("rms eps is not known")?,
            theta,
            rope: rope::effective(view, arch),
            n_layer: get("n_layer")? as u32,
            mode: Mode::F32,
        })
    }

    /// The same model with its linear layers computed in `mode`.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// How this model computes its linear layers.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A linear layer of this model in its mode.
    fn mm(
        &self,
        role: &str,
        layer: Option<u32>,
        x: &[f32],
        n: usize,
        inp: usize,
    ) -> Result<(Vec<f32>, usize), String> {
        match self.mode {
            Mode::F32 => linear(self.view, self.r, role, layer, x, n, inp),
            Mode::Ggml => exact::linear_ggml(self.view, self.r, role, layer, x, n, inp),
        }
    }

    pub fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>, String> {
        let i = self.r.find("token_embd", None).ok_or("no embedding")?;
        let t = &self.view.tensors[i];
        let (vocab, cols) = t.rows_cols();
        if cols as usize != self.hidden || !t.size_ok() {
            return Err(format!(
                "`{}` dims {:?} do not hold rows of {}",
                t.name, t.dims, self.hidden
            ));
        }
        let mut out = Vec::new();
        for &id in tokens {
            if id as u64 >= vocab {
                return Err(format!(
                    "token id {id} is outside the {vocab} embedding rows"
                ));
            }
            out.extend(
                self.view
                    .dequantize_rows(t, id as u64..id as u64 + 1)
                    .map_err(|e| e.to_string())?,
            );
        }
        self.view.release(t);
        Ok(out)
    }

    /// Rotate one token's Q or K (`heads · head_dim` values) as at position `pos`.
    pub fn rope_at(&self, x: &mut [f32], pos: u64) {
        rope_scaled(
            x,
            self.hd,
            pos,
            self.theta,
            self.rope,
            self.rope_factors.as_deref(),
            &self.stretch,
        );
    }

    /// The rotary frequency divisors this file's model uses (`rope_freqs.weight`), if any.
    pub fn rope_factors(&self) -> Option<&[f32]> {
        self.rope_factors.as_deref()
    }

    /// Where [`Model::rope_factors`] came from, for messages.
    pub fn rope_factors_source(&self) -> &'static str {
        self.rope_factors_source
    }

    /// The RoPE context scaling this file's model applies.
    pub fn stretch(&self) -> Stretch {
        self.stretch
    }

    /// The attention inputs of block `l`: RMSNorm with `attn_norm`, Q/K/V (+ bias), Q/K after RoPE
    /// at positions 0..n.
    pub fn attention_inputs(&self, l: u32, x: &[f32], n: usize) -> Result<AttnInputs, String> {
        let (h, hd) = (self.hidden, self.hd);
        let (v, r, lay) = (self.view, self.r, Some(l));
        let normed = rms_norm(x, &vector(v, r, "attn_norm", lay, h)?, self.eps);
        let (mut q, qd) = self.mm("attn_q", lay, &normed, n, h)?;
        let (mut k, kd) = self.mm("attn_k", lay, &normed, n, h)?;
        let (vv, vd) = self.mm("attn_v", lay, &normed, n, h)?;
        if qd != self.n_head * hd || kd != self.n_kv * hd || vd != kd {
            return Err(format!(
                "layer {l}: Q/K/V widths {qd}/{kd}/{vd} do not fit {} heads, {} KV heads of {hd}",
                self.n_head, self.n_kv
            ));
        }
        // Qwen3: per-head RMSNorm of Q and K before RoPE (`attn_q_norm`, `attn_k_norm`).
        if r.find("attn_q_norm", lay).is_some() {
            q = rms_norm(&q, &vector(v, r, "attn_q_norm", lay, hd)?, self.eps);
        }
        if r.find("attn_k_norm", lay).is_some() {
            k = rms_norm(&k, &vector(v, r, "attn_k_norm", lay, hd)?, self.eps);
        }
        let (mut q_rope, mut k_rope) = (q.clone(), k.clone());
        for t in 0..n {
            self.rope_at(&mut q_rope[t * qd..(t + 1) * qd], t as u64);
            self.rope_at(&mut k_rope[t * kd..(t + 1) * kd], t as u64);
        }
        Ok(AttnInputs {
            normed,
            q,
            k,
            v: vv,
            q_rope,
            k_rope,
            q_dim: qd,
            kv_dim: kd,
        })
    }

    /// One block on input `x` (n tokens). Returns its stages, the last being `layer_out`.
    pub fn layer(&self, l: u32, x: &[f32], n: usize) -> Result<Vec<Act>, String> {
        let (h, hd) = (self.hidden, self.hd);
        let (v, r, lay) = (self.view, self.r, Some(l));
        let AttnInputs {
            normed,
            q: q_pre,
            k: k_pre,
            v: vv,
            q_rope: q,
            k_rope: k,
            q_dim: qd,
            kv_dim: kd,
        } = self.attention_inputs(l, x, n)?;
        let vd = kd;
        let attn = attention(&q, &k, &vv, n, self.n_head, self.n_kv, hd);
        let (o, od) = self.mm("attn_output", lay, &attn, n, qd)?;
        if od != h {
            return Err(format!(
                "layer {l}: attn_output width {od} is not hidden {h}"
            ));
        }
        let ffn_inp: Vec<f32> = o.iter().zip(x).map(|(a, b)| a + b).collect();
        let fnorm = rms_norm(&ffn_inp, &vector(v, r, "ffn_norm", lay, h)?, self.eps);
        let (gate, f) = self.mm("ffn_gate", lay, &fnorm, n, h)?;
        let (up, f2) = self.mm("ffn_up", lay, &fnorm, n, h)?;
        if f != f2 {
            return Err(format!(
                "layer {l}: ffn_gate ({f}) and ffn_up ({f2}) widths differ"
            ));
        }
        let act: Vec<f32> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| (*g / (1.0 + (-*g).exp())) * u)
            .collect();
        let (down, dd) = self.mm("ffn_down", lay, &act, n, f)?;
        if dd != h {
            return Err(format!("layer {l}: ffn_down width {dd} is not hidden {h}"));
        }
        let out: Vec<f32> = down.iter().zip(&ffn_inp).map(|(a, b)| a + b).collect();
        let a = |stage, values: Vec<f32>, width| Act {
            stage,
            layer: lay,
            values,
            width,
        };
        Ok(vec![
            a("attn_norm", normed, h),
            a("q", q_pre, qd),
            a("k", k_pre, kd),
            a("v", vv, vd),
            a("q_rope", q, qd),
            a("k_rope", k, kd),
            a("attn_out", o, h),
            a("ffn_norm", fnorm, h),
            a("ffn_out", down, h),
            a("layer_out", out, h),
        ])
    }

    /// Final norm (every position) and logits (every position, or the last one's).
    pub fn head(&self, x: &[f32], n: usize, logits: Logits) -> Result<Vec<Act>, String> {
        let h = self.hidden;
        let normed = rms_norm(
            x,
            &vector(self.view, self.r, "output_norm", None, h)?,
            self.eps,
        );
        let role = if self
            .r
            .find("output", None)
            .is_some_and(|i| self.view.tensors[i].data.len > 0)
        {
            "output"
        } else {
            "token_embd"
        };
        let (rows, m) = match logits {
            Logits::Last if n > 0 => (&normed[(n - 1) * h..], 1),
            _ => (&normed[..], n),
        };
        let (logits, vocab) = self.mm(role, None, rows, m, h)?;
        Ok(vec![
            Act {
                stage: "output_norm",
                layer: None,
                values: normed,
                width: h,
            },
            Act {
                stage: "logits",
                layer: None,
                values: logits,
                width: vocab,
            },
        ])
    }

    /// The width of the residual stream.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
    pub fn rope_type(&self) -> RopeType {
        self.rope
    }
    pub fn head_dim(&self) -> usize {
        self.hd
    }
}

/// Every stage of one file.
pub fn run_all(m: &Model<'_>, tokens: &[u32]) -> Result<Vec<Act>, String> {
    let n = tokens.len();
    let mut x = m.embed(tokens)?;
    let mut acts = vec![Act {
        stage: "embedding",
        layer: None,
        values: x.clone(),
        width: m.hidden,
    }];
    for l in 0..m.n_layer {
        let st = m.layer(l, &x, n)?;
        x = st.last().map(|a| a.values.clone()).unwrap_or_default();
        acts.extend(st);
    }
    acts.extend(m.head(&x, n, Logits::All)?);
    Ok(acts)
}
