//! Bound management recovers saturated outputs; the pass count is bounded as documented.

mod common;

use common::{ideal_with_forward, uniform};
use crossbar_sim::{AnalogTile, BoundManagement, FloatTile, IoConfig, Tile};
use ndarray::Array2;

fn tile(cfg: IoConfig, w: &Array2<f32>) -> AnalogTile {
    let mut t = AnalogTile::new(w.nrows(), w.ncols(), &ideal_with_forward(cfg), 11).unwrap();
    t.set_weights(w.view()).unwrap();
    t
}

#[test]
fn default_io_allows_five_passes() {
    // ρ = 1, 2, 4, 8, 16: the loop stops once ρ > max_bm_res / Δ_in = 0.25·63 = 15.75.
    assert_eq!(IoConfig::default().max_bm_passes(), 5);
    let no_bm = IoConfig { bound_management: BoundManagement::None, ..IoConfig::default() };
    assert_eq!(no_bm.max_bm_passes(), 1);
}

#[test]
fn saturated_outputs_are_recovered() {
    // Weights in [0.2, 0.6], inputs in [0.5, 1]: y ≈ 100·0.4·0.75 = 30 per output, far beyond out_bound = 12.
    let w = uniform(8, 100, 0.4, 1).mapv(|v| 0.4 + 0.5 * v);
    let x = uniform(64, 100, 1.0, 2).mapv(|v| 0.5 + 0.5 * v.abs());
    let exact = FloatTile::from_weights(w.clone()).forward_new(x.view()).unwrap();
    let io = IoConfig { out_noise: 0.0, ..IoConfig::default() };

    let mut clipped = tile(IoConfig { bound_management: BoundManagement::None, ..io.clone() }, &w);
    let y_clip = clipped.forward_new(x.view()).unwrap();
    // Without BM every output is stuck at the bound, rescaled by α = max|x| ≤ 1.
    assert!(y_clip.iter().zip(&exact).all(|(a, e)| *a <= 12.0 + 1e-4 && e - a > 5.0));

    // Pass at reduction ρ (v = x/(α·ρ), α = max|x|): the analog output of row i is
    // a_i = Σ_j w_ij·DAC(v_j), within e_i = Σ_j |w_ij|·Δ_in/2 of u_i/ρ, u_i = y_exact,i/α (no input
    // clips: v ≤ 1). The ADC's code exceeds the bound, failing the pass, iff a_i ≥ 12 + Δ_out/2
    // (12 is the top code, 255·Δ_out). So a vector's pass at ρ surely fails if some
    // u_i/ρ − e_i > 12 + Δ_out/2 and surely succeeds if every u_i/ρ + e_i < 12 + Δ_out/2; the first
    // ρ = 1, 2, 4, … that surely succeeds is that vector's final ρ_b, and it takes
    // 1 + log₂ ρ_b passes. Every ρ before it must surely fail (asserted: no vector is borderline).
    let (din, dout) = (f64::from(io.inp_step()), f64::from(io.out_step()));
    let e: Vec<f64> =
        w.rows().into_iter().map(|r| r.iter().map(|&v| f64::from(v).abs()).sum::<f64>() * din / 2.0).collect();
    let fire = 12.0 + dout / 2.0;
    let rho: Vec<f64> = (0..x.nrows())
        .map(|b| {
            let alpha = x.row(b).iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
            let u = |i: usize| f64::from(exact[[b, i]]) / alpha;
            let mut rho = 1.0;
            while !(0..w.nrows()).all(|i| u(i) / rho + e[i] < fire) {
                assert!((0..w.nrows()).any(|i| u(i) / rho - e[i] > fire), "vector {b} is borderline at ρ = {rho}");
                rho *= 2.0;
            }
            assert!(rho <= 16.0, "vector {b} cannot be recovered");
            rho
        })
        .collect();
    // Here max_i u_i lies in [30.3, 32.7] for every vector and e_i ≤ 0.33: at ρ = 2 the top output
    // is ≥ 15.1 − 0.33 > 12.02, at ρ = 4 ≤ 8.2 + 0.33 < 12.02. So ρ_b = 4, exactly 3 passes each.
    assert!(rho.iter().all(|&r| r == 4.0), "{rho:?}");

    let mut managed = tile(io.clone(), &w);
    let y = managed.forward_new(x.view()).unwrap();
    let c = managed.counters();
    let want_passes: u64 = rho.iter().map(|r| 1 + r.log2() as u64).sum();
    assert_eq!((c.forward_cycles, c.forward_passes), (64, want_passes));
    // Vector by vector (no noise: the same passes), each pass count exactly.
    for (b, r) in rho.iter().enumerate() {
        let before = managed.counters().forward_passes;
        managed.forward_new(x.slice(ndarray::s![b..b + 1, ..])).unwrap();
        assert_eq!(managed.counters().forward_passes - before, 1 + r.log2() as u64, "vector {b}");
    }
    // Quantization error after rescaling by α·ρ_b: each input is off by at most Δ_in/2 and each
    // output by Δ_out/2, so |y − y_exact| ≤ α·ρ_b·(e_i + Δ_out/2) (≈ 1.36 at ρ_b = 4, a quarter of
    // the bound for the largest ρ = 16), plus f32 rounding of the two 100-term sums of ~30
    // (≤ 2·100·2⁻²⁴·30 ≈ 4·10⁻⁴).
    for b in 0..x.nrows() {
        let alpha = x.row(b).iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        for i in 0..w.nrows() {
            let bound = alpha * rho[b] * (e[i] + dout / 2.0) + 1e-3;
            let err = (f64::from(y[[b, i]]) - f64::from(exact[[b, i]])).abs();
            assert!(err <= bound, "vector {b} output {i}: error {err} > {bound}");
        }
    }
}

#[test]
fn hopeless_outputs_stop_after_max_passes() {
    // y = 1000 cannot fit even at ρ = 16 (1000/16 = 62.5 > 12): every vector takes exactly
    // the documented maximum of 5 passes and the output stays clipped.
    let w = Array2::from_elem((2, 1000), 1.0f32);
    let x = Array2::from_elem((10, 1000), 1.0f32);
    let io = IoConfig { out_noise: 0.0, ..IoConfig::default() };
    let mut t = tile(io, &w);
    let y = t.forward_new(x.view()).unwrap();
    assert_eq!(t.counters().forward_passes, 50);
    // The last pass is at ρ = 16: clipped 12 rescaled by 16.
    assert!(y.iter().all(|&v| (v - 192.0).abs() < 1e-3), "{y:?}");
}

#[test]
fn backward_has_no_bound_management() {
    let w = Array2::from_elem((1000, 2), 1.0f32);
    let d = Array2::from_elem((10, 1000), 1.0f32);
    let io = IoConfig { out_noise: 0.0, ..IoConfig::default() };
    let cfg = crossbar_sim::TileConfig { backward: io, ..ideal_with_forward(IoConfig::default()) };
    let mut t = AnalogTile::new(1000, 2, &cfg, 3).unwrap();
    t.set_weights(w.view()).unwrap();
    let z = t.backward_new(d.view()).unwrap();
    assert_eq!(t.counters().backward_passes, 10);
    assert!(z.iter().all(|&v| v == 12.0));
}

/// The backward pass runs on `cfg.backward`, the forward pass on `cfg.forward`, each with its own
/// noise and converters. Perfect forward, noisy backward (out_noise 0.06, converters and
/// management off): forward equals the float product, and the backward error z − dW is
/// 0.06·ξ per element. Its sample std over n = 64·30 = 1 920 errors is within 5 standard
/// errors of 0.06, SE = σ/√(2n) (normal errors: Var(s) ≈ σ²/(2n)), i.e. ±8 %; a backward
/// that used the forward config would give 0. Then a backward ADC bound of 5 (transparent
/// otherwise) clips every backward output 40·0.4 = 16 at exactly 5, while the perfect forward
/// gives its 30·0.4 = 12 unclipped. Fixed seeds.
#[test]
fn backward_uses_its_own_io_config() {
    let w = uniform(40, 30, 0.5, 4);
    let d = uniform(64, 40, 1.0, 5);
    let x = uniform(64, 30, 1.0, 6);
    let float = FloatTile::from_weights(w.clone());
    let cfg = crossbar_sim::TileConfig {
        forward: IoConfig::perfect(),
        backward: IoConfig { out_noise: 0.06, ..common::transparent_io() },
        ..ideal_with_forward(IoConfig::perfect())
    };
    let mut t = AnalogTile::new(40, 30, &cfg, 7).unwrap();
    t.set_weights(w.view()).unwrap();
    let y = t.forward_new(x.view()).unwrap();
    let y_exact = float.clone().forward_new(x.view()).unwrap();
    // An f32 GEMM of the same operands: equal up to the summation order, ≤ 30·2⁻²⁴·Σ|w·x| ≤ 3·10⁻⁵.
    assert!(y.iter().zip(&y_exact).all(|(a, b)| (a - b).abs() < 1e-4), "perfect forward is not exact");
    let z = t.backward_new(d.view()).unwrap();
    let z_exact = float.clone().backward_new(d.view()).unwrap();
    let err: Vec<f64> = (&z - &z_exact).iter().map(|&v| f64::from(v)).collect();
    let n = err.len() as f64;
    let mean = err.iter().sum::<f64>() / n;
    let std = (err.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert!((std - 0.06).abs() < 5.0 * 0.06 / (2.0 * n).sqrt(), "backward error std {std}, want 0.06");

    // Large outputs: w = 0.4 everywhere and d = x = 1, so z_j = 40·0.4 = 16 > 5 and y_i = 12.
    let w = Array2::from_elem((40, 30), 0.4f32);
    let d = Array2::from_elem((3, 40), 1.0f32);
    let x = Array2::from_elem((3, 30), 1.0f32);
    let cfg = crossbar_sim::TileConfig {
        forward: IoConfig::perfect(),
        backward: IoConfig { out_bound: 5.0, ..common::transparent_io() },
        ..ideal_with_forward(IoConfig::perfect())
    };
    let mut t = AnalogTile::new(40, 30, &cfg, 8).unwrap();
    t.set_weights(w.view()).unwrap();
    assert!(t.backward_new(d.view()).unwrap().iter().all(|&v| v == 5.0));
    // (f32 sum of 30 × 0.4: within 30·2⁻²⁴·12 ≈ 2·10⁻⁵ of 12.)
    assert!(t.forward_new(x.view()).unwrap().iter().all(|&v| (v - 12.0).abs() < 1e-4));
}
