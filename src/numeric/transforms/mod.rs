//! The transform search (`bug-classes.md`, "Transform search"): for a role whose values disagree
//! with the reference, each candidate computes the reference's values at the sampled positions
//! under one hypothesis ("the data is transposed", "K was permuted with n_head"…) and returns the
//! agreement it reaches. The best candidate that explains the data wins and names the fix; when
//! none does, the caller reports `value-mismatch` with the numbers and guesses nothing.
//!
//! Takes a [`Context`] (both tensors, the sample of the file under test, the tolerance); returns an
//! [`Explanation`]. Reads only the units its hypothesis maps the sample to. One file per candidate,
//! one line in [`ALL`].

mod dims_only;
mod dtype;
pub mod rope;
mod sub_block;
mod swap;
mod transpose;

use std::cell::Cell;

use crate::diag::{Lint, Span};
use crate::model::{ModelView, TensorView};
use crate::numeric::metrics::Metrics;
use crate::numeric::sample::{Reader, Sample};
use crate::rules::{Arch, Resolved, Role};

/// A candidate: the best explanation it finds for the context, if any reaches `win_cosine`.
pub type Candidate = fn(&Context<'_>) -> Option<Explanation>;

/// Every candidate, cheapest and most specific first (ties go to the earlier one).
pub static ALL: &[(&str, Candidate)] = &[
    ("dims-only", dims_only::explain),
    ("transpose", transpose::explain),
    ("rope-permutation", rope::explain),
    ("swap", swap::explain),
    ("dtype-reinterpretation", dtype::explain),
    ("row-sub-block", sub_block::explain),
];

/// A candidate's result, cosine at least the context's `win_cosine`.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub lint: &'static Lint,
    /// Machine-readable name of the transform (`transpose`, `rope-unpermute n_head_kv=2` …).
    pub transform: String,
    /// Agreement after applying the transform.
    pub after: Metrics,
    /// The bytes themselves agree under the transform (not just the values).
    pub exact: bool,
    /// The finding's message (names, numbers).
    pub message: String,
    pub help: String,
    /// The shortest wrong span, when it is not the tensor's data.
    pub span: Option<Span>,
}

/// One disagreeing role, as the candidates see it.
pub struct Context<'a> {
    pub a: &'a ModelView,
    pub b: &'a ModelView,
    pub ra: &'a Resolved<'a>,
    pub rb: &'a Resolved<'a>,
    pub arch: &'a Arch,
    pub role: &'a Role,
    pub layer: Option<u32>,
    pub ta: &'a TensorView,
    /// The reference tensor the role was compared with.
    pub tb: &'a TensorView,
    /// The standard sample of `ta`, decoded as labelled.
    pub sample: &'a Sample,
    /// Agreement as stored (same positions, or the same flat index when dims differ).
    pub as_stored: Option<Metrics>,
    /// A hypothesis explains the data from this cosine up.
    pub win_cosine: f64,
    /// Bytes of tensor data the candidates read.
    pub touched: Cell<u64>,
}

impl<'a> Context<'a> {
    pub fn cos_stored(&self) -> f64 {
        self.as_stored.map_or(f64::NAN, |m| m.cosine)
    }

    /// "as stored" text for messages.
    pub fn stored_txt(&self) -> String {
        crate::numeric::metrics::fmt_cos(self.cos_stored())
    }

    /// A reader of a reference tensor (its labelled dtype).
    pub fn reader_b(&self, t: &'a TensorView) -> Option<Reader<'a>> {
        Reader::new(self.b, t, t.dtype)
    }

    pub fn add_touched(&self, r: &Reader<'_>) {
        self.touched.set(self.touched.get() + r.touched());
    }

    /// Agreement of the sample with reference tensor `tb` read at `map(row, col)`; positions the
    /// map sends nowhere are skipped. `None` when fewer than half the sample maps.
    pub fn compare_mapped(
        &self,
        tb: &'a TensorView,
        map: impl Fn(u64, u64) -> Option<(u64, u64)>,
    ) -> Option<Metrics> {
        self.compare_sample(self.sample, tb, map)
    }

    /// [`compare_mapped`](Self::compare_mapped) for another sample of the file under test.
    pub fn compare_sample(
        &self,
        sample: &Sample,
        tb: &'a TensorView,
        map: impl Fn(u64, u64) -> Option<(u64, u64)>,
    ) -> Option<Metrics> {
        let mut rb = self.reader_b(tb)?;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (&(r, c), &x) in sample.pos.iter().zip(&sample.values) {
            if let Some((r2, c2)) = map(r, c)
                && let Some(y) = rb.get(r2, c2)
            {
                xs.push(x);
                ys.push(y);
            }
        }
        self.add_touched(&rb);
        (!xs.is_empty() && xs.len() * 2 >= sample.pos.len()).then(|| Metrics::of(&xs, &ys))
    }

    /// Do the sample's units hold the same bytes as reference tensor `tb`'s units at rows
    /// `map_row(row)` (same unit index)? Needs one dtype and equal row length on both sides.
    pub fn rows_bytes_equal(
        &self,
        tb: &'a TensorView,
        map_row: impl Fn(u64) -> Option<u64>,
    ) -> bool {
        self.units_bytes_equal(&self.sample.units, tb, map_row)
    }

    /// [`rows_bytes_equal`](Self::rows_bytes_equal) for other units of the file under test.
    pub fn units_bytes_equal(
        &self,
        units: &[(u64, u64)],
        tb: &'a TensorView,
        map_row: impl Fn(u64) -> Option<u64>,
    ) -> bool {
        if self.ta.dtype != tb.dtype || self.ta.rows_cols().1 != tb.rows_cols().1 {
            return false;
        }
        let (Some(mut ra), Some(mut rb)) = (
            Reader::new(self.a, self.ta, self.ta.dtype),
            self.reader_b(tb),
        ) else {
            return false;
        };
        let mut all = !units.is_empty();
        for &(row, unit) in units {
            let Some(r2) = map_row(row).filter(|&r| r < rb.rows) else {
                all = false;
                break;
            };
            if ra.unit_bytes(row, unit) != rb.unit_bytes(r2, unit) {
                all = false;
                break;
            }
        }
        self.add_touched(&ra);
        self.add_touched(&rb);
        all
    }
}

/// Run every candidate; the winner is the highest cosine (exact bytes first), ties to the earlier.
/// A winner must also beat the as-stored agreement clearly.
pub fn search(cx: &Context<'_>) -> Option<Explanation> {
    let mut best: Option<Explanation> = None;
    for (_, candidate) in ALL {
        let Some(e) = candidate(cx) else { continue };
        if e.after.cosine.is_nan() || e.after.cosine < cx.win_cosine {
            continue;
        }
        // When dims differ, "as stored" is the flat-index agreement, shown but not a baseline.
        if cx.ta.dims == cx.tb.dims
            && cx
                .as_stored
                .is_some_and(|m| m.cosine.is_finite() && e.after.cosine < m.cosine + 0.05)
        {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => {
                (e.exact && !b.exact) || (e.exact == b.exact && e.after.cosine > b.after.cosine)
            }
        };
        if better {
            let exact = e.exact;
            best = Some(e);
            if exact {
                break;
            }
        }
    }
    best
}
