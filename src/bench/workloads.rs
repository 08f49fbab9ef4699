//! The suite: which programs run with which arguments, and how they are
//! built.
//!
//! The programs are C files in `bench/workloads/` (plus one Python script),
//! compiled into this executable with `include_str!` so that the command
//! works from anywhere; [`build`] writes them out and compiles them with the
//! system C compiler (`-O2 -pthread`, `-fno-builtin` where the compiler would
//! otherwise fold malloc/free pairs away) into the output directory, reusing
//! a binary whose source and flags did not change.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One program's source, built into one executable (or run by `python3`).
pub struct Source {
    /// The file name in `bench/workloads/`.
    pub file: &'static str,
    text: &'static str,
    /// Compile with `-fno-builtin` (keeps every malloc and free).
    no_builtin: bool,
}

impl Source {
    /// A Python script rather than C.
    pub fn is_python(&self) -> bool {
        self.file.ends_with(".py")
    }

    /// The executable's (or script's) name.
    fn stem(&self) -> &'static str {
        self.file.rsplit_once('.').map_or(self.file, |(s, _)| s)
    }
}

macro_rules! source {
    ($file:literal, $no_builtin:expr) => {
        Source {
            file: $file,
            text: include_str!(concat!("../../bench/workloads/", $file)),
            no_builtin: $no_builtin,
        }
    };
}

const LARSON: Source = source!("larson.c", false);
const REMOTE_FREE: Source = source!("remote_free.c", false);
const THREAD_CHURN: Source = source!("thread_churn.c", false);
const REALLOC_GROWTH: Source = source!("realloc_growth.c", false);
const FOOTPRINT: Source = source!("footprint.c", false);
const PY_FOOTPRINT: Source = source!("py_footprint.py", false);
const XMALLOC: Source = source!("xmalloc.c", false);
const RING: Source = source!("ring.c", false);
const FALSE_SHARING: Source = source!("false_sharing.c", false);
const INTERP: Source = source!("interp.c", false);
const FRAGMENTATION: Source = source!("fragmentation.c", false);
const STRING_BUILDER: Source = source!("string_builder.c", false);
const LARGE: Source = source!("large.c", false);
const MALLOC_THREAD: Source = source!("malloc_thread.c", false);
/// The fast-path loop; also what callgrind counts.
pub const PAIRS: Source = source!("pairs.c", true);
const REGION: Source = source!("region.c", false);

/// Every program, each built once.
const SOURCES: [&Source; 16] = [
    &LARSON,
    &REMOTE_FREE,
    &THREAD_CHURN,
    &REALLOC_GROWTH,
    &FOOTPRINT,
    &PY_FOOTPRINT,
    &XMALLOC,
    &RING,
    &FALSE_SHARING,
    &INTERP,
    &FRAGMENTATION,
    &STRING_BUILDER,
    &LARGE,
    &MALLOC_THREAD,
    &PAIRS,
    &REGION,
];

/// Headers the C programs include: the suite's own and oxmalloc's.
const HEADERS: [(&str, &str); 2] = [
    ("common.h", include_str!("../../bench/workloads/common.h")),
    (
        "oxmalloc.h",
        include_str!("../../crates/oxmalloc-capi/include/oxmalloc.h"),
    ),
];

const CFLAGS: [&str; 3] = ["-O2", "-pthread", "-Wall"];

/// A figure a workload prints about itself (`key=value` on stdout) that the
/// report shows next to the runner's own (wall, CPU, peak RSS).
pub struct Metric {
    pub key: &'static str,
    pub label: &'static str,
    /// Shown as MiB (the workload prints KiB).
    pub kib: bool,
    /// The ratio to the best peer is value / best for these, best / value
    /// otherwise, so that above 1 always means worse.
    pub lower_is_better: bool,
}

/// The RSS a program reads after freeing its peak.
pub const FINAL_RSS: Metric = Metric {
    key: "final_rss_kib",
    label: "RSS after the peak",
    kib: true,
    lower_is_better: true,
};
const MOVES: Metric = Metric {
    key: "moves",
    label: "moves",
    kib: false,
    lower_is_better: true,
};
const FREES_PER_S: Metric = Metric {
    key: "frees_per_s",
    label: "frees/s",
    kib: false,
    lower_is_better: false,
};

/// One entry of the suite: a program and its arguments.
pub struct Workload {
    pub name: &'static str,
    pub source: &'static Source,
    full: &'static [&'static str],
    quick: &'static [&'static str],
    /// Environment the program needs.
    pub env: &'static [(&'static str, &'static str)],
    pub about: &'static str,
    pub metrics: &'static [Metric],
    /// `Some(base)`: runs on oxmalloc only (it uses oxmalloc's own API) and is
    /// compared with oxmalloc on the workload `base`.
    pub oxmalloc_vs: Option<&'static str>,
}

impl Workload {
    pub fn args(&self, quick: bool) -> &'static [&'static str] {
        if quick {
            self.quick
        } else {
            self.full
        }
    }
}

/// The suite, in the order it runs and is reported.
pub const SUITE: &[Workload] = &[
    Workload {
        name: "larson",
        source: &LARSON,
        full: &["4", "5000", "8", "1000", "20", "100000"],
        quick: &["4", "1000", "8", "1000", "4", "20000"],
        env: &[],
        about: "server simulation: 4 threads replace random blocks of 8-1000 B in arrays of 5000; \
                each generation of threads takes over another thread's array (frees what others \
                allocated)",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "remote-free",
        source: &REMOTE_FREE,
        full: &["10000000", "8", "200000", "3"],
        quick: &["1000000", "8", "100000", "3"],
        env: &[],
        about: "one thread allocates 10 M 8-byte blocks, 3 workers free them in batches of 200 k \
                while replacing blocks of their own 16-2048 B working set (4 threads)",
        metrics: &[FREES_PER_S],
        oxmalloc_vs: None,
    },
    Workload {
        name: "thread-churn",
        source: &THREAD_CHURN,
        full: &["2000", "4", "2000"],
        quick: &["200", "4", "1000"],
        env: &[],
        about: "2000 short-lived threads, 4 at a time; each allocates 2000 blocks of 16-4096 B, \
                frees half and what the previous thread of its lane left, leaves the rest",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "realloc-growth",
        source: &REALLOC_GROWTH,
        full: &["268435456", "65536"],
        quick: &["16777216", "65536"],
        env: &[],
        about: "one block grown with realloc to 256 MiB in 64 KiB steps, each step filled",
        metrics: &[MOVES],
        oxmalloc_vs: None,
    },
    Workload {
        name: "footprint",
        source: &FOOTPRINT,
        full: &["2000000", "100000"],
        quick: &["200000", "10000"],
        env: &[],
        about: "2 M objects of 16-128 B indexed by a doubling hash table, all freed, then a small \
                working set: final RSS is what the allocator gave back unasked",
        metrics: &[FINAL_RSS],
        oxmalloc_vs: None,
    },
    Workload {
        name: "py-footprint",
        source: &PY_FOOTPRINT,
        full: &["2000000"],
        quick: &["100000"],
        env: &[("PYTHONMALLOC", "malloc")],
        about: "python3 with PYTHONMALLOC=malloc (every object through the allocator) builds \
                2 M small strings and a dict, drops them, reads its RSS",
        metrics: &[FINAL_RSS],
        oxmalloc_vs: None,
    },
    Workload {
        name: "py-pymalloc",
        source: &PY_FOOTPRINT,
        full: &["2000000"],
        quick: &["100000"],
        env: &[("PYTHONMALLOC", "pymalloc")],
        about: "the same with Python's own small-object allocator (the default): only blocks \
                over 512 B come from the allocator (pymalloc maps its arenas itself)",
        metrics: &[FINAL_RSS],
        oxmalloc_vs: None,
    },
    Workload {
        name: "xmalloc",
        source: &XMALLOC,
        full: &["2", "5000000", "1024", "4096"],
        quick: &["2", "300000", "1024", "4096"],
        env: &[],
        about: "2 producer threads allocate 16-1024 B blocks, 2 consumer threads free them \
                (through rings of 4096)",
        metrics: &[FREES_PER_S],
        oxmalloc_vs: None,
    },
    Workload {
        name: "ring",
        source: &RING,
        full: &["4", "10000", "1000", "200"],
        quick: &["4", "2000", "1000", "50"],
        env: &[],
        about: "sh6bench-style: 4 threads each replace rings of 10000 blocks of 1-1000 B, freeing \
                in order, in reverse and every other",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "cache-scratch",
        source: &FALSE_SHARING,
        full: &["scratch", "4", "50000", "500", "8"],
        quick: &["scratch", "4", "5000", "200", "8"],
        env: &[],
        about: "false sharing: 4 threads each free a neighbouring 8-byte block the main thread \
                gave them, then allocate, write 500 times and free 8-byte blocks",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "cache-thrash",
        source: &FALSE_SHARING,
        full: &["thrash", "4", "50000", "500", "8"],
        quick: &["thrash", "4", "5000", "200", "8"],
        env: &[],
        about: "false sharing: 4 threads allocate, write 500 times and free their own 8-byte \
                blocks",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "interp",
        source: &INTERP,
        full: &["3000000", "64", "12"],
        quick: &["300000", "64", "12"],
        env: &[],
        about: "cfrac/espresso-style single thread: big-integer results, argument lists and \
                printed strings, all small and short-lived",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "fragmentation",
        source: &FRAGMENTATION,
        full: &["536870912", "16384"],
        quick: &["33554432", "16384"],
        env: &[],
        about: "512 MiB of 16 B-16 KiB blocks, 9 in 10 freed at random, then 256 MiB of blocks \
                twice as large: peak RSS",
        metrics: &[FINAL_RSS],
        oxmalloc_vs: None,
    },
    Workload {
        name: "string-builder",
        source: &STRING_BUILDER,
        full: &["64", "10000000", "1048576"],
        quick: &["64", "1000000", "262144"],
        env: &[],
        about: "64 strings grown by realloc to the exact length, 1-64 bytes at a time, up to \
                1 MiB each",
        metrics: &[MOVES],
        oxmalloc_vs: None,
    },
    Workload {
        name: "large",
        source: &LARGE,
        full: &["malloc", "400", "8", "262144", "67108864"],
        quick: &["malloc", "40", "8", "262144", "16777216"],
        env: &[],
        about: "8 live blocks of 256 KiB-64 MiB (log-uniform), 400 replaced, every page written",
        metrics: &[FINAL_RSS],
        oxmalloc_vs: None,
    },
    Workload {
        name: "calloc-churn",
        source: &LARGE,
        full: &["calloc", "300", "4", "5242880", "26214400"],
        quick: &["calloc", "20", "4", "5242880", "26214400"],
        env: &[],
        about: "4 live zero-filled (calloc) blocks of 5-25 MiB, 300 replaced, checked and written",
        metrics: &[FINAL_RSS],
        oxmalloc_vs: None,
    },
    Workload {
        name: "malloc-thread-1",
        source: &MALLOC_THREAD,
        full: &["1", "10000000"],
        quick: &["1", "1000000"],
        env: &[],
        about: "glibc bench-malloc-thread style: 1 thread replaces random blocks of 8 B-32 KiB \
                (small ones dominate) in a set of 1024",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "malloc-thread-4",
        source: &MALLOC_THREAD,
        full: &["4", "3000000"],
        quick: &["4", "300000"],
        env: &[],
        about: "the same on 4 threads",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "simple-batch",
        source: &PAIRS,
        full: &["batch", "0", "10000000"],
        quick: &["batch", "0", "1000000"],
        env: &[],
        about: "glibc bench-malloc-simple style: 100 mallocs then 100 frees, sizes 16 B-4 KiB in \
                turn, single thread",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "region-os",
        source: &REGION,
        full: &["os", "1", "8000000", "4096"],
        quick: &["os", "1", "800000", "4096"],
        env: &[],
        about: "a mixed workload (90 % 8-519 B, 9 % 1-9 KiB, 1 % 64-128 KiB, filled, 4096 live) \
                on ordinary memory",
        metrics: &[],
        oxmalloc_vs: None,
    },
    Workload {
        name: "region-inject",
        source: &REGION,
        full: &["inject", "1", "8000000", "4096"],
        quick: &["inject", "1", "800000", "4096"],
        env: &[],
        about: "the same on a 4 GiB region injected with oxmalloc_inject (non-exclusive)",
        metrics: &[],
        oxmalloc_vs: Some("region-os"),
    },
    Workload {
        name: "region-heap",
        source: &REGION,
        full: &["heap", "1", "8000000", "4096"],
        quick: &["heap", "1", "800000", "4096"],
        env: &[],
        about: "the same through a heap bound to an exclusive injected region \
                (oxmalloc_heap_new_in, oxmalloc_heap_malloc, free)",
        metrics: &[],
        oxmalloc_vs: Some("region-os"),
    },
];

/// The built programs.
pub struct Built {
    dir: PathBuf,
}

impl Built {
    /// The command that runs `w` (before the allocator is chosen).
    pub fn command(&self, w: &Workload, quick: bool) -> Command {
        let mut cmd = self.command_of(w.source);
        cmd.args(w.args(quick));
        for (k, v) in w.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The command that runs the program of `source`, without arguments.
    fn command_of(&self, source: &Source) -> Command {
        if source.is_python() {
            let mut cmd = Command::new("python3");
            cmd.arg(self.dir.join(source.file));
            cmd
        } else {
            Command::new(self.executable(source))
        }
    }

    /// The executable built from a C source.
    pub fn executable(&self, source: &Source) -> PathBuf {
        self.dir.join(source.stem())
    }
}

/// Whether `python3` can be run.
pub fn have_python() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("")
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes the sources into `dir` and compiles the C ones with `cc`, calling
/// `each(file)` before every compilation that is needed.
pub fn build(dir: &Path, cc: &str, mut each: impl FnMut(&str)) -> Result<Built, String> {
    let src = dir.join("src");
    fs::create_dir_all(&src).map_err(|e| format!("cannot create {}: {e}", src.display()))?;
    for (name, text) in HEADERS {
        write_if_changed(&src.join(name), text)?;
    }
    for s in SOURCES {
        let path = if s.is_python() {
            dir.join(s.file)
        } else {
            src.join(s.file)
        };
        write_if_changed(&path, s.text)?;
        if s.is_python() {
            continue;
        }
        let exe = dir.join(s.stem());
        let flags = flags_of(s);
        let stamp = dir.join(format!("{}.stamp", s.stem()));
        let key = format!("{:016x}", build_key(cc, &flags, s));
        if exe.is_file() && fs::read_to_string(&stamp).is_ok_and(|k| k == key) {
            continue;
        }
        each(s.file);
        let out = Command::new(cc)
            .args(&flags)
            .arg("-I")
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(&path)
            .arg("-ldl")
            .output()
            .map_err(|e| format!("cannot run the C compiler {cc:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{cc} failed on {}:\n{}",
                s.file,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        fs::write(&stamp, key).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    Ok(Built {
        dir: dir.to_path_buf(),
    })
}

/// How many C programs the suite compiles.
pub fn c_sources() -> usize {
    SOURCES.iter().filter(|s| !s.is_python()).count()
}

fn flags_of(s: &Source) -> Vec<&'static str> {
    let mut f = CFLAGS.to_vec();
    if s.no_builtin {
        f.push("-fno-builtin");
    }
    f
}

/// What a binary depends on: compiler, flags, source and headers.
fn build_key(cc: &str, flags: &[&str], s: &Source) -> u64 {
    let mut h = DefaultHasher::new();
    (cc, flags, s.text, HEADERS).hash(&mut h);
    h.finish()
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_baselines_exist() {
        for (i, w) in SUITE.iter().enumerate() {
            assert!(
                SUITE[..i].iter().all(|o| o.name != w.name),
                "{} twice",
                w.name
            );
            if let Some(base) = w.oxmalloc_vs {
                let b = SUITE.iter().find(|o| o.name == base).expect(base);
                assert!(b.oxmalloc_vs.is_none(), "{base} is a variant itself");
            }
            assert!(SOURCES.iter().any(|s| s.file == w.source.file));
        }
    }

    #[test]
    fn every_source_file_is_in_the_suite() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/workloads");
        for entry in fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let known = SOURCES.iter().any(|s| s.file == name) || HEADERS[0].0 == name;
            assert!(known, "{name} is not built by the suite");
        }
    }
}
