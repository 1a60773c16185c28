//! Strict GGUF v2/v3 reader over a `Source` (read-only map).
//!
//! Checks at least what ggml's own `gguf.cpp` loader checks — magic, version, byte order, every
//! count and length against the bytes left before any allocation, duplicate keys and tensor names,
//! name length < 64, n_dims ≤ 4, ne ≥ 0 without overflow, known type ids, `ne[0]` a multiple of the
//! block size, a power-of-two `general.alignment`, offsets aligned, in range, disjoint — and reports
//! ggml's stricter "packed in declaration order" rule as a warning, as well as trailing bytes.
//!
//! Takes a `Source`; returns a `GgufFile` (records in file order, with byte spans) or the first
//! `ReadError`. Must not interpret tensor roles or config: that is the model view's job.

use crate::diag::{Finding, ReadError, Span};
use crate::format::cursor::{Cursor, pad_to};
use crate::format::lints;
use crate::format::source::Source;
use crate::quant::{self, DType};

pub const MAGIC: &[u8; 4] = b"GGUF";
/// ggml's GGML_MAX_NAME: names must be strictly shorter.
pub const MAX_NAME: u64 = 64;
/// ggml's GGML_MAX_DIMS.
pub const MAX_DIMS: u32 = 4;
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// GGUF metadata value type ids (gguf.h `enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }
    pub fn id(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }
    /// The name ggml's `gguf_type_name` gives the type (`u32`, `f64`, `arr` …), as llama.cpp's
    /// messages spell it.
    pub fn ggml_name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "str",
            Array => "arr",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
    /// Bytes of one fixed-size value; strings have at least 8 (their length).
    pub fn min_bytes(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

/// An array value, kept as a span over the file: decoded on demand (tokenizer arrays hold 150k
/// strings; `inspect` must not pay for them).
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayRef {
    pub elem: ValueType,
    pub len: u64,
    /// The elements (after the type and length fields).
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(ArrayRef),
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
            Value::Array(_) => ValueType::Array,
        }
    }
    /// Any integer type as i128 (no silent truncation), None otherwise.
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v as i128,
            Value::I8(v) => v as i128,
            Value::U16(v) => v as i128,
            Value::I16(v) => v as i128,
            Value::U32(v) => v as i128,
            Value::I32(v) => v as i128,
            Value::U64(v) => v as i128,
            Value::I64(v) => v as i128,
            _ => return None,
        })
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_int().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetaKv {
    pub key: String,
    pub value: Value,
    /// The whole record: key, type, value.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// As recorded: contiguous dimension first.
    pub ne: Vec<u64>,
    pub dtype: DType,
    /// Relative to the data section.
    pub offset: u64,
    /// Bytes of data the dtype and dims need.
    pub n_bytes: u64,
    /// The tensor-info record in the header.
    pub record: Span,
    /// The `ne` field inside the record.
    pub ne_span: Span,
}

impl TensorInfo {
    /// Absolute file offset of the tensor's data.
    pub fn data_span(&self, data_offset: u64) -> Span {
        Span::new(data_offset.saturating_add(self.offset), self.n_bytes)
    }
}

#[derive(Clone, Debug)]
pub struct GgufFile {
    pub source: Source,
    pub version: u32,
    pub metadata: Vec<MetaKv>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// Warnings found while reading (non-contiguous layout, trailing bytes).
    pub findings: Vec<Finding>,
}

impl GgufFile {
    pub fn get(&self, key: &str) -> Option<&MetaKv> {
        self.metadata.iter().find(|kv| kv.key == key)
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// The data bytes of a tensor (bounds were checked when reading).
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        let span = t.data_span(self.data_offset);
        self.source.slice(span.offset, span.len).unwrap_or(&[])
    }
    /// Decode an array of strings (validated when reading).
    pub fn array_strings(&self, a: &ArrayRef) -> Vec<&str> {
        let mut out = Vec::new();
        if a.elem != ValueType::String {
            return out;
        }
        let Some(bytes) = self.source.slice(a.span.offset, a.span.len) else {
            return out;
        };
        let mut utf8 = Utf8Runs::new(bytes);
        let mut c = Cursor::new(bytes);
        for _ in 0..a.len {
            let Ok(n) = c.u64("string length") else { break };
            let start = c.pos() as usize;
            let Ok(s) = c.take(n, "string") else { break };
            out.push(utf8.get(start, start + s.len()).unwrap_or(""));
        }
        out
    }
    /// Decode an array of numbers as f64 (integers and floats alike); empty for other element types.
    pub fn array_numbers(&self, a: &ArrayRef) -> Vec<f64> {
        let mut out = Vec::new();
        if matches!(a.elem, ValueType::String | ValueType::Array) {
            return out;
        }
        let Some(bytes) = self.source.slice(a.span.offset, a.span.len) else {
            return out;
        };
        let mut c = Cursor::new(bytes);
        for _ in 0..a.len {
            match read_scalar(&mut c, a.elem, 0) {
                Ok(v) => out.push(v.as_f64().unwrap_or(f64::NAN)),
                Err(_) => break,
            }
        }
        out
    }
}

fn value_err(msg: String, offset: u64) -> ReadError {
    ReadError::new(&lints::BAD_VALUE_TYPE, msg)
        .at(offset)
        .help("the metadata is corrupt; re-write it with gguf-py")
}

/// Read a length-prefixed UTF-8 string. `base` is the absolute offset of the cursor's buffer.
fn read_string<'a>(c: &mut Cursor<'a>, what: &str, base: u64) -> Result<&'a str, ReadError> {
    let at = c.pos();
    let n = c.u64(what).map_err(|e| rebase(e, base))?;
    let bytes = c.take(n, what).map_err(|e| rebase(e, base))?;
    std::str::from_utf8(bytes).map_err(|e| {
        ReadError::new(&lints::BAD_UTF8, format!("{what} is not valid UTF-8 ({e})"))
            .at(base + at + 8)
            .help("the header is corrupt; re-convert the model")
    })
}

fn rebase(mut e: ReadError, base: u64) -> ReadError {
    if let Some(s) = e.span.as_mut() {
        s.offset += base;
    }
    e
}

fn read_scalar(c: &mut Cursor<'_>, t: ValueType, base: u64) -> Result<Value, ReadError> {
    let what = "metadata value";
    let v = match t {
        ValueType::U8 => Value::U8(c.u8(what)?),
        ValueType::I8 => Value::I8(c.u8(what)? as i8),
        ValueType::U16 => Value::U16(c.u16(what)?),
        ValueType::I16 => Value::I16(c.u16(what)? as i16),
        ValueType::U32 => Value::U32(c.u32(what)?),
        ValueType::I32 => Value::I32(c.u32(what)? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32(what)?)),
        ValueType::Bool => {
            let at = c.pos();
            match c.u8(what)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(value_err(
                        format!("bool value {b} is neither 0 nor 1"),
                        base + at,
                    ));
                }
            }
        }
        ValueType::String => Value::String(read_string(c, "string value", base)?.to_owned()),
        ValueType::U64 => Value::U64(c.u64(what)?),
        ValueType::I64 => Value::I64(c.i64(what)?),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64(what)?)),
        ValueType::Array => return Err(value_err("nested array".into(), base + c.pos())),
    };
    Ok(v)
}

/// Read one value of type `t` at the cursor (the whole buffer is the file, so `base` = 0).
fn read_value(c: &mut Cursor<'_>, t: ValueType) -> Result<Value, ReadError> {
    if t != ValueType::Array {
        return read_scalar(c, t, 0);
    }
    let type_at = c.pos();
    let elem_id = c.u32("array element type")?;
    let elem = ValueType::from_id(elem_id).ok_or_else(|| {
        value_err(
            format!("array element type id {elem_id} is not a GGUF type (0..=12)"),
            type_at,
        )
    })?;
    if elem == ValueType::Array {
        // ggml's gguf.cpp refuses arrays of arrays.
        return Err(value_err(
            "array of arrays is not supported by ggml".into(),
            type_at,
        ));
    }
    let len = c.u64("array length")?;
    c.check_count(len, elem.min_bytes(), "array element")?;
    let start = c.pos();
    if elem == ValueType::String {
        // The strings that are whole and UTF-8, straight from the bytes (a vocabulary is 150k
        // strings); from the first that is not, `read_string` finds the error and says where.
        let (good, used) = whole_utf8_strings(c.rest(), len);
        c.skip(used, "array string element")?;
        for _ in good..len {
            read_string(c, "array string element", 0)?;
        }
    } else {
        // Fixed size; bool values are checked one by one for strictness.
        let n = len * elem.min_bytes();
        if elem == ValueType::Bool {
            for _ in 0..len {
                read_scalar(c, elem, 0)?;
            }
        } else {
            c.skip(n, "array elements")?;
        }
    }
    Ok(Value::Array(ArrayRef {
        elem,
        len,
        span: Span::new(start, c.pos() - start),
    }))
}

/// UTF-8 checks for many short strings packed in one buffer (a GGUF string array). The buffer is
/// validated in long runs by one bulk call instead of one call per string (about 70 instructions
/// each for a token of a few bytes); a string inside a validated run is cut from it when its
/// bounds are char boundaries, and checked alone otherwise. `get` answers what
/// `std::str::from_utf8` answers for that string.
pub(crate) struct Utf8Runs<'a> {
    bytes: &'a [u8],
    /// `run` is `bytes[at..at + run.len()]`, known to be UTF-8.
    at: usize,
    run: &'a str,
}

impl<'a> Utf8Runs<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Utf8Runs<'a> {
        Utf8Runs {
            bytes,
            at: 0,
            run: "",
        }
    }

    /// `bytes[start..end]` as a string, None when out of bounds or not UTF-8.
    #[inline]
    pub(crate) fn get(&mut self, start: usize, end: usize) -> Option<&'a str> {
        let alone = self.bytes.get(start..end)?;
        if start < self.at || end > self.at + self.run.len() {
            // Validate from here to the first invalid byte (in a GGUF array, usually the length
            // of a string of 128 bytes or more, or the end of the array).
            let rest = &self.bytes[start..];
            self.at = start;
            self.run = match std::str::from_utf8(rest) {
                Ok(s) => s,
                Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or(""),
            };
        }
        match self.run.get(start - self.at..end - self.at) {
            Some(s) => Some(s),
            None => std::str::from_utf8(alone).ok(),
        }
    }
}

/// How many of the `len` GGUF strings at the start of `b` (u64 length, then the bytes) are whole
/// and UTF-8, in a row, and how many bytes they take: what a loop of `read_string` accepts before
/// its first error, without building an error per call.
fn whole_utf8_strings(b: &[u8], len: u64) -> (u64, u64) {
    let mut utf8 = Utf8Runs::new(b);
    let mut p = 0usize;
    let mut good = 0u64;
    while good < len {
        let Some(n) = b.get(p..p.saturating_add(8)) else {
            break;
        };
        let mut x = [0u8; 8];
        x.copy_from_slice(n);
        let n = u64::from_le_bytes(x);
        let body = p + 8;
        if n > (b.len() - body) as u64 {
            break;
        }
        let end = body + n as usize;
        if utf8.get(body, end).is_none() {
            break;
        }
        p = end;
        good += 1;
    }
    (good, p as u64)
}

/// Read and validate a whole GGUF file.
pub fn read(source: Source) -> Result<GgufFile, ReadError> {
    let path = source.path().to_path_buf();
    read_inner(source).map_err(|e| e.with_path(&path))
}

fn read_inner(source: Source) -> Result<GgufFile, ReadError> {
    let bytes = source.bytes();
    let file_len = bytes.len() as u64;
    let mut c = Cursor::new(bytes);
    let magic = c.take(4, "GGUF magic")?;
    if magic != MAGIC {
        return Err(
            ReadError::new(&lints::UNKNOWN_FORMAT, "magic is not `GGUF`").span(Span::new(0, 4)),
        );
    }
    let version = c.u32("version")?;
    if version & 0xFFFF == 0 && (1..=3).contains(&version.swap_bytes()) {
        return Err(ReadError::new(
            &lints::BIG_ENDIAN,
            format!(
                "version field reads {version:#010x}: this is a big-endian GGUF v{}",
                version.swap_bytes()
            ),
        )
        .span(Span::new(4, 4))
        .help("convert it with gguf-py's `gguf_convert_endian.py model.gguf little`"));
    }
    match version {
        1 => {
            return Err(ReadError::new(
                &lints::VERSION,
                "GGUF v1 is not supported (ggml dropped it)",
            )
            .span(Span::new(4, 4))
            .help("re-convert the model with a current llama.cpp converter (GGUF v3)"));
        }
        2 | 3 => {}
        v => {
            return Err(ReadError::new(
                &lints::VERSION,
                format!("GGUF version {v} is unknown (2 and 3 are supported)"),
            )
            .span(Span::new(4, 4))
            .help("the header is corrupt, or the file was written by a newer GGUF writer"));
        }
    }
    let n_tensors_at = c.pos();
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    // Smallest records: a kv is key length (8) + type (4) + 1 value byte; a tensor info is name
    // length (8) + n_dims (4) + type (4) + offset (8).
    c.check_count(n_kv, 13, "metadata").map_err(|e| e.at(16))?;
    c.check_count(n_tensors, 24, "tensor")
        .map_err(|e| e.at(n_tensors_at))?;

    let mut metadata: Vec<MetaKv> = Vec::with_capacity(n_kv as usize);
    // Key → record offset, for duplicates: a scan of `metadata` per key is quadratic in a count
    // the file chooses (200k tiny keys took minutes).
    let mut key_at: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for _ in 0..n_kv {
        let start = c.pos();
        let key_str = read_string(&mut c, "metadata key", 0)?;
        let key = key_str.to_owned();
        let type_at = c.pos();
        let tid = c.u32("metadata value type")?;
        let t = ValueType::from_id(tid).ok_or_else(|| {
            value_err(
                format!("key `{key}` has value type id {tid}, not a GGUF type (0..=12)"),
                type_at,
            )
        })?;
        let value = read_value(&mut c, t)?;
        if let Some(prev) = key_at.insert(key_str, start) {
            return Err(ReadError::new(
                &lints::DUPLICATE_KEY,
                format!("metadata key `{key}` occurs twice (first at offset {prev})"),
            )
            .span(Span::new(start, c.pos() - start))
            .help("ggml refuses the file; write each key once"));
        }
        metadata.push(MetaKv {
            key,
            value,
            span: Span::new(start, c.pos() - start),
        });
    }

    let mut alignment = DEFAULT_ALIGNMENT;
    if let Some(kv) = metadata.iter().find(|kv| kv.key == "general.alignment") {
        match kv.value {
            Value::U32(a) if a != 0 && a.is_power_of_two() => alignment = a as u64,
            Value::U32(a) => {
                return Err(ReadError::new(
                    &lints::BAD_ALIGNMENT,
                    format!("`general.alignment` is {a}, not a power of two"),
                )
                .span(kv.span)
                .help("remove the key (the default is 32) or set a power of two"));
            }
            ref v => {
                return Err(ReadError::new(
                    &lints::BAD_ALIGNMENT,
                    format!(
                        "`general.alignment` has type {:?}; ggml requires u32",
                        v.value_type()
                    ),
                )
                .span(kv.span)
                .help("write `general.alignment` as a u32"));
            }
        }
    }

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
    let mut names: std::collections::HashMap<String, u64> =
        std::collections::HashMap::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let start = c.pos();
        let name_len_peek = Cursor::at(bytes, c.pos() as usize).u64("tensor name length")?;
        if name_len_peek == 0 {
            return Err(ReadError::new(
                &lints::COUNT_OVERRUNS,
                format!(
                    "tensor record {} at offset {start} has an empty name: the header says {n_tensors} tensors, but the records end after {}; what follows is padding or tensor data",
                    tensors.len(),
                    tensors.len()
                ),
            )
            .span(Span::new(n_tensors_at, 8))
            .help(format!("set the tensor count to {}, or re-convert", tensors.len())));
        }
        let name = read_string(&mut c, "tensor name", 0)?.to_owned();
        if name_len_peek >= MAX_NAME {
            return Err(ReadError::new(
                &lints::NAME_TOO_LONG,
                format!(
                    "tensor name `{}…` is {name_len_peek} bytes; ggml allows at most {}",
                    name.chars().take(40).collect::<String>(),
                    MAX_NAME - 1
                ),
            )
            .span(Span::new(start, 8 + name_len_peek))
            .help("shorten the name in the converter"));
        }
        if let Some(prev) = names.get(&name) {
            return Err(ReadError::new(
                &lints::DUPLICATE_TENSOR,
                format!("tensor `{name}` is declared twice (first record at offset {prev})"),
            )
            .span(Span::new(start, 8 + name_len_peek))
            .help("fix the converter's name mapping: two source tensors were given one name"));
        }
        let ndims_at = c.pos();
        let n_dims = c.u32("tensor n_dims")?;
        if n_dims > MAX_DIMS {
            return Err(ReadError::new(
                &lints::TOO_MANY_DIMS,
                format!("tensor `{name}` has n_dims {n_dims}; ggml allows at most {MAX_DIMS}"),
            )
            .span(Span::new(ndims_at, 4))
            .help("the record is corrupt or the tensor needs reshaping to ≤ 4 dims"));
        }
        let ne_at = c.pos();
        let mut ne = Vec::with_capacity(n_dims as usize);
        let mut n_elems: u64 = 1;
        for j in 0..n_dims {
            let d = c.i64("tensor dimension")?;
            if d < 0 {
                return Err(ReadError::new(
                    &lints::BAD_DIMS,
                    format!("tensor `{name}` has ne[{j}] = {d}"),
                )
                .at(ne_at + 8 * j as u64)
                .help("the record is corrupt; re-convert"));
            }
            n_elems = n_elems
                .checked_mul(d as u64)
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| {
                    ReadError::new(
                        &lints::BAD_DIMS,
                        format!("tensor `{name}`: the element count overflows 63 bits"),
                    )
                    .span(Span::new(ne_at, 8 * n_dims as u64))
                    .help("the record is corrupt; re-convert")
                })?;
            ne.push(d as u64);
        }
        let ne_span = Span::new(ne_at, 8 * n_dims as u64);
        let type_at = c.pos();
        let type_id = c.u32("tensor type")?;
        let dtype = DType::from_ggml_id(type_id).ok_or_else(|| {
            ReadError::new(
                &lints::UNKNOWN_DTYPE,
                format!(
                    "tensor `{name}` has GGML type id {type_id}, which no ggml version defines"
                ),
            )
            .span(Span::new(type_at, 4))
            .help("re-convert with a known type, or upgrade apr-lint if the type is new")
        })?;
        let blck = dtype.block_elems();
        let ne0 = ne.first().copied().unwrap_or(1);
        if blck > 1 && ne0 % blck != 0 {
            return Err(ReadError::new(
                &lints::BLOCK_MISALIGNED,
                format!("tensor `{name}` is {dtype} (blocks of {blck}) but its row length ne[0] = {ne0} is not a multiple of {blck}"),
            )
            .span(ne_span)
            .help(format!("quantize `{name}` to a type whose block divides {ne0}, or keep it in F16/F32")));
        }
        let offset_at = c.pos();
        let offset = c.u64("tensor offset")?;
        let dims: Vec<u64> = ne.iter().rev().copied().collect();
        let n_bytes = quant::tensor_n_bytes(dtype, &dims).ok_or_else(|| {
            ReadError::new(
                &lints::BAD_DIMS,
                format!("tensor `{name}`: byte size overflows"),
            )
            .span(ne_span)
            .help("the record is corrupt; re-convert")
        })?;
        if offset % alignment != 0 {
            return Err(ReadError::new(
                &lints::OFFSET_MISALIGNED,
                format!("tensor `{name}` has data offset {offset}, not a multiple of the alignment {alignment}"),
            )
            .span(Span::new(offset_at, 8))
            .help("re-write the file with padding between tensors (gguf-py does this)"));
        }
        names.insert(name.clone(), start);
        tensors.push(TensorInfo {
            name,
            ne,
            dtype,
            offset,
            n_bytes,
            record: Span::new(start, c.pos() - start),
            ne_span,
        });
    }

    let header_end = c.pos();
    let data_offset = pad_to(header_end, alignment)
        .ok_or_else(|| ReadError::new(&lints::TRUNCATED, "data offset overflows").at(header_end))?;
    let data_len = file_len.saturating_sub(data_offset);
    if data_offset > file_len && !tensors.is_empty() {
        return Err(ReadError::new(
            &lints::TRUNCATED,
            format!("the data section should start at offset {data_offset} but the file is {file_len} bytes"),
        )
        .at(file_len)
        .help("the file is truncated; download or convert it again"));
    }

    // Bounds of every tensor against the data section (a truncated download is the classic case).
    for t in &tensors {
        let end = t.offset.checked_add(t.n_bytes);
        if end.is_none_or(|e| e > data_len) {
            return Err(ReadError::new(
                &lints::OUT_OF_BOUNDS,
                format!(
                    "tensor `{}` data [{}, +{}) runs past the end of the file ({} bytes of data after offset {})",
                    t.name, data_offset.saturating_add(t.offset), t.n_bytes, data_len, data_offset
                ),
            )
            .span(Span::new(t.record.end() - 8, 8))
            .help("the file is truncated (compare its size with the source's) or the offset is corrupt"));
        }
    }
    // Overlap: sort by offset, compare neighbours.
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
            .span(Span::new(b.record.end() - 8, 8))
            .help("fix the writer's offset arithmetic"));
        }
    }

    let mut findings = Vec::new();
    // ggml's stricter rule: tensors packed in declaration order, each padded to the alignment.
    let mut expected: u64 = 0;
    for t in &tensors {
        if t.offset != expected {
            findings.push(
                Finding::new(
                    &lints::NON_CONTIGUOUS,
                    format!("tensor `{}` has offset {}; ggml expects {} (tensors packed in table order)", t.name, t.offset, expected),
                )
                .tensor(&t.name)
                .span(Span::new(t.record.end() - 8, 8))
                .help("rewrite the file with gguf-py or llama.cpp; ggml's loader refuses this layout"),
            );
            break;
        }
        expected = pad_to(t.offset + t.n_bytes, alignment).unwrap_or(u64::MAX);
    }
    let data_end = tensors
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap_or(0);
    let padded_end = pad_to(data_end, alignment).unwrap_or(u64::MAX);
    if !tensors.is_empty() && data_len > padded_end {
        findings.push(
            Finding::new(
                &lints::TRAILING_BYTES,
                format!(
                    "{} bytes after the last tensor's data (which ends at offset {})",
                    data_len - padded_end,
                    data_offset + padded_end
                ),
            )
            .span(Span::new(data_offset + padded_end, data_len - padded_end))
            .help("truncate the file at the end of the data, or re-convert"),
        );
    }
    let path = source.path().to_path_buf();
    for f in &mut findings {
        f.file = Some(path.display().to_string());
    }
    Ok(GgufFile {
        source,
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_runs_answer_what_from_utf8_answers_per_string() {
        // Packed as a GGUF string array: u64 length, then the bytes. The 169-byte string's length
        // starts with 0xA9, which completes the lone 0xC3 before it: the buffer is valid there
        // while that string alone is not.
        let long = "ab".repeat(100);
        let strings: Vec<Vec<u8>> = vec![
            b"hello".to_vec(),
            "\u{0120}th\u{00e9}".as_bytes().to_vec(),
            Vec::new(),
            long.as_bytes().to_vec(),
            b"x".to_vec(),
            vec![0xC3],
            vec![b'y'; 169],
            vec![0xFF, b'a'],
            b"after".to_vec(),
            "\u{4e2d}\u{6587}".as_bytes()[..4].to_vec(),
            "\u{1F600}".as_bytes().to_vec(),
        ];
        let mut buf = Vec::new();
        let mut bounds = Vec::new();
        for s in &strings {
            buf.extend((s.len() as u64).to_le_bytes());
            bounds.push((buf.len(), buf.len() + s.len()));
            buf.extend(s);
        }
        let mut runs = Utf8Runs::new(&buf);
        let mut valid = 0;
        for (s, &(a, b)) in strings.iter().zip(&bounds) {
            let want = std::str::from_utf8(s).ok();
            valid += usize::from(want.is_some());
            assert_eq!(runs.get(a, b), want, "{s:?}");
        }
        assert_eq!(valid, 8);
        assert_eq!(runs.get(buf.len(), buf.len() + 1), None);
        // The array check stops at the first string that is not UTF-8, as before.
        assert_eq!(
            whole_utf8_strings(&buf, strings.len() as u64),
            (5, bounds[4].1 as u64)
        );
    }
}
