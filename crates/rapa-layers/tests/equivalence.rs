//! Plain convolution against a direct loop; n identical kernels equal the plain convolution;
//! with n distinct kernels every patch is computed by the kernel and bias of its assigned tile.

mod common;

use common::{
    design_map, direct_conv, direct_patch, in_tile_region, layer, random_kernel, random4, set_all, set_distinct,
};
use rapa_layers::{ConvGeometry, DROPPED, Scheme};

fn geometries() -> Vec<ConvGeometry> {
    vec![
        ConvGeometry { in_channels: 3, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 },
        ConvGeometry { in_channels: 2, height: 9, width: 9, kernel: 3, stride: 2, pad: 1 },
        ConvGeometry { in_channels: 4, height: 6, width: 6, kernel: 3, stride: 1, pad: 0 },
    ]
}

/// f32 sums of ≤ 75 products w·x (|w|, |x| ≤ 1) plus a bias (|b| ≤ 1.5) in another order than
/// the f64 (or f32) reference: |Δ| ≤ 76·2⁻²⁴·Σ|terms| ≤ 76·6e-8·76.5 ≈ 3.5e-4 in the worst
/// case, so 1e-3 is a safe bound — while a wrong kernel, bias or input pixel errs by O(0.1–1).
const TOL: f32 = 1e-3;

#[test]
fn plain_convolution_matches_direct_loop() {
    for g in geometries() {
        let mut l = layer(g, 5, 1, Scheme::None, 1);
        // Nonzero biases: the bias input (the patch's constant 1) is part of what is checked.
        let w = random_kernel(5, g.patch_len() + 1, 40);
        set_all(&mut l, w.view());
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
    let w = random_kernel(6, g.patch_len() + 1, 41);
    set_all(&mut plain, w.view());
    let reference = plain.forward(x.view()).unwrap();
    // The reference itself is the direct convolution, biases included.
    let d = direct_conv(&g, w.view(), x.view());
    let err = (&d - &reference).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err < TOL, "plain layer vs direct loop: max error {err}");
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

/// Image-pad with the same kernel (and a nonzero bias) in every tile: every patch equals, up
/// to f32 rounding, the direct convolution of the input with every pixel outside its tile's
/// region zeroed (region of input pixel (y, x): (⌊y·q/H⌋, ⌊x·q/W⌋)), at stride 1 and 2. The
/// masking matters exactly where the patch's window reads a pixel of another region: those
/// patches differ from the unmasked convolution, all others equal it.
#[test]
fn image_pad_equals_the_convolution_of_each_tiles_masked_region() {
    for g in [
        // 8×8 map, n = 4: 4×4 regions; a 5×5 window reaches 2 pixels past its centre.
        ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 },
        // 4×4 map (2×2 per tile) over 4×4 input regions: windows at rows/cols 3..6 cross.
        ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 2, pad: 1 },
    ] {
        let (oh, ow, n, c_out, batch) = (g.out_height(), g.out_width(), 4, 3, 2);
        let x = random4((batch, 2, 8, 8), 6);
        let w = random_kernel(c_out, g.patch_len() + 1, 42);
        let mut l = layer(g, c_out, n, Scheme::ImagePad, 8);
        set_all(&mut l, w.view());
        let y = l.forward(x.view()).unwrap();
        let (mut crossing, mut inside) = (0, 0);
        for b in 0..batch {
            for i in 0..oh {
                for j in 0..ow {
                    let t = design_map(Scheme::ImagePad, n, oh, ow, i, j).unwrap();
                    assert_eq!(l.last_assignment()[b * oh * ow + i * ow + j], t, "tile of ({i},{j})");
                    let masked = |yy: usize, xx: usize| in_tile_region(&g, n, t, yy, xx);
                    // Does the window read (inside the image) a pixel of another region?
                    let mut crosses = false;
                    for ky in 0..g.kernel {
                        for kx in 0..g.kernel {
                            let yy = (i * g.stride + ky) as isize - g.pad as isize;
                            let xx = (j * g.stride + kx) as isize - g.pad as isize;
                            let inside_image = yy >= 0 && xx >= 0 && yy < g.height as isize && xx < g.width as isize;
                            crosses |= inside_image && !masked(yy as usize, xx as usize);
                        }
                    }
                    if crosses {
                        crossing += 1;
                    } else {
                        inside += 1;
                    }
                    for o in 0..c_out {
                        let want = direct_patch(&g, w.view(), x.view(), b, o, i, j, &masked);
                        let got = f64::from(y[[b, o, i, j]]);
                        assert!((got - want).abs() < f64::from(TOL), "{g:?} ({b},{o},{i},{j}): {got} vs {want}");
                        let unmasked = direct_patch(&g, w.view(), x.view(), b, o, i, j, &|_, _| true);
                        if !crosses {
                            assert_eq!(want, unmasked, "({i},{j}) reads only its own region");
                        } else if o == 0 {
                            assert!((got - unmasked).abs() > 1e-3, "{g:?}: crossing patch ({i},{j}) unchanged");
                        }
                    }
                }
            }
        }
        assert!(crossing > 0 && inside > 0, "{g:?}: {crossing} crossing, {inside} inside");
    }
}

/// The schemes and tile counts checked per geometry: every scheme, square counts for the
/// region/alternate maps (those that divide the output sides), and n = 4 and 5 for the random
/// schemes and perforation (5 divides no patch count here: unequal loads).
fn scheme_cases(g: &ConvGeometry) -> Vec<(Scheme, usize)> {
    let mut v = vec![(Scheme::None, 1)];
    for scheme in [Scheme::Random, Scheme::RandomFixed, Scheme::Perforated] {
        v.extend([(scheme, 4), (scheme, 5)]);
    }
    for scheme in [Scheme::ImageOverlap, Scheme::ImagePad, Scheme::Alternate] {
        for q in [2usize, 3] {
            if g.out_height().is_multiple_of(q) && g.out_width().is_multiple_of(q) {
                v.push((scheme, q * q));
            }
        }
    }
    v
}

/// With a distinct random kernel and a distinct nonzero bias in every tile and the assignment
/// held, every output (image b, channel o, patch p) equals the direct convolution with the
/// kernel and bias of tile `last_assignment()[b·P + p]` (perforated training: exactly 0 for a
/// dropped patch). The assignment is balanced per image (⌊P/n⌋ or ⌈P/n⌉ patches per tile;
/// perforated training keeps ⌈P/n⌉), equals the design's map for the fixed schemes, is one
/// partition for every image with random-fixed, and each tile computed exactly its own rows.
/// Stride 1 and 2, pad 2, 1 and 0, n = 1, 4, 5, 9.
#[test]
fn every_patch_is_computed_with_its_assigned_tiles_kernel_and_bias() {
    let (c_out, batch) = (3, 3);
    let mut covered = std::collections::BTreeSet::new();
    for (gi, g) in [
        ConvGeometry { in_channels: 3, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 },
        ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 1, pad: 0 },
        ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 2, pad: 1 },
    ]
    .into_iter()
    .enumerate()
    {
        let (oh, ow, p_count) = (g.out_height(), g.out_width(), g.n_patches());
        let x = random4((batch, g.in_channels, g.height, g.width), 50 + gi as u64);
        for (scheme, n) in scheme_cases(&g) {
            for training in [true, false] {
                let ctx = format!("{scheme} n={n} training={training} {g:?}");
                let mut l = layer(g, c_out, n, scheme, 60);
                let kernels = set_distinct(&mut l, 100 * gi as u64 + n as u64);
                assert_eq!(kernels.len(), scheme.n_kernels(n), "{ctx}");
                l.set_training(training);
                l.hold_assignment(true);
                let y = l.forward(x.view()).unwrap();
                let a = l.last_assignment().to_vec();
                assert_eq!(a.len(), batch * p_count, "{ctx}");
                // Held: a second pass repeats the assignment and the outputs.
                assert_eq!(l.forward(x.view()).unwrap(), y, "{ctx}: held pass differs");
                assert_eq!(l.last_assignment(), &a[..], "{ctx}: held assignment differs");

                let dropping = scheme == Scheme::Perforated && training && n > 1;
                let mut rows = vec![0u64; kernels.len()];
                for b in 0..batch {
                    let img = &a[b * p_count..(b + 1) * p_count];
                    let mut load = vec![0usize; n];
                    for &t in img.iter().filter(|&&t| t != DROPPED) {
                        load[t as usize] += 1;
                        rows[t as usize] += 1;
                    }
                    let (lo, hi) = (p_count / n, p_count.div_ceil(n));
                    if dropping {
                        assert_eq!(load[0], hi, "{ctx}: perforation keeps ⌈P/n⌉");
                        assert_eq!(img.iter().filter(|&&t| t == DROPPED).count(), p_count - hi, "{ctx}");
                    } else {
                        assert!(img.iter().all(|&t| t != DROPPED), "{ctx}: dropped patch");
                        let (lo, hi) = if kernels.len() == 1 { (p_count, p_count) } else { (lo, hi) };
                        assert!(load[..kernels.len()].iter().all(|&c| c == lo || c == hi), "{ctx}: loads {load:?}");
                    }
                    if scheme == Scheme::RandomFixed {
                        assert_eq!(img, &a[..p_count], "{ctx}: image {b} has another partition");
                        let mut want = vec![0; p_count];
                        l.assigner().assign(b as u64 + 7, b as u64, training, &mut want);
                        assert_eq!(img, &want[..], "{ctx}: not the assigner's fixed partition");
                    }
                    for i in 0..oh {
                        for j in 0..ow {
                            let t = img[i * ow + j];
                            if !dropping && let Some(want) = design_map(scheme, n, oh, ow, i, j) {
                                assert_eq!(t, want, "{ctx}: tile of ({i},{j})");
                            }
                            for o in 0..c_out {
                                let got = y[[b, o, i, j]];
                                if t == DROPPED {
                                    assert_eq!(got, 0.0, "{ctx}: dropped ({b},{o},{i},{j})");
                                    continue;
                                }
                                let keep = |yy: usize, xx: usize| {
                                    scheme != Scheme::ImagePad || in_tile_region(&g, n, t, yy, xx)
                                };
                                let w = kernels[t as usize].view();
                                let want = direct_patch(&g, w, x.view(), b, o, i, j, &keep);
                                assert!(
                                    (f64::from(got) - want).abs() < f64::from(TOL),
                                    "{ctx}: ({b},{o},{i},{j}) on tile {t}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
                if scheme == Scheme::Random && n > 1 {
                    assert!((1..batch).any(|b| a[b * p_count..][..p_count] != a[..p_count]), "{ctx}: one draw");
                }
                // Each tile ran exactly its own patches (two passes).
                for (t, tile) in l.tiles().iter().enumerate() {
                    assert_eq!(tile.counters().forward_cycles, 2 * rows[t], "{ctx}: tile {t} cycles");
                }
                covered.insert((scheme.name(), n));
            }
        }
    }
    for scheme in Scheme::ALL {
        assert!(covered.iter().any(|&(s, _)| s == scheme.name()), "{scheme} not checked");
    }
    for (scheme, n) in [(Scheme::Random, 5), (Scheme::ImagePad, 9), (Scheme::Alternate, 9)] {
        assert!(covered.contains(&(scheme.name(), n)), "{scheme} n={n} not checked");
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
