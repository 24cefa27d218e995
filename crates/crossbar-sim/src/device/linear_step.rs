//! Linear step: the step shrinks linearly with the weight,
//! Δ⁺ = s⁺(1 − γ⁺_ij·w/w_ref⁺), Δ⁻ = s⁻(1 − γ⁻_ij·w/w_ref⁻) (aihwkit `LinearStepDevice`).

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::common::{PulsedParams, pulse_loop};
use super::model::{DeviceArrays, DeviceModel, DeviceRow};
use crate::error::{ConfigError, path};
use crate::rng::SimRng;

/// Linear-step device parameters (defaults are aihwkit's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearStep {
    /// Common parameters.
    pub params: PulsedParams,
    /// Mean slope γ⁺ of the up step. Default: 0.
    pub gamma_up: f32,
    /// Mean slope γ⁻ of the down step. Default: 0.
    pub gamma_down: f32,
    /// Absolute d2d spread of γ⁺: γ⁺_ij = |γ⁺ + gamma_up_dtod·ξ|. Default: 0.05.
    pub gamma_up_dtod: f32,
    /// Absolute d2d spread of γ⁻. Default: 0.05.
    pub gamma_down_dtod: f32,
    /// Use the mean bounds w_max / w_min as references (else each device's own). Default: true.
    pub mean_bound_reference: bool,
    /// Multiplicative cycle-to-cycle noise Δ(1 + σξ) (else additive: Δ + s·σξ). Default: true.
    pub mult_noise: bool,
}

impl Default for LinearStep {
    fn default() -> Self {
        Self {
            params: PulsedParams::default(),
            gamma_up: 0.0,
            gamma_down: 0.0,
            gamma_up_dtod: 0.05,
            gamma_down_dtod: 0.05,
            mean_bound_reference: true,
            mult_noise: true,
        }
    }
}

impl LinearStep {
    /// Checks every field.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.params.validate(&path(prefix, "params"))?;
        let p = |f: &str| path(prefix, f);
        ConfigError::check_non_negative(|| p("gamma_up_dtod"), self.gamma_up_dtod.into())?;
        ConfigError::check_non_negative(|| p("gamma_down_dtod"), self.gamma_down_dtod.into())?;
        ConfigError::check_range(|| p("gamma_up"), self.gamma_up.into(), -10.0, 10.0)?;
        ConfigError::check_range(|| p("gamma_down"), self.gamma_down.into(), -10.0, 10.0)
    }

    /// Per-pulse loop shared with soft bounds: `gu`, `gd` slopes, `ru`, `rd` references.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pulse(
        &self,
        w: &mut f32,
        n: i32,
        su: f32,
        sd: f32,
        gu: f32,
        gd: f32,
        ru: f32,
        rd: f32,
        lo: f32,
        hi: f32,
        rng: &mut SimRng,
    ) {
        let c2c = self.params.dw_min_std;
        // A zero reference bound has no slope (as in aihwkit): the step is then constant.
        let (gu, ru) = if ru == 0.0 { (0.0, 1.0) } else { (gu, ru) };
        let (gd, rd) = if rd == 0.0 { (0.0, 1.0) } else { (gd, rd) };
        if self.mult_noise {
            pulse_loop(
                w,
                n,
                lo,
                hi,
                c2c,
                rng,
                |v, up| {
                    if up { su * (1.0 - gu * v / ru) } else { sd * (1.0 - gd * v / rd) }
                },
            );
        } else {
            let up = n > 0;
            let mut v = *w;
            for _ in 0..n.unsigned_abs() {
                let xi: f32 = if c2c > 0.0 { rng.sample(StandardNormal) } else { 0.0 };
                let d = if up { su * (1.0 - gu * v / ru + c2c * xi) } else { sd * (1.0 - gd * v / rd + c2c * xi) };
                v = if up { v + d } else { v - d };
                v = v.clamp(lo, hi);
            }
            *w = v;
        }
    }
}

impl DeviceModel for LinearStep {
    fn name(&self) -> &str {
        "linear-step"
    }
    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        let mut arrays = self.params.draw(rows, cols, rng);
        let mut slope = |mean: f32, dtod: f32| {
            Array2::from_shape_simple_fn((rows, cols), || (mean + dtod * rng.sample::<f32, _>(StandardNormal)).abs())
        };
        let gu = slope(self.gamma_up, self.gamma_up_dtod);
        let gd = slope(self.gamma_down, self.gamma_down_dtod);
        arrays.extra = vec![("gamma_up".into(), gu), ("gamma_down".into(), gd)];
        arrays
    }
    fn granularity(&self) -> f32 {
        self.params.dw_min
    }
    fn apply_row(&self, hidden: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let gu = hidden.extra_row("gamma_up", r.row);
        let gd = hidden.extra_row("gamma_down", r.row);
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            if n != 0 {
                let (ru, rd) = if self.mean_bound_reference {
                    (self.params.w_max, self.params.w_min)
                } else {
                    (r.w_max[j], r.w_min[j])
                };
                self.pulse(wj, n, r.step_up[j], r.step_down[j], gu[j], gd[j], ru, rd, r.w_min[j], r.w_max[j], rng);
            }
        }
    }
}
