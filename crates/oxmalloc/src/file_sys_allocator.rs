//! `FileSysAllocator`: fresh memory from a file on hugetlbfs or tmpfs, or
//! from a memfd (gperftools' `memfs_malloc`, done so that pages really go
//! back).
//!
//! The file grows by chunks mapped `MAP_SHARED` at increasing offsets. Free
//! ranges are released with `madvise(MADV_REMOVE)`, which punches a hole in
//! the file: on tmpfs, memfd and hugetlbfs the file's pages are freed, where
//! `MADV_DONTNEED` would free nothing. On hugetlbfs, chunks are multiples of
//! the huge page size (read with `fstatfs`).

use crate::os;
use crate::region::SysAllocator;
use crate::sync::Mutex;
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
}

/// A system allocator backed by a file (see the module docs). Build it in a
/// `static` with [`FileSysAllocator::new`], [`open`](FileSysAllocator::open)
/// it, then install it with [`crate::set_system_allocator`].
///
/// ```
/// use oxmalloc::{FileSource, FileSysAllocator, MmapSysAllocator};
/// static FILE: FileSysAllocator = FileSysAllocator::new();
/// FILE.open(FileSource::Memfd, 256 << 20, Some(&MmapSysAllocator)).unwrap();
/// oxmalloc::set_system_allocator(&FILE);
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
            }),
        }
    }

    /// Creates the file. At most `limit` bytes (0: no limit) come from it;
    /// past that, or when the file cannot grow (no huge pages left), memory
    /// comes from `fallback`, or allocation fails when it is `None`.
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
        let fd = match source {
            FileSource::Memfd => {
                // SAFETY: a NUL-terminated name; memfd_create does not allocate.
                unsafe { libc::memfd_create(c"oxmalloc".as_ptr(), libc::MFD_CLOEXEC) }
            }
            FileSource::Path(p) => create_in(p)?,
        };
        if fd < 0 {
            return Err(FileError::Create(os::errno()));
        }
        st.fd = fd;
        st.page = fs_page(fd);
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

    fn map_chunk(st: &mut State, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let len = size.checked_add(st.page - 1)? & !(st.page - 1);
        if st.limit != 0 && st.size.checked_add(len)? > st.limit {
            return None;
        }
        let off = st.size;
        // SAFETY: ftruncate on our own file descriptor.
        if unsafe { libc::ftruncate(st.fd, (off + len) as libc::off_t) } != 0 {
            return None;
        }
        let align = align.max(st.page);
        // Reserve an aligned window, then map the file over it.
        let window = os::map_aligned(len, align)?;
        // SAFETY: MAP_FIXED over a window we just reserved and own.
        let p = unsafe {
            libc::mmap(
                window.as_ptr().cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                st.fd,
                off as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            // SAFETY: the window is ours and unused.
            unsafe { os::unmap(window.as_ptr(), len) };
            // SAFETY: shrink our own file back.
            unsafe { libc::ftruncate(st.fd, off as libc::off_t) };
            return None;
        }
        st.size = off + len;
        Some(NonNull::slice_from_raw_parts(window, len))
    }
}

impl Default for FileSysAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: chunks are fresh shared mappings of our own file, aligned as asked
// (the window comes from `map_aligned`), used by nobody else.
unsafe impl SysAllocator for FileSysAllocator {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        let mut st = self.state.lock();
        if st.fd >= 0 {
            if let Some(p) = Self::map_chunk(&mut st, size, align) {
                return Some(p);
            }
        }
        st.fallback?.alloc(size, align)
    }

    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> bool {
        // MADV_REMOVE punches a hole in a shared file mapping; on anonymous
        // memory (a fallback's) it fails, and DONTNEED is the right call.
        // SAFETY: the range is free memory of ours (caller).
        unsafe {
            os::advise(ptr.as_ptr(), len, libc::MADV_REMOVE)
                || os::advise(ptr.as_ptr(), len, libc::MADV_DONTNEED)
        }
    }

    fn zeroed(&self) -> bool {
        true
    }
}

/// The file system's block size: the huge page size on hugetlbfs.
fn fs_page(fd: i32) -> usize {
    // SAFETY: a zeroed statfs is a valid out-buffer.
    let mut sfs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    let ok = unsafe { libc::fstatfs(fd, &mut sfs) } == 0;
    let page = crate::size_class::PAGE_SIZE;
    if ok && sfs.f_type == libc::HUGETLBFS_MAGIC as _ && (sfs.f_bsize as usize) > page {
        sfs.f_bsize as usize
    } else {
        page
    }
}

/// Creates and unlinks a file in directory `p`, or named `p.XXXXXX`.
fn create_in(p: &CStr) -> Result<i32, FileError> {
    let bytes = p.to_bytes();
    let mut buf = [0u8; 4096];
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
