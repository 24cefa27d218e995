//! rapa against aihwkit 1.2 on whole training runs: the softmax regression of
//! `rapa_examples::softmax` (the same data bit for bit; 5 epochs of analog forward passes and
//! pulsed updates on one 4 × 17 tile) under every analog preset of rapa and its aihwkit
//! counterpart ([`RULES`]), 24 tile seeds each. aihwkit's results
//! were recorded with `docs/results/aihwkit-compare/aihwkit_softmax.py` (CPU build of aihwkit
//! 1.2.0; command in `docs/devices.md`). For each rule the test error and the mean |W| over
//! seeds must agree with aihwkit's ([`common::agree`]: Welch within four standard errors,
//! variances within the F test's bound) — including the chopped rules' poor results at these
//! settings (about 50 % error with |W| ≈ 0.03), which are the rules', not rapa's.

use rapa_examples::softmax::{Problem, RULES, config, train};

mod common;

const SEEDS: u64 = 24;

/// F(23, 23)'s 1 − 10⁻⁴ quantile (scipy.stats.f.ppf(0.9999, 23, 23) = 5.198).
const F_23: f64 = 5.2;

#[test]
fn rapa_matches_aihwkit_on_softmax_regression() {
    let recorded = common::json_lines(include_str!("../../docs/results/aihwkit-compare/softmax-aihwkit.jsonl"));
    let problem = Problem::new(4);
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for rule in RULES {
        let theirs: Vec<&serde_json::Value> = recorded.iter().filter(|v| v["rule"] == rule).collect();
        assert_eq!(theirs.len() as u64, SEEDS, "{rule}: aihwkit runs recorded");
        let cfg = config(rule).expect("a known rule");
        let ours: Vec<(f64, f64)> = (1..=SEEDS).map(|s| train(&problem, &cfg, s).expect("trains")).collect();
        for (what, key) in [("test error", "test_error"), ("mean |W|", "mean_abs_w")] {
            let a: Vec<f64> = ours.iter().map(|o| if key == "test_error" { o.0 } else { o.1 }).collect();
            let b: Vec<f64> = theirs.iter().map(|v| v[key].as_f64().expect("number")).collect();
            let (ok, line) = common::agree(&a, &b, F_23, 1e-3);
            report.push(format!("{rule:10} {what:10} {line}"));
            if !ok {
                failures.push(report[report.len() - 1].clone());
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "rapa and aihwkit disagree:\n{}", failures.join("\n"));
}
