//! The built-in synthetic dataset: ten shape classes at random positions, sizes, thicknesses
//! and colours, on noisy backgrounds of random colour with a distractor blob.
//!
//! Built so that a ConvNet learns it but a linear model on pixels does not:
//! - position is uniform, so every class has a nearly flat expected image; a linear
//!   classifier on pixels stays near chance (see `docs/data.md` for the measured error);
//! - every class covers the same expected area ("ink"): each shape's size and thickness are
//!   scaled by a per-class factor (`INK_SCALE`) so that global statistics (mean, standard
//!   deviation, count of bright pixels) do not give the class away;
//! - shapes are anti-aliased (4×4 samples per pixel), so thin strokes keep their area.

use crossbar_sim::SimRng;
use crossbar_sim::rng::{derive_seed, stream};
use rand::Rng;
use rayon::prelude::*;

use super::{Dataset, IMAGE_BYTES, Split};

/// Number of classes.
pub const CLASSES: usize = 10;
/// Names of the classes, by label.
pub const CLASS_NAMES: [&str; CLASSES] =
    ["h-bar", "v-bar", "diag", "anti-diag", "plus", "square", "x-cross", "ring", "l-corner", "t-shape"];

/// Per-class factor on half-size and half-thickness that equalizes the expected shape area
/// (≈ 45 px² for every class; computed numerically over the drawn size and thickness ranges).
const INK_SCALE: [f32; CLASSES] = [1.309, 1.309, 1.148, 1.148, 0.983, 0.743, 0.850, 0.738, 0.983, 0.983];

/// The synthetic split: `n_train` and `n_test` images, balanced labels (label = index mod 10),
/// deterministic in `seed`. Train and test come from different streams; each image has its
/// own stream, so images are generated in parallel and the result does not depend on the
/// number of threads.
pub fn synthetic(n_train: usize, n_test: usize, seed: u64) -> Split {
    Split { train: generate(n_train, seed, 0, "synthetic-train"), test: generate(n_test, seed, 1, "synthetic-test") }
}

fn generate(n: usize, seed: u64, part: u64, name: &str) -> Dataset {
    let master = derive_seed(seed, part);
    let mut images = vec![0u8; n * IMAGE_BYTES];
    images.par_chunks_mut(IMAGE_BYTES).enumerate().for_each(|(i, img)| {
        let mut rng = stream(master, i as u64);
        draw(i % CLASSES, &mut rng, img);
    });
    Dataset { images, labels: (0..n).map(|i| (i % CLASSES) as u16).collect(), n_classes: CLASSES, name: name.into() }
}

/// Whether the offset (dx, dy) from the centre lies on shape `class` with half-size `s` and
/// half-thickness `t`.
fn inside(class: usize, dx: f32, dy: f32, s: f32, t: f32) -> bool {
    let in_box = dx.abs() <= s && dy.abs() <= s;
    let d = t * std::f32::consts::SQRT_2;
    match class {
        0 => dy.abs() <= t && dx.abs() <= s,
        1 => dx.abs() <= t && dy.abs() <= s,
        2 => in_box && (dx - dy).abs() <= d,
        3 => in_box && (dx + dy).abs() <= d,
        4 => (dy.abs() <= t && dx.abs() <= s) || (dx.abs() <= t && dy.abs() <= s),
        5 => in_box && (dx.abs() >= s - 2.0 * t || dy.abs() >= s - 2.0 * t),
        6 => in_box && ((dx - dy).abs() <= d || (dx + dy).abs() <= d),
        7 => ((dx * dx + dy * dy).sqrt() - s).abs() <= t,
        8 => in_box && (dx <= -s + 2.0 * t || dy >= s - 2.0 * t),
        _ => in_box && (dy <= -s + 2.0 * t || dx.abs() <= t),
    }
}

/// Fraction of the 4×4 sub-samples of pixel (x, y) that lie on the shape.
fn coverage(class: usize, x: f32, y: f32, cx: f32, cy: f32, s: f32, t: f32) -> f32 {
    let mut hits = 0u32;
    for sy in 0..4 {
        for sx in 0..4 {
            let (px, py) = (x - 0.375 + 0.25 * sx as f32, y - 0.375 + 0.25 * sy as f32);
            hits += u32::from(inside(class, px - cx, py - cy, s, t));
        }
    }
    hits as f32 / 16.0
}

fn draw(class: usize, rng: &mut SimRng, img: &mut [u8]) {
    let bg: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.25..0.75));
    let fg: [f32; 3] = std::array::from_fn(|c| bg[c] + rng.random_range(0.2..0.35));
    let k = INK_SCALE[class];
    let s = k * rng.random_range(4.0f32..7.0);
    let t = k * rng.random_range(0.8f32..1.6);
    // Keep the whole shape (reach s + t from the centre) inside the image.
    let reach = s + t;
    let cx = rng.random_range(reach..31.0 - reach);
    let cy = rng.random_range(reach..31.0 - reach);
    // Distractor: a 3×3 blob of random colour somewhere.
    let (bx, by) = (rng.random_range(1.0f32..30.0), rng.random_range(1.0f32..30.0));
    let blob: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.0..1.0));
    let (x0, x1) = ((cx - reach - 1.0).floor(), (cx + reach + 1.0).ceil());
    let (y0, y1) = ((cy - reach - 1.0).floor(), (cy + reach + 1.0).ceil());
    for y in 0..32 {
        for x in 0..32 {
            let (xf, yf) = (x as f32, y as f32);
            let near = (x0..=x1).contains(&xf) && (y0..=y1).contains(&yf);
            let cov = if near { coverage(class, xf, yf, cx, cy, s, t) } else { 0.0 };
            let in_blob = (xf - bx).abs() <= 1.0 && (yf - by).abs() <= 1.0;
            for c in 0..3 {
                let under = if in_blob { blob[c] } else { bg[c] };
                let base = under + cov * (fg[c] - under);
                let noise = rng.random_range(-0.08f32..0.08);
                img[c * 1024 + y * 32 + x] = ((base + noise).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}
