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

/// Mean and std of standardized errors `z` are 0 and 1 within 5 standard errors (1/√n and
/// 1/√(2n) for normal values).
fn assert_standard_normal(what: &str, z: &[f64]) {
    let (m, s) = mean_std(z);
    let n = z.len() as f64;
    assert!((s - 1.0).abs() < 5.0 / (2.0 * n).sqrt(), "{what}: std of standardized errors {s}");
    assert!(m.abs() < 5.0 / n.sqrt(), "{what}: mean of standardized errors {m}");
}

/// Weights whose rows differ in norm: `uniform(out, inp, 0.2)` with row i scaled by 1, ½, ¼, 2.
fn varied_weights(out: usize, inp: usize, seed: u64) -> ndarray::Array2<f32> {
    let mut w = uniform(out, inp, 0.2, seed);
    for (i, mut row) in w.rows_mut().into_iter().enumerate() {
        row *= [1.0f32, 0.5, 0.25, 2.0][i % 4];
    }
    w
}

/// Input noise (aihwkit `inp_noise`) is added to the normalized input after the DAC and its
/// clip, v_j = DAC(x_j/α) + σ_in·ξ_j, and the output is rescaled by α = max|x| (abs-max noise
/// management): y_i = α·Σ_j w_ij·DAC(x_j/α) + α·σ_in·Σ_j w_ij·ξ_j. So y_i − α·Σ_j w_ij·DAC(x_j/α)
/// is N(0, α²·σ_in²·Σ_j w_ij²). The DAC is the default 7-bit one (its output computed here by
/// `Converter::convert` with the tile's own f32 scaling 1/α, so it is the tile's bit for bit);
/// ADC, output noise and bound management are off. Rows of x differ in α and rows of W in
/// norm, so a wrong scale (no α, ‖w‖₁ for ‖w‖₂, one σ for all) is off by ≥ 13 %; noise added
/// before the DAC (σ_in = 0.005 ≈ Δ_in/3) would be quantized to 0 or ±Δ_in and have ~2.5×
/// the variance. Errors standardized per element, 20 480 of them: z-tests at 5 SE.
#[test]
fn input_noise_variance_is_sum_of_squared_weights() {
    let sigma = 0.005f64;
    let cfg = IoConfig {
        inp_noise: sigma as f32,
        noise_management: crossbar_sim::NoiseManagement::AbsMax,
        inp_res: 1.0 / 126.0,
        ..transparent_io()
    };
    let dac = crossbar_sim::periphery::Converter::dac(&cfg);
    let x = varied_rows(640, 50, 21);
    let w = varied_weights(32, 50, 22);
    let mut tile = AnalogTile::new(32, 50, &ideal_with_forward(cfg), 23).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let mut rng = crossbar_sim::rng::seeded(0);
    let mut z = Vec::new();
    for (b, xr) in x.outer_iter().enumerate() {
        let alpha = xr.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
        let s = 1.0 / alpha;
        let v: Vec<f64> = xr.iter().map(|&xj| f64::from(dac.convert(xj * s, &mut rng).0)).collect();
        for (i, wr) in w.outer_iter().enumerate() {
            let mean = f64::from(alpha) * wr.iter().zip(&v).map(|(&wij, vj)| f64::from(wij) * vj).sum::<f64>();
            let norm = wr.iter().map(|&wij| f64::from(wij).powi(2)).sum::<f64>().sqrt();
            z.push((f64::from(y[[b, i]]) - mean) / (f64::from(alpha) * sigma * norm));
        }
    }
    assert_standard_normal("input noise", &z);
}

/// An all-zero input with input noise (aihwkit: NM on, α ≤ 0 and inp_noise > 0): the vector is
/// not skipped but driven with α = 1, so v = DAC(0) + σ_in·ξ = σ_in·ξ and
/// y_i = Σ_j w_ij·σ_in·ξ_j + σ_out·ξ'_i ~ N(0, σ_in²·Σ_j w_ij² + σ_out²) (ADC off). Errors
/// standardized per output, 20 480 values, z-tests at 5 SE; 0 (skipping the vector) or a
/// missing term fails. Without input noise the same vectors give exactly 0, output noise and
/// all (the zero-vector rule).
#[test]
fn zero_input_with_input_noise_is_driven_by_the_noise() {
    let (s_in, s_out) = (0.05f64, 0.06f64);
    let cfg = IoConfig {
        inp_noise: s_in as f32,
        out_noise: s_out as f32,
        noise_management: crossbar_sim::NoiseManagement::AbsMax,
        inp_res: 1.0 / 126.0,
        ..transparent_io()
    };
    let x = ndarray::Array2::<f32>::zeros((640, 50));
    let w = varied_weights(32, 50, 24);
    let mut tile = AnalogTile::new(32, 50, &ideal_with_forward(cfg.clone()), 25).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let sd: Vec<f64> = w
        .outer_iter()
        .map(|r| (s_in * s_in * r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() + s_out * s_out).sqrt())
        .collect();
    let z: Vec<f64> = y.indexed_iter().map(|((_, i), &v)| f64::from(v) / sd[i]).collect();
    assert_standard_normal("zero input with input noise", &z);

    let quiet = IoConfig { inp_noise: 0.0, ..cfg };
    let mut tile = AnalogTile::new(32, 50, &ideal_with_forward(quiet), 25).unwrap();
    tile.set_weights(w.view()).unwrap();
    assert!(tile.forward_new(x.view()).unwrap().iter().all(|&v| v == 0.0));
}
