//! Strict APR v2 reader, as real files have it (`shared/spec/apr-v2.md`).
//!
//! Checks the 64-byte header and its CRC, the flags, the JSON metadata (duplicate keys kept and
//! reported), the packed index (sorted, unique, every entry in bounds, where parsing stopped), tensor
//! bounds, 64-byte alignment, non-overlap (not monotonic order), the footer, and resolves every
//! tensor's dtype from its code AND its byte size, keeping what aprender and realizar would read.
//!
//! Takes a `Source`; returns an `AprFile` (records in file order, with byte spans) and reader findings,
//! or the first `ReadError`. Must not interpret roles or config.

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::diag::{Finding, ReadError, Severity, Span};
use crate::format::crc32;
use crate::format::cursor::{Cursor, pad_to};
use crate::format::lints;
use crate::format::source::Source;
use crate::quant::{self, DType};

pub const MAGIC: &[u8; 4] = b"APR\0";
pub const HEADER_LEN: u64 = 64;
pub const ALIGN: u64 = 64;
/// aprender's writers cap ndim at 8.
pub const MAX_DIMS: u8 = 8;
/// Files up to this size get their footer CRC verified on read; larger ones on request
/// (`verify_footer`), since that reads every byte.
pub const AUTO_VERIFY_FOOTER_MAX: u64 = 32 << 20;

pub mod flags {
    pub const LZ4: u16 = 0x0001;
    pub const ZSTD: u16 = 0x0002;
    pub const ENCRYPTED: u16 = 0x0004;
    pub const SIGNED: u16 = 0x0008;
    pub const SHARDED: u16 = 0x0010;
    pub const QUANTIZED: u16 = 0x0020;
    pub const HAS_FILTERBANK: u16 = 0x0040;
    pub const HAS_MODEL_CARD: u16 = 0x0080;
    pub const STREAMING: u16 = 0x0100;
    pub const HAS_VOCAB: u16 = 0x0200;
    pub const LAYOUT_ROW_MAJOR: u16 = 0x0400;
    pub const LAYOUT_COLUMN_MAJOR: u16 = 0x0800;
    pub const NAMES: &[(u16, &str)] = &[
        (LZ4, "LZ4"),
        (ZSTD, "ZSTD"),
        (ENCRYPTED, "ENCRYPTED"),
        (SIGNED, "SIGNED"),
        (SHARDED, "SHARDED"),
        (QUANTIZED, "QUANTIZED"),
        (HAS_FILTERBANK, "HAS_FILTERBANK"),
        (HAS_MODEL_CARD, "HAS_MODEL_CARD"),
        (STREAMING, "STREAMING"),
        (HAS_VOCAB, "HAS_VOCAB"),
        (LAYOUT_ROW_MAJOR, "LAYOUT_ROW_MAJOR"),
        (LAYOUT_COLUMN_MAJOR, "LAYOUT_COLUMN_MAJOR"),
    ];
    pub fn names(bits: u16) -> Vec<&'static str> {
        NAMES
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub magic: [u8; 4],
    pub version_major: u8,
    pub version_minor: u8,
    pub flags: u16,
    pub tensor_count: u32,
    pub metadata_offset: u64,
    pub metadata_size: u32,
    pub tensor_index_offset: u64,
    pub data_offset: u64,
    pub header_crc: u32,
    pub computed_crc: u32,
}

/// How a dtype code was resolved.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DtypeResolution {
    pub code: u8,
    /// The type this tensor's bytes are taken as (code and byte size agree).
    pub dtype: DType,
    /// What aprender's loader reads this code as (None: it rejects the code).
    pub aprender: Option<DType>,
    /// What realizar's loader reads this code as (None: it rejects the code).
    pub realizar: Option<DType>,
    /// The byte size matches `dtype` for the dims.
    pub size_ok: bool,
}

impl DtypeResolution {
    /// aprender and realizar read the code differently (for a tensor of this size).
    pub fn is_ambiguous(&self) -> bool {
        self.aprender != self.realizar
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub name: String,
    pub resolution: DtypeResolution,
    /// As stored: outermost first, last dim contiguous.
    pub dims: Vec<u64>,
    /// Relative to `data_offset`.
    pub offset: u64,
    /// Payload bytes (unpadded).
    pub n_bytes: u64,
    pub record: Span,
    pub dims_span: Span,
}

impl IndexEntry {
    pub fn dtype(&self) -> DType {
        self.resolution.dtype
    }
    pub fn data_span(&self, data_offset: u64) -> Span {
        Span::new(data_offset.saturating_add(self.offset), self.n_bytes)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Footer {
    Absent,
    Valid,
    Invalid {
        stored: u32,
        computed: u32,
    },
    /// Present but not checked (large file; see `AUTO_VERIFY_FOOTER_MAX`).
    Unverified,
}

/// One top-level metadata key: its raw JSON text, kept in file order (duplicates included).
#[derive(Clone, Debug)]
pub struct MetaEntry {
    pub key: String,
    pub raw: RawJson,
}

/// The text of one JSON value, as it stands in the file (validated when the metadata was read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// The value's JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

impl MetaEntry {
    pub fn parse(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.raw.get()).ok()
    }
}

#[derive(Clone, Debug)]
pub struct AprFile {
    pub source: Source,
    pub header: Header,
    pub metadata: Vec<MetaEntry>,
    pub metadata_span: Span,
    pub tensors: Vec<IndexEntry>,
    pub index_span: Span,
    pub footer: Footer,
    pub findings: Vec<Finding>,
}

impl AprFile {
    /// The value a JSON reader that lets the last duplicate win would see (as upstream does).
    pub fn get(&self, key: &str) -> Option<&MetaEntry> {
        self.metadata.iter().rev().find(|e| e.key == key)
    }
    pub fn get_value(&self, key: &str) -> Option<serde_json::Value> {
        self.get(key)
            .and_then(|e| e.parse())
            .filter(|v| !v.is_null())
    }
    pub fn tensor(&self, name: &str) -> Option<&IndexEntry> {
        self.tensors.iter().find(|t| t.name == name)
    }
    pub fn tensor_bytes(&self, t: &IndexEntry) -> &[u8] {
        let s = t.data_span(self.header.data_offset);
        self.source.slice(s.offset, s.len).unwrap_or(&[])
    }
    /// CRC-32 of every byte but the last four, against the last four. Reads the whole file.
    pub fn verify_footer(&self) -> Footer {
        match self.footer {
            Footer::Absent => Footer::Absent,
            _ => {
                // In 16 MiB chunks, each released once hashed, so a 1 GB file does not stay resident.
                let bytes = self.source.bytes();
                let n = bytes.len();
                if n < 4 {
                    return Footer::Absent;
                }
                let body = &bytes[..n - 4];
                let mut crc = 0u32;
                for (i, chunk) in body.chunks(16 << 20).enumerate() {
                    crc = crc32::update(crc, chunk);
                    self.source
                        .release(Span::new((i as u64) << 24, chunk.len() as u64));
                }
                let stored =
                    u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
                if stored == crc {
                    Footer::Valid
                } else {
                    Footer::Invalid {
                        stored,
                        computed: crc,
                    }
                }
            }
        }
    }
}

fn footer_check(bytes: &[u8]) -> Footer {
    let n = bytes.len();
    if n < 4 {
        return Footer::Absent;
    }
    let stored = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
    let computed = crc32::crc32(&bytes[..n - 4]);
    if stored == computed {
        Footer::Valid
    } else {
        Footer::Invalid { stored, computed }
    }
}

/// The output matrix's names (Hugging Face `lm_head.weight`, GGUF `output.weight`): the only
/// tensor aprender writes as a 0-byte tied-embedding placeholder (apr-v2.md, "Tied embeddings").
pub fn is_output_name(name: &str) -> bool {
    matches!(name, "lm_head.weight" | "output.weight")
}

/// Header CRC: CRC-32 over bytes 0..40 followed by 44..64.
pub fn header_crc(header: &[u8]) -> u32 {
    let c = crc32::update(0, &header[..40]);
    crc32::update(c, &header[44..64])
}

/// What each loader reads a dtype code as, for a tensor of `n_elems` elements and `size` bytes.
/// Returns (resolved, aprender, realizar); None when the code is unknown to both.
pub fn resolve_dtype(code: u8, dims: &[u64], size: u64) -> Option<DtypeResolution> {
    use DType::*;
    let fits = |d: DType| quant::tensor_n_bytes(d, dims) == Some(size);
    let (aprender, realizar): (Option<DType>, Option<DType>) = match code {
        0 => (Some(F32), Some(F32)),
        1 => (Some(F16), Some(F16)),
        2 => (None, Some(Q4_0)),
        3 => (Some(F64), Some(Q4_1)),
        4 => (Some(I32), None),
        5 => (Some(I64), None),
        6 => (Some(I8), Some(Q5_0)),
        7 => (Some(U8), Some(Q5_1)),
        8 => (Some(AprQ4), Some(if fits(Q8_0) { Q8_0 } else { AprQ4 })),
        9 => (Some(AprQ8), Some(AprQ8)),
        10 => (None, Some(Q2_K)),
        11 => (None, Some(Q3_K)),
        12 => (Some(Q4_K), Some(Q4_K)),
        13 => (None, Some(Q5_K)),
        14 => (Some(Q6_K), Some(Q6_K)),
        30 => (Some(BF16), Some(BF16)),
        128 => (Some(AprQ4), Some(AprQ4)),
        129 => (Some(AprQ8), Some(AprQ8)),
        c if c < 32 => {
            // Other GGML ids: neither loader reads them, but the bytes may still be GGML blocks.
            let d = DType::from_ggml_id(c as u32)?;
            return Some(DtypeResolution {
                code,
                dtype: d,
                aprender: None,
                realizar: None,
                size_ok: fits(d),
            });
        }
        _ => return None,
    };
    // Code 2: old aprender wrote BF16 under it.
    let mut candidates: Vec<DType> = aprender.into_iter().chain(realizar).collect();
    if code == 2 {
        candidates.push(BF16);
    }
    let dtype = candidates
        .iter()
        .copied()
        .find(|&d| fits(d))
        .or(realizar)
        .or(aprender)?;
    Some(DtypeResolution {
        code,
        dtype,
        aprender,
        realizar,
        size_ok: fits(dtype),
    })
}

struct TopLevel(Vec<MetaEntry>);

fn parse_metadata(bytes: &[u8], at: u64) -> Result<Vec<MetaEntry>, ReadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ReadError::new(
            &lints::APR_METADATA_JSON,
            format!("metadata is not UTF-8: {e}"),
        )
        .at(at + e.valid_up_to() as u64)
        .help("the metadata is corrupt; re-convert")
    })?;
    if let Some(entries) = split_fast(text) {
        return Ok(entries);
    }
    parse_metadata_serde(text, at)
}

/// serde_json's reading of the metadata: the reference `split_fast` must agree with, and the one
/// that reports where invalid text goes wrong.
fn parse_metadata_serde(text: &str, at: u64) -> Result<Vec<MetaEntry>, ReadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de
        .deserialize_map(TopLevelVisitor)
        .map_err(|e| json_err(e, text, at))?;
    de.end().map_err(|e| json_err(e, text, at))?;
    Ok(top.0)
}

/// The top-level entries of valid metadata, read by a strict scanner that accepts a subset of what
/// serde_json accepts (every key free of escapes and control characters) and splits it the same
/// way. None for anything else, valid or not: serde_json then reads the text and places any error.
/// serde_json spent about 60 M instructions on the 2.5 MB of a 150k-token vocabulary (a few hundred
/// per string); this scanner skips string bodies eight bytes at a time.
fn split_fast(text: &str) -> Option<Vec<MetaEntry>> {
    let b = text.as_bytes();
    let mut i = json_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = json_ws(b, i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b'}') {
        return (json_ws(b, i + 1) == b.len()).then_some(out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_start = i + 1;
        let key_end = string_stop(b, key_start);
        if b.get(key_end) != Some(&b'"') {
            return None;
        }
        i = json_ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let value_start = json_ws(b, i + 1);
        i = skip_json_value(b, value_start)?;
        // Every index here follows or sits on an ASCII byte: all are char boundaries.
        out.push(MetaEntry {
            key: text[key_start..key_end].to_owned(),
            raw: RawJson(text[value_start..i].into()),
        });
        i = json_ws(b, i);
        match b.get(i) {
            Some(b',') => i = json_ws(b, i + 1),
            Some(b'}') => return (json_ws(b, i + 1) == b.len()).then_some(out),
            _ => return None,
        }
    }
}

fn json_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The index of the first `"`, `\\` or control byte (< 0x20) at or after `j`, `b.len()` if none;
/// eight bytes at a time.
fn string_stop(b: &[u8], mut j: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // The high bit of a byte below `n` is set in `below(x, n)` (bytes < 0x80); a bit above the
    // lowest such byte may be set too (a borrow), never one below: the lowest set bit is exact.
    let below = |x: u64, n: u8| x.wrapping_sub(LO * n as u64) & !x & HI;
    while let Some(w) = b.get(j..j + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let x = u64::from_le_bytes(a);
        let m =
            below(x ^ (LO * b'"' as u64), 1) | below(x ^ (LO * b'\\' as u64), 1) | below(x, 0x20);
        if m != 0 {
            return j + (m.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < b.len() && b[j] != b'"' && b[j] != b'\\' && b[j] >= 0x20 {
        j += 1;
    }
    j
}

/// The end of the string whose body starts at `i` (just past its closing quote), with escapes
/// checked as serde_json checks them when it skips a value.
#[inline]
fn skip_json_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let j = string_stop(b, i);
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => match *b.get(j + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i = j + 2,
                b'u' if b.get(j + 2..j + 6)?.iter().all(u8::is_ascii_hexdigit) => i = j + 6,
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// The end of the number starting at `i` (serde_json's grammar: no leading zero, digits after a
/// point and after an exponent).
fn skip_json_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits(i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// From a key's opening quote at `i` to the start of its value.
fn skip_json_key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = json_ws(b, skip_json_string(b, i + 1)?);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(json_ws(b, i + 1))
}

/// The end of the JSON value starting at `i` (no whitespace before it). Nesting is kept on a heap
/// stack, as serde_json keeps it when skipping a value, so depth is not limited by recursion.
fn skip_json_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut closers: Vec<u8> = Vec::new();
    loop {
        // `i` is at the start of a value.
        match *b.get(i)? {
            b'"' => i = skip_json_string(b, i + 1)?,
            open @ (b'[' | b'{') => {
                let close = if open == b'[' { b']' } else { b'}' };
                i = json_ws(b, i + 1);
                if b.get(i) == Some(&close) {
                    i += 1;
                } else {
                    closers.push(close);
                    if close == b'}' {
                        i = skip_json_key(b, i)?;
                    }
                    continue;
                }
            }
            b't' if b[i..].starts_with(b"true") => i += 4,
            b'f' if b[i..].starts_with(b"false") => i += 5,
            b'n' if b[i..].starts_with(b"null") => i += 4,
            b'-' | b'0'..=b'9' => i = skip_json_number(b, i)?,
            _ => return None,
        }
        // After a value: close what ends here, then a comma leads to the next value.
        loop {
            let Some(&close) = closers.last() else {
                return Some(i);
            };
            i = json_ws(b, i);
            match *b.get(i)? {
                b',' => {
                    i = json_ws(b, i + 1);
                    if close == b'}' {
                        i = skip_json_key(b, i)?;
                    }
                    break;
                }
                c if c == close => {
                    closers.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

struct TopLevelVisitor;
impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut out = Vec::new();
        while let Some((key, raw)) = map.next_entry::<String, &RawValue>()? {
            out.push(MetaEntry {
                key,
                raw: RawJson(raw.get().into()),
            });
        }
        Ok(TopLevel(out))
    }
}

fn json_err(e: serde_json::Error, text: &str, at: u64) -> ReadError {
    // serde_json gives line/column; turn it into a byte offset.
    let mut off = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == e.line() {
            off += e.column().saturating_sub(1);
            break;
        }
        off += line.len();
    }
    ReadError::new(
        &lints::APR_METADATA_JSON,
        format!("metadata is not a valid JSON object: {e}"),
    )
    .at(at + off as u64)
    .help("the metadata is corrupt or truncated; re-convert")
}

/// Read and validate a whole APR v2 file.
pub fn read(source: Source) -> Result<AprFile, ReadError> {
    let path = source.path().to_path_buf();
    read_inner(source)
        .map_err(|e| e.with_path(&path))
        .map(|mut f| {
            for x in &mut f.findings {
                x.file = Some(path.display().to_string());
            }
            f
        })
}

fn read_inner(source: Source) -> Result<AprFile, ReadError> {
    let bytes = source.bytes();
    let file_len = bytes.len() as u64;
    let mut findings = Vec::new();
    let mut c = Cursor::new(bytes);
    let hb = c.take(HEADER_LEN, "APR header")?;
    let magic = [hb[0], hb[1], hb[2], hb[3]];
    match &magic {
        b"APR\0" => {}
        b"APR2" => findings.push(
            Finding::new(
                &lints::APR_LEGACY_MAGIC,
                "magic is `APR2`: realizar reads it, aprender's reader rejects it",
            )
            .span(Span::new(0, 4))
            .help("rewrite the magic as `APR\\0` and recompute the header CRC"),
        ),
        _ => {
            return Err(
                ReadError::new(&lints::UNKNOWN_FORMAT, "magic is not `APR\\0`")
                    .span(Span::new(0, 4)),
            );
        }
    }
    let mut h = Cursor::new(hb);
    h.skip(4, "magic")?;
    let version_major = h.u8("version major")?;
    let version_minor = h.u8("version minor")?;
    let flags = h.u16("flags")?;
    let tensor_count = h.u32("tensor count")?;
    let metadata_offset = h.u64("metadata offset")?;
    let metadata_size = h.u32("metadata size")?;
    let tensor_index_offset = h.u64("tensor index offset")?;
    let data_offset = h.u64("data offset")?;
    let header_crc_stored = h.u32("header crc")?;
    let header = Header {
        magic,
        version_major,
        version_minor,
        flags,
        tensor_count,
        metadata_offset,
        metadata_size,
        tensor_index_offset,
        data_offset,
        header_crc: header_crc_stored,
        computed_crc: header_crc(hb),
    };
    if version_major != 2 {
        return Err(ReadError::new(&lints::VERSION, format!("APR version {version_major}.{version_minor}; only 2.x is an APR v2 tensor container"))
            .span(Span::new(4, 2))
            .help("re-convert the model with a current `apr import`"));
    }
    if header.computed_crc != header.header_crc {
        findings.push(
            Finding::new(
                &lints::HEADER_CRC,
                format!("header CRC is {:#010x}, the header's bytes give {:#010x}", header.header_crc, header.computed_crc),
            )
            .severity(Severity::Error)
            .span(Span::new(40, 4))
            .help("the header was edited or corrupted; aprender refuses the file (realizar does not check)"),
        );
    }
    let bad = flags & (flags::LZ4 | flags::ZSTD | flags::ENCRYPTED);
    if bad != 0 {
        return Err(ReadError::new(
            &lints::APR_UNSUPPORTED_FLAGS,
            format!(
                "flags {flags:#06x} say {}: apr-lint cannot read through compression or encryption",
                flags::names(bad).join("+")
            ),
        )
        .span(Span::new(6, 2))
        .help("write the file uncompressed and unencrypted"));
    }
    let field_err = |msg: String, span: Span| {
        ReadError::new(&lints::APR_HEADER_FIELD, msg)
            .span(span)
            .help("the header is corrupt or the file truncated; re-convert")
    };
    let meta_end = metadata_offset.checked_add(metadata_size as u64);
    if metadata_offset < HEADER_LEN || meta_end.is_none_or(|e| e > tensor_index_offset) {
        return Err(field_err(
            format!(
                "metadata [{metadata_offset}, +{metadata_size}) does not lie between the header (64 bytes) and the index at {tensor_index_offset}"
            ),
            Span::new(12, 12),
        ));
    }
    if tensor_index_offset > data_offset {
        return Err(field_err(
            format!(
                "tensor index offset {tensor_index_offset} is past the data offset {data_offset}"
            ),
            Span::new(24, 16),
        ));
    }
    if data_offset > file_len {
        return Err(ReadError::new(
            &lints::TRUNCATED,
            format!("data offset {data_offset} is past the end of the file ({file_len} bytes)"),
        )
        .span(Span::new(32, 8))
        .help("the file is truncated; download or convert it again"));
    }
    if data_offset % ALIGN != 0 {
        return Err(field_err(
            format!("data offset {data_offset} is not a multiple of 64"),
            Span::new(32, 8),
        ));
    }
    let metadata_span = Span::new(metadata_offset, metadata_size as u64);
    let meta_bytes = source
        .slice(metadata_offset, metadata_size as u64)
        .unwrap_or(&[]);
    let metadata = parse_metadata(meta_bytes, metadata_offset)?;
    // Padding after metadata up to the index should be zero.
    if let Some(pad) = source.slice(
        meta_end.unwrap_or(0),
        tensor_index_offset - meta_end.unwrap_or(0),
    ) && pad.iter().any(|&b| b != 0)
    {
        findings.push(
            Finding::new(
                &lints::APR_PADDING,
                "padding between metadata and index is not zero",
            )
            .span(Span::new(meta_end.unwrap_or(0), pad.len() as u64))
            .help("re-convert; the file may have been overwritten in place"),
        );
    }
    // A set, not a scan of the keys before each one: the key count is the file's to choose.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for e in &metadata {
        if !seen.insert(e.key.as_str()) {
            findings.push(
                Finding::new(
                    &lints::DUPLICATE_KEY,
                    format!(
                        "metadata key `{}` occurs twice; upstream's JSON reader keeps the last",
                        e.key
                    ),
                )
                .severity(Severity::Warning)
                .at_key(e.key.as_str(), Some(metadata_span))
                .help("write each key once"),
            );
        }
    }

    // Tensor index.
    let index_len = data_offset - tensor_index_offset;
    let index_bytes = source.slice(tensor_index_offset, index_len).unwrap_or(&[]);
    let index_span = Span::new(tensor_index_offset, index_len);
    if index_bytes.first() == Some(&b'[') {
        return Err(ReadError::new(
            &lints::APR_JSON_INDEX,
            "the tensor index is JSON (old realizar single-tensor variant)",
        )
        .at(tensor_index_offset)
        .help("re-convert with a current `apr import`"));
    }
    let mut ic = Cursor::new(index_bytes);
    // Smallest entry: name_len 2 + dtype 1 + ndim 1 + offset 8 + size 8.
    ic.check_count(tensor_count as u64, 20, "tensor index entry")
        .map_err(|e| e.span(Span::new(8, 4)))?;
    let mut tensors: Vec<IndexEntry> = Vec::with_capacity(tensor_count as usize);
    let mut seen_names: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(tensor_count as usize);
    let rebase = |mut e: ReadError, n: usize| {
        if let Some(s) = e.span.as_mut() {
            s.offset += tensor_index_offset;
        }
        e.message = format!("index entry {n}: {} (parsing stopped here)", e.message);
        e
    };
    for n in 0..tensor_count as usize {
        let start = ic.pos();
        if index_bytes[start as usize..].iter().all(|&b| b == 0) {
            return Err(ReadError::new(
                &lints::COUNT_OVERRUNS,
                format!(
                    "the header says {tensor_count} tensors but the index holds {n}: entry {n} would start at offset {}, where only zero padding is left before the data at {data_offset}",
                    tensor_index_offset + start
                ),
            )
            .span(Span::new(8, 4))
            .help(format!("set `tensor_count` to {n}, or re-convert")));
        }
        let name_len = ic.u16("name length").map_err(|e| rebase(e, n))?;
        let name_bytes = ic.take(name_len as u64, "name").map_err(|e| rebase(e, n))?;
        let name = std::str::from_utf8(name_bytes)
            .map_err(|e| {
                ReadError::new(
                    &lints::BAD_UTF8,
                    format!("index entry {n}: tensor name is not UTF-8 ({e})"),
                )
                .at(tensor_index_offset + start + 2)
                .help("the index is corrupt; re-convert")
            })?
            .to_owned();
        let code = ic.u8("dtype").map_err(|e| rebase(e, n))?;
        let ndim_at = ic.pos();
        let ndim = ic.u8("ndim").map_err(|e| rebase(e, n))?;
        if ndim > MAX_DIMS {
            return Err(ReadError::new(
                &lints::TOO_MANY_DIMS,
                format!("tensor `{name}` has ndim {ndim}; APR writers cap it at {MAX_DIMS}"),
            )
            .at(tensor_index_offset + ndim_at)
            .help("the index is corrupt; re-convert"));
        }
        let dims_at = ic.pos();
        let mut dims = Vec::with_capacity(ndim as usize);
        for _ in 0..ndim {
            dims.push(ic.u64("dim").map_err(|e| rebase(e, n))?);
        }
        let dims_span = Span::new(tensor_index_offset + dims_at, 8 * ndim as u64);
        let n_elems = dims.iter().try_fold(1u64, |a, &d| {
            a.checked_mul(d).filter(|&x| x <= i64::MAX as u64)
        });
        if n_elems.is_none() {
            return Err(ReadError::new(
                &lints::BAD_DIMS,
                format!("tensor `{name}`: dims {dims:?} overflow the element count"),
            )
            .span(dims_span)
            .help("the index is corrupt; re-convert"));
        }
        let offset_at = ic.pos();
        let offset = ic.u64("offset").map_err(|e| rebase(e, n))?;
        let size = ic.u64("size").map_err(|e| rebase(e, n))?;
        let record = Span::new(tensor_index_offset + start, ic.pos() - start);
        let resolution = resolve_dtype(code, &dims, size).ok_or_else(|| {
            ReadError::new(&lints::UNKNOWN_DTYPE, format!("tensor `{name}` has dtype code {code}, which neither aprender nor realizar reads"))
                .at(tensor_index_offset + dims_at - 2)
                .help("re-convert with a supported dtype")
        })?;
        if !seen_names.insert(name.clone()) {
            return Err(ReadError::new(
                &lints::DUPLICATE_TENSOR,
                format!("tensor `{name}` appears twice in the index"),
            )
            .span(record)
            .help("fix the converter's name mapping: two source tensors were given one name"));
        }
        if let Some(prev) = tensors.last() {
            if prev.name == name {
                return Err(ReadError::new(
                    &lints::DUPLICATE_TENSOR,
                    format!("tensor `{name}` appears twice in the index"),
                )
                .span(record)
                .help("fix the converter's name mapping: two source tensors were given one name"));
            }
            if prev.name.as_bytes() > name.as_bytes() {
                findings.push(
                    Finding::new(&lints::APR_INDEX_ORDER, format!("index entry `{name}` comes after `{}`: the index is not sorted by name", prev.name))
                        .tensor(&name)
                        .span(record)
                        .help("sort the index by name; aprender rejects unsorted indexes"),
                );
            }
        }
        if offset % ALIGN != 0 {
            return Err(ReadError::new(
                &lints::OFFSET_MISALIGNED,
                format!("tensor `{name}` offset {offset} is not a multiple of 64"),
            )
            .at(tensor_index_offset + offset_at)
            .help("re-write the file with 64-byte alignment"));
        }
        let end = data_offset
            .checked_add(offset)
            .and_then(|s| s.checked_add(size));
        if end.is_none_or(|e| e > file_len) {
            return Err(ReadError::new(
                &lints::OUT_OF_BOUNDS,
                format!("tensor `{name}` data [{}, +{size}) runs past the end of the file ({file_len} bytes)", data_offset.saturating_add(offset)),
            )
            .at(tensor_index_offset + offset_at)
            .help("the file is truncated (compare its size with the source's) or the offset is corrupt"));
        }
        // A 0-byte output matrix is the tied-embedding placeholder aprender wrote (#2309, #2441;
        // loaders read it as "tied"): the per-file checks report it (APRL-M010). Any other tensor
        // holding 0 bytes for its elements has lost its data.
        let placeholder = size == 0 && is_output_name(&name);
        if !resolution.size_ok && !placeholder {
            let expected = quant::tensor_n_bytes(resolution.dtype, &dims)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into());
            let (message, help) = if size == 0 {
                (
                    format!(
                        "tensor `{name}` holds 0 bytes; dtype code {code} ({}) with dims {dims:?} needs {expected}: only the output matrix may be a 0-byte tied-embedding placeholder",
                        resolution.dtype
                    ),
                    "the converter wrote no data for this tensor; re-convert",
                )
            } else {
                (
                    format!(
                        "tensor `{name}` holds {size} bytes; dtype code {code} ({}) with dims {dims:?} needs {expected}",
                        resolution.dtype
                    ),
                    "check the dtype label; if it is right, the converter wrote the wrong number of bytes",
                )
            };
            findings.push(
                Finding::new(&lints::SIZE_MISMATCH, message)
                    .tensor(&name)
                    .span(Span::new(tensor_index_offset + offset_at + 8, 8))
                    .help(help),
            );
        }
        tensors.push(IndexEntry {
            name,
            resolution,
            dims,
            offset,
            n_bytes: size,
            record,
            dims_span,
        });
    }
    let parsed_end = ic.pos();
    if index_bytes[parsed_end as usize..].iter().any(|&b| b != 0) {
        return Err(ReadError::new(
            &lints::APR_INDEX_TRAILING,
            format!("the index holds non-zero bytes after its {tensor_count} entries (parsing stopped at offset {})", tensor_index_offset + parsed_end),
        )
        .at(tensor_index_offset + parsed_end)
        .help("tensor_count and the index disagree; re-convert"));
    }
    // Non-overlap (payload order need not follow index order).
    // Empty tensors overlap nothing, and between two tensors that overlap they would hide the
    // overlap from the neighbour comparison: leave them out.
    let mut order: Vec<usize> = (0..tensors.len())
        .filter(|&i| tensors[i].n_bytes > 0)
        .collect();
    order.sort_by_key(|&i| (tensors[i].offset, tensors[i].n_bytes));
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        if a.n_bytes > 0 && b.n_bytes > 0 && a.offset + a.n_bytes > b.offset {
            return Err(ReadError::new(
                &lints::OVERLAP,
                format!("tensors `{}` [{}, +{}) and `{}` [{}, +{}) overlap (offsets relative to the data section)", a.name, a.offset, a.n_bytes, b.name, b.offset, b.n_bytes),
            )
            .span(b.record)
            .help("fix the writer's offset arithmetic"));
        }
    }
    // Footer and trailing bytes.
    let unpadded_end = tensors
        .iter()
        .map(|t| data_offset + t.offset + t.n_bytes)
        .max()
        .unwrap_or(data_offset);
    let padded_end = tensors
        .iter()
        .map(|t| data_offset + t.offset + pad_to(t.n_bytes, ALIGN).unwrap_or(t.n_bytes))
        .max()
        .unwrap_or(data_offset);
    let footer = if file_len == padded_end || file_len == unpadded_end {
        Footer::Absent
    } else if file_len == padded_end + 4 || file_len == unpadded_end + 4 {
        if file_len <= AUTO_VERIFY_FOOTER_MAX {
            footer_check(bytes)
        } else {
            Footer::Unverified
        }
    } else if file_len > padded_end {
        findings.push(
            Finding::new(
                &lints::TRAILING_BYTES,
                format!(
                    "{} bytes after the last tensor's data (which ends at offset {padded_end})",
                    file_len - padded_end
                ),
            )
            .span(Span::new(padded_end, file_len - padded_end))
            .help("truncate the file at the end of the data, or re-convert"),
        );
        Footer::Absent
    } else {
        // The file ends inside the last tensor's padding: the data is whole and nothing trails it.
        Footer::Absent
    };
    // Every tensor's data is zero-padded to 64 bytes (aprender's writers resize with 0 and write
    // `vec![0u8; padding]`). Check the padding that lies in the file, footer excluded: a file may
    // end inside the last tensor's padding, but what it holds there must still be zeros.
    let body_end = if footer == Footer::Absent {
        file_len
    } else {
        file_len - 4
    };
    let mut dirty: Vec<(&IndexEntry, Span)> = Vec::new();
    for t in &tensors {
        let end = data_offset + t.offset + t.n_bytes;
        let pad_end =
            (data_offset + t.offset + pad_to(t.n_bytes, ALIGN).unwrap_or(t.n_bytes)).min(body_end);
        if t.n_bytes == 0 || pad_end <= end {
            continue;
        }
        let pad = source.slice(end, pad_end - end).unwrap_or(&[]);
        if let Some(first) = pad.iter().position(|&b| b != 0) {
            let last = pad.iter().rposition(|&b| b != 0).unwrap_or(first);
            dirty.push((t, Span::new(end + first as u64, (last - first + 1) as u64)));
        }
    }
    if let Some(&(t, span)) = dirty.first() {
        let others = match dirty.len() {
            1 => String::new(),
            n => format!(" (and the padding of {} more tensors)", n - 1),
        };
        findings.push(
            Finding::new(
                &lints::APR_PADDING,
                format!(
                    "the padding after tensor `{}`'s data (which ends at offset {}) holds non-zero bytes at [{}, +{}){others}; padding must be zero",
                    t.name,
                    data_offset + t.offset + t.n_bytes,
                    span.offset,
                    span.len
                ),
            )
            .tensor(&t.name)
            .span(span)
            .help("re-convert; the file may have been appended to or overwritten in place"),
        );
    }
    if let Footer::Invalid { stored, computed } = footer {
        findings.push(
            Finding::new(
                &lints::FOOTER_CRC,
                format!("footer CRC is {stored:#010x}, the file's bytes give {computed:#010x}"),
            )
            .span(Span::new(file_len - 4, 4))
            .help(
                "some bytes changed after writing; re-convert or compare checksums with the source",
            ),
        );
    }
    Ok(AprFile {
        source,
        header,
        metadata,
        metadata_span,
        tensors,
        index_span,
        footer,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::writer::apr::{AprTensor, AprWriter, Flavour};

    fn read_bytes(bytes: Vec<u8>) -> AprFile {
        read(Source::from_vec(bytes, "t.apr")).expect("readable")
    }

    fn f32s(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| (i as f32 + 1.0).to_le_bytes())
            .collect()
    }

    fn codes<'a>(f: &'a AprFile, code: &str) -> Vec<&'a Finding> {
        f.findings.iter().filter(|x| x.code == code).collect()
    }

    /// Only the output matrix may be a 0-byte placeholder; any other tensor with elements and no
    /// bytes is a size error that points into its own index entry.
    #[test]
    fn zero_bytes_are_an_error_except_for_the_output_matrix() {
        for flavour in [Flavour::Aprender, Flavour::Realizar] {
            let mut w = AprWriter::new(flavour);
            w.tensor(AprTensor::new("a", vec![4], DType::F32, f32s(4)));
            w.tensor(AprTensor::new(
                "blk.0.ffn_up.weight",
                vec![2, 4],
                DType::F32,
                vec![],
            ));
            w.tensor(AprTensor::new(
                "lm_head.weight",
                vec![2, 4],
                DType::F32,
                vec![],
            ));
            w.tensor(AprTensor::new(
                "output.weight",
                vec![2, 4],
                DType::F32,
                vec![],
            ));
            // No elements, no bytes: nothing is missing.
            w.tensor(AprTensor::new("z", vec![0, 4], DType::F32, vec![]));
            let f = read_bytes(w.to_bytes());
            let sizes = codes(&f, lints::SIZE_MISMATCH.code);
            assert_eq!(sizes.len(), 1, "{flavour:?}: {:?}", f.findings);
            let s = sizes[0];
            assert_eq!(s.tensor.as_deref(), Some("blk.0.ffn_up.weight"));
            assert_eq!(s.severity, Severity::Error);
            assert!(
                s.message.contains("holds 0 bytes") && s.message.contains("needs 32"),
                "{}",
                s.message
            );
            let entry = f.tensor("blk.0.ffn_up.weight").unwrap().record;
            let span = s.span.expect("a byte offset");
            assert!(
                span.offset >= entry.offset && span.end() <= entry.end(),
                "{span:?} in {entry:?}"
            );
        }
    }

    /// Writes `a` (3 F32 = 12 bytes) and returns the file and the end of `a`'s data.
    fn one_odd_tensor(flavour: Flavour) -> (Vec<u8>, usize) {
        let mut w = AprWriter::new(flavour);
        w.tensor(AprTensor::new("a", vec![3], DType::F32, f32s(3)));
        let bytes = w.to_bytes();
        let f = read_bytes(bytes.clone());
        let end = f.tensors[0].data_span(f.header.data_offset).end() as usize;
        (bytes, end)
    }

    #[test]
    fn non_zero_padding_after_a_tensor_is_reported() {
        for flavour in [Flavour::Aprender, Flavour::Realizar] {
            let (mut bytes, end) = one_odd_tensor(flavour);
            assert!(codes(&read_bytes(bytes.clone()), lints::APR_PADDING.code).is_empty());
            bytes[end + 5] = 0xEE;
            if flavour.has_footer() {
                // A footer that matches the damaged bytes: only the padding is wrong.
                let n = bytes.len();
                let crc = crc32::crc32(&bytes[..n - 4]);
                bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
            }
            let f = read_bytes(bytes);
            let pads = codes(&f, lints::APR_PADDING.code);
            assert_eq!(pads.len(), 1, "{flavour:?}: {:?}", f.findings);
            assert_eq!(pads[0].span, Some(Span::new(end as u64 + 5, 1)));
            assert_eq!(pads[0].tensor.as_deref(), Some("a"));
        }
    }

    /// A file may end inside its last tensor's padding (or right after its data, then a footer),
    /// but the padding bytes it has must be zero: 0xEE there is neither padding nor a footer.
    #[test]
    fn a_file_ending_inside_non_zero_padding_is_reported() {
        let (bytes, end) = one_odd_tensor(Flavour::Realizar);
        for extra in [1usize, 2, 3, 5, 6, 7, 8, 20] {
            let mut b = bytes[..end].to_vec();
            b.extend(std::iter::repeat_n(0xEE, extra));
            let f = read_bytes(b);
            let pads = codes(&f, lints::APR_PADDING.code);
            assert_eq!(pads.len(), 1, "+{extra}: {:?}", f.findings);
            assert_eq!(pads[0].span, Some(Span::new(end as u64, extra as u64)));
            // Zeros there are padding: nothing to report.
            let mut z = bytes[..end].to_vec();
            z.extend(std::iter::repeat_n(0, extra));
            assert!(read_bytes(z).findings.is_empty(), "+{extra} zeros");
        }
        // Four bytes right after the data are a footer (here a wrong one), not padding.
        let mut b = bytes[..end].to_vec();
        b.extend([0xEE; 4]);
        let f = read_bytes(b);
        assert!(
            codes(&f, lints::APR_PADDING.code).is_empty(),
            "{:?}",
            f.findings
        );
        assert_eq!(codes(&f, lints::FOOTER_CRC.code).len(), 1);
    }

    /// What the fast scanner split, or None; and what serde_json split, or its error.
    type Split = Option<Vec<(String, String)>>;

    fn both(text: &str) -> (Split, Split) {
        let pairs = |v: Vec<MetaEntry>| {
            v.into_iter()
                .map(|e| (e.key, e.raw.get().to_owned()))
                .collect::<Vec<_>>()
        };
        (
            split_fast(text).map(pairs),
            parse_metadata_serde(text, 0).ok().map(pairs),
        )
    }

    const VALID: &str = "\t{ \"general.name\" : \"q\\\"w\\u00e9n\\\\\",\n\"tokens\":[\"a\",\"\u{0120}b\", \"\\n\"],\r\"types\":[1,0,-2.5e+3,0.25E-1,1e9],\"x\":{\"k\\u0041\":[true,false,null,{}],\"e\":[]},\"n\":null,\"tokens\":[\"dup\"]} \n";

    #[test]
    fn the_fast_metadata_scanner_splits_valid_text_as_serde_json_does() {
        // Deeper than serde_json's recursion limit (128): skipped values are not limited.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        for text in [
            VALID,
            "{}",
            " { } ",
            "{\"a\":1}",
            &deep,
            "{\"a\":\"0123456789abcdef\\t0123456789\"}",
        ] {
            let (fast, serde) = both(text);
            assert!(fast.is_some(), "the fast path declined valid {text:?}");
            assert_eq!(fast, serde, "{text:?}");
        }
    }

    #[test]
    fn the_fast_metadata_scanner_accepts_nothing_serde_json_rejects() {
        // Every one-byte change and deletion of text covering each construct: whatever the fast
        // scanner accepts, serde_json accepts and splits the same way.
        let base = VALID.as_bytes();
        let subs = b" \t\"\\/0-+.eE,:[]{}ntfux\n\x01\x1f7";
        let mut accepted_changed = 0;
        for at in 0..base.len() {
            let mut variants: Vec<Vec<u8>> = subs
                .iter()
                .map(|&c| {
                    let mut v = base.to_vec();
                    v[at] = c;
                    v
                })
                .collect();
            let mut del = base.to_vec();
            del.remove(at);
            variants.push(del);
            variants.push(base[..at].to_vec());
            for v in variants {
                let Ok(text) = std::str::from_utf8(&v) else {
                    continue;
                };
                let (fast, serde) = both(text);
                if fast.is_some() {
                    accepted_changed += 1;
                    assert_eq!(fast, serde, "{text:?}");
                }
            }
        }
        // The check above is not vacuous: many harmless changes (inside strings, whitespace) pass.
        assert!(accepted_changed > 100, "{accepted_changed}");
    }

    #[test]
    fn the_fast_metadata_scanner_declines_what_it_does_not_handle() {
        for text in [
            "{\"a\\n\":1}",
            "{\"a\":01}",
            "{\"a\":1,}",
            "{\"a\":[1,]}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"\n\"}",
            "{\"a\":tru}",
            "{\"a\":1} x",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "[1]",
        ] {
            assert_eq!(both(text).0, None, "{text:?}");
        }
    }
}
