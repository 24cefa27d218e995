//! The float tile equals plain float math; a perfect analog tile equals the float tile.

mod common;

use common::uniform;
use crossbar_sim::{AnalogTile, FloatTile, Tile, TileConfig};

#[test]
fn float_tile_equals_nested_loops() {
    let (out, inp, batch) = (7, 13, 9);
    let w = uniform(out, inp, 1.0, 1);
    let x = uniform(batch, inp, 1.0, 2);
    let d = uniform(batch, out, 1.0, 3);
    let mut t = FloatTile::from_weights(w.clone());
    let y = t.forward_new(x.view()).unwrap();
    let z = t.backward_new(d.view()).unwrap();
    // Dot products of ≤ 13 terms of magnitude ≤ 1 in f32: error ≤ 13·2⁻²⁴·Σ|terms| < 1e-5.
    for b in 0..batch {
        for i in 0..out {
            let e: f32 = (0..inp).map(|j| w[[i, j]] * x[[b, j]]).sum();
            assert!((y[[b, i]] - e).abs() < 1e-5);
        }
        for j in 0..inp {
            let e: f32 = (0..out).map(|i| w[[i, j]] * d[[b, i]]).sum();
            assert!((z[[b, j]] - e).abs() < 1e-5);
        }
    }
    let lr = 0.1;
    t.update(x.view(), d.view(), lr).unwrap();
    for i in 0..out {
        for j in 0..inp {
            let e = w[[i, j]] - lr * (0..batch).map(|b| d[[b, i]] * x[[b, j]]).sum::<f32>();
            assert!((t.weights()[[i, j]] - e).abs() < 1e-5);
        }
    }
    let c = t.counters();
    assert_eq!((c.forward_cycles, c.backward_cycles, c.update_cycles, c.pulses), (9, 9, 9, 0));
}

#[test]
fn perfect_analog_tile_is_bitwise_float() {
    let w = uniform(16, 40, 0.5, 4);
    let x = uniform(100, 40, 1.0, 5);
    let d = uniform(100, 16, 1.0, 6);
    let mut f = FloatTile::from_weights(w.clone());
    let mut a = AnalogTile::new(16, 40, &TileConfig::perfect(), 7).unwrap();
    a.set_weights(w.view()).unwrap();
    assert_eq!(f.forward_new(x.view()).unwrap(), a.forward_new(x.view()).unwrap());
    assert_eq!(f.backward_new(d.view()).unwrap(), a.backward_new(d.view()).unwrap());
    f.update(x.view(), d.view(), 0.05).unwrap();
    a.update(x.view(), d.view(), 0.05).unwrap();
    assert_eq!(f.weights(), a.weights());
}
