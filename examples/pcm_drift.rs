//! Programming and drift of PCM devices, for comparing rapa's [`InferenceTile`] with aihwkit's
//! `InferenceTile` (`InferenceRPUConfig` with `PCMLikeNoiseModel(g_max=25)`, no drift
//! compensation): a 100 × 200 tile whose column j holds the target weight
//! −1 + 2j/199 in every row (so max|W| = 1 and no mapping scale applies), programmed once and
//! read [`TIMES`] seconds after programming. For every 10th column ([`LEVELS`] target levels)
//! and every read, the mean and variance of its 100 weights.
//!
//! ```
//! use rapa_examples::pcm_drift::{LEVELS, TIMES, run};
//! let stats = run(1).unwrap();
//! assert_eq!(stats.len(), 1 + TIMES.len());
//! // Drift shrinks the largest compared weight (target 0.91): a year after programming it
//! // has lost about half.
//! let (programmed, year) = (stats[0][LEVELS - 1].0, stats[TIMES.len()][LEVELS - 1].0);
//! assert!(programmed > 0.85 && year < 0.6);
//! ```

use crossbar_sim::{InferenceConfig, InferenceTile, MappingConfig, SimError};
use ndarray::Array2;

/// Rows of the tile (devices per target level).
pub const ROWS: usize = 100;
/// Columns of the tile.
pub const COLS: usize = 200;
/// Target levels compared: columns 0, 10, …, 190.
pub const LEVELS: usize = 20;
/// Read times after programming, in seconds: an hour, a day, a year.
pub const TIMES: [f64; 3] = [3600.0, 86_400.0, 3.15e7];

/// The target weight of column `j`.
pub fn target(j: usize) -> f32 {
    -1.0 + 2.0 * j as f32 / (COLS - 1) as f32
}

/// One chip (tile seed `seed`): for the programmed weights and then each read of [`TIMES`], the
/// (mean, variance with n − 1) of the 100 weights of each compared column.
pub fn run(seed: u64) -> Result<Vec<Vec<(f64, f64)>>, SimError> {
    let w = Array2::from_shape_fn((ROWS, COLS), |(_, j)| target(j));
    let cfg = InferenceConfig {
        mapping: MappingConfig { weight_scaling_omega: 0.0, columnwise: false, digital_bias: false },
        ..InferenceConfig::default()
    };
    let mut tile = InferenceTile::from_weights(w.view(), &cfg, seed)?;
    tile.program();
    let stats = |tile: &InferenceTile| -> Vec<(f64, f64)> {
        (0..LEVELS)
            .map(|l| {
                let col = tile.current_weights().column(l * COLS / LEVELS).to_owned();
                let n = col.len() as f64;
                let mean = col.iter().map(|&v| v as f64).sum::<f64>() / n;
                (mean, col.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0))
            })
            .collect()
    };
    let mut out = vec![stats(&tile)];
    for t in TIMES {
        tile.drift_to(t)?;
        out.push(stats(&tile));
    }
    Ok(out)
}
