//! Tile state serializes and restores bit-exactly; results are independent of thread count.

mod common;

use common::uniform;
use crossbar_sim::device::{LinearStep, PulsedParams};
use crossbar_sim::{AnalogTile, AnalogTileState, DeviceConfig, Tile, TileConfig};
use ndarray::Array2;

/// Forward, backward and update on a batch large enough for several RNG chunks.
fn exercise(tile: &mut AnalogTile, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let x = uniform(200, 30, 1.0, seed);
    let d = uniform(200, 20, 0.5, seed + 1);
    let y = tile.forward_new(x.view()).unwrap();
    let z = tile.backward_new(d.view()).unwrap();
    tile.update(x.view(), d.view(), 0.01).unwrap();
    (y, z)
}

fn config() -> TileConfig {
    let device = DeviceConfig::LinearStep(LinearStep {
        params: PulsedParams::default(),
        gamma_up: 0.3,
        gamma_down: 0.2,
        ..LinearStep::default()
    });
    TileConfig { device, ..TileConfig::default() }
}

#[test]
fn state_round_trips_bit_exactly() {
    let mut a = AnalogTile::new(20, 30, &config(), 42).unwrap();
    a.set_weights(uniform(20, 30, 0.3, 1).view()).unwrap();
    exercise(&mut a, 10);
    let json = serde_json::to_string(&a.state()).unwrap();
    let restored: AnalogTileState = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, a.state());
    let mut b = AnalogTile::from_state(restored).unwrap();
    for s in [20, 30] {
        let ra = exercise(&mut a, s);
        let rb = exercise(&mut b, s);
        assert_eq!(ra, rb);
        assert_eq!(a.weights(), b.weights());
        assert_eq!(a.counters(), b.counters());
    }
}

#[test]
fn restore_rejects_mismatched_state() {
    let a = AnalogTile::new(4, 5, &TileConfig::default(), 1).unwrap();
    let mut s = a.state();
    s.hidden.w_max = Array2::zeros((5, 4));
    let err = AnalogTile::from_state(s).unwrap_err().to_string();
    assert!(err.contains("hidden array") && err.contains("[5, 4]"), "{err}");
    let mut s = a.state();
    s.device_name = "my-device".into();
    let err = AnalogTile::from_state(s).unwrap_err().to_string();
    assert!(err.contains("my-device"), "{err}");
}

#[test]
fn same_seed_same_result_for_any_thread_count() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = AnalogTile::new(20, 30, &config(), 7).unwrap();
            t.set_weights(uniform(20, 30, 0.3, 1).view()).unwrap();
            let r = exercise(&mut t, 3);
            (r, t.weights().to_owned(), t.counters())
        })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one, two);
    // A different seed gives different hidden parameters and noise.
    let mut other = AnalogTile::new(20, 30, &config(), 8).unwrap();
    other.set_weights(uniform(20, 30, 0.3, 1).view()).unwrap();
    assert_ne!(exercise(&mut other, 3).0, one.0.0);
}

/// The same with more outputs than one SGEMM column block (128) and several 64-vector chunks
/// per call, on 1, 2 and 3 threads: the product's split over threads must not change a bit.
#[test]
fn wide_tile_same_result_for_any_thread_count() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = AnalogTile::new(300, 40, &TileConfig::default(), 3).unwrap();
            t.set_weights(uniform(300, 40, 0.2, 2).view()).unwrap();
            let x = uniform(200, 40, 1.0, 4);
            let d = uniform(200, 300, 0.5, 5);
            let y = t.forward_new(x.view()).unwrap();
            let z = t.backward_new(d.view()).unwrap();
            t.update(x.view(), d.view(), 0.01).unwrap();
            (y, z, t.weights().to_owned(), t.counters())
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(run(threads) == one, "{threads} threads differ from 1");
    }
}

#[test]
fn restore_rejects_corrupt_hidden_parameters() {
    let a = AnalogTile::new(3, 3, &TileConfig::default(), 1).unwrap();
    let mut s = a.state();
    s.hidden.w_min[[1, 1]] = f32::NAN;
    let err = AnalogTile::from_state(s).unwrap_err().to_string();
    assert!(err.contains("bounds"), "{err}");
    let mut s = a.state();
    s.hidden.step_up[[0, 2]] = -1.0;
    assert!(AnalogTile::from_state(s).unwrap_err().to_string().contains("steps"));
}

/// A state without the extra hidden arrays its device model reads (the power step's γ) is
/// refused, naming them, instead of panicking on the first update.
#[test]
fn restore_rejects_missing_device_arrays() {
    use crossbar_sim::device::PowStep;
    let cfg = TileConfig { device: DeviceConfig::PowStep(PowStep::default()), ..TileConfig::default() };
    let a = AnalogTile::new(4, 5, &cfg, 1).unwrap();
    AnalogTile::from_state(a.state()).unwrap();
    let mut s = a.state();
    s.hidden.extra.clear();
    let err = AnalogTile::from_state(s).unwrap_err().to_string();
    assert!(err.contains("pow-step") && err.contains("gamma_up"), "{err}");
}
