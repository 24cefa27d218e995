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
    // n = 40 960 samples: the SE of the std is σ/√(2n) ≈ 0.35 %; allow 5 SE.
    assert!((s - 0.06).abs() < 5.0 * 0.06 / (2.0 * diff.len() as f64).sqrt(), "std {s}");
    // SE of the mean is σ/√n ≈ 3e-4; allow 4 SE.
    assert!(m.abs() < 4.0 * 0.06 / (diff.len() as f64).sqrt(), "mean {m}");
}

/// Rows of `uniform(rows, cols)` scaled by 1/8, 1/4, 1/2, 1 in turn (inside the DAC's input
/// bound 1), so that rows differ in norm and maximum (and, with uniform entries,
/// ‖x‖₂ ≈ 0.58·√n differs from max|x|·√n and from ‖x‖₁/√n ≈ 0.5·√n, so a wrong norm shows).
fn varied_rows(rows: usize, cols: usize, seed: u64) -> ndarray::Array2<f32> {
    let mut x = uniform(rows, cols, 1.0, seed);
    for (b, mut row) in x.rows_mut().into_iter().enumerate() {
        row *= [0.125f32, 0.25, 0.5, 1.0][b % 4];
    }
    x
}

/// Errors of the analog forward divided by each row's predicted σ_b: standard normal, so
/// their std is 1 within 5 standard errors, 5/√(2n) (n = 20 480: 2.5 %), where a wrong scale
/// rule (another norm, or one σ for the whole batch) is off by 13 % or more.
fn assert_standardized(y: &ndarray::Array2<f32>, exact: &ndarray::Array2<f32>, sigma: impl Fn(usize) -> f64) {
    let z: Vec<f64> = (y - exact)
        .outer_iter()
        .enumerate()
        .flat_map(|(b, r)| r.iter().map(|&v| f64::from(v) / sigma(b)).collect::<Vec<_>>())
        .collect();
    let (m, s) = mean_std(&z);
    let n = z.len() as f64;
    assert!((s - 1.0).abs() < 5.0 / (2.0 * n).sqrt(), "std of standardized errors {s}");
    assert!(m.abs() < 5.0 / n.sqrt(), "mean {m}");
}

#[test]
fn weight_noise_scales_with_each_inputs_l2_norm() {
    // Additive-constant weight noise: y_i += w_noise·‖x‖₂·ξ per vector.
    let cfg = IoConfig { w_noise: 0.02, w_noise_type: WeightNoise::AdditiveConstant, ..transparent_io() };
    let x = varied_rows(640, 100, 4);
    let w = uniform(32, 100, 0.1, 5);
    let mut tile = AnalogTile::new(32, 100, &ideal_with_forward(cfg), 6).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let exact = FloatTile::from_weights(w).forward_new(x.view()).unwrap();
    let norm = |b: usize| x.row(b).iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    assert_standardized(&y, &exact, |b| 0.02 * norm(b));
}

#[test]
fn noise_management_scales_noise_with_each_inputs_maximum() {
    // With abs-max noise management the noise is output-referred to x/max|x| of each vector:
    // the error of the rescaled output has std out_noise·max|x_b|.
    let cfg = IoConfig { out_noise: 0.06, noise_management: crossbar_sim::NoiseManagement::AbsMax, ..transparent_io() };
    let x = varied_rows(640, 50, 7);
    let w = uniform(32, 50, 0.1, 8);
    let mut tile = AnalogTile::new(32, 50, &ideal_with_forward(cfg), 9).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let exact = FloatTile::from_weights(w).forward_new(x.view()).unwrap();
    let max = |b: usize| x.row(b).iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    assert_standardized(&y, &exact, |b| 0.06 * max(b));
}

/// Output noise is drawn afresh for every call and every vector. With perfect converters the
/// error e = y − W·x of each output is σ·ξ, σ = 0.06. (1) Two forward calls on the same x:
/// y₁ − y₂ = σ(ξ₁ − ξ₂) has std √2·σ if the calls' draws are independent (0 if a call repeated
/// the previous one's); SE of the sample std of n = 40 960 normal values is std/√(2n), allow
/// 5 SE (1.7 %). (2) The same output in neighbouring vectors b, b + 1 (across the 64-vector RNG
/// chunks too): r = Σ e_{b,i}·e_{b+1,i}/(N·σ²) over the N = 639·64 pairs. Under independence
/// the products have mean 0 and variance σ⁴ and are pairwise uncorrelated (a shared factor
/// leaves E[e_b]·E[e_{b+2}] = 0), so Var(r) = 1/N exactly: |r| < 5/√N (0.025). The same for
/// the errors of the two calls (r₁₂, N = 40 960 pairs). Fixed seeds.
#[test]
fn output_noise_is_independent_between_calls_and_vectors() {
    let sigma = 0.06f64;
    let cfg = IoConfig { out_noise: sigma as f32, ..transparent_io() };
    let w = uniform(64, 100, 0.1, 11);
    let x = uniform(640, 100, 1.0, 12);
    let mut tile = AnalogTile::new(64, 100, &ideal_with_forward(cfg), 13).unwrap();
    tile.set_weights(w.view()).unwrap();
    let exact = FloatTile::from_weights(w).forward_new(x.view()).unwrap();
    let y1 = tile.forward_new(x.view()).unwrap();
    let y2 = tile.forward_new(x.view()).unwrap();

    let diff: Vec<f64> = (&y1 - &y2).iter().map(|&v| f64::from(v)).collect();
    let (_, s) = mean_std(&diff);
    let want = 2f64.sqrt() * sigma;
    assert!((s - want).abs() < 5.0 * want / (2.0 * diff.len() as f64).sqrt(), "std(y1 − y2) {s}, want {want}");

    let e1 = (&y1 - &exact).mapv(f64::from);
    let e2 = (&y2 - &exact).mapv(f64::from);
    let rows = e1.nrows();
    let lag: f64 = (0..rows - 1).map(|b| e1.row(b).dot(&e1.row(b + 1))).sum();
    let n = ((rows - 1) * e1.ncols()) as f64;
    let r = lag / (n * sigma * sigma);
    assert!(r.abs() < 5.0 / n.sqrt(), "neighbouring vectors' errors correlate: r = {r}");
    let n12 = e1.len() as f64;
    let r12 = (&e1 * &e2).sum() / (n12 * sigma * sigma);
    assert!(r12.abs() < 5.0 / n12.sqrt(), "the two calls' errors correlate: r = {r12}");
}
