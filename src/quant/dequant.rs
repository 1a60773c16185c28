//! The driver: validates sizes against dims, then runs a type's block decoder over whole
//! tensors or row ranges (rayon over groups of blocks or rows for large outputs).

use std::ops::Range;

use rayon::prelude::*;

use super::table::{DType, Decode, Layout};

/// Largest `block_elems` of any type (K-quants); sizes the scratch block for padded rows.
pub(super) const MAX_BLOCK_ELEMS: usize = 256;

/// About this many output values per rayon task; smaller outputs are decoded on the caller's thread.
const TASK_ELEMS: usize = 1 << 15;

/// Why bytes could not be dequantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DequantError {
    /// The type has no dequantizer (IQ1/IQ2/IQ3, TQ, MXFP4; APR_Q8 for a lone block).
    #[error("values not supported for dtype {0}")]
    Unsupported(DType),
    /// `data` is not exactly the tensor's (or block's) byte count. `expected` is `u64::MAX`
    /// when the size for these dims overflows u64.
    #[error("data is {got} bytes, {dtype} with dims {dims:?} needs {expected}")]
    SizeMismatch {
        /// The tensor's dtype.
        dtype: DType,
        /// Its dims.
        dims: Vec<u64>,
        /// Bytes the dtype and dims need.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// `out` does not hold exactly the number of values produced.
    #[error("output buffer holds {got} values, {expected} needed")]
    OutputSize {
        /// Values produced.
        expected: u64,
        /// Values `out` holds.
        got: u64,
    },
    /// The requested rows are not a range inside the tensor.
    #[error("row range {start}..{end} outside {rows} rows")]
    RowRange {
        /// First row asked for.
        start: u64,
        /// One past the last row asked for.
        end: u64,
        /// Rows the tensor has.
        rows: u64,
    },
}

/// Bytes of one row of `n_cols` elements: `ceil(n_cols / block_elems) * block_bytes`.
/// `None` on overflow.
pub fn row_n_bytes(dt: DType, n_cols: u64) -> Option<u64> {
    let l = dt.row().layout;
    n_cols
        .div_ceil(l.block_elems as u64)
        .checked_mul(l.block_bytes as u64)
}

/// Bytes of a whole tensor with canonical row-major `dims` (outermost first, last dim
/// contiguous): rows = product of all dims but the last, cols = the last dim (a 0-d or 1-d
/// tensor is one row), bytes = header + rows · `row_n_bytes(cols)` (APR_Q8: 4 + n_elems).
/// Empty `dims` is a scalar (1 element). `None` when the byte or element count overflows u64.
pub fn tensor_n_bytes(dt: DType, dims: &[u64]) -> Option<u64> {
    Geometry::new(dt, dims).map(|g| g.n_bytes)
}

/// Does every scale field of one block (`d`, `dmin`, `m`, `s` …) hold a finite value?
/// True for types without per-block scales (plain floats and integers, APR_Q8 whose scale is
/// tensor-wide: see [`header_scales_finite`]). False when `block` is too short to hold a field.
pub fn block_scales_finite(dt: DType, block: &[u8]) -> bool {
    dt.row().layout.scales.iter().all(|s| s.is_finite(block))
}

/// Blocks of `data` (whole blocks of `dt`, `data.len()` a multiple of `block_bytes`) with a
/// non-finite scale field: how many, and the index of the first. Same test as
/// [`block_scales_finite`] on every block; f16 fields are tested on their bits (exponent all
/// ones) so a whole tensor is scanned at memory speed.
pub fn count_bad_scale_blocks(dt: DType, data: &[u8]) -> (u64, Option<u64>) {
    let l = dt.row().layout;
    let bb = l.block_bytes;
    if l.scales.is_empty() || bb == 0 {
        return (0, None);
    }
    // Up to two f16 fields (every block type but the f32-scaled ones): tested on their bits.
    let mut offs = [usize::MAX; 2];
    let mut fast = l.scales.len() <= 2;
    for (o, s) in offs.iter_mut().zip(l.scales) {
        match s {
            super::table::ScaleField::F16(at) if at + 2 <= bb => *o = *at,
            _ => fast = false,
        }
    }
    let bad_f16 = |b: &[u8], at: usize| {
        at != usize::MAX && u16::from_le_bytes([b[at], b[at + 1]]) & 0x7c00 == 0x7c00
    };
    let (mut n, mut first) = (0u64, None);
    for (i, b) in data.chunks_exact(bb).enumerate() {
        let bad = if fast {
            bad_f16(b, offs[0]) | bad_f16(b, offs[1])
        } else {
            !block_scales_finite(dt, b)
        };
        if bad {
            n += 1;
            first.get_or_insert(i as u64);
        }
    }
    (n, first)
}

/// Is the tensor-wide scale before the first block finite? `data` starts at the tensor's first
/// byte. True for types without a header (all but APR_Q8); false when `data` is too short.
pub fn header_scales_finite(dt: DType, data: &[u8]) -> bool {
    dt.row()
        .layout
        .header_scales
        .iter()
        .all(|s| s.is_finite(data))
}

/// Dequantizes a whole tensor. `data` is exactly the tensor's bytes ([`tensor_n_bytes`]),
/// `out.len()` its element count; values land in row-major order. Parallel for large tensors.
pub fn dequantize(
    dt: DType,
    data: &[u8],
    dims: &[u64],
    out: &mut [f32],
) -> Result<(), DequantError> {
    let decode = decoder(dt)?;
    let g = Geometry::checked(dt, data, dims)?;
    check_out(g.n_elems, out)?;
    let (header, body) = split_header(&g, data);
    g.decode_rows(decode, header, body, out, true);
    Ok(())
}

/// Dequantizes rows `rows.start..rows.end` of a tensor (rows as in [`tensor_n_bytes`]) into
/// `out` (`(end − start) · cols` values), reading only those rows' bytes (plus APR_Q8's header).
/// `data` is still the whole tensor's bytes.
pub fn dequantize_rows(
    dt: DType,
    data: &[u8],
    dims: &[u64],
    rows: Range<u64>,
    out: &mut [f32],
) -> Result<(), DequantError> {
    rows_into(dt, data, dims, rows, out, true)
}

/// [`dequantize_rows`] on the caller's thread only, whatever the size: for callers that already
/// split a tensor into tiles over the thread pool (the forward pass's linear layers), where a
/// nested parallel split of each tile would only add scheduling.
pub fn dequantize_rows_serial(
    dt: DType,
    data: &[u8],
    dims: &[u64],
    rows: Range<u64>,
    out: &mut [f32],
) -> Result<(), DequantError> {
    rows_into(dt, data, dims, rows, out, false)
}

/// Both of the above: `parallel` lets large row ranges split over the thread pool.
fn rows_into(
    dt: DType,
    data: &[u8],
    dims: &[u64],
    rows: Range<u64>,
    out: &mut [f32],
    parallel: bool,
) -> Result<(), DequantError> {
    let decode = decoder(dt)?;
    let g = Geometry::checked(dt, data, dims)?;
    if rows.start > rows.end || rows.end > g.rows {
        return Err(DequantError::RowRange {
            start: rows.start,
            end: rows.end,
            rows: g.rows,
        });
    }
    // Cannot overflow: both are at most the tensor's element / byte count.
    check_out((rows.end - rows.start) * g.cols, out)?;
    let (header, body) = split_header(&g, data);
    let byte_range = to_usize(rows.start * g.row_bytes)..to_usize(rows.end * g.row_bytes);
    g.decode_rows(decode, header, &body[byte_range], out, parallel);
    Ok(())
}

/// Dequantizes one block: `block.len() == block_bytes`, `out.len() == block_elems`.
/// APR_Q8 has no self-contained block (its scale is tensor-wide) and gives `Unsupported`.
pub fn dequantize_block(dt: DType, block: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let l = dt.row().layout;
    let Decode::Blocks(f) = l.decode else {
        return Err(DequantError::Unsupported(dt));
    };
    if block.len() != l.block_bytes {
        return Err(DequantError::SizeMismatch {
            dtype: dt,
            dims: vec![l.block_elems as u64],
            expected: l.block_bytes as u64,
            got: block.len() as u64,
        });
    }
    check_out(l.block_elems as u64, out)?;
    f(block, out);
    Ok(())
}

/// [`dequantize`] into a new `Vec` of `n_elems` values. Sizes are checked before allocating.
pub fn dequantize_to_vec(dt: DType, data: &[u8], dims: &[u64]) -> Result<Vec<f32>, DequantError> {
    decoder(dt)?;
    let g = Geometry::checked(dt, data, dims)?;
    let n = usize::try_from(g.n_elems).map_err(|_| DequantError::OutputSize {
        expected: g.n_elems,
        got: 0,
    })?;
    let mut out = vec![0.0f32; n];
    dequantize(dt, data, dims, &mut out)?;
    Ok(out)
}

fn decoder(dt: DType) -> Result<Decode, DequantError> {
    match dt.row().layout.decode {
        Decode::None => Err(DequantError::Unsupported(dt)),
        d => Ok(d),
    }
}

fn check_out(expected: u64, out: &[f32]) -> Result<(), DequantError> {
    if out.len() as u64 == expected {
        Ok(())
    } else {
        Err(DequantError::OutputSize {
            expected,
            got: out.len() as u64,
        })
    }
}

/// Only for values bounded by a slice length we hold (checked before every call).
fn to_usize(x: u64) -> usize {
    usize::try_from(x).expect("bounded by the length of a slice already checked")
}

fn split_header<'a>(g: &Geometry, data: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    data.split_at(g.layout.header_bytes)
}

/// A tensor's shape in the terms the decoders need, all counts checked against overflow.
struct Geometry {
    layout: Layout,
    rows: u64,
    cols: u64,
    row_bytes: u64,
    n_elems: u64,
    n_bytes: u64,
}

impl Geometry {
    fn new(dt: DType, dims: &[u64]) -> Option<Geometry> {
        let layout = dt.row().layout;
        let (cols, outer) = match dims.split_last() {
            Some((&last, outer)) => (last, outer),
            None => (1, dims),
        };
        let rows = outer.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        let n_elems = rows.checked_mul(cols)?;
        let row_bytes = row_n_bytes(dt, cols)?;
        let n_bytes = rows
            .checked_mul(row_bytes)?
            .checked_add(layout.header_bytes as u64)?;
        Some(Geometry {
            layout,
            rows,
            cols,
            row_bytes,
            n_elems,
            n_bytes,
        })
    }

    /// The geometry, if `data` is exactly the tensor's byte count.
    fn checked(dt: DType, data: &[u8], dims: &[u64]) -> Result<Geometry, DequantError> {
        let g = Geometry::new(dt, dims);
        let expected = g.as_ref().map_or(u64::MAX, |g| g.n_bytes);
        match g {
            Some(g) if g.n_bytes == data.len() as u64 => Ok(g),
            _ => Err(DequantError::SizeMismatch {
                dtype: dt,
                dims: dims.to_vec(),
                expected,
                got: data.len() as u64,
            }),
        }
    }

    /// Decodes consecutive whole rows: `body` holds k rows' bytes, `out` k rows' values. Large
    /// outputs are split over the thread pool when `parallel`.
    fn decode_rows(
        &self,
        decode: Decode,
        header: &[u8],
        body: &[u8],
        out: &mut [f32],
        parallel: bool,
    ) {
        if out.is_empty() {
            return;
        }
        let run = |data: &[u8], values: &mut [f32]| match decode {
            Decode::Blocks(f) => f(data, values),
            Decode::WithHeader(f) => f(header, data, values),
            Decode::None => {}
        };
        let (be, bb) = (self.layout.block_elems, self.layout.block_bytes);
        let cols = to_usize(self.cols);
        if cols.is_multiple_of(be) {
            // No padding: the rows are one run of whole blocks, split anywhere between blocks.
            if out.len() <= TASK_ELEMS || !parallel {
                run(body, out);
            } else {
                let blocks_per_task = (TASK_ELEMS / be).max(1);
                body.par_chunks(blocks_per_task * bb)
                    .zip(out.par_chunks_mut(blocks_per_task * be))
                    .for_each(|(data, values)| run(data, values));
            }
            return;
        }
        // Each row ends in a zero-padded partial block: decode it into scratch, keep the head.
        let row_bytes = to_usize(self.row_bytes);
        let full = cols / be;
        let padded_rows = |data: &[u8], values: &mut [f32]| {
            let mut scratch = [0.0f32; MAX_BLOCK_ELEMS];
            for (row, row_out) in data
                .chunks_exact(row_bytes)
                .zip(values.chunks_exact_mut(cols))
            {
                let (whole, tail) = row.split_at(full * bb);
                let (whole_out, tail_out) = row_out.split_at_mut(full * be);
                run(whole, whole_out);
                run(tail, &mut scratch[..be]);
                tail_out.copy_from_slice(&scratch[..tail_out.len()]);
            }
        };
        if out.len() <= TASK_ELEMS || !parallel {
            padded_rows(body, out);
        } else {
            let rows_per_task = (TASK_ELEMS / cols).max(1);
            body.par_chunks(rows_per_task * row_bytes)
                .zip(out.par_chunks_mut(rows_per_task * cols))
                .for_each(|(data, values)| padded_rows(data, values));
        }
    }
}
