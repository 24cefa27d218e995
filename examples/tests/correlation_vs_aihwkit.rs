//! rapa against aihwkit 1.2 on aihwkit's correlation-detection example
//! (`rapa_examples::correlation`): the same four rules, devices and periphery, 40 seeds each.
//! aihwkit's traces were recorded with `docs/results/correlation/aihwkit_corr.py` (CPU build of
//! aihwkit 1.2.0; command in `docs/devices.md`). The seeds of the two simulators differ, so the
//! test compares distributions: for each rule the mean over seeds of the diagonal weight (after
//! 3 000 and 5 000 updates) and of the off-diagonal spread (after 5 000) must agree within four
//! standard errors of their difference (Welch), the per-run spread itself within a factor that
//! the F distribution allows at 40 + 40 runs.

use rapa_examples::correlation::{EVERY, config, run};

const SEEDS: u64 = 40;

/// Per rule, the runs' traces: `[updates, diagonal, off mean, off std]` every EVERY updates.
fn aihwkit() -> Vec<(String, Vec<Vec<[f64; 4]>>)> {
    let text = include_str!("../../docs/results/correlation/aihwkit.jsonl");
    let mut out: Vec<(String, Vec<Vec<[f64; 4]>>)> = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("recorded JSON line");
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

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0))
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
            let a: Vec<f64> = ours.iter().map(|t| t[k][col]).collect();
            let b: Vec<f64> = theirs.iter().map(|t| t[k][col]).collect();
            let ((ma, va), (mb, vb)) = (mean_var(&a), mean_var(&b));
            let se = (va / a.len() as f64 + vb / b.len() as f64).sqrt();
            report.push(format!(
                "{rule:6} {what:24} rapa {ma:8.4} ± {:.4}  aihwkit {mb:8.4} ± {:.4}",
                va.sqrt(),
                vb.sqrt()
            ));
            // Spreads that are (nearly) zero in both, e.g. the untouched off-diagonal weights of
            // c-TTv2 (0.001·ξ), are compared by value: within 0.001 of each other.
            let agree = if se < 1e-4 { (ma - mb).abs() < 1e-3 } else { (ma - mb).abs() < 4.0 * se };
            // F test of the spreads at 39/39 degrees of freedom: a ratio of variances beyond
            // 3.5 has probability < 0.0002 when they are equal.
            let spread = va.max(vb) < 1e-6 || va.max(vb) / va.min(vb).max(1e-12) < 3.5;
            if !(agree && spread) {
                failures.push(report.last().cloned().unwrap_or_default());
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "rapa and aihwkit disagree:\n{}", failures.join("\n"));
}
