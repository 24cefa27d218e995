//! The crate's error type.

use std::path::PathBuf;

use crossbar_sim::SimError;
use rapa_layers::LayerError;

use crate::data::DataError;

/// An error of training, evaluation, configuration or file handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A tile failed.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A dataset could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// An invalid setting.
    #[error("invalid setting {field}: {reason}")]
    Config {
        /// The setting (dotted path as in config.toml).
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The loss became NaN or infinite.
    #[error("non-finite loss {loss} at epoch {epoch}, batch {batch}")]
    NonFiniteLoss {
        /// Epoch (1-based).
        epoch: usize,
        /// Batch within the epoch (0-based).
        batch: usize,
        /// The loss value.
        loss: f64,
    },
    /// Training left a NaN or infinite weight (diverged): the run stops before writing that
    /// epoch's checkpoint, so the run directory keeps the previous epoch's.
    #[error(
        "non-finite weight after epoch {epoch}: {tensor} holds {value} at index {index}; the training diverged (try a lower learning rate)"
    )]
    NonFiniteWeights {
        /// Epoch (1-based) after which the weight was found.
        epoch: usize,
        /// The tensor (`conv2 tile 3 weights`, `fc weights`, …).
        tensor: String,
        /// Flat index in it.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The network's outputs became NaN or infinite (diverged weights).
    #[error("non-finite network output for {dataset} image {image}: the weights have diverged")]
    NonFiniteOutput {
        /// The dataset evaluated.
        dataset: String,
        /// Index of the image in it.
        image: usize,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A TOML configuration file could not be parsed.
    #[error("{path}: {reason}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// Parser message (with line and column).
        reason: String,
    },
    /// A line of a run's results file (`metrics.jsonl`, `vote.json`, `reduce.json`) is not what
    /// the file holds.
    #[error("{path}, line {line}: {reason}")]
    Metrics {
        /// The file.
        path: PathBuf,
        /// Line number (1-based).
        line: usize,
        /// Parser message.
        reason: String,
    },
    /// A run's results file (`vote.json`, `reduce.json`) parses but lacks a field the table
    /// needs, or holds it as something other than a number.
    #[error("{path}: no numeric field `{field}`")]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
    },
    /// A checkpoint is unusable.
    #[error("checkpoint: {reason}")]
    Checkpoint {
        /// Why.
        reason: String,
    },
    /// An internal invariant failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl TrainError {
    /// Wraps an IO error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// This error, raised while rebuilding a network or a run from the checkpoint at `path`,
    /// with the file named: a mismatch between the checkpoint's parts or with the data (a
    /// [`Checkpoint`](Self::Checkpoint), layer or simulator error) becomes a
    /// [`Checkpoint`](Self::Checkpoint) error that starts with the path. Refused settings
    /// ([`Config`](Self::Config)) and errors that name their own file stay as they are.
    pub fn in_checkpoint(self, path: &std::path::Path) -> Self {
        let reason = match self {
            Self::Checkpoint { reason } => reason,
            e @ (Self::Layer(_) | Self::Sim(_) | Self::Internal(_)) => e.to_string(),
            e => return e,
        };
        Self::Checkpoint { reason: format!("{}: {reason}", path.display()) }
    }
}
