//! Device models: soft bounds saturate asymptotically, hard bounds hold, realized
//! device-to-device spreads match the configuration.

mod common;

use crossbar_sim::device::{DeviceModel, ExpStep, LinearStep, PowStep, PulsedParams, SoftBounds};
use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, DeviceConfig, PulseType, Tile, TileConfig, UpdateConfig};
use ndarray::{Array2, array};

/// Mean and standard deviation of an array.
fn mean_std(a: &Array2<f32>) -> (f64, f64) {
    let n = a.len() as f64;
    let m = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let v = a.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, v.sqrt())
}

/// Deterministic up pulses: mean-count trains with p = 1 give exactly 31 coincidences per
/// update cycle (x = 1, d = −1, lr = 31·dw_min).
fn up_pulses(device: DeviceConfig, dw_min: f32, cycles: usize) -> (AnalogTile, Vec<f32>) {
    let update = UpdateConfig { pulse_type: PulseType::MeanCount, ..UpdateConfig::default() };
    let cfg = TileConfig { device, update, ..TileConfig::default() };
    let mut tile = AnalogTile::new(1, 1, &cfg, 3).unwrap();
    let mut trace = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        tile.update(array![[1.0f32]].view(), array![[-1.0f32]].view(), 31.0 * dw_min).unwrap();
        trace.push(tile.weights()[[0, 0]]);
    }
    (tile, trace)
}

#[test]
fn soft_bounds_approach_bound_asymptotically() {
    // Without noise, each up pulse moves w by s(1 − w/b): w_n = b − (b − w₀)(1 − s/b)^n.
    let dw_min = 0.01;
    let params = PulsedParams { dw_min, ..PulsedParams::default() }.without_variation();
    let (_, trace) = up_pulses(DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true }), dw_min, 40);
    let b = 0.6f64;
    for (m, &w) in trace.iter().enumerate() {
        let n = 31.0 * (m + 1) as f64;
        let want = b - b * (1.0 - 0.01 / b).powf(n);
        // f32 accumulation over ≤ 1240 steps: relative error well below 1e-4.
        assert!((f64::from(w) - want).abs() < 1e-4 * b, "after {n} pulses: {w} vs {want}");
        assert!(f64::from(w) <= b);
    }
    // Monotone and still below the bound after 1240 pulses (gap b·(1 − s/b)^1240 ≈ 6e-10·b
    // is below f32 resolution, so only ≤ is asserted there).
    assert!(trace.windows(2).all(|p| p[1] >= p[0]));
    assert!(f64::from(trace[10]) < b - 1e-3);
}

#[test]
fn soft_bounds_with_noise_never_pass_own_bounds() {
    // Full variation: 30 % d2d bounds, 30 % c2c. Random signs of many pulses.
    let params = PulsedParams { dw_min: 0.05, ..PulsedParams::default() };
    let cfg = TileConfig {
        device: DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true }),
        ..TileConfig::default()
    };
    let mut tile = AnalogTile::new(16, 16, &cfg, 4).unwrap();
    for step in 0..200 {
        let x = common::uniform(10, 16, 1.0, 100 + step);
        let d = common::uniform(10, 16, 1.0, 1000 + step);
        tile.update(x.view(), d.view(), 0.5).unwrap();
        let h = tile.hidden();
        for ((w, lo), hi) in tile.weights().iter().zip(&h.w_min).zip(&h.w_max) {
            assert!(*w >= *lo && *w <= *hi, "{w} outside [{lo}, {hi}]");
        }
    }
}

#[test]
fn every_model_respects_hard_bounds() {
    let params = PulsedParams { dw_min: 0.05, ..PulsedParams::default() };
    let models = [
        DeviceConfig::ConstantStep(params.clone()),
        DeviceConfig::LinearStep(LinearStep {
            params: params.clone(),
            gamma_up: 0.5,
            gamma_down: 0.5,
            ..LinearStep::default()
        }),
        DeviceConfig::ExpStep(ExpStep { params: params.clone(), ..ExpStep::default() }),
        DeviceConfig::PowStep(PowStep { params: params.clone(), ..PowStep::default() }),
    ];
    for device in models {
        let cfg = TileConfig { device: device.clone(), ..TileConfig::default() };
        let mut tile = AnalogTile::new(8, 8, &cfg, 5).unwrap();
        for step in 0..100 {
            // Always the same sign: drive every weight into its upper bound.
            let x = common::uniform(10, 8, 1.0, step).mapv(f32::abs);
            let d = -common::uniform(10, 8, 1.0, 500 + step).mapv(f32::abs);
            tile.update(x.view(), d.view(), 0.5).unwrap();
        }
        let h = tile.hidden();
        let mut at_top = 0;
        for ((w, lo), hi) in tile.weights().iter().zip(&h.w_min).zip(&h.w_max) {
            assert!(*w >= *lo && *w <= *hi, "{device:?}: {w} outside [{lo}, {hi}]");
            at_top += usize::from(*w > *hi - 0.2 * (*hi - *lo));
        }
        assert!(at_top > 32, "{device:?}: weights did not move up ({at_top}/64 near the top)");
    }
}

#[test]
fn realized_d2d_spreads_match_config() {
    // 40 000 devices: SE of a std estimate is σ/√(2n) ≈ 0.35 % of σ; allow 4 SE (1.5 %).
    let params = PulsedParams { up_down_dtod: 0.05, ..PulsedParams::default() };
    let model = crossbar_sim::device::ConstantStep { params: params.clone() };
    let h = model.draw(200, 200, &mut seeded(99));
    let rel = 4.0 / (2.0 * 40_000f64).sqrt();
    // s⁺/dw_min = g + r with g = 1 + 0.3ξ, r = 0.05ξ': std √(0.3² + 0.05²).
    let (m, s) = mean_std(&h.step_up.mapv(|v| v / 0.001));
    let want = (0.3f64.powi(2) + 0.05f64.powi(2)).sqrt();
    assert!((s - want).abs() < rel * want, "step std {s} vs {want}");
    assert!((m - 1.0).abs() < 4.0 * want / 200.0, "step mean {m}");
    // Up/down asymmetry: (s⁺ − s⁻)/dw_min = 2r, std 0.1.
    let asym = (&h.step_up - &h.step_down).mapv(|v| v / 0.001);
    let (_, s) = mean_std(&asym);
    assert!((s - 0.1).abs() < rel * 0.1, "asymmetry std {s}");
    // Bounds: b_max = 0.6(1 + 0.3ξ): mean 0.6, std 0.18.
    let (m, s) = mean_std(&h.w_max);
    assert!((s - 0.18).abs() < rel * 0.18, "w_max std {s}");
    assert!((m - 0.6).abs() < 4.0 * 0.18 / 200.0, "w_max mean {m}");
    let (m, s) = mean_std(&h.w_min);
    assert!((s - 0.18).abs() < rel * 0.18, "w_min std {s}");
    assert!((m + 0.6).abs() < 4.0 * 0.18 / 200.0, "w_min mean {m}");
}

#[test]
fn up_down_bias_shrinks_down_steps() {
    // up_down > 0: s⁻ = (g − up_down − r)·dw_min, so mean s⁻/s⁺ = 1 − up_down.
    let params = PulsedParams { up_down: 0.2, ..PulsedParams::default().without_variation() };
    let h = crossbar_sim::device::ConstantStep { params }.draw(4, 4, &mut seeded(1));
    assert!(h.step_down.iter().all(|&v| (v - 0.0008).abs() < 1e-9));
    assert!(h.step_up.iter().all(|&v| (v - 0.001).abs() < 1e-9));
}

#[test]
fn cycle_to_cycle_noise_has_configured_spread() {
    // One pulse per update on a 100×100 constant-step tile without d2d: Δw = s(1 + 0.3ξ).
    let params = PulsedParams { dw_min_std: 0.3, ..PulsedParams::default().without_variation() };
    let update = UpdateConfig {
        pulse_type: PulseType::MeanCount,
        update_bl_management: false,
        desired_bl: 1,
        ..UpdateConfig::default()
    };
    let cfg = TileConfig { device: DeviceConfig::ConstantStep(params), update, ..TileConfig::default() };
    let mut tile = AnalogTile::new(100, 100, &cfg, 8).unwrap();
    let x = Array2::from_elem((1, 100), 1.0f32);
    let d = Array2::from_elem((1, 100), 1.0f32);
    tile.update(x.view(), d.view(), 0.001).unwrap();
    assert_eq!(tile.counters().pulses, 10_000);
    let (m, s) = mean_std(&tile.weights().mapv(|v| -v / 0.001));
    // 10 000 pulses: SE(std) ≈ 0.3/√20000 = 0.0021, SE(mean) = 0.003; allow 4 SE.
    assert!((s - 0.3).abs() < 4.0 * 0.3 / (2.0f64 * 10_000.0).sqrt(), "c2c std {s}");
    assert!((m - 1.0).abs() < 4.0 * 0.003, "mean {m}");
}

#[test]
fn linear_step_slope_follows_the_weight() {
    // Without noise: Δ⁺ = s(1 − γ·w/w_max). Starting at w = 0.3 with γ = 1, w_max = 0.6:
    // the first up pulse is s·0.5.
    let params = PulsedParams { dw_min: 0.01, ..PulsedParams::default().without_variation() };
    let model = LinearStep {
        params,
        gamma_up: 1.0,
        gamma_down: 1.0,
        gamma_up_dtod: 0.0,
        gamma_down_dtod: 0.0,
        ..LinearStep::default()
    };
    let mut rng = seeded(1);
    let h = model.draw(1, 1, &mut rng);
    let mut w = [0.3f32];
    model.apply_row(&h, h.row(0), &mut w, &[1], &mut rng);
    assert!((w[0] - 0.305).abs() < 1e-6);
    // Down: Δ⁻ = s(1 − γ·w/w_min) = 0.01·(1 + 0.305/0.6).
    model.apply_row(&h, h.row(0), &mut w, &[-1], &mut rng);
    assert!((w[0] - (0.305 - 0.01 * (1.0 + 0.305 / 0.6))).abs() < 1e-6);
}

#[test]
fn exp_and_pow_steps_follow_their_equations() {
    let params = PulsedParams { dw_min: 0.01, ..PulsedParams::default().without_variation() };
    let exp = ExpStep { params: params.clone(), ..ExpStep::default() };
    let mut rng = seeded(1);
    let h = exp.draw(1, 1, &mut rng);
    let mut w = [0.2f32];
    model_step(&exp, &h, &mut w, 1, &mut rng);
    let z = 2.0 * 0.244 * 0.2 / 1.2 + 0.2425;
    let up = 0.01 * (1.0 - 0.00081 * (12.44625f32 * z).exp());
    assert!((w[0] - (0.2 + up)).abs() < 1e-6, "{} vs {}", w[0], 0.2 + up);

    let pow = PowStep { params, pow_gamma_dtod: 0.0, ..PowStep::default() };
    let h = pow.draw(1, 1, &mut rng);
    let mut w = [0.0f32];
    model_step(&pow, &h, &mut w, -1, &mut rng);
    // Δ⁻ = s·((w − b_min)/(b_max − b_min))^1 = 0.01·0.5 at w = 0.
    assert!((w[0] + 0.005).abs() < 1e-7);
    assert!((pow.granularity() - 0.005).abs() < 1e-7);

    // Exp-step down from the same w = 0.2 (aihwkit defaults A_down 0.36833, γ_down 12.78785):
    // Δ⁻ = s·(1 − A_down·e^(−γ_down·z)), a factor 0.9657 against the up pulse's 0.3483.
    let h = exp.draw(1, 1, &mut rng);
    let mut w = [0.2f32];
    model_step(&exp, &h, &mut w, -1, &mut rng);
    let down = 0.01 * (1.0 - 0.36833 * (-12.78785f32 * z).exp());
    assert!((w[0] - (0.2 - down)).abs() < 1e-6, "{} vs {}", w[0], 0.2 - down);

    // Pow-step with γ = 2 and up/down asymmetry 0.5: a positive pow_up_down keeps the up
    // gain at 1 and lowers the down gain to 1 − 0.5 (aihwkit's rule, as for dw_min), so
    // γ⁺ = 2 and γ⁻ = 1, and at w = 0.3 on ±0.6 the up step is s·(0.3/1.2)² and the down step
    // s·(0.9/1.2)¹ (dropping the exponent or swapping γ⁺ and γ⁻ changes both).
    let pow = PowStep { params: pow.params.clone(), pow_gamma: 2.0, pow_up_down: 0.5, ..pow };
    let h = pow.draw(1, 1, &mut rng);
    let (gu, gd) = (h.extra_row("gamma_up", 0)[0], h.extra_row("gamma_down", 0)[0]);
    assert_eq!((gu, gd), (2.0, 1.0));
    let mut w = [0.3f32];
    model_step(&pow, &h, &mut w, 1, &mut rng);
    assert!((w[0] - (0.3 + 0.01 * 0.25f32.powf(2.0))).abs() < 1e-7, "up: {}", w[0]);
    let mut w = [0.3f32];
    model_step(&pow, &h, &mut w, -1, &mut rng);
    assert!((w[0] - (0.3 - 0.01 * 0.75f32.powf(1.0))).abs() < 1e-7, "down: {}", w[0]);
    // Granularity dw_min·0.5^γ (aihwkit): 0.01·0.25.
    assert!((pow.granularity() - 0.0025).abs() < 1e-9);
}

fn model_step(
    m: &dyn DeviceModel,
    h: &crossbar_sim::DeviceArrays,
    w: &mut [f32],
    n: i32,
    rng: &mut crossbar_sim::SimRng,
) {
    m.apply_row(h, h.row(0), w, &[n], rng);
}

/// aihwkit's `enforce_consistency` (`rpu_pulsed_device.cpp`): crossed bounds are swapped, then
/// b_max ← |b_max| and b_min ← −|b_min|. With w_max = 0.6, w_min = −0.6 and both spreads 1,
/// the drawn bounds are 0.6·(1 + ξ₁) and −0.6·(1 + ξ₂): a bound lands on the wrong side of zero
/// (ξ < −1) on 16 % of draws, and the bounds cross (ξ₁ + ξ₂ < −2) on 7.9 % of devices. The means of b_max and
/// b_min under that rule, by 2-D quadrature, against 200 000 devices within 5 standard errors;
/// setting wrong-side bounds to 0 instead (the rule before) moves each mean by 0.035, 33
/// standard errors.
#[test]
fn bounds_drawn_across_zero_are_mirrored_as_in_aihwkit() {
    let params = PulsedParams { w_max_dtod: 1.0, w_min_dtod: 1.0, ..PulsedParams::default().without_variation() };
    let d = params.draw(400, 500, &mut seeded(9));
    assert!(d.w_min.iter().zip(&d.w_max).all(|(&lo, &hi)| lo <= 0.0 && 0.0 <= hi));
    // No bound is set to 0 (a draw of exactly 0 has probability 0).
    assert!(d.w_max.iter().all(|&hi| hi > 0.0) && d.w_min.iter().all(|&lo| lo < 0.0));

    // E[f(ξ₁, ξ₂)] over two independent standard normals, by Simpson's rule on [−8, 8]².
    let expect = |f: &dyn Fn(f64, f64) -> [f64; 2], k: usize| {
        let (n, a) = (800, -8.0f64);
        let h = 16.0 / n as f64;
        let w = |i: usize| {
            if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            }
        };
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut total = 0.0;
        for i in 0..=n {
            let x = a + i as f64 * h;
            let wx = w(i) * pdf(x);
            for j in 0..=n {
                let y = a + j as f64 * h;
                total += wx * w(j) * pdf(y) * f(x, y)[k];
            }
        }
        total * (h / 3.0).powi(2)
    };
    let bounds = |x: f64, y: f64| {
        let (hi, lo) = (0.6 * (1.0 + x), -0.6 * (1.0 + y));
        let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
        [hi.abs(), -lo.abs()]
    };
    for (k, (name, got)) in [("b_max", &d.w_max), ("b_min", &d.w_min)].into_iter().enumerate() {
        let mean = expect(&bounds, k);
        let var = expect(&|x, y| bounds(x, y).map(|b| (b - mean).powi(2)), k);
        let (m, _) = mean_std(got);
        let se = var.sqrt() / (got.len() as f64).sqrt();
        assert!((m - mean).abs() < 5.0 * se, "{name}: mean {m}, theory {mean} (se {se})");
    }
}
