//! `rapa experiment table1|table2`: every run of a table in its own resumable sub-directory.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use rapa_train::TrainError;
use rapa_train::experiment::{
    Post, RunStatus, TableKind, check_settings, collect, plan, post_epochs, require_same, run_status, summarize,
    train_command, write_plan,
};
use rapa_train::net::Network;
use rapa_train::runtime::compute_pool;
use rapa_train::train::{TrainConfig, Trainer, evaluate, keep_spread, read_checkpoint, write_atomic};

use crate::{RunArgs, load_data, run_training};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    /// Tiling schemes (max pooling, n = 16, 4, 1): no tiling, perforated, enlarged, random-fixed, random, image-overlap, image-pad, alternate
    Table1,
    /// Pooling (max, avg, mixed, stochastic) × {no tiling, enlarged, random, vote of 5, reduced}
    Table2,
}

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// Which table
    #[arg(value_enum)]
    table: Which,
    #[command(flatten)]
    run: RunArgs,
    /// Output directory [default: `runs/TABLE-DATASET`]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write each run's settings to OUT/RUN/plan.toml and print one self-contained `rapa train --config OUT/RUN/plan.toml --out OUT/RUN --auto-resume` command per run (for a Slurm job array or GNU parallel), then exit
    #[arg(long, conflicts_with = "collect")]
    list: bool,
    /// Run only this row (run name, e.g. random, image-pad, max-random); with --list, list and plan only it
    #[arg(long)]
    only: Option<String>,
    /// Train nothing: assemble table.md / table.csv from the run directories (finished Table 2 `*-random` runs get their vote of 5 and reduction first); an error when OUT holds none of them
    #[arg(long)]
    collect: bool,
}

pub fn run(a: ExperimentArgs) -> Result<(), TrainError> {
    let base = a.run.base_config()?;
    let (kind, tname) = match a.table {
        Which::Table1 => (TableKind::Table1, "table1"),
        Which::Table2 => (TableKind::Table2, "table2"),
    };
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{tname}-{}", base.dataset)));
    crate::check_out_dir(&out)?;
    let specs = plan(kind, &base);
    // Refused here, before --list writes plans whose every job would fail.
    for s in &specs {
        s.cfg.validate()?;
    }
    if let Some(only) = &a.only
        && !specs.iter().any(|s| &s.name == only)
    {
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        return Err(TrainError::Config {
            field: "--only".into(),
            reason: format!("no run `{only}` in {tname}; runs: {}", names.join(", ")),
        });
    }
    let selected: Vec<_> = specs.iter().filter(|s| a.only.as_ref().is_none_or(|o| *o == s.name)).collect();
    // A run started with other settings would silently mix two experiments in one table. Every
    // selected run is checked before anything is written or trained, so that a conflict in a
    // later run leaves no plans or runs of the earlier ones behind.
    for s in &selected {
        check_settings(&out.join(&s.name), &s.cfg)?;
    }
    if a.list {
        let exe = std::env::args().next().unwrap_or_else(|| "rapa".into());
        for s in &selected {
            let dir = out.join(&s.name);
            write_plan(s, &dir)?;
            println!("{}", train_command(&exe, &dir));
        }
        return Ok(());
    }
    if a.collect && !selected.iter().any(|s| out.join(&s.name).is_dir()) {
        let names: Vec<&str> = selected.iter().map(|s| s.name.as_str()).collect();
        return Err(TrainError::Config {
            field: "--out".into(),
            reason: format!(
                "{} holds no run directory of {tname} ({}): nothing to collect; pass the --out the runs were trained into",
                out.display(),
                names.join(", ")
            ),
        });
    }
    for s in selected {
        let dir = out.join(&s.name);
        let status = run_status(&dir, s.cfg.epochs)?;
        if !a.collect {
            match status {
                RunStatus::Done => eprintln!("{}: finished, skipping", dir.display()),
                RunStatus::Partial(e) => {
                    eprintln!("{}: resuming after epoch {e}", dir.display());
                    let path = dir.join("checkpoint.bin");
                    let mut ck = read_checkpoint(&path)?;
                    // The checkpoint's settings are the ones that resume (config.toml was checked
                    // before the first run; this also covers a run directory that lost it, or a
                    // run another process started in the meantime).
                    require_same(&ck.config, &s.cfg, &format!("the checkpoint in {} has", dir.display()), "")?;
                    ck.config.data_dir.clone_from(&s.cfg.data_dir);
                    let data = load_data(&ck.config)?;
                    let mut trainer =
                        Trainer::resume(ck, data, Some(s.cfg.epochs)).map_err(|e| e.in_checkpoint(&path))?;
                    trainer.set_threads(s.cfg.threads);
                    run_training(trainer, &dir)?;
                }
                RunStatus::Missing => {
                    // Checked again: while earlier runs trained (hours), another process (an
                    // `--only` job, a --list command) may have started this one with other
                    // settings; its config.toml exists before its first checkpoint does.
                    check_settings(&dir, &s.cfg)?;
                    let data = load_data(&s.cfg)?;
                    run_training(Trainer::new(s.cfg.clone(), data)?, &dir)?;
                }
            }
        }
        // Finished runs get their vote and reduction here, also with --collect (runs trained
        // elsewhere from the --list commands have none yet); without --collect every run has
        // just been finished or skipped as finished.
        let finished = !a.collect || status == RunStatus::Done;
        if s.post == Post::VoteAndReduce && finished {
            post_process(&dir, s.cfg.threads, &s.cfg.data_dir)?;
        }
    }
    let table = collect(kind, base.dataset, &specs, &out)?;
    std::fs::create_dir_all(&out).map_err(|e| TrainError::io(&out, e))?;
    write_atomic(&out.join("table.md"), table.to_markdown().as_bytes())?;
    write_atomic(&out.join("table.csv"), table.to_csv().as_bytes())?;
    println!("{}", table.to_markdown());
    println!("wrote {} and {}", out.join("table.md").display(), out.join("table.csv").display());
    Ok(())
}

/// Majority vote of 5 (vote.json) and reduction by norm (reduce.json) of a finished random run,
/// with the run's own settings, its data read from `data_dir`, on `threads` threads. Both files
/// record the epochs of the model they evaluated; they are redone when the run has since been
/// extended (files written before that field existed are kept).
fn post_process(dir: &std::path::Path, threads: usize, data_dir: &std::path::Path) -> Result<(), TrainError> {
    let done = summarize(dir)?.map(|r| r.epochs);
    let current = |file: &str| -> Result<bool, TrainError> {
        let path = dir.join(file);
        Ok(path.exists() && post_epochs(&path)?.is_none_or(|e| Some(e) == done))
    };
    if current("vote.json")? && current("reduce.json")? {
        return Ok(());
    }
    let path = dir.join("checkpoint.bin");
    let ck = read_checkpoint(&path)?;
    let epochs = ck.epoch;
    let cfg = TrainConfig { threads, data_dir: data_dir.to_path_buf(), ..ck.config.clone() };
    let cfg = &cfg;
    let mut data = load_data(cfg)?;
    if let Some(n) = cfg.limit_test {
        keep_spread(&mut data.test, n);
    }
    let norm = rapa_train::data::Normalizer { mean: ck.norm_mean, std: ck.norm_std };
    let pool = compute_pool(cfg.threads, cfg.flush_denormals)?;
    pool.install(|| {
        let mut net = Network::from_state(ck.net.clone(), cfg.seed).map_err(|e| e.in_checkpoint(&path))?;
        let vote = evaluate(&mut net, &data.test, &norm, cfg.eval_batch, 5)?;
        let v = serde_json::json!({ "passes": 5, "single_error": vote.error, "vote_error": vote.vote_error, "test_images": vote.n, "epochs": epochs });
        write_atomic(&dir.join("vote.json"), format!("{v}\n").as_bytes())?;
        rapa_train::analysis::reduce_network(&mut net, rapa_train::analysis::ReduceBy::Norm, &data.train, &norm, cfg.eval_batch, cfg.seed)?;
        let red = evaluate(&mut net, &data.test, &norm, cfg.eval_batch, 1)?;
        let r = serde_json::json!({ "by": "norm", "test_error_reduced": red.error, "test_images": red.n, "epochs": epochs });
        write_atomic(&dir.join("reduce.json"), format!("{r}\n").as_bytes())?;
        eprintln!("{}: vote of 5 {:.2} %, reduced {:.2} %", dir.display(), 100.0 * vote.vote_error, 100.0 * red.error);
        Ok(())
    })
}
