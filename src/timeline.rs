//! `oxmalloc run --timeline FILE`: reads the samples the library's sampler
//! wrote (the format is documented in `crates/oxmalloc-capi/src/timeline.rs`)
//! and writes them as an SVG chart or as JSON.
//!
//! The chart is hand-written SVG: a time axis in seconds, a MiB axis, one
//! line per figure and a legend with each figure's peak. When there are more
//! samples than pixels, each pixel column keeps its lowest and highest
//! sample, so no peak is lost.
//!
//! The JSON is `{"program": "...", "pid": N, "interval_ms": N, "samples":
//! [{"time_ms": T, "allocated_bytes": N, "heap_size": N,
//! "pageheap_free_bytes": N, "pageheap_unmapped_bytes": N, "rss_bytes": N},
//! ...]}`, times from the first sample.

use std::fmt::Write as _;
use std::path::Path;

/// The figures of a sample, in the file's order: key, legend, colour.
const SERIES: [(&str, &str, &str); 5] = [
    ("allocated_bytes", "bytes in use", "#1f77b4"),
    ("heap_size", "heap size", "#ff7f0e"),
    ("pageheap_free_bytes", "page heap free", "#2ca02c"),
    ("pageheap_unmapped_bytes", "released to the OS", "#d62728"),
    ("rss_bytes", "RSS", "#9467bd"),
];

const MIB: f64 = (1 << 20) as f64;

/// What `--timeline FILE` writes, by FILE's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Json,
}

impl Format {
    /// The format for this path.
    pub fn of(path: &Path) -> Result<Self, String> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("svg") => Ok(Self::Svg),
            Some(e) if e.eq_ignore_ascii_case("json") => Ok(Self::Json),
            _ => Err(format!(
                "--timeline {}: the file name must end in .svg (a chart) or .json (the samples)",
                path.display()
            )),
        }
    }
}

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the first sample.
    pub time_ms: f64,
    /// The figures, in [`SERIES`] order.
    pub values: [u64; 5],
}

/// The samples of one process.
#[derive(Debug)]
pub struct Timeline {
    pub pid: u32,
    pub interval_ms: u64,
    pub samples: Vec<Sample>,
}

impl Timeline {
    /// Reads the samples of process `pid` from the sampler's file.
    pub fn read(path: &Path, pid: u32, interval_ms: u64) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let t = Self::parse(&text, pid, interval_ms)?;
        if t.samples.is_empty() {
            return Err(format!(
                "no samples from process {pid}: the library was not loaded into it \
                 (LD_PRELOAD is ignored by static and set-user-ID programs) or it ended by a signal \
                 before its first sample"
            ));
        }
        Ok(t)
    }

    /// Parses the sampler's text (see the module docs of the sampler).
    pub fn parse(text: &str, pid: u32, interval_ms: u64) -> Result<Self, String> {
        let mut raw: Vec<(u64, [u64; 5])> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields: Vec<u64> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("sample line {}: {e}: {line:?}", n + 1))?;
            let [p, us, a, b, c, d, e] = fields[..] else {
                return Err(format!(
                    "sample line {}: 7 numbers expected: {line:?}",
                    n + 1
                ));
            };
            if p == u64::from(pid) {
                raw.push((us, [a, b, c, d, e]));
            }
        }
        raw.sort_by_key(|&(us, _)| us);
        let t0 = raw.first().map_or(0, |&(us, _)| us);
        let samples = raw
            .into_iter()
            .map(|(us, values)| Sample {
                time_ms: (us - t0) as f64 / 1000.0,
                values,
            })
            .collect();
        Ok(Self {
            pid,
            interval_ms,
            samples,
        })
    }

    /// From the first sample to the last.
    pub fn duration_ms(&self) -> f64 {
        self.samples.last().map_or(0.0, |s| s.time_ms)
    }

    /// Writes the timeline to `path`.
    pub fn write(&self, path: &Path, format: Format, program: &str) -> std::io::Result<()> {
        let text = match format {
            Format::Svg => self.svg(program),
            Format::Json => self.json(program),
        };
        std::fs::write(path, text)
    }

    /// The samples as JSON.
    pub fn json(&self, program: &str) -> String {
        let mut s = String::from("{\"program\":");
        let _ = oxmalloc::write_json_string(&mut s, program);
        let _ = write!(
            s,
            ",\"pid\":{},\"interval_ms\":{},\"samples\":[",
            self.pid, self.interval_ms
        );
        for (i, x) in self.samples.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{{\"time_ms\":{:.3}", x.time_ms);
            for ((key, _, _), v) in SERIES.iter().zip(x.values) {
                let _ = write!(s, ",\"{key}\":{v}");
            }
            s.push('}');
        }
        s.push_str("]}\n");
        s
    }

    /// The chart as SVG.
    pub fn svg(&self, program: &str) -> String {
        const W: f64 = 1000.0;
        const H: f64 = 540.0;
        const LEFT: f64 = 80.0;
        const RIGHT: f64 = 720.0;
        const TOP: f64 = 50.0;
        const BOTTOM: f64 = 480.0;
        let peak = |i: usize| self.samples.iter().map(|s| s.values[i]).max().unwrap_or(0);
        let max_mib = (0..SERIES.len()).map(peak).max().unwrap_or(0) as f64 / MIB;
        let y_axis = Axis::new(max_mib);
        let x_axis = Axis::new(self.duration_ms() / 1000.0);
        let x = |secs: f64| LEFT + secs / x_axis.top * (RIGHT - LEFT);
        let y = |mib: f64| BOTTOM - mib / y_axis.top * (BOTTOM - TOP);

        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">"
        );
        let _ = writeln!(s, "<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"28\" font-size=\"15\">oxmalloc timeline: {} (pid {}), {} samples every {} ms</text>",
            xml_escape(program),
            self.pid,
            self.samples.len(),
            self.interval_ms
        );
        // Grid, ticks and their labels.
        for (i, v) in y_axis.ticks().enumerate() {
            let py = y(v);
            let _ = writeln!(
                s,
                "<line class=\"ytick\" data-mib=\"{v}\" x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{RIGHT}\" y2=\"{py:.1}\" stroke=\"{}\"/>",
                if i == 0 { "black" } else { "#dddddd" }
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} MiB</text>",
                LEFT - 6.0,
                py + 4.0,
                y_axis.label(v)
            );
        }
        for (i, v) in x_axis.ticks().enumerate() {
            let px = x(v);
            let _ = writeln!(
                s,
                "<line class=\"xtick\" x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{BOTTOM}\" stroke=\"{}\"/>",
                if i == 0 { "black" } else { "#dddddd" }
            );
            let _ = writeln!(
                s,
                "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} s</text>",
                BOTTOM + 18.0,
                x_axis.label(v)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time</text>",
            (LEFT + RIGHT) / 2.0,
            BOTTOM + 40.0
        );
        // One line per figure, then the legend.
        for (i, (key, _, colour)) in SERIES.iter().enumerate() {
            let points: Vec<(f64, f64)> = self
                .samples
                .iter()
                .map(|p| (x(p.time_ms / 1000.0), y(p.values[i] as f64 / MIB)))
                .collect();
            let _ = write!(
                s,
                "<polyline class=\"series\" data-series=\"{key}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\""
            );
            for (j, (px, py)) in decimate(&points, LEFT, RIGHT - LEFT)
                .into_iter()
                .enumerate()
            {
                let _ = write!(s, "{}{px:.1},{py:.1}", if j > 0 { " " } else { "" });
            }
            s.push_str("\"/>\n");
        }
        for (i, (_, legend, colour)) in SERIES.iter().enumerate() {
            let ly = TOP + 10.0 + 22.0 * i as f64;
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>",
                RIGHT + 20.0,
                RIGHT + 44.0
            );
            let _ = writeln!(
                s,
                "<text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\">{legend} (peak {:.1} MiB)</text>",
                RIGHT + 50.0,
                ly + 4.0,
                peak(i) as f64 / MIB
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// An axis from 0 to `top`, with ticks every `step` (1, 2 or 5 times a power
/// of ten, about six of them).
struct Axis {
    step: f64,
    top: f64,
}

impl Axis {
    fn new(max: f64) -> Self {
        let max = if max > 0.0 { max } else { 1.0 };
        let raw = max / 6.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * mag);
        Self {
            step,
            top: (max / step).ceil() * step,
        }
    }

    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let n = (self.top / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step)
    }

    /// A tick's value with as many decimals as the step needs.
    fn label(&self, v: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        format!("{v:.decimals$}")
    }
}

/// At most two points per pixel column (the lowest and the highest value,
/// in time order) when there are more points than twice the columns.
fn decimate(points: &[(f64, f64)], left: f64, width: f64) -> Vec<(f64, f64)> {
    let columns = width.max(1.0) as usize;
    if points.len() <= 2 * columns {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(2 * columns + 2);
    let mut i = 0;
    while i < points.len() {
        let col = ((points[i].0 - left).max(0.0)) as usize;
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < points.len() && ((points[j].0 - left).max(0.0)) as usize == col {
            // y grows downwards: the highest value has the lowest y.
            if points[j].1 > points[lo].1 {
                lo = j;
            }
            if points[j].1 < points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(points[a]);
        if b != a {
            out.push(points[b]);
        }
        i = j;
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# oxmalloc timeline: pid 7 every 5 ms\n\
        7 1000000 10 100 0 0 4096\n\
        8 1000500 99 99 99 99 99\n\
        7 1010000 1048576 2097152 0 0 8192\n\
        7 1005000 20 200 0 0 4096\n";

    #[test]
    fn parse_keeps_one_process_in_time_order() {
        let t = Timeline::parse(TEXT, 7, 5).unwrap();
        let times: Vec<f64> = t.samples.iter().map(|s| s.time_ms).collect();
        assert_eq!(times, [0.0, 5.0, 10.0]);
        assert_eq!(t.samples[2].values, [1 << 20, 2 << 20, 0, 0, 8192]);
        assert!(Timeline::parse("7 1 2\n", 7, 5).is_err());
        assert!(Timeline::parse("7 a 2 3 4 5 6\n", 7, 5).is_err());
    }

    #[test]
    fn axes_have_round_ticks() {
        let a = Axis::new(104.0);
        assert_eq!((a.step, a.top), (20.0, 120.0));
        assert_eq!(a.ticks().count(), 7);
        let b = Axis::new(0.26);
        assert_eq!(b.step, 0.05);
        assert_eq!(b.label(0.15), "0.15");
        assert_eq!(Axis::new(0.0).top, 1.0);
    }

    #[test]
    fn decimation_keeps_extremes() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64 / 100.0, if i == 5_555 { -1.0 } else { 1.0 }))
            .collect();
        let d = decimate(&pts, 0.0, 100.0);
        assert!(d.len() <= 200);
        assert!(d.contains(&(55.55, -1.0)));
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/b.svg")), Ok(Format::Svg));
        assert_eq!(Format::of(Path::new("b.JSON")), Ok(Format::Json));
        assert!(Format::of(Path::new("b.png")).is_err());
        assert!(Format::of(Path::new("b")).is_err());
    }
}
