//! Output noise and weight noise statistics.

mod common;

use common::{ideal_with_forward, transparent_io, uniform};
use crossbar_sim::{AnalogTile, FloatTile, IoConfig, Tile, WeightNoise};

/// Sample mean and standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

#[test]
fn output_noise_std_matches_config() {
    // Perfect converters, no management: analog − exact = out_noise·ξ.
    let cfg = IoConfig { out_noise: 0.06, ..transparent_io() };
    let w = uniform(64, 100, 0.1, 1);
    let x = uniform(640, 100, 1.0, 2);
    let mut tile = AnalogTile::new(64, 100, &ideal_with_forward(cfg), 3).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let exact = FloatTile::from_weights(w).forward_new(x.view()).unwrap();
    let diff: Vec<f64> = (&y - &exact).iter().map(|&v| f64::from(v)).collect();
    let (m, s) = mean_std(&diff);
    // n = 40 960 samples: the SE of the std is σ/√(2n) ≈ 0.35 % — 5 % is > 14 SE.
    assert!((s - 0.06).abs() < 0.05 * 0.06, "std {s}");
    // SE of the mean is σ/√n ≈ 3e-4; allow 4 SE.
    assert!(m.abs() < 4.0 * 0.06 / (diff.len() as f64).sqrt(), "mean {m}");
}

#[test]
fn weight_noise_scales_with_input_norm() {
    // Additive-constant weight noise: y_i += w_noise·‖v‖₂·ξ. With |x_j| = 0.5 on 100 inputs,
    // ‖x‖₂ = 5, so σ = 0.02·5 = 0.1.
    let cfg = IoConfig { w_noise: 0.02, w_noise_type: WeightNoise::AdditiveConstant, ..transparent_io() };
    let x = uniform(640, 100, 1.0, 4).mapv(|v| if v < 0.0 { -0.5 } else { 0.5 });
    let w = uniform(32, 100, 0.1, 5);
    let mut tile = AnalogTile::new(32, 100, &ideal_with_forward(cfg), 6).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let exact = FloatTile::from_weights(w).forward_new(x.view()).unwrap();
    let diff: Vec<f64> = (&y - &exact).iter().map(|&v| f64::from(v)).collect();
    let (_, s) = mean_std(&diff);
    // 20 480 samples: SE of the std ≈ 0.5 %; allow 5 %.
    assert!((s - 0.1).abs() < 0.005, "std {s}");
}

#[test]
fn noise_management_scales_noise_with_input() {
    // With abs-max noise management the noise is output-referred to x/max|x|: the error in
    // the rescaled output has std out_noise·max|x|. Here max|x| = 0.25 per vector.
    let cfg = IoConfig { out_noise: 0.06, noise_management: crossbar_sim::NoiseManagement::AbsMax, ..transparent_io() };
    let mut x = uniform(640, 50, 0.25, 7);
    for mut row in x.rows_mut() {
        row[0] = 0.25;
    }
    let w = uniform(32, 50, 0.1, 8);
    let mut tile = AnalogTile::new(32, 50, &ideal_with_forward(cfg), 9).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let exact = FloatTile::from_weights(w).forward_new(x.view()).unwrap();
    let diff: Vec<f64> = (&y - &exact).iter().map(|&v| f64::from(v)).collect();
    let (_, s) = mean_std(&diff);
    assert!((s - 0.015).abs() < 0.05 * 0.015, "std {s}");
}
