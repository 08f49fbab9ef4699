//! Instructions per malloc/free pair on the fast path, counted by
//! `valgrind --tool=callgrind`: repeatable on a noisy machine, unlike time.
//!
//! The program is `pairs.c` (built with `-fno-builtin`) under `LD_PRELOAD`;
//! callgrind does not replace malloc (only memcheck-like tools do), so the
//! preloaded allocator is the one counted. Instructions per pair =
//! (Ir(N2) − Ir(N1)) / (N2 − N1), which cancels start-up and first-call
//! set-up. The count includes the loop and the calls through the PLT, the
//! same for every allocator.

use std::process::{Command, Stdio};

use super::allocators::Allocator;
use super::workloads::{Built, PAIRS};

/// One counted case: `pairs MODE SIZE N`.
pub struct Case {
    pub name: &'static str,
    mode: &'static str,
    size: u32,
}

const PAIR_16: Case = Case {
    name: "pair-16",
    mode: "pair",
    size: 16,
};
const PAIR_256: Case = Case {
    name: "pair-256",
    mode: "pair",
    size: 256,
};
const PAIR_4096: Case = Case {
    name: "pair-4096",
    mode: "pair",
    size: 4096,
};
const BATCH_16: Case = Case {
    name: "batch-16",
    mode: "batch",
    size: 16,
};

const N1: u64 = 100_000;
const N2: u64 = 200_000;

/// The cases of a full run, or of `--quick`.
pub fn cases(quick: bool) -> &'static [Case] {
    if quick {
        &[PAIR_16, BATCH_16]
    } else {
        &[PAIR_16, PAIR_256, PAIR_4096, BATCH_16]
    }
}

/// Whether valgrind can be run.
pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Instructions per pair of `case` under `a`.
pub fn count(built: &Built, a: &Allocator, case: &Case) -> Result<f64, String> {
    let i1 = instructions(built, a, case, N1)?;
    let i2 = instructions(built, a, case, N2)?;
    Ok((i2 as f64 - i1 as f64) / (N2 - N1) as f64)
}

fn instructions(built: &Built, a: &Allocator, case: &Case, n: u64) -> Result<u64, String> {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(built.executable(&PAIRS))
        .args([case.mode, &case.size.to_string(), &n.to_string()])
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null());
    if let Some(lib) = &a.preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "valgrind failed on {} ({}): {err}",
            case.name, a.name
        ));
    }
    collected(&err).ok_or_else(|| format!("no instruction count in valgrind's output: {err}"))
}

/// The number in callgrind's `==PID== Collected : N` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.split_once("Collected :"))
        .and_then(|(_, n)| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_collected_line() {
        let err = "==1== Events    : Ir\n==1== Collected : 9241671\n==1==\n";
        assert_eq!(super::collected(err), Some(9_241_671));
        assert_eq!(super::collected("nothing"), None);
    }
}
