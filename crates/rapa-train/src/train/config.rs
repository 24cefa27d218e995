//! [`TrainConfig`]: every setting of a run, saved as `config.toml` next to its results.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{DatasetKind, InputNorm};
use crate::error::TrainError;
use crate::net::NetConfig;

/// Largest synthetic train or test set (1 000 000 images, ~3 GiB as bytes).
pub const MAX_SYNTHETIC: usize = 1_000_000;

/// Largest training or evaluation mini-batch (4 096 images: the im2col buffer of conv1 alone is
/// then 1.3 GB).
pub const MAX_BATCH: usize = 4096;

/// Most compute threads a run, `--threads` or [`compute_pool`](crate::runtime::compute_pool)
/// accepts (1 024, whatever the machine: more only adds scheduling overhead, and tens of
/// thousands of OS threads exhaust memory or hang the start).
pub const MAX_THREADS: usize = 1024;

/// Checks a thread count against [`MAX_THREADS`]: the one check behind
/// [`TrainConfig::validate`] and [`compute_pool`](crate::runtime::compute_pool).
pub(crate) fn check_threads(threads: usize) -> Result<(), TrainError> {
    if threads > MAX_THREADS {
        return Err(TrainError::Config {
            field: "threads".into(),
            reason: format!("must be at most {MAX_THREADS} (0: one per core), got {threads}"),
        });
    }
    Ok(())
}

/// Largest configuration file [`TrainConfig::from_toml_file`] reads (1 MiB; a full
/// configuration is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// All settings of a training run. Defaults reproduce the paper's best configuration (random
/// tiling, n = 16, 4, 1, max pooling) on the built-in synthetic dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Dataset. Default: synthetic.
    pub dataset: DatasetKind,
    /// Directory of the dataset files (not used by synthetic). Default: `data`.
    pub data_dir: PathBuf,
    /// Epochs (≥ 1). Default: 8.
    pub epochs: usize,
    /// Base learning rate. Default: 0.02.
    pub lr: f32,
    /// Mini-batch size (at most [`MAX_BATCH`]). Default: 10.
    pub batch: usize,
    /// Master seed of every random draw. Default: 1.
    pub seed: u64,
    /// Rayon threads (0: rayon's default, all cores; at most [`MAX_THREADS`]). Default: 0.
    pub threads: usize,
    /// Use only N training images, stratified by class (spread evenly within each). Default: all.
    pub limit_train: Option<usize>,
    /// Use only N test images, stratified by class (the shared CIFAR-10 test batch is
    /// sorted by class, so its first N would hold one or two classes). Default: all.
    pub limit_test: Option<usize>,
    /// Multiply the learning rate by `lr_gamma` every `lr_step` epochs. Default: 25.
    pub lr_step: usize,
    /// Annealing factor γ. Default: 0.5.
    pub lr_gamma: f32,
    /// Warm-up epochs at lr/50, 0 for none. Default: 1. It may cover the whole run (a run of
    /// `epochs ≤ warmup_epochs` trains at lr/50 throughout, e.g. a one-epoch smoke test).
    pub warmup_epochs: usize,
    /// Weight decay per step, W ← W·(1 − lr·weight_decay) (float and inference tiles; with
    /// `net.decay_with_tile_lr` each conv tile's lr factor multiplies lr). Default: 1e-4.
    pub weight_decay: f32,
    /// Input scale: `standardize` (per channel to mean 0, std 1) or `caffe` (grey levels 0–255
    /// minus the channel mean, as Caffe's `cifar10_full`). Default: standardize.
    pub input_norm: InputNorm,
    /// Augmentation: random horizontal mirroring. Default: true.
    pub mirror: bool,
    /// Augmentation: uniform brightness shift in ±brightness (pixel units in [0, 1]). Default: 0.1.
    pub brightness: f32,
    /// Training images of the synthetic dataset (at most [`MAX_SYNTHETIC`]). Default: 10 000.
    pub synthetic_train: usize,
    /// Test images of the synthetic dataset (at most [`MAX_SYNTHETIC`]). Default: 2 000.
    pub synthetic_test: usize,
    /// Batch size of evaluation passes (at most [`MAX_BATCH`]). Default: 100.
    pub eval_batch: usize,
    /// Flush subnormal floats to zero in compute threads (x86-64 with SSE only). Default: true.
    pub flush_denormals: bool,
    /// The network.
    pub net: NetConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Synthetic,
            data_dir: PathBuf::from("data"),
            epochs: 8,
            lr: 0.02,
            batch: 10,
            seed: 1,
            threads: 0,
            limit_train: None,
            limit_test: None,
            lr_step: 25,
            lr_gamma: 0.5,
            warmup_epochs: 1,
            weight_decay: 1e-4,
            input_norm: InputNorm::Standardize,
            mirror: true,
            brightness: 0.1,
            synthetic_train: 10_000,
            synthetic_test: 2_000,
            eval_batch: 100,
            flush_denormals: true,
            net: NetConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Checks every setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, reason: String| Err(TrainError::Config { field: field.into(), reason });
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("must be finite and > 0, got {}", self.lr));
        }
        if self.epochs == 0 {
            return bad("epochs", "must be >= 1".into());
        }
        for (field, n) in [("batch", self.batch), ("eval_batch", self.eval_batch)] {
            if !(1..=MAX_BATCH).contains(&n) {
                return bad(field, format!("must be in 1..={MAX_BATCH}, got {n}"));
            }
        }
        check_threads(self.threads)?;
        if self.lr_step == 0 {
            return bad("lr_step", "must be > 0".into());
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0 && self.lr_gamma <= 1.0) {
            return bad("lr_gamma", format!("must be in (0, 1], got {}", self.lr_gamma));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", format!("must be finite and >= 0, got {}", self.weight_decay));
        }
        // Each step multiplies the weights by 1 − lr·s·wd (s = 1, or the largest tile factor
        // with net.decay_with_tile_lr); at or below 0 decay would zero or flip them. The base lr
        // is the largest the schedule reaches.
        let s = if self.net.decay_with_tile_lr {
            self.net.tile_lr_factors().into_iter().fold(1.0f32, f32::max)
        } else {
            1.0
        };
        if self.lr * s * self.weight_decay >= 1.0 {
            let what = if s == 1.0 {
                "lr·weight_decay".to_string()
            } else {
                format!("lr·{s}·weight_decay (net.decay_with_tile_lr)")
            };
            return bad(
                "weight_decay",
                format!(
                    "{what} = {} must be < 1: each step multiplies the weights by 1 − that",
                    self.lr * s * self.weight_decay
                ),
            );
        }
        if !(self.brightness.is_finite() && (0.0..=1.0).contains(&self.brightness)) {
            return bad("brightness", format!("must be in [0, 1], got {}", self.brightness));
        }
        if self.limit_train == Some(0) {
            return bad("limit_train", "must be > 0".into());
        }
        if self.limit_test == Some(0) {
            return bad("limit_test", "must be > 0".into());
        }
        if self.dataset == DatasetKind::Synthetic {
            for (field, n) in [("synthetic_train", self.synthetic_train), ("synthetic_test", self.synthetic_test)] {
                if n == 0 {
                    return bad(field, "the synthetic dataset needs > 0 images".into());
                }
            }
        }
        for (field, n) in [("synthetic_train", self.synthetic_train), ("synthetic_test", self.synthetic_test)] {
            if n > MAX_SYNTHETIC {
                return bad(field, format!("must be at most {MAX_SYNTHETIC} (3 KiB per image in memory), got {n}"));
            }
        }
        self.net.validate()
    }

    /// Reads a TOML file; unknown keys and bad values are errors naming the file, and so is a
    /// file larger than [`MAX_CONFIG_BYTES`] (`--config /dev/zero` must not read without bound).
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainError> {
        read_toml(path)
    }

    /// Parses TOML text (the error is the parser's message).
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The TOML text of every setting.
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string_pretty(self).map_err(|e| TrainError::Internal(e.to_string()))
    }
}

/// Reads a TOML file of at most [`MAX_CONFIG_BYTES`] into `T`; errors name the file (and the
/// parser's message the field).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(|e| TrainError::io(path, e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(TrainError::Toml {
            path: path.to_path_buf(),
            reason: format!("larger than {} MiB: not a rapa configuration", MAX_CONFIG_BYTES >> 20),
        });
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| TrainError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    toml::from_str(&text).map_err(|e| TrainError::Toml { path: path.to_path_buf(), reason: e.to_string() })
}
