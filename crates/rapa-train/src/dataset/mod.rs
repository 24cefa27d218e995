//! Datasets, held as u8 in memory: CIFAR-10/100 binary batches, SVHN format-2 `.mat` files
//! and the built-in synthetic set; normalization and augmentation into f32 batches.
//!
//! Every image is 3072 bytes: the R, G and B planes of 32×32 pixels (CIFAR's layout).

mod batch;
mod cifar;
mod error;
mod svhn;
mod synthetic;

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use batch::{Augment, InputNorm, Normalizer, fill_batch};
pub use cifar::{MAX_LABEL_BYTES, MAX_RECORDS, load_cifar10, load_cifar100, read_cifar_file};
pub use error::DataError;
pub use svhn::{MAX_INFLATED, MAX_MAT_BYTES, load_svhn, read_svhn_mat};
pub use synthetic::{CLASS_NAMES, synthetic};

/// Bytes per image (3 × 32 × 32).
pub const IMAGE_BYTES: usize = 3072;

/// Images and labels of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `len() × 3072` bytes, CHW per image.
    pub images: Vec<u8>,
    /// One label per image, `< n_classes`.
    pub labels: Vec<u16>,
    /// Number of classes.
    pub n_classes: usize,
    /// A name for messages.
    pub name: String,
}

impl Dataset {
    /// An empty dataset.
    pub fn empty(name: &str, n_classes: usize) -> Self {
        Self { images: Vec::new(), labels: Vec::new(), n_classes, name: name.into() }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` (3072 bytes, CHW).
    ///
    /// # Panics
    /// If `i >= self.len()` (an index of the caller's, not file data).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// Keeps the first `n` images (no effect if `n >= len()`). (The `--limit-*` options keep a
    /// class-stratified subset instead: [`keep_spread`](crate::train::keep_spread).)
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.images.truncate(self.labels.len() * IMAGE_BYTES);
    }

    /// Appends another dataset's images (the name and class count of `self` are kept).
    pub fn append(&mut self, mut other: Dataset) {
        self.images.append(&mut other.images);
        self.labels.append(&mut other.labels);
    }
}

/// A training and a test split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
}

/// The datasets `rapa` can load.
///
/// Written and parsed (command line, `config.toml`, serde) as one kebab-case word:
/// `synthetic`, `cifar10`, `cifar100` (fine labels), `cifar100-coarse`, `svhn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetKind {
    /// The built-in synthetic set (no files needed). The default.
    #[default]
    Synthetic,
    /// CIFAR-10 binary version.
    Cifar10,
    /// CIFAR-100 binary version: the 100 fine labels (`fine: true`, `cifar100`) or the 20
    /// coarse labels (`fine: false`, `cifar100-coarse`).
    Cifar100 {
        /// Use the fine labels.
        fine: bool,
    },
    /// SVHN cropped digits, format 2.
    Svhn,
}

impl DatasetKind {
    /// All kinds.
    pub const ALL: [DatasetKind; 5] = [
        DatasetKind::Synthetic,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100 { fine: true },
        DatasetKind::Cifar100 { fine: false },
        DatasetKind::Svhn,
    ];

    /// Name on the command line and in `config.toml`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Synthetic => "synthetic",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 { fine: true } => "cifar100",
            DatasetKind::Cifar100 { fine: false } => "cifar100-coarse",
            DatasetKind::Svhn => "svhn",
        }
    }

    /// Number of classes.
    pub fn n_classes(self) -> usize {
        match self {
            DatasetKind::Cifar100 { fine: true } => 100,
            DatasetKind::Cifar100 { fine: false } => 20,
            _ => 10,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown dataset `{s}`; known: synthetic, cifar10, cifar100, cifar100-coarse, svhn"))
    }
}

impl Serialize for DatasetKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for DatasetKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Loads a dataset from `data_dir` (the synthetic set: 10 000 / 2 000 images from `seed`).
pub fn load(kind: &DatasetKind, data_dir: &Path, seed: u64) -> Result<Split, DataError> {
    match kind {
        DatasetKind::Synthetic => Ok(synthetic(10_000, 2_000, seed)),
        DatasetKind::Cifar10 => load_cifar10(data_dir),
        DatasetKind::Cifar100 { fine } => load_cifar100(data_dir, *fine),
        DatasetKind::Svhn => load_svhn(data_dir),
    }
}

/// Loads only the test set of a dataset from `data_dir` (what evaluation needs: the training
/// files need not be there). The synthetic test set is that of [`load`], i.e. of the default
/// sizes; the synthetic test set depends on the training count, so a run trained with other
/// `synthetic_train`/`synthetic_test` sizes must build its set with [`synthetic`] instead.
pub fn load_test(kind: &DatasetKind, data_dir: &Path, seed: u64) -> Result<Dataset, DataError> {
    match kind {
        DatasetKind::Synthetic => Ok(synthetic(10_000, 2_000, seed).test),
        DatasetKind::Cifar10 => cifar::load_cifar10_test(data_dir),
        DatasetKind::Cifar100 { fine } => cifar::load_cifar100_test(data_dir, *fine),
        DatasetKind::Svhn => svhn::load_svhn_test(data_dir),
    }
}

/// Reads a whole file after checking its length against `max` (so a bogus huge file is
/// refused before anything is allocated).
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, DataError> {
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
    if len > max {
        return Err(DataError::Oversized { path: path.to_path_buf(), len, max });
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(max + 1).read_to_end(&mut buf).map_err(|e| DataError::io(path, e))?;
    if buf.len() as u64 > max {
        return Err(DataError::Oversized { path: path.to_path_buf(), len: buf.len() as u64, max });
    }
    Ok(buf)
}
