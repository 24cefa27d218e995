//! Rectified linear unit.

use ndarray::{Array4, ArrayView4, Zip};

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

    /// Forward; keeps the sign mask.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Array4<f32> {
        self.mask = Some(x.mapv(|v| v > 0.0));
        x.mapv(|v| v.max(0.0))
    }

    /// Backward: passes the gradient where the input was positive. `None` before a forward
    /// pass or for a batch of another shape.
    pub fn backward(&self, dy: ArrayView4<'_, f32>) -> Option<Array4<f32>> {
        let mask = self.mask.as_ref().filter(|m| m.shape() == dy.shape())?;
        let mut dx = dy.to_owned();
        Zip::from(&mut dx).and(mask).for_each(|d, &m| {
            if !m {
                *d = 0.0;
            }
        });
        Some(dx)
    }
}
