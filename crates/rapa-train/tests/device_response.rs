//! The pulse response of a device (`rapa_train::analysis::pulse_response`, `rapa device`):
//! exact step sequences of noise-free devices, stuck devices, seeds, errors, and the command's
//! files.

use std::process::Command;

use crossbar_sim::device::{PulsedParams, SoftBounds};
use crossbar_sim::{DeviceConfig, DynamicsConfig, TileConfig};
use rapa_train::TrainError;
use rapa_train::analysis::{default_pulses, pulse_response};

fn noise_free() -> PulsedParams {
    PulsedParams { dw_min: 0.01, ..PulsedParams::default().without_variation() }
}

/// Constant step without variation, bounds ±0.6, step 0.01: after k pulses up from 0 the weight
/// is min(k·0.01, 0.6), then down again to −0.6 and back. Each pulse adds the step in f32, so
/// the error after k pulses is at most k half-ulps of 0.6 (k·0.6·ε/2 < k·ε).
#[test]
fn constant_step_climbs_and_saturates_at_its_bounds() {
    let cfg = TileConfig { device: DeviceConfig::ConstantStep(noise_free()), ..TileConfig::default() };
    let r = pulse_response(&cfg, 2, 100, 2, 1).unwrap();
    assert_eq!(r.pulses.len(), 2 * 2 * 2 * 100);
    assert_eq!(r.bounds, vec![(-0.6, 0.6); 2]);
    for t in 0..2 {
        let mut want = 0.0f64;
        let mut k = 0;
        for p in r.pulses.iter().filter(|p| p.trace == t) {
            k += 1;
            assert_eq!(p.index, k);
            want = (want + if p.up { 0.01 } else { -0.01 }).clamp(-0.6, 0.6);
            let tol = k as f64 * f64::from(f32::EPSILON);
            assert!((f64::from(p.after) - want).abs() <= tol, "trace {t} pulse {k}: {} vs {want}", p.after);
        }
        // Up 100 (0 → 0.6 after 60), down 100 (→ −0.4), up 100 (→ 0.6), down 100 (→ −0.4).
        let last = r.pulses.iter().rfind(|p| p.trace == t).unwrap();
        assert!((last.after + 0.4).abs() < 1e-4, "{}", last.after);
    }
}

/// Soft bounds without variation: every up pulse moves w by s(1 − w/b_max) and every down
/// pulse by −s(1 − w/b_min), to f32 rounding: the step's own rounding is below ε·s, and w_after
/// and w_before are each rounded to half an ulp of |w| ≤ 0.6, so the difference errs by less
/// than 2ε.
#[test]
fn soft_bounds_steps_shrink_linearly_toward_the_bounds() {
    let device = DeviceConfig::SoftBounds(SoftBounds { params: noise_free(), ..SoftBounds::default() });
    let cfg = TileConfig { device, ..TileConfig::default() };
    let r = pulse_response(&cfg, 1, 300, 1, 3).unwrap();
    for p in &r.pulses {
        let (w, s) = (f64::from(p.before), 0.01f64);
        let want = if p.up { s * (1.0 - w / 0.6) } else { -s * (1.0 - w / -0.6) };
        let got = f64::from(p.after) - w;
        assert!((got - want).abs() < 4.0 * f64::from(f32::EPSILON), "pulse {} at w = {w}: {got} vs {want}", p.index);
    }
    // 300 up pulses approach b_max as 0.6·(1 − (1 − s/0.6)^k).
    let top = r.pulses[299].after;
    let want = 0.6 * (1.0 - (1.0 - 0.01f64 / 0.6).powi(300));
    assert!((f64::from(top) - want).abs() < 1e-4, "{top} vs {want}");
}

/// Stuck devices do not respond; the same seed gives the same response, another seed another.
#[test]
fn stuck_devices_are_flat_and_seeds_reproduce() {
    let stuck = TileConfig {
        dynamics: DynamicsConfig { corrupt_devices_prob: 1.0, ..DynamicsConfig::default() },
        ..TileConfig::default()
    };
    let r = pulse_response(&stuck, 3, 20, 1, 5).unwrap();
    for p in &r.pulses {
        let (lo, hi) = r.bounds[p.trace];
        assert!(lo == hi && p.after == lo && p.before == lo, "{p:?}");
    }
    // A configuration with a digital bias works (its tile gets the bias input beside the device).
    let biased = TileConfig {
        mapping: crossbar_sim::MappingConfig { digital_bias: true, ..Default::default() },
        ..TileConfig::default()
    };
    assert_eq!(pulse_response(&biased, 2, 10, 1, 1).unwrap().pulses.len(), 40);
    let cfg = TileConfig::default();
    let a = pulse_response(&cfg, 2, 50, 1, 7).unwrap();
    assert_eq!(a, pulse_response(&cfg, 2, 50, 1, 7).unwrap());
    assert_ne!(a, pulse_response(&cfg, 2, 50, 1, 8).unwrap());
    let lines = a.csv().lines().count();
    assert_eq!(lines, 1 + 2 * 2 * 50);
    let csv = a.csv();
    assert_eq!(csv.lines().next(), Some("trace,pulse,direction,w_before,w_after"));
    assert!(csv.lines().nth(1).is_some_and(|l| l.starts_with("0,1,up,0,")), "{csv}");
}

#[test]
fn bad_requests_are_typed_errors() {
    let field = |r: Result<_, TrainError>| match r {
        Err(TrainError::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let cfg = TileConfig::default();
    assert_eq!(field(pulse_response(&cfg, 0, 10, 1, 1)), "--traces");
    assert_eq!(field(pulse_response(&cfg, 1, 0, 1, 1)), "--pulses");
    assert_eq!(field(pulse_response(&cfg, 1, 10, 0, 1)), "--cycles");
    assert_eq!(field(pulse_response(&cfg, 100, 100_000, 1, 1)), "--traces/--pulses/--cycles");
    assert_eq!(field(pulse_response(&TileConfig::perfect(), 1, 10, 1, 1)), "device");
    // The default crosses the mean range 1.5 times: 1.5 · 1.2 / 0.001 = 1 800 pulses.
    assert_eq!(default_pulses(&cfg), 1800);
}

/// `rapa device` writes the PNG and the CSV (one line per pulse), and refuses float tiles, an
/// unknown preset and an output that is not a PNG, naming the flag.
#[test]
fn device_command_writes_png_and_csv() {
    let dir = std::env::temp_dir().join(format!("rapa-device-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("cap.png");
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_rapa")).args(args).output().expect("rapa runs");
    let ok =
        run(&["device", "--device", "capacitor", "--pulses", "40", "--traces", "3", "--out", out.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let png = std::fs::read(&out).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let csv = std::fs::read_to_string(out.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 2 * 2 * 40);
    for (args, flag) in [
        (vec!["device", "--device", "float"], "--device"),
        (vec!["device", "--device", "memristor"], "--device"),
        (vec!["device", "--out", "x.svg"], "--out"),
        (vec!["device", "--traces", "0", "--out", out.to_str().unwrap()], "--traces"),
    ] {
        let r = run(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("error:") && err.contains(flag) && !err.contains("panicked"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
