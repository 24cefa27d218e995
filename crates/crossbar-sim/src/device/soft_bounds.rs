//! Soft bounds: the step is proportional to the distance to the device's own bound,
//! Δ⁺ = s⁺(1 − g/b_max,ij), Δ⁻ = s⁻(1 − g/b_min,ij) (aihwkit `SoftBoundsDevice`: a linear
//! step with γ = 1, no slope spread and device-own bound references).
//!
//! With a reference (aihwkit `SoftBoundsReferenceDevice`) the weight is a differential read
//! w = g − r_ij of the conductance g against a fixed reference r_ij = `reference_mean` +
//! `reference_std`·ξ, plus, with `subtract_symmetry_point`, the device's symmetry point
//! g* = (s⁺ − s⁻)/(s⁺/b_max − s⁻/b_min) (where up and down steps are equal), so that zero-mean
//! pulse sequences drive w to (about) −`reference_mean` instead of g*. The steps follow g; the
//! bounds apply to g, i.e. w ∈ [b_min − r, b_max − r]. `slope_up_dtod` and `slope_down_dtod`
//! spread the slopes s⁺/b_max and s⁻/|b_min| from device to device (moving the bounds).

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::common::PulsedParams;
use super::linear_step::LinearStep;
use super::model::{DeviceArrays, DeviceModel, DeviceRow};
use crate::error::{ConfigError, path};
use crate::rng::SimRng;

/// Names of the extra hidden arrays of a referenced device: the reference r and the bounds of
/// the conductance.
const REFERENCE: &str = "reference";
const B_MIN: &str = "b_min";
const B_MAX: &str = "b_max";

/// Soft-bounds device parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftBounds {
    /// Common parameters. The bounds must straddle 0 (w_min < 0 < w_max).
    pub params: PulsedParams,
    /// Multiplicative cycle-to-cycle noise (else additive). Default: true, as aihwkit's
    /// `SoftBoundsDevice`, also with a reference on, where aihwkit's
    /// `SoftBoundsReferenceDevice` defaults to additive noise (see [`SoftBounds::with_reference`]).
    pub mult_noise: bool,
    /// Device-to-device spread of the up slope s⁺/b_max (b_max = s⁺/slope). ≥ 0. Default: 0.
    pub slope_up_dtod: f32,
    /// Device-to-device spread of the down slope s⁻/|b_min|. ≥ 0. Default: 0.
    pub slope_down_dtod: f32,
    /// Mean of the reference conductance subtracted from each device. Finite. Default: 0.
    pub reference_mean: f32,
    /// Device-to-device spread of the reference. ≥ 0. Default: 0.
    pub reference_std: f32,
    /// Add each device's symmetry point to its reference. Default: false.
    pub subtract_symmetry_point: bool,
}

impl Default for SoftBounds {
    fn default() -> Self {
        Self {
            params: PulsedParams::default(),
            mult_noise: true,
            slope_up_dtod: 0.0,
            slope_down_dtod: 0.0,
            reference_mean: 0.0,
            reference_std: 0.0,
            subtract_symmetry_point: false,
        }
    }
}

impl SoftBounds {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &'static str| move || path(prefix, f);
        self.params.validate(&path(prefix, "params"))?;
        if !(self.params.w_min < 0.0 && self.params.w_max > 0.0) {
            return Err(ConfigError::Invalid {
                field: path(prefix, "params.w_min"),
                reason: format!(
                    "soft bounds need w_min < 0 < w_max, got w_min = {}, w_max = {}",
                    self.params.w_min, self.params.w_max
                ),
            });
        }
        ConfigError::check_non_negative(p("slope_up_dtod"), self.slope_up_dtod.into())?;
        ConfigError::check_non_negative(p("slope_down_dtod"), self.slope_down_dtod.into())?;
        ConfigError::check_range(p("reference_mean"), self.reference_mean.into(), f32::MIN.into(), f32::MAX.into())?;
        ConfigError::check_non_negative(p("reference_std"), self.reference_std.into())?;
        Ok(())
    }

    /// aihwkit's `SoftBoundsReferenceDevice` with its defaults: a reference conductance
    /// `reference_mean` + `reference_std`·ξ per device and additive cycle-to-cycle noise
    /// (`mult_noise` false), the other fields as [`SoftBounds::default`].
    ///
    /// ```
    /// use crossbar_sim::device::SoftBounds;
    ///
    /// let d = SoftBounds::with_reference(0.1, 0.02);
    /// assert!(d.referenced() && !d.mult_noise);
    /// ```
    pub fn with_reference(reference_mean: f32, reference_std: f32) -> Self {
        Self { mult_noise: false, reference_mean, reference_std, ..Self::default() }
    }

    /// Whether the weight is read against a reference.
    pub fn referenced(&self) -> bool {
        self.reference_mean != 0.0 || self.reference_std > 0.0 || self.subtract_symmetry_point
    }

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
        let mut a = self.params.draw(rows, cols, rng);
        // (Nothing more is drawn with the options off, so plain soft bounds keep their draws.)
        if self.slope_up_dtod > 0.0 || self.slope_down_dtod > 0.0 {
            let devices = a.w_min.iter_mut().zip(a.w_max.iter_mut()).zip(a.step_up.iter().zip(&a.step_down));
            for ((lo, hi), (&su, &sd)) in devices {
                let (xi_down, xi_up): (f32, f32) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
                if *hi > 0.0 && *lo < 0.0 {
                    let down = -sd / *lo * (1.0 + self.slope_down_dtod * xi_down).abs();
                    let up = su / *hi * (1.0 + self.slope_up_dtod * xi_up).abs();
                    (*hi, *lo) = (su / up, -sd / down);
                }
            }
        }
        if self.referenced() {
            let mut r = Array2::from_elem((rows, cols), self.reference_mean);
            if self.reference_std > 0.0 {
                r.mapv_inplace(|m| m + self.reference_std * rng.sample::<f32, _>(StandardNormal));
            }
            if self.subtract_symmetry_point {
                ndarray::Zip::from(&mut r).and(&a.step_up).and(&a.step_down).and(&a.w_min).and(&a.w_max).for_each(
                    |r, &su, &sd, &lo, &hi| {
                        if hi > 0.0 && lo < 0.0 {
                            *r += (su - sd) / (su / hi - sd / lo);
                        }
                    },
                );
            }
            // The conductance bounds stay as extras; the bounds of the weight w = g − r move.
            let (b_min, b_max) = (a.w_min.clone(), a.w_max.clone());
            a.w_min -= &r;
            a.w_max -= &r;
            a.extra = vec![(REFERENCE.into(), r), (B_MIN.into(), b_min), (B_MAX.into(), b_max)];
        }
        a
    }
    fn granularity(&self) -> f32 {
        self.params.dw_min
    }
    fn apply_row(&self, hidden: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let lin = self.as_linear();
        if self.referenced() {
            let reference = hidden.extra_row(REFERENCE, r.row);
            let (b_min, b_max) = (hidden.extra_row(B_MIN, r.row), hidden.extra_row(B_MAX, r.row));
            for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
                if n != 0 {
                    // The pulses act on the conductance g = w + r.
                    let (lo, hi) = (b_min[j], b_max[j]);
                    let mut g = *wj + reference[j];
                    lin.pulse(&mut g, n, r.step_up[j], r.step_down[j], 1.0, 1.0, hi, lo, lo, hi, rng);
                    *wj = g - reference[j];
                }
            }
            return;
        }
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            if n != 0 {
                let (lo, hi) = (r.w_min[j], r.w_max[j]);
                lin.pulse(wj, n, r.step_up[j], r.step_down[j], 1.0, 1.0, hi, lo, lo, hi, rng);
            }
        }
    }
}
