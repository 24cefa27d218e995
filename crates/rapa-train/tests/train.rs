//! Training runs on the synthetic dataset: learning, resume, determinism, bad input.

use rapa_train::TrainError;
use rapa_train::data::synthetic;
use rapa_train::train::{EpochMetrics, TrainConfig, Trainer, read_checkpoint};

fn small(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        synthetic_train: 2_000,
        synthetic_test: 500,
        lr: 0.02,
        warmup_epochs: 0,
        ..TrainConfig::default()
    }
}

fn run(cfg: &TrainConfig, threads: usize) -> (Vec<EpochMetrics>, rapa_train::net::NetState) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let data = synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
        let mut t = Trainer::new(cfg.clone(), data).unwrap();
        t.fit(None, &mut |_| {}, &mut |_| {}).unwrap();
        (t.metrics().to_vec(), t.net().state())
    })
}

/// Metrics without the wall-clock fields.
fn comparable(m: &[EpochMetrics]) -> Vec<(usize, f64, f64, f64, f32, u64)> {
    m.iter().map(|m| (m.epoch, m.train_error, m.test_error, m.loss, m.lr, m.analog_cycles)).collect()
}

/// Trains `cfg` (2 epochs) for 1 epoch into a fresh directory named `name`, resumes it to 2,
/// and checks that it ends where the straight run did (`full`, `full_state`). Returns the first
/// epoch's config.toml.
fn resumes_to(cfg: &TrainConfig, name: &str, full: &[EpochMetrics], full_state: &rapa_train::net::NetState) -> String {
    let dir = std::env::temp_dir().join(format!("rapa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = || synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
    let mut first = Trainer::new(TrainConfig { epochs: 1, ..cfg.clone() }, data()).unwrap();
    first.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    let toml = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let ck = read_checkpoint(&dir.join("checkpoint.bin")).unwrap();
    let mut resumed = Trainer::resume(ck, data(), Some(2)).unwrap();
    resumed.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    assert_eq!(comparable(resumed.metrics()), comparable(full));
    assert_eq!(&resumed.net().state(), full_state);
    let _ = std::fs::remove_dir_all(&dir);
    toml
}

#[test]
fn short_synthetic_run_learns() {
    // The paper's network with Caffe's initialization and random tiling (16, 4, 1) at the
    // paper's lr 0.02 without warm-up spends ~3 epochs (1 500 steps) on the initial plateau;
    // 4 000 steps get well past it.
    let cfg = TrainConfig { synthetic_train: 5_000, synthetic_test: 1_000, ..small(8) };
    let (m, _) = run(&cfg, 2);
    let last = m.last().unwrap();
    // "Learns" from the data's properties, not from a measured run: the 1 000 test images are
    // balanced over 10 classes, so chance (or any constant prediction) is 90 % error, and a
    // linear model on the pixels (softmax regression) stays above 50 % on this very split
    // (tests/data.rs asserts it on synthetic(5 000, 1 000, seed 1); measured 89.1 %, i.e. at
    // chance). The test error must beat that linear bound by 4 binomial standard errors at
    // 50 %, √(0.25/n) ≈ 0.016 for n = 1 000: < 0.437 — for the last epoch too, so that a run
    // that learns and then diverges (as this one does at lr 0.03: 20.4 % at epoch 7, then a
    // loss spike in epoch 8 after which it stays at chance) fails. A network at chance scores
    // 0.90 ± 0.0095, over 40 SEs above the bound. Measured (2026-11-27): epochs 1–8 90.0, 89.8,
    // 89.2, 83.9, 65.5, 41.7, 21.7, 21.4 %.
    let n = cfg.synthetic_test as f64;
    let bound = 0.5 - 4.0 * (0.25 / n).sqrt();
    assert!(last.best_test_error < bound, "best test error {} ≥ {bound}", last.best_test_error);
    assert!(last.test_error < bound, "last epoch's test error {} ≥ {bound}: diverged?", last.test_error);
    assert!(m.iter().all(|e| (0.0..=1.0).contains(&e.test_error) && e.loss.is_finite()));
    // The paper's tiles (16, 4, 1): per image 64 forward, backward and update cycles per layer
    // on the busiest conv tiles — except conv1, which needs no backward pass (nothing consumes
    // the input gradient) — plus 1+1+1 for the FC tile.
    assert_eq!(last.analog_cycles, 5_000 * (64 * 2 + 2 * 64 * 3 + 3));
}

#[test]
fn resume_equals_uninterrupted_training() {
    let cfg = small(2);
    let (full, full_state) = run(&cfg, 2);
    let dir = std::env::temp_dir().join(format!("rapa-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = || synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
    let mut first = Trainer::new(TrainConfig { epochs: 1, ..cfg.clone() }, data()).unwrap();
    first.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    let ck = read_checkpoint(&dir.join("checkpoint.bin")).unwrap();
    assert_eq!(ck.epoch, 1);
    // Fewer epochs than the checkpoint holds is refused, naming the setting.
    let e = Trainer::resume(read_checkpoint(&dir.join("checkpoint.bin")).unwrap(), data(), Some(0)).unwrap_err();
    assert!(matches!(&e, TrainError::Config { field, .. } if field == "epochs"), "{e}");
    assert!(e.to_string().contains("0 is below the 1 epochs"), "{e}");
    let mut resumed = Trainer::resume(ck, data(), Some(2)).unwrap();
    resumed.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    assert_eq!(comparable(resumed.metrics()), comparable(&full));
    assert_eq!(resumed.net().state(), full_state);
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    for key in [
        "\"epoch\"",
        "\"train_error\"",
        "\"test_error\"",
        "\"loss\"",
        "\"lr\"",
        "\"seconds\"",
        "\"images_per_s\"",
        "\"analog_cycles\"",
    ] {
        assert!(lines.contains(key), "metrics.jsonl lacks {key}");
    }
    let toml = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(toml.contains("seed = 1") && toml.contains("scheme = \"random\""), "{toml}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Resume with the pooling variants that carry state across epochs: stochastic pooling's
/// sampling stream position (its forward-call counter) and mixed pooling's learned mixing
/// logits. A run interrupted after epoch 1 and resumed from its checkpoint gives the same
/// metrics and the same final state, bit for bit, as the uninterrupted run — with a stream
/// restarted at 0, epoch 2 would repeat epoch 1's samples; with the logits reset, it would
/// mix with α = sigmoid(1) again.
#[test]
fn resume_with_stochastic_and_mixed_pooling_equals_uninterrupted_training() {
    use rapa_train::layers::{Pool, PoolKind};
    let initial_logit = Pool::new(PoolKind::Mixed, 3, 2, 1, 0).mix[0];
    for pool in [PoolKind::Stochastic, PoolKind::Mixed] {
        let mut cfg = TrainConfig { synthetic_train: 100, synthetic_test: 50, ..small(2) };
        cfg.net.pool = pool;
        cfg.net.channels = [8, 8, 16];
        // He init: with Caffe's (conv1 std 1e-4) the mixing gradients of the first epoch are
        // below the f32 resolution of the logits, which would then not move.
        cfg.net.init = rapa_train::net::Init::He;
        let (full, full_state) = run(&cfg, 2);
        let dir = std::env::temp_dir().join(format!("rapa-resume-{pool}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = || synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
        let mut first = Trainer::new(TrainConfig { epochs: 1, ..cfg.clone() }, data()).unwrap();
        first.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
        let ck = read_checkpoint(&dir.join("checkpoint.bin")).unwrap();
        // The checkpoint holds the pools' state after a training epoch and an evaluation.
        for (l, p) in ck.net.pools.iter().enumerate().take(2) {
            assert!(p.calls > 0, "{pool}: pool {l} saved no forward calls");
            if pool == PoolKind::Mixed {
                assert!(
                    p.mix.iter().all(|&a| a != initial_logit),
                    "{pool}: pool {l} saved untrained logits {:?}",
                    p.mix
                );
            }
        }
        let mut resumed = Trainer::resume(ck, data(), Some(2)).unwrap();
        resumed.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
        assert_eq!(comparable(resumed.metrics()), comparable(&full), "{pool}");
        assert_eq!(resumed.net().state(), full_state, "{pool}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn same_seed_same_metrics_with_one_and_two_threads() {
    let cfg = TrainConfig { synthetic_train: 500, synthetic_test: 200, ..small(1) };
    let (a, sa) = run(&cfg, 1);
    let (b, sb) = run(&cfg, 2);
    assert_eq!(comparable(&a), comparable(&b));
    assert_eq!(sa, sb);
    let (c, _) = run(&TrainConfig { seed: 2, ..cfg }, 2);
    assert_ne!(comparable(&a), comparable(&c));
}

/// The other random parts of a run — stochastic pooling's samples, mixed pooling's learned
/// mixing, perforated tiling's dropped patches — also give the same metrics and state with 1
/// and 3 threads.
#[test]
fn random_pooling_and_perforation_ignore_the_thread_count() {
    use rapa_layers::Scheme;
    use rapa_train::layers::PoolKind;
    for (pool, scheme) in
        [(PoolKind::Stochastic, Scheme::Random), (PoolKind::Mixed, Scheme::Random), (PoolKind::Max, Scheme::Perforated)]
    {
        let mut cfg = TrainConfig { synthetic_train: 200, synthetic_test: 100, ..small(1) };
        cfg.net.pool = pool;
        cfg.net.scheme = scheme;
        let (a, sa) = run(&cfg, 1);
        let (b, sb) = run(&cfg, 3);
        assert_eq!(comparable(&a), comparable(&b), "{pool:?} {scheme:?}");
        assert_eq!(sa, sb, "{pool:?} {scheme:?}");
    }
}

#[test]
fn non_finite_loss_stops_training() {
    // A huge learning rate blows the weights up within the first epoch (no decay: lr·wd must
    // stay below 1).
    let cfg = TrainConfig { lr: 1e30, weight_decay: 0.0, synthetic_train: 500, synthetic_test: 100, ..small(1) };
    let data = synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
    let mut t = Trainer::new(cfg, data).unwrap();
    match t.run_epoch(&mut |_| {}) {
        Err(TrainError::NonFiniteLoss { epoch, batch, .. }) => {
            assert_eq!(epoch, 1);
            assert!(batch < 50);
        }
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
}

/// Every bad setting is a typed error naming the setting (`TrainError::Config`'s `field`, as
/// in config.toml) and, where it has one, the bad value; parse errors name the unknown key or
/// value.
#[test]
fn bad_configs_are_typed_errors() {
    use rapa_layers::LayerError;
    let config = |e: &TrainError| match e {
        TrainError::Config { field, reason } => (field.clone(), reason.clone()),
        other => panic!("expected TrainError::Config, got {other:?}"),
    };
    let e = TrainConfig::from_toml_str("epochs = 2\nlearning_rate = 0.1\n").unwrap_err();
    assert!(e.contains("unknown field") && e.contains("`learning_rate`"), "{e}");
    let e = TrainConfig::from_toml_str("[net]\nscheme = \"diagonal\"\n").unwrap_err();
    assert!(e.contains("unknown variant") && e.contains("`diagonal`") && e.contains("scheme"), "{e}");
    let cfg = TrainConfig::from_toml_str("lr = -1.0\n").unwrap();
    let (field, reason) = config(&cfg.validate().unwrap_err());
    assert_eq!(field, "lr");
    assert!(reason.contains("got -1"), "{reason}");
    let mut cfg = TrainConfig::default();
    cfg.net.device = "pcm".into();
    let e = cfg.validate().unwrap_err();
    let (field, reason) = config(&e);
    assert_eq!(field, "net.device");
    assert!(reason.contains("pcm"), "{reason}");
    assert!(e.to_string().contains("net.device") && e.to_string().contains("pcm"), "{e}");
    let mut cfg = TrainConfig::default();
    cfg.net.scheme = rapa_layers::Scheme::ImageOverlap;
    cfg.net.tiles = [8, 4, 1];
    let data = synthetic(20, 10, 1);
    // Refused by the configuration's check, naming the layer and the scheme's reason...
    let e = Trainer::new(cfg.clone(), data).unwrap_err();
    let (field, reason) = config(&e);
    assert_eq!(field, "net.tiles");
    assert!(reason.starts_with("conv1: ") && reason.contains("n = 8") && reason.contains("square"), "{reason}");
    // ...which is the layer's own error, raised by the conv layer itself too.
    let [conv1, ..] = rapa_layers::paper::paper_like_convs(
        cfg.net.channels,
        cfg.net.tiles,
        cfg.net.scheme,
        &rapa_layers::TileKind::Float,
    );
    let e = rapa_layers::RapaConv2d::new(conv1, 1).unwrap_err();
    assert!(
        matches!(&e, LayerError::Scheme { scheme: "image-overlap", n_tiles: 8, out_h: 32, out_w: 32, reason }
            if reason.contains("square")),
        "{e:?}"
    );
    // More tiles than conv3's 8 × 8 patches.
    let mut cfg = TrainConfig::default();
    cfg.net.tiles = [1, 1, 65];
    let (field, reason) = config(&cfg.validate().unwrap_err());
    assert_eq!(field, "net.tiles");
    assert!(reason.starts_with("conv3: ") && reason.contains("more tiles than patches"), "{reason}");
    // Every per-layer limit holds, but all the tiles together would need ~430 GB: refused
    // before anything is allocated, naming the sizes. At the limit's edge: the largest
    // single-tile network of 4 096 channels per layer and 10 classes fits.
    let mut cfg = TrainConfig::default();
    cfg.net.channels = [4096; 3];
    cfg.net.tiles = [1, 1, 1];
    cfg.net.scheme = rapa_layers::Scheme::None;
    cfg.validate().unwrap();
    cfg.net.scheme = rapa_layers::Scheme::Random;
    cfg.net.tiles = [16, 256, 64];
    let (field, reason) = config(&cfg.validate().unwrap_err());
    assert_eq!(field, "net");
    assert!(
        reason.contains("[4096, 4096, 4096]") && reason.contains("[16, 256, 64]") && reason.contains("weights"),
        "{reason}"
    );
    // Sizes: at least one epoch; batches and channels within the documented limits.
    // (epochs = 0 is named by the bound it breaks, "must be >= 1".)
    let too_big = rapa_train::train::MAX_BATCH + 1;
    for (cfg, field, named) in [
        (TrainConfig { epochs: 0, ..TrainConfig::default() }, "epochs", ">= 1".to_string()),
        (TrainConfig { batch: too_big, ..TrainConfig::default() }, "batch", format!("got {too_big}")),
        (TrainConfig { eval_batch: 0, ..TrainConfig::default() }, "eval_batch", "got 0".to_string()),
    ] {
        let (f, reason) = config(&cfg.validate().unwrap_err());
        assert_eq!(f, field);
        assert!(reason.contains(&named), "{field}: {reason}");
    }
    // Decay may not zero or flip the weights: lr·s·wd < 1, s the largest tile factor (16 in
    // conv1 by default) when decay uses each tile's lr.
    let mut cfg = TrainConfig { lr: 0.02, weight_decay: 4.0, ..TrainConfig::default() };
    cfg.validate().unwrap(); // 0.02·4 = 0.08
    cfg.net.decay_with_tile_lr = true; // 0.02·16·4 = 1.28
    let (field, reason) = config(&cfg.validate().unwrap_err());
    assert_eq!(field, "weight_decay");
    // The product that breaks the bound, and the factor in it.
    assert!(reason.contains("lr·16·weight_decay") && reason.contains("= 1.28"), "{reason}");
    cfg.net.tiles = [8, 4, 1]; // 0.64
    cfg.validate().unwrap();
    let lr = TrainConfig::default().lr;
    let (field, reason) = config(&TrainConfig { weight_decay: 50.0, ..TrainConfig::default() }.validate().unwrap_err());
    assert_eq!(field, "weight_decay");
    assert!(reason.contains(&format!("= {}", lr * 50.0)), "{reason}");
    let mut cfg = TrainConfig::default();
    cfg.net.channels = [1 << 62, 32, 64];
    let e = cfg.validate().unwrap_err();
    let (field, reason) = config(&e);
    assert_eq!(field, "net.channels");
    assert!(reason.contains(&(1usize << 62).to_string()), "{reason}");
    assert!(e.to_string().contains("net.channels"), "{e}");
    // Round trip of the full config through TOML.
    let cfg = TrainConfig::default();
    assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml().unwrap()).unwrap(), cfg);
    let path = std::path::Path::new("/nonexistent/rapa.toml");
    let e = TrainConfig::from_toml_file(path).unwrap_err();
    assert!(
        matches!(&e, TrainError::Io { path: p, source } if p == path && source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
    assert!(e.to_string().contains("/nonexistent/rapa.toml"), "{e}");
}

#[test]
fn input_norm_is_a_setting_of_the_run() {
    use rapa_train::data::{InputNorm, Normalizer};
    // Older config files have no input_norm: they mean standardize.
    assert_eq!(TrainConfig::from_toml_str("epochs = 2\n").unwrap().input_norm, InputNorm::Standardize);
    let cfg = TrainConfig::from_toml_str("input_norm = \"caffe\"\n").unwrap();
    assert_eq!(cfg.input_norm, InputNorm::Caffe);
    assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml().unwrap()).unwrap(), cfg);
    let e = TrainConfig::from_toml_str("input_norm = \"zca\"\n").unwrap_err();
    assert!(e.contains("zca") && e.contains("input_norm"), "{e}");
    // The trainer uses it, and a resumed run keeps it from its checkpoint.
    let cfg = TrainConfig { input_norm: InputNorm::Caffe, synthetic_train: 200, synthetic_test: 50, ..small(1) };
    let data = || synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
    let mut t = Trainer::new(cfg.clone(), data()).unwrap();
    let fitted = Normalizer::fit(&data().train);
    assert_eq!(*t.normalizer(), Normalizer { mean: fitted.mean, std: [1.0 / 255.0; 3] });
    let dir = std::env::temp_dir().join(format!("rapa-input-norm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    t.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    let ck = read_checkpoint(&dir.join("checkpoint.bin")).unwrap();
    assert_eq!(ck.config.input_norm, InputNorm::Caffe);
    let resumed = Trainer::resume(ck, data(), Some(2)).unwrap();
    assert_eq!(resumed.normalizer(), t.normalizer());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn limits_keep_every_class_of_a_sorted_set() {
    // Like the shared CIFAR-10 test batch: sorted by class, 100 images per class.
    let mut ds = rapa_train::data::Dataset {
        images: (0..1000).flat_map(|i| std::iter::repeat_n((i % 251) as u8, 3072)).collect(),
        labels: (0..1000).map(|i| (i / 100) as u16).collect(),
        n_classes: 10,
        name: "sorted".into(),
    };
    rapa_train::train::keep_spread(&mut ds, 50);
    assert_eq!(ds.len(), 50);
    assert_eq!(ds.images.len(), 50 * 3072);
    for c in 0..10u16 {
        assert_eq!(ds.labels.iter().filter(|&&l| l == c).count(), 5);
    }
    // Within class 0 (images 0..100) the picks are 0, 20, 40, 60, 80.
    assert_eq!(ds.image(3)[0], 60);
    // Periodic labels (the synthetic set: label = index mod 10) do not alias.
    let mut ds = rapa_train::data::synthetic(10, 2_000, 1).test;
    rapa_train::train::keep_spread(&mut ds, 300);
    assert_eq!(ds.len(), 300);
    for c in 0..10u16 {
        assert_eq!(ds.labels.iter().filter(|&&l| l == c).count(), 30);
    }
}

/// With ω mapping, with the bias kept digital too, with the mixed-precision update (its χ
/// and transfer position are in the checkpoint), and with device dynamics (decay, diffusion,
/// stuck devices and write noise: their per-device values, persistent weights and write-noise
/// generator are in the checkpoint): the run ignores the thread count, its config.toml keeps
/// the settings, and a resumed run continues bit-exactly.
#[test]
fn mapped_analog_run_resumes_bit_exactly_and_ignores_thread_count() {
    use crossbar_sim::{DynamicsConfig, MappingConfig, MixedPrecisionConfig, TileConfig};
    for (digital_bias, mixed, dynamic) in
        [(false, false, false), (true, false, false), (false, true, false), (false, false, true)]
    {
        let dynamics = if dynamic {
            DynamicsConfig {
                lifetime: 500.0,
                diffusion: 1e-4,
                corrupt_devices_prob: 0.05,
                write_noise_std: 3.0,
                ..DynamicsConfig::default()
            }
        } else {
            DynamicsConfig::default()
        };
        let tile = TileConfig {
            mapping: MappingConfig { weight_scaling_omega: 0.3, columnwise: true, digital_bias },
            mixed_precision: MixedPrecisionConfig { enabled: mixed, rows_per_transfer: 5, ..Default::default() },
            dynamics,
            ..TileConfig::aihwkit_default()
        };
        let mut cfg = TrainConfig { synthetic_train: 300, synthetic_test: 100, ..small(2) };
        cfg.net.tile = Some(tile);
        let (full, full_state) = run(&cfg, 2);
        let (one_thread, one_state) = run(&cfg, 1);
        assert_eq!(comparable(&full), comparable(&one_thread));
        assert_eq!(full_state, one_state);

        let toml = resumes_to(&cfg, &format!("mapped-resume-{digital_bias}-{mixed}-{dynamic}"), &full, &full_state);
        assert!(toml.contains("weight_scaling_omega = 0.3") && toml.contains("columnwise = true"), "{toml}");
        assert!(toml.contains(&format!("digital_bias = {digital_bias}")), "{toml}");
        assert!(toml.contains(&format!("enabled = {mixed}")) && toml.contains("rows_per_transfer = 5"), "{toml}");
        let noise = if dynamic { "write_noise_std = 3.0" } else { "write_noise_std = 0.0" };
        assert!(toml.contains(noise), "{toml}");
    }
}

/// Hardware-aware training on inference tiles (`[net.inference]`, weight modifier on): the run
/// ignores the thread count, config.toml keeps the settings, a resumed run continues bit-exactly
/// (the modifier's generator is in the checkpoint), and the modifier changes the run. With
/// `[net.tile]` or an analog `net.device` it is refused, naming it.
#[test]
fn hardware_aware_run_resumes_bit_exactly_and_ignores_thread_count() {
    use crossbar_sim::{InferenceConfig, ModifierKind, WeightModifier};
    let modifier = WeightModifier { kind: ModifierKind::AddNormal, std_dev: 0.05, ..WeightModifier::default() };
    let mut cfg = TrainConfig { synthetic_train: 300, synthetic_test: 100, ..small(2) };
    cfg.net.inference = Some(InferenceConfig { modifier, ..InferenceConfig::default() });
    let (full, full_state) = run(&cfg, 2);
    let (one_thread, one_state) = run(&cfg, 1);
    assert_eq!(comparable(&full), comparable(&one_thread));
    assert_eq!(full_state, one_state);
    let mut plain = cfg.clone();
    plain.net.inference = Some(InferenceConfig::default());
    // (The states differ in their configurations anyway: compare what was learned.)
    assert_ne!(comparable(&run(&plain, 2).0), comparable(&full), "the modifier changed nothing");

    let toml = resumes_to(&cfg, "hwa-resume", &full, &full_state);
    assert!(toml.contains("[net.inference.modifier]") && toml.contains("kind = \"add-normal\""), "{toml}");

    let mut both = cfg.clone();
    both.net.device = "aihwkit-default".into();
    let e = both.validate().unwrap_err().to_string();
    assert!(e.contains("net.inference") && e.contains("net.device"), "{e}");
}

/// A network on Tiki-Taka tiles (the `tiki-taka` preset: two devices per weight, transfers
/// after every mini-batch) trains through the same loop: a checkpoint written after epoch 1
/// resumes to the same bits as the uninterrupted run (fast devices, transfer pointers and all),
/// and one thread gives the same run as two; the transfers change the run.
#[test]
fn tiki_taka_run_resumes_bit_exactly_and_ignores_thread_count() {
    let mut cfg = TrainConfig { synthetic_train: 300, synthetic_test: 100, ..small(2) };
    cfg.net.device = "tiki-taka".into();
    let (full, full_state) = run(&cfg, 2);
    let (one_thread, one_state) = run(&cfg, 1);
    assert_eq!(comparable(&full), comparable(&one_thread));
    assert_eq!(full_state, one_state);
    // The same tiles without transfers (the visible devices never move) train differently.
    let mut frozen = cfg.clone();
    frozen.net.write_out_device().unwrap();
    if let Some(t) = frozen.net.tile.as_mut() {
        t.transfer.transfer_every = 0.0;
    }
    assert_ne!(comparable(&run(&frozen, 2).0), comparable(&full), "the transfers changed nothing");
    let toml = resumes_to(&cfg, "tt-resume", &full, &full_state);
    assert!(toml.contains("device = \"tiki-taka\""), "{toml}");
}

/// A `[net.tile.transfer]` table with an explicit write update and fast device reads back as
/// written and survives a write-out; a misspelt field in it is an error naming the field.
#[test]
fn transfer_tables_read_and_round_trip() {
    let text = "[net.tile.transfer]\nenabled = true\nalgorithm = \"buffered\"\nmomentum = 0.2\n\
                [net.tile.transfer.transfer_update]\ndesired_bl = 5\n\
                [net.tile.transfer.fast_device]\nmodel = \"soft-bounds\"\n";
    let cfg = TrainConfig::from_toml_str(text).unwrap();
    cfg.validate().unwrap();
    let t = &cfg.net.tile.as_ref().unwrap().transfer;
    assert!(t.enabled && t.algorithm == crossbar_sim::TransferAlgorithm::Buffered && t.momentum == Some(0.2));
    assert_eq!(t.transfer_update.as_ref().map(|u| u.desired_bl), Some(5));
    assert_eq!(t.write_update().desired_bl, 5);
    assert!(matches!(t.fast_device, crossbar_sim::DeviceConfig::SoftBounds(_)));
    let again = TrainConfig::from_toml_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
    let e = TrainConfig::from_toml_str("[net.tile.transfer]\nenabeld = true\n").unwrap_err().to_string();
    assert!(e.contains("enabeld"), "{e}");
    // Chopped: fields left out take the algorithm's defaults (aihwkit's), not Tiki-Taka's.
    let text = "[net.tile.transfer]\nenabled = true\nalgorithm = \"chopped\"\nin_chop_prob = 0.05\nauto_scale = true\n";
    let cfg = TrainConfig::from_toml_str(text).unwrap();
    cfg.validate().unwrap();
    let t = &cfg.net.tile.as_ref().unwrap().transfer;
    assert!(t.chopped() && t.auto_scale && t.in_chop_prob == 0.05);
    assert!(!t.units_in_mbatch() && !t.scale_fast_lr() && t.momentum() == 0.0 && t.write_update().desired_bl == 1);
    assert_eq!(TrainConfig::from_toml_str(&toml::to_string(&cfg).unwrap()).unwrap(), cfg);
    let e = TrainConfig::from_toml_str(&format!("{text}n_reads_per_transfer = 2\n")).unwrap().validate().unwrap_err();
    assert!(e.to_string().contains("n_reads_per_transfer"), "{e}");
}

/// A checkpoint whose parts disagree is refused when read, naming the file and the part,
/// before anything is built from it: another network than its [net] says, a normalization
/// with a zero or NaN std, metrics that do not match the finished epochs, a conv layer whose
/// geometry is not the network's (a huge one must not be used to allocate an assignment).
#[test]
fn damaged_checkpoints_are_refused() {
    use rapa_train::train::write_checkpoint;
    let cfg = TrainConfig { synthetic_train: 200, synthetic_test: 50, ..small(1) };
    let dir = std::env::temp_dir().join(format!("rapa-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = Trainer::new(cfg.clone(), synthetic(200, 50, cfg.seed)).unwrap();
    t.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    let path = dir.join("checkpoint.bin");
    let good = read_checkpoint(&path).unwrap();
    let damaged = |f: &dyn Fn(&mut rapa_train::train::Checkpoint), needle: &str| {
        let mut ck = good.clone();
        f(&mut ck);
        let bad = dir.join("bad.bin");
        write_checkpoint(&bad, &ck).unwrap();
        let e = read_checkpoint(&bad).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, TrainError::Checkpoint { .. }), "{msg}");
        assert!(msg.contains("bad.bin") && msg.contains(needle), "`{needle}` not in {msg}");
    };
    damaged(&|ck| ck.net.config.classes = 2, "differs from the run's [net]");
    damaged(&|ck| ck.norm_std = [0.0; 3], "std");
    damaged(&|ck| ck.norm_mean[1] = f32::NAN, "normalization");
    damaged(&|ck| ck.metrics.clear(), "1 epochs finished but 0 metrics records");
    damaged(&|ck| ck.metrics[0].test_error = 1.5, "metrics record 1: test_error 1.5 is not a fraction");
    damaged(&|ck| ck.metrics[0].epoch = 0, "metrics record 1: epoch 0");
    damaged(&|ck| ck.config.epochs = 0, "config field epochs");
    // A batch size above today's limit (an older build allowed it) does not shape the model:
    // still readable.
    let mut big = good.clone();
    big.config.eval_batch = 10_000;
    write_checkpoint(&dir.join("big.bin"), &big).unwrap();
    assert_eq!(read_checkpoint(&dir.join("big.bin")).unwrap(), big);
    // The layer's geometry disagrees with the network: refused before the layer is rebuilt
    // (rebuilding would allocate one assignment entry per patch, 2^40 of them).
    let mut state = good.net.clone();
    state.convs[0].config.geometry.height = 1 << 40;
    state.convs[0].config.geometry.width = 1;
    state.convs[0].config.scheme = rapa_layers::Scheme::RandomFixed;
    let e = rapa_train::net::Network::from_state(state.clone(), 1).unwrap_err().to_string();
    assert!(e.contains("conv1 does not match"), "{e}");
    // rapa-layers refuses the geometry itself too.
    let e = rapa_layers::RapaConv2d::from_state(state.convs[0].clone()).unwrap_err().to_string();
    assert!(e.contains("height"), "{e}");
    // A pool with a mixing weight too many reads fine (parts are matched when the network is
    // rebuilt) and is refused then, naming the pool and both counts; `in_checkpoint`, which
    // every command that rebuilds a checkpoint's network applies, puts the file in front.
    let mut state = good.net.clone();
    let n = state.pools[1].mix.len();
    state.pools[1].mix.push(0.5);
    let e = rapa_train::net::Network::from_state(state, 1).unwrap_err().in_checkpoint(&path);
    let msg = e.to_string();
    assert!(matches!(e, TrainError::Checkpoint { .. }), "{msg}");
    let want = format!("{}: pool2 has {} mixing weights, the configuration needs {n}", path.display(), n + 1);
    assert!(msg.contains(&want), "`{want}` not in {msg}");
    // A refused setting keeps its field.
    let e = TrainError::Config { field: "epochs".into(), reason: "r".into() }.in_checkpoint(&path);
    assert!(matches!(&e, TrainError::Config { field, .. } if field == "epochs"), "{e:?}");
    // Not a regular file: refused at once, not read without end.
    #[cfg(unix)]
    {
        let link = dir.join("zero.bin");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read_checkpoint(&link).unwrap_err().to_string();
        assert!(e.contains("zero.bin") && e.contains("not a regular file (a device)"), "{e}");
    }
    // Longer than any checkpoint, or any metrics file: refused from the length (sparse files,
    // nothing is read).
    let huge = dir.join("huge.bin");
    std::fs::File::create(&huge).unwrap().set_len(rapa_train::train::MAX_CHECKPOINT_BYTES + 1).unwrap();
    let e = read_checkpoint(&huge).unwrap_err().to_string();
    assert!(e.contains("huge.bin") && e.contains("larger than"), "{e}");
    let metrics = dir.join("huge.jsonl");
    std::fs::File::create(&metrics).unwrap().set_len(rapa_train::train::MAX_TEXT_BYTES + 1).unwrap();
    let e = rapa_train::train::read_metrics(&metrics).unwrap_err().to_string();
    assert!(e.contains("huge.jsonl") && e.contains("larger than"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `write_atomic` replaces a file whole and leaves no temporary file; a failed write is an
/// error naming the file and leaves the old content as it was: when the rename fails (the
/// target is a non-empty directory) the temporary file it wrote is removed again, and when the
/// temporary file cannot be created (its documented name `.NAME.PID.tmp` is taken by a
/// directory) the old file keeps its bytes.
#[test]
fn write_atomic_failure_keeps_the_old_file_and_no_temporary() {
    use rapa_train::train::write_atomic;
    let root = std::env::temp_dir().join(format!("rapa-atomic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let entries = || {
        let mut v: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let target = root.join("checkpoint.bin");
    write_atomic(&target, b"old").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    write_atomic(&target, b"new contents").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new contents");
    assert_eq!(entries(), ["checkpoint.bin"], "a temporary file was left behind");

    // The rename fails: the target is a directory that is not empty.
    let busy = root.join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("inside"), b"keep").unwrap();
    let e = write_atomic(&busy, b"x").unwrap_err();
    assert!(matches!(&e, TrainError::Io { path, .. } if *path == busy), "{e:?}");
    assert_eq!(std::fs::read(busy.join("inside")).unwrap(), b"keep");
    assert_eq!(entries(), ["busy", "checkpoint.bin"], "the failed write left its temporary file");

    // The temporary file cannot be created.
    let tmp = root.join(format!(".checkpoint.bin.{}.tmp", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    let e = write_atomic(&target, b"newer").unwrap_err();
    assert!(matches!(&e, TrainError::Io { path, .. } if *path == tmp), "{e:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"new contents", "the old file was changed");
    std::fs::remove_dir(&tmp).unwrap();
    // The directory does not exist: an error, nothing created.
    let e = write_atomic(&root.join("missing").join("x.bin"), b"x").unwrap_err();
    assert!(matches!(&e, TrainError::Io { .. }), "{e:?}");
    assert_eq!(entries(), ["busy", "checkpoint.bin"]);
    let _ = std::fs::remove_dir_all(&root);
}

/// `write_atomic` (and the plots' atomic writer) refuse a target that exists but is not a
/// regular file, before writing anything: a FIFO, a symbolic link and a directory stay what
/// they were (renaming over a FIFO or device node would replace it; over a symlink, drop the
/// link), and the error names the path.
#[test]
fn atomic_writes_refuse_targets_that_are_not_regular_files() {
    use rapa_train::train::write_atomic;
    let root = std::env::temp_dir().join(format!("rapa-not-regular-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let refused = |e: TrainError, path: &std::path::Path| {
        let msg = e.to_string();
        assert!(matches!(&e, TrainError::Io { path: p, .. } if p == path), "{e:?}");
        assert!(msg.contains("is not a regular file") && msg.contains(&*path.to_string_lossy()), "{msg}");
    };
    // No temporary file is left either.
    let only = |names: &[&str]| {
        let mut v: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        assert_eq!(v, names);
    };
    let dir = root.join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    refused(write_atomic(&dir, b"x").unwrap_err(), &dir);
    assert!(std::fs::symlink_metadata(&dir).unwrap().is_dir());
    #[cfg(unix)]
    {
        let target = root.join("target.bin");
        std::fs::write(&target, b"kept").unwrap();
        let link = root.join("link.bin");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        refused(write_atomic(&link, b"x").unwrap_err(), &link);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
        assert_eq!(std::fs::read(&target).unwrap(), b"kept");
        only(&["a-directory", "link.bin", "target.bin"]);
        std::fs::remove_file(&link).unwrap();
        std::fs::remove_file(&target).unwrap();
    }
    #[cfg(unix)]
    {
        let fifo = root.join("fifo.bin");
        match std::process::Command::new("mkfifo").arg(&fifo).status() {
            Ok(s) if s.success() => {
                use std::os::unix::fs::FileTypeExt;
                let is_fifo = || std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo();
                refused(write_atomic(&fifo, b"x").unwrap_err(), &fifo);
                assert!(is_fifo(), "write_atomic replaced the FIFO");
                #[cfg(feature = "plots")]
                {
                    let series = vec![("a".to_string(), vec![(0.0, 0.5), (1.0, 0.25)])];
                    let e = rapa_train::analysis::plots::line_plot(&fifo, "t", "x", "y", &series).unwrap_err();
                    refused(e, &fifo);
                    assert!(is_fifo(), "the plot replaced the FIFO");
                    let e = rapa_train::analysis::plots::line_plot(&dir, "t", "x", "y", &series).unwrap_err();
                    refused(e, &dir);
                }
                only(&["a-directory", "fifo.bin"]);
            }
            other => eprintln!("skipping the FIFO case: mkfifo unavailable ({other:?})"),
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// The per-conv-layer arrays of `[net]` need exactly three values: a fourth (or a missing
/// third) is an error naming the field and the length, not silently dropped.
#[test]
fn per_layer_config_arrays_need_exactly_three_values() {
    for (field, three) in [("channels", "[8, 8, 8]"), ("tiles", "[16, 4, 1]"), ("lr_scale", "[1.0, 1.0, 1.0]")] {
        let cfg = TrainConfig::from_toml_str(&format!("[net]\n{field} = {three}\n")).unwrap();
        cfg.validate().unwrap();
        for (value, n) in
            [(format!("{}, 7]", &three[..three.len() - 1]), 4), ("[1, 1]".to_string(), 2), ("[]".into(), 0)]
        {
            let e = TrainConfig::from_toml_str(&format!("[net]\n{field} = {value}\n")).unwrap_err();
            assert!(e.contains(&format!("net.{field}")) && e.contains("exactly 3 values"), "{field}: {e}");
            assert!(e.contains(&format!("got {n}")), "{field} = {value}: {e}");
        }
    }
    // The arrays still round-trip (TOML, and MessagePack as in checkpoints).
    let mut cfg = TrainConfig::default();
    cfg.net.channels = [8, 9, 10];
    cfg.net.lr_scale = [0.5, 2.0, 1.0];
    assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml().unwrap()).unwrap(), cfg);
}

/// Thread counts above MAX_THREADS (machine-independent) are refused by the configuration and
/// by the compute pool, naming the setting and the value.
#[test]
fn thread_counts_are_bounded() {
    use rapa_train::train::MAX_THREADS;
    assert_eq!(MAX_THREADS, 1024);
    TrainConfig { threads: MAX_THREADS, ..TrainConfig::default() }.validate().unwrap();
    for n in [MAX_THREADS + 1, 100_000] {
        match (TrainConfig { threads: n, ..TrainConfig::default() }).validate().unwrap_err() {
            TrainError::Config { field, reason } => {
                assert_eq!(field, "threads");
                assert!(reason.contains(&format!("got {n}")) && reason.contains("1024"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        match rapa_train::runtime::compute_pool(n, true).map(|_| ()).unwrap_err() {
            TrainError::Config { field, reason } => {
                assert_eq!(field, "threads");
                assert!(reason.contains(&format!("got {n}")), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    // An empty synthetic test set is reported as that field, not synthetic_train.
    match (TrainConfig { synthetic_test: 0, ..TrainConfig::default() }).validate().unwrap_err() {
        TrainError::Config { field, .. } => assert_eq!(field, "synthetic_test"),
        other => panic!("{other:?}"),
    }
    match (TrainConfig { synthetic_train: 0, ..TrainConfig::default() }).validate().unwrap_err() {
        TrainError::Config { field, .. } => assert_eq!(field, "synthetic_train"),
        other => panic!("{other:?}"),
    }
}

/// A checkpoint with bytes after the encoded checkpoint, or with a NaN or infinite weight, is
/// refused at load, naming the file (and the tensor).
#[test]
fn checkpoints_with_trailing_bytes_or_non_finite_weights_are_refused() {
    use crossbar_sim::{FloatTile, Tile, TileSnapshot};
    use rapa_train::train::{Checkpoint, write_checkpoint};
    let cfg = TrainConfig { synthetic_train: 200, synthetic_test: 50, ..small(1) };
    let dir = std::env::temp_dir().join(format!("rapa-ck-strict-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = Trainer::new(cfg.clone(), synthetic(200, 50, cfg.seed)).unwrap();
    t.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    let path = dir.join("checkpoint.bin");
    let good = read_checkpoint(&path).unwrap();
    let refused = |file: &std::path::Path, needles: &[&str]| {
        let e = read_checkpoint(file).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, TrainError::Checkpoint { .. }), "{msg}");
        assert!(msg.contains(&*file.to_string_lossy()), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "`{n}` not in {msg}");
        }
    };
    // The file is the MessagePack payload and an 8-byte trailer: b"rck\x01", then the CRC-32
    // of the payload (little-endian).
    let bytes = std::fs::read(&path).unwrap();
    let (payload, trailer) = bytes.split_at(bytes.len() - 8);
    assert_eq!(&trailer[..4], b"rck\x01");
    assert_eq!(trailer[4..], crc32fast::hash(payload).to_le_bytes());
    // A file without the trailer (written before it existed) still loads.
    let legacy = dir.join("legacy.bin");
    std::fs::write(&legacy, payload).unwrap();
    assert_eq!(read_checkpoint(&legacy).unwrap(), good);
    // Any flipped byte of the payload, or of the stored checksum, is a checksum mismatch (CRC-32
    // detects every single-byte error).
    for at in [0, payload.len() / 2, payload.len() - 1, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let file = dir.join("damaged.bin");
        std::fs::write(&file, &damaged).unwrap();
        refused(&file, &["checksum mismatch"]);
    }
    // Trailing bytes: one MessagePack nil after a trailer-less payload; a second copy appended
    // to a whole file ends in a trailer whose checksum does not cover what precedes it.
    let trailing = dir.join("trailing.bin");
    std::fs::write(&trailing, [payload, &[0xc0]].concat()).unwrap();
    refused(&trailing, &["1 trailing bytes"]);
    std::fs::write(&trailing, [&bytes[..], &bytes[..]].concat()).unwrap();
    refused(&trailing, &["checksum mismatch"]);
    // Non-finite weights.
    let poisoned = |f: &dyn Fn(&mut Checkpoint), needles: &[&str]| {
        let mut ck = good.clone();
        f(&mut ck);
        let bad = dir.join("nonfinite.bin");
        write_checkpoint(&bad, &ck).unwrap();
        refused(&bad, needles);
    };
    let with = |t: &TileSnapshot, v: f32| match t {
        TileSnapshot::Float(f) => {
            let mut w = f.weights().to_owned();
            w[[0, 1]] = v;
            TileSnapshot::Float(FloatTile::from_weights(w))
        }
        _ => panic!("float tiles expected"),
    };
    poisoned(
        &|ck| ck.net.convs[1].tiles[2] = with(&ck.net.convs[1].tiles[2], f32::NAN),
        &["conv2 tile 3 weights", "NaN"],
    );
    poisoned(&|ck| ck.net.fc = with(&ck.net.fc, f32::INFINITY), &["fc weights", "inf"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The checkpoints of the documented Table 2 runs (an earlier build's) still load with every
/// check of this one.
#[test]
fn documented_checkpoints_still_load() {
    let runs =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results/runs/table2-cifar10-80ep-full");
    let Ok(entries) = std::fs::read_dir(&runs) else {
        eprintln!("skipping: no {}", runs.display());
        return;
    };
    let mut n = 0;
    for e in entries {
        let ck = e.unwrap().path().join("checkpoint.bin");
        if ck.exists() {
            let c = read_checkpoint(&ck).unwrap_or_else(|e| panic!("{}: {e}", ck.display()));
            assert!(c.epoch > 0);
            n += 1;
        }
    }
    assert!(n > 0, "no checkpoints under {}", runs.display());
}

/// `rapa experiment --collect` checks a run's settings against the plan; a run whose
/// `config.toml` was lost is checked against the settings stored in its checkpoint instead of
/// passing unchecked.
#[test]
fn settings_are_checked_against_the_checkpoint_without_config_toml() {
    use rapa_train::experiment::check_settings;
    let cfg = TrainConfig { synthetic_train: 200, synthetic_test: 50, ..small(1) };
    let dir = std::env::temp_dir().join(format!("rapa-settings-ck-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = Trainer::new(cfg.clone(), synthetic(200, 50, cfg.seed)).unwrap();
    t.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    std::fs::remove_file(dir.join("config.toml")).unwrap();
    check_settings(&dir, &cfg).unwrap();
    let other = TrainConfig { lr: 0.01, ..cfg.clone() };
    let err = check_settings(&dir, &other).unwrap_err();
    assert!(matches!(&err, TrainError::Config { field, .. } if field == "lr"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A NaN weight stops training with a typed error naming the tensor, before that epoch's
/// checkpoint is written: the run directory keeps the previous, readable checkpoint. (A NaN in
/// conv1 does not show in the loss: the ReLU maps NaN outputs to 0.)
#[test]
fn a_nan_weight_stops_training_and_keeps_the_last_good_checkpoint() {
    let cfg = TrainConfig { synthetic_train: 200, synthetic_test: 100, ..small(2) };
    let dir = std::env::temp_dir().join(format!("rapa-nan-weight-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = || synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.seed);
    let mut first = Trainer::new(TrainConfig { epochs: 1, ..cfg.clone() }, data()).unwrap();
    first.fit(Some(&dir), &mut |_| {}, &mut |_| {}).unwrap();
    let mut t = Trainer::resume(read_checkpoint(&dir.join("checkpoint.bin")).unwrap(), data(), Some(2)).unwrap();
    let tile = &mut t.net_mut().convs_mut()[0].tiles_mut()[2];
    let mut w = tile.weights().to_owned();
    w[[1, 4]] = f32::NAN;
    tile.set_weights(w.view()).unwrap();
    let mut losses = Vec::new();
    let e = t.fit(Some(&dir), &mut |_| {}, &mut |m| losses.push(m.loss)).unwrap_err();
    match &e {
        TrainError::NonFiniteWeights { epoch, tensor, value, .. } => {
            assert_eq!((*epoch, tensor.as_str()), (2, "conv1 tile 3 weights"), "{e}");
            assert!(value.is_nan());
        }
        other => panic!("expected NonFiniteWeights, got {other}"),
    }
    assert!(losses.iter().all(|l| l.is_finite()), "the loss did not show it: {losses:?}");
    let ck = read_checkpoint(&dir.join("checkpoint.bin")).unwrap();
    assert_eq!(ck.epoch, 1, "the checkpoint of epoch 1 is kept");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every configuration shipped in `examples/configs` (the documented runs start from them)
/// parses and passes validation with the current code, including its tile settings.
#[test]
fn shipped_example_configs_are_valid() {
    fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(files.len() >= 30, "only {} configs under {}", files.len(), root.display());
    for file in files {
        let cfg = TrainConfig::from_toml_file(&file).unwrap_or_else(|e| panic!("{e}"));
        cfg.validate().unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Some(tile) = &cfg.net.tile {
            tile.validate().unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
}
