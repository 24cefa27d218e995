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

    /// Forward; keeps the sign mask.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Array4<f32> {
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let mut y = Array4::<f32>::zeros(x.raw_dim());
        let mut mask = Array4::from_elem(x.raw_dim(), false);
        let (ys, ms) = (y.as_slice_mut().expect("fresh array"), mask.as_slice_mut().expect("fresh array"));
        ys.par_chunks_mut(GRAIN).zip(ms.par_chunks_mut(GRAIN)).zip(xs.par_chunks(GRAIN)).for_each(|((y, m), x)| {
            for ((y, m), &v) in y.iter_mut().zip(m.iter_mut()).zip(x) {
                *y = v.max(0.0);
                *m = v > 0.0;
            }
        });
        self.mask = Some(mask);
        y
    }

    /// Backward: passes the gradient where the input was positive. `None` before a forward
    /// pass or for a batch of another shape.
    pub fn backward(&self, dy: ArrayView4<'_, f32>) -> Option<Array4<f32>> {
        let mask = self.mask.as_ref().filter(|m| m.shape() == dy.shape())?;
        let mut dx = dy.as_standard_layout().into_owned();
        let ms = mask.as_slice()?;
        dx.as_slice_mut()?.par_chunks_mut(GRAIN).zip(ms.par_chunks(GRAIN)).for_each(|(d, m)| {
            for (d, &m) in d.iter_mut().zip(m) {
                if !m {
                    *d = 0.0;
                }
            }
        });
        Some(dx)
    }
}
