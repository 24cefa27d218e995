//! Helpers shared by the integration tests.
#![allow(dead_code)]

use crossbar_sim::device::PulsedParams;
use crossbar_sim::rng::seeded;
use crossbar_sim::{BoundManagement, DeviceConfig, IoConfig, NoiseManagement, TileConfig};
use ndarray::Array2;
use rand::Rng;

/// Uniform values in [-a, a] from a seeded generator.
pub fn uniform(rows: usize, cols: usize, a: f32, seed: u64) -> Array2<f32> {
    let mut rng = seeded(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-a..=a))
}

/// Converters off, no noise, no management: the analog path reduces to exact math.
pub fn transparent_io() -> IoConfig {
    IoConfig {
        inp_res: 0.0,
        out_res: 0.0,
        out_bound: 0.0,
        out_noise: 0.0,
        noise_management: NoiseManagement::None,
        bound_management: BoundManagement::None,
        ..IoConfig::default()
    }
}

/// A tile config with the given forward IO, perfect backward, and an ideal device.
pub fn ideal_with_forward(forward: IoConfig) -> TileConfig {
    TileConfig { forward, backward: IoConfig::perfect(), device: DeviceConfig::Ideal, ..TileConfig::default() }
}

/// Runs `f` in a rayon pool of `threads` threads (for thread-count independence checks).
pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool").install(f)
}

/// A constant-step device without any variation (every pulse moves a weight by exactly ±ε) and
/// with bounds far away, so that the pulse count of a device is ΔW/ε.
pub fn exact_steps(eps: f32) -> DeviceConfig {
    DeviceConfig::ConstantStep(PulsedParams {
        dw_min: eps,
        dw_min_dtod: 0.0,
        dw_min_std: 0.0,
        up_down_dtod: 0.0,
        w_max: 100.0,
        w_min: -100.0,
        w_max_dtod: 0.0,
        w_min_dtod: 0.0,
        ..PulsedParams::default()
    })
}
