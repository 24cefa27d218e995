//! Per-epoch metrics, one JSON line each in `metrics.jsonl`.

use serde::{Deserialize, Serialize};

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Running training error over the epoch's batches (fraction in [0, 1]), as Caffe reports.
    pub train_error: f64,
    /// Test error of one evaluation pass after the epoch (fraction in [0, 1]).
    pub test_error: f64,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Wall-clock seconds of the epoch's training (without evaluation).
    pub seconds: f64,
    /// Training throughput.
    pub images_per_s: f64,
    /// Analog cycles of the epoch's training: the busiest tile's forward + backward + update
    /// cycles summed over layers (what the analog hardware would need without pipelining).
    pub analog_cycles: u64,
    /// Simulated analog time of the epoch's training on the busiest tiles (ns), from the tiles'
    /// timing model (float tiles use the default timing model).
    pub analog_time_ns: f64,
    /// Best (lowest) test error so far.
    pub best_test_error: f64,
    /// Best (lowest) training error so far.
    pub best_train_error: f64,
}
