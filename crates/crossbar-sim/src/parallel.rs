//! When a sweep over the rows of a tile is worth splitting over the rayon pool.

/// Sweeps of less work than this (vector × device pairs of an update, or devices of an array)
/// run on the calling thread: waking the pool would cost more than the work.
const SMALL_WORK: usize = 1 << 13;

/// The least number of rows per parallel piece of a sweep over `rows` rows that does `work`
/// units in all: every row (no split, no pool) for small work, else 1. Each row draws from its
/// own stream, so the split never changes a result.
pub(crate) fn min_rows(work: usize, rows: usize) -> usize {
    if work < SMALL_WORK { rows.max(1) } else { 1 }
}
