//! The pulsed update realizes SGD in expectation; BL management follows aihwkit.

mod common;

use crossbar_sim::device::PulsedParams;
use crossbar_sim::pulse::TrainScales;
use crossbar_sim::{AnalogTile, DeviceConfig, PulseType, Tile, TileConfig, UpdateConfig};
use ndarray::{Array2, array};

fn constant_step(params: PulsedParams, update: UpdateConfig) -> TileConfig {
    TileConfig { device: DeviceConfig::ConstantStep(params), update, ..TileConfig::default() }
}

/// Runs `reps` independent single-vector updates from W = 0 and checks every element's mean
/// ΔW against −lr·d·xᵀ within 3 standard errors derived from the pulse statistics:
/// the count n_ij ~ Binomial(BL, p_ij) with p_ij = (B|x_j|)(A|d_i|), and each pulse is
/// s(1 + σξ), so Var(ΔW_ij) = s²·(BL·p(1 − p) + σ²·BL·p).
fn check_mean_update(sigma: f32, seed: u64) {
    let dw_min = 0.001;
    let params =
        PulsedParams { dw_min_std: sigma, ..PulsedParams { dw_min, ..PulsedParams::default() }.without_variation() };
    let cfg = constant_step(params, UpdateConfig::default());
    let x = array![[1.0f32, -0.8, 0.5, -0.3, 0.1, 0.0]];
    let d = array![[0.5f32, -0.25, 0.1, -0.05]];
    let lr = 0.0093; // k = lr·1·0.5/dw_min = 4.65: BL = 5 and no probability reaches 1
    let scales = TrainScales::compute(&cfg.update, lr, dw_min, 1.0, 0.5);
    assert_eq!(scales.bl, 5);
    let reps = 4000;
    let mut tile = AnalogTile::new(4, 6, &cfg, seed).unwrap();
    let zero = Array2::<f32>::zeros((4, 6));
    let mut sum = Array2::<f64>::zeros((4, 6));
    for _ in 0..reps {
        tile.set_weights(zero.view()).unwrap();
        tile.update(x.view(), d.view(), lr).unwrap();
        sum += &tile.weights().mapv(f64::from);
    }
    let bl = f64::from(scales.bl);
    for i in 0..4 {
        for j in 0..6 {
            let mean = sum[[i, j]] / f64::from(reps);
            let expected = -f64::from(lr) * f64::from(d[[0, i]]) * f64::from(x[[0, j]]);
            let p = f64::from(scales.b * x[[0, j]].abs()) * f64::from(scales.a * d[[0, i]].abs());
            let var = f64::from(dw_min).powi(2) * (bl * p * (1.0 - p) + f64::from(sigma).powi(2) * bl * p);
            let se = (var / f64::from(reps)).sqrt();
            // 1e-9 absorbs f32 rounding of the weights (the x_j = 0 column has no variance).
            assert!((mean - expected).abs() <= 3.0 * se + 1e-9, "[{i},{j}] mean {mean} expected {expected} se {se}");
        }
    }
}

#[test]
fn mean_update_is_sgd_without_noise() {
    check_mean_update(0.0, 21);
}

#[test]
fn mean_update_is_sgd_with_cycle_to_cycle_noise() {
    check_mean_update(0.3, 22);
}

#[test]
fn bl_management_chooses_aihwkit_bl() {
    // BL = min(⌈lr·max|x|·max|d| / dw_min⌉, 31), at least 1: one update cycle each, so the
    // counted pulse slots equal BL.
    let cfg = constant_step(PulsedParams::default(), UpdateConfig::default());
    for (lr, xm, dm) in
        [(0.01f32, 1.0f32, 0.5f32), (0.0093, 1.0, 0.5), (0.1, 1.0, 1.0), (1e-4, 0.1, 0.1), (0.02, 0.3, 0.7)]
    {
        let mut tile = AnalogTile::new(2, 3, &cfg, 5).unwrap();
        let x = array![[xm, -xm / 2.0, 0.0]];
        let d = array![[-dm, dm / 3.0]];
        tile.update(x.view(), d.view(), lr).unwrap();
        let want = ((f64::from(lr) * f64::from(xm) * f64::from(dm) / 0.001).ceil() as u64).clamp(1, 31);
        assert_eq!(tile.counters().update_slots, want, "lr {lr} x {xm} d {dm}");
    }
    // Without BL management the train is always desired_bl long.
    let fixed = UpdateConfig { update_bl_management: false, desired_bl: 17, ..UpdateConfig::default() };
    let mut tile = AnalogTile::new(2, 3, &constant_step(PulsedParams::default(), fixed), 5).unwrap();
    tile.update(array![[0.1f32, 0.0, 0.0]].view(), array![[0.1f32, 0.0]].view(), 0.001).unwrap();
    assert_eq!(tile.counters().update_slots, 17);
}

#[test]
fn update_management_balances_probabilities() {
    // With UM the largest probabilities on both sides are √(k/BL) (k ≤ BL), and A·B·BL·ε = lr.
    let cfg = UpdateConfig::default();
    let s = TrainScales::compute(&cfg, 0.01, 0.001, 2.0, 0.05);
    let k = 0.01 * 2.0 * 0.05 / 0.001;
    assert_eq!(s.bl, 1);
    assert!((s.b * 2.0 - (k / 1.0f32).sqrt()).abs() < 1e-5);
    assert!((s.a * 0.05 - (k / 1.0f32).sqrt()).abs() < 1e-5);
    assert!((s.a * s.b * s.bl as f32 * 0.001 - 0.01).abs() < 1e-7);
    // k > 31: d' is shrunk so that x_max fires with probability 1 and d saturates.
    let s = TrainScales::compute(&cfg, 0.1, 0.001, 1.0, 1.0);
    assert_eq!(s.bl, 31);
    assert!((s.b * 1.0 - 1.0).abs() < 1e-5);
    assert!(s.a * 1.0 > 1.0);
}

#[test]
fn mean_count_is_deterministic() {
    // n_x = round(BL·p_x), n_d = round(BL·p_d), coincidences round(n_x·n_d/BL).
    let params = PulsedParams::default().without_variation();
    let update = UpdateConfig { pulse_type: PulseType::MeanCount, ..UpdateConfig::default() };
    let cfg = constant_step(params, update.clone());
    let x = array![[1.0f32, 0.6]];
    let d = array![[-1.0f32]];
    // k = lr/dw_min = 30.5 → BL = 31; A = B = √(lr/(ε·BL)) = 0.99190, so p_x = (0.9919, 0.5951),
    // p_d = 0.9919.
    let lr = 0.0305;
    let s = TrainScales::compute(&update, lr, 0.001, 1.0, 1.0);
    assert_eq!(s.bl, 31);
    let mut tile = AnalogTile::new(1, 2, &cfg, 1).unwrap();
    tile.update(x.view(), d.view(), lr).unwrap();
    // n_x = (round(30.75), round(18.45)) = (31, 18), n_d = 31: coincidences 31 and 18, up
    // (sgn(x·d) < 0).
    let w = tile.weights();
    assert!((w[[0, 0]] - 0.031).abs() < 1e-6, "{w}");
    assert!((w[[0, 1]] - 0.018).abs() < 1e-6, "{w}");
    assert_eq!(tile.counters().pulses, 49);
}

#[test]
fn pulses_are_counted_and_timed() {
    // No variation and no clipping: every weight moves by exactly (count · dw_min), so the
    // pulse counter equals Σ|ΔW| / dw_min.
    let params = PulsedParams::default().without_variation();
    let cfg = constant_step(params, UpdateConfig::default());
    let mut tile = AnalogTile::new(8, 16, &cfg, 9).unwrap();
    let x = common::uniform(20, 16, 1.0, 1);
    let d = common::uniform(20, 8, 1.0, 2);
    // One vector pair moves each weight by at most 31 steps, far from the ±0.6 bounds.
    tile.update(x.slice(ndarray::s![0..1, ..]), d.slice(ndarray::s![0..1, ..]), 0.01).unwrap();
    let moved: f64 = tile.weights().iter().map(|v| f64::from(v.abs())).sum();
    let c = tile.counters();
    assert!(c.pulses > 0);
    assert!((moved / 0.001 - c.pulses as f64).abs() < 1e-3 * c.pulses as f64);
    assert_eq!(c.update_cycles, 1);
    // Timing: 1 ns per slot, nothing else counted yet.
    assert_eq!(tile.analog_time_ns(), c.update_slots as f64);
    tile.forward_new(x.view()).unwrap();
    tile.backward_new(d.view()).unwrap();
    let c = tile.counters();
    assert_eq!((c.forward_cycles, c.backward_cycles, c.backward_passes), (20, 20, 20));
    assert!(c.forward_passes >= 20);
    let t = 80.0 * (c.forward_passes + c.backward_passes) as f64 + c.update_slots as f64;
    assert_eq!(tile.analog_time_ns(), t);
}

#[test]
fn bl_tolerates_f32_rounding_of_k() {
    // lr 0.005 with ε 0.0002 is k = 25 exactly in decimal, 25.00000007 from the f32 inputs:
    // BL must be 25 (as aihwkit chooses), not 26.
    let s = TrainScales::compute(&UpdateConfig::default(), 0.005, 0.0002, 1.0, 1.0);
    assert_eq!(s.bl, 25);
    let s = TrainScales::compute(&UpdateConfig::default(), 0.01, 0.001, 1.0, 0.5);
    assert_eq!(s.bl, 5);
    // A genuinely larger k still rounds up.
    let s = TrainScales::compute(&UpdateConfig::default(), 0.01, 0.001, 1.0, 0.5001);
    assert_eq!(s.bl, 6);
}
