//! One role, compared: the file under test's tensor against the reference's.
//!
//! 1. One dtype and dims on both sides: the bytes of the standard sample (and of the whole tensor
//!    when it is small) decide; identical bytes are identical values, nothing is dequantized.
//! 2. Otherwise the sample is dequantized on both sides: non-finite scales or values, degenerate
//!    content, then agreement — `--threshold` (scale-aware max diff) for one dtype, the rules'
//!    per-dtype NMSE and cosine for two (quantization noise, summarised once by the caller).
//! 3. A disagreement goes to the transform search; its winner names the class and the fix. Without
//!    a winner: corrupt quant blocks, a same-dtype re-quantization within tolerance, or
//!    `value-mismatch` with the numbers.

use serde_json::json;

use crate::diag::Finding;
use crate::model::{ModelView, TensorView};
use crate::numeric::Settings;
use crate::numeric::metrics::{Metrics, finite_or_null, fmt_cos, fmt_sci};
use crate::numeric::sample::{self, Reader, SMALL_BYTES, Sample};
use crate::numeric::scan::FullCompare;
use crate::numeric::transforms::{self, Context, Explanation, rope};
use crate::numeric::{block_corrupt, degenerate, lints, non_finite};
use crate::quant::DType;
use crate::rules::{Arch, Resolved, Role, ToleranceDef};

/// A transform explains the data from this cosine up (or the tolerance's, if lower).
const WIN_COSINE: f64 = 0.99;
/// Used when the rules give no tolerance for either dtype.
const FALLBACK_TOLERANCE: ToleranceDef = ToleranceDef {
    nmse: 1e-2,
    cosine: 0.99,
};

/// What the stage shares across roles.
pub struct Env<'a> {
    pub a: &'a ModelView,
    pub b: &'a ModelView,
    pub ra: &'a Resolved<'a>,
    pub rb: &'a Resolved<'a>,
    pub arch: &'a Arch,
    pub settings: &'a Settings,
    /// `--deep`: whole-tensor comparisons of the pairs of one dtype and dims.
    pub full: Option<&'a std::collections::HashMap<(usize, usize), FullCompare>>,
}

/// A role present on both sides (or the file under test's output against a tied embedding).
#[derive(Clone, Copy, Debug)]
pub struct Pair<'a> {
    pub ia: usize,
    pub ib: usize,
    pub role: &'a Role,
    pub layer: Option<u32>,
    /// The reference has no tensor for the role; `ib` is the one it is tied to.
    pub tied: bool,
}

/// Quantization noise of one role that passed within the tolerance.
#[derive(Clone, Debug)]
pub struct Noise {
    pub tensor: String,
    pub dtypes: (DType, DType),
    pub metrics: Metrics,
    pub tolerance: ToleranceDef,
    pub tolerance_dtype: DType,
}

#[derive(Clone, Debug, Default)]
pub struct RoleResult {
    pub compared: bool,
    pub findings: Vec<Finding>,
    pub noise: Option<Noise>,
    /// A legitimate row order, proven: (tensor, explanation).
    pub rope_ok: Option<(String, Explanation)>,
    /// Why the role could not be compared.
    pub not_compared: Option<String>,
    /// Bytes of tensor data read (both sides).
    pub touched: u64,
}

/// The tolerance for a pair of dtypes: the coarser side's (larger NMSE), role overrides first.
pub fn tolerance(arch: &Arch, role: &Role, da: DType, db: DType) -> (ToleranceDef, Option<DType>) {
    let (x, y) = (
        arch.tolerance_for(Some(role), da),
        arch.tolerance_for(Some(role), db),
    );
    match (x, y) {
        (Some(x), Some(y)) if x.nmse >= y.nmse => (x, Some(da)),
        (Some(_), Some(y)) => (y, Some(db)),
        (Some(x), None) => (x, Some(da)),
        (None, Some(y)) => (y, Some(db)),
        (None, None) => (FALLBACK_TOLERANCE, None),
    }
}

fn base(f: Finding, ta: &TensorView, layer: Option<u32>, a: &ModelView) -> Finding {
    let span = f.span.unwrap_or(ta.data);
    f.tensor(&ta.name).layer(layer).file(a.path()).span(span)
}

/// The reference's values at the sample's positions (`map` to its coordinates).
fn reference_values(
    rb: &mut Reader<'_>,
    s: &Sample,
    map: impl Fn(u64, u64) -> (u64, u64),
) -> Option<Vec<f32>> {
    s.pos
        .iter()
        .map(|&(r, c)| {
            let (r2, c2) = map(r, c);
            rb.get(r2, c2)
        })
        .collect()
}

pub fn compare(env: &Env<'_>, p: &Pair<'_>) -> RoleResult {
    let (a, b) = (env.a, env.b);
    let (ta, tb) = (&a.tensors[p.ia], &b.tensors[p.ib]);
    let mut res = RoleResult::default();
    // A 0-byte placeholder or a size that does not fit the dims: the static stage reports it.
    if ta.data.len == 0 || tb.data.len == 0 {
        return res;
    }
    let (Some(mut ra), Some(mut rb)) = (Reader::new(a, ta, ta.dtype), Reader::new(b, tb, tb.dtype))
    else {
        res.not_compared = Some(format!(
            "`{}`: byte size does not fit dtype and dims",
            ta.name
        ));
        return res;
    };
    let mut units = sample::plan(&ra, 0..ra.rows);
    // The sample's bytes, a read per cluster on each side (small tensors are read whole below).
    if ta.data.len > SMALL_BYTES {
        ra.load(&units);
    }
    if tb.data.len > SMALL_BYTES && ta.dims == tb.dims {
        rb.load(&sample::same_columns(&ra, &rb, &units));
    }
    let full = env.full.and_then(|m| m.get(&(p.ia, p.ib)));
    if ta.dtype == tb.dtype && ta.dims == tb.dims {
        let identical = if let Some(fc) = full {
            // `--deep` compared every byte; a differing row joins the sample.
            if let Some(row) = fc.first_diff_row.filter(|&r| r < ra.rows) {
                units.extend((0..ra.units_per_row()).take(64).map(|u| (row, u)));
            }
            fc.identical
        } else if ta.data.len <= SMALL_BYTES {
            let diff = sample::differing_units(&mut ra, &mut rb, 8);
            let same = diff.is_empty();
            units.extend(diff);
            same
        } else {
            units
                .iter()
                .all(|&(r, u)| ra.unit_bytes(r, u) == rb.unit_bytes(r, u))
        };
        if identical {
            res.compared = true;
            if let Some(f) = non_finite::scan_units(&mut ra, &units, ta) {
                res.findings.push(base(f, ta, p.layer, a));
            } else if ta.dims.len() == 2
                && let Some(s) = Sample::read(&mut rb, &units)
                && let Some(f) = degenerate::dead_reference(&s.values, &s.values, tb)
            {
                res.findings.push(base(f, ta, p.layer, a));
            } else if let Some(f) =
                rope::identity_order_finding(a, b, env.arch, p.role, heads(env, p.role), &ta.name)
            {
                res.findings.push(base(f, ta, p.layer, a));
            }
            res.touched = ra.touched() + rb.touched();
            return res;
        }
    }
    sample::dedup(&mut units);
    if !ta.dtype.has_values() || !tb.dtype.has_values() {
        let dt = if ta.dtype.has_values() {
            tb.dtype
        } else {
            ta.dtype
        };
        res.not_compared = Some(format!("`{}` ({dt} has no dequantizer here)", ta.name));
        res.touched = ra.touched() + rb.touched();
        return res;
    }
    let Some(s) = Sample::read(&mut ra, &units) else {
        res.not_compared = Some(format!("`{}` could not be decoded", ta.name));
        return res;
    };
    res.compared = true;
    let mut result = judge(env, p, &mut ra, &mut rb, &s, &mut res);
    if result.is_none()
        && let Some(m) = full.and_then(|fc| fc.metrics)
    {
        result = full_mismatch(env, p, m, &mut res);
    }
    if let Some(f) = result {
        res.findings.push(base(f, ta, p.layer, a));
    }
    res.touched += ra.touched() + rb.touched();
    res
}

fn heads(env: &Env<'_>, role: &Role) -> Option<u64> {
    let key = role.rope_rows.as_deref()?;
    env.rb.env.get(key).or_else(|| env.ra.env.get(key)).copied()
}

/// Steps 2–3 for a decoded sample; at most one finding (legitimate differences go into `res`).
fn judge(
    env: &Env<'_>,
    p: &Pair<'_>,
    ra: &mut Reader<'_>,
    rb: &mut Reader<'_>,
    s: &Sample,
    res: &mut RoleResult,
) -> Option<Finding> {
    let (a, b) = (env.a, env.b);
    let (ta, tb) = (&a.tensors[p.ia], &b.tensors[p.ib]);
    if let Some(f) = non_finite::scan_rows(ra, &s.rows(), ta) {
        return Some(f);
    }
    let same_dims = ta.dims == tb.dims;
    let cols_a = ra.cols;
    let cols_b = rb.cols;
    let b_vals = if same_dims {
        reference_values(rb, s, |r, c| (r, c))
    } else if ta.n_elems() == tb.n_elems() {
        reference_values(rb, s, |r, c| {
            let f = r * cols_a + c;
            (f / cols_b, f % cols_b)
        })
    } else {
        None
    };
    let as_stored = b_vals.as_ref().map(|v| Metrics::of(&s.values, v));
    let n_bad = s.n_non_finite();
    if n_bad == 0
        && let Some(v) = &b_vals
        && let Some(f) = degenerate::check(&s.values, v, ta, tb)
            .or_else(|| degenerate::dead_reference(&s.values, v, tb))
    {
        return Some(f);
    }
    let (tol, tol_dtype) = tolerance(env.arch, p.role, ta.dtype, tb.dtype);
    let noise = |m: Metrics| Noise {
        tensor: ta.name.clone(),
        dtypes: (ta.dtype, tb.dtype),
        metrics: m,
        tolerance: tol,
        tolerance_dtype: tol_dtype.unwrap_or(tb.dtype),
    };
    if same_dims
        && n_bad == 0
        && let Some(m) = as_stored
    {
        let pass = if ta.dtype == tb.dtype {
            m.within_threshold(env.settings.threshold)
        } else {
            m.within(tol.nmse, tol.cosine)
        };
        if pass {
            if ta.dtype != tb.dtype {
                res.noise = Some(noise(m));
            }
            return rope::identity_order_finding(
                a,
                b,
                env.arch,
                p.role,
                heads(env, p.role),
                &ta.name,
            );
        }
    }
    let cx = Context {
        a,
        b,
        ra: env.ra,
        rb: env.rb,
        arch: env.arch,
        role: p.role,
        layer: p.layer,
        ta,
        tb,
        sample: s,
        as_stored,
        win_cosine: tol.cosine.min(WIN_COSINE),
        touched: Default::default(),
    };
    let winner = transforms::search(&cx);
    res.touched += cx.touched.get();
    if let Some(e) = winner {
        if std::ptr::eq(e.lint, &lints::ROPE_ORDER_OK) {
            res.rope_ok = Some((ta.name.clone(), e));
            return None;
        }
        return Some(explained(e, &cx));
    }
    if n_bad > 0 {
        return non_finite::values_finding(s, ta);
    }
    let m = as_stored?;
    if same_dims {
        if let Some(v) = &b_vals
            && let Some(f) = block_corrupt::check(ra, rb, s, v, &tol, ta)
        {
            return Some(f);
        }
        // The same dtype re-quantized from the same weights by another quantizer.
        if ta.dtype == tb.dtype && m.within(tol.nmse, tol.cosine) {
            res.noise = Some(noise(m));
            return None;
        }
    }
    Some(mismatch(env, p, m, &tol, tol_dtype, same_dims))
}

fn explained(e: Explanation, cx: &Context<'_>) -> Finding {
    let mut f = Finding::new(e.lint, e.message)
        .help(e.help)
        .evidence(json!({
            "transform": e.transform,
            "cosine_as_stored": finite_or_null(cx.cos_stored()),
            "cosine_after_fix": finite_or_null(e.after.cosine),
            "nmse_after_fix": finite_or_null(e.after.nmse),
            "exact_bytes": e.exact,
            "reference_tensor": cx.tb.name,
            "sampled_values": e.after.n,
        }));
    if let Some(s) = e.span {
        f = f.span(s);
    }
    f
}

fn mismatch(
    env: &Env<'_>,
    p: &Pair<'_>,
    m: Metrics,
    tol: &ToleranceDef,
    tol_dtype: Option<DType>,
    same_dims: bool,
) -> Finding {
    let (ta, tb) = (&env.a.tensors[p.ia], &env.b.tensors[p.ib]);
    let criterion = if ta.dtype == tb.dtype {
        format!(
            "same dtype: max diff ≤ {} × max|ref| expected",
            env.settings.threshold
        )
    } else {
        format!(
            "tolerance for {}: NMSE ≤ {}, cosine ≥ {}",
            tol_dtype.map_or("unknown dtypes", DType::name),
            tol.nmse,
            tol.cosine
        )
    };
    let what = if p.tied {
        format!(
            "`{}` differs from the reference's `{}`, which the reference uses as its output matrix (tied)",
            ta.name, tb.name
        )
    } else if same_dims {
        format!("`{}` differs from the reference's `{}`", ta.name, tb.name)
    } else {
        format!(
            "`{}` (dims {:?}) matches the reference's `{}` ({:?}) neither at the same flat index nor transposed",
            ta.name, ta.dims, tb.name, tb.dims
        )
    };
    let lint = if p.tied {
        &lints::TIED_NOT_COPY
    } else {
        &lints::VALUE_MISMATCH
    };
    let tried: Vec<&str> = transforms::ALL.iter().map(|(n, _)| *n).collect();
    let help = if p.tied {
        format!(
            "write the embedding's bytes as `{}`, or drop it and set the tied flag",
            ta.name
        )
    } else {
        format!(
            "compare how the converter writes `{}` with the reference; no candidate fix ({}) explains the difference",
            ta.name,
            tried.join(", ")
        )
    };
    Finding::new(
        lint,
        format!(
            "{what}: cosine {}, NMSE {}, max diff {} (max |ref| {}) over {} sampled values ({criterion})",
            fmt_cos(m.cosine),
            fmt_sci(m.nmse),
            fmt_sci(m.max_diff),
            fmt_sci(m.max_abs_b),
            m.n
        ),
    )
    .help(help)
    .evidence(json!({
        "metrics": m.to_json(),
        "max_abs_reference": finite_or_null(m.max_abs_b),
        "criterion": criterion,
        "transforms_tried": tried,
        "reference_tensor": tb.name,
    }))
}

/// `--deep`: the sample agreed, but the comparison of every value of a same-dtype pair did not.
fn full_mismatch(env: &Env<'_>, p: &Pair<'_>, m: Metrics, res: &mut RoleResult) -> Option<Finding> {
    let (ta, tb) = (&env.a.tensors[p.ia], &env.b.tensors[p.ib]);
    let (tol, tol_dtype) = tolerance(env.arch, p.role, ta.dtype, tb.dtype);
    if m.within_threshold(env.settings.threshold) {
        return None;
    }
    if m.within(tol.nmse, tol.cosine) {
        // The same dtype re-quantized from the same weights by another quantizer.
        res.noise.get_or_insert(Noise {
            tensor: ta.name.clone(),
            dtypes: (ta.dtype, tb.dtype),
            metrics: m,
            tolerance: tol,
            tolerance_dtype: tol_dtype.unwrap_or(tb.dtype),
        });
        return None;
    }
    let mut f = mismatch(env, p, m, &tol, tol_dtype, true);
    f.message = f
        .message
        .replace(" sampled values ", " values (every value, `--deep`) ");
    Some(f)
}
