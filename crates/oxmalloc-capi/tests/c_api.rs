//! The API of `oxmalloc.h` (`tests/c/c_api.c`), built the way a C user
//! would: with the header and flags of the `oxmalloc.pc` the build puts next
//! to the library, against the shared and against the static library.

mod support;

use std::collections::HashMap;
use std::process::Command;

/// The `Cflags`, `Libs` and `Libs.private` of `target/<profile>/oxmalloc.pc`,
/// variables expanded (a small pkg-config).
fn pkg_config() -> HashMap<String, Vec<String>> {
    let pc = support::profile_dir().join("oxmalloc.pc");
    let text = std::fs::read_to_string(&pc).unwrap_or_else(|e| panic!("{}: {e}", pc.display()));
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut fields = HashMap::new();
    let expand = |s: &str, vars: &HashMap<String, String>| {
        let mut s = s.to_string();
        while let Some(i) = s.find("${") {
            let j = i + s[i..].find('}').expect("closed ${");
            let v = vars.get(&s[i + 2..j]).cloned().unwrap_or_default();
            s.replace_range(i..=j, &v);
        }
        s
    };
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some((k, v)) = line.split_once(": ") {
            let v = expand(v, &vars);
            fields.insert(
                k.to_string(),
                v.split_whitespace().map(String::from).collect(),
            );
        } else if let Some((k, v)) = line.split_once('=') {
            let v = expand(v, &vars);
            vars.insert(k.to_string(), v);
        }
    }
    fields
}

#[test]
fn header_and_pkg_config_build_a_working_program() {
    let pc = pkg_config();
    let dir = support::scratch("c_api");
    let exe = dir.join("c_api");
    let libdir = pc["Libs"]
        .iter()
        .find_map(|a| a.strip_prefix("-L"))
        .expect("-L in Libs")
        .to_string();
    support::check(
        Command::new("gcc")
            .args(["-O1", "-g", "-Wall", "-Werror", "-pthread", "-fno-builtin"])
            .args(&pc["Cflags"])
            .arg("-I")
            .arg(support::c_source(""))
            .arg(support::c_source("c_api.c"))
            .arg("-o")
            .arg(&exe)
            .args(&pc["Libs"])
            .arg(format!("-Wl,-rpath,{libdir}"))
            // Searched before LD_LIBRARY_PATH (see support::compile_linked).
            .arg("-Wl,--disable-new-dtags"),
    );
    support::run_ok(&mut Command::new(&exe));
}

#[test]
fn static_library_replaces_malloc() {
    let pc = pkg_config();
    let dir = support::scratch("c_api_static");
    let exe = dir.join("c_api_static");
    support::check(
        Command::new("gcc")
            .args(["-O1", "-g", "-Wall", "-Werror", "-pthread", "-fno-builtin"])
            .args(&pc["Cflags"])
            .arg(support::c_source("c_api.c"))
            .arg("-o")
            .arg(&exe)
            .arg(support::static_library())
            .args(&pc["Libs.private"]),
    );
    support::run_ok(&mut Command::new(&exe));
}
