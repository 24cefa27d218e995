//! Weight mapping (ω scaling): exact maths is unchanged, the pulsed update is SGD in the
//! effective weights, the scales survive a checkpoint, and bad input is rejected.

mod common;

use common::uniform;
use crossbar_sim::device::PulsedParams;
use crossbar_sim::pulse::TrainScales;
use crossbar_sim::{AnalogTile, AnalogTileState, DeviceConfig, FloatTile, MappingConfig, Tile, TileConfig};
use ndarray::{Array2, array};

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    (a - b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v))
}

fn max_abs(a: &Array2<f32>) -> f32 {
    a.mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v))
}

/// Rows with very different magnitudes, so per-row and per-tile scales differ.
fn graded_weights() -> Array2<f32> {
    let mut w = uniform(6, 9, 1.0, 3);
    for (i, mut r) in w.rows_mut().into_iter().enumerate() {
        r *= 0.002 * 4f32.powi(i as i32);
    }
    w
}

#[test]
fn mapping_with_exact_maths_equals_the_float_tile() {
    for columnwise in [false, true] {
        let mapping = MappingConfig { weight_scaling_omega: 0.6, columnwise, ..Default::default() };
        let cfg = TileConfig { mapping: mapping.clone(), ..TileConfig::perfect() };
        let w = graded_weights();
        let mut analog = AnalogTile::new(6, 9, &cfg, 5).unwrap();
        analog.set_weights(w.view()).unwrap();
        let mut float = FloatTile::from_weights(w.clone());

        // The stored weights reach ±ω: per row when columnwise, else only the largest row.
        let stored = analog.stored_weights().to_owned();
        let row_max: Vec<f32> =
            stored.rows().into_iter().map(|r| r.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect();
        if columnwise {
            row_max.iter().for_each(|&m| assert!((m - 0.6).abs() < 1e-6, "{row_max:?}"));
        } else {
            assert!((row_max[5] - 0.6).abs() < 1e-6 && row_max[0] < 0.01, "{row_max:?}");
        }
        // α by hand: max|W_i·| / ω per row when columnwise, else max|W| / ω for every row.
        let w_row_max: Vec<f32> = w.rows().into_iter().map(|r| r.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect();
        let w_max = w_row_max.iter().fold(0.0f32, |m, &v| m.max(v));
        for (i, (&alpha, &m)) in analog.mapping_scales().iter().zip(&w_row_max).enumerate() {
            let expected = if columnwise { m / 0.6 } else { w_max / 0.6 };
            assert!((alpha - expected).abs() <= 2.0 * f32::EPSILON * expected, "row {i}: α {alpha} vs {expected}");
        }
        assert_eq!(analog.mapping_scales().len(), 6);
        // The tolerance is f32 rounding of one division and one multiplication per weight.
        let scale = max_abs(&w);
        assert!(max_abs_diff(&analog.weights().to_owned(), &w) <= 4.0 * f32::EPSILON * scale);

        let x = uniform(20, 9, 1.0, 7);
        let d = uniform(20, 6, 0.5, 8);
        let (ya, yf) = (analog.forward_new(x.view()).unwrap(), float.forward_new(x.view()).unwrap());
        assert!(max_abs_diff(&ya, &yf) <= 1e-5 * max_abs(&yf), "forward");
        let (za, zf) = (analog.backward_new(d.view()).unwrap(), float.backward_new(d.view()).unwrap());
        assert!(max_abs_diff(&za, &zf) <= 1e-5 * max_abs(&zf), "backward");
        analog.update(x.view(), d.view(), 0.01).unwrap();
        float.update(x.view(), d.view(), 0.01).unwrap();
        let (wa, wf) = (analog.weights().to_owned(), float.weights().to_owned());
        assert!(max_abs_diff(&wa, &wf) <= 1e-5 * max_abs(&wf), "update");
        // The update changed the weights by far more than the tolerance.
        assert!(max_abs_diff(&wf, &w) > 1e-3 * max_abs(&wf));
    }
}

/// Same statistics as `pulsed_update.rs`, with weights 50× smaller than the device range: the
/// devices see d/α, so a mean update −lr·d·xᵀ of the effective weights that is a small
/// fraction of dw_min comes out right, within 3 standard errors α·s·√(BL·p(1 − p) + σ²·BL·p)/√reps.
#[test]
fn mapped_pulsed_update_is_sgd_in_the_effective_weights() {
    let (dw_min, sigma) = (0.001f32, 0.3f32);
    let params = PulsedParams { dw_min, dw_min_std: sigma, ..PulsedParams::default().without_variation() };
    let mapping = MappingConfig { weight_scaling_omega: 0.5, columnwise: false, ..Default::default() };
    let cfg = TileConfig { device: DeviceConfig::ConstantStep(params), mapping, ..TileConfig::default() };
    // max|W0| = 0.01, so α = 0.02 and d/α = [0.5, −0.25, 0.1, −0.05].
    let mut w0 = Array2::from_shape_fn((4, 6), |(i, j)| 0.009 * ((i * 6 + j) as f32 * 0.7).sin());
    w0[[1, 1]] = 0.01;
    let alpha = max_abs(&w0) / 0.5;
    let x = array![[1.0f32, -0.8, 0.5, -0.3, 0.1, 0.0]];
    let d = array![[0.01f32, -0.005, 0.002, -0.001]];
    let lr = 0.0093;
    let scales = TrainScales::compute(&cfg.update, lr, dw_min, 1.0, 0.01 / alpha);
    assert_eq!(scales.bl, 5);
    let reps = 4000;
    let mut tile = AnalogTile::new(4, 6, &cfg, 31).unwrap();
    let mut sum = Array2::<f64>::zeros((4, 6));
    for _ in 0..reps {
        tile.set_weights(w0.view()).unwrap();
        assert!((tile.mapping_scales()[0] - alpha).abs() <= f32::EPSILON * alpha);
        tile.update(x.view(), d.view(), lr).unwrap();
        sum += &(&tile.weights() - &w0).mapv(f64::from);
    }
    let bl = f64::from(scales.bl);
    let a = f64::from(alpha);
    for i in 0..4 {
        for j in 0..6 {
            let mean = sum[[i, j]] / f64::from(reps);
            let expected = -f64::from(lr) * f64::from(d[[0, i]]) * f64::from(x[[0, j]]);
            let p = f64::from(scales.b * x[[0, j]].abs()) * (f64::from(scales.a) * f64::from(d[[0, i]].abs()) / a);
            let var = (a * f64::from(dw_min)).powi(2) * (bl * p * (1.0 - p) + f64::from(sigma).powi(2) * bl * p);
            let se = (var / f64::from(reps)).sqrt();
            // 1e-10 absorbs f32 rounding of W0/α·α (the x_j = 0 column has no variance).
            assert!((mean - expected).abs() <= 3.0 * se + 1e-10, "[{i},{j}] mean {mean} expected {expected} se {se}");
        }
    }
    // One device step moves an effective weight by α·dw_min = 2e-5, not 1e-3.
    assert!(alpha * dw_min < 0.03 * dw_min);
}

#[test]
fn mapped_weights_saturate_at_alpha_times_the_bound() {
    let params = PulsedParams { dw_min: 0.01, ..PulsedParams::default().without_variation() };
    let mapping = MappingConfig { weight_scaling_omega: 0.3, columnwise: true, ..Default::default() };
    let cfg = TileConfig { device: DeviceConfig::ConstantStep(params), mapping, ..TileConfig::default() };
    let w0 = graded_weights();
    let mut tile = AnalogTile::new(6, 9, &cfg, 2).unwrap();
    tile.set_weights(w0.view()).unwrap();
    let x = Array2::from_elem((50, 9), 1.0f32);
    let d = Array2::from_elem((50, 6), -1.0f32);
    for _ in 0..20 {
        tile.update(x.view(), d.view(), 1.0).unwrap();
    }
    let w = tile.weights().to_owned();
    for (i, r) in w.rows().into_iter().enumerate() {
        let a = tile.mapping_scales()[i];
        // Headroom (w_max − ω)/ω = 1: every weight ends at α·0.6 = twice its row's initial max.
        for &v in r {
            assert!((v - a * 0.6).abs() <= 1e-6 * a, "row {i}: {v} vs {}", a * 0.6);
        }
    }
}

#[test]
fn mapping_state_round_trips_and_is_checked() {
    let mapping = MappingConfig { weight_scaling_omega: 0.6, columnwise: true, ..Default::default() };
    let cfg = TileConfig { mapping, ..TileConfig::default() };
    let mut a = AnalogTile::new(6, 9, &cfg, 11).unwrap();
    a.set_weights(graded_weights().view()).unwrap();
    let x = uniform(40, 9, 1.0, 1);
    let d = uniform(40, 6, 0.5, 2);
    a.update(x.view(), d.view(), 0.01).unwrap();
    let json = serde_json::to_string(&a.state()).unwrap();
    let restored: AnalogTileState = serde_json::from_str(&json).unwrap();
    let mut b = AnalogTile::from_state(restored.clone()).unwrap();
    assert_eq!(a.mapping_scales(), b.mapping_scales());
    assert_eq!(a.weights(), b.weights());
    assert_eq!(a.forward_new(x.view()).unwrap(), b.forward_new(x.view()).unwrap());

    let mut bad = restored.clone();
    bad.mapping_scales.pop();
    let err = AnalogTile::from_state(bad).unwrap_err().to_string();
    assert!(err.contains("5 mapping scales for 6 outputs"), "{err}");
    let mut bad = restored;
    bad.mapping_scales[2] = -1.0;
    let err = AnalogTile::from_state(bad).unwrap_err().to_string();
    assert!(err.contains("mapping scales must be finite and > 0"), "{err}");

    let cfg = TileConfig {
        mapping: MappingConfig { weight_scaling_omega: -0.5, columnwise: false, ..Default::default() },
        ..TileConfig::default()
    };
    let err = AnalogTile::new(2, 2, &cfg, 1).unwrap_err().to_string();
    assert!(err.contains("mapping.weight_scaling_omega"), "{err}");
    // ω must be 0 or at least MIN_OMEGA (1e-6): smaller, non-finite and NaN values are refused.
    for omega in [5e-7f32, 1e-40, f32::NAN, f32::INFINITY] {
        let cfg = TileConfig {
            mapping: MappingConfig { weight_scaling_omega: omega, columnwise: false, ..Default::default() },
            ..cfg.clone()
        };
        let err = AnalogTile::new(2, 2, &cfg, 1).unwrap_err().to_string();
        assert!(err.contains("mapping.weight_scaling_omega") && err.contains("must be 0 (off)"), "ω = {omega}: {err}");
    }
    let ok = MappingConfig { weight_scaling_omega: MappingConfig::MIN_OMEGA, columnwise: false, ..Default::default() };
    assert!(ok.validate("").is_ok());
}
