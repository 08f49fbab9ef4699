//! Writing text into a caller's buffer: what fits is kept, NUL-terminated,
//! and the length of the whole text is counted (as `snprintf` does).

use core::fmt;

/// A `fmt::Write` into a caller's buffer that keeps room for the final NUL,
/// drops what does not fit, and counts every byte it was given.
pub(crate) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    /// Bytes stored in `buf` (at most `buf.len() - 1`).
    len: usize,
    /// Bytes written to it, stored or not.
    needed: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer into `buf` (which may be empty).
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            needed: 0,
        }
    }

    /// Terminates what was stored with a NUL (when `buf` is not empty) and
    /// returns the length of the whole text.
    pub(crate) fn finish(self) -> usize {
        if let Some(end) = self.buf.get_mut(self.len) {
            *end = 0;
        }
        self.needed
    }
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(1);
        for (d, &b) in self
            .buf
            .iter_mut()
            .take(room)
            .skip(self.len)
            .zip(s.as_bytes())
        {
            *d = b;
            self.len += 1;
        }
        self.needed += s.len();
        Ok(())
    }
}
