//! Progress on standard error: a bar redrawn in place when standard error is
//! a terminal, plain lines otherwise (CI logs).

use std::io::Write;
use std::time::Instant;

pub struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    tty: bool,
}

const WIDTH: usize = 30;

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress {
            total: total.max(1),
            done: 0,
            start: Instant::now(),
            // SAFETY: isatty has no memory preconditions.
            tty: unsafe { libc::isatty(2) } == 1,
        }
    }

    /// Says what is being done now (drawn on the bar only).
    pub fn start(&mut self, what: &str) {
        if self.tty {
            self.draw(what);
        }
    }

    /// One step finished, with what came of it.
    pub fn finish(&mut self, what: &str, result: &str) {
        self.done = (self.done + 1).min(self.total);
        if self.tty {
            self.draw(what);
        } else {
            eprintln!("[{:>4}/{}] {what}: {result}", self.done, self.total);
        }
    }

    /// A message that stays on screen above the bar.
    pub fn note(&mut self, msg: &str) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{msg}");
    }

    /// Clears the bar at the end.
    pub fn close(&mut self) {
        if self.tty {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }

    fn draw(&self, what: &str) {
        let filled = self.done * WIDTH / self.total;
        let elapsed = self.start.elapsed().as_secs();
        let left = if self.done == 0 {
            String::from("?")
        } else {
            let rest = elapsed as f64 * (self.total - self.done) as f64 / self.done as f64;
            minutes(rest as u64)
        };
        eprint!(
            "\r\x1b[K[{}{}] {}/{} {} elapsed, ~{} left  {what}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            self.done,
            self.total,
            minutes(elapsed),
            left
        );
        let _ = std::io::stderr().flush();
    }
}

fn minutes(s: u64) -> String {
    format!("{}:{:02}", s / 60, s % 60)
}
