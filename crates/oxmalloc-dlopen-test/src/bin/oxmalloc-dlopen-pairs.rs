//! Allocation/free pairs of oxmalloc's, loaded in different ways, for
//! instruction counts under callgrind:
//!
//! ```text
//! oxmalloc-dlopen-pairs linked SIZE N        Rust's global allocator: the loop linked into this executable
//! oxmalloc-dlopen-pairs dlopen LIB SIZE N    the same loop in LIB (this crate's cdylib), loaded with dlopen
//! oxmalloc-dlopen-pairs c-default SIZE N     C malloc and free as the program sees them (run it with
//!                                            LD_PRELOAD=liboxmalloc.so), called through pointers
//! oxmalloc-dlopen-pairs c-dlopen LIB SIZE N  the same loop on LIB's malloc and free (LIB = liboxmalloc.so,
//!                                            loaded with dlopen)
//! ```
//!
//! Instructions per pair = (Ir(N2) − Ir(N1)) / (N2 − N1), which cancels
//! start-up, loading and the allocator's first-call set-up:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/oxmalloc-dlopen-pairs dlopen target/release/liboxmalloc_dlopen_test.so 16 100000
//! ```

use std::ffi::{CStr, CString};
use std::hint::black_box;
use std::process::ExitCode;

type PairsFn = extern "C" fn(usize, u64);
type MallocFn = unsafe extern "C" fn(usize) -> *mut libc::c_void;
type FreeFn = unsafe extern "C" fn(*mut libc::c_void);

/// Loads `lib` (`RTLD_NOW | RTLD_LOCAL`).
fn load(lib: &str) -> Result<*mut libc::c_void, String> {
    let path = CString::new(lib).map_err(|_| format!("{lib:?} holds a NUL byte"))?;
    // SAFETY: a valid C string; the library's constructors are Rust's and
    // oxmalloc's, which do not depend on the host.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        // SAFETY: dlerror returns null or a C string valid until the next
        // dl call.
        let e = unsafe { libc::dlerror() };
        let why = if e.is_null() {
            "unknown error".into()
        } else {
            // SAFETY: non-null, NUL-terminated (above).
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        };
        return Err(format!("dlopen {lib}: {why}"));
    }
    Ok(h)
}

/// The address of `name` in `h` (a handle, or `RTLD_DEFAULT`).
fn symbol(h: *mut libc::c_void, name: &CStr) -> Result<*mut libc::c_void, String> {
    // SAFETY: `h` is a live handle or RTLD_DEFAULT; the name is a C string.
    let f = unsafe { libc::dlsym(h, name.as_ptr()) };
    if f.is_null() {
        Err(format!("no symbol {name:?}"))
    } else {
        Ok(f)
    }
}

/// Runs the pair loop of `lib`, this crate's cdylib.
fn dlopen_pairs(lib: &str, size: usize, n: u64) -> Result<(), String> {
    let f = symbol(load(lib)?, c"oxmalloc_dlopen_test_pairs")?;
    // SAFETY: the symbol is the library's `extern "C" fn(usize, u64)`.
    let f: PairsFn = unsafe { std::mem::transmute::<*mut libc::c_void, PairsFn>(f) };
    f(size, n);
    Ok(())
}

/// `n` times `free(malloc(size))` with the `malloc` and `free` of `h`.
fn c_pairs(h: *mut libc::c_void, size: usize, n: u64) -> Result<(), String> {
    let (m, f) = (symbol(h, c"malloc")?, symbol(h, c"free")?);
    // SAFETY: C's malloc and free have these signatures.
    let (m, f) = unsafe {
        (
            std::mem::transmute::<*mut libc::c_void, MallocFn>(m),
            std::mem::transmute::<*mut libc::c_void, FreeFn>(f),
        )
    };
    for _ in 0..n {
        // SAFETY: a block of this malloc goes back to its free.
        unsafe {
            let p = m(black_box(size));
            if p.is_null() {
                return Err("malloc failed".into());
            }
            f(black_box(p));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    let result = match (args.first().map(String::as_str), args.len()) {
        (Some("linked"), 3) => match (number(1), number(2)) {
            (Some(size), Some(n)) if size > 0 => {
                oxmalloc_dlopen_test::pairs(size as usize, n);
                Ok(())
            }
            _ => Err("SIZE (non-zero) and N must be numbers".into()),
        },
        (Some("dlopen"), 4) => match (number(2), number(3)) {
            (Some(size), Some(n)) if size > 0 => dlopen_pairs(&args[1], size as usize, n),
            _ => Err("SIZE (non-zero) and N must be numbers".into()),
        },
        (Some("c-default"), 3) => match (number(1), number(2)) {
            (Some(size), Some(n)) => c_pairs(libc::RTLD_DEFAULT, size as usize, n),
            _ => Err("SIZE and N must be numbers".into()),
        },
        (Some("c-dlopen"), 4) => match (number(2), number(3)) {
            (Some(size), Some(n)) => load(&args[1]).and_then(|h| c_pairs(h, size as usize, n)),
            _ => Err("SIZE and N must be numbers".into()),
        },
        _ => Err(
            "usage: oxmalloc-dlopen-pairs linked SIZE N | dlopen LIB SIZE N | \
                  c-default SIZE N | c-dlopen LIB SIZE N"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxmalloc-dlopen-pairs: {e}");
            ExitCode::from(2)
        }
    }
}
