//! Container readers: bytes in, per-file records with byte spans out.
//!
//! Takes a path or bytes; returns a `Container` (a `GgufFile`, an `AprFile` or a Hugging Face
//! checkpoint: SafeTensors weights, one file or shards, with the JSON files beside them) or the first
//! coded `ReadError`. Recognises a file's format by its first bytes, never by extension (a directory
//! or a `*.index.json` is a Hugging Face checkpoint), and names what it is not
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
pub mod partial;
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
    /// A Hugging Face checkpoint: SafeTensors weights plus `config.json` / `tokenizer.json`.
    Hf,
}

impl Format {
    /// `gguf` or `apr`, as reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gguf => "gguf",
            Format::Apr => "apr",
            Format::Hf => "hf",
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
    /// A Hugging Face checkpoint (one or more SafeTensors files and their JSON sidecars).
    Hf(Box<hf::HfCheckpoint>),
}

impl Container {
    /// Which format it is.
    pub fn format(&self) -> Format {
        match self {
            Container::Gguf(_) => Format::Gguf,
            Container::Apr(_) => Format::Apr,
            Container::Hf(_) => Format::Hf,
        }
    }
    /// The file the container was read from; for a sharded checkpoint, its first shard.
    pub fn source(&self) -> &Source {
        match self {
            Container::Gguf(g) => &g.source,
            Container::Apr(a) => &a.source,
            Container::Hf(h) => &h.files[0].source,
        }
    }
    /// Every file the tensors' bytes live in (one, except for a sharded checkpoint); a tensor's
    /// data span is inside `sources()[i]` for its file index `i`.
    pub fn sources(&self) -> Vec<&Source> {
        match self {
            Container::Hf(h) => h.files.iter().map(|f| &f.source).collect(),
            _ => vec![self.source()],
        }
    }
    /// The path the container was opened from (a checkpoint's directory or index, as given).
    pub fn path(&self) -> &Path {
        match self {
            Container::Hf(h) => &h.path,
            _ => self.source().path(),
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
        _ if looks_like_safetensors(bytes) => Ok(Format::Hf),
        Some(b"FUGG") => Err(ReadError::new(&lints::BIG_ENDIAN, "magic reads `FUGG`: a byte-swapped GGUF")
            .span(Span::new(0, 4))
            .help("convert it with gguf-py's `gguf_convert_endian.py model.gguf little`")),
        _ => {
            let what = if bytes.starts_with(b"PK\x03\x04") {
                " (it looks like a zip / PyTorch checkpoint)"
            } else {
                ""
            };
            let shown: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            Err(ReadError::new(&lints::UNKNOWN_FORMAT, format!("the file starts with bytes {shown}: neither GGUF, APR nor SafeTensors{what}"))
                .span(Span::new(0, bytes.len().min(4) as u64))
                .help("pass a GGUF, an APR, or a Hugging Face checkpoint (directory, `model.safetensors` or `model.safetensors.index.json`)"))
        }
    }
}

/// Where a format stands in a conversion chain, for pairing files in batch mode: a file pairs with
/// a file of a higher rank, the one it was converted from (Hugging Face checkpoint 2 → GGUF 1 →
/// APR 0).
pub fn conversion_rank(f: Format) -> u8 {
    match f {
        Format::Apr => 0,
        Format::Gguf => 1,
        Format::Hf => CHECKPOINT_RANK,
    }
}

/// The rank of a Hugging Face checkpoint (a directory is recognised by its files, not a magic).
pub const CHECKPOINT_RANK: u8 = 2;

/// A directory holding a Hugging Face checkpoint: `config.json` beside SafeTensors weights (one
/// file or an index). Batch mode treats it as one model, not a tree of files.
pub fn is_checkpoint_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.filter_map(Result::ok).any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".safetensors") || n.ends_with(".safetensors.index.json")
            })
        })
}

/// A file that belongs to a Hugging Face checkpoint (a SafeTensors shard or its index).
pub fn is_checkpoint_file(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .is_some_and(|n| n.ends_with(".safetensors") || n.ends_with(".safetensors.index.json"))
}

/// What a file's first bytes say it is, for finding models in a directory without reading them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek {
    /// A model this build reads (by magic).
    Model(Format),
    /// A Git LFS pointer: the model's bytes were never pulled.
    LfsPointer,
    /// Anything else (also an unreadable file).
    Other,
}

/// Read at most the first 64 bytes of `path` and say what they are.
pub fn peek(path: &Path) -> Peek {
    use std::io::Read;
    // Only regular files (symlinks followed): opening a named pipe blocks until a writer comes,
    // and a device is no model.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Peek::Other;
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|f| {
            let mut n = 0;
            let mut f = f.take(head.len() as u64);
            loop {
                match f.read(&mut head[n..])? {
                    0 => break Ok(n),
                    k => n += k,
                }
            }
        })
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"version https://git-lfs") {
        return Peek::LfsPointer;
    }
    match sniff(head) {
        Ok(f) => Peek::Model(f),
        Err(_) => Peek::Other,
    }
}

/// An 8-byte little-endian header length that fits the file, then a JSON object: SafeTensors has
/// no magic, so this is the shape its first bytes must have (the reader then checks everything).
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..8) else {
        return false;
    };
    let n = u64::from_le_bytes(len.try_into().unwrap_or([0xff; 8]));
    bytes.get(8) == Some(&b'{') && n <= bytes.len() as u64 - 8
}

/// Read any supported container from bytes already opened (a SafeTensors file is read as a
/// single-file checkpoint, its sidecar JSON files looked up beside its path).
pub fn read_source(source: Source) -> Result<Container, ReadError> {
    let path = source.path().to_path_buf();
    match sniff(source.bytes()).map_err(|e| e.with_path(&path))? {
        Format::Gguf => gguf::read(source).map(Container::Gguf),
        Format::Apr => apr::read(source).map(Container::Apr),
        Format::Hf => hf::from_source(source).map(|h| Container::Hf(Box::new(h))),
    }
}

/// Is `path` a Hugging Face checkpoint named by something other than its weights: a directory
/// or a shard index (`*.safetensors.index.json`)?
pub fn is_checkpoint_path(path: &Path) -> bool {
    path.is_dir()
        || path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".index.json"))
}

/// Open `path` read-only and read it: a file by its first bytes, a directory or index as a Hugging
/// Face checkpoint.
pub fn open(path: &Path) -> Result<Container, ReadError> {
    if is_checkpoint_path(path) {
        return hf::open(path).map(|h| Container::Hf(Box::new(h)));
    }
    read_source(Source::open(path)?)
}
