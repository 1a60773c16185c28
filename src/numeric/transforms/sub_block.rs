//! Row sub-block: one tensor's rows are a contiguous block of the other's, with the same row length
//! (padding trimmed or added, a vocab padded to a multiple, a fused QKV split at the wrong offset).
//! Offsets tried: both ends, and every multiple of the smaller row count. The static stage already
//! reported the shape; this says which rows the data is, so the finding is info.

use super::{Context, Explanation};
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};
use crate::numeric::sample::{Reader, Sample, plan};

const MAX_OFFSETS: u64 = 16;

pub fn explain(cx: &Context<'_>) -> Option<Explanation> {
    let (ta, tb) = (cx.ta, cx.tb);
    if ta.dims.len() < 2 || ta.dims.len() != tb.dims.len() || ta.dims[1..] != tb.dims[1..] {
        return None;
    }
    let (na, nb) = (ta.dims[0], tb.dims[0]);
    if na == nb || na == 0 || nb == 0 {
        return None;
    }
    let (small, big) = (na.min(nb), na.max(nb));
    // Rows of a [n, rest...] tensor are runs of `inner` canonical rows.
    let inner: u64 = ta.dims[1..ta.dims.len() - 1].iter().product();
    let mut offsets = vec![0, big - small];
    offsets.extend(
        (1..=(big / small).min(MAX_OFFSETS))
            .map(|k| k * small)
            .filter(|&o| o + small <= big),
    );
    offsets.sort_unstable();
    offsets.dedup();
    let mut best: Option<(Metrics, bool, u64)> = None;
    for off in offsets {
        let (m, exact) = if na < nb {
            let m = cx.compare_mapped(tb, |r, c| Some((r + off * inner, c)));
            let Some(m) = m else { continue };
            let exact =
                m.cosine >= cx.win_cosine && cx.rows_bytes_equal(tb, |r| Some(r + off * inner));
            (m, exact)
        } else {
            // The reference is the sub-block: sample the file under test inside it.
            let mut ra = Reader::new(cx.a, ta, ta.dtype)?;
            let units = plan(&ra, off * inner..(off + nb) * inner);
            let s = Sample::read(&mut ra, &units)?;
            cx.add_touched(&ra);
            let mut rb = cx.reader_b(tb)?;
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for (&(r, c), &x) in s.pos.iter().zip(&s.values) {
                if let Some(y) = rb.get(r - off * inner, c) {
                    xs.push(x);
                    ys.push(y);
                }
            }
            cx.add_touched(&rb);
            if xs.is_empty() {
                continue;
            }
            let m = Metrics::of(&xs, &ys);
            (m, ta.dtype == tb.dtype && m.max_diff == 0.0)
        };
        if best
            .as_ref()
            .is_none_or(|b| (exact && !b.1) || (exact == b.1 && m.cosine > b.0.cosine))
        {
            best = Some((m, exact, off));
        }
    }
    let (after, exact, off) = best?;
    let name = &ta.name;
    let (message, help) = if na < nb {
        (
            format!(
                "`{name}` ({na} rows) is rows {off}..{} of the reference's `{}` ({nb} rows): cosine {}",
                off + na,
                tb.name,
                fmt_cos(after.cosine)
            ),
            format!(
                "write all {nb} rows of the reference, not only rows {off}..{}",
                off + na
            ),
        )
    } else {
        (
            format!(
                "rows {off}..{} of `{name}` ({na} rows) are the reference's `{}` ({nb} rows): cosine {}",
                off + nb,
                tb.name,
                fmt_cos(after.cosine)
            ),
            format!(
                "keep only rows {off}..{} (drop the other {} rows)",
                off + nb,
                na - nb
            ),
        )
    };
    Some(Explanation {
        lint: &lints::SUB_BLOCK,
        transform: format!("sub-block rows {off}.."),
        after,
        exact,
        message,
        help,
        span: Some(ta.dims_span),
    })
}
