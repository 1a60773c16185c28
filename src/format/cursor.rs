//! A bounded little-endian reader over a byte slice. Every read checks the bytes left first and
//! returns a `TRUNCATED` error naming what was being read, the offset and the numbers; nothing here
//! allocates from a count it has not checked against `remaining()`.

use crate::diag::ReadError;
use crate::format::lints;

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Cursor {
            buf,
            pos: pos.min(buf.len()),
        }
    }
    pub fn pos(&self) -> u64 {
        self.pos as u64
    }
    pub fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }
    /// The bytes not read yet (read them, then [`Self::skip`] what was used).
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn truncated(&self, what: &str, need: u64) -> ReadError {
        ReadError::new(
            &lints::TRUNCATED,
            format!(
                "{what} needs {need} bytes, {} remain",
                self.remaining()
            ),
        )
        .at(self.pos as u64)
        .help("the file is truncated or a count before this point is corrupt; download or convert it again")
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    pub fn skip(&mut self, n: u64, what: &str) -> Result<(), ReadError> {
        self.take(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ReadError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, ReadError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn i64(&mut self, what: &str) -> Result<i64, ReadError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// `count` items of at least `min_item_bytes` each must fit in what is left, checked before any
    /// allocation sized by `count`.
    pub fn check_count(
        &self,
        count: u64,
        min_item_bytes: u64,
        what: &str,
    ) -> Result<(), ReadError> {
        let need = count.checked_mul(min_item_bytes);
        match need {
            Some(n) if n <= self.remaining() => Ok(()),
            _ => Err(ReadError::new(
                &lints::TRUNCATED,
                format!(
                    "{what} count {count} needs at least {} bytes, {} remain",
                    need.map(|n| n.to_string())
                        .unwrap_or_else(|| "2^64 or more".into()),
                    self.remaining()
                ),
            )
            .at(self.pos as u64)
            .help("the count is corrupt or the file is truncated")),
        }
    }
}

/// `x` rounded up to a multiple of `align` (a power of two), or None on overflow.
pub fn pad_to(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1).map(|v| v & !(align - 1))
}
