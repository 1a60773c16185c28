//! An APR v2 writer laying files out as `shared/spec/apr-v2.md` describes: 64-byte header with
//! its CRC, compact JSON metadata zero-padded to 64, the packed index sorted by name bytes
//! zero-padded to 64, payloads in insertion order (as aprender's streaming writer), each 64-aligned
//! and zero-padded to 64 (the last one too), then — aprender flavour — a 4-byte CRC-32 footer of
//! every preceding byte.
//!
//! Every field a damage test may want to break is a public field (magic, version, flags, footer,
//! duplicate metadata keys, unsorted index); byte-level damage is applied to `to_bytes()` output.

use std::io::{self, Write};
use std::path::Path;

use crate::format::apr::{ALIGN, HEADER_LEN, MAGIC, flags, header_crc};
use crate::format::crc32;
use crate::quant::DType;

/// Which producer's conventions to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `apr import` (aprender): HF names for qwen2/qwen3, flags `LAYOUT_ROW_MAJOR` (0x0400), footer.
    Aprender,
    /// `apr import --preserve-q4k` (realizar): GGUF names, flags `QUANTIZED` (0x0020), no footer.
    Realizar,
}

impl Flavour {
    pub fn flags(self) -> u16 {
        match self {
            Flavour::Aprender => flags::LAYOUT_ROW_MAJOR,
            Flavour::Realizar => flags::QUANTIZED,
        }
    }
    pub fn has_footer(self) -> bool {
        matches!(self, Flavour::Aprender)
    }
}

/// The canonical APR dtype code for a type (`apr-v2.md`, "Dtype codes"): GGML types under their
/// GGML id (as realizar writes them; F64/I8/I16/I32/I64 keep GGML ids 28/24/25/26/27 so they do not
/// collide with Q4_1/Q5_0/Q5_1), APR_Q4 128, APR_Q8 129, U8 7 (aprender's own meaning).
pub fn apr_code(dt: DType) -> u8 {
    match dt {
        DType::AprQ4 => 128,
        DType::AprQ8 => 129,
        DType::U8 => 7,
        _ => {
            let id = dt
                .ggml_id()
                .expect("every DType but APR_Q4, APR_Q8 and U8 has a GGML id");
            u8::try_from(id).expect("GGML ids fit in a byte")
        }
    }
}

/// One tensor as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AprTensor {
    pub name: String,
    /// As stored: outermost first, last dim contiguous (`[out, in]` for a correct weight).
    pub dims: Vec<u64>,
    /// APR dtype code (see [`apr_code`]).
    pub code: u8,
    /// Payload, written verbatim; the index `size` is its length.
    pub bytes: Vec<u8>,
}

impl AprTensor {
    pub fn new(name: impl Into<String>, dims: Vec<u64>, dtype: DType, bytes: Vec<u8>) -> AprTensor {
        AprTensor {
            name: name.into(),
            dims,
            code: apr_code(dtype),
            bytes,
        }
    }
    pub fn as_ref(&self) -> AprTensorRef<'_> {
        AprTensorRef {
            name: &self.name,
            dims: &self.dims,
            code: self.code,
            bytes: &self.bytes,
        }
    }
}

/// A tensor whose payload is borrowed (from a memory map, for streaming conversions).
#[derive(Clone, Copy, Debug)]
pub struct AprTensorRef<'a> {
    pub name: &'a str,
    pub dims: &'a [u64],
    pub code: u8,
    pub bytes: &'a [u8],
}

#[derive(Clone, Debug)]
pub struct AprWriter {
    pub magic: [u8; 4],
    /// (major, minor).
    pub version: (u8, u8),
    pub flags: u16,
    /// Append the CRC-32 footer.
    pub footer: bool,
    /// Top-level JSON keys in order; duplicates are written as given.
    pub metadata: Vec<(String, serde_json::Value)>,
    /// Payloads are written in this order.
    pub tensors: Vec<AprTensor>,
    /// Sort index entries by name bytes (true for every real writer).
    pub sort_index: bool,
}

/// Where everything goes, computed once from the metadata and the tensors.
struct Layout {
    metadata: Vec<u8>,
    index: Vec<u8>,
    tensor_index_offset: u64,
    data_offset: u64,
    /// Payload offsets relative to `data_offset`, in payload (insertion) order.
    offsets: Vec<u64>,
}

fn pad64(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Counts and CRCs what passes through.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
    n: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc32::update(self.crc, bytes);
        self.n += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
    fn zeros(&mut self, n: u64) -> io::Result<()> {
        const Z: [u8; ALIGN as usize] = [0; ALIGN as usize];
        let mut left = n;
        while left > 0 {
            let k = left.min(ALIGN);
            self.put(&Z[..k as usize])?;
            left -= k;
        }
        Ok(())
    }
}

impl AprWriter {
    /// Magic `APR\0`, version 2.0, the flavour's flags and footer, sorted index, nothing else.
    pub fn new(flavour: Flavour) -> AprWriter {
        AprWriter {
            magic: *MAGIC,
            version: (2, 0),
            flags: flavour.flags(),
            footer: flavour.has_footer(),
            metadata: Vec::new(),
            tensors: Vec::new(),
            sort_index: true,
        }
    }

    pub fn meta(&mut self, key: impl Into<String>, value: serde_json::Value) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    pub fn tensor(&mut self, t: AprTensor) -> &mut Self {
        self.tensors.push(t);
        self
    }

    /// The metadata as written: a compact JSON object, keys in order (duplicates kept).
    pub fn metadata_json(&self) -> Vec<u8> {
        let mut s = String::from("{");
        for (i, (k, v)) in self.metadata.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::Value::String(k.clone()).to_string());
            s.push(':');
            s.push_str(&v.to_string());
        }
        s.push('}');
        s.into_bytes()
    }

    fn layout(&self, tensors: &[AprTensorRef<'_>]) -> Layout {
        let metadata = self.metadata_json();
        let tensor_index_offset = HEADER_LEN + pad64(metadata.len() as u64);
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut next = 0u64;
        for t in tensors {
            offsets.push(next);
            next += pad64(t.bytes.len() as u64);
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        if self.sort_index {
            order.sort_by(|&a, &b| tensors[a].name.as_bytes().cmp(tensors[b].name.as_bytes()));
        }
        let mut index = Vec::new();
        for i in order {
            let t = &tensors[i];
            let name_len =
                u16::try_from(t.name.len()).expect("APR tensor names are shorter than 64 KiB");
            index.extend_from_slice(&name_len.to_le_bytes());
            index.extend_from_slice(t.name.as_bytes());
            index.push(t.code);
            index.push(u8::try_from(t.dims.len()).expect("APR tensors have at most 255 dims"));
            for d in t.dims {
                index.extend_from_slice(&d.to_le_bytes());
            }
            index.extend_from_slice(&offsets[i].to_le_bytes());
            index.extend_from_slice(&(t.bytes.len() as u64).to_le_bytes());
        }
        let data_offset = tensor_index_offset + pad64(index.len() as u64);
        Layout {
            metadata,
            index,
            tensor_index_offset,
            data_offset,
            offsets,
        }
    }

    fn header(&self, l: &Layout, n_tensors: usize) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[0..4].copy_from_slice(&self.magic);
        h[4] = self.version.0;
        h[5] = self.version.1;
        h[6..8].copy_from_slice(&self.flags.to_le_bytes());
        let count = u32::try_from(n_tensors).expect("at most u32::MAX tensors");
        h[8..12].copy_from_slice(&count.to_le_bytes());
        h[12..20].copy_from_slice(&HEADER_LEN.to_le_bytes());
        let meta_size = u32::try_from(l.metadata.len()).expect("metadata shorter than 4 GiB");
        h[20..24].copy_from_slice(&meta_size.to_le_bytes());
        h[24..32].copy_from_slice(&l.tensor_index_offset.to_le_bytes());
        h[32..40].copy_from_slice(&l.data_offset.to_le_bytes());
        let crc = header_crc(&h);
        h[40..44].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Write the file with `tensors` in place of `self.tensors` (borrowed payloads: a conversion
    /// can stream from a memory map without copying the model).
    pub fn write_refs_to(
        &self,
        w: &mut impl Write,
        tensors: &[AprTensorRef<'_>],
    ) -> io::Result<()> {
        let l = self.layout(tensors);
        let mut cw = CrcWriter {
            inner: w,
            crc: 0,
            n: 0,
        };
        cw.put(&self.header(&l, tensors.len()))?;
        cw.put(&l.metadata)?;
        cw.zeros(l.tensor_index_offset - cw.n)?;
        cw.put(&l.index)?;
        cw.zeros(l.data_offset - cw.n)?;
        for (t, &off) in tensors.iter().zip(&l.offsets) {
            debug_assert_eq!(cw.n, l.data_offset + off);
            cw.put(t.bytes)?;
            let n = t.bytes.len() as u64;
            cw.zeros(pad64(n) - n)?;
        }
        if self.footer {
            let crc = cw.crc;
            cw.inner.write_all(&crc.to_le_bytes())?;
        }
        Ok(())
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let refs: Vec<AprTensorRef<'_>> = self.tensors.iter().map(AprTensor::as_ref).collect();
        self.write_refs_to(w, &refs)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        self.write_to(&mut w)?;
        w.flush()
    }

    /// Stream to `path` with borrowed payloads (see [`write_refs_to`](Self::write_refs_to)).
    pub fn write_refs(&self, path: &Path, tensors: &[AprTensorRef<'_>]) -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        self.write_refs_to(&mut w, tensors)?;
        w.flush()
    }
}
