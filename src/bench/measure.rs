//! Running one workload under one allocator and measuring it: wall time
//! (from just before the spawn to the reaping), CPU time (user + system)
//! and peak RSS (`ru_maxrss`) of the child from `wait4`, and the
//! `key=value` figures the program prints. A run that does not finish in
//! time is killed.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A finished run's figures.
#[derive(Clone, Debug)]
pub struct Sample {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub peak_rss_kib: f64,
    /// What the program printed as `key=value`.
    pub reported: BTreeMap<String, f64>,
}

/// What came of one run.
#[derive(Clone, Debug)]
pub enum Outcome {
    Done(Sample),
    /// The program said `unavailable=WHAT` (an API the allocator lacks).
    Unavailable(String),
    /// Crashed, failed, timed out, or found its blocks overwritten.
    Failed(String),
}

/// Runs `cmd` with `preload` in `LD_PRELOAD` (nothing preloaded when
/// `None`), killing it after `timeout`.
pub fn run(mut cmd: Command, preload: Option<&Path>, timeout: Duration) -> Outcome {
    cmd.env_remove("LD_PRELOAD")
        .env_remove("MALLOCSTATS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0);
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start {:?}: {e}", cmd.get_program())),
    };
    let pid = child.id() as libc::pid_t;
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);

    // The watchdog kills the child's process group unless told it finished
    // first. The child is not reaped before wait4 below returns, so its pid
    // (the group's id) cannot have been reused while the watchdog may still
    // signal it.
    let (finished, watch) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if watch.recv_timeout(timeout).is_err() {
            // SAFETY: kill has no memory preconditions; -pid is the group our
            // unreaped child leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            true
        } else {
            false
        }
    });
    let waited = wait(pid);
    let wall_s = start.elapsed().as_secs_f64();
    let _ = finished.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let out = stdout
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let err = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();

    let (status, usage) = match waited {
        Ok(w) => w,
        Err(e) => return Outcome::Failed(format!("wait4: {e}")),
    };
    if timed_out {
        return Outcome::Failed(format!("timed out after {} s", timeout.as_secs()));
    }
    if let Some(problem) = exit_problem(status) {
        return Outcome::Failed(format!("{problem}{}", tail(&err)));
    }
    let reported = parse(&out);
    if let Some(what) = out.lines().find_map(|l| l.strip_prefix("unavailable=")) {
        return Outcome::Unavailable(format!("{what} not available"));
    }
    if let Some(&n) = reported.get("errors").filter(|&&n| n != 0.0) {
        return Outcome::Failed(format!("{n} blocks found overwritten{}", tail(&err)));
    }
    Outcome::Done(Sample {
        wall_s,
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss as f64,
        reported,
    })
}

/// Waits for the child, retrying on EINTR.
fn wait(pid: libc::pid_t) -> Result<(i32, libc::rusage), std::io::Error> {
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of the plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: status and usage are valid for writes; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn exit_problem(status: i32) -> Option<String> {
    if libc::WIFSIGNALED(status) {
        Some(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0 {
        Some(format!("exit status {}", libc::WEXITSTATUS(status)))
    } else {
        None
    }
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// The last lines of a program's standard error, for a failure message.
fn tail(err: &str) -> String {
    let lines: Vec<&str> = err.lines().rev().take(3).collect();
    if lines.is_empty() {
        String::new()
    } else {
        let mut l = lines;
        l.reverse();
        format!(": {}", l.join(" / "))
    }
}

/// `key=value` lines with a numeric value.
fn parse(out: &str) -> BTreeMap<String, f64> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.trim().to_string(), v.trim().parse().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    const T: Duration = Duration::from_secs(20);

    #[test]
    fn measures_a_child_and_reads_its_figures() {
        // A child that burns CPU for a while and grows to ~64 MiB.
        let o = run(
            sh("python3 -c 'b = bytearray(64 << 20); s = sum(range(3000000))'; echo ops=12; echo errors=0"),
            None,
            T,
        );
        let Outcome::Done(s) = o else { panic!("{o:?}") };
        assert_eq!(s.reported.get("ops"), Some(&12.0));
        assert!(s.peak_rss_kib > 60.0 * 1024.0, "{s:?}");
        assert!(s.cpu_s > 0.01 && s.wall_s >= s.cpu_s * 0.5, "{s:?}");
    }

    #[test]
    fn failures_are_told_apart() {
        let failed = |o: Outcome, what: &str| match o {
            Outcome::Failed(m) => assert!(m.contains(what), "{m}"),
            other => panic!("{other:?}"),
        };
        failed(
            run(sh("echo oops >&2; exit 3"), None, T),
            "exit status 3: oops",
        );
        failed(run(sh("kill -SEGV $$"), None, T), "signal 11");
        failed(run(sh("echo errors=2"), None, T), "2 blocks");
        failed(
            run(sh("sleep 30"), None, Duration::from_millis(300)),
            "timed out",
        );
        match run(sh("echo unavailable=oxmalloc_heap_new_in"), None, T) {
            Outcome::Unavailable(m) => assert!(m.contains("oxmalloc_heap_new_in")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_preload_reaches_the_child() {
        let o = run(
            sh("case \"$LD_PRELOAD\" in */nonexistent.so) echo seen=1;; esac"),
            Some(Path::new("/nonexistent.so")),
            T,
        );
        let Outcome::Done(s) = o else { panic!("{o:?}") };
        assert_eq!(s.reported.get("seen"), Some(&1.0));
    }
}
