//! The `rapa` binary end to end:
//!
//! - `rapa experiment` on a few images of the built-in synthetic set: a finished run is skipped
//!   (its files are left byte for byte as they were), a run with fewer epochs than asked for
//!   resumes after its last epoch, and the resumed run equals one trained without the
//!   interruption;
//! - bad input (missing dataset files, malformed or out-of-range settings, an unknown run, a
//!   missing model) ends with exit status 1 and one error line naming the file, field or value,
//!   never a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A few images of the built-in synthetic set, on one thread: the data flags of every run here.
const SMALL: [&str; 8] = ["--dataset", "synthetic", "--limit-train", "200", "--limit-test", "100", "--threads", "1"];

/// Runs `rapa experiment table1` on the no-tiling row for `epochs` epochs into `out`; returns
/// its standard error (the command must succeed).
fn experiment(out: &Path, epochs: u32) -> String {
    let out_arg = out.to_str().expect("temporary paths are UTF-8 here");
    let epochs = epochs.to_string();
    let args = [&["experiment", "table1"][..], &SMALL, &["--only", "no-tiling", "--epochs", &epochs, "--out", out_arg]]
        .concat();
    let result = Command::new(env!("CARGO_BIN_EXE_rapa")).args(&args).output().expect("the rapa binary runs");
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "rapa {args:?} failed: {stderr}");
    stderr
}

/// The fields of each `metrics.jsonl` line that do not depend on wall time.
fn metrics(run: &Path) -> Vec<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            ["epoch", "train_error", "test_error", "loss", "lr", "analog_cycles"].iter().map(|k| v[k].clone()).collect()
        })
        .collect()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rapa-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn experiment_skips_finished_runs_and_resumes_partial_ones() {
    let out = fresh_dir("resume");
    let run = out.join("no-tiling");
    let stderr = experiment(&out, 1);
    assert!(!stderr.contains("skipping") && !stderr.contains("resuming"), "a new run: {stderr}");
    assert_eq!(metrics(&run).len(), 1);

    // Finished: skipped, and nothing in the run directory is rewritten.
    let files = ["metrics.jsonl", "checkpoint.bin", "config.toml"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(run.join(f)).expect("run file")).collect();
    let stderr = experiment(&out, 1);
    assert!(stderr.contains("finished, skipping"), "{stderr}");
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(run.join(f)).expect("run file")).collect();
    assert!(before == after, "a skipped run's files changed");
    assert!(out.join("table.md").exists() && out.join("table.csv").exists());

    // Asked for two epochs: resumes after the first, and ends where an uninterrupted run ends.
    let stderr = experiment(&out, 2);
    assert!(stderr.contains("resuming after epoch 1"), "{stderr}");
    let resumed = metrics(&run);
    assert_eq!(resumed.len(), 2);
    let straight_out = fresh_dir("straight");
    experiment(&straight_out, 2);
    assert_eq!(resumed, metrics(&straight_out.join("no-tiling")), "resumed run differs from an uninterrupted one");

    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight_out);
}

/// Runs `rapa` with `args` and `dir` as the working directory; returns (exit code, stderr).
fn rapa_in(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let result =
        Command::new(env!("CARGO_BIN_EXE_rapa")).current_dir(dir).args(args).output().expect("the rapa binary runs");
    (result.status.code(), String::from_utf8_lossy(&result.stderr).into_owned())
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = fresh_dir("errors");
    std::fs::create_dir_all(&dir).expect("temporary directory");
    std::fs::write(dir.join("bad-type.toml"), "[net]\ninit = 5\n").expect("write");
    std::fs::write(dir.join("bad-range.toml"), "epochs = -3\n").expect("write");
    // A trained run's results and a lone checkpoint (a reduced model) must not be overwritten.
    std::fs::create_dir_all(dir.join("trained")).expect("directory");
    std::fs::write(dir.join("trained/metrics.jsonl"), "{}\n").expect("write");
    std::fs::create_dir_all(dir.join("reduced")).expect("directory");
    std::fs::write(dir.join("reduced/checkpoint.bin"), "x").expect("write");
    let cases: [(&[&str], &[&str]); 13] = [
        (
            &["train", "--dataset", "cifar10", "--data-dir", "no-such-dir", "--out", "r1"],
            &["no-such-dir/data_batch_1.bin"],
        ),
        (&["train", "--config", "bad-type.toml", "--out", "r2"], &["bad-type.toml", "line 2"]),
        (&["train", "--config", "bad-range.toml", "--out", "r3"], &["bad-range.toml", "line 1", "-3"]),
        (&["train", "--lr", "nan", "--epochs", "1", "--out", "r4"], &["lr", "NaN"]),
        (&["experiment", "table1", "--only", "bogus", "--out", "r5"], &["--only", "bogus", "random-fixed"]),
        (&["eval", "--model", "no-such-run"], &["no-such-run/checkpoint.bin"]),
        (&["train", "--epochs", "0", "--out", "r6"], &["epochs", ">= 1"]),
        (&["train", "--batch", "100000", "--out", "r7"], &["batch", "100000"]),
        (&["experiment", "table1", "--lr=-1", "--list", "--out", "r8"], &["lr", "-1"]),
        (&["timing", "--tiles", "4096,4,1"], &["--tiles", "conv1", "1024 patches"]),
        (&["timing", "--bl", "40"], &["--bl", "40"]),
        (&["reduce", "--model", "no-such-run", "--out", "trained"], &["--out", "trained", "overwrite"]),
        (&["train", "--epochs", "1", "--out", "reduced"], &["reduced", "checkpoint.bin", "--resume"]),
    ];
    for (args, needles) in cases {
        let (code, stderr) = rapa_in(&dir, args);
        assert_eq!(code, Some(1), "rapa {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "rapa {args:?} panicked: {stderr}");
        assert!(stderr.starts_with("error: "), "rapa {args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "rapa {args:?}: `{n}` not in {stderr}");
        }
    }
    // A value clap refuses is a usage error (status 2), also without a panic.
    let (code, stderr) = rapa_in(&dir, &["eval", "--model", "no-such-run", "--vote", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--vote") && stderr.contains("at least 1") && !stderr.contains("panicked"), "{stderr}");
    let (code, stderr) = rapa_in(&dir, &["reduce", "--model", "no-such-run", "--out", "r", "--by", "median"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("median") && stderr.contains("norm, wins, mean"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rapa experiment --list` end to end: the printed command (run through the shell) trains the
/// run with every planned setting, including those only a `--config` file sets; `--collect`
/// adds the vote and reduction of a Table 2 random run trained that way; a run is never
/// continued with other settings than it started with, by `rapa experiment` or `rapa train
/// --resume`, while `--epochs` and `--threads` may change.
#[test]
fn listed_runs_carry_every_setting_and_changed_settings_are_refused() {
    let dir = fresh_dir("list");
    std::fs::create_dir_all(&dir).expect("temporary directory");
    std::fs::write(dir.join("base.toml"), "lr_step = 7\nmirror = false\n[net]\nlrn = false\n").expect("write");
    let common =
        [&["experiment", "table2"][..], &SMALL, &["--epochs", "1", "--config", "base.toml", "--out", "t2"]].concat();
    let result = Command::new(env!("CARGO_BIN_EXE_rapa"))
        .current_dir(&dir)
        .args(&common)
        .arg("--list")
        .output()
        .expect("the rapa binary runs");
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let listed = String::from_utf8_lossy(&result.stdout).into_owned();
    assert_eq!(listed.lines().count(), 12, "{listed}");
    let line = listed.lines().find(|l| l.contains("t2/max-random/plan.toml")).expect("the max-random command");
    let status = Command::new("sh").current_dir(&dir).arg("-c").arg(line).output().expect("sh runs");
    assert!(status.status.success(), "{line}: {}", String::from_utf8_lossy(&status.stderr));

    let run = dir.join("t2/max-random");
    let plan = rapa_train::train::TrainConfig::from_toml_file(&run.join("plan.toml")).expect("plan.toml");
    let trained = rapa_train::train::TrainConfig::from_toml_file(&run.join("config.toml")).expect("config.toml");
    assert!(!trained.net.lrn && !trained.mirror && trained.lr_step == 7, "the --config settings reached the run");
    assert_eq!(rapa_train::experiment::first_difference(&trained, &plan).expect("TOML"), None);
    // A flag of the shared run settings reaches every plan.
    let (code, stderr) = rapa_in(
        &dir,
        &[&["experiment", "table2"][..], &SMALL, &["--input-norm", "caffe", "--out", "t3", "--list"]].concat(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let plan = rapa_train::train::TrainConfig::from_toml_file(&dir.join("t3/max-none/plan.toml")).expect("plan.toml");
    assert_eq!(plan.input_norm, rapa_train::data::InputNorm::Caffe);

    let (code, stderr) = rapa_in(&dir, &[&common[..], &["--only", "max-random", "--collect"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(run.join("vote.json").exists() && run.join("reduce.json").exists(), "--collect post-processes: {stderr}");

    // Other settings are refused, naming the setting; epochs and threads may change.
    let (code, stderr) = rapa_in(&dir, &[&common[..], &["--only", "max-random", "--lr", "0.05"]].concat());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("invalid setting lr") && stderr.contains("lr = 0.05"), "{stderr}");
    let (code, stderr) = rapa_in(&dir, &["train", "--out", "t2/max-random", "--resume", "--batch", "20"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("invalid setting batch") && stderr.contains("batch = 20"), "{stderr}");
    let (code, stderr) =
        rapa_in(&dir, &["train", "--out", "t2/max-random", "--resume", "--epochs", "2", "--threads", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("resuming") && metrics(&run).len() == 2, "{stderr}");
    // A crash after the last epoch's checkpoint but before its metrics line: resuming trains
    // nothing more but restores the line from the checkpoint.
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    std::fs::write(run.join("metrics.jsonl"), format!("{}\n", text.lines().next().expect("a line"))).expect("write");
    let (code, stderr) = rapa_in(&dir, &["train", "--out", "t2/max-random", "--resume"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics"), text);
    // Without --resume an existing run is not overwritten.
    let (code, stderr) = rapa_in(&dir, &["train", "--out", "t2/max-random"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("pass --resume or --auto-resume"), "{stderr}");
    // The vote and reduction evaluated the 1-epoch model; the run now has 2 epochs. Collected
    // for 1 epoch, the table marks nothing; for 3, the run and its vote are marked; for 2,
    // both files are redone from the 2-epoch model and nothing is marked.
    let post = |f: &str| rapa_train::experiment::post_epochs(&run.join(f)).expect(f);
    assert_eq!((post("vote.json"), post("reduce.json")), (Some(1), Some(1)));
    let collect = |epochs: &str| {
        let args = [&["experiment", "table2"][..], &SMALL, &["--epochs", epochs, "--config", "base.toml"]].concat();
        let (code, stderr) =
            rapa_in(&dir, &[&args[..], &["--out", "t2", "--only", "max-random", "--collect"]].concat());
        assert_eq!(code, Some(0), "{stderr}");
        std::fs::read_to_string(dir.join("t2/table.md")).expect("table.md")
    };
    let table = collect("3");
    let max = table.lines().find(|l| l.starts_with("| max |")).expect("the max row");
    assert!(max.contains("[2/3 ep]") && max.contains("[1/3 ep]"), "{table}");
    assert_eq!((post("vote.json"), post("reduce.json")), (Some(1), Some(1)), "an unfinished run keeps its files");
    let table = collect("2");
    assert!(!table.contains(" ep]"), "{table}");
    assert_eq!((post("vote.json"), post("reduce.json")), (Some(2), Some(2)));

    // A reduced model is an ordinary model: written (twice into the same --out: a reduction may
    // be repeated), read back by eval; training into its directory is refused without advice
    // to resume it.
    for _ in 0..2 {
        let (code, stderr) = rapa_in(&dir, &["reduce", "--model", "t2/max-random", "--out", "red"]);
        assert_eq!(code, Some(0), "{stderr}");
    }
    let (code, stderr) = rapa_in(&dir, &["eval", "--model", "red"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = rapa_in(&dir, &["train", "--out", "red", "--epochs", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("written by rapa reduce") && !stderr.contains("--resume"), "{stderr}");

    // The similarity table of the run: one line per conv layer, a correlation for the tiled
    // ones, nothing for conv3's single kernel.
    let (code, stderr) = rapa_in(&dir, &["similarity", "--model", "t2/max-random", "--out", "sim"]);
    assert_eq!(code, Some(0), "{stderr}");
    let csv = std::fs::read_to_string(dir.join("sim/similarity.csv")).expect("similarity.csv");
    let lines: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(lines.len(), 3, "{csv}");
    for (l, tiles) in lines.iter().zip(["16", "4", "1"]) {
        assert_eq!(l[2], tiles, "{csv}");
        match l[3].parse::<f64>() {
            Ok(r) => assert!(tiles != "1" && (-1.0..=1.0).contains(&r), "{csv}"),
            Err(_) => assert!(tiles == "1" && l[3].is_empty(), "{csv}"),
        }
    }
    assert!(dir.join("sim/similarity.png").exists() && run.join("filters_conv1.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rapa train --print-config` writes an analog preset out in full: what it prints reads back as
/// exactly the settings the flags give, with `[net.tile]` the preset; printing it again from the
/// file gives the same settings; a run recorded with the preset's name and the written-out config
/// count as the same run (resume); an edit of one tile setting reaches the tile; nothing is
/// written to `--out`.
#[test]
fn print_config_writes_the_preset_out() {
    use rapa_train::experiment::first_difference;
    use rapa_train::train::TrainConfig;
    let out = fresh_dir("print-config");
    let out_arg = out.to_str().expect("temporary paths are UTF-8 here");
    let rapa =
        |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_rapa")).args(args).output().expect("the rapa binary runs");
    let print = |extra: &[&str]| -> String {
        let args = [&["train", "--print-config", "--epochs", "3", "--out", out_arg][..], extra].concat();
        let result = rapa(&args);
        assert!(result.status.success(), "rapa {args:?} failed: {}", String::from_utf8_lossy(&result.stderr));
        String::from_utf8(result.stdout).expect("UTF-8 output")
    };
    let body = |text: &str| text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    let parse = |text: &str| TrainConfig::from_toml_str(text).expect("the printed config parses");
    for preset in crossbar_sim::PRESETS {
        let text = print(&["--device", preset]);
        assert!(text.contains(&format!("the `{preset}` preset written out in full")), "{text}");
        let mut want = TrainConfig { epochs: 3, ..TrainConfig::default() };
        want.net.device = preset.to_string();
        want.net.tile = Some(crossbar_sim::TileConfig::preset(preset).expect("a known preset"));
        let got = parse(&text);
        assert_eq!(got, want, "{preset}");
        // The run recorded under the preset's name and the written-out config are the same run.
        let recorded =
            TrainConfig { net: rapa_train::net::NetConfig { tile: None, ..want.net.clone() }, ..want.clone() };
        assert_eq!(first_difference(&recorded, &got).expect("TOML"), None, "{preset}");
        assert_eq!(first_difference(&got, &recorded).expect("TOML"), None, "{preset}");
        // Printing again from the file gives the same settings (the preset is now a tile table).
        let file = std::env::temp_dir().join(format!("rapa-print-config-{}-{preset}.toml", std::process::id()));
        std::fs::write(&file, &text).expect("temporary file");
        let again = print(&["--config", file.to_str().expect("UTF-8 path")]);
        let _ = std::fs::remove_file(&file);
        assert_eq!(body(&again), body(&text), "{preset}");
        assert!(!again.contains("written out in full") && again.contains("`net.device` is ignored"), "{again}");
    }
    // Edit one setting of the printed tile (the forward integration time): it reaches the tile,
    // and the run is no longer the preset's.
    let text = print(&["--device", "gokmen-vlasov"]);
    assert_eq!(text.matches("forward_pass_ns = 80.0").count(), 1, "{text}");
    let edited = parse(&text.replace("forward_pass_ns = 80.0", "forward_pass_ns = 40.0"));
    let tile = edited.net.tile.clone().expect("the preset was written out");
    assert_eq!(tile.timing.forward_pass_ns, 40.0);
    assert_eq!(tile.device, crossbar_sim::TileConfig::preset("gokmen-vlasov").expect("known").device);
    let diff = first_difference(&parse(&text), &edited).expect("TOML").expect("a difference");
    assert_eq!(diff.0, "net.tile.timing.forward_pass_ns");
    // Float tiles have nothing to write out; other flags land where they belong.
    let float = parse(&print(&["--dataset", "cifar100", "--scheme", "none", "--lr", "0.01"]));
    let mut want = TrainConfig { epochs: 3, lr: 0.01, ..TrainConfig::default() };
    want.dataset = rapa_train::data::DatasetKind::Cifar100 { fine: true };
    want.net.scheme = rapa_layers::Scheme::None;
    want.net.tiles = [1, 1, 1];
    want.net.classes = 100;
    assert_eq!(float, want);
    assert!(!out.exists(), "--print-config wrote into --out");
    // It is refused with --resume and --auto-resume, and an unknown preset is an error naming it.
    for flag in ["--resume", "--auto-resume"] {
        let refused = rapa(&["train", "--print-config", flag, "--out", out_arg]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot be used with"), "{flag}");
    }
    let unknown = rapa(&["train", "--print-config", "--device", "no-such-device"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-device"));
}

/// Output into a closed pipe (`rapa timing | head -1`) ends `rapa` quietly, as it does other Unix
/// tools (by SIGPIPE), not with a panic on the failed write (exit status 101). The pipe's read
/// end is closed before `rapa` starts, so its first write fails whatever the timing.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    for args in [&["timing"][..], &["timing", "--preset", "enlarged"]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let result = Command::new(env!("CARGO_BIN_EXE_rapa"))
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("the rapa binary runs");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!stderr.contains("panicked"), "rapa {args:?}: {stderr}");
        assert!(
            result.status.signal() == Some(SIGPIPE) || result.status.code() == Some(0),
            "rapa {args:?}: {:?}, {stderr}",
            result.status
        );
    }
}

/// SIGPIPE's number (13 on the Unix systems Rust targets).
#[cfg(unix)]
const SIGPIPE: i32 = 13;

/// One `metrics.jsonl` line of epoch `epoch` with test error `test_error`.
fn epoch_line(epoch: usize, test_error: f64) -> String {
    serde_json::to_string(&rapa_train::train::EpochMetrics {
        epoch,
        train_error: test_error,
        test_error,
        loss: 1.0,
        lr: 0.01,
        seconds: 1.0,
        images_per_s: 1.0,
        analog_cycles: 0,
        analog_time_ns: 0.0,
        best_test_error: test_error,
        best_train_error: test_error,
    })
    .expect("JSON")
}

/// `rapa curves`: --out must be a PNG and may replace only a regular file (checked before
/// anything is written, its CSV too); a --run directory that is no run's, and a metrics.jsonl
/// with a repeated epoch or an error rate outside [0, 1], are errors naming the directory or
/// the file and line; a run that has started but finished no epoch is fine.
#[test]
fn curves_checks_its_output_and_its_runs() {
    let dir = fresh_dir("curves");
    let runs = dir.join("runs");
    std::fs::create_dir_all(runs.join("a")).expect("directory");
    std::fs::write(runs.join("a/metrics.jsonl"), format!("{}\n{}\n", epoch_line(1, 0.5), epoch_line(2, 0.25)))
        .expect("write");
    std::fs::create_dir_all(dir.join("dir.png")).expect("directory");
    std::fs::create_dir_all(dir.join("csvdir.csv")).expect("directory");
    std::fs::write(dir.join("target.png"), "old").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("target.png"), dir.join("link.png")).expect("symlink");
    #[cfg(unix)]
    assert!(Command::new("mkfifo").arg(dir.join("fifo.png")).status().expect("mkfifo runs").success());
    let mut refused: Vec<(&str, &str)> = vec![
        ("plot.svg", "must end in .png"),
        ("plot", "must end in .png"),
        ("plot.csv", "must end in .png"),
        ("dir.png", "a directory"),
        ("csvdir.png", "csvdir.csv: is not a regular file (a directory)"),
    ];
    if cfg!(unix) {
        refused.extend([("link.png", "(a symbolic link)"), ("fifo.png", "(a FIFO)")]);
    }
    for (out, needle) in refused {
        let (code, stderr) = rapa_in(&dir, &["curves", "--run", "runs/a", "--out", out]);
        assert_eq!(code, Some(1), "--out {out}: {stderr}");
        assert!(stderr.contains("--out") && stderr.contains(needle), "--out {out}: {stderr}");
        let stem = out.split('.').next().expect("a name");
        if stem != "csvdir" {
            assert!(!dir.join(format!("{stem}.csv")).exists(), "--out {out} wrote its CSV");
        }
    }
    assert_eq!(std::fs::read_to_string(dir.join("target.png")).expect("read"), "old");
    // Case-insensitive .png; a regular file is replaced.
    let (code, stderr) = rapa_in(&dir, &["curves", "--run", "runs/a", "--out", "CURVES.PNG"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.join("CURVES.csv").is_file());
    let (code, stderr) = rapa_in(&dir, &["curves", "--run", "runs/a", "--out", "target.png"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_ne!(std::fs::read(dir.join("target.png")).expect("read"), b"old");

    // Not a run directory (the parent of the runs): an error naming it; a started run is fine.
    let (code, stderr) = rapa_in(&dir, &["curves", "--run", "runs", "--out", "p.png"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("runs") && stderr.contains("not a run directory"), "{stderr}");
    std::fs::create_dir_all(runs.join("started")).expect("directory");
    std::fs::write(runs.join("started/config.toml"), "epochs = 2\n").expect("write");
    let (code, stderr) = rapa_in(&dir, &["curves", "--run", "runs/started", "--out", "s.png"]);
    assert_eq!(code, Some(0), "{stderr}");

    // Repeated or out-of-order epochs and error rates outside [0, 1]: the file and line.
    std::fs::create_dir_all(runs.join("bad")).expect("directory");
    for (text, needle) in [
        (format!("{}\n{}\n", epoch_line(1, 0.5), epoch_line(1, 0.4)), "line 2: epoch 1 repeats"),
        (format!("{}\n{}\n", epoch_line(2, 0.5), epoch_line(1, 0.4)), "line 2: epoch 1 comes after epoch 2"),
        (format!("{}\n", epoch_line(1, 50.0)), "line 1: train_error 50"),
    ] {
        std::fs::write(runs.join("bad/metrics.jsonl"), text).expect("write");
        let (code, stderr) = rapa_in(&dir, &["curves", "--run", "runs/bad", "--out", "b.png"]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("metrics.jsonl") && stderr.contains(needle), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rapa attack` and `rapa similarity`: bad values are refused naming them (a negative ε gets
/// the range message, not clap's "unexpected argument"); a model that cannot be loaded leaves
/// no empty --out behind.
#[test]
fn attack_and_similarity_check_their_values_and_write_nothing_on_failure() {
    let dir = fresh_dir("attack");
    std::fs::create_dir_all(&dir).expect("temporary directory");
    for (eps, shown) in [("-0.1", "-0.1"), ("0.01,1.5", "1.5"), ("nan", "NaN"), ("inf", "inf"), ("0,0.01", "got 0")] {
        let (code, stderr) = rapa_in(&dir, &["attack", "--model", "no-such-run", "--eps", eps, "--out", "a"]);
        assert_eq!(code, Some(1), "--eps {eps}: {stderr}");
        assert!(stderr.contains("--eps") && stderr.contains(shown) && stderr.contains("(0, 1]"), "{stderr}");
    }
    let (code, stderr) = rapa_in(&dir, &["attack", "--model", "no-such-run", "--eps", "0.001,1", "--out", "a"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no-such-run/checkpoint.bin"), "{stderr}");
    let (code, stderr) = rapa_in(&dir, &["similarity", "--model", "no-such-run", "--out", "s"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no-such-run/checkpoint.bin"), "{stderr}");
    assert!(!dir.join("a").exists() && !dir.join("s").exists(), "an empty --out was left behind");
    let (code, stderr) = rapa_in(&dir, &["similarity", "--model", "no-such-run", "--channels", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--channels") && stderr.contains("at least 1"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
