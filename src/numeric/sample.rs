//! Deterministic samples of a tensor, read a few blocks at a time.
//!
//! A tensor is seen as `rows × cols` (canonical dims: all but the last multiplied, the last
//! contiguous). Its bytes are read in *units*: one quant block for block types of ≥ 32 elements,
//! 32 elements for plain floats. A [`Reader`] decodes the units asked for (and caches them), so a
//! sample costs its units' bytes and nothing else.
//!
//! [`plan`] picks the units of the standard sample: two clusters of consecutive rows, the first
//! rows and the last rows of the tensor (so both ends of the data are checked), each row with a
//! few units at staggered columns, about [`BUDGET_BYTES`] in all. Clustered, not spread: the
//! files are memory-mapped and the kernel maps a whole 64 KiB window around every page a read
//! faults in ("fault-around"), so what a sample costs in resident memory is the number of
//! windows it touches, not its bytes. Rows spread over a 1 GB model would touch thousands of
//! windows (1.4 GB resident, measured); two clusters per tensor touch about one window per
//! tensor, since one tensor's last rows and the next tensor's first rows are neighbours.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use crate::model::{ModelView, TensorView};
use crate::quant::{self, DType};

/// Rows per cluster of the standard sample (at most).
pub const CLUSTER_ROWS: u64 = 8;
/// Bytes of the standard sample, per side (two clusters).
pub const BUDGET_BYTES: u64 = 4096;
/// The span of one cluster's rows stays within about half a fault-around window.
const CLUSTER_SPAN: u64 = 32 * 1024;
/// Tensors up to this size also get a full byte comparison (cheap certainty).
pub const SMALL_BYTES: u64 = 64 * 1024;
/// Elements per unit for plain floats.
const FLOAT_UNIT_ELEMS: u64 = 32;

/// Reads units of one tensor's bytes, decoded as `dtype` (its label, or a reinterpretation).
pub struct Reader<'v> {
    data: &'v [u8],
    pub dtype: DType,
    pub dims: Vec<u64>,
    pub rows: u64,
    pub cols: u64,
    /// Absolute file offset of the data.
    pub file_offset: u64,
    row_bytes: u64,
    header_bytes: u64,
    block_elems: u64,
    block_bytes: u64,
    blocks_per_row: u64,
    unit_blocks: u64,
    /// Decoded units, end to end; `cache` maps a unit to its range here, and `last` is the unit
    /// read most recently (samples read a unit's elements one after another: one lookup, not
    /// three hashes, per element).
    values: Vec<f32>,
    cache: HashMap<(u64, u64), (usize, usize)>,
    last: Option<((u64, u64), (usize, usize))>,
    touched: BTreeSet<(u64, u64)>,
    touched_extra: u64,
}

impl<'v> Reader<'v> {
    /// `None` when the tensor's byte size does not match `dtype` and its dims (the static stage
    /// reports that).
    pub fn new(view: &'v ModelView, t: &TensorView, dtype: DType) -> Option<Reader<'v>> {
        let data = view.bytes(t);
        if quant::tensor_n_bytes(dtype, &t.dims) != Some(data.len() as u64) || data.is_empty() {
            return None;
        }
        let (rows, cols) = t.rows_cols();
        let (block_elems, block_bytes) = (dtype.block_elems(), dtype.block_bytes());
        let row_bytes = quant::row_n_bytes(dtype, cols)?;
        let blocks_per_row = cols.div_ceil(block_elems);
        Some(Reader {
            data,
            dtype,
            dims: t.dims.clone(),
            rows,
            cols,
            file_offset: t.data.offset,
            row_bytes,
            header_bytes: dtype.header_bytes(),
            block_elems,
            block_bytes,
            blocks_per_row,
            unit_blocks: FLOAT_UNIT_ELEMS.div_ceil(block_elems).max(1),
            values: Vec::new(),
            cache: HashMap::new(),
            last: None,
            touched: BTreeSet::new(),
            touched_extra: 0,
        })
    }

    pub fn n_elems(&self) -> u64 {
        self.rows * self.cols
    }
    pub fn n_bytes(&self) -> u64 {
        self.data.len() as u64
    }
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes
    }
    pub fn unit_elems(&self) -> u64 {
        self.unit_blocks * self.block_elems
    }
    pub fn unit_n_bytes(&self) -> u64 {
        self.unit_blocks * self.block_bytes
    }
    pub fn units_per_row(&self) -> u64 {
        self.blocks_per_row.div_ceil(self.unit_blocks)
    }
    pub fn unit_of(&self, col: u64) -> u64 {
        col / self.unit_elems()
    }

    /// Byte range of a unit within the tensor's data.
    pub fn unit_range(&self, row: u64, unit: u64) -> Range<usize> {
        let first = unit * self.unit_blocks;
        let n = self
            .unit_blocks
            .min(self.blocks_per_row.saturating_sub(first));
        let start = self.header_bytes + row * self.row_bytes + first * self.block_bytes;
        // In bounds: row < rows and unit < units_per_row, and the size was checked in `new`.
        start as usize..(start + n * self.block_bytes) as usize
    }

    /// The raw bytes of a unit (counted as touched).
    pub fn unit_bytes(&mut self, row: u64, unit: u64) -> &'v [u8] {
        self.touched.insert((row, unit));
        let r = self.unit_range(row, unit);
        self.data.get(r).unwrap_or(&[])
    }

    /// The decoded values of a unit (`unit_elems` long, the row's tail padding included).
    pub fn unit_values(&mut self, row: u64, unit: u64) -> Option<&[f32]> {
        if row >= self.rows || unit >= self.units_per_row() || !self.dtype.has_values() {
            return None;
        }
        let key = (row, unit);
        let (start, len) = match self.last {
            Some((k, r)) if k == key => r,
            _ => {
                let r = match self.cache.get(&key) {
                    Some(&r) => r,
                    None => {
                        let r = self.decode_unit(row, unit)?;
                        self.cache.insert(key, r);
                        r
                    }
                };
                self.last = Some((key, r));
                r
            }
        };
        self.values.get(start..start + len)
    }

    /// Decode a unit onto the end of `values`; its range there.
    fn decode_unit(&mut self, row: u64, unit: u64) -> Option<(usize, usize)> {
        let bytes = self.unit_bytes(row, unit);
        let n_blocks = bytes.len() as u64 / self.block_bytes;
        let n = (n_blocks * self.block_elems) as usize;
        let start = self.values.len();
        self.values.resize(start + n, 0.0);
        let out = &mut self.values[start..];
        let ok = if self.header_bytes == 0 {
            quant::dequantize(self.dtype, bytes, &[n as u64], out)
        } else {
            let header = self.data.get(..self.header_bytes as usize).unwrap_or(&[]);
            let mut buf = Vec::with_capacity(header.len() + bytes.len());
            buf.extend_from_slice(header);
            buf.extend_from_slice(bytes);
            quant::dequantize(self.dtype, &buf, &[n as u64], out)
        };
        if ok.is_err() {
            self.values.truncate(start);
            return None;
        }
        Some((start, n))
    }

    /// One element (canonical `row`, `col`).
    pub fn get(&mut self, row: u64, col: u64) -> Option<f32> {
        if row >= self.rows || col >= self.cols {
            return None;
        }
        let ue = self.unit_elems();
        let (unit, k) = (col / ue, (col % ue) as usize);
        self.unit_values(row, unit)?.get(k).copied()
    }

    /// The element at flat row-major index `f`.
    pub fn get_flat(&mut self, f: u64) -> Option<f32> {
        if self.cols == 0 {
            return None;
        }
        self.get(f / self.cols, f % self.cols)
    }

    /// The first block of `row` whose scale fields are not finite (every block of the row is read;
    /// plain floats have no scales and are skipped). Also checks a tensor-wide header scale.
    pub fn first_bad_scale(&mut self, row: u64) -> Option<u64> {
        if self.block_elems == 1 || row >= self.rows {
            return None;
        }
        if self.header_bytes > 0 && !quant::header_scales_finite(self.dtype, self.data) {
            return Some(0);
        }
        for u in 0..self.units_per_row() {
            self.touched.insert((row, u));
        }
        let start = (self.header_bytes + row * self.row_bytes) as usize;
        let row_data = self
            .data
            .get(start..start + self.row_bytes as usize)
            .unwrap_or(&[]);
        row_data
            .chunks_exact(self.block_bytes as usize)
            .position(|b| !quant::block_scales_finite(self.dtype, b))
            .map(|i| i as u64)
    }

    /// Absolute file span of block `block` of `row`.
    pub fn block_span(&self, row: u64, block: u64) -> crate::diag::Span {
        crate::diag::Span::new(
            self.file_offset + self.header_bytes + row * self.row_bytes + block * self.block_bytes,
            self.block_bytes,
        )
    }

    /// Count a whole-tensor read (the full byte comparison of a small tensor).
    pub fn touch_all(&mut self) {
        self.touched_extra = self.n_bytes();
    }

    /// Bytes of tensor data read so far (each unit once).
    pub fn touched(&self) -> u64 {
        if self.touched_extra > 0 {
            return self.touched_extra;
        }
        self.touched
            .iter()
            .map(|&(r, u)| self.unit_range(r, u).len() as u64)
            .sum()
    }
}

/// The units of the standard sample over rows `rows`: the first and the last rows (up to
/// [`CLUSTER_ROWS`] each, fewer when rows are long), each with units at staggered columns,
/// [`BUDGET_BYTES`] in all. A single row (a 1-D tensor) gets units at both of its ends.
pub fn plan(r: &Reader<'_>, rows: Range<u64>) -> Vec<(u64, u64)> {
    let n_rows = rows.end.saturating_sub(rows.start);
    let upr = r.units_per_row();
    let ub = r.unit_n_bytes().max(1);
    if n_rows == 0 || upr == 0 {
        return Vec::new();
    }
    let cluster_budget = BUDGET_BYTES / 2;
    if n_rows == 1 {
        let k = (cluster_budget / ub).clamp(1, upr);
        let mut units: Vec<(u64, u64)> = (0..k)
            .chain(upr.saturating_sub(k)..upr)
            .map(|u| (rows.start, u))
            .collect();
        dedup(&mut units);
        return units;
    }
    let row_bytes = upr * ub;
    let per_cluster = (CLUSTER_SPAN / row_bytes).clamp(2, CLUSTER_ROWS);
    let per_row = (cluster_budget / (per_cluster * ub)).clamp(1, upr);
    let head = rows.start..(rows.start + per_cluster).min(rows.end);
    let tail = rows.end.saturating_sub(per_cluster).max(rows.start)..rows.end;
    let mut units = Vec::new();
    for row in head.chain(tail) {
        let offset = (row * 7) % upr;
        for m in 0..per_row {
            units.push((row, (offset + m * upr / per_row) % upr));
        }
    }
    dedup(&mut units);
    units
}

/// Drop repeated units, keeping the first occurrence.
pub fn dedup(units: &mut Vec<(u64, u64)>) {
    let mut seen = BTreeSet::new();
    units.retain(|u| seen.insert(*u));
}

/// Units whose bytes differ between two tensors of one dtype and dims, the first `max` found
/// (reads both tensors whole: only for small tensors).
pub fn differing_units(a: &mut Reader<'_>, b: &mut Reader<'_>, max: usize) -> Vec<(u64, u64)> {
    a.touch_all();
    b.touch_all();
    let mut out = Vec::new();
    if a.data == b.data {
        return out;
    }
    for row in 0..a.rows {
        for u in 0..a.units_per_row() {
            let r = a.unit_range(row, u);
            if a.data.get(r.clone()) != b.data.get(r) {
                out.push((row, u));
                if out.len() >= max {
                    return out;
                }
            }
        }
    }
    out
}

/// Sampled positions of the file under test with their values.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// The units read, in order.
    pub units: Vec<(u64, u64)>,
    /// `pos[unit_start[i]..unit_start[i + 1]]` are unit i's positions.
    pub unit_start: Vec<usize>,
    /// Canonical (row, col) of each value.
    pub pos: Vec<(u64, u64)>,
    pub values: Vec<f32>,
}

impl Sample {
    /// Read every in-range element of `units`. `None` when the dtype has no values here.
    pub fn read(r: &mut Reader<'_>, units: &[(u64, u64)]) -> Option<Sample> {
        let mut s = Sample::default();
        let ue = r.unit_elems();
        // Room for every element read below at once (at most `ue` per unit, none past the last
        // column), instead of growing the vectors by doubling.
        let n: u64 = units
            .iter()
            .map(|&(_, unit)| r.cols.saturating_sub(unit.saturating_mul(ue)).min(ue))
            .sum();
        s.pos.reserve(n as usize);
        s.values.reserve(n as usize);
        s.units.reserve(units.len());
        s.unit_start.reserve(units.len() + 1);
        for &(row, unit) in units {
            let cols = r.cols;
            let vals = r.unit_values(row, unit)?;
            s.units.push((row, unit));
            s.unit_start.push(s.pos.len());
            // The unit's elements up to the last column (a row's last unit may run past it).
            let first = unit.saturating_mul(ue);
            let take = (cols.saturating_sub(first)).min(vals.len() as u64);
            s.pos.extend((first..first + take).map(|col| (row, col)));
            s.values.extend_from_slice(&vals[..take as usize]);
        }
        s.unit_start.push(s.pos.len());
        Some(s)
    }

    /// At most `k` positions per unit, evenly spaced (units and their order kept).
    pub fn thinned(self, k: usize) -> Sample {
        let mut out = Sample {
            units: self.units.clone(),
            ..Sample::default()
        };
        for i in 0..self.units.len() {
            let idx = self.unit_indices(i);
            let n = idx.len();
            out.unit_start.push(out.pos.len());
            let step = n.div_ceil(k.max(1)).max(1);
            for j in idx.step_by(step) {
                out.pos.push(self.pos[j]);
                out.values.push(self.values[j]);
            }
        }
        out.unit_start.push(out.pos.len());
        out
    }

    /// Positions of unit `i`.
    pub fn unit_indices(&self, i: usize) -> Range<usize> {
        self.unit_start[i]..self.unit_start[i + 1]
    }

    pub fn n_non_finite(&self) -> usize {
        self.values.iter().filter(|v| !v.is_finite()).count()
    }

    /// The distinct rows sampled.
    pub fn rows(&self) -> Vec<u64> {
        let mut rows: Vec<u64> = self.units.iter().map(|u| u.0).collect();
        rows.dedup();
        let set: BTreeSet<u64> = rows.into_iter().collect();
        set.into_iter().collect()
    }
}
