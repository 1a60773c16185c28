//! Deterministic samples of a tensor, read a few blocks at a time.
//!
//! A tensor is seen as `rows × cols` (canonical dims: all but the last multiplied, the last
//! contiguous). Its bytes are read in *units*: one quant block for block types of ≥ 32 elements,
//! 32 elements for plain floats. A [`Reader`] decodes the units asked for (and caches them), so a
//! sample costs its units' bytes and nothing else.
//!
//! [`plan`] picks the units of the standard sample: two clusters of consecutive rows, the first
//! rows and the last rows of the tensor (so both ends of the data are checked), each row with a
//! few units at staggered columns, about [`BUDGET_BYTES`] in all. Clustered, not spread: a
//! cluster is one read, and on a cold page cache one range the kernel fetches
//! (`numeric::prefetch`); one tensor's last rows and the next tensor's first rows are
//! neighbours, so a file costs about one range per tensor. (When the sample was read through
//! the memory map, rows spread over a 1 GB model touched thousands of 64 KiB fault-around
//! windows: 1.4 GB resident, measured.)
//!
//! The bytes are not read through the map: a [`Reader`] reads the units it needs with positioned
//! reads ([`ModelView::read_tensor_range`]) into its own buffer, one read per cluster
//! ([`Reader::load`]), so the pages are never mapped into the process, and there is no page fault
//! and nothing to release or unmap afterwards. A unit outside what was loaded is read when asked.

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

/// Units closer than this are read together by [`Reader::load`] (one read of the gap costs less
/// than another system call).
const LOAD_GAP: u64 = 4096;

/// Reads units of one tensor's bytes, decoded as `dtype` (its label, or a reinterpretation).
pub struct Reader<'v> {
    view: &'v ModelView,
    tensor: &'v TensorView,
    /// Bytes of the tensor's data.
    n_bytes: u64,
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
    /// Byte ranges of the data read so far, `(start, end, where in buf)`, in the order read.
    loaded: Vec<(u64, u64, usize)>,
    buf: Vec<u8>,
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
    pub fn new(view: &'v ModelView, t: &'v TensorView, dtype: DType) -> Option<Reader<'v>> {
        let n_bytes = t.data.len;
        if quant::tensor_n_bytes(dtype, &t.dims) != Some(n_bytes) || n_bytes == 0 {
            return None;
        }
        let (rows, cols) = t.rows_cols();
        let (block_elems, block_bytes) = (dtype.block_elems(), dtype.block_bytes());
        let row_bytes = quant::row_n_bytes(dtype, cols)?;
        let blocks_per_row = cols.div_ceil(block_elems);
        Some(Reader {
            view,
            tensor: t,
            n_bytes,
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
            loaded: Vec::new(),
            buf: Vec::new(),
            values: Vec::new(),
            cache: HashMap::new(),
            last: None,
            touched: BTreeSet::new(),
            touched_extra: 0,
        })
    }

    /// Read the bytes of `units` now (and the tensor-wide header, if the dtype has one), a
    /// cluster of neighbouring units per read. Reads nothing that is already loaded. Not needed
    /// for correctness (a unit not loaded is read when asked), only for fewer system calls.
    pub fn load(&mut self, units: &[(u64, u64)]) {
        let mut ranges: Vec<(u64, u64)> = units
            .iter()
            .filter(|&&(row, unit)| row < self.rows && unit < self.units_per_row())
            .map(|&(row, unit)| {
                let r = self.unit_range(row, unit);
                (r.start as u64, r.end as u64)
            })
            .chain((self.header_bytes > 0).then_some((0, self.header_bytes)))
            .filter(|&(a, b)| self.find(a, b).is_none())
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(LOAD_GAP) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        for (a, b) in merged {
            self.read(a, b);
        }
    }

    /// Where bytes `start..end` of the data are in `buf`, if loaded.
    fn find(&self, start: u64, end: u64) -> Option<Range<usize>> {
        self.loaded
            .iter()
            .find(|&&(a, b, _)| a <= start && end <= b)
            .map(|&(a, _, at)| {
                let from = at + (start - a) as usize;
                from..from + (end - start) as usize
            })
    }

    /// Read bytes `start..end` of the data onto the end of `buf`; where they are, or None when
    /// the read failed (the file keeps the failure for the pipeline's report).
    fn read(&mut self, start: u64, end: u64) -> Option<Range<usize>> {
        let at = self.buf.len();
        let n = end.checked_sub(start)? as usize;
        self.buf.resize(at + n, 0);
        if self
            .view
            .read_tensor_range(self.tensor, start..end, &mut self.buf[at..])
            .is_err()
        {
            self.buf.truncate(at);
            return None;
        }
        self.loaded.push((start, end, at));
        Some(at..at + n)
    }

    /// Bytes `range` of the data, read now if not loaded yet; empty when it cannot be read.
    fn bytes(&mut self, range: Range<usize>) -> &[u8] {
        let (start, end) = (range.start as u64, range.end as u64);
        let at = match self.find(start, end) {
            Some(r) => Some(r),
            None => self.read(start, end),
        };
        match at {
            Some(r) => &self.buf[r],
            None => &[],
        }
    }

    pub fn n_elems(&self) -> u64 {
        self.rows * self.cols
    }
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
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

    /// The raw bytes of a unit (counted as touched; empty when they cannot be read).
    pub fn unit_bytes(&mut self, row: u64, unit: u64) -> &[u8] {
        self.touched.insert((row, unit));
        let r = self.unit_range(row, unit);
        if r.end as u64 > self.n_bytes {
            return &[];
        }
        self.bytes(r)
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
        // Read (and counted as touched) first; then found in the buffer beside the header.
        self.unit_bytes(row, unit);
        let header = self.header_bytes as usize;
        let header_at = if header > 0 {
            Some(
                self.find(0, header as u64)
                    .or_else(|| self.read(0, header as u64))?,
            )
        } else {
            None
        };
        let r = self.unit_range(row, unit);
        let at = self.find(r.start as u64, r.end as u64)?;
        let bytes = &self.buf[at];
        let n_blocks = bytes.len() as u64 / self.block_bytes;
        let n = (n_blocks * self.block_elems) as usize;
        let start = self.values.len();
        self.values.resize(start + n, 0.0);
        let out = &mut self.values[start..];
        let ok = match header_at {
            None => quant::dequantize(self.dtype, bytes, &[n as u64], out),
            Some(h) => {
                let mut joined = Vec::with_capacity(header + bytes.len());
                joined.extend_from_slice(&self.buf[h]);
                joined.extend_from_slice(bytes);
                quant::dequantize(self.dtype, &joined, &[n as u64], out)
            }
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
        if self.header_bytes > 0 {
            let dtype = self.dtype;
            let header = self.bytes(0..self.header_bytes as usize);
            if !quant::header_scales_finite(dtype, header) {
                return Some(0);
            }
        }
        for u in 0..self.units_per_row() {
            self.touched.insert((row, u));
        }
        let start = (self.header_bytes + row * self.row_bytes) as usize;
        let (dtype, bb) = (self.dtype, self.block_bytes as usize);
        self.bytes(start..start + self.row_bytes as usize)
            .chunks_exact(bb)
            .position(|b| !quant::block_scales_finite(dtype, b))
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

/// The units of `b` that hold the columns of `a`'s `units` (same rows): the units themselves when
/// both have one dtype, else those of `b`'s dtype covering the same columns. For [`Reader::load`].
pub fn same_columns(a: &Reader<'_>, b: &Reader<'_>, units: &[(u64, u64)]) -> Vec<(u64, u64)> {
    if a.dtype == b.dtype && a.cols == b.cols {
        return units.to_vec();
    }
    let ue = a.unit_elems();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(units.len());
    for &(row, unit) in units {
        let first = unit.saturating_mul(ue);
        let last = first.saturating_add(ue).min(a.cols.min(b.cols));
        if first >= last {
            continue;
        }
        for u in b.unit_of(first)..=b.unit_of(last - 1) {
            if out.last() != Some(&(row, u)) {
                out.push((row, u));
            }
        }
    }
    out
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
    let n = a.n_bytes() as usize;
    if n != b.n_bytes() as usize {
        return out;
    }
    // One read of each tensor whole (both small): every unit below is then in the buffer.
    let (da, db) = (a.bytes(0..n).to_vec(), b.bytes(0..n));
    if da == db {
        return out;
    }
    for row in 0..a.rows {
        for u in 0..a.units_per_row() {
            let r = a.unit_range(row, u);
            if da.get(r.clone()) != db.get(r) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::writer::generate::{TINY, gguf_model};

    /// A model written to a file and opened as the CLI opens it (mapped, read by position).
    fn opened(dt: DType, dir: &std::path::Path) -> ModelView {
        let path = dir.join(format!("m-{dt}.gguf"));
        gguf_model(&TINY, dt, 3).write(&path).expect("writes");
        ModelView::open(&path).expect("opens")
    }

    /// Units read by position, loaded a cluster at a time or one by one when asked, are the bytes
    /// the map holds, and decode to the same values.
    #[test]
    fn positioned_reads_give_the_mapped_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = opened(DType::Q4_K, dir.path());
        let mut units_checked = 0;
        for t in &v.tensors {
            let (Some(mut loaded), Some(mut lazy)) =
                (Reader::new(&v, t, t.dtype), Reader::new(&v, t, t.dtype))
            else {
                continue;
            };
            let units = plan(&loaded, 0..loaded.rows);
            loaded.load(&units);
            // Two clusters: at most two reads (and one for a tensor-wide header).
            assert!(loaded.loaded.len() <= 3, "{}: {:?}", t.name, loaded.loaded);
            let mapped = v.bytes(t);
            for &(row, unit) in &units {
                let r = loaded.unit_range(row, unit);
                assert_eq!(
                    loaded.unit_bytes(row, unit),
                    &mapped[r.clone()],
                    "{}",
                    t.name
                );
                assert_eq!(lazy.unit_bytes(row, unit), &mapped[r], "{}", t.name);
                let a: Vec<u32> = loaded
                    .unit_values(row, unit)
                    .expect("values")
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                let b: Vec<u32> = lazy
                    .unit_values(row, unit)
                    .expect("values")
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                assert_eq!(a, b, "{}", t.name);
                units_checked += 1;
            }
            assert_eq!(loaded.touched(), lazy.touched());
        }
        assert!(units_checked > 100, "{units_checked}");
        assert!(v.read_failures().is_empty());
    }

    /// Another dtype's units for the same columns: a Q4_K unit (256 values) is eight F32 units.
    #[test]
    fn same_columns_maps_units_across_dtypes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (q, f) = (
            opened(DType::Q4_K, dir.path()),
            opened(DType::F32, dir.path()),
        );
        // Rows of 768: three Q4_K units, 24 F32 units.
        let name = "blk.0.ffn_down.weight";
        let (tq, tf) = (q.tensor(name).expect("q"), f.tensor(name).expect("f"));
        let (rq, rf) = (
            Reader::new(&q, tq, tq.dtype).expect("q"),
            Reader::new(&f, tf, tf.dtype).expect("f"),
        );
        assert_eq!(rq.unit_elems(), 256);
        assert_eq!(rf.unit_elems(), 32);
        let want: Vec<(u64, u64)> = (0..8).map(|u| (5, u)).collect();
        assert_eq!(same_columns(&rq, &rf, &[(5, 0)]), want);
        assert_eq!(
            same_columns(&rq, &rq, &[(5, 0), (6, 0)]),
            vec![(5, 0), (6, 0)]
        );
        let back = same_columns(&rf, &rq, &[(5, 0), (5, 1), (5, 8)]);
        assert_eq!(back, vec![(5, 0), (5, 1)]);
    }
}
