//! Property-based fuzzing of the dataset and config parsers: random and mutated byte strings
//! must give `Ok` or a typed error — never a panic, a hang or an unbounded allocation.
//!
//! Default: 256 cases per property (a few seconds). Longer runs:
//! `PROPTEST_CASES=20000 cargo test --release -p rapa-train --test fuzz`; see docs/data.md for
//! the fuzzing record.

mod mat;

use std::path::PathBuf;

use proptest::prelude::*;
use rapa_train::data::{read_cifar_file, read_svhn_mat};
use rapa_train::train::TrainConfig;

fn tmp_file(tag: &str, bytes: &[u8]) -> PathBuf {
    let p =
        std::env::temp_dir().join(format!("rapa-fuzz-{}-{tag}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn valid_mat(compress: bool) -> Vec<u8> {
    mat::file(
        &[
            mat::Var::u8("X", vec![32, 32, 3, 2], (0..6144).map(|i| (i % 251) as u8).collect()),
            mat::Var::f64("y", vec![2, 1], vec![3.0, 10.0]),
        ],
        compress,
    )
}

/// A mutation of a valid file: bit flips, a truncation, an extension, or a corrupted 32-bit
/// length field at some offset.
fn mutate(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..8),
        0..=len,
        prop::collection::vec(any::<u8>(), 0..64),
        0..len,
        any::<u32>(),
        0..4u8,
    )
        .prop_map(move |(flips, cut, ext, at, value, kind)| {
            let mut b = base.clone();
            for (i, x) in flips {
                b[i] ^= x;
            }
            match kind {
                0 => b.truncate(cut),
                1 => b.extend(ext),
                2 if at + 4 <= b.len() => b[at..at + 4].copy_from_slice(&value.to_le_bytes()),
                _ => {}
            }
            b
        })
}

proptest! {
    #[test]
    fn cifar_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
        let p = tmp_file("cifar", &bytes);
        let _ = read_cifar_file(&p, 1, 0, 10);
        let _ = read_cifar_file(&p, 2, 1, 100);
    }

    #[test]
    fn cifar_mutated(bytes in mutate((0..3 * 3073).map(|i| (i % 10) as u8).collect())) {
        let p = tmp_file("cifar-mut", &bytes);
        let _ = read_cifar_file(&p, 1, 0, 10);
    }

    #[test]
    fn mat_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4_096)) {
        let p = tmp_file("mat", &bytes);
        let _ = read_svhn_mat(&p);
    }

    #[test]
    fn mat_mutated(bytes in mutate(valid_mat(false))) {
        let p = tmp_file("mat-mut", &bytes);
        let _ = read_svhn_mat(&p);
    }

    #[test]
    fn mat_compressed_mutated(bytes in mutate(valid_mat(true))) {
        let p = tmp_file("matz-mut", &bytes);
        let _ = read_svhn_mat(&p);
    }

    #[test]
    fn config_random_text(text in "(?s).{0,400}") {
        let _ = TrainConfig::from_toml_str(&text).map(|c| c.validate());
    }

    #[test]
    fn config_mutated(bytes in mutate(TrainConfig::default().to_toml().unwrap().into_bytes())) {
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = TrainConfig::from_toml_str(&text).map(|c| c.validate());
        }
    }
}
