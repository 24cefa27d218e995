//! # rapa-train
//!
//! Training of RAPA ConvNets on simulated analog arrays: the layers that are not tiles (ReLU,
//! pooling variants, LRN, softmax cross-entropy), the paper's network from a TOML-serializable
//! config with presets, datasets (CIFAR-10/100, SVHN, a built-in synthetic set), SGD with
//! warm-up and step annealing, checkpoints with bit-exact resume, and the `rapa` command line.
//!
//! ```
//! use rapa_train::data::synthetic;
//! use rapa_train::train::{TrainConfig, Trainer};
//!
//! # fn main() -> Result<(), rapa_train::TrainError> {
//! // One epoch of the paper's RAPA network (random tiling, n = 16, 4, 1) on 300 synthetic
//! // images; the README's main job trains on 10 000 for 8 epochs.
//! let cfg = TrainConfig { epochs: 1, synthetic_train: 300, synthetic_test: 100, ..TrainConfig::default() };
//! let data = synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
//! let mut trainer = Trainer::new(cfg, data)?;
//! trainer.fit(None, &mut |_| {}, &mut |m| println!("epoch {}: test error {:.3}", m.epoch, m.test_error))?;
//! let m = &trainer.metrics()[0];
//! assert!(m.loss.is_finite() && (0.0..=1.0).contains(&m.test_error));
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! - `cli` (default): the `rapa` binary (clap, indicatif); implies `plots`.
//! - `plots`: PNG plots in [`analysis::plots`] (plotters with its bitmap backend, text drawn from
//!   an embedded DejaVu Sans through `ab_glyph`, so neither needs system font libraries).
//!
//! A crate that only trains or analyses networks can depend on
//! `rapa-train = { …, default-features = false }`.

pub mod analysis;
#[path = "dataset/mod.rs"]
pub mod data;
mod error;
pub mod experiment;
pub mod layers;
pub mod net;
pub mod runtime;
pub mod train;

pub use error::TrainError;

pub use rapa_layers;
