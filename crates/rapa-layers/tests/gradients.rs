//! Gradient checks against central finite differences, for every scheme, stride 1 and 2,
//! with and without padding, n = 4, 5 and 9: the input gradient and every tile's weight
//! gradient.
//!
//! The layer is linear in its input and in its weights, so a central difference has no
//! truncation error; what remains is f32 rounding. Each output carries at most
//! K·2⁻²⁴·Σ|w·x| ≈ 1e-6 of rounding; the loss L = Σ r·y is accumulated in f64 over ~10³
//! outputs, so its error is a random walk of ≈ √10³·1e-6 ≈ 3e-5, and the difference quotient
//! with h = 0.5 is off by ≈ 3e-5. The tolerance 2e-3·max(1, |g|) leaves a wide margin above
//! that while any indexing error (a wrong or missing patch, a mis-scattered gradient) changes
//! gradients by O(0.1) or more.

mod common;

use common::{layer, random4};
use ndarray::{Array2, Array4, ArrayView4};
use rapa_layers::{ConvGeometry, RapaConv2d, Scheme};

const H: f32 = 0.5;

fn loss(l: &mut RapaConv2d, x: ArrayView4<'_, f32>, r: &Array4<f32>) -> f64 {
    let y = l.forward(x).unwrap();
    y.iter().zip(r).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum()
}

/// One forward, backward and update at `lr`, then the weights put back: the weights before
/// and each tile's step W_before − W_after.
fn update_steps(
    l: &mut RapaConv2d,
    x: ArrayView4<'_, f32>,
    r: &Array4<f32>,
    lr: f32,
) -> (Vec<Array2<f32>>, Vec<Array2<f32>>) {
    l.forward(x).unwrap();
    l.backward(r.view()).unwrap();
    let before: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
    l.update(lr).unwrap();
    let steps: Vec<_> = l.tiles().iter().zip(&before).map(|(t, w)| w - &t.weights()).collect();
    for (t, w0) in before.iter().enumerate() {
        l.tiles_mut()[t].set_weights(w0.view()).unwrap();
    }
    (before, steps)
}

fn close(fd: f64, g: f64) -> bool {
    (fd - g).abs() <= 2e-3 * g.abs().max(1.0)
}

fn check(g: ConvGeometry, scheme: Scheme, n: usize) {
    let (batch, c_out) = (2, 3);
    let mut l = layer(g, c_out, n, scheme, 11);
    l.hold_assignment(true);
    let x = random4((batch, g.in_channels, g.height, g.width), 12);
    let r = random4((batch, c_out, g.out_height(), g.out_width()), 13);
    l.forward(x.view()).unwrap();
    let dx = l.backward(r.view()).unwrap();

    // Input gradient, every 3rd element.
    for (idx, &gx) in dx.indexed_iter().step_by(3) {
        let mut xp = x.clone();
        xp[idx] += H;
        let lp = loss(&mut l, xp.view(), &r);
        xp[idx] -= 2.0 * H;
        let lm = loss(&mut l, xp.view(), &r);
        let fd = (lp - lm) / (2.0 * f64::from(H));
        assert!(close(fd, f64::from(gx)), "{scheme} {g:?}: dL/dx{idx:?} = {gx}, finite difference {fd}");
    }

    // Weight gradients: update with lr = 1 on float tiles realizes W ← W − G exactly.
    let (before, grads) = update_steps(&mut l, x.view(), &r, 1.0);
    for (t, gt) in grads.iter().enumerate() {
        for (idx, &gw) in gt.indexed_iter().step_by(5) {
            let mut w = before[t].clone();
            w[idx] += H;
            l.tiles_mut()[t].set_weights(w.view()).unwrap();
            let lp = loss(&mut l, x.view(), &r);
            w[idx] -= 2.0 * H;
            l.tiles_mut()[t].set_weights(w.view()).unwrap();
            let lm = loss(&mut l, x.view(), &r);
            l.tiles_mut()[t].set_weights(before[t].view()).unwrap();
            let fd = (lp - lm) / (2.0 * f64::from(H));
            assert!(close(fd, f64::from(gw)), "{scheme} tile {t}: dL/dW{idx:?} = {gw}, finite difference {fd}");
        }
    }
}

#[test]
fn gradients_stride_1_padded() {
    let g = ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 };
    for scheme in Scheme::ALL {
        check(g, scheme, if scheme == Scheme::None { 1 } else { 4 });
    }
}

#[test]
fn gradients_stride_2_padded() {
    let g = ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 2, pad: 1 };
    for scheme in Scheme::ALL {
        check(g, scheme, if scheme == Scheme::None { 1 } else { 4 });
    }
}

/// Without padding the input gradient is scattered straight into the image (no padded
/// buffer): every scheme on a 6×6 output map (n = 4 and, for the square maps, n = 9).
#[test]
fn gradients_stride_1_unpadded() {
    let g = ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 1, pad: 0 };
    for scheme in Scheme::ALL {
        check(g, scheme, if scheme == Scheme::None { 1 } else { 4 });
    }
    for scheme in [Scheme::ImageOverlap, Scheme::ImagePad, Scheme::Alternate] {
        check(g, scheme, 9);
    }
}

/// n = 5 tiles share the 36 patches of a pad-0 map and the 64 of a padded one unequally (8 or
/// 7, 13 or 12 each), for the schemes that allow a count that is not a square.
#[test]
fn gradients_five_tiles_unequal_loads() {
    for g in [
        ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 1, pad: 0 },
        ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 },
    ] {
        for scheme in [Scheme::Random, Scheme::RandomFixed, Scheme::Perforated] {
            check(g, scheme, 5);
        }
    }
}

#[test]
fn order_of_calls_is_checked() {
    let g = ConvGeometry { in_channels: 1, height: 4, width: 4, kernel: 3, stride: 1, pad: 1 };
    let mut l = layer(g, 2, 1, Scheme::None, 1);
    assert!(l.backward(random4((1, 2, 4, 4), 1).view()).unwrap_err().to_string().contains("forward"));
    l.forward(random4((1, 1, 4, 4), 2).view()).unwrap();
    assert!(l.update(0.1).unwrap_err().to_string().contains("backward"));
    let e = l.backward(random4((2, 2, 4, 4), 1).view()).unwrap_err();
    assert!(e.to_string().contains("[1, 2, 4, 4]"), "{e}");
}

/// Each tile's update is scaled by its own learning-rate factor: with the assignment held and
/// the weights restored, an update at lr with factors s_t moves tile t by lr·s_t times the
/// lr = 1, s = 1 step (float tiles: W ← W − lr·s_t·G_t; only f32 rounding of W − step
/// differs, a few ulps of max(|W|, |G|), far inside the tolerance 8e-6·max(1, max|G|), while a
/// wrong or missing factor errs by ≥ 0.125·max|G|), and a factor 0 leaves the tile untouched.
#[test]
fn per_tile_learning_rate_factors_scale_each_tiles_step() {
    let g = ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 1, pad: 1 };
    let mut l = layer(g, 3, 4, Scheme::Random, 21);
    l.hold_assignment(true);
    let x = random4((2, 2, 8, 8), 22);
    let r = random4((2, 3, 8, 8), 23);
    let (_, unit) = update_steps(&mut l, x.view(), &r, 1.0);
    let scales = [1.0f32, 2.0, 0.0, 0.5];
    l.set_lr_scale(scales.to_vec()).unwrap();
    let (_, scaled) = update_steps(&mut l, x.view(), &r, 0.25);
    for (t, (u, d)) in unit.iter().zip(&scaled).enumerate() {
        let max = u.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.1, "tile {t} got no gradient");
        let err = (d - &(u * (0.25 * scales[t]))).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(err <= 1e-6 * max.max(1.0) * 8.0, "tile {t}: step off by {err} (max step {max})");
        if scales[t] == 0.0 {
            assert!(d.iter().all(|&v| v == 0.0), "tile {t} moved with factor 0");
        }
    }
    assert!(l.set_lr_scale(vec![1.0; 3]).is_err());
}

/// The first layer's shortcut, `backward_weights_only` (no input gradient, no backward MVMs),
/// stashes the same gradients as `backward`: the update that follows gives bit-identical
/// weights for every scheme (the finite-difference checks above go through `backward`).
#[test]
fn backward_weights_only_updates_as_backward_does() {
    let g = ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 };
    let x = random4((2, 2, 8, 8), 31);
    let r = random4((2, 3, 8, 8), 32);
    for scheme in Scheme::ALL {
        let n = if scheme == Scheme::None { 1 } else { 4 };
        let run = |full: bool| {
            let mut l = layer(g, 3, n, scheme, 33);
            l.forward(x.view()).unwrap();
            if full {
                l.backward(r.view()).unwrap();
            } else {
                l.backward_weights_only(r.view()).unwrap();
            }
            l.update(0.5).unwrap();
            l.tiles().iter().map(|t| t.weights().to_owned()).collect::<Vec<_>>()
        };
        let (full, short) = (run(true), run(false));
        assert_eq!(full, short, "{scheme}");
        let moved = layer(g, 3, n, scheme, 33).tiles().iter().zip(&full).any(|(t, w)| t.weights() != w);
        assert!(moved, "{scheme}: the update changed nothing");
    }
}
