//! What happens to the devices besides the pulsed update (aihwkit's `PulsedDevice` parameters
//! `lifetime`, `diffusion`, `reset`, `corrupt_devices` and `write_noise_std`): decay toward a
//! per-device reset value, random-walk diffusion, explicit resets, devices stuck at a fixed
//! value, and write noise.
//!
//! - **Decay** (`lifetime` τ > 0): w_ij ← (w_ij − b_ij)·s_ij + b_ij, then clipped to the
//!   device's bounds, with s_ij = 1 − 1/τ_ij, τ_ij = τ·(1 + `lifetime_dtod`·ξ) (s_ij = 0 where
//!   τ_ij ≤ 1) and the reset value b_ij = `reset` + `reset_dtod`·ξ. After k calls without
//!   pulses a weight inside its bounds is b + (w₀ − b)·s^k: an exponential relaxation with a
//!   time constant of ~τ calls.
//! - **Diffusion** (`diffusion` ρ > 0): w_ij ← clip(w_ij + ρ_ij·ξ) with a fresh ξ per device and
//!   call, ρ_ij = |ρ·(1 + `diffusion_dtod`·ξ)|; away from the bounds a random walk whose
//!   variance grows by ρ_ij² per call.
//! - **Reset** ([`AnalogTile::reset_columns`](crate::AnalogTile::reset_columns)): each chosen
//!   device is set to clip(b_ij + `reset_std`·ξ).
//! - **Stuck devices** (`corrupt_devices_prob` p > 0): at construction each device is stuck
//!   with probability p at a value drawn uniformly from its bounds intersected with
//!   ±`corrupt_devices_range`; its steps become 0 and both bounds that value, so no update,
//!   decay, diffusion or reset moves it.
//! - **Write noise** (`write_noise_std` σ > 0): the devices hold a persistent weight, which
//!   every update acts on, and the forward and backward passes see an apparent weight
//!   persistent + σ·ε·ξ, ε the device's granularity. The noise is drawn afresh for every device
//!   an update pulses (at least one coincidence) and for all devices after an exact (float)
//!   update, decay, diffusion, reset and, with `apply_write_noise_on_set`, programming; the
//!   other devices keep theirs. It has its own generator, so it never changes the persistent
//!   weights' course.
//!
//! Decay and diffusion run once per [`Tile::update`](crate::Tile::update) call — one call per
//! mini-batch, like aihwkit's `post_update_step` — diffusion first (unless `per_update` is
//! off; then only when called explicitly). The per-device values are drawn once, from their own
//! sub-streams of the tile seed, so switching one effect on changes none of the other hidden
//! parameters; the per-call noise comes from the tile's runtime generator, split by rows, so
//! results do not depend on the number of threads.

use ndarray::{Array2, Zip};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::device::DeviceArrays;
use crate::drift::DriftConfig;
use crate::error::{ConfigError, path};
use crate::normal::standard_normal;
use crate::parallel::min_rows;
use crate::rng::{SimRng, stream};

/// Decay, diffusion, reset and stuck devices. Everything is off by default; the other defaults
/// are aihwkit's `PulsedDevice` ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicsConfig {
    /// Decay time τ in update calls (mini-batches); 0 = no decay. Default: 0.
    pub lifetime: f32,
    /// Relative device-to-device spread of τ: τ_ij = τ(1 + lifetime_dtod·ξ). Default: 0.
    pub lifetime_dtod: f32,
    /// Mean reset value b, the target of decay and reset. Default: 0.
    pub reset: f32,
    /// Absolute device-to-device spread of the reset value: b_ij = reset + reset_dtod·ξ.
    /// Default: 0.
    pub reset_dtod: f32,
    /// Cycle-to-cycle spread of a reset: w = b_ij + reset_std·ξ. Default: 0.01.
    pub reset_std: f32,
    /// Diffusion rate ρ: w += ρ_ij·ξ per update call; 0 = none. Default: 0.
    pub diffusion: f32,
    /// Relative device-to-device spread of ρ: ρ_ij = |ρ(1 + diffusion_dtod·ξ)|. Default: 0.
    pub diffusion_dtod: f32,
    /// Probability that a device is stuck, in [0, 1]. Default: 0.
    pub corrupt_devices_prob: f32,
    /// Stuck values lie in ±corrupt_devices_range (within the device's bounds). Default: 0.1.
    pub corrupt_devices_range: f32,
    /// Write noise σ in units of the device's granularity ε (aihwkit's `write_noise_std`, in
    /// units of dw_min): the passes see persistent + σ·ε·ξ; 0 = none. Default: 0.
    pub write_noise_std: f32,
    /// Draw write noise when the weights are programmed (`set_weights`). Default: true.
    pub apply_write_noise_on_set: bool,
    /// Power-law drift, applied by [`AnalogTile::drift_weights`](crate::AnalogTile::drift_weights)
    /// ([`crate::drift`]). Default: off.
    pub drift: DriftConfig,
    /// Apply decay and diffusion at the end of every update call (aihwkit applies them once per
    /// mini-batch in `post_update_step`); false: only through
    /// [`AnalogTile::decay_weights`](crate::AnalogTile::decay_weights) and
    /// [`AnalogTile::diffuse_weights`](crate::AnalogTile::diffuse_weights). Default: true.
    pub per_update: bool,
}

impl Default for DynamicsConfig {
    fn default() -> Self {
        Self {
            lifetime: 0.0,
            lifetime_dtod: 0.0,
            reset: 0.0,
            reset_dtod: 0.0,
            reset_std: 0.01,
            diffusion: 0.0,
            diffusion_dtod: 0.0,
            corrupt_devices_prob: 0.0,
            corrupt_devices_range: 0.1,
            write_noise_std: 0.0,
            apply_write_noise_on_set: true,
            drift: DriftConfig::default(),
            per_update: true,
        }
    }
}

/// Sub-stream (of the tile's dynamics seed) of each kind of hidden value.
const STUCK_STREAM: u64 = 0;
const DIFFUSION_STREAM: u64 = 1;
const RESET_STREAM: u64 = 2;
const DECAY_STREAM: u64 = 3;

impl DynamicsConfig {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &'static str| move || path(prefix, f);
        ConfigError::check_non_negative(p("lifetime"), self.lifetime.into())?;
        ConfigError::check_non_negative(p("lifetime_dtod"), self.lifetime_dtod.into())?;
        ConfigError::check_range(p("reset"), self.reset.into(), f32::MIN.into(), f32::MAX.into())?;
        ConfigError::check_non_negative(p("reset_dtod"), self.reset_dtod.into())?;
        ConfigError::check_non_negative(p("reset_std"), self.reset_std.into())?;
        ConfigError::check_non_negative(p("diffusion"), self.diffusion.into())?;
        ConfigError::check_non_negative(p("diffusion_dtod"), self.diffusion_dtod.into())?;
        ConfigError::check_range(p("corrupt_devices_prob"), self.corrupt_devices_prob.into(), 0.0, 1.0)?;
        ConfigError::check_non_negative(p("corrupt_devices_range"), self.corrupt_devices_range.into())?;
        ConfigError::check_non_negative(p("write_noise_std"), self.write_noise_std.into())?;
        self.drift.validate(&path(prefix, "drift"))
    }

    /// Whether the passes see write noise on the persistent weights.
    pub fn has_write_noise(&self) -> bool {
        self.write_noise_std > 0.0
    }

    /// Whether the weights decay.
    pub fn decays(&self) -> bool {
        self.lifetime > 0.0
    }

    /// Whether the weights diffuse.
    pub fn diffuses(&self) -> bool {
        self.diffusion > 0.0
    }

    /// Whether the tile keeps per-device reset values (needed by decay, and by a reset toward a
    /// non-zero or spread target).
    fn keeps_reset_values(&self) -> bool {
        self.decays() || self.reset != 0.0 || self.reset_dtod > 0.0
    }

    /// Draws the per-device values of a `rows × cols` tile from sub-streams of `seed`.
    pub(crate) fn draw(&self, rows: usize, cols: usize, seed: u64) -> DynamicsArrays {
        let none = || Array2::zeros((0, 0));
        let draw = |on: bool, sub: u64, f: &dyn Fn(f32) -> f32| {
            if !on {
                return none();
            }
            let mut rng = stream(seed, sub);
            Array2::from_shape_simple_fn((rows, cols), || f(standard_normal(&mut rng)))
        };
        let diffusion_rate =
            draw(self.diffuses(), DIFFUSION_STREAM, &|xi| (self.diffusion * (1.0 + self.diffusion_dtod * xi)).abs());
        let reset_value = draw(self.keeps_reset_values(), RESET_STREAM, &|xi| self.reset + self.reset_dtod * xi);
        let decay_scale = draw(self.decays(), DECAY_STREAM, &|xi| {
            let t = self.lifetime * (1.0 + self.lifetime_dtod * xi);
            if t > 1.0 { 1.0 - 1.0 / t } else { 0.0 }
        });
        DynamicsArrays { reset_value, decay_scale, diffusion_rate }
    }

    /// Makes each device stuck with probability `corrupt_devices_prob` (aihwkit's order: one
    /// uniform u per device in row-major order, stuck when u < p, then a second uniform for its
    /// value): steps 0, both bounds the stuck value.
    pub(crate) fn corrupt(&self, hidden: &mut DeviceArrays, seed: u64) {
        if self.corrupt_devices_prob <= 0.0 {
            return;
        }
        let mut rng = stream(seed, STUCK_STREAM);
        let r = self.corrupt_devices_range.abs();
        let DeviceArrays { step_up, step_down, w_min, w_max, .. } = hidden;
        Zip::from(step_up).and(step_down).and(w_min).and(w_max).for_each(|su, sd, lo, hi| {
            if rng.random::<f32>() < self.corrupt_devices_prob {
                // (In f64: with the ideal device's ±∞ bounds and a range near f32::MAX, mx − mn
                // would overflow in f32.)
                let mn = f64::from(lo.min(*hi).max(-r));
                let mx = f64::from(lo.max(*hi).min(r));
                let v = (mn + (mx - mn) * f64::from(rng.random::<f32>())) as f32;
                (*su, *sd, *lo, *hi) = (0.0, 0.0, v, v);
            }
        });
    }
}

/// The hidden per-device values of [`DynamicsConfig`], drawn once per tile. An array is `0 × 0`
/// when its effect is off (a missing reset value means 0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DynamicsArrays {
    /// Reset value b_ij, the target of decay and reset.
    pub reset_value: Array2<f32>,
    /// Decay factor per call s_ij = 1 − 1/τ_ij, in [0, 1).
    pub decay_scale: Array2<f32>,
    /// Diffusion rate ρ_ij ≥ 0.
    pub diffusion_rate: Array2<f32>,
}

impl DynamicsArrays {
    /// Checks a restored set against the configuration and the tile's shape: which arrays must
    /// exist, their shapes and their values. Returns what is wrong.
    pub(crate) fn check(&self, cfg: &DynamicsConfig, shape: [usize; 2]) -> Result<(), String> {
        let arrays = [
            ("reset_value", &self.reset_value, cfg.keeps_reset_values(), f32::MIN, f32::MAX),
            ("decay_scale", &self.decay_scale, cfg.decays(), 0.0, 1.0),
            ("diffusion_rate", &self.diffusion_rate, cfg.diffuses(), 0.0, f32::MAX),
        ];
        for (name, a, on, lo, hi) in arrays {
            let want = if on { shape } else { [0, 0] };
            if a.shape() != want {
                return Err(format!("dynamics array {name} has shape {:?}, expected {want:?}", a.shape()));
            }
            if let Some(v) = a.iter().find(|v| !(v.is_finite() && **v >= lo && **v <= hi)) {
                return Err(format!("dynamics array {name} holds {v}, outside [{lo}, {hi}]"));
            }
        }
        Ok(())
    }

    /// The same arrays in standard layout.
    pub(crate) fn into_standard_layout(self) -> Self {
        let s = crate::linalg::standard_layout;
        Self {
            reset_value: s(self.reset_value),
            decay_scale: s(self.decay_scale),
            diffusion_rate: s(self.diffusion_rate),
        }
    }

    /// w ← clip((w − b)·max(0, 1 + α(s − 1)) + b): one decay step, scaled by `alpha` (1 = one
    /// call).
    pub(crate) fn decay(&self, w: &mut Array2<f32>, hidden: &DeviceArrays, alpha: f32) {
        if self.decay_scale.is_empty() {
            return;
        }
        Zip::from(w).and(&self.decay_scale).and(&self.reset_value).and(&hidden.w_min).and(&hidden.w_max).for_each(
            |w, &s, &b, &lo, &hi| {
                let s = if alpha == 1.0 { s } else { (1.0 + alpha * (s - 1.0)).max(0.0) };
                *w = ((*w - b) * s + b).clamp(lo, hi);
            },
        );
    }

    /// w ← clip(w + ρ·ξ), row i drawing from stream i of `seed`.
    pub(crate) fn diffuse(&self, w: &mut Array2<f32>, hidden: &DeviceArrays, seed: u64) {
        if self.diffusion_rate.is_empty() {
            return;
        }
        let cols = w.ncols();
        let w = w.as_slice_mut().expect("tile weights are in standard layout");
        let rate = self.diffusion_rate.as_slice().expect("standard layout");
        let (lo, hi) = (hidden.w_min.as_slice().expect("standard layout"), hidden.w_max.as_slice().expect("layout"));
        let min = min_rows(w.len(), w.len() / cols.max(1));
        w.par_chunks_mut(cols).enumerate().with_min_len(min).for_each(|(i, row)| {
            let mut rng = stream(seed, i as u64);
            let k = i * cols;
            for (j, w) in row.iter_mut().enumerate() {
                *w = (*w + rate[k + j] * standard_normal(&mut rng)).clamp(lo[k + j], hi[k + j]);
            }
        });
    }

    /// Resets the devices of the columns marked in `cols`, each with probability `prob`, to
    /// clip(b + σ·ξ). Row i draws from stream i of `seed`: per chosen device one uniform (only
    /// when `prob` < 1), then one normal if it is reset and σ > 0.
    pub(crate) fn reset(
        &self,
        w: &mut Array2<f32>,
        hidden: &DeviceArrays,
        cols: &[bool],
        prob: f32,
        std: f32,
        seed: u64,
    ) {
        let n = w.ncols();
        let w = w.as_slice_mut().expect("tile weights are in standard layout");
        let b = self.reset_value.as_slice().unwrap_or(&[]);
        let (lo, hi) = (hidden.w_min.as_slice().expect("standard layout"), hidden.w_max.as_slice().expect("layout"));
        let min = min_rows(w.len(), w.len() / n.max(1));
        w.par_chunks_mut(n).enumerate().with_min_len(min).for_each(|(i, row)| {
            let mut rng: SimRng = stream(seed, i as u64);
            for (j, w) in row.iter_mut().enumerate() {
                if !cols[j] || (prob < 1.0 && rng.random::<f32>() >= prob) {
                    continue;
                }
                let k = i * n + j;
                let mut v = b.get(k).copied().unwrap_or(0.0);
                if std > 0.0 {
                    v += std * standard_normal(&mut rng);
                }
                *w = v.clamp(lo[k], hi[k]);
            }
        });
    }
}

/// Flat indices of the stuck devices (both bounds equal): their weight is that value.
pub(crate) fn stuck_devices(hidden: &DeviceArrays) -> Vec<usize> {
    hidden.w_min.iter().zip(&hidden.w_max).enumerate().filter(|(_, (lo, hi))| lo == hi).map(|(k, _)| k).collect()
}

/// Sets every stuck device's weight to its value (after an update that may have moved it: an
/// exact float update does not clip, and a model's step formula may divide by the zero width).
pub(crate) fn pin_stuck(w: &mut Array2<f32>, hidden: &DeviceArrays, stuck: &[usize]) {
    if stuck.is_empty() {
        return;
    }
    let w = w.as_slice_mut().expect("tile weights are in standard layout");
    let v = hidden.w_min.as_slice().expect("standard layout");
    for &k in stuck {
        w[k] = v[k];
    }
}

/// Sets the apparent weights of the devices marked in `mask` (all with `None`) to
/// persistent + σ·ξ; row i draws from stream i of `seed`, one normal per marked device.
pub(crate) fn draw_write_noise(
    apparent: &mut Array2<f32>,
    persistent: &Array2<f32>,
    sigma: f32,
    mask: Option<&[bool]>,
    seed: u64,
) {
    let cols = apparent.ncols();
    let a = apparent.as_slice_mut().expect("tile weights are in standard layout");
    let p = persistent.as_slice().expect("standard layout");
    let min = min_rows(a.len(), a.len() / cols.max(1));
    a.par_chunks_mut(cols).enumerate().with_min_len(min).for_each(|(i, row)| {
        let mut rng = stream(seed, i as u64);
        let k = i * cols;
        for (j, a) in row.iter_mut().enumerate() {
            if mask.is_none_or(|m| m[k + j]) {
                *a = p[k + j] + sigma * standard_normal(&mut rng);
            }
        }
    });
}
