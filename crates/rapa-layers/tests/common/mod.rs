//! Helpers shared by the layer tests.
#![allow(dead_code)]

use crossbar_sim::rng::seeded;
use ndarray::{Array2, Array4, ArrayView2, ArrayView4};
use rand::Rng;
use rapa_layers::{ConvConfig, ConvGeometry, RapaConv2d, Scheme, TileKind};

/// Uniform values in [-1, 1].
pub fn random4(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    let mut rng = seeded(seed);
    Array4::from_shape_simple_fn(shape, || rng.random_range(-1.0f32..1.0))
}

/// A float-tile conv layer.
pub fn layer(geometry: ConvGeometry, c_out: usize, n: usize, scheme: Scheme, seed: u64) -> RapaConv2d {
    let cfg = ConvConfig { geometry, out_channels: c_out, n_tiles: n, scheme, tile: TileKind::Float, init_std: 0.1 };
    RapaConv2d::new(cfg, seed).unwrap()
}

/// Direct nested-loop convolution with Caffe semantics; `w` is `[C_out, K + 1]` (bias last).
/// Each output is [`direct_patch`] (summed in f64) rounded to f32.
pub fn direct_conv(g: &ConvGeometry, w: ArrayView2<'_, f32>, x: ArrayView4<'_, f32>) -> Array4<f32> {
    let shape = (x.shape()[0], w.nrows(), g.out_height(), g.out_width());
    Array4::from_shape_fn(shape, |(b, o, i, j)| direct_patch(g, w, x, b, o, i, j, &|_, _| true) as f32)
}

/// Programs the same kernel matrix into every tile.
pub fn set_all(layer: &mut RapaConv2d, w: ArrayView2<'_, f32>) {
    for t in layer.tiles_mut() {
        t.set_weights(w).unwrap();
    }
}

/// A kernel matrix `[C_out, K + 1]`: weights uniform in [-1, 1], biases (last column) of
/// magnitude in [0.5, 1.5] with random sign — never 0, so the bias input is exercised.
pub fn random_kernel(c_out: usize, k1: usize, seed: u64) -> Array2<f32> {
    let mut rng = seeded(seed);
    Array2::from_shape_fn((c_out, k1), |(_, c)| {
        if c + 1 == k1 {
            let m = rng.random_range(0.5f32..1.5);
            if rng.random::<bool>() { m } else { -m }
        } else {
            rng.random_range(-1.0f32..1.0)
        }
    })
}

/// Programs a distinct [`random_kernel`] into every tile (seeds `seed + t`); returns them.
pub fn set_distinct(layer: &mut RapaConv2d, seed: u64) -> Vec<Array2<f32>> {
    let (c_out, k1) = (layer.config().out_channels, layer.config().geometry.patch_len() + 1);
    let mut out = Vec::new();
    for (t, tile) in layer.tiles_mut().iter_mut().enumerate() {
        let w = random_kernel(c_out, k1, seed + t as u64);
        tile.set_weights(w.view()).unwrap();
        assert_eq!(tile.weights(), w, "tile {t} did not take its weights exactly");
        out.push(w);
    }
    out
}

/// Output channel `o` at output pixel (i, j) of image `b`, by the definition (Caffe
/// semantics), in f64: bias + Σ w·x over the k×k window, with zeros for padding and for input
/// pixels (y, x) where `keep(y, x)` is false.
#[allow(clippy::too_many_arguments)]
pub fn direct_patch(
    g: &ConvGeometry,
    w: ArrayView2<'_, f32>,
    x: ArrayView4<'_, f32>,
    b: usize,
    o: usize,
    i: usize,
    j: usize,
    keep: &dyn Fn(usize, usize) -> bool,
) -> f64 {
    let k = g.kernel;
    let mut acc = f64::from(w[[o, g.patch_len()]]);
    for c in 0..g.in_channels {
        for ky in 0..k {
            for kx in 0..k {
                let yy = (i * g.stride + ky) as isize - g.pad as isize;
                let xx = (j * g.stride + kx) as isize - g.pad as isize;
                if yy >= 0 && xx >= 0 && (yy as usize) < g.height && (xx as usize) < g.width {
                    let (yy, xx) = (yy as usize, xx as usize);
                    if keep(yy, xx) {
                        acc += f64::from(w[[o, (c * k + ky) * k + kx]]) * f64::from(x[[b, c, yy, xx]]);
                    }
                }
            }
        }
    }
    acc
}

/// The tile of output pixel (i, j) under the fixed maps of the design (§2), on an `oh × ow`
/// output map with `n` tiles (q = √n); `None` for the random schemes. Perforated: the map at
/// test time (every patch on the single kernel).
pub fn design_map(scheme: Scheme, n: usize, oh: usize, ow: usize, i: usize, j: usize) -> Option<u32> {
    let q = (n as f64).sqrt().round() as usize;
    match scheme {
        Scheme::None | Scheme::Perforated => Some(0),
        Scheme::ImageOverlap | Scheme::ImagePad => Some(((i / (oh / q)) * q + j / (ow / q)) as u32),
        Scheme::Alternate => Some(((i % q) * q + j % q) as u32),
        Scheme::Random | Scheme::RandomFixed => None,
    }
}

/// Image-pad: whether input pixel (y, x) lies in the input region of `tile` — pixel (y, x)
/// belongs to region (⌊y·q/H⌋, ⌊x·q/W⌋), region (r, c) is tile r·q + c.
pub fn in_tile_region(g: &ConvGeometry, n: usize, tile: u32, y: usize, x: usize) -> bool {
    let q = (n as f64).sqrt().round() as usize;
    let (r, c) = (tile as usize / q, tile as usize % q);
    y * q / g.height == r && x * q / g.width == c
}
