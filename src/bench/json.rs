//! The results as JSON, for programs: every sample, the medians, the best
//! peer of every figure and every ratio to it, the callgrind counts and the
//! gaps.

use serde_json::{json, Map, Value};

use super::results::{Callgrind, Problem, Results, WorkloadResults};

pub fn json(r: &Results) -> Value {
    let m = &r.machine;
    let mut allocators: Vec<Value> = r
        .subjects
        .iter()
        .map(|a| {
            json!({
                "name": a.name, "present": true, "peer": a.peer,
                "version": a.version, "library": a.library,
            })
        })
        .collect();
    allocators.extend(r.missing.iter().map(
        |miss| json!({ "name": miss.name, "present": false, "peer": true, "missing": miss.reason }),
    ));
    json!({
        "tool": "oxmalloc bench",
        "command": r.command,
        "quick": r.quick,
        "repeats": r.repeats,
        "machine": {
            "cpu": m.cpu, "cores": m.cores, "memory_gib": m.memory_gib, "kernel": m.kernel,
            "compiler": m.compiler, "revision": m.revision, "date": m.date,
            "load_start": m.load_start, "load_end": m.load_end,
        },
        "allocators": allocators,
        "workloads": r.workloads.iter().map(|w| workload(r, w)).collect::<Vec<_>>(),
        "callgrind": callgrind(&r.callgrind),
        "gaps": r.gaps().iter().map(|g| json!({
            "workload": g.workload, "figure": g.figure.key(), "oxmalloc": g.oxmalloc,
            "best_peer": g.peer, "best": g.best, "ratio": g.ratio,
        })).collect::<Vec<_>>(),
    })
}

fn workload(r: &Results, w: &WorkloadResults) -> Value {
    let wl = w.workload;
    let figures = w.figures();
    let mut results = Map::new();
    for (name, c) in &w.cells {
        let mut o = Map::new();
        o.insert("runs".into(), json!(c.samples.len()));
        o.insert("skipped".into(), json!(c.skipped));
        match &c.problem {
            Some(Problem::Failed(why)) => o.insert("failed".into(), json!(why)),
            Some(Problem::Unavailable(why)) => o.insert("unavailable".into(), json!(why)),
            None => None,
        };
        let mut ratios = Map::new();
        for &f in &figures {
            if let Some(v) = c.median(f) {
                o.insert(f.key().into(), json!(v));
            }
            let ratio = if wl.oxmalloc_vs.is_some() {
                r.ratio_to_base(w, f)
            } else {
                r.ratio_to_best(w, name, f)
            };
            if let Some(x) = ratio {
                ratios.insert(f.key().into(), json!(x));
            }
        }
        let key = if wl.oxmalloc_vs.is_some() {
            "ratio_to_base"
        } else {
            "ratio_to_best_peer"
        };
        o.insert(key.into(), Value::Object(ratios));
        if *name == "oxmalloc" && wl.oxmalloc_vs.is_none() {
            let each: Map<String, Value> = w
                .cells
                .iter()
                .filter(|(peer, _)| *peer != "oxmalloc")
                .map(|(peer, _)| {
                    let per: Map<String, Value> = figures
                        .iter()
                        .filter_map(|&f| {
                            Some((f.key().to_string(), json!(r.ratio_to(w, name, peer, f)?)))
                        })
                        .collect();
                    ((*peer).to_string(), Value::Object(per))
                })
                .collect();
            o.insert("ratio_to_each_peer".into(), Value::Object(each));
        }
        o.insert(
            "samples".into(),
            c.samples
                .iter()
                .map(|s| {
                    json!({
                        "wall_s": s.wall_s, "cpu_s": s.cpu_s, "peak_rss_kib": s.peak_rss_kib,
                        "reported": s.reported,
                    })
                })
                .collect(),
        );
        results.insert((*name).into(), Value::Object(o));
    }
    let best: Map<String, Value> = figures
        .iter()
        .filter_map(|&f| {
            let (peer, v) = r.best_peer(w, f)?;
            Some((f.key().to_string(), json!({ "name": peer, "value": v })))
        })
        .collect();
    json!({
        "name": wl.name,
        "program": wl.source.file,
        "args": wl.args(r.quick),
        "env": wl.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "about": wl.about,
        "oxmalloc_vs": wl.oxmalloc_vs,
        "figures": figures.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "best_peer": best,
        "results": results,
    })
}

fn callgrind(c: &Callgrind) -> Value {
    match c {
        Callgrind::Skipped(why) => json!({ "counted": false, "reason": why }),
        Callgrind::Counted(cases) => json!({
            "counted": true,
            "cases": cases.iter().map(|case| {
                let counts: Map<String, Value> = case.counts.iter().map(|(a, c)| {
                    let v = match c {
                        Ok(n) => json!(n),
                        Err(e) => json!({ "error": e }),
                    };
                    ((*a).to_string(), v)
                }).collect();
                json!({ "name": case.name, "instructions_per_pair": counts })
            }).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::bench::results::tests::{results, sample};

    #[test]
    fn medians_and_ratios_are_in_the_json() {
        let r = results(vec![
            (
                "oxmalloc",
                vec![sample(2.0, 10.0), sample(4.0, 10.0), sample(3.0, 10.0)],
            ),
            ("glibc", vec![sample(1.5, 20.0)]),
        ]);
        let j = super::json(&r);
        let w = &j["workloads"][0];
        assert_eq!(w["name"], "larson");
        let ox = &w["results"]["oxmalloc"];
        assert_eq!(ox["wall_s"], 3.0);
        assert_eq!(ox["runs"], 3);
        assert_eq!(ox["ratio_to_best_peer"]["wall_s"], 2.0);
        assert_eq!(ox["ratio_to_best_peer"]["peak_rss_kib"], 0.5);
        assert_eq!(ox["ratio_to_each_peer"]["glibc"]["wall_s"], 2.0);
        assert_eq!(w["best_peer"]["wall_s"]["name"], "glibc");
        assert_eq!(j["gaps"][0]["workload"], "larson");
        let v = j["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "region-heap")
            .unwrap();
        assert_eq!(v["results"]["oxmalloc"]["ratio_to_base"]["wall_s"], 1.0);
    }
}
