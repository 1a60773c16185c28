//! Config values one file can carry that no model runs with: a non-finite or negative RMSNorm
//! epsilon, a RoPE base that is not a positive finite number, a rotary width that is not the head
//! width, a V head width that is not the head width, a zero context length, and values so large
//! that the rules' dims formulas overflow (those are `APRL-M003`: the values contradict the
//! tensors). Both files of a pair can carry the same bad value (a converter copies it), so the pair
//! checks, which compare the files, cannot see these.

use crate::diag::{Finding, Severity, lint};
use crate::model::ModelView;
use crate::rules::Resolved;
use crate::rules::formula::EvalError;

use super::metadata::CONFIG_INCONSISTENT;

lint!(CONFIG_VALUE, "APRL-M013", "metadata-mismatch", Error, "a config value no model runs with",
"What it catches: an RMSNorm epsilon that is NaN, infinite or negative (zero is a warning); a RoPE base (`rope.freq_base`, `rope_theta`) that is not finite and above 1; a `rope.dimension_count` that is zero, odd, larger than head_dim, or smaller than head_dim for an architecture that rotates whole heads; an `attention.value_length` other than head_dim for an architecture whose V heads are head_dim wide; a context length of 0 (a warning); RoPE scaling that llama.cpp refuses or cannot run (an unknown GGUF `rope.scaling.type`, a negative or non-finite factor or attn_factor, YaRN without an original context).
Why it matters: every one of these makes the model compute something else than it was trained to, in both files alike: NaN norms give NaN logits; a wrong rotary width or base scrambles positions (garbage after the first tokens). Both files of a pair usually carry the same value, because converters copy it, so only a per-file check sees it.
How to fix: copy the value from the model's `config.json` (`rms_norm_eps`, `rope_theta`, `head_dim`, `partial_rotary_factor`, `max_position_embeddings`).
Precedent: aprender F-REGR-231 (`eps` dropped to a default); llama.cpp PR #2773 (rope base); llama.cpp refuses a llama `n_rot` other than head_dim (\"invalid n_rot\").");

pub static ALL: &[&crate::diag::Lint] = &[&CONFIG_VALUE];

pub fn check(view: &ModelView, r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let c = &view.config;
    if let Some(e) = &c.rms_eps {
        let v = e.value;
        if !v.is_finite() || v < 0.0 {
            out.push(Finding::new(&CONFIG_VALUE, format!("`{}` is {}: RMSNorm divides by sqrt(mean(x²) + eps), so every normalised activation becomes {}", e.key, crate::diag::fmt_float(v), if v.is_nan() { "NaN" } else { "NaN or meaningless" }))
                    .help("write the model's `rms_norm_eps` (1e-6 for Qwen2, 1e-5 for most Llamas)").at_key(e.key.as_str(), e.span));
        } else if v == 0.0 {
            out.push(Finding::new(&CONFIG_VALUE, format!("`{}` is 0: an all-zero row divides by zero; models are trained with a small positive epsilon", e.key))
                    .severity(Severity::Warning)
                    .help("write the model's `rms_norm_eps`").at_key(e.key.as_str(), e.span));
        }
    }
    if let Some(t) = &c.rope_theta {
        let v = t.value;
        if !v.is_finite() || v <= 1.0 {
            out.push(Finding::new(&CONFIG_VALUE, format!("`{}` is {}: RoPE frequencies are base^(-2i/d), which needs a finite base above 1", t.key, crate::diag::fmt_float(v)))
                    .help("write the model's `rope_theta` (1e6 for Qwen2.5, 5e5 for Llama 3, 1e4 for Llama 2)").at_key(t.key.as_str(), t.span));
        }
    }
    if let Some(ctx) = &c.context_length
        && ctx.value == 0
    {
        out.push(
            Finding::new(
                &CONFIG_VALUE,
                format!("`{}` is 0: no position fits", ctx.key),
            )
            .severity(Severity::Warning)
            .help("write the model's `max_position_embeddings`")
            .at_key(ctx.key.as_str(), ctx.span),
        );
    }
    // Widths: only where the rules say what a head is (every built-in architecture rotates whole
    // heads and has V heads as wide as Q/K heads).
    let head_dim = r.arch.and(r.env.get("head_dim").copied());
    if let (Some(rd), Some(hd)) = (&c.rope_dims, head_dim) {
        let n = rd.value;
        let arch = r.arch.map(|a| a.arch.as_str()).unwrap_or_default();
        let problem = if n == 0 {
            Some("nothing would be rotated: positions are lost".to_owned())
        } else if n % 2 != 0 {
            Some("RoPE rotates pairs of dims, so it must be even".to_owned())
        } else if n > hd {
            Some(format!("that is more than head_dim {hd}"))
        } else if n < hd {
            Some(format!(
                "llama.cpp then rotates only the first {n} of the {hd} dims of each head, but {arch} rotates whole heads (apr-lint's probe does too)"
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            out.push(
                Finding::new(&CONFIG_VALUE, format!("`{}` is {n}: {p}", rd.key))
                    .help(format!("write head_dim ({hd}) or drop the key"))
                    .at_key(rd.key.as_str(), rd.span),
            );
        }
    }
    if let (Some(vd), Some(hd)) = (&c.value_dim, head_dim)
        && vd.value != hd
    {
        out.push(
            Finding::new(
                &CONFIG_VALUE,
                format!(
                    "`{}` is {}, but V heads of {} are head_dim ({hd}) wide",
                    vd.key,
                    vd.value,
                    r.arch.map(|a| a.arch.as_str()).unwrap_or_default()
                ),
            )
            .help(format!("write {hd} or drop the key"))
            .at_key(vd.key.as_str(), vd.span),
        );
    }
    if let Some(sc) = &c.rope_scaling {
        rope_scaling(view, sc, out);
    }
    formulas(r, out);
}

/// RoPE context scaling values llama.cpp refuses or cannot run with.
fn rope_scaling(
    view: &ModelView,
    sc: &crate::model::config::ConfigValue<crate::model::config::RopeScaling>,
    out: &mut Vec<Finding>,
) {
    let s = &sc.value;
    let gguf = view.runtime() == crate::model::Runtime::LlamaCpp;
    let mut problems: Vec<(String, Severity)> = Vec::new();
    let known: &[&str] = if gguf {
        &["none", "linear", "yarn", "longrope"]
    } else {
        // Hugging Face `rope_type`s ("default" is read as none).
        &["none", "linear", "yarn", "longrope", "llama3", "dynamic"]
    };
    if !known.contains(&s.kind.as_str()) {
        problems.push(if gguf {
            (format!("RoPE scaling type `{}` is not one llama.cpp knows (none, linear, yarn, longrope): it refuses to load the file", s.kind), Severity::Error)
        } else {
            (format!("RoPE scaling type `{}` is not a Hugging Face `rope_type`", s.kind), Severity::Warning)
        });
    }
    if s.uses_factor() && (!s.factor.is_finite() || s.factor < 0.0) {
        problems.push((
            format!(
                "RoPE scaling factor {}: angles are divided by it, so it must be a positive finite number",
                s.factor
            ),
            Severity::Error,
        ));
    }
    if !s.attn_factor.is_finite() || s.attn_factor <= 0.0 {
        problems.push((
            format!(
                "RoPE scaling attn_factor {}: it multiplies every rotated Q and K value",
                s.attn_factor
            ),
            Severity::Error,
        ));
    }
    if s.kind == "llama3" && !(s.low_freq_factor > 0.0 && s.high_freq_factor > s.low_freq_factor) {
        problems.push((
            format!(
                "`llama3` scaling with low_freq_factor {} and high_freq_factor {}: the divisors interpolate between them, which needs 0 < low < high",
                s.low_freq_factor, s.high_freq_factor
            ),
            Severity::Error,
        ));
    }
    if s.kind == "yarn" && s.original_context.is_none_or(|n| n == 0) {
        problems.push((
            "YaRN without an original context length (neither `original_context_length` nor the context length is above 0): its correction range is log(0)".to_owned(),
            Severity::Error,
        ));
    }
    for (msg, sev) in problems {
        let mut f = Finding::new(&CONFIG_VALUE, format!("`{}`: {msg}", sc.key))
            .severity(sev)
            .help("copy the model's `rope_scaling` from its `config.json`");
        f = f.at_key(sc.key.as_str(), sc.span);
        out.push(f);
    }
}

/// A role whose dims cannot be computed from this file's config because a value is absurd (the
/// product overflows u64, a division by zero or with a remainder). Missing values are `APRL-M002`,
/// not repeated here. One finding per role; without it the role's dims would go unchecked silently.
fn formulas(r: &Resolved<'_>, out: &mut Vec<Finding>) {
    let Some(arch) = r.arch else { return };
    for role in &arch.roles {
        match r.expected_dims(role) {
            Ok(_) | Err(EvalError::Missing(_)) => {}
            Err(e) => out.push(
                Finding::new(
                    &CONFIG_INCONSISTENT,
                    format!(
                        "the `{}` dims [{}] cannot be computed from this config: {e}",
                        role.key,
                        role.dims.join(", ")
                    ),
                )
                .help("correct the config values; the tensor's dims were not checked"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::writer::generate::{Shape, gguf_model};
    use crate::format::writer::gguf::MetaValue;
    use crate::format::{Source, gguf};
    use crate::quant::DType;
    use crate::rules::RuleSet;

    const MICRO: Shape = Shape {
        arch: "qwen2",
        hidden: 32,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        ffn: 64,
        vocab: 300,
        tied: false,
    };

    /// The findings of this check on the micro model with `key` set to `v`.
    fn with(key: &str, v: MetaValue) -> Vec<Finding> {
        let mut w = gguf_model(&MICRO, DType::F32, 1);
        match w.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = v,
            None => w.metadata.push((key.to_owned(), v)),
        }
        let src = Source::from_vec(w.to_bytes(), "m.gguf");
        assert!(gguf::read(src.clone()).is_ok());
        let view = ModelView::from_source(src).expect("reads");
        let rules = RuleSet::builtin();
        let r = Resolved::new(&view, &rules);
        let mut out = Vec::new();
        check(&view, &r, &mut out);
        out
    }

    fn codes(f: &[Finding]) -> Vec<(&'static str, Severity)> {
        f.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn the_generated_model_is_clean() {
        assert!(with("general.name", MetaValue::string("x")).is_empty());
    }

    #[test]
    fn bad_epsilons() {
        for v in [f32::NAN, f32::INFINITY, -1e-6] {
            let f = with("qwen2.attention.layer_norm_rms_epsilon", MetaValue::F32(v));
            assert_eq!(codes(&f), [("APRL-M013", Severity::Error)], "{v}");
            assert!(f[0].span.is_some());
        }
        let f = with(
            "qwen2.attention.layer_norm_rms_epsilon",
            MetaValue::F32(0.0),
        );
        assert_eq!(codes(&f), [("APRL-M013", Severity::Warning)]);
        assert!(
            with(
                "qwen2.attention.layer_norm_rms_epsilon",
                MetaValue::F32(1e-5)
            )
            .is_empty()
        );
    }

    #[test]
    fn bad_rope_bases() {
        for v in [f32::NAN, f32::NEG_INFINITY, 0.0, -10_000.0, 1.0, 1e-45] {
            let f = with("qwen2.rope.freq_base", MetaValue::F32(v));
            assert_eq!(codes(&f), [("APRL-M013", Severity::Error)], "{v}");
        }
        assert!(with("qwen2.rope.freq_base", MetaValue::F32(10_000.0)).is_empty());
    }

    #[test]
    fn rotary_width_must_be_the_head_width() {
        // head_dim = 32 / 4 = 8.
        for v in [0u32, 3, 4, 16] {
            let f = with("qwen2.rope.dimension_count", MetaValue::U32(v));
            assert_eq!(codes(&f), [("APRL-M013", Severity::Error)], "{v}");
        }
        assert!(with("qwen2.rope.dimension_count", MetaValue::U32(8)).is_empty());
    }

    #[test]
    fn value_width_must_be_the_head_width() {
        let f = with("qwen2.attention.value_length", MetaValue::U32(u32::MAX));
        assert_eq!(codes(&f), [("APRL-M013", Severity::Error)]);
        assert!(with("qwen2.attention.value_length", MetaValue::U32(8)).is_empty());
    }

    #[test]
    fn zero_context_is_a_warning() {
        let f = with("qwen2.context_length", MetaValue::U32(0));
        assert_eq!(codes(&f), [("APRL-M013", Severity::Warning)]);
    }

    #[test]
    fn overflowing_dims_are_reported_not_skipped() {
        // head_dim = 2^64 - 1: `n_head * head_dim` (and `n_head_kv * head_dim`) overflows for
        // q, k, v, their biases and the attention output.
        let f = with("qwen2.attention.key_length", MetaValue::U64(u64::MAX));
        let roles: Vec<&str> = f
            .iter()
            .filter(|f| f.code == "APRL-M003")
            .map(|f| f.message.split('`').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            roles,
            [
                "attn_q",
                "attn_q_bias",
                "attn_k",
                "attn_k_bias",
                "attn_v",
                "attn_v_bias",
                "attn_output"
            ]
        );
    }
}
