//! The OS layer: the only module that talks to the kernel.
//!
//! Anonymous mappings, `madvise`, the system page size, writing a message to
//! standard error without allocating, reading the environment without
//! allocating, and the thread-exit and fork hooks.

use core::ptr::NonNull;

/// Maps `len` bytes of fresh, zero-filled, read-write anonymous memory,
/// accounted against the overcommit limit like glibc's own mappings (so an
/// absurd request fails instead of succeeding and faulting later).
///
/// Returns `None` when the kernel refuses (out of address space or memory).
pub fn map_anonymous(len: usize) -> Option<NonNull<u8>> {
    map(len, 0)
}

/// Like [`map_anonymous`], but reserving no swap (`MAP_NORESERVE`): for
/// metadata that is mostly never touched, such as pagemap leaves.
pub fn map_sparse(len: usize) -> Option<NonNull<u8>> {
    map(len, libc::MAP_NORESERVE)
}

fn map(len: usize, extra_flags: libc::c_int) -> Option<NonNull<u8>> {
    map_at(
        0,
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
    )
}

/// `mmap` of anonymous memory with `prot` and `flags` at `addr` (0: where the
/// kernel likes).
fn map_at(addr: usize, len: usize, prot: libc::c_int, flags: libc::c_int) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous mapping; with MAP_FIXED the caller owns the range.
    let p = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// Maps `len` bytes of `prot` anonymous memory (with `flags`) aligned to
/// `align` (a power of two), trimming the excess of an over-sized mapping.
fn map_aligned_with(
    len: usize,
    align: usize,
    prot: libc::c_int,
    flags: libc::c_int,
) -> Option<NonNull<u8>> {
    let os_page = page_size();
    if align <= os_page {
        return map_at(0, len, prot, flags);
    }
    let total = len.checked_add(align - os_page)?;
    let raw = map_at(0, total, prot, flags)?.as_ptr() as usize;
    let start = (raw + align - 1) & !(align - 1);
    let end = start + len;
    // SAFETY: both trimmed ranges lie inside the mapping just made, which
    // nothing else knows about yet.
    unsafe {
        if start > raw {
            unmap(raw as *mut u8, start - raw);
        }
        if raw + total > end {
            unmap(end as *mut u8, raw + total - end);
        }
    }
    NonNull::new(start as *mut u8)
}

/// Maps `len` bytes aligned to `align` (a power of two, at least the OS page
/// size), trimming the excess of an over-sized mapping.
pub fn map_aligned(len: usize, align: usize) -> Option<NonNull<u8>> {
    map_aligned_with(
        len,
        align,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
    )
}

/// Reserves `len` bytes of address space aligned to `align`: inaccessible,
/// committing nothing, to be mapped over with `MAP_FIXED`.
pub(crate) fn reserve_aligned(len: usize, align: usize) -> Option<NonNull<u8>> {
    map_aligned_with(
        len,
        align,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
    )
}

/// Puts a reservation (as [`reserve_aligned`] makes) back over
/// `[addr, addr + len)`, a range the caller owns.
pub(crate) fn reserve_at(addr: usize, len: usize) -> bool {
    map_at(
        addr,
        len,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
    )
    .is_some()
}

/// Unmaps a range.
///
/// # Safety
/// The range must be a mapping (or part of one) that nothing uses any more.
pub unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees the range is unused.
    unsafe { libc::munmap(ptr.cast(), len) };
}

/// `madvise(advice)` on a range; true when the kernel accepted it.
///
/// # Safety
/// The range must be mapped memory whose contents the caller no longer needs
/// (for the advices that drop contents).
pub unsafe fn advise(ptr: *mut u8, len: usize, advice: libc::c_int) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { libc::madvise(ptr.cast(), len, advice) == 0 }
}

/// The kernel's page size (4 KiB on x86-64, 4/16/64 KiB on aarch64).
pub fn page_size() -> usize {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let v = if v > 0 { v as usize } else { 4096 };
    PAGE.store(v, Ordering::Relaxed);
    v
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    // SAFETY: __errno_location always returns the thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub fn set_errno(v: i32) {
    // SAFETY: __errno_location always returns the thread's errno slot.
    unsafe { *libc::__errno_location() = v };
}

/// Keeps the calling thread's `errno` across a scope. Freeing memory must not
/// change `errno` (C programs rely on it), so the free paths that can make
/// system calls (returning a batch, scavenging, freeing a span) hold one; the
/// fast path makes none and needs none.
pub(crate) struct KeepErrno(i32);

impl KeepErrno {
    /// Saves `errno` now; it is restored when the guard is dropped.
    #[inline]
    pub(crate) fn new() -> Self {
        Self(errno())
    }
}

impl Drop for KeepErrno {
    #[inline]
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// Writes all of `bytes` to descriptor `fd` with `write(2)`, retrying on
/// `EINTR`, without allocating. False when a write failed.
pub fn write_all(fd: i32, bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: the buffer is valid for `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        rest = rest.get(n as usize..).unwrap_or_default();
    }
    true
}

/// Writes bytes to standard error, without allocating.
pub fn write_stderr(bytes: &[u8]) {
    write_all(2, bytes);
}

/// A fixed-size text buffer implementing `core::fmt::Write`: formatting
/// without allocating. Text past the capacity is dropped.
pub struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A `core::fmt::Write` sink that goes straight to a file descriptor.
pub struct FdWriter(pub i32);

impl core::fmt::Write for FdWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if write_all(self.0, s.as_bytes()) {
            Ok(())
        } else {
            Err(core::fmt::Error)
        }
    }
}

/// Prints `oxmalloc: fatal: <message>` to standard error, without
/// allocating, then aborts. Messages name the operation and the address.
#[cold]
#[inline(never)]
pub fn fatal(what: core::fmt::Arguments<'_>) -> ! {
    use core::fmt::Write;
    let mut b = FixedBuf::<256>::new();
    let _ = writeln!(b, "oxmalloc: fatal: {what}");
    write_stderr(b.as_bytes());
    // SAFETY: abort has no preconditions and never returns.
    unsafe { libc::abort() }
}

/// Reads an environment variable without allocating.
///
/// The returned slice borrows the process environment; it stays valid as long
/// as nobody calls `setenv` on the same name, which is the same promise
/// `getenv(3)` makes.
pub fn getenv(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: `name` is NUL-terminated; getenv does not allocate.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string from the environment.
    Some(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes())
}

/// Parses a decimal unsigned integer (what environment variables hold).
pub fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    let mut v: usize = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as usize)?;
    }
    Some(v)
}

/// A thread-exit hook: `destructor` is called with `value` when a thread that
/// called [`ThreadExitKey::set`] exits. Registration never allocates.
pub struct ThreadExitKey {
    key: core::sync::atomic::AtomicU32,
}

const NO_KEY: u32 = u32::MAX;

impl ThreadExitKey {
    /// A key not created yet.
    pub const fn new() -> Self {
        Self {
            key: core::sync::atomic::AtomicU32::new(NO_KEY),
        }
    }

    /// Creates the pthread key, once: of threads racing here, one key wins
    /// and the others are deleted. Never allocates.
    #[inline]
    pub fn init(&self, destructor: unsafe extern "C" fn(*mut libc::c_void)) -> bool {
        use core::sync::atomic::Ordering;
        if self.key.load(Ordering::Acquire) != NO_KEY {
            return true;
        }
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: `k` is a valid out-pointer; the destructor is an extern "C" fn.
        if unsafe { libc::pthread_key_create(&mut k, Some(destructor)) } != 0 {
            return false;
        }
        if self
            .key
            .compare_exchange(NO_KEY, k as u32, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: our own key, never handed out.
            unsafe { libc::pthread_key_delete(k) };
        }
        true
    }

    /// Arms the hook for the calling thread with `value` (non-null).
    pub fn set(&self, value: *mut u8) {
        let k = self.key.load(core::sync::atomic::Ordering::Acquire);
        if k != NO_KEY {
            // SAFETY: the key was created by `init`.
            unsafe { libc::pthread_setspecific(k as libc::pthread_key_t, value.cast()) };
        }
    }
}

impl Default for ThreadExitKey {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers fork handlers (prepare, parent, child).
pub fn register_atfork(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) {
    // SAFETY: the handlers are extern "C" functions valid for the process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

/// A program's function oxmalloc calls while it holds its locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Callback {
    /// A release function (a hook or a system allocator's).
    Release = 1,
    /// A commit function.
    Commit = 2,
    /// A system allocator's `alloc`.
    SysAlloc = 3,
    /// A heap's growth hook.
    GrowthHook = 4,
}

impl Callback {
    fn name(v: u8) -> &'static str {
        match v {
            1 => "a release function",
            2 => "a commit function",
            3 => "a system allocator",
            4 => "a heap's growth hook",
            _ => "a callback",
        }
    }
}

/// Marks the calling thread as running a program's callback while oxmalloc
/// holds its locks. A slow path of the allocator entered meanwhile would wait
/// for a lock its own thread holds; [`check_reentry`] stops the program with
/// a message instead. Guards nest: dropping one restores what it replaced.
pub(crate) struct CallbackGuard(u8);

impl CallbackGuard {
    /// Enters callback `what`.
    #[inline]
    pub(crate) fn enter(what: Callback) -> Self {
        let prev = guard::get();
        guard::set(what as u8);
        Self(prev)
    }
}

impl Drop for CallbackGuard {
    #[inline]
    fn drop(&mut self) {
        guard::set(self.0);
    }
}

/// Stops the program when the calling thread entered a slow path of the
/// allocator (`op`) from inside a callback that runs under oxmalloc's locks.
#[inline]
pub(crate) fn check_reentry(op: &str) {
    let v = guard::get();
    if v != 0 {
        fatal(format_args!(
            "{} called {op} while oxmalloc held its locks (callbacks must not allocate or free through oxmalloc)",
            Callback::name(v)
        ));
    }
}

/// One byte of initial-exec thread-local storage (zero-filled at thread
/// start): the callback the thread is running.
#[cfg(target_arch = "x86_64")]
mod guard {
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".globl __oxmalloc_v1_guard",
        ".hidden __oxmalloc_v1_guard",
        ".type __oxmalloc_v1_guard,@object",
        ".size __oxmalloc_v1_guard, 1",
        "__oxmalloc_v1_guard:",
        ".zero 1",
        ".popsection",
    );

    #[inline(always)]
    pub fn get() -> u8 {
        let v: u8;
        // SAFETY: reads a GOT entry and the thread's own TLS byte.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr [rip + __oxmalloc_v1_guard@GOTTPOFF]",
                "mov {v}, byte ptr fs:[{t}]",
                t = out(reg) _,
                v = out(reg_byte) v,
                options(readonly, nostack, preserves_flags),
            );
        }
        v
    }

    #[inline(always)]
    pub fn set(v: u8) {
        // SAFETY: writes the thread's own TLS byte.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr [rip + __oxmalloc_v1_guard@GOTTPOFF]",
                "mov byte ptr fs:[{t}], {v}",
                t = out(reg) _,
                v = in(reg_byte) v,
                options(nostack, preserves_flags),
            );
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod guard {
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".globl __oxmalloc_v1_guard",
        ".hidden __oxmalloc_v1_guard",
        ".type __oxmalloc_v1_guard,%object",
        ".size __oxmalloc_v1_guard, 1",
        "__oxmalloc_v1_guard:",
        ".zero 1",
        ".popsection",
    );

    #[inline(always)]
    fn addr() -> *mut u8 {
        let p: *mut u8;
        // SAFETY: reads the thread pointer and a GOT entry; no side effects.
        unsafe {
            core::arch::asm!(
                "mrs {p}, tpidr_el0",
                "adrp {t}, :gottprel:__oxmalloc_v1_guard",
                "ldr {t}, [{t}, #:gottprel_lo12:__oxmalloc_v1_guard]",
                "add {p}, {p}, {t}",
                p = out(reg) p,
                t = out(reg) _,
                options(pure, nomem, nostack),
            );
        }
        p
    }

    #[inline(always)]
    pub fn get() -> u8 {
        // SAFETY: the thread's own TLS byte.
        unsafe { addr().read_volatile() }
    }

    #[inline(always)]
    pub fn set(v: u8) {
        // SAFETY: the thread's own TLS byte.
        unsafe { addr().write_volatile(v) }
    }
}

/// Defines `fn $getter() -> Option<$ty>`: the address of symbol `$sym` of
/// another library (a function or a static), or `None` when no loaded object
/// defines it. Stable Rust has no weak imports; a weak reference written in
/// assembly is resolved by the dynamic loader (or the static linker) to the
/// definition or to 0, so code that uses glibc or libstdc++ extras still
/// loads without them.
#[doc(hidden)]
#[macro_export]
macro_rules! weak_symbol {
    ($(#[$m:meta])* $vis:vis fn $getter:ident() -> Option<$ty:ty> = $sym:literal;) => {
        core::arch::global_asm!(
            ".pushsection .data.rel.ro,\"aw\"",
            ".balign 8",
            concat!(".globl __oxmalloc_weak_", $sym),
            concat!(".hidden __oxmalloc_weak_", $sym),
            concat!("__oxmalloc_weak_", $sym, ":"),
            concat!(".8byte ", $sym),
            concat!(".weak ", $sym),
            ".popsection",
        );
        $(#[$m])*
        $vis fn $getter() -> Option<$ty> {
            extern "C" {
                #[link_name = concat!("__oxmalloc_weak_", $sym)]
                static WORD: Option<$ty>;
            }
            // SAFETY: the word is written by the loader before any code runs
            // and never changes; `Option` of a reference or function pointer
            // has the layout of a nullable pointer.
            unsafe { WORD }
        }
    };
}

weak_symbol! {
    /// glibc's `__libc_single_threaded` (2.32 and later).
    fn libc_single_threaded() -> Option<&'static u8> = "__libc_single_threaded";
}
weak_symbol! {
    /// glibc's lock of the list of all `FILE`s (recursive).
    fn io_list_lock() -> Option<unsafe extern "C" fn()> = "_IO_list_lock";
}
weak_symbol! {
    /// Releases [`io_list_lock`] once.
    fn io_list_unlock() -> Option<unsafe extern "C" fn()> = "_IO_list_unlock";
}
weak_symbol! {
    /// Resets [`io_list_lock`] to unlocked (in a forked child).
    fn io_list_resetlock() -> Option<unsafe extern "C" fn()> = "_IO_list_resetlock";
}

/// True when the C library says the process has only ever had one thread
/// (`false` when it cannot say).
pub(crate) fn single_threaded() -> bool {
    // SAFETY: a byte glibc keeps for this purpose; a racy read only errs
    // toward "multi-threaded", which is always safe.
    libc_single_threaded().is_some_and(|b| unsafe { core::ptr::read_volatile(b) } != 0)
}

/// stdio's list lock, taken the way glibc's own malloc orders it: before the
/// allocator's locks in `fork()`. Returns false when the C library has none.
pub(crate) fn lock_stdio_list() -> bool {
    match io_list_lock() {
        // SAFETY: glibc's function, callable any time (a recursive lock).
        Some(f) => unsafe {
            f();
            true
        },
        None => false,
    }
}

/// Releases what [`lock_stdio_list`] took (in the parent).
pub(crate) fn unlock_stdio_list() {
    if let Some(f) = io_list_unlock() {
        // SAFETY: glibc's function; the caller took the lock once.
        unsafe { f() };
    }
}

/// Resets stdio's list lock in a forked child (whatever it held).
pub(crate) fn reset_stdio_list() {
    if let Some(f) = io_list_resetlock() {
        // SAFETY: glibc's function; the child has one thread.
        unsafe { f() };
    }
}

/// Blocks every signal for the calling thread; returns the mask to restore.
pub(crate) fn block_signals() -> libc::sigset_t {
    // SAFETY: zeroed sigsets are valid out-buffers; sigfillset and
    // pthread_sigmask only write them.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

/// Restores a signal mask [`block_signals`] returned.
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: a valid mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, core::ptr::null_mut()) };
}

/// A word shared with forked children (a `MAP_SHARED` anonymous page), for
/// waiting on each other.
pub(crate) fn map_shared_words() -> Option<NonNull<core::sync::atomic::AtomicU32>> {
    map_at(
        0,
        page_size(),
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
    )
    .map(|p| p.cast())
}

/// Waits (up to `ms` milliseconds in all) while `w` holds `v`; the word may
/// be shared with other processes. True when it changed.
pub(crate) fn wait_shared(w: &core::sync::atomic::AtomicU32, v: u32, ms: u64) -> bool {
    use core::sync::atomic::Ordering;
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    for _ in 0..ms.div_ceil(10) {
        if w.load(Ordering::Acquire) != v {
            return true;
        }
        // SAFETY: FUTEX_WAIT (not private: the word may be shared with
        // another process) on a valid aligned word, with a timeout.
        unsafe {
            libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAIT, v, &ts);
        }
    }
    w.load(Ordering::Acquire) != v
}

/// Wakes the waiters of a shared word.
pub(crate) fn wake_shared(w: &core::sync::atomic::AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid aligned word.
    unsafe {
        libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// Replaces `[at, at + len)` (a range the caller owns) by private anonymous
/// memory holding `copy`'s contents: `copy` (a private anonymous mapping of
/// `len` bytes) is moved there by `mremap`, page tables and all. False when
/// the kernel refused.
pub(crate) fn move_mapping(copy: NonNull<u8>, at: usize, len: usize) -> bool {
    remap_fixed(copy.as_ptr() as usize, at, len, 0)
}

/// Moves the pages of `[src, src + len)` to `[dst, dst + len)` (both
/// private anonymous ranges the caller owns) with `mremap`, page tables and
/// all, leaving the source mapped and empty (it reads as zero):
/// `MREMAP_DONTUNMAP`, so the source is never a hole another thread's
/// `mmap` could take, not even for an instant. False when the kernel
/// refused (before Linux 5.7, or for other memory): nothing moved.
pub(crate) fn move_pages(src: usize, dst: usize, len: usize) -> bool {
    remap_fixed(src, dst, len, libc::MREMAP_DONTUNMAP)
}

/// `mremap` of the `len` bytes at `from` onto `to`, with `MREMAP_MAYMOVE |
/// MREMAP_FIXED | flags`; true when the kernel did it.
fn remap_fixed(from: usize, to: usize, len: usize, flags: libc::c_int) -> bool {
    // SAFETY: both ranges are owned by the callers above; MREMAP_FIXED
    // replaces what was mapped at `to` (the caller's own pages).
    let p = unsafe {
        libc::mremap(
            from as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | flags,
            to as *mut libc::c_void,
        )
    };
    p != libc::MAP_FAILED
}

/// Maps fresh private anonymous memory (no swap reserved) over
/// `[at, at + len)`, a range the caller owns.
pub(crate) fn map_fresh_at(at: usize, len: usize) -> bool {
    map_at(
        at,
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
    )
    .is_some()
}
