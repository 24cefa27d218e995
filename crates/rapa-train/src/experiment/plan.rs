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

/// The runs of `table`, all derived from `base`: every setting of `base` (dataset, epochs, lr,
/// seed, augmentation, the network's LRN, init, device or tile configuration, learning-rate
/// scales, …) except what the table varies: the tiling scheme, the tiles per conv layer (16, 4, 1
/// for the tiled rows, 1, 1, 1 otherwise), the pooling, and the enlarged network's channels
/// (54, 64, 64; the other rows keep `base`'s).
pub fn plan(table: TableKind, base: &TrainConfig) -> Vec<RunSpec> {
    let net = |preset: NetPreset, scheme: Scheme, tiles: [usize; 3], pool: PoolKind| NetConfig {
        scheme,
        tiles,
        pool,
        channels: match preset {
            NetPreset::Enlarged => NetConfig::preset(NetPreset::Enlarged).channels,
            _ => base.net.channels,
        },
        ..base.net.clone()
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
/// `checkpoint.bin`. A run with all its epochs in `metrics.jsonl` is done even if its checkpoint
/// is gone (it is never retrained over its results).
///
/// # Errors
/// As [`summarize`](super::summarize), for a `metrics.jsonl` with a line that is not an epoch
/// record (a damaged run is reported, not counted as finished or restarted);
/// [`TrainError::Config`] for a run with some but not all epochs in `metrics.jsonl` and no
/// checkpoint to resume from (restarting it would overwrite its results).
pub fn run_status(dir: &Path, epochs: usize) -> Result<RunStatus, TrainError> {
    let done = super::table::summarize(dir)?.map_or(0, |r| r.epochs);
    let checkpoint = dir.join("checkpoint.bin");
    Ok(if done > 0 && done >= epochs {
        RunStatus::Done
    } else if !checkpoint.exists() {
        if done > 0 {
            return Err(TrainError::Config {
                field: "epochs".into(),
                reason: format!(
                    "{} has {done} of {epochs} epochs in metrics.jsonl but no checkpoint.bin to resume from; move the run away to start it again",
                    dir.display()
                ),
            });
        }
        RunStatus::Missing
    } else {
        RunStatus::Partial(done)
    })
}

/// File in a run directory holding the run's planned settings, written by [`write_plan`].
pub const PLAN_FILE: &str = "plan.toml";

/// Writes every setting of `spec` to `dir/`[`PLAN_FILE`] (atomically, creating `dir`), so that
/// [`train_command`] can train the run anywhere the directory is visible.
///
/// # Errors
/// [`TrainError::Io`] naming the file if it cannot be written.
pub fn write_plan(spec: &RunSpec, dir: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    crate::train::write_atomic(&dir.join(PLAN_FILE), spec.cfg.to_toml()?.as_bytes())
}

/// The self-contained `rapa train` command that trains the run planned in `dir` (see
/// [`write_plan`]) into `dir`, or resumes it from its checkpoint: `EXE train --config
/// DIR/plan.toml --out DIR --auto-resume`, with the paths quoted for a POSIX shell.
pub fn train_command(exe: &str, dir: &Path) -> String {
    format!(
        "{} train --config {} --out {} --auto-resume",
        shell_quote(exe),
        shell_quote(&dir.join(PLAN_FILE).to_string_lossy()),
        shell_quote(&dir.to_string_lossy())
    )
}

/// `s` as one POSIX shell word: unchanged if it holds only `A–Z a–z 0–9 _ - . / , + = : @ %`,
/// else in single quotes (with each `'` written as `'\''`).
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,+=:@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) { s.to_owned() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// Checks that the run recorded in `dir/config.toml` has the settings of `planned`, apart from
/// those that do not change its results or that the run sets itself: `epochs` as long as the
/// run was planned for at most `planned.epochs` (a run may be extended, but a longer run would
/// put epochs the table did not ask for into it), `threads`, `data_dir` (the same data may live
/// elsewhere on another machine) and `net.classes` (taken from the data). Without
/// `config.toml` the settings stored in `checkpoint.bin` are checked instead (a run whose
/// `config.toml` was lost); a run directory with neither passes (nothing was started there).
///
/// # Errors
/// [`TrainError::Config`] naming the first differing setting (dotted path as in `config.toml`),
/// its recorded and planned values and the directory; [`TrainError::Toml`] if the recorded
/// file does not parse; the errors of [`read_checkpoint`](crate::train::read_checkpoint) if
/// the checkpoint is read and cannot be.
pub fn check_settings(dir: &Path, planned: &TrainConfig) -> Result<(), TrainError> {
    let path = dir.join("config.toml");
    let checkpoint = dir.join("checkpoint.bin");
    let recorded = if path.exists() {
        TrainConfig::from_toml_file(&path)?
    } else if checkpoint.exists() {
        crate::train::read_checkpoint(&checkpoint)?.config
    } else {
        return Ok(());
    };
    if recorded.epochs > planned.epochs {
        return Err(TrainError::Config {
            field: "epochs".into(),
            reason: format!(
                "the run in {} was planned for {} epochs, the command asks for {}; use --epochs {} or another --out",
                dir.display(),
                recorded.epochs,
                planned.epochs,
                recorded.epochs
            ),
        });
    }
    require_same(
        &recorded,
        planned,
        &format!("the run in {} was started with", dir.display()),
        "; use the run's settings or another --out",
    )
}

/// [`first_difference`] as an error: `Err(`[`TrainError::Config`]`)` naming the first differing
/// setting, with the reason "`{holder}` FIELD = RECORDED, the command asks for FIELD =
/// WANTED`{hint}`".
///
/// # Errors
/// As described; [`TrainError::Internal`] if a configuration cannot be written as TOML.
pub fn require_same(recorded: &TrainConfig, wanted: &TrainConfig, holder: &str, hint: &str) -> Result<(), TrainError> {
    match first_difference(recorded, wanted)? {
        Some((field, was, now)) => {
            Err(TrainError::Config { field, reason: format!("{holder} {was}, the command asks for {now}{hint}") })
        }
        None => Ok(()),
    }
}

/// The first setting (dotted path, recorded value, wanted value) in which `recorded` and
/// `wanted` differ, ignoring `epochs`, `threads`, `data_dir` and `net.classes`; `None` if they
/// agree. An analog preset named by `net.device` and the same tile written out in full as
/// `net.tile` (`rapa train --print-config`) agree: both build the same network.
///
/// # Errors
/// [`TrainError::Internal`] if a configuration cannot be written as TOML.
pub fn first_difference(
    recorded: &TrainConfig,
    wanted: &TrainConfig,
) -> Result<Option<(String, String, String)>, TrainError> {
    let (mut recorded, mut want) = (recorded.clone(), wanted.clone());
    // Unknown presets stay as they are (and differ by name, or fail validation elsewhere).
    let _ = recorded.net.write_out_device();
    let _ = want.net.write_out_device();
    if recorded.net.tile.is_some() && want.net.tile.is_some() {
        // With a tile configuration the preset name is not used.
        want.net.device.clone_from(&recorded.net.device);
    }
    want.epochs = recorded.epochs;
    want.threads = recorded.threads;
    want.data_dir.clone_from(&recorded.data_dir);
    want.net.classes = recorded.net.classes;
    let (a, b) = (settings(&recorded.to_toml()?), settings(&want.to_toml()?));
    for (key, va) in &a {
        let vb = b.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if vb != Some(va.as_str()) {
            return Ok(Some((key.clone(), format!("{key} = {va}"), format!("{key} = {}", vb.unwrap_or("(unset)")))));
        }
    }
    Ok(b.iter()
        .find(|(k, _)| !a.iter().any(|(ka, _)| ka == k))
        .map(|(k, v)| (k.clone(), format!("{k} = (unset)"), format!("{k} = {v}"))))
}

/// The `key = value` settings of a TOML text as (dotted path, value) pairs in file order; a
/// multi-line value (an array) is joined into one line.
fn settings(toml_text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut section = String::new();
    // An open multi-line array: key, the text up to its `[`, the elements so far.
    let mut open: Option<(String, String, Vec<String>)> = None;
    for line in toml_text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some((key, head, mut items)) = open.take() {
            if line.starts_with(']') {
                // One line as an inline array is written: `[16, 4, 1]`, not `[16,4,1,]`.
                out.push((key, format!("{head}{}{line}", items.join(", "))));
            } else {
                items.push(line.trim_end_matches(',').trim_end().to_owned());
                open = Some((key, head, items));
            }
        } else if line.starts_with('[') && !line.contains('=') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
        } else if let Some((k, v)) = line.split_once(" = ") {
            let key = if section.is_empty() { k.to_owned() } else { format!("{section}.{k}") };
            if v.ends_with('[') {
                open = Some((key, v.to_owned(), Vec::new()));
            } else {
                out.push((key, v.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_arrays_read_as_inline_arrays() {
        let text = "a = 1\n[net]\ntiles = [\n    16,\n    4,\n    1,\n]\nempty = [\n]\n";
        let got = settings(text);
        assert_eq!(
            got,
            [("a".into(), "1".into()), ("net.tiles".into(), "[16, 4, 1]".into()), ("net.empty".into(), "[]".into())]
        );
    }

    #[test]
    fn differing_tiles_are_named_without_a_trailing_comma() {
        let recorded = TrainConfig::default();
        let mut wanted = recorded.clone();
        wanted.net.tiles = [3, 5, 7];
        let (field, was, now) = first_difference(&recorded, &wanted).unwrap().unwrap();
        assert_eq!(field, "net.tiles");
        assert!(!was.contains(",]") && !now.contains(",]"), "{was} / {now}");
        assert_eq!(now, "net.tiles = [3, 5, 7]");
    }
}
