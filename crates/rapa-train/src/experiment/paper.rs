//! The paper's numbers (design §4): best test error % and train error % in brackets.

/// Table 1 rows: (row name, [(CIFAR-10 test, train), (SVHN …), (CIFAR-100 …)]).
pub const PAPER_TABLE1: [(&str, [(f64, f64); 3]); 8] = [
    ("no tiling", [(18.85, 2.37), (8.92, 1.96), (47.99, 9.11)]),
    ("perforated", [(30.79, 25.93), (13.02, 15.52), (63.44, 50.17)]),
    ("enlarged", [(17.75, 0.25), (8.79, 0.71), (46.91, 1.72)]),
    ("random-fixed", [(24.42, 3.86), (11.28, 2.25), (55.50, 23.72)]),
    ("random", [(17.67, 5.81), (7.10, 4.13), (48.10, 15.57)]),
    ("image-overlap", [(24.52, 0.99), (10.26, 3.01), (53.22, 18.53)]),
    ("image-pad", [(25.86, 6.53), (11.26, 6.06), (54.24, 28.80)]),
    ("alternate", [(21.02, 3.98), (9.22, 2.99), (52.08, 18.83)]),
];

/// A reported value: test error % and, where the paper gives it, train error %.
pub type PaperCell = (f64, Option<f64>);

/// Table 2 (CIFAR-10): pooling → [none, enlarged, random] as (test, Some(train)), then vote (5)
/// and reduced (test only).
pub const PAPER_TABLE2: [(&str, [PaperCell; 5]); 4] = [
    ("max", [(18.93, Some(0.35)), (17.57, Some(0.04)), (17.67, Some(7.06)), (16.89, None), (19.31, None)]),
    ("avg", [(24.46, Some(4.29)), (23.28, Some(0.64)), (24.32, Some(7.64)), (24.23, None), (24.51, None)]),
    ("mixed", [(18.19, Some(0.42)), (17.53, Some(0.04)), (17.37, Some(6.65)), (16.78, None), (18.93, None)]),
    ("stochastic", [(20.09, Some(15.7)), (18.39, Some(11.02)), (21.15, Some(17.32)), (18.84, None), (21.19, None)]),
];

/// Paper value of a Table 1 cell for a dataset column (0 CIFAR-10, 1 SVHN, 2 CIFAR-100).
pub fn paper_table1(row: &str, col: usize) -> Option<PaperCell> {
    PAPER_TABLE1.iter().find(|(r, _)| *r == row).and_then(|(_, v)| v.get(col)).map(|&(t, tr)| (t, Some(tr)))
}

/// Paper value of a Table 2 cell (col 0..5: none, enlarged, random, vote, reduced).
pub fn paper_table2(pool: &str, col: usize) -> Option<PaperCell> {
    PAPER_TABLE2.iter().find(|(r, _)| *r == pool).and_then(|(_, v)| v.get(col)).copied()
}
