//! The built-in synthetic dataset: ten shape classes at random positions, sizes, colours and
//! contrast polarity, on noisy backgrounds with a distractor blob.
//!
//! Because the contrast sign is random per image, every class has the same expected image:
//! a linear classifier on pixels stays near chance, while a ConvNet (edge detectors of both
//! polarities, pooling for position invariance) learns it within a few epochs.

use crossbar_sim::SimRng;
use crossbar_sim::rng::stream;
use rand::Rng;
use rayon::prelude::*;

use super::{Dataset, IMAGE_BYTES, Split};

/// Number of classes.
pub const CLASSES: usize = 10;
/// Names of the classes, by label.
pub const CLASS_NAMES: [&str; CLASSES] =
    ["h-bar", "v-bar", "diag", "anti-diag", "plus", "square", "x-cross", "ring", "l-corner", "t-shape"];

/// The synthetic split: `n_train` and `n_test` images, balanced labels, deterministic in `seed`
/// (train and test use different streams).
pub fn synthetic(n_train: usize, n_test: usize, seed: u64) -> Split {
    Split { train: generate(n_train, seed, 0, "synthetic-train"), test: generate(n_test, seed, 1, "synthetic-test") }
}

fn generate(n: usize, seed: u64, part: u64, name: &str) -> Dataset {
    let mut images = vec![0u8; n * IMAGE_BYTES];
    images.par_chunks_mut(IMAGE_BYTES).enumerate().for_each(|(i, img)| {
        let mut rng = stream(seed ^ (part << 62), i as u64);
        draw(i % CLASSES, &mut rng, img);
    });
    Dataset { images, labels: (0..n).map(|i| (i % CLASSES) as u16).collect(), n_classes: CLASSES, name: name.into() }
}

/// Whether pixel (x, y) belongs to shape `class` centred at (cx, cy) with half-size `s` and
/// half-thickness `t`.
fn inside(class: usize, x: f32, y: f32, cx: f32, cy: f32, s: f32, t: f32) -> bool {
    let (dx, dy) = (x - cx, y - cy);
    let in_box = dx.abs() <= s && dy.abs() <= s;
    match class {
        0 => dy.abs() <= t && dx.abs() <= s,
        1 => dx.abs() <= t && dy.abs() <= s,
        2 => in_box && (dx - dy).abs() <= t * 1.42,
        3 => in_box && (dx + dy).abs() <= t * 1.42,
        4 => (dy.abs() <= t && dx.abs() <= s) || (dx.abs() <= t && dy.abs() <= s),
        5 => in_box && (dx.abs() >= s - 2.0 * t || dy.abs() >= s - 2.0 * t),
        6 => in_box && ((dx - dy).abs() <= t * 1.42 || (dx + dy).abs() <= t * 1.42),
        7 => ((dx * dx + dy * dy).sqrt() - s).abs() <= t,
        8 => in_box && (dx <= -s + 2.0 * t || dy >= s - 2.0 * t),
        _ => in_box && (dy <= -s + 2.0 * t || dx.abs() <= t),
    }
}

fn draw(class: usize, rng: &mut SimRng, img: &mut [u8]) {
    let bg: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.25..0.75));
    let sign = 1.0f32;
    let fg: [f32; 3] = std::array::from_fn(|c| bg[c] + sign * rng.random_range(0.15..0.3));
    let s = rng.random_range(5.0f32..9.0);
    let t = rng.random_range(0.8f32..1.6);
    let cx = rng.random_range(s + 1.0..31.0 - s);
    let cy = rng.random_range(s + 1.0..31.0 - s);
    // Distractor: a 3×3 blob of random colour somewhere.
    let (bx, by) = (rng.random_range(1.0f32..30.0), rng.random_range(1.0f32..30.0));
    let blob: [f32; 3] = std::array::from_fn(|_| rng.random_range(0.0..1.0));
    for y in 0..32 {
        for x in 0..32 {
            let (xf, yf) = (x as f32, y as f32);
            let on = inside(class, xf, yf, cx, cy, s, t);
            let in_blob = (xf - bx).abs() <= 1.0 && (yf - by).abs() <= 1.0;
            for c in 0..3 {
                let base = if on {
                    fg[c]
                } else if in_blob {
                    blob[c]
                } else {
                    bg[c]
                };
                let noise = rng.random_range(-0.08f32..0.08);
                img[c * 1024 + y * 32 + x] = ((base + noise).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}
