//! Property-based fuzzing of the dataset readers: random byte strings, mutations of valid
//! CIFAR and `.mat` files (bit flips, byte writes, truncations, extensions, insertions,
//! deletions, corrupted 32-bit length fields) and structurally random `.mat` variables go
//! through `read_cifar_file` and `read_svhn_mat` from temp files. Every input must give `Ok`
//! or a typed error: a panic fails the property, each call must finish within seconds, and a
//! counting allocator checks that the memory a call allocates stays proportional to its input.
//!
//! Default: 256 cases per property (a few seconds in release). Longer runs set
//! `PROPTEST_CASES`, e.g. `PROPTEST_CASES=20000 cargo test --release -p rapa-train --test
//! data_fuzz`; see docs/data.md for the fuzzing record.
#![allow(unsafe_code)] // the counting allocator

mod mat;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use rapa_train::data::{DataError, Dataset, read_cifar_file, read_svhn_mat};

// ---------------------------------------------------------------- counting allocator

/// The system allocator, counting the live bytes and their peak per thread.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are plain thread-local cells with const initializers (no allocation, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

thread_local! {
    /// Set while a reader runs: panics then are the parser's, caught by `read_svhn_mat`.
    static IN_READER: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once) a panic hook that stays silent for panics inside a reader: `matfile`
/// panics on overflowing dimensions in debug builds, `read_svhn_mat` catches them, and the
/// default hook would print each one (and, with `RUST_BACKTRACE` set, allocate ~100 MB to
/// symbolize a backtrace, which the allocation check would blame on the reader). A panic that
/// escapes a reader still fails the property with its message.
fn quiet_reader_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_READER.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// Resets `IN_READER` when dropped (also while unwinding).
struct ReaderScope;

impl ReaderScope {
    fn enter() -> Self {
        IN_READER.with(|r| r.set(true));
        Self
    }
}

impl Drop for ReaderScope {
    fn drop(&mut self) {
        IN_READER.with(|r| r.set(false));
    }
}

/// Runs the reader `f` on this thread; returns its result, the most bytes it held at once
/// beyond what was live before, and its duration.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    quiet_reader_panics();
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let t = Instant::now();
    let out = {
        let _scope = ReaderScope::enter();
        f()
    };
    let took = t.elapsed();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize, took)
}

// ---------------------------------------------------------------- harness

/// The longest a reader may take on one small input (they take microseconds).
const MAX_TIME: Duration = Duration::from_secs(5);

/// A temp file holding `bytes`, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> Self {
        let p = std::env::temp_dir().join(format!(
            "rapa-data-fuzz-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&p, bytes).unwrap();
        Self(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Checks a result: a dataset must be consistent, an error must name the file.
fn check(result: &Result<Dataset, DataError>, file: &TempFile) -> Result<(), TestCaseError> {
    match result {
        Ok(ds) => {
            prop_assert_eq!(ds.images.len(), ds.len() * 3072);
            prop_assert!(ds.labels.iter().all(|&l| usize::from(l) < ds.n_classes));
        }
        Err(e) => {
            let name = file.0.file_name().unwrap().to_string_lossy().into_owned();
            prop_assert!(e.to_string().contains(&name), "error does not name the file: {}", e);
        }
    }
    Ok(())
}

fn cifar(bytes: &[u8], label_bytes: usize, label_index: usize, n_classes: usize) -> Result<(), TestCaseError> {
    let f = TempFile::new("cifar", bytes);
    let (r, peak, took) = measured(|| read_cifar_file(&f.0, label_bytes, label_index, n_classes));
    check(&r, &f)?;
    prop_assert!(took < MAX_TIME, "{:?}", took);
    // The file and the images, plus small change.
    prop_assert!(peak <= 2 * bytes.len() + (64 << 10), "{} bytes for a {}-byte file", peak, bytes.len());
    Ok(())
}

fn svhn(bytes: &[u8]) -> Result<(), TestCaseError> {
    let f = TempFile::new("svhn", bytes);
    let (r, peak, took) = measured(|| read_svhn_mat(&f.0));
    check(&r, &f)?;
    prop_assert!(took < MAX_TIME, "{:?}", took);
    // Plain files: the file, the parser's copy, arrays widened up to 8× (uint8 data of a
    // double array), labels as f64, images. Compressed elements inflate by at most ~1032×.
    let compressed = bytes.len() >= 136 && bytes.get(128..132) == Some(&15u32.to_le_bytes()[..]);
    let factor = if compressed { 20_000 } else { 32 };
    prop_assert!(peak <= factor * bytes.len() + (1 << 20), "{} bytes for a {}-byte file", peak, bytes.len());
    Ok(())
}

// ---------------------------------------------------------------- inputs

/// Three CIFAR-10 records (label bytes 0, 5, 9) or two CIFAR-100 records.
fn valid_cifar(label_bytes: usize) -> Vec<u8> {
    let labels: &[&[u8]] = if label_bytes == 1 { &[&[0], &[5], &[9]] } else { &[&[3, 77], &[19, 99]] };
    let mut out = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        out.extend_from_slice(l);
        out.extend((0..3072).map(|p| ((p * 7 + i) % 256) as u8));
    }
    out
}

/// Valid SVHN files: uint8 or double labels, plain or compressed.
fn valid_mat(kind: usize) -> Vec<u8> {
    let x = mat::Var::u8("X", vec![32, 32, 3, 2], (0..6144).map(|i| (i % 251) as u8).collect());
    let y = if kind.is_multiple_of(2) {
        mat::Var::f64("y", vec![2, 1], vec![3.0, 10.0])
    } else {
        mat::Var::u8("y", vec![2, 1], vec![3, 10])
    };
    mat::file(&[x, y], kind >= 2)
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Extend(Vec<u8>),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Overwrite a 32-bit length field (a known one where the file has them) with a value.
    Length(Index, u32),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just(0u32),
        Just(1),
        Just(7),
        Just(8),
        Just(0x7fff_ffff),
        Just(u32::MAX),
        any::<u32>(),
        0..10_000u32
    ];
    prop_oneof![
        3 => (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Edit::Flip(i, x)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, x)| Edit::Set(i, x)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Edit::Extend),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<Index>(), 1..64usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        3 => (any::<Index>(), interesting).prop_map(|(i, v)| Edit::Length(i, v)),
    ]
}

/// Applies `edits` in order; `fields` are the offsets of known 32-bit length fields.
fn apply(mut b: Vec<u8>, edits: &[Edit], fields: &[usize]) -> Vec<u8> {
    for e in edits {
        let n = b.len();
        match e {
            Edit::Flip(i, x) if n > 0 => b[i.index(n)] ^= x,
            Edit::Set(i, x) if n > 0 => b[i.index(n)] = *x,
            Edit::Truncate(i) => b.truncate(i.index(n + 1)),
            Edit::Extend(x) => b.extend_from_slice(x),
            Edit::Insert(i, x) => {
                let at = i.index(n + 1);
                b.splice(at..at, x.iter().copied());
            }
            Edit::Delete(i, len) if n > 0 => {
                let at = i.index(n);
                b.drain(at..(at + len).min(n));
            }
            Edit::Length(i, v) => {
                let at = if fields.is_empty() { i.index(n.max(1)) / 4 * 4 } else { fields[i.index(fields.len())] };
                if at + 4 <= n {
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {}
        }
    }
    b
}

/// A `.mat` variable with random, mostly inconsistent structure.
fn random_var() -> impl Strategy<Value = mat::Var> {
    let dims = prop_oneof![
        prop::collection::vec(any::<i32>(), 0..6),
        prop::collection::vec(-2..40i32, 0..6),
        (0..4i32).prop_map(|n| vec![32, 32, 3, n]),
        (0..4i32).prop_map(|n| vec![n, 1]),
    ];
    (name(), dims, 0..20u8, 0..20u32, prop::collection::vec(any::<u8>(), 0..7_000))
        .prop_map(|(name, dims, class, data_type, bytes)| mat::Var::raw(&name, dims, class, data_type, bytes))
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just("X".to_string()), 3 => Just("y".to_string()), 1 => "[a-zA-Z]{0,4}"]
}

/// A well-formed numeric `.mat` variable of random class, shape and values: exercises the
/// checks after parsing (shapes, types, label values).
fn consistent_var() -> impl Strategy<Value = mat::Var> {
    // (mx class, mi data type, bytes per value)
    let types = prop::sample::select(vec![
        (6u8, 9u32, 8usize),
        (6, 2, 1),
        (7, 7, 4),
        (8, 1, 1),
        (9, 2, 1),
        (10, 3, 2),
        (11, 4, 2),
        (12, 5, 4),
        (13, 6, 4),
        (14, 12, 8),
        (15, 13, 8),
    ]);
    let dims = prop_oneof![
        (0..3i32).prop_map(|n| vec![32, 32, 3, n]),
        Just(vec![32, 32, 3]),
        (0..4i32).prop_map(|n| vec![n, 1]),
        (0..4i32).prop_map(|n| vec![1, n]),
        prop::collection::vec(0..5i32, 2..5),
    ];
    (name(), dims, types, any::<u64>(), prop_oneof![Just(0u8), Just(1), Just(10), Just(11), any::<u8>()]).prop_map(
        |(name, dims, (class, data_type, size), seed, fill)| {
            let n = dims.iter().map(|&d| d as usize).product::<usize>() * size;
            // Mostly `fill` (label-like values), some bytes from the seed.
            let bytes = (0..n)
                .map(|i| {
                    if (seed >> (i % 64)) & 1 == 1 {
                        (seed >> (i % 57)) as u8
                    } else if i % size == 0 {
                        fill
                    } else {
                        0
                    }
                })
                .collect();
            mat::Var::raw(&name, dims, class, data_type, bytes)
        },
    )
}

/// An SVHN-like file: a well-formed `X` of n images (sometimes of another class) and a `y`
/// of random class, shape and label values (valid, out of range, fractional, NaN).
fn svhn_like() -> impl Strategy<Value = Vec<mat::Var>> {
    let value = prop_oneof![4 => (1..=10i32).prop_map(f64::from), 1 => Just(0.0), 1 => Just(11.0), 1 => Just(2.5),
        1 => Just(f64::NAN), 1 => Just(-1.0), 1 => Just(1e300)];
    // (mx class, mi data type) of y
    let ytype = prop::sample::select(vec![(6u8, 9u32), (6, 2), (7, 7), (9, 2), (8, 1), (11, 4), (13, 6), (12, 5)]);
    let ydims = prop_oneof![Just(0usize), Just(1), Just(2)];
    (prop::bool::weighted(0.2), prop::bool::weighted(0.2), prop::collection::vec(value, 0..4), ytype, ydims).prop_map(
        |(mismatch, x_double, values, (class, data_type), shape)| {
            let n = values.len() + usize::from(mismatch);
            let x = if x_double {
                mat::Var::f64("X", vec![32, 32, 3, n], vec![1.0; 3072 * n])
            } else {
                mat::Var::u8("X", vec![32, 32, 3, n], vec![7; 3072 * n])
            };
            let k = values.len() as i32;
            let dims = match shape {
                0 => vec![k, 1],
                1 => vec![1, k],
                _ => vec![k, 1, 1],
            };
            let bytes = values
                .iter()
                .flat_map(|&v| match data_type {
                    9 => v.to_le_bytes().to_vec(),
                    7 => (v as f32).to_le_bytes().to_vec(),
                    2 => vec![v as u8],
                    1 => vec![v as i8 as u8],
                    4 => (v as u16).to_le_bytes().to_vec(),
                    5 => (v as i32).to_le_bytes().to_vec(),
                    _ => (v as u32).to_le_bytes().to_vec(),
                })
                .collect();
            vec![x, mat::Var::raw("y", dims, class, data_type, bytes)]
        },
    )
}

// ---------------------------------------------------------------- properties

proptest! {
    // A fixed seed, as for every random draw in this project: CI runs the same cases each time
    // (change it to explore other cases).
    #![proptest_config(ProptestConfig { rng_seed: RngSeed::Fixed(0x5eed_da7a), ..ProptestConfig::default() })]

    #[test]
    fn cifar_random_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..16_000),
        label_bytes in 0..4usize,
        label_index in 0..4usize,
        n_classes in 0..300usize,
    ) {
        cifar(&bytes, 1, 0, 10)?;
        cifar(&bytes, 2, 1, 100)?;
        cifar(&bytes, label_bytes, label_index, n_classes)?;
    }

    #[test]
    fn cifar_mutated(label_bytes in 1..=2usize, edits in prop::collection::vec(edit(), 1..5)) {
        let b = apply(valid_cifar(label_bytes), &edits, &[]);
        cifar(&b, label_bytes, label_bytes - 1, if label_bytes == 1 { 10 } else { 100 })?;
    }

    #[test]
    fn mat_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4_096), header in any::<bool>()) {
        svhn(&bytes)?;
        if header {
            // Past the header check: random elements.
            let mut b = mat::header();
            b.extend_from_slice(&bytes);
            svhn(&b)?;
        }
    }

    #[test]
    fn mat_mutated(kind in 0..4usize, edits in prop::collection::vec(edit(), 1..5)) {
        let base = valid_mat(kind);
        let fields = mat::size_fields(&base);
        svhn(&apply(base, &edits, &fields))?;
    }

    #[test]
    fn mat_random_structure(vars in prop::collection::vec(random_var(), 1..4), compress in any::<bool>()) {
        svhn(&mat::file(&vars, compress))?;
    }

    #[test]
    fn mat_svhn_like(vars in svhn_like(), compress in any::<bool>()) {
        svhn(&mat::file(&vars, compress))?;
    }

    #[test]
    fn mat_random_variables(vars in prop::collection::vec(consistent_var(), 1..4), compress in any::<bool>()) {
        svhn(&mat::file(&vars, compress))?;
    }
}
