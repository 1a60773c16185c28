//! A strict SafeTensors reader: bytes in, one record per tensor with absolute byte spans out.
//!
//! Layout: an 8-byte little-endian header length `n`, `n` bytes of UTF-8 JSON (an object: one entry
//! per tensor, `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional `__metadata__`
//! string→string map), then the data area. Offsets are relative to the data area.
//!
//! Refused with a code (`ReadError`): a header length past the file (F050), a header that is not a
//! UTF-8 JSON object of well-formed entries (F051), a key that occurs twice (F052, which serde_json
//! would silently resolve to the last one), a dtype the format does not define or that is not
//! byte-addressable (F053), a byte length that is not product(shape) × dtype size (F054), offsets
//! reversed or past the data area (F055), overlapping tensors (F056), and a gap or trailing bytes
//! in the data area (F057). Header entries need not be in data order (Python's writer sorts the keys
//! by name and the data by dtype and name), so entries are sorted by offset before the layout check.
//!
//! Why not the `safetensors` crate: its `SafeTensors::read_metadata` validates the same layout
//! rules, but its errors carry no byte offset (`InvalidOffset(name)`, `MetadataIncompleteBuffer`
//! cannot say whether a gap, an overlap or trailing bytes failed), it gives no span of a tensor's
//! header entry, and it deserializes the header into a `HashMap`, so a duplicated tensor name is
//! silently resolved to one entry instead of refused. Reading the header with serde_json's
//! `RawValue` gives every entry's byte span for ~200 lines, without a new dependency.

use std::collections::HashSet;

use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::diag::{Finding, ReadError, Span};
use crate::format::Source;
use crate::format::lints;

/// The element types SafeTensors defines (safetensors 0.6). The sub-byte types (`F4`, `F6_E2M3`,
/// `F6_E3M2`) are recognised but refused: their byte length is not a whole product of the shape.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum StDtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

impl StDtype {
    const ALL: [StDtype; 17] = [
        StDtype::BOOL,
        StDtype::U8,
        StDtype::I8,
        StDtype::F8_E5M2,
        StDtype::F8_E4M3,
        StDtype::F8_E8M0,
        StDtype::I16,
        StDtype::U16,
        StDtype::F16,
        StDtype::BF16,
        StDtype::I32,
        StDtype::U32,
        StDtype::F32,
        StDtype::C64,
        StDtype::F64,
        StDtype::I64,
        StDtype::U64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StDtype::BOOL => "BOOL",
            StDtype::U8 => "U8",
            StDtype::I8 => "I8",
            StDtype::F8_E5M2 => "F8_E5M2",
            StDtype::F8_E4M3 => "F8_E4M3",
            StDtype::F8_E8M0 => "F8_E8M0",
            StDtype::I16 => "I16",
            StDtype::U16 => "U16",
            StDtype::F16 => "F16",
            StDtype::BF16 => "BF16",
            StDtype::I32 => "I32",
            StDtype::U32 => "U32",
            StDtype::F32 => "F32",
            StDtype::C64 => "C64",
            StDtype::F64 => "F64",
            StDtype::I64 => "I64",
            StDtype::U64 => "U64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            StDtype::BOOL
            | StDtype::U8
            | StDtype::I8
            | StDtype::F8_E5M2
            | StDtype::F8_E4M3
            | StDtype::F8_E8M0 => 1,
            StDtype::I16 | StDtype::U16 | StDtype::F16 | StDtype::BF16 => 2,
            StDtype::I32 | StDtype::U32 | StDtype::F32 => 4,
            StDtype::C64 | StDtype::F64 | StDtype::I64 | StDtype::U64 => 8,
        }
    }

    pub fn parse(s: &str) -> Option<StDtype> {
        StDtype::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The project's dtype for the types the numeric code reads (`None`: read as opaque bytes).
    pub fn to_dtype(self) -> Option<crate::quant::DType> {
        use crate::quant::DType;
        Some(match self {
            StDtype::F32 => DType::F32,
            StDtype::F16 => DType::F16,
            StDtype::BF16 => DType::BF16,
            StDtype::F64 => DType::F64,
            StDtype::I8 => DType::I8,
            StDtype::I16 => DType::I16,
            StDtype::I32 => DType::I32,
            StDtype::I64 => DType::I64,
            StDtype::U8 | StDtype::BOOL => DType::U8,
            _ => return None,
        })
    }
}

/// Dtype names the format defines whose elements are smaller than a byte.
const SUB_BYTE: [&str; 3] = ["F4", "F6_E2M3", "F6_E3M2"];

/// One tensor of a SafeTensors file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StTensor {
    pub name: String,
    pub dtype: StDtype,
    pub shape: Vec<u64>,
    /// Absolute span of the tensor's bytes in the file.
    pub data: Span,
    /// Absolute span of the tensor's entry (its JSON value) in the header, for diagnostics.
    pub entry: Span,
}

impl StTensor {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

#[derive(Clone, Debug)]
pub struct SafetensorsFile {
    pub source: Source,
    /// The JSON header (after the 8-byte length).
    pub header: Span,
    /// The data area the offsets are relative to.
    pub data: Span,
    /// In header order.
    pub tensors: Vec<StTensor>,
    /// `__metadata__`, in header order.
    pub metadata: Vec<(String, String)>,
    pub findings: Vec<Finding>,
}

impl SafetensorsFile {
    pub fn tensor(&self, name: &str) -> Option<&StTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// The bytes of `t` (None only if `t` is not from this file).
    pub fn bytes_of(&self, t: &StTensor) -> Option<&[u8]> {
        self.source.slice(t.data.offset, t.data.len)
    }
}

/// A JSON member value with its absolute span.
pub(crate) struct Member<'a> {
    pub key: String,
    pub raw: &'a RawValue,
    pub span: Span,
}

/// The byte offset (absolute, given `base` for the start of `text`) serde_json's error points at.
pub(crate) fn json_error_offset(text: &str, e: &serde_json::Error, base: u64) -> u64 {
    let mut off = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == e.line() {
            off += e.column().saturating_sub(1).min(line.len());
            break;
        }
        off += line.len();
    }
    base + off.min(text.len()) as u64
}

struct ObjectVisitor<'s, 'de> {
    dup: &'s mut Option<(String, &'de RawValue)>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = Vec<(String, &'de RawValue)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let raw: &'de RawValue = map.next_value()?;
            if !seen.insert(key.clone()) {
                *self.dup = Some((key, raw));
                return Err(serde::de::Error::custom("duplicate key"));
            }
            out.push((key, raw));
        }
        Ok(out)
    }
}

/// Why a JSON object could not be read.
pub(crate) enum ObjectError {
    /// Not JSON, or not an object: message and absolute offset.
    Syntax(String, u64),
    /// A key that occurs twice, with the absolute span of its second value.
    Duplicate(String, Span),
}

fn span_in(text: &str, raw: &RawValue, base: u64) -> Span {
    let off = (raw.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    Span::new(base + off.min(text.len()) as u64, raw.get().len() as u64)
}

/// The members of the JSON object `text` (which starts at absolute offset `base`), refusing
/// duplicate keys. Values stay raw so their spans are known.
pub(crate) fn unique_object(text: &str, base: u64) -> Result<Vec<Member<'_>>, ObjectError> {
    let mut dup = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let res = serde::Deserializer::deserialize_map(&mut de, ObjectVisitor { dup: &mut dup });
    if let Some((key, raw)) = dup {
        return Err(ObjectError::Duplicate(key, span_in(text, raw, base)));
    }
    let members =
        res.map_err(|e| ObjectError::Syntax(e.to_string(), json_error_offset(text, &e, base)))?;
    de.end()
        .map_err(|e| ObjectError::Syntax(e.to_string(), json_error_offset(text, &e, base)))?;
    Ok(members
        .into_iter()
        .map(|(key, raw)| Member {
            span: span_in(text, raw, base),
            key,
            raw,
        })
        .collect())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

fn header_err(message: impl Into<String>, at: u64) -> ReadError {
    ReadError::new(&lints::ST_HEADER_JSON, message)
        .at(at)
        .help("the SafeTensors header is malformed; re-save the checkpoint (`save_file` / `save_pretrained`)")
}

/// Read a SafeTensors file. Errors carry the file's path.
pub fn read(source: Source) -> Result<SafetensorsFile, ReadError> {
    let path = source.path().to_path_buf();
    read_inner(source).map_err(|e| e.with_path(&path))
}

fn read_inner(source: Source) -> Result<SafetensorsFile, ReadError> {
    let bytes = source.bytes();
    let file_len = bytes.len() as u64;
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(ReadError::new(
            &lints::ST_HEADER_LENGTH,
            format!("the 8-byte header length needs 8 bytes, the file has {file_len}"),
        )
        .span(Span::new(0, file_len))
        .help("the file is truncated; download or save it again"));
    };
    let n = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
    if n > file_len - 8 {
        return Err(ReadError::new(
            &lints::ST_HEADER_LENGTH,
            format!(
                "the header length says {n} bytes, but only {} bytes follow it",
                file_len - 8
            ),
        )
        .span(Span::new(0, 8))
        .help("the file is truncated or is not SafeTensors; download or save it again"));
    }
    let header = Span::new(8, n);
    let data = Span::new(8 + n, file_len - 8 - n);
    let text = std::str::from_utf8(&bytes[8..(8 + n) as usize])
        .map_err(|e| header_err("the header is not valid UTF-8", 8 + e.valid_up_to() as u64))?;
    let members = unique_object(text, 8).map_err(|e| match e {
        ObjectError::Syntax(m, at) => {
            header_err(format!("the header is not a JSON object: {m}"), at)
        }
        ObjectError::Duplicate(key, span) => ReadError::new(
            &lints::ST_DUPLICATE_KEY,
            format!("the header has the key `{key}` twice"),
        )
        .span(span)
        .help("readers disagree on which entry wins; re-save the checkpoint with each tensor once"),
    })?;

    let mut tensors = Vec::with_capacity(members.len());
    let mut metadata = Vec::new();
    for m in &members {
        if m.key == "__metadata__" {
            let entries = unique_object(m.raw.get(), m.span.offset).map_err(|e| match e {
                ObjectError::Syntax(msg, at) => {
                    header_err(format!("`__metadata__` is not a JSON object: {msg}"), at)
                }
                ObjectError::Duplicate(key, span) => ReadError::new(
                    &lints::ST_DUPLICATE_KEY,
                    format!("`__metadata__` has the key `{key}` twice"),
                )
                .span(span)
                .help("re-save the checkpoint with each metadata key once"),
            })?;
            for e in entries {
                let value: String = serde_json::from_str(e.raw.get()).map_err(|_| {
                    header_err(
                        format!(
                            "`__metadata__.{}` is not a string (values must be strings)",
                            e.key
                        ),
                        e.span.offset,
                    )
                    .span(e.span)
                })?;
                metadata.push((e.key, value));
            }
            continue;
        }
        let raw: RawEntry = serde_json::from_str(m.raw.get()).map_err(|e| {
            header_err(
                format!(
                    "tensor `{}`: the entry must be {{\"dtype\", \"shape\", \"data_offsets\": [begin, end]}} and nothing else: {e}",
                    m.key
                ),
                json_error_offset(m.raw.get(), &e, m.span.offset),
            )
        })?;
        let dtype = StDtype::parse(&raw.dtype).ok_or_else(|| {
            let why = if SUB_BYTE.contains(&raw.dtype.as_str()) {
                "a sub-byte type apr-lint does not read"
            } else {
                "not a SafeTensors dtype"
            };
            ReadError::new(
                &lints::ST_DTYPE,
                format!("tensor `{}` has dtype `{}`: {why}", m.key, raw.dtype),
            )
            .span(m.span)
            .help("SafeTensors dtypes are BOOL, U8, I8, F8_*, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64")
        })?;
        let [begin, end] = raw.data_offsets;
        if begin > end || end > data.len {
            return Err(ReadError::new(
                &lints::ST_OUT_OF_RANGE,
                format!(
                    "tensor `{}` has data_offsets [{begin}, {end}], outside the {}-byte data area{}",
                    m.key,
                    data.len,
                    if begin > end { " (begin after end)" } else { "" }
                ),
            )
            .span(m.span)
            .help("the file is truncated or its header is corrupt; download or save it again"));
        }
        let want = raw
            .shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if want != Some(end - begin) {
            let want = want.map_or_else(|| "more than 2^64".to_string(), |w| w.to_string());
            return Err(ReadError::new(
                &lints::ST_SIZE,
                format!(
                    "tensor `{}`: shape {} of {} needs {want} bytes, data_offsets span {}",
                    m.key,
                    crate::diag::fmt_dims(&raw.shape),
                    dtype.name(),
                    end - begin
                ),
            )
            .span(m.span)
            .help("the shape, dtype or offsets were written wrong; re-save the checkpoint"));
        }
        tensors.push(StTensor {
            name: m.key.clone(),
            dtype,
            shape: raw.shape,
            data: Span::new(data.offset + begin, end - begin),
            entry: m.span,
        });
    }
    check_layout(&tensors, data)?;
    Ok(SafetensorsFile {
        source,
        header,
        data,
        tensors,
        metadata,
        findings: Vec::new(),
    })
}

/// Sorted by offset, the tensors must tile the data area exactly.
fn check_layout(tensors: &[StTensor], data: Span) -> Result<(), ReadError> {
    let mut order: Vec<&StTensor> = tensors.iter().collect();
    order.sort_by_key(|t| (t.data.offset, t.data.end()));
    let mut pos = data.offset;
    let mut prev: Option<&StTensor> = None;
    for t in order {
        if t.data.offset < pos {
            let p = prev.map_or("", |p| p.name.as_str());
            return Err(ReadError::new(
                &lints::ST_OVERLAP,
                format!(
                    "tensor `{}` (data at {}..{}) overlaps `{p}` (ends at {pos})",
                    t.name,
                    t.data.offset,
                    t.data.end()
                ),
            )
            .span(t.entry)
            .help("two tensors share bytes; the header is corrupt or was edited by hand; re-save the checkpoint"));
        }
        if t.data.offset > pos {
            let after = prev.map_or("the start of the data area".to_string(), |p| {
                format!("`{}`", p.name)
            });
            return Err(ReadError::new(
                &lints::ST_LAYOUT,
                format!(
                    "gap: {} bytes at {pos}..{} between {after} and `{}` belong to no tensor",
                    t.data.offset - pos,
                    t.data.offset,
                    t.name
                ),
            )
            .span(Span::new(pos, t.data.offset - pos))
            .help("SafeTensors data must be contiguous; re-save the checkpoint"));
        }
        pos = t.data.end();
        prev = Some(t);
    }
    if pos < data.end() {
        return Err(ReadError::new(
            &lints::ST_LAYOUT,
            format!(
                "trailing bytes: {} bytes at {pos}..{} after the last tensor belong to no tensor",
                data.end() - pos,
                data.end()
            ),
        )
        .span(Span::new(pos, data.end() - pos))
        .help("an appended or partly overwritten file; re-save the checkpoint"));
    }
    Ok(())
}

/// Serialize a SafeTensors file (tests, fuzz seeds): `tensors` as (name, dtype, shape, bytes), laid
/// out in the order given, the header padded with spaces to a multiple of 8 as Python's writer does.
pub fn write(tensors: &[(&str, &str, &[u64], &[u8])], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        header.insert("__metadata__".into(), m.into());
    }
    let mut off = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + bytes.len()]}),
        );
        off += bytes.len();
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    for (_, _, _, bytes) in tensors {
        out.extend_from_slice(bytes);
    }
    out
}

/// Assemble a file from a raw header text and data bytes (tests: headers a writer would not make).
pub fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(bytes: Vec<u8>) -> Result<SafetensorsFile, ReadError> {
        read(Source::from_vec(bytes, "t.safetensors"))
    }
    fn code(bytes: Vec<u8>) -> &'static str {
        match rd(bytes) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }
    fn two() -> Vec<u8> {
        write(
            &[
                ("a", "F32", &[2], &[0u8; 8]),
                ("b", "BF16", &[3], &[1u8; 6]),
            ],
            &[("format", "pt")],
        )
    }

    #[test]
    fn reads_records_with_absolute_spans() {
        let f = rd(two()).unwrap();
        assert_eq!(f.tensors.len(), 2);
        let a = f.tensor("a").unwrap();
        assert_eq!(a.dtype, StDtype::F32);
        assert_eq!(a.shape, vec![2]);
        assert_eq!(a.data, Span::new(f.data.offset, 8));
        let b = f.tensor("b").unwrap();
        assert_eq!(b.data, Span::new(f.data.offset + 8, 6));
        assert_eq!(f.bytes_of(b).unwrap(), &[1u8; 6]);
        let entry = &f.source.bytes()[b.entry.offset as usize..b.entry.end() as usize];
        assert!(entry.starts_with(b"{") && entry.ends_with(b"}"));
        assert!(std::str::from_utf8(entry).unwrap().contains("BF16"));
        assert_eq!(f.metadata, vec![("format".into(), "pt".into())]);
    }

    #[test]
    fn every_defined_dtype_is_read_and_sub_byte_ones_are_refused() {
        for d in StDtype::ALL {
            let bytes = vec![0u8; 3 * d.size() as usize];
            let f = rd(write(&[("t", d.name(), &[3], &bytes)], &[])).unwrap();
            assert_eq!(f.tensors[0].dtype, d);
        }
        assert_eq!(
            code(write(&[("t", "F4", &[2], &[0u8; 1])], &[])),
            "APRL-F053"
        );
        assert_eq!(
            code(write(&[("t", "Q4_K", &[2], &[0u8; 1])], &[])),
            "APRL-F053"
        );
    }

    #[test]
    fn header_length_is_bounded_by_the_file() {
        assert_eq!(code(vec![]), "APRL-F050");
        assert_eq!(code(vec![1, 0, 0]), "APRL-F050");
        let mut b = two();
        let n = b.len() as u64;
        b[..8].copy_from_slice(&n.to_le_bytes());
        assert_eq!(code(b), "APRL-F050");
        let mut b = two();
        b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(code(b), "APRL-F050");
    }

    #[test]
    fn header_must_be_a_utf8_json_object_of_exact_entries() {
        assert_eq!(code(with_header("", &[])), "APRL-F051");
        assert_eq!(code(with_header("[]", &[])), "APRL-F051");
        assert_eq!(code(with_header("{\"a\":", &[])), "APRL-F051");
        assert_eq!(code(with_header("{} x", &[])), "APRL-F051");
        let mut b = with_header("{\"\u{e9}\":1}", &[]);
        b[9] = 0xff;
        assert_eq!(code(b), "APRL-F051");
        let e = r#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}"#;
        assert_eq!(code(with_header(e, &[0])), "APRL-F051");
        let e = r#"{"t":{"dtype":"U8","shape":[1]}}"#;
        assert_eq!(code(with_header(e, &[0])), "APRL-F051");
        let e = r#"{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#;
        assert_eq!(code(with_header(e, &[0])), "APRL-F051");
        let e = r#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#;
        assert_eq!(code(with_header(e, &[0])), "APRL-F051");
        let e = r#"{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
        assert_eq!(code(with_header(e, &[0])), "APRL-F051");
        let e = r#"{"__metadata__":{"k":1}}"#;
        assert_eq!(code(with_header(e, &[])), "APRL-F051");
        let e = r#"{"__metadata__":["k"]}"#;
        assert_eq!(code(with_header(e, &[])), "APRL-F051");
        // Whitespace padding (Python's writer) and an empty file with only metadata are fine.
        assert_eq!(code(with_header("{}      ", &[])), "ok");
    }

    #[test]
    fn error_offset_points_into_the_header() {
        let e = r#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}"#;
        let err = rd(with_header(e, &[0])).unwrap_err();
        let at = err.byte_offset().unwrap();
        assert!(at > 8 + 5 && at <= 8 + e.len() as u64, "{at}");
    }

    #[test]
    fn duplicate_keys_are_refused_not_resolved() {
        let e = r#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        let err = rd(with_header(e, &[0, 0])).unwrap_err();
        assert_eq!(err.code(), "APRL-F052");
        assert_eq!(
            err.byte_offset(),
            Some(8 + e.rfind("{\"dtype").unwrap() as u64)
        );
        let e = r#"{"__metadata__":{"k":"a","k":"b"}}"#;
        assert_eq!(code(with_header(e, &[])), "APRL-F052");
    }

    #[test]
    fn byte_length_is_shape_times_dtype_size() {
        assert_eq!(
            code(write(&[("t", "F32", &[3], &[0u8; 8])], &[])),
            "APRL-F054"
        );
        assert_eq!(
            code(write(&[("t", "F16", &[2, 2], &[0u8; 4])], &[])),
            "APRL-F054"
        );
        let e = r#"{"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#;
        assert_eq!(code(with_header(e, &[])), "APRL-F054");
        // A zero-sized tensor is fine.
        assert_eq!(code(write(&[("t", "F32", &[0, 5], &[])], &[])), "ok");
    }

    #[test]
    fn offsets_in_range_contiguous_non_overlapping_and_covering() {
        let t = |a: u64, b: u64, c: u64, d: u64, data: usize| {
            with_header(
                &format!(
                    r#"{{"x":{{"dtype":"U8","shape":[{}],"data_offsets":[{a},{b}]}},"y":{{"dtype":"U8","shape":[{}],"data_offsets":[{c},{d}]}}}}"#,
                    b.wrapping_sub(a),
                    d.wrapping_sub(c)
                ),
                &vec![0u8; data],
            )
        };
        assert_eq!(code(t(0, 2, 2, 4, 4)), "ok");
        assert_eq!(
            code(t(2, 4, 0, 2, 4)),
            "ok",
            "header order need not be data order"
        );
        assert_eq!(code(t(0, 2, 2, 5, 4)), "APRL-F055", "past the data area");
        let rev = r#"{"x":{"dtype":"U8","shape":[0],"data_offsets":[3,1]}}"#;
        assert_eq!(
            code(with_header(rev, &[0; 3])),
            "APRL-F055",
            "begin after end"
        );
        assert_eq!(code(t(0, 3, 2, 4, 4)), "APRL-F056");
        assert_eq!(code(t(0, 2, 0, 2, 2)), "APRL-F056", "same bytes twice");
        let gap = rd(t(0, 1, 2, 4, 4)).unwrap_err();
        assert_eq!(gap.code(), "APRL-F057");
        assert!(gap.message.starts_with("gap"), "{}", gap.message);
        assert_eq!(gap.span.unwrap().len, 1);
        let lead = rd(t(1, 2, 2, 4, 4)).unwrap_err();
        assert!(lead.message.starts_with("gap"), "{}", lead.message);
        let trail = rd(t(0, 2, 2, 4, 5)).unwrap_err();
        assert_eq!(trail.code(), "APRL-F057");
        assert!(trail.message.starts_with("trailing"), "{}", trail.message);
        assert_eq!(code(with_header("{}", &[0])), "APRL-F057");
    }

    #[test]
    fn every_truncation_is_refused_with_a_code() {
        let full = two();
        for cut in 0..full.len() {
            let c = code(full[..cut].to_vec());
            assert!(c.starts_with("APRL-F05"), "cut at {cut}: {c}");
        }
    }
}
