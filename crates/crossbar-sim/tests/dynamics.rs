//! Device dynamics (`DynamicsConfig`): decay toward the reset values, diffusion, reset and stuck
//! devices, with tolerances derived from the distributions the hidden values are drawn from.

mod common;

use common::{on_threads, uniform};
use crossbar_sim::device::{ExpStep, LinearStep, PowStep, PulsedParams, SoftBounds};
use crossbar_sim::{
    AnalogTile, AnalogTileState, ConfigError, DeviceConfig, DynamicsConfig, FloatTile, MappingConfig,
    MixedPrecisionConfig, PulseType, SimError, Tile, TileConfig, UpdateConfig,
};
use ndarray::Array2;

/// A constant-step device without variation, bounds ±0.6.
fn plain_device() -> DeviceConfig {
    DeviceConfig::ConstantStep(PulsedParams::default().without_variation())
}

fn with(device: DeviceConfig, dynamics: DynamicsConfig) -> TileConfig {
    TileConfig { device, dynamics, ..TileConfig::default() }
}

/// Mean and unbiased variance.
fn moments(v: impl IntoIterator<Item = f64>) -> (f64, f64, usize) {
    let v: Vec<f64> = v.into_iter().collect();
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var, n)
}

/// Without pulses, k decay steps give w = b + (w₀ − b)·s^k with s = 1 − 1/τ, whether applied by
/// update calls (lr 0) or by `decay_weights(1)`; the error bound is three f32 roundings per
/// step on values of magnitude ≤ 0.6, which do not grow because s < 1.
#[test]
fn decay_relaxes_exponentially_to_the_reset_value() {
    let (tau, b) = (20.0f32, 0.1f32);
    let cfg = with(plain_device(), DynamicsConfig { lifetime: tau, reset: b, ..DynamicsConfig::default() });
    let w0 = uniform(8, 12, 0.5, 1);
    let mut by_update = AnalogTile::new(8, 12, &cfg, 3).unwrap();
    let mut by_call = AnalogTile::new(8, 12, &cfg, 3).unwrap();
    by_update.set_weights(w0.view()).unwrap();
    by_call.set_weights(w0.view()).unwrap();
    let (x, d) = (uniform(4, 12, 1.0, 2), uniform(4, 8, 1.0, 3));
    let s = 1.0 - 1.0 / f64::from(tau);
    for k in 1..=60 {
        by_update.update(x.view(), d.view(), 0.0).unwrap();
        by_call.decay_weights(1.0).unwrap();
        assert_eq!(by_update.weights(), by_call.weights(), "step {k}");
        let tol = f64::from(k) * 3.0 * f64::from(f32::EPSILON) * 0.6;
        for (&w, &w0) in by_call.weights().iter().zip(&w0) {
            let want = f64::from(b) + (f64::from(w0) - f64::from(b)) * s.powi(k);
            assert!((f64::from(w) - want).abs() <= tol, "step {k}: {w} against {want}");
        }
    }
    // alpha scales the step: 1 + α(s − 1); α = 0 changes nothing, a large α stops at b.
    let before = by_call.weights().to_owned();
    by_call.decay_weights(0.0).unwrap();
    assert_eq!(by_call.weights(), before.view());
    by_call.decay_weights(1e6).unwrap();
    assert!(by_call.weights().iter().all(|&w| w == b), "{}", by_call.weights());
    for alpha in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(by_call.decay_weights(alpha), Err(SimError::InvalidArgument { name: "alpha", .. })));
    }
}

/// A reset value beyond a device's bound: decay stops at the bound (the weight is clipped after
/// every step), and the bound is reached.
#[test]
fn decay_toward_a_value_outside_the_bounds_stops_at_the_bound() {
    let cfg = with(plain_device(), DynamicsConfig { lifetime: 5.0, reset: 1.0, ..DynamicsConfig::default() });
    let mut tile = AnalogTile::new(3, 4, &cfg, 1).unwrap();
    tile.set_weights(uniform(3, 4, 0.5, 2).view()).unwrap();
    for _ in 0..200 {
        tile.decay_weights(1.0).unwrap();
        assert!(tile.weights().iter().all(|&w| w <= 0.6));
    }
    assert!(tile.weights().iter().all(|&w| w == 0.6), "{}", tile.weights());
}

/// Hidden decay factors: τ_ij = τ(1 + dtod·ξ) = 1/(1 − s_ij) has mean τ and standard deviation
/// τ·dtod (within 5 standard errors on 4 096 devices); with τ_ij ≤ 1 the factor is 0, which
/// happens with probability Φ(−(1 − 1/τ)/dtod).
#[test]
fn lifetime_spread_follows_its_distribution() {
    let (tau, dtod) = (100.0f64, 0.2f64);
    let cfg = with(
        plain_device(),
        DynamicsConfig { lifetime: tau as f32, lifetime_dtod: dtod as f32, ..DynamicsConfig::default() },
    );
    let tile = AnalogTile::new(64, 64, &cfg, 5).unwrap();
    let (mean, var, n) = moments(tile.dynamics().decay_scale.iter().map(|&s| 1.0 / (1.0 - f64::from(s))));
    let sd = tau * dtod;
    assert!((mean - tau).abs() < 5.0 * sd / (n as f64).sqrt(), "mean lifetime {mean}");
    assert!((var.sqrt() - sd).abs() < 5.0 * sd / (2.0 * n as f64).sqrt(), "spread {}", var.sqrt());
    // τ = 2, dtod = 1: τ_ij ≤ 1 when ξ ≤ −0.5, P = Φ(−0.5) = 0.308538.
    let cfg = with(plain_device(), DynamicsConfig { lifetime: 2.0, lifetime_dtod: 1.0, ..DynamicsConfig::default() });
    let tile = AnalogTile::new(64, 64, &cfg, 6).unwrap();
    let zeros = tile.dynamics().decay_scale.iter().filter(|&&s| s == 0.0).count() as f64;
    let (n, p) = (4096.0, 0.308_538);
    assert!((zeros - n * p).abs() < 5.0 * (n * p * (1.0 - p)).sqrt(), "{zeros} devices without memory");
    assert!(tile.dynamics().decay_scale.iter().all(|&s| (0.0..1.0).contains(&s)));
}

/// Diffusion is a random walk: after k calls a weight started at 0, far from its bounds, is
/// N(0, k·ρ_ij²). With dtod the rates are |ρ(1 + dtod·ξ)|, so E[ρ_ij²] = ρ²(1 + dtod²); the
/// sample variance over n devices is checked within 5 standard errors, √(2/(n − 1))·σ² for a
/// normal sample (and the fourth moment of the mixture for the spread rates).
#[test]
fn diffusion_is_a_random_walk_with_the_drawn_rates() {
    let rho = 1e-3f64;
    for dtod in [0.0f64, 0.5] {
        let cfg = with(
            plain_device(),
            DynamicsConfig { diffusion: rho as f32, diffusion_dtod: dtod as f32, ..DynamicsConfig::default() },
        );
        let mut tile = AnalogTile::new(64, 64, &cfg, 7).unwrap();
        let rates = tile.dynamics().diffusion_rate.clone();
        let (m2, var_r2, n) = moments(rates.iter().map(|&r| f64::from(r).powi(2)));
        let want_m2 = rho * rho * (1.0 + dtod * dtod);
        assert!((m2 - want_m2).abs() < 5.0 * (var_r2 / n as f64).sqrt().max(1e-12), "E[ρ²] {m2} vs {want_m2}");
        let mut calls = 0;
        for k in [25, 100] {
            while calls < k {
                tile.diffuse_weights();
                calls += 1;
            }
            // Per device w ~ N(0, k ρ_ij²): the mixture over devices has variance k·E[ρ²] and
            // fourth moment 3k²E[ρ⁴].
            let want = f64::from(k) * m2;
            let m4 = 3.0 * f64::from(k).powi(2) * rates.iter().map(|&r| f64::from(r).powi(4)).sum::<f64>() / n as f64;
            let (mean, var, n) = moments(tile.weights().iter().map(|&w| f64::from(w)));
            let se_var = ((m4 - want * want) / n as f64).sqrt();
            assert!((var - want).abs() < 5.0 * se_var, "dtod {dtod}, {k} calls: variance {var} vs {want}");
            assert!(mean.abs() < 5.0 * (want / n as f64).sqrt(), "dtod {dtod}, {k} calls: mean {mean}");
        }
    }
}

/// An update call applies diffusion and decay once (`per_update`); with `per_update` off only
/// the explicit calls do, and then both orders of tile calls give the same weights.
#[test]
fn per_update_applies_diffusion_then_decay_once_per_call() {
    let dynamics = DynamicsConfig { lifetime: 10.0, diffusion: 0.01, ..DynamicsConfig::default() };
    let auto = with(plain_device(), dynamics.clone());
    let manual = with(plain_device(), DynamicsConfig { per_update: false, ..dynamics });
    let (x, d) = (uniform(6, 9, 1.0, 1), uniform(6, 5, 1.0, 2));
    let w0 = uniform(5, 9, 0.4, 3);
    let mut a = AnalogTile::new(5, 9, &auto, 11).unwrap();
    let mut b = AnalogTile::new(5, 9, &manual, 11).unwrap();
    a.set_weights(w0.view()).unwrap();
    b.set_weights(w0.view()).unwrap();
    for _ in 0..5 {
        a.update(x.view(), d.view(), 0.1).unwrap();
        b.update(x.view(), d.view(), 0.1).unwrap();
        // The update's own draws come first in both tiles; b's diffusion draws the next seed.
        b.diffuse_weights();
        b.decay_weights(1.0).unwrap();
        assert_eq!(a.weights(), b.weights());
    }
    let mut c = AnalogTile::new(5, 9, &manual, 11).unwrap();
    c.set_weights(w0.view()).unwrap();
    c.update(x.view(), d.view(), 0.1).unwrap();
    let after_update = c.weights().to_owned();
    let mut plain = AnalogTile::new(5, 9, &with(plain_device(), DynamicsConfig::default()), 11).unwrap();
    plain.set_weights(w0.view()).unwrap();
    plain.update(x.view(), d.view(), 0.1).unwrap();
    assert_eq!(after_update, plain.weights(), "per_update off: the update alone, as without dynamics");
}

/// On an exact device (ideal, float update) decay with reset value 0 is multiplicative weight
/// decay after each SGD step: W ← (W − lr·dᵀx)·s, bit for bit.
#[test]
fn decay_on_an_ideal_device_is_weight_decay_after_sgd() {
    let tau = 8.0f32;
    let cfg =
        TileConfig { dynamics: DynamicsConfig { lifetime: tau, ..DynamicsConfig::default() }, ..TileConfig::perfect() };
    let w0 = uniform(4, 6, 0.5, 1);
    let mut tile = AnalogTile::new(4, 6, &cfg, 2).unwrap();
    tile.set_weights(w0.view()).unwrap();
    let mut sgd = FloatTile::from_weights(w0);
    let s = 1.0 - 1.0 / tau;
    for call in 0..10 {
        let (x, d) = (uniform(3, 6, 1.0, 10 + call), uniform(3, 4, 1.0, 20 + call));
        tile.update(x.view(), d.view(), 0.05).unwrap();
        sgd.update(x.view(), d.view(), 0.05).unwrap();
        let decayed = sgd.weights().mapv(|w| w * s);
        sgd.set_weights(decayed.view()).unwrap();
        assert_eq!(tile.weights(), sgd.weights(), "call {call}");
    }
}

/// Decay toward 0 turns SGD into ridge regression. Full-batch SGD on ½‖(W − T)x‖² with decay
/// iterates W ← (W − η(W − T)C)·s, C = XᵀX/B, s = 1 − 1/τ; its fixed point satisfies
/// W(λI + C) = TC with λ = (1 − s)/(sη) = 1/((τ − 1)η): the ridge solution. The iteration
/// contracts by ~s(1 − η·c_min) ≈ 0.95 per call here, so f32 rounding (~ε·|W| ≈ 6e-8 per
/// call) stays below ~20× that, ~1.2e-6 (1.2e-7 measured); the tolerance is 1e-5, and the
/// shrinkage (W ≠ T) is checked to be far larger.
#[test]
fn decay_makes_sgd_converge_to_ridge_regression() {
    let (tau, eta) = (50.0f32, 0.1f32);
    let cfg =
        TileConfig { dynamics: DynamicsConfig { lifetime: tau, ..DynamicsConfig::default() }, ..TileConfig::perfect() };
    let (n_out, n_in, batch) = (3, 5, 40);
    let x = uniform(batch, n_in, 1.0, 1);
    let teacher = uniform(n_out, n_in, 0.5, 2);
    let mut tile = AnalogTile::new(n_out, n_in, &cfg, 3).unwrap();
    for _ in 0..1500 {
        let d = (x.dot(&tile.weights().t()) - x.dot(&teacher.t())) / batch as f32;
        tile.update(x.view(), d.view(), eta).unwrap();
    }
    let c = x.t().dot(&x) / batch as f32;
    let lambda = 1.0 / ((tau - 1.0) * eta);
    let w = tile.weights().to_owned();
    let residual = w.dot(&(&c + &(Array2::<f32>::eye(n_in) * lambda))) - teacher.dot(&c);
    let worst = residual.iter().fold(0.0f32, |m, r| m.max(r.abs()));
    assert!(worst < 1e-5, "ridge residual {worst}");
    let shrink = (&w - &teacher).iter().fold(0.0f32, |m, r| m.max(r.abs()));
    assert!(shrink > 1e-2, "the decay changed W by only {shrink}");
}

/// Stuck devices: their number is Binomial(n, p); each value lies in the device's bounds
/// intersected with ±range, uniformly (mean of the position within 5 standard errors of ½);
/// and no update, decay, diffusion, reset or programming moves them, on every device model,
/// the float update and the mixed-precision update, without a NaN anywhere.
#[test]
fn stuck_devices_never_move() {
    let p = 0.3f64;
    let alone =
        DynamicsConfig { corrupt_devices_prob: p as f32, corrupt_devices_range: 0.2, ..DynamicsConfig::default() };
    // (Decay and diffusion clip to the bounds, which also holds a stuck device; alone, the
    // update must keep it.)
    let with_others = DynamicsConfig { lifetime: 50.0, reset: 0.05, diffusion: 0.002, ..alone.clone() };
    let params = PulsedParams::default();
    let devices = [
        DeviceConfig::ConstantStep(params.clone()),
        DeviceConfig::LinearStep(LinearStep {
            params: params.clone(),
            gamma_up: 0.5,
            gamma_down: 0.3,
            ..LinearStep::default()
        }),
        DeviceConfig::SoftBounds(SoftBounds { params: params.clone(), ..SoftBounds::default() }),
        DeviceConfig::ExpStep(ExpStep { params: params.clone(), ..ExpStep::default() }),
        DeviceConfig::PowStep(PowStep { params: params.clone(), ..PowStep::default() }),
        DeviceConfig::Ideal,
    ];
    let (rows, cols) = (48, 40);
    let diffusion_only = DynamicsConfig { diffusion: 0.002, ..alone.clone() };
    let variants = [alone.clone(), with_others, diffusion_only];
    for (device, dynamics) in devices.iter().flat_map(|d| variants.iter().map(move |v| (d.clone(), v.clone()))) {
        for (name, cfg) in [
            ("pulsed", with(device.clone(), dynamics.clone())),
            (
                "float update",
                TileConfig {
                    update: UpdateConfig { pulse_type: PulseType::Float, ..UpdateConfig::default() },
                    ..with(device.clone(), dynamics.clone())
                },
            ),
            (
                "mixed precision",
                TileConfig {
                    mixed_precision: MixedPrecisionConfig { enabled: true, granularity: 1e-3, ..Default::default() },
                    ..with(device.clone(), dynamics.clone())
                },
            ),
        ] {
            let what = format!("{device:?} / {name} / decay {} / diffusion {}", dynamics.lifetime, dynamics.diffusion);
            let mut tile = AnalogTile::new(rows, cols, &cfg, 9).unwrap();
            let stuck = tile.stuck_devices().to_vec();
            let n = (rows * cols) as f64;
            let k = stuck.len() as f64;
            assert!((k - n * p).abs() < 5.0 * (n * p * (1.0 - p)).sqrt(), "{what}: {k} stuck of {n}");
            // The bounds the values were drawn in: the same device without stuck ones.
            let clean = AnalogTile::new(
                rows,
                cols,
                &TileConfig {
                    dynamics: DynamicsConfig { corrupt_devices_prob: 0.0, ..dynamics.clone() },
                    ..cfg.clone()
                },
                9,
            )
            .unwrap();
            let (lo0, hi0) = (clean.hidden().w_min.as_slice().unwrap(), clean.hidden().w_max.as_slice().unwrap());
            let h = tile.hidden();
            let mut positions = Vec::new();
            for &i in &stuck {
                let v = h.w_min.as_slice().unwrap()[i];
                let (mn, mx) = (lo0[i].max(-0.2), hi0[i].min(0.2));
                assert!(v >= mn && v <= mx, "{what}: stuck at {v} outside [{mn}, {mx}]");
                assert_eq!(h.step_up.as_slice().unwrap()[i], 0.0);
                assert_eq!(h.step_down.as_slice().unwrap()[i], 0.0);
                positions.push(f64::from((v - mn) / (mx - mn)));
            }
            let (mean, _, m) = moments(positions);
            assert!((mean - 0.5).abs() < 5.0 / (12.0 * m as f64).sqrt(), "{what}: mean position {mean}");
            // Apart from the stuck devices, the hidden parameters are those of the clean tile.
            for (a, b) in [(&h.step_up, &clean.hidden().step_up), (&h.w_max, &clean.hidden().w_max)] {
                let differ = a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i);
                assert!(differ.into_iter().all(|i| stuck.contains(&i)), "{what}");
            }

            let values: Vec<f32> = stuck.iter().map(|&i| h.w_min.as_slice().unwrap()[i]).collect();
            let check = |tile: &AnalogTile, when: &str| {
                let w = tile.stored_weights();
                assert!(w.iter().all(|v| v.is_finite()), "{what}: NaN after {when}");
                for (&i, &v) in stuck.iter().zip(&values) {
                    assert_eq!(w.as_slice().unwrap()[i], v, "{what}: stuck device {i} moved after {when}");
                }
            };
            check(&tile, "construction");
            tile.set_weights(uniform(rows, cols, 0.5, 1).view()).unwrap();
            check(&tile, "set_weights");
            let before = tile.stored_weights().to_owned();
            for call in 0..5 {
                let (x, d) = (uniform(16, cols, 1.0, 30 + call), uniform(16, rows, 1.0, 40 + call));
                tile.update(x.view(), d.view(), 0.5).unwrap();
                check(&tile, "an update");
            }
            let moved = tile.stored_weights().iter().zip(&before).filter(|(a, b)| a != b).count();
            assert!(moved as f64 > 0.5 * (n - k), "{what}: only {moved} free devices moved");
            tile.reset_columns(0, cols, 1.0).unwrap();
            check(&tile, "a reset");
        }
    }
}

/// Switching decay, diffusion or stuck devices on draws nothing from the device's own stream:
/// without stuck devices the hidden parameters are those of the tile without dynamics, and
/// the stuck devices do not depend on the other effects.
#[test]
fn dynamics_leave_the_device_draws_alone() {
    let device = DeviceConfig::LinearStep(LinearStep { gamma_up: 0.2, ..LinearStep::default() });
    let plain = AnalogTile::new(10, 12, &with(device.clone(), DynamicsConfig::default()), 4).unwrap();
    let full = DynamicsConfig {
        lifetime: 100.0,
        lifetime_dtod: 0.3,
        reset: 0.1,
        reset_dtod: 0.05,
        diffusion: 1e-3,
        diffusion_dtod: 0.2,
        ..DynamicsConfig::default()
    };
    let dyn_tile = AnalogTile::new(10, 12, &with(device.clone(), full.clone()), 4).unwrap();
    assert_eq!(plain.hidden(), dyn_tile.hidden());
    let stuck = |d: DynamicsConfig| {
        let cfg = with(device.clone(), DynamicsConfig { corrupt_devices_prob: 0.2, ..d });
        AnalogTile::new(10, 12, &cfg, 4).unwrap().stuck_devices().to_vec()
    };
    let alone = stuck(DynamicsConfig::default());
    assert!(!alone.is_empty());
    assert_eq!(alone, stuck(full));
}

/// reset_columns sets the chosen columns (wrapping around) to the reset values b_ij =
/// reset + reset_dtod·ξ (reset_std 0) and leaves the others; with reset_std σ the deviation
/// from b is N(0, σ²); with probability q a Binomial share of devices is reset.
#[test]
fn reset_columns_sets_the_reset_values() {
    let base = DynamicsConfig { reset: 0.05, reset_dtod: 0.02, reset_std: 0.0, ..DynamicsConfig::default() };
    let (rows, cols) = (64, 64);
    let mut tile = AnalogTile::new(rows, cols, &with(plain_device(), base.clone()), 3).unwrap();
    let b = tile.dynamics().reset_value.clone();
    let (mean, var, n) = moments(b.iter().map(|&v| f64::from(v)));
    assert!(
        (mean - 0.05).abs() < 5.0 * 0.02 / (n as f64).sqrt()
            && (var.sqrt() - 0.02).abs() < 5.0 * 0.02 / (2.0 * n as f64).sqrt()
    );
    let w0 = uniform(rows, cols, 0.5, 1);
    tile.set_weights(w0.view()).unwrap();
    tile.reset_columns(cols - 2, 4, 1.0).unwrap();
    for ((i, j), &w) in tile.weights().indexed_iter() {
        let chosen = j >= cols - 2 || j < 2;
        assert_eq!(w, if chosen { b[[i, j]] } else { w0[[i, j]] }, "({i}, {j})");
    }

    let sigma = 0.01f64;
    let cfg = with(plain_device(), DynamicsConfig { reset_std: sigma as f32, ..base.clone() });
    let mut tile = AnalogTile::new(rows, cols, &cfg, 3).unwrap();
    tile.set_weights(w0.view()).unwrap();
    tile.reset_columns(0, cols, 1.0).unwrap();
    let (mean, var, n) = moments(tile.weights().iter().zip(&b).map(|(&w, &b)| f64::from(w) - f64::from(b)));
    assert!(mean.abs() < 5.0 * sigma / (n as f64).sqrt(), "mean deviation {mean}");
    assert!((var - sigma * sigma).abs() < 5.0 * sigma * sigma * (2.0 / (n - 1) as f64).sqrt(), "variance {var}");

    let q = 0.25f64;
    tile.set_weights(w0.view()).unwrap();
    tile.reset_columns(0, cols, q as f32).unwrap();
    let reset = tile.weights().iter().zip(&w0).filter(|(a, b)| a != b).count() as f64;
    let n = (rows * cols) as f64;
    assert!((reset - n * q).abs() < 5.0 * (n * q * (1.0 - q)).sqrt(), "{reset} of {n} reset");

    // A count beyond the column count resets every column once (as aihwkit's −1 for all).
    let exact = with(plain_device(), DynamicsConfig { reset_std: 0.0, ..base });
    let mut all = AnalogTile::new(rows, cols, &exact, 3).unwrap();
    all.set_weights(w0.view()).unwrap();
    all.reset_columns(5, 3 * cols, 1.0).unwrap();
    assert_eq!(all.weights(), b.view());
    for (start, count, prob, name) in [(cols, 1, 1.0, "start"), (0, 1, 1.5, "prob"), (0, 1, f32::NAN, "prob")] {
        match tile.reset_columns(start, count, prob) {
            Err(SimError::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{start}, {count}, {prob}: {other:?}"),
        }
    }
}

/// Results do not depend on the number of threads.
#[test]
fn dynamics_are_independent_of_the_thread_count() {
    let cfg = with(
        DeviceConfig::ConstantStep(PulsedParams::default()),
        DynamicsConfig {
            lifetime: 30.0,
            lifetime_dtod: 0.3,
            diffusion: 0.003,
            diffusion_dtod: 0.3,
            corrupt_devices_prob: 0.1,
            ..DynamicsConfig::default()
        },
    );
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut t = AnalogTile::new(70, 30, &cfg, 5).unwrap();
            t.set_weights(uniform(70, 30, 0.3, 1).view()).unwrap();
            for call in 0..3 {
                let (x, d) = (uniform(150, 30, 1.0, 2 + call), uniform(150, 70, 0.5, 9 + call));
                t.update(x.view(), d.view(), 0.05).unwrap();
            }
            t.reset_columns(3, 5, 0.5).unwrap();
            t.weights().to_owned()
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(run(threads) == one, "{threads} threads differ from 1");
    }
}

/// The dynamics arrays and the runtime generator are in the state: a restored tile goes on
/// exactly like the original. A state written before dynamics existed loads; a state whose
/// arrays do not fit its configuration is refused, naming the array.
#[test]
fn state_keeps_the_dynamics() {
    let cfg = with(
        DeviceConfig::ConstantStep(PulsedParams::default()),
        DynamicsConfig {
            lifetime: 30.0,
            lifetime_dtod: 0.3,
            reset_dtod: 0.01,
            diffusion: 0.003,
            corrupt_devices_prob: 0.1,
            ..DynamicsConfig::default()
        },
    );
    let (x, d) = (uniform(20, 8, 1.0, 1), uniform(20, 6, 1.0, 2));
    let mut a = AnalogTile::new(6, 8, &cfg, 2).unwrap();
    a.set_weights(uniform(6, 8, 0.3, 3).view()).unwrap();
    a.update(x.view(), d.view(), 0.1).unwrap();
    let json = serde_json::to_string(&a.state()).unwrap();
    let mut b = AnalogTile::from_state(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(a.stuck_devices(), b.stuck_devices());
    for _ in 0..3 {
        a.update(x.view(), d.view(), 0.1).unwrap();
        b.update(x.view(), d.view(), 0.1).unwrap();
        a.reset_columns(1, 2, 0.5).unwrap();
        b.reset_columns(1, 2, 0.5).unwrap();
        assert_eq!(a.weights(), b.weights());
    }

    // An old state (no `dynamics` key) of a tile without dynamics.
    let old = AnalogTile::new(6, 8, &TileConfig::default(), 2).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(old.state()).unwrap();
    json.as_object_mut().unwrap().remove("dynamics").unwrap();
    let state: AnalogTileState = serde_json::from_value(json).unwrap();
    AnalogTile::from_state(state).unwrap();

    let refused = |edit: &dyn Fn(&mut AnalogTileState), want: &str| {
        let mut s = a.state();
        edit(&mut s);
        let err = AnalogTile::from_state(s).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    };
    refused(&|s| s.dynamics.decay_scale[[0, 0]] = 1.5, "decay_scale holds 1.5");
    refused(&|s| s.dynamics.diffusion_rate[[1, 1]] = f32::NAN, "diffusion_rate holds NaN");
    refused(&|s| s.dynamics.reset_value = Array2::zeros((0, 0)), "reset_value has shape [0, 0]");
    refused(&|s| s.config.dynamics.lifetime = 0.0, "decay_scale has shape [6, 8], expected [0, 0]");
}

/// Invalid settings are refused, naming the field.
#[test]
fn invalid_dynamics_are_refused() {
    type Edit = fn(&mut DynamicsConfig);
    let cases: [(Edit, &str); 5] = [
        (|d| d.lifetime = -1.0, "dynamics.lifetime"),
        (|d| d.diffusion = f32::NAN, "dynamics.diffusion"),
        (|d| d.corrupt_devices_prob = 1.5, "dynamics.corrupt_devices_prob"),
        (|d| d.reset_std = -0.1, "dynamics.reset_std"),
        (|d| d.reset = f32::INFINITY, "dynamics.reset"),
    ];
    for (edit, field) in cases {
        let mut cfg = TileConfig::default();
        edit(&mut cfg.dynamics);
        let err = AnalogTile::new(2, 2, &cfg, 1).unwrap_err();
        let SimError::Config(e) = err else { panic!("{err:?}") };
        let got = match &e {
            ConfigError::Negative { field, .. } | ConfigError::OutOfRange { field, .. } => field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(got, field);
    }
}

/// With device-to-device spreads on, each device decays with its own factor and toward its own
/// reset value: w ← clip((w − b_ij)·(1 + α(s_ij − 1)) + b_ij), element by element, for α = 1
/// (an update call's step) and α = 0.5.
#[test]
fn decay_uses_each_devices_own_factor_and_reset_value() {
    let dynamics = DynamicsConfig {
        lifetime: 30.0,
        lifetime_dtod: 0.3,
        reset: 0.05,
        reset_dtod: 0.03,
        ..DynamicsConfig::default()
    };
    let cfg = with(DeviceConfig::ConstantStep(PulsedParams::default()), dynamics);
    let mut tile = AnalogTile::new(12, 10, &cfg, 8).unwrap();
    tile.set_weights(uniform(12, 10, 0.8, 4).view()).unwrap();
    let (s, b) = (tile.dynamics().decay_scale.clone(), tile.dynamics().reset_value.clone());
    let (lo, hi) = (tile.hidden().w_min.clone(), tile.hidden().w_max.clone());
    assert!(s.iter().any(|&v| v != s[[0, 0]]) && b.iter().any(|&v| v != b[[0, 0]]), "spreads drawn");
    for alpha in [1.0f32, 0.5] {
        let w = tile.weights().to_owned();
        tile.decay_weights(alpha).unwrap();
        for ((idx, &got), &w) in tile.weights().indexed_iter().zip(&w) {
            let f = if alpha == 1.0 { s[idx] } else { 1.0 + alpha * (s[idx] - 1.0) };
            let want = ((w - b[idx]) * f + b[idx]).clamp(lo[idx], hi[idx]);
            assert_eq!(got, want, "alpha {alpha}, device {idx:?}");
        }
    }
}

/// Diffusion clips to each device's bounds: a rate far above the range puts many devices on a
/// bound and none beyond it.
#[test]
fn diffusion_stays_within_the_bounds() {
    let cfg = with(
        DeviceConfig::ConstantStep(PulsedParams::default()),
        DynamicsConfig { diffusion: 2.0, ..DynamicsConfig::default() },
    );
    let mut tile = AnalogTile::new(16, 16, &cfg, 2).unwrap();
    tile.diffuse_weights();
    let h = tile.hidden();
    let mut on_bound = 0;
    for ((w, lo), hi) in tile.weights().iter().zip(&h.w_min).zip(&h.w_max) {
        assert!(lo <= w && w <= hi, "{w} outside [{lo}, {hi}]");
        on_bound += usize::from(w == lo || w == hi);
    }
    // P(|N(0, 4)| > 0.6) ≈ 0.76 for bounds near ±0.6: most of the 256 devices sit on one.
    assert!(on_bound > 100, "{on_bound} devices on a bound");
}

/// With a weight mapping and a digital bias, decay acts on the stored weights W' (the devices)
/// and leaves the digital bias alone; the effective weights are α·W'.
#[test]
fn decay_acts_on_the_devices_not_the_digital_bias() {
    let tau = 4.0f32;
    let cfg = TileConfig {
        mapping: MappingConfig { weight_scaling_omega: 0.3, columnwise: true, digital_bias: true },
        ..with(plain_device(), DynamicsConfig { lifetime: tau, ..DynamicsConfig::default() })
    };
    let mut tile = AnalogTile::new(5, 7, &cfg, 1).unwrap();
    tile.set_weights(uniform(5, 7, 0.1, 2).view()).unwrap();
    let stored = tile.stored_weights().to_owned();
    let bias = tile.digital_bias().to_vec();
    let alpha = tile.mapping_scales().to_vec();
    tile.decay_weights(1.0).unwrap();
    let s = 1.0 - 1.0 / tau;
    assert_eq!(tile.stored_weights(), stored.mapv(|w| w * s).view());
    assert_eq!(tile.digital_bias(), &bias[..]);
    for ((i, j), &w) in tile.weights().indexed_iter() {
        let want = if j == 6 { bias[i] } else { alpha[i] * tile.stored_weights()[[i, j]] };
        assert_eq!(w, want, "({i}, {j})");
    }
}

/// Settings that are each valid but overflow together are refused when the tile is built (its
/// state could not be restored), and an enormous stuck range on the unbounded ideal device gives
/// finite stuck values.
#[test]
fn overflowing_dynamics_are_refused_or_stay_finite() {
    let cfg = with(plain_device(), DynamicsConfig { reset: 3e38, reset_dtod: 1e38, ..DynamicsConfig::default() });
    match AnalogTile::new(8, 8, &cfg, 1) {
        Err(SimError::Config(ConfigError::Invalid { field, .. })) => assert_eq!(field, "dynamics"),
        other => panic!("{other:?}"),
    }
    let cfg = with(
        DeviceConfig::Ideal,
        DynamicsConfig { corrupt_devices_prob: 0.5, corrupt_devices_range: f32::MAX, ..DynamicsConfig::default() },
    );
    let tile = AnalogTile::new(8, 8, &cfg, 1).unwrap();
    assert!(!tile.stuck_devices().is_empty());
    assert!(tile.weights().iter().all(|w| w.is_finite()), "{}", tile.weights());
}

fn write_noise(sigma: f32) -> DynamicsConfig {
    DynamicsConfig { write_noise_std: sigma, ..DynamicsConfig::default() }
}

/// Write noise never changes the course of the persistent weights: with the same seed, inputs
/// and per-update decay and diffusion, they equal the weights of a tile without write noise,
/// bit for bit, through pulsed updates, explicit decay and resets.
#[test]
fn write_noise_leaves_the_device_state_alone() {
    let post_step = DynamicsConfig { lifetime: 40.0, diffusion: 1e-3, reset_std: 0.02, ..DynamicsConfig::default() };
    let device = DeviceConfig::SoftBounds(SoftBounds::default());
    let mapped_mp = TileConfig {
        mapping: MappingConfig { weight_scaling_omega: 0.3, columnwise: true, digital_bias: true },
        mixed_precision: MixedPrecisionConfig { enabled: true, ..Default::default() },
        ..with(device.clone(), DynamicsConfig::default())
    };
    for base in [with(device.clone(), post_step), with(device, DynamicsConfig::default()), mapped_mp] {
        same_course_with_and_without_write_noise(base);
    }
}

fn same_course_with_and_without_write_noise(plain: TileConfig) {
    let noisy =
        TileConfig { dynamics: DynamicsConfig { write_noise_std: 5.0, ..plain.dynamics.clone() }, ..plain.clone() };
    let (mut a, mut b) = (AnalogTile::new(9, 11, &plain, 4).unwrap(), AnalogTile::new(9, 11, &noisy, 4).unwrap());
    let w0 = uniform(9, 11, 0.4, 1);
    a.set_weights(w0.view()).unwrap();
    b.set_weights(w0.view()).unwrap();
    assert_eq!(b.persistent_weights(), a.stored_weights());
    assert!(b.weights() != a.weights(), "noise drawn on set");
    for call in 0..6 {
        let (x, d) = (uniform(8, 11, 1.0, 10 + call), uniform(8, 9, 1.0, 20 + call));
        a.update(x.view(), d.view(), 0.2).unwrap();
        b.update(x.view(), d.view(), 0.2).unwrap();
        assert_eq!(b.persistent_weights(), a.stored_weights(), "call {call}");
        assert_eq!(b.digital_bias(), a.digital_bias());
    }
    a.decay_weights(0.5).unwrap();
    b.decay_weights(0.5).unwrap();
    a.reset_columns(2, 3, 0.5).unwrap();
    b.reset_columns(2, 3, 0.5).unwrap();
    assert_eq!(b.persistent_weights(), a.stored_weights());
}

/// The apparent weights are persistent + σ·ε·ξ with a fresh ξ: after programming, their
/// deviation over 4 096 devices has mean 0 and variance (σε)² within 5 standard errors; without
/// `apply_write_noise_on_set` they equal the persistent ones. The forward pass computes with the
/// apparent weights.
#[test]
fn apparent_weights_carry_fresh_write_noise() {
    let (sigma, eps) = (3.0f64, 0.001f64);
    let cfg = TileConfig {
        forward: crossbar_sim::IoConfig::perfect(),
        ..with(DeviceConfig::ConstantStep(PulsedParams::default()), write_noise(sigma as f32))
    };
    let mut tile = AnalogTile::new(64, 64, &cfg, 3).unwrap();
    // (aihwkit programs the initial zeros with noise, too.)
    assert!(tile.stored_weights().iter().all(|&w| w != 0.0) && tile.persistent_weights().iter().all(|&w| w == 0.0));
    tile.set_weights(uniform(64, 64, 0.3, 2).view()).unwrap();
    let (apparent, persistent) = (tile.stored_weights(), tile.persistent_weights());
    let (mean, var, n) = moments(apparent.iter().zip(persistent).map(|(&a, &p)| f64::from(a) - f64::from(p)));
    let want = (sigma * eps).powi(2);
    assert!(mean.abs() < 5.0 * (want / n as f64).sqrt(), "mean {mean}");
    // (The f32 rounding of the weights, ~3e-8, is far below σε = 3e-3.)
    assert!((var - want).abs() < 5.0 * want * (2.0 / (n - 1) as f64).sqrt(), "variance {var} vs {want}");
    let x = uniform(5, 64, 1.0, 3);
    let want_y = FloatTile::from_weights(tile.weights().to_owned()).forward_new(x.view()).unwrap();
    assert_eq!(tile.forward_new(x.view()).unwrap(), want_y);

    let quiet = with(
        DeviceConfig::ConstantStep(PulsedParams::default()),
        DynamicsConfig { apply_write_noise_on_set: false, ..write_noise(sigma as f32) },
    );
    let mut tile = AnalogTile::new(8, 8, &quiet, 3).unwrap();
    tile.set_weights(uniform(8, 8, 0.3, 2).view()).unwrap();
    assert_eq!(tile.stored_weights(), tile.persistent_weights());
}

/// A pulsed update draws new noise exactly for the devices it pulses. With one vector per call,
/// every coincidence of a device has the same sign, and a device with exact steps (no
/// variation, bounds far away) moves if and only if it is pulsed: so the devices with new noise
/// must be exactly those whose persistent weight moved. Small inputs leave many devices of
/// active rows and columns unpulsed, which must keep their noise bit for bit. (σε = 0.1: a
/// fresh draw repeats the old apparent value to the bit with probability ~ulp(w)/σε ≈ 3e-7 per
/// device, negligible over the 4 800 compared here; at σε = 0.002 it happens about once.)
#[test]
fn only_pulsed_devices_get_new_write_noise() {
    let exact_steps = DeviceConfig::ConstantStep(PulsedParams {
        w_max: 100.0,
        w_min: -100.0,
        ..PulsedParams::default().without_variation()
    });
    let cfg = with(exact_steps, write_noise(100.0));
    let mut tile = AnalogTile::new(20, 30, &cfg, 6).unwrap();
    tile.set_weights(uniform(20, 30, 0.3, 1).view()).unwrap();
    let (mut partly, mut total) = (0, 0);
    for call in 0..8 {
        let x = uniform(1, 30, 1.0, 40 + call);
        let d = uniform(1, 20, 1.0, 50 + call);
        let (apparent, persistent) = (tile.stored_weights().to_owned(), tile.persistent_weights().to_owned());
        tile.update(x.view(), d.view(), 0.001).unwrap();
        let moved: Vec<bool> = tile.persistent_weights().iter().zip(&persistent).map(|(a, b)| a != b).collect();
        let redrawn: Vec<bool> = tile.stored_weights().iter().zip(&apparent).map(|(a, b)| a != b).collect();
        assert_eq!(moved, redrawn, "call {call}: new noise exactly on the pulsed devices");
        let n = moved.iter().filter(|&&m| m).count();
        total += n;
        partly += usize::from(n > 0 && n < 600);
    }
    assert!(partly >= 6 && total > 500, "{partly} calls pulsed some but not all devices, {total} pulsed in all");
}

/// Write noise needs a pulsed update on a pulsed device (aihwkit has none for the ideal device
/// or the float update), and a noise level that does not overflow.
#[test]
fn write_noise_needs_pulses() {
    let float_update = TileConfig {
        update: UpdateConfig { pulse_type: PulseType::Float, ..UpdateConfig::default() },
        ..with(plain_device(), write_noise(2.0))
    };
    let coarse =
        DeviceConfig::ConstantStep(PulsedParams { dw_min: 2.0, ..PulsedParams::default().without_variation() });
    for cfg in [float_update, with(DeviceConfig::Ideal, write_noise(2.0)), with(coarse, write_noise(f32::MAX))] {
        match AnalogTile::new(4, 4, &cfg, 1) {
            Err(SimError::Config(ConfigError::Invalid { field, .. })) => assert_eq!(field, "dynamics.write_noise_std"),
            other => panic!("{other:?}"),
        }
    }
}

/// Write noise: the same for any number of threads, kept in the state (a restored tile goes on
/// identically), and a state whose persistent weights do not fit its configuration is refused.
/// (No decay or diffusion: the noise is redrawn on the pulsed devices only.)
#[test]
fn write_noise_state_and_threads() {
    let cfg = with(
        DeviceConfig::ConstantStep(PulsedParams::default()),
        DynamicsConfig { write_noise_std: 4.0, ..DynamicsConfig::default() },
    );
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut t = AnalogTile::new(70, 30, &cfg, 5).unwrap();
            t.set_weights(uniform(70, 30, 0.3, 1).view()).unwrap();
            for call in 0..2 {
                let (x, d) = (uniform(150, 30, 1.0, 2 + call), uniform(150, 70, 0.5, 9 + call));
                t.update(x.view(), d.view(), 0.05).unwrap();
            }
            (t.weights().to_owned(), t.persistent_weights().to_owned())
        })
    };
    let one = run(1);
    assert!(run(3) == one, "3 threads differ from 1");

    let (x, d) = (uniform(6, 30, 1.0, 1), uniform(6, 70, 1.0, 2));
    let mut a = AnalogTile::new(70, 30, &cfg, 5).unwrap();
    a.set_weights(uniform(70, 30, 0.3, 1).view()).unwrap();
    a.update(x.view(), d.view(), 0.1).unwrap();
    let json = serde_json::to_string(&a.state()).unwrap();
    let mut b = AnalogTile::from_state(serde_json::from_str(&json).unwrap()).unwrap();
    for _ in 0..2 {
        a.update(x.view(), d.view(), 0.1).unwrap();
        b.update(x.view(), d.view(), 0.1).unwrap();
        assert_eq!(a.weights(), b.weights());
        assert_eq!(a.persistent_weights(), b.persistent_weights());
    }
    let mut s = a.state();
    s.persistent_weights = Array2::zeros((0, 0));
    let err = AnalogTile::from_state(s).unwrap_err().to_string();
    assert!(err.contains("persistent weights of shape [0, 0]"), "{err}");
    let mut s = a.state();
    s.write_noise_rng = None;
    assert!(AnalogTile::from_state(s).is_err());
}
