//! Soft bounds: the step is proportional to the distance to the device's own bound,
//! Δ⁺ = s⁺(1 − w/b_max,ij), Δ⁻ = s⁻(1 − w/b_min,ij) (aihwkit `SoftBoundsDevice`: a linear
//! step with γ = 1, no slope spread and device-own bound references).

use serde::{Deserialize, Serialize};

use super::common::PulsedParams;
use super::linear_step::LinearStep;
use super::model::{DeviceArrays, DeviceModel, DeviceRow};
use crate::rng::SimRng;

/// Soft-bounds device parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftBounds {
    /// Common parameters. The bounds must straddle 0 (w_min < 0 < w_max).
    pub params: PulsedParams,
    /// Multiplicative cycle-to-cycle noise (else additive). Default: true.
    pub mult_noise: bool,
}

impl Default for SoftBounds {
    fn default() -> Self {
        Self { params: PulsedParams::default(), mult_noise: true }
    }
}

impl SoftBounds {
    fn as_linear(&self) -> LinearStep {
        LinearStep {
            params: self.params.clone(),
            gamma_up: 1.0,
            gamma_down: 1.0,
            gamma_up_dtod: 0.0,
            gamma_down_dtod: 0.0,
            mean_bound_reference: false,
            mult_noise: self.mult_noise,
        }
    }
}

impl DeviceModel for SoftBounds {
    fn name(&self) -> &str {
        "soft-bounds"
    }
    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        self.params.draw(rows, cols, rng)
    }
    fn granularity(&self) -> f32 {
        self.params.dw_min
    }
    fn apply_row(&self, _: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let lin = self.as_linear();
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            if n != 0 {
                let (lo, hi) = (r.w_min[j], r.w_max[j]);
                lin.pulse(wj, n, r.step_up[j], r.step_down[j], 1.0, 1.0, hi, lo, lo, hi, rng);
            }
        }
    }
}
