//! Dataset loaders: round trips on files written in the real formats, every bad-input case,
//! normalization and augmentation, the synthetic set, and the real CIFAR-10 when present.

mod mat;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbar_sim::rng::seeded;
use ndarray::{Array2, Array4, Axis};
use rapa_train::data::{
    Augment, DataError, Dataset, DatasetKind, InputNorm, MAX_INFLATED, MAX_MAT_BYTES, MAX_RECORDS, Normalizer, Split,
    fill_batch, load, load_cifar10, load_cifar100, load_svhn, load_test, read_cifar_file, read_svhn_mat, synthetic,
};

/// A fresh temporary directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rapa-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Record i: label bytes, then pixel bytes (i + channel·7 + position) mod 256.
fn cifar_records(labels: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        out.extend_from_slice(label);
        out.extend((0..3072).map(|p| ((i + p / 1024 * 7 + p) % 256) as u8));
    }
    out
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------- CIFAR

#[test]
fn cifar10_round_trip() {
    let d = tmp("c10");
    for k in 1..=5 {
        write(&d.join(format!("data_batch_{k}.bin")), &cifar_records(&[vec![k as u8], vec![0], vec![9]]));
    }
    write(&d.join("test_batch.bin"), &cifar_records(&[vec![4], vec![5]]));
    let s = load_cifar10(&d).unwrap();
    assert_eq!((s.train.len(), s.test.len(), s.train.n_classes), (15, 2, 10));
    assert_eq!(&s.train.labels[..3], &[1, 0, 9]);
    assert_eq!(s.train.labels[12], 5);
    assert_eq!(s.test.labels, vec![4, 5]);
    assert_eq!(s.train.images.len(), 15 * 3072);
    // Pixel bytes land in CHW order unchanged.
    assert_eq!(s.test.image(1)[0], 1);
    assert_eq!(s.test.image(1)[1024], (1 + 7 + 1024) as u8);
    assert_eq!(s.test.image(1)[3071], ((1 + 14 + 3071) % 256) as u8);
    // `load` dispatches to the same loader.
    assert_eq!(load(&DatasetKind::Cifar10, &d, 0).unwrap(), s);
}

#[test]
fn cifar100_fine_and_coarse() {
    let d = tmp("c100");
    write(&d.join("train.bin"), &cifar_records(&[vec![3, 77], vec![19, 99]]));
    write(&d.join("test.bin"), &cifar_records(&[vec![0, 5]]));
    let fine = load_cifar100(&d, true).unwrap();
    assert_eq!((fine.train.labels.clone(), fine.train.n_classes), (vec![77, 99], 100));
    assert_eq!(fine.train.image(1), &cifar_records(&[vec![0, 0], vec![0, 0]])[3074 + 2..]);
    let coarse = load_cifar100(&d, false).unwrap();
    assert_eq!((coarse.train.labels.clone(), coarse.train.n_classes), (vec![3, 19], 20));
    assert_eq!(coarse.test.labels, vec![0]);
    assert_eq!(load(&DatasetKind::Cifar100 { fine: true }, &d, 0).unwrap(), fine);
    assert_eq!(load(&DatasetKind::Cifar100 { fine: false }, &d, 0).unwrap(), coarse);
}

#[test]
fn cifar_truncated_reports_the_incomplete_record() {
    let d = tmp("trunc");
    // 2 full records and 100 bytes of a third.
    let mut bytes = cifar_records(&[vec![1], vec![2], vec![3]]);
    bytes.truncate(2 * 3073 + 100);
    let p = d.join("trunc.bin");
    write(&p, &bytes);
    let e = read_cifar_file(&p, 1, 0, 10).unwrap_err();
    match &e {
        DataError::Truncated { offset, record_len, .. } => assert_eq!((*offset, *record_len), (2 * 3073, 3073)),
        e => panic!("{e:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("trunc.bin") && msg.contains("6146"), "{msg}");
    // The same file read as CIFAR-100 (3074-byte records): offset of record 2.
    let e = read_cifar_file(&p, 2, 1, 100).unwrap_err();
    assert!(matches!(e, DataError::Truncated { offset: 6148, record_len: 3074, .. }), "{e:?}");
}

#[test]
fn cifar_label_out_of_range_reports_the_label_byte() {
    let d = tmp("label");
    let p = d.join("label.bin");
    write(&p, &cifar_records(&[vec![1], vec![10]]));
    let e = read_cifar_file(&p, 1, 0, 10).unwrap_err();
    assert!(matches!(e, DataError::LabelOutOfRange { offset: 3073, label: 10, n_classes: 10, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("label.bin") && msg.contains("3073"), "{msg}");
    // CIFAR-100 fine label 100 in record 1: byte 1 of the record.
    let p = d.join("label100.bin");
    write(&p, &cifar_records(&[vec![0, 0], vec![19, 100]]));
    let e = read_cifar_file(&p, 2, 1, 100).unwrap_err();
    assert!(matches!(e, DataError::LabelOutOfRange { offset: 3075, label: 100, .. }), "{e:?}");
    // Coarse labels: 20 classes.
    let e = read_cifar_file(&p, 2, 0, 20).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.labels, vec![0, 19]);
}

/// An empty file of a split is an error naming it, not a silently smaller (or empty) split,
/// which would drop 10 000 training images or report a test error of 0 % on no images.
#[test]
fn empty_split_files_are_errors_naming_the_file() {
    let d = tmp("empty-split");
    for k in 1..=5 {
        write(&d.join(format!("data_batch_{k}.bin")), &cifar_records(&[vec![1]]));
    }
    write(&d.join("test_batch.bin"), &[]);
    let e = load_cifar10(&d).unwrap_err();
    assert!(matches!(e, DataError::Empty { .. }) && e.to_string().contains("test_batch.bin: holds no images"), "{e}");
    write(&d.join("test_batch.bin"), &cifar_records(&[vec![1]]));
    write(&d.join("data_batch_3.bin"), &[]);
    let e = load_cifar10(&d).unwrap_err();
    assert!(e.to_string().contains("data_batch_3.bin: holds no images"), "{e}");
    write(&d.join("train.bin"), &[]);
    write(&d.join("test.bin"), &[0, 0].iter().chain(&[0u8; 3072]).copied().collect::<Vec<u8>>());
    let e = load_cifar100(&d, true).unwrap_err();
    assert!(e.to_string().contains("train.bin: holds no images"), "{e}");
    write(&d.join("train_32x32.mat"), &mat::file(&[x_var(2), mat::Var::u8("y", vec![1, 2], vec![2, 10])], false));
    write(
        &d.join("test_32x32.mat"),
        &mat::file(&[mat::Var::u8("X", vec![32, 32, 3, 0], vec![]), mat::Var::u8("y", vec![1, 0], vec![])], false),
    );
    let e = load_svhn(&d).unwrap_err();
    assert!(matches!(e, DataError::Empty { .. }) && e.to_string().contains("test_32x32.mat: holds no images"), "{e}");
}

#[test]
fn cifar_missing_file_names_the_path() {
    let d = tmp("missing");
    write(&d.join("data_batch_1.bin"), &cifar_records(&[vec![1]]));
    let e = load_cifar10(&d).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("data_batch_2.bin"), "{e}");
    let e = load(&DatasetKind::Cifar100 { fine: true }, &d, 0).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("train.bin"), "{e}");
}

#[test]
fn cifar_oversized_is_refused_from_the_length() {
    let d = tmp("huge");
    // A sparse file of MAX_RECORDS + 1 records: refused before anything is read.
    let p = d.join("huge.bin");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len((MAX_RECORDS + 1) * 3073).unwrap();
    let e = read_cifar_file(&p, 1, 0, 10).unwrap_err();
    assert!(matches!(e, DataError::Oversized { max, .. } if max == MAX_RECORDS * 3073), "{e:?}");
    assert!(e.to_string().contains("huge.bin"), "{e}");
}

#[test]
fn cifar_edge_cases() {
    let d = tmp("edge");
    let p = d.join("empty.bin");
    write(&p, &[]);
    let ds = read_cifar_file(&p, 1, 0, 10).unwrap();
    assert!(ds.is_empty() && ds.images.is_empty());
    let e = read_cifar_file(&p, 1, 1, 10).unwrap_err();
    assert!(matches!(e, DataError::InvalidArgument { .. }), "{e:?}");
    let e = read_cifar_file(&p, usize::MAX, 0, 10).unwrap_err();
    assert!(matches!(e, DataError::InvalidArgument { .. }), "{e:?}");
}

// ---------------------------------------------------------------- SVHN

/// X of `n` images in MATLAB column-major order: X[r, c, ch, i] = (r + 2c + 3ch + 5i) mod 256.
fn svhn_x(n: usize) -> Vec<u8> {
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
    x
}

fn x_var(n: usize) -> mat::Var {
    mat::Var::u8("X", vec![32, 32, 3, n], svhn_x(n))
}

#[test]
fn svhn_round_trip_uint8_and_double_labels() {
    let d = tmp("svhn");
    let n = 3;
    for (name, y) in [
        ("u8", mat::Var::u8("y", vec![n, 1], vec![10, 1, 5])),
        ("f64", mat::Var::f64("y", vec![n, 1], vec![10.0, 1.0, 5.0])),
    ] {
        for compress in [false, true] {
            let p = d.join(format!("{name}-{compress}.mat"));
            write(&p, &mat::file(&[x_var(n), y.clone()], compress));
            let ds = read_svhn_mat(&p).unwrap();
            assert_eq!((ds.labels.clone(), ds.n_classes, ds.len()), (vec![0, 1, 5], 10, 3), "{name}");
            // Every pixel: plane ch, row r, column c holds X[r, c, ch, i].
            for i in 0..n {
                let img = ds.image(i);
                for ch in 0..3 {
                    for r in 0..32 {
                        for c in 0..32 {
                            assert_eq!(img[ch * 1024 + r * 32 + c], ((r + 2 * c + 3 * ch + 5 * i) % 256) as u8);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn svhn_load_and_single_image() {
    let d = tmp("svhn-load");
    // MATLAB drops the trailing singleton: one image is stored as 32×32×3; y as 1×1.
    let one = mat::Var::u8("X", vec![32, 32, 3], svhn_x(1));
    write(&d.join("train_32x32.mat"), &mat::file(&[mat::Var::f64("y", vec![1, 1], vec![7.0]), one], true));
    write(&d.join("test_32x32.mat"), &mat::file(&[x_var(2), mat::Var::u8("y", vec![1, 2], vec![2, 10])], false));
    let s = load_svhn(&d).unwrap();
    assert_eq!((s.train.labels.clone(), s.test.labels.clone()), (vec![7], vec![2, 0]));
    assert_eq!(s.train.image(0)[1024 + 32 + 2], 1 + 4 + 3);
    assert_eq!(load(&DatasetKind::Svhn, &d, 0).unwrap(), s);
    assert_eq!(load_test(&DatasetKind::Svhn, &d, 0).unwrap(), s.test);
}

/// `load_test` (what `rapa eval` reads) needs only the test files, and names the test file
/// when that is missing.
#[test]
fn test_sets_load_without_the_training_files() {
    let d = tmp("test-only");
    write(&d.join("test.bin"), &cifar_records(&[vec![0, 5], vec![1, 7]]));
    write(&d.join("test_batch.bin"), &cifar_records(&[vec![4], vec![5]]));
    let fine = load_test(&DatasetKind::Cifar100 { fine: true }, &d, 0).unwrap();
    assert_eq!((fine.labels, fine.n_classes, fine.name.as_str()), (vec![5, 7], 100, "cifar100-test"));
    let coarse = load_test(&DatasetKind::Cifar100 { fine: false }, &d, 0).unwrap();
    assert_eq!((coarse.labels, coarse.n_classes), (vec![0, 1], 20));
    let c10 = load_test(&DatasetKind::Cifar10, &d, 0).unwrap();
    assert_eq!((c10.labels, c10.name.as_str()), (vec![4, 5], "cifar10-test"));
    assert!(load(&DatasetKind::Cifar100 { fine: true }, &d, 0).unwrap_err().to_string().contains("train.bin"));
    assert_eq!(load_test(&DatasetKind::Synthetic, &d, 3).unwrap(), synthetic(10_000, 2_000, 3).test);
    let e = load_test(&DatasetKind::Svhn, &d, 0).unwrap_err().to_string();
    assert!(e.contains("test_32x32.mat"), "{e}");
}

fn svhn_err(d: &Path, file: &str, vars: &[mat::Var], compress: bool) -> DataError {
    let p = d.join(file);
    write(&p, &mat::file(vars, compress));
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(e.to_string().contains(file), "{e}");
    e
}

#[test]
fn svhn_bad_variables() {
    let d = tmp("svhn-bad");
    let y1 = mat::Var::u8("y", vec![1, 1], vec![1]);
    let e = svhn_err(&d, "noy.mat", &[x_var(1), mat::Var::u8("labels", vec![1, 1], vec![1])], false);
    assert!(matches!(&e, DataError::MissingVariable { name, .. } if name == "y"), "{e:?}");
    let e = svhn_err(&d, "nox.mat", std::slice::from_ref(&y1), true);
    assert!(matches!(&e, DataError::MissingVariable { name, .. } if name == "X"), "{e:?}");
    // Wrong shape of X: 32×32×1×3.
    let e = svhn_err(&d, "shape.mat", &[mat::Var::u8("X", vec![32, 32, 1, 3], vec![0; 3072]), y1.clone()], false);
    assert!(matches!(&e, DataError::BadVariable { name, .. } if name == "X"), "{e:?}");
    assert!(e.to_string().contains("32×32×1×3"), "{e}");
    // X as double.
    let xd = mat::Var::f64("X", vec![32, 32, 3, 1], vec![0.0; 3072]);
    let e = svhn_err(&d, "xdouble.mat", &[xd, y1], false);
    assert!(matches!(&e, DataError::BadVariable { name, reason, .. } if name == "X" && reason.contains("uint8")));
    // y with the wrong number of labels.
    let e = svhn_err(&d, "ylen.mat", &[x_var(2), mat::Var::u8("y", vec![3, 1], vec![1, 2, 3])], false);
    assert!(matches!(&e, DataError::BadVariable { name, .. } if name == "y"), "{e:?}");
    // y as a matrix.
    let e = svhn_err(&d, "ymat.mat", &[x_var(4), mat::Var::u8("y", vec![2, 2], vec![1, 2, 3, 4])], false);
    assert!(matches!(&e, DataError::BadVariable { name, .. } if name == "y"), "{e:?}");
    // Labels outside 1..=10, or not integers: the variable and element are named.
    for (file, v) in [("y11.mat", 11.0), ("y0.mat", 0.0), ("yfrac.mat", 2.5), ("ynan.mat", f64::NAN)] {
        let e = svhn_err(&d, file, &[x_var(2), mat::Var::f64("y", vec![2, 1], vec![1.0, v])], false);
        assert!(
            matches!(&e, DataError::BadVariable { name, reason, .. } if name == "y" && reason.contains("element 1"))
        );
    }
}

#[test]
fn svhn_bad_files() {
    let d = tmp("svhn-files");
    let p = d.join("garbage.mat");
    write(&p, b"this is not a MATLAB file at all");
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Mat { .. }) && e.to_string().contains("garbage.mat"), "{e}");
    // 200 bytes without the endian indicator.
    let p = d.join("noendian.mat");
    write(&p, &[b'x'; 200]);
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Mat { .. }) && e.to_string().contains("126"), "{e}");
    // A MATLAB 7.3 (HDF5) file: version 0x0200.
    let mut b = mat::file(&[x_var(1)], false);
    b[124..126].copy_from_slice(&0x0200u16.to_le_bytes());
    let p = d.join("v73.mat");
    write(&p, &b);
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Mat { .. }) && e.to_string().contains("7.3"), "{e}");
    // An element claiming more bytes than the file has: its offset is named.
    let mut b = mat::file(&[x_var(1), mat::Var::u8("y", vec![1, 1], vec![1])], false);
    b.truncate(3000);
    let p = d.join("cut.mat");
    write(&p, &b);
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Mat { .. }) && e.to_string().contains("byte offset 128"), "{e}");
    // A compressed element holding another compressed element (nested zlib: refused).
    let mut b = mat::header();
    b.extend(mat::compressed(&mat::compressed(&mat::matrix(&x_var(1)))));
    let p = d.join("nested.mat");
    write(&p, &b);
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Mat { .. }) && e.to_string().contains("element type 15"), "{e}");
    // Corrupt zlib data.
    let mut b = mat::file(&[x_var(1)], true);
    let n = b.len();
    b[140..n - 8].iter_mut().for_each(|v| *v ^= 0x5a);
    let p = d.join("zlib.mat");
    write(&p, &b);
    assert!(matches!(read_svhn_mat(&p).unwrap_err(), DataError::Mat { .. }));
    // Missing.
    let e = read_svhn_mat(&d.join("absent.mat")).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("absent.mat"), "{e}");
    let e = load_svhn(&d).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("train_32x32.mat"), "{e}");
}

#[test]
fn svhn_size_limits() {
    let d = tmp("svhn-limits");
    // A sparse file over MAX_MAT_BYTES: refused from its length.
    let p = d.join("huge.mat");
    std::fs::File::create(&p).unwrap().set_len(MAX_MAT_BYTES + 1).unwrap();
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Oversized { max, .. } if max == MAX_MAT_BYTES), "{e:?}");
    // A zlib bomb: 33 copies of one compressed element that inflates to 16 MiB + 8 bytes,
    // 528 MiB in all (a 600 kB file); refused by the pre-scan's budget before parsing.
    let mut inner = Vec::with_capacity((16 << 20) + 8);
    inner.extend_from_slice(&14u32.to_le_bytes());
    inner.extend_from_slice(&(16u32 << 20).to_le_bytes());
    inner.resize((16 << 20) + 8, 0);
    let z = mat::compressed(&inner);
    let mut b = mat::header();
    for _ in 0..33 {
        b.extend_from_slice(&z);
    }
    assert!(b.len() < 1 << 20);
    let p = d.join("bomb.mat");
    write(&p, &b);
    let t = Instant::now();
    let e = read_svhn_mat(&p).unwrap_err();
    assert!(matches!(e, DataError::Oversized { max, .. } if max == MAX_INFLATED), "{e:?}");
    println!("zlib bomb refused in {:.2} s", t.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------- kinds, datasets

#[test]
fn dataset_kind_names() {
    let names = ["synthetic", "cifar10", "cifar100", "cifar100-coarse", "svhn"];
    for (kind, name) in DatasetKind::ALL.into_iter().zip(names) {
        assert_eq!(kind.to_string(), name);
        assert_eq!(name.parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<DatasetKind>(&format!("\"{name}\"")).unwrap(), kind);
    }
    assert_eq!("cifar100".parse::<DatasetKind>().unwrap(), DatasetKind::Cifar100 { fine: true });
    assert_eq!("cifar100-coarse".parse::<DatasetKind>().unwrap(), DatasetKind::Cifar100 { fine: false });
    assert_eq!(DatasetKind::Cifar100 { fine: false }.n_classes(), 20);
    assert!("cifar".parse::<DatasetKind>().unwrap_err().contains("cifar100-coarse"));
    assert!(serde_json::from_str::<DatasetKind>("\"mnist\"").is_err());
    assert_eq!(DatasetKind::default(), DatasetKind::Synthetic);
}

#[test]
fn dataset_truncate_and_image() {
    let mut s = synthetic(30, 5, 3);
    let third = s.train.image(3).to_vec();
    s.train.truncate(4);
    assert_eq!((s.train.len(), s.train.images.len()), (4, 4 * 3072));
    assert_eq!(s.train.image(3), &third[..]);
    s.train.truncate(100);
    assert_eq!(s.train.len(), 4);
    s.train.truncate(0);
    assert!(s.train.is_empty() && s.train.images.is_empty());
    let loaded = load(&DatasetKind::Synthetic, Path::new("/nonexistent"), 3).unwrap();
    assert_eq!((loaded.train.len(), loaded.test.len()), (10_000, 2_000));
}

// ---------------------------------------------------------------- normalization, augmentation

/// Two images: channel c of image i is the constant i·100 + c·10.
fn two_constant_images() -> Dataset {
    let mut images = Vec::new();
    for i in 0..2u8 {
        for c in 0..3u8 {
            images.extend(std::iter::repeat_n(i * 100 + c * 10, 1024));
        }
    }
    Dataset { images, labels: vec![0, 1], n_classes: 2, name: "t".into() }
}

#[test]
fn normalizer_fits_known_statistics() {
    let ds = two_constant_images();
    let n = Normalizer::fit(&ds);
    for c in 0..3 {
        let mean = (f32::from(c as u8 * 10) + 50.0) / 255.0;
        assert!((n.mean[c] - mean).abs() < 1e-6);
        assert!((n.std[c] - 50.0 / 255.0).abs() < 1e-6);
    }
    // Normalized pixels of the fitted set: exactly ±1.
    let mut out = Array4::zeros((2, 3, 32, 32));
    fill_batch(&ds, &[0, 1], &n, None, &mut out);
    assert!(out.index_axis(Axis(0), 0).iter().all(|v| (v + 1.0).abs() < 1e-5));
    assert!(out.index_axis(Axis(0), 1).iter().all(|v| (v - 1.0).abs() < 1e-5));
    // A constant set: std is floored, nothing is NaN.
    let flat = Dataset { images: vec![7; 3072], labels: vec![0], n_classes: 1, name: "f".into() };
    let n = Normalizer::fit(&flat);
    assert!(n.std.iter().all(|&s| s > 0.0) && n.mean.iter().all(|m| m.is_finite()));
}

#[test]
fn caffe_normalization_is_grey_levels_minus_the_channel_mean() {
    let ds = two_constant_images();
    let fitted = Normalizer::fit(&ds);
    assert_eq!(Normalizer::fit_as(&ds, InputNorm::Standardize), fitted);
    let caffe = Normalizer::fit_as(&ds, InputNorm::Caffe);
    assert_eq!(caffe.mean, fitted.mean);
    // Grey levels minus the channel mean (c·10 + 50): exactly ∓50 for the two images.
    let mut out = Array4::zeros((2, 3, 32, 32));
    fill_batch(&ds, &[0, 1], &caffe, None, &mut out);
    for (i, want) in [(0, -50.0f32), (1, 50.0)] {
        assert!(out.index_axis(Axis(0), i).iter().all(|v| (v - want).abs() < 1e-3), "image {i}");
    }
    // Names on the command line and in config.toml.
    for k in [InputNorm::Standardize, InputNorm::Caffe] {
        assert_eq!(k.name().parse::<InputNorm>().unwrap(), k);
    }
    let e = "mean-image".parse::<InputNorm>().unwrap_err();
    assert!(e.contains("mean-image") && e.contains("caffe"), "{e}");
}

/// One image whose pixel (ch, r, c) is c + 32·ch.
fn gradient() -> Dataset {
    let img = (0..3072).map(|p| (p % 32 + 32 * (p / 1024)) as u8).collect();
    Dataset { images: img, labels: vec![0], n_classes: 1, name: "g".into() }
}

#[test]
fn mirror_flips_columns_exactly() {
    let ds = gradient();
    let id = Normalizer::identity();
    let mut plain = Array4::zeros((1, 3, 32, 32));
    fill_batch(&ds, &[0], &id, None, &mut plain);
    let mirror_only = Augment { mirror: true, brightness: 0.0 };
    let mut flips = 0;
    for s in 0..40 {
        let mut out = Array4::zeros((1, 3, 32, 32));
        fill_batch(&ds, &[0], &id, Some((&mirror_only, &mut seeded(s))), &mut out);
        if out == plain {
            continue;
        }
        flips += 1;
        for ch in 0..3 {
            for r in 0..32 {
                for c in 0..32 {
                    assert_eq!(out[[0, ch, r, c]], plain[[0, ch, r, 31 - c]]);
                }
            }
        }
    }
    assert!((5..35).contains(&flips), "{flips} flips in 40");
    // Augment::none() changes nothing.
    let mut out = Array4::zeros((1, 3, 32, 32));
    fill_batch(&ds, &[0], &id, Some((&Augment::none(), &mut seeded(1))), &mut out);
    assert_eq!(out, plain);
    assert_eq!(Augment::default(), Augment { mirror: true, brightness: 0.1 });
}

#[test]
fn brightness_shifts_within_bounds_and_is_seeded() {
    let ds = gradient();
    let id = Normalizer::identity();
    let mut plain = Array4::zeros((1, 3, 32, 32));
    fill_batch(&ds, &[0], &id, None, &mut plain);
    let bright = Augment { mirror: false, brightness: 0.1 };
    let mut shifts = Vec::new();
    for s in 0..50 {
        let mut a = Array4::zeros((1, 3, 32, 32));
        fill_batch(&ds, &[0], &id, Some((&bright, &mut seeded(s))), &mut a);
        // One shift for all pixels and channels, within ±b.
        let shift = a[[0, 0, 0, 0]] - plain[[0, 0, 0, 0]];
        assert!(shift.abs() <= 0.1 + 1e-6, "{shift}");
        assert!((&a - &plain).iter().all(|d| (d - shift).abs() < 1e-5));
        shifts.push(shift);
    }
    assert!(shifts.iter().any(|&s| s > 0.05) && shifts.iter().any(|&s| s < -0.05));
    // With a normalizer the shift is added before normalization: delta/std.
    let norm = Normalizer { mean: [0.5; 3], std: [0.25; 3] };
    let (mut a, mut b) = (Array4::zeros((1, 3, 32, 32)), Array4::zeros((1, 3, 32, 32)));
    fill_batch(&ds, &[0], &norm, None, &mut a);
    fill_batch(&ds, &[0], &norm, Some((&bright, &mut seeded(0))), &mut b);
    assert!(((b[[0, 2, 3, 4]] - a[[0, 2, 3, 4]]) - shifts[0] / 0.25).abs() < 1e-5);
}

#[test]
fn augmented_batches_are_seeded_and_drawn_in_index_order() {
    let s = synthetic(20, 1, 5);
    let norm = Normalizer::fit(&s.train);
    let aug = Augment::default();
    let idx = [3, 17, 0, 3, 9];
    let batch = |seed| {
        let mut out = Array4::zeros((idx.len(), 3, 32, 32));
        fill_batch(&s.train, &idx, &norm, Some((&aug, &mut seeded(seed))), &mut out);
        out
    };
    assert_eq!(batch(11), batch(11));
    assert_ne!(batch(11), batch(12));
    // One rng, images one at a time in index order = the whole batch.
    let mut rng = seeded(11);
    let whole = batch(11);
    for (k, &i) in idx.iter().enumerate() {
        let mut one = Array4::zeros((1, 3, 32, 32));
        fill_batch(&s.train, &[i], &norm, Some((&aug, &mut rng)), &mut one);
        assert_eq!(one.index_axis(Axis(0), 0), whole.index_axis(Axis(0), k));
    }
}

#[test]
fn fill_batch_handles_any_layout_and_odd_settings() {
    let s = synthetic(4, 1, 2);
    let norm = Normalizer::fit(&s.train);
    let mut standard = Array4::zeros((2, 3, 32, 32));
    fill_batch(&s.train, &[1, 2], &norm, None, &mut standard);
    // A permuted (non-standard) layout gets the same values.
    let mut permuted = Array4::zeros((3, 32, 32, 2)).permuted_axes([3, 0, 1, 2]);
    assert!(permuted.as_slice_mut().is_none());
    fill_batch(&s.train, &[1, 2], &norm, None, &mut permuted);
    assert_eq!(permuted, standard);
    // Non-finite or negative brightness: no shift, no panic.
    for b in [f32::NAN, f32::INFINITY, -0.5] {
        let mut out = Array4::zeros((2, 3, 32, 32));
        fill_batch(
            &s.train,
            &[1, 2],
            &norm,
            Some((&Augment { mirror: false, brightness: b }, &mut seeded(1))),
            &mut out,
        );
        assert_eq!(out, standard);
    }
    // An empty set normalizes with the identity.
    assert_eq!(Normalizer::fit(&synthetic(0, 0, 1).train), Normalizer::identity());
}

// ---------------------------------------------------------------- synthetic

#[test]
fn synthetic_is_deterministic_balanced_and_fast() {
    let a = synthetic(2_000, 1_000, 7);
    assert_eq!(a, synthetic(2_000, 1_000, 7));
    assert_ne!(a.train.images, synthetic(2_000, 1_000, 8).train.images);
    assert_ne!(a.train.images[..3072], a.test.images[..3072]);
    assert_eq!((a.train.n_classes, a.train.images.len()), (10, 2_000 * 3072));
    for c in 0..10u16 {
        assert_eq!(a.train.labels.iter().filter(|&&l| l == c).count(), 200);
        assert_eq!(a.test.labels.iter().filter(|&&l| l == c).count(), 100);
    }
    // The same images whatever the number of threads.
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    assert_eq!(one.install(|| synthetic(2_000, 1_000, 7)), a);
    let t = Instant::now();
    let big = synthetic(10_000, 0, 1);
    let secs = t.elapsed().as_secs_f64();
    println!("synthetic: 10 000 images in {secs:.3} s");
    assert_eq!(big.train.len(), 10_000);
    // Generous bound for loaded CI machines and debug builds; typically ~0.1 s in release.
    assert!(secs < 10.0, "{secs} s");
}

/// Test error of softmax regression on the rows of `x` (features, with a bias column),
/// trained by full-batch gradient descent.
fn softmax_regression_error(x: &Array2<f32>, y: &[u16], xt: &Array2<f32>, yt: &[u16], steps: usize) -> f64 {
    let mut w = Array2::<f32>::zeros((x.ncols(), 10));
    for _ in 0..steps {
        let logits = x.dot(&w);
        let (_, g, _) = rapa_train::layers::SoftmaxCrossEntropy::loss_grad(logits.view(), y);
        w.scaled_add(-0.5, &x.t().dot(&g));
    }
    let pred = xt.dot(&w);
    let wrong = pred
        .axis_iter(Axis(0))
        .zip(yt)
        .filter(|(r, l)| rapa_train::layers::argmax_row(&r.to_vec()) != usize::from(**l))
        .count();
    wrong as f64 / yt.len() as f64
}

/// A softmax-regression (linear) classifier on the normalized pixels must not solve the set.
/// Measured: 89.1 % test error (chance 90 %) on synthetic(5000, 1000, seed 1), 100 steps.
#[test]
fn synthetic_defeats_a_linear_model() {
    let s = synthetic(5_000, 1_000, 1);
    let norm = Normalizer::fit(&s.train);
    let to_matrix = |ds: &Dataset| {
        let mut b = Array4::zeros((ds.len(), 3, 32, 32));
        fill_batch(ds, &(0..ds.len()).collect::<Vec<_>>(), &norm, None, &mut b);
        b.into_shape_with_order((ds.len(), 3072)).unwrap()
    };
    let err = softmax_regression_error(&to_matrix(&s.train), &s.train.labels, &to_matrix(&s.test), &s.test.labels, 100);
    println!("linear softmax regression on synthetic pixels: test error {err:.3}");
    assert!(err > 0.5, "a linear model reaches {err} test error");
}

/// Global statistics (per-channel mean, standard deviation and bright-pixel count) must not
/// give the class away: every class has the same expected ink.
/// Measured: 86.6 % test error (chance 90 %) on synthetic(5000, 1000, seed 1), 500 steps.
#[test]
fn synthetic_global_statistics_do_not_give_the_class_away() {
    let s = synthetic(5_000, 1_000, 1);
    let feats = |ds: &Dataset| {
        let mut f = Array2::<f32>::zeros((ds.len(), 10));
        for i in 0..ds.len() {
            for (c, p) in ds.image(i).chunks_exact(1024).enumerate() {
                let m = p.iter().map(|&v| f32::from(v)).sum::<f32>() / 1024.0;
                let var = p.iter().map(|&v| (f32::from(v) - m).powi(2)).sum::<f32>() / 1024.0;
                f[[i, c]] = m;
                f[[i, 3 + c]] = var.sqrt();
                f[[i, 6 + c]] = p.iter().filter(|&&v| f32::from(v) > m + 20.0).count() as f32;
            }
            f[[i, 9]] = 1.0;
        }
        f
    };
    let (mut x, mut xt) = (feats(&s.train), feats(&s.test));
    for j in 0..9 {
        let (m, sd) = (x.column(j).mean().unwrap(), x.column(j).std(0.0).max(1e-6));
        x.column_mut(j).mapv_inplace(|v| (v - m) / sd);
        xt.column_mut(j).mapv_inplace(|v| (v - m) / sd);
    }
    let err = softmax_regression_error(&x, &s.train.labels, &xt, &s.test.labels, 500);
    println!("softmax regression on global statistics: test error {err:.3}");
    assert!(err > 0.8, "global statistics reach {err} test error");
}

// ---------------------------------------------------------------- real data

#[test]
fn real_cifar10_when_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cifar10-jpeg");
    if !dir.exists() {
        println!("skipped: {} not found", dir.display());
        return;
    }
    let t = Instant::now();
    let s: Split = load_cifar10(&dir).unwrap();
    println!("cifar10: loaded {} + {} images in {:.2} s", s.train.len(), s.test.len(), t.elapsed().as_secs_f64());
    assert_eq!((s.train.len(), s.test.len()), (50_000, 10_000));
    for c in 0..10u16 {
        assert_eq!(s.train.labels.iter().filter(|&&l| l == c).count(), 5_000);
        assert_eq!(s.test.labels.iter().filter(|&&l| l == c).count(), 1_000);
    }
    assert_eq!(s.train.images.len(), 50_000 * 3072);
}
