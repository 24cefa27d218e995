//! Plain convolution against a direct loop; n identical kernels equal the plain convolution.

mod common;

use common::{direct_conv, layer, random4, set_all};
use rapa_layers::{ConvGeometry, Scheme};

fn geometries() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry { in_channels: 3, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 },
        ConvGeometry { in_channels: 2, height: 9, width: 9, kernel: 3, stride: 2, pad: 1 },
        ConvGeometry { in_channels: 4, height: 6, width: 6, kernel: 3, stride: 1, pad: 0 },
    ]
}

/// f32 sums of ≤ 76 products of magnitude ≤ 1 (plus the bias) in a different order:
/// |Δ| ≤ 76·2⁻²³·Σ|terms| ≈ 1e-5·76·0.1; 1e-4 is a safe bound.
const TOL: f32 = 1e-4;

#[test]
fn plain_convolution_matches_direct_loop() {
    for g in geometries() {
        let mut l = layer(g, 5, 1, Scheme::None, 1);
        let w = l.tiles()[0].weights().to_owned();
        let x = random4((3, g.in_channels, g.height, g.width), 2);
        let y = l.forward(x.view()).unwrap();
        let d = direct_conv(&g, w.view(), x.view());
        assert_eq!(y.shape(), d.shape());
        let err = (&y - &d).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
        assert!(err < TOL, "{g:?}: max error {err}");
    }
}

#[test]
fn identical_kernels_equal_the_plain_convolution() {
    let g = ConvGeometry { in_channels: 3, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 };
    let x = random4((4, 3, 8, 8), 3);
    let mut plain = layer(g, 6, 1, Scheme::None, 4);
    let w = plain.tiles()[0].weights().to_owned();
    let reference = plain.forward(x.view()).unwrap();
    for (scheme, training) in [
        (Scheme::Random, true),
        (Scheme::Random, false),
        (Scheme::RandomFixed, true),
        (Scheme::ImageOverlap, true),
        (Scheme::Alternate, true),
        (Scheme::Perforated, false),
    ] {
        let mut l = layer(g, 6, 4, scheme, 5);
        set_all(&mut l, w.view());
        l.set_training(training);
        let y = l.forward(x.view()).unwrap();
        // Each output is the same dot product computed by a different tile: identical bits are
        // not guaranteed (GEMM blocking depends on the row count), equality up to rounding is.
        let err = (&y - &reference).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
        assert!(err < TOL, "{scheme} (training {training}): max error {err}");
    }
}

#[test]
fn image_pad_differs_only_at_region_borders() {
    // 8×8 map, n = 4: 4×4 regions. A 5×5 kernel with pad 2 reaches 2 pixels beyond its own
    // output pixel, so patches within 2 of an internal region border see foreign pixels.
    let g = ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 };
    let x = random4((2, 2, 8, 8), 6);
    let mut plain = layer(g, 3, 1, Scheme::None, 7);
    let w = plain.tiles()[0].weights().to_owned();
    let reference = plain.forward(x.view()).unwrap();
    let mut l = layer(g, 3, 4, Scheme::ImagePad, 8);
    set_all(&mut l, w.view());
    let y = l.forward(x.view()).unwrap();
    let near_border = |v: usize| (2..6).contains(&v); // distance < 2 from the border at 4
    for b in 0..2 {
        for o in 0..3 {
            for i in 0..8 {
                for j in 0..8 {
                    let diff = (y[[b, o, i, j]] - reference[[b, o, i, j]]).abs();
                    if near_border(i) || near_border(j) {
                        assert!(diff > 1e-6, "border patch ({i},{j}) unchanged");
                    } else {
                        assert!(diff < TOL, "interior patch ({i},{j}) differs by {diff}");
                    }
                }
            }
        }
    }
}

#[test]
fn perforated_training_zeroes_all_but_one_in_n() {
    let g = ConvGeometry { in_channels: 1, height: 8, width: 8, kernel: 3, stride: 1, pad: 1 };
    let mut l = layer(g, 2, 4, Scheme::Perforated, 9);
    assert_eq!(l.tiles().len(), 1);
    let x = random4((3, 1, 8, 8), 10);
    let y = l.forward(x.view()).unwrap();
    for b in 0..3 {
        let computed = (0..64).filter(|&p| y[[b, 0, p / 8, p % 8]] != 0.0).count();
        assert_eq!(computed, 16, "image {b}");
    }
    assert_eq!(l.tiles()[0].counters().forward_cycles, 48);
}
