//! CIFAR-10 and CIFAR-100 binary files: records of label byte(s) then 3072 bytes (R, G, B
//! planes of 32×32).

use std::path::Path;

use super::{DataError, Dataset, IMAGE_BYTES, Split, read_limited};

/// The most records a CIFAR file may hold: 60 000 (the largest real file, CIFAR-100 train, has
/// 50 000; a CIFAR-10 batch has 10 000). A longer file is refused from its length, before
/// anything is read, so reading one CIFAR file holds at most ~370 MB at once (the file's
/// 184 MB and its images).
pub const MAX_RECORDS: u64 = 60_000;

/// The most label bytes a record layout may declare (CIFAR uses 1 or 2).
pub const MAX_LABEL_BYTES: usize = 16;

/// Reads one CIFAR binary file whose records carry `label_bytes` label bytes, using byte
/// `label_index` of them as the label in `0..n_classes`. The pixel bytes are kept as they are
/// (R, G, B planes of 32×32).
///
/// CIFAR-10 batches: `(1, 0, 10)`; CIFAR-100: `(2, 1, 100)` for fine, `(2, 0, 20)` for coarse
/// labels.
///
/// # Errors
/// [`DataError::Io`] (missing or unreadable), [`DataError::Oversized`] (more than
/// [`MAX_RECORDS`] records), [`DataError::Truncated`] (length not a multiple of the record
/// size: the offset of the incomplete record), [`DataError::LabelOutOfRange`] (the offset of the
/// label byte), [`DataError::InvalidArgument`] (`label_index >= label_bytes`, or more than
/// [`MAX_LABEL_BYTES`] label bytes).
pub fn read_cifar_file(
    path: &Path,
    label_bytes: usize,
    label_index: usize,
    n_classes: usize,
) -> Result<Dataset, DataError> {
    if label_index >= label_bytes || label_bytes > MAX_LABEL_BYTES {
        return Err(DataError::InvalidArgument {
            path: path.to_path_buf(),
            reason: format!(
                "label byte {label_index} of {label_bytes} per record (at most {MAX_LABEL_BYTES} label bytes)"
            ),
        });
    }
    let record = label_bytes + IMAGE_BYTES;
    let bytes = read_limited(path, MAX_RECORDS * record as u64)?;
    let len = bytes.len() as u64;
    if bytes.len() % record != 0 {
        let offset = (bytes.len() / record * record) as u64;
        return Err(DataError::Truncated { path: path.to_path_buf(), offset, record_len: record, len });
    }
    let n = bytes.len() / record;
    let mut images = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let (label_part, pixels) = rec.split_at(label_bytes);
        let label = label_part.get(label_index).copied().unwrap_or(u8::MAX);
        if usize::from(label) >= n_classes {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                offset: (i * record + label_index) as u64,
                label: i64::from(label),
                n_classes,
            });
        }
        labels.push(u16::from(label));
        images.extend_from_slice(pixels);
    }
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Dataset { images, labels, n_classes, name })
}

/// CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin` in `dir`.
pub fn load_cifar10(dir: &Path) -> Result<Split, DataError> {
    let parts = (1..=5)
        .map(|k| read_split_file(&dir.join(format!("data_batch_{k}.bin")), 1, 0, 10))
        .collect::<Result<Vec<_>, _>>()?;
    // Exact capacity: a growing Vec would keep up to 60 % slack on 150 MiB.
    let mut train = Dataset::empty("cifar10-train", 10);
    train.images.reserve_exact(parts.iter().map(|p| p.images.len()).sum());
    train.labels.reserve_exact(parts.iter().map(Dataset::len).sum());
    for part in parts {
        train.append(part);
    }
    Ok(Split { train, test: load_cifar10_test(dir)? })
}

/// The CIFAR-10 test set alone: `test_batch.bin` in `dir`.
pub(crate) fn load_cifar10_test(dir: &Path) -> Result<Dataset, DataError> {
    let mut test = read_split_file(&dir.join("test_batch.bin"), 1, 0, 10)?;
    test.name = "cifar10-test".into();
    Ok(test)
}

/// [`read_cifar_file`] for a file of a split, which must hold at least one image.
fn read_split_file(path: &Path, label_bytes: usize, label_index: usize, classes: usize) -> Result<Dataset, DataError> {
    let ds = read_cifar_file(path, label_bytes, label_index, classes)?;
    if ds.is_empty() {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    Ok(ds)
}

/// CIFAR-100: `train.bin` and `test.bin` in `dir`, fine (100) or coarse (20) labels.
pub fn load_cifar100(dir: &Path, fine: bool) -> Result<Split, DataError> {
    let (index, classes) = if fine { (1, 100) } else { (0, 20) };
    let mut train = read_split_file(&dir.join("train.bin"), 2, index, classes)?;
    train.name = "cifar100-train".into();
    Ok(Split { train, test: load_cifar100_test(dir, fine)? })
}

/// The CIFAR-100 test set alone: `test.bin` in `dir`.
pub(crate) fn load_cifar100_test(dir: &Path, fine: bool) -> Result<Dataset, DataError> {
    let (index, classes) = if fine { (1, 100) } else { (0, 20) };
    let mut test = read_split_file(&dir.join("test.bin"), 2, index, classes)?;
    test.name = "cifar100-test".into();
    Ok(test)
}
