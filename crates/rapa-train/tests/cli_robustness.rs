//! The `rapa` binary refuses out-of-range sizes and contradictory flags instead of hanging,
//! running out of memory or silently doing something else:
//!
//! - `--threads` above 1024, `bench --batch` / `--infer-batch` above the training's batch limit
//!   (and `--infer-batch 0` named as itself);
//! - `experiment --list` honours `--only`, conflicts with `--collect`, and writes no plan when
//!   any selected run's recorded settings conflict;
//! - `experiment --collect` on a directory without any run directory is an error naming it;
//! - an `--out` that is a regular file is refused naming it, and so is a `--config` over 1 MiB.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A few images of the built-in synthetic set, on one thread.
const SMALL: [&str; 8] = ["--dataset", "synthetic", "--limit-train", "200", "--limit-test", "100", "--threads", "1"];

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rapa-robust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

/// Runs `rapa` with `args` in `dir`; returns (exit code, stdout, stderr).
fn rapa_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let result =
        Command::new(env!("CARGO_BIN_EXE_rapa")).current_dir(dir).args(args).output().expect("the rapa binary runs");
    (
        result.status.code(),
        String::from_utf8_lossy(&result.stdout).into_owned(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

/// Exit status 1, one error line, every needle in it.
fn fails(dir: &Path, args: &[&str], needles: &[&str]) {
    let (code, _, stderr) = rapa_in(dir, args);
    assert_eq!(code, Some(1), "rapa {args:?}: {stderr}");
    assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "rapa {args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "rapa {args:?}: `{n}` not in {stderr}");
    }
}

#[test]
fn thread_counts_and_bench_batches_are_bounded() {
    let dir = fresh_dir("bounds");
    // Small enough to finish quickly should a bound be missing.
    let quick = ["bench", "--images", "1", "--warmup", "0"];
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--threads", "1025"], &["threads", "1025", "1024"]),
        (&["--batch", "4097"], &["--batch", "4097", "4096"]),
        (&["--infer-batch", "5000"], &["--infer-batch", "5000", "4096"]),
        (&["--infer-batch", "0"], &["--infer-batch", "got 0"]),
        (&["--batch", "0"], &["--batch", "got 0"]),
    ];
    for (extra, needles) in cases {
        fails(&dir, &[&quick[..], extra].concat(), needles);
    }
    let (code, _, stderr) = rapa_in(&dir, &["bench", "--infer-batch", "0", "--images", "1", "--warmup", "0"]);
    assert!(code == Some(1) && !stderr.contains("setting --batch"), "{stderr}");
    fails(&dir, &["bench", "--images", "0"], &["--images"]);
    fails(&dir, &["train", "--threads", "100000", "--epochs", "1", "--out", "r"], &["threads", "100000"]);
    assert!(!dir.join("r").exists(), "a refused run wrote its directory");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn experiment_list_honours_only_and_checks_every_run_first() {
    let dir = fresh_dir("list");
    let args = |out: &str, more: &[&str]| -> Vec<String> {
        [&["experiment", "table1"][..], &SMALL, &["--epochs", "1", "--out", out], more]
            .concat()
            .into_iter()
            .map(String::from)
            .collect()
    };
    let run = |a: Vec<String>| rapa_in(&dir, &a.iter().map(String::as_str).collect::<Vec<_>>());

    // --only with --list: one command, one plan.
    let (code, stdout, stderr) = run(args("one", &["--list", "--only", "random"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("one/random/plan.toml"), "{stdout}");
    let listed: Vec<String> = std::fs::read_dir(dir.join("one"))
        .expect("one/")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
        .collect();
    assert_eq!(listed, ["random"]);

    // --list and --collect contradict each other: a usage error.
    let (code, _, stderr) = run(args("two", &["--list", "--collect"]));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--list") && stderr.contains("--collect"), "{stderr}");
    assert!(!dir.join("two").exists());

    // A later run recorded with other settings: refused before any plan is written.
    let names = rapa_train::experiment::plan(rapa_train::experiment::TableKind::Table1, &Default::default())
        .into_iter()
        .map(|s| s.name)
        .collect::<Vec<_>>();
    let (first, last) = (&names[0], names.last().expect("runs"));
    std::fs::create_dir_all(dir.join("three").join(last)).expect("run dir");
    std::fs::write(dir.join("three").join(last).join("config.toml"), "epochs = 1\nlr = 0.5\n").expect("write");
    let (code, _, stderr) = run(args("three", &["--list"]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(last.as_str()), "{stderr}");
    assert!(!dir.join("three").join(first).exists(), "a plan was written for {first} before the conflict in {last}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn collect_without_any_run_directory_is_an_error() {
    let dir = fresh_dir("collect");
    std::fs::create_dir_all(dir.join("empty")).expect("empty/");
    for out in ["missing", "empty"] {
        fails(
            &dir,
            &[&["experiment", "table1"][..], &SMALL, &["--out", out, "--collect"]].concat(),
            &["--out", out, "no run directory"],
        );
        assert!(!dir.join(out).join("table.md").exists(), "{out}: a table was written");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `--out` that is an existing regular file is refused with a typed error naming it, not
/// the bare OS error of creating a directory there, and the file is left alone.
#[test]
fn out_pointing_at_a_file_is_refused() {
    let dir = fresh_dir("out-file");
    std::fs::write(dir.join("afile"), "keep").expect("write");
    let cases: [&[&str]; 4] = [
        &["train", "--epochs", "1", "--out", "afile"],
        &["attack", "--model", "no-such-run", "--out", "afile"],
        &["similarity", "--model", "no-such-run", "--out", "afile"],
        &["reduce", "--model", "no-such-run", "--out", "afile"],
    ];
    for args in cases {
        fails(&dir, args, &["--out", "afile is a file, not a directory"]);
    }
    assert_eq!(std::fs::read_to_string(dir.join("afile")).expect("read"), "keep");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("no-such-target", dir.join("dangling")).expect("symlink");
        fails(
            &dir,
            &["train", "--epochs", "1", "--out", "dangling"],
            &["dangling is something other than a directory"],
        );
        fails(
            &dir,
            &["train", "--epochs", "1", "--out", "/dev/null"],
            &["/dev/null is something other than a directory"],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A configuration file larger than 1 MiB (or an endless one such as `/dev/zero`) is refused
/// naming it, instead of being read without bound.
#[test]
fn oversized_config_files_are_refused() {
    let dir = fresh_dir("big-config");
    let mut text = "# padding\n".repeat((1 << 20) / 10 + 1);
    text.push_str("epochs = 1\n");
    std::fs::write(dir.join("big.toml"), text).expect("write");
    fails(&dir, &["train", "--config", "big.toml", "--out", "r"], &["big.toml", "1 MiB"]);
    #[cfg(unix)]
    fails(&dir, &["train", "--config", "/dev/zero", "--out", "r"], &["/dev/zero", "1 MiB"]);
    assert!(!dir.join("r").exists(), "a refused run wrote its directory");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory written by `rapa reduce` (it holds `reduce.json` and a checkpoint with the tiled
/// run's settings and metrics) is not a training run: `--resume` and `--auto-resume` refuse it
/// before reading anything, and leave it alone.
#[test]
fn a_reduced_model_is_not_resumed() {
    let dir = fresh_dir("reduced");
    std::fs::create_dir_all(dir.join("red")).expect("mkdir");
    std::fs::write(dir.join("red/reduce.json"), "{}").expect("write");
    std::fs::write(dir.join("red/checkpoint.bin"), "stand-in").expect("write");
    for flag in ["--resume", "--auto-resume"] {
        fails(&dir, &["train", flag, "--out", "red"], &["red", "reduced model", "cannot be resumed"]);
    }
    assert_eq!(std::fs::read_to_string(dir.join("red/checkpoint.bin")).expect("read"), "stand-in");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `bench --tile-config FILE` benches the `[net.tile]` of a config file (here with the
/// mixed-precision update) and names it in the JSON line; a file without that table, or next
/// to `--device`, is refused.
#[test]
fn bench_takes_a_tile_config() {
    let dir = fresh_dir("bench-tile");
    std::fs::write(dir.join("mp.toml"), "[net.tile.mixed_precision]\nenabled = true\n").expect("write");
    std::fs::write(dir.join("float.toml"), "[net]\ninit = \"he\"\n").expect("write");
    let quick = ["bench", "--images", "20", "--warmup", "0", "--threads", "1", "--infer-batch", "10"];
    let (code, stdout, stderr) = rapa_in(&dir, &[&quick[..], &["--tile-config", "mp.toml"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(json["device"], "[net.tile] of mp.toml");
    assert!(json["train_images_per_s"].as_f64().is_some_and(|v| v > 0.0), "{stdout}");
    fails(&dir, &[&quick[..], &["--tile-config", "float.toml"]].concat(), &["--tile-config", "no [net.tile]"]);
    let (code, _, stderr) =
        rapa_in(&dir, &[&quick[..], &["--tile-config", "mp.toml", "--device", "aihwkit-default"]].concat());
    assert_eq!(code, Some(2), "clap refuses the pair: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
