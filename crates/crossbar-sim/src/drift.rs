//! Power-law conductance drift (aihwkit `DriftParameter`, after Oh et al., 2019), applied on
//! request by [`AnalogTile::drift_weights`](crate::AnalogTile::drift_weights).
//!
//! Each call advances the tile's clock by Δt/t₀. A device whose weight changed by more than
//! `reset_tol` since the previous call (an update, decay, a reset) restarts its drift: its
//! reference weight w₀ becomes the current weight and its own clock t_ij the current time. Any
//! other device is set to
//!
//!   w = w₀·s + a·(s − 1), s = max(t − t_ij, 1)^(−ν),
//!
//! with ν = ν_ij (1 + `nu_std`·ξ) − ν_k·ln((w − w_off)/r_wg + g_off) + ν_k·ln G₀,
//! ν_ij = ν + `nu_dtod`·ν·ξ drawn once, and a = g_off·r_wg + w_off (0 when below `reset_tol`).
//! Then `w_noise_std`·ξ is added to every device, and the weights are clipped to the device
//! bounds; a NaN (a conductance ≤ 0 in the logarithm) becomes the upper bound, as aihwkit's
//! MIN/MAX clipping makes it. Keep (w − w_off)/r_wg + g_off > 0 over the weight range when
//! ν_k ≠ 0.
//!
//! `rapa train` never calls `drift_weights`: drift is for library users who model the time
//! between training steps or after training.

use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::device::DeviceArrays;
use crate::error::{ConfigError, path};
use crate::normal::standard_normal;
use crate::rng::stream;

/// Drift settings; off (`nu` = 0) by default, the other defaults are aihwkit's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// Mean drift exponent ν ≥ 0; 0 = no drift (aihwkit drifts only for ν > 0). Default: 0.
    pub nu: f32,
    /// Device-to-device spread: ν_ij = ν + nu_dtod·ν·ξ. Default: 0.
    pub nu_dtod: f32,
    /// Cycle-to-cycle spread of ν per call, relative to ν_ij. Default: 0.
    pub nu_std: f32,
    /// Time between programming and the first read, the unit of Δt (> 0). Default: 1.
    pub t_0: f32,
    /// A weight that changed by more than this since the last call restarts its drift.
    /// Default: 1e-7.
    pub reset_tol: f32,
    /// (w_max − w_min)/(g_max − g_min), to physical units (> 0). Default: 1.
    pub wg_ratio: f32,
    /// g_min, to physical units. Default: 0.
    pub g_offset: f32,
    /// w(g_min). Default: 0.
    pub w_offset: f32,
    /// Dependence of ν on the conductance, ν − ν_k·ln(G/G₀). Default: 0.
    pub nu_k: f32,
    /// ln G₀. Default: 0.
    pub log_g0: f32,
    /// Gaussian weight noise added after each drift step. Default: 0.
    pub w_noise_std: f32,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            nu: 0.0,
            nu_dtod: 0.0,
            nu_std: 0.0,
            t_0: 1.0,
            reset_tol: 1e-7,
            wg_ratio: 1.0,
            g_offset: 0.0,
            w_offset: 0.0,
            nu_k: 0.0,
            log_g0: 0.0,
            w_noise_std: 0.0,
        }
    }
}

impl DriftConfig {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &'static str| move || path(prefix, f);
        let finite =
            |f: &'static str, v: f32| ConfigError::check_range(p(f), v.into(), f32::MIN.into(), f32::MAX.into());
        ConfigError::check_non_negative(p("nu"), self.nu.into())?;
        ConfigError::check_non_negative(p("nu_dtod"), self.nu_dtod.into())?;
        ConfigError::check_non_negative(p("nu_std"), self.nu_std.into())?;
        ConfigError::check_positive(p("t_0"), self.t_0.into())?;
        ConfigError::check_non_negative(p("reset_tol"), self.reset_tol.into())?;
        ConfigError::check_positive(p("wg_ratio"), self.wg_ratio.into())?;
        finite("g_offset", self.g_offset)?;
        finite("w_offset", self.w_offset)?;
        finite("nu_k", self.nu_k)?;
        finite("log_g0", self.log_g0)?;
        ConfigError::check_non_negative(p("w_noise_std"), self.w_noise_std.into())
    }

    /// Whether drift is on.
    pub fn drifts(&self) -> bool {
        self.nu > 0.0
    }

    /// Whether a drift step draws random numbers (`nu_std` or `w_noise_std` > 0).
    pub(crate) fn draws(&self) -> bool {
        self.nu_std > 0.0 || self.w_noise_std > 0.0
    }

    /// Draws ν_ij for a `rows × cols` tile (empty when drift is off).
    pub(crate) fn draw_nu(&self, rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        if !self.drifts() {
            return Array2::zeros((0, 0));
        }
        let mut rng = stream(seed, 0);
        Array2::from_shape_simple_fn((rows, cols), || self.nu + self.nu_dtod * self.nu * standard_normal(&mut rng))
    }
}

/// The drift state of a tile: the drawn exponents and, after the first call, the clock, each
/// device's reference weight and start time, and the weights the last call left.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DriftState {
    /// ν_ij (`0 × 0` when drift is off).
    pub nu: Array2<f32>,
    /// The tile's clock, in units of t₀.
    pub time: f32,
    /// Each device's drift start time (`0 × 0` before the first call).
    pub start: Array2<f32>,
    /// Each device's weight at its drift start.
    pub w0: Array2<f32>,
    /// The weights after the last call.
    pub previous: Array2<f32>,
}

impl DriftState {
    /// The same state with its arrays in standard layout.
    pub(crate) fn into_standard_layout(self) -> Self {
        let s = crate::linalg::standard_layout;
        Self { nu: s(self.nu), time: self.time, start: s(self.start), w0: s(self.w0), previous: s(self.previous) }
    }

    /// Checks a restored state against the configuration and the tile's shape.
    pub(crate) fn check(&self, cfg: &DriftConfig, shape: [usize; 2]) -> Result<(), String> {
        let want = if cfg.drifts() { shape } else { [0, 0] };
        if self.nu.shape() != want {
            return Err(format!("drift exponents of shape {:?}, expected {want:?}", self.nu.shape()));
        }
        let started = !self.start.is_empty();
        for (name, a) in [("start", &self.start), ("w0", &self.w0), ("previous", &self.previous)] {
            let want = if started { want } else { [0, 0] };
            if a.shape() != want {
                return Err(format!("drift array {name} of shape {:?}, expected {want:?}", a.shape()));
            }
        }
        let arrays = [&self.nu, &self.start, &self.w0, &self.previous];
        if !self.time.is_finite() || arrays.iter().any(|a| a.iter().any(|v| !v.is_finite())) {
            return Err("drift values must be finite".into());
        }
        Ok(())
    }

    /// One drift step of Δt = `dt` on `w` (see the module docs); row i draws from stream i of
    /// `seed`: per drifting device one normal for `nu_std` (when > 0), then per device one for
    /// `w_noise_std` (when > 0).
    pub(crate) fn apply(&mut self, cfg: &DriftConfig, w: &mut Array2<f32>, hidden: &DeviceArrays, dt: f32, seed: u64) {
        if self.start.is_empty() {
            self.start = Array2::zeros(w.dim());
            self.w0 = w.clone();
            self.previous = w.clone();
            self.time = 0.0;
        }
        self.time += dt / cfg.t_0;
        let now = self.time;
        let mut a = cfg.g_offset * cfg.wg_ratio + cfg.w_offset;
        if a.abs() < cfg.reset_tol {
            a = 0.0;
        }
        let cols = w.ncols();
        let w = w.as_slice_mut().expect("tile weights are in standard layout");
        let nu_ij = self.nu.as_slice().expect("standard layout");
        let (lo, hi) = (hidden.w_min.as_slice().expect("standard layout"), hidden.w_max.as_slice().expect("layout"));
        let start = self.start.as_slice_mut().expect("standard layout");
        let w0 = self.w0.as_slice_mut().expect("standard layout");
        let prev = self.previous.as_slice_mut().expect("standard layout");
        w.par_chunks_mut(cols)
            .zip(start.par_chunks_mut(cols))
            .zip(w0.par_chunks_mut(cols))
            .zip(prev.par_chunks_mut(cols))
            .enumerate()
            .for_each(|(i, (((w, start), w0), prev))| {
                let mut rng = stream(seed, i as u64);
                for j in 0..w.len() {
                    let k = i * cols + j;
                    let mut v = w[j];
                    if (prev[j] - v).abs() > cfg.reset_tol {
                        start[j] = now;
                        w0[j] = v;
                    } else {
                        let mut nu = nu_ij[k];
                        if cfg.nu_std > 0.0 {
                            nu += cfg.nu_std * nu * standard_normal(&mut rng);
                        }
                        if cfg.nu_k != 0.0 {
                            let g = (v - cfg.w_offset) / cfg.wg_ratio + cfg.g_offset;
                            nu = nu - cfg.nu_k * g.ln() + cfg.nu_k * cfg.log_g0;
                        }
                        let s = (now - start[j]).max(1.0).powf(-nu);
                        v = w0[j] * s;
                        if a != 0.0 {
                            v += a * (s - 1.0);
                        }
                    }
                    if cfg.w_noise_std > 0.0 {
                        v += cfg.w_noise_std * standard_normal(&mut rng);
                    }
                    // aihwkit clips both the weights and the remembered ones to the bounds; its
                    // MIN/MAX turn a NaN into the upper bound.
                    v = if v.is_nan() { hi[k] } else { v.clamp(lo[k], hi[k]) };
                    prev[j] = v;
                    w[j] = v;
                }
            });
    }
}
