//! Analog inference of trained networks on PCM (`PcmChip`, `pcm_curve`, `rapa inference`):
//! a noise-free chip computes the digital network, chips are reproducible on any thread count,
//! and bad input is a named error.

use std::path::{Path, PathBuf};
use std::process::Command;

use crossbar_sim::{BoundManagement, InferenceConfig, IoConfig, NoiseManagement, PcmNoiseModel, Tile};
use ndarray::Array4;
use rapa_layers::Scheme;
use rapa_train::analysis::{PcmChip, PcmEval, TileLoc, make_digital, pcm_curve};
use rapa_train::data::{Normalizer, fill_batch, synthetic};
use rapa_train::net::{Init, NetConfig, Network};

fn tiny() -> Network {
    let cfg = NetConfig {
        channels: [4, 4, 4],
        tiles: [4, 2, 1],
        scheme: Scheme::Random,
        init: Init::He,
        ..NetConfig::default()
    };
    Network::new(&cfg, 3).unwrap()
}

/// Every PCM effect off, and the converters, noise and bounds of the periphery off (noise
/// management stays: it scales each input vector into the DAC's ±1 exactly, where activations
/// beyond 1 would otherwise be clipped).
fn noise_free() -> InferenceConfig {
    InferenceConfig {
        forward: IoConfig {
            inp_res: 0.0,
            out_res: 0.0,
            out_bound: 0.0,
            out_noise: 0.0,
            noise_management: NoiseManagement::AbsMax,
            bound_management: BoundManagement::None,
            ..IoConfig::default()
        },
        pcm: PcmNoiseModel {
            prog_noise_scale: 0.0,
            read_noise_scale: 0.0,
            drift_scale: 0.0,
            ..PcmNoiseModel::default()
        },
        ..InferenceConfig::default()
    }
}

/// Programming every tile (mapping, digital bias, compensation on) without any noise gives back
/// the digital network's logits, on the same patch assignments; with the default PCM model they
/// differ. Every tile of every layer is on the chip, in order.
#[test]
fn a_noise_free_chip_computes_the_digital_network() {
    let state = tiny().state();
    let data = synthetic(20, 10, 1);
    let norm = Normalizer::fit(&data.train);
    let mut x = Array4::zeros((10, 3, 32, 32));
    fill_batch(&data.test, &(0..10).collect::<Vec<_>>(), &norm, None, &mut x);
    let logits = |cfg: Option<&InferenceConfig>| {
        let mut net = Network::from_state(state.clone(), 3).unwrap();
        if let Some(cfg) = cfg {
            let base = Network::from_state(state.clone(), 3).unwrap();
            let chip = PcmChip::program(&base, cfg, 7).unwrap();
            let locs: Vec<TileLoc> = chip.tiles().iter().map(|(l, _)| *l).collect();
            let want: Vec<(usize, usize)> = vec![(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (2, 0), (3, 0)];
            assert_eq!(locs.iter().map(|l| (l.layer, l.tile)).collect::<Vec<_>>(), want);
            chip.read_into(&mut net, 1e5).unwrap();
        }
        net.set_training(false);
        net.forward(x.view()).unwrap()
    };
    let digital = logits(None);
    let chip = logits(Some(&noise_free()));
    let scale = digital.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = (&digital - &chip).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err <= 1e-4 * scale, "noise-free chip differs by {err} (logits up to {scale})");
    let noisy = logits(Some(&InferenceConfig::default()));
    let err = (&digital - &noisy).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err > 1e-3 * scale, "the default PCM model changed nothing ({err})");
}

/// `pcm_curve` gives the same errors on 1 and 2 threads, and chips differ from each other
/// (their tiles' programmed conductances).
#[test]
fn chips_are_reproducible_on_any_thread_count() {
    let state = tiny().state();
    let data = synthetic(20, 40, 2);
    let norm = Normalizer::fit(&data.train);
    let eval = PcmEval {
        cfg: InferenceConfig::default(),
        times: vec![0.0, 3600.0],
        repeats: 2,
        seed: 5,
        batch: 16,
        layers: vec![],
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| pcm_curve(&state, 3, &data.test, &norm, &eval).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two);
    assert_eq!(one.len(), 4);
    assert_eq!(
        one.iter().map(|p| (p.repeat, p.t_inference)).collect::<Vec<_>>(),
        [(0, 0.0), (0, 3600.0), (1, 0.0), (1, 3600.0)]
    );
    let base = Network::from_state(state, 3).unwrap();
    let (a, b) = (PcmChip::program(&base, &eval.cfg, 1).unwrap(), PcmChip::program(&base, &eval.cfg, 2).unwrap());
    assert_ne!(a.tiles()[0].1.devices(), b.tiles()[0].1.devices());
    assert_eq!(a.tiles()[0].1.weights().dim(), base.convs()[0].tiles()[0].weights().dim());
}

/// Negative or non-finite times, zero repeats and a tile of another shape are named errors.
#[test]
fn bad_arguments_are_named_errors() {
    let state = tiny().state();
    let data = synthetic(10, 10, 3);
    let norm = Normalizer::fit(&data.train);
    for (times, repeats, needle) in [(vec![-1.0], 1, "-1"), (vec![f64::NAN], 1, "NaN"), (vec![1.0], 0, "repeats")] {
        let eval = PcmEval { cfg: InferenceConfig::default(), times, repeats, seed: 1, batch: 8, layers: vec![] };
        let e = pcm_curve(&state, 3, &data.test, &norm, &eval).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    let mut net = tiny();
    let wrong = Box::new(crossbar_sim::FloatTile::new(4, 7));
    let e = net.convs_mut()[0].replace_tile(0, wrong).unwrap_err();
    assert!(e.to_string().contains("replace_tile"), "{e}");
    let e = net.convs_mut()[0].replace_tile(9, Box::new(crossbar_sim::FloatTile::new(4, 76))).unwrap_err();
    assert!(e.to_string().contains("4 tiles"), "{e}");
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rapa-pcm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

fn rapa_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let r =
        Command::new(env!("CARGO_BIN_EXE_rapa")).current_dir(dir).args(args).output().expect("the rapa binary runs");
    (r.status.code(), String::from_utf8_lossy(&r.stdout).into_owned(), String::from_utf8_lossy(&r.stderr).into_owned())
}

/// `rapa inference` on a small trained run writes one CSV row per chip, compensation and time
/// plus the digital error, and a PNG; bad times, compensations and configuration files are
/// refused naming them, leaving no output behind.
#[test]
fn the_inference_command_writes_its_table_and_refuses_bad_input() {
    let dir = fresh_dir("cli");
    let small = ["--dataset", "synthetic", "--limit-train", "200", "--limit-test", "60", "--threads", "1"];
    let mut train = vec!["train", "--epochs", "1", "--out", "m"];
    train.extend(small);
    let (code, _, stderr) = rapa_in(&dir, &train);
    assert_eq!(code, Some(0), "{stderr}");
    let args = ["inference", "--model", "m", "--repeats", "2", "--t-inference", "0,3600", "--threads", "1"];
    let (code, stdout, stderr) = rapa_in(&dir, &[&args[..], &["--compensation", "global,none", "--out", "o"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("digital test error"), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("o/inference.csv")).expect("inference.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "model,compensation,t_inference_s,repeat,test_error,layers");
    assert_eq!(lines.len(), 1 + 1 + 2 * 2 * 2, "{csv}");
    assert!(lines[1].starts_with("m,digital,,,"), "{csv}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("m,none,3600,1,") && l.ends_with(",all")).count(), 1, "{csv}");
    assert!(dir.join("o/inference.png").metadata().expect("inference.png").len() > 1000);

    std::fs::write(dir.join("bad.toml"), "[pcm]\ng_maximum = 3\n").expect("write");
    std::fs::write(dir.join("range.toml"), "[pcm]\nt_0 = 1e-9\n").expect("write");
    for (extra, needles) in [
        (&["--t-inference", "-5"][..], &["--t-inference", "-5"][..]),
        (&["--t-inference", "1e13"], &["--t-inference", "10000000000000", "1e12"]),
        (&["--t-inference", "60,1,60"], &["--t-inference", "60 twice", "entries 1 and 3"]),
        (&["--layers", "conv4"], &["--layers", "conv4", "conv1, conv2, conv3, fc"]),
        (&["--layers", "fc,fc"], &["--layers", "fc twice"]),
        (&["--compensation", "mean"], &["mean", "per-column"]),
        (&["--config", "bad.toml"], &["bad.toml", "g_maximum"]),
        (&["--config", "range.toml"], &["range.toml", "pcm.t_0"]),
    ] {
        let (code, _, stderr) = rapa_in(&dir, &[&args[..3], extra, &["--out", "x"]].concat());
        assert!(code == Some(1) || code == Some(2), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{extra:?}: `{n}` not in {stderr}");
        }
    }
    assert!(!dir.join("x").exists(), "an output directory was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped example inference configuration parses, validates and sets what it says.
#[test]
fn the_example_inference_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/inference/pcm-half-drift.toml");
    let cfg: InferenceConfig = rapa_train::train::read_toml(&path).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.compensation, crossbar_sim::DriftCompensation::PerColumn);
    assert_eq!(cfg.pcm.drift_scale, 0.5);
    assert_eq!(cfg.forward.out_noise, 0.04);
    assert_eq!(cfg.pcm.t_0, PcmNoiseModel::default().t_0);
}

/// A chip of some layers holds only their tiles, with the devices those tiles get on a whole
/// chip of the same seed; the other layers keep their digital tiles; a layer that does not exist
/// is a named error.
#[test]
fn single_layers_go_on_pcm_with_the_devices_of_the_whole_chip() {
    let base = tiny();
    let cfg = InferenceConfig::default();
    let whole = PcmChip::program(&base, &cfg, 9).unwrap();
    let part = PcmChip::program_layers(&base, &cfg, 9, &[1, 3]).unwrap();
    let locs: Vec<(usize, usize)> = part.tiles().iter().map(|(l, _)| (l.layer, l.tile)).collect();
    assert_eq!(locs, [(1, 0), (1, 1), (3, 0)]);
    for (loc, t) in part.tiles() {
        let (_, w) = whole.tiles().iter().find(|(l, _)| l == loc).unwrap();
        assert_eq!(w.devices(), t.devices());
    }
    let mut net = Network::from_state(base.state(), 3).unwrap();
    part.read_into(&mut net, 60.0).unwrap();
    assert!(matches!(net.convs()[0].tiles()[0].snapshot(), crossbar_sim::TileSnapshot::Float(_)));
    assert!(matches!(net.convs()[1].tiles()[0].snapshot(), crossbar_sim::TileSnapshot::Inference(_)));
    assert!(matches!(net.fc().tile().snapshot(), crossbar_sim::TileSnapshot::Inference(_)));
    let e = PcmChip::program_layers(&base, &cfg, 9, &[4]).unwrap_err();
    assert!(e.to_string().contains("layer 4 does not exist"), "{e}");
}

/// An analog-trained network (analog tiles with a weight mapping and a digital bias, here with an
/// exact periphery) goes onto the chip with its effective weights: a noise-free chip computes
/// what the analog network computes.
#[test]
fn analog_tiles_go_on_the_chip_with_their_effective_weights() {
    let tile = crossbar_sim::TileConfig {
        forward: IoConfig::perfect(),
        backward: IoConfig::perfect(),
        device: crossbar_sim::DeviceConfig::Ideal,
        mapping: crossbar_sim::MappingConfig { weight_scaling_omega: 0.8, columnwise: true, digital_bias: true },
        ..crossbar_sim::TileConfig::default()
    };
    let cfg = NetConfig { tile: Some(tile), ..tiny().config().clone() };
    let state = Network::new(&cfg, 4).unwrap().state();
    let data = synthetic(20, 10, 1);
    let norm = Normalizer::fit(&data.train);
    let mut x = Array4::zeros((10, 3, 32, 32));
    fill_batch(&data.test, &(0..10).collect::<Vec<_>>(), &norm, None, &mut x);
    let mut analog = Network::from_state(state.clone(), 4).unwrap();
    assert!(matches!(analog.convs()[0].tiles()[0].snapshot(), crossbar_sim::TileSnapshot::Analog(_)));
    analog.set_training(false);
    let want = analog.forward(x.view()).unwrap();
    let mut net = Network::from_state(state.clone(), 4).unwrap();
    let base = Network::from_state(state.clone(), 4).unwrap();
    PcmChip::program(&base, &noise_free(), 8).unwrap().read_into(&mut net, 10.0).unwrap();
    net.set_training(false);
    let got = net.forward(x.view()).unwrap();
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = (&want - &got).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err <= 1e-4 * scale, "differs by {err} (logits up to {scale})");
    // Its digital copy: float tiles with the same effective weights, the same outputs.
    let mut digital = Network::from_state(state, 4).unwrap();
    make_digital(&mut digital).unwrap();
    assert!(matches!(digital.convs()[0].tiles()[0].snapshot(), crossbar_sim::TileSnapshot::Float(_)));
    assert!(matches!(digital.fc().tile().snapshot(), crossbar_sim::TileSnapshot::Float(_)));
    digital.set_training(false);
    let got = digital.forward(x.view()).unwrap();
    let err = (&want - &got).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err <= 1e-4 * scale, "digital copy differs by {err}");
}
