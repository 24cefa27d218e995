//! Rectified linear unit.

use ndarray::{Array4, ArrayView4};
use rayon::prelude::*;

/// Elements per parallel work item (large enough that rayon's overhead is negligible).
const GRAIN: usize = 16 * 1024;

/// y = max(x, 0).
#[derive(Debug, Default, Clone)]
pub struct Relu {
    mask: Option<Array4<bool>>,
}

impl Relu {
    /// A new ReLU.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the input of the last forward pass was positive (`None` before a forward pass).
    pub fn last_mask(&self) -> Option<&Array4<bool>> {
        self.mask.as_ref()
    }

    /// Forward; keeps the sign mask.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Array4<f32> {
        let mut y = x.as_standard_layout().into_owned();
        self.forward_in_place(&mut y);
        y
    }

    /// Forward in place (x ← max(x, 0)); keeps the sign mask. Same result as
    /// [`forward`](Self::forward) without allocating the output.
    pub fn forward_in_place(&mut self, x: &mut Array4<f32>) {
        if !x.is_standard_layout() {
            *x = x.as_standard_layout().into_owned();
        }
        let mut mask = match self.mask.take() {
            Some(m) if m.shape() == x.shape() => m,
            _ => Array4::from_elem(x.raw_dim(), false),
        };
        let (xs, ms) = (x.as_slice_mut().expect("standard layout"), mask.as_slice_mut().expect("fresh array"));
        xs.par_chunks_mut(GRAIN).zip(ms.par_chunks_mut(GRAIN)).for_each(|(x, m)| {
            for (v, m) in x.iter_mut().zip(m.iter_mut()) {
                *m = *v > 0.0;
                *v = v.max(0.0);
            }
        });
        self.mask = Some(mask);
    }

    /// Backward in place: zeroes `dy` where the input was not positive. Returns `false` (and
    /// leaves `dy` alone) before a forward pass or for a batch of another shape.
    pub fn backward_in_place(&self, dy: &mut Array4<f32>) -> bool {
        let Some(mask) = self.mask.as_ref().filter(|m| m.shape() == dy.shape()) else {
            return false;
        };
        if !dy.is_standard_layout() {
            *dy = dy.as_standard_layout().into_owned();
        }
        let (Some(ds), Some(ms)) = (dy.as_slice_mut(), mask.as_slice()) else {
            return false;
        };
        ds.par_chunks_mut(GRAIN).zip(ms.par_chunks(GRAIN)).for_each(|(d, m)| {
            // A select, not a branch: the mask is ~50 % random, and a branch mispredicts.
            for (d, &m) in d.iter_mut().zip(m) {
                *d = if m { *d } else { 0.0 };
            }
        });
        true
    }

    /// Backward: passes the gradient where the input was positive. `None` before a forward
    /// pass or for a batch of another shape.
    pub fn backward(&self, dy: ArrayView4<'_, f32>) -> Option<Array4<f32>> {
        let mut dx = dy.as_standard_layout().into_owned();
        self.backward_in_place(&mut dx).then_some(dx)
    }
}
