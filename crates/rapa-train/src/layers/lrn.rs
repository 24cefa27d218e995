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

    /// s = 1 + (α/n²)·windowed sum of x² for one plane (`tmp`, `scratch`: scratch space).
    fn scale_plane(&self, plane: &[f32], h: usize, w: usize, tmp: &mut [f32], scratch: &mut Vec<f32>, out: &mut [f32]) {
        let k = self.alpha / (self.size * self.size) as f32;
        for (t, &v) in tmp.iter_mut().zip(plane) {
            *t = v * v;
        }
        box_sum(tmp, h, w, self.size / 2, scratch, out);
        for o in out.iter_mut() {
            *o = 1.0 + k * *o;
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
        ss.par_chunks_mut((h * w).max(1))
            .zip(ps.par_chunks_mut((h * w).max(1)))
            .zip(ys.par_chunks_mut((h * w).max(1)))
            .zip(xs.par_chunks((h * w).max(1)))
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(tmp, scratch), (((sp, pp), yp), xp)| {
                    tmp.resize(h * w, 0.0);
                    self.scale_plane(xp, h, w, tmp, scratch, sp);
                    // p = s^(−β). The common β = 0.75 is 1/(√s·⁴√s): two square roots instead of a
                    // `powf` (a few ulp from it), in its own branch-free loop so that they vectorize.
                    let beta = self.beta;
                    if beta == 0.75 {
                        fill_p_y(pp, yp, sp, xp, |s| {
                            let r = s.sqrt();
                            1.0 / (r * r.sqrt())
                        });
                    } else {
                        fill_p_y(pp, yp, sp, xp, |s| s.powf(-beta));
                    }
                },
            );
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
        t.as_slice_mut()?.par_chunks_mut((h * w).max(1)).enumerate().for_each(|(pl, tp)| {
            let off = pl * h * w;
            for (i, tv) in tp.iter_mut().enumerate() {
                let j = off + i;
                *tv = dys[j] * xs[j] * ps[j] / ss[j];
            }
        });
        let mut dx = Array4::<f32>::zeros(x.raw_dim());
        let r = self.size / 2;
        // The window sums of t are a box sum: the windows are symmetric, so "the windows i that
        // contain j" is the window around j.
        dx.as_slice_mut()?
            .par_chunks_mut((h * w).max(1))
            .zip(t.as_slice()?.par_chunks((h * w).max(1)))
            .enumerate()
            .for_each_init(Vec::new, |scratch, (pl, (dp, tp))| {
                let off = pl * h * w;
                box_sum(tp, h, w, r, scratch, dp);
                for (i, d) in dp.iter_mut().enumerate() {
                    let j = off + i;
                    *d = dys[j] * ps[j] - k * xs[j] * *d;
                }
            });
        Some(dx)
    }
}

/// p = f(s) and y = x·p elementwise, with `f` inlined into one loop per call site.
#[inline(always)]
fn fill_p_y(p: &mut [f32], y: &mut [f32], s: &[f32], x: &[f32], f: impl Fn(f32) -> f32) {
    for (((pv, yv), &sv), &xv) in p.iter_mut().zip(y.iter_mut()).zip(s).zip(x) {
        *pv = f(sv);
        *yv = xv * *pv;
    }
}

/// `out[y, x]` = sum of `src` over the (2r+1)×(2r+1) window centred on (y, x), clipped to the
/// h×w plane (zero padding). Separable, and each pass runs over the whole plane as a few
/// shifted slice additions, long enough to vectorize well on the network's small planes (16×16,
/// 8×8): the row pass works on a copy of the plane with r zero columns on either side (so no
/// window wraps into the next row), the column pass adds the row sums shifted by ±d rows.
/// `scratch` is resized as needed.
fn box_sum(src: &[f32], h: usize, w: usize, r: usize, scratch: &mut Vec<f32>, out: &mut [f32]) {
    let (n, wp) = (h * w, w + 2 * r);
    let np = h * wp;
    scratch.clear();
    scratch.resize(2 * np, 0.0);
    let (pad, rows) = scratch.split_at_mut(np);
    for (prow, srow) in pad.chunks_exact_mut(wp).zip(src.chunks_exact(w)) {
        prow[r..r + w].copy_from_slice(srow);
    }
    // Rows: rows[y·wp + x] = Σ_{d ≤ 2r} pad[y·wp + x + d], the window of (y, x) (x < w).
    let m = np - 2 * r;
    rows[..m].copy_from_slice(&pad[..m]);
    for d in 1..=2 * r {
        for (o, &v) in rows[..m].iter_mut().zip(&pad[d..d + m]) {
            *o += v;
        }
    }
    for (orow, rrow) in out.chunks_exact_mut(w).zip(rows.chunks(wp)) {
        orow.copy_from_slice(&rrow[..w]);
    }
    // Columns: out = Σ_{|d| ≤ r} row sums shifted by d rows (pad now holds the row sums).
    let sums = &mut pad[..n];
    sums.copy_from_slice(out);
    for d in 1..=r.min(h - 1) {
        let s = d * w;
        for (o, &v) in out[s..].iter_mut().zip(&sums[..n - s]) {
            *o += v;
        }
        for (o, &v) in out[..n - s].iter_mut().zip(&sums[s..]) {
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The separable box sum equals the direct window sum on planes narrower, equal to and wider
    /// than the window.
    #[test]
    fn box_sum_equals_direct_window_sums() {
        for (h, w, r) in
            [(1, 1, 1), (2, 3, 1), (5, 7, 1), (6, 4, 2), (9, 9, 2), (3, 8, 0), (4, 2, 3), (16, 16, 1), (8, 8, 2)]
        {
            let plane: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
            let mut out = vec![f32::NAN; h * w];
            box_sum(&plane, h, w, r, &mut vec![f32::NAN; 3], &mut out);
            for y in 0..h {
                for x in 0..w {
                    let mut direct = 0.0f32;
                    for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                        for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                            direct += plane[yy * w + xx];
                        }
                    }
                    // Small integers: every order of summation is exact.
                    assert_eq!(out[y * w + x], direct, "h {h} w {w} r {r} at ({y}, {x})");
                }
            }
        }
    }
}
