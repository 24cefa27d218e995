//! Every scheme gives balanced partitions; random ones behave as specified; image and
//! alternate match hand-checked maps; bad tile counts are rejected at construction.

use rapa_layers::{Assigner, ConvGeometry, DROPPED, LayerError, Scheme};

fn geom(side: usize) -> ConvGeometry {
    ConvGeometry { in_channels: 1, height: side, width: side, kernel: 3, stride: 1, pad: 1 }
}

fn assign(a: &Assigner, call: u64, image: u64, training: bool) -> Vec<u32> {
    let mut out = vec![0; a.n_patches()];
    a.assign(call, image, training, &mut out);
    out
}

fn assert_balanced(tiles: &[u32], n: usize) {
    let mut counts = vec![0usize; n];
    for &t in tiles {
        counts[t as usize] += 1;
    }
    let (lo, hi) = (tiles.len() / n, tiles.len().div_ceil(n));
    assert!(counts.iter().all(|&c| c == lo || c == hi), "unbalanced: {counts:?}");
}

#[test]
fn every_scheme_is_balanced() {
    for scheme in [Scheme::Random, Scheme::RandomFixed, Scheme::ImageOverlap, Scheme::ImagePad, Scheme::Alternate] {
        for (side, n) in [(8, 4), (32, 16), (16, 16)] {
            let a = Assigner::new(scheme, n, &geom(side), 3).unwrap();
            for image in 0..5 {
                assert_balanced(&assign(&a, 0, image, true), n);
            }
        }
    }
    // Random also for counts that do not divide P: 64 patches over 5 tiles → 12 or 13.
    let a = Assigner::new(Scheme::Random, 5, &geom(8), 3).unwrap();
    assert_balanced(&assign(&a, 1, 2, true), 5);
}

#[test]
fn random_changes_per_image_call_and_seed_fixed_never_changes() {
    let a = Assigner::new(Scheme::Random, 16, &geom(32), 1).unwrap();
    let base = assign(&a, 0, 0, true);
    assert_ne!(base, assign(&a, 0, 1, true), "same partition for two images");
    assert_ne!(base, assign(&a, 1, 0, true), "same partition for two forward calls");
    assert_eq!(base, assign(&a, 0, 0, true), "not reproducible");
    let b = Assigner::new(Scheme::Random, 16, &geom(32), 2).unwrap();
    assert_ne!(base, assign(&b, 0, 0, true), "seed has no effect");

    let f = Assigner::new(Scheme::RandomFixed, 16, &geom(32), 1).unwrap();
    let fixed = assign(&f, 0, 0, true);
    for (call, image) in [(0, 1), (5, 0), (7, 9)] {
        assert_eq!(fixed, assign(&f, call, image, call % 2 == 0));
    }
    assert_balanced(&fixed, 16);
}

#[test]
fn image_and_alternate_match_hand_checked_maps() {
    // 4×4 output map, n = 4 (q = 2).
    let overlap = Assigner::new(Scheme::ImageOverlap, 4, &geom(4), 0).unwrap();
    #[rustfmt::skip]
    let want = vec![
        0, 0, 1, 1,
        0, 0, 1, 1,
        2, 2, 3, 3,
        2, 2, 3, 3,
    ];
    assert_eq!(assign(&overlap, 0, 0, true), want);
    let alternate = Assigner::new(Scheme::Alternate, 4, &geom(4), 0).unwrap();
    #[rustfmt::skip]
    let want = vec![
        0, 1, 0, 1,
        2, 3, 2, 3,
        0, 1, 0, 1,
        2, 3, 2, 3,
    ];
    assert_eq!(assign(&alternate, 0, 0, true), want);
    // Image-pad regions of the 4×4 input: tile 3 keeps rows 2..4, columns 2..4.
    let pad = Assigner::new(Scheme::ImagePad, 4, &geom(4), 0).unwrap();
    let r = pad.input_region(3).unwrap();
    assert_eq!((r.y0, r.y1, r.x0, r.x1), (2, 4, 2, 4));
    assert!(overlap.input_region(3).is_none());
}

#[test]
fn perforated_keeps_one_in_n_in_training_only() {
    let a = Assigner::new(Scheme::Perforated, 4, &geom(8), 0).unwrap();
    let t = assign(&a, 0, 0, true);
    assert_eq!(t.iter().filter(|&&v| v == 0).count(), 16);
    assert_eq!(t.iter().filter(|&&v| v == DROPPED).count(), 48);
    assert_ne!(t, assign(&a, 0, 1, true));
    assert!(assign(&a, 0, 0, false).iter().all(|&v| v == 0));
}

#[test]
fn schemes_reject_unsuitable_tile_counts() {
    for scheme in [Scheme::ImageOverlap, Scheme::ImagePad, Scheme::Alternate] {
        let e = Assigner::new(scheme, 8, &geom(32), 0).unwrap_err();
        assert!(matches!(e, LayerError::Scheme { n_tiles: 8, .. }), "{e:?}");
        assert!(e.to_string().contains("square"), "{e}");
        // 9 tiles (q = 3) on a 32×32 map: regions would not be balanced.
        let e = Assigner::new(scheme, 9, &geom(32), 0).unwrap_err();
        assert!(e.to_string().contains("divisible"), "{e}");
    }
    assert!(Assigner::new(Scheme::None, 4, &geom(8), 0).is_err());
    assert!(Assigner::new(Scheme::Random, 0, &geom(8), 0).is_err());
    assert!(Assigner::new(Scheme::Random, 65, &geom(8), 0).is_err());
    assert_eq!("image-pad".parse::<Scheme>().unwrap(), Scheme::ImagePad);
    assert!("diagonal".parse::<Scheme>().unwrap_err().to_string().contains("random-fixed"));
}

/// The random scheme's partition of each image is uniform over all balanced partitions: with
/// 4 patches over 4 tiles it is a permutation, and each of the 24 must come up equally often.
/// χ² over 24 cells for 4 800 images (200 expected each), df = 23: the 0.1 % critical value is
/// 49.7. A biased shuffle fails it (a Sattolo shuffle reaches only the 6 cyclic permutations:
/// χ² ≈ 14 400), and so does a stream that repeats across images.
#[test]
fn random_partitions_are_uniform_over_images_and_calls() {
    let a = Assigner::new(Scheme::Random, 4, &geom(2), 7).unwrap();
    assert_eq!(a.n_patches(), 4);
    // (call, image) pairs are distinct streams: (1, i) is not (i + 1, 0), as it would be with
    // one stream per call + image.
    let differ = (0..20).filter(|&i| assign(&a, 1, i, true) != assign(&a, i + 1, 0, true)).count();
    assert!(differ >= 12, "{differ} of 20 differ"); // equal by chance with probability 1/24 each
    let mut counts = std::collections::HashMap::new();
    let images = 4_800u64;
    for image in 0..images {
        // Half the images from one forward call, half from another.
        let call = image % 2;
        *counts.entry(assign(&a, call, image / 2, true)).or_insert(0u64) += 1;
    }
    assert_eq!(counts.len(), 24, "not every permutation occurs: {}", counts.len());
    let e = images as f64 / 24.0;
    let chi2: f64 = counts.values().map(|&o| (o as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 49.7, "χ² = {chi2}");
}
