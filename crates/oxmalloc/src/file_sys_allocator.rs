//! `FileSysAllocator`: fresh memory from a file on hugetlbfs or tmpfs, or
//! from a memfd (gperftools' `memfs_malloc`, done so that pages really go
//! back).
//!
//! The file grows by chunks mapped `MAP_SHARED` at increasing offsets, one
//! after the other in an address window reserved once (`PROT_NONE`, no
//! swap): the kernel merges them into one mapping, so a heap of any size
//! costs a handful of mappings, never one per chunk (`vm.max_map_count`).
//! Free ranges are released with `madvise(MADV_REMOVE)`, which punches a
//! hole in the file: on tmpfs, memfd and hugetlbfs the file's pages are
//! freed (and read back as zero), where `MADV_DONTNEED` would free nothing.
//! On hugetlbfs, chunks and releases are whole huge pages (the size read
//! with `fstatfs`).
//!
//! The fallback is an allocator of its own: oxmalloc gives it a region of
//! its own, so file memory and fallback memory never share a span. After
//! `fork()` oxmalloc gives the child private copies of the file's chunks,
//! and the child's allocator opens a file of its own.

use crate::backing::fs_page_size;
use crate::os;
use crate::release::{Release, ReleaseOutcome};
use crate::size_class::PAGE_SIZE;
use crate::sync::Mutex;
use crate::sys_allocator::SysAllocator;
use core::ffi::CStr;
use core::fmt;
use core::ptr::NonNull;

/// Where a [`FileSysAllocator`] gets its file.
#[derive(Clone, Copy, Debug)]
pub enum FileSource<'a> {
    /// A path: a directory (a file is created in it) or a file-name prefix
    /// (`PREFIX.XXXXXX` is created), as gperftools'
    /// `TCMALLOC_MEMFS_MALLOC_PATH`. The file is unlinked at once.
    Path(&'a CStr),
    /// An anonymous `memfd_create` file.
    Memfd,
}

/// Why [`FileSysAllocator::open`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// `open` was called before on this allocator.
    AlreadyOpen,
    /// The path is too long for the internal buffer (4 KiB).
    PathTooLong,
    /// Creating the file failed with this `errno`.
    Create(i32),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::AlreadyOpen => f.write_str("file system allocator already open"),
            FileError::PathTooLong => f.write_str("memfs path too long"),
            FileError::Create(e) => write!(f, "cannot create the memfs file (errno {e})"),
        }
    }
}

impl core::error::Error for FileError {}

/// Longest path kept (for reopening in a forked child).
const PATH_MAX: usize = 4096;
/// Address space reserved at a time for the file's chunks when no limit is
/// set (only address space: nothing is committed).
const WINDOW: usize = 64 << 30;

struct State {
    /// The file, or -1 before `open` (or after it failed for good).
    fd: i32,
    /// Bytes of file mapped so far (the next chunk's offset).
    size: usize,
    /// The file system's page (huge page size on hugetlbfs).
    page: usize,
    /// Most bytes to take from the file (0: no limit).
    limit: usize,
    /// Where to go when the file cannot give more.
    fallback: Option<&'static dyn SysAllocator>,
    /// The reserved window: next free address and its end.
    next: usize,
    end: usize,
    /// The path given to `open` (NUL-terminated), empty for a memfd.
    path: [u8; PATH_MAX],
}

/// A system allocator backed by a file (see the module docs). Build it in a
/// `static` with [`FileSysAllocator::new`], [`open`](FileSysAllocator::open)
/// it, then install it with [`crate::set_system_allocator`].
///
/// ```
/// use oxmalloc::{FileSource, FileSysAllocator, MmapSysAllocator};
/// static FILE: FileSysAllocator = FileSysAllocator::new();
/// FILE.open(FileSource::Memfd, 256 << 20, Some(&MmapSysAllocator)).unwrap();
/// oxmalloc::set_system_allocator(&FILE).unwrap();
/// ```
pub struct FileSysAllocator {
    state: Mutex<State>,
}

impl FileSysAllocator {
    /// An allocator with no file yet (it gives nothing until opened).
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                fd: -1,
                size: 0,
                page: 0,
                limit: 0,
                fallback: None,
                next: 0,
                end: 0,
                path: [0; PATH_MAX],
            }),
        }
    }

    /// Creates the file. At most `limit` bytes (0: no limit) come from it;
    /// past that, or when the file cannot grow (no huge pages left), memory
    /// comes from `fallback` (a region of its own), or allocation fails when
    /// it is `None`.
    pub fn open(
        &self,
        source: FileSource<'_>,
        limit: usize,
        fallback: Option<&'static dyn SysAllocator>,
    ) -> Result<(), FileError> {
        let mut st = self.state.lock();
        if st.fd >= 0 {
            return Err(FileError::AlreadyOpen);
        }
        if let FileSource::Path(p) = source {
            let b = p.to_bytes_with_nul();
            if b.len() > PATH_MAX {
                return Err(FileError::PathTooLong);
            }
            st.path[..b.len()].copy_from_slice(b);
        }
        let fd = create(source)?;
        st.fd = fd;
        st.page = fs_page_size(fd);
        st.limit = limit;
        st.fallback = fallback;
        Ok(())
    }

    /// Bytes of the file mapped so far.
    pub fn file_bytes(&self) -> usize {
        self.state.lock().size
    }

    /// Bytes of the file backed by pages now (`st_blocks`): what released
    /// ranges gave back shows here.
    pub fn file_resident_bytes(&self) -> usize {
        let fd = self.state.lock().fd;
        if fd < 0 {
            return 0;
        }
        // SAFETY: a zeroed stat is a valid out-buffer.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: our fd and a valid out-pointer.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return 0;
        }
        st.st_blocks as usize * 512
    }

    /// Reserves a new window for chunks: the limit's worth, or [`WINDOW`].
    fn reserve(st: &mut State, at_least: usize) -> bool {
        let len = if st.limit != 0 { st.limit } else { WINDOW }.max(at_least);
        let len = len.next_multiple_of(st.page);
        let Some(w) = os::reserve_aligned(len, st.page) else {
            return false;
        };
        st.next = w.as_ptr() as usize;
        st.end = st.next + len;
        true
    }

    fn map_chunk(st: &mut State, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let len = size.checked_next_multiple_of(st.page)?;
        if st.limit != 0 && st.size.checked_add(len)? > st.limit {
            return None;
        }
        let align = align.max(st.page);
        let mut at = st.next.next_multiple_of(align);
        if st.end == 0 || at.checked_add(len)? > st.end {
            if !Self::reserve(st, len.checked_add(align)?) {
                return None;
            }
            at = st.next.next_multiple_of(align);
        }
        let off = st.size;
        // SAFETY: ftruncate on our own file descriptor.
        if unsafe { libc::ftruncate(st.fd, (off + len) as libc::off_t) } != 0 {
            return None;
        }
        // SAFETY: MAP_FIXED over part of a window we reserved and own.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                st.fd,
                off as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            // The window keeps its reservation there (a failed MAP_FIXED may
            // have unmapped it: put it back).
            os::reserve_at(at, len);
            // SAFETY: shrink our own file back.
            unsafe { libc::ftruncate(st.fd, off as libc::off_t) };
            return None;
        }
        st.size = off + len;
        st.next = at + len;
        NonNull::new(at as *mut u8).map(|p| NonNull::slice_from_raw_parts(p, len))
    }
}

impl Default for FileSysAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates the file of `source`.
fn create(source: FileSource<'_>) -> Result<i32, FileError> {
    let fd = match source {
        // SAFETY: a NUL-terminated name; memfd_create does not allocate.
        FileSource::Memfd => unsafe { libc::memfd_create(c"oxmalloc".as_ptr(), libc::MFD_CLOEXEC) },
        FileSource::Path(p) => create_in(p)?,
    };
    if fd < 0 {
        return Err(FileError::Create(os::errno()));
    }
    Ok(fd)
}

// SAFETY: chunks are fresh shared mappings of our own file, aligned as asked
// (within a window aligned to the file's page), used by nobody else; a hole
// punched by MADV_REMOVE reads back as zero.
unsafe impl SysAllocator for FileSysAllocator {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let mut st = self.state.lock();
        if st.fd < 0 {
            return None;
        }
        Self::map_chunk(&mut st, size, align)
    }

    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
        // SAFETY: the range is free memory of ours (caller).
        if unsafe { os::advise(ptr.as_ptr(), len, libc::MADV_REMOVE) } {
            ReleaseOutcome::Zeroed
        } else {
            ReleaseOutcome::Kept
        }
    }

    fn zeroed(&self) -> bool {
        true
    }

    fn shared(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        let p = self.state.lock().page;
        p.max(PAGE_SIZE)
    }

    fn fallback(&self) -> Option<&'static dyn SysAllocator> {
        self.state.lock().fallback
    }

    fn release_policy(&self) -> Release {
        Release::Remove
    }

    /// The child opens a file of its own (the parent's stays the parent's);
    /// its window continues where the parent's stopped, in the child's own
    /// address space.
    fn after_fork_in_child(&self) {
        let mut st = self.state.lock();
        if st.fd < 0 {
            return;
        }
        let source = if st.path[0] == 0 {
            FileSource::Memfd
        } else {
            match CStr::from_bytes_until_nul(&st.path) {
                Ok(p) => FileSource::Path(p),
                Err(_) => FileSource::Memfd,
            }
        };
        let fd = create(source).unwrap_or(-1);
        // SAFETY: the parent's descriptor, ours to close in the child.
        unsafe { libc::close(st.fd) };
        st.fd = fd;
        st.size = 0;
    }
}

/// Creates and unlinks a file in directory `p`, or named `p.XXXXXX`.
fn create_in(p: &CStr) -> Result<i32, FileError> {
    let bytes = p.to_bytes();
    let mut buf = [0u8; PATH_MAX];
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: NUL-terminated path and valid out-pointer.
    let is_dir = unsafe { libc::stat(p.as_ptr(), &mut st) } == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let suffix: &[u8] = if is_dir {
        b"/oxmalloc.XXXXXX\0"
    } else {
        b".XXXXXX\0"
    };
    if bytes.len() + suffix.len() > buf.len() {
        return Err(FileError::PathTooLong);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()..bytes.len() + suffix.len()].copy_from_slice(suffix);
    // SAFETY: `buf` is a NUL-terminated template ending in XXXXXX.
    let fd = unsafe { libc::mkstemp(buf.as_mut_ptr().cast()) };
    if fd < 0 {
        return Err(FileError::Create(os::errno()));
    }
    // SAFETY: the name mkstemp filled in; the open fd keeps the file alive.
    unsafe {
        libc::unlink(buf.as_ptr().cast());
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    Ok(fd)
}
