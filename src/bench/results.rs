//! What a run of the suite found, and the arithmetic on it: medians of the
//! repeats, the best peer of every figure, ratios to it, and the largest
//! gaps between oxmalloc and the best peer.
//!
//! Every ratio is a cost ratio: above 1 means worse than what it is
//! compared with, for times and sizes (value / best) and for rates such as
//! frees per second alike (best / value).

use super::allocators::{Missing, NAMES};
use super::machine::Machine;
use super::measure::Sample;
use super::workloads::{Metric, Workload};

/// An allocator as the results record it.
pub struct Subject {
    pub name: &'static str,
    pub version: String,
    pub library: Option<String>,
    pub peer: bool,
}

/// The runs of one workload under one allocator.
#[derive(Default)]
pub struct Cell {
    pub samples: Vec<Sample>,
    /// Why there are no (more) samples.
    pub problem: Option<Problem>,
    /// Repeats left out because a run was slower than the slow limit.
    pub skipped: usize,
}

pub enum Problem {
    Unavailable(String),
    Failed(String),
}

/// One figure of a run.
#[derive(Clone, Copy)]
pub enum Figure {
    Wall,
    Cpu,
    PeakRss,
    Reported(&'static Metric),
}

impl Figure {
    pub fn key(self) -> &'static str {
        match self {
            Figure::Wall => "wall_s",
            Figure::Cpu => "cpu_s",
            Figure::PeakRss => "peak_rss_kib",
            Figure::Reported(m) => m.key,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Figure::Wall => "wall time",
            Figure::Cpu => "CPU time",
            Figure::PeakRss => "peak RSS",
            Figure::Reported(m) => m.label,
        }
    }

    fn lower_is_better(self) -> bool {
        match self {
            Figure::Reported(m) => m.lower_is_better,
            _ => true,
        }
    }

    /// Held in KiB.
    fn is_kib(self) -> bool {
        match self {
            Figure::PeakRss => true,
            Figure::Reported(m) => m.kib,
            _ => false,
        }
    }

    fn of(self, s: &Sample) -> Option<f64> {
        match self {
            Figure::Wall => Some(s.wall_s),
            Figure::Cpu => Some(s.cpu_s),
            Figure::PeakRss => Some(s.peak_rss_kib),
            Figure::Reported(m) => s.reported.get(m.key).copied(),
        }
    }

    /// `value` with its unit, for people.
    pub fn format(self, value: f64) -> String {
        match self {
            Figure::Wall | Figure::Cpu => format_seconds(value),
            _ if self.is_kib() => format!("{:.1} MiB", value / 1024.0),
            _ if value >= 1e6 => format!("{:.2} M", value / 1e6),
            _ => format!("{value:.0}"),
        }
    }

    /// The cost ratio of `value` to `base` (above 1: worse).
    pub fn ratio(self, value: f64, base: f64) -> f64 {
        if self.lower_is_better() {
            value / base
        } else {
            base / value
        }
    }

    /// Whether a difference is too small to call a gap: under 20 ms, or
    /// under 4 MiB (the size of a few libraries' start-up heaps).
    fn negligible(self, a: f64, b: f64) -> bool {
        let d = (a - b).abs();
        match self {
            Figure::Wall | Figure::Cpu => d < 0.02,
            _ if self.is_kib() => d < 4096.0,
            _ => false,
        }
    }
}

pub fn format_seconds(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 0.1 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Cell {
    /// The median of `f` over the samples; none for a cell that failed.
    pub fn median(&self, f: Figure) -> Option<f64> {
        if matches!(self.problem, Some(Problem::Failed(_))) {
            return None;
        }
        median(self.samples.iter().filter_map(|s| f.of(s)).collect())
    }
}

/// A workload's cells, one per allocator (in the order of `Results::subjects`).
pub struct WorkloadResults {
    pub workload: &'static Workload,
    pub cells: Vec<(&'static str, Cell)>,
}

impl WorkloadResults {
    pub fn cell(&self, name: &str) -> Option<&Cell> {
        self.cells.iter().find(|(n, _)| *n == name).map(|(_, c)| c)
    }

    /// The figures shown for this workload: the runner's and its own.
    pub fn figures(&self) -> Vec<Figure> {
        let mut f = vec![Figure::Wall, Figure::Cpu, Figure::PeakRss];
        f.extend(self.workload.metrics.iter().map(Figure::Reported));
        f
    }
}

/// A gap: oxmalloc worse than the best peer.
pub struct Gap {
    pub workload: &'static str,
    pub figure: Figure,
    pub oxmalloc: f64,
    pub peer: &'static str,
    pub best: f64,
    pub ratio: f64,
}

pub struct CallgrindCase {
    pub name: &'static str,
    /// Instructions per pair, per allocator (or why not).
    pub counts: Vec<(&'static str, Result<f64, String>)>,
}

pub enum Callgrind {
    Counted(Vec<CallgrindCase>),
    Skipped(String),
}

pub struct Results {
    pub command: String,
    pub quick: bool,
    pub repeats: usize,
    pub machine: Machine,
    pub subjects: Vec<Subject>,
    pub missing: Vec<Missing>,
    pub workloads: Vec<WorkloadResults>,
    pub callgrind: Callgrind,
}

impl Results {
    pub fn subject(&self, name: &str) -> Option<&Subject> {
        self.subjects.iter().find(|s| s.name == name)
    }

    /// The workloads every allocator runs (not oxmalloc's own variants).
    pub fn compared(&self) -> impl Iterator<Item = &WorkloadResults> {
        self.workloads
            .iter()
            .filter(|w| w.workload.oxmalloc_vs.is_none())
    }

    /// oxmalloc's variants of another workload.
    pub fn variants(&self) -> impl Iterator<Item = &WorkloadResults> {
        self.workloads
            .iter()
            .filter(|w| w.workload.oxmalloc_vs.is_some())
    }

    pub fn workload(&self, name: &str) -> Option<&WorkloadResults> {
        self.workloads.iter().find(|w| w.workload.name == name)
    }

    /// The best peer's name and median of figure `f` in `w`.
    pub fn best_peer(&self, w: &WorkloadResults, f: Figure) -> Option<(&'static str, f64)> {
        let mut best: Option<(&'static str, f64)> = None;
        for (name, cell) in &w.cells {
            if !self.subject(name).is_some_and(|s| s.peer) {
                continue;
            }
            let Some(v) = cell.median(f) else { continue };
            let better = match best {
                None => true,
                Some((_, b)) => f.ratio(v, b) < 1.0,
            };
            if better {
                best = Some((name, v));
            }
        }
        best
    }

    /// The cost ratio of `name`'s median to the best peer's.
    pub fn ratio_to_best(&self, w: &WorkloadResults, name: &str, f: Figure) -> Option<f64> {
        let v = w.cell(name)?.median(f)?;
        let (_, best) = self.best_peer(w, f)?;
        Some(f.ratio(v, best))
    }

    /// The cost ratio of `name`'s median to `other`'s.
    pub fn ratio_to(&self, w: &WorkloadResults, name: &str, other: &str, f: Figure) -> Option<f64> {
        let v = w.cell(name)?.median(f)?;
        let o = w.cell(other)?.median(f)?;
        Some(f.ratio(v, o))
    }

    /// For an oxmalloc variant: the cost ratio to oxmalloc on its base.
    pub fn ratio_to_base(&self, w: &WorkloadResults, f: Figure) -> Option<f64> {
        let base = self.workload(w.workload.oxmalloc_vs?)?;
        let v = w.cell("oxmalloc")?.median(f)?;
        let b = base.cell("oxmalloc")?.median(f)?;
        Some(f.ratio(v, b))
    }

    /// Per workload the figure where oxmalloc trails the best peer most
    /// (wall time, peak RSS or the workload's own figures, leaving out
    /// negligible differences), largest first.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = self
            .compared()
            .filter_map(|w| {
                w.figures()
                    .into_iter()
                    .filter(|f| !matches!(f, Figure::Cpu))
                    .filter_map(|f| {
                        let ox = w.cell("oxmalloc")?.median(f)?;
                        let (peer, best) = self.best_peer(w, f)?;
                        let ratio = f.ratio(ox, best);
                        (ratio > 1.0 && !f.negligible(ox, best)).then_some(Gap {
                            workload: w.workload.name,
                            figure: f,
                            oxmalloc: ox,
                            peer,
                            best,
                            ratio,
                        })
                    })
                    .max_by(|a, b| a.ratio.total_cmp(&b.ratio))
            })
            .collect();
        gaps.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
        gaps
    }

    /// Allocator names in report order, those that ran.
    pub fn names(&self) -> Vec<&'static str> {
        NAMES
            .iter()
            .copied()
            .filter(|n| self.subject(n).is_some())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::workloads::SUITE;
    use std::collections::BTreeMap;

    pub fn sample(wall_s: f64, rss_mib: f64) -> Sample {
        Sample {
            wall_s,
            cpu_s: wall_s,
            peak_rss_kib: rss_mib * 1024.0,
            reported: BTreeMap::new(),
        }
    }

    fn cell(samples: Vec<Sample>) -> Cell {
        Cell {
            samples,
            ..Cell::default()
        }
    }

    /// Results for larson and the region workloads (every cell the same).
    pub fn results(cells: Vec<(&'static str, Vec<Sample>)>) -> Results {
        let subject = |name: &'static str| Subject {
            name,
            version: "1".into(),
            library: None,
            peer: name != "oxmalloc",
        };
        let names: Vec<&'static str> = cells.iter().map(|(n, _)| *n).collect();
        let workloads = SUITE
            .iter()
            .filter(|w| w.name == "larson" || w.name.starts_with("region-"))
            .map(|w| WorkloadResults {
                workload: w,
                cells: cells
                    .iter()
                    .filter(|(n, _)| w.oxmalloc_vs.is_none() || *n == "oxmalloc")
                    .map(|(n, s)| (*n, cell(s.clone())))
                    .collect(),
            })
            .collect();
        Results {
            command: "oxmalloc bench".into(),
            quick: true,
            repeats: 3,
            machine: Machine::default(),
            subjects: names.into_iter().map(subject).collect(),
            missing: Vec::new(),
            workloads,
            callgrind: Callgrind::Skipped("test".into()),
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn ratios_are_to_the_best_peer_and_gaps_rank_them() {
        let r = results(vec![
            (
                "oxmalloc",
                vec![sample(3.0, 100.0), sample(2.0, 100.0), sample(9.0, 100.0)],
            ),
            ("glibc", vec![sample(4.0, 50.0)]),
            ("mimalloc", vec![sample(1.0, 80.0), sample(1.0, 80.0)]),
        ]);
        let w = r.workload("larson").unwrap();
        // The best peer is the fastest one, oxmalloc's median is 3 s.
        assert_eq!(r.best_peer(w, Figure::Wall), Some(("mimalloc", 1.0)));
        assert_eq!(r.ratio_to_best(w, "oxmalloc", Figure::Wall), Some(3.0));
        assert_eq!(r.ratio_to_best(w, "glibc", Figure::Wall), Some(4.0));
        assert_eq!(r.ratio_to(w, "oxmalloc", "glibc", Figure::Wall), Some(0.75));
        assert_eq!(
            r.best_peer(w, Figure::PeakRss),
            Some(("glibc", 50.0 * 1024.0))
        );
        assert_eq!(r.ratio_to_best(w, "oxmalloc", Figure::PeakRss), Some(2.0));
        // One gap per workload (larson and region-os, the same figures): the
        // larger of the two.
        let gaps = r.gaps();
        assert_eq!(gaps.len(), 2);
        for g in gaps {
            assert_eq!((g.figure.key(), g.ratio), ("wall_s", 3.0));
        }
        // Variants compare with oxmalloc on their base workload.
        let v = r.workload("region-inject").unwrap();
        assert_eq!(r.ratio_to_base(v, Figure::Wall), Some(1.0));
    }

    #[test]
    fn rates_are_inverted_and_small_differences_are_no_gap() {
        let m = Metric {
            key: "frees_per_s",
            label: "frees/s",
            kib: false,
            lower_is_better: false,
        };
        let f = Figure::Reported(Box::leak(Box::new(m)));
        assert_eq!(f.ratio(50.0, 100.0), 2.0);
        assert!(Figure::PeakRss.negligible(10_000.0, 12_000.0));
        assert!(!Figure::PeakRss.negligible(10_000.0, 20_000.0));
        assert!(Figure::Wall.negligible(0.010, 0.015));
        let r = results(vec![
            ("oxmalloc", vec![sample(1.01, 3.0)]),
            ("glibc", vec![sample(1.0, 2.0)]),
        ]);
        assert!(r.gaps().is_empty(), "10 ms and 1 MiB are no gaps");
    }
}
