//! Errors of dataset loading.

use std::path::PathBuf;

/// A dataset file that cannot be used. Every variant names the file, and the byte offset or
/// the variable where that makes sense.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file cannot be opened or read (missing files included).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file ends inside a record.
    #[error("{path}: truncated record at byte offset {offset} (records are {record_len} bytes, the file has {len})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset where the incomplete record starts.
        offset: u64,
        /// Record size.
        record_len: usize,
        /// File length.
        len: u64,
    },
    /// A file of a train or test split holds no images (it would silently shrink the split,
    /// or leave nothing to train or test on).
    #[error("{path}: holds no images")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than any valid file of its format.
    #[error("{path}: {len} bytes is larger than the {max} bytes a valid file can have")]
    Oversized {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A label byte is not a valid class.
    #[error("{path}: label {label} at byte offset {offset} is outside 0..{n_classes}")]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Offset of the label byte (or index of the label for .mat files).
        offset: u64,
        /// The label.
        label: i64,
        /// Number of classes.
        n_classes: usize,
    },
    /// A required .mat variable is absent.
    #[error("{path}: variable `{name}` not found")]
    MissingVariable {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: String,
    },
    /// A .mat variable has the wrong type or shape.
    #[error("{path}: variable `{name}`: {reason}")]
    BadVariable {
        /// The file.
        path: PathBuf,
        /// The variable.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The .mat file cannot be parsed.
    #[error("{path}: not a readable MATLAB v5 file: {reason}")]
    Mat {
        /// The file.
        path: PathBuf,
        /// What is wrong (with a byte offset where known).
        reason: String,
    },
    /// The caller asked for something no file can satisfy (e.g. a label byte past the
    /// record's label bytes).
    #[error("{path}: invalid argument: {reason}")]
    InvalidArgument {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}
