//! The paper's theory (§5): replicating a logistic regression's weights over R tiles and
//! drawing a random tile at every weight access adds an implicit penalty on the across-tile
//! variance of each weight. Derivation (docs/theory.md): with z = Σ_j W[r_j, j]·x_j and r_j
//! uniform, E_r[ℓ(z)] ≈ ℓ(z̄) + ½·p(1 − p)·Σ_j x_j²·v_j, where v_j is the variance of weight j
//! across tiles. Its gradient pulls each tile's deviation δ_rj = W[r, j] − w̄_j back at rate
//! lr·c_j/R per SGD step, c_j = E[p(1 − p)·x_j²], so v_j decays like exp(−2·lr·c_j·t/R).
//!
//! This example measures that decay and compares the random assignment with R copies on a
//! fixed assignment (each training example always uses the same tile) and with one model.
//!
//! ```text
//! cargo run --release -p rapa-examples --example replicated_logreg [-- OUT_DIR]
//! ```

use crossbar_sim::SimRng;
use crossbar_sim::rng::seeded;
use ndarray::{Array1, Array2, Axis};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::StandardNormal;

const D: usize = 40;
const R: usize = 8;
const N_TRAIN: usize = 400;
const N_TEST: usize = 20_000;
const LR: f32 = 0.05;
const EPOCHS: usize = 60;

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn data(n: usize, w_true: &Array1<f32>, rng: &mut SimRng) -> (Array2<f32>, Vec<f32>) {
    let x = Array2::from_shape_simple_fn((n, D), || rng.sample::<f32, _>(StandardNormal));
    let y = x.axis_iter(Axis(0)).map(|r| f32::from(rng.random::<f32>() < sigmoid(r.dot(w_true)))).collect();
    (x, y)
}

/// Mean log-loss and error of the mean-weight model.
fn evaluate(w: &Array1<f32>, x: &Array2<f32>, y: &[f32]) -> (f64, f64) {
    let (mut loss, mut wrong) = (0.0f64, 0usize);
    for (r, &t) in x.axis_iter(Axis(0)).zip(y) {
        let p = sigmoid(r.dot(w)).clamp(1e-7, 1.0 - 1e-7);
        loss -= f64::from(if t > 0.5 { p.ln() } else { (1.0 - p).ln() });
        wrong += usize::from((p > 0.5) != (t > 0.5));
    }
    (loss / y.len() as f64, wrong as f64 / y.len() as f64)
}

/// Mean over weights of the across-tile variance.
fn tile_variance(w: &Array2<f32>) -> f64 {
    w.axis_iter(Axis(1)).map(|c| f64::from(c.var(0.0))).sum::<f64>() / D as f64
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A fresh random tile for every weight access.
    Random,
    /// Example i always uses tile i mod R.
    Fixed,
}

struct Trace {
    w0: Array2<f32>,
    w_end: Array2<f32>,
    variance: Vec<f64>,
    train: Vec<(f64, f64)>,
    test: Vec<(f64, f64)>,
    /// Each tile used alone as a model, averaged over the tiles: (log-loss on the examples the
    /// tile learned from, test log-loss). Fixed: tile r learned from examples i ≡ r (mod R);
    /// random: every tile learned from every example.
    copies: Vec<(f64, f64)>,
}

/// Mean over tiles of (train log-loss on the tile's own examples, test log-loss) of each tile
/// used alone.
fn copies(mode: Mode, w: &Array2<f32>, x: &Array2<f32>, y: &[f32], xt: &Array2<f32>, yt: &[f32]) -> (f64, f64) {
    let (mut train, mut test) = (0.0, 0.0);
    for (r, wr) in w.axis_iter(Axis(0)).enumerate() {
        let own: Vec<usize> = (0..y.len()).filter(|i| mode == Mode::Random || i % R == r).collect();
        let xs = x.select(Axis(0), &own);
        let ys: Vec<f32> = own.iter().map(|&i| y[i]).collect();
        train += evaluate(&wr.to_owned(), &xs, &ys).0;
        test += evaluate(&wr.to_owned(), xt, yt).0;
    }
    (train / R as f64, test / R as f64)
}

fn train(mode: Mode, x: &Array2<f32>, y: &[f32], xt: &Array2<f32>, yt: &[f32], seed: u64) -> Trace {
    let mut rng = seeded(seed);
    // Tiles start from a common zero model plus an independent spread of 0.3 per weight.
    let mut w = Array2::from_shape_simple_fn((R, D), || 0.3 * rng.sample::<f32, _>(StandardNormal));
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    let mut trace = Trace {
        w0: w.clone(),
        w_end: w.clone(),
        variance: vec![tile_variance(&w)],
        train: Vec::new(),
        test: Vec::new(),
        copies: Vec::new(),
    };
    let mut tiles = [0usize; D];
    for _ in 0..EPOCHS {
        order.shuffle(&mut rng);
        for &i in &order {
            let xi = x.row(i);
            for t in tiles.iter_mut() {
                *t = match mode {
                    Mode::Random => rng.random_range(0..R),
                    Mode::Fixed => i % R,
                };
            }
            let z: f32 = (0..D).map(|j| w[[tiles[j], j]] * xi[j]).sum();
            let g = sigmoid(z) - y[i];
            for j in 0..D {
                w[[tiles[j], j]] -= LR * g * xi[j];
            }
        }
        trace.variance.push(tile_variance(&w));
        let mean = w.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(D));
        trace.train.push(evaluate(&mean, x, y));
        trace.test.push(evaluate(&mean, xt, yt));
        trace.copies.push(copies(mode, &w, x, y, xt, yt));
    }
    trace.w_end = w;
    trace
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "runs/theory".into()));
    std::fs::create_dir_all(&out)?;
    let mut rng = seeded(7);
    let w_true = Array1::from_shape_simple_fn(D, || {
        if rng.random::<f32>() < 0.25 { rng.sample::<f32, _>(StandardNormal) } else { 0.0 }
    });
    let (x, y) = data(N_TRAIN, &w_true, &mut rng);
    let (xt, yt) = data(N_TEST, &w_true, &mut rng);

    let random = train(Mode::Random, &x, &y, &xt, &yt, 11);
    let fixed = train(Mode::Fixed, &x, &y, &xt, &yt, 11);

    // Predictions from the penalty. Contraction: v decays at 2·lr·c/R per step with
    // c = mean_j E[p(1 − p)·x_j²]. Injection: the selected tile's stochastic step adds
    // lr²·E[g²·x_j²]·(R − 1)/R² per step (g = p − y). Balance: v* = lr·(R − 1)/(2R)·E[g²x²]/c.
    // c and E[g²x²] are measured on the training set.
    // p is taken as the model computes it: with a random tile per weight (10 draws per example).
    let mut mrng = seeded(99);
    let mut moments = |w: &Array2<f32>| {
        let (mut c, mut g2) = (0.0f64, 0.0f64);
        for (r, &t) in x.axis_iter(Axis(0)).zip(&y).flat_map(|e| std::iter::repeat_n(e, 10)) {
            let z: f32 = (0..D).map(|j| w[[mrng.random_range(0..R), j]] * r[j]).sum();
            let p = f64::from(sigmoid(z));
            let x2 = r.iter().map(|v| f64::from(v * v)).sum::<f64>() / D as f64;
            c += p * (1.0 - p) * x2;
            g2 += (p - f64::from(t)).powi(2) * x2;
        }
        (c / (10 * N_TRAIN) as f64, g2 / (10 * N_TRAIN) as f64)
    };
    let (c0, _) = moments(&random.w0);
    let (c_end, g2_end) = moments(&random.w_end);
    let k = 2.0 * f64::from(LR) * c0 * N_TRAIN as f64 / R as f64;
    let v_star = f64::from(LR) * (R - 1) as f64 / (2.0 * R as f64) * g2_end / c_end;
    let v0 = random.variance[0];
    let predicted = |e: usize| v_star + (v0 - v_star) * (-k * e as f64).exp();
    println!("random assignment: c = E[p(1-p)x^2] = {c0:.4} at the start; contraction 2·lr·c·N/R = {k:.3} per epoch");
    println!(
        "across-tile variance: start {v0:.4}; epoch 1 measured {:.4}, predicted {:.4}; floor measured {:.4} (mean of epochs 31-60), predicted v* = {v_star:.4}",
        random.variance[1],
        predicted(1),
        random.variance[31..].iter().sum::<f64>() / (EPOCHS - 30) as f64
    );
    println!("epoch  var(random)  var(fixed)   train/test error random   train/test error fixed");
    let mut csv = String::from(
        "epoch,var_random,var_fixed,var_predicted,train_loss_random,test_loss_random,train_loss_fixed,test_loss_fixed,train_error_random,test_error_random,train_error_fixed,test_error_fixed,tile_train_loss_random,tile_test_loss_random,tile_train_loss_fixed,tile_test_loss_fixed\n",
    );
    for e in 0..EPOCHS {
        let pred = predicted(e + 1);
        csv.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.5},{:.5},{:.5},{:.5},{:.4},{:.4},{:.4},{:.4},{:.5},{:.5},{:.5},{:.5}\n",
            e + 1,
            random.variance[e + 1],
            fixed.variance[e + 1],
            pred,
            random.train[e].0,
            random.test[e].0,
            fixed.train[e].0,
            fixed.test[e].0,
            random.train[e].1,
            random.test[e].1,
            fixed.train[e].1,
            fixed.test[e].1,
            random.copies[e].0,
            random.copies[e].1,
            fixed.copies[e].0,
            fixed.copies[e].1
        ));
        if e < 3 || (e + 1) % 10 == 0 {
            println!(
                "{:>5}  {:>11.5}  {:>10.5}   {:.3} / {:.3}             {:.3} / {:.3}",
                e + 1,
                random.variance[e + 1],
                fixed.variance[e + 1],
                random.train[e].1,
                random.test[e].1,
                fixed.train[e].1,
                fixed.test[e].1
            );
        }
    }
    let last = EPOCHS - 1;
    println!(
        "final test log-loss: random {:.4}, fixed {:.4}; generalization gap (test − train loss): random {:.4}, fixed {:.4}",
        random.test[last].0,
        fixed.test[last].0,
        random.test[last].0 - random.train[last].0,
        fixed.test[last].0 - fixed.train[last].0
    );
    let (rc, fc) = (random.copies[last], fixed.copies[last]);
    println!(
        "each tile alone (mean over the {R} tiles): train log-loss on its own examples / test log-loss / gap: random {:.4} / {:.4} / {:.4}, fixed {:.4} / {:.4} / {:.4}",
        rc.0,
        rc.1,
        rc.1 - rc.0,
        fc.0,
        fc.1,
        fc.1 - fc.0
    );
    std::fs::write(out.join("theory.csv"), csv)?;
    let series = |t: &Trace, name: &str| {
        (name.to_string(), t.variance.iter().enumerate().map(|(e, &v)| (e as f64, v.max(1e-12).log10())).collect())
    };
    let mut curves = vec![series(&random, "random assignment"), series(&fixed, "fixed assignment")];
    curves.push((
        "predicted (penalty + injection)".into(),
        (0..=EPOCHS).map(|e| (e as f64, predicted(e).log10())).collect(),
    ));
    rapa_train::analysis::plots::line_plot(
        &out.join("theory_variance.png"),
        "across-tile weight variance",
        "epoch",
        "log10 variance",
        &curves,
    )?;
    let gap = |t: &Trace, name: &str| {
        (
            name.to_string(),
            t.test.iter().zip(&t.train).enumerate().map(|(e, (a, b))| ((e + 1) as f64, a.0 - b.0)).collect(),
        )
    };
    let copy_gap = |t: &Trace, name: &str| {
        (name.to_string(), t.copies.iter().enumerate().map(|(e, c)| ((e + 1) as f64, c.1 - c.0)).collect())
    };
    rapa_train::analysis::plots::line_plot(
        &out.join("theory_overfitting.png"),
        "generalization gap (test − train log-loss)",
        "epoch",
        "gap",
        &[
            gap(&random, "random, mean of the tiles"),
            gap(&fixed, "fixed, mean of the tiles"),
            copy_gap(&random, "random, each tile alone"),
            copy_gap(&fixed, "fixed, each tile alone (own examples)"),
        ],
    )?;
    println!("wrote {}/theory.csv, theory_variance.png, theory_overfitting.png", out.display());
    Ok(())
}
