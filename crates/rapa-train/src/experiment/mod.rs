//! Experiments that reproduce the paper's tables: the runs of each table, their status on disk
//! (resumable), the `rapa train` command of each run (for job arrays), and the table writer
//! with the paper's numbers beside ours.

mod paper;
mod plan;
mod table;

pub use paper::{PAPER_TABLE1, PAPER_TABLE2, PaperCell, paper_table1, paper_table2};
pub use plan::{
    PLAN_FILE, Post, RunSpec, RunStatus, TableKind, check_settings, first_difference, plan, require_same, run_status,
    train_command, write_plan,
};
pub use table::{Cell, RunSummary, TableResult, collect, post_epochs, summarize};
