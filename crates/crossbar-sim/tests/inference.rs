//! The inference tile on PCM (`InferenceTile`, `crate::pcm`): programming noise, drift
//! exponents, drift, read noise and drift compensation against the model's formulas, exact
//! reductions, hardware-aware updates, threads and state.

mod common;

use common::{on_threads, transparent_io, uniform};
use crossbar_sim::{
    ConfigError, DriftCompensation, FloatTile, InferenceConfig, InferenceTile, IoConfig, MappingConfig, ModifierKind,
    PcmNoiseModel, SimError, Tile, TileSnapshot, WeightModifier,
};
use ndarray::{Array2, ArrayView2};

/// No mapping, no digital bias: the stored weights are the given ones.
fn plain(pcm: PcmNoiseModel, forward: IoConfig, compensation: DriftCompensation) -> InferenceConfig {
    InferenceConfig { forward, mapping: MappingConfig::default(), pcm, compensation, ..InferenceConfig::default() }
}

/// 200 × 250 weights of 0.5, one of 1 (so s = g_max: w = 0.5 targets g⁺ = 12.5 µS, g⁻ = 0).
fn half_weights() -> Array2<f32> {
    let mut w = Array2::from_elem((200, 250), 0.5f32);
    w[[0, 0]] = 1.0;
    w
}

/// Sample mean and standard deviation, leaving out the one device at w = 1.
fn moments(a: ArrayView2<'_, f32>) -> (f64, f64, f64) {
    let v: Vec<f64> = a.iter().skip(1).map(|&x| f64::from(x)).collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt(), n)
}

/// E|μ + σξ| by the trapezoidal rule over ξ ∈ [−12, 12] (error far below the test tolerances).
fn folded_normal_mean(mu: f64, sigma: f64) -> f64 {
    let (lo, n) = (-12.0f64, 240_000);
    let h = 24.0 / f64::from(n);
    (0..=n)
        .map(|k| {
            let x = lo + h * f64::from(k);
            let wgt = if k == 0 || k == n { 0.5 } else { 1.0 };
            wgt * (mu + sigma * x).abs() * (-x * x / 2.0).exp()
        })
        .sum::<f64>()
        * h
        / (2.0 * std::f64::consts::PI).sqrt()
}

/// Programmed conductances scatter around the target with σ_P(ĝ) = c₀ + c₁ĝ + c₂ĝ² (µS at
/// g_max = 25), and the device that targets 0 µS keeps max(0, c₀ξ): half of them exactly 0, mean
/// c₀/√(2π). Tolerances: 5 standard errors of the mean (σ/√n) and of the standard deviation
/// (σ/√(2n)), n = 49 999.
#[test]
fn programming_noise_follows_the_polynomial() {
    let model = PcmNoiseModel::default();
    let cfg = plain(model.clone(), IoConfig::perfect(), DriftCompensation::None);
    let mut tile = InferenceTile::from_weights(half_weights().view(), &cfg, 3).unwrap();
    tile.program();
    let d = tile.devices().unwrap();
    assert_eq!(d.scale, 25.0);
    assert_eq!(d.target_plus[[0, 1]], 12.5);
    assert_eq!(d.target_minus[[0, 1]], 0.0);
    let sigma = 0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25;
    assert!((f64::from(model.prog_std(12.5)) - sigma).abs() < 1e-6);
    let (mean, std, n) = moments(d.plus.view());
    assert!((mean - 12.5).abs() < 5.0 * sigma / n.sqrt(), "mean {mean}");
    assert!((std - sigma).abs() < 5.0 * sigma / (2.0 * n).sqrt(), "std {std} vs {sigma}");

    let c0 = 0.26348f64;
    let (mean0, _, _) = moments(d.minus.view());
    // E max(0, c₀ξ) = c₀/√(2π); its variance is c₀²(1/2 − 1/(2π)).
    let sd0 = c0 * (0.5 - 1.0 / (2.0 * std::f64::consts::PI)).sqrt();
    assert!((mean0 - c0 / (2.0 * std::f64::consts::PI).sqrt()).abs() < 5.0 * sd0 / n.sqrt(), "mean {mean0}");
    let zeros = d.minus.iter().skip(1).filter(|&&g| g == 0.0).count() as f64 / n;
    assert!((zeros - 0.5).abs() < 5.0 * (0.25 / n).sqrt(), "zero fraction {zero}", zero = zeros);
}

/// Drift exponents: at ĝ = 0.5 both μ_ν and σ_ν are clipped (0.049, 0.008), at ĝ ≈ 0 too (0.1,
/// 0.045), and ν = |μ + σξ| is a folded normal.
#[test]
fn drift_exponents_follow_the_clipped_fit() {
    let model = PcmNoiseModel::default();
    assert_eq!(model.nu_params(12.5), (0.049, 0.008));
    assert_eq!(model.nu_params(0.0), (0.1, 0.045));
    // Unclipped in between: ĝ = e⁻² gives μ = 0.031 + 0.0244, σ = 0.025 − 0.0059.
    let (mu, sigma) = model.nu_params(25.0 * (-2.0f32).exp());
    assert!((mu - 0.0554).abs() < 1e-6 && (sigma - 0.0191).abs() < 1e-6, "{mu} {sigma}");

    let cfg = plain(model, IoConfig::perfect(), DriftCompensation::None);
    let mut tile = InferenceTile::from_weights(half_weights().view(), &cfg, 4).unwrap();
    tile.program();
    let d = tile.devices().unwrap();
    for (nu, mu, sigma) in [(&d.nu_plus, 0.049, 0.008), (&d.nu_minus, 0.1, 0.045)] {
        let (mean, std, n) = moments(nu.view());
        let want = folded_normal_mean(mu, sigma);
        // Var|X| = E X² − (E|X|)² = μ² + σ² − (E|X|)².
        let want_std = (mu * mu + sigma * sigma - want * want).sqrt();
        assert!((mean - want).abs() < 5.0 * sigma / n.sqrt(), "mean {mean} vs {want}");
        assert!((std - want_std).abs() < 5.0 * sigma / (2.0 * n).sqrt(), "std {std} vs {want_std}");
    }
}

/// Without programming and read noise, a read at t is exactly the power law of each device,
/// g·((t + t₀)/t₀)^(−ν), with its own ν, and a read at t = 0 gives back the targets.
#[test]
fn drift_is_the_power_law_of_each_device() {
    let pcm = PcmNoiseModel { prog_noise_scale: 0.0, read_noise_scale: 0.0, ..PcmNoiseModel::default() };
    let cfg = plain(pcm, IoConfig::perfect(), DriftCompensation::None);
    let w = uniform(8, 12, 0.7, 5);
    let mut tile = InferenceTile::from_weights(w.view(), &cfg, 6).unwrap();
    tile.drift_to(0.0).unwrap();
    for (a, b) in tile.current_weights().iter().zip(&w) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
    }
    for t in [1.0, 3600.0, 3.15e7] {
        tile.drift_to(t).unwrap();
        let d = tile.devices().unwrap();
        for (idx, &got) in tile.current_weights().indexed_iter() {
            let f = |nu: f32| ((t + 20.0) / 20.0).powf(-f64::from(nu));
            let want = (f64::from(d.target_plus[idx]) * f(d.nu_plus[idx])
                - f64::from(d.target_minus[idx]) * f(d.nu_minus[idx]))
                / f64::from(d.scale);
            assert!((f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1e-3), "t {t}: {got} vs {want}");
        }
    }
    assert_eq!(tile.t_inference(), Some(3.15e7));
}

/// Read noise is relative: w/w_P − 1 has mean 0 and standard deviation
/// Q_s(ĝ)·√ln((t + t_read)/(2·t_read)) (the g⁻ = 0 device stays at 0). 5-standard-error bounds.
#[test]
fn read_noise_has_the_1_over_f_amplitude() {
    let pcm = PcmNoiseModel { prog_noise_scale: 0.0, drift_scale: 0.0, ..PcmNoiseModel::default() };
    let cfg = plain(pcm.clone(), IoConfig::perfect(), DriftCompensation::None);
    let mut tile = InferenceTile::from_weights(half_weights().view(), &cfg, 7).unwrap();
    for t in [0.0, 86_400.0] {
        tile.drift_to(t).unwrap();
        let rel = tile.current_weights().mapv(|w| w / 0.5 - 1.0);
        let time = (((t + 20.0) + 250e-9) / 500e-9).ln().sqrt();
        let sigma = 0.0088 / 0.5f64.powf(0.65) * time;
        assert!((f64::from(pcm.read_noise_q(12.5)) * time - sigma).abs() < 1e-6);
        let (mean, std, n) = moments(rel.view());
        assert!(mean.abs() < 5.0 * sigma / n.sqrt(), "t {t}: mean {mean}");
        assert!((std - sigma).abs() < 5.0 * sigma / (2.0 * n).sqrt(), "t {t}: std {std} vs {sigma}");
    }
}

/// Read noise is relative to the drifted conductance with the amplitude Q_s of the *programmed*
/// one: with strong drift (ν ≈ 0.15, a factor ≈ 0.15 after 10⁷ s) the spread of w/w_D − 1 is
/// Q_s(ĝ_P = 0.5)·√ln(…) = 0.0138·5.2, not Q_s(ĝ_D ≈ 0.07), 3.5 times larger.
#[test]
fn read_noise_amplitude_comes_from_the_programmed_conductance() {
    let pcm = PcmNoiseModel { prog_noise_scale: 0.0, drift_scale: 3.0, ..PcmNoiseModel::default() };
    let cfg = plain(pcm.clone(), IoConfig::perfect(), DriftCompensation::None);
    let mut tile = InferenceTile::from_weights(half_weights().view(), &cfg, 24).unwrap();
    let t = 1e7;
    tile.drift_to(t).unwrap();
    let d = tile.devices().unwrap();
    let drifted = d.nu_plus.mapv(|nu| 0.5 * ((t + 20.0) / 20.0).powf(-f64::from(nu)) as f32);
    let rel = Array2::from_shape_fn(drifted.dim(), |idx| tile.current_weights()[idx] / drifted[idx] - 1.0);
    let sigma = f64::from(pcm.read_noise_q(12.5)) * f64::from(pcm.read_noise_time_factor(t));
    let (mean, std, n) = moments(rel.view());
    assert!(mean.abs() < 5.0 * sigma / n.sqrt(), "mean {mean}");
    assert!((std - sigma).abs() < 5.0 * sigma / (2.0 * n).sqrt(), "std {std} vs {sigma}");
}

/// With g_max = 10 µS and g_min = 2 µS: s = (g_max − g_min)/max|W| = 8, w = 0.5 targets
/// g⁺ = 6 and g⁻ = 2 µS, and σ_P scales with g_max/g_ref (g_ref = 25 by default, or as set).
#[test]
fn conductance_range_and_coefficient_reference_scale_the_noise() {
    for reference in [25.0f32, 10.0] {
        let model = PcmNoiseModel {
            g_max: 10.0,
            g_min: 2.0,
            prog_coeff_g_max_reference: reference,
            ..PcmNoiseModel::default()
        };
        let cfg = plain(model.clone(), IoConfig::perfect(), DriftCompensation::None);
        let mut tile = InferenceTile::from_weights(half_weights().view(), &cfg, 25).unwrap();
        tile.program();
        let d = tile.devices().unwrap();
        assert_eq!(d.scale, 8.0);
        for (g, target) in [(&d.plus, 6.0f64), (&d.minus, 2.0)] {
            let r = target / 10.0;
            let sigma = (0.26348 + 1.9650 * r - 1.1731 * r * r) * 10.0 / f64::from(reference);
            assert!((f64::from(model.prog_std(target as f32)) - sigma).abs() < 1e-6);
            let (mean, std, n) = moments(g.view());
            assert!((mean - target).abs() < 5.0 * sigma / n.sqrt(), "g_T {target}: mean {mean}");
            assert!((std - sigma).abs() < 5.0 * sigma / (2.0 * n).sqrt(), "g_T {target}: std {std} vs {sigma}");
        }
    }
}

/// The compensation factor multiplies the analog part after the mapping scale, not the digital
/// bias: with drift only and an exact periphery, y = α·a·W'(t)·x + b·x_last.
#[test]
fn compensation_scales_the_analog_outputs_and_not_the_bias() {
    let pcm = PcmNoiseModel { prog_noise_scale: 0.0, read_noise_scale: 0.0, ..PcmNoiseModel::default() };
    let cfg = InferenceConfig { forward: transparent_io(), pcm, ..InferenceConfig::default() };
    let w = uniform(5, 8, 0.05, 26);
    let mut tile = InferenceTile::from_weights(w.view(), &cfg, 27).unwrap();
    tile.drift_to(3.15e7).unwrap();
    let alpha = tile.compensation_factors()[0];
    let a = tile.mapping_scales()[0];
    assert!(alpha > 1.0 && a > 0.0);
    let x = uniform(7, 8, 1.0, 28);
    let y = tile.forward_new(x.view()).unwrap();
    let stored = tile.current_weights();
    for ((b, i), &got) in y.indexed_iter() {
        let analog: f32 = (0..7).map(|j| stored[[i, j]] * x[[b, j]]).sum();
        let want = alpha * a * analog + w[[i, 7]] * x[[b, 7]];
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1e-2), "{got} vs {want}");
    }
}

/// With an exact forward pass the readout of the identity is W itself, so global compensation
/// is α = mean|W_P|/mean|W(t)| and per-column α_i = the same per row; the forward pass is then
/// exactly α ⊙ W(t)·x, and `weights()` shows that product.
#[test]
fn compensation_factors_restore_the_readout() {
    let w = uniform(10, 30, 0.8, 8);
    for comp in [DriftCompensation::Global, DriftCompensation::PerColumn] {
        let cfg = plain(PcmNoiseModel::default(), IoConfig::perfect(), comp);
        let mut tile = InferenceTile::from_weights(w.view(), &cfg, 9).unwrap();
        tile.program();
        let programmed = tile.current_weights().to_owned();
        assert!(tile.compensation_factors().is_empty());
        tile.drift_to(3.15e7).unwrap();
        let now = tile.current_weights().to_owned();
        let mean_abs = |a: ArrayView2<'_, f32>| a.mapv(f32::abs).mean().unwrap();
        let want: Vec<f32> = match comp {
            DriftCompensation::Global => vec![mean_abs(programmed.view()) / mean_abs(now.view())],
            _ => programmed
                .outer_iter()
                .zip(now.outer_iter())
                .map(|(p, c)| p.mapv(f32::abs).mean().unwrap() / c.mapv(f32::abs).mean().unwrap())
                .collect(),
        };
        let got = tile.compensation_factors().to_vec();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * w, "{comp}: {g} vs {w}");
            // Drift only lowers conductances: a year divides them by 2.0 (ν = 0.049) to 4.2
            // (ν = 0.1), so every readout shrinks.
            assert!(*g > 1.0, "{comp}: factor {g}");
        }
        let x = uniform(16, 30, 1.0, 10);
        let y = tile.forward_new(x.view()).unwrap();
        let eff = Array2::from_shape_fn(now.dim(), |(i, j)| now[[i, j]] * want[if want.len() == 1 { 0 } else { i }]);
        for (a, b) in tile.weights().iter().zip(&eff) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b}");
        }
        let y_ref = FloatTile::from_weights(eff).forward_new(x.view()).unwrap();
        for (a, b) in y.iter().zip(&y_ref) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-2), "{a} vs {b}");
        }
    }
}

/// Zero noise scales and converters off: the programmed, drifted, compensated tile with mapping
/// and digital bias computes exactly the trained network (to f32 rounding), and its backward
/// pass is the exact transpose.
#[test]
fn noise_free_pcm_is_the_float_tile() {
    let pcm =
        PcmNoiseModel { prog_noise_scale: 0.0, read_noise_scale: 0.0, drift_scale: 0.0, ..PcmNoiseModel::default() };
    let cfg = InferenceConfig { forward: transparent_io(), pcm, ..InferenceConfig::default() };
    assert!(cfg.mapping.digital_bias && cfg.mapping.weight_scaling_omega == 1.0);
    let w = uniform(12, 21, 0.05, 11);
    let mut tile = InferenceTile::from_weights(w.view(), &cfg, 12).unwrap();
    tile.drift_to(1e6).unwrap();
    let mut float = FloatTile::from_weights(w.clone());
    let x = uniform(9, 21, 1.0, 13);
    let (y, y_ref) = (tile.forward_new(x.view()).unwrap(), float.forward_new(x.view()).unwrap());
    for (a, b) in y.iter().zip(&y_ref) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-2), "{a} vs {b}");
    }
    let d = uniform(9, 12, 1.0, 14);
    let (z, z_ref) = (tile.backward_new(d.view()).unwrap(), float.backward_new(d.view()).unwrap());
    for (a, b) in z.iter().zip(&z_ref) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-2), "{a} vs {b}");
    }
}

/// The update is SGD of the effective target weights (as a float tile's) and discards the
/// programming: the tile computes with the new target weights until programmed again.
#[test]
fn update_is_sgd_and_discards_the_programming() {
    let cfg = InferenceConfig::default();
    let w = uniform(6, 9, 0.3, 15);
    let mut tile = InferenceTile::from_weights(w.view(), &cfg, 16).unwrap();
    tile.drift_to(100.0).unwrap();
    assert!(tile.devices().is_some() && !tile.compensation_factors().is_empty());
    let (x, d) = (uniform(5, 9, 1.0, 17), uniform(5, 6, 1.0, 18));
    tile.update(x.view(), d.view(), 0.1).unwrap();
    let mut float = FloatTile::from_weights(w);
    float.update(x.view(), d.view(), 0.1).unwrap();
    for (a, b) in tile.weights().iter().zip(float.weights()) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert!(tile.devices().is_none() && tile.compensation_factors().is_empty() && tile.t_inference().is_none());
    assert_eq!(tile.current_weights(), tile.target_weights());
}

/// The same seed gives the same chip, reads and outputs on 1 and 2 threads; a snapshot restores
/// the tile bit-exactly (the next forward pass draws the same noise).
#[test]
fn threads_and_snapshots_do_not_change_results() {
    let cfg = InferenceConfig::default();
    let w = uniform(32, 76, 0.2, 19);
    let x = uniform(300, 76, 1.0, 20);
    let run = || {
        let mut tile = InferenceTile::from_weights(w.view(), &cfg, 21).unwrap();
        tile.drift_to(3600.0).unwrap();
        let y = tile.forward_new(x.view()).unwrap();
        (tile, y)
    };
    let (mut a, ya) = on_threads(1, run);
    let (b, yb) = on_threads(2, run);
    assert_eq!(ya, yb);
    assert_eq!(a, b);

    let snap = a.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let mut restored = serde_json::from_str::<TileSnapshot>(&json).unwrap().restore().unwrap();
    assert_eq!(a.forward_new(x.view()).unwrap(), restored.forward_new(x.view()).unwrap());
    assert_eq!(a.weights(), restored.weights());
}

/// Invalid settings and arguments are typed errors naming the field or argument.
#[test]
fn invalid_settings_are_named() {
    let bad = |pcm: PcmNoiseModel| InferenceConfig { pcm, ..InferenceConfig::default() }.validate().unwrap_err();
    let e = bad(PcmNoiseModel { g_min: 30.0, ..PcmNoiseModel::default() });
    assert!(matches!(&e, ConfigError::BoundsOrder { min_field, .. } if min_field == "pcm.g_min"), "{e}");
    let e = bad(PcmNoiseModel { t_0: 1e-9, ..PcmNoiseModel::default() });
    assert!(matches!(&e, ConfigError::OutOfRange { field, .. } if field == "pcm.t_0"), "{e}");
    let e = bad(PcmNoiseModel { read_noise_scale: -1.0, ..PcmNoiseModel::default() });
    assert_eq!(e.to_string(), "pcm.read_noise_scale = -1 is outside [0, 1000]");
    let e = bad(PcmNoiseModel { prog_coeff: [0.1, f32::NAN, 0.0], ..PcmNoiseModel::default() });
    assert!(e.to_string().contains("pcm.prog_coeff"), "{e}");
    let e = "mean".parse::<DriftCompensation>().unwrap_err();
    assert!(e.to_string().contains("none, global, per-column"), "{e}");

    let e = bad(PcmNoiseModel { drift_scale: 1e4, ..PcmNoiseModel::default() });
    assert!(e.to_string().contains("pcm.drift_scale"), "{e}");

    let mut tile = InferenceTile::from_weights(uniform(3, 4, 0.5, 22).view(), &InferenceConfig::default(), 23).unwrap();
    let mut nan = uniform(3, 4, 0.5, 22);
    nan[[1, 2]] = f32::NAN;
    let e = tile.set_weights(nan.view()).unwrap_err();
    assert!(matches!(e, SimError::InvalidArgument { name: "w", .. }), "{e}");
    for t in [-1.0, f64::NAN, f64::INFINITY, 1e13] {
        let e = tile.drift_to(t).unwrap_err();
        assert!(matches!(e, SimError::InvalidArgument { name: "t_inference", .. }), "{e}");
    }
    let e = InferenceTile::new(3, 1, &InferenceConfig::default(), 1).unwrap_err();
    assert!(matches!(e, SimError::ShapeMismatch { .. }), "{e}");
    let e = tile.set_weights(Array2::zeros((3, 5)).view()).unwrap_err();
    assert!(matches!(e, SimError::ShapeMismatch { .. }), "{e}");

    // A tampered snapshot (devices of another shape) is refused on restore.
    tile.program();
    let mut json: serde_json::Value = serde_json::to_value(tile.snapshot()).unwrap();
    json["Inference"]["devices"]["nu_plus"]["dim"] = serde_json::json!([2, 3]);
    json["Inference"]["devices"]["nu_plus"]["data"] = serde_json::json!([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let snap: TileSnapshot = serde_json::from_value(json).unwrap();
    let e = snap.restore().unwrap_err();
    assert!(matches!(&e, SimError::State { reason } if reason.contains("nu_plus")), "{e}");
    // So are non-finite values, and a compensation reference that does not fit the mode.
    tile.drift_to(10.0).unwrap();
    let good: serde_json::Value = serde_json::to_value(tile.snapshot()).unwrap();
    let tampered = |pointer: &str, v: serde_json::Value| {
        let mut j = good.clone();
        *j.pointer_mut(pointer).unwrap() = v;
        serde_json::from_value::<TileSnapshot>(j).unwrap().restore().unwrap_err().to_string()
    };
    // 1e39 overflows f32 to infinity.
    let e = tampered("/Inference/current/data/0", serde_json::json!(1e39));
    assert!(e.contains("current weights hold inf"), "{e}");
    let e = tampered("/Inference/devices/plus/data/1", serde_json::json!(-1.0));
    assert!(e.contains("plus"), "{e}");
    let e = tampered("/Inference/reference", serde_json::json!([1.0, 1.0]));
    assert!(e.contains("compensation references"), "{e}");
    let e = tampered("/Inference/t_inference", serde_json::json!(1e14));
    assert!(e.contains("read time"), "{e}");
}

/// Weight-modifier noise (hardware-aware training) against its definitions, read through an
/// exact forward pass of the identity (which returns the modified weights): add-normal σ·a,
/// mult-normal |w|·σ·a, poly a·σ·(c₀ + c₁|w|/a + c₂(w/a)²), here with a = max|W| = 1 and w = 0.5.
/// 5-standard-error bounds on 49 999 weights.
#[test]
fn weight_modifier_noise_follows_its_definition() {
    let c = crossbar_sim::WeightModifier::default().coeffs;
    let poly = f64::from(c[0]) + f64::from(c[1]) * 0.5 + f64::from(c[2]) * 0.25;
    for (kind, std_dev, want) in [
        (ModifierKind::AddNormal, 0.1f32, 0.1f64),
        (ModifierKind::MultNormal, 0.1, 0.05),
        (ModifierKind::Poly, 1.0, poly),
    ] {
        let modifier = WeightModifier { kind, std_dev, ..WeightModifier::default() };
        let cfg = InferenceConfig {
            modifier,
            ..plain(PcmNoiseModel::default(), IoConfig::perfect(), DriftCompensation::None)
        };
        let w = half_weights();
        let mut tile = InferenceTile::from_weights(w.view(), &cfg, 30).unwrap();
        let y = tile.forward_new(Array2::eye(250).view()).unwrap();
        let delta = Array2::from_shape_fn(w.dim(), |(i, j)| y[[j, i]] - w[[i, j]]);
        let (mean, std, n) = moments(delta.view());
        assert!(mean.abs() < 5.0 * want / n.sqrt(), "{kind:?}: mean {mean}");
        assert!((std - want).abs() < 5.0 * want / (2.0 * n).sqrt(), "{kind:?}: std {std} vs {want}");
    }
}

/// The modifier acts while training (fresh weights every forward pass, the backward pass on the
/// same ones), not in evaluation unless `enable_during_test`; updates go to the unmodified
/// weights.
#[test]
fn weight_modifier_acts_while_training_only() {
    let modifier = WeightModifier { kind: ModifierKind::AddNormal, std_dev: 0.05, ..WeightModifier::default() };
    let cfg =
        InferenceConfig { modifier, ..plain(PcmNoiseModel::default(), IoConfig::perfect(), DriftCompensation::None) };
    let w = uniform(6, 9, 0.5, 31);
    let eye = Array2::<f32>::eye(9);
    let mut tile = InferenceTile::from_weights(w.view(), &cfg, 32).unwrap();
    let exact = w.t().to_owned();
    let first = tile.forward_new(eye.view()).unwrap();
    assert!(first.iter().zip(&exact).any(|(a, b)| (a - b).abs() > 1e-3));
    // The backward pass is the transpose of the forward pass's (modified) weights.
    let z = tile.backward_new(Array2::<f32>::eye(6).view()).unwrap();
    for (a, b) in z.iter().zip(first.t()) {
        assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
    }
    let second = tile.forward_new(eye.view()).unwrap();
    assert_ne!(first, second);
    tile.set_training(false);
    assert_eq!(tile.forward_new(eye.view()).unwrap(), exact);
    let mut during_test = cfg.clone();
    during_test.modifier.enable_during_test = true;
    let mut t2 = InferenceTile::from_weights(w.view(), &during_test, 32).unwrap();
    t2.set_training(false);
    assert_ne!(t2.forward_new(eye.view()).unwrap(), exact);

    tile.set_training(true);
    let (x, d) = (uniform(4, 9, 1.0, 33), uniform(4, 6, 1.0, 34));
    tile.forward_new(x.view()).unwrap();
    tile.update(x.view(), d.view(), 0.1).unwrap();
    let mut float = FloatTile::from_weights(w);
    float.update(x.view(), d.view(), 0.1).unwrap();
    for (a, b) in tile.weights().iter().zip(float.weights()) {
        assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
    }
    // The modified weights kept for the backward pass are scratch, not state: a snapshot taken
    // after a training forward pass restores to an equal tile, which goes on alike.
    tile.forward_new(x.view()).unwrap();
    let mut restored: InferenceTile = serde_json::from_str(&serde_json::to_string(&tile).unwrap()).unwrap();
    assert_eq!(restored, tile);
    assert_eq!(restored.forward_new(x.view()).unwrap(), tile.forward_new(x.view()).unwrap());
    let e = InferenceConfig {
        modifier: WeightModifier { std_dev: 20.0, ..WeightModifier::default() },
        ..InferenceConfig::default()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("modifier.std_dev"), "{e}");
}
