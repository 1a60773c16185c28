//! The bytes of one input file: a read-only memory map, or an owned buffer (tests, fuzzing).
//!
//! Files are opened read-only and never written. A file that shrinks while mapped would make the
//! kernel raise SIGBUS on access to the vanished pages; `open` therefore records the length and
//! modification time it mapped, `is_unchanged` lets callers re-check before they report, and
//! `install_sigbus_guard` (installed by the binary) turns the fault into exit 2 with a code.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::ReadError;
use crate::format::lints;

enum Store {
    /// The map, and the open file behind it for positioned reads ([`Source::read_at`]).
    Mmap(memmap2::Mmap, File),
    Owned(Vec<u8>),
    Empty,
}

/// A positioned read ([`Source::read_at`]) that could not be done: the bytes asked for and why.
/// The first one of a file is kept ([`Source::read_failure`]) for the pipeline to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadFailure {
    /// Absolute byte offset of the read.
    pub offset: u64,
    /// Bytes asked for.
    pub len: u64,
    /// The system's reason (`failed to fill whole buffer` for a file that ended early).
    pub error: String,
}

/// Make a SIGBUS (a mapped input that shrank under us: its vanished pages cannot be read) end the
/// process with exit code 2 and a coded message instead of a crash. For binaries: library code never
/// exits on its own, so this is opt-in and `main` installs it. Idempotent.
#[cfg(unix)]
pub fn install_sigbus_guard() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        const MSG: &[u8] = b"\nerror[APRL-T002]: an input file shrank or changed while apr-lint had it mapped (SIGBUS); \
nothing was reported. Wait for the program writing it to finish, then lint again.\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe; MSG is a static buffer.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(2);
        }
    }
    // SAFETY: installs a handler that only calls async-signal-safe functions (above). SIGBUS is
    // raised synchronously by a fault on the memory map, which is the only mapping we make.
    unsafe {
        libc::signal(libc::SIGBUS, on_sigbus as *const () as libc::sighandler_t);
    }
}

/// Ranges closer than this are read as one by [`Source::prefetch`].
pub const PREFETCH_GAP: u64 = 16 * 1024;

/// An immutable view of a whole file. Cheap to clone.
#[derive(Clone)]
pub struct Source {
    store: Arc<Store>,
    path: PathBuf,
    mtime: Option<std::time::SystemTime>,
    /// The first positioned read of this file that failed (shared by clones).
    failure: Arc<std::sync::OnceLock<ReadFailure>>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({}, {} bytes)", self.path.display(), self.len())
    }
}

impl Source {
    /// Map `path` read-only.
    pub fn open(path: &Path) -> Result<Source, ReadError> {
        let io_err = |what: &str, e: std::io::Error| {
            ReadError::new(
                &lints::IO,
                format!("cannot {what} `{}`: {e}", path.display()),
            )
            .help("pass the path of a regular, readable model file")
            .with_path(path)
        };
        let meta = std::fs::metadata(path).map_err(|e| io_err("read", e))?;
        if meta.is_dir() {
            return Err(
                ReadError::new(&lints::IO, format!("`{}` is a directory", path.display()))
                    .help("pass a .gguf or .apr file, not a folder")
                    .with_path(path),
            );
        }
        let file = File::open(path).map_err(|e| io_err("open", e))?;
        let len = file.metadata().map_err(|e| io_err("stat", e))?.len();
        let mtime = meta.modified().ok();
        if len == 0 {
            return Ok(Source {
                store: Arc::new(Store::Empty),
                path: path.to_path_buf(),
                mtime,
                failure: Arc::default(),
            });
        }
        // SAFETY: the map is read-only (the file was opened read-only, so nothing in this process can
        // write through it). We assume no other process truncates the file while it is mapped: if one
        // does, access to the vanished pages raises SIGBUS. `is_unchanged` detects a change of length
        // or mtime after the fact, and the CLI refuses to report on a file that changed.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err("map", e))?;
        Ok(Source {
            store: Arc::new(Store::Mmap(map, file)),
            path: path.to_path_buf(),
            mtime,
            failure: Arc::default(),
        })
    }

    /// Bytes already in memory (tests, fuzzing), under a display name.
    pub fn from_vec(bytes: Vec<u8>, name: impl Into<PathBuf>) -> Source {
        Source {
            store: Arc::new(Store::Owned(bytes)),
            path: name.into(),
            mtime: None,
            failure: Arc::default(),
        }
    }

    /// The whole file (mapped or owned).
    pub fn bytes(&self) -> &[u8] {
        match &*self.store {
            Store::Mmap(m, _) => m,
            Store::Owned(v) => v,
            Store::Empty => &[],
        }
    }

    /// File length in bytes.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Whether the file has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The path it was opened from (or the name given to `from_vec`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes `offset..offset+len`, or None when the range is not inside the file.
    pub fn slice(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        self.bytes().get(offset as usize..end as usize)
    }

    /// Read `buf.len()` bytes at `offset` into `buf` with a positioned read (`pread`), not through
    /// the map: the pages stay in the page cache and are never mapped into this process, so there
    /// is no page fault, nothing to release and nothing to unmap. For scattered reads of a few KB
    /// (the sampled rows); what is read whole and large is cheaper through the map ([`Self::bytes`]).
    ///
    /// A range outside the mapped length, or a file that has shrunk since it was opened (the read
    /// ends early), is a [`ReadFailure`]; the first one is also kept for [`Self::read_failure`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadFailure> {
        let len = buf.len() as u64;
        let fail = |error: String| {
            let f = ReadFailure { offset, len, error };
            let _ = self.failure.set(f.clone());
            Err(f)
        };
        let in_range = offset.checked_add(len).is_some_and(|end| end <= self.len());
        if !in_range {
            return fail(format!(
                "the range ends past the {} bytes the file had when opened",
                self.len()
            ));
        }
        match &*self.store {
            #[cfg(unix)]
            Store::Mmap(_, file) => {
                use std::os::unix::fs::FileExt;
                match file.read_exact_at(buf, offset) {
                    Ok(()) => Ok(()),
                    Err(e) => fail(e.to_string()),
                }
            }
            _ => {
                buf.copy_from_slice(&self.bytes()[offset as usize..(offset + len) as usize]);
                Ok(())
            }
        }
    }

    /// The first positioned read of this file that failed, if any did.
    pub fn read_failure(&self) -> Option<ReadFailure> {
        self.failure.get().cloned()
    }

    /// Tell the kernel this process is done with `span` for now: its pages leave this process's
    /// resident set (they stay in the page cache and fault back in, unchanged, if read again). Keeps
    /// peak memory at what is being compared, not at every 64 KiB window ever touched.
    pub fn release(&self, span: crate::diag::Span) {
        #[cfg(unix)]
        if let Store::Mmap(m, _) = &*self.store {
            let end = span.end().min(m.len() as u64);
            if span.offset >= end {
                return;
            }
            // SAFETY: the map is read-only and MAP_SHARED over a file (`Mmap::map`), so
            // MADV_DONTNEED only drops this process's page-table entries: a later read faults the
            // same bytes back in from the page cache. No slice into the map is invalidated.
            let _ = unsafe {
                m.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    span.offset as usize,
                    (end - span.offset) as usize,
                )
            };
        }
    }

    /// Map `span`'s pages into this process in one call (`MADV_POPULATE_READ`, Linux ≥ 5.14)
    /// before a sequential pass reads them, instead of one page fault per 64 KiB. Best effort:
    /// without the advice the reads fault the pages in as usual.
    pub fn populate(&self, span: crate::diag::Span) {
        #[cfg(target_os = "linux")]
        if let Store::Mmap(m, _) = &*self.store {
            let end = span.end().min(m.len() as u64);
            if span.offset < end {
                let _ = m.advise_range(
                    memmap2::Advice::PopulateRead,
                    span.offset as usize,
                    (end - span.offset) as usize,
                );
            }
        }
    }

    /// Ask the kernel to read `spans` into the page cache now, all at once (`MADV_WILLNEED`:
    /// asynchronous, returns before the reads finish), so the accesses that follow find their pages
    /// instead of faulting them in one at a time. On a cold cache this is what keeps a run that
    /// touches a few hundred scattered ranges from waiting on a few hundred reads in a row — and
    /// from the kernel's read-around, which on a fault reads up to `read_ahead_kb` (8 MiB here)
    /// around the page for every range. Spans are sorted, clipped to the file and merged where
    /// less than [`PREFETCH_GAP`] apart (one larger read is cheaper than two). Best effort: without
    /// the advice the reads fault the pages in as usual. Returns the bytes asked for.
    pub fn prefetch(&self, spans: &[crate::diag::Span]) -> u64 {
        let Store::Mmap(m, _) = &*self.store else {
            return 0;
        };
        let n = m.len() as u64;
        let mut v: Vec<(u64, u64)> = spans
            .iter()
            .map(|s| (s.offset.min(n), s.end().min(n)))
            .filter(|(a, b)| a < b)
            .collect();
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(PREFETCH_GAP) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut asked = 0;
        for (a, b) in merged {
            asked += b - a;
            #[cfg(unix)]
            let _ = m.advise_range(memmap2::Advice::WillNeed, a as usize, (b - a) as usize);
        }
        asked
    }

    /// True when the file on disk still has the length and mtime it had when mapped.
    pub fn is_unchanged(&self) -> bool {
        if matches!(&*self.store, Store::Owned(_)) {
            return true;
        }
        match std::fs::metadata(&self.path) {
            Ok(m) => m.len() == self.len() && m.modified().ok() == self.mtime,
            Err(_) => false,
        }
    }
}
