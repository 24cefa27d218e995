//! Configuration of the analog periphery of one MVM direction (forward or backward): DAC, noise
//! sources, ADC, noise and bound management. Names and defaults follow aihwkit's `IOParameters`
//! (see `docs/io.md` for the mapping table).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, path};

/// How the input vector is scaled before the DAC (aihwkit `NoiseManagementType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseManagement {
    /// No scaling (α = 1).
    None,
    /// α = max_j |x_j| (capped at `nm_thres` when it is > 0). The default.
    #[default]
    AbsMax,
    /// α = max_j x_j (capped likewise).
    Max,
    /// α = `nm_thres` (or 1 if `nm_thres` is 0).
    Constant,
}

/// Whether saturated outputs are recovered by repeating the MVM with a smaller input
/// (aihwkit `BoundManagementType`). Only the forward pass uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoundManagement {
    /// Clip and keep the clipped result.
    None,
    /// Halve the input scale and repeat while an output clips (at most
    /// [`IoConfig::max_bm_passes`] passes). The default.
    #[default]
    Iterative,
}

/// Output-referred weight (read) noise model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightNoise {
    /// No weight noise. The default.
    #[default]
    None,
    /// y_i += w_noise · ‖v‖₂ · ξ_i (aihwkit `ADDITIVE_CONSTANT`).
    AdditiveConstant,
}

/// Periphery of one MVM direction. All values are in normalized units: inputs in units of the
/// DAC range, outputs in units of the product of the normalized input and the weights.
///
/// Construct with `..Default::default()` so that new fields stay non-breaking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IoConfig {
    /// Exact float MVM, y = out_scale · W·x; every other field is ignored. Default: false.
    pub is_perfect: bool,
    /// DAC range ±inp_bound. Must be 1 when noise management is on. Default: 1.0.
    pub inp_bound: f32,
    /// DAC resolution as a fraction of the full range 2·inp_bound (step = inp_res·2·inp_bound);
    /// 0 turns quantization off. In [0, 1]. Default: 1/126 (7 bit: 127 levels).
    pub inp_res: f32,
    /// Stochastic rounding in the DAC. Default: false (round half to even).
    pub inp_sto_round: bool,
    /// Std of Gaussian noise added to each input after the DAC. Default: 0.
    pub inp_noise: f32,
    /// ADC range ±out_bound; 0 means unbounded (then `out_res` must be 0). Default: 12.0.
    pub out_bound: f32,
    /// ADC resolution as a fraction of the full range 2·out_bound; 0 turns quantization off.
    /// In [0, 1]. Default: 1/510 (9 bit: 511 levels).
    pub out_res: f32,
    /// Stochastic rounding in the ADC. Default: false.
    pub out_sto_round: bool,
    /// Std of additive Gaussian output noise, before the ADC. Default: 0.06.
    pub out_noise: f32,
    /// Strength of output-referred weight noise. Default: 0.
    pub w_noise: f32,
    /// Model of the weight noise. Default: [`WeightNoise::None`].
    pub w_noise_type: WeightNoise,
    /// Input scaling before the DAC. Default: [`NoiseManagement::AbsMax`].
    pub noise_management: NoiseManagement,
    /// Cap on the noise-management scale (or the constant for `Constant`); 0 = no cap. Default: 0.
    pub nm_thres: f32,
    /// Recovery of saturated outputs (forward only). Default: [`BoundManagement::Iterative`].
    pub bound_management: BoundManagement,
    /// Largest input reduction factor of bound management. Default: 1000.
    pub max_bm_factor: f32,
    /// Bound management stops once the reduction exceeds max_bm_res / DAC step. Default: 0.25.
    pub max_bm_res: f32,
    /// Treat clipping at −out_bound as a failed pass too. Default: true.
    pub bm_test_negative_bound: bool,
    /// Digital output gain. Default: 1.
    pub out_scale: f32,
}

impl Default for IoConfig {
    fn default() -> Self {
        Self {
            is_perfect: false,
            inp_bound: 1.0,
            inp_res: 1.0 / 126.0,
            inp_sto_round: false,
            inp_noise: 0.0,
            out_bound: 12.0,
            out_res: 1.0 / 510.0,
            out_sto_round: false,
            out_noise: 0.06,
            w_noise: 0.0,
            w_noise_type: WeightNoise::None,
            noise_management: NoiseManagement::AbsMax,
            nm_thres: 0.0,
            bound_management: BoundManagement::Iterative,
            max_bm_factor: 1000.0,
            max_bm_res: 0.25,
            bm_test_negative_bound: true,
            out_scale: 1.0,
        }
    }
}

impl IoConfig {
    /// Exact float math (`is_perfect = true`).
    pub fn perfect() -> Self {
        Self { is_perfect: true, ..Self::default() }
    }

    /// Default periphery without any noise (converters and management kept).
    pub fn noise_free() -> Self {
        Self { out_noise: 0.0, ..Self::default() }
    }

    /// Sets the DAC and ADC resolutions from bit counts: `bits` gives 2^bits − 1 symmetric
    /// levels (res = 1/(2^bits − 2)); 0 bits turns the converter off.
    pub fn with_bits(mut self, inp_bits: u32, out_bits: u32) -> Self {
        self.inp_res = bits_to_res(inp_bits);
        self.out_res = bits_to_res(out_bits);
        self
    }

    /// DAC step (0 when the DAC is off).
    pub fn inp_step(&self) -> f32 {
        self.inp_res * 2.0 * self.inp_bound
    }

    /// ADC step (0 when the ADC is off).
    pub fn out_step(&self) -> f32 {
        self.out_res * 2.0 * self.out_bound
    }

    /// The most analog passes one forward vector can take with bound management (the backward
    /// pass never repeats, whatever this config says):
    /// the reduction ρ starts at 1 and doubles after each failed pass while
    /// ρ ≤ max_bm_factor and ρ ≤ max_bm_res / DAC step. With the defaults: 5 passes.
    pub fn max_bm_passes(&self) -> u32 {
        if self.is_perfect || self.bound_management == BoundManagement::None {
            return 1;
        }
        let mut rho = 1.0f64;
        let mut passes = 1;
        while self.bm_may_retry(rho) {
            rho *= 2.0;
            passes += 1;
        }
        passes
    }

    /// Whether another bound-management pass is allowed after a failed pass at reduction `rho`.
    pub(crate) fn bm_may_retry(&self, rho: f64) -> bool {
        let limit_res =
            if self.inp_step() > 0.0 { f64::from(self.max_bm_res) / f64::from(self.inp_step()) } else { f64::INFINITY };
        rho <= f64::from(self.max_bm_factor) && rho <= limit_res
    }

    /// Checks every field; `prefix` is prepended to field names in errors (e.g. `forward`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.is_perfect {
            return ConfigError::check_positive(|| path(prefix, "out_scale"), f64::from(self.out_scale));
        }
        let p = |f: &str| path(prefix, f);
        ConfigError::check_positive(|| p("inp_bound"), self.inp_bound.into())?;
        ConfigError::check_range(|| p("inp_res"), self.inp_res.into(), 0.0, 1.0)?;
        ConfigError::check_non_negative(|| p("inp_noise"), self.inp_noise.into())?;
        ConfigError::check_non_negative(|| p("out_bound"), self.out_bound.into())?;
        ConfigError::check_range(|| p("out_res"), self.out_res.into(), 0.0, 1.0)?;
        if self.out_bound == 0.0 && self.out_res > 0.0 {
            return Err(ConfigError::Invalid {
                field: p("out_res"),
                reason: format!("an unbounded ADC (out_bound = 0) cannot quantize (out_res = {})", self.out_res),
            });
        }
        ConfigError::check_non_negative(|| p("out_noise"), self.out_noise.into())?;
        ConfigError::check_non_negative(|| p("w_noise"), self.w_noise.into())?;
        ConfigError::check_non_negative(|| p("nm_thres"), self.nm_thres.into())?;
        ConfigError::check_range(|| p("max_bm_factor"), self.max_bm_factor.into(), 1.0, 1e9)?;
        ConfigError::check_positive(|| p("max_bm_res"), self.max_bm_res.into())?;
        ConfigError::check_positive(|| p("out_scale"), self.out_scale.into())?;
        if self.noise_management != NoiseManagement::None && self.inp_bound != 1.0 {
            return Err(ConfigError::Invalid {
                field: p("inp_bound"),
                reason: format!(
                    "must be 1 when noise management is {:?}, got {}",
                    self.noise_management, self.inp_bound
                ),
            });
        }
        if self.bound_management == BoundManagement::Iterative && self.out_bound == 0.0 {
            return Err(ConfigError::Invalid {
                field: p("bound_management"),
                reason: "iterative bound management needs a finite out_bound".into(),
            });
        }
        Ok(())
    }
}

/// Resolution giving 2^bits − 1 symmetric levels (bits is clamped to 2..=24); 0 bits = off.
pub fn bits_to_res(bits: u32) -> f32 {
    if bits == 0 { 0.0 } else { 1.0 / ((1u64 << bits.clamp(2, 24)) as f32 - 2.0) }
}
