//! The runs of each table and their status on disk.

use std::path::Path;

use rapa_layers::Scheme;

use crate::TrainError;
use crate::layers::PoolKind;
use crate::net::{NetConfig, NetPreset};
use crate::train::TrainConfig;

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Tiling schemes (max pooling, n = 16, 4, 1).
    Table1,
    /// Pooling variants × {no tiling, enlarged, random (+ vote of 5, + reduced)} (CIFAR-10).
    Table2,
}

/// Work after training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// Nothing.
    None,
    /// Evaluate a majority vote of 5 and the reduction to one kernel (by norm).
    VoteAndReduce,
}

/// One training run of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Sub-directory name (unique within the table).
    pub name: String,
    /// Table row.
    pub row: String,
    /// Table column (run kind).
    pub col: String,
    /// The complete configuration.
    pub cfg: TrainConfig,
    /// Post-processing.
    pub post: Post,
}

/// The runs of `table`, all derived from `base` (dataset, epochs, lr, seed, …).
pub fn plan(table: TableKind, base: &TrainConfig) -> Vec<RunSpec> {
    let net = |preset: NetPreset, scheme: Scheme, tiles: [usize; 3], pool: PoolKind| NetConfig {
        scheme,
        tiles,
        pool,
        device: base.net.device.clone(),
        tile: base.net.tile.clone(),
        init: base.net.init,
        ..NetConfig::preset(preset)
    };
    let spec = |name: String, row: &str, col: &str, n: NetConfig, post| RunSpec {
        name,
        row: row.into(),
        col: col.into(),
        cfg: TrainConfig { net: n, ..base.clone() },
        post,
    };
    let paper = [16, 4, 1];
    match table {
        TableKind::Table1 => {
            let mut v = vec![
                spec(
                    "no-tiling".into(),
                    "no tiling",
                    "test",
                    net(NetPreset::Paper, Scheme::None, [1, 1, 1], PoolKind::Max),
                    Post::None,
                ),
                spec(
                    "perforated".into(),
                    "perforated",
                    "test",
                    net(NetPreset::Paper, Scheme::Perforated, paper, PoolKind::Max),
                    Post::None,
                ),
                spec(
                    "enlarged".into(),
                    "enlarged",
                    "test",
                    net(NetPreset::Enlarged, Scheme::None, [1, 1, 1], PoolKind::Max),
                    Post::None,
                ),
            ];
            for s in [Scheme::RandomFixed, Scheme::Random, Scheme::ImageOverlap, Scheme::ImagePad, Scheme::Alternate] {
                v.push(spec(
                    s.name().into(),
                    s.name(),
                    "test",
                    net(NetPreset::Paper, s, paper, PoolKind::Max),
                    Post::None,
                ));
            }
            v
        }
        TableKind::Table2 => {
            let mut v = Vec::new();
            for pool in [PoolKind::Max, PoolKind::Avg, PoolKind::Mixed, PoolKind::Stochastic] {
                let p = pool.name();
                v.push(spec(
                    format!("{p}-none"),
                    p,
                    "none",
                    net(NetPreset::Paper, Scheme::None, [1, 1, 1], pool),
                    Post::None,
                ));
                v.push(spec(
                    format!("{p}-enlarged"),
                    p,
                    "enlarged",
                    net(NetPreset::Enlarged, Scheme::None, [1, 1, 1], pool),
                    Post::None,
                ));
                v.push(spec(
                    format!("{p}-random"),
                    p,
                    "random",
                    net(NetPreset::Paper, Scheme::Random, paper, pool),
                    Post::VoteAndReduce,
                ));
            }
            v
        }
    }
}

/// How far a run directory has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// No checkpoint.
    Missing,
    /// A checkpoint after this many epochs, fewer than planned.
    Partial(usize),
    /// All planned epochs finished (metrics.jsonl has them).
    Done,
}

/// Status of the run in `dir` planned for `epochs` epochs, from its `metrics.jsonl` records and
/// `checkpoint.bin`.
///
/// # Errors
/// As [`summarize`](super::summarize), for a `metrics.jsonl` with a line that is not an epoch
/// record (a damaged run is reported, not counted as finished or restarted).
pub fn run_status(dir: &Path, epochs: usize) -> Result<RunStatus, TrainError> {
    let done = super::table::summarize(dir)?.map_or(0, |r| r.epochs);
    Ok(if !dir.join("checkpoint.bin").exists() {
        RunStatus::Missing
    } else if done >= epochs {
        RunStatus::Done
    } else {
        RunStatus::Partial(done)
    })
}

/// A self-contained `rapa train` command for `spec` writing into `dir` (resumes a partial run).
pub fn train_command(exe: &str, spec: &RunSpec, dir: &Path) -> String {
    let c = &spec.cfg;
    let n = &c.net;
    let preset = if n.channels == [54, 64, 64] { "enlarged" } else { "paper" };
    let mut cmd = format!(
        "{exe} train --dataset {} --data-dir {} --preset {preset} --scheme {} --tiles {},{},{} --pool {} --epochs {} --lr {} --batch {} --seed {} --device {} --out {} --auto-resume",
        c.dataset,
        c.data_dir.display(),
        n.scheme,
        n.tiles[0],
        n.tiles[1],
        n.tiles[2],
        n.pool,
        c.epochs,
        c.lr,
        c.batch,
        c.seed,
        n.device,
        dir.display()
    );
    if let Some(l) = c.limit_train {
        cmd.push_str(&format!(" --limit-train {l}"));
    }
    if let Some(l) = c.limit_test {
        cmd.push_str(&format!(" --limit-test {l}"));
    }
    cmd
}
