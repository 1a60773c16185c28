//! Data transpose: the file under test holds the reference matrix `B` (`[r, c]`) transposed,
//! i.e. its flat row-major data is `Bᵀ` (`[c, r]`). Under the reference's dims that is `transposed`
//! (aprender GH-202: only values can see it when the matrix is square); under reversed dims it is
//! `column-major` storage (data and dims both swapped).
//!
//! Sample: a few patches of a grid, `i` over reference columns inside one reference unit, `j` over
//! reference rows inside one unit of the file under test, comparing `A_flat[i·r + j]` with
//! `B[j, i]`, so each side reads one unit per grid line — a few KB, not whole columns.

use super::{Context, Explanation};
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};
use crate::numeric::sample::Reader;

const PATCHES: u64 = 4;
const PER_AXIS: u64 = 16;

/// `k` values spread over `start..start + len`.
fn spread(start: u64, len: u64, k: u64) -> impl Iterator<Item = u64> {
    let k = k.min(len).max(1);
    (0..k).map(move |m| start + m * len / k)
}

pub fn explain(cx: &Context<'_>) -> Option<Explanation> {
    let (ta, tb) = (cx.ta, cx.tb);
    if ta.dims.len() != 2 || tb.dims.len() != 2 || ta.n_elems() != tb.n_elems() {
        return None;
    }
    let reversed: Vec<u64> = tb.dims.iter().rev().copied().collect();
    let same_dims = ta.dims == tb.dims;
    if !same_dims && ta.dims != reversed {
        return None;
    }
    let (br, bc) = (tb.dims[0], tb.dims[1]);
    if br < 2 || bc < 2 {
        return None;
    }
    let mut ra = Reader::new(cx.a, ta, ta.dtype)?;
    let mut rb = cx.reader_b(tb)?;
    let (ua, ub) = (ra.unit_elems(), rb.unit_elems());
    let (units_i, units_j) = (bc.div_ceil(ub), br.div_ceil(ua));
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for p in 0..PATCHES {
        let iu = (2 * p + 1) * units_i / (2 * PATCHES);
        let ju = (2 * p + 1) * units_j / (2 * PATCHES);
        let (i0, j0) = (iu * ub, ju * ua);
        let (wi, wj) = (ub.min(bc - i0), ua.min(br - j0));
        for i in spread(i0, wi, PER_AXIS) {
            for j in spread(j0, wj, PER_AXIS) {
                if let (Some(x), Some(y)) = (ra.get_flat(i * br + j), rb.get(j, i)) {
                    xs.push(x);
                    ys.push(y);
                }
            }
        }
    }
    cx.add_touched(&ra);
    cx.add_touched(&rb);
    if xs.is_empty() {
        return None;
    }
    let after = Metrics::of(&xs, &ys);
    let exact = ta.dtype == tb.dtype && after.max_diff == 0.0;
    let name = &ta.name;
    let (cos_a, cos_s) = (fmt_cos(after.cosine), cx.stored_txt());
    let (lint, transform, message, help) = if same_dims {
        (
            &lints::TRANSPOSED,
            "transpose",
            format!(
                "`{name}` holds the reference's data transposed under the right dims {:?}: cosine {cos_a} after transposing, {cos_s} as stored",
                ta.dims
            ),
            "transpose the data (the dims are already right)".to_string(),
        )
    } else {
        (
            &lints::COLUMN_MAJOR,
            "transpose-and-reverse-dims",
            format!(
                "`{name}` is stored column-major: dims {:?} over the reference's data transposed: cosine {cos_a} after transposing, {cos_s} as stored",
                ta.dims
            ),
            format!(
                "transpose the data back to row-major {:?} and record the dims as {:?}",
                tb.dims, tb.dims
            ),
        )
    };
    Some(Explanation {
        lint,
        transform: transform.into(),
        after,
        exact,
        message,
        help,
        span: None,
    })
}
