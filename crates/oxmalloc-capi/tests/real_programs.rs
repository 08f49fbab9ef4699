//! Real programs under `LD_PRELOAD`, their output compared with a plain run:
//! python3 (dicts, strings, threads), sqlite3 (thousands of inserts and
//! queries), git (init, commits, log), gcc (compiling a C file) and sort (a
//! million lines), each also under the hardened build (which must find no
//! misuse in them). Missing tools are installed with apt-get when we are
//! root; otherwise the test fails and says what to install.

mod support;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `prepare(cmd)` plainly, with the library preloaded and with the
/// hardened build preloaded, and checks all succeed with the same standard
/// output.
fn same_output(what: &str, prepare: impl Fn(&mut Command)) -> Vec<u8> {
    let run = |preload: Option<&Path>| -> Output {
        let mut c = Command::new("true");
        prepare(&mut c);
        match preload {
            Some(lib) => c.env("LD_PRELOAD", lib),
            None => c.env_remove("LD_PRELOAD"),
        };
        support::check(&mut c)
    };
    let plain = run(None);
    assert!(!plain.stdout.is_empty(), "{what}: no output to compare");
    let mut ours = Vec::new();
    for lib in [support::library(), support::hardened_library()] {
        let out = run(Some(&lib));
        assert!(
            plain.stdout == out.stdout,
            "{what}: output differs under {}\n--- plain\n{}\n--- oxmalloc\n{}\n--- stderr\n{}",
            lib.display(),
            String::from_utf8_lossy(&plain.stdout),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ours = out.stdout;
    }
    ours
}

/// A command for `program` with `args`, replacing the placeholder.
fn set(c: &mut Command, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) {
    *c = Command::new(program);
    c.args(args);
}

const PYTHON: &str = r#"
import threading, json, collections
d = {}
for i in range(200000):
    d["key%d" % i] = str(i) * (i % 7)
words = " ".join(d[k] for k in list(d)[:5000]).split()
counts = collections.Counter(len(w) for w in words)
results = [None] * 8
def work(n):
    local = {}
    for i in range(30000):
        s = ("%d-%d" % (n, i)) * 3
        local[s] = s.upper()[::-1]
    results[n] = sum(len(v) for v in local.values())
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(d), sum(len(v) for v in d.values()), sorted(counts.items()))
print(results)
print(json.dumps({k: d[k] for k in list(d)[100:110]}, sort_keys=True))
"#;

#[test]
fn python3() {
    support::ensure_tool("python3", "python3");
    same_output("python3", |c| set(c, "python3", &["-c", PYTHON]));
}

#[test]
fn sqlite3() {
    support::ensure_tool("sqlite3", "sqlite3");
    let mut sql = String::from(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL, grp INTEGER);\n\
         CREATE INDEX t_grp ON t(grp);\nBEGIN;\n",
    );
    for i in 0..5000 {
        sql += &format!(
            "INSERT INTO t(name, v, grp) VALUES ('name-{i}-{}', {}.5, {});\n",
            "x".repeat(i % 50),
            i * 7 % 1000,
            i % 37
        );
    }
    sql += "COMMIT;\n";
    for g in 0..37 {
        sql += &format!(
            "SELECT grp, count(*), sum(v), max(length(name)) FROM t WHERE grp = {g} GROUP BY grp;\n"
        );
    }
    sql += "SELECT name FROM t ORDER BY v DESC, id LIMIT 20;\n\
            UPDATE t SET name = upper(name) WHERE id % 3 = 0;\n\
            DELETE FROM t WHERE id % 5 = 0;\n\
            SELECT count(*), group_concat(substr(name, 1, 3), '') FROM t WHERE id < 200;\n";
    let dir = support::scratch("sqlite3");
    let script = dir.join("script.sql");
    std::fs::write(&script, sql).expect("write the script");
    same_output("sqlite3", |c| {
        set(c, "sqlite3", &[":memory:"]);
        c.stdin(std::fs::File::open(&script).expect("open the script"));
    });
}

/// A fixed identity and clock for git, so both runs make the same commits.
fn git_env(c: &mut Command, home: &Path) {
    for who in ["AUTHOR", "COMMITTER"] {
        c.env(format!("GIT_{who}_NAME"), "Test")
            .env(format!("GIT_{who}_EMAIL"), "test@example.com")
            .env(format!("GIT_{who}_DATE"), "2024-01-01T00:00:00Z");
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1").env("HOME", home);
}

#[test]
fn git_init_commit_log() {
    support::ensure_tool("git", "git");
    let script = "set -e
        rm -rf repo && git init -q -b main repo && cd repo
        for i in 1 2 3 4 5; do
            seq 1 $((i * 1000)) > file$i.txt
            echo \"change $i\" >> README
            git add -A && git commit -q -m \"commit $i\"
        done
        git log --stat
        git log --format='%H %s'
        git diff HEAD~3 --stat";
    let dir = support::scratch("git");
    // The shell runs git; LD_PRELOAD reaches every git process.
    same_output("git", |c| {
        set(c, "sh", &["-c", script]);
        c.current_dir(&dir);
        git_env(c, &dir);
    });
}

#[test]
fn gcc_compiles_a_c_file() {
    let dir = support::scratch("gcc");
    let src = dir.join("hello.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\
         static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }\n\
         int main(void) { int v[100]; for (int i = 0; i < 100; i++) v[i] = (i * 37) % 101;\n\
         qsort(v, 100, sizeof *v, cmp); char *s = strdup(\"compiled\");\n\
         printf(\"%s %d %d %d\\n\", s, v[0], v[50], v[99]); free(s); return 0; }\n",
    )
    .expect("write hello.c");
    for (i, preload) in [false, true].into_iter().enumerate() {
        let exe = dir.join(format!("hello{i}"));
        let mut c = Command::new("gcc");
        c.args(["-O2", "-Wall"]).arg(&src).arg("-o").arg(&exe);
        if preload {
            c.env("LD_PRELOAD", support::library());
        }
        support::check(&mut c);
    }
    let a = support::check(&mut Command::new(dir.join("hello0")));
    let b = support::check(&mut Command::new(dir.join("hello1")));
    assert_eq!(a.stdout, b"compiled 0 50 100\n");
    assert_eq!(a.stdout, b.stdout);
    // The compiler's own diagnostics are the same too.
    std::fs::write(&src, "int main(void) { int unused; return 0; }\n").expect("write");
    same_output("gcc diagnostics", |c| {
        set(
            c,
            "sh",
            &[
                "-c",
                "gcc -Wall -c \"$0\" -o /dev/null 2>&1",
                src.to_str().expect("path"),
            ],
        );
    });
}

#[test]
fn sort_a_million_lines() {
    let dir = support::scratch("sort");
    let input = dir.join("lines.txt");
    let mut text = String::with_capacity(20 << 20);
    let mut x: u64 = 88172645463325252;
    for i in 0..1_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text += &format!("{:x} line {i}\n", x % 1_000_000_007);
    }
    std::fs::write(&input, text).expect("write the input");
    let out = same_output("sort", |c| {
        set(c, "sort", &[input.to_str().expect("path")]);
        c.env("LC_ALL", "C");
    });
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1_000_000);
}
