//! Trains a softmax classifier on one crossbar tile, float vs analog presets, on a seeded
//! synthetic problem (10 Gaussian classes in 64 dimensions), and prints accuracy, device
//! pulses and simulated analog time.
//!
//! ```text
//! cargo run --release -p rapa-examples --example train_tile [-- PRESET ...]
//! ```

use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, FloatTile, Tile, TileConfig};
use ndarray::{Array1, Array2, Axis, s};
use rand::Rng;
use rand_distr::StandardNormal;

const CLASSES: usize = 10;
const DIM: usize = 64;

/// Class means on the sphere of radius 1.5 plus unit Gaussian noise per sample.
fn dataset(n: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = seeded(1234);
    let means = Array2::from_shape_simple_fn((CLASSES, DIM), || {
        rng.sample::<f32, _>(StandardNormal) * 1.5 / (DIM as f32).sqrt()
    });
    let mut rng = seeded(seed);
    let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..CLASSES)).collect();
    let x =
        Array2::from_shape_fn((n, DIM), |(i, j)| means[[labels[i], j]] + 0.7 * rng.sample::<f32, _>(StandardNormal));
    (x, labels)
}

/// Softmax of each row minus the one-hot labels: the gradient of the mean cross-entropy.
fn softmax_grad(logits: &Array2<f32>, labels: &[usize]) -> (Array2<f32>, usize) {
    let mut g = logits.clone();
    let mut correct = 0;
    for (mut row, &l) in g.axis_iter_mut(Axis(0)).zip(labels) {
        let m = row.fold(f32::MIN, |a, &b| a.max(b));
        let arg = row.iter().enumerate().fold(0, |best, (k, &v)| if v > row[best] { k } else { best });
        correct += usize::from(arg == l);
        row.mapv_inplace(|v| (v - m).exp());
        let z = row.sum();
        row.mapv_inplace(|v| v / z);
        row[l] -= 1.0;
    }
    (g, correct)
}

fn train(name: &str, tile: &mut dyn Tile) -> Result<(), crossbar_sim::SimError> {
    let (x, y) = dataset(5000, 1);
    let (xt, yt) = dataset(1000, 2);
    let lr = 0.05;
    let batch = 10;
    for epoch in 1..=5 {
        for b in (0..x.nrows()).step_by(batch) {
            let xb = x.slice(s![b..b + batch, ..]);
            let logits = tile.forward_new(xb)?;
            let (g, _) = softmax_grad(&logits, &y[b..b + batch]);
            tile.update(xb, g.view(), lr)?;
        }
        let (_, correct) = softmax_grad(&tile.forward_new(xt.view())?, &yt);
        println!("{name:>16} epoch {epoch}: test accuracy {:.1} %", 100.0 * correct as f32 / yt.len() as f32);
    }
    let c = tile.counters();
    println!(
        "{name:>16}: {} forward / {} update cycles, {} device pulses",
        c.forward_cycles, c.update_cycles, c.pulses
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let presets: Vec<String> = std::env::args().skip(1).collect();
    let presets = if presets.is_empty() {
        vec!["aihwkit-default".to_string(), "gokmen-vlasov".into(), "reram-sb".into(), "tiki-taka".into()]
    } else {
        presets
    };
    let mut float = FloatTile::new(CLASSES, DIM);
    train("float", &mut float)?;
    for name in presets {
        let cfg = TileConfig::preset(&name)?;
        let mut tile = AnalogTile::new(CLASSES, DIM, &cfg, 7)?;
        tile.set_weights(Array2::zeros((CLASSES, DIM)).view())?;
        train(&name, &mut tile)?;
        let w: Array1<f32> = tile.weights().iter().copied().collect();
        println!(
            "{name:>16}: simulated analog time {:.3} ms, max |w| {:.3}",
            tile.analog_time_ns() * 1e-6,
            w.fold(0.0f32, |m, v| m.max(v.abs()))
        );
    }
    Ok(())
}
