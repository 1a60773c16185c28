//! Byte reinterpretation: the values match the reference only when the bytes are read as another
//! dtype of the same block geometry than the label says (BF16 labelled F16 and back: aprender
//! PR #1601 read a norm as 7.06 instead of 7.56). Candidates are every dtype with the label's
//! block elements, block bytes and header bytes, of the same kind (float or quantized).

use super::{Context, Explanation};
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};
use crate::numeric::sample::{Reader, Sample};
use crate::quant::DType;

fn same_geometry(x: DType, y: DType) -> bool {
    x != y
        && y.has_values()
        && x.block_elems() == y.block_elems()
        && x.block_bytes() == y.block_bytes()
        && x.header_bytes() == y.header_bytes()
        && x.is_float() == y.is_float()
        && (y.is_float() || y.block_elems() > 1)
}

pub fn explain(cx: &Context<'_>) -> Option<Explanation> {
    let (ta, tb) = (cx.ta, cx.tb);
    if ta.dims != tb.dims {
        return None;
    }
    let mut best: Option<(Metrics, bool, DType)> = None;
    for &y in DType::all().iter().filter(|&&y| same_geometry(ta.dtype, y)) {
        let Some(mut ra) = Reader::new(cx.a, ta, y) else {
            continue;
        };
        let Some(s) = Sample::read(&mut ra, &cx.sample.units) else {
            continue;
        };
        cx.add_touched(&ra);
        let mut rb = cx.reader_b(tb)?;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (&(r, c), &x) in s.pos.iter().zip(&s.values) {
            if let Some(v) = rb.get(r, c) {
                xs.push(x);
                ys.push(v);
            }
        }
        cx.add_touched(&rb);
        if xs.is_empty() {
            continue;
        }
        let m = Metrics::of(&xs, &ys);
        let exact = y == tb.dtype && m.max_diff == 0.0;
        if best
            .as_ref()
            .is_none_or(|b| (exact && !b.1) || (exact == b.1 && m.cosine > b.0.cosine))
        {
            best = Some((m, exact, y));
        }
    }
    let (after, exact, y) = best?;
    let name = &ta.name;
    Some(Explanation {
        lint: &lints::DTYPE_MISLABELED,
        transform: format!("reinterpret as {y}"),
        after,
        exact,
        message: format!(
            "`{name}` is labelled {} but its bytes are {y}: cosine {} when read as {y}, {} as labelled",
            ta.dtype,
            fmt_cos(after.cosine),
            cx.stored_txt()
        ),
        help: format!("relabel `{name}` as {y} and keep the bytes"),
        span: Some(ta.record),
    })
}
