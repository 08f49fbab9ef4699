//! The results as Markdown: the machine, one table per figure (every
//! allocator's median and its ratio to the best peer), the workloads' own
//! figures, oxmalloc's injected-region and bound-heap variants, the
//! callgrind counts, the largest gaps, and every failure.

use std::fmt::Write;

use super::results::{Callgrind, Cell, Figure, Problem, Results, WorkloadResults};

pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    header(&mut s, r);
    let names = r.names();
    for f in [Figure::Wall, Figure::Cpu, Figure::PeakRss] {
        let _ = writeln!(s, "\n## {} (median)\n", capitalise(f.label()));
        table_head(&mut s, "workload", &names);
        for w in r.compared() {
            row(&mut s, r, w, f, w.workload.name, &names);
        }
    }

    let _ = writeln!(
        s,
        "\n## Figures the workloads report (median)\n\n\
         RSS after the peak is read by the program itself once it freed its peak; moves count \
         reallocs that changed the address; frees/s are measured inside the program.\n"
    );
    table_head(&mut s, "workload: figure", &names);
    for w in r.compared() {
        for m in w.workload.metrics {
            let label = format!("{}: {}", w.workload.name, m.label);
            row(&mut s, r, w, Figure::Reported(m), &label, &names);
        }
    }

    each_peer(&mut s, r, &names);
    variants(&mut s, r);
    callgrind(&mut s, r, &names);
    gaps(&mut s, r);
    problems(&mut s, r);
    workloads(&mut s, r);
    s
}

fn header(s: &mut String, r: &Results) {
    let m = &r.machine;
    let _ = writeln!(s, "# oxmalloc bench\n");
    let _ = writeln!(
        s,
        "- Taken {} with `{}` ({} mode, {} interleaved repeats, medians), revision {}.",
        m.date,
        r.command,
        if r.quick { "quick" } else { "full" },
        r.repeats,
        m.revision
    );
    let _ = writeln!(
        s,
        "- Machine: {}, {} cores, {:.0} GiB, Linux {}; {}. Load average {} at the start, {} at the end.",
        m.cpu, m.cores, m.memory_gib, m.kernel, m.compiler, m.load_start, m.load_end
    );
    for a in &r.subjects {
        let _ = writeln!(s, "- {}: {}.", a.name, a.version);
    }
    for miss in &r.missing {
        let _ = writeln!(s, "- {}: **missing** — {}.", miss.name, miss.reason);
    }
    let _ = writeln!(
        s,
        "\nIn parentheses: the ratio to the best peer (the best of glibc, tcmalloc, jemalloc \
         and mimalloc; oxmalloc is not a peer). Above 1 is worse, for every figure. \
         † marks a cell with fewer runs: a run slower than the slow limit is not repeated."
    );
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn table_head(s: &mut String, first: &str, names: &[&str]) {
    let _ = writeln!(
        s,
        "| {first} | {} | oxmalloc / best peer |",
        names.join(" | ")
    );
    let _ = writeln!(s, "|---|{}---:|", "---:|".repeat(names.len()));
}

fn row(s: &mut String, r: &Results, w: &WorkloadResults, f: Figure, label: &str, names: &[&str]) {
    let cells: Vec<String> = names.iter().map(|n| cell_text(r, w, n, f)).collect();
    let best = match (r.ratio_to_best(w, "oxmalloc", f), r.best_peer(w, f)) {
        (Some(x), Some((peer, _))) if x > 1.0 => format!("**{x:.2}** ({peer})"),
        (Some(x), Some((peer, _))) => format!("{x:.2} ({peer})"),
        _ => "—".into(),
    };
    let _ = writeln!(s, "| {label} | {} | {best} |", cells.join(" | "));
}

fn cell_text(r: &Results, w: &WorkloadResults, name: &str, f: Figure) -> String {
    let Some(c) = w.cell(name) else {
        return "—".into();
    };
    match (c.median(f), &c.problem) {
        (Some(v), _) => {
            let ratio = r
                .ratio_to_best(w, name, f)
                .map(|x| format!(" ({x:.2})"))
                .unwrap_or_default();
            format!("{}{ratio}{}", f.format(v), dagger(c))
        }
        (None, Some(Problem::Failed(_))) => "failed".into(),
        (None, Some(Problem::Unavailable(_))) => "n/a".into(),
        (None, None) => "—".into(),
    }
}

fn dagger(c: &Cell) -> &'static str {
    if c.skipped > 0 {
        " †"
    } else {
        ""
    }
}

/// oxmalloc's ratio to every peer, wall time and peak RSS.
fn each_peer(s: &mut String, r: &Results, names: &[&str]) {
    let peers: Vec<&str> = names.iter().copied().filter(|n| *n != "oxmalloc").collect();
    let _ = writeln!(
        s,
        "\n## oxmalloc against each peer\n\n\
         oxmalloc's median divided by the peer's: wall time / peak RSS (below 1: oxmalloc \
         is faster / smaller).\n\n\
         | workload | {} |\n|---|{}",
        peers.join(" | "),
        "---:|".repeat(peers.len())
    );
    for w in r.compared() {
        let cells: Vec<String> = peers
            .iter()
            .map(|p| {
                let x = |f| {
                    r.ratio_to(w, "oxmalloc", p, f)
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_else(|| "—".into())
                };
                format!("{} / {}", x(Figure::Wall), x(Figure::PeakRss))
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", w.workload.name, cells.join(" | "));
    }
}

fn variants(s: &mut String, r: &Results) {
    let mut rows = r.variants().peekable();
    if rows.peek().is_none() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## oxmalloc on injected memory and on a bound heap\n\n\
         The same workload on oxmalloc's OS memory is the base; ratios above 1 are worse.\n\n\
         | workload | base | wall time | CPU time | peak RSS | blocks in the region | wall / base | CPU / base |\n\
         |---|---|---:|---:|---:|---:|---:|---:|"
    );
    for w in rows {
        let base = w.workload.oxmalloc_vs.unwrap_or("");
        let Some(c) = w.cell("oxmalloc") else {
            continue;
        };
        let fig = |f: Figure| {
            c.median(f)
                .map(|v| f.format(v))
                .unwrap_or_else(|| "—".into())
        };
        let ratio = |f: Figure| {
            r.ratio_to_base(w, f)
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "—".into())
        };
        match &c.problem {
            Some(Problem::Unavailable(why)) | Some(Problem::Failed(why))
                if c.samples.is_empty() =>
            {
                let _ = writeln!(s, "| {} | {base} | {why} | | | | | |", w.workload.name);
            }
            _ => {
                let in_region = c
                    .samples
                    .last()
                    .and_then(|x| x.reported.get("in_region_pct"))
                    .map(|p| format!("{p:.0} %"))
                    .unwrap_or_else(|| "—".into());
                let _ = writeln!(
                    s,
                    "| {} | {base} | {} | {} | {} | {in_region} | {} | {} |",
                    w.workload.name,
                    fig(Figure::Wall),
                    fig(Figure::Cpu),
                    fig(Figure::PeakRss),
                    ratio(Figure::Wall),
                    ratio(Figure::Cpu)
                );
            }
        }
    }
}

fn callgrind(s: &mut String, r: &Results, names: &[&str]) {
    let _ = writeln!(s, "\n## Instructions per malloc/free pair (callgrind)\n");
    match &r.callgrind {
        Callgrind::Skipped(why) => {
            let _ = writeln!(s, "Not counted: {why}.");
        }
        Callgrind::Counted(cases) => {
            let _ = writeln!(
                s,
                "`pairs pair SIZE N` (malloc then free) and `pairs batch SIZE N` (100 mallocs, \
                 then the 100 frees), built with `-fno-builtin`, under \
                 `valgrind --tool=callgrind` with the allocator preloaded: \
                 (Ir(200000) − Ir(100000)) / 100000, loop and PLT calls included.\n"
            );
            table_head(s, "case", names);
            for case in cases {
                let get = |n: &str| {
                    case.counts
                        .iter()
                        .find(|(a, _)| *a == n)
                        .and_then(|(_, c)| c.as_ref().ok().copied())
                };
                let best = case
                    .counts
                    .iter()
                    .filter(|(a, _)| *a != "oxmalloc")
                    .filter_map(|(a, c)| Some((*a, *c.as_ref().ok()?)))
                    .min_by(|x, y| x.1.total_cmp(&y.1));
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| match (get(n), best) {
                        (Some(v), Some((_, b))) => format!("{v:.1} ({:.2})", v / b),
                        (Some(v), None) => format!("{v:.1}"),
                        (None, _) => "—".into(),
                    })
                    .collect();
                let ox = match (get("oxmalloc"), best) {
                    (Some(v), Some((peer, b))) if v > b => format!("**{:.2}** ({peer})", v / b),
                    (Some(v), Some((peer, b))) => format!("{:.2} ({peer})", v / b),
                    _ => "—".into(),
                };
                let _ = writeln!(s, "| {} | {} | {ox} |", case.name, cells.join(" | "));
            }
        }
    }
}

fn gaps(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "\n## Largest gaps to the best peer\n\n\
         Per workload the figure where oxmalloc trails the best peer most (wall time, peak \
         RSS, or the workload's own figures; differences under 20 ms or 4 MiB left out).\n"
    );
    let gaps = r.gaps();
    if gaps.is_empty() {
        let _ = writeln!(
            s,
            "None: oxmalloc is at least as good as the best peer everywhere."
        );
    }
    for (i, g) in gaps.iter().enumerate() {
        let _ = writeln!(
            s,
            "{}. **{}**, {}: oxmalloc {}, best peer {} {} — {:.2}×",
            i + 1,
            g.workload,
            g.figure.label(),
            g.figure.format(g.oxmalloc),
            g.peer,
            g.figure.format(g.best),
            g.ratio
        );
    }
}

fn problems(s: &mut String, r: &Results) {
    let mut lines = Vec::new();
    for w in &r.workloads {
        for (name, c) in &w.cells {
            match &c.problem {
                Some(Problem::Failed(why)) => {
                    lines.push(format!(
                        "- **{}** on {name}: failed: {why}",
                        w.workload.name
                    ));
                }
                Some(Problem::Unavailable(why)) => {
                    lines.push(format!("- {} on {name}: {why}", w.workload.name));
                }
                None => {}
            }
            if c.skipped > 0 {
                lines.push(format!(
                    "- {} on {name}: {} of {} repeats left out (a run exceeded the slow limit)",
                    w.workload.name,
                    c.skipped,
                    c.skipped + c.samples.len()
                ));
            }
        }
    }
    if let Callgrind::Counted(cases) = &r.callgrind {
        for case in cases {
            for (name, c) in &case.counts {
                if let Err(e) = c {
                    lines.push(format!("- callgrind {} on {name}: {e}", case.name));
                }
            }
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(s, "\n## Problems\n\n{}", lines.join("\n"));
    }
}

fn workloads(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Workloads\n");
    if r.quick {
        let _ = writeln!(
            s,
            "The descriptions give the full mode's sizes; the arguments are the quick mode's.\n"
        );
    }
    for w in &r.workloads {
        let wl = w.workload;
        let env: String = wl.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        let _ = writeln!(
            s,
            "- **{}** (`{env}{} {}`): {}.",
            wl.name,
            wl.source.file,
            wl.args(r.quick).join(" "),
            wl.about
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::bench::results::tests::{results, sample};

    #[test]
    fn tables_show_ratios_gaps_and_missing_cells() {
        let r = results(vec![
            ("oxmalloc", vec![sample(3.0, 100.0)]),
            ("glibc", vec![sample(1.5, 50.0)]),
            ("mimalloc", vec![sample(1.0, 80.0)]),
        ]);
        let md = super::markdown(&r);
        assert!(
            md.contains("| workload | oxmalloc | glibc | mimalloc | oxmalloc / best peer |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| larson | 3.00 s (3.00) | 1.50 s (1.50) | 1.00 s (1.00) | **3.00** (mimalloc) |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "1. **larson**, wall time: oxmalloc 3.00 s, best peer mimalloc 1.00 s — 3.00×"
            ),
            "{md}"
        );
        assert!(
            md.contains("| region-inject | region-os | 3.00 s |"),
            "{md}"
        );
    }
}
