//! aihwkit's correlation-detection example (its `examples/26_correlation_detection.py`) as a
//! library, for the `correlation_detection` example and the test that compares it with
//! aihwkit's numbers: the configurations of the four rules and one run.
//!
//! A 5 × 5 tile starts at W ≈ 0 (0.001·ξ) and takes [`UPDATES`] single-vector updates
//! W ← W − lr·d·xᵀ at lr 0.1 with x ~ N(0, I) and d = 0.4·x + 0.6·ξ', so that the expected
//! update is −0.04·I per vector: the diagonal ("correlated") weights should move towards the
//! negative bound and the off-diagonal ("uncorrelated") ones stay at 0.
//!
//! ```
//! use rapa_examples::correlation::{config, run};
//! let trace = run(&config("agad").unwrap(), 1).unwrap();
//! let [updates, diagonal, _off_mean, off_std] = trace[trace.len() - 1];
//! assert_eq!(updates, 5000.0);
//! assert!(diagonal < -0.3 && off_std < 0.1);
//! ```

use crossbar_sim::device::SoftBounds;
use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, BoundManagement, DeviceConfig, IoConfig, NoiseManagement, Tile, TileConfig};
use ndarray::Array2;
use rand_distr::{Distribution, StandardNormal};

/// Rows and columns of the tile.
pub const N: usize = 5;
/// Update vectors per run.
pub const UPDATES: usize = 5000;
/// Updates between two points of a trace.
pub const EVERY: usize = 500;
/// The learning rate.
pub const LR: f32 = 0.1;
/// The correlation factor α of d = α·x + (1 − α)·ξ.
pub const ALPHA: f32 = 0.4;
/// The rules, by aihwkit's `build_config` names.
pub const RULES: [&str; 4] = ["sgd", "ttv2", "c-ttv2", "agad"];

/// The example's device: aihwkit `SoftBoundsReferenceDevice(dw_min=0.1, w_max_dtod=0.3,
/// w_min_dtod=0.3, w_min=-1, w_max=1, up_down=0, up_down_dtod=0, dw_min_dtod=0, dw_min_std=0,
/// dw_min_dtod_log_normal=True, mult_noise=False, subtract_symmetry_point=True)`.
pub fn device() -> DeviceConfig {
    let mut d = SoftBounds { mult_noise: false, subtract_symmetry_point: true, ..SoftBounds::default() };
    let p = &mut d.params;
    p.dw_min = 0.1;
    p.dw_min_dtod = 0.0;
    p.dw_min_dtod_log_normal = true;
    p.dw_min_std = 0.0;
    p.w_max = 1.0;
    p.w_min = -1.0;
    p.w_max_dtod = 0.3;
    p.w_min_dtod = 0.3;
    p.up_down = 0.0;
    p.up_down_dtod = 0.0;
    DeviceConfig::SoftBounds(d)
}

/// aihwkit's `StandardIOParameters`: 8-bit DAC and ADC, output bound 10, output noise 0.04,
/// abs-max noise management and iterative bound management (our defaults).
pub fn standard_io() -> IoConfig {
    IoConfig { inp_res: 1.0 / 254.0, out_res: 1.0 / 254.0, out_bound: 10.0, out_noise: 0.04, ..IoConfig::default() }
}

/// The tile configuration of `rule` (one of [`RULES`]), or `None` for an unknown name.
pub fn config(rule: &str) -> Option<TileConfig> {
    let mut c = match rule {
        "sgd" => TileConfig::default(),
        "ttv2" | "c-ttv2" => TileConfig::chopped_tiki_taka(),
        "agad" => TileConfig::agad(),
        _ => return None,
    };
    c.device = device();
    c.forward = standard_io();
    c.backward = standard_io();
    if c.transfer.enabled {
        let t = &mut c.transfer;
        t.fast_device = device();
        // (aihwkit turns noise and bound management of the reads off, for AGAD too.)
        t.transfer_forward = IoConfig {
            noise_management: NoiseManagement::None,
            bound_management: BoundManagement::None,
            ..standard_io()
        };
        t.transfer_every = 1.0;
        t.auto_granularity = 200.0;
        t.auto_scale = true;
        t.in_chop_random = Some(false);
        t.tail_weightening = 5.0;
        if rule == "ttv2" {
            // (aihwkit's `build_config("ttv2")` keeps the compound's default `fast_lr` 1.)
            t.in_chop_prob = 0.0;
            t.fast_lr = 1.0;
        }
    }
    Some(c)
}

/// One run: every [`EVERY`] updates (updates, mean diagonal, mean and std of the off-diagonal).
pub fn run(cfg: &TileConfig, seed: u64) -> Result<Vec<[f64; 4]>, crossbar_sim::SimError> {
    let mut rng = seeded(seed);
    let mut normal = || -> f32 { StandardNormal.sample(&mut rng) };
    let w0 = Array2::from_shape_fn((N, N), |_| 0.001 * normal());
    let mut tile = AnalogTile::new(N, N, cfg, seed)?;
    tile.set_weights(w0.view())?;
    let mut trace = Vec::new();
    for k in 1..=UPDATES {
        let x = Array2::from_shape_fn((1, N), |_| normal());
        let d = Array2::from_shape_fn((1, N), |(_, j)| ALPHA * x[[0, j]] + (1.0 - ALPHA) * normal());
        tile.update(x.view(), d.view(), LR)?;
        if k % EVERY == 0 {
            let w = tile.weights();
            let on = (0..N).map(|i| w[[i, i]] as f64).sum::<f64>() / N as f64;
            let off: Vec<f64> = w.indexed_iter().filter(|((i, j), _)| i != j).map(|(_, &v)| v as f64).collect();
            let mean = off.iter().sum::<f64>() / off.len() as f64;
            let std = (off.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / off.len() as f64).sqrt();
            trace.push([k as f64, on, mean, std]);
        }
    }
    Ok(trace)
}
