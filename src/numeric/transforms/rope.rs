//! RoPE row permutation per head (`bug-classes.md`, "The RoPE permutation, exactly"): llama.cpp's
//! converter stores Q/K rows so that the NORM rotation is right — within each head of `d` rows,
//! GGUF row `h·d + 2i + j` holds Hugging Face row `h·d + j·(d/2) + i` — with n_head for Q and
//! n_head_kv for K. Hypotheses, each with the role's own head count and with the other one, both
//! directions: the file under test holds Hugging Face order where the reference is permuted, is
//! permuted where the reference is not, is permuted twice, or was permuted with the wrong head count
//! (llama.cpp PR #3364: K with n_head under GQA).
//!
//! Whether a found order is a bug depends on the rope type the file declares: Hugging Face order
//! with NEOX and llama.cpp's order with NORM are both right (the latter only for architectures whose
//! GGUF rows are permuted); anything else is `rope-permuted` or `rope-permuted-wrong-heads`.

use super::{Context, Explanation};
use crate::diag::Finding;
use crate::model::{ModelView, RopeType};
use crate::numeric::forward::permute::row::{gguf_to_hf, hf_to_gguf};
use crate::numeric::forward::rope::effective as declared_rope;
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};
use crate::numeric::sample::{Reader, Sample, dedup};
use crate::rules::Arch;

/// Rows of the permutation sample (first rows and last head together).
const HEAD_ROWS: u64 = 192;
/// Values kept per sampled row.
const VALUES_PER_ROW: usize = 32;

/// One step of a row map: llama.cpp's permutation or its inverse, for heads of `d` rows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// `r ↦ gguf_to_hf(r)`: reading HF data through it gives llama.cpp's order.
    Permute(u64),
    /// `r ↦ hf_to_gguf(r)`.
    Unpermute(u64),
}

fn apply(steps: &[Step], r: u64) -> u64 {
    steps.iter().fold(r, |x, s| match *s {
        Step::Permute(d) => gguf_to_hf(x, d),
        Step::Unpermute(d) => hf_to_gguf(x, d),
    })
}

/// What a hypothesis says about the file under test's rows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Order {
    /// Hugging Face order (needs NEOX).
    HuggingFace,
    /// llama.cpp's order with the role's own head count (needs NORM).
    Llama,
    /// Permuted once more, or the inverse applied: no rope type rotates it right.
    Double,
    /// Permuted with the other head count.
    WrongHeads,
}

/// The Q/K row order a reference holds: a GGUF the architecture's `gguf_qk_order`; an APR the
/// order its declared rope type needs.
pub fn reference_order(v: &ModelView, arch: &Arch) -> RopeType {
    arch.qk_order_of(v)
}

/// The other head-count key.
fn other_key(key: &str) -> &'static str {
    if key == "n_head" {
        "n_head_kv"
    } else {
        "n_head"
    }
}

fn static_key(key: &str) -> &'static str {
    if key == "n_head" {
        "n_head"
    } else {
        "n_head_kv"
    }
}

/// Rows per head along the permuted axis, if `n` rows split into `heads` heads of an even size.
fn head_rows(n: u64, heads: u64) -> Option<u64> {
    (heads > 0 && n.is_multiple_of(heads) && (n / heads) >= 2 && (n / heads).is_multiple_of(2))
        .then(|| n / heads)
}

fn head_count(cx: &Context<'_>, key: &str) -> Option<u64> {
    cx.rb.env.get(key).or_else(|| cx.ra.env.get(key)).copied()
}

/// A file-under-test order that its declared rope type rotates correctly.
fn is_legitimate(cx: &Context<'_>, order: Order) -> bool {
    let declared = declared_rope(cx.a, cx.arch);
    match order {
        Order::HuggingFace => declared == RopeType::Neox,
        Order::Llama => declared == RopeType::Norm && cx.arch.gguf_qk_order == RopeType::Norm,
        Order::Double | Order::WrongHeads => false,
    }
}

pub fn explain(cx: &Context<'_>) -> Option<Explanation> {
    let key = cx.role.rope_rows.as_deref()?;
    if cx.ta.dims != cx.tb.dims || cx.ta.dims.is_empty() || cx.ta.dims.len() > 2 {
        return None;
    }
    let n = cx.ta.dims[0];
    let own_h = head_count(cx, key)?;
    let own = head_rows(n, own_h)?;
    let other_h = head_count(cx, other_key(key)).filter(|&h| h != own_h);
    let other = other_h.and_then(|h| head_rows(n, h));
    let ref_permuted = reference_order(cx.b, cx.arch) == RopeType::Norm;
    use Step::*;
    let mut hyps: Vec<(Vec<Step>, Order, &'static str)> = Vec::new();
    if ref_permuted {
        hyps.push((vec![Unpermute(own)], Order::HuggingFace, "un-permuting"));
        if let Some(o) = other {
            hyps.push((
                vec![Permute(o), Unpermute(own)],
                Order::WrongHeads,
                "permuting",
            ));
            hyps.push((vec![Unpermute(o)], Order::WrongHeads, "un-permuting"));
        }
        hyps.push((vec![Permute(own)], Order::Double, "permuting"));
        hyps.push((
            vec![Unpermute(own), Unpermute(own)],
            Order::Double,
            "un-permuting twice",
        ));
    } else {
        hyps.push((vec![Permute(own)], Order::Llama, "permuting"));
        hyps.push((vec![Unpermute(own)], Order::Double, "un-permuting"));
        if let Some(o) = other {
            hyps.push((vec![Permute(o)], Order::WrongHeads, "permuting"));
            hyps.push((vec![Unpermute(o)], Order::WrongHeads, "un-permuting"));
        }
    }
    let is_2d = cx.ta.dims.len() == 2;
    // Many consecutive rows, so that hypotheses that differ anywhere in a head differ here: the
    // first rows (up to two heads) and the last head, one unit per row, thinned.
    let own_sample;
    let sample = if is_2d {
        let mut ra = Reader::new(cx.a, cx.ta, cx.ta.dtype)?;
        let span = own.max(other.unwrap_or(0));
        let upr = ra.units_per_row();
        let mut units: Vec<(u64, u64)> = (0..(2 * span).min(HEAD_ROWS).min(n))
            .chain(n.saturating_sub(span.min(HEAD_ROWS / 2))..n)
            .map(|r| (r, (r * 7) % upr))
            .collect();
        dedup(&mut units);
        own_sample = Sample::read(&mut ra, &units)?.thinned(VALUES_PER_ROW);
        cx.add_touched(&ra);
        &own_sample
    } else {
        cx.sample
    };
    let out_index = |&(r, c): &(u64, u64)| if is_2d { r } else { c };
    let mut indices: Vec<u64> = sample.pos.iter().map(out_index).collect();
    indices.sort_unstable();
    indices.dedup();
    let mut seen: Vec<Vec<u64>> = Vec::new();
    let mut best: Option<(Metrics, bool, Order, &'static str, Vec<Step>)> = None;
    for (steps, order, verb) in hyps {
        // Identical maps on the sampled indices give identical numbers: keep the first.
        let mapped: Vec<u64> = indices.iter().map(|&x| apply(&steps, x)).collect();
        if seen.contains(&mapped) || mapped == indices {
            continue;
        }
        seen.push(mapped);
        let m = if is_2d {
            cx.compare_sample(sample, cx.tb, |r, c| Some((apply(&steps, r), c)))
        } else {
            cx.compare_sample(sample, cx.tb, |r, c| Some((r, apply(&steps, c))))
        };
        let Some(m) = m else { continue };
        let exact = is_2d
            && m.cosine >= cx.win_cosine
            && cx.units_bytes_equal(&sample.units, cx.tb, |r| Some(apply(&steps, r)));
        let better = best
            .as_ref()
            .is_none_or(|b| (exact && !b.1) || (exact == b.1 && m.cosine > b.0.cosine));
        if better {
            best = Some((m, exact, order, verb, steps));
            if exact {
                break;
            }
        }
    }
    let (after, exact, order, verb, steps) = best?;
    let uses_other = order == Order::WrongHeads
        && steps
            .iter()
            .any(|s| matches!(s, Permute(d) | Unpermute(d) if Some(*d) == other));
    let (h_key, h) = if uses_other {
        (other_key(key), other_h.unwrap_or(0))
    } else {
        (static_key(key), own_h)
    };
    let transform = format!(
        "rope-{} {h_key}={h}",
        verb.replace("un-permuting", "unpermute")
            .replace("permuting", "permute")
            .replace(' ', "-")
    );
    let name = &cx.ta.name;
    let (cos_a, cos_s) = (fmt_cos(after.cosine), cx.stored_txt());
    let declared = declared_rope(cx.a, cx.arch);
    let legit = is_legitimate(cx, order);
    let (lint, message, help) = match order {
        _ if legit => (
            &lints::ROPE_ORDER_OK,
            format!(
                "`{name}` rows are in {} order and `rope_type` is {} ({}), which rotates that order: cosine {cos_a} after {verb} the reference's rows with {h_key}={h}, {cos_s} as stored",
                if order == Order::HuggingFace {
                    "Hugging Face"
                } else {
                    "llama.cpp's permuted"
                },
                declared.code(),
                declared.as_str()
            ),
            "nothing to do: this row order is the one the declared rope type rotates".to_string(),
        ),
        Order::HuggingFace => (
            &lints::ROPE_PERMUTED,
            format!(
                "`{name}` rows are in Hugging Face order but `rope_type` is {} ({}), which needs llama.cpp's permuted order: cosine {cos_a} after un-permuting the reference's rows with {h_key}={h}, {cos_s} as stored",
                declared.code(),
                declared.as_str()
            ),
            format!(
                "set `rope_type` to 2 (NEOX), or permute the rows with {h_key}={h} as llama.cpp's converter does"
            ),
        ),
        Order::Llama => (
            &lints::ROPE_PERMUTED,
            format!(
                "`{name}` rows are permuted per head for NORM rotation ({h_key}={h}) but {} keeps Hugging Face order with `rope_type` {} ({}): cosine {cos_a} after permuting the reference's rows, {cos_s} as stored",
                cx.arch.arch,
                declared.code(),
                declared.as_str()
            ),
            format!("un-permute the rows with {h_key}={h} (the inverse of llama.cpp's permute)"),
        ),
        Order::Double => (
            &lints::ROPE_PERMUTED,
            format!(
                "`{name}` rows are RoPE-permuted once more than the reference's: cosine {cos_a} after {verb} the reference's rows with {h_key}={h}, {cos_s} as stored"
            ),
            format!(
                "apply the inverse of the converter's extra permutation ({h_key}={h}), so the rows match the reference's order"
            ),
        ),
        Order::WrongHeads => {
            let own_key = static_key(key);
            (
                &lints::ROPE_WRONG_HEADS,
                format!(
                    "`{name}` rows match the reference only when permuted with {h_key}={h} instead of {own_key}={own_h}: cosine {cos_a} after that permutation, {cos_s} as stored"
                ),
                format!("permute the rows with {own_key}={own_h} instead of {h_key}={h}"),
            )
        }
    };
    Some(Explanation {
        lint,
        transform,
        after,
        exact,
        message,
        help,
        span: None,
    })
}

/// Rows identical to the reference's but rotated by a different rope type than the reference's
/// order needs: a llama APR that keeps the GGUF's permuted rows and declares NEOX. (For
/// architectures whose GGUF keeps Hugging Face order the static stage already reports a declared
/// rope type that differs from the reference's.)
pub fn identity_order_finding(
    a: &ModelView,
    b: &ModelView,
    arch: &Arch,
    role: &crate::rules::Role,
    heads: Option<u64>,
    name: &str,
) -> Option<Finding> {
    let key = role.rope_rows.as_deref()?;
    let declared = declared_rope(a, arch);
    if arch.gguf_qk_order != RopeType::Norm
        || reference_order(b, arch) != RopeType::Norm
        || declared != RopeType::Neox
    {
        return None;
    }
    let h = heads.unwrap_or(0);
    Some(
        Finding::new(
            &lints::ROPE_PERMUTED,
            format!(
                "`{name}` rows are in llama.cpp's permuted order (identical to the reference's, which is rotated NORM) but `rope_type` is {} (NEOX)",
                declared.code()
            ),
        )
        .help(format!(
            "set `rope_type` to 0 (NORM), or un-permute the rows with {}={h} to Hugging Face order",
            static_key(key)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_the_spec() {
        // d = 8: GGUF row 2i + j holds HF row j·4 + i.
        let got: Vec<u64> = (0..8).map(|r| gguf_to_hf(r, 8)).collect();
        assert_eq!(got, [0, 4, 1, 5, 2, 6, 3, 7]);
        for r in 0..64 {
            assert_eq!(hf_to_gguf(gguf_to_hf(r, 16), 16), r);
            assert_eq!(gguf_to_hf(hf_to_gguf(r, 16), 16), r);
        }
        // Heads are permuted independently.
        assert_eq!(gguf_to_hf(9, 8), 12);
    }
}
