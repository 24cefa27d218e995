//! Per-epoch metrics, one JSON line each in `metrics.jsonl`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

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

/// Reads every epoch record of a run's `metrics.jsonl` (blank lines are skipped).
///
/// # Errors
/// [`TrainError::Io`] if the file cannot be read; [`TrainError::Metrics`], naming the file and
/// line, for a line that is not an epoch record (nothing is skipped silently).
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| TrainError::Metrics {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The epochs a run directory has finished: its `metrics.jsonl`, or none if the directory
/// exists but has no such file yet (a run still in its first epoch).
///
/// # Errors
/// As [`read_metrics`]; [`TrainError::Io`] also if `dir` itself does not exist.
pub fn read_run_metrics(dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    match read_metrics(&dir.join("metrics.jsonl")) {
        Err(TrainError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => {
            Ok(Vec::new())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(e: usize) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_error: 0.5 / e as f64,
            test_error: 0.6 / e as f64,
            loss: 1.0,
            lr: 0.01,
            seconds: 2.0,
            images_per_s: 100.0,
            analog_cycles: 7,
            analog_time_ns: 1.5,
            best_test_error: 0.6 / e as f64,
            best_train_error: 0.5 / e as f64,
        }
    }

    #[test]
    fn reads_back_what_the_trainer_writes_and_names_a_bad_line() {
        let dir = std::env::temp_dir().join(format!("rapa-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let lines: Vec<String> = (1..=3).map(|e| serde_json::to_string(&epoch(e)).unwrap()).collect();
        std::fs::write(&path, format!("{}\n\n", lines.join("\n"))).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), (1..=3).map(epoch).collect::<Vec<_>>());

        std::fs::write(&path, format!("{}\n{{\"epoch\": 2}}\n", lines[0])).unwrap();
        let err = read_metrics(&path).unwrap_err();
        assert!(matches!(&err, TrainError::Metrics { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("metrics.jsonl, line 2"), "{err}");
        assert!(matches!(read_metrics(&dir.join("absent.jsonl")), Err(TrainError::Io { .. })));

        // A run directory without metrics yet has no epochs; a missing directory is an error.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read_run_metrics(&dir).unwrap(), Vec::new());
        assert!(matches!(read_run_metrics(&dir.join("absent")), Err(TrainError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
