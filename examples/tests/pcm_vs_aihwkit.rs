//! rapa against aihwkit 1.2 on PCM programming and drift (`rapa_examples::pcm_drift`): the same
//! 100 × 200 tile of known targets, `PCMLikeNoiseModel(g_max=25)` against rapa's default PCM
//! model, no drift compensation, 8 chips each. aihwkit's statistics were recorded with
//! `docs/results/aihwkit-compare/aihwkit_pcm.py` (CPU build of aihwkit 1.2.0; command in
//! `docs/inference.md`). For each of 20 target levels and each read (programmed, an hour, a day,
//! a year), the 800 weights of rapa and of aihwkit (8 chips × 100 devices, all independent) must
//! agree in mean (Welch, within four standard errors) and in variance (ratio below F(799, 799)'s
//! 1 − 10⁻⁴ quantile).

use rapa_examples::pcm_drift::{COLS, LEVELS, ROWS, TIMES, run, target};

/// F(799, 799)'s 1 − 10⁻⁴ quantile (scipy.stats.f.ppf(0.9999, 799, 799) = 1.3016).
const F_799: f64 = 1.30;
const CHIPS: u64 = 8;

/// Pools per-chip (mean, variance) of `ROWS` devices each into (mean, variance) of all of them.
fn pool(chips: &[(f64, f64)]) -> (f64, f64) {
    let n = ROWS as f64;
    let mean = chips.iter().map(|c| c.0).sum::<f64>() / chips.len() as f64;
    let ss: f64 = chips.iter().map(|&(m, v)| (n - 1.0) * v + n * (m - mean).powi(2)).sum();
    (mean, ss / (n * chips.len() as f64 - 1.0))
}

#[test]
fn rapa_matches_aihwkit_on_pcm_programming_and_drift() {
    let text = include_str!("../../docs/results/aihwkit-compare/pcm-aihwkit.jsonl");
    // theirs[chip][read][level] = (mean, variance)
    let theirs: Vec<Vec<Vec<(f64, f64)>>> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a recorded JSON line");
            v["reads"]
                .as_array()
                .expect("reads")
                .iter()
                .map(|r| {
                    r.as_array()
                        .expect("levels")
                        .iter()
                        .map(|p| (p[0].as_f64().expect("mean"), p[1].as_f64().expect("variance")))
                        .collect()
                })
                .collect()
        })
        .collect();
    assert_eq!(theirs.len() as u64, CHIPS);
    let ours: Vec<Vec<Vec<(f64, f64)>>> = (1..=CHIPS).map(|s| run(s).expect("runs")).collect();
    let n = (ROWS as u64 * CHIPS) as f64;
    let mut failures = Vec::new();
    for read in 0..=TIMES.len() {
        for level in 0..LEVELS {
            let a = pool(&ours.iter().map(|c| c[read][level]).collect::<Vec<_>>());
            let b = pool(&theirs.iter().map(|c| c[read][level]).collect::<Vec<_>>());
            let se = (a.1 / n + b.1 / n).sqrt();
            let line = format!(
                "target {:+.3}, read {read}: mean {:.4} vs {:.4} (SE {se:.4}), std {:.4} vs {:.4}",
                target(level * COLS / LEVELS),
                a.0,
                b.0,
                a.1.sqrt(),
                b.1.sqrt()
            );
            if (a.0 - b.0).abs() >= 4.0 * se || a.1.max(b.1) / a.1.min(b.1) >= F_799 {
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "rapa and aihwkit disagree:\n{}", failures.join("\n"));
}
