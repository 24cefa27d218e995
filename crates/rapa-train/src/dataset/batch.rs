//! Normalization and augmentation into f32 batches.

use crossbar_sim::SimRng;
use ndarray::Array4;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, IMAGE_BYTES};

/// How pixels are scaled before they enter the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputNorm {
    /// Per-channel standardization: (p − mean)/std with p in [0, 1] and the training set's
    /// channel mean and std, so every channel has mean 0 and std 1. The default.
    #[default]
    Standardize,
    /// Caffe's `cifar10_full` scale: pixels in 0–255 minus the training set's channel mean
    /// (std ≈ 62–67 grey levels on CIFAR-10), the scale its initial weight stds were chosen
    /// for. Caffe subtracts the per-pixel mean image; this subtracts the per-channel mean
    /// (on CIFAR-10's training set the mean image departs from its channel means by 5–10 grey
    /// levels rms, at most 22). Meant for float tiles: an analog tile's bias is an input
    /// column held at 1, which noise management divides by the patch's largest input (~50–150
    /// grey levels here), leaving it within about one DAC step of 0 (default resolution
    /// 2/126), so the bias is lost or coarsely rounded.
    Caffe,
}

impl InputNorm {
    /// Name on the command line and in `config.toml`.
    pub fn name(self) -> &'static str {
        match self {
            InputNorm::Standardize => "standardize",
            InputNorm::Caffe => "caffe",
        }
    }
}

impl std::fmt::Display for InputNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for InputNorm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [InputNorm::Standardize, InputNorm::Caffe]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown input normalization `{s}`; known: standardize, caffe"))
    }
}

/// Per-channel normalization of [0, 1]-scaled pixels: (p − mean)/std.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Channel means.
    pub mean: [f32; 3],
    /// Channel standard deviations (at least [`Normalizer::MIN_STD`]).
    pub std: [f32; 3],
}

impl Normalizer {
    /// Floor of the fitted standard deviations: one grey level, so that a constant channel
    /// does not turn small deviations into huge inputs.
    pub const MIN_STD: f32 = 1.0 / 255.0;

    /// Mean and (population) standard deviation of each channel over all pixels of `train`,
    /// accumulated in f64; the identity for an empty set.
    pub fn fit(train: &Dataset) -> Self {
        if train.is_empty() {
            return Self::identity();
        }
        let mut sum = [0.0f64; 3];
        let mut sq = [0.0f64; 3];
        let mut count = 0usize;
        for img in train.images.chunks_exact(IMAGE_BYTES) {
            count += 1024;
            for c in 0..3 {
                for &p in &img[c * 1024..(c + 1) * 1024] {
                    let v = f64::from(p) / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let n = count.max(1) as f64;
        let mean: [f64; 3] = std::array::from_fn(|c| sum[c] / n);
        Self {
            mean: std::array::from_fn(|c| mean[c] as f32),
            std: std::array::from_fn(|c| ((sq[c] / n - mean[c] * mean[c]).max(0.0).sqrt() as f32).max(Self::MIN_STD)),
        }
    }

    /// The normalization `kind` fitted to `train`: [`Normalizer::fit`] for
    /// [`InputNorm::Standardize`]; for [`InputNorm::Caffe`] the same means with every std
    /// 1/255, i.e. (p − mean)·255, pixels in grey levels minus the channel mean.
    pub fn fit_as(train: &Dataset, kind: InputNorm) -> Self {
        let fitted = Self::fit(train);
        match kind {
            InputNorm::Standardize => fitted,
            InputNorm::Caffe => Self { mean: fitted.mean, std: [Self::MIN_STD; 3] },
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
    /// Add one uniform brightness shift in ±brightness (pixel units in [0, 1]) to all channels,
    /// before normalization (0, negative or non-finite: none). Default: 0.1.
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

/// Fills `out` (`[indices.len(), 3, 32, 32]`) with the images `indices` of `ds`, scaled to
/// [0, 1] and normalized per channel: `(p/255 + shift − mean)/std`.
///
/// With `Some((augment, rng))`, each image draws from `rng`, in index order, first a mirror
/// flag (probability ½, only if `augment.mirror`), then a brightness shift uniform in
/// ±`augment.brightness` (only if it is finite and > 0), which is added to all channels before
/// normalization. The same rng state gives the same batch; without augmentation the rng is
/// not needed and nothing is drawn.
///
/// # Panics
/// If `out` does not have the shape `[indices.len(), 3, 32, 32]`, or an index is
/// `>= ds.len()` (the caller's values, not file data).
pub fn fill_batch(
    ds: &Dataset,
    indices: &[usize],
    norm: &Normalizer,
    augment: Option<(&Augment, &mut SimRng)>,
    out: &mut Array4<f32>,
) {
    assert_eq!(out.shape(), &[indices.len(), 3, 32, 32], "fill_batch: output shape");
    match out.as_slice_mut() {
        Some(o) => fill(ds, indices, norm, augment, o),
        None => {
            // A non-standard layout (e.g. permuted axes): fill a standard array, then copy.
            let mut tmp = Array4::zeros((indices.len(), 3, 32, 32));
            if let Some(o) = tmp.as_slice_mut() {
                fill(ds, indices, norm, augment, o);
            }
            out.assign(&tmp);
        }
    }
}

fn fill(
    ds: &Dataset,
    indices: &[usize],
    norm: &Normalizer,
    mut augment: Option<(&Augment, &mut SimRng)>,
    o: &mut [f32],
) {
    for (&i, dst) in indices.iter().zip(o.chunks_exact_mut(IMAGE_BYTES)) {
        let (flip, shift) = match augment.as_mut() {
            Some((a, rng)) => {
                let flip = a.mirror && rng.random::<bool>();
                let shift = if a.brightness > 0.0 && a.brightness.is_finite() {
                    rng.random_range(-a.brightness..=a.brightness)
                } else {
                    0.0
                };
                (flip, shift)
            }
            None => (false, 0.0),
        };
        let img = ds.image(i);
        for (c, (src, plane)) in img.chunks_exact(1024).zip(dst.chunks_exact_mut(1024)).enumerate() {
            let (m, s) = (norm.mean[c], 1.0 / norm.std[c]);
            for (src_row, row) in src.chunks_exact(32).zip(plane.chunks_exact_mut(32)) {
                for (col, v) in row.iter_mut().enumerate() {
                    let src_col = if flip { 31 - col } else { col };
                    let p = f32::from(src_row[src_col]) / 255.0 + shift;
                    *v = (p - m) * s;
                }
            }
        }
    }
}
