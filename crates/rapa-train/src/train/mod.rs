//! Training: configuration, learning-rate schedule, the SGD loop with metrics, checkpoints
//! and bit-exact resume, and evaluation with majority voting.

mod checkpoint;
mod config;
mod eval;
mod metrics;
mod schedule;
mod trainer;

pub use checkpoint::{
    CHECKPOINT_VERSION, Checkpoint, MAX_CHECKPOINT_BYTES, check_replaceable, read_checkpoint, write_atomic,
    write_checkpoint,
};
pub(crate) use config::check_threads;
pub use config::{MAX_BATCH, MAX_CONFIG_BYTES, MAX_SYNTHETIC, MAX_THREADS, TrainConfig, read_toml};
pub use eval::{EvalResult, evaluate};
pub(crate) use metrics::read_text;
pub use metrics::{EpochMetrics, MAX_TEXT_BYTES, read_metrics, read_run_metrics};
pub use schedule::learning_rate;
pub use trainer::{BatchProgress, Trainer, keep_spread};
