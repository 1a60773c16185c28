//! The byte spans of each file the main job is about to read, so the pipeline can ask the kernel
//! for all of them at once (`Source::prefetch`) before the stages fault them in one by one.
//!
//! On a warm page cache this changes nothing. On a cold one it is the difference between reading
//! ~20 MB in a few hundred parallel requests and ~1.3 GB: every fault on an uncached page of a
//! mapped file makes the kernel read up to `read_ahead_kb` around it (8 MiB on the bench machine),
//! and the sampled comparison touches both ends of every tensor.
//!
//! Takes the two views with their resolved rules; returns spans. Must not read tensor data.

use crate::diag::Span;
use crate::model::{ModelView, TensorView};
use crate::numeric::sample::{self, Reader, SMALL_BYTES};
use crate::numeric::scan::{FULL_FLOAT_SCAN_MAX, is_plain_float};
use crate::rules::Resolved;

/// The layer-0 tensors the probe reads whole ([`crate::numeric::probe::LAYER0_ROLES`]), and
/// `rope_freqs` (one tensor, no layer), which the Llama 3 divisor check reads whole. The probe's
/// rows of `token_embd` are asked for apart ([`embedding_rows`]).
const PROBE_ROLES: [&str; 8] = {
    let layer0 = crate::numeric::probe::LAYER0_ROLES;
    let mut roles = ["rope_freqs"; 8];
    let mut i = 0;
    while i < layer0.len() {
        roles[i] = layer0[i];
        i += 1;
    }
    roles
};

/// What the default (sampled) main job reads of `a` and of `b`: every float tensor whole while
/// the NaN/Inf scan reads them whole, the sampled units of every pair the weight comparison
/// covers (small tensors whole), and — with `probe` — the layer-0 tensors of the probe. The
/// probe's embedding rows depend on the prompt's ids: [`embedding_rows`].
pub fn spans(
    a: &ModelView,
    ra: &Resolved<'_>,
    b: &ModelView,
    rb: &Resolved<'_>,
    probe: bool,
) -> [Vec<Span>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for (v, o) in [a, b].into_iter().zip(out.iter_mut()) {
        let floats = v.tensors.iter().filter(|t| is_plain_float(t.dtype));
        if floats.clone().map(|t| t.data.len).sum::<u64>() <= FULL_FLOAT_SCAN_MAX {
            o.extend(floats.map(|t| t.data));
        }
    }
    for (ia, ib) in crate::numeric::pair_indices(a, ra, b, rb) {
        out[0].extend(sampled(a, &a.tensors[ia]));
        out[1].extend(sampled(b, &b.tensors[ib]));
    }
    if probe {
        for ((v, r), o) in [(a, ra), (b, rb)].into_iter().zip(out.iter_mut()) {
            for role in PROBE_ROLES {
                let layer = (role != "rope_freqs").then_some(0);
                if let Some(i) = r.find(role, layer) {
                    o.push(v.tensors[i].data);
                }
            }
        }
    }
    out
}

/// The units the standard sample reads of `t` (see [`sample::plan`]), the whole tensor when it
/// is small enough to be compared byte for byte.
fn sampled(v: &ModelView, t: &TensorView) -> Vec<Span> {
    if t.data.len <= SMALL_BYTES {
        return vec![t.data];
    }
    let Some(r) = Reader::new(v, t, t.dtype) else {
        return Vec::new();
    };
    let at = |range: std::ops::Range<usize>| {
        Span::new(t.data.offset + range.start as u64, range.len() as u64)
    };
    let mut out: Vec<Span> = sample::plan(&r, 0..r.rows)
        .into_iter()
        .map(|(row, unit)| at(r.unit_range(row, unit)))
        .collect();
    // A tensor-wide header (scales before the blocks) is read with every unit.
    let header = r.unit_range(0, 0).start;
    if header > 0 {
        out.push(at(0..header));
    }
    out
}

/// The embedding rows of `tokens` in `v` (what the probe reads of `token_embd`).
pub fn embedding_rows(v: &ModelView, r: &Resolved<'_>, tokens: &[u32]) -> Vec<Span> {
    let Some(t) = r.find("token_embd", None).map(|i| &v.tensors[i]) else {
        return Vec::new();
    };
    let Some(reader) = Reader::new(v, t, t.dtype) else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter(|&&id| (id as u64) < reader.rows)
        .map(|&id| {
            let first = reader.unit_range(id as u64, 0).start as u64;
            let last = reader
                .unit_range(id as u64, reader.units_per_row().saturating_sub(1))
                .end as u64;
            Span::new(t.data.offset + first, last.saturating_sub(first))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Source;
    use crate::format::writer::apr::Flavour;
    use crate::format::writer::convert::gguf_to_apr;
    use crate::format::writer::generate::{TINY, gguf_model};
    use crate::quant::DType;
    use crate::rules::RuleSet;

    /// Every byte the sampled comparison reads lies in a prefetched span.
    #[test]
    fn the_spans_cover_what_the_comparison_reads() {
        let w = gguf_model(&TINY, DType::Q4_K, 5);
        let g = ModelView::from_source(Source::from_vec(w.to_bytes(), "m.gguf")).unwrap();
        let gf = crate::format::gguf::read(Source::from_vec(w.to_bytes(), "m.gguf")).unwrap();
        let a = ModelView::from_source(Source::from_vec(
            gguf_to_apr(&gf, Flavour::Aprender).to_bytes(),
            "m.apr",
        ))
        .unwrap();
        let rules = RuleSet::builtin();
        let (ra, rb) = (Resolved::new(&a, &rules), Resolved::new(&g, &rules));
        let [sa, sb] = spans(&a, &ra, &g, &rb, true);
        let covered = |spans: &[Span], s: Span| {
            spans
                .iter()
                .any(|p| p.offset <= s.offset && s.end() <= p.end())
        };
        let pairs = crate::numeric::pair_indices(&a, &ra, &g, &rb);
        assert!(!pairs.is_empty());
        let mut checked = 0;
        for (ia, ib) in pairs {
            for (v, t, spans) in [(&a, &a.tensors[ia], &sa), (&g, &g.tensors[ib], &sb)] {
                let Some(r) = Reader::new(v, t, t.dtype) else {
                    continue;
                };
                for (row, unit) in sample::plan(&r, 0..r.rows) {
                    let u = r.unit_range(row, unit);
                    let s = Span::new(t.data.offset + u.start as u64, u.len() as u64);
                    assert!(covered(spans, s), "{} unit ({row}, {unit})", t.name);
                    checked += 1;
                }
            }
        }
        assert!(checked > 0);
        for (v, r, spans) in [(&a, &ra, &sa), (&g, &rb, &sb)] {
            for role in ["attn_q", "attn_k", "attn_v", "attn_norm"] {
                let t = &v.tensors[r.find(role, Some(0)).unwrap()];
                assert!(covered(spans, t.data), "{}", t.name);
            }
            for t in v.tensors.iter().filter(|t| is_plain_float(t.dtype)) {
                assert!(covered(spans, t.data), "{}", t.name);
            }
            let rows = embedding_rows(v, r, &[0, 3, 7]);
            assert_eq!(rows.len(), 3);
            let t = &v.tensors[r.find("token_embd", None).unwrap()];
            let (_, cols) = t.rows_cols();
            let row_bytes = crate::quant::row_n_bytes(t.dtype, cols).unwrap();
            assert_eq!(rows[1], Span::new(t.data.offset + 3 * row_bytes, row_bytes));
        }
    }
}
