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
    #[cfg(test)]
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

/// Largest padded image side a [`ConvGeometry`] accepts (16 384 pixels).
pub const MAX_SIDE: usize = 1 << 14;
/// Largest number of input channels a [`ConvGeometry`] accepts (65 536).
pub const MAX_CHANNELS: usize = 1 << 16;

impl Default for ConvGeometry {
    /// The first layer of the paper's network: 5×5 kernels, stride 1, pad 2 on 3×32×32 images.
    fn default() -> Self {
        Self { in_channels: 3, height: 32, width: 32, kernel: 5, stride: 1, pad: 2 }
    }
}

impl ConvGeometry {
    /// Checks the geometry: every size > 0 (the padding may be 0), the kernel no larger than
    /// the padded image, padded sides at most [`MAX_SIDE`] and channels at most
    /// [`MAX_CHANNELS`].
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
        // (A zero side would pass the kernel test below on its padding alone, and leave
        // patches of nothing but padding in images of no pixels.)
        if self.height == 0 {
            return bad("height", 0, "must be > 0");
        }
        if self.width == 0 {
            return bad("width", 0, "must be > 0");
        }
        // Sizes beyond these would overflow the index arithmetic or allocate an assignment of
        // billions of patches (a corrupt checkpoint must not abort the process).
        if self.in_channels > MAX_CHANNELS {
            return bad("in_channels", self.in_channels, &format!("must be <= {MAX_CHANNELS}"));
        }
        if self.pad > MAX_SIDE / 2 {
            return bad("pad", self.pad, &format!("must be <= {}", MAX_SIDE / 2));
        }
        let padded = |side: usize| side.checked_add(2 * self.pad).filter(|&p| p <= MAX_SIDE);
        let reason = format!("with the padding ({} on each side) must be <= {MAX_SIDE}", self.pad);
        let Some(ph) = padded(self.height) else { return bad("height", self.height, &reason) };
        let Some(pw) = padded(self.width) else { return bad("width", self.width, &reason) };
        if ph < self.kernel || pw < self.kernel {
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
    /// pixels outside `keep`. The pixel-by-pixel definition of a patch; the tests check the
    /// run-based [`gather_patch`](Self::gather_patch) and [`scatter_patch_add`](Self::scatter_patch_add)
    /// against it.
    #[cfg(test)]
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

    /// The part of patch `p`'s k×k window that reads pixels: kernel rows `ky0..ky1` and, in each,
    /// columns `kx0..kx1` (both possibly empty), plus the image index of the window's pixel
    /// (ky0, kx0) in channel 0. Padding and pixels outside `keep` lie outside these ranges, and
    /// since the image and `keep` are rectangles, what is left is a rectangle too.
    #[inline]
    fn window(&self, p: usize, keep: Option<Region>) -> PatchWindow {
        let (k, ow) = (self.kernel as isize, self.out_width());
        let (oy, ox) = (p / ow, p % ow);
        let y_base = (oy * self.stride) as isize - self.pad as isize;
        let x_base = (ox * self.stride) as isize - self.pad as isize;
        let r = keep.unwrap_or(Region { y0: 0, y1: self.height, x0: 0, x1: self.width });
        let (ry0, ry1) = (r.y0 as isize, r.y1.min(self.height) as isize);
        let (rx0, rx1) = (r.x0 as isize, r.x1.min(self.width) as isize);
        let ky0 = (ry0 - y_base).clamp(0, k);
        let ky1 = (ry1 - y_base).clamp(ky0, k);
        let kx0 = (rx0 - x_base).clamp(0, k);
        let kx1 = (rx1 - x_base).clamp(kx0, k);
        let origin =
            if ky1 > ky0 && kx1 > kx0 { (y_base + ky0) as usize * self.width + (x_base + kx0) as usize } else { 0 };
        PatchWindow { ky0: ky0 as usize, ky1: ky1 as usize, kx0: kx0 as usize, kx1: kx1 as usize, origin }
    }

    /// Copies patch `p` of `image` (`[C, H, W]`, row-major) into `out` (length K), in Caffe's
    /// (c, ky, kx) order, with zeros for padding — and, when `keep` is given, zeros for every
    /// pixel outside that input region (image-pad tiling). Each kernel row is one contiguous run
    /// of pixels between zero fills.
    pub fn gather_patch(&self, image: &[f32], p: usize, keep: Option<Region>, out: &mut [f32]) {
        let (k, plane, width) = (self.kernel, self.height * self.width, self.width);
        let w = self.window(p, keep);
        let run = w.kx1 - w.kx0;
        if k == 5 && run == 5 && w.ky1 - w.ky0 == 5 {
            // The common case (the paper's 5×5 kernels, window inside the image): 5 rows of
            // 5 pixels per channel, no fills, no per-run branches.
            for (c, chan) in out[..self.patch_len()].chunks_exact_mut(25).enumerate() {
                let base = c * plane + w.origin;
                for (ky, row) in chan.chunks_exact_mut(5).enumerate() {
                    let start = base + ky * width;
                    copy_run(row, &image[start..start + 5]);
                }
            }
            return;
        }
        for (c, chan) in out[..self.patch_len()].chunks_exact_mut(k * k).enumerate() {
            for (ky, row) in chan.chunks_exact_mut(k).enumerate() {
                if ky < w.ky0 || ky >= w.ky1 || run == 0 {
                    row.fill(0.0);
                    continue;
                }
                let start = c * plane + w.origin + (ky - w.ky0) * width;
                if w.kx0 > 0 {
                    row[..w.kx0].fill(0.0);
                }
                copy_run(&mut row[w.kx0..w.kx1], &image[start..start + run]);
                if w.kx1 < k {
                    row[w.kx1..].fill(0.0);
                }
            }
        }
    }

    /// Adds the patch gradient `grad` (length K) of patch `p` into `image_grad` (`[C, H, W]`),
    /// skipping padding and pixels outside `keep` — the adjoint of [`gather_patch`](Self::gather_patch).
    pub fn scatter_patch_add(&self, grad: &[f32], p: usize, keep: Option<Region>, image_grad: &mut [f32]) {
        let (k, plane, width) = (self.kernel, self.height * self.width, self.width);
        let w = self.window(p, keep);
        let run = w.kx1 - w.kx0;
        if run == 0 {
            return;
        }
        for (c, chan) in grad[..self.patch_len()].chunks_exact(k * k).enumerate() {
            for ky in w.ky0..w.ky1 {
                let start = c * plane + w.origin + (ky - w.ky0) * width;
                let src = &chan[ky * k + w.kx0..ky * k + w.kx1];
                for (g, v) in image_grad[start..start + run].iter_mut().zip(src) {
                    *g += v;
                }
            }
        }
    }

    /// Side lengths of the zero-padded image: `(H + 2·pad, W + 2·pad)`.
    pub fn padded_dims(&self) -> (usize, usize) {
        (self.height + 2 * self.pad, self.width + 2 * self.pad)
    }

    /// Values per zero-padded image, `C·(H + 2·pad)·(W + 2·pad)`.
    pub fn padded_len(&self) -> usize {
        let (ph, pw) = self.padded_dims();
        self.in_channels * ph * pw
    }

    /// Writes `image` (`[C, H, W]`) into `out` (`[C, H + 2·pad, W + 2·pad]`) with `pad` zeros on
    /// every side. Every patch window lies inside the padded image, so
    /// [`gather_padded`](Self::gather_padded) needs no clipping.
    pub fn pad_image(&self, image: &[f32], out: &mut [f32]) {
        // Each padded row once: zeros above and below the image, else left zeros, the image row,
        // right zeros.
        let ((ph, pw), (pad, w)) = (self.padded_dims(), (self.pad, self.width));
        let mut rows = image[..self.image_len()].chunks_exact(w);
        for (i, prow) in out[..self.padded_len()].chunks_exact_mut(pw).enumerate() {
            let y = i % ph;
            if y < pad || y >= ph - pad {
                prow.fill(0.0);
                continue;
            }
            let row = rows.next().expect("one image row per interior padded row");
            prow[..pad].fill(0.0);
            prow[pad..pad + w].copy_from_slice(row);
            prow[pad + w..].fill(0.0);
        }
    }

    /// Adds the interior of a padded image gradient (`[C, H + 2·pad, W + 2·pad]`) into
    /// `image_grad` (`[C, H, W]`): the adjoint of [`pad_image`](Self::pad_image).
    pub fn unpad_add(&self, padded: &[f32], image_grad: &mut [f32]) {
        for (row, start) in image_grad[..self.image_len()].chunks_exact_mut(self.width).zip(self.interior_rows()) {
            for (g, v) in row.iter_mut().zip(&padded[start..start + self.width]) {
                *g += v;
            }
        }
    }

    /// Start, in the padded image, of each image row, in (c, y) order: where the image's rows
    /// sit between the zero borders.
    fn interior_rows(&self) -> impl Iterator<Item = usize> {
        let ((ph, pw), pad, h) = (self.padded_dims(), self.pad, self.height);
        (0..self.in_channels).flat_map(move |c| (0..h).map(move |y| c * ph * pw + (y + pad) * pw + pad))
    }

    /// Start, in the padded image, of each kernel row of patch `p`, in Caffe's (c, ky) order:
    /// the patch is these C·k runs of k pixels.
    #[inline]
    fn padded_rows(&self, p: usize) -> impl Iterator<Item = usize> {
        let ((plane, pw, origin), k) = (self.padded_origin(p), self.kernel);
        (0..self.in_channels).flat_map(move |c| (0..k).map(move |ky| c * plane + origin + ky * pw))
    }

    /// Copies patch `p` of a padded image (see [`pad_image`](Self::pad_image)) into `out`
    /// (length K), in Caffe's (c, ky, kx) order: equal to
    /// [`gather_patch`](Self::gather_patch) on the unpadded image without `keep`, but every
    /// kernel row is one run of k pixels, with no clipping and no fills.
    pub fn gather_padded(&self, padded: &[f32], p: usize, out: &mut [f32]) {
        match self.kernel {
            5 => self.gather_padded_k::<5>(padded, p, out),
            3 => self.gather_padded_k::<3>(padded, p, out),
            k => {
                for (row, start) in out[..self.patch_len()].chunks_exact_mut(k).zip(self.padded_rows(p)) {
                    copy_run(row, &padded[start..start + k]);
                }
            }
        }
    }

    /// Adds the patch gradient `grad` (length K) of patch `p` into a padded image gradient:
    /// the adjoint of [`gather_padded`](Self::gather_padded).
    pub fn scatter_padded_add(&self, grad: &[f32], p: usize, padded_grad: &mut [f32]) {
        match self.kernel {
            5 => self.scatter_padded_add_k::<5>(grad, p, padded_grad),
            3 => self.scatter_padded_add_k::<3>(grad, p, padded_grad),
            k => {
                for (row, start) in grad[..self.patch_len()].chunks_exact(k).zip(self.padded_rows(p)) {
                    add_run(&mut padded_grad[start..start + k], row);
                }
            }
        }
    }

    /// [`gather_padded`](Self::gather_padded) for a kernel size known at compile time: one
    /// slice per channel covers its K rows, and each run is a fixed-size copy.
    #[inline(always)]
    fn gather_padded_k<const K: usize>(&self, padded: &[f32], p: usize, out: &mut [f32]) {
        let (plane, pw, origin) = self.padded_origin(p);
        for (c, chan) in out[..self.patch_len()].chunks_exact_mut(K * K).enumerate() {
            let src = &padded[c * plane + origin..][..(K - 1) * pw + K];
            for (ky, row) in chan.chunks_exact_mut(K).enumerate() {
                copy_run(row, &src[ky * pw..ky * pw + K]);
            }
        }
    }

    /// [`scatter_padded_add`](Self::scatter_padded_add) for a kernel size known at compile
    /// time, as [`gather_padded_k`](Self::gather_padded_k).
    #[inline(always)]
    fn scatter_padded_add_k<const K: usize>(&self, grad: &[f32], p: usize, padded_grad: &mut [f32]) {
        let (plane, pw, origin) = self.padded_origin(p);
        for (c, chan) in grad[..self.patch_len()].chunks_exact(K * K).enumerate() {
            let dst = &mut padded_grad[c * plane + origin..][..(K - 1) * pw + K];
            for (ky, row) in chan.chunks_exact(K).enumerate() {
                add_run(&mut dst[ky * pw..ky * pw + K], row);
            }
        }
    }

    /// Values per padded channel plane, padded row length, and the offset of patch `p`'s
    /// top-left pixel in a padded channel plane.
    #[inline]
    fn padded_origin(&self, p: usize) -> (usize, usize, usize) {
        let ((ph, pw), ow) = (self.padded_dims(), self.out_width());
        (ph * pw, pw, (p / ow * self.stride) * pw + p % ow * self.stride)
    }
}

/// `dst += src` elementwise (equal lengths), with the common kernel widths as fixed-size
/// arrays, like [`copy_run`].
#[inline(always)]
fn add_run(dst: &mut [f32], src: &[f32]) {
    macro_rules! fixed {
        ($n:literal) => {
            if let (Ok(d), Ok(s)) = (<&mut [f32; $n]>::try_from(&mut *dst), <&[f32; $n]>::try_from(src)) {
                for (g, v) in d.iter_mut().zip(s) {
                    *g += v;
                }
                return;
            }
        };
    }
    match dst.len() {
        5 => fixed!(5),
        3 => fixed!(3),
        _ => {}
    }
    for (g, v) in dst.iter_mut().zip(src) {
        *g += v;
    }
}

/// `dst.copy_from_slice(src)` (equal lengths), with the common kernel widths as fixed-size
/// copies: a `memcpy` call per run of 3 or 5 floats costs more than the copy itself.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    macro_rules! fixed {
        ($n:literal) => {
            if let (Ok(d), Ok(s)) = (<&mut [f32; $n]>::try_from(&mut *dst), <&[f32; $n]>::try_from(src)) {
                *d = *s;
                return;
            }
        };
    }
    match dst.len() {
        5 => fixed!(5),
        3 => fixed!(3),
        4 => fixed!(4),
        2 => fixed!(2),
        _ => {}
    }
    dst.copy_from_slice(src);
}

/// The reading part of one patch window (see `ConvGeometry::window`).
#[derive(Debug, Clone, Copy)]
struct PatchWindow {
    ky0: usize,
    ky1: usize,
    kx0: usize,
    kx1: usize,
    origin: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes whose index arithmetic would overflow (or whose assignment would hold billions
    /// of patches) are typed errors naming the field, never a panic or a wrapped size.
    #[test]
    fn oversized_geometries_are_refused() {
        let ok = ConvGeometry::default();
        let field = |g: ConvGeometry| match g.validate() {
            Err(LayerError::Invalid { field, .. }) => field,
            other => panic!("{g:?}: {other:?}"),
        };
        assert_eq!(field(ConvGeometry { pad: usize::MAX / 2 + 1, ..ok }), "pad");
        assert_eq!(field(ConvGeometry { height: usize::MAX - 1, ..ok }), "height");
        assert_eq!(field(ConvGeometry { width: MAX_SIDE - 3, ..ok }), "width");
        assert_eq!(field(ConvGeometry { in_channels: MAX_CHANNELS + 1, ..ok }), "in_channels");
        // The largest accepted side, padding included.
        let edge = ConvGeometry { height: MAX_SIDE - 4, width: MAX_SIDE - 4, ..ok };
        assert!(edge.validate().is_ok());
        assert_eq!(edge.out_height(), MAX_SIDE - 4);
    }

    /// The run-based gather/scatter equal the pixel-by-pixel definition on every patch, for
    /// strides, paddings and keep-regions (also empty ones and ones reaching past the image)
    /// that put windows inside, across and outside the borders.
    #[test]
    fn run_based_patches_equal_the_pixel_definition() {
        let keeps = [
            None,
            Some(Region { y0: 0, y1: 5, x0: 3, x1: 9 }),
            Some(Region { y0: 2, y1: 9, x0: 0, x1: 4 }),
            Some(Region { y0: 7, y1: 20, x0: 8, x1: 30 }),
            Some(Region { y0: 4, y1: 4, x0: 0, x1: 10 }),
        ];
        for (stride, pad, kernel) in [(1, 0, 3), (1, 2, 5), (2, 1, 3), (2, 2, 5), (3, 0, 2)] {
            let g = ConvGeometry { in_channels: 3, height: 9, width: 10, kernel, stride, pad };
            let image: Vec<f32> = (0..g.image_len()).map(|i| i as f32 * 0.37 - 11.0).collect();
            let k = g.patch_len();
            let mut kinds = [0usize; 3]; // full window, partial, nothing read
            for keep in keeps {
                for p in 0..g.n_patches() {
                    let w = g.window(p, keep);
                    let read = (w.ky1 - w.ky0) * (w.kx1 - w.kx0);
                    kinds[if read == kernel * kernel {
                        0
                    } else if read > 0 {
                        1
                    } else {
                        2
                    }] += 1;
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
            assert!(kinds.iter().all(|&n| n > 0), "{g:?}: window kinds {kinds:?}");
        }
    }

    /// Gathering from the padded image equals gathering from the image, and scattering into a
    /// padded gradient then adding its interior equals scattering into the image gradient.
    #[test]
    fn padded_patches_equal_the_clipped_ones() {
        for (stride, pad, kernel, h, w) in [
            (1, 0, 3, 9, 10),
            (1, 2, 5, 9, 10),
            (2, 1, 3, 9, 10),
            (2, 2, 5, 8, 11),
            (3, 0, 2, 9, 10),
            (1, 2, 5, 5, 5),
            (1, 1, 4, 9, 10),
        ] {
            let g = ConvGeometry { in_channels: 3, height: h, width: w, kernel, stride, pad };
            let image: Vec<f32> = (0..g.image_len()).map(|i| i as f32 * 0.37 - 11.0).collect();
            let mut padded = vec![f32::NAN; g.padded_len()];
            g.pad_image(&image, &mut padded);
            let (ph, pw) = g.padded_dims();
            for (i, &v) in padded.iter().enumerate() {
                let (c, y, x) = (i / (ph * pw), i / pw % ph, i % pw);
                let inside = (pad..pad + h).contains(&y) && (pad..pad + w).contains(&x);
                let want = if inside { image[(c * h + y - pad) * w + x - pad] } else { 0.0 };
                assert_eq!(v, want, "padded image, geometry {g:?}, (c, y, x) = {:?}", (c, y, x));
            }
            let k = g.patch_len();
            let mut via_padded = vec![0.0f32; g.image_len()];
            let mut direct = vec![0.0f32; g.image_len()];
            let mut padded_grad = vec![0.0f32; g.padded_len()];
            for p in 0..g.n_patches() {
                let mut want = vec![f32::NAN; k];
                g.gather_patch(&image, p, None, &mut want);
                let mut got = vec![f32::NAN; k];
                g.gather_padded(&padded, p, &mut got);
                assert_eq!(got, want, "gather, geometry {g:?}, patch {p}");
                let grad: Vec<f32> = (0..k).map(|o| (o + p) as f32 * 0.25 - 3.0).collect();
                g.scatter_patch_add(&grad, p, None, &mut direct);
                g.scatter_padded_add(&grad, p, &mut padded_grad);
            }
            g.unpad_add(&padded_grad, &mut via_padded);
            // Both add each pixel's terms in patch order onto 0, so the sums agree exactly.
            assert_eq!(via_padded, direct, "scatter, geometry {g:?}");
        }
    }
}
