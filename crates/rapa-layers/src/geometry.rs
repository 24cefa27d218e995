//! Convolution geometry (Caffe semantics) and the im2col / col2im of single patches.

use serde::{Deserialize, Serialize};

use crate::error::LayerError;

/// A rectangle of an image or output map: rows `y0..y1`, columns `x0..x1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First row.
    pub y0: usize,
    /// One past the last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
}

impl Region {
    fn contains(&self, y: usize, x: usize) -> bool {
        y >= self.y0 && y < self.y1 && x >= self.x0 && x < self.x1
    }
}

/// Geometry of a square-kernel 2-D convolution on `in_channels × height × width` images.
/// Output size (Caffe): ⌊(h + 2·pad − kernel)/stride⌋ + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    /// Input channels C.
    pub in_channels: usize,
    /// Input height H.
    pub height: usize,
    /// Input width W.
    pub width: usize,
    /// Kernel side k.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl ConvGeometry {
    /// Checks the geometry.
    pub fn validate(&self) -> Result<(), LayerError> {
        let bad = |field: &'static str, value: usize, reason: &str| {
            Err(LayerError::Invalid { field, value: value.to_string(), reason: reason.into() })
        };
        if self.in_channels == 0 {
            return bad("in_channels", 0, "must be > 0");
        }
        if self.kernel == 0 {
            return bad("kernel", 0, "must be > 0");
        }
        if self.stride == 0 {
            return bad("stride", 0, "must be > 0");
        }
        if self.height + 2 * self.pad < self.kernel || self.width + 2 * self.pad < self.kernel {
            return bad("kernel", self.kernel, "is larger than the padded image");
        }
        Ok(())
    }

    /// Output height.
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.pad - self.kernel) / self.stride + 1
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.pad - self.kernel) / self.stride + 1
    }

    /// Patches (output pixels) per image, P.
    pub fn n_patches(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Length of one patch row, K = C·k·k (the kernel matrix has K + 1 inputs with the bias).
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Values per input image, C·H·W.
    pub fn image_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    /// Calls `f(o, pixel)` for every element o (in Caffe's (c, ky, kx) order) of patch `p`:
    /// `pixel` is the element's index in a `[C, H, W]` image, or `None` for padding and for
    /// pixels outside `keep`.
    #[inline]
    fn for_each_patch_pixel(&self, p: usize, keep: Option<Region>, mut f: impl FnMut(usize, Option<usize>)) {
        let (k, ow) = (self.kernel, self.out_width());
        let (oy, ox) = (p / ow, p % ow);
        let y_base = (oy * self.stride) as isize - self.pad as isize;
        let x_base = (ox * self.stride) as isize - self.pad as isize;
        let plane = self.height * self.width;
        let mut o = 0;
        for c in 0..self.in_channels {
            for ky in 0..k {
                let y = y_base + ky as isize;
                for kx in 0..k {
                    let x = x_base + kx as isize;
                    let inside = y >= 0 && x >= 0 && (y as usize) < self.height && (x as usize) < self.width;
                    let pixel = (inside && keep.is_none_or(|r| r.contains(y as usize, x as usize)))
                        .then(|| c * plane + y as usize * self.width + x as usize);
                    f(o, pixel);
                    o += 1;
                }
            }
        }
    }

    /// Copies patch `p` of `image` (`[C, H, W]`, row-major) into `out` (length K), in Caffe's
    /// (c, ky, kx) order, with zeros for padding — and, when `keep` is given, zeros for every
    /// pixel outside that input region (image-pad tiling).
    pub fn gather_patch(&self, image: &[f32], p: usize, keep: Option<Region>, out: &mut [f32]) {
        if let Some(runs) = self.interior_runs(p, keep) {
            // Fast path: every kernel row is a contiguous run of k pixels of one image row.
            let k = self.kernel;
            for (o, start) in runs {
                out[o..o + k].copy_from_slice(&image[start..start + k]);
            }
            return;
        }
        self.for_each_patch_pixel(p, keep, |o, pixel| out[o] = pixel.map_or(0.0, |i| image[i]));
    }

    /// When the whole k×k window of patch `p` lies inside the image (and inside `keep`, if
    /// given): for each of its C·k kernel rows, the row's offset in the patch and the index of
    /// its first pixel in the image — each a contiguous run of k values. `None` otherwise.
    #[inline]
    fn interior_runs(&self, p: usize, keep: Option<Region>) -> Option<impl Iterator<Item = (usize, usize)>> {
        let ow = self.out_width();
        let (oy, ox) = (p / ow, p % ow);
        let y0 = (oy * self.stride).checked_sub(self.pad)?;
        let x0 = (ox * self.stride).checked_sub(self.pad)?;
        let (k, y1, x1) = (self.kernel, y0 + self.kernel, x0 + self.kernel);
        let inside = y1 <= self.height && x1 <= self.width;
        let kept = keep.is_none_or(|r| y0 >= r.y0 && y1 <= r.y1 && x0 >= r.x0 && x1 <= r.x1);
        let (origin, plane, width) = (y0 * self.width + x0, self.height * self.width, self.width);
        let runs = (0..self.in_channels * k).map(move |row| (row * k, (row / k) * plane + origin + (row % k) * width));
        (inside && kept).then_some(runs)
    }

    /// Adds the patch gradient `grad` (length K) of patch `p` into `image_grad` (`[C, H, W]`),
    /// skipping padding and pixels outside `keep` — the adjoint of [`gather_patch`](Self::gather_patch).
    pub fn scatter_patch_add(&self, grad: &[f32], p: usize, keep: Option<Region>, image_grad: &mut [f32]) {
        if let Some(runs) = self.interior_runs(p, keep) {
            let k = self.kernel;
            for (o, start) in runs {
                for (g, v) in image_grad[start..start + k].iter_mut().zip(&grad[o..o + k]) {
                    *g += v;
                }
            }
            return;
        }
        self.for_each_patch_pixel(p, keep, |o, pixel| {
            if let Some(i) = pixel {
                image_grad[i] += grad[o];
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contiguous-run fast path of gather/scatter equals the general per-pixel path on every
    /// patch, for strides, paddings and keep-regions that put patches inside, on and across
    /// borders.
    #[test]
    fn fast_interior_path_equals_general_path() {
        let keeps = [None, Some(Region { y0: 0, y1: 5, x0: 3, x1: 9 }), Some(Region { y0: 2, y1: 9, x0: 0, x1: 4 })];
        for (stride, pad, kernel) in [(1, 0, 3), (1, 2, 5), (2, 1, 3), (2, 2, 5), (3, 0, 2)] {
            let g = ConvGeometry { in_channels: 3, height: 9, width: 10, kernel, stride, pad };
            let image: Vec<f32> = (0..g.image_len()).map(|i| i as f32 * 0.37 - 11.0).collect();
            let (k, mut fast_hits) = (g.patch_len(), 0);
            for keep in keeps {
                for p in 0..g.n_patches() {
                    fast_hits += usize::from(g.interior_runs(p, keep).is_some());
                    let mut fast = vec![f32::NAN; k];
                    g.gather_patch(&image, p, keep, &mut fast);
                    let mut general = vec![f32::NAN; k];
                    g.for_each_patch_pixel(p, keep, |o, px| general[o] = px.map_or(0.0, |i| image[i]));
                    assert_eq!(fast, general, "gather, geometry {g:?}, keep {keep:?}, patch {p}");

                    let grad: Vec<f32> = (0..k).map(|o| (o as f32 + 1.0) * 0.5).collect();
                    let mut fast = vec![1.0f32; g.image_len()];
                    g.scatter_patch_add(&grad, p, keep, &mut fast);
                    let mut general = vec![1.0f32; g.image_len()];
                    g.for_each_patch_pixel(p, keep, |o, px| {
                        if let Some(i) = px {
                            general[i] += grad[o];
                        }
                    });
                    assert_eq!(fast, general, "scatter, geometry {g:?}, keep {keep:?}, patch {p}");
                }
            }
            assert!(fast_hits > 0, "no patch took the fast path for {g:?}");
        }
    }
}
