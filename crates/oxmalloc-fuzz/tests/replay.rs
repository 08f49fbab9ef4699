//! Replays every input of the corpus kept in the repository
//! (`fuzz/corpus/ops/`, seeded by fuzzing; see `docs/TESTING.md`) through
//! the differential harness: each must run to the end with every check of
//! the model passing. A failing input is named in the failure.

use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ops");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_input_passes_the_model() {
    let files = corpus();
    assert!(
        files.len() >= 20,
        "the corpus has {} inputs: fuzz/corpus/ops is missing",
        files.len()
    );
    let mut ops = 0;
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("read a corpus input");
        ops += oxmalloc_fuzz::ops::decode(&data).len();
        if std::panic::catch_unwind(|| oxmalloc_fuzz::run(&data)).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(failed.is_empty(), "inputs that failed: {failed:#?}");
    assert!(
        ops >= 2 * files.len(),
        "{ops} operations in {} inputs",
        files.len()
    );
}

#[test]
fn a_hand_written_sequence_uses_every_operation() {
    use oxmalloc_fuzz::ops::{Align, Op, RegionLen, Size};
    let ops = [
        Op::Alloc {
            size: Size(100),
            align: Align(8),
            zeroed: true,
        },
        Op::Alloc {
            size: Size(300_000),
            align: Align(4096),
            zeroed: false,
        },
        Op::Realloc {
            pick: 0,
            size: Size(5000),
            via_global: false,
        },
        Op::RemoteAlloc {
            size: Size(64),
            align: Align(16),
        },
        Op::RemoteFree { pick: 1 },
        Op::Inject {
            len: RegionLen(1 << 20),
        },
        Op::HeapNew {
            len: RegionLen(1 << 20),
        },
        Op::HeapAddRegion {
            heap: 0,
            len: RegionLen(1 << 20),
        },
        Op::HeapAlloc {
            heap: 0,
            size: Size(48),
            align: Align(8),
            zeroed: true,
        },
        Op::HeapAlloc {
            heap: 0,
            size: Size(70_000),
            align: Align(64),
            zeroed: false,
        },
        Op::Realloc {
            pick: 3,
            size: Size(10),
            via_global: false,
        },
        Op::HeapRetire { heap: 0 }, // refused: blocks are live
        Op::RemoteFree { pick: 2 },
        Op::Release { idle: false },
        Op::Release { idle: true },
        Op::HeapDestroy { heap: 0 },
        Op::HeapAlloc {
            heap: 0,
            size: Size(1000),
            align: Align(8),
            zeroed: false,
        },
        Op::Free {
            pick: 0,
            via_global: true,
        },
        Op::HeapRetire { heap: 0 },
    ];
    oxmalloc_fuzz::run_ops(&ops);
}
