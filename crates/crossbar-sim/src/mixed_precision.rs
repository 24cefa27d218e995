//! Mixed-precision update (aihwkit `MixedPrecisionCompound`, after Nandakumar et al., Front.
//! Neurosci. 2020): the outer products of the update are accumulated in a digital
//! full-precision matrix χ, and only whole device steps are written to the analog array.
//!
//! Each update call adds lr·Σ_b d_b·x_bᵀ to χ (in the units of the stored weights, i.e. after
//! the weight mapping's 1/α, like the pulsed update it replaces); x and d may first be quantized
//! per vector to `n_x_bins`/`n_d_bins` levels. After every `transfer_every`-th call, the next
//! `rows_per_transfer` rows of χ (all by default) are transferred: per element
//! n = trunc(χ/ε) and χ ← χ − n·ε, where ε is the device's granularity (or `granularity`), and
//! row i gets a pulsed update with the integer vector n as input, the one-hot vector e_i as
//! error and learning rate ε·`transfer_lr`, with update and BL management on and
//! `um_grad_scale` 1 (so with the defaults BL = max|n| up to `desired_bl`, and each element
//! receives |n| pulses on average). The forward and backward passes see only the analog
//! weights. `docs/devices.md` has the derivation and the
//! differences from aihwkit.

use ndarray::ArrayViewMut2;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, path};
use crate::rng::SimRng;

/// Settings of the mixed-precision update. Off by default; the other defaults are aihwkit's
/// `MixedPrecisionCompound` ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixedPrecisionConfig {
    /// Accumulate updates digitally and transfer whole device steps. Default: false.
    pub enabled: bool,
    /// Transfer after every this many update calls (mini-batches). At least 1. Default: 1.
    pub transfer_every: u32,
    /// Rows of χ transferred per transfer, continuing where the last transfer stopped (cyclic);
    /// 0 = all rows. Default: 0 (aihwkit's −1).
    pub rows_per_transfer: u32,
    /// With `rows_per_transfer` below the row count: start each transfer at a uniformly drawn
    /// row instead of the next one. Default: false.
    pub random_row: bool,
    /// Granularity ε of a transfer step; 0 = the device model's granularity (dw_min for the
    /// step devices), else at least `f32::MIN_POSITIVE`. Default: 0.
    pub granularity: f32,
    /// Scale λ of the transfer: n·ε·λ is written for n whole steps taken from χ. Default: 1.
    pub transfer_lr: f32,
    /// Quantize each x vector before the outer product to the 2⌊n/2⌋ + 1 levels −h…h times
    /// max|x|/h, h = ⌊n/2⌋ (aihwkit's bin count); 0 = no quantization, else at least 2.
    /// Default: 0.
    pub n_x_bins: u32,
    /// As `n_x_bins`, for d. Default: 0.
    pub n_d_bins: u32,
    /// Stochastic rounding for the quantization of x. Default: true.
    pub stoc_round_x: bool,
    /// Stochastic rounding for the quantization of d. Default: true.
    pub stoc_round_d: bool,
}

impl Default for MixedPrecisionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            transfer_every: 1,
            rows_per_transfer: 0,
            random_row: false,
            granularity: 0.0,
            transfer_lr: 1.0,
            n_x_bins: 0,
            n_d_bins: 0,
            stoc_round_x: true,
            stoc_round_d: true,
        }
    }
}

impl MixedPrecisionConfig {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        ConfigError::check_range(
            || path(prefix, "transfer_every"),
            self.transfer_every.into(),
            1.0,
            f64::from(u32::MAX),
        )?;
        if self.granularity != 0.0 {
            // (A subnormal ε would overflow χ/ε.)
            ConfigError::check_range(
                || path(prefix, "granularity"),
                self.granularity.into(),
                f32::MIN_POSITIVE.into(),
                f32::MAX.into(),
            )?;
        }
        ConfigError::check_positive(|| path(prefix, "transfer_lr"), self.transfer_lr.into())?;
        for (name, bins) in [("n_x_bins", self.n_x_bins), ("n_d_bins", self.n_d_bins)] {
            if bins == 1 {
                return Err(ConfigError::OutOfRange {
                    field: path(prefix, name),
                    value: 1.0,
                    min: 2.0,
                    max: f64::from(u32::MAX),
                });
            }
        }
        Ok(())
    }
}

/// Quantizes each row of `m` in place to `n_bins` symmetric levels: with h = ⌊n_bins/2⌋ and
/// width w = max|row|/h (1 for an all-zero row), v ← clamp(rint(v/w + u), −h, h)·w, where u is
/// uniform in [−½, ½) with `stochastic` and 0 otherwise (`rint` rounds half to even, as
/// aihwkit's `rintf`). `n_bins` 0 leaves `m` as it is. The draws come from `rng` in row-major
/// order, one per element.
pub(crate) fn quantize_rows(mut m: ArrayViewMut2<'_, f32>, n_bins: u32, stochastic: bool, rng: &mut SimRng) {
    if n_bins == 0 {
        return;
    }
    let half = (n_bins / 2) as f32;
    for mut row in m.rows_mut() {
        let amax = row.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
        // (Tested after the division, as aihwkit does: a subnormal maximum can underflow.)
        let w = amax / half;
        let width = if w == 0.0 { 1.0 } else { w };
        for v in row.iter_mut() {
            let u = if stochastic { rng.random::<f32>() - 0.5 } else { 0.0 };
            *v = (*v / width + u).round_ties_even().clamp(-half, half) * width;
        }
    }
}

/// Takes the whole steps out of rows `rows` of χ: for each element n = trunc(χ/ε) and
/// χ ← χ − n·ε (aihwkit's order of operations). Returns n, one row per transferred row.
pub(crate) fn take_steps(chi: &mut ArrayViewMut2<'_, f32>, rows: &[usize], eps: f32) -> ndarray::Array2<f32> {
    let mut n = ndarray::Array2::zeros((rows.len(), chi.ncols()));
    for (k, &i) in rows.iter().enumerate() {
        for (c, nk) in chi.row_mut(i).iter_mut().zip(n.row_mut(k).iter_mut()) {
            let steps = (*c / eps).trunc();
            *nk = steps;
            *c -= steps * eps;
        }
    }
    n
}

/// The rows of one transfer: `count` consecutive rows (cyclic) from `start`.
pub(crate) fn transfer_rows(start: usize, count: usize, n_rows: usize) -> Vec<usize> {
    (0..count).map(|k| (start + k) % n_rows).collect()
}

/// One one-hot vector of length `size` per index: row k is e_{idx[k]}.
pub(crate) fn one_hot_rows(idx: &[usize], size: usize) -> ndarray::Array2<f32> {
    let mut one_hot = ndarray::Array2::zeros((idx.len(), size));
    for (k, &i) in idx.iter().enumerate() {
        one_hot[[k, i]] = 1.0;
    }
    one_hot
}
