//! Phase-change memory (PCM) for inference: programming noise, conductance drift and
//! accumulated 1/f read noise after the statistical model of Nandakumar et al. (ICECS 2019) that
//! aihwkit ships as `PCMLikeNoiseModel`, fitted on a million-device PCM chip. Used by the
//! [`InferenceTile`](crate::InferenceTile).
//!
//! A tile's stored weights W are held by a pair of devices each, w = (g⁺ − g⁻)/s, with one scale
//! s = (g_max − g_min)/max|W| per tile (aihwkit's `SinglePairConductanceConverter`): the target
//! conductances are g⁺_T = clip(s·w, 0, g_max) + g_min and g⁻_T = clip(−s·w, 0, g_max) + g_min.
//!
//! **Programming** (once per [`PcmDevices::program`]) draws, for every device independently,
//!
//! - the programmed conductance g_P = max(0, g_T + `prog_noise_scale`·σ_P(ĝ_T)·ξ) with
//!   σ_P(ĝ) = (c₀ + c₁ĝ + c₂ĝ²)·g_max/g_ref µS and ĝ = g_T/g_max (`prog_coeff` c, fitted at
//!   g_ref = `prog_coeff_g_max_reference`, 25 µS);
//! - the drift exponent ν = |μ_ν + σ_ν·ξ|·`drift_scale` with
//!   μ_ν = clip(−0.0155·ln ĝ_T + 0.0244, 0.049, 0.1) and
//!   σ_ν = clip(−0.0125·ln ĝ_T − 0.0059, 0.008, 0.045) (ĝ_T clamped to ≥ 10⁻⁷).
//!
//! **Reading at time t_inf after programming** ([`PcmDevices::read`]), with t = t_inf + t₀:
//!
//! - drift: g_D = g_P·(t/t₀)^(−ν) for t_inf > 0, else g_D = g_P;
//! - read noise: g = max(0, g_D + |g_D|·`read_noise_scale`·Q_s·√ln((t + t_read)/(2·t_read))·ξ)
//!   with Q_s = min(0.0088/max(ĝ_P^0.65, 10⁻³), 0.2), drawn afresh at every read;
//! - the weight w = (g⁺ − g⁻)/s, with the scale of programming.
//!
//! Differences from aihwkit (1.1): aihwkit converts the programmed weights back into a new
//! conductance pair before drifting, with the scale recomputed from max|W_P| (with g_min = 0 a
//! weight then lives on a single device). The programming noise of the device that targeted
//! g_min is kept in W_P but folded into the other device, so it drifts and gets read noise with
//! that device's ν and conductance instead of its own, and a weight whose sign flipped by
//! programming noise drifts with the ν drawn for the device that targeted g_min. Here both
//! devices keep their programmed conductance and their own ν, and drift and read noise act on
//! each, as on a chip. The formulas themselves are aihwkit's.

use ndarray::{Array2, ArrayView2, Zip};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, path};
use crate::normal::standard_normal;
use crate::rng::SimRng;

/// The PCM statistical model. `Default`: aihwkit's `PCMLikeNoiseModel()` (g_max 25 µS, g_min 0,
/// t_read 250 ns, t₀ 20 s, all scales 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcmNoiseModel {
    /// Largest target conductance in µS (> 0). Default: 25.
    pub g_max: f32,
    /// Conductance added to both devices of a pair, in µS (≥ 0, < g_max). Default: 0.
    pub g_min: f32,
    /// Programming-noise polynomial c₀ + c₁ĝ + c₂ĝ² in µS, fitted at
    /// `prog_coeff_g_max_reference` and scaled by g_max over it. Default:
    /// [0.26348, 1.9650, −1.1731] (aihwkit's `prog_coeff`).
    pub prog_coeff: [f32; 3],
    /// The g_max (µS, > 0) at which `prog_coeff` was fitted. Default: 25. (aihwkit takes the
    /// converter's g_max when `prog_coeff` is given without it; set it here to your g_max for
    /// coefficients fitted there.)
    pub prog_coeff_g_max_reference: f32,
    /// Multiplier of the programming noise (≥ 0; 0 programs exactly). Default: 1.
    pub prog_noise_scale: f32,
    /// Multiplier of the read noise (≥ 0). Default: 1.
    pub read_noise_scale: f32,
    /// Multiplier of the drift exponents ν (≥ 0; 0 turns drift off). Default: 1.
    pub drift_scale: f32,
    /// Duration of one read in seconds (> 0), the 1/f noise's lower frequency cut. Default:
    /// 250e-9.
    pub t_read: f64,
    /// Time between programming and the first read in seconds (≥ `t_read`), the drift's
    /// reference time. Default: 20.
    pub t_0: f64,
}

impl Default for PcmNoiseModel {
    fn default() -> Self {
        Self {
            g_max: 25.0,
            g_min: 0.0,
            prog_coeff: [0.26348, 1.9650, -1.1731],
            prog_coeff_g_max_reference: 25.0,
            prog_noise_scale: 1.0,
            read_noise_scale: 1.0,
            drift_scale: 1.0,
            t_read: 250e-9,
            t_0: 20.0,
        }
    }
}

/// Largest accepted noise and drift scale: far beyond any device, and small enough that the
/// noise of a conductance stays finite in f32.
pub const MAX_SCALE: f32 = 1e3;

/// Longest accepted read time after programming, in seconds (about 30 000 years).
pub const MAX_T_INFERENCE: f64 = 1e12;

impl PcmNoiseModel {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &'static str| move || path(prefix, f);
        ConfigError::check_positive(p("g_max"), self.g_max.into())?;
        ConfigError::check_non_negative(p("g_min"), self.g_min.into())?;
        if self.g_min >= self.g_max {
            return Err(ConfigError::BoundsOrder {
                min_field: path(prefix, "g_min"),
                min: self.g_min.into(),
                max_field: path(prefix, "g_max"),
                max: self.g_max.into(),
            });
        }
        for (i, &c) in self.prog_coeff.iter().enumerate() {
            if !c.is_finite() {
                return Err(ConfigError::Invalid {
                    field: path(prefix, "prog_coeff"),
                    reason: format!("coefficient {i} must be finite, got {c}"),
                });
            }
        }
        ConfigError::check_positive(p("prog_coeff_g_max_reference"), self.prog_coeff_g_max_reference.into())?;
        let scale = |f: &'static str, v: f32| ConfigError::check_range(p(f), v.into(), 0.0, MAX_SCALE.into());
        scale("prog_noise_scale", self.prog_noise_scale)?;
        scale("read_noise_scale", self.read_noise_scale)?;
        scale("drift_scale", self.drift_scale)?;
        ConfigError::check_positive(p("t_read"), self.t_read)?;
        // t₀ ≥ t_read keeps ln((t + t_read)/(2·t_read)) ≥ 0 for every t ≥ t₀.
        ConfigError::check_range(p("t_0"), self.t_0, self.t_read, f64::MAX)
    }

    /// The programming-noise standard deviation σ_P in µS at target conductance `g` (µS).
    pub fn prog_std(&self, g: f32) -> f32 {
        let [c0, c1, c2] = self.prog_coeff;
        let r = g / self.g_max;
        (c0 + c1 * r + c2 * r * r) * self.g_max / self.prog_coeff_g_max_reference
    }

    /// Mean and standard deviation (μ_ν, σ_ν) of the drift exponent at target conductance `g`
    /// (µS), before `drift_scale`.
    pub fn nu_params(&self, g: f32) -> (f32, f32) {
        let ln_r = (g / self.g_max).max(1e-7).ln();
        ((-0.0155 * ln_r + 0.0244).clamp(0.049, 0.1), (-0.0125 * ln_r - 0.0059).clamp(0.008, 0.045))
    }

    /// Q_s, the 1/f read-noise amplitude at programmed conductance `g` (µS).
    pub fn read_noise_q(&self, g: f32) -> f32 {
        (0.0088 / (g.abs() / self.g_max).powf(0.65).max(1e-3)).min(0.2)
    }

    /// The read-noise factor √ln((t + t_read)/(2·t_read)) at `t_inference` seconds after
    /// programming (t = t_inference + t₀).
    pub fn read_noise_time_factor(&self, t_inference: f64) -> f32 {
        let t = t_inference + self.t_0;
        ((t + self.t_read) / (2.0 * self.t_read)).ln().max(0.0).sqrt() as f32
    }

    /// The drift factor (t/t₀)^(−ν) at `t_inference` seconds after programming; 1 at 0.
    pub fn drift_factor(&self, t_inference: f64, nu: f32) -> f32 {
        if t_inference > 0.0 { ((t_inference + self.t_0) / self.t_0).powf(-f64::from(nu)) as f32 } else { 1.0 }
    }
}

/// The programmed devices of one tile: a (g⁺, g⁻) pair per weight with its drift exponents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcmDevices {
    /// s, conductance (µS) per unit of stored weight.
    pub scale: f32,
    /// Target conductances g⁺_T (µS), `[out, in]`.
    pub target_plus: Array2<f32>,
    /// Target conductances g⁻_T (µS).
    pub target_minus: Array2<f32>,
    /// Programmed conductances g⁺_P (µS).
    pub plus: Array2<f32>,
    /// Programmed conductances g⁻_P (µS).
    pub minus: Array2<f32>,
    /// Drift exponents ν of the g⁺ devices.
    pub nu_plus: Array2<f32>,
    /// Drift exponents ν of the g⁻ devices.
    pub nu_minus: Array2<f32>,
}

impl PcmDevices {
    /// Programs the stored weights `w` (`[out, in]`): target conductances, programming noise
    /// and drift exponents, drawn from `rng` in a fixed order (g⁺ devices row by row, then
    /// g⁻, then their ν), so a seed gives the same chip whatever the thread count.
    pub fn program(model: &PcmNoiseModel, w: ArrayView2<'_, f32>, rng: &mut SimRng) -> Self {
        let w = w.as_standard_layout();
        let range = model.g_max - model.g_min;
        let w_max = w.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-7);
        let scale = range / w_max;
        let target = |sign: f32| w.mapv(|v| (sign * scale * v).clamp(0.0, model.g_max) + model.g_min);
        let (target_plus, target_minus) = (target(1.0), target(-1.0));
        let mut programmed = |t: &Array2<f32>| {
            t.mapv(|g| (g + model.prog_noise_scale * model.prog_std(g) * standard_normal(rng)).max(0.0))
        };
        let (plus, minus) = (programmed(&target_plus), programmed(&target_minus));
        let mut nu = |t: &Array2<f32>| {
            t.mapv(|g| {
                let (mu, sigma) = model.nu_params(g);
                (mu + sigma * standard_normal(rng)).abs() * model.drift_scale
            })
        };
        let (nu_plus, nu_minus) = (nu(&target_plus), nu(&target_minus));
        Self { scale, target_plus, target_minus, plus, minus, nu_plus, nu_minus }
    }

    /// The weights read `t_inference` seconds (≥ 0) after programming: drift and fresh read
    /// noise on every device (g⁺ devices row by row, then g⁻), written into `w` (`[out, in]`).
    pub fn read(&self, model: &PcmNoiseModel, t_inference: f64, rng: &mut SimRng, w: &mut Array2<f32>) {
        let time = model.read_noise_time_factor(t_inference);
        let mut read = |g: &Array2<f32>, nu: &Array2<f32>| {
            let mut out = Array2::zeros(g.dim());
            Zip::from(&mut out).and(g).and(nu).for_each(|o, &g, &nu| {
                let gd = g * model.drift_factor(t_inference, nu);
                let sigma = model.read_noise_scale * model.read_noise_q(g) * time;
                *o = (gd + gd.abs() * sigma * standard_normal(rng)).max(0.0);
            });
            out
        };
        let (plus, minus) = (read(&self.plus, &self.nu_plus), read(&self.minus, &self.nu_minus));
        Zip::from(w).and(&plus).and(&minus).for_each(|w, &p, &m| *w = (p - m) / self.scale);
    }

    /// The programmed weights (g⁺_P − g⁻_P)/s, without drift or read noise.
    pub fn programmed_weights(&self) -> Array2<f32> {
        Zip::from(&self.plus).and(&self.minus).map_collect(|&p, &m| (p - m) / self.scale)
    }

    /// Checks a restored state against the tile's stored-weight shape `[out, in]`.
    pub(crate) fn check(&self, shape: [usize; 2]) -> Result<(), String> {
        let arrays = [
            ("target_plus", &self.target_plus),
            ("target_minus", &self.target_minus),
            ("plus", &self.plus),
            ("minus", &self.minus),
            ("nu_plus", &self.nu_plus),
            ("nu_minus", &self.nu_minus),
        ];
        for (name, a) in arrays {
            if a.shape() != shape {
                return Err(format!("PCM {name} has shape {:?}, the tile {shape:?}", a.shape()));
            }
            if let Some(v) = a.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(format!("PCM {name} holds {v} (conductances and exponents are finite and >= 0)"));
            }
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!("PCM conductance scale {} is not finite and > 0", self.scale));
        }
        Ok(())
    }

    /// The same devices with every array in standard layout.
    pub(crate) fn into_standard_layout(self) -> Self {
        let s = crate::linalg::standard_layout;
        Self {
            scale: self.scale,
            target_plus: s(self.target_plus),
            target_minus: s(self.target_minus),
            plus: s(self.plus),
            minus: s(self.minus),
            nu_plus: s(self.nu_plus),
            nu_minus: s(self.nu_minus),
        }
    }
}
