//! Constant step: Δ^± = s^±_ij·(1 + σ·ξ) (aihwkit `ConstantStepDevice`).

use super::common::{PulsedParams, pulse_loop};
use super::model::{DeviceArrays, DeviceModel, DeviceRow};
use crate::rng::SimRng;

/// A device whose step does not depend on the weight.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConstantStep {
    /// Common parameters.
    pub params: PulsedParams,
}

impl DeviceModel for ConstantStep {
    fn name(&self) -> &str {
        "constant-step"
    }
    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        self.params.draw(rows, cols, rng)
    }
    fn granularity(&self) -> f32 {
        self.params.dw_min
    }
    fn merged_c2c(&self) -> Option<f32> {
        Some(self.params.dw_min_std)
    }
    fn apply_row(&self, _: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let c2c = self.params.dw_min_std;
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            if n != 0 {
                let (su, sd) = (r.step_up[j], r.step_down[j]);
                pulse_loop(wj, n, r.w_min[j], r.w_max[j], c2c, rng, |_, up| if up { su } else { sd });
            }
        }
    }
}
