//! Dims-only difference: the dims are the reverse of the reference's while the data is the
//! reference's, byte for byte (one dtype) or value for value at the same flat index (aprender
//! GH-186/187/188: an embedding recorded `[hidden, vocab]`). The fix keeps the bytes. The static
//! stage already reported the dims; this confirms which fix applies, so the finding is info.

use super::{Context, Explanation};
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};
use crate::numeric::sample::{Reader, SMALL_BYTES};

pub fn explain(cx: &Context<'_>) -> Option<Explanation> {
    let (ta, tb) = (cx.ta, cx.tb);
    let reversed: Vec<u64> = tb.dims.iter().rev().copied().collect();
    if ta.dims == tb.dims || ta.dims != reversed {
        return None;
    }
    let name = &ta.name;
    let help = format!("record the dims as {:?} and keep the bytes", tb.dims);
    // Same dtype and size: the bytes decide.
    if ta.dtype == tb.dtype && ta.data.len == tb.data.len {
        let mut ra = Reader::new(cx.a, ta, ta.dtype)?;
        // The reference's bytes at the same ranges, read as the reader reads (not mapped).
        let read_b = |range: std::ops::Range<usize>, buf: &mut Vec<u8>| {
            buf.resize(range.len(), 0);
            cx.b.read_tensor_range(tb, range.start as u64..range.end as u64, buf)
                .is_ok()
        };
        let mut db = Vec::new();
        let same = if ta.data.len <= SMALL_BYTES {
            let n = ta.data.len as usize;
            let mut da = vec![0u8; n];
            ra.touch_all();
            cx.a.read_tensor_range(ta, 0..n as u64, &mut da).is_ok()
                && read_b(0..n, &mut db)
                && da == db
        } else {
            ra.load(&cx.sample.units);
            cx.sample.units.iter().all(|&(row, unit)| {
                let r = ra.unit_range(row, unit);
                read_b(r, &mut db) && ra.unit_bytes(row, unit) == db.as_slice()
            })
        };
        // The reference's bytes were read at the same ranges.
        cx.add_touched(&ra);
        cx.add_touched(&ra);
        if same {
            let n = cx.sample.values.len();
            let after = Metrics::of(&cx.sample.values, &cx.sample.values);
            return Some(Explanation {
                lint: &lints::DIMS_REVERSED,
                transform: "reverse-dims".into(),
                after: Metrics { n, ..after },
                exact: true,
                message: format!(
                    "`{name}` holds the reference's bytes unchanged: only its dims {:?} are reversed (the reference's are {:?})",
                    ta.dims, tb.dims
                ),
                help,
                span: Some(ta.dims_span),
            });
        }
    }
    // Different dtypes: values at the same flat index.
    let cols_b = tb.rows_cols().1;
    let cols_a = ta.rows_cols().1;
    let after = cx.compare_mapped(tb, |r, c| {
        let f = r * cols_a + c;
        Some((f / cols_b, f % cols_b))
    })?;
    Some(Explanation {
        lint: &lints::DIMS_REVERSED,
        transform: "reverse-dims".into(),
        after,
        exact: false,
        message: format!(
            "`{name}` holds the reference's values in the reference's order: only its dims {:?} are reversed (the reference's are {:?}); cosine {} at the same flat index",
            ta.dims,
            tb.dims,
            fmt_cos(after.cosine)
        ),
        help,
        span: Some(ta.dims_span),
    })
}
