//! PCM programming and drift on a 100 × 200 inference tile (`rapa_examples::pcm_drift`): per
//! chip seed one JSON line with, for the programmed weights and each read (an hour, a day, a
//! year after programming), the mean and variance of the weights of 20 target levels — the
//! format of `docs/results/aihwkit-compare/aihwkit_pcm.py`, which records the same for aihwkit.
//!
//! ```text
//! cargo run --release -p rapa-examples --example pcm_drift -- [SEEDS]
//! cargo run --release -p rapa-examples --example pcm_drift -- 1,2,3,4,5,6,7,8
//! ```

use std::process::ExitCode;

use rapa_examples::pcm_drift::run;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "1,2,3".into());
    let Ok(seeds) = arg.split(',').map(str::parse).collect::<Result<Vec<u64>, _>>() else {
        eprintln!("error: SEEDS must be a comma-separated list of integers, got `{arg}`");
        return ExitCode::FAILURE;
    };
    for seed in seeds {
        match run(seed) {
            Ok(stats) => {
                let reads: Vec<String> = stats
                    .iter()
                    .map(|r| {
                        let v: Vec<String> = r.iter().map(|(m, v)| format!("[{m:.6}, {v:.8}]")).collect();
                        format!("[{}]", v.join(", "))
                    })
                    .collect();
                println!("{{\"seed\": {seed}, \"reads\": [{}]}}", reads.join(", "));
            }
            Err(e) => {
                eprintln!("error: seed {seed}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
