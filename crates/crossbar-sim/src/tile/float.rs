//! The exact floating-point tile: the digital reference of every analog result.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use super::{Tile, check_finite, check_io, check_lr};
use crate::cycles::CycleCounters;
use crate::error::{SimError, check_shape};
use crate::linalg::sgemm;

/// A tile computing exact f32 math: y = W·x, z = Wᵀ·d, W ← W − lr·dᵀ·x (one GEMM each).
/// It counts cycles like an analog tile, so timing analyses work with either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatTile {
    w: Array2<f32>,
    counters: CycleCounters,
}

impl FloatTile {
    /// A tile of `out × in` zeros.
    pub fn new(out_size: usize, in_size: usize) -> Self {
        Self { w: Array2::zeros((out_size, in_size)), counters: CycleCounters::default() }
    }

    /// A tile holding `w` (`[out, in]`).
    pub fn from_weights(w: Array2<f32>) -> Self {
        Self { w, counters: CycleCounters::default() }
    }

    /// W ← W − lr·dᵀ·x after checking the shapes and lr, and with `check_values` that x and
    /// d are finite.
    fn apply_update(
        &mut self,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
        check_values: bool,
    ) -> Result<(), SimError> {
        check_io("FloatTile::update", "x", x.dim().into(), self.in_size(), "d", d.dim().into(), self.out_size())?;
        check_lr("FloatTile::update", lr)?;
        if check_values {
            check_finite("FloatTile::update", "x", x)?;
            check_finite("FloatTile::update", "d", d)?;
        }
        sgemm(-lr, d.t(), x, 1.0, &mut self.w.view_mut());
        self.counters.update_cycles += x.nrows() as u64;
        Ok(())
    }
}

impl Tile for FloatTile {
    fn out_size(&self) -> usize {
        self.w.nrows()
    }
    fn in_size(&self) -> usize {
        self.w.ncols()
    }
    fn forward(&mut self, x: ArrayView2<'_, f32>, mut y: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        check_io("FloatTile::forward", "x", x.dim().into(), self.in_size(), "y", y.dim().into(), self.out_size())?;
        sgemm(1.0, x, self.w.t(), 0.0, &mut y);
        let n = x.nrows() as u64;
        self.counters.forward_cycles += n;
        self.counters.forward_passes += n;
        Ok(())
    }
    fn backward(&mut self, d: ArrayView2<'_, f32>, mut z: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        check_io("FloatTile::backward", "d", d.dim().into(), self.out_size(), "z", z.dim().into(), self.in_size())?;
        sgemm(1.0, d, self.w.view(), 0.0, &mut z);
        let n = d.nrows() as u64;
        self.counters.backward_cycles += n;
        self.counters.backward_passes += n;
        Ok(())
    }
    fn update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) -> Result<(), SimError> {
        self.apply_update(x, d, lr, true)
    }
    fn update_finite_inputs(
        &mut self,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
    ) -> Result<(), SimError> {
        self.apply_update(x, d, lr, false)
    }
    fn weights(&self) -> ArrayView2<'_, f32> {
        self.w.view()
    }
    fn set_weights(&mut self, w: ArrayView2<'_, f32>) -> Result<(), SimError> {
        check_shape("FloatTile::set_weights", "w", w.shape(), [self.out_size(), self.in_size()])?;
        self.w.assign(&w);
        Ok(())
    }
    fn counters(&self) -> CycleCounters {
        self.counters
    }
    fn reset_counters(&mut self) {
        self.counters = CycleCounters::default();
    }
    fn snapshot(&self) -> super::TileSnapshot {
        super::TileSnapshot::Float(self.clone())
    }
}
