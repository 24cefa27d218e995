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

impl EpochMetrics {
    /// Checks the record as the one after `prev` (called `what` in the message): an epoch ≥ 1
    /// that follows `prev`'s, and error rates that are fractions in [0, 1]. The reason if not.
    pub(crate) fn check_after(&self, prev: Option<&EpochMetrics>, what: &str) -> Result<(), String> {
        if self.epoch == 0 {
            return Err("epoch 0 (epochs count from 1)".into());
        }
        if let Some(p) = prev.filter(|p| p.epoch >= self.epoch) {
            let order = if p.epoch == self.epoch { "repeats" } else { "comes after" };
            return Err(format!("epoch {} {order} epoch {} of {what}", self.epoch, p.epoch));
        }
        for (field, v) in [
            ("train_error", self.train_error),
            ("test_error", self.test_error),
            ("best_train_error", self.best_train_error),
            ("best_test_error", self.best_test_error),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{field} {v} is not a fraction in [0, 1]"));
            }
        }
        Ok(())
    }
}

/// Largest metrics or result file (`metrics.jsonl`, `vote.json`, …) read: 64 MiB, some
/// 200 000 epoch records; a larger file, or `/dev/zero`, is refused instead of read without
/// bound.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// The UTF-8 text of the file at `path`, at most `max` bytes.
pub(crate) fn read_text(path: &Path, max: u64) -> Result<String, TrainError> {
    let bytes = super::checkpoint::read_bounded(path, max)?;
    String::from_utf8(bytes).map_err(|e| TrainError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Reads every epoch record of a run's `metrics.jsonl` (blank lines are skipped).
///
/// # Errors
/// [`TrainError::Io`] if the file cannot be read or is not UTF-8 text,
/// [`TrainError::Data`] if it is larger than [`MAX_TEXT_BYTES`]; [`TrainError::Metrics`], naming the file and
/// line, for a line that is not an epoch record (nothing is skipped silently), an epoch that is
/// 0, repeats or comes before an earlier line's, or an error rate (`train_error`, `test_error`,
/// `best_train_error`, `best_test_error`) outside [0, 1].
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let text = read_text(path, MAX_TEXT_BYTES)?;
    let mut out: Vec<EpochMetrics> = Vec::new();
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |reason: String| TrainError::Metrics { path: path.to_path_buf(), line: i + 1, reason };
        let m: EpochMetrics = serde_json::from_str(l).map_err(|e| bad(e.to_string()))?;
        m.check_after(out.last(), "an earlier line").map_err(bad)?;
        out.push(m);
    }
    Ok(out)
}

/// The epochs a run directory has finished: its `metrics.jsonl`, or none if the directory has
/// no such file yet but is a run's (it holds `config.toml` or `checkpoint.bin`: a run still in
/// its first epoch; or `plan.toml`: a run that `rapa experiment --list` planned, not started).
///
/// # Errors
/// As [`read_metrics`]; [`TrainError::Io`] also if `dir` itself does not exist, and
/// [`TrainError::Config`] naming `dir` if it holds none of `metrics.jsonl`, `config.toml`,
/// `checkpoint.bin` and `plan.toml` (not a run directory, e.g. the parent of the runs).
pub fn read_run_metrics(dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    match read_metrics(&dir.join("metrics.jsonl")) {
        Err(TrainError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => {
            if ["config.toml", "checkpoint.bin", "plan.toml"].iter().any(|f| dir.join(f).exists()) {
                Ok(Vec::new())
            } else {
                Err(TrainError::Config {
                    field: "run directory".into(),
                    reason: format!(
                        "{} holds no metrics.jsonl, config.toml, checkpoint.bin or plan.toml: not a run directory",
                        dir.display()
                    ),
                })
            }
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

        // A run directory without metrics yet (but with its config) has no epochs; a directory
        // that is no run's, or a missing one, is an error.
        std::fs::remove_file(&path).unwrap();
        let err = read_run_metrics(&dir).unwrap_err();
        assert!(
            matches!(&err, TrainError::Config { .. }) && err.to_string().contains(&*dir.to_string_lossy()),
            "{err}"
        );
        std::fs::write(dir.join("config.toml"), "").unwrap();
        assert_eq!(read_run_metrics(&dir).unwrap(), Vec::new());
        assert!(matches!(read_run_metrics(&dir.join("absent")), Err(TrainError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn repeated_out_of_order_and_out_of_range_records_are_refused() {
        let dir = std::env::temp_dir().join(format!("rapa-metrics-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let line = |m: &EpochMetrics| serde_json::to_string(m).unwrap();
        let cases: [(Vec<EpochMetrics>, usize, &str); 6] = [
            (vec![epoch(1), epoch(2), epoch(2)], 3, "epoch 2 repeats"),
            (vec![epoch(1), epoch(3), epoch(2)], 3, "epoch 2 comes after epoch 3"),
            (vec![EpochMetrics { epoch: 0, ..epoch(1) }], 1, "epoch 0"),
            (vec![epoch(1), EpochMetrics { test_error: 1.5, ..epoch(2) }], 2, "test_error 1.5"),
            (vec![EpochMetrics { train_error: -0.1, ..epoch(1) }], 1, "train_error -0.1"),
            (vec![EpochMetrics { best_test_error: 2.0, ..epoch(1) }], 1, "best_test_error 2"),
        ];
        for (records, bad_line, needle) in cases {
            let text: Vec<String> = records.iter().map(line).collect();
            std::fs::write(&path, text.join("\n")).unwrap();
            let err = read_metrics(&path).unwrap_err();
            assert!(matches!(&err, TrainError::Metrics { line, .. } if *line == bad_line), "{err}");
            let msg = err.to_string();
            assert!(msg.contains("metrics.jsonl") && msg.contains(needle), "{msg}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
