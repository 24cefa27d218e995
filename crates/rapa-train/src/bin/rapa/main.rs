//! The `rapa` command line: train and evaluate RAPA ConvNets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rapa_layers::Scheme;
use rapa_train::TrainError;
use rapa_train::data::{DatasetKind, InputNorm, Normalizer, Split, load, load_test, synthetic};
use rapa_train::experiment::require_same;
use rapa_train::layers::PoolKind;
use rapa_train::net::{NetConfig, NetPreset, Network};
use rapa_train::runtime::compute_pool;
use rapa_train::train::{TrainConfig, Trainer, evaluate, keep_spread, read_checkpoint};

mod analyze;
mod bench;
mod device;
mod experiment;
mod inference;

/// Train and evaluate RAPA ConvNets (Replicated Arrays with Permuted Assignment) on simulated
/// analog crossbar arrays.
#[derive(Debug, Parser)]
#[command(name = "rapa", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a network; writes config.toml, metrics.jsonl and checkpoint.bin into --out.
    Train(TrainArgs),
    /// Evaluate a trained model: test error of one pass and of a majority vote.
    Eval(EvalArgs),
    /// FGSM robustness: accuracy of the originally correct test images against SNR (CSV + PNG).
    Attack(analyze::AttackArgs),
    /// Reduce a tiled model to one kernel per layer, save it as an ordinary model, evaluate it.
    Reduce(analyze::ReduceArgs),
    /// Filter similarity per layer, layer-1 filter grids (PNG) and a bar chart over models.
    Similarity(analyze::SimilarityArgs),
    /// Analog timing per layer and network (cycles, time, speed-up vs n = 1, planner).
    Timing(analyze::TimingArgs),
    /// Reproduce a table of the paper: every run in its own resumable sub-directory.
    Experiment(experiment::ExperimentArgs),
    /// Training and inference throughput of the paper's network (one JSON line).
    Bench(bench::BenchArgs),
    /// Learning curves of runs (test/train error or loss per epoch): PNG and CSV.
    Curves(analyze::CurvesArgs),
    /// Pulse response of a device preset or configuration: weight per pulse, step per weight (PNG + CSV).
    Device(device::DeviceArgs),
    /// Analog inference on PCM: test error against the time since programming (drift, read noise, drift compensation; CSV + PNG).
    Inference(inference::InferenceArgs),
}

#[derive(Debug, Args)]
struct TrainArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Network preset: paper, enlarged (54,64,64 channels, no tiling) or paper-128 [default: paper]
    #[arg(long)]
    preset: Option<NetPreset>,
    /// Tiling scheme: none, random, random-fixed, image-overlap, image-pad, alternate, perforated [default: random]
    #[arg(long)]
    scheme: Option<Scheme>,
    /// Tiles per conv layer, e.g. 16,4,1 [default: 16,4,1]
    #[arg(long, value_delimiter = ',')]
    tiles: Option<Vec<usize>>,
    /// Pooling of the first two pools: max, avg, stochastic or mixed [default: max]
    #[arg(long)]
    pool: Option<PoolKind>,
    /// Mini-batch size [default: 10]
    #[arg(long)]
    batch: Option<usize>,
    /// Tiles: float, or an analog preset (aihwkit-default, gokmen-vlasov, idealized, reram-sb, capacitor, tiki-taka, tiki-taka-idealized, tiki-taka-reram-sb, chopped-tiki-taka, agad, perfect) [default: float]
    #[arg(long)]
    device: Option<String>,
    /// Output directory
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in --out from its checkpoint (bit-exactly); --epochs may extend it
    #[arg(long)]
    resume: bool,
    /// Resume if --out holds a checkpoint, else start (for job arrays)
    #[arg(long)]
    auto_resume: bool,
    /// Print the settings these flags give as a config file (an analog preset written out in
    /// full as [net.tile], ready to edit and pass back with --config), then exit without training
    #[arg(long, conflicts_with_all = ["resume", "auto_resume"])]
    print_config: bool,
}

/// Settings shared by `rapa train` and `rapa experiment`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Dataset: synthetic (built in), cifar10, cifar100, cifar100-coarse or svhn [default: synthetic]
    #[arg(long)]
    dataset: Option<DatasetKind>,
    /// Directory with the dataset files (CIFAR binary batches or SVHN .mat) [default: data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML file with settings (the format of a run's config.toml); flags override it
    #[arg(long)]
    config: Option<PathBuf>,
    /// Epochs [default: 8]
    #[arg(long)]
    epochs: Option<usize>,
    /// Base learning rate [default: 0.02]
    #[arg(long)]
    lr: Option<f32>,
    /// Master seed of every random draw [default: 1]
    #[arg(long)]
    seed: Option<u64>,
    /// Compute threads, 0 = one per core
    #[arg(long)]
    threads: Option<usize>,
    /// Use only N training images, stratified by class (spread evenly within each) [default: all]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_train: Option<usize>,
    /// Use only N test images, stratified by class (spread evenly within each) [default: all]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_test: Option<usize>,
    /// Input scale: standardize (per channel to mean 0, std 1) or caffe (grey levels 0–255 minus the channel mean) [default: standardize]
    #[arg(long)]
    input_norm: Option<InputNorm>,
}

impl RunArgs {
    /// The `--config` file (or the defaults) with these flags applied.
    pub(crate) fn base_config(&self) -> Result<TrainConfig, TrainError> {
        self.apply(TrainConfig::default())
    }

    /// The `--config` file (or `start` without one) with these flags applied.
    pub(crate) fn apply(&self, start: TrainConfig) -> Result<TrainConfig, TrainError> {
        let mut cfg = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p)?,
            None => start,
        };
        if let Some(d) = self.dataset {
            cfg.dataset = d;
        }
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { cfg.$f = v; } )* };
        }
        set!(epochs, lr, seed, threads, input_norm);
        if self.limit_train.is_some() {
            cfg.limit_train = self.limit_train;
        }
        if self.limit_test.is_some() {
            cfg.limit_test = self.limit_test;
        }
        Ok(cfg)
    }
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// Run directory written by `rapa train`
    #[arg(long)]
    model: PathBuf,
    /// Dataset to evaluate on [default: the run's dataset]
    #[arg(long)]
    dataset: Option<DatasetKind>,
    /// Directory with the dataset files [default: the run's data_dir]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Majority vote over K passes (fresh random assignments each)
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one)]
    vote: usize,
    /// Use only N test images stratified by class (spread evenly within each) [default: the run's setting]
    #[arg(long, value_parser = crate::at_least_one)]
    limit_test: Option<usize>,
    /// Compute threads, 0 = one per core
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Restores the default action of SIGPIPE (end the process), which the Rust runtime sets to
/// "ignore": a closed output pipe (`rapa timing | head -1`) then ends `rapa` quietly, as it does
/// other Unix tools, instead of a panic of `println!` on the write error (exit status 101).
#[cfg(unix)]
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: called first thing in `main`, before any other thread exists; setting the
    // disposition of SIGPIPE to SIG_DFL touches no memory of this program and is
    // async-signal-safe. The return value (the previous handler, or SIG_ERR for an invalid
    // signal number, which SIGPIPE is not) is not needed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Eval(a) => eval(a),
        Command::Attack(a) => analyze::attack(a),
        Command::Reduce(a) => analyze::reduce(a),
        Command::Similarity(a) => analyze::similarity(a),
        Command::Timing(a) => analyze::timing(a),
        Command::Experiment(a) => experiment::run(a),
        Command::Bench(a) => bench::bench(a),
        Command::Curves(a) => analyze::curves(a),
        Command::Device(a) => device::device(a),
        Command::Inference(a) => inference::inference(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every error's message already names its file, field or value (and the cause).
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings of `rapa train`: the `--config` file (or `start` without one) with the flags
/// applied.
pub(crate) fn build_config(a: &TrainArgs, start: TrainConfig) -> Result<TrainConfig, TrainError> {
    let mut cfg = a.run.apply(start)?;
    if let Some(p) = a.preset {
        let classes = cfg.net.classes;
        cfg.net = NetConfig { classes, ..NetConfig::preset(p) };
    }
    if let Some(s) = a.scheme {
        cfg.net.scheme = s;
        if s == Scheme::None && a.tiles.is_none() {
            cfg.net.tiles = [1, 1, 1];
        }
    }
    if let Some(t) = &a.tiles {
        match t.as_slice() {
            &[a, b, c] => cfg.net.tiles = [a, b, c],
            _ => {
                return Err(TrainError::Config {
                    field: "--tiles".into(),
                    reason: format!("needs three counts such as 16,4,1, got {t:?}"),
                });
            }
        }
    }
    if let Some(p) = a.pool {
        cfg.net.pool = p;
    }
    if let Some(d) = &a.device {
        cfg.net.device = d.clone();
        cfg.net.tile = None;
    }
    if let Some(b) = a.batch {
        cfg.batch = b;
    }
    Ok(cfg)
}

pub(crate) fn load_data(cfg: &TrainConfig) -> Result<Split, TrainError> {
    match cfg.dataset {
        DatasetKind::Synthetic => Ok(synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed)),
        ref kind => Ok(load(kind, &cfg.data_dir, cfg.seed)?),
    }
}

fn train(a: TrainArgs) -> Result<(), TrainError> {
    if a.print_config {
        let mut cfg = build_config(&a, TrainConfig::default())?;
        cfg.validate()?;
        // As a fresh run sets it from the data.
        cfg.net.classes = cfg.dataset.n_classes();
        let preset = cfg.net.tile.is_none() && cfg.net.device != "float";
        cfg.net.write_out_device()?;
        println!("# rapa train settings (`rapa train --config FILE` reads them back; flags override them)");
        if preset {
            println!("# [net.tile] is the `{}` preset written out in full", cfg.net.device);
        }
        if cfg.net.tile.is_some() {
            println!("# [net.tile] is used as it stands: `net.device` is ignored");
        }
        print!("{}", cfg.to_toml()?);
        return Ok(());
    }
    check_out_dir(&a.out)?;
    let resume = a.resume || (a.auto_resume && a.out.join("checkpoint.bin").exists());
    if resume && a.out.join("reduce.json").exists() && !a.out.join("metrics.jsonl").exists() {
        // `rapa reduce` saves its model (reduce.json, no metrics.jsonl) with the tiled run's
        // settings and metrics: training it on would mix the two networks' histories in one
        // run. (An experiment's random runs hold a reduce.json of their post-processing beside
        // their metrics.jsonl; they resume.)
        return Err(TrainError::Config {
            field: "--out".into(),
            reason: format!(
                "{} holds a reduced model (reduce.json), not a training run; it cannot be resumed",
                a.out.display()
            ),
        });
    }
    let trainer = if resume {
        let path = a.out.join("checkpoint.bin");
        let mut ck = read_checkpoint(&path)?;
        // The run keeps its settings: flags and --config may repeat them (as the commands of
        // `rapa experiment --list` do), extend --epochs, or change --threads and --data-dir,
        // which do not change the results; anything else is an error, not silently ignored.
        let wanted = build_config(&a, ck.config.clone())?;
        require_same(
            &ck.config,
            &wanted,
            &format!("the run in {} has", a.out.display()),
            "; a resumed run keeps its settings (only --epochs, --threads and --data-dir may change)",
        )?;
        ck.config.data_dir = wanted.data_dir;
        let data = load_data(&ck.config)?;
        eprintln!("resuming {} after epoch {}", a.out.display(), ck.epoch);
        let mut t = Trainer::resume(ck, data, Some(wanted.epochs)).map_err(|e| e.in_checkpoint(&path))?;
        t.set_threads(wanted.threads);
        t
    } else {
        let holds = |f: &str| a.out.join(f).exists();
        if holds("metrics.jsonl") || holds("checkpoint.bin") {
            let reason = if holds("reduce.json") && !holds("metrics.jsonl") {
                format!("{} holds a model written by rapa reduce; choose another --out", a.out.display())
            } else if holds("checkpoint.bin") {
                format!(
                    "{} holds a run (checkpoint.bin); pass --resume or --auto-resume to continue it, or choose another --out",
                    a.out.display()
                )
            } else {
                format!(
                    "{} holds the results of a run (metrics.jsonl) but no checkpoint.bin to resume from; choose another --out or move them away",
                    a.out.display()
                )
            };
            return Err(TrainError::Config { field: "--out".into(), reason });
        }
        let cfg = build_config(&a, TrainConfig::default())?;
        cfg.validate()?;
        let data = load_data(&cfg)?;
        Trainer::new(cfg, data)?
    };
    run_training(trainer, &a.out).map(|_| ())
}

/// Trains to the configured epochs with a progress bar, writing into `out`.
pub(crate) fn run_training(mut trainer: Trainer, out: &Path) -> Result<Trainer, TrainError> {
    let cfg = trainer.config().clone();
    let pool = compute_pool(cfg.threads, cfg.flush_denormals)?;
    eprintln!(
        "rapa train: {} ({} train / {} test images), channels {:?}, tiles {:?}, scheme {}, pool {}, device {}, {} epochs, {} threads -> {}",
        cfg.dataset,
        trainer.data().train.len(),
        trainer.data().test.len(),
        cfg.net.channels,
        cfg.net.tiles,
        cfg.net.scheme,
        cfg.net.pool,
        if cfg.net.inference.is_some() {
            "inference tiles, [net.inference]"
        } else if cfg.net.tile.is_some() {
            "analog, custom [net.tile]"
        } else {
            cfg.net.device.as_str()
        },
        cfg.epochs,
        pool.current_num_threads(),
        out.display()
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pool.install(|| {
        trainer.fit(
            Some(out),
            &mut |p| {
                if p.batch == 1 {
                    bar.set_length(p.batches as u64);
                    bar.set_position(0);
                    bar.set_prefix(p.epoch.to_string());
                }
                bar.set_position(p.batch as u64);
                if p.batch % 20 == 0 || p.batch == p.batches {
                    bar.set_message(format!("loss {:.3} error {:.3}", p.loss, p.error));
                }
            },
            &mut |m| {
                let line = format!(
                    "epoch {:>3}: loss {:.4}  train error {:.4}  test error {:.4}  (best {:.4})  lr {:.2e}  {:.1} s  {:.0} img/s  {} analog cycles",
                    m.epoch, m.loss, m.train_error, m.test_error, m.best_test_error, m.lr, m.seconds, m.images_per_s, m.analog_cycles
                );
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            },
        )
    })?;
    bar.finish_and_clear();
    if let Some(m) = trainer.metrics().last() {
        println!(
            "done: best test error {:.2} % (final {:.2} %, train {:.2} %), chance {:.2} %; results in {}",
            100.0 * m.best_test_error,
            100.0 * m.test_error,
            100.0 * m.train_error,
            100.0 * (1.0 - 1.0 / cfg.net.classes as f64),
            out.display()
        );
    }
    Ok(trainer)
}

fn eval(a: EvalArgs) -> Result<(), TrainError> {
    let path = a.model.join("checkpoint.bin");
    let ck = read_checkpoint(&path)?;
    let mut cfg = ck.config.clone();
    if let Some(d) = a.dataset {
        cfg.dataset = d;
    }
    if let Some(d) = a.data_dir {
        cfg.data_dir = d;
    }
    if a.limit_test.is_some() {
        cfg.limit_test = a.limit_test;
    }
    // Only the test set: a data directory without the training files will do.
    let mut test = match cfg.dataset {
        DatasetKind::Synthetic => load_data(&cfg)?.test,
        ref kind => load_test(kind, &cfg.data_dir, cfg.seed)?,
    };
    if let Some(n) = cfg.limit_test {
        keep_spread(&mut test, n);
    }
    if test.n_classes != cfg.net.classes {
        return Err(TrainError::Config {
            field: "dataset".into(),
            reason: format!("{} has {} classes, the model {}", cfg.dataset, test.n_classes, cfg.net.classes),
        });
    }
    let pool = compute_pool(a.threads, cfg.flush_denormals)?;
    let norm = Normalizer { mean: ck.norm_mean, std: ck.norm_std };
    let seed = cfg.seed;
    let result = pool.install(|| {
        let mut net = Network::from_state(ck.net, seed).map_err(|e| e.in_checkpoint(&path))?;
        evaluate(&mut net, &test, &norm, cfg.eval_batch, a.vote)
    })?;
    println!(
        "{}: {} test images, error {:.2} % (single pass), {:.2} % (majority vote of {})",
        display(&a.model),
        result.n,
        100.0 * result.error,
        100.0 * result.vote_error,
        a.vote
    );
    Ok(())
}

/// Parses a count that must be at least 1 (image limits: 0 images would give a meaningless
/// 0 % error).
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses an `--out` that exists but is not a directory (a regular file, a device, a FIFO, a
/// dangling symbolic link; a link to a directory is fine), before any work is done, instead of
/// the bare OS error of creating a directory there.
pub(crate) fn check_out_dir(out: &Path) -> Result<(), TrainError> {
    // symlink_metadata: a dangling symbolic link "does not exist" for `exists()`, and creating
    // the directory through it would fail with a bare OS error.
    match std::fs::symlink_metadata(out) {
        Ok(_) if out.is_dir() => Ok(()),
        Ok(m) => {
            let what = if m.is_file() { "a file" } else { "something other than a directory" };
            Err(TrainError::Config {
                field: "--out".into(),
                reason: format!("{} is {what}, not a directory", out.display()),
            })
        }
        Err(_) => Ok(()),
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
