//! `quant-block-corrupt`: one dtype on both sides, values that disagree block by block while no
//! transform explains them (aprender LAYOUT-001, GH-370; mlx PR #3664). Two block-periodic patterns:
//! - localized: some sampled blocks byte-identical to the reference's, others far off;
//! - field-periodic: every differing block keeps the reference's bytes at the same in-block offsets
//!   (the scales) and differs elsewhere (nibble order, scale packing).
//!
//! A re-quantization of the same weights differs in every block, scales included, and only by
//! noise, so it matches neither pattern.

use serde_json::json;

use crate::diag::Finding;
use crate::model::TensorView;
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};
use crate::numeric::sample::{Reader, Sample};
use crate::rules::ToleranceDef;

/// A block this far off is wrong, not noisy.
fn is_bad(m: &Metrics, tol: &ToleranceDef) -> bool {
    m.cosine.is_nan() || m.cosine < 0.9 || m.nmse > (10.0 * tol.nmse).max(0.1)
}

/// Contiguous runs of `true` as `a..b` text.
fn ranges(mask: &[bool]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < mask.len() {
        if mask[i] {
            let s = i;
            while i < mask.len() && mask[i] {
                i += 1;
            }
            out.push(format!("{s}..{i}"));
        } else {
            i += 1;
        }
    }
    out.join(", ")
}

/// `b` holds the reference's values at `s.pos`.
pub fn check(
    ra: &mut Reader<'_>,
    rb: &mut Reader<'_>,
    s: &Sample,
    b: &[f32],
    tol: &ToleranceDef,
    ta: &TensorView,
) -> Option<Finding> {
    if ra.dtype != rb.dtype || ra.dtype.block_elems() == 1 {
        return None;
    }
    let bb = ra.block_bytes() as usize;
    let (mut identical, mut bad) = (0usize, 0usize);
    let mut first_bad: Option<(u64, u64, f64)> = None;
    let mut same_at: Vec<bool> = vec![true; bb];
    let mut bad_blocks = 0usize;
    for (i, &(row, unit)) in s.units.iter().enumerate() {
        let unit_first = (ra.unit_range(row, unit).start - ra.unit_range(row, 0).start) / bb;
        let (xa, xb) = (ra.unit_bytes(row, unit), rb.unit_bytes(row, unit));
        if xa == xb {
            identical += 1;
            continue;
        }
        let idx = s.unit_indices(i);
        let m = Metrics::of(&s.values[idx.clone()], &b[idx]);
        if !is_bad(&m, tol) {
            continue;
        }
        bad += 1;
        for (k, (ba, bbk)) in xa.chunks_exact(bb).zip(xb.chunks_exact(bb)).enumerate() {
            if ba == bbk {
                continue;
            }
            bad_blocks += 1;
            if first_bad.is_none() {
                first_bad = Some((row, (unit_first + k) as u64, m.cosine));
            }
            for (o, same) in same_at.iter_mut().enumerate() {
                *same &= ba[o] == bbk[o];
            }
        }
    }
    let (row, block, cos) = first_bad?;
    let n = s.units.len();
    let n_same = same_at.iter().filter(|&&x| x).count();
    let localized = identical > 0;
    let periodic = bad_blocks >= 2 && n_same >= 2 && n_same <= bb / 2;
    if !localized && !periodic {
        return None;
    }
    let dt = ra.dtype;
    let message = if localized {
        format!(
            "`{}`: {bad} of {n} sampled {dt} blocks disagree with the reference's while {identical} are byte-identical (first at row {row}, block {block}: cosine {})",
            ta.name,
            fmt_cos(cos)
        )
    } else {
        format!(
            "`{}`: every differing sampled {dt} block ({bad_blocks}) keeps the reference's bytes at offsets {} of {bb} and differs elsewhere (first at row {row}, block {block}: cosine {})",
            ta.name,
            ranges(&same_at),
            fmt_cos(cos)
        )
    };
    Some(
        Finding::new(&lints::QUANT_BLOCK_CORRUPT, message)
            .span(ra.block_span(row, block))
            .help(format!(
                "compare the converter's {dt} block writer with ggml's layout for {dt} (nibble order, scale packing, block boundaries)"
            ))
            .evidence(json!({
                "sampled_blocks": n,
                "identical_blocks": identical,
                "bad_blocks": bad_blocks,
                "same_byte_offsets": ranges(&same_at),
                "first_bad": {"row": row, "block": block, "cosine": crate::numeric::metrics::finite_or_null(cos)},
            })),
    )
}
