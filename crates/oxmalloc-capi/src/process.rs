//! This process as the reports name it: its pid, its command line, and
//! whether it is the *main* process of a run or one of its children.
//!
//! `OXMALLOC_PARENT_PID=P` (set by `oxmalloc run` to its own pid) marks the
//! process that `P` started directly as the main process; every other
//! process that inherits the variable (programs the main one runs, forked
//! copies of it) is a child. The test is made when the library is loaded (the
//! parent of a process that was just executed is the one that started it) and
//! the main process's pid is kept, so a forked copy, which inherits that
//! memory but not the pid, knows it is a child. Without the variable every
//! process counts as a main process.
//!
//! Nothing here allocates: the command line is read from
//! `/proc/self/cmdline` into a fixed buffer.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, Ordering};
use engine::os::{getenv, parse_usize};

/// The pid of the main process, when this is (or was forked from) the main
/// process; 0 when the process was started by another one of the run;
/// -1 when there is no run (`OXMALLOC_PARENT_PID` unset): every process is a
/// main process.
static MAIN_PID: AtomicI32 = AtomicI32::new(-1);

/// Reads `OXMALLOC_PARENT_PID`; called when the library is loaded.
pub(crate) fn arm() {
    let Some(parent) = getenv(c"OXMALLOC_PARENT_PID").and_then(parse_usize) else {
        return;
    };
    // SAFETY: getppid has no preconditions.
    let main = if unsafe { libc::getppid() } as usize == parent {
        pid()
    } else {
        0
    };
    MAIN_PID.store(main, Ordering::Relaxed);
}

/// This process's id.
pub(crate) fn pid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Whether this is the main process of the run (see the module docs).
pub(crate) fn is_main() -> bool {
    match MAIN_PID.load(Ordering::Relaxed) {
        -1 => true,
        p => p == pid(),
    }
}

/// Room for the command line; longer ones are cut (at a character).
const CMDLINE_LEN: usize = 512;

/// The command line of this process, from `/proc/self/cmdline`.
pub(crate) struct CommandLine {
    buf: [u8; CMDLINE_LEN],
    len: usize,
}

impl CommandLine {
    /// Reads it now (empty when `/proc` cannot be read).
    pub(crate) fn read() -> Self {
        let mut c = Self {
            buf: [0; CMDLINE_LEN],
            len: 0,
        };
        // SAFETY: a NUL-terminated path; the descriptor is ours.
        let fd = unsafe {
            libc::open(
                c"/proc/self/cmdline".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return c;
        }
        while c.len < CMDLINE_LEN {
            let rest = &mut c.buf[c.len..];
            // SAFETY: `rest` is valid for `rest.len()` bytes.
            let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
            if n <= 0 {
                break;
            }
            c.len += n as usize;
        }
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd) };
        // Drop the terminating NUL of the last argument.
        while c.len > 0 && c.buf[c.len - 1] == 0 {
            c.len -= 1;
        }
        c
    }

    /// The arguments (the first one is the program as it was started).
    fn args(&self) -> impl Iterator<Item = &[u8]> {
        self.buf[..self.len].split(|&b| b == 0)
    }

    /// `argv[0]`.
    pub(crate) fn program(&self) -> &[u8] {
        self.args().next().unwrap_or_default()
    }

    /// The last path component of `argv[0]`.
    pub(crate) fn program_name(&self) -> &[u8] {
        let p = self.program();
        p.rsplit(|&b| b == b'/').next().unwrap_or(p)
    }

    /// Writes the arguments separated by spaces (bytes that are not UTF-8
    /// become U+FFFD).
    pub(crate) fn write_joined(&self, out: &mut dyn Write) -> fmt::Result {
        for (i, a) in self.args().enumerate() {
            if i > 0 {
                out.write_char(' ')?;
            }
            write_lossy(out, a)?;
        }
        Ok(())
    }
}

/// Writes bytes as text, U+FFFD for what is not UTF-8.
pub(crate) fn write_lossy(out: &mut dyn Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        out.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            out.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

/// A fixed-size text buffer that cuts at a character boundary, so what it
/// holds is always valid UTF-8.
pub(crate) struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    /// An empty buffer.
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub(crate) fn as_str(&self) -> &str {
        // Only whole characters of `str`s are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut n = s.len().min(N - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
