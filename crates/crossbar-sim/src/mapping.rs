//! Mapping of the network's weights onto the conductance range (aihwkit's
//! `MappingParameter.weight_scaling_omega` / `weight_scaling_columnwise`).
//!
//! With ω > 0, programming a tile with weights W stores W' = W / α on the devices, where
//! α = max|W| / ω (one α per tile, or one per output row when `columnwise`), so that the largest
//! weight uses the fraction ω of the conductance range. A digital multiplier after each ADC
//! restores the scale:
//!
//! - forward: y = α ⊙ analog(W'·x);
//! - backward: z = analog(W'ᵀ·(α ⊙ d)) (the scale is applied digitally before the DAC);
//! - update: the devices receive the update of W' = W/α for the requested ΔW = −lr·d·xᵀ, i.e. the
//!   pulsed update runs on d / α with the same lr, as aihwkit's `pre_update` divides `d` by the
//!   mapping scales. In expectation the effective weights α ⊙ W' therefore follow float SGD
//!   exactly as without mapping, but one device step dw_min now moves an effective weight by
//!   α·dw_min: a layer whose weights are small against the device range gets proportionally
//!   finer resolution and relatively less output noise.
//!
//! α is fixed when the weights are programmed (`set_weights`) and kept until they are programmed
//! again; weights that outgrow ω·(range) by training saturate at the device bounds (the
//! headroom is (w_max − ω)/ω).
//!
//! With `digital_bias` (aihwkit's `digital_bias`, on there by default, off here) the tile's last
//! input column holds a bias that is kept in digital float instead of on devices: it is added
//! exactly after the ADC (times the last input, normally the constant 1), and it is left out of
//! noise management, the DAC, the mapping's α, the device bounds and the pulsed update, which
//! runs on the other columns; the bias itself follows plain SGD, b ← b − lr·Σ_b d·x_last.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, path};

/// Weight-to-conductance mapping. `Default`: off (ω = 0), as in aihwkit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// ω: the conductance that the largest |weight| is mapped to. 0 turns mapping off (weights
    /// are stored as given, α = 1). Default: 0.
    pub weight_scaling_omega: f32,
    /// One scale α per output row (aihwkit's `weight_scaling_columnwise`: max over each output's
    /// inputs) instead of one per tile. Default: false.
    pub columnwise: bool,
    /// The last input column is a digital bias (see the module docs); the tile then needs at
    /// least two inputs. Default: false (aihwkit's default is true: our layers put their bias
    /// in the last column, so off keeps it analog, as every run before this option had it).
    pub digital_bias: bool,
}

impl MappingConfig {
    /// Smallest ω other than 0 (off) that [`validate`](Self::validate) accepts. Conductances
    /// are in units of the device range (aihwkit's bounds are ±0.6), so a smaller ω is no
    /// meaningful mapping, and ω near zero would make max|W|/ω overflow f32.
    pub const MIN_OMEGA: f32 = 1e-6;

    /// Checks every field; `prefix` is prepended to field names in errors. ω must be 0 (off)
    /// or finite and at least [`MIN_OMEGA`](Self::MIN_OMEGA).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let omega = self.weight_scaling_omega;
        if omega == 0.0 || (omega.is_finite() && omega >= Self::MIN_OMEGA) {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                field: path(prefix, "weight_scaling_omega"),
                reason: format!("must be 0 (off) or finite and >= {:e}, got {omega}", Self::MIN_OMEGA),
            })
        }
    }

    /// Whether weights are scaled (ω > 0).
    pub fn is_active(&self) -> bool {
        self.weight_scaling_omega > 0.0
    }

    /// The scales α (one per row of `w`, `[out, in]`) for programming `w`: max|W|/ω over the
    /// tile, or over each row when `columnwise`. A tile of zeros, or with `columnwise` a row of
    /// zeros, gets α = 1 (as aihwkit's `periphery.py` sets it), as does a maximum for which
    /// max/ω is not finite, so α is always finite and > 0. Empty when mapping is off.
    pub fn scales(&self, w: ArrayView2<'_, f32>) -> Vec<f32> {
        if !self.is_active() {
            return Vec::new();
        }
        let omega = self.weight_scaling_omega;
        let row_max: Vec<f32> = w.rows().into_iter().map(|r| r.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect();
        let alpha = |m: f32| if m > 0.0 && (m / omega).is_finite() { m / omega } else { 1.0 };
        if self.columnwise {
            row_max.iter().map(|&m| alpha(m)).collect()
        } else {
            vec![alpha(row_max.iter().fold(0.0f32, |m, &v| m.max(v))); row_max.len()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn scales_map_the_largest_weight_to_omega() {
        let w = array![[0.1f32, -0.4], [0.0, 0.0], [0.05, 0.02]];
        let tile = MappingConfig { weight_scaling_omega: 0.8, ..Default::default() };
        assert_eq!(tile.scales(w.view()), vec![0.5; 3]);
        let col = MappingConfig { weight_scaling_omega: 0.8, columnwise: true, ..Default::default() };
        // A row of zeros gets α = 1, as in aihwkit (`alpha[alpha == 0.0] = 1.0`).
        assert_eq!(col.scales(w.view()), vec![0.5, 1.0, 0.0625]);
        assert!(MappingConfig::default().scales(w.view()).is_empty());
        let zero = ndarray::Array2::<f32>::zeros((2, 3));
        assert_eq!(col.scales(zero.view()), vec![1.0, 1.0]);
    }
}
