//! The device-model trait and the hidden per-device parameters it draws.

use std::fmt;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::rng::SimRng;

/// Hidden per-device parameters of a tile, drawn once at construction (device-to-device
/// variation) and kept in the tile's state. All arrays have the tile's shape `[out, in]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceArrays {
    /// Step of one up pulse, s⁺_ij.
    pub step_up: Array2<f32>,
    /// Step of one down pulse, s⁻_ij (positive: the weight decreases by it).
    pub step_down: Array2<f32>,
    /// Lower hard bound b_min,ij.
    pub w_min: Array2<f32>,
    /// Upper hard bound b_max,ij.
    pub w_max: Array2<f32>,
    /// Model-specific arrays (e.g. `gamma_up`), by name, in a fixed order.
    pub extra: Vec<(String, Array2<f32>)>,
}

impl DeviceArrays {
    /// Parameters of an ideal, unbounded device (steps 0, bounds ±∞).
    pub fn unbounded(rows: usize, cols: usize) -> Self {
        Self {
            step_up: Array2::zeros((rows, cols)),
            step_down: Array2::zeros((rows, cols)),
            w_min: Array2::from_elem((rows, cols), f32::NEG_INFINITY),
            w_max: Array2::from_elem((rows, cols), f32::INFINITY),
            extra: Vec::new(),
        }
    }

    /// The extra array called `name`.
    pub fn extra(&self, name: &str) -> Option<&Array2<f32>> {
        self.extra.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// Shape `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.step_up.nrows(), self.step_up.ncols()]
    }
}

/// One row of [`DeviceArrays`], as slices (what [`DeviceModel::apply_row`] works on).
#[derive(Debug, Clone, Copy)]
pub struct DeviceRow<'a> {
    /// s⁺ of the row.
    pub step_up: &'a [f32],
    /// s⁻ of the row.
    pub step_down: &'a [f32],
    /// b_min of the row.
    pub w_min: &'a [f32],
    /// b_max of the row.
    pub w_max: &'a [f32],
    /// Index of the row in the tile.
    pub row: usize,
}

/// The response of a device to pulses. Implementations are stateless descriptions (their
/// per-device randomness lives in [`DeviceArrays`]), so one model is shared by all rows and
/// threads of a tile.
///
/// Contract: [`apply_row`](Self::apply_row) applies `|counts[j]|` pulses to `w[j]`, up when
/// `counts[j] > 0` and down when `< 0`, one at a time with cycle-to-cycle noise, and clips the
/// weight to `[w_min, w_max]` of that device after every pulse. The RNG is the row's own stream.
pub trait DeviceModel: Send + Sync + fmt::Debug {
    /// A short name, stored in saved tile states (e.g. `constant-step`).
    fn name(&self) -> &str;

    /// Draws the hidden parameters of a `rows × cols` tile.
    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays;

    /// Weight granularity ε: the typical size of one pulse's step, used by update management.
    fn granularity(&self) -> f32;

    /// True for a device that takes exact float updates instead of pulses.
    fn is_ideal(&self) -> bool {
        false
    }

    /// `Some(σ)` when a pulse's step does not depend on the weight and is the device's nominal
    /// step (`step_up` / `step_down` of [`DeviceArrays`]) times (1 + σ·ξ), ξ ~ N(0, 1), with
    /// clipping to `[w_min, w_max]` after each pulse — then n pulses of one sign sum to s·(n + σ·√n·ξ)
    /// exactly, and a tile may apply all pulses of an update call at once while no bound can
    /// be reached ([`UpdateConfig::merge_pulses`](crate::update_config::UpdateConfig)).
    /// Default: `None` (always pulse by pulse).
    fn merged_c2c(&self) -> Option<f32> {
        None
    }

    /// Applies signed pulse counts to one row of weights (see the trait docs).
    fn apply_row(&self, hidden: &DeviceArrays, row: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng);
}

// Fails to compile if the trait stops being object safe.
const _: fn(&dyn DeviceModel) = |_| {};

impl DeviceArrays {
    /// Slices of row `i`.
    pub fn row(&self, i: usize) -> DeviceRow<'_> {
        fn s(a: &Array2<f32>, i: usize) -> &[f32] {
            let n = a.ncols();
            &a.as_slice().expect("device arrays are in standard layout")[i * n..(i + 1) * n]
        }
        let s = |a| s(a, i);
        DeviceRow {
            step_up: s(&self.step_up),
            step_down: s(&self.step_down),
            w_min: s(&self.w_min),
            w_max: s(&self.w_max),
            row: i,
        }
    }

    /// Row `i` of the extra array `name` (empty slice if absent).
    pub fn extra_row(&self, name: &str, i: usize) -> &[f32] {
        self.extra(name).and_then(|a| a.row(i).to_slice()).unwrap_or(&[])
    }

    /// Clips `w` (shape `[out, in]`) to the per-device bounds.
    pub fn clip(&self, w: &mut Array2<f32>) {
        ndarray::Zip::from(w).and(&self.w_min).and(&self.w_max).for_each(|w, &lo, &hi| *w = w.clamp(lo, hi));
    }
}

/// The ideal device: exact float updates, no bounds (aihwkit `IdealDevice`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ideal;

impl DeviceModel for Ideal {
    fn name(&self) -> &str {
        "ideal"
    }
    fn draw(&self, rows: usize, cols: usize, _rng: &mut SimRng) -> DeviceArrays {
        DeviceArrays::unbounded(rows, cols)
    }
    fn granularity(&self) -> f32 {
        1e-3
    }
    fn is_ideal(&self) -> bool {
        true
    }
    fn apply_row(&self, _: &DeviceArrays, _: DeviceRow<'_>, _: &mut [f32], _: &[i32], _: &mut SimRng) {}
}
