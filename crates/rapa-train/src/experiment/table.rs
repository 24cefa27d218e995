//! Collecting finished runs into the paper's table format.

use std::path::Path;

use super::paper::{paper_table1, paper_table2};
use super::plan::{Post, RunSpec, TableKind};
use crate::data::DatasetKind;
use crate::train::EpochMetrics;

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

/// Reads a run directory's `metrics.jsonl` (None if absent or empty).
pub fn summarize(dir: &Path) -> Option<RunSummary> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).ok()?;
    let metrics: Vec<EpochMetrics> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let best = metrics.iter().min_by(|a, b| a.test_error.total_cmp(&b.test_error))?;
    Some(RunSummary { test: 100.0 * best.test_error, train: 100.0 * best.train_error, epochs: metrics.len() })
}

fn read_json_field(path: &Path, field: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.get(field)?.as_f64()
}

/// One table cell: ours and the paper's (test %, train % if reported).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Our result.
    pub ours: Option<(f64, Option<f64>)>,
    /// The paper's.
    pub paper: Option<(f64, Option<f64>)>,
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
    /// Markdown: for every column, ours then the paper's, as "test (train)" in %.
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
                s.push_str(&format!(" {} | {} |", fmt_value(c.ours), fmt_value(c.paper)));
            }
            s.push('\n');
        }
        s
    }

    /// CSV: row, column, ours_test, ours_train, paper_test, paper_train (empty when absent).
    pub fn to_csv(&self) -> String {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_default();
        let mut s = String::from("row,column,ours_test,ours_train,paper_test,paper_train\n");
        for (name, cells) in &self.rows {
            for (c, cell) in self.columns.iter().zip(cells) {
                s.push_str(&format!(
                    "{name},{c},{},{},{},{}\n",
                    f(cell.ours.map(|o| o.0)),
                    f(cell.ours.and_then(|o| o.1)),
                    f(cell.paper.map(|p| p.0)),
                    f(cell.paper.and_then(|p| p.1))
                ));
            }
        }
        s
    }
}

/// Collects `specs` (from [`plan`](super::plan)) finished under `root` into the table.
pub fn collect(table: TableKind, dataset: DatasetKind, specs: &[RunSpec], root: &Path) -> TableResult {
    let ours = |s: &RunSpec| summarize(&root.join(&s.name)).map(|r| (r.test, Some(r.train)));
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
                .map(|s| {
                    (s.row.clone(), vec![Cell { ours: ours(s), paper: col.and_then(|c| paper_table1(&s.row, c)) }])
                })
                .collect();
            TableResult {
                title: format!(
                    "Table 1 — tiling schemes, max pooling, n = (16, 4, 1), {dataset}: best test error % (train error %)"
                ),
                columns: vec![dataset.to_string()],
                rows,
            }
        }
        TableKind::Table2 => {
            let columns: Vec<String> = ["none", "enlarged", "random", "vote (5)", "reduced"].map(String::from).to_vec();
            let mut rows = Vec::new();
            for pool in ["max", "avg", "mixed", "stochastic"] {
                let find = |col: &str| specs.iter().find(|s| s.row == pool && s.col == col);
                let paper = |c: usize| if dataset == DatasetKind::Cifar10 { paper_table2(pool, c) } else { None };
                let mut cells: Vec<Cell> = ["none", "enlarged", "random"]
                    .iter()
                    .enumerate()
                    .map(|(c, col)| Cell { ours: find(col).and_then(ours), paper: paper(c) })
                    .collect();
                let random_dir = find("random").filter(|s| s.post == Post::VoteAndReduce).map(|s| root.join(&s.name));
                let vote = random_dir
                    .as_ref()
                    .and_then(|d| read_json_field(&d.join("vote.json"), "vote_error"))
                    .map(|v| (100.0 * v, None));
                let red = random_dir
                    .as_ref()
                    .and_then(|d| read_json_field(&d.join("reduce.json"), "test_error_reduced"))
                    .map(|v| (100.0 * v, None));
                cells.push(Cell { ours: vote, paper: paper(3) });
                cells.push(Cell { ours: red, paper: paper(4) });
                rows.push((pool.to_string(), cells));
            }
            TableResult {
                title: format!("Table 2 — pooling variants, {dataset}: best test error % (train error %)"),
                columns,
                rows,
            }
        }
    }
}
