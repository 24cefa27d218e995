//! Tiles: the [`Tile`] trait with its two implementations, the exact [`FloatTile`] and the
//! [`AnalogTile`] with periphery non-idealities and a pulsed device update.

mod analog;
mod config;
mod float;
mod inference;
mod merged;
mod transfer;

pub use analog::{AnalogTile, AnalogTileState};
pub use config::{PRESETS, TileConfig};
pub use float::FloatTile;
pub use inference::{DriftCompensation, InferenceConfig, InferenceTile, ModifierKind, WeightModifier};
pub use transfer::{Choppers, TransferState};

use std::fmt;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::cycles::CycleCounters;
use crate::error::{SimError, check_shape};

/// A crossbar tile holding W of shape `out × in`. All operations are batched: rows of the
/// arguments are vectors, and each vector costs one constant-time cycle on the hardware.
///
/// # Shapes
/// - forward: `x` `[batch, in]` → `y` `[batch, out]`, y_b = W·x_b
/// - backward: `d` `[batch, out]` → `z` `[batch, in]`, z_b = Wᵀ·d_b
/// - update: `x` `[batch, in]`, `d` `[batch, out]`: W ← W − lr·Σ_b d_b·x_bᵀ, realized as one
///   rank-1 update per vector pair, in batch order
pub trait Tile: Send + fmt::Debug {
    /// Number of outputs (rows of W).
    fn out_size(&self) -> usize;
    /// Number of inputs (columns of W).
    fn in_size(&self) -> usize;
    /// Forward MVMs of a batch, written into `y`.
    ///
    /// Inputs are not checked for finiteness (that would cost a pass over every batch); a NaN
    /// element makes every output of its vector NaN, and so does an infinite one on a float
    /// tile or where it sets an analog tile's noise-management scale; elsewhere an analog DAC
    /// saturates it like any value beyond its bound (`docs/io.md`, zero-vector rule). The other
    /// vectors of the batch are unaffected.
    fn forward(&mut self, x: ArrayView2<'_, f32>, y: ArrayViewMut2<'_, f32>) -> Result<(), SimError>;
    /// Backward (transposed) MVMs of a batch, written into `z`; non-finite elements of `d`
    /// behave as in [`forward`](Tile::forward).
    fn backward(&mut self, d: ArrayView2<'_, f32>, z: ArrayViewMut2<'_, f32>) -> Result<(), SimError>;
    /// Update W ← W − lr·dᵀ·x with `lr ≥ 0`; a NaN or infinite element of `x` or `d` is a
    /// [`SimError::InvalidArgument`] naming it (the weights are then left unchanged).
    fn update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) -> Result<(), SimError>;
    /// [`update`](Tile::update) for a caller that has made sure every element of `x` and `d`
    /// is finite, for example a conv layer that checked the input its patch matrix was gathered
    /// from (tens of times smaller than the patch matrix): the float and inference tiles then
    /// skip their own pass over `x` and `d`, which runs at memory speed and cost 5–10 % of the
    /// paper's network's float training (`docs/performance.md`). A non-finite element passed
    /// here anyway is the caller's bug: those tiles' weights turn non-finite instead of the
    /// update being refused. Default (the analog tile, whose check is a small part of a pulsed
    /// update): [`update`](Tile::update).
    fn update_finite_inputs(
        &mut self,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
    ) -> Result<(), SimError> {
        self.update(x, d, lr)
    }
    /// The effective weights W (`[out, in]`) the tile computes with: the stored conductance
    /// weights times the digital output scales of an active weight mapping
    /// ([`MappingConfig`](crate::MappingConfig)), else the stored weights themselves; with a
    /// digital bias the last column is that bias.
    fn weights(&self) -> ArrayView2<'_, f32>;
    /// Programs the weights (an analog tile with a weight mapping first chooses its output scales
    /// from `w`, then clips the stored weights to each device's bounds; a digital bias column
    /// is kept as given).
    fn set_weights(&mut self, w: ArrayView2<'_, f32>) -> Result<(), SimError>;
    /// Training or evaluation mode, for tiles whose passes differ between the two (the weight
    /// modifier of an [`InferenceTile`]); the default ignores it.
    fn set_training(&mut self, _training: bool) {}
    /// Operation counters since construction or the last reset.
    fn counters(&self) -> CycleCounters;
    /// Sets all counters to zero.
    fn reset_counters(&mut self);
    /// The full state, for checkpoints (restores bit-exactly with [`TileSnapshot::restore`]).
    fn snapshot(&self) -> TileSnapshot;

    /// Forward into a new array.
    fn forward_new(&mut self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, SimError> {
        let mut y = Array2::zeros((x.nrows(), self.out_size()));
        self.forward(x, y.view_mut())?;
        Ok(y)
    }

    /// Backward into a new array.
    fn backward_new(&mut self, d: ArrayView2<'_, f32>) -> Result<Array2<f32>, SimError> {
        let mut z = Array2::zeros((d.nrows(), self.in_size()));
        self.backward(d, z.view_mut())?;
        Ok(z)
    }
}

/// The serializable state of any built-in tile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TileSnapshot {
    /// A [`FloatTile`].
    Float(FloatTile),
    /// An [`AnalogTile`] with a built-in device model.
    Analog(Box<AnalogTileState>),
    /// An [`InferenceTile`].
    Inference(Box<InferenceTile>),
}

impl TileSnapshot {
    /// Rebuilds the tile. Analog tiles with a user-defined device model cannot be rebuilt from
    /// the name alone: restore those with [`AnalogTile::from_state_with_device`].
    pub fn restore(self) -> Result<Box<dyn Tile>, SimError> {
        match self {
            TileSnapshot::Float(t) => Ok(Box::new(t)),
            TileSnapshot::Analog(s) => Ok(Box::new(AnalogTile::from_state(*s)?)),
            TileSnapshot::Inference(t) => Ok(Box::new((*t).check_restored()?)),
        }
    }
}

// Fails to compile if the trait stops being object safe.
const _: fn(&dyn Tile) = |_| {};

/// Shape checks shared by the implementations.
pub(crate) fn check_io(
    op: &'static str,
    a_name: &'static str,
    a: [usize; 2],
    a_cols: usize,
    b_name: &'static str,
    b: [usize; 2],
    b_cols: usize,
) -> Result<(), SimError> {
    check_shape(op, a_name, &a, [a[0], a_cols])?;
    check_shape(op, b_name, &b, [a[0], b_cols])
}

/// Whether every value of `s` is finite, in one branch-free pass that the compiler vectorizes
/// (even for the baseline SSE2): a value is NaN or infinite exactly when its exponent bits are
/// all ones, and the flags are OR-ed. For callers that vouch for a tile's arguments
/// ([`Tile::update_finite_inputs`]).
pub fn all_finite(s: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    s.iter().fold(0u32, |any, v| any | u32::from(v.to_bits() & EXP == EXP)) == 0
}

/// Checks that every element of an update argument is finite: a NaN or infinite `x` or `d`
/// would otherwise vanish silently in a pulsed update (its pulse counts saturate) or poison
/// every weight of its row and column.
pub(crate) fn check_finite(op: &'static str, name: &'static str, a: ArrayView2<'_, f32>) -> Result<(), SimError> {
    // The common case, all finite, in one pass ([`all_finite`]); the slow search below only
    // finds the value to name. (A plain early-exit search runs about one element per cycle, as
    // long as the float tile's whole update GEMM of conv1.)
    if a.as_slice_memory_order().is_some_and(all_finite) {
        return Ok(());
    }
    match a.iter().find(|v| !v.is_finite()) {
        None => Ok(()),
        Some(&v) => {
            Err(SimError::InvalidArgument { op, name, value: v.into(), reason: "every element must be finite" })
        }
    }
}

/// Adds a digital bias after the ADC: `y[b] += bias · x_last[b]` (the last input column of each
/// vector, normally the constant 1).
pub(crate) fn add_digital_bias(mut y: ArrayViewMut2<'_, f32>, x_last: ndarray::ArrayView1<'_, f32>, bias: &[f32]) {
    let bias = ndarray::ArrayView1::from(bias);
    for (mut yr, &xl) in y.rows_mut().into_iter().zip(x_last) {
        yr.zip_mut_with(&bias, |y, &b| *y += b * xl);
    }
}

/// Checks a learning rate.
pub(crate) fn check_lr(op: &'static str, lr: f32) -> Result<(), SimError> {
    check_non_negative(op, "lr", lr)
}

/// Checks that a scalar argument is finite and ≥ 0.
pub(crate) fn check_non_negative(op: &'static str, name: &'static str, v: f32) -> Result<(), SimError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(SimError::InvalidArgument { op, name, value: v.into(), reason: "must be finite and >= 0" })
    }
}
