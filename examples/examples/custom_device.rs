//! A user-defined device model, added without touching crossbar-sim: a "quadratic-window"
//! device whose step shrinks as (1 − (w/b)²) toward either bound, with its own hidden
//! parameter (a per-device window exponent) drawn from the tile's seeded stream.
//!
//! ```text
//! cargo run --release -p rapa-examples --example custom_device
//! ```

use crossbar_sim::device::{DeviceRow, PulsedParams};
use crossbar_sim::rand::Rng;
use crossbar_sim::rand_distr::StandardNormal;
use crossbar_sim::{AnalogTile, DeviceArrays, DeviceModel, SimRng, Tile, TileConfig};
use ndarray::{Array2, array};

/// Step Δ^± = s^±·(1 − |w/b^±|^p_ij)·(1 + σξ), with p_ij = p·(1 + 0.1ξ) per device.
#[derive(Debug)]
struct WindowDevice {
    params: PulsedParams,
    p: f32,
}

impl DeviceModel for WindowDevice {
    fn name(&self) -> &str {
        "window"
    }

    fn draw(&self, rows: usize, cols: usize, rng: &mut SimRng) -> DeviceArrays {
        // Reuse the standard steps/bounds and add one model-specific array.
        let mut arrays = self.params.draw(rows, cols, rng);
        let p =
            Array2::from_shape_simple_fn((rows, cols), || self.p * (1.0 + 0.1 * rng.sample::<f32, _>(StandardNormal)));
        arrays.extra.push(("window_p".into(), p));
        arrays
    }

    fn granularity(&self) -> f32 {
        self.params.dw_min
    }

    fn apply_row(&self, hidden: &DeviceArrays, r: DeviceRow<'_>, w: &mut [f32], counts: &[i32], rng: &mut SimRng) {
        let p = hidden.extra_row("window_p", r.row);
        for (j, (&n, wj)) in counts.iter().zip(w.iter_mut()).enumerate() {
            let up = n > 0;
            for _ in 0..n.unsigned_abs() {
                let b = if up { r.w_max[j] } else { r.w_min[j] };
                let s = if up { r.step_up[j] } else { r.step_down[j] };
                let noise = 1.0 + self.params.dw_min_std * rng.sample::<f32, _>(StandardNormal);
                let d = s * (1.0 - (*wj / b).abs().powf(p[j])).max(0.0) * noise;
                *wj = (if up { *wj + d } else { *wj - d }).clamp(r.w_min[j], r.w_max[j]);
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = WindowDevice { params: PulsedParams { dw_min: 0.01, ..PulsedParams::default() }, p: 2.0 };
    let cfg = TileConfig::default();
    let mut tile = AnalogTile::with_device(1, 1, &cfg, Box::new(device), 3)?;
    // Push the weight up with repeated updates: the steps shrink near the bound.
    for k in 0..10 {
        tile.update(array![[1.0f32]].view(), array![[-1.0f32]].view(), 0.05)?;
        println!("after update {k}: w = {:.4}", tile.weights()[[0, 0]]);
    }
    println!("bound of this device: {:.4}", tile.hidden().w_max[[0, 0]]);
    // The state (with the custom hidden array) round-trips; restoring needs the model again.
    let state = tile.state();
    let device = WindowDevice { params: PulsedParams { dw_min: 0.01, ..PulsedParams::default() }, p: 2.0 };
    let restored = AnalogTile::from_state_with_device(state, Box::new(device))?;
    assert_eq!(restored.weights(), tile.weights());
    println!("restored tile matches: {} pulses so far", restored.counters().pulses);
    Ok(())
}
