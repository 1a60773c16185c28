//! RoPE as llama.cpp applies it: the rotation a file gets, the per-pair angles with Llama 3's
//! frequency divisors, and llama.cpp's context scaling (linear, YaRN).

use crate::model::{ModelView, RopeType};
use crate::rules::Arch;

/// The rotation a file will get (its effective rope type): a GGUF gets its architecture's; an APR
/// its declared `rope_type` (else the architecture's). The one place this is decided.
pub fn effective(view: &ModelView, arch: &Arch) -> RopeType {
    arch.rope_of(view)
}

/// Rotate each head of `x` (one token, `n_head · d` values) in place at position `pos`.
/// `factors` (Llama 3's `rope_freqs.weight`, one per rotary pair) divide each pair's angle, as
/// ggml's `ggml_rope_cache_init` does (`theta / ff`).
pub fn rope(
    x: &mut [f32],
    d: usize,
    pos: u64,
    theta: f64,
    kind: RopeType,
    factors: Option<&[f32]>,
) {
    rope_scaled(x, d, pos, theta, kind, factors, &Stretch::NONE)
}

/// llama.cpp's RoPE context scaling, as `llama_context` derives it from the file's
/// `rope.scaling.*` keys and ggml-cpu's `rope_yarn` applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stretch {
    /// 1 / factor (1: no stretch).
    pub freq_scale: f64,
    /// 1 for YaRN, else 0.
    pub ext_factor: f64,
    /// Multiplies cos and sin (`yarn_attn_factor` × `rope.scaling.attn_factor`).
    pub attn_factor: f64,
    /// YaRN's correction range of rotary pairs.
    pub corr: [f64; 2],
}

impl Stretch {
    pub const NONE: Stretch = Stretch {
        freq_scale: 1.0,
        ext_factor: 0.0,
        attn_factor: 1.0,
        corr: [0.0, 0.0],
    };

    /// The stretch a file's scaling gives, for `n_dims` rotated dims and RoPE base `base`.
    pub fn of(
        s: &crate::model::config::RopeScaling,
        n_dims: usize,
        base: f64,
    ) -> Result<Stretch, String> {
        if s.uses_factor() && !(s.factor.is_finite() && s.factor > 0.0) {
            return Err(format!("RoPE scaling factor {} cannot be run", s.factor));
        }
        if !(s.attn_factor.is_finite() && s.attn_factor > 0.0) {
            return Err(format!(
                "RoPE scaling attn_factor {} cannot be run",
                s.attn_factor
            ));
        }
        let f = s.factor;
        match s.kind.as_str() {
            // `llama3` is per-pair divisors (`RopeScaling::llama3_factors`), not a stretch;
            // `dynamic` changes nothing within the trained context (llama.cpp has no such type).
            "none" | "llama3" | "dynamic" => Ok(Stretch {
                attn_factor: s.attn_factor,
                ..Stretch::NONE
            }),
            "linear" => Ok(Stretch {
                freq_scale: 1.0 / f,
                attn_factor: s.attn_factor,
                ..Stretch::NONE
            }),
            "yarn" => {
                let n_orig = match s.original_context {
                    Some(n) if n > 0 => n as f64,
                    _ => return Err("YaRN without an original context length".into()),
                };
                // ggml_rope_yarn_corr_dims with llama.cpp's beta_fast 32, beta_slow 1.
                let corr_dim = |beta: f64| {
                    n_dims as f64 * (n_orig / (beta * 2.0 * std::f64::consts::PI)).ln()
                        / (2.0 * base.ln())
                };
                let start = corr_dim(32.0).floor().max(0.0);
                let end = corr_dim(1.0).ceil().min(n_dims as f64 - 1.0);
                // llama_context: get_mscale(factor) cancelled by ggml's own 1 + 0.1 ln(factor).
                let get_mscale = if f <= 1.0 { 1.0 } else { 0.1 * f.ln() + 1.0 };
                Ok(Stretch {
                    freq_scale: 1.0 / f,
                    ext_factor: 1.0,
                    attn_factor: get_mscale / (1.0 + 0.1 * f.ln()) * s.attn_factor,
                    corr: [start, end],
                })
            }
            other => Err(format!("RoPE scaling `{other}` is not modelled")),
        }
    }

    /// The same rotation up to f32 storage of the parameters.
    pub fn close_to(&self, o: &Stretch) -> bool {
        let near = |x: f64, y: f64| (x - y).abs() <= 1e-6 * y.abs();
        near(self.freq_scale, o.freq_scale)
            && near(self.attn_factor, o.attn_factor)
            && self.ext_factor == o.ext_factor
            && (self.ext_factor == 0.0 || self.corr == o.corr)
    }

    /// The angle and magnitude of rotary pair `i` for unscaled angle `theta_extrap`.
    fn apply(&self, theta_extrap: f64, i: usize) -> (f64, f64) {
        let theta_interp = self.freq_scale * theta_extrap;
        if self.ext_factor == 0.0 {
            return (theta_interp, self.attn_factor);
        }
        let y = (i as f64 - self.corr[0]) / (self.corr[1] - self.corr[0]).max(0.001);
        let ramp_mix = (1.0 - y.clamp(0.0, 1.0)) * self.ext_factor;
        (
            theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix,
            self.attn_factor * (1.0 + 0.1 * (1.0 / self.freq_scale).ln()),
        )
    }
}

/// [`rope`] with llama.cpp's context scaling.
pub fn rope_scaled(
    x: &mut [f32],
    d: usize,
    pos: u64,
    theta: f64,
    kind: RopeType,
    factors: Option<&[f32]>,
    stretch: &Stretch,
) {
    let half = d / 2;
    // The angles depend on the pair and the position only: computed once for every head.
    let cos_sin: Vec<(f64, f64)> = (0..half)
        .map(|i| {
            let ff = factors.and_then(|f| f.get(i)).map_or(1.0, |v| *v as f64);
            let freq = theta.powf(-2.0 * i as f64 / d as f64) / ff;
            let (a, m) = stretch.apply(pos as f64 * freq, i);
            let (s, c) = a.sin_cos();
            (c * m, s * m)
        })
        .collect();
    for head in x.chunks_mut(d) {
        for (i, &(c, s)) in cos_sin.iter().enumerate() {
            let (i0, i1) = match kind {
                RopeType::Norm => (2 * i, 2 * i + 1),
                RopeType::Neox => (i, i + half),
            };
            let (x0, x1) = (head[i0] as f64, head[i1] as f64);
            head[i0] = (x0 * c - x1 * s) as f32;
            head[i1] = (x0 * s + x1 * c) as f32;
        }
    }
}
