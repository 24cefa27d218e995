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
/// `path`: a crash or an error never leaves a torn plot, and a failed one removes its file.
fn atomically(path: &Path, draw: impl FnOnce(&Path) -> Result<(), TrainError>) -> Result<(), TrainError> {
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

/// Line plot of several named series of (x, y) points, written atomically to `path`.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), TrainError> {
    atomically(path, |file| line_plot_to(path, file, title, x_label, y_label, series))
}

fn line_plot_to(
    path: &Path,
    file: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
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
    let ((x0, x1), (y0, y1)) = (pad(x0, x1), pad(y0.min(0.0), y1.max(1.0).min(y1 + 0.05)));
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
        let data: Vec<(f64, f64)> = s.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
            .map_err(|e| perr(path, e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| perr(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
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
