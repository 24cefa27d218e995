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
    let mut tile = mean_count_tile(DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true }), 6, 7, 21);
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
