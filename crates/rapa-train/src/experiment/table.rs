//! Collecting finished runs into the paper's table format.

use std::path::Path;

use super::paper::{paper_table1, paper_table2};
use super::plan::{Post, RunSpec, TableKind};
use crate::TrainError;
use crate::data::DatasetKind;
use crate::train::read_metrics;

/// Best test error and the train error of that epoch, in %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Best (minimum over epochs) test error %.
    pub test: f64,
    /// Train error % of the epoch with the best test error.
    pub train: f64,
    /// Epochs finished.
    pub epochs: usize,
}

/// Summarizes a run directory's `metrics.jsonl`: `None` if the run has no such file yet (not
/// started, or in its first epoch) or no epoch in it.
///
/// # Errors
/// [`TrainError::Metrics`] naming the file and line of a line that is not an epoch record
/// (nothing is skipped silently); [`TrainError::Io`] if the file exists but cannot be read.
pub fn summarize(dir: &Path) -> Result<Option<RunSummary>, TrainError> {
    let path = dir.join("metrics.jsonl");
    if !path.exists() {
        return Ok(None);
    }
    let metrics = read_metrics(&path)?;
    let best = metrics.iter().min_by(|a, b| a.test_error.total_cmp(&b.test_error));
    Ok(best.map(|b| RunSummary { test: 100.0 * b.test_error, train: 100.0 * b.train_error, epochs: metrics.len() }))
}

/// The JSON value in the file at `path`.
///
/// # Errors
/// [`TrainError::Metrics`] naming the file and line if it is not JSON; [`TrainError::Io`] if it
/// cannot be read, [`TrainError::Data`] if it is larger than
/// [`MAX_TEXT_BYTES`](crate::train::MAX_TEXT_BYTES).
fn read_json(path: &Path) -> Result<serde_json::Value, TrainError> {
    let text = crate::train::read_text(path, crate::train::MAX_TEXT_BYTES)?;
    serde_json::from_str(&text).map_err(|e| TrainError::Metrics {
        path: path.to_path_buf(),
        line: e.line(),
        reason: e.to_string(),
    })
}

/// The error rate `field` of the JSON object in `path`: `None` if the file does not exist yet.
///
/// # Errors
/// [`TrainError::Metrics`] if the file is not JSON, or the value is not an error rate in
/// [0, 1] (a hand-edited file); [`TrainError::MissingField`] if it lacks a numeric `field`;
/// [`TrainError::Io`] if it exists but cannot be read.
fn read_json_field(path: &Path, field: &str) -> Result<Option<f64>, TrainError> {
    if !path.exists() {
        return Ok(None);
    }
    let x = read_json(path)?.get(field).and_then(serde_json::Value::as_f64);
    let x = x.ok_or_else(|| TrainError::MissingField { path: path.to_path_buf(), field: field.to_owned() })?;
    if !(0.0..=1.0).contains(&x) {
        return Err(TrainError::Metrics {
            path: path.to_path_buf(),
            line: 1,
            reason: format!("`{field}` must be an error rate in [0, 1], got {x}"),
        });
    }
    Ok(Some(x))
}

/// The epochs of the model that a `vote.json` or `reduce.json` at `path` evaluated (its
/// `epochs` field): `None` for a file written before that field existed.
///
/// # Errors
/// [`TrainError::Metrics`] if the file is not JSON, or its `epochs` is not a whole number;
/// [`TrainError::Io`] if it cannot be read.
pub fn post_epochs(path: &Path) -> Result<Option<usize>, TrainError> {
    match read_json(path)?.get("epochs") {
        None => Ok(None),
        Some(e) => e.as_u64().and_then(|e| usize::try_from(e).ok()).map(Some).ok_or_else(|| TrainError::Metrics {
            path: path.to_path_buf(),
            line: 1,
            reason: format!("`epochs` must be a whole number, got {e}"),
        }),
    }
}

/// One table cell: ours and the paper's (test %, train % if reported).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Our result.
    pub ours: Option<(f64, Option<f64>)>,
    /// The paper's.
    pub paper: Option<(f64, Option<f64>)>,
    /// The epochs behind our number and the epochs its run was planned for (the table's
    /// `--epochs`): for a trained run the epochs it has finished, for a vote or reduction the
    /// epochs of the model it evaluated. Fewer than planned means provisional numbers of a run
    /// still in progress (or since extended); the writers mark them. `None` when the cell has no
    /// number of ours.
    pub epochs: Option<(usize, usize)>,
}

impl Cell {
    /// Whether the cell's run has finished fewer epochs than planned.
    pub fn unfinished(&self) -> bool {
        self.epochs.is_some_and(|(done, planned)| done < planned)
    }
}

/// A collected table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableResult {
    /// Title line.
    pub title: String,
    /// Column names (each shown as ours and paper).
    pub columns: Vec<String>,
    /// Rows: name and one cell per column.
    pub rows: Vec<(String, Vec<Cell>)>,
}

fn fmt_value(v: Option<(f64, Option<f64>)>) -> String {
    match v {
        None => "–".into(),
        Some((t, Some(tr))) => format!("{t:.2} ({tr:.2})"),
        Some((t, None)) => format!("{t:.2}"),
    }
}

impl TableResult {
    /// Markdown: for every column, ours then the paper's, as "test (train)" in %. A run that
    /// has not finished its planned epochs is marked `[done/planned ep]`, and a note under the
    /// table says that such numbers are provisional.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("{}\n\n| |", self.title);
        for c in &self.columns {
            s.push_str(&format!(" {c} (ours) | {c} (paper) |"));
        }
        s.push_str("\n|---|");
        for _ in &self.columns {
            s.push_str("---:|---:|");
        }
        s.push('\n');
        for (name, cells) in &self.rows {
            s.push_str(&format!("| {name} |"));
            for c in cells {
                let mark = match c.epochs {
                    Some((done, planned)) if c.unfinished() => format!(" [{done}/{planned} ep]"),
                    _ => String::new(),
                };
                s.push_str(&format!(" {}{mark} | {} |", fmt_value(c.ours), fmt_value(c.paper)));
            }
            s.push('\n');
        }
        if self.rows.iter().any(|(_, cells)| cells.iter().any(Cell::unfinished)) {
            s.push_str(
                "\nNote: [done/planned ep] marks a run still in progress; its numbers are those of the epochs done so far.\n",
            );
        }
        s
    }

    /// CSV: row, column, ours_test, ours_train, paper_test, paper_train, ours_epochs,
    /// planned_epochs (empty when absent; the epoch columns are set for trained runs, and
    /// `ours_epochs < planned_epochs` marks a run still in progress).
    pub fn to_csv(&self) -> String {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_default();
        let n = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_default();
        let mut s = String::from("row,column,ours_test,ours_train,paper_test,paper_train,ours_epochs,planned_epochs\n");
        for (name, cells) in &self.rows {
            for (c, cell) in self.columns.iter().zip(cells) {
                s.push_str(&format!(
                    "{name},{c},{},{},{},{},{},{}\n",
                    f(cell.ours.map(|o| o.0)),
                    f(cell.ours.and_then(|o| o.1)),
                    f(cell.paper.map(|p| p.0)),
                    f(cell.paper.and_then(|p| p.1)),
                    n(cell.epochs.map(|e| e.0)),
                    n(cell.epochs.map(|e| e.1))
                ));
            }
        }
        s
    }
}

/// Collects `specs` (from [`plan`](super::plan)) under `root` into the table; runs without
/// results yet are empty cells, runs still in progress carry their epochs done and planned
/// ([`Cell::epochs`]), and the writers mark them.
///
/// # Errors
/// As [`summarize`], for a run whose results files are malformed.
pub fn collect(
    table: TableKind,
    dataset: DatasetKind,
    specs: &[RunSpec],
    root: &Path,
) -> Result<TableResult, TrainError> {
    // A trained run's cell: its best epoch, and its epochs done and planned.
    let trained = |s: &RunSpec, paper: Option<(f64, Option<f64>)>| -> Result<Cell, TrainError> {
        let r = summarize(&root.join(&s.name))?;
        Ok(Cell { ours: r.map(|r| (r.test, Some(r.train))), paper, epochs: r.map(|r| (r.epochs, s.cfg.epochs)) })
    };
    match table {
        TableKind::Table1 => {
            let col = match dataset {
                DatasetKind::Svhn => Some(1),
                DatasetKind::Cifar100 { fine: true } => Some(2),
                DatasetKind::Cifar10 => Some(0),
                _ => None,
            };
            let rows = specs
                .iter()
                .map(|s| Ok((s.row.clone(), vec![trained(s, col.and_then(|c| paper_table1(&s.row, c)))?])))
                .collect::<Result<_, TrainError>>()?;
            Ok(TableResult {
                title: format!(
                    "Table 1 — tiling schemes, max pooling, n = (16, 4, 1), {dataset}: best test error % (train error %)"
                ),
                columns: vec![dataset.to_string()],
                rows,
            })
        }
        TableKind::Table2 => {
            let columns: Vec<String> = ["none", "enlarged", "random", "vote (5)", "reduced"].map(String::from).to_vec();
            let mut rows = Vec::new();
            for pool in ["max", "avg", "mixed", "stochastic"] {
                let find = |col: &str| specs.iter().find(|s| s.row == pool && s.col == col);
                let paper = |c: usize| if dataset == DatasetKind::Cifar10 { paper_table2(pool, c) } else { None };
                let mut cells = Vec::new();
                for (c, col) in ["none", "enlarged", "random"].iter().enumerate() {
                    cells.push(match find(col) {
                        Some(s) => trained(s, paper(c))?,
                        None => Cell { ours: None, paper: paper(c), epochs: None },
                    });
                }
                let random = find("random").filter(|s| s.post == Post::VoteAndReduce);
                // A vote or reduction cell: the number, and the epochs of the model it evaluated
                // (files without that record: the random run's epochs done).
                let post = |file: &str, field: &str, c: usize| -> Result<Cell, TrainError> {
                    let Some(s) = random else { return Ok(Cell { ours: None, paper: paper(c), epochs: None }) };
                    let path = root.join(&s.name).join(file);
                    let Some(v) = read_json_field(&path, field)? else {
                        return Ok(Cell { ours: None, paper: paper(c), epochs: None });
                    };
                    let done = match post_epochs(&path)? {
                        Some(e) => Some(e),
                        None => summarize(&root.join(&s.name))?.map(|r| r.epochs),
                    };
                    Ok(Cell { ours: Some((100.0 * v, None)), paper: paper(c), epochs: done.map(|d| (d, s.cfg.epochs)) })
                };
                cells.push(post("vote.json", "vote_error", 3)?);
                cells.push(post("reduce.json", "test_error_reduced", 4)?);
                rows.push((pool.to_string(), cells));
            }
            Ok(TableResult {
                title: format!(
                    "Table 2 — pooling variants, {dataset}: best test error % (train error %); vote (5) and reduced: test error of the final random model"
                ),
                columns,
                rows,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rates_outside_zero_one_are_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("rapa-table-field-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vote.json");
        assert_eq!(read_json_field(&path, "vote_error").unwrap(), None);
        std::fs::write(&path, "{\"vote_error\": 0.25}\n").unwrap();
        assert_eq!(read_json_field(&path, "vote_error").unwrap(), Some(0.25));
        for bad in ["7", "-0.5"] {
            std::fs::write(&path, format!("{{\"vote_error\": {bad}}}\n")).unwrap();
            let e = read_json_field(&path, "vote_error").unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, TrainError::Metrics { .. }), "{msg}");
            assert!(msg.contains("vote.json") && msg.contains("vote_error") && msg.contains(bad), "{msg}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
