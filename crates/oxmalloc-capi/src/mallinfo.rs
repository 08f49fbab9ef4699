//! glibc's introspection functions (`<malloc.h>`), answered with oxmalloc's
//! figures: `mallinfo`, `mallinfo2`, `malloc_stats`, `malloc_info`,
//! `malloc_trim` and `mallopt` (`malloc_usable_size` is in
//! [`crate::malloc`]). gperftools' `tc_mallinfo` and `tc_mallopt` are other
//! names of `mallinfo` and `mallopt`.
//!
//! # `mallinfo2` fields
//!
//! | field | oxmalloc figure |
//! |---|---|
//! | `arena` | `generic.heap_size`: bytes obtained from regions and system allocators |
//! | `ordblks` | free runs of pages in the page heap |
//! | `smblks` | 0 (free small objects are counted in bytes only) |
//! | `hblks`, `hblkhd` | 0: large allocations are page-heap spans, counted in `uordblks` |
//! | `usmblks` | 0 (as in glibc) |
//! | `fsmblks` | free bytes in thread caches, transfer caches and central lists |
//! | `uordblks` | `generic.current_allocated_bytes`: bytes in objects the program holds |
//! | `fordblks` | `arena - uordblks`: every free byte, cached, free or released |
//! | `keepcost` | `tcmalloc.pageheap_free_bytes`: free bytes `malloc_trim` would release |
//!
//! `mallinfo` has the same figures in `int` fields, saturated at `INT_MAX`.
//!
//! # `mallopt`
//!
//! `M_TRIM_THRESHOLD` maps onto the release of free pages: 0 releases every
//! free span at once (aggressive decommit), a positive value gives pages back
//! at the release rate (aggressive decommit off), a negative value (glibc:
//! "no trimming") sets the release rate to 0, so that free pages go back only
//! on request (`malloc_trim`). It returns 1. Every other parameter
//! (`M_MMAP_THRESHOLD`, `M_ARENA_MAX`, `M_MXFAST`, …) has no oxmalloc
//! counterpart: `mallopt` returns 0 and changes nothing.
//!
//! # Locks and stdio
//!
//! The figures are copied out (each snapshot takes and drops the heap's
//! locks) before anything is written; `malloc_info` writes through stdio,
//! which may allocate, from a fixed buffer and with no oxmalloc lock held.

use crate::alias::exports;
use core::ffi::c_int;
use core::fmt::{self, Write};
use engine::os::FdWriter;
use engine::size_class::NUM_CLASSES;
use engine::Stats;

/// glibc's `M_TRIM_THRESHOLD`.
const M_TRIM_THRESHOLD: c_int = -1;

/// glibc's `struct mallinfo2`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo2 {
    /// Non-mmapped space allocated (bytes).
    pub arena: usize,
    /// Free chunks.
    pub ordblks: usize,
    /// Free fastbin blocks.
    pub smblks: usize,
    /// Mmapped regions.
    pub hblks: usize,
    /// Bytes in mmapped regions.
    pub hblkhd: usize,
    /// Unused (0).
    pub usmblks: usize,
    /// Bytes in free fastbin blocks.
    pub fsmblks: usize,
    /// Bytes allocated.
    pub uordblks: usize,
    /// Free bytes.
    pub fordblks: usize,
    /// Releasable bytes.
    pub keepcost: usize,
}

/// glibc's `struct mallinfo`: the fields of [`Mallinfo2`] as `int`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo {
    /// See [`Mallinfo2`].
    pub arena: c_int,
    /// See [`Mallinfo2`].
    pub ordblks: c_int,
    /// See [`Mallinfo2`].
    pub smblks: c_int,
    /// See [`Mallinfo2`].
    pub hblks: c_int,
    /// See [`Mallinfo2`].
    pub hblkhd: c_int,
    /// See [`Mallinfo2`].
    pub usmblks: c_int,
    /// See [`Mallinfo2`].
    pub fsmblks: c_int,
    /// See [`Mallinfo2`].
    pub uordblks: c_int,
    /// See [`Mallinfo2`].
    pub fordblks: c_int,
    /// See [`Mallinfo2`].
    pub keepcost: c_int,
}

/// The `mallinfo2` figures of a snapshot (see the module docs).
fn info(s: &Stats) -> Mallinfo2 {
    Mallinfo2 {
        arena: s.heap_size,
        ordblks: s.free_spans,
        smblks: 0,
        hblks: 0,
        hblkhd: 0,
        usmblks: 0,
        fsmblks: s.thread_cache_free_bytes
            + s.transfer_cache_free_bytes
            + s.central_cache_free_bytes,
        uordblks: s.allocated_bytes,
        fordblks: s.heap_size - s.allocated_bytes,
        keepcost: s.pageheap_free_bytes,
    }
}

exports! {
    /// `mallinfo2()`: oxmalloc's figures in glibc's fields (module docs).
    extern "C" [mallinfo2] fn() -> Mallinfo2 {
        info(&engine::stats())
    }
}

exports! {
    /// `mallinfo()` (and gperftools' `tc_mallinfo`): `mallinfo2` in `int`
    /// fields, saturated at `INT_MAX`.
    extern "C" [mallinfo, tc_mallinfo] fn() -> Mallinfo {
        let i = info(&engine::stats());
        let int = |v: usize| c_int::try_from(v).unwrap_or(c_int::MAX);
        Mallinfo {
            arena: int(i.arena),
            ordblks: int(i.ordblks),
            smblks: int(i.smblks),
            hblks: int(i.hblks),
            hblkhd: int(i.hblkhd),
            usmblks: int(i.usmblks),
            fsmblks: int(i.fsmblks),
            uordblks: int(i.uordblks),
            fordblks: int(i.fordblks),
            keepcost: int(i.keepcost),
        }
    }
}

/// Writes glibc's `malloc_stats` text for a snapshot.
fn write_stats(out: &mut dyn Write, s: &Stats) -> fmt::Result {
    // One arena; no mmapped chunks, so the totals are the arena's.
    writeln!(out, "Arena 0:")?;
    writeln!(out, "system bytes     = {:10}", s.heap_size)?;
    writeln!(out, "in use bytes     = {:10}", s.allocated_bytes)?;
    writeln!(out, "Total (incl. mmap):")?;
    writeln!(out, "system bytes     = {:10}", s.heap_size)?;
    writeln!(out, "in use bytes     = {:10}", s.allocated_bytes)?;
    writeln!(out, "max mmap regions = {:10}", 0)?;
    writeln!(out, "max mmap bytes   = {:10}", 0)
}

exports! {
    /// `malloc_stats()`: glibc's summary on standard error ("Arena 0:",
    /// "system bytes = …", "in use bytes = …", "Total (incl. mmap):", …), with
    /// `generic.heap_size` as system bytes and
    /// `generic.current_allocated_bytes` in use.
    extern "C" [malloc_stats] fn() {
        let _ = write_stats(&mut FdWriter(2), &engine::stats());
    }
}

/// A `fmt::Write` into a stdio stream through a fixed buffer.
struct StdioWriter {
    fp: *mut libc::FILE,
    buf: [u8; 1024],
    len: usize,
}

impl StdioWriter {
    /// Hands the buffered bytes to stdio.
    fn flush(&mut self) {
        let Some(bytes) = self.buf.get(..self.len) else {
            return;
        };
        // SAFETY: `fp` is a valid stream (the caller of `malloc_info`);
        // `bytes` is readable.
        unsafe { libc::fwrite(bytes.as_ptr().cast(), 1, bytes.len(), self.fp) };
        self.len = 0;
    }
}

impl Write for StdioWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            if let Some(d) = self.buf.get_mut(self.len) {
                *d = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Writes glibc's `malloc_info` XML: one heap, one `<size>` per size class
/// with free objects in central lists or transfer caches ("fast", like
/// glibc's fastbins; thread caches, like glibc's tcache, are not listed),
/// free page-heap runs as "rest", no mmapped chunks.
fn write_info(
    out: &mut dyn Write,
    s: &Stats,
    classes: &[engine::ClassStats; NUM_CLASSES],
) -> fmt::Result {
    let (mut fast_count, mut fast_bytes) = (0, 0);
    writeln!(out, "<malloc version=\"1\">")?;
    writeln!(out, "<heap nr=\"0\">")?;
    writeln!(out, "<sizes>")?;
    let mut from = 1;
    for c in classes.iter().skip(1) {
        let count = c.central_objects + c.transfer_objects;
        if count > 0 {
            let total = count * c.size;
            writeln!(
                out,
                "  <size from=\"{from}\" to=\"{}\" total=\"{total}\" count=\"{count}\"/>",
                c.size
            )?;
            fast_count += count;
            fast_bytes += total;
        }
        from = c.size + 1;
    }
    writeln!(out, "</sizes>")?;
    let rest = s.pageheap_free_bytes + s.pageheap_unmapped_bytes;
    let totals = |out: &mut dyn Write, mmap: bool| -> fmt::Result {
        writeln!(
            out,
            "<total type=\"fast\" count=\"{fast_count}\" size=\"{fast_bytes}\"/>"
        )?;
        writeln!(
            out,
            "<total type=\"rest\" count=\"{}\" size=\"{rest}\"/>",
            s.free_spans
        )?;
        if mmap {
            writeln!(out, "<total type=\"mmap\" count=\"0\" size=\"0\"/>")?;
        }
        writeln!(out, "<system type=\"current\" size=\"{}\"/>", s.heap_size)?;
        // The heap never shrinks: its current size is its largest.
        writeln!(out, "<system type=\"max\" size=\"{}\"/>", s.heap_size)?;
        writeln!(out, "<aspace type=\"total\" size=\"{}\"/>", s.heap_size)?;
        writeln!(out, "<aspace type=\"mprotect\" size=\"{}\"/>", s.heap_size)
    };
    totals(out, false)?;
    writeln!(out, "</heap>")?;
    totals(out, true)?;
    writeln!(out, "</malloc>")
}

exports! {
    /// `malloc_info(options, fp)`: writes glibc's XML (`<malloc
    /// version="1">`) with oxmalloc's figures to `fp`. Returns 0, or `EINVAL`
    /// when `options` is not 0 (as glibc) or `fp` is null.
    ///
    /// # Safety
    /// `fp` is null or a stream open for writing.
    unsafe extern "C" [malloc_info] fn(options: c_int, fp: *mut libc::FILE) -> c_int {
        if options != 0 || fp.is_null() {
            return libc::EINVAL;
        }
        let s = engine::stats();
        let classes: [engine::ClassStats; NUM_CLASSES] = core::array::from_fn(|c| {
            if c == 0 {
                engine::ClassStats::default()
            } else {
                engine::class_stats(c)
            }
        });
        let mut out = StdioWriter { fp, buf: [0; 1024], len: 0 };
        let _ = write_info(&mut out, &s, &classes);
        out.flush();
        0
    }
}

exports! {
    /// `malloc_trim(pad)`: returns the calling thread's cached objects to the
    /// central lists, then gives every free page back to the OS (as each
    /// region's policy allows; `pad` is not needed: oxmalloc keeps no top
    /// chunk). Returns 1 when memory was released, else 0.
    extern "C" [malloc_trim] fn(_pad: usize) -> c_int {
        engine::mark_thread_idle();
        (engine::release_free_memory() > 0) as c_int
    }
}

exports! {
    /// `mallopt(param, value)` (and gperftools' `tc_mallopt`): 1 for
    /// `M_TRIM_THRESHOLD`, which maps onto oxmalloc's release of free pages;
    /// 0 for every other parameter (module docs).
    extern "C" [mallopt, tc_mallopt] fn(param: c_int, value: c_int) -> c_int {
        if param != M_TRIM_THRESHOLD {
            return 0;
        }
        engine::set_numeric_property("tcmalloc.aggressive_memory_decommit", (value == 0) as usize);
        if value < 0 {
            engine::set_numeric_property("oxmalloc.release_rate_milli", 0);
        }
        1
    }
}
