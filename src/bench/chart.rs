//! The chart: one SVG with three panels — wall time, peak RSS, and the RSS
//! left after the peak was freed (for the workloads that measure it) — each
//! showing every workload as a group of bars, one per allocator, for its
//! ratio to the best peer. The axis is logarithmic (twice as fast and twice as slow are
//! bars of the same length) and every bar starts at 1, the best peer: bars
//! to the right are worse, to the left better. Ratios beyond the axis are
//! cut and labelled with their value.

use std::fmt::Write;

use super::results::{Figure, Results};
use super::workloads::FINAL_RSS;

const LABEL_W: f64 = 130.0;
const PANEL_W: f64 = 300.0;
const PANEL_GAP: f64 = 40.0;
/// The figures, one panel each.
const PANELS: [Figure; 3] = [Figure::Wall, Figure::PeakRss, Figure::Reported(&FINAL_RSS)];
const MARGIN: f64 = 20.0;
const TOP: f64 = 110.0;
const BAR_H: f64 = 6.0;
const BAR_STEP: f64 = 7.0;
const GROUP_PAD: f64 = 8.0;

/// The colour of each allocator's bars.
fn colour(name: &str) -> &'static str {
    match name {
        "oxmalloc" => "#e4572e",
        "glibc" => "#8c8c8c",
        "tcmalloc" => "#1f77b4",
        "jemalloc" => "#2ca02c",
        "mimalloc" => "#9467bd",
        _ => "#000000",
    }
}

/// The axis of one panel: powers of two from `lo` to `hi`.
struct Axis {
    x0: f64,
    lo: f64,
    hi: f64,
}

impl Axis {
    /// Covers every ratio in `ratios`, from at most 1/2 to at least 2, but
    /// no wider than 1/16 to 64.
    fn new(x0: f64, ratios: impl Iterator<Item = f64>) -> Axis {
        let (mut lo, mut hi) = (0.5f64, 2.0f64);
        for r in ratios.filter(|r| r.is_finite() && *r > 0.0) {
            lo = lo.min(r);
            hi = hi.max(r);
        }
        Axis {
            x0,
            lo: 2f64.powf(lo.log2().floor()).max(1.0 / 16.0),
            hi: 2f64.powf(hi.log2().ceil()).min(64.0),
        }
    }

    fn x(&self, r: f64) -> f64 {
        let r = r.clamp(self.lo, self.hi);
        self.x0 + (r.log2() - self.lo.log2()) / (self.hi.log2() - self.lo.log2()) * PANEL_W
    }

    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let (a, b) = (self.lo.log2() as i32, self.hi.log2() as i32);
        (a..=b).map(|e| 2f64.powi(e))
    }
}

fn tick_label(t: f64) -> String {
    if t >= 1.0 {
        format!("{t:.0}")
    } else {
        format!("1/{:.0}", 1.0 / t)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn svg(r: &Results) -> String {
    let names = r.names();
    let workloads: Vec<_> = r.compared().collect();
    let group_h = names.len() as f64 * BAR_STEP + GROUP_PAD;
    let panels = PANELS.len() as f64;
    let width = MARGIN * 2.0 + LABEL_W + panels * PANEL_W + (panels - 1.0) * PANEL_GAP;
    let height = TOP + workloads.len() as f64 * group_h + 50.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    let m = &r.machine;
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">oxmalloc bench: \
         each allocator against the best peer (log scale, 1 = best peer, right = worse)</text>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{MARGIN}\" y=\"42\" fill=\"#555555\">{}{} · {} · {} cores · load {} → {} · \
         {} repeats, medians · revision {}</text>",
        if r.quick {
            "QUICK MODE (small sizes) · "
        } else {
            ""
        },
        esc(&m.date),
        esc(&m.cpu),
        m.cores,
        esc(&m.load_start),
        esc(&m.load_end),
        r.repeats,
        esc(&m.revision)
    );
    let mut lx = MARGIN;
    for n in &names {
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"54\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"64\">{n}</text>",
            colour(n),
            lx + 16.0
        );
        lx += 30.0 + 7.0 * n.len() as f64;
    }

    for (i, f) in PANELS.into_iter().enumerate() {
        let x0 = MARGIN + LABEL_W + i as f64 * (PANEL_W + PANEL_GAP);
        let ratios: Vec<Vec<Option<f64>>> = workloads
            .iter()
            .map(|w| names.iter().map(|n| r.ratio_to_best(w, n, f)).collect())
            .collect();
        let axis = Axis::new(x0, ratios.iter().flatten().flatten().copied());
        let bottom = TOP + workloads.len() as f64 * group_h;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\" \
             text-anchor=\"middle\">{}</text>",
            x0 + PANEL_W / 2.0,
            TOP - 22.0,
            esc(f.label())
        );
        for t in axis.ticks() {
            let x = axis.x(t);
            let (stroke, w) = if t == 1.0 {
                ("#000000", 1.5)
            } else {
                ("#dddddd", 1.0)
            };
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" \
                 stroke=\"{stroke}\" stroke-width=\"{w}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555555\">{}</text>",
                TOP - 6.0,
                bottom + 14.0,
                tick_label(t)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555555\">\
             ratio to the best peer (left: better, right: worse)</text>",
            x0 + PANEL_W / 2.0,
            bottom + 30.0
        );
        for (g, (w, row)) in workloads.iter().zip(&ratios).enumerate() {
            let gy = TOP + g as f64 * group_h;
            if i == 0 {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                    x0 - 8.0,
                    gy + group_h / 2.0 + 3.0,
                    esc(w.workload.name)
                );
            }
            if g % 2 == 1 {
                let _ = writeln!(
                    s,
                    "<rect x=\"{x0:.1}\" y=\"{gy:.1}\" width=\"{PANEL_W}\" height=\"{group_h:.1}\" \
                     fill=\"#000000\" fill-opacity=\"0.04\"/>"
                );
            }
            for (k, (n, ratio)) in names.iter().zip(row).enumerate() {
                let y = gy + GROUP_PAD / 2.0 + k as f64 * BAR_STEP;
                let Some(ratio) = *ratio else {
                    let failed = w
                        .cell(n)
                        .is_some_and(|c| c.samples.is_empty() && c.problem.is_some());
                    if failed {
                        let _ = writeln!(
                            s,
                            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"8\" fill=\"{}\">{n}: no figure</text>",
                            axis.x(1.0) + 3.0,
                            y + BAR_H,
                            colour(n)
                        );
                    }
                    continue;
                };
                let (a, b) = (axis.x(1.0), axis.x(ratio));
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR_H}\" fill=\"{}\">\
                     <title>{} {n}: {ratio:.2}</title></rect>",
                    a.min(b),
                    (b - a).abs().max(2.0),
                    colour(n),
                    esc(w.workload.name)
                );
                let cut = ratio > axis.hi || ratio < axis.lo;
                if *n == "oxmalloc" || cut {
                    let (tx, anchor) = if ratio >= 1.0 {
                        (a.max(b) + 3.0, "start")
                    } else {
                        (a.min(b) - 3.0, "end")
                    };
                    let _ = writeln!(
                        s,
                        "<text x=\"{tx:.1}\" y=\"{:.1}\" font-size=\"8\" text-anchor=\"{anchor}\" \
                         fill=\"{}\">{}{ratio:.2}</text>",
                        y + BAR_H,
                        colour(n),
                        if cut { "cut: " } else { "" }
                    );
                }
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::tests::{results, sample};

    #[test]
    fn the_axis_is_logarithmic_and_bounded() {
        let a = Axis::new(0.0, [0.7, 3.0].into_iter());
        assert_eq!((a.lo, a.hi), (0.5, 4.0));
        assert_eq!(a.x(1.0), PANEL_W / 3.0);
        assert_eq!(a.x(4.0), PANEL_W);
        assert_eq!(a.x(100.0), PANEL_W, "cut at the edge");
        let wide = Axis::new(0.0, [0.001, 1000.0].into_iter());
        assert_eq!((wide.lo, wide.hi), (1.0 / 16.0, 64.0));
        assert_eq!(
            wide.ticks().map(tick_label).collect::<Vec<_>>(),
            ["1/16", "1/8", "1/4", "1/2", "1", "2", "4", "8", "16", "32", "64"]
        );
    }

    #[test]
    fn one_bar_per_allocator_and_workload_and_panel() {
        let r = results(vec![
            ("oxmalloc", vec![sample(3.0, 100.0)]),
            ("glibc", vec![sample(1.5, 50.0)]),
        ]);
        let svg = svg(&r);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        // Two compared workloads (larson, region-os) × 2 allocators × 2
        // panels (neither reports a final RSS).
        assert_eq!(svg.matches("<title>").count(), 8);
        assert!(
            svg.contains("<title>larson oxmalloc: 2.00</title>"),
            "{svg}"
        );
    }
}
