//! [`NetConfig`]: the paper's network family, serializable, with presets.

use std::fmt;
use std::str::FromStr;

use crossbar_sim::{InferenceConfig, TileConfig};
use rapa_layers::paper::{conv_weight_count, paper_like_convs, pool_out};
use rapa_layers::{Assigner, Scheme, TileKind};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::layers::PoolKind;

/// Most output channels a conv layer of the network may have (4 096: conv3 then holds
/// 4 096 × 102 401 weights, 1.6 GiB).
pub const MAX_NET_CHANNELS: usize = 4096;
/// Most classes the network may have.
pub const MAX_CLASSES: usize = 100_000;
/// Most weights (biases included) the whole network may hold, over all tiles of every layer:
/// 2³⁰, 4 GiB as `f32` (analog tiles keep several such arrays per weight). Each limit above
/// allows networks far beyond it (4 096 channels on 256 tiles of conv2 would be 430 GB), which
/// are refused before anything is allocated.
pub const MAX_NET_WEIGHTS: usize = 1 << 30;

/// Initial weight distribution (Gaussian, zero mean, biases 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// Caffe cifar10_full's fixed stds: conv1 1e-4, conv2 0.01, conv3 0.01, fc 0.01 — the
    /// paper's network. Its tiny conv1 weights give a long initial plateau with plain SGD.
    #[default]
    Caffe,
    /// He et al.: std √(2/fan_in) for convs, √(1/fan_in) for the fully connected layer.
    He,
}

/// Named network presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetPreset {
    /// The paper's network (32, 32, 64 channels) with any tiles, scheme and pooling.
    #[default]
    Paper,
    /// (54, 64, 64) channels, no tiling: as many conv weights as RAPA (16, 4, 1), more compute.
    Enlarged,
    /// The paper's network with n = (128, 32, 8).
    Paper128,
}

impl NetPreset {
    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NetPreset::Paper => "paper",
            NetPreset::Enlarged => "enlarged",
            NetPreset::Paper128 => "paper-128",
        }
    }
}

impl fmt::Display for NetPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NetPreset {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [NetPreset::Paper, NetPreset::Enlarged, NetPreset::Paper128].into_iter().find(|p| p.name() == s).ok_or_else(
            || TrainError::Config {
                field: "preset".into(),
                reason: format!("unknown preset `{s}`; known: paper, enlarged, paper-128"),
            },
        )
    }
}

/// The network: conv(5×5, pad 2) → ReLU → pool 3×3/2 → LRN, twice, then conv → ReLU →
/// average pool 3×3/2 → fully connected → softmax (design §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Output channels of the three conv layers. Default: 32, 32, 64.
    #[serde(deserialize_with = "three_channels")]
    pub channels: [usize; 3],
    /// Tiles n per conv layer. Default: 16, 4, 1.
    #[serde(deserialize_with = "three_tiles")]
    pub tiles: [usize; 3],
    /// Tiling scheme of every conv layer with n > 1. Default: random.
    pub scheme: Scheme,
    /// Variant of the first two pools (the last one is always average). Default: max.
    pub pool: PoolKind,
    /// LRN after the first two pools. Default: true.
    pub lrn: bool,
    /// Tiles: `float` or an analog preset name of crossbar-sim (`aihwkit-default`, …).
    /// Default: float.
    pub device: String,
    /// A full analog tile configuration; overrides the preset named by `device` when set.
    pub tile: Option<TileConfig>,
    /// Inference tiles instead (`crossbar_sim::InferenceTile`, `docs/inference.md`): the
    /// forward pass through the analog periphery with an optional weight modifier, an exact
    /// backward pass and digital SGD, i.e. hardware-aware training for later inference on PCM.
    /// Exclusive with `tile` and an analog `device`. Default: none.
    pub inference: Option<InferenceConfig>,
    /// Put the fully connected layer on the same kind of tile as the convs (else float).
    /// Default: true.
    pub analog_fc: bool,
    /// Learning-rate multiplier per conv layer (applied to each of its tiles). Default: 1, 1, 1.
    #[serde(deserialize_with = "three_lr_scales")]
    pub lr_scale: [f32; 3],
    /// Multiply each tile's learning rate by its layer's kernel count n as well: a tile sees
    /// only 1/n of the patches, so its gradient is ~1/n of the untiled layer's, and this
    /// restores the untiled step size per tile. Default: true.
    pub scale_lr_by_tiles: bool,
    /// Apply weight decay with each tile's own learning rate, W ← W·(1 − lr·s·wd) with s the
    /// tile's factor (`lr_scale` of its layer, times n with `scale_lr_by_tiles`), as Caffe scales
    /// decay with each layer's `lr_mult` (biases stay undecayed here). Default: false, every
    /// float tile decays with the base lr (W ← W·(1 − lr·wd)), so relative to its gradient step
    /// a conv1 tile (n = 16) decays 16× less than an untiled layer.
    pub decay_with_tile_lr: bool,
    /// Initial weights. Default: caffe.
    pub init: Init,
    /// Number of classes (set from the dataset).
    pub classes: usize,
}

/// Reads a per-conv-layer array of exactly three values; any other length is an error naming
/// `field` and the length (a plain `[T; 3]` would drop extra elements silently).
fn exactly_three<'de, D, T>(d: D, field: &str) -> Result<[T; 3], D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + fmt::Debug,
{
    let v: Vec<T> = Vec::deserialize(d)?;
    <[T; 3]>::try_from(v).map_err(|v| {
        serde::de::Error::custom(format!(
            "net.{field} needs exactly 3 values (one per conv layer), got {}: {v:?}",
            v.len()
        ))
    })
}

fn three_channels<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[usize; 3], D::Error> {
    exactly_three(d, "channels")
}

fn three_tiles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[usize; 3], D::Error> {
    exactly_three(d, "tiles")
}

fn three_lr_scales<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[f32; 3], D::Error> {
    exactly_three(d, "lr_scale")
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            channels: [32, 32, 64],
            tiles: [16, 4, 1],
            scheme: Scheme::Random,
            pool: PoolKind::Max,
            lrn: true,
            device: "float".into(),
            tile: None,
            inference: None,
            analog_fc: true,
            lr_scale: [1.0; 3],
            scale_lr_by_tiles: true,
            decay_with_tile_lr: false,
            init: Init::Caffe,
            classes: 10,
        }
    }
}

impl NetConfig {
    /// A preset, with the paper's defaults for everything it does not fix.
    pub fn preset(p: NetPreset) -> Self {
        match p {
            NetPreset::Paper => Self::default(),
            NetPreset::Enlarged => {
                Self { channels: [54, 64, 64], tiles: [1, 1, 1], scheme: Scheme::None, ..Self::default() }
            }
            NetPreset::Paper128 => Self { tiles: [128, 32, 8], ..Self::default() },
        }
    }

    /// The tile kind of the conv layers.
    pub fn tile_kind(&self) -> Result<TileKind, TrainError> {
        if let Some(ic) = &self.inference {
            if self.tile.is_some() || self.device != "float" {
                return Err(TrainError::Config {
                    field: "net.inference".into(),
                    reason: "cannot be combined with [net.tile] or an analog net.device: those train on pulsed \
                             devices, inference tiles train digitally through a noisy forward pass"
                        .into(),
                });
            }
            ic.validate().map_err(|e| TrainError::Config { field: "net.inference".into(), reason: e.to_string() })?;
            return Ok(TileKind::Inference(Box::new(ic.clone())));
        }
        if let Some(cfg) = &self.tile {
            cfg.validate().map_err(|e| TrainError::Config { field: "net.tile".into(), reason: e.to_string() })?;
            return Ok(TileKind::Analog(Box::new(cfg.clone())));
        }
        if self.device == "float" {
            return Ok(TileKind::Float);
        }
        TileConfig::preset(&self.device)
            .map(|c| TileKind::Analog(Box::new(c)))
            .map_err(|e| TrainError::Config { field: "net.device".into(), reason: format!("{e} (or `float`)") })
    }

    /// Writes the analog preset named by `device` out as a full `tile` configuration, so that a
    /// config file can change any of its settings (timing, noise, device parameters, …); the
    /// network built from it is the same. Nothing changes for float tiles or when `tile` is
    /// already set. Errors as [`tile_kind`](Self::tile_kind) for an unknown preset.
    pub fn write_out_device(&mut self) -> Result<(), TrainError> {
        if let TileKind::Analog(t) = self.tile_kind()? {
            self.tile = Some(*t);
        }
        Ok(())
    }

    /// The learning-rate factor of each conv layer's tiles: `lr_scale[l]`, times the layer's
    /// kernel count n with `scale_lr_by_tiles` (n = `tiles[l]`, 1 for schemes none and
    /// perforated).
    pub fn tile_lr_factors(&self) -> [f32; 3] {
        std::array::from_fn(|l| {
            let n = self.scheme.n_kernels(self.tiles[l]);
            if self.scale_lr_by_tiles { self.lr_scale[l] * n as f32 } else { self.lr_scale[l] }
        })
    }

    /// The fc layer's input, `[channels, side, side]`: conv3's output after its 3×3/2 pool.
    pub fn fc_shape(&self) -> [usize; 3] {
        let g = paper_like_convs(self.channels, self.tiles, self.scheme, &TileKind::Float)[2].geometry;
        let side = pool_out(g.out_height(), 3, 2);
        [self.channels[2], side, side]
    }

    /// Checks the configuration: channels in 1..=[`MAX_NET_CHANNELS`], tiles ≥ 1 (1 for scheme
    /// none) that the scheme can lay out on each layer's patches, classes in
    /// 2..=[`MAX_CLASSES`], at most [`MAX_NET_WEIGHTS`] weights in all, finite non-negative lr
    /// scales and a known device.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, reason: String| Err(TrainError::Config { field: field.into(), reason });
        if self.channels.iter().any(|&c| c == 0 || c > MAX_NET_CHANNELS) {
            return bad("net.channels", format!("must be in 1..={MAX_NET_CHANNELS}, got {:?}", self.channels));
        }
        if self.tiles.contains(&0) {
            return bad("net.tiles", format!("must be >= 1, got {:?}", self.tiles));
        }
        if self.scheme == Scheme::None && self.tiles.iter().any(|&n| n > 1) {
            return bad("net.scheme", format!("scheme none needs tiles 1,1,1, got {:?}", self.tiles));
        }
        if !(2..=MAX_CLASSES).contains(&self.classes) {
            return bad("net.classes", format!("must be in 2..={MAX_CLASSES}, got {}", self.classes));
        }
        if self.lr_scale.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return bad("net.lr_scale", format!("must be finite and >= 0, got {:?}", self.lr_scale));
        }
        // The layers as the network builds them (geometry only): each scheme must lay its
        // tiles out on the layer's patches, and the weights of all tiles must fit the limit.
        let convs = paper_like_convs(self.channels, self.tiles, self.scheme, &TileKind::Float);
        for (l, c) in convs.iter().enumerate() {
            if let Err(e) = Assigner::new(c.scheme, c.n_tiles, &c.geometry, 0) {
                return bad("net.tiles", format!("conv{}: {e}", l + 1));
            }
        }
        let fc = (self.fc_shape().iter().product::<usize>() + 1) * self.classes;
        let weights = conv_weight_count(&convs) + fc;
        if weights > MAX_NET_WEIGHTS {
            return bad(
                "net",
                format!(
                    "channels {:?} on tiles {:?} with {} classes make {weights} weights, more than {MAX_NET_WEIGHTS}",
                    self.channels, self.tiles, self.classes
                ),
            );
        }
        self.tile_kind().map(|_| ())
    }
}
