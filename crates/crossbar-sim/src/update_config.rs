//! Configuration of the pulsed update (aihwkit `UpdateParameters`).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, path};

/// The largest pulse-train length: one 32-bit word holds 31 pulse slots and the sign bit.
pub const MAX_BL: u32 = 31;

/// How the rank-1 update W ← W − lr·d·xᵀ is realized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PulseType {
    /// Exact float update, no pulses and no device response (aihwkit `NONE`).
    Float,
    /// Stochastic pulse trains of length BL, one coincidence = one device pulse
    /// (aihwkit `STOCHASTIC_COMPRESSED`). The default.
    #[default]
    StochasticCompressed,
    /// Deterministic counts: n_x = round(BL·p_x), n_d = round(BL·p_d), coincidences
    /// round(n_x·n_d/BL) (aihwkit `MEAN_COUNT`).
    MeanCount,
}

/// Pulsed-update settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    /// Update realization. Default: [`PulseType::StochasticCompressed`].
    pub pulse_type: PulseType,
    /// Pulse-train length BL (the maximum when BL management is on). In 1..=31. Default: 31.
    pub desired_bl: u32,
    /// Balance the pulse probabilities of x and d by √(max|x| / max|d|). Default: true.
    pub update_management: bool,
    /// Choose BL = min(⌈lr·max|x|·max|d| / dw_min⌉, desired_bl) per vector pair; implies update
    /// management. Default: true.
    pub update_bl_management: bool,
    /// Scale g of max|d| in update management (g > 1 lets d saturate earlier). Default: 1.
    pub um_grad_scale: f32,
    /// Apply all coincidences of one update call to a device at once, as one up and one down
    /// step with summed cycle-to-cycle noise, where the device model allows it exactly
    /// (constant step, see `docs/devices.md`); devices near their bounds and other models take
    /// the per-pulse path. `false` forces the per-pulse path everywhere. Default: true.
    pub merge_pulses: bool,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        Self {
            pulse_type: PulseType::StochasticCompressed,
            desired_bl: MAX_BL,
            update_management: true,
            update_bl_management: true,
            um_grad_scale: 1.0,
            merge_pulses: true,
        }
    }
}

impl UpdateConfig {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        ConfigError::check_range(|| path(prefix, "desired_bl"), self.desired_bl.into(), 1.0, MAX_BL.into())?;
        ConfigError::check_positive(|| path(prefix, "um_grad_scale"), self.um_grad_scale.into())
    }
}
