//! Helpers shared by the layer tests.
#![allow(dead_code)]

use crossbar_sim::rng::seeded;
use ndarray::{Array4, ArrayView2, ArrayView4};
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
pub fn direct_conv(g: &ConvGeometry, w: ArrayView2<'_, f32>, x: ArrayView4<'_, f32>) -> Array4<f32> {
    let (n, c_out) = (x.shape()[0], w.nrows());
    let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
    let mut y = Array4::zeros((n, c_out, oh, ow));
    for b in 0..n {
        for o in 0..c_out {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = w[[o, g.patch_len()]];
                    for c in 0..g.in_channels {
                        for ky in 0..k {
                            for kx in 0..k {
                                let yy = (i * g.stride + ky) as isize - g.pad as isize;
                                let xx = (j * g.stride + kx) as isize - g.pad as isize;
                                if yy >= 0 && xx >= 0 && (yy as usize) < g.height && (xx as usize) < g.width {
                                    acc += w[[o, (c * k + ky) * k + kx]] * x[[b, c, yy as usize, xx as usize]];
                                }
                            }
                        }
                    }
                    y[[b, o, i, j]] = acc;
                }
            }
        }
    }
    y
}

/// Programs the same kernel matrix into every tile.
pub fn set_all(layer: &mut RapaConv2d, w: ArrayView2<'_, f32>) {
    for t in layer.tiles_mut() {
        t.set_weights(w).unwrap();
    }
}
