//! Device models: soft bounds saturate asymptotically, hard bounds hold, realized
//! device-to-device spreads match the configuration.

mod common;

use crossbar_sim::device::{DeviceModel, ExpStep, LinearStep, PowStep, PulsedParams, SoftBounds};
use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, DeviceArrays, DeviceConfig, PulseType, Tile, TileConfig, UpdateConfig};
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
    let (_, trace) = up_pulses(
        DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true, ..SoftBounds::default() }),
        dw_min,
        40,
    );
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
        device: DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true, ..SoftBounds::default() }),
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
    // Δ⁻ = s·(1 − A_down·e^(−γ_down·z)), z = 0.3238: a factor 0.9941 against the up pulse's 0.9544.
    let h = exp.draw(1, 1, &mut rng);
    let mut w = [0.2f32];
    model_step(&exp, &h, &mut w, -1, &mut rng);
    let down = 0.01 * (1.0 - 0.36833 * (-12.78785f32 * z).exp());
    assert!((w[0] - (0.2 - down)).abs() < 1e-6, "{} vs {}", w[0], 0.2 - down);

    // Near w = 0.2 both factors are close to 1; the model is strongly nonlinear near the
    // bounds ±0.6: at w = 0.58 (z = 0.4784) the up factor is 1 − 0.00081·e^(12.44625·z) = 0.6880
    // (the down factor 0.9992), at w = −0.58 (z = 0.0066) the down factor is
    // 1 − 0.36833·e^(−12.78785·z) = 0.6616 (the up factor 0.9991), computed here in f64. With
    // b = 0.5 instead of 0.2425 the up factor at w = 0.3 (z = 0.622) is 1 − 0.00081·e^(7.74) < 0,
    // clamped to 0 by the max(…, 0): an up pulse leaves w unchanged (without the clamp it would
    // move w down by 0.0086). Tolerance 10⁻⁶ as above: f32 evaluation of a step ≤ 0.01 and one
    // addition to |w| < 1 (≤ 2⁻²⁴ each, plus e^x's few-ulp error on a step of 0.01).
    let factors = |w: f64, b: f64| {
        let z = 2.0 * 0.244 * w / 1.2 + b;
        ((1.0 - 0.00081 * (12.44625 * z).exp()).max(0.0), (1.0 - 0.36833 * (-12.78785 * z).exp()).max(0.0))
    };
    for (w0, n, b) in
        [(0.58f32, 1, 0.2425f32), (0.58, -1, 0.2425), (-0.58, -1, 0.2425), (-0.58, 1, 0.2425), (0.3, 1, 0.5)]
    {
        let exp = ExpStep { b, ..exp.clone() };
        let h = exp.draw(1, 1, &mut rng);
        let mut w = [w0];
        model_step(&exp, &h, &mut w, n, &mut rng);
        let (up, down) = factors(f64::from(w0), f64::from(b));
        let want = f64::from(w0) + if n > 0 { 0.01 * up } else { -0.01 * down };
        assert!((f64::from(w[0]) - want).abs() < 1e-6, "w0 {w0}, b {b}, pulse {n}: {} vs {want}", w[0]);
    }
    assert!((factors(0.58, 0.2425).0 - 0.6880).abs() < 1e-4 && (factors(-0.58, 0.2425).1 - 0.6616).abs() < 1e-4);
    assert_eq!(factors(0.3, 0.5).0, 0.0);

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

/// `n` mean-count pulses to every device of a `rows × cols` tile per update call (x = 1 on every
/// column, d = −sign on every row, lr = 31·dw_min: BL = 31 and every probability 1, so 31
/// coincidences per call), `calls` times.
fn pulse_all(tile: &mut AnalogTile, sign: f32, dw_min: f32, calls: usize) {
    let (rows, cols) = (tile.out_size(), tile.in_size());
    let x = Array2::from_elem((1, cols), 1.0f32);
    let d = Array2::from_elem((1, rows), -sign);
    for _ in 0..calls {
        tile.update(x.view(), d.view(), 31.0 * dw_min).unwrap();
    }
}

fn mean_count_tile(device: DeviceConfig, rows: usize, cols: usize, seed: u64) -> AnalogTile {
    let update = UpdateConfig { pulse_type: PulseType::MeanCount, ..UpdateConfig::default() };
    AnalogTile::new(rows, cols, &TileConfig { device, update, ..TileConfig::default() }, seed).unwrap()
}

/// Bound on the f32 error of `n` noise-free pulses of a linear-step-type device: each pulse
/// w + s·(1 − γ·w/R) rounds ≤ 4 times, each by ≤ 2⁻²⁴ of a value ≤ 2 in magnitude (weights,
/// bounds and references here are ≤ 1.3, γ·w/R ≤ 2), and the map is a contraction (slope
/// 1 − s·γ/|R| ∈ (0, 1)), so earlier errors do not grow: ≤ n·8·2⁻²⁴.
fn f32_path_error(n: usize) -> f64 {
    n as f64 * 8.0 * 2f64.powi(-24)
}

/// n noise-free pulses of w ← w ± s·(1 − γ·w/R) from w₀, with clipping to `clip` after each:
/// an affine map with slope c = 1 − s·γ/|R| and fixed point w* = R/γ, so the unclipped path is
/// w* + (w₀ − w*)·cⁿ, monotone towards w*. Where w* lies beyond the device's bound, the clipped
/// path is the unclipped one cut at the bound (the map is increasing and pushes the bound
/// outward, so once clipped the weight stays there): min(·, b_max) up, max(·, b_min) down.
fn linear_path(w0: f64, n: usize, s: f64, gamma: f64, r: f64, clip: f64) -> f64 {
    let c = 1.0 - s * gamma / r.abs();
    let fixed = r / gamma;
    let w = fixed + (w0 - fixed) * c.powi(n as i32);
    if r > 0.0 { w.min(clip) } else { w.max(clip) }
}

/// Soft bounds with device-to-device variation of steps (30 %, up/down 5 %) and bounds (30 %):
/// every device follows its own closed form (γ = 1, references = its own bounds):
/// up, w_n = b_max − (b_max − w₀)(1 − s⁺/b_max)ⁿ; down, w_n = b_min + (w₀ − b_min)(1 − s⁻/|b_min|)ⁿ,
/// with s^± and b from the tile's hidden parameters. 155 up pulses from 0, then 93 down. The
/// tolerance is the f32 rounding bound [`f32_path_error`] (≤ 1.2·10⁻⁴); using the mean bounds as
/// references, or s⁺ for s⁻, moves the weights by ~10⁻³ or more.
#[test]
fn soft_bounds_follow_their_closed_form_per_device() {
    let dw_min = 0.01;
    let params = PulsedParams { dw_min, dw_min_std: 0.0, up_down_dtod: 0.05, ..PulsedParams::default() };
    let mut tile = mean_count_tile(
        DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true, ..SoftBounds::default() }),
        6,
        7,
        21,
    );
    let h = tile.hidden().clone();
    pulse_all(&mut tile, 1.0, dw_min, 5);
    let up = Array2::from_shape_fn((6, 7), |ij| {
        let b = f64::from(h.w_max[ij]);
        linear_path(0.0, 155, f64::from(h.step_up[ij]), 1.0, b, b)
    });
    let tol = f32_path_error(155);
    for (ij, &w) in tile.weights().indexed_iter() {
        assert!((f64::from(w) - up[ij]).abs() <= tol, "{ij:?} after 155 up pulses: {w} vs {}", up[ij]);
    }
    pulse_all(&mut tile, -1.0, dw_min, 3);
    let tol = f32_path_error(155 + 93);
    for (ij, &w) in tile.weights().indexed_iter() {
        let b = f64::from(h.w_min[ij]);
        let want = linear_path(up[ij], 93, f64::from(h.step_down[ij]), 1.0, b, b);
        assert!((f64::from(w) - want).abs() <= tol, "{ij:?} after 93 down pulses: {w} vs {want}");
    }
}

/// Linear step with asymmetric slopes γ⁺ = 1, γ⁻ = 3 (d2d spread 0.1 each), d2d steps and
/// bounds: per device, up pulses follow w* + (w₀ − w*)·(1 − s⁺γ⁺/R⁺)ⁿ towards w* = R⁺/γ⁺ and down
/// pulses the same with s⁻, γ⁻, R⁻ ([`linear_path`]), cut at the device's own bound where w* lies
/// beyond it. The references R are the mean bounds ±0.6 with `mean_bound_reference` (then 93 up
/// pulses reach ≈ 0.47 and about a quarter of the devices, b_max < 0.47, end at their bound),
/// else the device's own. 62 down pulses follow. Tolerance: f32 rounding ([`f32_path_error`]);
/// swapping γ⁺ and γ⁻, s⁺ and s⁻, or the two kinds of reference moves weights by ≥ 10⁻³.
#[test]
fn linear_step_follows_its_closed_form_per_device() {
    let dw_min = 0.01;
    for mean_ref in [true, false] {
        let params = PulsedParams { dw_min, dw_min_std: 0.0, up_down_dtod: 0.05, ..PulsedParams::default() };
        let model = LinearStep {
            params,
            gamma_up: 1.0,
            gamma_down: 3.0,
            gamma_up_dtod: 0.1,
            gamma_down_dtod: 0.1,
            mean_bound_reference: mean_ref,
            mult_noise: true,
        };
        let mut tile = mean_count_tile(DeviceConfig::LinearStep(model), 6, 7, 22);
        let h = tile.hidden().clone();
        let (gu, gd) = (h.extra("gamma_up").unwrap().clone(), h.extra("gamma_down").unwrap().clone());
        let refs = |ij: (usize, usize)| {
            if mean_ref { (0.6, -0.6) } else { (f64::from(h.w_max[ij]), f64::from(h.w_min[ij])) }
        };
        pulse_all(&mut tile, 1.0, dw_min, 3);
        let up = Array2::from_shape_fn((6, 7), |ij| {
            linear_path(0.0, 93, f64::from(h.step_up[ij]), f64::from(gu[ij]), refs(ij).0, f64::from(h.w_max[ij]))
        });
        let tol = f32_path_error(93);
        for (ij, &w) in tile.weights().indexed_iter() {
            assert!((f64::from(w) - up[ij]).abs() <= tol, "mean_ref {mean_ref} {ij:?} up: {w} vs {}", up[ij]);
        }
        pulse_all(&mut tile, -1.0, dw_min, 2);
        let tol = f32_path_error(93 + 62);
        for (ij, &w) in tile.weights().indexed_iter() {
            let want = linear_path(
                up[ij],
                62,
                f64::from(h.step_down[ij]),
                f64::from(gd[ij]),
                refs(ij).1,
                f64::from(h.w_min[ij]),
            );
            assert!((f64::from(w) - want).abs() <= tol, "mean_ref {mean_ref} {ij:?} down: {w} vs {want}");
        }
    }
}

/// Cycle-to-cycle noise of the linear step: multiplicative, Δ = s·(1 − γw/R)·(1 + σξ), or additive
/// (`mult_noise = false`, aihwkit's LinearStep with additive noise), Δ = s·(1 − γw/R + σξ). One pulse on
/// each of 10 000 devices from w₀ = 0.3 (γ = 1 ± 0.05, R = ±0.6: the slope factor is ≈ 0.5 up
/// and ≈ 1.5 down; even rows up, odd rows down). Standardized by each device's predicted mean
/// and std, the 5 000 steps of each direction are N(0, 1): mean within 5/√n and std within
/// 5/√(2n) (5 %) of 1, where the wrong noise form is off by ~50 %. Fixed seeds.
#[test]
fn linear_step_noise_is_multiplicative_or_additive() {
    let (rows, cols, w0, sigma) = (100, 100, 0.3f32, 0.3f64);
    for mult_noise in [true, false] {
        let params = PulsedParams {
            dw_min_std: sigma as f32,
            w_max_dtod: 0.0,
            w_min_dtod: 0.0,
            up_down_dtod: 0.05,
            ..PulsedParams::default()
        };
        let model = LinearStep { params, gamma_up: 1.0, gamma_down: 1.0, mult_noise, ..LinearStep::default() };
        // One pulse per device: BL 1 without BL management, p = 1.
        let update = UpdateConfig {
            pulse_type: PulseType::MeanCount,
            update_bl_management: false,
            desired_bl: 1,
            ..UpdateConfig::default()
        };
        let cfg = TileConfig { device: DeviceConfig::LinearStep(model), update, ..TileConfig::default() };
        let mut tile = AnalogTile::new(rows, cols, &cfg, 23).unwrap();
        tile.set_weights(Array2::from_elem((rows, cols), w0).view()).unwrap();
        let h = tile.hidden().clone();
        let x = Array2::from_elem((1, cols), 1.0f32);
        let d = Array2::from_shape_fn((1, rows), |(_, i)| if i % 2 == 0 { -1.0f32 } else { 1.0 });
        tile.update(x.view(), d.view(), 0.001).unwrap();
        assert_eq!(tile.counters().pulses, (rows * cols) as u64);
        // Standardized steps of the up rows (even) and the down rows (odd), checked separately.
        let mut z = [Vec::new(), Vec::new()];
        for ((i, j), &w) in tile.weights().indexed_iter() {
            z[i % 2].push({
                let up = i % 2 == 0;
                let (s, g, r) = if up {
                    (h.step_up[[i, j]], h.extra("gamma_up").unwrap()[[i, j]], 0.6)
                } else {
                    (h.step_down[[i, j]], h.extra("gamma_down").unwrap()[[i, j]], -0.6)
                };
                let (s, slope) = (f64::from(s), 1.0 - f64::from(g) * f64::from(w0) / r);
                let delta = (f64::from(w) - f64::from(w0)) * if up { 1.0 } else { -1.0 };
                let sd = if mult_noise { s * slope * sigma } else { s * sigma };
                (delta - s * slope) / sd
            });
        }
        for (z, dir) in z.iter().zip(["up", "down"]) {
            let n = z.len() as f64;
            let m = z.iter().sum::<f64>() / n;
            let std = (z.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert!(m.abs() < 5.0 / n.sqrt(), "mult_noise {mult_noise}, {dir}: mean of standardized steps {m}");
            let what = "std of standardized steps";
            assert!((std - 1.0).abs() < 5.0 / (2.0 * n).sqrt(), "mult_noise {mult_noise}, {dir}: {what} {std}");
        }
    }
}

/// Binomial(n, p) probabilities of 0..=n (p < 1).
fn binomial_pmf(n: u32, p: f64) -> Vec<f64> {
    let mut pmf = vec![(1.0 - p).powi(n as i32)];
    for k in 0..n {
        let next = pmf[k as usize] * f64::from(n - k) / f64::from(k + 1) * p / (1.0 - p);
        pmf.push(next);
    }
    pmf
}

/// Noise-free pulse of one device: `step(w, up)` is the step magnitude Δ⁺ or Δ⁻ at w.
type StepFn<'a> = dyn Fn(f64, bool) -> f64 + 'a;

/// [`StepFn`] of device `ij` of a tile with hidden parameters `h`: `step(h, ij, w, up)`.
type TileStepFn<'a> = dyn Fn(&DeviceArrays, (usize, usize), f64, bool) -> f64 + 'a;

/// Exact mean, variance and fourth central moment of ΔW = w_n − w₀, where w_n is the noise-free
/// path of n pulses (w ← clip(w ± step(w), lo, hi) after each) and n ~ Binomial(bl, p).
fn path_moments(w0: f64, bl: u32, p: f64, up: bool, (lo, hi): (f64, f64), step: &StepFn<'_>) -> [f64; 3] {
    let pmf = binomial_pmf(bl, p);
    let mut w = w0;
    let mut dw = Vec::with_capacity(pmf.len());
    for _ in 0..pmf.len() {
        dw.push(w - w0);
        w = if up { w + step(w, true) } else { w - step(w, false) }.clamp(lo, hi);
    }
    let mean: f64 = pmf.iter().zip(&dw).map(|(q, v)| q * v).sum();
    let m = |k: i32| pmf.iter().zip(&dw).map(|(q, v)| q * (v - mean).powi(k)).sum::<f64>();
    [mean, m(2), m(4)]
}

/// End-to-end step scaling of a weight-dependent device model through a tile: one stochastic
/// update (UM and UBL management on, default) of a 4×6 tile from a known W₀ spread over
/// [−0.55, 0.55], repeated `REPS` times. Device ij gets n ~ Binomial(BL, p_ij) coincidences with
/// BL·p_ij = lr·|x_j·d_i|/ε (ε the model's granularity as documented, computed by the caller
/// from its definition, not from the crate): BL = ⌈k⌉ = 6 for k = lr·max|x|·max|d|/ε = 5.5, and
/// with update management each side's largest probability is √(k/BL) < 1, so none saturates.
/// Without cycle-to-cycle noise the weight after n pulses is the deterministic path of the
/// model's step equation (`step`, written by the caller from aihwkit-reference.md §1.2 with the
/// tile's hidden parameters), up when x_j·d_i < 0; so ΔW_ij has the exact distribution
/// Σ_n Binomial(n; BL, p)·δ(path_n − w₀) ([`path_moments`]). Its mean and variance per device are
/// z-tested at 4.5 standard errors (the variance's SE from the exact fourth moment), plus the f32
/// error of the tile's path: ≤ 4·2⁻²⁴ per pulse on weights and steps ≤ 1, grown by at most
/// 1.15× per later pulse (the maps w ± Δ(w) have slopes within 1 ± 0.15 here: at most 0.12, for
/// the exp step's up factor near its zero), so δ ≤ BL·4·2⁻²⁴·1.15^BL ≈ 3.3·10⁻⁶ on each path
/// (the mean count's f32 probability rounding, relative ~10⁻⁶, is added as |mean|·10⁻⁶); the
/// variance gets 2·sd·δ + δ². The SE of a mean is 1–4·10⁻⁴ (steps of 0.02, up to ~2 counts of
/// spread, 3 000 repetitions), so a granularity wrong by the factor 0.5^γ = 0.25 (pow step) or
/// 0.8 (exp step with b = 0.5) moves the mean count by tens of standard errors. Fixed seeds.
fn check_step_scaling(device: DeviceConfig, eps: f64, seed: u64, step: &TileStepFn) {
    const REPS: usize = 3000;
    let (rows, cols) = (4, 6);
    let cfg = TileConfig { device: device.clone(), ..TileConfig::default() };
    let mut tile = AnalogTile::new(rows, cols, &cfg, seed).unwrap();
    let h = tile.hidden().clone();
    let w_init = Array2::from_shape_fn((rows, cols), |(i, j)| -0.55 + 1.1 * ((i * cols + j) * 7 % 24) as f32 / 23.0);
    tile.set_weights(w_init.view()).unwrap();
    // The programmed weights (clipped to each device's bounds).
    let w0 = tile.weights().to_owned();
    let x = array![[1.0f32, -0.8, 0.5, -0.3, 0.15, 0.0]];
    let d = array![[0.6f32, -0.4, 0.25, -0.1]];
    let lr = (5.5 * eps / 0.6) as f32;
    let k = f64::from(lr) * 0.6 / eps;
    let bl = k.ceil() as u32;
    assert_eq!(bl, 6, "k = {k}");

    let (mut sum, mut sq) = (Array2::<f64>::zeros((rows, cols)), Array2::<f64>::zeros((rows, cols)));
    for _ in 0..REPS {
        tile.set_weights(w0.view()).unwrap();
        tile.update(x.view(), d.view(), lr).unwrap();
        let dw = (&tile.weights() - &w0).mapv(f64::from);
        sq += &dw.mapv(|v| v * v);
        sum += &dw;
    }
    let n = REPS as f64;
    let delta = f64::from(bl) * 4.0 * 2f64.powi(-24) * 1.15f64.powi(bl as i32);
    for ((i, j), &w) in w0.indexed_iter() {
        let prod = f64::from(x[[0, j]]) * f64::from(d[[0, i]]);
        let p = f64::from(lr) * prod.abs() / eps / f64::from(bl);
        let bounds = (f64::from(h.w_min[[i, j]]), f64::from(h.w_max[[i, j]]));
        let [mean, var, m4] = path_moments(f64::from(w), bl, p, prod < 0.0, bounds, &|v, up| step(&h, (i, j), v, up));
        let got = sum[[i, j]] / n;
        let s2 = (sq[[i, j]] - got * sum[[i, j]]) / (n - 1.0);
        let se = (var / n).sqrt();
        let tol = 4.5 * se + delta + mean.abs() * 1e-6;
        assert!((got - mean).abs() <= tol, "{device:?}\n[{i},{j}] w0 {w}: mean ΔW {got}, expected {mean} (se {se})");
        let se_var = ((m4 - var * var * (n - 3.0) / (n - 1.0)) / n).max(0.0).sqrt();
        let tol = 4.5 * se_var + 2.0 * var.sqrt() * delta + delta * delta;
        assert!((s2 - var).abs() <= tol, "{device:?}\n[{i},{j}] w0 {w}: var ΔW {s2}, expected {var} (se {se_var})");
    }
}

/// Common parameters of the step-scaling tests: coarse steps (so that a few pulses show the
/// nonlinearity), d2d spread of steps, bounds and up/down balance, no cycle-to-cycle noise.
fn scaling_params() -> PulsedParams {
    PulsedParams {
        dw_min: 0.02,
        dw_min_dtod: 0.1,
        dw_min_std: 0.0,
        w_max_dtod: 0.1,
        w_min_dtod: 0.1,
        up_down_dtod: 0.05,
        ..PulsedParams::default()
    }
}

/// Pow step with γ = 2 ± 10 %: Δ⁺ = s⁺·((b_max − w)/(b_max − b_min))^γ⁺, Δ⁻ = s⁻·((w − b_min)/(b_max − b_min))^γ⁻,
/// granularity dw_min·0.5^γ (aihwkit: the step in the middle of the range), here 0.02·0.25.
#[test]
fn pow_step_update_scales_with_its_granularity() {
    let model = PowStep { params: scaling_params(), pow_gamma: 2.0, pow_gamma_dtod: 0.1, ..PowStep::default() };
    check_step_scaling(DeviceConfig::PowStep(model), 0.02 * 0.25, 41, &|h, ij, w, up| {
        let (lo, hi) = (f64::from(h.w_min[ij]), f64::from(h.w_max[ij]));
        if up {
            f64::from(h.step_up[ij]) * ((hi - w) / (hi - lo)).powf(f64::from(h.extra("gamma_up").unwrap()[ij]))
        } else {
            f64::from(h.step_down[ij]) * ((w - lo) / (hi - lo)).powf(f64::from(h.extra("gamma_down").unwrap()[ij]))
        }
    });
}

/// Exp step with b = 0.5 (aihwkit's other defaults): z = 2a·w/(b_max − b_min) + b,
/// Δ⁺ = s⁺·max(1 − A_up·e^{γ_up·z}, 0), Δ⁻ = s⁻·max(1 − A_down·e^{−γ_down·z}, 0). The up factor
/// vanishes above w ≈ 0.18, so half the up pulses here are clamped to 0. Granularity (as
/// documented in docs/devices.md): dw_min·½(f⁺(0) + f⁻(0)) with the mean bounds,
/// 0.02·½(0.5915 + 0.9994) ≈ 0.0159.
#[test]
fn exp_step_update_scales_with_its_granularity() {
    let model = ExpStep { params: scaling_params(), b: 0.5, ..ExpStep::default() };
    let (a, b, au, ad, gu, gd) = (0.244f64, 0.5f64, 0.00081f64, 0.36833f64, 12.44625f64, 12.78785f64);
    let factors = |w: f64, range: f64| {
        let z = 2.0 * a * w / range + b;
        ((1.0 - au * (gu * z).exp()).max(0.0), (1.0 - ad * (-gd * z).exp()).max(0.0))
    };
    let (f_up, f_down) = factors(0.0, 1.2);
    check_step_scaling(DeviceConfig::ExpStep(model), 0.02 * 0.5 * (f_up + f_down), 42, &|h, ij, w, up| {
        let (fu, fd) = factors(w, f64::from(h.w_max[ij]) - f64::from(h.w_min[ij]));
        if up { f64::from(h.step_up[ij]) * fu } else { f64::from(h.step_down[ij]) * fd }
    });
}

/// Linear step with γ⁺ = 1, γ⁻ = 2 (± 0.1) and the mean bounds ±0.6 as references:
/// Δ⁺ = s⁺(1 − γ⁺·w/0.6), Δ⁻ = s⁻(1 − γ⁻·w/(−0.6)); granularity dw_min.
#[test]
fn linear_step_update_scales_with_its_granularity() {
    let model = LinearStep {
        params: scaling_params(),
        gamma_up: 1.0,
        gamma_down: 2.0,
        gamma_up_dtod: 0.1,
        gamma_down_dtod: 0.1,
        ..LinearStep::default()
    };
    check_step_scaling(DeviceConfig::LinearStep(model), 0.02, 43, &|h, ij, w, up| {
        if up {
            f64::from(h.step_up[ij]) * (1.0 - f64::from(h.extra("gamma_up").unwrap()[ij]) * w / 0.6)
        } else {
            f64::from(h.step_down[ij]) * (1.0 - f64::from(h.extra("gamma_down").unwrap()[ij]) * w / -0.6)
        }
    });
}

/// Soft bounds: Δ⁺ = s⁺(1 − w/b_max), Δ⁻ = s⁻(1 − w/b_min) with each device's own bounds;
/// granularity dw_min.
#[test]
fn soft_bounds_update_scales_with_its_granularity() {
    let model = SoftBounds { params: scaling_params(), mult_noise: true, ..SoftBounds::default() };
    check_step_scaling(DeviceConfig::SoftBounds(model), 0.02, 44, &|h, ij, w, up| {
        if up {
            f64::from(h.step_up[ij]) * (1.0 - w / f64::from(h.w_max[ij]))
        } else {
            f64::from(h.step_down[ij]) * (1.0 - w / f64::from(h.w_min[ij]))
        }
    });
}

/// Sample mean and variance of `v` are those of N(mu, sigma²): the mean within 5σ/√n, the
/// unbiased variance within 5 standard errors σ²·√(2/(n − 1)) (normal fourth moment 3σ⁴).
fn assert_normal_moments(what: &str, v: &[f64], mu: f64, sigma: f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    assert!((m - mu).abs() < 5.0 * sigma / n.sqrt(), "{what}: mean {m}, expected {mu} (se {})", sigma / n.sqrt());
    let se = sigma * sigma * (2.0 / (n - 1.0)).sqrt();
    assert!((var - sigma * sigma).abs() < 5.0 * se, "{what}: variance {var}, expected {} (se {se})", sigma * sigma);
}

/// `dw_min_dtod_log_normal`: the gain is g = exp(dtod·ξ), so with no up/down spread
/// ln(s^±/dw_min) = dtod·ξ is N(0, dtod²) (dtod = 0.4) and s⁻ = s⁺. 40 000 devices, z-tests at
/// 5 standard errors; a normal gain |1 + 0.4ξ| would give E[ln] ≈ −0.1, 50 SE away.
#[test]
fn log_normal_step_gain_has_the_configured_log_moments() {
    let params = PulsedParams {
        dw_min: 0.001,
        dw_min_dtod: 0.4,
        dw_min_dtod_log_normal: true,
        up_down_dtod: 0.0,
        ..PulsedParams::default()
    };
    let h = params.draw(200, 200, &mut seeded(51));
    assert_eq!(h.step_up, h.step_down);
    let logs: Vec<f64> = h.step_up.iter().map(|&s| (f64::from(s) / f64::from(0.001f32)).ln()).collect();
    assert_normal_moments("ln(s/dw_min)", &logs, 0.0, 0.4);
}

/// up_down < 0 (aihwkit `populate`): s⁺ = (g + up_down + r)·dw_min, s⁻ = (g − r)·dw_min, so
/// the up steps shrink. Without variation s⁺ = 0.8·dw_min, s⁻ = dw_min exactly. With g = 1 + 0.1ξ
/// and r = 0.05ξ': (s⁺ − s⁻)/dw_min = up_down + 2r ~ N(−0.2, 0.1²) and (s⁺ + s⁻)/(2dw_min) =
/// g + up_down/2 ~ N(0.9, 0.1²) (no step crosses zero: that is 8 standard deviations away).
/// Taking the up_down > 0 branch instead keeps the difference but moves the sum's mean to
/// 1.1 (400 SE).
#[test]
fn negative_up_down_shrinks_up_steps() {
    let exact = PulsedParams { up_down: -0.2, ..PulsedParams::default().without_variation() };
    let h = exact.draw(3, 3, &mut seeded(52));
    assert!(h.step_up.iter().all(|&v| (v - 0.0008).abs() < 1e-10), "{}", h.step_up);
    assert!(h.step_down.iter().all(|&v| (v - 0.001).abs() < 1e-10), "{}", h.step_down);

    let params = PulsedParams { up_down: -0.2, dw_min_dtod: 0.1, up_down_dtod: 0.05, ..PulsedParams::default() };
    let h = params.draw(200, 200, &mut seeded(53));
    let e = f64::from(0.001f32);
    let diff: Vec<f64> = h.step_up.iter().zip(&h.step_down).map(|(&u, &d)| (f64::from(u) - f64::from(d)) / e).collect();
    let sum: Vec<f64> =
        h.step_up.iter().zip(&h.step_down).map(|(&u, &d)| (f64::from(u) + f64::from(d)) / (2.0 * e)).collect();
    assert_normal_moments("(s⁺ − s⁻)/dw_min", &diff, -0.2, 0.1);
    assert_normal_moments("(s⁺ + s⁻)/(2·dw_min)", &sum, 0.9, 0.1);
}

/// Linear-step slopes γ_ij = |γ + dtod·ξ| (aihwkit without `allow_increasing`), an absolute
/// spread. γ⁺ = 0 with dtod 0.05 is a half-normal: mean 0.05·√(2/π), variance 0.05²·(1 − 2/π),
/// and E[γ²] = 0.05² (SE 0.05²·√(2/n)); γ⁻ = 2 with dtod 0.2 is N(2, 0.2²) (folding 10 SD away).
/// Dropping the abs gives E[γ⁺] = 0; a relative spread γ(1 + dtod·ξ) gives γ⁺ ≡ 0 and
/// std(γ⁻) = 0.4. 40 000 devices, z-tests at 5 SE.
#[test]
fn linear_step_slope_spread_is_absolute_and_folded() {
    let model = LinearStep {
        params: PulsedParams::default(),
        gamma_up: 0.0,
        gamma_down: 2.0,
        gamma_up_dtod: 0.05,
        gamma_down_dtod: 0.2,
        ..LinearStep::default()
    };
    let h = model.draw(200, 200, &mut seeded(54));
    let gu: Vec<f64> = h.extra("gamma_up").unwrap().iter().map(|&g| f64::from(g)).collect();
    let gd: Vec<f64> = h.extra("gamma_down").unwrap().iter().map(|&g| f64::from(g)).collect();
    let n = gu.len() as f64;
    let s = 0.05f64;
    let half_normal_mean = s * (2.0 / std::f64::consts::PI).sqrt();
    let half_normal_sd = s * (1.0 - 2.0 / std::f64::consts::PI).sqrt();
    let m = gu.iter().sum::<f64>() / n;
    assert!(gu.iter().all(|&g| g >= 0.0));
    assert!((m - half_normal_mean).abs() < 5.0 * half_normal_sd / n.sqrt(), "mean γ⁺ {m}, expected {half_normal_mean}");
    let m2 = gu.iter().map(|g| g * g).sum::<f64>() / n;
    assert!((m2 - s * s).abs() < 5.0 * s * s * (2.0 / n).sqrt(), "E[γ⁺²] {m2}, expected {}", s * s);
    assert_normal_moments("γ⁻", &gd, 2.0, 0.2);
}

/// Pow-step exponents: g = 1 + 0.1ξ, r = 0.05ξ', pow_up_down = −0.2 < 0, so γ⁺ = 2(g − 0.2 + r) and
/// γ⁻ = 2(g − r) (the rule of the steps, applied to pow_gamma = 2): (γ⁺ + γ⁻)/4 = g − 0.1 ~
/// N(0.9, 0.1²) and (γ⁺ − γ⁻)/4 = r − 0.1 ~ N(−0.1, 0.05²). 40 000 devices, z-tests at 5 SE.
#[test]
fn pow_step_exponent_spread_follows_its_draw() {
    let model = PowStep {
        params: PulsedParams::default(),
        pow_gamma: 2.0,
        pow_gamma_dtod: 0.1,
        pow_up_down: -0.2,
        pow_up_down_dtod: 0.05,
    };
    let h = model.draw(200, 200, &mut seeded(55));
    let (gu, gd) = (h.extra("gamma_up").unwrap(), h.extra("gamma_down").unwrap());
    let sum: Vec<f64> = gu.iter().zip(gd).map(|(&u, &d)| (f64::from(u) + f64::from(d)) / 4.0).collect();
    let diff: Vec<f64> = gu.iter().zip(gd).map(|(&u, &d)| (f64::from(u) - f64::from(d)) / 4.0).collect();
    assert_normal_moments("(γ⁺ + γ⁻)/4", &sum, 0.9, 0.1);
    assert_normal_moments("(γ⁺ − γ⁻)/4", &diff, -0.1, 0.05);
}

/// Alternating single up and down pulses on every device of `model` (no cycle-to-cycle noise),
/// from w = 0: returns the hidden arrays and the weights after `pairs` pairs.
fn alternate(model: &SoftBounds, pairs: usize) -> (DeviceArrays, Array2<f32>) {
    let (rows, cols) = (8, 10);
    let hidden = model.draw(rows, cols, &mut seeded(61));
    let mut w = Array2::<f32>::zeros((rows, cols));
    let mut rng = seeded(62);
    for i in 0..rows {
        let mut row = w.row_mut(i);
        let row = row.as_slice_mut().unwrap();
        for _ in 0..pairs {
            model.apply_row(&hidden, hidden.row(i), row, &[1; 10], &mut rng);
            model.apply_row(&hidden, hidden.row(i), row, &[-1; 10], &mut rng);
        }
    }
    (hidden, w)
}

/// Soft bounds with up steps larger than down steps (`up_down` 0.4, plus device-to-device
/// spread of steps, bounds and imbalance) settle under alternating up and down pulses at the
/// symmetry point g* = (s⁺ − s⁻)/(s⁺/b_max − s⁻/b_min), where the two steps are equal: the
/// alternation ends on a two-cycle that straddles g*, so the weight after a down pulse is within
/// one step of it (20 000 pairs: the approach is exponential at a rate s⁺/b_max + s⁻/|b_min|
/// ≳ 10⁻³ per pair). With `subtract_symmetry_point` each device is read against its own g*, and
/// the same pulses leave the weight within one step of 0; the weight bounds move with it
/// (b − g*) and the conductance bounds stay in the hidden extras.
#[test]
fn soft_bounds_reference_subtracts_each_symmetry_point() {
    let params = PulsedParams { up_down: 0.4, up_down_dtod: 0.05, dw_min_std: 0.0, ..PulsedParams::default() };
    let plain = SoftBounds { params, mult_noise: false, ..SoftBounds::default() };
    let (h, w) = alternate(&plain, 20_000);
    let mut sp_steps = Vec::new();
    for (ij, &v) in w.indexed_iter() {
        let (su, sd, lo, hi) = (h.step_up[ij], h.step_down[ij], h.w_min[ij], h.w_max[ij]);
        let sp = (su - sd) / (su / hi - sd / lo);
        assert!((v - sp).abs() <= su.max(sd), "{ij:?}: settled at {v}, symmetry point {sp}");
        sp_steps.push(sp.abs() / su.max(sd));
    }
    // The check has power: the symmetry points lie many steps away from 0.
    assert!(sp_steps.iter().sum::<f32>() / sp_steps.len() as f32 > 20.0, "{sp_steps:?}");

    let referenced = SoftBounds { subtract_symmetry_point: true, ..plain.clone() };
    let (hr, wr) = alternate(&referenced, 20_000);
    // The same draws: the same devices, read against their symmetry points.
    assert_eq!((&hr.step_up, &hr.step_down), (&h.step_up, &h.step_down));
    let r = hr.extra("reference").unwrap();
    for (ij, &v) in wr.indexed_iter() {
        let (su, sd) = (h.step_up[ij], h.step_down[ij]);
        let sp = (su - sd) / (su / h.w_max[ij] - sd / h.w_min[ij]);
        assert_eq!(r[ij], sp, "{ij:?}: reference");
        assert!(v.abs() <= su.max(sd), "{ij:?}: settled at {v}, want 0");
        assert_eq!(hr.w_max[ij], h.w_max[ij] - sp);
        assert_eq!(hr.extra("b_max").unwrap()[ij], h.w_max[ij]);
    }
}

/// A reference conductance r = `reference_mean` + `reference_std`·ξ: the drawn references have
/// the configured moments (z-tests at 5 standard errors over 10 000 devices), the weight bounds
/// are the conductance bounds minus r, and a noise-free up pulse moves w by
/// s⁺·(1 − (w + r)/b_max), the soft-bounds step of the conductance, clipped to its bounds.
#[test]
fn soft_bounds_reference_reads_against_a_drawn_reference() {
    let params = PulsedParams { dw_min_std: 0.0, ..PulsedParams::default() };
    let model = SoftBounds { params, reference_mean: 0.2, reference_std: 0.05, ..SoftBounds::default() };
    let h = model.draw(100, 100, &mut seeded(63));
    let r = h.extra("reference").unwrap();
    let refs: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
    assert_normal_moments("reference", &refs, 0.2, 0.05);
    let (b_min, b_max) = (h.extra("b_min").unwrap(), h.extra("b_max").unwrap());
    for ij in [(0, 0), (7, 3), (99, 99)] {
        assert_eq!(h.w_min[ij], b_min[ij] - r[ij]);
        assert_eq!(h.w_max[ij], b_max[ij] - r[ij]);
    }
    let mut w = [-0.1f32; 100];
    model.apply_row(&h, h.row(5), &mut w, &[1; 100], &mut seeded(64));
    for (j, &v) in w.iter().enumerate() {
        let (su, g, lo, hi) = (h.step_up[[5, j]], -0.1 + r[[5, j]], b_min[[5, j]], b_max[[5, j]]);
        let want = (g + su * (1.0 - g / hi)).clamp(lo, hi) - r[[5, j]];
        assert!((v - want).abs() < 1e-6, "device (5, {j}): {v}, want {want}");
    }
    // Devices whose conductance starts above its bound are clipped to it: w = b_max − r.
    let mut w = [0.5f32; 100];
    model.apply_row(&h, h.row(6), &mut w, &[1; 100], &mut seeded(64));
    assert!(w.iter().enumerate().all(|(j, &v)| v <= h.w_max[[6, j]]));
}

/// `slope_up_dtod`, `slope_down_dtod` (aihwkit `SoftBoundsReferenceDevice`): the slopes
/// s⁺/b_max and s⁻/|b_min| get a factor |1 + σξ| per device, which moves the bounds. Without
/// other variation the slope factors are N(1, σ²) (σ = 0.1, 0.2; z-tests at 5 standard
/// errors over 10 000 devices) and the steps unchanged.
#[test]
fn soft_bounds_slope_spread_moves_the_bounds() {
    let params = PulsedParams::default().without_variation();
    let model =
        SoftBounds { params: params.clone(), slope_up_dtod: 0.1, slope_down_dtod: 0.2, ..SoftBounds::default() };
    let h = model.draw(100, 100, &mut seeded(65));
    assert!(h.step_up.iter().all(|&s| s == params.dw_min) && h.extra("reference").is_none());
    let up: Vec<f64> =
        h.w_max.iter().map(|&b| f64::from(params.dw_min / b) / f64::from(params.dw_min / params.w_max)).collect();
    let down: Vec<f64> =
        h.w_min.iter().map(|&b| f64::from(-params.dw_min / b) / f64::from(-params.dw_min / params.w_min)).collect();
    assert_normal_moments("up slope factor", &up, 1.0, 0.1);
    assert_normal_moments("down slope factor", &down, 1.0, 0.2);
    let bad = DeviceConfig::SoftBounds(SoftBounds { reference_std: -1.0, ..SoftBounds::default() });
    assert!(bad.validate("device").unwrap_err().to_string().contains("device.reference_std"));
}
