//! End to end: an analog tile learns. Softmax regression on one tile — noisy forward MVMs
//! through DAC and ADC, pulsed stochastic updates of a constant-step device — trained by SGD
//! on four Gaussian classes, against the Bayes error of the problem and the same loop on the
//! exact float tile.

use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, DeviceConfig, FloatTile, Tile, TileConfig, TransferConfig};
use ndarray::{Array1, Array2, Axis, s};
use rand_distr::{Distribution, StandardNormal};

const CLASSES: usize = 4;
const FEATURES: usize = 16;

/// `n` examples of four classes (in turn) with the given means and unit isotropic noise,
/// x = μ_c + ξ, plus a constant input 1 (the bias column): (inputs, labels).
fn blobs(n: usize, means: &Array2<f32>, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = seeded(seed);
    let mut x = Array2::zeros((n, FEATURES + 1));
    let mut labels = Vec::with_capacity(n);
    for (b, mut row) in x.outer_iter_mut().enumerate() {
        let c = b % CLASSES;
        for j in 0..FEATURES {
            let xi: f32 = StandardNormal.sample(&mut rng);
            row[j] = means[[c, j]] + xi;
        }
        row[FEATURES] = 1.0;
        labels.push(c);
    }
    (x, labels)
}

/// The Bayes classifier of the problem (equal priors, equal isotropic covariances: the nearest
/// true mean): its error on `x` is the best any classifier can do there, up to sampling.
fn bayes_error(means: &Array2<f32>, x: &Array2<f32>, labels: &[usize]) -> f64 {
    let wrong = x
        .outer_iter()
        .zip(labels)
        .filter(|(row, c)| {
            let dist = |k: usize| (0..FEATURES).map(|j| (row[j] - means[[k, j]]).powi(2)).sum::<f32>();
            (0..CLASSES).any(|k| k != **c && dist(k) < dist(**c))
        })
        .count();
    wrong as f64 / labels.len() as f64
}

fn softmax_rows(y: &mut Array2<f32>) {
    for mut row in y.outer_iter_mut() {
        let m = row.fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        row.mapv_inplace(|v| (v - m).exp());
        let z = row.sum();
        row.mapv_inplace(|v| v / z);
    }
}

/// Trains `tile` by SGD on the softmax cross-entropy (mini-batches of 10, one rank-1 update per
/// example: W ← W − lr·(p − onehot)·xᵀ), and returns its test error.
fn train(tile: &mut dyn Tile, data: (&Array2<f32>, &[usize]), test: (&Array2<f32>, &[usize]), epochs: usize) -> f64 {
    let (x, labels) = data;
    let lr = 0.01;
    for _ in 0..epochs {
        for start in (0..x.nrows()).step_by(10) {
            let xb = x.slice(s![start..(start + 10).min(x.nrows()), ..]);
            let mut d = tile.forward_new(xb).unwrap();
            softmax_rows(&mut d);
            for (mut row, &c) in d.outer_iter_mut().zip(&labels[start..]) {
                row[c] -= 1.0;
            }
            tile.update(xb, d.view(), lr).unwrap();
        }
    }
    let (xt, lt) = test;
    let y = tile.forward_new(xt.view()).unwrap();
    let predicted: Array1<usize> = y.map_axis(Axis(1), |r| {
        r.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
    });
    predicted.iter().zip(lt).filter(|(p, l)| p != l).count() as f64 / lt.len() as f64
}

/// With aihwkit's default tile (7-bit DAC, 9-bit ADC, output noise σ = 0.06, noise and bound
/// management, constant-step device with dw_min 0.001 and ±0.6 bounds, device-to-device and
/// cycle-to-cycle variation, pulse trains of up to 31), the analog tile learns the problem to
/// within a few points of its Bayes error, as the float tile does. Chance is 75 % error.
///
/// Tolerances: the Bayes rule and the trained models are scored on the same 2 000 test
/// examples, so sampling error moves their difference by less than the 0.9-point binomial
/// standard error of either rate; the margins are for what training leaves. The float model's
/// softmax regression can represent the Bayes rule exactly, and 5 epochs of SGD must bring it
/// within 3 points. The analog tile gets 6, which allows for what its non-idealities cost
/// (output noise of 0.06 against logit margins of order 1, the device's asymmetric up/down
/// steps) but not for a tile that learns a degraded rule: over tile seeds 0–7 the working tile
/// ends at 18.5–20.6 %, a coarse device (dw_min 0.2) at 29.0–38.1 % and output noise 1.0 at
/// 34.0–37.7 %, against a bound of 23.95 %; the last two are checked below (seed 3).
#[test]
fn analog_tile_learns_softmax_regression_near_the_bayes_error() {
    // Class means μ_c ~ N(0, 0.55²·I): a Bayes error of ~18 %.
    let mut rng = seeded(11);
    let means = Array2::from_shape_simple_fn((CLASSES, FEATURES), || {
        let z: f32 = StandardNormal.sample(&mut rng);
        0.55 * z
    });
    let (x, labels) = blobs(4_000, &means, 12);
    let (xt, lt) = blobs(2_000, &means, 13);
    let bayes = bayes_error(&means, &xt, &lt);
    // The problem is neither trivial nor hopeless.
    assert!((0.05..0.3).contains(&bayes), "Bayes error {bayes}");

    let zero = Array2::<f32>::zeros((CLASSES, FEATURES + 1));
    let mut float = FloatTile::from_weights(zero.clone());
    let float_err = train(&mut float, (&x, &labels), (&xt, &lt), 5);
    // An analog tile with `cfg` (seed 3) from zero weights, trained: its test error and tile.
    let train_analog = |cfg: &TileConfig| {
        let mut tile = AnalogTile::new(CLASSES, FEATURES + 1, cfg, 3).unwrap();
        tile.set_weights(zero.view()).unwrap();
        (train(&mut tile, (&x, &labels), (&xt, &lt), 5), tile)
    };
    let (analog_err, analog) = train_analog(&TileConfig::aihwkit_default());
    println!("test error: Bayes {bayes:.4}, float {float_err:.4}, analog {analog_err:.4}");
    assert!(float_err < bayes + 0.03, "float {float_err} vs Bayes {bayes}");
    assert!(analog_err < bayes + 0.06, "analog {analog_err} vs Bayes {bayes}");
    assert_eq!(analog.counters().update_cycles, 5 * 4_000);

    // Tiki-Taka with aihwkit's `TransferCompound` defaults (a second default device per weight
    // takes the pulses; one column of 17 is read and moved into the visible device per batch at
    // λ = lr) learns it too, through the visible device alone (γ = 0): seeds 3 and 4 end at
    // 20.5 and 19.9 %.
    let tt = TileConfig {
        transfer: TransferConfig { enabled: true, ..Default::default() },
        ..TileConfig::aihwkit_default()
    };
    let (tt_err, tt_tile) = train_analog(&tt);
    println!("Tiki-Taka: {tt_err:.4}");
    assert!(tt_err < bayes + 0.06, "Tiki-Taka {tt_err} vs Bayes {bayes}");
    // 400 batches × 5 epochs, one read and one write each.
    assert_eq!(tt_tile.counters().update_cycles, 5 * 4_000 + 5 * 400);

    // Chopped Tiki-Taka (c-TTv2 as aihwkit's `build_config("c-ttv2")`): the chopped rule's own machinery (an auto-scaled rate onto A with BL 5, one column read
    // after every vector, the buffer in units of ε_A, BL-1 writes) with the choppers off, which
    // is the buffered rule: seeds 3 and 4 end at 20.85 and 20.00 %. (With the default input
    // choppers, flipping with probability 0.1 per read, the same budget ends at 53 %: see
    // `docs/devices.md`, "Chopped Tiki-Taka".)
    let mut ctt = TileConfig::chopped_tiki_taka();
    ctt.transfer.in_chop_prob = 0.0;
    let (ctt_err, ctt_tile) = train_analog(&ctt);
    println!("chopped Tiki-Taka without choppers: {ctt_err:.4}");
    assert!(ctt_err < bayes + 0.06, "chopped Tiki-Taka without choppers {ctt_err} vs Bayes {bayes}");
    // One read after each of the 20 000 vectors; each wrote if any of its 4 entries stepped.
    let c = ctt_tile.counters();
    // Forward cycles: 20 000 training vectors, 20 000 reads, 2 000 test vectors.
    assert_eq!(c.forward_cycles, 5 * 4_000 + 5 * 4_000 + 2_000);
    assert!(c.update_cycles > 5 * 4_000);

    // The bound tells a working tile from a degraded one: with steps of 0.2 (six steps
    // between the ±0.6 bounds) or output noise of 1.0, the same training stays outside it.
    let mut coarse = TileConfig::aihwkit_default();
    if let DeviceConfig::ConstantStep(p) = &mut coarse.device {
        p.dw_min = 0.2;
    }
    let mut noisy = TileConfig::aihwkit_default();
    noisy.forward.out_noise = 1.0;
    for (name, cfg) in [("dw_min 0.2", coarse), ("out_noise 1.0", noisy)] {
        let (err, _) = train_analog(&cfg);
        println!("{name}: {err:.4}");
        assert!(err >= bayes + 0.06, "{name}: {err} vs Bayes {bayes}");
    }
}
