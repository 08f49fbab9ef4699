//! Reports: the text report TCMalloc users know (level 1: the `MALLOC:`
//! summary; level 2: plus size classes and free spans by length), one section
//! per region, and the same data as JSON. Written into any
//! `core::fmt::Write`, never allocating.

use crate::page_heap::MAX_EXACT_PAGES;
use crate::pagemap::PAGEMAP;
use crate::region::RegionInfo;
use crate::size_class::{NUM_CLASSES, PAGE_SIZE};
use crate::stats::{class_stats, for_each_region, free_span_lengths, stats, Stats};
use core::fmt::{Result, Write};

const MIB: f64 = (1 << 20) as f64;
const RULE: &str = "------------------------------------------------";

fn mib(b: usize) -> f64 {
    b as f64 / MIB
}

fn line(out: &mut dyn Write, sign: char, bytes: usize, what: &str) -> Result {
    writeln!(
        out,
        "MALLOC: {sign} {bytes:>14} ({:>9.1} MiB) {what}",
        mib(bytes)
    )
}

/// Writes the text report. Level 1: the summary; level 2 (or more): also size
/// classes, free spans by length and regions.
pub fn write_report(out: &mut dyn Write, level: u32) -> Result {
    let s = stats();
    writeln!(out, "{RULE}")?;
    line(out, ' ', s.allocated_bytes, "Bytes in use by application")?;
    line(
        out,
        '+',
        s.pageheap_free_bytes,
        "Bytes in page heap freelist",
    )?;
    line(
        out,
        '+',
        s.central_cache_free_bytes,
        "Bytes in central cache freelist",
    )?;
    line(
        out,
        '+',
        s.transfer_cache_free_bytes,
        "Bytes in transfer cache freelist",
    )?;
    line(
        out,
        '+',
        s.thread_cache_free_bytes,
        "Bytes in thread cache freelists",
    )?;
    line(out, '+', s.metadata_bytes, "Bytes in malloc metadata")?;
    writeln!(out, "MALLOC:   ------------")?;
    line(
        out,
        '=',
        s.physical_bytes(),
        "Actual memory used (physical + swap)",
    )?;
    line(
        out,
        '+',
        s.pageheap_unmapped_bytes,
        "Bytes released to OS (aka unmapped)",
    )?;
    writeln!(out, "MALLOC:   ------------")?;
    line(
        out,
        '=',
        s.heap_size + s.metadata_mapped_bytes,
        "Virtual address space used",
    )?;
    writeln!(out, "MALLOC:")?;
    line(
        out,
        ' ',
        s.peak_in_use_bytes,
        "Peak bytes in spans in use (objects + cached free objects)",
    )?;
    line(out, ' ', s.peak_heap_size, "Peak heap size")?;
    writeln!(out, "MALLOC:")?;
    writeln!(
        out,
        "MALLOC: {:>16}              Spans in use",
        s.spans_in_use
    )?;
    writeln!(
        out,
        "MALLOC: {:>16}              Thread heaps in use",
        s.thread_cache_count
    )?;
    writeln!(
        out,
        "MALLOC: {:>16}              Tcmalloc page size",
        PAGE_SIZE
    )?;
    writeln!(out, "{RULE}")?;
    writeln!(
        out,
        "Call release_free_memory() (MallocExtension::ReleaseFreeMemory) to release freelist memory to the OS."
    )?;
    writeln!(
        out,
        "Bytes released to the OS take up virtual address space but no physical memory."
    )?;
    if level >= 2 {
        write_classes(out)?;
        write_page_heap(out)?;
    }
    write_regions(out)
}

fn write_classes(out: &mut dyn Write) -> Result {
    writeln!(out, "{RULE}")?;
    writeln!(
        out,
        "Free objects by size class (central + transfer caches)"
    )?;
    writeln!(out, "{RULE}")?;
    let mut cum = 0;
    for c in 1..NUM_CLASSES {
        let cs = class_stats(c);
        let objs = cs.central_objects + cs.transfer_objects;
        if objs == 0 && cs.spans == 0 {
            continue;
        }
        let bytes = objs * cs.size;
        cum += bytes;
        writeln!(
            out,
            "class {c:3} [ {:>8} bytes ] : {objs:>8} objs; {:>7.1} MiB; {:>7.1} cum MiB; {:>6} spans",
            cs.size,
            mib(bytes),
            mib(cum),
            cs.spans
        )?;
    }
    Ok(())
}

fn write_page_heap(out: &mut dyn Write) -> Result {
    writeln!(out, "{RULE}")?;
    writeln!(out, "PageHeap: free spans by length")?;
    writeln!(out, "{RULE}")?;
    let (mut cum_n, mut cum_r) = (0usize, 0usize);
    let mut res = Ok(());
    free_span_lengths(|n, normal, released| {
        if normal == 0 && released == 0 || res.is_err() {
            return;
        }
        let bytes = |k: usize| k * n * PAGE_SIZE;
        cum_n += bytes(normal);
        cum_r += bytes(released);
        res = if n > MAX_EXACT_PAGES {
            writeln!(
                out,
                ">{MAX_EXACT_PAGES:>4} large * {normal:>6} spans; unmapped: {released:>6} spans"
            )
        } else {
            writeln!(
                out,
                "{n:>6} pages * {normal:>6} spans ~ {:>7.1} MiB; {:>7.1} MiB cum; unmapped: {:>7.1} MiB; {:>7.1} MiB cum",
                mib(bytes(normal)),
                mib(cum_n),
                mib(bytes(released)),
                mib(cum_r)
            )
        };
    });
    res?;
    writeln!(out, "pagemap leaves: {}", PAGEMAP.leaves())
}

fn write_regions(out: &mut dyn Write) -> Result {
    let mut res = Ok(());
    for_each_region(|r| {
        if res.is_ok() {
            res = write_region(out, r);
        }
    });
    res
}

fn write_region(out: &mut dyn Write, r: &RegionInfo) -> Result {
    writeln!(
        out,
        "REGION {:3} {:?} \"{}\" start {:#x} len {} ({:.1} MiB) release {} {}",
        r.id.index(),
        r.kind,
        r.label(),
        r.start,
        r.len,
        mib(r.len),
        r.release.name(),
        if r.exclusive { "exclusive" } else { "shared" }
    )?;
    writeln!(
        out,
        "REGION {:3}   carved {} in use {} free {} released {}",
        r.id.index(),
        r.carved_bytes,
        r.in_use_bytes,
        r.free_bytes,
        r.released_bytes
    )
}

/// Writes the same data as JSON: `{"summary": {...}, "classes": [...],
/// "page_heap": [...], "regions": [...]}`.
pub fn write_json(out: &mut dyn Write) -> Result {
    let s = stats();
    out.write_str("{\"summary\":")?;
    write_summary_json(out, &s)?;
    out.write_str(",\"classes\":[")?;
    let mut sep = Separator::default();
    for c in 1..NUM_CLASSES {
        let cs = class_stats(c);
        if cs.central_objects + cs.transfer_objects == 0 && cs.spans == 0 {
            continue;
        }
        write!(
            out,
            "{}{{\"class\":{c},\"size\":{},\"spans\":{},\"central_objects\":{},\"transfer_objects\":{}}}",
            sep.next(),
            cs.size,
            cs.spans,
            cs.central_objects,
            cs.transfer_objects
        )?;
    }
    out.write_str("],\"page_heap\":[")?;
    let mut sep = Separator::default();
    let mut res = Ok(());
    free_span_lengths(|n, normal, released| {
        if normal == 0 && released == 0 || res.is_err() {
            return;
        }
        res = write!(
            out,
            "{}{{\"pages\":{n},\"large\":{},\"free_spans\":{normal},\"released_spans\":{released}}}",
            sep.next(),
            n > MAX_EXACT_PAGES
        );
    });
    res?;
    out.write_str("],\"regions\":[")?;
    let mut sep = Separator::default();
    let mut res = Ok(());
    for_each_region(|r| {
        if res.is_err() {
            return;
        }
        res = write!(
            out,
            "{}{{\"id\":{},\"kind\":\"{:?}\",\"label\":",
            sep.next(),
            r.id.index(),
            r.kind
        )
        .and_then(|_| write_json_string(out, r.label()))
        .and_then(|_| {
            write!(
                out,
                ",\"start\":{},\"len\":{},\"release\":\"{}\",\"exclusive\":{},\"carved_bytes\":{},\"in_use_bytes\":{},\"free_bytes\":{},\"released_bytes\":{}}}",
                r.start,
                r.len,
                r.release.name(),
                r.exclusive,
                r.carved_bytes,
                r.in_use_bytes,
                r.free_bytes,
                r.released_bytes
            )
        });
    });
    res?;
    out.write_str("]}")
}

fn write_summary_json(out: &mut dyn Write, s: &Stats) -> Result {
    write!(
        out,
        "{{\"allocated_bytes\":{},\"heap_size\":{},\"pageheap_free_bytes\":{},\"pageheap_unmapped_bytes\":{},\"central_cache_free_bytes\":{},\"transfer_cache_free_bytes\":{},\"thread_cache_free_bytes\":{},\"thread_cache_count\":{},\"max_total_thread_cache_bytes\":{},\"spans_in_use\":{},\"free_spans\":{},\"metadata_bytes\":{},\"metadata_mapped_bytes\":{},\"physical_bytes\":{},\"total_released_bytes\":{},\"heap_limit_bytes\":{},\"peak_heap_size\":{},\"peak_in_use_bytes\":{},\"page_size\":{}}}",
        s.allocated_bytes,
        s.heap_size,
        s.pageheap_free_bytes,
        s.pageheap_unmapped_bytes,
        s.central_cache_free_bytes,
        s.transfer_cache_free_bytes,
        s.thread_cache_free_bytes,
        s.thread_cache_count,
        s.max_total_thread_cache_bytes,
        s.spans_in_use,
        s.free_spans,
        s.metadata_bytes,
        s.metadata_mapped_bytes,
        s.physical_bytes(),
        s.total_released_bytes,
        s.heap_limit_bytes,
        s.peak_heap_size,
        s.peak_in_use_bytes,
        PAGE_SIZE
    )
}

/// Writes `s` as a JSON string (quoted, escaped), without allocating.
pub fn write_json_string(out: &mut dyn Write, s: &str) -> Result {
    out.write_char('"')?;
    for ch in s.chars() {
        match ch {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// The commas between the elements of a JSON array: nothing before the
/// first element, "," before every other one.
#[derive(Default)]
struct Separator {
    started: bool,
}

impl Separator {
    fn next(&mut self) -> &'static str {
        if core::mem::replace(&mut self.started, true) {
            ","
        } else {
            ""
        }
    }
}
