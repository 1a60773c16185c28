//! `non-finite`: NaN or Inf among the sampled values of the file under test, or in a scale field
//! (d, dmin …) of any block of a sampled row (ggml's `validate_row_data` checks the same fields).
//! One NaN reaches every activation downstream of the matmul that reads it.

use crate::diag::Finding;
use crate::model::TensorView;
use crate::numeric::lints;
use crate::numeric::sample::{Reader, Sample};
use crate::quant;

const HELP: &str = "re-export the tensor from the source weights; check the converter's f16 scale conversion for overflow";

/// The first block with a non-finite scale among every block of the sampled rows.
pub fn scan_rows(r: &mut Reader<'_>, rows: &[u64], t: &TensorView) -> Option<Finding> {
    rows.iter().find_map(|&row| {
        r.first_bad_scale(row)
            .map(|block| scale_finding(r, t, row, block))
    })
}

/// The first block with a non-finite scale among the given units (bytes already read).
pub fn scan_units(r: &mut Reader<'_>, units: &[(u64, u64)], t: &TensorView) -> Option<Finding> {
    if r.dtype.block_elems() == 1 {
        return scan_float_units(r, units, t);
    }
    let (bb, dtype) = (r.block_bytes() as usize, r.dtype);
    for &(row, unit) in units {
        let first = r.unit_range(row, unit).start;
        let bytes = r.unit_bytes(row, unit);
        if let Some(k) = bytes
            .chunks_exact(bb)
            .position(|b| !quant::block_scales_finite(dtype, b))
        {
            let block = (first as u64 - r.unit_range(row, 0).start as u64) / bb as u64 + k as u64;
            return Some(scale_finding(r, t, row, block));
        }
    }
    None
}

/// Plain float types have no scale field: the values themselves, decoded from the units' bytes.
fn scan_float_units(r: &mut Reader<'_>, units: &[(u64, u64)], t: &TensorView) -> Option<Finding> {
    let width = match r.dtype {
        quant::DType::F32 => 4,
        quant::DType::F16 | quant::DType::BF16 => 2,
        quant::DType::F64 => 8,
        _ => return None,
    };
    let dtype = r.dtype;
    let value = |b: &[u8]| -> f64 {
        match b.len() {
            4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            8 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            _ if dtype == quant::DType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f64(),
            _ => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
        }
    };
    for &(row, unit) in units {
        let first = r.unit_range(row, unit).start - r.unit_range(row, 0).start;
        let bytes = r.unit_bytes(row, unit);
        let bad = bytes
            .chunks_exact(width)
            .enumerate()
            .find(|(_, b)| !value(b).is_finite());
        if let Some((k, b)) = bad {
            let col = first / width + k;
            return Some(
                Finding::new(
                    &lints::NON_FINITE,
                    format!(
                        "`{}`: value [{row}, {col}] is {} ({} in the sampled bytes, which both files share)",
                        t.name,
                        value(b),
                        dtype
                    ),
                )
                .help(HELP),
            );
        }
    }
    None
}

fn scale_finding(r: &Reader<'_>, t: &TensorView, row: u64, block: u64) -> Finding {
    Finding::new(
        &lints::NON_FINITE,
        format!(
            "`{}` block {block} of row {row} has a non-finite scale field ({} block at byte offset {})",
            t.name,
            r.dtype,
            r.block_span(row, block).offset
        ),
    )
    .span(r.block_span(row, block))
    .help(HELP)
}

/// NaN or Inf among the sampled values.
pub fn values_finding(s: &Sample, t: &TensorView) -> Option<Finding> {
    let bad = s.n_non_finite();
    let first = s.values.iter().position(|v| !v.is_finite())?;
    let (row, col) = s.pos[first];
    Some(
        Finding::new(
            &lints::NON_FINITE,
            format!(
                "`{}`: {bad} of {} sampled values are NaN or Inf (first {} at [{row}, {col}])",
                t.name,
                s.values.len(),
                s.values[first]
            ),
        )
        .help(HELP),
    )
}
