//! The records of a file that did not read, decoded leniently around one byte, so that the report
//! of a fatal error (exit 2) shows what the bytes at its offset mean, as a finding in a readable
//! file does: the header fields, the GGUF key/value or tensor record, the APR index entry or the
//! JSON text the reader stopped in.
//!
//! Takes a path and a span; returns a neutral [`Region`] (what the record is, its decoded lines) or
//! nothing. Bounds are checked, values are not: that was the reader's job, and it failed. A walk
//! stops at the first record it cannot follow, keeping what it read of that record; nothing is
//! allocated by a header count. Must not validate, decide or print.

use std::fmt::Display;
use std::ops::Range;
use std::path::Path;

use super::Source;
use super::apr::HEADER_LEN;
use super::gguf::{DEFAULT_ALIGNMENT, ValueType};
use crate::diag::{Span, fmt_dims};
use crate::quant::DType;

/// A decoded line: `field value`, with a label (text, primary) on the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// The field's name (`magic`, a metadata key, `dims` …).
    pub field: String,
    /// Its value as text.
    pub value: String,
    /// A label on the value: its text, and whether it is the primary one.
    pub label: Option<(String, bool)>,
}

/// The record around a byte: what it is and its decoded lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// `GGUF header`, `metadata key 3 of 20`, `tensor index entry 2 of 27` …
    pub what: String,
    /// The decoded fields, in file order.
    pub lines: Vec<Line>,
}

/// The record `span` starts in, in the file at `path`, read leniently; `here` labels the field the
/// span starts in. None when the file cannot be opened, is no GGUF, APR or SafeTensors file by its
/// first bytes, or no record it can follow holds the byte.
pub fn region_at(path: &Path, span: Span, here: &str) -> Option<Region> {
    region_in(Source::open(path).ok()?.bytes(), span, here)
}

/// [`region_at`] over a file's bytes.
pub fn region_in(b: &[u8], span: Span, here: &str) -> Option<Region> {
    let at = span.offset;
    let recs = match b.get(..4)? {
        b"GGUF" => gguf(b, at),
        b"APR\0" | b"APR2" => apr(b, at),
        _ if super::looks_like_safetensors(b) => safetensors(b, at),
        _ => return None,
    };
    let rec = recs.into_iter().find(|r| r.holds(at))?;
    let primary = rec
        .fields
        .iter()
        .position(|f| at >= f.at.start && at < f.at.end.max(f.at.start + 1))
        .unwrap_or(0);
    let lines = rec
        .fields
        .into_iter()
        .enumerate()
        .map(|(i, f)| Line {
            field: f.name,
            value: f.value,
            label: (i == primary).then(|| (here.to_owned(), true)),
        })
        .collect();
    Some(Region {
        what: rec.what,
        lines,
    })
}

struct Field {
    name: String,
    value: String,
    at: Range<u64>,
}

/// One record: what it is, its byte range (as far as it was read) and its fields.
struct Rec {
    what: String,
    span: Range<u64>,
    fields: Vec<Field>,
}

impl Rec {
    fn new(what: impl Into<String>, start: u64) -> Rec {
        Rec {
            what: what.into(),
            span: start..start,
            fields: Vec::new(),
        }
    }
    /// Whether byte `at` lies in the record (a record of no bytes holds its first).
    fn holds(&self, at: u64) -> bool {
        at >= self.span.start && at < self.span.end.max(self.span.start + 1)
    }
    fn field(&mut self, name: &str, value: impl Display, at: Range<u64>) {
        self.span.end = self.span.end.max(at.end);
        self.fields.push(Field {
            name: name.to_owned(),
            value: value.to_string(),
            at,
        });
    }
}

/// A bounded little-endian reader that answers None past the end.
struct Rd<'a> {
    b: &'a [u8],
    pos: u64,
}

impl<'a> Rd<'a> {
    fn at(b: &'a [u8], pos: u64) -> Rd<'a> {
        Rd { b, pos }
    }
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(self.pos).ok()?;
        let end = start.checked_add(usize::try_from(n).ok()?)?;
        let s = self.b.get(start..end)?;
        self.pos = end as u64;
        Some(s)
    }
    fn le<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N as u64)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.le::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.le().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.le().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.le().map(u64::from_le_bytes)
    }
    /// Read with `read` and record the field's bytes in `rec`, its value shown by `show`.
    fn field<T: Copy, S: Display>(
        &mut self,
        rec: &mut Rec,
        name: &str,
        read: fn(&mut Rd<'a>) -> Option<T>,
        show: impl Fn(T) -> S,
    ) -> Option<T> {
        let start = self.pos;
        let Some(v) = read(self) else {
            // Say where the file ends rather than leave the field out.
            let len = self.b.len() as u64;
            let cut = format!("(cut off: the file ends at byte {len})");
            rec.field(name, cut, start..len.max(start + 1));
            return None;
        };
        rec.field(name, show(v), start..self.pos);
        Some(v)
    }
}

/// Text as a short quoted string (at most 77 characters shown).
fn quoted(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.chars().count() > 80 {
        format!("{:?}…", s.chars().take(77).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// A GGUF length-prefixed string: (its bytes, the range of length and bytes).
fn gguf_str<'a>(r: &mut Rd<'a>) -> Option<(&'a [u8], Range<u64>)> {
    let start = r.pos;
    let n = r.u64()?;
    Some((r.take(n)?, start..r.pos))
}

/// A GGUF value of type `t` as text; None where it runs past the end.
fn gguf_value(r: &mut Rd<'_>, t: ValueType) -> Option<String> {
    use ValueType::*;
    Some(match t {
        U8 => r.u8()?.to_string(),
        I8 => (r.u8()? as i8).to_string(),
        U16 => r.u16()?.to_string(),
        I16 => (r.u16()? as i16).to_string(),
        U32 => r.u32()?.to_string(),
        I32 => (r.u32()? as i32).to_string(),
        U64 => r.u64()?.to_string(),
        I64 => (r.u64()? as i64).to_string(),
        F32 => crate::diag::fmt_float(f32::from_bits(r.u32()?) as f64),
        F64 => crate::diag::fmt_float(f64::from_bits(r.u64()?)),
        Bool => match r.u8()? {
            0 => "false".into(),
            1 => "true".into(),
            b => format!("{b} (neither 0 nor 1)"),
        },
        String => quoted(gguf_str(r)?.0),
        Array => {
            let elem = r.u32()?;
            let len = r.u64()?;
            let et = ValueType::from_id(elem);
            match et {
                Some(String) => {
                    // Each element is at least 8 bytes: the loop ends with the file.
                    for _ in 0..len {
                        gguf_str(r)?;
                    }
                }
                Some(e) if e != Array => {
                    r.take(len.checked_mul(e.min_bytes())?)?;
                }
                _ => return Some(format!("array of {len}, element type id {elem}")),
            }
            format!("array of {len} {}", et.map_or("?", |e| e.ggml_name()))
        }
    })
}

/// GGUF: the header, and the key/value record or tensor info holding `at` if the walk reaches it.
fn gguf(b: &[u8], at: u64) -> Vec<Rec> {
    let mut recs = Vec::new();
    let mut r = Rd::at(b, 0);
    let mut h = Rec::new("GGUF header", 0);
    h.field("magic", "GGUF", 0..4);
    r.pos = 4;
    // Field by field, to the first one the file cuts off.
    let counts = (|| {
        r.field(&mut h, "version", Rd::u32, |v| v)?;
        let n_tensors = r.field(&mut h, "tensors", Rd::u64, |v| v)?;
        let n_kv = r.field(&mut h, "keys", Rd::u64, |v| v)?;
        Some((n_tensors, n_kv))
    })();
    recs.push(h);
    let Some((n_tensors, n_kv)) = counts else {
        return recs;
    };
    // Where the data section starts needs `general.alignment` (None: not a power-of-two u32).
    let mut alignment = Some(DEFAULT_ALIGNMENT);
    let kvs_done = walk(&mut recs, &mut r, n_kv, "metadata key", at, |r, rec| {
        let (key, at) = gguf_str(r)?;
        let key = String::from_utf8_lossy(key).into_owned();
        let type_at = r.pos;
        let tid = r.u32()?;
        let Some(t) = ValueType::from_id(tid) else {
            rec.field(&key, format!("value type id {tid}"), at.start..r.pos);
            return None;
        };
        if key == "general.alignment" {
            alignment = match t {
                ValueType::U32 => Rd::at(r.b, r.pos)
                    .u32()
                    .filter(|a| a.is_power_of_two())
                    .map(u64::from),
                _ => None,
            };
        }
        let value = gguf_value(r, t);
        let shown = value
            .clone()
            .unwrap_or_else(|| format!("{} (runs past the end)", t.ggml_name()));
        rec.field(&key, shown, at.start..r.pos.max(type_at + 4));
        value.map(drop)
    });
    if kvs_done {
        // The offset field of the last record read, and how many were read.
        let (mut offset, mut n_read) = (None, 0u64);
        let before = recs.len();
        walk(&mut recs, &mut r, n_tensors, "tensor info", at, |r, rec| {
            offset = None;
            n_read += 1;
            let (name, at) = gguf_str(r)?;
            rec.field("name", quoted(name), at);
            let n_dims = r.field(rec, "n_dims", Rd::u32, |v| v)?;
            if n_dims > 4 {
                return None;
            }
            let ne_at = r.pos;
            let mut ne = Vec::new();
            for _ in 0..n_dims {
                ne.push(r.u64()? as i64);
            }
            let text = format!(
                "[{}]",
                ne.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            );
            rec.field("ne", text, ne_at..r.pos);
            r.field(rec, "dtype", Rd::u32, |id| match DType::from_ggml_id(id) {
                Some(d) => format!("{} (type {id})", d.name()),
                None => format!("type {id}"),
            })?;
            offset = Some(r.field(rec, "offset", Rd::u64, |o| {
                format!("{o} (from the start of the data section)")
            })?);
            Some(())
        });
        // The record holding `at` ends the walk; its offset is shown as a file byte, which needs
        // the rest of the tensor infos read to where the data section starts.
        let pushed = recs.len() > before;
        let held = recs.last_mut().filter(|_| pushed);
        if let (Some(rec), Some(o)) = (held, offset) {
            let start = alignment.and_then(|a| {
                let end = skip_tensor_infos(&mut r, n_tensors.saturating_sub(n_read))?;
                end.checked_next_multiple_of(a)
            });
            let shown = match (start, start.and_then(|s| s.checked_add(o))) {
                (Some(_), Some(byte)) => format!("byte {byte} (data section + {o})"),
                (Some(_), None) => format!("{o} (from the start of the data section, past 2^64)"),
                (None, _) if alignment.is_none() => format!(
                    "{o} (from the start of the data section; `general.alignment` is no power-of-two u32)"
                ),
                (None, _) => format!(
                    "{o} (from the start of the data section, whose start the file cuts off)"
                ),
            };
            if let Some(f) = rec.fields.iter_mut().find(|f| f.name == "offset") {
                f.value = shown;
            }
        }
    }
    recs
}

/// Read past `count` tensor infos; the byte after the last, or None where the file cuts one off
/// (each record is at least 24 bytes, so a hostile count ends with the file).
fn skip_tensor_infos(r: &mut Rd<'_>, count: u64) -> Option<u64> {
    for _ in 0..count {
        gguf_str(r)?;
        let n_dims = r.u32()?;
        if n_dims > 4 {
            return None;
        }
        r.take(8 * u64::from(n_dims))?;
        r.u32()?;
        r.u64()?;
    }
    Some(r.pos)
}

/// Read up to `count` records (`what 1 of count` …) with `read`, each as far as it can be read,
/// and keep the one that holds byte `at`. Records are consecutive, so the walk stops there, past
/// `at`, or at the first record it cannot follow; whether the next records may still hold `at`.
fn walk<'a>(
    recs: &mut Vec<Rec>,
    r: &mut Rd<'a>,
    count: u64,
    what: &str,
    at: u64,
    mut read: impl FnMut(&mut Rd<'a>, &mut Rec) -> Option<()>,
) -> bool {
    for i in 0..count {
        if r.pos > at {
            return false;
        }
        let mut rec = Rec::new(format!("{what} {} of {count}", i + 1), r.pos);
        let done = read(r, &mut rec);
        if rec.holds(at) {
            recs.push(rec);
            return false;
        }
        if done.is_none() {
            return false;
        }
    }
    true
}

/// APR v2: the header fields, the metadata (its JSON text around `at`) and the index entry holding
/// `at` if the walk reaches it.
fn apr(b: &[u8], at: u64) -> Vec<Rec> {
    let mut recs = Vec::new();
    let mut r = Rd::at(b, 0);
    let mut h = Rec::new("APR header", 0);
    let magic = r
        .take(4)
        .map(|m| String::from_utf8_lossy(m).replace('\0', "\\0"));
    h.field("magic", magic.unwrap_or_default(), 0..4);
    // Field by field, to the first one the file cuts off.
    let fields = (|| {
        r.field(&mut h, "version", Rd::u16, |v| {
            format!("{}.{}", v & 0xff, v >> 8)
        })?;
        r.field(&mut h, "flags", Rd::u16, |v| {
            format!("{v:#06x} [{}]", super::apr::flags::names(v).join(" "))
        })?;
        let count = r.field(&mut h, "tensors", Rd::u32, |v| v)?;
        let meta = r.field(
            &mut h,
            "metadata",
            |r| Some((r.u64()?, r.u32()?)),
            |(off, size)| {
                let end = off.saturating_add(size as u64);
                format!("bytes {off}..{end} ({size} bytes)")
            },
        )?;
        let index = r.field(&mut h, "index", Rd::u64, |v| format!("byte {v}"))?;
        let data = r.field(&mut h, "data", Rd::u64, |v| format!("byte {v}"))?;
        let computed = b.get(..HEADER_LEN as usize).map(super::apr::header_crc);
        r.field(&mut h, "crc", Rd::u32, |v| {
            format!(
                "{v:#010x} (the header gives {:#010x})",
                computed.unwrap_or_default()
            )
        })?;
        Some((count, meta, index, data))
    })();
    recs.push(h);
    let Some((count, (off, size), index, data)) = fields else {
        return recs;
    };
    let meta_end = off.saturating_add(size as u64).min(b.len() as u64);
    if off < meta_end {
        let mut m = Rec::new("APR metadata", off);
        m.field("json", json_around(b, at, off..meta_end), off..meta_end);
        recs.push(m);
    }
    let end = data.min(b.len() as u64);
    let mut r = Rd::at(b.get(..end as usize).unwrap_or(b), index);
    walk(
        &mut recs,
        &mut r,
        count as u64,
        "tensor index entry",
        at,
        |r, rec| {
            let start = r.pos;
            let n = r.u16()?;
            let name = r.take(n as u64)?;
            rec.field("name", quoted(name), start..r.pos);
            let code = r.field(rec, "dtype", Rd::u8, |c| c)?;
            if let Some(d) = rec.fields.last_mut() {
                if let Some(t) = DType::apr_candidates(code as u32).next() {
                    d.value = format!("{} (code {code})", t.name());
                } else {
                    d.value = format!("code {code}");
                }
            }
            let ndim = r.field(rec, "ndim", Rd::u8, |v| v)?;
            if ndim > 8 {
                return None;
            }
            let dims_at = r.pos;
            let mut dims = Vec::new();
            for _ in 0..ndim {
                dims.push(r.u64()?);
            }
            rec.field("dims", fmt_dims(&dims), dims_at..r.pos);
            let data_at = r.pos;
            let offset = r.u64()?;
            let size = r.u64()?;
            rec.field(
                "data",
                format!("offset {offset}, size {size}"),
                data_at..r.pos,
            );
            Some(())
        },
    );
    recs
}

/// SafeTensors: the header length and the JSON header text around `at`.
fn safetensors(b: &[u8], at: u64) -> Vec<Rec> {
    let mut recs = Vec::new();
    let mut r = Rd::at(b, 0);
    let mut h = Rec::new("SafeTensors header", 0);
    let Some(n) = r.field(&mut h, "length", Rd::u64, |n| format!("{n} bytes of JSON")) else {
        return recs;
    };
    let end = n.saturating_add(8).min(b.len() as u64);
    h.field("json", json_around(b, at, 8..end), 8..end);
    recs.push(h);
    recs
}

/// The JSON text of `within` around `at` (up to 30 bytes either side, quoted), or its extent when
/// `at` is outside it.
fn json_around(b: &[u8], at: u64, within: Range<u64>) -> String {
    if !within.contains(&at) {
        return format!("JSON, bytes {}..{}", within.start, within.end);
    }
    let from = at.saturating_sub(30).max(within.start);
    let to = at.saturating_add(30).min(within.end);
    let text = b
        .get(from as usize..to as usize)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    format!("{text:?} (bytes {from}..{to})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: &Region) -> Vec<(&str, &str, bool)> {
        r.lines
            .iter()
            .map(|l| (l.field.as_str(), l.value.as_str(), l.label.is_some()))
            .collect()
    }

    #[test]
    fn a_header_cut_short_shows_the_fields_it_has() {
        // Magic, version 3, then 4 of the tensor count's 8 bytes.
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend([0xff; 4]);
        let r = region_in(&b, Span::at(8), "here").unwrap();
        assert_eq!(r.what, "GGUF header");
        assert_eq!(
            fields(&r),
            [
                ("magic", "GGUF", false),
                ("version", "3", false),
                ("tensors", "(cut off: the file ends at byte 12)", true)
            ]
        );
    }

    #[test]
    fn a_hostile_count_is_walked_only_as_far_as_the_bytes_go() {
        // 2^64 - 1 keys claimed, one present and a second cut short: the walk ends with the file.
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(u64::MAX.to_le_bytes());
        let first = b.len() as u64;
        b.extend(1u64.to_le_bytes());
        b.extend(b"k");
        b.extend(4u32.to_le_bytes());
        b.extend(7u32.to_le_bytes());
        let second = b.len() as u64;
        b.extend(1u64.to_le_bytes());
        b.extend(b"x");
        b.extend(99u32.to_le_bytes());
        let r = region_in(&b, Span::at(first + 9), "here").unwrap();
        assert_eq!(r.what, format!("metadata key 1 of {}", u64::MAX));
        assert_eq!(fields(&r), [("k", "7", true)]);
        let r = region_in(&b, Span::at(second + 9), "here").unwrap();
        assert_eq!(fields(&r), [("x", "value type id 99", true)]);
        // Past every record: nothing to show.
        assert_eq!(region_in(&b, Span::at(b.len() as u64 + 10), "here"), None);
    }

    /// A GGUF with `general.alignment` = `align` and two F32 tensor infos `a` [4] at offset 0 and
    /// `b` [4] at `b_offset`; where the second record starts.
    fn two_tensor_gguf(align: u32, b_offset: u64) -> (Vec<u8>, u64) {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        let key = b"general.alignment";
        b.extend((key.len() as u64).to_le_bytes());
        b.extend(key);
        b.extend(4u32.to_le_bytes()); // u32
        b.extend(align.to_le_bytes());
        let mut second = 0;
        for (name, offset) in [(b"a", 0u64), (b"b", b_offset)] {
            second = b.len() as u64;
            b.extend(1u64.to_le_bytes());
            b.extend(name);
            b.extend(1u32.to_le_bytes());
            b.extend(4u64.to_le_bytes());
            b.extend(0u32.to_le_bytes()); // F32
            b.extend(offset.to_le_bytes());
        }
        (b, second)
    }

    #[test]
    fn a_tensor_info_offset_is_shown_as_a_file_byte() {
        // Header 24 + key record 8 + 17 + 4 + 4 = 57, two tensor infos of 8 + 1 + 4 + 8 + 4 + 8 = 33
        // bytes each: the infos end at byte 123, so the data section starts at 128 (alignment 64)
        // or 256 (alignment 256).
        let (b, second) = two_tensor_gguf(64, 16);
        assert_eq!(b.len(), 123);
        let r = region_in(&b, Span::at(second), "here").unwrap();
        assert_eq!(r.what, "tensor info 2 of 2");
        let offset = fields(&r)
            .into_iter()
            .find(|f| f.0 == "offset")
            .map(|f| f.1.to_owned());
        assert_eq!(offset.as_deref(), Some("byte 144 (data section + 16)"));
        // The first record's offset, past which the walk must still read the second to find where
        // the data section starts.
        let (b, _) = two_tensor_gguf(256, 16);
        let r = region_in(&b, Span::at(57), "here").unwrap();
        assert_eq!(r.what, "tensor info 1 of 2");
        assert_eq!(r.lines.last().unwrap().value, "byte 256 (data section + 0)");
        // Infos cut short: where the data section starts is unknown.
        let (b, _) = two_tensor_gguf(32, 16);
        let r = region_in(&b[..110], Span::at(57), "here").unwrap();
        assert_eq!(
            r.lines.last().unwrap().value,
            "0 (from the start of the data section, whose start the file cuts off)"
        );
    }
}
