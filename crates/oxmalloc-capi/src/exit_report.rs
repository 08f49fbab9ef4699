//! The allocator report when the program exits, for programs that only
//! preload the library:
//!
//! - `MALLOCSTATS=1|2|json` (gperftools' variable, plus `json`): the report
//!   on standard error; 1 the summary, 2 (or more) the detailed report, `json`
//!   one line of JSON;
//! - `OXMALLOC_STATS_DIR=DIR`: the JSON report in `DIR/NAME.PID.json`, one
//!   file per process (`NAME` is the program's file name; `DIR` is created if
//!   missing);
//! - `OXMALLOC_STATS_CHILDREN=full|summary|none` (default `full`): what the
//!   children of a run (see [`crate::process`]) print on standard error: the
//!   whole report, one summary line, or nothing. The main process always
//!   prints the whole report; the files are always whole.
//!
//! Every report names the program (its command line) and the pid. The JSON
//! of a process is `{"program": argv[0], "command_line": "...", "pid": N,
//! "parent_pid": N, "main": bool, "max_rss_bytes": N, "report": {...}}`
//! where `report` is the engine's `write_json`; a child's summary line in
//! JSON has `"summary": {...}` (four figures) instead of `report`.
//!
//! The variables are read when the library is loaded (the program may change
//! its environment later), and standard error is duplicated then (close on
//! exec): programs such as the coreutils close descriptor 2 in an `atexit`
//! handler. The report is written from the library's `.fini_array`
//! destructor, which runs after `atexit` handlers and the destructors of the
//! objects loaded after the library, with `write(2)` and no allocation. A
//! process that ends by a signal or `_exit` writes none.

use crate::process::{self, write_lossy, CommandLine, Text};
use core::ffi::{c_char, CStr};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};
use engine::os::{getenv, parse_usize, FdWriter, FixedBuf};

/// `LEVEL` when `MALLOCSTATS=json`.
const JSON: u32 = u32::MAX;

/// What standard error gets: 0 nothing, 1 or 2 the text report of that
/// level, [`JSON`] the JSON report.
static LEVEL: AtomicU32 = AtomicU32::new(0);
/// Where the report goes: a duplicate of standard error (or 2 itself when it
/// could not be duplicated).
static FD: AtomicI32 = AtomicI32::new(2);
/// What the children print on standard error.
static CHILDREN: AtomicU32 = AtomicU32::new(Children::Full as u32);
/// `OXMALLOC_STATS_DIR`, a NUL-terminated string of the environment
/// (which stays: `setenv` never frees); null when unset.
static DIR: AtomicPtr<c_char> = AtomicPtr::new(core::ptr::null_mut());

/// `OXMALLOC_STATS_CHILDREN`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Children {
    Full = 0,
    Summary = 1,
    Quiet = 2,
}

/// Reads the variables and keeps a descriptor for the report.
pub(crate) fn arm() {
    let level = match getenv(c"MALLOCSTATS") {
        Some(b"json") => JSON,
        Some(v) => parse_usize(v).map_or(0, |l| l.min(2) as u32),
        None => 0,
    };
    if level != 0 {
        LEVEL.store(level, Ordering::Relaxed);
        // SAFETY: duplicating a descriptor has no memory-safety preconditions.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
        if fd >= 0 {
            FD.store(fd, Ordering::Relaxed);
        }
    }
    let children = match getenv(c"OXMALLOC_STATS_CHILDREN") {
        Some(b"summary") => Children::Summary,
        Some(b"none") => Children::Quiet,
        _ => Children::Full,
    };
    CHILDREN.store(children as u32, Ordering::Relaxed);
    if getenv(c"OXMALLOC_STATS_DIR").is_some_and(|d| !d.is_empty()) {
        // SAFETY: a NUL-terminated name; getenv does not allocate.
        DIR.store(
            unsafe { libc::getenv(c"OXMALLOC_STATS_DIR".as_ptr()) },
            Ordering::Release,
        );
    }
}

/// Writes the reports that were asked for.
pub(crate) fn print() {
    let level = LEVEL.load(Ordering::Relaxed);
    let dir = DIR.load(Ordering::Acquire);
    if level == 0 && dir.is_null() {
        return;
    }
    let who = Process::now();
    let mut err = FdWriter(FD.load(Ordering::Relaxed));
    if level != 0 {
        let children = match CHILDREN.load(Ordering::Relaxed) {
            1 => Children::Summary,
            2 => Children::Quiet,
            _ => Children::Full,
        };
        let _ = match (who.main || children == Children::Full, level) {
            (true, JSON) => who
                .write_json(&mut err, true)
                .and_then(|_| err.write_char('\n')),
            (true, _) => who.write_text(&mut err, level),
            (false, _) if children == Children::Quiet => Ok(()),
            (false, JSON) => who
                .write_json(&mut err, false)
                .and_then(|_| err.write_char('\n')),
            (false, _) => who.write_summary_line(&mut err),
        };
    }
    if !dir.is_null() {
        // SAFETY: `arm` stored a string of the environment, which stays.
        who.write_file(unsafe { CStr::from_ptr(dir) }, &mut err);
    }
}

/// The process a report is about.
struct Process {
    cmd: CommandLine,
    pid: i32,
    parent: i32,
    main: bool,
    max_rss: usize,
}

impl Process {
    fn now() -> Self {
        // SAFETY: a zeroed rusage is a valid out-buffer.
        let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: `ru` is a valid out-pointer.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        Self {
            cmd: CommandLine::read(),
            pid: process::pid(),
            // SAFETY: getppid has no preconditions.
            parent: unsafe { libc::getppid() },
            main: process::is_main(),
            max_rss: usize::try_from(ru.ru_maxrss).unwrap_or(0) * 1024,
        }
    }

    /// The command line, cut to a line's worth.
    fn short_command(&self) -> Text<96> {
        let mut t = Text::new();
        let _ = self.cmd.write_joined(&mut t);
        t
    }

    /// The whole text report under a line naming the process.
    fn write_text(&self, out: &mut dyn Write, level: u32) -> fmt::Result {
        writeln!(
            out,
            "oxmalloc report (MALLOCSTATS={level}) for process {} ({}), max RSS {:.1} MiB:",
            self.pid,
            self.short_command().as_str(),
            mib(self.max_rss)
        )?;
        engine::write_report(out, level)
    }

    /// One line: the final figures and their peaks.
    fn write_summary_line(&self, out: &mut dyn Write) -> fmt::Result {
        let s = engine::stats();
        writeln!(
            out,
            "oxmalloc: process {} ({}): in use {:.1} MiB, heap {:.1} MiB; peaks: in spans {:.1} MiB, heap {:.1} MiB, RSS {:.1} MiB",
            self.pid,
            self.short_command().as_str(),
            mib(s.allocated_bytes),
            mib(s.heap_size),
            mib(s.peak_in_use_bytes),
            mib(s.peak_heap_size),
            mib(self.max_rss)
        )
    }

    /// The JSON object of the module docs: with the whole report, or with a
    /// summary.
    fn write_json(&self, out: &mut dyn Write, whole: bool) -> fmt::Result {
        out.write_str("{\"program\":")?;
        let mut program = Text::<256>::new();
        write_lossy(&mut program, self.cmd.program())?;
        engine::write_json_string(out, program.as_str())?;
        out.write_str(",\"command_line\":")?;
        let mut line = Text::<512>::new();
        self.cmd.write_joined(&mut line)?;
        engine::write_json_string(out, line.as_str())?;
        write!(
            out,
            ",\"pid\":{},\"parent_pid\":{},\"main\":{},\"max_rss_bytes\":{},",
            self.pid, self.parent, self.main, self.max_rss
        )?;
        if whole {
            out.write_str("\"report\":")?;
            engine::write_json(out)?;
        } else {
            let s = engine::stats();
            write!(
                out,
                "\"summary\":{{\"allocated_bytes\":{},\"heap_size\":{},\"peak_in_use_bytes\":{},\"peak_heap_size\":{}}}",
                s.allocated_bytes, s.heap_size, s.peak_in_use_bytes, s.peak_heap_size
            )?;
        }
        out.write_char('}')
    }

    /// The JSON report in `dir/NAME.PID.json`; a line on `err` when it
    /// cannot be written.
    fn write_file(&self, dir: &CStr, err: &mut FdWriter) {
        let mut path = PathBuf::new();
        path.push(dir.to_bytes());
        path.push(b"/");
        for &b in self.cmd.program_name().iter().take(64) {
            let keep = b.is_ascii_alphanumeric() || b"._-".contains(&b);
            path.push(&[if keep { b } else { b'_' }]);
        }
        let mut tail = FixedBuf::<32>::new();
        let _ = write!(tail, ".{}.json", self.pid);
        path.push(tail.as_bytes());
        let Some(path) = path.as_c_str() else {
            let _ = writeln!(err, "oxmalloc: OXMALLOC_STATS_DIR is too long");
            return;
        };
        // SAFETY: a NUL-terminated path; an existing directory is fine.
        unsafe { libc::mkdir(dir.as_ptr(), 0o777) };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), flags, 0o666) };
        let ok = fd >= 0 && {
            let mut f = FdWriter(fd);
            let ok = self.write_json(&mut f, true).is_ok() && f.write_char('\n').is_ok();
            // SAFETY: our own descriptor.
            ok & (unsafe { libc::close(fd) } == 0)
        };
        if !ok {
            let e = engine::os::errno();
            let _ = err.write_str("oxmalloc: cannot write the report to ");
            let _ = write_lossy(err, path.to_bytes());
            let _ = writeln!(err, " (errno {e})");
        }
    }
}

/// A file path built in a fixed buffer, NUL-terminated.
struct PathBuf {
    buf: [u8; libc::PATH_MAX as usize],
    len: usize,
    /// Something did not fit.
    cut: bool,
}

impl PathBuf {
    fn new() -> Self {
        Self {
            buf: [0; libc::PATH_MAX as usize],
            len: 0,
            cut: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        // Room for the NUL stays.
        match self.buf.get_mut(self.len..end) {
            Some(d) if end < libc::PATH_MAX as usize => {
                d.copy_from_slice(bytes);
                self.len = end;
            }
            _ => self.cut = true,
        }
    }

    /// The path, unless it was cut or holds a NUL.
    fn as_c_str(&self) -> Option<&CStr> {
        if self.cut {
            return None;
        }
        CStr::from_bytes_with_nul(self.buf.get(..=self.len)?).ok()
    }
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}
