//! Exporting one function under several C names.
//!
//! An alias made with `global_asm!` (`.set`) comes out as a local symbol of a
//! `cdylib`; only `#[no_mangle]` Rust functions are exported. So every name
//! is a real function, and [`exports!`] writes them all from one body.

/// Exports the same body under every name in the brackets:
///
/// ```ignore
/// exports! {
///     /// Docs shared by all names.
///     extern "C" [malloc, __libc_malloc] fn(size: usize) -> *mut c_void {
///         body(size)
///     }
/// }
/// ```
///
/// Prefix `unsafe` for functions with preconditions; their shared docs then
/// carry the `# Safety` section.
macro_rules! exports {
    (
        $(#[$attr:meta])*
        unsafe extern $abi:literal [$($name:ident),+ $(,)?] $($sig:tt)*
    ) => {
        $crate::alias::exports!(@each [$(#[$attr])*] [unsafe extern $abi] [$($name)+] $($sig)*);
    };
    (
        $(#[$attr:meta])*
        extern $abi:literal [$($name:ident),+ $(,)?] $($sig:tt)*
    ) => {
        $crate::alias::exports!(@each [$(#[$attr])*] [extern $abi] [$($name)+] $($sig)*);
    };
    (@each [$($attrs:tt)*] [$($qual:tt)*] [] $($sig:tt)*) => {};
    (
        @each [$($attrs:tt)*] [$($qual:tt)*] [$first:ident $($rest:ident)*]
        fn $args:tt $(-> $ret:ty)? $body:block
    ) => {
        $($attrs)*
        #[no_mangle]
        pub $($qual)* fn $first $args $(-> $ret)? $body
        $crate::alias::exports!(@each [$($attrs)*] [$($qual)*] [$($rest)*] fn $args $(-> $ret)? $body);
    };
}

pub(crate) use exports;
