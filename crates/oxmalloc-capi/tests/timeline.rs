//! `OXMALLOC_TIMELINE`: the sampler's file has a comment per sampling
//! process and samples of seven numbers; in a run (`OXMALLOC_PARENT_PID`)
//! only the main process samples, and the programs it execs go on in the
//! same file under the same pid.

mod support;

#[test]
fn main_process_samples_into_the_file() {
    let file = support::scratch("timeline").join("samples.txt");
    let me = std::process::id().to_string();
    let mut c = support::preloaded("sh");
    c.args([
        "-c",
        "echo $$; /bin/sleep 0.05; /bin/echo child >/dev/null; exec /bin/sleep 0.05",
    ])
    .env("OXMALLOC_TIMELINE", &file)
    .env("OXMALLOC_TIMELINE_MS", "2")
    .env("OXMALLOC_PARENT_PID", &me);
    let out = support::check(&mut c);
    let main: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let text = std::fs::read_to_string(&file).expect("the sampler wrote the file");
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    // The shell, then the sleep that replaced it; never its children.
    assert_eq!(
        heads,
        vec![format!("# oxmalloc timeline: pid {main} every 2 ms"); 2],
        "{text}"
    );
    let samples: Vec<Vec<u64>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').map(|f| f.parse().unwrap()).collect())
        .collect();
    assert!(samples.iter().all(|s| s.len() == 7 && s[0] == main));
    // 100 ms of sleeping at 2 ms: about 50 samples, 10 at least on a
    // loaded machine (without the thread, only the 3 of the load and exit
    // hooks), each with a resident set.
    assert!(samples.len() >= 10, "{}", samples.len());
    assert!(samples.iter().all(|s| s[6] > 0));
    let first = samples.first().unwrap()[1];
    let last = samples.iter().map(|s| s[1]).max().unwrap();
    assert!(last - first >= 100_000, "{first}..{last} µs");
}

#[test]
fn without_the_variable_nothing_samples() {
    let dir = support::scratch("timeline_off");
    let mut c = support::preloaded("/bin/echo");
    c.current_dir(&dir).env_remove("OXMALLOC_TIMELINE");
    support::check(&mut c);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}
