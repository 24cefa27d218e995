//! rapa against aihwkit 1.2 on aihwkit's correlation-detection example
//! (`rapa_examples::correlation`): the same four rules, devices and periphery, 40 seeds each.
//! aihwkit's traces were recorded with `docs/results/aihwkit-compare/aihwkit_corr.py` (CPU build of
//! aihwkit 1.2.0; command in `docs/devices.md`). The seeds of the two simulators differ, so the
//! test compares distributions: for each rule the mean over seeds of the diagonal weight (after
//! 3 000 and 5 000 updates) and of the off-diagonal spread (after 5 000) must agree
//! ([`common::agree`]: Welch within four standard errors, variances within the F test's bound).

use rapa_examples::correlation::{EVERY, config, run};

const SEEDS: u64 = 40;

mod common;

/// F(39, 39)'s 1 − 10⁻⁴ quantile (scipy.stats.f.ppf(0.9999, 39, 39) = 3.437).
const F_39: f64 = 3.44;

/// Per rule, the runs' traces: `[updates, diagonal, off mean, off std]` every EVERY updates.
fn aihwkit() -> Vec<(String, Vec<Vec<[f64; 4]>>)> {
    let mut out: Vec<(String, Vec<Vec<[f64; 4]>>)> = Vec::new();
    for v in common::json_lines(include_str!("../../docs/results/aihwkit-compare/correlation-aihwkit.jsonl")) {
        let algo = v["algo"].as_str().expect("algo").to_string();
        let trace: Vec<[f64; 4]> = v["trace"]
            .as_array()
            .expect("trace")
            .iter()
            .map(|p| {
                let p: Vec<f64> = p.as_array().expect("point").iter().map(|x| x.as_f64().expect("number")).collect();
                [p[0], p[1], p[2], p[3]]
            })
            .collect();
        match out.iter_mut().find(|(a, _)| *a == algo) {
            Some((_, runs)) => runs.push(trace),
            None => out.push((algo, vec![trace])),
        }
    }
    out
}

#[test]
fn rapa_matches_aihwkit_on_correlation_detection() {
    let reference = aihwkit();
    assert_eq!(reference.len(), 4, "sgd, ttv2, c-ttv2, agad recorded");
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (rule, theirs) in &reference {
        assert_eq!(theirs.len() as u64, SEEDS);
        let cfg = config(rule).expect("a known rule");
        let ours: Vec<Vec<[f64; 4]>> = (1..=SEEDS).map(|s| run(&cfg, s).expect("runs")).collect();
        // (point index, column, what)
        let checks = [
            (3000 / EVERY - 1, 1, "diagonal @3000"),
            (5000 / EVERY - 1, 1, "diagonal @5000"),
            (5000 / EVERY - 1, 3, "off-diagonal std @5000"),
        ];
        for (k, col, what) in checks {
            let updates = ((k + 1) * EVERY) as f64;
            assert!(
                ours.iter().chain(theirs).all(|t| t[k][0] == updates),
                "{what}: point {k} is not {updates} updates"
            );
            let a: Vec<f64> = ours.iter().map(|t| t[k][col]).collect();
            let b: Vec<f64> = theirs.iter().map(|t| t[k][col]).collect();
            // (Off-diagonal weights a rule never wrote keep their 0.001·ξ start: by value.)
            let (ok, line) = common::agree(&a, &b, F_39, 1e-3);
            report.push(format!("{rule:6} {what:24} {line}"));
            if !ok {
                failures.push(report[report.len() - 1].clone());
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "rapa and aihwkit disagree:\n{}", failures.join("\n"));
}
