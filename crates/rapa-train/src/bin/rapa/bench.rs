//! `rapa bench`: training and inference throughput of the paper's network on synthetic data.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use ndarray::Array4;
use rapa_layers::Scheme;
use rapa_train::TrainError;
use rapa_train::data::{Normalizer, fill_batch, synthetic};
use rapa_train::layers::SoftmaxCrossEntropy;
use rapa_train::net::{NetConfig, Network};
use rapa_train::runtime::compute_pool;
use rapa_train::train::TrainConfig;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Tiling scheme
    #[arg(long, default_value = "random")]
    scheme: Scheme,
    /// Tiles per conv layer
    #[arg(long, value_delimiter = ',', default_value = "16,4,1")]
    tiles: Vec<usize>,
    /// Compute threads, 0 = one per core (at most 1024)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Tiles: float or an analog preset
    #[arg(long, default_value = "float")]
    device: String,
    /// A configuration file (the format of a run's config.toml) whose `[net.tile]` table, a full
    /// analog tile configuration (e.g. with `[net.tile.mixed_precision]`), replaces --device
    #[arg(long, conflicts_with = "device")]
    tile_config: Option<PathBuf>,
    /// Training mini-batch (at most 4096, as for training)
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Inference batch (at most 4096)
    #[arg(long, default_value_t = 100)]
    infer_batch: usize,
    /// Images timed for training (inference times twice as many)
    #[arg(long, default_value_t = 2000)]
    images: usize,
    /// Warm-up images before timing
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Do not flush subnormal floats to zero
    #[arg(long)]
    no_ftz: bool,
    /// Also time each layer's forward, backward and update over a second pass of training
    /// steps (table on stderr, `train_stages_us_per_image` in the JSON line)
    #[arg(long)]
    profile: bool,
}

pub fn bench(a: BenchArgs) -> Result<(), TrainError> {
    let tiles = match a.tiles.as_slice() {
        &[x, y, z] => [x, y, z],
        t => {
            return Err(TrainError::Config {
                field: "--tiles".into(),
                reason: format!("needs three counts, got {t:?}"),
            });
        }
    };
    // The training's limit on both batch sizes: the im2col buffers grow with the batch.
    let max_batch = rapa_train::train::MAX_BATCH;
    for (flag, n) in [("--batch", a.batch), ("--infer-batch", a.infer_batch)] {
        if !(1..=max_batch).contains(&n) {
            return Err(TrainError::Config {
                field: flag.into(),
                reason: format!("must be in 1..={max_batch}, got {n}"),
            });
        }
    }
    if a.images == 0 {
        return Err(TrainError::Config { field: "--images".into(), reason: "must be > 0".into() });
    }
    let most = rapa_train::train::MAX_SYNTHETIC;
    // The synthetic images held in memory for the warm-up, the timed steps and the inference batches.
    let held = a.images.checked_add(a.warmup).map(|n| n.max(a.images.saturating_mul(2)).max(a.infer_batch));
    let Some(n_data) = held.filter(|&n| n <= most) else {
        return Err(TrainError::Config {
            field: "--images".into(),
            reason: format!(
                "the images held, max(--images + --warmup, 2·--images, --infer-batch), must be at most {most} (the synthetic images are held in memory)"
            ),
        });
    };
    let (tile, device) = match &a.tile_config {
        None => (None, a.device.clone()),
        Some(path) => {
            let tile = TrainConfig::from_toml_file(path)?.net.tile.ok_or_else(|| TrainError::Config {
                field: "--tile-config".into(),
                reason: format!("{} has no [net.tile] table", path.display()),
            })?;
            (Some(tile), format!("[net.tile] of {}", path.display()))
        }
    };
    let cfg = NetConfig { tiles, scheme: a.scheme, device: a.device.clone(), tile, ..NetConfig::default() };
    // Before the data: a refused --threads is reported at once.
    let ftz = !a.no_ftz;
    let pool = compute_pool(a.threads, ftz)?;
    let data = synthetic(n_data, 10, 1).train;
    let norm = Normalizer::fit(&data);
    let (train_ips, infer_ips, stages) = pool.install(|| -> Result<Measured, TrainError> {
        let mut net = Network::new(&cfg, 1)?;
        let step = |net: &mut Network, start: usize, buf: &mut Array4<f32>| -> Result<(), TrainError> {
            let idx: Vec<usize> = (start..start + a.batch).map(|i| i % data.len()).collect();
            fill_batch(&data, &idx, &norm, None, buf);
            let labels: Vec<u16> = idx.iter().map(|&i| data.labels[i]).collect();
            let logits = net.forward(buf.view())?;
            let (_, g, _) = SoftmaxCrossEntropy::loss_grad(logits.view(), &labels);
            net.backward_for_update(g.view())?;
            net.update(1e-3, 1e-4)
        };
        let mut buf = Array4::<f32>::zeros((a.batch, 3, 32, 32));
        for s in (0..a.warmup).step_by(a.batch) {
            step(&mut net, s, &mut buf)?;
        }
        let t = Instant::now();
        let mut done = 0;
        while done < a.images {
            step(&mut net, a.warmup + done, &mut buf)?;
            done += a.batch;
        }
        let train_ips = done as f64 / t.elapsed().as_secs_f64();
        let mut stages = Vec::new();
        if a.profile {
            net.set_profiling(true);
            let t = Instant::now();
            let mut done = 0;
            while done < a.images {
                step(&mut net, a.warmup + a.images + done, &mut buf)?;
                done += a.batch;
            }
            let wall = t.elapsed();
            let times = net.stage_times().cloned().unwrap_or_default();
            net.set_profiling(false);
            let per_image = |d: std::time::Duration| d.as_secs_f64() * 1e6 / done as f64;
            for &(name, d, _) in times.stages() {
                stages.push((name.to_string(), per_image(d)));
            }
            stages.push(("other (batch, loss)".into(), per_image(wall.saturating_sub(times.total()))));
            let total = per_image(wall);
            eprintln!("{:<22} {:>10} {:>7}", "stage", "µs/image", "share");
            for (name, us) in &stages {
                eprintln!("{name:<22} {us:>10.1} {:>6.1}%", 100.0 * us / total);
            }
            eprintln!("{:<22} {total:>10.1} ({:.0} images/s while profiled)", "total", 1e6 / total);
        }
        net.set_training(false);
        let mut ibuf = Array4::<f32>::zeros((a.infer_batch, 3, 32, 32));
        let infer = |net: &mut Network, start: usize, ibuf: &mut Array4<f32>| -> Result<(), TrainError> {
            let idx: Vec<usize> = (start..start + a.infer_batch).map(|i| i % data.len()).collect();
            fill_batch(&data, &idx, &norm, None, ibuf);
            net.forward(ibuf.view()).map(|_| ())
        };
        infer(&mut net, 0, &mut ibuf)?;
        let t = Instant::now();
        let mut done = 0;
        while done < 2 * a.images {
            infer(&mut net, done, &mut ibuf)?;
            done += a.infer_batch;
        }
        Ok((train_ips, done as f64 / t.elapsed().as_secs_f64(), stages))
    })?;
    let (peak, flops) = pool.install(|| (sgemm_peak_gflops(), train_flops_per_image(a.scheme, tiles)));
    let train_gflops = train_ips * flops * 1e-9;
    let line = serde_json::json!({
        "train_images_per_s": train_ips,
        "infer_images_per_s": infer_ips,
        "train_mflop_per_image": flops * 1e-6,
        "train_gflops": train_gflops,
        "sgemm_peak_gflops": peak,
        "sgemm_kernel": crossbar_sim::linalg::kernel_name(),
        "peak_share": train_gflops / peak,
        "threads": pool.current_num_threads(),
        "scheme": a.scheme.name(),
        "tiles": tiles,
        "device": device,
        "batch": a.batch,
        "infer_batch": a.infer_batch,
        "images": a.images,
        "flush_denormals": ftz,
    });
    let mut line = line;
    if a.profile {
        let map: serde_json::Map<String, serde_json::Value> =
            stages.into_iter().map(|(k, v)| (k, serde_json::json!((v * 10.0).round() / 10.0))).collect();
        line["train_stages_us_per_image"] = serde_json::Value::Object(map);
    }
    println!("{line}");
    Ok(())
}

/// Training and inference images/s, and µs per image of each profiled stage.
type Measured = (f64, f64, Vec<(String, f64)>);

/// The machine's practical SGEMM rate on this pool: the best of 5 runs of a 1024³ product
/// through the same `sgemm` every tile uses.
fn sgemm_peak_gflops() -> f64 {
    let n = 1024;
    let a = ndarray::Array2::from_shape_fn((n, n), |(i, j)| ((i * 3 + j) % 17) as f32 * 0.1);
    let b = ndarray::Array2::from_shape_fn((n, n), |(i, j)| ((i + j * 5) % 13) as f32 * 0.1);
    let mut c = ndarray::Array2::<f32>::zeros((n, n));
    let best = (0..6)
        .map(|_| {
            let t = Instant::now();
            crossbar_sim::linalg::sgemm(1.0, a.view(), b.view(), 0.0, &mut c.view_mut());
            t.elapsed().as_secs_f64()
        })
        .skip(1)
        .fold(f64::INFINITY, f64::min);
    2.0 * (n * n * n) as f64 / best * 1e-9
}

/// FLOPs of one training image of the paper's network (multiply-adds × 2): the forward pass,
/// the weight gradients of every layer and the input gradients of every layer but conv1 (which
/// training does not compute). Tiling does not change the count.
fn train_flops_per_image(scheme: Scheme, tiles: [usize; 3]) -> f64 {
    let convs = rapa_layers::paper::paper_convs(tiles, scheme, &rapa_layers::TileKind::Float);
    let macs: Vec<f64> =
        convs.iter().map(|c| (c.geometry.n_patches() * c.geometry.patch_len() * c.out_channels) as f64).collect();
    let fc = (64.0 * 4.0 * 4.0) * 10.0;
    let forward: f64 = macs.iter().sum::<f64>() + fc;
    let input_grads = forward - macs[0];
    2.0 * (2.0 * forward + input_grads)
}
