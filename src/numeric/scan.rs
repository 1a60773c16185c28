//! Whole-tensor value checks, beside the sampled comparison.
//!
//! - By default every value of every float tensor (F32, F16, BF16) of each file is tested for
//!   NaN/Inf while the file's float tensors total at most [`FULL_FLOAT_SCAN_MAX`] (a few ms: they
//!   are the norms and biases of a quantized model); above that the file's floats are sampled like
//!   everything else, and the reports say so.
//! - `--deep` ([`Depth::Deep`]): every tensor of both files. Plain floats are tested value by
//!   value on their bits; block types get every block's scale fields tested, and their values are
//!   dequantized and tested unless the dtype's values are finite exactly when its scales are (f16
//!   scales times small integers: [`DType::finite_when_scales_finite`]); pairs of one dtype and
//!   dims are compared byte for byte over the whole tensor, and dequantized whole when the bytes
//!   differ; the APR footer CRC is computed whatever the file size.
//!
//! One rayon task per tensor (or per pair of tensors, so both sides are read once, while they
//! are in cache, for the scan, the comparison and the CRC), in chunks of whole rows of about
//! `CHUNK_BYTES`; the pages of each tensor are released ([`Source::release`]) as the task
//! advances, so the resident set stays near what is being checked.
//!
//! [`Source::release`]: crate::format::source::Source::release

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::diag::{Finding, Span};
use crate::model::{ModelView, TensorView};
use crate::numeric::lints;
use crate::numeric::metrics::Metrics;
use crate::quant::{self, DType};

/// A file's float tensors are scanned whole by default up to this many bytes.
pub const FULL_FLOAT_SCAN_MAX: u64 = 256 << 20;
/// Bytes per chunk of a task (both sides of a pair fit in a core's L2 cache).
const CHUNK_BYTES: u64 = 256 << 10;
/// Pages are released every this many bytes of a tensor.
const RELEASE_BYTES: u64 = 8 << 20;
/// Tensors below this size are not populated, nor released unless `--deep`.
const SMALL_TENSOR: u64 = 1 << 20;

const HELP: &str = "re-export the tensor from the source weights; check the converter's f16 scale conversion for overflow";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Float tensors only, when they are small enough (the default).
    Floats,
    /// Every tensor, every block's scales, full comparison of same-dtype pairs, footer CRC.
    Deep,
}

/// Progress of a deep scan: called with (bytes just done, total bytes). Must be cheap.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(u64, u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// What the scan did for one file (reported in every output format).
#[derive(Clone, Debug, Serialize)]
pub struct FileScan {
    pub path: String,
    /// Bytes of F32/F16/BF16 tensors in the file.
    pub float_bytes: u64,
    /// Every float value was tested for NaN/Inf.
    pub floats_scanned: bool,
    /// Every value of every tensor was checked (`--deep`).
    pub deep: bool,
    /// Tensors whose values were checked in full (or, for a dtype without a dequantizer, every
    /// block's scales).
    pub tensors_scanned: usize,
    /// Bytes of tensor data the scan read.
    pub bytes_scanned: u64,
    /// The APR footer: `valid`, `invalid`, `absent`, `unverified`; null for GGUF.
    pub footer_crc: Option<&'static str>,
}

/// The whole-tensor comparison of one pair of equal dtype and dims (`--deep`).
#[derive(Clone, Debug)]
pub struct FullCompare {
    pub identical: bool,
    /// Over every value (None when the bytes are identical or the dtype has no dequantizer).
    pub metrics: Option<Metrics>,
    /// The first row whose bytes differ.
    pub first_diff_row: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct ScanResult {
    pub files: Vec<FileScan>,
    /// Keyed by (tensor index in the file under test, in the reference).
    pub full: HashMap<(usize, usize), FullCompare>,
    pub findings: Vec<Finding>,
    /// Bytes read, both files.
    pub bytes: u64,
}

impl ScanResult {
    /// (file, tensor) pairs the scan reported as non-finite.
    pub fn non_finite_tensors(&self) -> HashSet<(Option<String>, Option<String>)> {
        self.findings
            .iter()
            .filter(|f| f.code == lints::NON_FINITE.code)
            .map(|f| (f.file.clone(), f.tensor.clone()))
            .collect()
    }
}

/// `1.2 GB`, `640 KB`, `12 B` (decimal units).
pub fn bytes_h(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2} GB", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1} MB", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} KB", x / 1e3)
    } else {
        format!("{n} B")
    }
}

pub(crate) fn is_plain_float(dt: DType) -> bool {
    matches!(dt, DType::F32 | DType::F16 | DType::BF16)
}

fn is_int(dt: DType) -> bool {
    matches!(
        dt,
        DType::I8 | DType::I16 | DType::I32 | DType::I64 | DType::U8
    )
}

/// Does the scan at `depth` read this tensor?
fn scanned(t: &TensorView, depth: Depth, floats: bool) -> bool {
    match depth {
        Depth::Floats => floats && is_plain_float(t.dtype),
        Depth::Deep => true,
    }
}

/// One side of a task: a tensor of a file.
#[derive(Clone, Copy)]
struct Side<'v> {
    view: &'v ModelView,
    idx: usize,
    /// Test its values (false: only compared or hashed).
    scan: bool,
    /// Which file (0 = under test, 1 = reference), for the CRC pieces.
    file: usize,
}

struct Task<'v> {
    a: Option<Side<'v>>,
    b: Option<Side<'v>>,
    /// Another tensor of the file under test compared with `b` in the same pass (a tied
    /// reference's embedding is the partner of both the embedding and the output matrix).
    extra: Option<Side<'v>>,
    compare: bool,
    deep: bool,
    bytes: u64,
}

/// State of the value test of one side.
#[derive(Default)]
struct SideState {
    bad_values: u64,
    first_value: Option<(u64, u64, f32)>,
    bad_blocks: u64,
    first_block: Option<u64>,
    scratch: Vec<f32>,
    checked: bool,
}

impl SideState {
    /// Forget the counts (keep the scratch buffer), for the next chunk.
    fn reset(&mut self) {
        self.bad_values = 0;
        self.first_value = None;
        self.bad_blocks = 0;
        self.first_block = None;
        self.checked = false;
    }

    /// Add a later chunk's counts (its firsts count only where this has none yet).
    fn absorb(&mut self, c: &SideState) {
        self.bad_values += c.bad_values;
        self.bad_blocks += c.bad_blocks;
        if self.first_value.is_none() {
            self.first_value = c.first_value;
        }
        if self.first_block.is_none() {
            self.first_block = c.first_block;
        }
        self.checked |= c.checked;
    }
}

/// Running sums of [`Metrics`] over every value.
#[derive(Default)]
struct Acc {
    n: usize,
    ab: f64,
    aa: f64,
    bb: f64,
    dd: f64,
    sum_abs: f64,
    max_diff: f64,
    max_abs_b: f64,
    non_finite: bool,
}

impl Acc {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (x as f64, y as f64);
            self.n += 1;
            if !x.is_finite() || !y.is_finite() {
                self.non_finite = true;
                continue;
            }
            let d = x - y;
            self.ab += x * y;
            self.aa += x * x;
            self.bb += y * y;
            self.dd += d * d;
            self.sum_abs += d.abs();
            self.max_diff = self.max_diff.max(d.abs());
            self.max_abs_b = self.max_abs_b.max(y.abs());
        }
    }

    fn finish(&self) -> Metrics {
        let cosine = if self.non_finite {
            f64::NAN
        } else if self.aa == 0.0 && self.bb == 0.0 {
            1.0
        } else if self.aa == 0.0 || self.bb == 0.0 {
            0.0
        } else {
            (self.ab / (self.aa.sqrt() * self.bb.sqrt())).clamp(-1.0, 1.0)
        };
        let nmse = if self.non_finite {
            f64::NAN
        } else if self.bb == 0.0 {
            if self.dd == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            self.dd / self.bb
        };
        Metrics {
            n: self.n,
            max_diff: if self.non_finite {
                f64::NAN
            } else {
                self.max_diff
            },
            mean_diff: if self.n == 0 {
                0.0
            } else {
                self.sum_abs / self.n as f64
            },
            cosine,
            nmse,
            max_abs_b: self.max_abs_b,
        }
    }
}

/// What one task produced.
#[derive(Default)]
struct TaskOut {
    findings: Vec<Finding>,
    /// (file, tensor index, CRC of its span).
    crc: Vec<(usize, usize, crc32fast::Hasher)>,
    full: Vec<((usize, usize), FullCompare)>,
    bytes: u64,
    scanned: [usize; 2],
}

/// A file's CRC plan: the tensor spans tile the body in order without overlap (then the tasks
/// hash their own spans and the gaps are hashed here), or not (then the body is hashed whole).
struct CrcPlan {
    body_len: u64,
    stored: u32,
    /// Tensor indices in file order, when they tile cleanly.
    order: Option<Vec<usize>>,
}

fn crc_plan(v: &ModelView) -> Option<CrcPlan> {
    let (body_len, stored) = v.unverified_footer()?;
    let mut order: Vec<usize> = (0..v.tensors.len()).collect();
    order.sort_by_key(|&i| v.tensors[i].data.offset);
    let mut end = 0u64;
    let mut clean = true;
    for &i in &order {
        let s = v.tensors[i].data;
        if s.offset < end || s.end() > body_len {
            clean = false;
            break;
        }
        end = s.end();
    }
    Some(CrcPlan {
        body_len,
        stored,
        order: clean.then_some(order),
    })
}

/// Run the whole-tensor checks on `a` (the file under test) and `b` (the reference).
/// `pairs`: (tensor of `a`, tensor of `b`) the numeric stage compares; under `Depth::Deep` the
/// ones of one dtype and dims are compared whole.
pub fn run(
    a: &ModelView,
    b: Option<&ModelView>,
    pairs: &[(usize, usize)],
    depth: Depth,
    progress: Option<&Progress>,
) -> ScanResult {
    let views: Vec<&ModelView> = std::iter::once(a).chain(b).collect();
    let float_bytes: Vec<u64> = views
        .iter()
        .map(|v| {
            v.tensors
                .iter()
                .filter(|t| is_plain_float(t.dtype))
                .map(|t| t.data.len)
                .sum()
        })
        .collect();
    let floats_ok: Vec<bool> = float_bytes
        .iter()
        .map(|&n| depth == Depth::Deep || n <= FULL_FLOAT_SCAN_MAX)
        .collect();
    let crc: Vec<Option<CrcPlan>> = views
        .iter()
        .map(|v| {
            if depth == Depth::Deep {
                crc_plan(v)
            } else {
                None
            }
        })
        .collect();
    let hashes = |f: usize| crc[f].as_ref().is_some_and(|p| p.order.is_some());

    // Tasks: pairs compared whole first (each side claimed once), then the lone tensors.
    let mut tasks: Vec<Task<'_>> = Vec::new();
    let mut claimed: [HashSet<usize>; 2] = [HashSet::new(), HashSet::new()];
    let mut extra_pairs = Vec::new();
    let mut owner: HashMap<usize, usize> = HashMap::new();
    if depth == Depth::Deep
        && let Some(b) = b
    {
        for &(ia, ib) in pairs {
            let (ta, tb) = (&a.tensors[ia], &b.tensors[ib]);
            if ta.dtype != tb.dtype || ta.dims != tb.dims || !ta.size_ok() || !tb.size_ok() {
                continue;
            }
            if !claimed[0].contains(&ia)
                && let Some(&k) = owner.get(&ib)
                && tasks[k].extra.is_none()
            {
                // Read the reference's tensor once for both of its partners.
                claimed[0].insert(ia);
                tasks[k].extra = Some(Side {
                    view: a,
                    idx: ia,
                    scan: true,
                    file: 0,
                });
                tasks[k].bytes += ta.data.len;
                continue;
            }
            if claimed[0].contains(&ia) || claimed[1].contains(&ib) {
                // A tensor paired twice (the output of a tied reference): the second pair is
                // compared in a task of its own, which also scans the side not scanned yet.
                let scan_a = claimed[0].insert(ia);
                let scan_b = claimed[1].insert(ib);
                extra_pairs.push((ia, ib, scan_a, scan_b));
                continue;
            }
            claimed[0].insert(ia);
            claimed[1].insert(ib);
            owner.insert(ib, tasks.len());
            tasks.push(Task {
                a: Some(Side {
                    view: a,
                    idx: ia,
                    scan: true,
                    file: 0,
                }),
                b: Some(Side {
                    view: b,
                    idx: ib,
                    scan: true,
                    file: 1,
                }),
                extra: None,
                compare: true,
                deep: true,
                bytes: ta.data.len + tb.data.len,
            });
        }
    }
    for (f, v) in views.iter().enumerate() {
        for (i, t) in v.tensors.iter().enumerate() {
            if claimed[f].contains(&i) {
                continue;
            }
            let scan = scanned(t, depth, floats_ok[f]);
            if !scan && !hashes(f) {
                continue;
            }
            let side = Side {
                view: v,
                idx: i,
                scan,
                file: f,
            };
            tasks.push(Task {
                a: Some(side),
                b: None,
                extra: None,
                compare: false,
                deep: depth == Depth::Deep,
                bytes: t.data.len,
            });
        }
    }
    for (ia, ib, scan_a, scan_b) in extra_pairs {
        let (Some(b), ta) = (b, &a.tensors[ia]) else {
            continue;
        };
        tasks.push(Task {
            a: Some(Side {
                view: a,
                idx: ia,
                scan: scan_a,
                file: 0,
            }),
            b: Some(Side {
                view: b,
                idx: ib,
                scan: scan_b,
                file: 1,
            }),
            extra: None,
            compare: true,
            deep: true,
            bytes: ta.data.len * 2,
        });
    }
    // Largest first, so the two cores finish together.
    tasks.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    let total: u64 = tasks.iter().map(|t| t.bytes).sum::<u64>()
        + crc
            .iter()
            .flatten()
            .filter(|p| p.order.is_none())
            .map(|p| p.body_len)
            .sum::<u64>();
    let tick = |n: u64| {
        if let Some(p) = progress {
            (p.0)(n, total);
        }
    };

    // Files whose tensors do not tile the body are hashed whole, beside the tasks.
    let (outs, whole): (Vec<TaskOut>, Vec<Option<u32>>) = rayon::join(
        || {
            // One task per split: sizes differ by 1000×, so every task must be stealable.
            tasks
                .par_iter()
                .with_max_len(1)
                .map(|t| run_task(t, &hashes, &tick))
                .collect()
        },
        || {
            views
                .iter()
                .zip(&crc)
                .map(|(v, p)| {
                    let p = p.as_ref().filter(|p| p.order.is_none())?;
                    let body = v.source().slice(0, p.body_len)?;
                    let mut h = crc32fast::Hasher::new();
                    for (k, c) in body.chunks(RELEASE_BYTES as usize).enumerate() {
                        h.update(c);
                        v.source()
                            .release(Span::new(k as u64 * RELEASE_BYTES, c.len() as u64));
                        tick(c.len() as u64);
                    }
                    Some(h.finalize())
                })
                .collect()
        },
    );

    let mut res = ScanResult::default();
    let mut pieces: [HashMap<usize, crc32fast::Hasher>; 2] = [HashMap::new(), HashMap::new()];
    let mut scanned_n = [0usize; 2];
    for o in outs {
        res.findings.extend(o.findings);
        res.bytes += o.bytes;
        for (f, i, h) in o.crc {
            pieces[f].insert(i, h);
        }
        for (n, k) in scanned_n.iter_mut().zip(o.scanned) {
            *n += k;
        }
        res.full.extend(o.full);
    }
    for (f, v) in views.iter().enumerate() {
        let mut footer = v.footer_state();
        if let Some(p) = &crc[f] {
            let computed = match (&p.order, whole[f]) {
                (_, Some(c)) => Some(c),
                (Some(order), None) => combine(v, p, order, &mut pieces[f]),
                (None, None) => None,
            };
            if let Some(computed) = computed {
                footer = Some(if computed == p.stored {
                    "valid"
                } else {
                    "invalid"
                });
                if computed != p.stored {
                    res.findings.push(footer_finding(v, p.stored, computed));
                }
            }
        }
        res.files.push(FileScan {
            path: v.path().display().to_string(),
            float_bytes: float_bytes[f],
            floats_scanned: floats_ok[f],
            deep: depth == Depth::Deep,
            tensors_scanned: scanned_n[f],
            bytes_scanned: 0,
            footer_crc: footer,
        });
    }
    for t in &tasks {
        for s in [t.a, t.b, t.extra].into_iter().flatten() {
            if s.scan {
                res.files[s.file].bytes_scanned += s.view.tensors[s.idx].data.len;
            }
        }
    }
    res
}

/// The CRC of the body from the tensors' pieces and the gaps between them, in file order.
fn combine(
    v: &ModelView,
    p: &CrcPlan,
    order: &[usize],
    pieces: &mut HashMap<usize, crc32fast::Hasher>,
) -> Option<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut at = 0u64;
    for &i in order {
        let s = v.tensors[i].data;
        h.update(v.source().slice(at, s.offset - at)?);
        h.combine(&pieces.remove(&i)?);
        at = s.end();
    }
    h.update(v.source().slice(at, p.body_len - at)?);
    Some(h.finalize())
}

pub fn footer_finding(v: &ModelView, stored: u32, computed: u32) -> Finding {
    let len = v.source().len();
    Finding::new(
        &crate::format::lints::FOOTER_CRC,
        format!("footer CRC is {stored:#010x}, the file's bytes give {computed:#010x}"),
    )
    .span(Span::new(len.saturating_sub(4), 4.min(len)))
    .file(v.path())
    .help("some bytes changed after writing; re-convert or compare checksums with the source")
}

/// Geometry of one tensor for the chunk loop (None: size does not fit dtype and dims).
struct Geo {
    rows: u64,
    cols: u64,
    row_bytes: u64,
    header: u64,
}

fn geo(t: &TensorView) -> Option<Geo> {
    if !t.size_ok() || t.data.len == 0 {
        return None;
    }
    let (rows, cols) = t.rows_cols();
    Some(Geo {
        rows,
        cols,
        row_bytes: quant::row_n_bytes(t.dtype, cols)?,
        header: t.dtype.header_bytes(),
    })
}

fn run_task(t: &Task<'_>, hashes: &dyn Fn(usize) -> bool, tick: &dyn Fn(u64)) -> TaskOut {
    let mut out = TaskOut::default();
    let sides: Vec<Side<'_>> = [t.a, t.b, t.extra].into_iter().flatten().collect();
    // (side, side) pairs compared byte for byte: the file under test's first.
    let compares: Vec<(usize, usize)> = if t.compare && sides.len() >= 2 {
        (0..sides.len())
            .filter(|&k| k != 1)
            .map(|k| (k, 1))
            .collect()
    } else {
        Vec::new()
    };
    let first = sides[0];
    fn tensor<'v>(s: &Side<'v>) -> &'v TensorView {
        &s.view.tensors[s.idx]
    }
    // The small tensors of the default scan (a quantized model's norms and biases, scattered
    // between the large weights) are read with one positioned read each instead of through the
    // map: no page fault, and no page of theirs, or of the fault-around window about them,
    // left mapped. What is large or `--deep` is read through the map in order.
    let read: Vec<Option<Vec<u8>>> = sides
        .iter()
        .map(|s| {
            let tv = tensor(s);
            (!t.deep && tv.data.len < SMALL_TENSOR).then(|| {
                let mut buf = vec![0u8; tv.data.len as usize];
                // A failed read (recorded by the file, reported by the pipeline) checks nothing.
                match s.view.read_tensor_range(tv, 0..tv.data.len, &mut buf) {
                    Ok(()) => buf,
                    Err(_) => Vec::new(),
                }
            })
        })
        .collect();
    let datas: Vec<&[u8]> = sides
        .iter()
        .zip(&read)
        .map(|(s, r)| match r {
            Some(bytes) => bytes.as_slice(),
            None => s.view.bytes(tensor(s)),
        })
        .collect();
    let mut crcs: Vec<Option<crc32fast::Hasher>> = sides
        .iter()
        .map(|s| (s.scan && hashes(s.file)).then(crc32fast::Hasher::new))
        .collect();
    let mut states: Vec<SideState> = sides.iter().map(|_| SideState::default()).collect();
    let mut chunk: Vec<SideState> = sides.iter().map(|_| SideState::default()).collect();
    let g = geo(tensor(&first));
    let len = tensor(&first).data.len;
    // Chunks: whole rows when the geometry is known, else raw byte ranges (CRC only).
    // Rows of no bytes (a last dim of 0 under APR_Q8's header) are all one chunk.
    let rows_per_chunk = g.as_ref().map_or(1, |g| match g.row_bytes {
        0 => g.rows.max(1),
        rb => (CHUNK_BYTES / rb).max(1),
    });
    let mut identical = vec![true; compares.len()];
    let mut first_diff_row = vec![None; compares.len()];
    // Small tensors (the norms and biases the default scan reads) are neither populated nor
    // released one by one: a syscall each would cost more than their pages, and their pages
    // share windows with the rows the sampled comparison reads next.
    let big = len >= SMALL_TENSOR;
    let release = big || t.deep;
    let mut released = 0u64;
    let mut populated = 0u64;
    let mut start = 0u64;
    let mut row = 0u64;
    while start < len {
        let (end, rows) = match &g {
            Some(g) => {
                let r1 = (row + rows_per_chunk).min(g.rows);
                (g.header + r1 * g.row_bytes, Some(row..r1))
            }
            None => ((start + CHUNK_BYTES).min(len), None),
        };
        let range = start as usize..end as usize;
        if big && end > populated {
            let to = (populated + RELEASE_BYTES).max(end).min(len);
            for s in &sides {
                let d = tensor(s).data;
                s.view
                    .source_of(tensor(s))
                    .populate(Span::new(d.offset + populated, to - populated));
            }
            populated = to;
        }
        // Byte comparison first: a chunk of the reference identical to a scanned chunk of the
        // file under test has the same scales and values, so it is not tested twice.
        let mut copy_of: Option<usize> = None;
        for (c, &(i, j)) in compares.iter().enumerate() {
            let (x, y) = (datas[i].get(range.clone()), datas[j].get(range.clone()));
            if x != y {
                identical[c] = false;
                if first_diff_row[c].is_none()
                    && let (Some(g), Some(r), Some(x), Some(y)) = (&g, &rows, x, y)
                {
                    first_diff_row[c] = first_row_differing(g, r.clone(), x, y, start);
                }
            } else if sides[i].scan && copy_of.is_none() {
                copy_of = Some(i);
            }
        }
        // The reference (side 1) last, so the chunk it may copy is done.
        for k in (0..sides.len())
            .filter(|&k| k != 1)
            .chain((sides.len() > 1).then_some(1))
        {
            let s = &sides[k];
            let bytes = datas[k].get(range.clone()).unwrap_or(&[]);
            if let Some(h) = &mut crcs[k] {
                h.update(bytes);
            }
            if !s.scan {
                continue;
            }
            if let (Some(g), Some(r)) = (&g, &rows) {
                match copy_of {
                    Some(i) if k == 1 => states[k].absorb(&chunk[i]),
                    _ => {
                        chunk[k].reset();
                        check_chunk(tensor(s), datas[k], g, r.clone(), &mut chunk[k]);
                        states[k].absorb(&chunk[k]);
                    }
                }
            }
        }
        tick((end - start) * sides.len() as u64);
        out.bytes += (end - start) * sides.len() as u64;
        if release && end - released >= RELEASE_BYTES {
            for s in &sides {
                let d = tensor(s).data;
                s.view
                    .source_of(tensor(s))
                    .release(Span::new(d.offset + released, end - released));
            }
            released = end;
        }
        start = end;
        if let Some(r) = rows {
            row = r.end;
        }
    }
    for (c, &(i, j)) in compares.iter().enumerate() {
        let mut fc = FullCompare {
            identical: identical[c],
            metrics: None,
            first_diff_row: first_diff_row[c],
        };
        if !identical[c]
            && let Some(g) = &g
        {
            fc.metrics = full_metrics(&sides[i], &sides[j], g, rows_per_chunk);
        }
        out.full.push(((sides[i].idx, sides[j].idx), fc));
    }
    for (k, s) in sides.iter().enumerate() {
        let d = tensor(s).data;
        if release {
            s.view.source_of(tensor(s)).release(Span::new(
                d.offset + released,
                d.len.saturating_sub(released),
            ));
        }
        if let Some(h) = crcs[k].take() {
            out.crc.push((s.file, s.idx, h));
        }
        if s.scan && states[k].checked {
            out.scanned[s.file] += 1;
        }
        if let Some(f) = finding(s, &states[k], g.as_ref()) {
            out.findings.push(f);
        }
    }
    out
}

/// The first row in `rows` whose bytes differ (`x`, `y`: those rows' bytes, from byte `start`).
fn first_row_differing(
    g: &Geo,
    rows: std::ops::Range<u64>,
    x: &[u8],
    y: &[u8],
    start: u64,
) -> Option<u64> {
    let skip = if start == 0 { g.header as usize } else { 0 };
    let (x, y) = (x.get(skip..)?, y.get(skip..)?);
    let rb = g.row_bytes as usize;
    if rb == 0 {
        // No row has bytes: what differs is the header.
        return Some(rows.start);
    }
    x.chunks(rb)
        .zip(y.chunks(rb))
        .position(|(p, q)| p != q)
        .map(|k| rows.start + k as u64)
        .or(Some(rows.start))
}

/// Metrics over every value of a pair of one dtype and dims (a second pass, only for pairs whose
/// bytes differ).
fn full_metrics(a: &Side<'_>, b: &Side<'_>, g: &Geo, rows_per_chunk: u64) -> Option<Metrics> {
    let (ta, tb) = (&a.view.tensors[a.idx], &b.view.tensors[b.idx]);
    if !ta.dtype.has_values() {
        return None;
    }
    let (da, db) = (a.view.bytes(ta), b.view.bytes(tb));
    let mut acc = Acc::default();
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    let mut row = 0;
    while row < g.rows {
        let r1 = (row + rows_per_chunk).min(g.rows);
        let n = ((r1 - row) * g.cols) as usize;
        xa.resize(n, 0.0);
        xb.resize(n, 0.0);
        quant::dequantize_rows(ta.dtype, da, &ta.dims, row..r1, &mut xa).ok()?;
        quant::dequantize_rows(tb.dtype, db, &tb.dims, row..r1, &mut xb).ok()?;
        acc.add(&xa, &xb);
        row = r1;
    }
    a.view.release(ta);
    b.view.release(tb);
    Some(acc.finish())
}

/// Count non-finite values (floats: on the bits) and bad scales in rows `rows` of `t` (whose
/// data is `data`).
fn check_chunk(
    t: &TensorView,
    data: &[u8],
    g: &Geo,
    rows: std::ops::Range<u64>,
    st: &mut SideState,
) {
    let dt = t.dtype;
    let lo = (g.header + rows.start * g.row_bytes) as usize;
    let hi = (g.header + rows.end * g.row_bytes) as usize;
    let Some(body) = data.get(lo..hi) else {
        return;
    };
    st.checked = true;
    if is_plain_float(dt) {
        let (n, first) = count_non_finite_bits(dt, body);
        if n > 0 {
            st.bad_values += n;
            if st.first_value.is_none()
                && let Some(i) = first
            {
                let flat = rows.start * g.cols + i;
                let w = dt.block_bytes() as usize;
                let b = &body[i as usize * w..(i as usize + 1) * w];
                let value = match dt {
                    DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
                    _ => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
                };
                st.first_value = Some((flat / g.cols, flat % g.cols, value));
            }
        }
        return;
    }
    if is_int(dt) {
        return;
    }
    if rows.start == 0 && !quant::header_scales_finite(dt, data) {
        st.bad_blocks += 1;
        st.first_block.get_or_insert(0);
    }
    let (n, first) = quant::count_bad_scale_blocks(dt, body);
    if n > 0 {
        st.bad_blocks += n;
        if st.first_block.is_none()
            && let Some(k) = first
        {
            let bpr = g.row_bytes / dt.block_bytes().max(1);
            st.first_block = Some(rows.start * bpr + k);
        }
    }
    if dt.finite_when_scales_finite() || !dt.has_values() {
        return;
    }
    // Values not bounded by the scales (F64, Q8_K, APR_Q8): dequantize and test them.
    let n = ((rows.end - rows.start) * g.cols) as usize;
    st.scratch.resize(n, 0.0);
    if quant::dequantize_rows(dt, data, &t.dims, rows.clone(), &mut st.scratch).is_err() {
        return;
    }
    if let Some(i) = st.scratch.iter().position(|x| !x.is_finite()) {
        st.bad_values += st.scratch.iter().filter(|x| !x.is_finite()).count() as u64;
        if st.first_value.is_none() {
            let flat = rows.start * g.cols + i as u64;
            st.first_value = Some((flat / g.cols, flat % g.cols, st.scratch[i]));
        }
    }
}

/// Non-finite values among plain float bytes (exponent all ones), and the first one's index.
fn count_non_finite_bits(dt: DType, body: &[u8]) -> (u64, Option<u64>) {
    fn count<const W: usize>(body: &[u8], mask: u32) -> u64 {
        let (chunks, _) = body.as_chunks::<W>();
        chunks
            .iter()
            .map(|c| {
                let mut b = [0u8; 4];
                b[..W].copy_from_slice(c);
                u64::from(u32::from_le_bytes(b) & mask == mask)
            })
            .sum()
    }
    let (w, mask) = match dt {
        DType::F32 => (4, 0x7f80_0000u32),
        DType::F16 => (2, 0x7c00),
        _ => (2, 0x7f80),
    };
    let n = if w == 4 {
        count::<4>(body, mask)
    } else {
        count::<2>(body, mask)
    };
    if n == 0 {
        return (0, None);
    }
    let first = body.chunks_exact(w).position(|c| {
        let mut b = [0u8; 4];
        b[..w].copy_from_slice(c);
        u32::from_le_bytes(b) & mask == mask
    });
    (n, first.map(|i| i as u64))
}

fn finding(s: &Side<'_>, st: &SideState, g: Option<&Geo>) -> Option<Finding> {
    let t = &s.view.tensors[s.idx];
    let g = g?;
    let base = |f: Finding| f.tensor(&t.name).file(s.view.path()).help(HELP);
    let bpr = g.row_bytes / t.dtype.block_bytes().max(1);
    if let Some(block) = st.first_block {
        let (row, b) = (block / bpr.max(1), block % bpr.max(1));
        let span = Span::new(
            t.data.offset + g.header + block * t.dtype.block_bytes(),
            t.dtype.block_bytes(),
        );
        let total = g.rows * bpr;
        return Some(
            base(Finding::new(
                &lints::NON_FINITE,
                format!(
                    "`{}`: {} of {total} {} blocks have a non-finite scale field (first: block {b} of row {row}, at byte offset {}), so their values are NaN or Inf (every block checked)",
                    t.name,
                    st.bad_blocks,
                    t.dtype,
                    span.offset
                ),
            ))
            .span(span)
            .evidence(json!({"bad_blocks": st.bad_blocks, "blocks": total, "first_bad": {"row": row, "block": b}, "scope": "every block"})),
        );
    }
    let (row, col, value) = st.first_value?;
    let width = if is_plain_float(t.dtype) {
        t.dtype.block_bytes()
    } else {
        0
    };
    let mut f = base(Finding::new(
        &lints::NON_FINITE,
        format!(
            "`{}`: {} of {} values are NaN or Inf (first {value} at [{row}, {col}]; every value checked)",
            t.name,
            st.bad_values,
            g.rows * g.cols
        ),
    ))
    .evidence(json!({"non_finite": st.bad_values, "values": g.rows * g.cols, "first": {"row": row, "col": col}, "scope": "every value"}));
    if width > 0 {
        f = f.span(Span::new(
            t.data.offset + (row * g.cols + col) * width,
            width,
        ));
    }
    Some(f)
}
