//! Power-law drift (`DriftConfig`, `AnalogTile::drift_weights`): the power law in the tile's
//! clock, restarts of changed devices, the drawn exponents, read noise, threads and state.

mod common;

use common::{on_threads, uniform};
use crossbar_sim::device::PulsedParams;
use crossbar_sim::{AnalogTile, ConfigError, DeviceConfig, DriftConfig, DynamicsConfig, SimError, Tile, TileConfig};

/// A constant-step device without variation and with bounds far away.
fn far_bounds() -> DeviceConfig {
    DeviceConfig::ConstantStep(PulsedParams {
        w_max: 10.0,
        w_min: -10.0,
        ..PulsedParams::default().without_variation()
    })
}

fn drifting(drift: DriftConfig) -> TileConfig {
    TileConfig {
        device: far_bounds(),
        dynamics: DynamicsConfig { drift, ..DynamicsConfig::default() },
        ..TileConfig::default()
    }
}

fn rel_close(got: f32, want: f64, what: &str) {
    // powf and the product round to a few ulps.
    assert!((f64::from(got) - want).abs() <= 1e-6 * want.abs().max(1e-3), "{what}: {got} vs {want}");
}

/// Unchanged weights follow w₀·max(t, 1)^(−ν) in the tile's clock t = Σ Δt/t₀, computed from
/// the programmed weight each time (not compounded); a clock below t₀ changes nothing.
#[test]
fn weights_follow_the_power_law() {
    let nu = 0.1f64;
    let mut tile =
        AnalogTile::new(4, 6, &drifting(DriftConfig { nu: nu as f32, t_0: 2.0, ..DriftConfig::default() }), 1).unwrap();
    let w0 = uniform(4, 6, 0.5, 2);
    tile.set_weights(w0.view()).unwrap();
    tile.drift_weights(1.0).unwrap(); // t = 0.5: max(t, 1) = 1
    assert_eq!(tile.weights(), w0.view());
    for k in 1..=5 {
        tile.drift_weights(3.0).unwrap(); // t = 0.5 + 1.5k
        let t = 0.5 + 1.5 * f64::from(k);
        for (&w, &w0) in tile.weights().iter().zip(&w0) {
            rel_close(w, f64::from(w0) * t.powf(-nu), &format!("call {k}"));
        }
    }
    assert!((tile.drift_state().time - 8.0).abs() < 1e-6);
}

/// A device whose weight changed since the last call (here: reprogrammed) restarts: on that call
/// it keeps its new value, and from then on drifts in the time since the restart; the others go
/// on in the whole clock.
#[test]
fn changed_devices_restart_their_drift() {
    let nu = 0.2f64;
    let mut tile =
        AnalogTile::new(3, 4, &drifting(DriftConfig { nu: nu as f32, ..DriftConfig::default() }), 1).unwrap();
    let w0 = uniform(3, 4, 0.5, 3);
    tile.set_weights(w0.view()).unwrap();
    tile.drift_weights(4.0).unwrap(); // t = 4
    let mut w = tile.weights().to_owned();
    w.row_mut(0).fill(0.3);
    tile.set_weights(w.view()).unwrap();
    tile.drift_weights(2.0).unwrap(); // t = 6; row 0 restarts at 6
    for ((i, j), &v) in tile.weights().indexed_iter() {
        let want = if i == 0 { 0.3 } else { f64::from(w0[[i, j]]) * 6f64.powf(-nu) };
        rel_close(v, want, &format!("({i}, {j}) after the restart"));
    }
    tile.drift_weights(3.0).unwrap(); // t = 9
    for ((i, j), &v) in tile.weights().indexed_iter() {
        let want = if i == 0 { 0.3 * 3f64.powf(-nu) } else { f64::from(w0[[i, j]]) * 9f64.powf(-nu) };
        rel_close(v, want, &format!("({i}, {j}) later"));
    }
}

/// The exponents ν_ij = ν(1 + nu_dtod·ξ): mean ν and spread ν·nu_dtod over 4 096 devices within
/// 5 standard errors; read noise adds N(0, w_noise_std²) to each drifted weight (against the same
/// tile without it: same seeds, same clock).
#[test]
fn exponents_and_read_noise_follow_their_distributions() {
    let (nu, dtod) = (0.05f64, 0.4f64);
    let cfg = drifting(DriftConfig { nu: nu as f32, nu_dtod: dtod as f32, ..DriftConfig::default() });
    let tile = AnalogTile::new(64, 64, &cfg, 7).unwrap();
    let v: Vec<f64> = tile.drift_state().nu.iter().map(|&x| f64::from(x)).collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let want_sd = nu * dtod;
    assert!((mean - nu).abs() < 5.0 * want_sd / n.sqrt(), "mean {mean}");
    assert!((sd - want_sd).abs() < 5.0 * want_sd / (2.0 * n).sqrt(), "spread {sd}");

    let sigma = 0.01f64;
    let noisy = drifting(DriftConfig { nu: 0.1, w_noise_std: sigma as f32, ..DriftConfig::default() });
    let quiet = drifting(DriftConfig { nu: 0.1, ..DriftConfig::default() });
    let (mut a, mut b) = (AnalogTile::new(64, 64, &noisy, 7).unwrap(), AnalogTile::new(64, 64, &quiet, 7).unwrap());
    let w0 = uniform(64, 64, 0.5, 1);
    a.set_weights(w0.view()).unwrap();
    b.set_weights(w0.view()).unwrap();
    a.drift_weights(10.0).unwrap();
    b.drift_weights(10.0).unwrap();
    let d: Vec<f64> = a.weights().iter().zip(b.weights()).map(|(&x, &y)| f64::from(x) - f64::from(y)).collect();
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    assert!(mean.abs() < 5.0 * sigma / n.sqrt(), "noise mean {mean}");
    assert!((var - sigma * sigma).abs() < 5.0 * sigma * sigma * (2.0 / (n - 1.0)).sqrt(), "noise variance {var}");
}

/// Drift clips to the device bounds, runs the same on any number of threads, is kept in the
/// state (a restored tile drifts on identically), and acts on the persistent weights under write
/// noise exactly as without it.
#[test]
fn drift_bounds_threads_state_and_write_noise() {
    let cfg = TileConfig {
        device: DeviceConfig::ConstantStep(PulsedParams::default()),
        dynamics: DynamicsConfig {
            drift: DriftConfig { nu: 0.05, nu_dtod: 0.3, nu_std: 0.2, w_noise_std: 0.5, ..DriftConfig::default() },
            ..DynamicsConfig::default()
        },
        ..TileConfig::default()
    };
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut t = AnalogTile::new(70, 30, &cfg, 5).unwrap();
            t.set_weights(uniform(70, 30, 0.5, 1).view()).unwrap();
            for _ in 0..3 {
                t.drift_weights(50.0).unwrap();
            }
            t.weights().to_owned()
        })
    };
    let one = run(1);
    assert!(run(3) == one, "3 threads differ from 1");
    // Read noise of σ = 0.5 per call against bounds near ±0.6 (30 % spread): a weight lands
    // beyond its bound with probability ≳ P(|N(0, 0.25)| > 0.8) ≈ 0.11 on the last call alone,
    // i.e. ≳ 230 of the 2 100 devices; at least 100 must sit exactly on one, none beyond.
    let t = AnalogTile::new(70, 30, &cfg, 5).unwrap();
    let h = t.hidden();
    let at_bound = one.iter().zip(&h.w_min).zip(&h.w_max).filter(|((w, lo), hi)| w == lo || w == hi).count();
    assert!(one.iter().zip(&h.w_min).zip(&h.w_max).all(|((w, lo), hi)| lo <= w && w <= hi));
    assert!(at_bound > 100, "{at_bound} at a bound");

    let mut a = AnalogTile::new(20, 10, &cfg, 3).unwrap();
    a.set_weights(uniform(20, 10, 0.3, 2).view()).unwrap();
    a.drift_weights(5.0).unwrap();
    let json = serde_json::to_string(&a.state()).unwrap();
    let mut b = AnalogTile::from_state(serde_json::from_str(&json).unwrap()).unwrap();
    for _ in 0..2 {
        a.drift_weights(5.0).unwrap();
        b.drift_weights(5.0).unwrap();
        assert_eq!(a.weights(), b.weights());
    }
    let mut s = a.state();
    s.drift.w0 = ndarray::Array2::zeros((1, 1));
    assert!(AnalogTile::from_state(s).unwrap_err().to_string().contains("drift array w0"));

    let noisy = TileConfig { dynamics: DynamicsConfig { write_noise_std: 3.0, ..cfg.dynamics.clone() }, ..cfg.clone() };
    let (mut p, mut q) = (AnalogTile::new(20, 10, &cfg, 3).unwrap(), AnalogTile::new(20, 10, &noisy, 3).unwrap());
    let w0 = uniform(20, 10, 0.3, 2);
    p.set_weights(w0.view()).unwrap();
    q.set_weights(w0.view()).unwrap();
    for _ in 0..3 {
        p.drift_weights(5.0).unwrap();
        q.drift_weights(5.0).unwrap();
        assert_eq!(q.persistent_weights(), p.weights());
    }
}

#[test]
fn bad_drift_arguments_are_refused() {
    let mut tile = AnalogTile::new(2, 2, &drifting(DriftConfig { nu: 0.1, ..DriftConfig::default() }), 1).unwrap();
    for dt in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(tile.drift_weights(dt), Err(SimError::InvalidArgument { name: "dt", .. })));
    }
    // A clock that would overflow: t_0 tiny, Δt huge.
    let mut fast =
        AnalogTile::new(2, 2, &drifting(DriftConfig { nu: 0.1, t_0: 1e-30, ..DriftConfig::default() }), 1).unwrap();
    assert!(matches!(fast.drift_weights(1e10), Err(SimError::InvalidArgument { name: "dt", .. })));
    let negative = drifting(DriftConfig { nu: -0.1, ..DriftConfig::default() });
    assert!(matches!(AnalogTile::new(2, 2, &negative, 1), Err(SimError::Config(ConfigError::Negative { .. }))));
    let bad = drifting(DriftConfig { nu: 0.1, t_0: 0.0, ..DriftConfig::default() });
    match AnalogTile::new(2, 2, &bad, 1) {
        Err(SimError::Config(ConfigError::NotPositive { field, .. })) => assert_eq!(field, "dynamics.drift.t_0"),
        other => panic!("{other:?}"),
    }
    // Off by default: drift_weights changes nothing.
    let mut plain = AnalogTile::new(3, 3, &TileConfig::default(), 1).unwrap();
    plain.set_weights(uniform(3, 3, 0.3, 1).view()).unwrap();
    let before = plain.weights().to_owned();
    plain.drift_weights(100.0).unwrap();
    assert_eq!(plain.weights(), before.view());
}

/// The offset term and the conductance dependence: the first drift step of a device gives
/// w₀·s + a·(s − 1) with s = t^(−ν), ν = ν₀ − ν_k·ln((w₀ − w_off)/r_wg + g_off) + ν_k·ln G₀ and
/// a = g_off·r_wg + w_off, computed here in f64 (the tile's f32 logarithm and power agree to
/// ~1e-6 relative).
#[test]
fn offsets_and_conductance_dependence() {
    let drift = DriftConfig {
        nu: 0.1,
        g_offset: 0.5,
        w_offset: 0.1,
        wg_ratio: 2.0,
        nu_k: 0.05,
        log_g0: 0.2,
        ..DriftConfig::default()
    };
    let mut tile = AnalogTile::new(3, 5, &drifting(drift), 1).unwrap();
    let w0 = uniform(3, 5, 0.5, 4);
    tile.set_weights(w0.view()).unwrap();
    tile.drift_weights(7.0).unwrap();
    let (t, a) = (7f64, 0.5 * 2.0 + 0.1);
    for (&w, &w0) in tile.weights().iter().zip(&w0) {
        let w0 = f64::from(w0);
        let nu = 0.1 - 0.05 * ((w0 - 0.1) / 2.0 + 0.5).ln() + 0.05 * 0.2;
        let s = t.powf(-nu);
        let want = w0 * s + a * (s - 1.0);
        assert!((f64::from(w) - want).abs() < 1e-5, "{w} vs {want}");
    }
}

/// A change below `reset_tol` does not restart a device: nudged by one ulp (~3e-8 < 1e-7)
/// after a step, the weights go on drifting from their programmed values.
#[test]
fn changes_below_the_tolerance_do_not_restart() {
    let nu = 0.1f64;
    let mut tile =
        AnalogTile::new(3, 4, &drifting(DriftConfig { nu: nu as f32, ..DriftConfig::default() }), 1).unwrap();
    let w0 = uniform(3, 4, 0.5, 3).mapv(|w| w.abs() + 0.1);
    tile.set_weights(w0.view()).unwrap();
    tile.drift_weights(2.0).unwrap();
    let nudged = tile.weights().mapv(|w| f32::from_bits(w.to_bits() + 1));
    tile.set_weights(nudged.view()).unwrap();
    tile.drift_weights(3.0).unwrap();
    for (&w, &w0) in tile.weights().iter().zip(&w0) {
        rel_close(w, f64::from(w0) * 5f64.powf(-nu), "after a nudge");
    }
}
