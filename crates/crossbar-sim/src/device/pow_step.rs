//! Power step (aihwkit `PowStepDevice`):
//! Δ⁺ = s⁺·((b_max − w)/(b_max − b_min))^{γ⁺_ij}, Δ⁻ = s⁻·((w − b_min)/(b_max − b_min))^{γ⁻_ij}.

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::common::{PulsedParams, pulse_loop};
use super::model::{DeviceArrays, DeviceModel, DeviceRow};
use crate::error::{ConfigError, path};
use crate::rng::SimRng;

/// Power-step device parameters (defaults are aihwkit's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowStep {
    /// Common parameters.
    pub params: PulsedParams,
    /// Mean exponent γ. Default: 1.
    pub pow_gamma: f32,
    /// Relative d2d spread of γ (gain 1 + pow_gamma_dtod·ξ). Default: 0.1.
    pub pow_gamma_dtod: f32,
    /// Up/down imbalance of γ. Default: 0.
    pub pow_up_down: f32,
    /// D2d spread of that imbalance. Default: 0.
    pub pow_up_down_dtod: f32,
}

impl Default for PowStep {
    fn default() -> Self {
        Self {
            params: PulsedParams::default(),
            pow_gamma: 1.0,
            pow_gamma_dtod: 0.1,
            pow_up_down: 0.0,
            pow_up_down_dtod: 0.0,
        }
    }
}

impl PowStep {
    /// Checks every field.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.params.validate(&path(prefix, "params"))?;
        let p = |f: &str| path(prefix, f);
        ConfigError::check_positive(|| p("pow_gamma"), self.pow_gamma.into())?;
        ConfigError::check_non_negative(|| p("pow_gamma_dtod"), self.pow_gamma_dtod.into())?;
        ConfigError::check_range(|| p("pow_up_down"), self.pow_up_down.into(), -1.0, 1.0)?;
        ConfigError::check_non_negative(|| p("pow_up_down_dtod"), self.pow_up_down_dtod.into())?;
        // The update's pulse scales divide by the granularity dw_min·0.5^γ: a γ so large that it
        // underflows to 0 would silently stop every update.
        if self.granularity() <= 0.0 {
            return Err(ConfigError::Invalid {
                field: p("pow_gamma"),
                reason: format!(
                    "the step at w = 0, dw_min·0.5^pow_gamma = {}·0.5^{}, underflows to 0",
                    self.params.dw_min, self.pow_gamma
                ),
            });
        }
        Ok(())
    }
}

impl DeviceModel for PowStep {
    fn name(&self) -> &str {
        "pow-step"
    }
    /// γ^± are drawn like the steps: g = 1 + dtod·ξ, r = up_down_dtod·ξ, split by `pow_up_down`.
    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        let mut arrays = self.params.draw(rows, cols, rng);
        let n = rows * cols;
        let (mut gu, mut gd) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let g = 1.0 + self.pow_gamma_dtod * rng.sample::<f32, _>(StandardNormal);
            let r = self.pow_up_down_dtod * rng.sample::<f32, _>(StandardNormal);
            let (u, d) = if self.pow_up_down > 0.0 {
                (g + r, g - self.pow_up_down - r)
            } else {
                (g + self.pow_up_down + r, g - r)
            };
            gu.push((u * self.pow_gamma).abs());
            gd.push((d * self.pow_gamma).abs());
        }
        let arr = |v: Vec<f32>| Array2::from_shape_vec((rows, cols), v).expect("length is rows·cols");
        arrays.extra = vec![("gamma_up".into(), arr(gu)), ("gamma_down".into(), arr(gd))];
        arrays
    }
    /// dw_min · 0.5^γ (the step in the middle of the range).
    fn granularity(&self) -> f32 {
        self.params.dw_min * 0.5f32.powf(self.pow_gamma)
    }
    fn apply_row(&self, hidden: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let gu = hidden.extra_row("gamma_up", r.row);
        let gd = hidden.extra_row("gamma_down", r.row);
        let c2c = self.params.dw_min_std;
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            if n != 0 {
                let (lo, hi, su, sd, eu, ed) = (r.w_min[j], r.w_max[j], r.step_up[j], r.step_down[j], gu[j], gd[j]);
                let range = hi - lo;
                pulse_loop(wj, n, lo, hi, c2c, rng, |v, up| {
                    if up {
                        su * ((hi - v) / range).max(0.0).powf(eu)
                    } else {
                        sd * ((v - lo) / range).max(0.0).powf(ed)
                    }
                });
            }
        }
    }
}
