//! The softmax regression of `rapa_examples::softmax` (four Gaussian classes, 5 epochs of SGD
//! at lr 0.01 on one 4 × 17 tile) under aihwkit's training rules — plain pulsed SGD, Tiki-Taka,
//! c-TTv2 with and without its choppers, AGAD — on a data set that
//! `docs/results/aihwkit-compare/aihwkit_softmax.py` reproduces bit for bit for aihwkit.
//! Prints one JSON line per rule and tile seed (test error, mean |W|), then the mean over seeds
//! (left out with `--json`, which prints the JSON lines only).
//!
//! ```text
//! cargo run --release -p rapa-examples --example softmax_rules -- [RULES] [SEEDS] [DATA_SEED] [--json]
//! cargo run --release -p rapa-examples --example softmax_rules -- sgd,c-ttv2 1,2,3,4
//! ```

use std::process::ExitCode;

use rapa_examples::softmax::{Problem, RULES, config, train};

fn main() -> ExitCode {
    let json_only = std::env::args().any(|a| a == "--json");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--json").collect();
    let rules: Vec<String> = args
        .first()
        .map_or_else(|| RULES.iter().map(|r| r.to_string()).collect(), |a| a.split(',').map(String::from).collect());
    let seeds: Result<Vec<u64>, _> =
        args.get(1).map_or("1,2,3".into(), String::clone).split(',').map(str::parse).collect();
    let data_seed: Result<u64, _> = args.get(2).map_or(Ok(4), |s| s.parse());
    let (Ok(seeds), Ok(data_seed)) = (seeds, data_seed) else {
        eprintln!("error: SEEDS must be a comma-separated list of integers and DATA_SEED an integer");
        return ExitCode::FAILURE;
    };
    let problem = Problem::new(data_seed);
    let mut summary = Vec::new();
    for rule in &rules {
        let Some(cfg) = config(rule) else {
            eprintln!("error: unknown rule `{rule}` (known: {})", RULES.join(", "));
            return ExitCode::FAILURE;
        };
        let (mut err, mut w) = (0.0, 0.0);
        for &seed in &seeds {
            match train(&problem, &cfg, seed) {
                Ok((e, a)) => {
                    println!("{{\"rule\": \"{rule}\", \"seed\": {seed}, \"test_error\": {e}, \"mean_abs_w\": {a:.6}}}");
                    err += e / seeds.len() as f64;
                    w += a / seeds.len() as f64;
                }
                Err(e) => {
                    eprintln!("error: rule {rule}, seed {seed}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        summary.push((rule.clone(), err, w));
    }
    if !json_only {
        println!("\nmean over {} tile seeds (data seed {data_seed}):", seeds.len());
        println!("{:<11} {:>11} {:>8}", "rule", "test error", "mean |W|");
        for (rule, e, w) in summary {
            println!("{rule:<11} {:>10.2}% {w:>8.3}", 100.0 * e);
        }
    }
    ExitCode::SUCCESS
}
