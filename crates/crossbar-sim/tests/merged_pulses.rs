//! The merged pulsed update (all coincidences of a call applied at once, constant step) has
//! the distribution of the per-pulse path: same mean and variance of every weight after a
//! multi-vector update, both far from the bounds and where clipping happens.

use crossbar_sim::device::PulsedParams;
use crossbar_sim::{AnalogTile, DeviceConfig, Tile, TileConfig, UpdateConfig};
use ndarray::{Array2, Axis};

const OUT: usize = 4;
const IN: usize = 6;

fn tile(merge: bool, seed: u64) -> AnalogTile {
    let cfg = TileConfig {
        // Strong cycle-to-cycle noise (σ = 1), so that its share of each weight's variance is
        // as large as the pulse-count share and a wrong noise sum cannot hide.
        device: DeviceConfig::ConstantStep(PulsedParams { dw_min_std: 1.0, ..PulsedParams::default() }),
        update: UpdateConfig { merge_pulses: merge, ..UpdateConfig::default() },
        ..TileConfig::default()
    };
    AnalogTile::new(OUT, IN, &cfg, seed).unwrap()
}

/// A batch of 80 vector pairs (three blocks of the merged path) with mixed signs, so that ups
/// and downs interleave.
fn batch() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((80, IN), |(b, j)| (((b * 5 + j * 3) % 11) as f32 - 5.0) / 5.0);
    let d = Array2::from_shape_fn((80, OUT), |(b, i)| (((b * 7 + i * 2) % 9) as f32 - 4.0) / 4.0);
    (x, d)
}

/// Mean, variance and the variance of the sample variance (from the fourth central moment)
/// of every weight over `reps` updates starting from `w0`.
fn moments(mut t: AnalogTile, w0: &Array2<f32>, lr: f32, reps: usize) -> [Array2<f64>; 3] {
    let (x, d) = batch();
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        t.set_weights(w0.view()).unwrap();
        t.update(x.view(), d.view(), lr).unwrap();
        let w = t.weights().mapv(f64::from);
        for ((v, lo), hi) in w.iter().zip(&t.hidden().w_min).zip(&t.hidden().w_max) {
            assert!(*v >= f64::from(*lo) && *v <= f64::from(*hi), "weight {v} outside [{lo}, {hi}]");
        }
        samples.push(w);
    }
    let views: Vec<_> = samples.iter().map(|a| a.view()).collect();
    let s = ndarray::stack(Axis(0), &views).unwrap();
    let n = reps as f64;
    let mean = s.mean_axis(Axis(0)).unwrap();
    let c = &s - &mean.clone().insert_axis(Axis(0));
    let var = c.mapv(|v| v * v).sum_axis(Axis(0)) / (n - 1.0);
    let m4 = c.mapv(|v| v.powi(4)).mean_axis(Axis(0)).unwrap();
    // Var(s²) = (μ₄ − σ⁴·(n − 3)/(n − 1)) / n
    let var_of_var = (&m4 - &var.mapv(|v| v * v * (n - 3.0) / (n - 1.0))) / n;
    [mean, var, var_of_var]
}

/// Two-sample z-tests on every weight's mean and variance at 4.5 standard errors (a false
/// alarm probability of ~7·10⁻⁶ per statistic, ~3·10⁻⁴ over the 48 tested here).
fn assert_same_distribution(w0: &Array2<f32>, lr: f32, what: &str) {
    let reps = 3000;
    let [m1, v1, vv1] = moments(tile(true, 5), w0, lr, reps);
    let [m2, v2, vv2] = moments(tile(false, 5), w0, lr, reps);
    let n = reps as f64;
    let mut moved = 0;
    for idx in 0..OUT * IN {
        let ij = (idx / IN, idx % IN);
        let se_mean = ((v1[ij] + v2[ij]) / n).sqrt();
        assert!(
            (m1[ij] - m2[ij]).abs() <= 4.5 * se_mean + 1e-7,
            "{what} {ij:?}: mean merged {} vs per-pulse {} (se {se_mean})",
            m1[ij],
            m2[ij]
        );
        let se_var = (vv1[ij] + vv2[ij]).max(0.0).sqrt();
        assert!(
            (v1[ij] - v2[ij]).abs() <= 4.5 * se_var + 1e-12,
            "{what} {ij:?}: variance merged {} vs per-pulse {} (se {se_var})",
            v1[ij],
            v2[ij]
        );
        moved += usize::from((m1[ij] - f64::from(w0[ij])).abs() > 3.0 * se_mean);
    }
    assert!(moved >= OUT * IN / 2, "{what}: only {moved} weights moved; the test has no power");
}

#[test]
fn merged_update_matches_per_pulse_far_from_bounds() {
    // lr 0.003 with |x|, |d| ≤ 1: up to 3 coincidences per pair, ≤ 240 per call; the ±0.6
    // bounds (30 % spread) are out of reach, so whole calls merge.
    assert_same_distribution(&Array2::zeros((OUT, IN)), 0.003, "interior");
}

#[test]
fn merged_update_matches_per_pulse_at_the_bounds() {
    // Start every device 2 steps below its upper bound: most calls clip, which the merged path
    // must detect and replay pulse by pulse in the original order.
    let t = tile(true, 5);
    let w0 = t.hidden().w_max.mapv(|b| b - 0.002);
    assert_same_distribution(&w0, 0.01, "near bounds");
}
