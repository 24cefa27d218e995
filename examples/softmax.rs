//! The softmax regression of crossbar-sim's `tests/learning.rs` on a data set that aihwkit can
//! be given bit for bit, for comparing whole training runs of the two simulators.
//!
//! Four Gaussian classes in 16 dimensions (means μ_c ~ N(0, 0.55²·I), unit isotropic noise, a
//! constant input 1 as the bias column), 4 000 training and 2 000 test examples, drawn by a
//! portable generator (SplitMix64 and the cosine branch of Box–Muller in f64) that
//! `docs/results/aihwkit-compare/aihwkit_softmax.py` implements identically. A tile starts at
//! W = 0 and is trained for 5 epochs by SGD at lr 0.01 on the softmax cross-entropy: per
//! mini-batch of 10, the analog forward pass y = W·x, d = softmax(y) − onehot, and the update
//! W ← W − lr·d·xᵀ. [`RULES`] names the tile configurations by aihwkit's names.
//!
//! ```
//! use rapa_examples::softmax::{Problem, config, train};
//! let problem = Problem::new(4);
//! let (error, mean_abs_w) = train(&problem, &config("sgd").unwrap(), 1).unwrap();
//! assert!(error < 0.3 && mean_abs_w > 0.1);
//! ```

use crossbar_sim::{AnalogTile, SimError, Tile, TileConfig};
use ndarray::{Array2, s};

/// Classes.
pub const CLASSES: usize = 4;
/// Features (the tile has one more input, the bias column).
pub const FEATURES: usize = 16;
/// Training examples.
pub const TRAIN: usize = 4000;
/// Test examples.
pub const TEST: usize = 2000;
/// Epochs of training.
pub const EPOCHS: usize = 5;
/// Mini-batch size.
pub const BATCH: usize = 10;
/// Learning rate.
pub const LR: f32 = 0.01;
/// The rules, by rapa's preset names where one exists: plain pulsed SGD on aihwkit's default
/// tile (`sgd`: `SingleRPUConfig(ConstantStepDevice())`, preset `aihwkit-default`), the same
/// tile with the mixed-precision update (`mp`: `build_config("mp", ConstantStepDevice)`), the
/// device presets with their preset periphery (aihwkit's `GokmenVlasovPreset`,
/// `IdealizedPreset`, `ReRamSBPreset`, `CapacitorPreset`), Tiki-Taka with `TransferCompound`'s
/// defaults and aihwkit's two Tiki-Taka presets, and `build_config`'s c-TTv2 with its choppers
/// off (`ttv2-chop0`), c-TTv2 and AGAD on default constant-step devices, and the last two with
/// settings that learn this problem (`-tuned`: `fast_lr` 1 instead of 0.1, `in_chop_prob` 0.02
/// instead of 0.1).
pub const RULES: [&str; 14] = [
    "sgd",
    "mp",
    "gokmen-vlasov",
    "idealized",
    "reram-sb",
    "capacitor",
    "tiki-taka",
    "tiki-taka-idealized",
    "tiki-taka-reram-sb",
    "ttv2-chop0",
    "c-ttv2",
    "agad",
    "c-ttv2-tuned",
    "agad-tuned",
];

/// SplitMix64 (Steele, Lea & Flood 2014), the data set's generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal: √(−2 ln(1 − u₁))·cos(2π u₂).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The data set: inputs with the bias column and labels, for training and test.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Training inputs, `[TRAIN, FEATURES + 1]`.
    pub x: Array2<f32>,
    /// Training labels (example b has class b mod 4).
    pub labels: Vec<usize>,
    /// Test inputs, `[TEST, FEATURES + 1]`.
    pub x_test: Array2<f32>,
    /// Test labels.
    pub labels_test: Vec<usize>,
}

impl Problem {
    /// The data set of generator seed `seed`: the means first (class by class), then the
    /// training examples, then the test examples, each feature μ_cj + ξ in f64, stored as f32.
    pub fn new(seed: u64) -> Self {
        let mut g = SplitMix(seed);
        let means: Vec<f64> = (0..CLASSES * FEATURES).map(|_| 0.55 * g.normal()).collect();
        let mut blobs = |n: usize| {
            let mut x = Array2::zeros((n, FEATURES + 1));
            for (b, mut row) in x.outer_iter_mut().enumerate() {
                let c = b % CLASSES;
                for j in 0..FEATURES {
                    row[j] = (means[c * FEATURES + j] + g.normal()) as f32;
                }
                row[FEATURES] = 1.0;
            }
            (x, (0..n).map(|b| b % CLASSES).collect::<Vec<_>>())
        };
        let (x, labels) = blobs(TRAIN);
        let (x_test, labels_test) = blobs(TEST);
        Self { x, labels, x_test, labels_test }
    }
}

/// The tile configuration of `rule` (one of [`RULES`]), or `None` for an unknown name.
pub fn config(rule: &str) -> Option<TileConfig> {
    Some(match rule {
        "sgd" => TileConfig::aihwkit_default(),
        "mp" => {
            let mut c = TileConfig::aihwkit_default();
            c.mixed_precision.enabled = true;
            c
        }
        "ttv2-chop0" => {
            let mut c = TileConfig::chopped_tiki_taka();
            c.transfer.in_chop_prob = 0.0;
            c
        }
        "c-ttv2" => TileConfig::chopped_tiki_taka(),
        "c-ttv2-tuned" | "agad-tuned" => {
            let mut c = if rule == "agad-tuned" { TileConfig::agad() } else { TileConfig::chopped_tiki_taka() };
            c.transfer.fast_lr = 1.0;
            c.transfer.in_chop_prob = 0.02;
            c
        }
        other if RULES.contains(&other) => TileConfig::preset(other).expect("every other rule of RULES is a preset"),
        _ => return None,
    })
}

/// Trains a tile of `cfg` (tile seed `seed`) from W = 0 and returns its test error (argmax of
/// the analog forward pass) and the mean |W| of its visible weights.
pub fn train(problem: &Problem, cfg: &TileConfig, seed: u64) -> Result<(f64, f64), SimError> {
    let mut tile = AnalogTile::new(CLASSES, FEATURES + 1, cfg, seed)?;
    tile.set_weights(Array2::zeros((CLASSES, FEATURES + 1)).view())?;
    for _ in 0..EPOCHS {
        for start in (0..TRAIN).step_by(BATCH) {
            let xb = problem.x.slice(s![start..start + BATCH, ..]);
            let mut d = tile.forward_new(xb)?;
            for (mut row, &c) in d.outer_iter_mut().zip(&problem.labels[start..]) {
                let m = row.fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                row.mapv_inplace(|v| (v - m).exp());
                let z = row.sum();
                row.mapv_inplace(|v| v / z);
                row[c] -= 1.0;
            }
            tile.update(xb, d.view(), LR)?;
        }
    }
    let y = tile.forward_new(problem.x_test.view())?;
    let wrong = y
        .outer_iter()
        .zip(&problem.labels_test)
        .filter(|(row, c)| {
            let best =
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            best.0 != **c
        })
        .count();
    let w = tile.weights();
    let mean_abs = w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len() as f64;
    Ok((wrong as f64 / TEST as f64, mean_abs))
}
