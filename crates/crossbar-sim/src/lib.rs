//! # crossbar-sim
//!
//! Simulation of analog crossbar (resistive-array) tiles for deep-learning training, with the
//! conventions of IBM's aihwkit so that results are comparable:
//!
//! - a tile holds W (`out × in`) and computes batched forward (Y from X, one row per vector),
//!   backward (Z = D·W) and the rank-1 update W ← W − lr·Dᵀ·X ([`Tile`]);
//! - the [`AnalogTile`] runs every MVM through a DAC, input noise, output-referred weight noise,
//!   output noise and an ADC, with noise and bound management ([`IoConfig`]);
//! - its update sends stochastic, bit-packed pulse trains whose coincidences (counted by
//!   popcount) pulse a [`DeviceModel`]: constant step, linear step, soft bounds, exponential
//!   step, power step, each with device-to-device and cycle-to-cycle variation
//!   ([`DeviceConfig`], [`UpdateConfig`]); or, with the mixed-precision update, the outer
//!   products accumulate in a digital matrix and only whole device steps are pulsed
//!   ([`MixedPrecisionConfig`]); or, with Tiki-Taka, a second (fast) device per weight takes the
//!   pulses and is transferred column by column into the visible one, directly, through a
//!   digital buffer, with sign choppers, or against a dynamic reference ([`TransferConfig`]);
//! - between updates the devices may decay toward per-device reset values, diffuse, be reset,
//!   be stuck, carry write noise or drift ([`DynamicsConfig`], aihwkit's `lifetime`,
//!   `diffusion`, `reset`, `corrupt_devices`, `write_noise_std` and `drift`);
//! - for inference, trained weights are programmed onto pairs of PCM devices with programming
//!   noise, read after a chosen time with power-law drift and 1/f read noise, and corrected by
//!   drift compensation ([`InferenceTile`], [`PcmNoiseModel`], aihwkit's `InferenceRPUConfig`
//!   and `PCMLikeNoiseModel`);
//! - every operation is counted in constant-time cycles ([`CycleCounters`]) and turned into
//!   simulated analog time by a [`TimingModel`];
//! - every random draw comes from a [`SimRng`] derived from the tile's seed; results do not
//!   depend on the number of rayon threads, and a tile's state ([`AnalogTileState`])
//!   serializes and restores bit-exactly.
//!
//! The [`FloatTile`] is the exact digital reference behind the same trait.
//!
//! ```
//! use crossbar_sim::{AnalogTile, FloatTile, Tile, TileConfig};
//! use ndarray::Array2;
//!
//! # fn main() -> Result<(), crossbar_sim::SimError> {
//! let w = Array2::from_shape_fn((4, 8), |(i, j)| 0.05 * (i as f32 - j as f32));
//! let x = Array2::from_shape_fn((16, 8), |(b, j)| ((b * 8 + j) as f32 * 0.37).sin());
//!
//! let mut exact = FloatTile::from_weights(w.clone());
//! let mut analog = AnalogTile::new(4, 8, &TileConfig::default(), 42)?;
//! analog.set_weights(w.view())?;
//!
//! let y_exact = exact.forward_new(x.view())?;
//! let y_analog = analog.forward_new(x.view())?;
//! // Close, not equal. Noise management runs each vector b at x/α_b (α_b = max_j|x_bj|) and
//! // scales the result back by α_b, so output i errs by at most α_b times: the ADC's rounding
//! // Δ_out/2 = 12/510, the DAC's Σ_j|w_ij|·Δ_in/2 = Σ_j|w_ij|/126 and the output noise 0.06·ξ,
//! // which exceeds 5σ = 0.3 with probability 6·10⁻⁷ (no output reaches the ADC bound 12). The
//! // rounding alone is ≤ 0.035·α_b (Σ_j|w_ij| ≤ 1.4), so some error beyond it shows the noise: all
//! // 64 outputs stay within it with probability < P(|ξ| < 2·0.035/0.06)⁶⁴ ≈ 2·10⁻⁸.
//! let mut noisy = false;
//! for ((b, i), &ya) in y_analog.indexed_iter() {
//!     let alpha = x.row(b).fold(0.0f32, |m, &v| m.max(v.abs()));
//!     let rounding = alpha * (12.0 / 510.0 + w.row(i).mapv(f32::abs).sum() / 126.0);
//!     let err = (ya - y_exact[[b, i]]).abs();
//!     assert!(err <= rounding + alpha * 5.0 * 0.06);
//!     noisy |= err > rounding;
//! }
//! assert!(noisy);
//!
//! // One pulsed update per vector pair; the counters see 16 forward and 16 update cycles.
//! let d = Array2::from_elem((16, 4), 0.1f32);
//! analog.update(x.view(), d.view(), 0.01)?;
//! assert_eq!(analog.counters().forward_cycles, 16);
//! assert_eq!(analog.counters().update_cycles, 16);
//! # Ok(())
//! # }
//! ```

pub mod cycles;
pub mod device;
pub mod drift;
pub mod dynamics;
mod error;
pub mod io_config;
pub mod linalg;
pub mod mapping;
pub mod mixed_precision;
pub mod normal;
mod parallel;
pub mod pcm;
pub mod periphery;
pub mod pulse;
pub mod rng;
mod tile;
pub mod transfer;
pub mod update_config;

pub use cycles::{CycleCounters, TimingModel};
pub use device::{DeviceArrays, DeviceConfig, DeviceModel, PulsedParams};
pub use drift::{DriftConfig, DriftState};
pub use dynamics::{DynamicsArrays, DynamicsConfig};
pub use error::{ConfigError, SimError};
pub use io_config::{BoundManagement, IoConfig, NoiseManagement, WeightNoise};
pub use mapping::MappingConfig;
pub use mixed_precision::MixedPrecisionConfig;
pub use pcm::{PcmDevices, PcmNoiseModel};
pub use rng::{SimRng, derive_seed};
pub use tile::{
    AnalogTile, AnalogTileState, Choppers, DriftCompensation, FloatTile, InferenceConfig, InferenceTile, ModifierKind,
    PRESETS, Tile, TileConfig, TileSnapshot, TransferState, WeightModifier, all_finite,
};
pub use transfer::{TransferAlgorithm, TransferConfig};
pub use update_config::{PulseType, UpdateConfig};

/// Re-exported so users implementing [`DeviceModel`] use the same `rand` as this crate.
pub use rand;
/// Re-exported for the same reason as [`rand`].
pub use rand_distr;
