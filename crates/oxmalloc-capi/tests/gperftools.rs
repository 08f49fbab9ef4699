//! Drop-in for gperftools 2.10: programs written against gperftools' own
//! headers (Debian's `libgoogle-perftools-dev`, installed when missing)
//! link with `-loxmalloc` instead of `-ltcmalloc` and run: the C interface
//! and every `tc_*` function (`tests/c/gperftools_c.c`), the C++
//! `MallocExtension::instance()` object, subclasses and type information
//! (`tests/c/gperftools_cxx.cc`), and `oxmalloc.h` together with gperftools'
//! headers in one file, as C and as C++ (`tests/c/headers.c`).

mod support;

use std::process::Command;
use support::Lang;

/// Makes sure gperftools' headers are there.
fn headers() {
    support::ensure_file(
        "/usr/include/gperftools/malloc_extension_c.h",
        "libgoogle-perftools-dev",
    );
}

/// `tests/c/<source>` as `lang`, linked against the library, with `flags`.
fn build(lang: Lang, source: &str, flags: &[&str]) -> std::path::PathBuf {
    headers();
    let dir = support::scratch(source);
    let link = support::link_args();
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    support::compile_as(lang, &dir, source, "prog", flags, &link)
}

/// The program is linked against oxmalloc and not against tcmalloc.
fn assert_links_oxmalloc(prog: &std::path::Path) {
    let out = support::check(Command::new("ldd").arg(prog));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("liboxmalloc.so"), "{text}");
    assert!(!text.contains("tcmalloc"), "{text}");
}

#[test]
fn gperftools_c_program_runs_on_oxmalloc() {
    let prog = build(Lang::C, "gperftools_c.c", &[]);
    assert_links_oxmalloc(&prog);
    let out = support::check(&mut Command::new(&prog));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}\n{stderr}");
    assert!(stdout.contains("tc_version: oxmalloc"), "{stdout}");
    // Sensible figures: a heap exists and something is allocated.
    let figure = |name: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} not printed:\n{stdout}"))
            .parse()
            .expect("a number")
    };
    let heap = figure("generic.heap_size");
    let allocated = figure("generic.current_allocated_bytes");
    assert!(
        heap >= 1 << 20 && allocated > 0 && allocated < heap,
        "{stdout}"
    );
    assert_eq!(
        figure("tcmalloc.pageheap_committed_bytes"),
        heap - figure("tcmalloc.pageheap_unmapped_bytes")
    );
    assert!(figure("tcmalloc.pageheap_reserve_count") >= 1);
    assert_eq!(figure("tcmalloc.pageheap_total_reserve_bytes"), heap);
    // tc_malloc_stats prints gperftools' report.
    assert!(stderr.contains("MALLOC:"), "{stderr}");
}

#[test]
fn gperftools_cxx_program_runs_on_oxmalloc() {
    let prog = build(Lang::Cxx, "gperftools_cxx.cc", &["-std=c++17"]);
    assert_links_oxmalloc(&prog);
    let stdout = support::run_ok(&mut Command::new(&prog));
    assert!(stdout.contains("generic.heap_size = "), "{stdout}");
    assert!(stdout.contains("Ranges: "), "{stdout}");
    // Preloaded as well (the program then finds oxmalloc's symbols first).
    support::run_ok(&mut support::preloaded(&prog));
}

#[test]
fn both_headers_compile_as_c_and_cxx_in_either_order() {
    for lang in [Lang::C, Lang::Cxx] {
        for flags in [&[][..], &["-DOXMALLOC_FIRST"][..]] {
            let mut all = vec!["-Wextra", "-pedantic"];
            if lang == Lang::Cxx {
                all.push("-std=c++17");
            }
            all.extend_from_slice(flags);
            let prog = build(lang, "headers.c", &all);
            support::run_ok(&mut Command::new(&prog));
        }
    }
}

#[test]
fn the_old_header_conflict_is_gone() {
    // What the issue reported: `conflicting types for 'MallocExtension_Ownership'`
    // came from a second definition of the enum; there is one now, whichever
    // header comes first (compiled above), and the two declare the same
    // functions.
    let header = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/oxmalloc.h"),
    )
    .expect("oxmalloc.h");
    let guarded = header
        .split("#ifndef _MALLOC_EXTENSION_C_H_")
        .nth(1)
        .and_then(|rest| rest.split("#endif /* _MALLOC_EXTENSION_C_H_ */").next())
        .expect("the gperftools block is guarded by gperftools' include guard");
    assert!(guarded.contains("} MallocExtension_Ownership;"));
    assert_eq!(header.matches("} MallocExtension_Ownership;").count(), 1);
}
