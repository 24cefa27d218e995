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

    let mut managed = tile(io.clone(), &w);
    let y = managed.forward_new(x.view()).unwrap();
    // Quantization error after rescaling by α·ρ: each input is off by at most Δ_in/2, each
    // output by Δ_out/2, so |y − y_exact| ≤ α·ρ·(Σ_j |w_ij|·Δ_in/2 + Δ_out/2), ρ ≤ 16.
    let (din, dout) = (io.inp_step(), io.out_step());
    for b in 0..x.nrows() {
        let alpha = x.row(b).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for i in 0..w.nrows() {
            let bound = alpha * 16.0 * (w.row(i).sum() * din / 2.0 + dout / 2.0);
            let err = (y[[b, i]] - exact[[b, i]]).abs();
            assert!(err <= bound, "vector {b} output {i}: error {err} > {bound}");
        }
    }
    let c = managed.counters();
    assert!(c.forward_passes > c.forward_cycles, "bound management never repeated a pass");
    assert!(c.forward_passes <= 5 * c.forward_cycles);
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
