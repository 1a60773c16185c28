//! Container readers: bytes in, per-file records with byte spans out.
//!
//! Takes a path or bytes; returns a `Container` (a `GgufFile` or an `AprFile`) or the first coded
//! `ReadError`. Recognises the format by magic, never by extension, and names what it is not
//! (Git LFS pointer, APR v1, legacy APR1) instead of saying "bad magic". Must not know about roles,
//! rules or reports. `writer/` holds the GGUF and APR writers used by tests and benchmarks.

// The readers behind `ModelView`: public for the tests, fuzzers and the CLI's `dump`, not part of
// the documented API (a loader opens a `ModelView`).
#[doc(hidden)]
pub mod apr;
#[doc(hidden)]
pub mod crc32;
#[doc(hidden)]
pub mod cursor;
#[doc(hidden)]
pub mod gguf;
#[doc(hidden)]
pub mod hf;
#[doc(hidden)]
pub mod lints;
#[doc(hidden)]
pub mod npy;
#[doc(hidden)]
pub mod safetensors;
pub mod source;
// Writers exist for the tests, the examples and the benchmark (damaged and generated files); they
// are not part of the documented API.
#[doc(hidden)]
pub mod writer;

use std::path::Path;

use crate::diag::{ReadError, Span};
pub use source::Source;

/// The container format of a file, recognised by its magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// llama.cpp's GGUF (v2, v3).
    Gguf,
    /// aprender's APR v2.
    Apr,
}

impl Format {
    /// `gguf` or `apr`, as reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gguf => "gguf",
            Format::Apr => "apr",
        }
    }
}

/// A file as its reader returned it (records with byte spans); `ModelView` turns it into one view.
#[derive(Clone, Debug)]
pub enum Container {
    /// A GGUF file.
    Gguf(gguf::GgufFile),
    /// An APR file.
    Apr(apr::AprFile),
}

impl Container {
    /// Which format it is.
    pub fn format(&self) -> Format {
        match self {
            Container::Gguf(_) => Format::Gguf,
            Container::Apr(_) => Format::Apr,
        }
    }
    /// The bytes it was read from.
    pub fn source(&self) -> &Source {
        match self {
            Container::Gguf(g) => &g.source,
            Container::Apr(a) => &a.source,
        }
    }
}

impl serde::Serialize for crate::quant::DType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What the first bytes say a file is.
pub fn sniff(bytes: &[u8]) -> Result<Format, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::new(&lints::EMPTY, "the file is empty (0 bytes)")
            .help("an interrupted download or a failed write; download or convert it again"));
    }
    if bytes.starts_with(b"version https://git-lfs") {
        return Err(ReadError::new(
            &lints::LFS_POINTER,
            "this is a Git LFS pointer file, not the model",
        )
        .span(Span::new(0, bytes.len().min(200) as u64))
        .help("run `git lfs pull` in the repository and lint again"));
    }
    match bytes.get(..4) {
        Some(b"GGUF") => Ok(Format::Gguf),
        Some(b"APR\0") | Some(b"APR2") => Ok(Format::Apr),
        Some(b"APRN") => Err(ReadError::new(&lints::APR_V1, "this is an APR v1 file (classical ML: MessagePack + bincode), with no tensors to check")
            .span(Span::new(0, 4))
            .help("nothing to lint here; pass an APR v2 language model")),
        Some(b"APR1") => Err(ReadError::new(&lints::VERSION, "this is a legacy APR1 file (JSON index, Whisper era); no current loader reads it for inference")
            .span(Span::new(0, 4))
            .help("re-convert the model with a current `apr import`")),
        Some(b"FUGG") => Err(ReadError::new(&lints::BIG_ENDIAN, "magic reads `FUGG`: a byte-swapped GGUF")
            .span(Span::new(0, 4))
            .help("convert it with gguf-py's `gguf_convert_endian.py model.gguf little`")),
        _ => {
            let what = if bytes.len() >= 8 && bytes[8..].starts_with(b"{\"") {
                " (it looks like SafeTensors)"
            } else if bytes.starts_with(b"PK\x03\x04") {
                " (it looks like a zip / PyTorch checkpoint)"
            } else {
                ""
            };
            let shown: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            Err(ReadError::new(&lints::UNKNOWN_FORMAT, format!("the file starts with bytes {shown}: neither GGUF nor APR{what}"))
                .span(Span::new(0, bytes.len().min(4) as u64))
                .help("convert the model to GGUF or APR first, or pass the right file"))
        }
    }
}

/// Read any supported container from bytes already opened.
pub fn read_source(source: Source) -> Result<Container, ReadError> {
    let path = source.path().to_path_buf();
    match sniff(source.bytes()).map_err(|e| e.with_path(&path))? {
        Format::Gguf => gguf::read(source).map(Container::Gguf),
        Format::Apr => apr::read(source).map(Container::Apr),
    }
}

/// Open `path` read-only and read it.
pub fn open(path: &Path) -> Result<Container, ReadError> {
    read_source(Source::open(path)?)
}
