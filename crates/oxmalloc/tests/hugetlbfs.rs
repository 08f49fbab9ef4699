//! hugetlbfs (issue 9, item 4): release follows the file system's page
//! size: only whole, aligned huge pages go back, and only what really went
//! back is reported. Runs where huge pages can be reserved and hugetlbfs
//! mounted (as root: it reserves 32 pages and mounts a scratch hugetlbfs);
//! elsewhere it says so and passes.

mod common;

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{
    inject, region_info, region_of, FileSource, FileSysAllocator, OxMalloc, RegionOptions,
};
use std::ffi::CString;
use std::process::Command;

const HUGE: usize = 2 << 20;

static FILE: FileSysAllocator = FileSysAllocator::new();

fn huge_pages_free() -> usize {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    m.lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Reserves huge pages and mounts a hugetlbfs; the mount point, or why not.
fn setup() -> Result<std::path::PathBuf, String> {
    if huge_pages_free() < 16 {
        std::fs::write("/proc/sys/vm/nr_hugepages", "64")
            .map_err(|e| format!("cannot reserve huge pages: {e}"))?;
    }
    if huge_pages_free() < 16 {
        return Err(format!("only {} huge pages free", huge_pages_free()));
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hugetlbfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let ok = Command::new("mount")
        .args(["-t", "hugetlbfs", "none"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err("cannot mount hugetlbfs".into());
    }
    Ok(dir)
}

#[test]
fn release_follows_the_huge_page_size() {
    let dir = match setup() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("hugetlbfs test skipped: {why}");
            return;
        }
    };
    assert!(oxmalloc::set_numeric_property(
        "oxmalloc.release_rate_milli",
        0
    ));
    let cdir = CString::new(dir.to_str().unwrap()).unwrap();
    FILE.open(FileSource::Path(&cdir), 0, None).unwrap();
    let id = oxmalloc::set_system_allocator(&FILE).unwrap();
    assert_eq!(region_info(id).unwrap().page_size, HUGE);

    // Sixteen 1 MiB blocks: eight huge pages of the file.
    let l = Layout::from_size_align(1 << 20, 8).unwrap();
    let blocks: Vec<*mut u8> = (0..16)
        .map(|_| {
            // SAFETY: non-zero layout.
            let p = unsafe { OxMalloc.alloc(l) };
            assert_eq!(region_of(p), Some(id));
            // SAFETY: a live block.
            unsafe { p.write_bytes(1, 1 << 20) };
            p
        })
        .collect();
    let free_before = huge_pages_free();
    // Free every other block: no huge page is wholly free.
    for p in blocks.iter().step_by(2) {
        // SAFETY: live blocks of `l`, freed once.
        unsafe { OxMalloc.dealloc(*p, l) };
    }
    let r = oxmalloc::release_free_memory();
    assert_eq!(r % HUGE, 0, "released {r}: not whole huge pages");
    let first = r;
    // Then the others: now whole huge pages are free.
    for p in blocks.iter().skip(1).step_by(2) {
        // SAFETY: as above.
        unsafe { OxMalloc.dealloc(*p, l) };
    }
    let r = oxmalloc::release_free_memory();
    eprintln!(
        "released {first} then {r} bytes; huge pages free {free_before} -> {}",
        huge_pages_free()
    );
    assert!(r >= 14 << 20, "released only {r}");
    assert_eq!(r % HUGE, 0, "released {r}: not whole huge pages");
    assert!(
        huge_pages_free() >= free_before + (first + r) / HUGE - 1,
        "reported {} bytes released but the pool got back only {} pages",
        first + r,
        huge_pages_free() - free_before
    );

    // An injected MAP_HUGETLB mapping is read as such.
    let len = 8 << 20;
    // SAFETY: a fresh hugetlb mapping.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
            -1,
            0,
        )
    };
    if p != libc::MAP_FAILED {
        // SAFETY: ours, handed over for good.
        let hid = unsafe { inject(p.cast(), len, RegionOptions::new().exclusive(true)) }.unwrap();
        assert_eq!(region_info(hid).unwrap().page_size, HUGE);
    }
    let _ = Command::new("umount").arg("-l").arg(&dir).status();
}
