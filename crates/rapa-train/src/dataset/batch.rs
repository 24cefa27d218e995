//! Normalization and augmentation into f32 batches.

use crossbar_sim::SimRng;
use ndarray::Array4;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, IMAGE_BYTES};

/// Per-channel normalization of [0, 1]-scaled pixels: (p − mean)/std.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Channel means.
    pub mean: [f32; 3],
    /// Channel standard deviations (≥ 1e-6).
    pub std: [f32; 3],
}

impl Normalizer {
    /// Mean and standard deviation of each channel over all pixels of `train`.
    pub fn fit(train: &Dataset) -> Self {
        let mut sum = [0.0f64; 3];
        let mut sq = [0.0f64; 3];
        for img in train.images.chunks_exact(IMAGE_BYTES) {
            for c in 0..3 {
                for &p in &img[c * 1024..(c + 1) * 1024] {
                    let v = f64::from(p) / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let n = (train.len() * 1024).max(1) as f64;
        let mean: [f64; 3] = std::array::from_fn(|c| sum[c] / n);
        Self {
            mean: std::array::from_fn(|c| mean[c] as f32),
            std: std::array::from_fn(|c| ((sq[c] / n - mean[c] * mean[c]).max(0.0).sqrt() as f32).max(1e-6)),
        }
    }

    /// The identity (mean 0, std 1).
    pub fn identity() -> Self {
        Self { mean: [0.0; 3], std: [1.0; 3] }
    }
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Mirror horizontally with probability ½. Default: true.
    pub mirror: bool,
    /// Add one uniform brightness shift in ±brightness (pixel units in [0, 1]) to all channels.
    /// Default: 0.1.
    pub brightness: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self { mirror: true, brightness: 0.1 }
    }
}

impl Augment {
    /// No augmentation.
    pub fn none() -> Self {
        Self { mirror: false, brightness: 0.0 }
    }
}

/// Fills `out` (`[indices.len(), 3, 32, 32]`) with the normalized images `indices` of `ds`.
/// With an augmentation, each image draws (in index order) a mirror flag and a brightness
/// shift from `rng`.
///
/// # Panics
/// If `out` has the wrong shape or an index is out of range (internal invariants of callers).
pub fn fill_batch(
    ds: &Dataset,
    indices: &[usize],
    norm: &Normalizer,
    augment: Option<(&Augment, &mut SimRng)>,
    out: &mut Array4<f32>,
) {
    assert_eq!(out.shape(), &[indices.len(), 3, 32, 32], "fill_batch: output shape");
    let mut aug = augment;
    let o = out.as_slice_mut().expect("fresh arrays are in standard layout");
    for (k, &i) in indices.iter().enumerate() {
        let (flip, shift) = match aug.as_mut() {
            Some((a, rng)) => {
                let flip = a.mirror && rng.random::<bool>();
                let shift = if a.brightness > 0.0 { rng.random_range(-a.brightness..=a.brightness) } else { 0.0 };
                (flip, shift)
            }
            None => (false, 0.0),
        };
        let img = ds.image(i);
        let dst = &mut o[k * IMAGE_BYTES..(k + 1) * IMAGE_BYTES];
        for c in 0..3 {
            let (m, s) = (norm.mean[c], 1.0 / norm.std[c]);
            for r in 0..32 {
                for col in 0..32 {
                    let src_col = if flip { 31 - col } else { col };
                    let p = f32::from(img[c * 1024 + r * 32 + src_col]) / 255.0 + shift;
                    dst[c * 1024 + r * 32 + col] = (p - m) * s;
                }
            }
        }
    }
}
