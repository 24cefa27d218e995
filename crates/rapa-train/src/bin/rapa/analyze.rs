//! `rapa attack`, `rapa reduce`, `rapa similarity`, `rapa timing` and `rapa curves`.

use std::path::{Path, PathBuf};

use clap::Args;
use crossbar_sim::TimingModel;
use ndarray::Array3;
use rapa_layers::analysis::{NetworkTiming, filter_similarity, plan_tiles};
use rapa_layers::paper::paper_like_convs;
use rapa_layers::{ConvConfig, ConvGeometry, Scheme, TileKind};
use rapa_train::TrainError;
use rapa_train::analysis::plots::{bar_chart, check_y_range, filter_grid, line_plot, line_plot_in};
use rapa_train::analysis::{CurveMetric, ReduceBy, curves_csv, fgsm_curve, learning_curves, reduce_network};
use rapa_train::data::{Normalizer, Split};
use rapa_train::net::{NetConfig, NetPreset, Network};
use rapa_train::runtime::compute_pool;
use rapa_train::train::{
    Checkpoint, check_replaceable, evaluate, keep_spread, read_checkpoint, read_run_metrics, write_atomic,
    write_checkpoint,
};

use crate::load_data;

/// A trained model loaded from its run directory.
pub struct Model {
    pub dir: PathBuf,
    pub ck: Checkpoint,
    pub net: Network,
    pub norm: Normalizer,
}

impl Model {
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join("checkpoint.bin");
        let ck = read_checkpoint(&path)?;
        let net = Network::from_state(ck.net.clone(), ck.config.seed).map_err(|e| e.in_checkpoint(&path))?;
        let norm = Normalizer { mean: ck.norm_mean, std: ck.norm_std };
        Ok(Self { dir: dir.to_path_buf(), ck, net, norm })
    }

    /// The run directory's name (short axis labels).
    pub fn short_label(&self) -> String {
        self.dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// "scheme/pool n=…" for legends.
    pub fn label(&self) -> String {
        let c = &self.ck.config.net;
        format!(
            "{} {}/{} n={:?}",
            self.dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            c.scheme,
            c.pool,
            c.tiles
        )
    }

    pub fn data(&self, limit_test: Option<usize>) -> Result<Split, TrainError> {
        let mut d = load_data(&self.ck.config)?;
        if let Some(n) = limit_test.or(self.ck.config.limit_test) {
            keep_spread(&mut d.test, n);
        }
        Ok(d)
    }
}

/// A path as one CSV field: quoted (with `"` doubled) if it holds a comma, a quote or a line
/// break (RFC 4180).
pub fn csv_field(p: &Path) -> String {
    let s = p.display().to_string();
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// Runs `f` in a compute pool of `threads` threads that flush denormals as the model was
/// trained to (`ftz`: its `flush_denormals`), so that the analyses see what `rapa eval` sees.
pub fn in_pool<T>(threads: usize, ftz: bool, f: impl FnOnce() -> Result<T, TrainError> + Send) -> Result<T, TrainError>
where
    T: Send,
{
    compute_pool(threads, ftz)?.install(f)
}

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// Run directories of trained models (one curve each)
    #[arg(long, required = true, num_args = 1..)]
    model: Vec<PathBuf>,
    /// Perturbation sizes ε in pixel units, each in (0, 1], comma separated
    #[arg(
        long,
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "0.001,0.002,0.004,0.008,0.016,0.032"
    )]
    eps: Vec<f32>,
    /// Output directory for attack.csv and attack.png [default: the first model's directory]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Attack only N test images stratified by class (spread evenly within each) [default: all]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_test: Option<usize>,
    /// Compute threads, 0 = one per core
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn attack(a: AttackArgs) -> Result<(), TrainError> {
    // ε = 0 would be the clean images, with an infinite SNR that no curve can show.
    if let Some(e) = a.eps.iter().find(|e| !(e.is_finite() && **e > 0.0 && **e <= 1.0)) {
        return Err(TrainError::Config {
            field: "--eps".into(),
            reason: format!("each value must be a fraction of the pixel range in (0, 1], got {e}"),
        });
    }
    let out = a.out.clone().unwrap_or_else(|| a.model[0].clone());
    crate::check_out_dir(&out)?;
    let mut csv = String::from("model,eps,snr_db,accuracy,n\n");
    let mut series = Vec::new();
    for dir in &a.model {
        let mut m = Model::load(dir)?;
        let data = m.data(a.limit_test)?;
        let batch = m.ck.config.eval_batch;
        let curve = in_pool(a.threads, m.ck.config.flush_denormals, || {
            fgsm_curve(&mut m.net, &data.test, &m.norm, &a.eps, batch)
        })
        .map_err(|e| {
            match e {
                // A model that classifies no test image correctly: name it.
                TrainError::Config { field, reason } if field == "model" => {
                    TrainError::Config { field: "--model".into(), reason: format!("{}: {reason}", dir.display()) }
                }
                e => e,
            }
        })?;
        for p in &curve {
            csv.push_str(&format!("{},{},{:.4},{:.6},{}\n", csv_field(dir), p.eps, p.snr_db, p.accuracy, p.n));
            println!(
                "{}: eps {:.4}  SNR {:6.2} dB  accuracy of originally correct {:.4} ({} images)",
                m.label(),
                p.eps,
                p.snr_db,
                p.accuracy,
                p.n
            );
        }
        series.push((m.label(), curve.iter().map(|p| (p.snr_db, p.accuracy)).collect()));
    }
    // Only now that every model has been loaded and attacked: a failure leaves no empty --out.
    std::fs::create_dir_all(&out).map_err(|e| TrainError::io(&out, e))?;
    write_atomic(&out.join("attack.csv"), csv.as_bytes())?;
    line_plot(
        &out.join("attack.png"),
        "FGSM: accuracy of originally correct test images",
        "SNR (dB)",
        "accuracy",
        &series,
    )?;
    println!("wrote {} and {}", out.join("attack.csv").display(), out.join("attack.png").display());
    Ok(())
}

#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// Run directory of a trained (tiled) model
    #[arg(long)]
    model: PathBuf,
    /// Keep per output channel the tile with the largest filter norm (norm), or with most max-pool wins on the training set (wins); or average the tiles' filters (mean)
    #[arg(long, default_value = "norm")]
    by: ReduceBy,
    /// Output directory of the reduced model (an ordinary run directory)
    #[arg(long)]
    out: PathBuf,
    /// Count wins on N training images stratified by class (spread evenly within each) [default: all]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_train: Option<usize>,
    /// Evaluate on N test images stratified by class (spread evenly within each) [default: the run's setting]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_test: Option<usize>,
    /// Compute threads, 0 = one per core
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn reduce(a: ReduceArgs) -> Result<(), TrainError> {
    crate::check_out_dir(&a.out)?;
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    if a.out == a.model || canonical(&a.out).is_some_and(|out| Some(out) == canonical(&a.model)) {
        return Err(TrainError::Config {
            field: "--out".into(),
            reason: format!("{} is the model's own directory; the reduced model would overwrite it", a.out.display()),
        });
    }
    // A trained run (or anything but an earlier reduction) in --out would be overwritten.
    let holds = |f: &str| a.out.join(f).exists();
    if holds("metrics.jsonl") || (holds("checkpoint.bin") && !holds("reduce.json")) {
        return Err(TrainError::Config {
            field: "--out".into(),
            reason: format!(
                "{} holds a run (checkpoint.bin or metrics.jsonl) that the reduced model would overwrite; choose another --out",
                a.out.display()
            ),
        });
    }
    let mut m = Model::load(&a.model)?;
    let mut data = m.data(a.limit_test)?;
    if let Some(n) = a.limit_train {
        keep_spread(&mut data.train, n);
    }
    let batch = m.ck.config.eval_batch;
    let seed = m.ck.config.seed;
    let (before, after, used) = in_pool(a.threads, m.ck.config.flush_denormals, || {
        let before = evaluate(&mut m.net, &data.test, &m.norm, batch, 1)?;
        let used = reduce_network(&mut m.net, a.by, &data.train, &m.norm, batch, seed)?;
        let after = evaluate(&mut m.net, &data.test, &m.norm, batch, 1)?;
        Ok((before, after, used))
    })?;
    let by_layer: Vec<&str> = used.iter().map(|u| u.name()).collect();
    let mut ck = m.ck.clone();
    ck.net = m.net.state();
    ck.config.net = m.net.config().clone();
    let summary = serde_json::json!({
        "model": a.model.display().to_string(), "by": a.by.name(), "by_layer": by_layer,
        "test_error_tiled": before.error, "test_error_reduced": after.error, "test_images": after.n,
    });
    // reduce.json first: it marks the directory as a reduction's, so an interrupted run can
    // be repeated into it.
    std::fs::create_dir_all(&a.out).map_err(|e| TrainError::io(&a.out, e))?;
    write_atomic(&a.out.join("reduce.json"), format!("{summary}\n").as_bytes())?;
    write_checkpoint(&a.out.join("checkpoint.bin"), &ck)?;
    write_atomic(&a.out.join("config.toml"), ck.config.to_toml()?.as_bytes())?;
    println!(
        "{}: test error {:.2} % tiled, {:.2} % reduced by {} (conv1–3: {}; {} images); reduced model in {}",
        a.model.display(),
        100.0 * before.error,
        100.0 * after.error,
        a.by,
        by_layer.join(", "),
        after.n,
        a.out.display()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct SimilarityArgs {
    /// Run directories of trained models
    #[arg(long, required = true, num_args = 1..)]
    model: Vec<PathBuf>,
    /// Output directory for similarity.png (bar chart over models) [default: the first model's directory]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output channels shown in each model's filters_conv1.png (at least 1)
    #[arg(long, default_value_t = 10, value_parser = crate::at_least_one)]
    channels: usize,
}

pub fn similarity(a: SimilarityArgs) -> Result<(), TrainError> {
    let out = a.out.clone().unwrap_or_else(|| a.model[0].clone());
    crate::check_out_dir(&out)?;
    // Every model first: a missing or unreadable one leaves no empty --out and no half-written
    // filter grids behind.
    let models = a.model.iter().map(|dir| Model::load(dir)).collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(&out).map_err(|e| TrainError::io(&out, e))?;
    let mut bars = Vec::new();
    let mut csv = String::from("model,layer,tiles,similarity\n");
    for (dir, m) in a.model.iter().zip(&models) {
        let mut line = format!("{}:", m.label());
        for (l, conv) in m.net.convs().iter().enumerate() {
            let sim = filter_similarity(conv);
            csv.push_str(&format!(
                "{},conv{},{},{}\n",
                csv_field(dir),
                l + 1,
                conv.tiles().len(),
                sim.as_ref().map_or(String::new(), |s| format!("{:.6}", s.mean))
            ));
            match sim {
                Some(s) => {
                    line.push_str(&format!("  conv{} {:.4}", l + 1, s.mean));
                    if l == 0 {
                        bars.push((m.short_label(), s.mean));
                    }
                }
                None => line.push_str(&format!("  conv{} – (one kernel)", l + 1)),
            }
        }
        println!("{line}");
        // Rows: output channels; columns: tiles. Layer-1 filters are [3, 5, 5] RGB patches.
        let conv = &m.net.convs()[0];
        let k = conv.config().geometry.kernel;
        let rows: Vec<Vec<Array3<f32>>> = (0..a.channels.min(conv.config().out_channels))
            .map(|c| {
                (0..conv.tiles().len())
                    .map(|t| {
                        let row = conv.kernel(t).row(c).to_owned();
                        row.into_shape_with_order((3, k, k)).unwrap_or_else(|_| Array3::zeros((3, k, k)))
                    })
                    .collect()
            })
            .collect();
        let png = dir.join("filters_conv1.png");
        filter_grid(&png, &rows, 6)?;
        println!("  wrote {}", png.display());
    }
    let path = out.join("similarity.csv");
    write_atomic(&path, csv.as_bytes())?;
    println!("wrote {}", path.display());
    if !bars.is_empty() {
        let png = out.join("similarity.png");
        bar_chart(&png, "conv1 filter similarity (mean pairwise Pearson r)", "similarity", &bars)?;
        println!("wrote {}", png.display());
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct TimingArgs {
    /// Network preset: paper, enlarged or paper-128 [default: paper]
    #[arg(long)]
    preset: Option<NetPreset>,
    /// Tiles per conv layer [default: the preset's, 16,4,1 for paper]
    #[arg(long, value_delimiter = ',')]
    tiles: Option<Vec<usize>>,
    /// Pulse-train length assumed for update cycles
    #[arg(long, default_value_t = 31)]
    bl: u32,
}

fn print_network(title: &str, t: &NetworkTiming, model: &TimingModel, bl: u32) {
    println!("{title}");
    println!(
        "  {:<7} {:>8} {:>12} {:>12} {:>5} {:>12} {:>11} {:>12} {:>9}",
        "layer", "patches", "kernel", "MACs/img", "n", "cycles/tile", "fwd ns", "train ns", "speedup"
    );
    for l in &t.layers {
        let one = l.untiled();
        println!(
            "  {:<7} {:>8} {:>12} {:>12} {:>5} {:>12} {:>11.0} {:>12.0} {:>8.1}×",
            l.name,
            l.patches,
            format!("{}×{}", l.kernel_rows, l.kernel_cols),
            l.macs(),
            l.n_tiles,
            l.cycles_per_tile(),
            l.time_ns(model, false, bl),
            l.time_ns(model, true, bl),
            one.cycles_per_tile() as f64 / l.cycles_per_tile() as f64
        );
    }
    println!(
        "  network, pipelined: {} cycles/image ({:.0} ns inference, {:.0} ns training), {:.1}× faster than n = 1; sequential: {} cycles/image",
        t.pipelined_cycles(),
        t.pipelined_time_ns(model, false, bl),
        t.pipelined_time_ns(model, true, bl),
        t.speedup(),
        t.sequential_cycles()
    );
}

pub fn timing(a: TimingArgs) -> Result<(), TrainError> {
    let mut cfg = NetConfig::preset(a.preset.unwrap_or_default());
    if let Some(t) = &a.tiles {
        match t.as_slice() {
            &[x, y, z] => cfg.tiles = [x, y, z],
            _ => {
                return Err(TrainError::Config {
                    field: "--tiles".into(),
                    reason: format!("needs three counts, got {t:?}"),
                });
            }
        }
    }
    if cfg.tiles.contains(&0) {
        return Err(TrainError::Config {
            field: "--tiles".into(),
            reason: format!("each layer needs at least one tile, got {:?}", cfg.tiles),
        });
    }
    if !(1..=crossbar_sim::update_config::MAX_BL).contains(&a.bl) {
        return Err(TrainError::Config {
            field: "--bl".into(),
            reason: format!("must be in 1..={}, got {}", crossbar_sim::update_config::MAX_BL, a.bl),
        });
    }
    let model = TimingModel::default();
    let convs = paper_like_convs(cfg.channels, cfg.tiles, Scheme::Random, &TileKind::Float);
    // The same limit as `rapa train`: no more tiles than patches in a layer.
    for (l, c) in convs.iter().enumerate() {
        let patches = c.geometry.n_patches();
        if c.n_tiles > patches {
            return Err(TrainError::Config {
                field: "--tiles".into(),
                reason: format!("conv{} has {patches} patches per image, fewer than its {} tiles", l + 1, c.n_tiles),
            });
        }
    }
    let t = NetworkTiming::from_configs(&convs);
    print_network(
        &format!(
            "{} network, tiles {:?} (timing model: {} ns/pass, {} ns/pulse slot, BL {})",
            a.preset.unwrap_or_default(),
            cfg.tiles,
            model.forward_pass_ns,
            model.update_slot_ns,
            a.bl
        ),
        &t,
        &model,
        a.bl,
    );
    let budget: usize = cfg.tiles.iter().sum();
    let patches: Vec<usize> = t.layers.iter().map(|l| l.patches).collect();
    let plan = plan_tiles(&patches, budget)?;
    println!(
        "  planner, budget {budget} tiles: n = {plan:?}, {} cycles/image\n",
        patches.iter().zip(&plan).map(|(p, n)| p.div_ceil(*n)).max().unwrap_or(0)
    );

    // An AlexNet-like 5-conv stack on 224×224 images.
    let geo = |c, hw, k, s, p| ConvGeometry { in_channels: c, height: hw, width: hw, kernel: k, stride: s, pad: p };
    let layers = [
        (geo(3, 224, 11, 4, 2), 64),
        (geo(64, 27, 5, 1, 2), 192),
        (geo(192, 13, 3, 1, 1), 384),
        (geo(384, 13, 3, 1, 1), 256),
        (geo(256, 13, 3, 1, 1), 256),
    ];
    let alex_patches: Vec<usize> = layers.iter().map(|(g, _)| g.n_patches()).collect();
    let alex_budget = 32;
    let alex_plan = plan_tiles(&alex_patches, alex_budget)?;
    let alex: Vec<ConvConfig> = layers
        .iter()
        .zip(&alex_plan)
        .map(|((g, c), &n)| ConvConfig {
            geometry: *g,
            out_channels: *c,
            n_tiles: n,
            scheme: Scheme::Random,
            tile: TileKind::Float,
            init_std: 0.01,
        })
        .collect();
    print_network(
        &format!("AlexNet-like 5-conv stack on 224×224, planner with {alex_budget} tiles: n = {alex_plan:?}"),
        &NetworkTiming::from_configs(&alex),
        &model,
        a.bl,
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct CurvesArgs {
    /// Run directories (each with a metrics.jsonl; running runs work too), one curve each
    #[arg(long, required = true, num_args = 1..)]
    run: Vec<PathBuf>,
    /// Legend names, one per --run, in order [default: the run directories' names]
    #[arg(long, num_args = 1..)]
    label: Vec<String>,
    /// What to plot per epoch
    #[arg(long, value_enum, default_value = "test-error")]
    metric: CurveMetric,
    /// Output PNG; the same curves go to a CSV beside it (same name, .csv)
    #[arg(long, default_value = "curves.png")]
    out: PathBuf,
    /// Plot title [default: the metric]
    #[arg(long)]
    title: Option<String>,
    /// Lower end of the y axis [default: 0, or below if the data go lower]; points below are
    /// left out
    #[arg(long, allow_negative_numbers = true)]
    y_min: Option<f64>,
    /// Upper end of the y axis [default: the data's maximum]; points above are left out (e.g.
    /// `--y-max 40` to see the differences between runs once the first epochs are past)
    #[arg(long, allow_negative_numbers = true)]
    y_max: Option<f64>,
}

pub fn curves(a: CurvesArgs) -> Result<(), TrainError> {
    if !a.label.is_empty() && a.label.len() != a.run.len() {
        return Err(TrainError::Config {
            field: "--label".into(),
            reason: format!("needs one name per --run ({} runs), got {}", a.run.len(), a.label.len()),
        });
    }
    if !a.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Err(TrainError::Config {
            field: "--out".into(),
            reason: format!(
                "{} must end in .png (the plot; its CSV goes beside it with the extension .csv)",
                a.out.display()
            ),
        });
    }
    let csv = a.out.with_extension("csv");
    // Checked before anything is written: the PNG and the CSV replace only regular files (the
    // atomic writers' own check, reported as a problem of --out).
    for path in [&a.out, &csv] {
        check_replaceable(path).map_err(|e| TrainError::Config { field: "--out".into(), reason: e.to_string() })?;
    }
    check_y_range((a.y_min, a.y_max), "--y-min/--y-max")?;
    let mut runs = Vec::new();
    for (i, dir) in a.run.iter().enumerate() {
        let name = a.label.get(i).cloned().unwrap_or_else(|| {
            dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
        });
        runs.push((name, read_run_metrics(dir)?));
    }
    let curves = learning_curves(&runs, a.metric);
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    }
    write_atomic(&csv, curves_csv(&curves).as_bytes())?;
    let title = a.title.clone().unwrap_or_else(|| a.metric.label().to_string());
    line_plot_in(&a.out, &title, "epoch", a.metric.label(), &curves, (a.y_min, a.y_max))?;
    for (name, c) in &curves {
        match c.iter().map(|p| p.1).min_by(f64::total_cmp) {
            Some(best) => println!("{name}: {} epochs, lowest {} {best:.2}", c.len(), a.metric.label()),
            None => println!("{name}: no finished epoch yet"),
        }
    }
    println!("wrote {} and {}", a.out.display(), csv.display());
    Ok(())
}
