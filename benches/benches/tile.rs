//! Tile operations on the shapes of one RAPA tile's share of a mini-batch (640 vectors):
//! forward, backward and update, float tile vs analog tile with default IO and the default
//! constant-step device (and, as `forward_analog_noise_free`, the analog forward without output
//! noise). Inputs follow `shared/bench/aihwkit_tile_bench.py`: x rows U(−1, 1)
//! scaled to max|x| = 1; d rows N(0, 1) scaled to max|d| = 1 (backward), 0.5 (update, BL 5)
//! or 3.1 (update, BL 31) with lr = 0.01 and dw_min = 0.001. Pulsed updates run with merged
//! pulses (the default) and, as `_per_pulse`, with the per-pulse reference path.
//!
//! Every call is timed on a worker thread of a rayon pool with the default number of threads,
//! as `rapa train` and `rapa bench` run the network inside their pool. A call from outside a
//! pool would also time rayon's hand-over to the pool and back (two thread wake-ups, ~5–10 µs
//! here), which training never pays.
//!
//! PCM inference tiles (`bench_inference`): programming, a read after a day, and the forward
//! pass.
//!
//! `cargo bench -p rapa-benches --bench tile`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, FloatTile, InferenceConfig, InferenceTile, MappingConfig, Tile, TileConfig};
use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use std::hint::black_box;
use std::time::{Duration, Instant};

use rayon::ThreadPool;

/// Runs `iters` calls of `f` on a worker of `pool` and returns their total time.
fn in_pool(pool: &ThreadPool, iters: u64, mut f: impl FnMut() + Send) -> Duration {
    pool.install(|| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed()
    })
}

const BATCH: usize = 640;
const SHAPES: [(usize, usize); 4] = [(75, 32), (800, 32), (800, 64), (512, 512)];
const LR: f32 = 0.01;

fn rows_scaled(mut a: Array2<f32>, target: f32) -> Array2<f32> {
    for mut r in a.rows_mut() {
        let m = r.fold(0.0f32, |m, v| m.max(v.abs()));
        if m > 0.0 {
            r.mapv_inplace(|v| v * target / m);
        }
    }
    a
}

struct Inputs {
    w: Array2<f32>,
    x: Array2<f32>,
    d_bwd: Array2<f32>,
    d5: Array2<f32>,
    d31: Array2<f32>,
}

fn inputs(n_in: usize, n_out: usize) -> Inputs {
    let mut rng = seeded(1);
    let a = 1.0 / (n_in as f32).sqrt();
    let w = Array2::from_shape_simple_fn((n_out, n_in), || rng.random_range(-a..a));
    let x = rows_scaled(Array2::from_shape_simple_fn((BATCH, n_in), || rng.random_range(-1.0..1.0)), 1.0);
    let dn = Array2::from_shape_simple_fn((BATCH, n_out), || rng.sample::<f32, _>(StandardNormal));
    Inputs { w, x, d_bwd: rows_scaled(dn.clone(), 1.0), d5: rows_scaled(dn.clone(), 0.5), d31: rows_scaled(dn, 3.1) }
}

fn bench_tiles(c: &mut Criterion) {
    let mut g = c.benchmark_group("tile");
    g.sample_size(20);
    let pool = rayon::ThreadPoolBuilder::new().build().expect("rayon pool");
    for (n_in, n_out) in SHAPES {
        let inp = inputs(n_in, n_out);
        let id = |op: &str| BenchmarkId::new(op, format!("{n_in}x{n_out}"));
        let mut float = FloatTile::from_weights(inp.w.clone());
        let mut analog = AnalogTile::new(n_out, n_in, &TileConfig::default(), 2).unwrap();
        analog.set_weights(inp.w.view()).unwrap();
        let mut per_pulse_cfg = TileConfig::default();
        per_pulse_cfg.update.merge_pulses = false;
        let mut per_pulse = AnalogTile::new(n_out, n_in, &per_pulse_cfg, 2).unwrap();
        // The default tile with write noise (marks the pulsed devices, redraws their noise), and
        // with per-update decay and diffusion (one pass each over the weights, noise redrawn).
        let mut noisy_cfg = TileConfig::default();
        noisy_cfg.dynamics.write_noise_std = 5.0;
        let mut write_noise = AnalogTile::new(n_out, n_in, &noisy_cfg, 2).unwrap();
        let mut leaky_cfg = TileConfig::default();
        leaky_cfg.dynamics.lifetime = 1e4;
        leaky_cfg.dynamics.diffusion = 1e-4;
        let mut leaky = AnalogTile::new(n_out, n_in, &leaky_cfg, 2).unwrap();
        let mut tiki_taka = AnalogTile::new(n_out, n_in, &TileConfig::tiki_taka(), 2).unwrap();
        let mut chopped = AnalogTile::new(n_out, n_in, &TileConfig::chopped_tiki_taka(), 2).unwrap();
        let mut y = Array2::zeros((BATCH, n_out));
        let mut z = Array2::zeros((BATCH, n_in));

        g.bench_function(id("forward_float"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || float.forward(black_box(inp.x.view()), y.view_mut()).unwrap()))
        });
        g.bench_function(id("forward_analog"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || analog.forward(black_box(inp.x.view()), y.view_mut()).unwrap()))
        });
        // The same forward without output noise: what the 20 480–512 000 Gaussian draws per
        // call cost (`docs/performance.md`).
        let mut quiet_cfg = TileConfig::default();
        quiet_cfg.forward.out_noise = 0.0;
        let mut quiet = AnalogTile::new(n_out, n_in, &quiet_cfg, 2).unwrap();
        quiet.set_weights(inp.w.view()).unwrap();
        g.bench_function(id("forward_analog_noise_free"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || quiet.forward(black_box(inp.x.view()), y.view_mut()).unwrap()))
        });
        g.bench_function(id("backward_float"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || float.backward(black_box(inp.d_bwd.view()), z.view_mut()).unwrap()))
        });
        g.bench_function(id("backward_analog"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || analog.backward(black_box(inp.d_bwd.view()), z.view_mut()).unwrap()))
        });
        g.bench_function(id("update_float"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || float.update(black_box(inp.x.view()), inp.d5.view(), LR).unwrap()))
        });
        // Re-set the weights now and then so that they do not drift into the bounds.
        // `_per_pulse`: the same update with merged pulses switched off (the reference path);
        // `_write_noise`, `_decay_diffusion`: with those dynamics on. `update_tiki_taka_bl31`:
        // the `tiki-taka` preset, i.e. the same pulses onto its fast device plus one transfer
        // (one column read and written to the visible device at BL ≤ 31).
        // `update_chopped_tiki_taka_bl5`: the `chopped-tiki-taka` preset, BL 5 pulses onto its
        // fast device at the auto-scaled rate, one vector at a time, each followed by a column
        // read, the buffer step and a BL-1 write (compare `update_pulsed_bl5`).
        for (name, d, which) in [
            ("update_pulsed_bl5", &inp.d5, 0),
            ("update_pulsed_bl31", &inp.d31, 0),
            ("update_pulsed_bl31_per_pulse", &inp.d31, 1),
            ("update_pulsed_bl31_write_noise", &inp.d31, 2),
            ("update_pulsed_bl31_decay_diffusion", &inp.d31, 3),
            ("update_tiki_taka_bl31", &inp.d31, 4),
            ("update_chopped_tiki_taka_bl5", &inp.d5, 5),
        ] {
            let tile = match which {
                0 => &mut analog,
                1 => &mut per_pulse,
                2 => &mut write_noise,
                3 => &mut leaky,
                4 => &mut tiki_taka,
                _ => &mut chopped,
            };
            g.bench_function(id(name), |b| {
                b.iter_custom(|iters| {
                    pool.install(|| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            tile.set_weights(inp.w.view()).unwrap();
                            let t = Instant::now();
                            tile.update(black_box(inp.x.view()), d.view(), LR).unwrap();
                            total += t.elapsed();
                        }
                        total
                    })
                })
            });
        }
    }
    g.finish();
}

/// A small tile's mini-batch update with write noise: the `reram-sb` preset (write noise
/// 56·dw_min) on the 4 × 17 tile of `rapa_examples::softmax` (10 vectors per call), as each
/// update marks the pulsed devices and redraws their noise. Times one update call on a pool
/// worker (`small_update/reram_sb_batch10/17x4`).
fn bench_small(c: &mut Criterion) {
    let mut g = c.benchmark_group("small_update");
    let pool = rayon::ThreadPoolBuilder::new().build().expect("rayon pool");
    let mut rng = seeded(3);
    let x = Array2::from_shape_simple_fn((10, 17), || rng.random_range(-1.0f32..1.0));
    let d = Array2::from_shape_simple_fn((10, 4), || 0.3 * rng.sample::<f32, _>(StandardNormal));
    let mut tile = AnalogTile::new(4, 17, &TileConfig::reram_soft_bounds(), 2).unwrap();
    tile.set_weights(Array2::zeros((4, 17)).view()).unwrap();
    g.bench_function(BenchmarkId::new("reram_sb_batch10", "17x4"), |b| {
        b.iter_custom(|n| in_pool(&pool, n, || tile.update(black_box(x.view()), d.view(), LR).unwrap()))
    });
    g.finish();
}

/// PCM inference (`InferenceTile`, default model and forward IO, mapping and digital bias off so
/// that it stores the same weights as the training tiles of `bench_tiles`; with ω = 1 these
/// random weights would drive the 800-input outputs past the ADC bound and into bound
/// management): programming a chip (programming noise, ν, the compensation readout of the
/// identity), one read a day after programming (drift, read noise, readout), and the forward
/// pass of 640 vectors (`forward_analog` plus the digital compensation factor).
fn bench_inference(c: &mut Criterion) {
    let mut g = c.benchmark_group("tile");
    g.sample_size(20);
    let pool = rayon::ThreadPoolBuilder::new().build().expect("rayon pool");
    let cfg = InferenceConfig { mapping: MappingConfig::default(), ..InferenceConfig::default() };
    for (n_in, n_out) in SHAPES {
        let inp = inputs(n_in, n_out);
        let id = |op: &str| BenchmarkId::new(op, format!("{n_in}x{n_out}"));
        let mut tile = InferenceTile::from_weights(inp.w.view(), &cfg, 2).unwrap();
        let mut y = Array2::zeros((BATCH, n_out));
        g.bench_function(id("inference_program"), |b| b.iter_custom(|n| in_pool(&pool, n, || tile.program())));
        g.bench_function(id("inference_read_1d"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || tile.drift_to(black_box(86_400.0)).unwrap()))
        });
        g.bench_function(id("forward_inference"), |b| {
            b.iter_custom(|n| in_pool(&pool, n, || tile.forward(black_box(inp.x.view()), y.view_mut()).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_tiles, bench_small, bench_inference);
criterion_main!(benches);
