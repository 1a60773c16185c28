//! A GGUF v3 writer that lays files out exactly as gguf-py's `GGUFWriter` does (and llama.cpp's
//! `gguf_write_to_file`): header, metadata in insertion order, tensor infos in insertion order with
//! `ne` = dims reversed, zero padding to the alignment, then each tensor's data followed by zero
//! padding to the alignment (after the last tensor too). Offsets are relative to the data section;
//! tensor k starts at the sum of the padded sizes of tensors 0..k.
//!
//! For damage tests every tensor can carry a raw `ne`, type id or offset that the writer copies
//! verbatim, and a metadata value can be raw bytes under any type id.

use std::io::{self, Write};
use std::path::Path;

use crate::format::gguf::{ArrayRef, GgufFile, MAGIC, Value, ValueType};
use crate::quant::DType;

/// A metadata value. Arrays are typed; `Raw` writes a type id and then `payload` verbatim (damage
/// tests: unknown type ids, bad bools, truncated strings).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
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
    ArrayU8(Vec<u8>),
    ArrayI8(Vec<i8>),
    ArrayU16(Vec<u16>),
    ArrayI16(Vec<i16>),
    ArrayU32(Vec<u32>),
    ArrayI32(Vec<i32>),
    ArrayF32(Vec<f32>),
    ArrayBool(Vec<bool>),
    ArrayString(Vec<String>),
    ArrayU64(Vec<u64>),
    ArrayI64(Vec<i64>),
    ArrayF64(Vec<f64>),
    Raw { type_id: u32, payload: Vec<u8> },
}

impl MetaValue {
    pub fn string(s: impl Into<String>) -> MetaValue {
        MetaValue::String(s.into())
    }

    /// The GGUF type id written before the value (9 for arrays).
    pub fn type_id(&self) -> u32 {
        use MetaValue::*;
        match self {
            U8(_) => 0,
            I8(_) => 1,
            U16(_) => 2,
            I16(_) => 3,
            U32(_) => 4,
            I32(_) => 5,
            F32(_) => 6,
            Bool(_) => 7,
            String(_) => 8,
            U64(_) => 10,
            I64(_) => 11,
            F64(_) => 12,
            Raw { type_id, .. } => *type_id,
            _ => 9,
        }
    }

    /// Value bytes (after the type id), as gguf-py's `_pack_val` writes them.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn arr<T: Copy>(out: &mut Vec<u8>, elem: u32, xs: &[T], put: impl Fn(&mut Vec<u8>, T)) {
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(xs.len() as u64).to_le_bytes());
            for &x in xs {
                put(out, x);
            }
        }
        fn s(out: &mut Vec<u8>, v: &str) {
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        use MetaValue::*;
        match self {
            U8(v) => out.push(*v),
            I8(v) => out.push(*v as u8),
            U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            F32(v) => out.extend_from_slice(&v.to_bits().to_le_bytes()),
            Bool(v) => out.push(*v as u8),
            String(v) => s(out, v),
            U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            F64(v) => out.extend_from_slice(&v.to_bits().to_le_bytes()),
            ArrayU8(xs) => arr(out, 0, xs, |o, x| o.push(x)),
            ArrayI8(xs) => arr(out, 1, xs, |o, x| o.push(x as u8)),
            ArrayU16(xs) => arr(out, 2, xs, |o, x| o.extend_from_slice(&x.to_le_bytes())),
            ArrayI16(xs) => arr(out, 3, xs, |o, x| o.extend_from_slice(&x.to_le_bytes())),
            ArrayU32(xs) => arr(out, 4, xs, |o, x| o.extend_from_slice(&x.to_le_bytes())),
            ArrayI32(xs) => arr(out, 5, xs, |o, x| o.extend_from_slice(&x.to_le_bytes())),
            ArrayF32(xs) => arr(out, 6, xs, |o, x| {
                o.extend_from_slice(&x.to_bits().to_le_bytes())
            }),
            ArrayBool(xs) => arr(out, 7, xs, |o, x| o.push(x as u8)),
            ArrayString(xs) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(xs.len() as u64).to_le_bytes());
                for x in xs {
                    s(out, x);
                }
            }
            ArrayU64(xs) => arr(out, 10, xs, |o, x| o.extend_from_slice(&x.to_le_bytes())),
            ArrayI64(xs) => arr(out, 11, xs, |o, x| o.extend_from_slice(&x.to_le_bytes())),
            ArrayF64(xs) => arr(out, 12, xs, |o, x| {
                o.extend_from_slice(&x.to_bits().to_le_bytes())
            }),
            Raw { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// A value read by our GGUF reader, arrays decoded from the file's bytes with their exact
    /// element type (no detour through f64).
    pub fn from_value(g: &GgufFile, v: &Value) -> MetaValue {
        match v {
            Value::U8(x) => MetaValue::U8(*x),
            Value::I8(x) => MetaValue::I8(*x),
            Value::U16(x) => MetaValue::U16(*x),
            Value::I16(x) => MetaValue::I16(*x),
            Value::U32(x) => MetaValue::U32(*x),
            Value::I32(x) => MetaValue::I32(*x),
            Value::F32(x) => MetaValue::F32(*x),
            Value::Bool(x) => MetaValue::Bool(*x),
            Value::String(x) => MetaValue::String(x.clone()),
            Value::U64(x) => MetaValue::U64(*x),
            Value::I64(x) => MetaValue::I64(*x),
            Value::F64(x) => MetaValue::F64(*x),
            Value::Array(a) => array_from_file(g, a),
        }
    }
}

/// Decode an array's elements from the file (the reader validated its bytes).
fn array_from_file(g: &GgufFile, a: &ArrayRef) -> MetaValue {
    let bytes = g.source.slice(a.span.offset, a.span.len).unwrap_or(&[]);
    fn fixed<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        let (chunks, _) = bytes.as_chunks::<N>();
        chunks.iter().map(|c| f(*c)).collect()
    }
    match a.elem {
        ValueType::U8 => MetaValue::ArrayU8(bytes.to_vec()),
        ValueType::I8 => MetaValue::ArrayI8(fixed(bytes, |[b]| b as i8)),
        ValueType::U16 => MetaValue::ArrayU16(fixed(bytes, u16::from_le_bytes)),
        ValueType::I16 => MetaValue::ArrayI16(fixed(bytes, i16::from_le_bytes)),
        ValueType::U32 => MetaValue::ArrayU32(fixed(bytes, u32::from_le_bytes)),
        ValueType::I32 => MetaValue::ArrayI32(fixed(bytes, i32::from_le_bytes)),
        ValueType::F32 => MetaValue::ArrayF32(fixed(bytes, f32::from_le_bytes)),
        ValueType::Bool => MetaValue::ArrayBool(fixed(bytes, |[b]| b != 0)),
        ValueType::String => {
            MetaValue::ArrayString(g.array_strings(a).into_iter().map(str::to_owned).collect())
        }
        ValueType::U64 => MetaValue::ArrayU64(fixed(bytes, u64::from_le_bytes)),
        ValueType::I64 => MetaValue::ArrayI64(fixed(bytes, i64::from_le_bytes)),
        ValueType::F64 => MetaValue::ArrayF64(fixed(bytes, f64::from_le_bytes)),
        // The reader refuses nested arrays; keep the bytes if one ever gets here.
        ValueType::Array => MetaValue::Raw {
            type_id: 9,
            payload: bytes.to_vec(),
        },
    }
}

/// One tensor to write.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    /// Canonical row-major dims, outermost first; the file gets `ne` = these reversed.
    pub dims: Vec<u64>,
    pub dtype: DType,
    /// The data, written verbatim (its length sets the next tensor's offset, as in gguf-py).
    pub bytes: Vec<u8>,
    /// Damage: write this `ne` instead of `dims` reversed.
    pub ne_override: Option<Vec<u64>>,
    /// Damage: write this type id instead of the dtype's.
    pub type_id_override: Option<u32>,
    /// Damage: write this data offset instead of the computed one (the data still goes where the
    /// computed offset says).
    pub offset_override: Option<u64>,
}

impl GgufTensor {
    pub fn new(
        name: impl Into<String>,
        dims: Vec<u64>,
        dtype: DType,
        bytes: Vec<u8>,
    ) -> GgufTensor {
        GgufTensor {
            name: name.into(),
            dims,
            dtype,
            bytes,
            ne_override: None,
            type_id_override: None,
            offset_override: None,
        }
    }

    /// The `ne` written to the file: the override, else dims reversed.
    pub fn ne(&self) -> Vec<u64> {
        self.ne_override
            .clone()
            .unwrap_or_else(|| self.dims.iter().rev().copied().collect())
    }

    fn type_id(&self) -> u32 {
        self.type_id_override
            .or(self.dtype.ggml_id())
            .expect("GgufTensor dtype must be a GGML type (or carry a type_id_override)")
    }
}

/// A whole GGUF file, written in one go.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    pub magic: [u8; 4],
    pub version: u32,
    /// Data alignment used for layout. Keep `general.alignment` in `metadata` consistent with it
    /// (`from_file` copies both); the writer does not add the key.
    pub alignment: u64,
    /// In file order; duplicates are written as given.
    pub metadata: Vec<(String, MetaValue)>,
    /// In file order; data is laid out in this order.
    pub tensors: Vec<GgufTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn pad(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufWriter {
    /// Version 3, alignment 32, no metadata, no tensors.
    pub fn new() -> GgufWriter {
        GgufWriter {
            magic: *MAGIC,
            version: 3,
            alignment: crate::format::gguf::DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn meta(&mut self, key: impl Into<String>, value: MetaValue) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    pub fn tensor(&mut self, t: GgufTensor) -> &mut Self {
        self.tensors.push(t);
        self
    }

    /// Copy everything from a read file: version, alignment, every metadata pair (arrays
    /// included, exact element types) and every tensor with its bytes, in file order. Writing
    /// the result reproduces a well-formed (packed, gguf-py-laid-out) file byte for byte.
    pub fn from_file(g: &GgufFile) -> GgufWriter {
        GgufWriter {
            magic: *MAGIC,
            version: g.version,
            alignment: g.alignment,
            metadata: g
                .metadata
                .iter()
                .map(|kv| (kv.key.clone(), MetaValue::from_value(g, &kv.value)))
                .collect(),
            tensors: g
                .tensors
                .iter()
                .map(|t| {
                    GgufTensor::new(
                        t.name.clone(),
                        t.ne.iter().rev().copied().collect(),
                        t.dtype,
                        g.tensor_bytes(t).to_vec(),
                    )
                })
                .collect(),
        }
    }

    /// Everything before the data section: header, metadata, tensor infos, padding.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            v.encode(&mut out);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            let ne = t.ne();
            out.extend_from_slice(&(ne.len() as u32).to_le_bytes());
            for d in ne {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id().to_le_bytes());
            out.extend_from_slice(&t.offset_override.unwrap_or(offset).to_le_bytes());
            offset += pad(t.bytes.len() as u64, self.alignment);
        }
        out.resize(pad(out.len() as u64, self.alignment) as usize, 0);
        out
    }

    /// Absolute offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.header_bytes().len() as u64
    }

    /// Write the whole file to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.header_bytes())?;
        let zeros = vec![0u8; self.alignment as usize];
        for t in &self.tensors {
            w.write_all(&t.bytes)?;
            let n = t.bytes.len() as u64;
            w.write_all(&zeros[..(pad(n, self.alignment) - n) as usize])?;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// Stream the file to `path` (no second copy of the tensor data in memory).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        self.write_to(&mut w)?;
        w.flush()
    }
}
