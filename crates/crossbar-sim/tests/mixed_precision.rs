//! The mixed-precision update (`MixedPrecisionConfig`): digital accumulation in χ, transfer of
//! whole device steps, and its state.

mod common;

use common::exact_steps;
use crossbar_sim::device::PulsedParams;
use crossbar_sim::{
    AnalogTile, ConfigError, DeviceConfig, FloatTile, MixedPrecisionConfig, SimError, Tile, TileConfig, TileSnapshot,
};
use ndarray::{Array2, array};

fn mp(cfg: TileConfig, mp: MixedPrecisionConfig) -> TileConfig {
    TileConfig { mixed_precision: MixedPrecisionConfig { enabled: true, ..mp }, ..cfg }
}

/// On an ideal device (exact transfers) W − χ is plain SGD: every transfer moves n·ε from χ to
/// W. After each transfer |χ| < ε, W − W₀ is a whole number of steps ε, and the forward pass
/// sees only W.
#[test]
fn exact_transfers_keep_w_minus_chi_equal_to_sgd() {
    let eps = 0.01f32;
    let cfg = mp(TileConfig::perfect(), MixedPrecisionConfig { granularity: eps, ..Default::default() });
    let mut tile = AnalogTile::new(3, 5, &cfg, 7).unwrap();
    let w0 = Array2::from_shape_fn((3, 5), |(i, j)| 0.1 * i as f32 - 0.03 * j as f32);
    tile.set_weights(w0.view()).unwrap();
    let mut sgd = FloatTile::from_weights(w0.clone());
    for call in 0..40 {
        let x = Array2::from_shape_fn((4, 5), |(b, j)| ((call * 20 + b * 5 + j) as f32 * 0.71).sin());
        let d = Array2::from_shape_fn((4, 3), |(b, i)| ((call * 12 + b * 3 + i) as f32 * 1.37).cos() * 0.3);
        tile.update(x.view(), d.view(), 0.05).unwrap();
        sgd.update(x.view(), d.view(), 0.05).unwrap();
        let chi = tile.mixed_precision_accumulator().to_owned();
        assert!(chi.iter().all(|c| c.abs() < eps), "call {call}: χ keeps a whole step: {chi}");
        let w = tile.weights().to_owned();
        for ((&wi, &w0i), (&c, &s)) in w.iter().zip(&w0).zip(chi.iter().zip(sgd.weights())) {
            let steps = (wi - w0i) / eps;
            assert!((steps - steps.round()).abs() < 1e-3, "call {call}: W moved by {steps} steps");
            assert!((wi - c - s).abs() < 1e-5, "call {call}: W − χ = {} against SGD {s}", wi - c);
        }
        let x = Array2::from_elem((1, 5), 0.5f32);
        let want = FloatTile::from_weights(w.clone()).forward_new(x.view()).unwrap();
        assert_eq!(tile.forward_new(x.view()).unwrap(), want, "the forward pass sees W only");
    }
    assert!(tile.weights() != w0.view(), "40 calls never transferred a step");
}

/// Pulse counts of one transfer over `reps` tile seeds: per element the sample mean and
/// variance of −ΔW/ε (the devices step by exactly ε), and χ after it (asserted to be the same
/// on every seed).
fn transfer_pulses(
    cfg: &TileConfig,
    x: &Array2<f32>,
    d: &Array2<f32>,
    eps: f32,
    reps: u64,
) -> (Array2<f64>, Array2<f64>, Array2<f32>) {
    let dim = (d.ncols(), x.ncols());
    let (mut sum, mut sq) = (Array2::<f64>::zeros(dim), Array2::<f64>::zeros(dim));
    let mut remainder: Option<Array2<f32>> = None;
    for seed in 0..reps {
        let mut tile = AnalogTile::new(dim.0, dim.1, cfg, seed).unwrap();
        tile.update(x.view(), d.view(), 1.0).unwrap();
        let pulses = tile.weights().mapv(|w| f64::from(-w / eps).round());
        sum += &pulses;
        sq += &pulses.mapv(|p| p * p);
        let chi = tile.mixed_precision_accumulator().to_owned();
        assert_eq!(*remainder.get_or_insert_with(|| chi.clone()), chi, "seed {seed}: the remainder is deterministic");
        assert_eq!(tile.counters().update_cycles, dim.0 as u64, "one cycle per transferred row");
    }
    let r = reps as f64;
    let mean = &sum / r;
    let var = (&sq - &(&mean * &sum)) / (r - 1.0);
    (mean, var, remainder.unwrap())
}

/// Asserts that element (i, j)'s pulse count is Binomial(bl[i], p[i][j]) in mean and variance:
/// z-tests at 4 standard errors, the variance's from the binomial's fourth central moment
/// μ₄ = μ₂·(1 + 3(BL − 2)·p·q): SE = √((μ₄ − μ₂²·(r − 3)/(r − 1))/r). Signs follow `sign`.
fn assert_binomial(
    case: &str,
    mean: &Array2<f64>,
    var: &Array2<f64>,
    bl: &[f64],
    p: &Array2<f64>,
    sign: &Array2<f64>,
    r: f64,
) {
    for ((i, j), &pij) in p.indexed_iter() {
        let (m, v) = (mean[[i, j]], var[[i, j]]);
        let mu2 = bl[i] * pij * (1.0 - pij);
        let want = sign[[i, j]] * bl[i] * pij;
        assert!((m - want).abs() <= 4.0 * (mu2 / r).sqrt() + 1e-12, "{case} [{i},{j}]: mean {m} pulses, want {want}");
        if mu2 == 0.0 {
            assert_eq!(v, 0.0, "{case} [{i},{j}]: a deterministic count varied");
        } else {
            let mu4 = mu2 * (1.0 + 3.0 * (bl[i] - 2.0) * pij * (1.0 - pij));
            let se = ((mu4 - mu2 * mu2 * (r - 3.0) / (r - 1.0)) / r).sqrt();
            assert!((v - mu2).abs() <= 4.0 * se, "{case} [{i},{j}]: var {v}, want {mu2} ± {se}");
        }
    }
}

/// One transfer through the pulsed update: with update and BL management (forced on, even when
/// the tile's own update has them off) and um_grad_scale 1 (forced too), BL = max|n| and the
/// row's d train is on in every slot (p_d = 1), so element j gets Binomial(BL, |n_j|/BL)
/// pulses: mean n_j (the element with |n_j| = BL exactly BL), variance n_j·(1 − n_j/BL). χ
/// keeps the remainder, the same on every repetition.
#[test]
fn a_transfer_sends_n_pulses_on_average() {
    let eps = 0.01f32;
    // χ = lr·d·xᵀ with lr 1: row 0 asks for 0.0, 1.2, 2.5, 4.9, −6.3 steps, row 1 for half that.
    let x = array![[0.0f32, 0.012, 0.025, 0.049, -0.063]];
    let d = array![[1.0f32, 0.5]];
    let n = array![[0.0f64, 1.0, 2.0, 4.0, -6.0], [0.0, 0.0, 1.0, 2.0, -3.0]];
    let bl = [6.0f64, 3.0];
    let p = Array2::from_shape_fn((2, 5), |(i, j)| f64::abs(n[[i, j]]) / bl[i]);
    let sign = n.mapv(f64::signum);
    let managed = crossbar_sim::UpdateConfig::default();
    let unmanaged = crossbar_sim::UpdateConfig {
        update_management: false,
        update_bl_management: false,
        um_grad_scale: 0.5,
        ..managed.clone()
    };
    for (case, update) in [("managed", managed), ("UM, UBLM off and g = 0.5 in the tile", unmanaged)] {
        let cfg = mp(
            TileConfig { device: exact_steps(eps), update, ..TileConfig::default() },
            MixedPrecisionConfig::default(),
        );
        let reps = 4000;
        let (mean, var, chi) = transfer_pulses(&cfg, &x, &d, eps, reps);
        assert_binomial(case, &mean, &var, &bl, &p, &sign, reps as f64);
        let want = array![[0.0f32, 0.002, 0.005, 0.009, -0.003], [0.0, 0.006, 0.0025, 0.0045, -0.0015]];
        assert!(chi.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6), "{case}: χ {chi}, want {want}");
    }
}

/// `transfer_lr` λ scales what arrives: BL = ⌈λ·max|n|⌉ and element j gets λ·|n_j| pulses on
/// average (here λ = ½, max|n| = 6: BL 3, p = |n_j|/6). Beyond `desired_bl` the row is scaled
/// down as a whole, as in aihwkit: n = (40, 10, −20) with BL capped at 31 gives
/// 31·|n_j|/40 pulses on average (p_d saturates at 1, p_x = |n_j|/40).
#[test]
fn transfer_lr_and_the_bl_cap_scale_the_pulses() {
    let eps = 0.01f32;
    let reps = 3000;
    let half = mp(
        TileConfig { device: exact_steps(eps), ..TileConfig::default() },
        MixedPrecisionConfig { transfer_lr: 0.5, ..Default::default() },
    );
    let x = array![[0.0f32, 0.02, 0.04, -0.06]];
    let d = array![[1.0f32]];
    let (mean, var, _) = transfer_pulses(&half, &x, &d, eps, reps);
    let n = array![[0.0f64, 2.0, 4.0, -6.0]];
    let p = n.mapv(|v| v.abs() / 6.0);
    assert_binomial("transfer_lr ½", &mean, &var, &[3.0], &p, &n.mapv(f64::signum), reps as f64);
    let capped = mp(TileConfig { device: exact_steps(eps), ..TileConfig::default() }, MixedPrecisionConfig::default());
    let x = array![[0.4f32, 0.1, -0.2]];
    let (mean, var, chi) = transfer_pulses(&capped, &x, &d, eps, reps);
    let n = array![[40.0f64, 10.0, -20.0]];
    let p = n.mapv(|v| v.abs() / 40.0);
    assert_binomial("BL capped at 31", &mean, &var, &[31.0], &p, &n.mapv(f64::signum), reps as f64);
    assert!(chi.iter().all(|c| c.abs() < 1e-6), "χ gave up all 40, 10 and 20 steps: {chi}");
}

/// `transfer_every` counts update calls; `rows_per_transfer` transfers that many rows per
/// transfer, cycling from where the last one stopped. (Binary fractions: every value exact.)
#[test]
fn transfers_follow_their_schedule() {
    let eps = 0.25f32;
    let cfg = mp(
        TileConfig::perfect(),
        MixedPrecisionConfig { granularity: eps, transfer_every: 3, rows_per_transfer: 2, ..Default::default() },
    );
    let mut tile = AnalogTile::new(3, 2, &cfg, 1).unwrap();
    // Every call adds 0.5 (two steps) to every element of χ.
    let (x, d) = (array![[1.0f32, 1.0]], array![[1.0f32, 1.0, 1.0]]);
    // Transfers after calls 3 (rows 0, 1: 6 steps each), 6 (row 2: 12 steps, row 0: 6) and
    // 9 (row 1: 12, row 2: 6); χ keeps 1.5 in row 0 at the end.
    let schedule = [(3, [-1.5f32, -1.5, 0.0]), (6, [-3.0, -1.5, -3.0]), (9, [-3.0, -4.5, -4.5])];
    for (call, want) in schedule {
        let before = tile.weights().to_owned();
        for c in 1..=3 {
            tile.update(x.view(), d.view(), 0.5).unwrap();
            if c < 3 {
                assert_eq!(tile.weights(), before.view(), "call {}: no transfer due", call - 3 + c);
            }
        }
        let got: Vec<f32> = tile.weights().column(0).to_vec();
        assert_eq!(got, want, "after call {call}");
        assert_eq!(tile.weights().column(1), tile.weights().column(0));
    }
    assert_eq!(tile.mixed_precision_accumulator(), array![[1.5f32, 1.5], [0.0, 0.0], [0.0, 0.0]]);
    assert_eq!(tile.counters().update_cycles, 6, "two rows per transfer, three transfers");
}

/// `random_row` starts each partial transfer at a uniformly drawn row, independently of the
/// last one: χ² over the 25 (previous row, next row) pairs of 2 500 transfers (the cyclic
/// order, `random_row` ignored, would fill only 5 of them).
#[test]
fn random_rows_are_uniform() {
    let eps = 0.01f32;
    let cfg = mp(
        TileConfig::perfect(),
        MixedPrecisionConfig { granularity: eps, rows_per_transfer: 1, random_row: true, ..Default::default() },
    );
    let rows = 5;
    let mut tile = AnalogTile::new(rows, 1, &cfg, 3).unwrap();
    let (x, d) = (array![[1.0f32]], Array2::from_elem((1, rows), 1.0f32));
    let n = 2500;
    let mut pairs = vec![0usize; rows * rows];
    let mut prev = None;
    for _ in 0..n {
        let before = tile.weights().to_owned();
        tile.update(x.view(), d.view(), eps).unwrap();
        let changed: Vec<usize> = (0..rows).filter(|&i| tile.weights()[[i, 0]] != before[[i, 0]]).collect();
        assert_eq!(changed.len(), 1, "one row per transfer");
        if let Some(p) = prev {
            pairs[p * rows + changed[0]] += 1;
        }
        prev = Some(changed[0]);
    }
    let e = (n - 1) as f64 / pairs.len() as f64;
    let chi2: f64 = pairs.iter().map(|&h| (h as f64 - e).powi(2) / e).sum();
    // 24 degrees of freedom: P(χ² > 51.18) = 0.001.
    assert!(chi2 < 51.18, "pair counts {pairs:?}, χ² = {chi2}");
}

/// Updates that cancel within one step never reach the device: W stays exactly as programmed,
/// while the plain pulsed update on the same asymmetric device random-walks and drifts.
#[test]
fn cancelling_updates_leave_the_device_alone() {
    let device = DeviceConfig::ConstantStep(PulsedParams { up_down_dtod: 0.05, ..PulsedParams::default() });
    let plain = TileConfig { device, ..TileConfig::default() };
    let mixed = mp(plain.clone(), MixedPrecisionConfig::default());
    let w0 = Array2::from_shape_fn((4, 6), |(i, j)| 0.02 * (i as f32 - j as f32));
    let x = Array2::from_shape_fn((8, 6), |(b, j)| ((b * 6 + j) as f32).sin());
    let d = Array2::from_shape_fn((8, 4), |(b, i)| ((b * 4 + i) as f32).cos() * 0.1);
    let neg = d.mapv(|v| -v);
    let mut tiles = [AnalogTile::new(4, 6, &plain, 5).unwrap(), AnalogTile::new(4, 6, &mixed, 5).unwrap()];
    for t in &mut tiles {
        t.set_weights(w0.view()).unwrap();
        for _ in 0..50 {
            t.update(x.view(), d.view(), 0.001).unwrap();
            t.update(x.view(), neg.view(), 0.001).unwrap();
        }
    }
    assert!(tiles[0].weights() != w0.view(), "the plain pulsed update did not move");
    assert!(tiles[0].counters().pulses > 0);
    assert_eq!(tiles[1].weights(), w0.view(), "mixed precision moved the device");
    assert_eq!(tiles[1].counters().pulses, 0);
    assert!(tiles[1].mixed_precision_accumulator().iter().all(|c| c.abs() < 1e-6), "χ does not cancel");
}

/// Quantized x and d: deterministic rounding puts every value of the outer product on the
/// grid of the two widths; stochastic rounding is unbiased (the mean of χ over many seeds is
/// lr·d·xᵀ).
#[test]
fn quantized_outer_products() {
    let x = array![[0.3f32, -0.7, 0.05, 1.0]];
    let d = array![[0.2f32, -0.9]];
    let exact = d.t().dot(&x);
    let base = MixedPrecisionConfig { granularity: 100.0, n_x_bins: 5, n_d_bins: 3, ..Default::default() };
    // Deterministic: x on steps of 1.0/2 → [0.5, −0.5, 0, 1]; d on steps of 0.9/1 → [0, −0.9].
    let det =
        mp(TileConfig::perfect(), MixedPrecisionConfig { stoc_round_x: false, stoc_round_d: false, ..base.clone() });
    let mut tile = AnalogTile::new(2, 4, &det, 1).unwrap();
    tile.update(x.view(), d.view(), 1.0).unwrap();
    let want = array![[0.0f32, 0.0, 0.0, 0.0], [-0.45, 0.45, 0.0, -0.9]];
    assert!(tile.mixed_precision_accumulator().iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
    let sto = mp(TileConfig::perfect(), base);
    let reps = 20000;
    let mut sum = Array2::<f64>::zeros((2, 4));
    let mut sq = Array2::<f64>::zeros((2, 4));
    for seed in 0..reps {
        let mut tile = AnalogTile::new(2, 4, &sto, seed).unwrap();
        tile.update(x.view(), d.view(), 1.0).unwrap();
        let chi = tile.mixed_precision_accumulator().mapv(f64::from);
        sum += &chi;
        sq += &chi.mapv(|v| v * v);
    }
    let r = reps as f64;
    for ((i, j), &e) in exact.indexed_iter() {
        let mean = sum[[i, j]] / r;
        let se = ((sq[[i, j]] / r - mean * mean).max(0.0) / r).sqrt();
        // (+1e-6: χ holds f32 products; x = 1.0 and d = −0.9 sit on their grids and never vary.)
        assert!((mean - f64::from(e)).abs() <= 4.0 * se + 1e-6, "[{i},{j}]: mean {mean}, want {e} ± {se}");
    }
}

/// A tile saved mid-accumulation restores bit-exactly and continues identically; states with a
/// wrong χ are refused.
#[test]
fn state_round_trip_and_corrupt_states() {
    let cfg = mp(
        TileConfig::default(),
        MixedPrecisionConfig { rows_per_transfer: 2, transfer_every: 2, ..Default::default() },
    );
    let mut a = AnalogTile::new(3, 4, &cfg, 11).unwrap();
    let x = Array2::from_shape_fn((5, 4), |(b, j)| ((b + 2 * j) as f32 * 0.3).sin());
    let d = Array2::from_shape_fn((5, 3), |(b, i)| ((b * 3 + i) as f32 * 0.9).cos() * 0.5);
    // Three calls: one transfer (rows 0, 1) and one call accumulated since.
    for _ in 0..3 {
        a.update(x.view(), d.view(), 0.01).unwrap();
    }
    assert_eq!((a.state().mp_calls, a.state().mp_next_row), (3, 2));
    let mut b = AnalogTile::from_state(a.state()).unwrap();
    for _ in 0..5 {
        a.update(x.view(), d.view(), 0.01).unwrap();
        b.update(x.view(), d.view(), 0.01).unwrap();
    }
    assert_eq!(a.state(), b.state());
    assert!(a.mixed_precision_accumulator().iter().any(|&c| c != 0.0));
    let mut bad = a.state();
    bad.chi = Array2::zeros((3, 3));
    assert!(matches!(AnalogTile::from_state(bad), Err(SimError::State { reason }) if reason.contains("accumulator")));
    let mut bad = a.state();
    bad.chi[[1, 1]] = f32::NAN;
    assert!(matches!(AnalogTile::from_state(bad), Err(SimError::State { reason }) if reason.contains("finite")));
    let mut bad = a.state();
    bad.mp_next_row = 3;
    assert!(matches!(AnalogTile::from_state(bad), Err(SimError::State { reason }) if reason.contains("row 3")));
    // Without mixed precision a state holds no χ.
    let mut bad = AnalogTile::new(3, 4, &TileConfig::default(), 1).unwrap().state();
    bad.chi = Array2::zeros((3, 4));
    assert!(AnalogTile::from_state(bad).is_err());
    // And through the snapshot type.
    assert!(matches!(a.snapshot(), TileSnapshot::Analog(_)));
}

/// Bad settings name their field.
#[test]
fn invalid_settings_are_named() {
    let cases: [(MixedPrecisionConfig, &str); 6] = [
        (MixedPrecisionConfig { transfer_every: 0, ..Default::default() }, "mixed_precision.transfer_every"),
        (MixedPrecisionConfig { transfer_lr: 0.0, ..Default::default() }, "mixed_precision.transfer_lr"),
        (MixedPrecisionConfig { transfer_lr: f32::NAN, ..Default::default() }, "mixed_precision.transfer_lr"),
        (MixedPrecisionConfig { granularity: -1e-3, ..Default::default() }, "mixed_precision.granularity"),
        (MixedPrecisionConfig { granularity: 1e-40, ..Default::default() }, "mixed_precision.granularity"),
        (MixedPrecisionConfig { n_d_bins: 1, ..Default::default() }, "mixed_precision.n_d_bins"),
    ];
    for (m, field) in cases {
        let cfg = mp(TileConfig::default(), m);
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
        assert!(matches!(AnalogTile::new(2, 2, &cfg, 1), Err(SimError::Config(_))));
    }
    // Off, the same values are not checked against a device, but still validated.
    let off = TileConfig {
        mixed_precision: MixedPrecisionConfig { transfer_every: 0, ..Default::default() },
        ..TileConfig::default()
    };
    assert!(matches!(off.validate(), Err(ConfigError::OutOfRange { .. })));
}
