//! PNG plots (plotters, bitmap backend): curves, bar charts and filter grids.

use std::path::Path;

use plotters::prelude::*;

use crate::error::TrainError;

fn perr(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::io(path, std::io::Error::other(e.to_string()))
}

/// DejaVu Sans (Bitstream Vera license, `assets/DejaVuSans-LICENSE.txt`), embedded so that plots
/// need no system font libraries.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the embedded font as plotters' "sans-serif" (once per process).
fn register_font(path: &Path) -> Result<(), TrainError> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(perr(path, "the embedded font could not be loaded")) }
}

/// Runs `draw` on a temporary PNG next to `path` (named for this process), then renames it over
/// `path`: a crash or an error never leaves a torn plot, and a failed one removes its file. A
/// `path` that exists but is not a regular file (a directory, symbolic link, FIFO or device) is
/// refused before anything is drawn ([`check_replaceable`](crate::train::check_replaceable)).
fn atomically(path: &Path, draw: impl FnOnce(&Path) -> Result<(), TrainError>) -> Result<(), TrainError> {
    crate::train::check_replaceable(path)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "plot".into());
    // The extension stays .png: plotters picks the image format from it.
    let tmp = dir.join(format!(".{name}.{}.tmp.png", std::process::id()));
    let done = draw(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Line plot of several named series of (x, y) points, written atomically to `path`. The y axis
/// spans the data (and at least 0 to 1); [`line_plot_in`] chooses its range.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), TrainError> {
    line_plot_in(path, title, x_label, y_label, series, (None, None))
}

/// [`line_plot`] with the y axis's lower and/or upper end fixed (`None`: from the data). Points
/// outside the range are left out, not clamped to its edge: a series' line breaks where it
/// leaves the range and resumes where it comes back. An empty or non-finite range is an error
/// naming it.
pub fn line_plot_in(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    y_range: (Option<f64>, Option<f64>),
) -> Result<(), TrainError> {
    check_y_range(y_range, "y range")?;
    atomically(path, |file| line_plot_to(path, file, title, x_label, y_label, series, y_range))
}

/// Checks a y range for [`line_plot_in`]: ends finite and within ±10¹⁵, the lower below the
/// upper; the error names `field` and the values.
pub fn check_y_range(y_range: (Option<f64>, Option<f64>), field: &str) -> Result<(), TrainError> {
    let bad = |reason: String| Err(TrainError::Config { field: field.into(), reason });
    // Beyond ±1e15 the axis loses its resolution (a unit-wide default range at 1e20 is empty in
    // f64) and a span can overflow to infinity, on which plotters' tick search never ends.
    if let Some(v) = [y_range.0, y_range.1].into_iter().flatten().find(|v| v.is_nan() || v.abs() > 1e15) {
        return bad(format!("must be finite and within ±1e15, got {v}"));
    }
    match y_range {
        (Some(lo), Some(hi)) if lo >= hi => bad(format!("needs the lower end below the upper, got {lo} to {hi}")),
        _ => Ok(()),
    }
}

/// The runs of consecutive finite points of `s` whose y lies in `[lo, hi]`, in order: what a
/// line plot restricted to that range draws, one line per run.
pub fn runs_in_range(s: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for &(x, y) in s {
        if x.is_finite() && y.is_finite() && (lo..=hi).contains(&y) {
            if !open {
                runs.push(Vec::new());
                open = true;
            }
            if let Some(r) = runs.last_mut() {
                r.push((x, y));
            }
        } else {
            open = false;
        }
    }
    runs
}

fn line_plot_to(
    path: &Path,
    file: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    y_range: (Option<f64>, Option<f64>),
) -> Result<(), TrainError> {
    let pts = series.iter().flat_map(|(_, s)| s.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |a: f64, b: f64| {
        if (b - a).abs() < 1e-12 { (a - 0.5, b + 0.5) } else { (a - 0.02 * (b - a), b + 0.02 * (b - a)) }
    };
    let (x0, x1) = pad(x0, x1);
    let (y0, y1) = match y_range {
        (Some(lo), Some(hi)) => (lo, hi),
        (lo, hi) => {
            let (a, b) = pad(y0.min(0.0), y1.max(1.0).min(y1 + 0.05));
            let (a, b) = (lo.unwrap_or(a), hi.unwrap_or(b));
            // One end fixed beyond the data's other end: a unit-wide axis at the fixed end.
            if a < b {
                (a, b)
            } else if lo.is_some() {
                (a, a + 1.0)
            } else {
                (b - 1.0, b)
            }
        }
    };
    register_font(path)?;
    let root = BitMapBackend::new(file, (800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(|e| perr(path, e))?;
    for (k, (name, s)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let runs = runs_in_range(s, y0, y1);
        let flat = runs.iter().flatten().copied();
        // The points' series carries the legend entry (drawn even when no point is in range).
        chart
            .draw_series(flat.map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| perr(path, e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        for run in runs {
            chart.draw_series(LineSeries::new(run, color.stroke_width(2))).map_err(|e| perr(path, e))?;
        }
    }
    let drawn: Vec<(f64, f64)> = series.iter().flat_map(|(_, s)| runs_in_range(s, y0, y1)).flatten().collect();
    chart
        .configure_series_labels()
        .position(legend_corner(&drawn, (x0, x1), (y0, y1)))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

/// The corner of the plot area where the legend covers the fewest of `points` (each corner's
/// box spans 35 % of either axis); ties go to the upper right, then lower right, upper left,
/// lower left.
fn legend_corner(points: &[(f64, f64)], (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> SeriesLabelPosition {
    let (w, h) = (0.35 * (x1 - x0), 0.35 * (y1 - y0));
    let corners = [
        (SeriesLabelPosition::UpperRight, x1 - w, x1, y1 - h, y1),
        (SeriesLabelPosition::LowerRight, x1 - w, x1, y0, y0 + h),
        (SeriesLabelPosition::UpperLeft, x0, x0 + w, y1 - h, y1),
        (SeriesLabelPosition::LowerLeft, x0, x0 + w, y0, y0 + h),
    ];
    let covered = |&(_, a, b, c, d): &(SeriesLabelPosition, f64, f64, f64, f64)| {
        points.iter().filter(|&&(x, y)| (a..=b).contains(&x) && (c..=d).contains(&y)).count()
    };
    // min_by_key keeps the first of equal counts, so the order above breaks ties.
    corners.iter().min_by_key(|c| covered(c)).map_or(SeriesLabelPosition::UpperRight, |c| c.0.clone())
}

/// An axis label: at most four decimals, without trailing zeros (`10`, not `10.0`; `0.25`).
fn tick(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Bar chart of named values, written atomically to `path`.
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[(String, f64)]) -> Result<(), TrainError> {
    atomically(path, |file| bar_chart_to(path, file, title, y_label, bars))
}

fn bar_chart_to(
    path: &Path,
    file: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, f64)],
) -> Result<(), TrainError> {
    let n = bars.len().max(1);
    let ymax = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-3) * 1.15;
    let ymin = bars.iter().map(|b| b.1).fold(0.0f64, f64::min);
    register_font(path)?;
    let root = BitMapBackend::new(file, (160 + 110 * n as u32, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(70)
        .y_label_area_size(60)
        // A segmented range a..b has b − a + 1 segments: 0..n − 1 gives one per bar.
        .build_cartesian_2d((0..n - 1).into_segmented(), ymin..ymax)
        .map_err(|e| perr(path, e))?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .y_desc(y_label)
        .y_label_formatter(&|v| tick(*v))
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names.get(*i).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(|e| perr(path, e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let mut r = Rectangle::new(
                [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), b.1)],
                COLORS[i % 8].filled(),
            );
            r.set_margin(0, 0, 12, 12);
            r
        }))
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

/// A grid of RGB filters: `rows[r][c]` is a `[3, k, k]` filter (values scaled per filter to
/// the full colour range), drawn as k×k cells of `cell` pixels, written atomically to `path`.
pub fn filter_grid(path: &Path, rows: &[Vec<ndarray::Array3<f32>>], cell: u32) -> Result<(), TrainError> {
    atomically(path, |file| filter_grid_to(path, file, rows, cell))
}

fn filter_grid_to(path: &Path, file: &Path, rows: &[Vec<ndarray::Array3<f32>>], cell: u32) -> Result<(), TrainError> {
    let k = rows.first().and_then(|r| r.first()).map(|f| f.shape()[1]).unwrap_or(1) as u32;
    let cols = rows.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let gap = 4;
    let (w, h) = (cols * (k * cell + gap) + gap, rows.len() as u32 * (k * cell + gap) + gap);
    let root = BitMapBackend::new(file, (w.max(1), h.max(1))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    for (r, row) in rows.iter().enumerate() {
        for (c, f) in row.iter().enumerate() {
            let (lo, hi) = f.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let span = (hi - lo).max(1e-12);
            for y in 0..k as usize {
                for x in 0..k as usize {
                    let ch = |i: usize| (255.0 * (f[[i.min(f.shape()[0] - 1), y, x]] - lo) / span) as u8;
                    let x0 = (gap + c as u32 * (k * cell + gap) + x as u32 * cell) as i32;
                    let y0 = (gap + r as u32 * (k * cell + gap) + y as u32 * cell) as i32;
                    root.draw(&Rectangle::new(
                        [(x0, y0), (x0 + cell as i32, y0 + cell as i32)],
                        RGBColor(ch(0), ch(1), ch(2)).filled(),
                    ))
                    .map_err(|e| perr(path, e))?;
                }
            }
        }
    }
    root.present().map_err(|e| perr(path, e))
}

/// The pulse response of a device ([`super::PulseResponse`]) in two panels, written atomically
/// to `path`: the weight of every trace against the pulse number, with dashed lines at each
/// trace's bounds; and the step Δw = w_after − w_before of every pulse against the weight before
/// it, up pulses in blue and down pulses in orange, with their mean in 40 weight bins as a line
/// (without the pulses into a bound the device sits at).
pub fn device_response(path: &Path, title: &str, response: &super::PulseResponse) -> Result<(), TrainError> {
    atomically(path, |file| device_response_to(path, file, title, response))
}

fn device_response_to(path: &Path, file: &Path, title: &str, r: &super::PulseResponse) -> Result<(), TrainError> {
    let span = |v: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = v.filter(|x| x.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        if lo > hi {
            (-1.0, 1.0)
        } else if hi - lo < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo))
        }
    };
    let finite_bounds = r.bounds.iter().flat_map(|&(a, b)| [a, b]).filter(|v| v.is_finite());
    let (w0, w1) = span(&mut r.pulses.iter().map(|p| f64::from(p.after)).chain(finite_bounds.map(f64::from)));
    let n = r.pulses.iter().map(|p| p.index).max().unwrap_or(1) as f64;
    let (d0, d1) = span(&mut r.pulses.iter().map(|p| f64::from(p.after - p.before)).chain([0.0]));
    register_font(path)?;
    let root = BitMapBackend::new(file, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| perr(path, e))?;
    let (left, right) = root.split_horizontally(600);
    let mut chart = ChartBuilder::on(&left)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n, w0..w1)
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .x_desc("pulse number (up, then down, per cycle)")
        .y_desc("weight")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(|e| perr(path, e))?;
    for (t, &(lo, hi)) in r.bounds.iter().enumerate() {
        let color = COLORS[t % COLORS.len()];
        let trace = r.pulses.iter().filter(|p| p.trace == t).map(|p| (p.index as f64, f64::from(p.after)));
        let start = (0.0, f64::from(r.pulses.iter().find(|p| p.trace == t).map_or(0.0, |p| p.before)));
        chart
            .draw_series(LineSeries::new(std::iter::once(start).chain(trace), color.stroke_width(1)))
            .map_err(|e| perr(path, e))?;
        for b in [lo, hi].into_iter().filter(|b| b.is_finite()) {
            let b = f64::from(b);
            chart
                .draw_series(DashedLineSeries::new([(0.0, b), (n, b)], 4, 4, color.mix(0.6).stroke_width(1)))
                .map_err(|e| perr(path, e))?;
        }
    }
    let mut chart = ChartBuilder::on(&right)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(w0..w1, d0..d1)
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .x_desc("weight before the pulse")
        .y_desc("step Δw")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(|e| perr(path, e))?;
    for (up, color, name) in [(true, COLORS[0], "up pulses"), (false, COLORS[1], "down pulses")] {
        let pts =
            r.pulses.iter().filter(move |p| p.up == up).map(|p| (f64::from(p.before), f64::from(p.after - p.before)));
        chart
            .draw_series(pts.map(move |p| Circle::new(p, 1, color.mix(0.5).filled())))
            .map_err(|e| perr(path, e))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        // The mean step in 40 weight bins (bins with at least 5 pulses), which shows the step's
        // dependence on the weight through the cycle-to-cycle noise; pulses into a bound the
        // device already sits at (which do nothing) are left out of it.
        let bins = 40;
        let mut sums = vec![(0.0f64, 0usize); bins];
        let free = r.pulses.iter().filter(|p| {
            let (lo, hi) = r.bounds[p.trace];
            p.up == up && if p.up { p.before < hi } else { p.before > lo }
        });
        for (w, d) in free.map(|p| (f64::from(p.before), f64::from(p.after - p.before))) {
            let k = (((w - w0) / (w1 - w0)) * bins as f64).floor().clamp(0.0, (bins - 1) as f64) as usize;
            sums[k].0 += d;
            sums[k].1 += 1;
        }
        let means = sums
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 >= 5)
            .map(|(k, s)| (w0 + (k as f64 + 0.5) * (w1 - w0) / bins as f64, s.0 / s.1 as f64));
        chart.draw_series(LineSeries::new(means, color.stroke_width(3))).map_err(|e| perr(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text renders with the embedded font (no system fonts involved): a caption leaves dark
    /// pixels in the top band of an otherwise white image, and nothing below it.
    #[test]
    fn captions_render_with_the_embedded_font() {
        let path = Path::new("in-memory");
        register_font(path).unwrap();
        let (w, h) = (200u32, 80u32);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new("RAPA 0.1", (5, 5), ("sans-serif", 24).into_font().color(&BLACK))).unwrap();
            root.present().unwrap();
        }
        let dark = |y0: u32, y1: u32| {
            (y0..y1).flat_map(|y| (0..w).map(move |x| ((y * w + x) * 3) as usize)).filter(|&i| buf[i] < 128).count()
        };
        assert!(dark(0, 40) > 50, "caption drew {} dark pixels", dark(0, 40));
        assert_eq!(dark(40, h), 0);
    }

    #[test]
    fn range_splits_series_into_runs_inside_it() {
        let s = [(1.0, 85.0), (2.0, 40.0), (3.0, 30.0), (4.0, 41.0), (5.0, f64::NAN), (6.0, 25.0), (7.0, 20.0)];
        let runs = runs_in_range(&s, 0.0, 40.0);
        assert_eq!(runs, vec![vec![(2.0, 40.0), (3.0, 30.0)], vec![(6.0, 25.0), (7.0, 20.0)]]);
        assert_eq!(runs_in_range(&s, 50.0, 80.0), Vec::<Vec<(f64, f64)>>::new());
        assert_eq!(runs_in_range(&s, 0.0, 100.0).len(), 2, "the NaN breaks the line");
    }

    #[test]
    fn empty_or_infinite_ranges_are_config_errors() {
        let path = std::env::temp_dir().join(format!("rapa-range-{}.png", std::process::id()));
        let s = [("a".to_string(), vec![(1.0, 2.0)])];
        let huge = [(Some(-1e308), Some(1e308)), (Some(1e20), None)];
        for r in [(Some(3.0), Some(3.0)), (Some(5.0), Some(1.0)), (None, Some(f64::INFINITY)), (Some(f64::NAN), None)]
            .into_iter()
            .chain(huge)
        {
            match line_plot_in(&path, "t", "x", "y", &s, r) {
                Err(TrainError::Config { field, .. }) => assert_eq!(field, "y range"),
                other => panic!("{r:?}: {other:?}"),
            }
        }
        assert!(!path.exists());
        // One end fixed beyond all the data draws (a unit-wide axis), as does a fixed range.
        for r in [(Some(10.0), None), (None, Some(-10.0)), (Some(1.5), Some(2.5))] {
            line_plot_in(&path, "t", "x", "y", &s, r).unwrap();
            assert_eq!(&std::fs::read(&path).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn legend_goes_to_the_emptiest_corner() {
        let corner = |pts: &[(f64, f64)]| format!("{:?}", legend_corner(pts, (0.0, 10.0), (0.0, 10.0)));
        // Falling curves (errors per epoch) leave the upper right empty.
        assert_eq!(corner(&[(0.0, 9.0), (5.0, 5.0), (10.0, 1.0)]), "UpperRight");
        // Rising curves (accuracy against SNR) cover it; the lower right is empty.
        assert_eq!(corner(&[(0.0, 1.0), (5.0, 5.0), (10.0, 9.0)]), "LowerRight");
        // Points in both right corners and the lower left: upper left.
        assert_eq!(corner(&[(9.0, 9.0), (9.0, 1.0), (1.0, 1.0)]), "UpperLeft");
        assert_eq!(corner(&[(9.0, 9.0), (9.0, 1.0), (1.0, 9.0)]), "LowerLeft");
    }

    #[test]
    fn axis_labels_drop_trailing_zeros() {
        let labels: Vec<String> = [10.0, 0.25, -2.5, 0.0, -0.0, 1e-5, 80.0, 0.1 + 0.2].into_iter().map(tick).collect();
        assert_eq!(labels, ["10", "0.25", "-2.5", "0", "0", "0", "80", "0.3"]);
    }

    #[test]
    fn plots_are_written_as_png() {
        let dir = std::env::temp_dir().join(format!("rapa-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = dir.join("line.png");
        line_plot(&line, "acc vs SNR", "SNR (dB)", "accuracy", &[("a".into(), vec![(10.0, 0.2), (30.0, 0.9)])])
            .unwrap();
        let bars = dir.join("bars.png");
        bar_chart(&bars, "similarity", "r", &[("random".into(), 0.5), ("none".into(), 0.05)]).unwrap();
        for p in [line, bars] {
            let bytes = std::fs::read(&p).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", p.display());
        }
        // Written through a temporary file that the rename removed.
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["bars.png", "line.png"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
