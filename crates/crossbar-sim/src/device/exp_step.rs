//! Exponential step (aihwkit `ExpStepDevice`): with z = 2a·w/(b_max − b_min) + b,
//! Δ⁺ = s⁺·max(1 − A_up·e^{γ_up·z}, 0), Δ⁻ = s⁻·max(1 − A_down·e^{−γ_down·z}, 0).

use serde::{Deserialize, Serialize};

use super::common::{PulsedParams, pulse_loop};
use super::model::{DeviceArrays, DeviceModel, DeviceRow};
use crate::error::{ConfigError, path};
use crate::rng::SimRng;

/// Exponential-step device parameters (defaults are aihwkit's, fitted to a ReRAM device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpStep {
    /// Common parameters.
    pub params: PulsedParams,
    /// A_up. Default: 0.00081.
    pub a_up: f32,
    /// A_down. Default: 0.36833.
    pub a_down: f32,
    /// γ_up. Default: 12.44625.
    pub gamma_up: f32,
    /// γ_down. Default: 12.78785.
    pub gamma_down: f32,
    /// a (scale of z). Default: 0.244.
    pub a: f32,
    /// b (offset of z). Default: 0.2425.
    pub b: f32,
}

impl Default for ExpStep {
    fn default() -> Self {
        Self {
            params: PulsedParams::default(),
            a_up: 0.00081,
            a_down: 0.36833,
            gamma_up: 12.44625,
            gamma_down: 12.78785,
            a: 0.244,
            b: 0.2425,
        }
    }
}

impl ExpStep {
    /// Checks every field.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.params.validate(&path(prefix, "params"))?;
        let p = |f: &str| path(prefix, f);
        ConfigError::check_non_negative(|| p("a_up"), self.a_up.into())?;
        ConfigError::check_non_negative(|| p("a_down"), self.a_down.into())?;
        ConfigError::check_range(|| p("gamma_up"), self.gamma_up.into(), -100.0, 100.0)?;
        ConfigError::check_range(|| p("gamma_down"), self.gamma_down.into(), -100.0, 100.0)?;
        ConfigError::check_range(|| p("a"), self.a.into(), -100.0, 100.0)?;
        ConfigError::check_range(|| p("b"), self.b.into(), -100.0, 100.0)?;
        if self.granularity() <= 0.0 {
            return Err(ConfigError::Invalid {
                field: path(prefix, "a_up"),
                reason: "the mean of the up and down steps at w = 0 (the granularity) must be > 0".into(),
            });
        }
        Ok(())
    }

    /// Relative step factors (up, down) at weight `w` for bounds `lo`, `hi`.
    pub fn factors(&self, w: f32, lo: f32, hi: f32) -> (f32, f32) {
        let z = 2.0 * self.a * w / (hi - lo) + self.b;
        let up = (1.0 - self.a_up * (self.gamma_up * z).exp()).max(0.0);
        let down = (1.0 - self.a_down * (-self.gamma_down * z).exp()).max(0.0);
        (up, down)
    }
}

impl DeviceModel for ExpStep {
    fn name(&self) -> &str {
        "exp-step"
    }
    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        self.params.draw(rows, cols, rng)
    }
    /// The mean of the up and down steps at w = 0 with the mean bounds.
    fn granularity(&self) -> f32 {
        let (u, d) = self.factors(0.0, self.params.w_min, self.params.w_max);
        self.params.dw_min * 0.5 * (u + d)
    }
    fn apply_row(&self, _: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let c2c = self.params.dw_min_std;
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            if n != 0 {
                let (lo, hi, su, sd) = (r.w_min[j], r.w_max[j], r.step_up[j], r.step_down[j]);
                pulse_loop(wj, n, lo, hi, c2c, rng, |v, up| {
                    let (fu, fd) = self.factors(v, lo, hi);
                    if up { su * fu } else { sd * fd }
                });
            }
        }
    }
}
