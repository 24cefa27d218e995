//! The pulsed update realizes SGD in expectation; BL management follows aihwkit.

mod common;

use crossbar_sim::device::PulsedParams;
use crossbar_sim::pulse::TrainScales;
use crossbar_sim::{AnalogTile, DeviceConfig, PulseType, Tile, TileConfig, UpdateConfig};
use ndarray::{Array2, array};

fn constant_step(params: PulsedParams, update: UpdateConfig) -> TileConfig {
    TileConfig { device: DeviceConfig::ConstantStep(params), update, ..TileConfig::default() }
}

/// Mean, variance and fourth central moment of one device's change s·(n + σ·√n·ξ) from one
/// vector pair, with n ~ Binomial(BL, p) coincidences of step s and c2c spread σ (the n pulses'
/// noise s·σ·Σξ_k is s·σ·√n·ξ in distribution). With D = n − BL·p and the binomial central
/// moments μ₂ = BL·p·q, μ₃ = μ₂·(q − p), μ₄ = μ₂·(1 + 3(BL − 2)·p·q) (q = 1 − p), the odd powers
/// of ξ vanish and E[ξ⁴] = 3:
/// Var = s²·(μ₂ + σ²·BL·p), E[(D + σ√n·ξ)⁴] = μ₄ + 6σ²·E[D²·n] + 3σ⁴·E[n²], where
/// E[D²·n] = μ₃ + BL·p·μ₂ and E[n²] = μ₂ + (BL·p)².
fn pulse_moments(bl: f64, p: f64, s: f64, sigma: f64) -> [f64; 3] {
    let (q, m) = (1.0 - p, bl * p);
    let mu2 = bl * p * q;
    let mu3 = mu2 * (q - p);
    let mu4 = mu2 * (1.0 + 3.0 * (bl - 2.0) * p * q);
    let s2 = sigma * sigma;
    let var = mu2 + s2 * m;
    let m4 = mu4 + 6.0 * s2 * (mu3 + m * mu2) + 3.0 * s2 * s2 * (mu2 + m * m);
    [s * m, s * s * var, s.powi(4) * m4]
}

/// Standard error of the unbiased sample variance of `n` i.i.d. draws with variance `var` and
/// fourth central moment `m4`: Var(s²) = (μ₄ − σ⁴·(n − 3)/(n − 1))/n.
fn sample_variance_se(var: f64, m4: f64, n: f64) -> f64 {
    ((m4 - var * var * (n - 3.0) / (n - 1.0)) / n).max(0.0).sqrt()
}

/// Per-element sample mean and unbiased variance over `reps` updates of `tile` from W = 0.
fn update_moments(
    tile: &mut AnalogTile,
    x: &Array2<f32>,
    d: &Array2<f32>,
    lr: f32,
    reps: usize,
) -> (Array2<f64>, Array2<f64>) {
    let dim = (d.ncols(), x.ncols());
    let zero = Array2::<f32>::zeros(dim);
    let (mut sum, mut sq) = (Array2::<f64>::zeros(dim), Array2::<f64>::zeros(dim));
    for _ in 0..reps {
        tile.set_weights(zero.view()).unwrap();
        tile.update(x.view(), d.view(), lr).unwrap();
        let w = tile.weights().mapv(f64::from);
        sum += &w;
        sq += &w.mapv(|v| v * v);
    }
    let n = reps as f64;
    let mean = &sum / n;
    let var = (&sq - &(&mean * &sum)) / (n - 1.0);
    (mean, var)
}

/// Runs `reps` independent single-vector updates from W = 0 and checks every element's mean
/// and variance of ΔW against the pulse statistics: the count n_ij ~ Binomial(BL, p_ij) with
/// p_ij = (B|x_j|)(A|d_i|), each pulse s(1 + σξ), so E[ΔW_ij] = −lr·d_i·x_j and
/// Var(ΔW_ij) = s²·(BL·p(1 − p) + σ²·BL·p) (`docs/devices.md`). Both are z-tests at 4.5
/// standard errors, the mean's SE √(Var/reps), the variance's from the theoretical fourth
/// moment ([`pulse_moments`]): a false alarm probability of ~7·10⁻⁶ per statistic, ~3·10⁻⁴ over
/// the 40 tested here (the x_j = 0 column has no variance and must be exactly 0). The seed is
/// fixed, so the outcome is reproducible.
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
    let (mean, var) = update_moments(&mut tile, &x, &d, lr, reps);
    let (bl, n) = (f64::from(scales.bl), reps as f64);
    for i in 0..4 {
        for j in 0..6 {
            let expected = -f64::from(lr) * f64::from(d[[0, i]]) * f64::from(x[[0, j]]);
            // p from theory, not from the tile's scales: BL·p = lr·|x_j·d_i|/dw_min.
            let p = expected.abs() / f64::from(dw_min) / bl;
            let [_, v, m4] = pulse_moments(bl, p, f64::from(dw_min), f64::from(sigma));
            let se = (v / n).sqrt();
            // 1e-9 absorbs f32 rounding of the weights (the x_j = 0 column has no variance).
            let m = mean[[i, j]];
            assert!((m - expected).abs() <= 4.5 * se + 1e-9, "[{i},{j}] mean {m} expected {expected} se {se}");
            let se_var = sample_variance_se(v, m4, n);
            let s2 = var[[i, j]];
            assert!((s2 - v).abs() <= 4.5 * se_var + 1e-12, "[{i},{j}] variance {s2} expected {v} se {se_var}");
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

/// A batch of 80 vector pairs (two RNG chunks of 64 vectors, three merge blocks of 32) moves
/// every device by the sum of the vectors' expected updates, with the device's own up and down
/// steps. Vector b fires n_bij ~ Binomial(BL_b, p_bij) coincidences with BL_b·p_bij =
/// lr·|x_bj·d_bi|/dw_min (UBLM, k_b = lr·max|x_b|·max|d_b|/dw_min ≤ 3, so every p ≤ √(k_b/BL_b)
/// ≤ 1), up when x_bj·d_bi < 0. So E[ΔW_ij] = −Σ_b lr·x_bj·d_bi·s^±_ij/dw_min, with s⁺_ij or s⁻_ij
/// (read from the tile's hidden parameters: d2d spread 30 % and up/down imbalance 0.1 ± 0.05)
/// by the sign of each term. The vectors' trains are independent, so Var(ΔW_ij) is the sum of
/// the per-vector variances s²(BL·p(1 − p) + σ²·BL·p) and the fourth central moment the sum of
/// the fourth cumulants plus 3·Var² ([`pulse_moments`]). Mean and variance of every device over
/// 1 500 repetitions, merged and per-pulse, are z-tested at 4.5 standard errors (≈7·10⁻⁶ per
/// statistic, ≈10⁻³ over the 140 here if they were independent). The bounds (±1, no spread)
/// are out of reach: the noise-free path moves at most Σ_b BL_b·max s ≤ 0.5, asserted below,
/// and the c2c noise of ≤ 240 pulses adds ≈ 0.01 at 6σ. Seeds are fixed.
#[test]
fn mean_batch_update_is_sgd_with_device_steps() {
    let (out, inp, batch, lr, sigma) = (5, 7, 80, 0.003f32, 0.3f32);
    let params = PulsedParams {
        dw_min: 0.001,
        dw_min_dtod: 0.3,
        dw_min_std: sigma,
        up_down: 0.1,
        up_down_dtod: 0.05,
        w_max: 1.0,
        w_min: -1.0,
        w_max_dtod: 0.0,
        w_min_dtod: 0.0,
        ..PulsedParams::default()
    };
    let mut x = common::uniform(batch, inp, 1.0, 31);
    let d = common::uniform(batch, out, 1.0, 32);
    // Vectors of different sizes (so BL differs between them), and one zero input (no update).
    for (b, mut row) in x.rows_mut().into_iter().enumerate() {
        row *= [1.0f32, 0.5, 0.25][b % 3];
    }
    x.row_mut(70).fill(0.0);
    let eps = 0.001f64;
    let reps = 1500;
    for merge in [true, false] {
        let cfg = constant_step(params.clone(), UpdateConfig { merge_pulses: merge, ..UpdateConfig::default() });
        let mut tile = AnalogTile::new(out, inp, &cfg, 33).unwrap();
        let h = tile.hidden().clone();
        let (mean, var) = update_moments(&mut tile, &x, &d, lr, reps);
        let n = reps as f64;
        let mut worst_path = 0.0f64;
        for i in 0..out {
            for j in 0..inp {
                let (su, sd) = (f64::from(h.step_up[[i, j]]), f64::from(h.step_down[[i, j]]));
                let (mut m, mut v, mut k4, mut path) = (0.0, 0.0, 0.0, 0.0);
                for b in 0..batch {
                    let (xr, dr) = (x.row(b), d.row(b));
                    let amax =
                        |r: ndarray::ArrayView1<'_, f32>| r.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
                    let k = f64::from(lr) * amax(xr) * amax(dr) / eps;
                    let prod = f64::from(xr[j]) * f64::from(dr[i]);
                    if k == 0.0 {
                        continue;
                    }
                    let bl = k.ceil().min(31.0);
                    assert!(bl <= 3.0);
                    let p = f64::from(lr) * prod.abs() / eps / bl;
                    let s = if prod < 0.0 { su } else { sd };
                    let [mb, vb, m4b] = pulse_moments(bl, p, s, f64::from(sigma));
                    m += if prod < 0.0 { mb } else { -mb };
                    v += vb;
                    k4 += m4b - 3.0 * vb * vb;
                    path += bl * su.max(sd);
                }
                worst_path = worst_path.max(path);
                let se = (v / n).sqrt();
                let (got, s2) = (mean[[i, j]], var[[i, j]]);
                assert!((got - m).abs() <= 4.5 * se, "merge {merge} [{i},{j}]: mean {got}, expected {m} (se {se})");
                let se_var = sample_variance_se(v, k4 + 3.0 * v * v, n);
                assert!(
                    (s2 - v).abs() <= 4.5 * se_var,
                    "merge {merge} [{i},{j}]: variance {s2}, expected {v} (se {se_var})"
                );
            }
        }
        assert!(worst_path <= 0.5, "bounds in reach: {worst_path}");
    }
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

/// `TrainScales` of `cfg` against aihwkit's formulas evaluated in f64 from the same f32 inputs:
/// the crate computes them in f64 too and rounds A and B to f32 once, so they agree to half an
/// f32 ulp (relative 2⁻²⁴); 2⁻²² leaves room for the differing order of operations.
fn assert_scales(cfg: &UpdateConfig, lr: f32, x_max: f32, d_max: f32, want: (u32, f64, f64)) -> TrainScales {
    let s = TrainScales::compute(cfg, lr, 0.001, x_max, d_max);
    let rel = |got: f32, want: f64| (f64::from(got) - want).abs() <= want * 2f64.powi(-22);
    assert_eq!(s.bl, want.0, "BL for lr {lr}, x_max {x_max}, d_max {d_max}");
    assert!(rel(s.a, want.1), "A = {} for lr {lr}, x_max {x_max}, d_max {d_max}: want {}", s.a, want.1);
    assert!(rel(s.b, want.2), "B = {} for lr {lr}, x_max {x_max}, d_max {d_max}: want {}", s.b, want.2);
    s
}

#[test]
fn update_management_balances_probabilities() {
    // aihwkit `performUpdateManagement` with UBLM, ε = 0.001, k = lr·x_max·d_max/ε:
    // BL = min(⌈k⌉, 31), base = √(lr/(ε·BL)); d' = d_max, shrunk to d_max·31/k when k > 31;
    // A = base·√(x_max/d'), B = base·√(d'/x_max). x_max ≠ d_max, so a swap of A and B or of the
    // ratio shows.
    let cfg = UpdateConfig::default();
    let f = f64::from;
    // k = 0.01·2·0.37/0.001 = 7.4 ≤ 31: BL = 8, and the largest probabilities on both sides are
    // equal, B·x_max = A·d_max = √(k/BL) < 1.
    let (lr, xm, dm) = (0.01f32, 2.0f32, 0.37f32);
    let k = f(lr) * f(xm) * f(dm) / f(0.001f32);
    let base = (f(lr) / (f(0.001f32) * 8.0)).sqrt();
    let s = assert_scales(&cfg, lr, xm, dm, (8, base * (f(xm) / f(dm)).sqrt(), base * (f(dm) / f(xm)).sqrt()));
    let balanced = (k / 8.0).sqrt();
    assert!((f(s.b * xm) - balanced).abs() < 1e-6 && (f(s.a * dm) - balanced).abs() < 1e-6 && balanced < 1.0);
    assert!((f(s.a) * f(s.b) * 8.0 * 0.001 - f(lr)).abs() < 1e-6 * f(lr), "A·B·BL·ε = lr");
    // k = 0.1·0.8·1.5/0.001 = 120 > 31: BL = 31 and d' = d_max·31/k, so that x_max fires with
    // probability exactly 1 and d_max's probability is k/31 = 3.87 (saturated).
    let (lr, xm, dm) = (0.1f32, 0.8f32, 1.5f32);
    let k = f(lr) * f(xm) * f(dm) / f(0.001f32);
    let base = (f(lr) / (f(0.001f32) * 31.0)).sqrt();
    let dp = f(dm) * 31.0 / k;
    let s = assert_scales(&cfg, lr, xm, dm, (31, base * (f(xm) / dp).sqrt(), base * (dp / f(xm)).sqrt()));
    assert!((f(s.b * xm) - 1.0).abs() < 1e-6, "x_max probability {}", s.b * xm);
    assert!((f(s.a * dm) - k / 31.0).abs() < 1e-5, "d_max probability {}", s.a * dm);
    assert!((f(s.a) * f(s.b) * 31.0 * 0.001 - f(lr)).abs() < 1e-6 * f(lr), "A·B·BL·ε = lr");
    // Neither UM nor UBLM (aihwkit `calculateBlAB`): BL = desired_bl, A = B = √(lr/(ε·BL)).
    let plain = UpdateConfig { update_management: false, update_bl_management: false, desired_bl: 17, ..cfg };
    let base = (f(0.01f32) / (f(0.001f32) * 17.0)).sqrt();
    assert_scales(&plain, 0.01, 2.0, 0.37, (17, base, base));
}

#[test]
fn mean_count_is_deterministic() {
    // aihwkit `DenseBitLineMaker` (MEAN_COUNT): n_x = rint(BL·p_x), n_d = rint(BL·p_d) and
    // coincidences rint(n_d/BL·n_x), rint rounding half to even (`RPU_ROUNDFUNF` = rintf). The
    // crate's rint(n_x·n_d/BL) in f32 gives the same integer for every n_x, n_d ≤ BL ≤ 31 (checked
    // exhaustively when this test was written).
    let params = PulsedParams::default().without_variation();
    let update = UpdateConfig { pulse_type: PulseType::MeanCount, ..UpdateConfig::default() };
    let cfg = constant_step(params, update.clone());
    let x = array![[1.0f32, -0.6, 0.3, 0.1]];
    let d = array![[-0.5f32, 0.3, 0.1]];
    // x_max 1 ≠ d_max 0.5: k = lr·1·0.5/0.001 = 5.01, so BL = 6 (even: n_x·n_d/6 can be an
    // exact .5) and with UM both sides' largest probabilities are √(k/BL) = 0.91378: BL·p =
    // 5.4827·|v|/v_max, and n = rint of that: n_x = (5, 3, 2, 1) from (5.48, 3.29, 1.64, 0.55),
    // n_d = (5, 3, 1) from (5.48, 3.29, 1.10). n_d < BL everywhere; the nearest .5 is 0.02 away.
    let lr = 0.01002;
    let s = TrainScales::compute(&update, lr, 0.001, 1.0, 0.5);
    assert_eq!(s.bl, 6);
    let mut tile = AnalogTile::new(3, 4, &cfg, 1).unwrap();
    tile.update(x.view(), d.view(), lr).unwrap();
    // Coincidences n_x·n_d/6, rounded half to even:
    //   n_d = 5: 25/6 → 4, 15/6 = 2.5 → 2, 10/6 → 2, 5/6 → 1
    //   n_d = 3: 15/6 = 2.5 → 2, 9/6 = 1.5 → 2, 6/6 = 1, 3/6 = 0.5 → 0
    //   n_d = 1: 5/6 → 1, 3/6 = 0.5 → 0, 2/6 → 0, 1/6 → 0
    // (rounding half away from zero would give 3, 3, 1 and 1 at the four ties other than 1.5).
    // A coincidence of sgn(x_j·d_i) > 0 is a down step of dw_min = 0.001.
    let counts = array![[4, 2, 2, 1], [2, 2, 1, 0], [1, 0, 0, 0]];
    let want =
        Array2::from_shape_fn((3, 4), |(i, j)| -(x[[0, j]] * d[[0, i]]).signum() * counts[[i, j]] as f32 * 0.001);
    // Exact up to f32 rounding: ≤ 4 roundings of ≤ ulp(0.004)/2 ≈ 2.3·10⁻¹⁰ each (whether the n
    // steps are summed one by one or merged), far below one step of 10⁻³.
    let w = tile.weights();
    assert!(w.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-8), "{w}\nwant {want}");
    assert_eq!(tile.counters().pulses, counts.iter().sum::<i32>() as u64);
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

/// aihwkit's `PulsedUpdateMetaParameter::performUpdateManagement` (after `initialize`, which sets
/// UM = UM ∨ UBLM), transcribed in f64 from the f32 inputs, with ε = 0.001 and D = `desired_bl`:
/// BL = D and A = B = √(lr/(ε·BL)) (`calculateBlAB`, fixed BL); x' = x_max, d' = g·d_max and
/// k = lr·x'·d'/ε; UBLM: BL = min(⌈k⌉, D), A = B = √(lr/(ε·BL)); UM: if k > D then d' ← d'·D/k,
/// and A ← A·√(x'/d'), B ← B·√(d'/x').
fn aihwkit_scales(cfg: &UpdateConfig, lr: f32, x_max: f32, d_max: f32) -> (u32, f64, f64) {
    let (lr, eps, desired) = (f64::from(lr), f64::from(0.001f32), f64::from(cfg.desired_bl));
    let um = cfg.update_management || cfg.update_bl_management;
    let (x_val, mut d_val) = (f64::from(x_max), f64::from(cfg.um_grad_scale) * f64::from(d_max));
    let k = lr * x_val * d_val / eps;
    let mut bl = desired;
    if cfg.update_bl_management {
        bl = k.ceil().min(desired);
    }
    let (mut a, mut b) = ((lr / (eps * bl)).sqrt(), (lr / (eps * bl)).sqrt());
    if um {
        if k > desired {
            d_val *= desired / k;
        }
        a *= (x_val / d_val).sqrt();
        b *= (d_val / x_val).sqrt();
    }
    (bl as u32, a, b)
}

/// The update-management options against aihwkit's formulas ([`aihwkit_scales`], to the f32
/// rounding of [`assert_scales`]), on k values that are not near an integer:
/// - `um_grad_scale` g = 2 with UBLM (k = lr·x_max·g·d_max/ε = 14.8: BL 15, where g = 1 would give 8);
///   the largest probabilities are then B·x_max = √(k/BL) and A·d_max = √(k/BL)/g, and A·B·BL·ε = lr;
/// - g = 0.5 with k = 60 > 31: d' is shrunk to g·d_max·31/k, so x_max fires with probability 1;
/// - UM without UBLM (D = 17, BL stays 17), for k = 6 (no shrink) and k = 25 > D (shrink:
///   x_max fires with probability 1);
/// - `update_management = false` with UBLM on: UBLM forces UM on (aihwkit `initialize`), so the
///   scales equal those of UM on;
/// - neither: A = B = √(lr/(ε·D)), g unused.
///
/// A tile with g = 2 also takes BL 15 (its counted slots).
#[test]
fn update_management_options_follow_aihwkit() {
    let f = f64::from;
    let base = UpdateConfig::default();
    let check = |cfg: &UpdateConfig, lr: f32, xm: f32, dm: f32| {
        let want = aihwkit_scales(cfg, lr, xm, dm);
        let s = assert_scales(cfg, lr, xm, dm, want);
        assert!((f(s.a) * f(s.b) * f64::from(s.bl) * 0.001 - f(lr)).abs() < 1e-6 * f(lr), "{cfg:?}: A·B·BL·ε ≠ lr");
        s
    };

    let g2 = UpdateConfig { um_grad_scale: 2.0, ..base.clone() };
    let s = check(&g2, 0.01, 2.0, 0.37);
    assert_eq!(s.bl, 15);
    let top = (14.8f64 / 15.0).sqrt();
    assert!((f(s.b * 2.0) - top).abs() < 1e-6 && (f(s.a * 0.37) - top / 2.0).abs() < 1e-6, "{s:?}");

    let half = UpdateConfig { um_grad_scale: 0.5, ..base.clone() };
    let s = check(&half, 0.1, 0.8, 1.5);
    assert_eq!(s.bl, 31);
    assert!((f(s.b * 0.8) - 1.0).abs() < 1e-6, "x_max probability {}", s.b * 0.8);

    let um_only = UpdateConfig { update_bl_management: false, desired_bl: 17, um_grad_scale: 2.0, ..base.clone() };
    assert_eq!(check(&um_only, 0.005, 1.0, 0.6).bl, 17);
    let um_only = UpdateConfig { um_grad_scale: 1.0, ..um_only };
    let s = check(&um_only, 0.05, 1.0, 0.5);
    assert!((f(s.b) - 1.0).abs() < 1e-6, "x_max probability {}", s.b);

    let forced = UpdateConfig { update_management: false, ..g2.clone() };
    assert_eq!(check(&forced, 0.01, 2.0, 0.37), TrainScales::compute(&g2, 0.01, 0.001, 2.0, 0.37));
    let forced = UpdateConfig { update_management: false, ..half.clone() };
    assert_eq!(check(&forced, 0.1, 0.8, 1.5), TrainScales::compute(&half, 0.1, 0.001, 0.8, 1.5));

    let neither = UpdateConfig {
        update_management: false,
        update_bl_management: false,
        desired_bl: 17,
        um_grad_scale: 2.0,
        ..base
    };
    let s = check(&neither, 0.01, 2.0, 0.37);
    let plain = (0.01f64 / (0.001 * 17.0)).sqrt();
    assert!((f(s.a) - plain).abs() < 1e-6 * plain && s.a == s.b, "{s:?}");

    let mut tile = AnalogTile::new(2, 3, &constant_step(PulsedParams::default(), g2), 5).unwrap();
    tile.update(array![[2.0f32, -1.0, 0.5]].view(), array![[0.37f32, -0.1]].view(), 0.01).unwrap();
    assert_eq!(tile.counters().update_slots, 15);
}
