//! Experiment plans, resumability and the table writer.

use rapa_layers::Scheme;
use rapa_train::TrainError;
use rapa_train::data::DatasetKind;
use rapa_train::experiment::{
    Cell, PLAN_FILE, Post, RunStatus, TableKind, TableResult, check_settings, collect, first_difference, plan,
    run_status, train_command, write_plan,
};
use rapa_train::layers::PoolKind;
use rapa_train::train::TrainConfig;

#[test]
fn tables_plan_every_run() {
    let base = TrainConfig { epochs: 3, ..TrainConfig::default() };
    let t1 = plan(TableKind::Table1, &base);
    let names: Vec<&str> = t1.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["no-tiling", "perforated", "enlarged", "random-fixed", "random", "image-overlap", "image-pad", "alternate"]
    );
    for s in &t1 {
        s.cfg.validate().unwrap();
        assert_eq!(s.cfg.epochs, 3);
    }
    let enlarged = &t1[2].cfg.net;
    assert_eq!((enlarged.channels, enlarged.tiles), ([54, 64, 64], [1, 1, 1]));
    // Table 1: each row's scheme and tiles, all with max pooling, no post step.
    let want1 = [
        ("no tiling", Scheme::None, [1, 1, 1]),
        ("perforated", Scheme::Perforated, [16, 4, 1]),
        ("enlarged", Scheme::None, [1, 1, 1]),
        ("random-fixed", Scheme::RandomFixed, [16, 4, 1]),
        ("random", Scheme::Random, [16, 4, 1]),
        ("image-overlap", Scheme::ImageOverlap, [16, 4, 1]),
        ("image-pad", Scheme::ImagePad, [16, 4, 1]),
        ("alternate", Scheme::Alternate, [16, 4, 1]),
    ];
    for (s, (row, scheme, tiles)) in t1.iter().zip(want1) {
        assert_eq!((s.row.as_str(), s.cfg.net.scheme, s.cfg.net.tiles), (row, scheme, tiles), "{}", s.name);
        assert_eq!(s.cfg.net.pool, PoolKind::Max, "{}", s.name);
        assert_eq!(s.post, Post::None, "{}", s.name);
        let channels = if row == "enlarged" { [54, 64, 64] } else { base.net.channels };
        assert_eq!(s.cfg.net.channels, channels, "{}", s.name);
    }
    // Table 2: rows = pooling, columns none / enlarged / random; only the random column gets
    // the vote of 5 and the reduction.
    let t2 = plan(TableKind::Table2, &base);
    assert_eq!(t2.len(), 12);
    let mut cells = Vec::new();
    for s in &t2 {
        s.cfg.validate().unwrap();
        let n = &s.cfg.net;
        assert_eq!(s.row, n.pool.name(), "{}: row names the pooling", s.name);
        assert_eq!(s.name, format!("{}-{}", s.row, s.col));
        let (scheme, tiles, channels, post) = match s.col.as_str() {
            "none" => (Scheme::None, [1, 1, 1], base.net.channels, Post::None),
            "enlarged" => (Scheme::None, [1, 1, 1], [54, 64, 64], Post::None),
            "random" => (Scheme::Random, [16, 4, 1], base.net.channels, Post::VoteAndReduce),
            other => panic!("unknown column {other}"),
        };
        assert_eq!((n.scheme, n.tiles, n.channels, s.post), (scheme, tiles, channels, post), "{}", s.name);
        cells.push((n.pool, s.col.clone()));
    }
    let mut want2 = Vec::new();
    for pool in [PoolKind::Max, PoolKind::Avg, PoolKind::Mixed, PoolKind::Stochastic] {
        for col in ["none", "enlarged", "random"] {
            want2.push((pool, col.to_string()));
        }
    }
    assert_eq!(cells, want2, "every pooling × column once, in table order");
    assert_eq!(t2.iter().filter(|s| s.post == Post::VoteAndReduce).count(), 4);
}

/// Every run keeps the base settings the table does not vary (here a non-default network, tile
/// and schedule from a `--config` file), and the `--list` form of a run (its `plan.toml` and
/// `rapa train --config … --out … --auto-resume` command) carries all of them.
#[test]
fn runs_keep_the_base_settings_and_listed_runs_carry_them() {
    let mut base: TrainConfig = TrainConfig::from_toml_str(
        "epochs = 5\nlr_step = 7\nweight_decay = 0.0\nmirror = false\n[net]\nlrn = false\nlr_scale = [2.0, 1.0, 0.5]\nchannels = [16, 16, 32]\ndevice = \"aihwkit-default\"\n",
    )
    .unwrap();
    base.net.tile = Some(crossbar_sim::TileConfig::preset("idealized").unwrap());
    for kind in [TableKind::Table1, TableKind::Table2] {
        for s in plan(kind, &base) {
            let (c, n) = (&s.cfg, &s.cfg.net);
            assert_eq!((c.epochs, c.lr_step, c.weight_decay, c.mirror), (5, 7, 0.0, false), "{}", s.name);
            assert!(!n.lrn && n.lr_scale == [2.0, 1.0, 0.5] && n.tile == base.net.tile, "{}", s.name);
            assert_eq!(n.device, "aihwkit-default");
            let want_channels = if s.name.contains("enlarged") { [54, 64, 64] } else { [16, 16, 32] };
            assert_eq!(n.channels, want_channels, "{}", s.name);
            // The table's own settings replace the base's.
            assert_eq!(n.tiles, if n.scheme == Scheme::None { [1, 1, 1] } else { [16, 4, 1] }, "{}", s.name);
        }
    }

    let root = std::env::temp_dir().join(format!("rapa-exp-list-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let spec = &plan(TableKind::Table1, &base)[6];
    let dir = root.join("it's here").join(&spec.name);
    write_plan(spec, &dir).unwrap();
    let listed = TrainConfig::from_toml_file(&dir.join(PLAN_FILE)).unwrap();
    assert_eq!(listed.to_toml().unwrap(), spec.cfg.to_toml().unwrap(), "plan.toml holds every setting");
    let plan_path = dir.join(PLAN_FILE).display().to_string().replace('\'', "'\\''");
    let dir_path = dir.display().to_string().replace('\'', "'\\''");
    assert_eq!(
        train_command("rapa", &dir),
        format!("rapa train --config '{plan_path}' --out '{dir_path}' --auto-resume"),
        "paths are quoted for the shell"
    );
    assert_eq!(
        train_command("rapa", std::path::Path::new("runs/t1/image-pad")),
        "rapa train --config runs/t1/image-pad/plan.toml --out runs/t1/image-pad --auto-resume"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A run directory started with other settings is refused (naming the first differing setting
/// and both values); epochs, threads, the data directory and the class count may differ.
#[test]
fn a_run_started_with_other_settings_is_refused() {
    let root = std::env::temp_dir().join(format!("rapa-exp-settings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let planned = plan(TableKind::Table1, &TrainConfig::default())[4].cfg.clone();
    check_settings(&root, &planned).unwrap(); // nothing recorded yet

    let mut recorded = planned.clone();
    recorded.epochs = 80;
    std::fs::write(root.join("config.toml"), recorded.to_toml().unwrap()).unwrap();
    let err = check_settings(&root, &planned).unwrap_err();
    assert!(matches!(&err, TrainError::Config { field, .. } if field == "epochs"), "{err}");
    assert!(err.to_string().contains("planned for 80 epochs"), "{err}");
    recorded.epochs = planned.epochs - 1; // a shorter run may be extended
    recorded.threads = 16;
    recorded.data_dir = "/cluster/cifar10".into();
    recorded.net.classes = 100;
    std::fs::write(root.join("config.toml"), recorded.to_toml().unwrap()).unwrap();
    check_settings(&root, &planned).unwrap();

    recorded.net.lr_scale[1] = 0.5;
    recorded.lr = 0.01;
    std::fs::write(root.join("config.toml"), recorded.to_toml().unwrap()).unwrap();
    let err = check_settings(&root, &planned).unwrap_err();
    assert!(matches!(&err, TrainError::Config { field, .. } if field == "lr"), "{err}");
    assert!(err.to_string().contains("lr = 0.01") && err.to_string().contains("lr = 0.02"), "{err}");
    recorded.lr = planned.lr;
    std::fs::write(root.join("config.toml"), recorded.to_toml().unwrap()).unwrap();
    let err = check_settings(&root, &planned).unwrap_err();
    assert!(matches!(&err, TrainError::Config { field, .. } if field == "net.lr_scale"), "{err}");
    assert_eq!(first_difference(&planned, &planned).unwrap(), None);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn status_distinguishes_finished_partial_and_missing_runs() {
    let root = std::env::temp_dir().join(format!("rapa-exp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let done = root.join("done");
    let partial = root.join("partial");
    std::fs::create_dir_all(&done).unwrap();
    std::fs::create_dir_all(&partial).unwrap();
    let line = |e: usize, test: f64, train: f64| {
        format!(
            "{{\"epoch\":{e},\"train_error\":{train},\"test_error\":{test},\"loss\":1.0,\"lr\":0.02,\"seconds\":1.0,\"images_per_s\":1.0,\"analog_cycles\":0,\"analog_time_ns\":0.0,\"best_test_error\":{test},\"best_train_error\":{train}}}\n"
        )
    };
    std::fs::write(done.join("metrics.jsonl"), line(1, 0.5, 0.6) + &line(2, 0.2, 0.25) + &line(3, 0.3, 0.1)).unwrap();
    std::fs::write(done.join("checkpoint.bin"), b"x").unwrap();
    std::fs::write(partial.join("metrics.jsonl"), line(1, 0.5, 0.6)).unwrap();
    std::fs::write(partial.join("checkpoint.bin"), b"x").unwrap();
    assert_eq!(run_status(&done, 3).unwrap(), RunStatus::Done);
    assert_eq!(run_status(&partial, 3).unwrap(), RunStatus::Partial(1));
    assert_eq!(run_status(&root.join("absent"), 3).unwrap(), RunStatus::Missing);
    // Without its checkpoint a finished run is still done (never retrained over its results);
    // an unfinished one cannot resume and is an error, not a silent restart.
    std::fs::remove_file(done.join("checkpoint.bin")).unwrap();
    assert_eq!(run_status(&done, 3).unwrap(), RunStatus::Done);
    std::fs::remove_file(partial.join("checkpoint.bin")).unwrap();
    let msg = run_status(&partial, 3).unwrap_err().to_string();
    assert!(msg.contains("1 of 3 epochs") && msg.contains("no checkpoint.bin"), "{msg}");
    std::fs::write(partial.join("checkpoint.bin"), b"x").unwrap();
    // Collecting picks the best test error and the train error of that epoch, and marks a run
    // that has not finished its planned epochs.
    let mut specs = plan(TableKind::Table1, &TrainConfig { epochs: 3, ..TrainConfig::default() });
    specs[4].name = "done".into(); // the "random" row
    specs[1].name = "partial".into(); // the "perforated" row
    let t = collect(TableKind::Table1, DatasetKind::Cifar10, &specs, &root).unwrap();
    let random = &t.rows[4];
    assert_eq!(random.0, "random");
    assert_eq!(random.1[0].ours, Some((20.0, Some(25.0))));
    assert_eq!(random.1[0].paper, Some((17.67, Some(5.81))));
    assert_eq!(random.1[0].epochs, Some((3, 3)));
    assert!(!random.1[0].unfinished());
    let perforated = &t.rows[1].1[0];
    assert_eq!((perforated.ours, perforated.epochs), (Some((50.0, Some(60.0))), Some((1, 3))));
    assert!(perforated.unfinished());
    let md = t.to_markdown();
    assert!(
        md.contains("| perforated | 50.00 (60.00) [1/3 ep] |") && md.contains("| random | 20.00 (25.00) |"),
        "{md}"
    );
    assert!(t.to_csv().contains("perforated,cifar10,50.00,60.00,30.79,25.93,1,3\n"), "{}", t.to_csv());
    assert_eq!((t.rows[0].1[0].ours, t.rows[0].1[0].epochs), (None, None));
    let _ = std::fs::remove_dir_all(&root);
}

/// A damaged results file is a typed error naming the file and line, never a skipped line or a
/// silently empty cell: a truncated `metrics.jsonl` line (run status and table) and a
/// `vote.json` without its field (Table 2).
#[test]
fn damaged_results_files_are_errors_naming_file_and_line() {
    let root = std::env::temp_dir().join(format!("rapa-exp-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let good = "{\"epoch\":1,\"train_error\":0.5,\"test_error\":0.4,\"loss\":1.0,\"lr\":0.02,\"seconds\":1.0,\"images_per_s\":1.0,\"analog_cycles\":0,\"analog_time_ns\":0.0,\"best_test_error\":0.4,\"best_train_error\":0.5}";
    let mut specs = plan(TableKind::Table1, &TrainConfig::default());
    let dir = root.join(&specs[4].name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), format!("{good}\n{{\"epoch\":2,\"train_err\n")).unwrap();
    std::fs::write(dir.join("checkpoint.bin"), b"x").unwrap();
    let msg = run_status(&dir, 3).unwrap_err().to_string();
    assert!(msg.contains("metrics.jsonl, line 2"), "{msg}");
    let msg = collect(TableKind::Table1, DatasetKind::Cifar10, &specs, &root).unwrap_err().to_string();
    assert!(msg.contains("metrics.jsonl, line 2"), "{msg}");

    std::fs::write(dir.join("metrics.jsonl"), format!("{good}\n")).unwrap();
    specs = plan(TableKind::Table2, &TrainConfig::default());
    let random = specs.iter().find(|s| s.row == "max" && s.col == "random").unwrap();
    let rdir = root.join(&random.name);
    std::fs::create_dir_all(&rdir).unwrap();
    // A file that parses but lacks the field (here pretty-printed over several lines) names the
    // file and the field, with no line number (the field is absent from every line).
    std::fs::write(rdir.join("vote.json"), "{\n  \"vote\": 0.2\n}\n").unwrap();
    let err = collect(TableKind::Table2, DatasetKind::Cifar10, &specs, &root).unwrap_err();
    assert!(matches!(&err, TrainError::MissingField { field, .. } if field == "vote_error"), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("vote.json: no numeric field `vote_error`"), "{msg}");
    // A broken file names its line.
    std::fs::write(rdir.join("vote.json"), "{\n  \"vote_error\": 0.2,\n  oops\n}\n").unwrap();
    let msg = collect(TableKind::Table2, DatasetKind::Cifar10, &specs, &root).unwrap_err().to_string();
    assert!(msg.contains("vote.json, line 3"), "{msg}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn table_writer_formats_a_known_result_exactly() {
    let t = TableResult {
        title: "Table X".into(),
        columns: vec!["cifar10".into()],
        rows: vec![
            (
                "random".into(),
                vec![Cell { ours: Some((17.5, Some(6.25))), paper: Some((17.67, Some(5.81))), epochs: Some((80, 80)) }],
            ),
            ("vote".into(), vec![Cell { ours: Some((16.0, None)), paper: None, epochs: None }]),
        ],
    };
    assert_eq!(
        t.to_markdown(),
        "Table X\n\n| | cifar10 (ours) | cifar10 (paper) |\n|---|---:|---:|\n| random | 17.50 (6.25) | 17.67 (5.81) |\n| vote | 16.00 | – |\n"
    );
    assert_eq!(
        t.to_csv(),
        "row,column,ours_test,ours_train,paper_test,paper_train,ours_epochs,planned_epochs\nrandom,cifar10,17.50,6.25,17.67,5.81,80,80\nvote,cifar10,16.00,,,,,\n"
    );
}

#[test]
fn table_writer_marks_a_run_still_in_progress() {
    let t = TableResult {
        title: "Table X".into(),
        columns: vec!["cifar10".into()],
        rows: vec![(
            "random".into(),
            vec![Cell { ours: Some((36.76, Some(36.71))), paper: None, epochs: Some((9, 80)) }],
        )],
    };
    assert_eq!(
        t.to_markdown(),
        "Table X\n\n| | cifar10 (ours) | cifar10 (paper) |\n|---|---:|---:|\n| random | 36.76 (36.71) [9/80 ep] | – |\n\n\
         Note: [done/planned ep] marks a run still in progress; its numbers are those of the epochs done so far.\n"
    );
    assert_eq!(
        t.to_csv(),
        "row,column,ours_test,ours_train,paper_test,paper_train,ours_epochs,planned_epochs\nrandom,cifar10,36.76,36.71,,,9,80\n"
    );
}
