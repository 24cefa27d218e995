//! aihwkit's example 26 (`examples/26_correlation_detection.py`): can a training rule pick a
//! weak correlation out of noise on a realistic device?
//!
//! The problem, devices, periphery and rules are in [`rapa_examples::correlation`]: aihwkit's
//! example soft-bounds devices with a reference, its `StandardIOParameters`, and its
//! `build_config` rules with the example's changes:
//!
//! - `sgd`: plain pulsed SGD on one device per weight (BL 31 with update management);
//! - `ttv2`: the chopped rule with its choppers off (buffered Tiki-Taka, BL 5 onto A at
//!   `fast_lr` 1, the others at 0.1);
//! - `c-ttv2`: chopped Tiki-Taka (input choppers flip every 10 reads of a column);
//! - `agad`: the dynamic rule (reads against the previous chopper period's mean).
//!
//! It prints, every 500 of the 5 000 updates, the mean diagonal weight and the mean and standard deviation
//! of the off-diagonal ones, one JSON line per rule and seed (the format of the aihwkit script
//! that `docs/devices.md` compares with), then the mean over seeds at the end (left out with
//! `--json`, which prints the JSON lines only):
//!
//! ```text
//! cargo run --release -p rapa-examples --example correlation_detection -- [RULES] [SEEDS] [--json]
//! cargo run --release -p rapa-examples --example correlation_detection -- sgd,ttv2,c-ttv2,agad 1,2,3,4,5
//! ```

use std::process::ExitCode;

use rapa_examples::correlation::{RULES, UPDATES, config, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--json").collect();
    let json_only = std::env::args().any(|a| a == "--json");
    let rules: Vec<String> = args
        .first()
        .map_or_else(|| RULES.iter().map(|r| r.to_string()).collect(), |a| a.split(',').map(String::from).collect());
    let seeds: Result<Vec<u64>, _> =
        args.get(1).map_or("1,2,3".into(), String::clone).split(',').map(str::parse).collect();
    let Ok(seeds) = seeds else {
        eprintln!("error: SEEDS must be a comma-separated list of integers, got `{}`", args[1]);
        return ExitCode::FAILURE;
    };
    let mut summary = Vec::new();
    for rule in &rules {
        let Some(cfg) = config(rule) else {
            eprintln!("error: unknown rule `{rule}` (known: {})", RULES.join(", "));
            return ExitCode::FAILURE;
        };
        let mut last = [0.0f64; 3];
        for &seed in &seeds {
            let trace = match run(&cfg, seed) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: rule {rule}, seed {seed}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let rows: Vec<String> =
                trace.iter().map(|r| format!("[{}, {:.6}, {:.6}, {:.6}]", r[0], r[1], r[2], r[3])).collect();
            println!("{{\"algo\": \"{rule}\", \"seed\": {seed}, \"trace\": [{}]}}", rows.join(", "));
            let end = trace[trace.len() - 1];
            for (l, v) in last.iter_mut().zip(&end[1..]) {
                *l += v / seeds.len() as f64;
            }
        }
        summary.push((rule.clone(), last));
    }
    if !json_only {
        println!("\nafter {UPDATES} updates, mean over {} seeds:", seeds.len());
        println!("{:<8} {:>10} {:>10} {:>10}", "rule", "diagonal", "off mean", "off std");
        for (rule, [on, mean, std]) in summary {
            println!("{rule:<8} {on:>10.3} {mean:>10.3} {std:>10.3}");
        }
    }
    ExitCode::SUCCESS
}
