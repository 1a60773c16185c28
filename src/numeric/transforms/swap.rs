//! Swapped tensors: the file under test's tensor holds the reference's data of a sibling role of
//! the same layer with the same dims (q↔k when n_head = n_head_kv, gate↔up, q↔o when square), or of
//! the same role in another layer (a layer-index mix-up in the name map).

use super::{Context, Explanation};
use crate::model::TensorView;
use crate::numeric::lints;
use crate::numeric::metrics::{Metrics, fmt_cos};

fn layer_txt(l: Option<u32>) -> String {
    l.map(|l| format!(", layer {l}")).unwrap_or_default()
}

pub fn explain(cx: &Context<'_>) -> Option<Explanation> {
    let arch = cx.arch;
    // (role key, layer, reference tensor)
    let mut candidates: Vec<(&str, Option<u32>, &TensorView)> = Vec::new();
    for s in &arch.roles {
        if s.key == cx.role.key || s.per_layer != cx.role.per_layer {
            continue;
        }
        if let Some(ib) = cx.rb.find(&s.key, cx.layer)
            && let Some(tb) = cx.b.tensors.get(ib)
            && tb.dims == cx.ta.dims
            && tb.name != cx.tb.name
        {
            candidates.push((s.key.as_str(), cx.layer, tb));
        }
    }
    if cx.role.per_layer {
        let n_layers = cx.rb.n_layers().or(cx.ra.n_layers()).unwrap_or(0).min(1024) as u32;
        for l in (0..n_layers).filter(|&l| Some(l) != cx.layer) {
            if let Some(ib) = cx.rb.find(&cx.role.key, Some(l))
                && let Some(tb) = cx.b.tensors.get(ib)
                && tb.dims == cx.ta.dims
            {
                candidates.push((cx.role.key.as_str(), Some(l), tb));
            }
        }
    }
    let mut best: Option<(Metrics, bool, &str, Option<u32>, &TensorView)> = None;
    for (key, layer, tb) in candidates {
        let Some(m) = cx.compare_mapped(tb, |r, c| Some((r, c))) else {
            continue;
        };
        let exact = m.cosine >= cx.win_cosine && cx.rows_bytes_equal(tb, Some);
        if best
            .as_ref()
            .is_none_or(|b| (exact && !b.1) || (exact == b.1 && m.cosine > b.0.cosine))
        {
            best = Some((m, exact, key, layer, tb));
            if exact {
                break;
            }
        }
    }
    let (after, exact, key, layer, tb) = best?;
    let name = &cx.ta.name;
    if let Some(e) = tie(cx, key, after, exact) {
        return Some(e);
    }
    // The file under test's own tensor for the other role, to name both sides of the swap.
    let partner = cx
        .ra
        .find(key, layer)
        .and_then(|i| cx.a.tensors.get(i))
        .map(|t| t.name.clone());
    let help = match &partner {
        Some(p) => format!("swap the data of `{name}` and `{p}` in the converter's name map"),
        None => format!(
            "write the reference's `{}` data under its own name, not as `{name}`",
            tb.name
        ),
    };
    Some(Explanation {
        lint: &lints::SWAPPED,
        transform: format!("swap with {key}{}", layer_txt(layer)),
        after,
        exact,
        message: format!(
            "`{name}` holds the reference's `{}` ({key}{}): cosine {} against it, {} against `{}`",
            tb.name,
            layer_txt(layer),
            fmt_cos(after.cosine),
            cx.stored_txt(),
            cx.tb.name
        ),
        help,
        span: None,
    })
}

/// The output matrix holds the reference's embedding, and this file's own embedding holds the same
/// values: not a swap but a tie the reference (which has its own output matrix) does not have.
fn tie(cx: &Context<'_>, key: &str, after: Metrics, exact: bool) -> Option<Explanation> {
    if cx.role.tied_to.as_deref() != Some(key) {
        return None;
    }
    let own = cx.ra.find(key, None).and_then(|i| cx.a.tensors.get(i))?;
    if own.dims != cx.ta.dims {
        return None;
    }
    let mut r = crate::numeric::sample::Reader::new(cx.a, own, own.dtype)?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (&(row, col), &x) in cx.sample.pos.iter().zip(&cx.sample.values) {
        if let Some(y) = r.get(row, col) {
            xs.push(x);
            ys.push(y);
        }
    }
    cx.add_touched(&r);
    if xs.is_empty() || Metrics::of(&xs, &ys).cosine < cx.win_cosine {
        return None; // the embedding holds something else: a real swap
    }
    Some(Explanation {
        lint: &lints::TIED_UNEXPECTED,
        transform: format!("tie to {key}"),
        after,
        exact,
        message: format!(
            "`{}` holds the embedding (`{}`, cosine {} against the reference's `{}`) while the reference keeps a distinct output matrix `{}` ({} against it): a tie the reference does not have",
            cx.ta.name,
            own.name,
            fmt_cos(after.cosine),
            cx.rb
                .find(key, None)
                .and_then(|i| cx.b.tensors.get(i))
                .map_or(key, |t| t.name.as_str()),
            cx.tb.name,
            cx.stored_txt(),
        ),
        help: format!(
            "copy the reference's output matrix (`{}`) into `{}`; do not tie",
            cx.tb.name, cx.ta.name
        ),
        span: None,
    })
}
