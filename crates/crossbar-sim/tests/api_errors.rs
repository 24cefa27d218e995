//! Black-box checks of every public fallible entry point with hostile input: each case must
//! give the specific typed error naming the argument or field, never a panic or a silent
//! success. (`validation.rs` covers the configuration checks of the device models in depth;
//! this file covers the tile operations and the remaining configuration fields.)

use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbar_sim::{
    AnalogTile, ConfigError, FloatTile, IoConfig, MappingConfig, SimError, Tile, TileConfig, TileSnapshot, TimingModel,
    UpdateConfig,
};
use ndarray::{Array2, ArrayView2};

/// Runs `f`, turning a panic into a test failure that names the case.
fn no_panic<T>(case: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{case}: panicked instead of returning a typed error: {msg:?}")
        }
    }
}

/// Asserts a [`SimError::ShapeMismatch`] from `op` about `what`, with the given shapes.
fn assert_shape(case: &str, r: Result<(), SimError>, op: &str, what: &str, expected: &[usize], got: &[usize]) {
    match r {
        Err(SimError::ShapeMismatch { op: o, what: w, expected: e, got: g }) => {
            assert_eq!((o, w, e.as_slice(), g.as_slice()), (op, what, expected, got), "{case}");
            let msg = SimError::ShapeMismatch { op: o, what: w, expected: e, got: g }.to_string();
            assert!(msg.contains(op) && msg.contains(what), "{case}: {msg}");
        }
        other => panic!("{case}: expected ShapeMismatch({op}, {what}), got {other:?}"),
    }
}

/// A float tile, an analog tile with the default config, one with a weight mapping and a
/// digital bias, and a perfect (float-path) analog tile: all `3 × 4`.
fn tiles() -> Vec<(&'static str, Box<dyn Tile>)> {
    let mapped = TileConfig {
        mapping: MappingConfig { weight_scaling_omega: 0.6, columnwise: true, digital_bias: true },
        ..TileConfig::default()
    };
    let mut v: Vec<(&'static str, Box<dyn Tile>)> = vec![
        ("FloatTile", Box::new(FloatTile::new(3, 4))),
        ("AnalogTile", Box::new(AnalogTile::new(3, 4, &TileConfig::default(), 1).unwrap())),
        ("AnalogTile", Box::new(AnalogTile::new(3, 4, &mapped, 2).unwrap())),
        ("AnalogTile", Box::new(AnalogTile::new(3, 4, &TileConfig::perfect(), 3).unwrap())),
    ];
    let w = Array2::from_shape_fn((3, 4), |(i, j)| 0.1 * (i as f32 - j as f32));
    for (_, t) in &mut v {
        t.set_weights(w.view()).unwrap();
    }
    v
}

fn op(kind: &str, name: &str) -> String {
    format!("{kind}::{name}")
}

#[test]
fn forward_rejects_wrong_shapes() {
    for (kind, mut t) in tiles() {
        let op = op(kind, "forward");
        let x = Array2::<f32>::zeros((5, 3));
        let mut y = Array2::<f32>::zeros((5, 3));
        let r = no_panic(&op, || t.forward(x.view(), y.view_mut()));
        assert_shape(&op, r, &op, "x", &[5, 4], &[5, 3]);
        // y with the wrong batch and with the wrong width.
        let x = Array2::<f32>::zeros((5, 4));
        for bad in [(4, 3), (6, 3), (5, 2), (5, 4)] {
            let mut y = Array2::<f32>::zeros(bad);
            let r = no_panic(&op, || t.forward(x.view(), y.view_mut()));
            assert_shape(&op, r, &op, "y", &[5, 3], &[bad.0, bad.1]);
        }
        let r = no_panic(&op, || t.forward_new(Array2::<f32>::zeros((2, 5)).view()).map(|_| ()));
        assert_shape(&op, r, &op, "x", &[2, 4], &[2, 5]);
        assert_eq!(t.counters().forward_cycles, 0, "{op}: a rejected call must not count");
    }
}

#[test]
fn backward_rejects_wrong_shapes() {
    for (kind, mut t) in tiles() {
        let op = op(kind, "backward");
        let d = Array2::<f32>::zeros((5, 4));
        let mut z = Array2::<f32>::zeros((5, 4));
        let r = no_panic(&op, || t.backward(d.view(), z.view_mut()));
        assert_shape(&op, r, &op, "d", &[5, 3], &[5, 4]);
        let d = Array2::<f32>::zeros((5, 3));
        for bad in [(4, 4), (5, 3), (5, 5)] {
            let mut z = Array2::<f32>::zeros(bad);
            let r = no_panic(&op, || t.backward(d.view(), z.view_mut()));
            assert_shape(&op, r, &op, "z", &[5, 4], &[bad.0, bad.1]);
        }
        let r = no_panic(&op, || t.backward_new(Array2::<f32>::zeros((2, 1)).view()).map(|_| ()));
        assert_shape(&op, r, &op, "d", &[2, 3], &[2, 1]);
        assert_eq!(t.counters().backward_cycles, 0, "{op}: a rejected call must not count");
    }
}

#[test]
fn update_rejects_wrong_shapes_and_keeps_the_weights() {
    for (kind, mut t) in tiles() {
        let op = op(kind, "update");
        let before = t.weights().to_owned();
        let x = Array2::<f32>::ones((5, 3));
        let d = Array2::<f32>::ones((5, 3));
        let r = no_panic(&op, || t.update(x.view(), d.view(), 0.1));
        assert_shape(&op, r, &op, "x", &[5, 4], &[5, 3]);
        let x = Array2::<f32>::ones((5, 4));
        for bad in [(6, 3), (4, 3), (5, 4), (5, 1)] {
            let d = Array2::<f32>::ones(bad);
            let r = no_panic(&op, || t.update(x.view(), d.view(), 0.1));
            assert_shape(&op, r, &op, "d", &[5, 3], &[bad.0, bad.1]);
        }
        assert_eq!(t.weights(), before.view(), "{op}: a rejected update changed the weights");
        assert_eq!(t.counters().update_cycles, 0, "{op}: a rejected update must not count");
    }
}

#[test]
fn update_rejects_bad_learning_rates_and_keeps_the_weights() {
    for (kind, mut t) in tiles() {
        let op = op(kind, "update");
        let before = t.weights().to_owned();
        let x = Array2::<f32>::ones((2, 4));
        let d = Array2::<f32>::ones((2, 3));
        for lr in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.1, -f32::MIN_POSITIVE] {
            let r = no_panic(&op, || t.update(x.view(), d.view(), lr));
            match &r {
                Err(SimError::InvalidArgument { op: o, name: "lr", value, .. }) => {
                    assert_eq!(*o, op, "{lr}");
                    assert!(value.is_nan() == lr.is_nan(), "{op}: lr {lr} reported as {value}");
                    let msg = r.as_ref().unwrap_err().to_string();
                    assert!(msg.contains("lr") && msg.contains(&op), "{msg}");
                }
                other => panic!("{op}: lr = {lr}: expected InvalidArgument(lr), got {other:?}"),
            }
        }
        assert_eq!(t.weights(), before.view(), "{op}: a rejected update changed the weights");
        // lr = 0 is valid and a no-op on the weights of an exact tile.
        no_panic(&op, || t.update(x.view(), d.view(), 0.0)).unwrap();
    }
}

#[test]
fn set_weights_rejects_wrong_shapes() {
    for (kind, mut t) in tiles() {
        let op = op(kind, "set_weights");
        let before = t.weights().to_owned();
        for bad in [(4, 3), (3, 5), (0, 4), (3, 0), (1, 1)] {
            let w = Array2::<f32>::zeros(bad);
            let r = no_panic(&op, || t.set_weights(w.view()));
            assert_shape(&op, r, &op, "w", &[3, 4], &[bad.0, bad.1]);
        }
        assert_eq!(t.weights(), before.view(), "{op}: rejected weights were stored");
    }
}

/// A batch of 0 vectors is a valid, empty batch: no panic, empty results, nothing counted, and
/// an empty update leaves the weights alone.
#[test]
fn empty_batches_are_empty_results() {
    for (kind, mut t) in tiles() {
        let before = t.weights().to_owned();
        let y = no_panic(kind, || t.forward_new(Array2::<f32>::zeros((0, 4)).view())).unwrap();
        assert_eq!(y.dim(), (0, 3), "{kind}");
        let z = no_panic(kind, || t.backward_new(Array2::<f32>::zeros((0, 3)).view())).unwrap();
        assert_eq!(z.dim(), (0, 4), "{kind}");
        no_panic(kind, || t.update(Array2::zeros((0, 4)).view(), Array2::zeros((0, 3)).view(), 0.1)).unwrap();
        assert_eq!(t.weights(), before.view(), "{kind}: an empty update changed the weights");
        let c = t.counters();
        assert_eq!((c.forward_cycles, c.backward_cycles, c.update_cycles), (0, 0, 0), "{kind}");
        // Empty batches still check the widths.
        let r = no_panic(kind, || t.forward_new(Array2::<f32>::zeros((0, 5)).view()).map(|_| ()));
        assert!(matches!(r, Err(SimError::ShapeMismatch { what: "x", .. })), "{kind}: {r:?}");
    }
}

/// Non-finite inputs must not panic; they propagate to every output of their own vector (where
/// the network checks them; see rapa-train's `NonFiniteOutput`) and leave the other vectors of
/// the batch exactly as they are with finite values in their place (same bits, noise included).
/// A non-finite update must not be a silent success with unchanged weights either.
#[test]
fn non_finite_inputs_stay_in_their_vector() {
    for (kind, t) in tiles() {
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let (mut bad, mut good) = (t.snapshot().restore().unwrap(), t.snapshot().restore().unwrap());
            let finite = Array2::<f32>::from_shape_fn((3, 4), |(i, j)| 0.3 - 0.1 * (i + j) as f32);
            let mut x = finite.clone();
            x[[1, 2]] = v;
            let y = no_panic(kind, || bad.forward_new(x.view())).unwrap();
            let y_ok = good.forward_new(finite.view()).unwrap();
            assert!(y.row(1).iter().all(|o| !o.is_finite()), "{kind} forward, {v}: {y}");
            for r in [0, 2] {
                assert_eq!(y.row(r), y_ok.row(r), "{kind} forward, {v}: row {r} changed");
                assert!(y.row(r).iter().all(|o| o.is_finite()), "{kind} forward, {v}: {y}");
            }
            let finite = Array2::<f32>::from_shape_fn((3, 3), |(i, j)| 0.2 * i as f32 - 0.15 * j as f32);
            let mut d = finite.clone();
            d[[2, 0]] = v;
            let z = no_panic(kind, || bad.backward_new(d.view())).unwrap();
            let z_ok = good.backward_new(finite.view()).unwrap();
            assert!(z.row(2).iter().all(|o| !o.is_finite()), "{kind} backward, {v}: {z}");
            for r in [0, 1] {
                assert_eq!(z.row(r), z_ok.row(r), "{kind} backward, {v}: row {r} changed");
                assert!(z.row(r).iter().all(|o| o.is_finite()), "{kind} backward, {v}: {z}");
            }
        }
    }
}

#[test]
fn zero_sized_analog_tiles_are_rejected() {
    for (out, inp) in [(0, 4), (3, 0), (0, 0)] {
        let r = no_panic("AnalogTile::new", || AnalogTile::new(out, inp, &TileConfig::default(), 0).map(|_| ()));
        assert_shape("AnalogTile::new", r, "AnalogTile::new", "tile", &[1, 1], &[out, inp]);
    }
    // A digital bias takes one input column: a tile needs at least one more.
    let cfg = TileConfig {
        mapping: MappingConfig { digital_bias: true, ..MappingConfig::default() },
        ..TileConfig::default()
    };
    let r = no_panic("AnalogTile::new", || AnalogTile::new(3, 1, &cfg, 0).map(|_| ()));
    match r {
        Err(SimError::ShapeMismatch { op: "AnalogTile::new", what, expected, got }) => {
            assert!(what.contains("digital bias"), "{what}");
            assert_eq!((expected, got), (vec![1, 2], vec![3, 1]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    // with_device validates the configuration too.
    let bad = TileConfig { forward: IoConfig { out_noise: -1.0, ..IoConfig::default() }, ..TileConfig::default() };
    let device = TileConfig::default().device.build();
    let r = no_panic("AnalogTile::with_device", || AnalogTile::with_device(2, 2, &bad, device, 0).map(|_| ()));
    assert!(
        matches!(&r, Err(SimError::Config(ConfigError::Negative { field, .. })) if field == "forward.out_noise"),
        "{r:?}"
    );
}

/// Builds a tile with `cfg`, expecting a configuration error about `field`.
fn config_err(case: &str, cfg: &TileConfig, field: &str) -> ConfigError {
    let r = no_panic(case, || AnalogTile::new(2, 2, cfg, 0).map(|_| ()));
    let e = match r {
        Err(SimError::Config(e)) => e,
        other => panic!("{case}: expected a config error about {field}, got {other:?}"),
    };
    assert!(e.to_string().contains(field), "{case}: {e}");
    assert_eq!(cfg.validate().unwrap_err().to_string(), e.to_string(), "{case}: validate() and new() disagree");
    e
}

#[test]
fn io_config_values_out_of_range_are_rejected() {
    type Edit = fn(&mut IoConfig);
    let cases: [(&str, Edit, &str); 13] = [
        ("inp_bound", |c| c.inp_bound = 0.0, "not-positive"),
        ("inp_bound", |c| c.inp_bound = f32::INFINITY, "not-positive"),
        ("inp_res", |c| c.inp_res = -0.1, "range"),
        ("inp_res", |c| c.inp_res = f32::NAN, "range"),
        ("inp_noise", |c| c.inp_noise = -1e-3, "negative"),
        ("out_bound", |c| c.out_bound = -1.0, "negative"),
        ("out_res", |c| c.out_res = 1.5, "range"),
        ("w_noise", |c| c.w_noise = f32::NEG_INFINITY, "negative"),
        ("nm_thres", |c| c.nm_thres = -1.0, "negative"),
        ("max_bm_factor", |c| c.max_bm_factor = 0.5, "range"),
        ("max_bm_res", |c| c.max_bm_res = 0.0, "not-positive"),
        ("out_scale", |c| c.out_scale = f32::NAN, "not-positive"),
        ("out_noise", |c| c.out_noise = f32::NAN, "negative"),
    ];
    for (dir, which) in [("forward", 0), ("backward", 1)] {
        for (name, edit, kind) in cases {
            let mut io = IoConfig::default();
            edit(&mut io);
            let mut cfg = TileConfig::default();
            if which == 0 {
                cfg.forward = io
            } else {
                cfg.backward = io
            }
            let field = format!("{dir}.{name}");
            let e = config_err(&field, &cfg, &field);
            let ok = match (kind, &e) {
                ("not-positive", ConfigError::NotPositive { field: f, .. }) => *f == field,
                ("negative", ConfigError::Negative { field: f, .. }) => *f == field,
                ("range", ConfigError::OutOfRange { field: f, .. }) => *f == field,
                _ => false,
            };
            assert!(ok, "{field}: expected {kind}, got {e:?}");
        }
    }
    // A perfect IO only checks its output scale.
    let cfg = TileConfig { forward: IoConfig { out_scale: -1.0, ..IoConfig::perfect() }, ..TileConfig::default() };
    let e = config_err("perfect out_scale", &cfg, "forward.out_scale");
    assert!(matches!(e, ConfigError::NotPositive { .. }), "{e:?}");
}

#[test]
fn update_mapping_and_timing_values_out_of_range_are_rejected() {
    let cfg = TileConfig {
        update: UpdateConfig { um_grad_scale: f32::NAN, ..UpdateConfig::default() },
        ..TileConfig::default()
    };
    let e = config_err("um_grad_scale", &cfg, "update.um_grad_scale");
    assert!(matches!(&e, ConfigError::NotPositive { field, .. } if field == "update.um_grad_scale"), "{e:?}");
    let cfg = TileConfig { update: UpdateConfig { desired_bl: 0, ..UpdateConfig::default() }, ..TileConfig::default() };
    let e = config_err("desired_bl", &cfg, "update.desired_bl");
    assert!(matches!(&e, ConfigError::OutOfRange { value, .. } if *value == 0.0), "{e:?}");
    for omega in [-0.5f32, f32::NAN, f32::INFINITY] {
        let cfg = TileConfig {
            mapping: MappingConfig { weight_scaling_omega: omega, ..MappingConfig::default() },
            ..TileConfig::default()
        };
        let e = config_err("omega", &cfg, "mapping.weight_scaling_omega");
        assert!(matches!(&e, ConfigError::Invalid { field, .. } if field == "mapping.weight_scaling_omega"), "{e:?}");
    }
    type Edit = fn(&mut TimingModel);
    let cases: [(&str, Edit); 4] = [
        ("forward_pass_ns", |t| t.forward_pass_ns = -1.0),
        ("backward_pass_ns", |t| t.backward_pass_ns = f64::NAN),
        ("update_slot_ns", |t| t.update_slot_ns = f64::INFINITY),
        ("update_cycle_ns", |t| t.update_cycle_ns = -1e-9),
    ];
    for (name, edit) in cases {
        let mut timing = TimingModel::default();
        edit(&mut timing);
        let field = format!("timing.{name}");
        let e = config_err(&field, &TileConfig { timing, ..TileConfig::default() }, &field);
        assert!(matches!(&e, ConfigError::Negative { field: f, .. } if *f == field), "{e:?}");
    }
}

#[test]
fn unknown_presets_are_named() {
    for name in ["", "PCM", "aihwkit_default"] {
        let e = no_panic("preset", || TileConfig::preset(name)).unwrap_err();
        assert!(matches!(&e, ConfigError::UnknownName { name: n, .. } if n == name), "{e:?}");
        assert!(e.to_string().contains("idealized"), "{e}");
    }
}

#[test]
fn corrupt_states_are_rejected_on_restore() {
    let t = AnalogTile::new(3, 4, &TileConfig::default(), 0).unwrap();
    // An invalid configuration inside a state.
    let mut s = t.state();
    s.config.forward.out_noise = -1.0;
    let r = no_panic("from_state", || AnalogTile::from_state(s).map(|_| ()));
    assert!(
        matches!(&r, Err(SimError::Config(ConfigError::Negative { field, .. })) if field == "forward.out_noise"),
        "{r:?}"
    );
    // Hidden arrays that do not match the weights.
    let mut s = t.state();
    s.hidden.step_up = Array2::zeros((2, 4));
    let r = no_panic("from_state", || AnalogTile::from_state(s).map(|_| ()));
    assert_shape("from_state", r, "AnalogTile::from_state", "hidden array", &[3, 4], &[2, 4]);
    // Empty weights.
    let mut s = t.state();
    s.weights = Array2::zeros((0, 4));
    let r = no_panic("from_state", || AnalogTile::from_state(s).map(|_| ()));
    assert!(matches!(&r, Err(SimError::State { reason }) if reason.contains("empty")), "{r:?}");
    // Wrong number of mapping scales, bad bias, negative steps, through the snapshot too.
    let mut s = t.state();
    s.mapping_scales = vec![1.0; 2];
    let r = no_panic("restore", || TileSnapshot::Analog(Box::new(s)).restore().map(|_| ()));
    assert!(matches!(&r, Err(SimError::State { reason }) if reason.contains("mapping scales")), "{r:?}");
    let mut s = t.state();
    s.digital_bias = vec![0.0; 3];
    let r = no_panic("from_state", || AnalogTile::from_state(s).map(|_| ()));
    assert!(matches!(&r, Err(SimError::State { reason }) if reason.contains("digital bias")), "{r:?}");
    let mut s = t.state();
    s.hidden.step_down[[0, 0]] = -1.0;
    let r = no_panic("from_state", || AnalogTile::from_state(s).map(|_| ()));
    assert!(matches!(&r, Err(SimError::State { reason }) if reason.contains("steps")), "{r:?}");
    // A state restored with a device of another name.
    let other = crossbar_sim::DeviceConfig::Ideal.build();
    let r = no_panic("from_state_with_device", || AnalogTile::from_state_with_device(t.state(), other).map(|_| ()));
    assert!(matches!(&r, Err(SimError::State { reason }) if reason.contains("saved device")), "{r:?}");
}

/// A NaN or infinite element of an update's `x` or `d` is an error naming the argument: a
/// pulsed update would otherwise drop it silently (the pulse counts saturate) and a float
/// update would poison a whole row and column of weights.
#[test]
fn non_finite_update_arguments_are_rejected() {
    for (kind, mut t) in tiles() {
        let op = op(kind, "update");
        let before = t.weights().to_owned();
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for name in ["x", "d"] {
                let mut x = Array2::<f32>::from_elem((3, 4), 0.5);
                let mut d = Array2::<f32>::from_elem((3, 3), 0.5);
                if name == "x" {
                    x[[1, 2]] = v
                } else {
                    d[[2, 1]] = v
                }
                let r = no_panic(&op, || t.update(x.view(), d.view(), 0.1));
                match &r {
                    Err(SimError::InvalidArgument { op: o, name: n, value, .. }) => {
                        assert_eq!((*o, *n), (op.as_str(), name), "{v}");
                        assert!(value.is_nan() == v.is_nan() && (v.is_nan() || *value == f64::from(v)), "{value}");
                        let msg = r.as_ref().unwrap_err().to_string();
                        assert!(msg.contains(&format!("{name} = ")) && msg.contains("finite"), "{msg}");
                    }
                    other => panic!("{op}: {name} holding {v}: expected InvalidArgument({name}), got {other:?}"),
                }
            }
        }
        assert_eq!(t.weights(), before.view(), "{op}: a rejected update changed the weights");
        assert_eq!(t.counters().update_cycles, 0, "{op}: a rejected update must not count");
    }
}

/// Non-finite weights are refused by the analog tile, as by the inference tile (a NaN or infinite device
/// state would poison every output it meets), naming the argument; the weights stay as they
/// were. (The float tile is exact arithmetic and takes them as they are.)
#[test]
fn non_finite_weights_are_rejected_by_device_tiles() {
    for (kind, mut t) in tiles().into_iter().filter(|(k, _)| *k != "FloatTile") {
        let op = op(kind, "set_weights");
        let before = t.weights().to_owned();
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut w = Array2::<f32>::from_elem((3, 4), 0.1);
            w[[2, 3]] = v;
            match no_panic(&op, || t.set_weights(w.view())) {
                Err(SimError::InvalidArgument { op: o, name: "w", .. }) => assert_eq!(o, op.as_str(), "{v}"),
                other => panic!("{op}: w holding {v}: expected InvalidArgument(w), got {other:?}"),
            }
        }
        assert_eq!(t.weights(), before.view(), "{op}: rejected weights changed the tile");
    }
}

/// The float tile refuses a non-finite update argument wherever it sits: every position of
/// `x` and `d`, NaN and ±∞, with the other argument's matching row all zeros (where 0·∞ would
/// turn into NaN) and with lr 0, is refused naming the argument, and the weights stay bit for
/// bit as they were, also when they are already non-finite. Finite arguments whose update
/// overflows still update, to ±∞, as f32 math does.
#[test]
fn float_update_refuses_every_non_finite_position() {
    let w0 = Array2::<f32>::from_shape_fn((3, 4), |(i, j)| 0.1 * i as f32 - 0.07 * j as f32 + 0.01);
    let bits = |a: ArrayView2<'_, f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut t = FloatTile::from_weights(w0.clone());
    for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for lr in [0.1, 0.0] {
            for zero_other in [false, true] {
                for name in ["x", "d"] {
                    let (rows, cols) = if name == "x" { (5, 4) } else { (5, 3) };
                    for (b, k) in (0..rows).flat_map(|b| (0..cols).map(move |k| (b, k))) {
                        let mut x = Array2::<f32>::from_shape_fn((5, 4), |(i, j)| 0.3 - 0.05 * (i * 4 + j) as f32);
                        let mut d = Array2::<f32>::from_shape_fn((5, 3), |(i, j)| 0.2 * j as f32 - 0.03 * i as f32);
                        let (bad, other) = if name == "x" { (&mut x, &mut d) } else { (&mut d, &mut x) };
                        bad[[b, k]] = v;
                        if zero_other {
                            other.row_mut(b).fill(0.0);
                        }
                        let r = t.update(x.view(), d.view(), lr);
                        assert!(
                            matches!(&r, Err(SimError::InvalidArgument { name: n, .. }) if *n == name),
                            "{name}[{b},{k}] = {v}, lr {lr}, zero row {zero_other}: {r:?}"
                        );
                        assert_eq!(bits(t.weights()), bits(w0.view()), "{name}[{b},{k}] = {v}: weights changed");
                    }
                }
            }
        }
    }
    assert_eq!(t.counters().update_cycles, 0);
    // Finite arguments that overflow: the update stands (±∞ weights), as before.
    let big = Array2::<f32>::from_elem((5, 4), 3e38);
    let dbig = Array2::<f32>::from_elem((5, 3), -3e38);
    t.update(big.view(), dbig.view(), 1.0).unwrap();
    assert!(t.weights().iter().all(|w| *w == f32::INFINITY), "{}", t.weights());
    // Weights already non-finite: a non-finite argument is still refused, weights unchanged.
    let mut x = Array2::<f32>::zeros((5, 4));
    x[[0, 0]] = f32::NAN;
    let before = bits(t.weights());
    let r = t.update(x.view(), Array2::zeros((5, 3)).view(), 0.1);
    assert!(matches!(&r, Err(SimError::InvalidArgument { name: "x", .. })), "{r:?}");
    assert_eq!(bits(t.weights()), before);
}

/// `update_finite_inputs` is `update` for finite arguments, bit for bit, on every kind of
/// tile (the float and inference tiles skip only the finiteness pass), and still checks
/// shapes and the learning rate.
#[test]
fn update_finite_inputs_equals_update() {
    let x = Array2::<f32>::from_shape_fn((5, 4), |(i, j)| 0.3 - 0.05 * (i * 4 + j) as f32);
    let d = Array2::<f32>::from_shape_fn((5, 3), |(i, j)| 0.2 * j as f32 - 0.03 * i as f32);
    let inference = || -> Box<dyn Tile> {
        let mut t = crossbar_sim::InferenceTile::new(3, 4, &crossbar_sim::InferenceConfig::default(), 4).unwrap();
        t.set_weights(Array2::from_shape_fn((3, 4), |(i, j)| 0.1 * (i as f32 - j as f32)).view()).unwrap();
        Box::new(t)
    };
    let (a, b) = (
        tiles().into_iter().chain([("InferenceTile", inference())]),
        tiles().into_iter().chain([("InferenceTile", inference())]),
    );
    for ((kind, mut checked), (_, mut fast)) in a.zip(b) {
        for lr in [0.1, 0.0] {
            checked.update(x.view(), d.view(), lr).unwrap();
            fast.update_finite_inputs(x.view(), d.view(), lr).unwrap();
            let bits = |t: &dyn Tile| t.weights().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&*checked), bits(&*fast), "{kind}, lr {lr}");
        }
        assert_eq!(checked.counters(), fast.counters(), "{kind}");
        assert_bad_lr_fast(kind, &mut *fast, &x, &d);
        let r = fast.update_finite_inputs(x.slice(ndarray::s![.., ..3]), d.view(), 0.1);
        assert!(matches!(r, Err(SimError::ShapeMismatch { .. })), "{kind}: {r:?}");
    }
}

fn assert_bad_lr_fast(kind: &str, t: &mut dyn Tile, x: &Array2<f32>, d: &Array2<f32>) {
    for lr in [f32::NAN, -0.1, f32::INFINITY] {
        let r = t.update_finite_inputs(x.view(), d.view(), lr);
        assert!(matches!(r, Err(SimError::InvalidArgument { name: "lr", .. })), "{kind}, lr {lr}: {r:?}");
    }
}
