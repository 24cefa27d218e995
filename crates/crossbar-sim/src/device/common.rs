//! Parameters shared by every pulsed device model, and the drawing of their hidden values.

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::model::DeviceArrays;
use crate::error::{ConfigError, path};
use crate::rng::SimRng;

/// Step size, variations and bounds common to all pulsed models (aihwkit `PulsedDevice`).
/// Defaults are aihwkit's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PulsedParams {
    /// Mean step of one pulse. Default: 0.001.
    pub dw_min: f32,
    /// Relative device-to-device spread of the step: gain g_ij = 1 + dw_min_dtod·ξ. Default: 0.3.
    pub dw_min_dtod: f32,
    /// Use a log-normal gain g_ij = exp(dw_min_dtod·ξ) instead. Default: false.
    pub dw_min_dtod_log_normal: bool,
    /// Relative cycle-to-cycle spread of every step: Δ·(1 + dw_min_std·ξ). Default: 0.3.
    pub dw_min_std: f32,
    /// Mean upper bound. Default: 0.6.
    pub w_max: f32,
    /// Mean lower bound. Default: −0.6.
    pub w_min: f32,
    /// Relative d2d spread of the upper bound: b_max = w_max(1 + w_max_dtod·ξ). Default: 0.3.
    pub w_max_dtod: f32,
    /// Relative d2d spread of the lower bound. Default: 0.3.
    pub w_min_dtod: f32,
    /// Systematic up/down imbalance (> 0: down steps smaller). Default: 0.
    pub up_down: f32,
    /// D2d spread of the imbalance, r_ij = up_down_dtod·ξ. Default: 0.01.
    pub up_down_dtod: f32,
}

impl Default for PulsedParams {
    fn default() -> Self {
        Self {
            dw_min: 0.001,
            dw_min_dtod: 0.3,
            dw_min_dtod_log_normal: false,
            dw_min_std: 0.3,
            w_max: 0.6,
            w_min: -0.6,
            w_max_dtod: 0.3,
            w_min_dtod: 0.3,
            up_down: 0.0,
            up_down_dtod: 0.01,
        }
    }
}

impl PulsedParams {
    /// The same parameters without any device-to-device or cycle-to-cycle variation.
    pub fn without_variation(mut self) -> Self {
        self.dw_min_dtod = 0.0;
        self.dw_min_std = 0.0;
        self.w_max_dtod = 0.0;
        self.w_min_dtod = 0.0;
        self.up_down_dtod = 0.0;
        self
    }

    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &str| path(prefix, f);
        ConfigError::check_positive(|| p("dw_min"), self.dw_min.into())?;
        ConfigError::check_non_negative(|| p("dw_min_dtod"), self.dw_min_dtod.into())?;
        ConfigError::check_non_negative(|| p("dw_min_std"), self.dw_min_std.into())?;
        ConfigError::check_non_negative(|| p("w_max_dtod"), self.w_max_dtod.into())?;
        ConfigError::check_non_negative(|| p("w_min_dtod"), self.w_min_dtod.into())?;
        ConfigError::check_non_negative(|| p("up_down_dtod"), self.up_down_dtod.into())?;
        ConfigError::check_range(|| p("up_down"), self.up_down.into(), -1.0, 1.0)?;
        if !(self.w_min.is_finite() && self.w_max.is_finite() && self.w_min < self.w_max) {
            return Err(ConfigError::BoundsOrder {
                min_field: p("w_min"),
                min: self.w_min.into(),
                max_field: p("w_max"),
                max: self.w_max.into(),
            });
        }
        if self.w_min > 0.0 || self.w_max < 0.0 {
            return Err(ConfigError::Invalid {
                field: p("w_min"),
                reason: format!(
                    "the weight range must contain 0 (w_min <= 0 <= w_max), got [{}, {}]",
                    self.w_min, self.w_max
                ),
            });
        }
        Ok(())
    }

    /// Draws steps and bounds (aihwkit `PulsedRPUDevice::populate`):
    /// g = 1 + dtod·ξ (or exp(dtod·ξ)), r = up_down_dtod·ξ;
    /// up_down > 0: s⁺ = (g + r)·dw_min, s⁻ = (g − up_down − r)·dw_min;
    /// otherwise s⁺ = (g + up_down + r)·dw_min, s⁻ = (g − r)·dw_min;
    /// b_max = w_max(1 + w_max_dtod·ξ), b_min = w_min(1 + w_min_dtod·ξ).
    /// Steps are made non-negative, crossed bounds swapped, and the bounds kept on their side
    /// of zero, b_min ≤ 0 ≤ b_max (aihwkit `enforce_consistency`).
    pub fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        let n = rows * cols;
        let mut step_up = Vec::with_capacity(n);
        let mut step_down = Vec::with_capacity(n);
        let mut w_min = Vec::with_capacity(n);
        let mut w_max = Vec::with_capacity(n);
        for _ in 0..n {
            let xi_g: f32 = rng.sample(StandardNormal);
            let g = if self.dw_min_dtod_log_normal {
                (self.dw_min_dtod * xi_g).exp()
            } else {
                1.0 + self.dw_min_dtod * xi_g
            };
            let r = self.up_down_dtod * rng.sample::<f32, _>(StandardNormal);
            let (up, down) =
                if self.up_down > 0.0 { (g + r, g - self.up_down - r) } else { (g + self.up_down + r, g - r) };
            step_up.push((up * self.dw_min).abs());
            step_down.push((down * self.dw_min).abs());
            let mut hi = self.w_max * (1.0 + self.w_max_dtod * rng.sample::<f32, _>(StandardNormal));
            let mut lo = self.w_min * (1.0 + self.w_min_dtod * rng.sample::<f32, _>(StandardNormal));
            // aihwkit's `enforce_consistency`: swap crossed bounds, then mirror a bound drawn on
            // the wrong side of zero (b_max = |b_max|, b_min = −|b_min|).
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            w_min.push(-lo.abs());
            w_max.push(hi.abs());
        }
        let arr = |v: Vec<f32>| Array2::from_shape_vec((rows, cols), v).expect("length is rows·cols");
        DeviceArrays {
            step_up: arr(step_up),
            step_down: arr(step_down),
            w_min: arr(w_min),
            w_max: arr(w_max),
            extra: Vec::new(),
        }
    }
}

/// Applies `|n|` pulses to `w` one by one: `step(w, up)` gives the nominal (noise-free) step
/// magnitude at `w`, which is multiplied by (1 + σ·ξ) per pulse (σ = `c2c`), and `w` is
/// clipped to `[lo, hi]` after every pulse. This is the per-pulse reference path of every
/// built-in model.
#[inline]
pub(crate) fn pulse_loop(
    w: &mut f32,
    n: i32,
    lo: f32,
    hi: f32,
    c2c: f32,
    rng: &mut SimRng,
    step: impl Fn(f32, bool) -> f32,
) {
    let up = n > 0;
    let mut v = *w;
    for _ in 0..n.unsigned_abs() {
        let mut d = step(v, up);
        if c2c > 0.0 {
            d *= 1.0 + c2c * crate::normal::standard_normal(rng);
        }
        v = if up { v + d } else { v - d };
        v = v.clamp(lo, hi);
    }
    *w = v;
}
