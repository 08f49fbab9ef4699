//! What kind of memory backs a range: private anonymous, shared, file, and
//! the page size it can be released at.
//!
//! The kind decides what a release does (`MADV_DONTNEED` zero-fills only
//! private anonymous memory; on a shared or file mapping the old bytes come
//! back, or nothing is freed at all), what a `fork()` does (a shared mapping
//! would be written by parent and child alike), and the granularity of
//! release (whole huge pages on hugetlbfs).
//!
//! [`inspect`] reads `/proc/self/maps` with a fixed buffer (no allocation)
//! to check that a range is mapped readable and writable, and to learn its
//! kind. Where `/proc` cannot be read the kind is [`Backing::Unknown`], which
//! is treated as "released memory is not known to be zero".

use crate::os;
use crate::size_class::PAGE_SIZE;

/// What backs a range of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Private anonymous memory (`MAP_PRIVATE | MAP_ANONYMOUS`): released
    /// pages read back as zero; a forked child gets a copy-on-write copy.
    PrivateAnonymous,
    /// A private mapping of a file: released pages read back the file's
    /// contents.
    PrivateFile,
    /// A shared mapping (`MAP_SHARED` anonymous memory, a memfd, a tmpfs or
    /// hugetlbfs file, System V shared memory): `MADV_DONTNEED` frees
    /// nothing, `MADV_REMOVE` punches holes that read back as zero, and a
    /// forked child would share it.
    Shared,
    /// Not known (`/proc/self/maps` could not be read): released memory is
    /// not assumed to be zero.
    Unknown,
}

impl Backing {
    /// A short name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Backing::PrivateAnonymous => "private-anonymous",
            Backing::PrivateFile => "private-file",
            Backing::Shared => "shared",
            Backing::Unknown => "unknown",
        }
    }
}

/// What [`inspect`] learnt of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// The kind of memory.
    pub backing: Backing,
    /// The page size of the mapping where it is larger than oxmalloc's page
    /// (hugetlbfs), else [`PAGE_SIZE`].
    pub page_size: usize,
}

/// Why a range cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MappingError {
    /// Some page of the range is not mapped.
    Unmapped,
    /// Some page of the range is not readable and writable.
    NotWritable,
    /// The range spans mappings of different kinds.
    Mixed,
}

/// The kernel's name for `MAP_HUGETLB` anonymous mappings.
const ANON_HUGEPAGE: &[u8] = b"/anon_hugepage";

/// Checks that `[start, end)` is mapped readable and writable, and tells what
/// backs it.
pub(crate) fn inspect(start: usize, end: usize) -> Result<Mapping, MappingError> {
    // SAFETY: a NUL-terminated path; the descriptor is ours and closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Ok(Mapping {
            backing: Backing::Unknown,
            page_size: PAGE_SIZE,
        });
    }
    let mut scan = Scan {
        end,
        covered: start,
        kind: None,
        page_size: PAGE_SIZE,
        error: None,
    };
    let mut buf = [0u8; 8192];
    let mut have = 0;
    'read: loop {
        // SAFETY: reading into the free tail of our buffer.
        let n = unsafe { libc::read(fd, buf[have..].as_mut_ptr().cast(), buf.len() - have) };
        if n < 0 && os::errno() == libc::EINTR {
            continue;
        }
        let n = n.max(0) as usize;
        have += n;
        let mut from = 0;
        while let Some(nl) = buf[from..have].iter().position(|&b| b == b'\n') {
            if !scan.line(&buf[from..from + nl]) {
                break 'read;
            }
            from += nl + 1;
        }
        if n == 0 {
            if from < have {
                scan.line(&buf[from..have]);
            }
            break;
        }
        // Keep the unfinished line; a line longer than the buffer is cut.
        buf.copy_within(from..have, 0);
        have -= from;
        if have == buf.len() {
            scan.line(&buf[..have]);
            have = 0;
        }
    }
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    if let Some(e) = scan.error {
        return Err(e);
    }
    if scan.covered < end {
        return Err(MappingError::Unmapped);
    }
    Ok(Mapping {
        backing: scan.kind.unwrap_or(Backing::Unknown),
        page_size: scan.page_size,
    })
}

/// The state of a walk over `/proc/self/maps`.
struct Scan {
    end: usize,
    /// Everything below this is known to be mapped (from `start` on).
    covered: usize,
    kind: Option<Backing>,
    page_size: usize,
    error: Option<MappingError>,
}

impl Scan {
    /// Takes one line; false when the walk is over.
    fn line(&mut self, line: &[u8]) -> bool {
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return true;
        };
        let path = line_path(line, inode);
        let Some(dash) = range.iter().position(|&b| b == b'-') else {
            return true;
        };
        let (Some(lo), Some(hi)) = (parse_hex(&range[..dash]), parse_hex(&range[dash + 1..]))
        else {
            return true;
        };
        if hi <= self.covered {
            return true;
        }
        if lo >= self.end {
            return false;
        }
        if lo > self.covered {
            self.error = Some(MappingError::Unmapped);
            return false;
        }
        if perms.len() < 4 || perms[0] != b'r' || perms[1] != b'w' {
            self.error = Some(MappingError::NotWritable);
            return false;
        }
        let anonymous = inode == b"0";
        let kind = match (perms[3], anonymous) {
            (b's', _) => Backing::Shared,
            (_, true) => Backing::PrivateAnonymous,
            (_, false) => Backing::PrivateFile,
        };
        // MAP_HUGETLB anonymous memory is shared-like for release (it frees
        // only with MADV_REMOVE or whole huge pages) even when private.
        let huge = huge_page_size(path);
        if self.kind.is_some_and(|k| k != kind) {
            self.error = Some(MappingError::Mixed);
            return false;
        }
        self.kind = Some(kind);
        self.page_size = self.page_size.max(huge);
        self.covered = hi;
        hi < self.end
    }
}

/// The path field of a maps line (after the inode), trimmed.
fn line_path<'a>(line: &'a [u8], inode: &'a [u8]) -> &'a [u8] {
    // The inode field is a subslice of `line`: its offset locates the rest.
    let after = (inode.as_ptr() as usize - line.as_ptr() as usize) + inode.len();
    let rest = &line[after.min(line.len())..];
    let begin = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    &rest[begin..]
}

/// The huge page size of a hugetlb mapping named `path`, else [`PAGE_SIZE`].
fn huge_page_size(path: &[u8]) -> usize {
    if path.starts_with(ANON_HUGEPAGE) {
        return default_huge_page_size();
    }
    if !path.starts_with(b"/") {
        return PAGE_SIZE;
    }
    // A file: ask the file system of its directory (the file itself may be
    // deleted, as memfs files are).
    let path = path.strip_suffix(b" (deleted)").unwrap_or(path);
    let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
        return PAGE_SIZE;
    };
    let dir = if slash == 0 {
        &path[..1]
    } else {
        &path[..slash]
    };
    let mut cpath = [0u8; 512];
    if dir.len() >= cpath.len() {
        return PAGE_SIZE;
    }
    cpath[..dir.len()].copy_from_slice(dir);
    fs_page_size_of_path(cpath.as_ptr().cast())
}

/// The block size of the file system holding `path` when it is hugetlbfs
/// (its huge page size), else [`PAGE_SIZE`].
fn fs_page_size_of_path(path: *const libc::c_char) -> usize {
    // SAFETY: a zeroed statfs is a valid out-buffer.
    let mut sfs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: NUL-terminated path (caller) and a valid out-pointer.
    if unsafe { libc::statfs(path, &mut sfs) } != 0 {
        return PAGE_SIZE;
    }
    hugetlb_block(&sfs)
}

/// The block size of the file system of descriptor `fd` when it is hugetlbfs
/// (its huge page size), else [`PAGE_SIZE`].
pub(crate) fn fs_page_size(fd: i32) -> usize {
    // SAFETY: a zeroed statfs is a valid out-buffer.
    let mut sfs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    if unsafe { libc::fstatfs(fd, &mut sfs) } != 0 {
        return PAGE_SIZE;
    }
    hugetlb_block(&sfs)
}

fn hugetlb_block(sfs: &libc::statfs) -> usize {
    if sfs.f_type == libc::HUGETLBFS_MAGIC as _ && (sfs.f_bsize as usize) > PAGE_SIZE {
        sfs.f_bsize as usize
    } else {
        PAGE_SIZE
    }
}

/// The default huge page size (`Hugepagesize:` of `/proc/meminfo`), or
/// 2 MiB when it cannot be read.
fn default_huge_page_size() -> usize {
    const FALLBACK: usize = 2 << 20;
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(c"/proc/meminfo".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return FALLBACK;
    }
    let mut buf = [0u8; 4096];
    // SAFETY: reading into our buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    let text = &buf[..n.max(0) as usize];
    let key = b"Hugepagesize:";
    let Some(at) = text.windows(key.len()).position(|w| w == key) else {
        return FALLBACK;
    };
    let digits: &[u8] = {
        let rest = &text[at + key.len()..];
        let b = rest
            .iter()
            .position(|c| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let rest = &rest[b..];
        let e = rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        &rest[..e]
    };
    os::parse_usize(digits).map_or(FALLBACK, |kib| kib << 10)
}

fn parse_hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0usize;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as usize;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(flags: i32, fd: i32, len: usize) -> usize {
        // SAFETY: a fresh mapping at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p as usize
    }

    #[test]
    fn kinds() {
        let len = 1 << 20;
        let a = map(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, len);
        assert_eq!(
            inspect(a, a + len).unwrap().backing,
            Backing::PrivateAnonymous
        );
        let s = map(libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, len);
        assert_eq!(inspect(s, s + len).unwrap().backing, Backing::Shared);
        // SAFETY: a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"t".as_ptr(), 0) };
        // SAFETY: our new memfd.
        assert_eq!(unsafe { libc::ftruncate(fd, len as i64) }, 0);
        let m = map(libc::MAP_SHARED, fd, len);
        assert_eq!(inspect(m, m + len).unwrap().backing, Backing::Shared);
        let pf = map(libc::MAP_PRIVATE, fd, len);
        assert_eq!(inspect(pf, pf + len).unwrap().backing, Backing::PrivateFile);
    }

    #[test]
    fn refusals() {
        let len = 1 << 20;
        // A hole in a mapping (another test's thread may map something
        // into it meanwhile: then try again).
        let unmapped = (0..10).any(|_| {
            let a = map(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 3 * len);
            // SAFETY: parts of our own mapping.
            unsafe { libc::munmap((a + len) as *mut _, len) };
            assert!(inspect(a, a + len).is_ok());
            let r = inspect(a, a + 3 * len);
            let mut v = [0u8; 256];
            // SAFETY: mincore only reports; ENOMEM when nothing is mapped.
            let hole_still_empty =
                unsafe { libc::mincore((a + len) as *mut _, len, v.as_mut_ptr()) } != 0;
            if hole_still_empty {
                assert_eq!(r, Err(MappingError::Unmapped));
            }
            hole_still_empty
        });
        assert!(unmapped, "the hole was always reused");
        let r = map(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, len);
        // SAFETY: our own mapping.
        unsafe { libc::mprotect(r as *mut _, len, libc::PROT_NONE) };
        assert_eq!(inspect(r, r + len), Err(MappingError::NotWritable));
        assert_eq!(
            inspect(1 << 46, (1 << 46) + len),
            Err(MappingError::Unmapped)
        );
    }
}
