//! Caffe's local response normalization, WITHIN_CHANNEL:
//! y = x·s^(−β), s = 1 + (α/n²)·Σ_{n×n window} x², windows centred and zero-padded, so the
//! mean always divides by n² (Caffe's average pooling with padding).

use ndarray::{Array4, ArrayView4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// LRN WITHIN_CHANNEL with window `size` (odd), `alpha`, `beta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lrn {
    /// Window side n (odd). The paper's network: 3.
    pub size: usize,
    /// α. The paper's network: 5e-5.
    pub alpha: f32,
    /// β. The paper's network: 0.75.
    pub beta: f32,
    /// x, s and s^(−β) of the last forward pass.
    #[serde(skip)]
    cache: Option<[Array4<f32>; 3]>,
}

impl Lrn {
    /// An LRN layer.
    pub fn new(size: usize, alpha: f32, beta: f32) -> Self {
        Self { size, alpha, beta, cache: None }
    }

    /// The paper's setting: 3×3, α = 5e-5, β = 0.75.
    pub fn paper() -> Self {
        Self::new(3, 5e-5, 0.75)
    }

    /// s = 1 + (α/n²)·windowed sum of x² for one plane.
    fn scale_plane(&self, plane: &[f32], h: usize, w: usize, out: &mut [f32]) {
        let r = self.size / 2;
        let k = self.alpha / (self.size * self.size) as f32;
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0f32;
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        let v = plane[yy * w + xx];
                        acc += v * v;
                    }
                }
                out[y * w + x] = 1.0 + k * acc;
            }
        }
    }

    /// s^(−β), with the common β = 0.75 as 1/(√s·⁴√s): two square roots instead of a `powf`
    /// (a few ulp from it).
    #[inline]
    fn inv_pow(&self, s: f32) -> f32 {
        if self.beta == 0.75 {
            let r = s.sqrt();
            1.0 / (r * r.sqrt())
        } else {
            s.powf(-self.beta)
        }
    }

    /// Forward pass.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Array4<f32> {
        let (_, _, h, w) = x.dim();
        let x = x.as_standard_layout().into_owned();
        let mut s = Array4::<f32>::zeros(x.raw_dim());
        let mut p = Array4::<f32>::zeros(x.raw_dim());
        let mut y = Array4::<f32>::zeros(x.raw_dim());
        let xs = x.as_slice().expect("standard layout");
        let (ss, ps, ys) = (s.as_slice_mut(), p.as_slice_mut(), y.as_slice_mut());
        let (ss, ps, ys) = (ss.expect("fresh array"), ps.expect("fresh array"), ys.expect("fresh array"));
        ss.par_chunks_mut(h * w)
            .zip(ps.par_chunks_mut(h * w))
            .zip(ys.par_chunks_mut(h * w))
            .zip(xs.par_chunks(h * w))
            .for_each(|(((sp, pp), yp), xp)| {
                self.scale_plane(xp, h, w, sp);
                for (((pv, yv), &sv), &xv) in pp.iter_mut().zip(yp.iter_mut()).zip(sp.iter()).zip(xp) {
                    *pv = self.inv_pow(sv);
                    *yv = xv * *pv;
                }
            });
        self.cache = Some([x, s, p]);
        y
    }

    /// Backward pass: ∂L/∂x_j = dy_j·s_j^(−β) − (2αβ/n²)·x_j·Σ_{i ∋ j} dy_i·x_i·s_i^(−β−1).
    /// `None` without a matching forward pass.
    pub fn backward(&self, dy: ArrayView4<'_, f32>) -> Option<Array4<f32>> {
        let [x, s, p] = self.cache.as_ref()?;
        if dy.shape() != x.shape() {
            return None;
        }
        let (_, _, h, w) = x.dim();
        let dy = dy.as_standard_layout();
        let k = 2.0 * self.alpha * self.beta / (self.size * self.size) as f32;
        let (xs, ss, ps, dys) = (x.as_slice()?, s.as_slice()?, p.as_slice()?, dy.as_slice()?);
        // t_i = dy_i·x_i·s_i^(−β−1)
        let mut t = Array4::<f32>::zeros(x.raw_dim());
        t.as_slice_mut()?.par_chunks_mut(h * w).enumerate().for_each(|(pl, tp)| {
            let off = pl * h * w;
            for (i, tv) in tp.iter_mut().enumerate() {
                let j = off + i;
                *tv = dys[j] * xs[j] * ps[j] / ss[j];
            }
        });
        let ts = t.as_slice()?;
        let mut dx = Array4::<f32>::zeros(x.raw_dim());
        let r = self.size / 2;
        dx.as_slice_mut()?.par_chunks_mut(h * w).enumerate().for_each(|(pl, dp)| {
            let off = pl * h * w;
            for y in 0..h {
                for xx in 0..w {
                    let j = off + y * w + xx;
                    let mut acc = 0.0f32;
                    for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                        for xq in xx.saturating_sub(r)..(xx + r + 1).min(w) {
                            acc += ts[off + yy * w + xq];
                        }
                    }
                    dp[y * w + xx] = dys[j] * ps[j] - k * xs[j] * acc;
                }
            }
        });
        Some(dx)
    }
}
