//! Dataset loaders: round trips on files written in the real formats, every bad-input case,
//! normalization and augmentation, the synthetic set, and the real CIFAR-10 when present.

mod mat;

use std::path::{Path, PathBuf};

use crossbar_sim::rng::seeded;
use ndarray::Array4;
use rapa_train::data::{
    Augment, DataError, Dataset, Normalizer, fill_batch, load_cifar10, load_cifar100, read_cifar_file, read_svhn_mat,
    synthetic,
};

/// A fresh temporary directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rapa-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Record i: label bytes, then pixel bytes (i + channel·7 + position) mod 256.
fn cifar_records(n: usize, labels: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate().take(n) {
        out.extend_from_slice(label);
        out.extend((0..3072).map(|p| ((i + p / 1024 * 7 + p) % 256) as u8));
    }
    out
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar10_round_trip() {
    let d = tmp("c10");
    for k in 1..=5 {
        write(&d.join(format!("data_batch_{k}.bin")), &cifar_records(3, &[vec![k as u8], vec![0], vec![9]]));
    }
    write(&d.join("test_batch.bin"), &cifar_records(2, &[vec![4], vec![5]]));
    let s = load_cifar10(&d).unwrap();
    assert_eq!((s.train.len(), s.test.len(), s.train.n_classes), (15, 2, 10));
    assert_eq!(&s.train.labels[..3], &[1, 0, 9]);
    assert_eq!(s.train.labels[12], 5);
    assert_eq!(s.test.labels, vec![4, 5]);
    // Pixel bytes land in CHW order unchanged.
    assert_eq!(s.test.image(1)[0], 1);
    assert_eq!(s.test.image(1)[1024], (1 + 7 + 1024) as u8);
}

#[test]
fn cifar100_fine_and_coarse() {
    let d = tmp("c100");
    write(&d.join("train.bin"), &cifar_records(2, &[vec![3, 77], vec![19, 99]]));
    write(&d.join("test.bin"), &cifar_records(1, &[vec![0, 5]]));
    let fine = load_cifar100(&d, true).unwrap();
    assert_eq!((fine.train.labels.clone(), fine.train.n_classes), (vec![77, 99], 100));
    let coarse = load_cifar100(&d, false).unwrap();
    assert_eq!((coarse.train.labels.clone(), coarse.train.n_classes), (vec![3, 19], 20));
    assert_eq!(coarse.test.labels, vec![0]);
}

#[test]
fn cifar_bad_inputs() {
    let d = tmp("bad");
    // Truncated: 2 full records and 100 bytes of a third.
    let mut bytes = cifar_records(3, &[vec![1], vec![2], vec![3]]);
    bytes.truncate(2 * 3073 + 100);
    let p = d.join("trunc.bin");
    write(&p, &bytes);
    match read_cifar_file(&p, 1, 0, 10).unwrap_err() {
        DataError::Truncated { offset, record_len, .. } => assert_eq!((offset, record_len), (2 * 3073, 3073)),
        e => panic!("{e:?}"),
    }
    // Label out of range in record 1.
    let p = d.join("label.bin");
    write(&p, &cifar_records(2, &[vec![1], vec![10]]));
    let e = read_cifar_file(&p, 1, 0, 10).unwrap_err();
    assert!(matches!(e, DataError::LabelOutOfRange { offset: 3073, label: 10, .. }), "{e:?}");
    assert!(e.to_string().contains("label.bin") && e.to_string().contains("3073"), "{e}");
    // Missing file.
    let e = load_cifar10(&d).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("data_batch_1.bin"), "{e}");
    // Oversized: more than MAX_RECORDS records (checked from the length, nothing read).
    let p = d.join("huge.bin");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len((rapa_train::data::MAX_RECORDS + 1) * 3073).unwrap();
    let e = read_cifar_file(&p, 1, 0, 10).unwrap_err();
    assert!(matches!(e, DataError::Oversized { .. }), "{e:?}");
}

#[test]
fn svhn_round_trip_uint8_and_double_labels() {
    let d = tmp("svhn");
    let n = 3;
    // X in MATLAB column-major order: X[r, c, ch, i] = (r + 2c + 3ch + 5i) mod 256.
    let mut x = vec![0u8; 3072 * n];
    for i in 0..n {
        for ch in 0..3 {
            for c in 0..32 {
                for r in 0..32 {
                    x[r + 32 * (c + 32 * (ch + 3 * i))] = ((r + 2 * c + 3 * ch + 5 * i) % 256) as u8;
                }
            }
        }
    }
    for (name, y) in [
        ("u8", mat::Var::u8("y", vec![n, 1], vec![10, 1, 5])),
        ("f64", mat::Var::f64("y", vec![n, 1], vec![10.0, 1.0, 5.0])),
    ] {
        for compress in [false, true] {
            let p = d.join(format!("{name}-{compress}.mat"));
            write(&p, &mat::file(&[mat::Var::u8("X", vec![32, 32, 3, n], x.clone()), y.clone()], compress));
            let ds = read_svhn_mat(&p).unwrap();
            assert_eq!(ds.labels, vec![0, 1, 5], "{name}");
            // Our layout: plane ch, row r, column c.
            let img = ds.image(2);
            assert_eq!(img[1024 + 4 * 32 + 7], 4 + 14 + 3 + 10);
        }
    }
}

#[test]
fn svhn_bad_inputs() {
    let d = tmp("svhn-bad");
    let x = mat::Var::u8("X", vec![32, 32, 3, 1], vec![0; 3072]);
    let p = d.join("noy.mat");
    write(&p, &mat::file(&[x.clone(), mat::Var::u8("labels", vec![1, 1], vec![1])], false));
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(&e, DataError::MissingVariable { name, .. } if name == "y"), "{e:?}");
    let p = d.join("shape.mat");
    write(
        &p,
        &mat::file(
            &[mat::Var::u8("X", vec![32, 32, 1, 3], vec![0; 3072]), mat::Var::u8("y", vec![1, 1], vec![1])],
            false,
        ),
    );
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(&e, DataError::BadVariable { name, .. } if name == "X"), "{e:?}");
    let p = d.join("label.mat");
    write(&p, &mat::file(&[x, mat::Var::u8("y", vec![1, 1], vec![11])], false));
    assert!(matches!(read_svhn_mat(&p).unwrap_err(), DataError::LabelOutOfRange { label: 11, .. }));
    let p = d.join("garbage.mat");
    write(&p, b"this is not a MATLAB file at all");
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Mat { .. }) && e.to_string().contains("garbage.mat"), "{e}");
    let e = read_svhn_mat(&d.join("absent.mat")).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }));
}

#[test]
fn normalization_and_augmentation() {
    // Two images: channel c of image i is constant (i·100 + c·10).
    let mut images = Vec::new();
    for i in 0..2u8 {
        for c in 0..3u8 {
            images.extend(std::iter::repeat_n(i * 100 + c * 10, 1024));
        }
    }
    let ds = Dataset { images, labels: vec![0, 1], n_classes: 2, name: "t".into() };
    let n = Normalizer::fit(&ds);
    for c in 0..3 {
        let mean = (f32::from(c as u8 * 10) + 50.0) / 255.0;
        assert!((n.mean[c] - mean).abs() < 1e-6);
        assert!((n.std[c] - 50.0 / 255.0).abs() < 1e-6);
    }
    // Mirror: a gradient image flips columns exactly.
    let mut img = vec![0u8; 3072];
    for (p, v) in img.iter_mut().enumerate() {
        *v = (p % 32) as u8;
    }
    let ds = Dataset { images: img, labels: vec![0], n_classes: 1, name: "g".into() };
    let id = Normalizer::identity();
    let mut plain = Array4::zeros((1, 3, 32, 32));
    fill_batch(&ds, &[0], &id, None, &mut plain);
    let mirror_only = Augment { mirror: true, brightness: 0.0 };
    let mut flips = 0;
    for s in 0..20 {
        let mut out = Array4::zeros((1, 3, 32, 32));
        fill_batch(&ds, &[0], &id, Some((&mirror_only, &mut seeded(s))), &mut out);
        if out[[0, 0, 0, 0]] != plain[[0, 0, 0, 0]] {
            flips += 1;
            assert_eq!(out[[0, 1, 5, 3]], plain[[0, 1, 5, 28]]);
        } else {
            assert_eq!(out, plain);
        }
    }
    assert!(flips > 0 && flips < 20);
    // Brightness: one shift per image within ±b; same seed, same batch.
    let bright = Augment { mirror: false, brightness: 0.1 };
    let mut a = Array4::zeros((1, 3, 32, 32));
    fill_batch(&ds, &[0], &id, Some((&bright, &mut seeded(3))), &mut a);
    let shift = a[[0, 0, 0, 0]] - plain[[0, 0, 0, 0]];
    assert!(shift.abs() <= 0.1 + 1e-6 && shift != 0.0);
    assert!((&a - &plain).iter().all(|d| (d - shift).abs() < 1e-5));
    let mut b = Array4::zeros((1, 3, 32, 32));
    fill_batch(&ds, &[0], &id, Some((&bright, &mut seeded(3))), &mut b);
    assert_eq!(a, b);
}

#[test]
fn synthetic_is_deterministic_balanced_and_not_linear() {
    let a = synthetic(2_000, 1_000, 7);
    assert_eq!(a, synthetic(2_000, 1_000, 7));
    assert_ne!(a.train.images, synthetic(2_000, 1_000, 8).train.images);
    assert_ne!(a.train.images[..3072], a.test.images[..3072]);
    for c in 0..10u16 {
        assert_eq!(a.train.labels.iter().filter(|&&l| l == c).count(), 200);
    }
    // A softmax-regression (linear) classifier on normalized pixels, full-batch gradient
    // descent: it must not solve the set (test error stays far above what the ConvNet reaches,
    // see tests/train.rs).
    let err = linear_test_error(&synthetic(5_000, 1_000, 1));
    println!("linear softmax regression on synthetic(5000, 1000, seed 1): test error {err:.3}");
    assert!(err > 0.5, "a linear model reaches {err} test error");
}

fn linear_test_error(s: &rapa_train::data::Split) -> f64 {
    use ndarray::{Array2, Axis};
    let norm = Normalizer::fit(&s.train);
    let to_matrix = |ds: &Dataset| {
        let mut b = Array4::zeros((ds.len(), 3, 32, 32));
        fill_batch(ds, &(0..ds.len()).collect::<Vec<_>>(), &norm, None, &mut b);
        b.into_shape_with_order((ds.len(), 3072)).unwrap()
    };
    let (x, xt) = (to_matrix(&s.train), to_matrix(&s.test));
    let mut w = Array2::<f32>::zeros((3072, 10));
    for _ in 0..100 {
        let logits = x.dot(&w);
        let (_, g, _) = rapa_train::layers::SoftmaxCrossEntropy::loss_grad(logits.view(), &s.train.labels);
        w.scaled_add(-0.5, &x.t().dot(&g));
    }
    let pred = xt.dot(&w);
    let wrong = pred
        .axis_iter(Axis(0))
        .zip(&s.test.labels)
        .filter(|(r, l)| rapa_train::layers::argmax_row(&r.to_vec()) != usize::from(**l))
        .count();
    wrong as f64 / s.test.len() as f64
}

#[test]
fn real_cifar10_when_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cifar10-jpeg");
    if !dir.join("data_batch_1.bin").exists() {
        println!("skipped: {} not found", dir.display());
        return;
    }
    let s = load_cifar10(&dir).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (50_000, 10_000));
    for c in 0..10u16 {
        assert_eq!(s.train.labels.iter().filter(|&&l| l == c).count(), 5_000);
        assert_eq!(s.test.labels.iter().filter(|&&l| l == c).count(), 1_000);
    }
    assert_eq!(s.train.images.len(), 50_000 * 3072);
}
