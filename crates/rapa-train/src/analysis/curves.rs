//! Learning curves of finished or running runs: one series per run, read from `metrics.jsonl`.

use crate::train::EpochMetrics;

/// Which per-epoch value a learning curve shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum CurveMetric {
    /// Test error of the pass after each epoch, in %. The default.
    #[default]
    TestError,
    /// Running training error over the epoch's batches, in %.
    TrainError,
    /// Mean training loss.
    Loss,
}

impl CurveMetric {
    /// The value of one epoch.
    pub fn of(self, m: &EpochMetrics) -> f64 {
        match self {
            Self::TestError => 100.0 * m.test_error,
            Self::TrainError => 100.0 * m.train_error,
            Self::Loss => m.loss,
        }
    }

    /// Axis label and CSV column name.
    pub fn label(self) -> &'static str {
        match self {
            Self::TestError => "test error (%)",
            Self::TrainError => "train error (%)",
            Self::Loss => "loss",
        }
    }
}

/// One (epoch, value) series per named run.
pub fn learning_curves(runs: &[(String, Vec<EpochMetrics>)], metric: CurveMetric) -> Vec<(String, Vec<(f64, f64)>)> {
    runs.iter().map(|(name, ms)| (name.clone(), ms.iter().map(|m| (m.epoch as f64, metric.of(m))).collect())).collect()
}

/// The curves as CSV: a header `epoch,<run>,…`, then one row per epoch that any run reached,
/// with an empty cell where a run has no such epoch. Names with commas, quotes or line breaks
/// are quoted.
pub fn curves_csv(curves: &[(String, Vec<(f64, f64)>)]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let mut epochs: Vec<f64> = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)).collect();
    epochs.sort_by(f64::total_cmp);
    epochs.dedup();
    let mut out = String::from("epoch");
    for (name, _) in curves {
        out.push(',');
        out.push_str(&quote(name));
    }
    out.push('\n');
    for e in epochs {
        out.push_str(&e.to_string());
        for (_, c) in curves {
            out.push(',');
            if let Some(p) = c.iter().find(|p| p.0 == e) {
                out.push_str(&format!("{:.4}", p.1));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_aligns_runs_by_epoch_and_quotes_names() {
        let curves = vec![
            ("a".to_string(), vec![(1.0, 90.0), (2.0, 45.5)]),
            ("b, slow".to_string(), vec![(1.0, 88.25), (2.0, 80.0), (3.0, 70.125)]),
        ];
        assert_eq!(curves_csv(&curves), "epoch,a,\"b, slow\"\n1,90.0000,88.2500\n2,45.5000,80.0000\n3,,70.1250\n");
    }

    #[test]
    fn curves_take_the_chosen_metric_per_epoch() {
        let m = |epoch, test_error, train_error, loss| EpochMetrics {
            epoch,
            train_error,
            test_error,
            loss,
            lr: 0.01,
            seconds: 1.0,
            images_per_s: 1.0,
            analog_cycles: 0,
            analog_time_ns: 0.0,
            best_test_error: test_error,
            best_train_error: train_error,
        };
        let runs = vec![("r".to_string(), vec![m(1, 0.5, 0.25, 2.0), m(2, 0.125, 0.0625, 1.5)])];
        assert_eq!(learning_curves(&runs, CurveMetric::TestError)[0].1, vec![(1.0, 50.0), (2.0, 12.5)]);
        assert_eq!(learning_curves(&runs, CurveMetric::TrainError)[0].1, vec![(1.0, 25.0), (2.0, 6.25)]);
        assert_eq!(learning_curves(&runs, CurveMetric::Loss)[0].1, vec![(1.0, 2.0), (2.0, 1.5)]);
    }
}
