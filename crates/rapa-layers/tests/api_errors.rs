//! Black-box checks of every public fallible entry point of the layers with hostile input:
//! each case must give the specific [`LayerError`] variant naming the argument or field, never
//! a panic or a silent success.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbar_sim::{ConfigError, IoConfig, SimError, Tile, TileConfig};
use ndarray::{Array2, Array4, ArrayView2, ArrayViewMut2};
use rapa_layers::analysis::{Reduction, plan_tiles, reduce, reduction_choice};
use rapa_layers::{Assigner, ConvConfig, ConvGeometry, LayerError, RapaConv2d, Scheme, TileKind, TiledLinear};

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

/// Asserts [`LayerError::Shape`] from `op` about `what` with the given shapes.
fn assert_shape<T: std::fmt::Debug>(r: Result<T, LayerError>, op: &str, what: &str, expected: &[usize], got: &[usize]) {
    match r {
        Err(e @ LayerError::Shape { .. }) => {
            let LayerError::Shape { op: o, what: w, expected: ex, got: g } = &e else { unreachable!() };
            assert_eq!((*o, *w, ex.as_slice(), g.as_slice()), (op, what, expected, got));
            let msg = e.to_string();
            assert!(msg.contains(op) && msg.contains(what), "{msg}");
        }
        other => panic!("expected Shape({op}, {what}, {got:?}), got {other:?}"),
    }
}

/// Asserts [`LayerError::Invalid`] about `field`, with the message naming it.
fn assert_invalid<T: std::fmt::Debug>(case: &str, r: Result<T, LayerError>, field: &str) {
    match r {
        Err(e @ LayerError::Invalid { .. }) => {
            let LayerError::Invalid { field: f, .. } = &e else { unreachable!() };
            assert_eq!(*f, field, "{case}: {e}");
            assert!(e.to_string().contains(field), "{case}: {e}");
        }
        other => panic!("{case}: expected Invalid({field}), got {other:?}"),
    }
}

/// Asserts [`LayerError::Scheme`] with a reason containing `reason`.
fn assert_scheme<T: std::fmt::Debug>(case: &str, r: Result<T, LayerError>, scheme: Scheme, n: usize, reason: &str) {
    match r {
        Err(LayerError::Scheme { scheme: s, n_tiles, reason: why, .. }) => {
            assert_eq!((s, n_tiles), (scheme.name(), n), "{case}");
            assert!(why.contains(reason), "{case}: {why}");
        }
        other => panic!("{case}: expected Scheme({scheme}, n = {n}), got {other:?}"),
    }
}

/// Asserts an invalid learning rate passed down from a tile.
fn assert_bad_lr(case: &str, r: Result<(), LayerError>) {
    match &r {
        Err(LayerError::Sim(SimError::InvalidArgument { name: "lr", .. })) => {
            assert!(r.unwrap_err().to_string().contains("lr"), "{case}");
        }
        other => panic!("{case}: expected Sim(InvalidArgument(lr)), got {other:?}"),
    }
}

fn geom() -> ConvGeometry {
    ConvGeometry { in_channels: 2, height: 6, width: 6, kernel: 3, stride: 1, pad: 1 }
}

fn cfg(scheme: Scheme, n_tiles: usize, tile: TileKind) -> ConvConfig {
    ConvConfig { geometry: geom(), out_channels: 3, n_tiles, scheme, tile, init_std: 0.1 }
}

fn analog() -> TileKind {
    TileKind::Analog(Box::default())
}

/// One layer per tile kind and a few schemes, all on the 2×6×6 input of [`geom`].
fn layers() -> Vec<RapaConv2d> {
    let mut v = Vec::new();
    for (scheme, n) in [(Scheme::None, 1), (Scheme::Random, 4), (Scheme::ImagePad, 4), (Scheme::Perforated, 4)] {
        for tile in [TileKind::Float, analog()] {
            v.push(RapaConv2d::new(cfg(scheme, n, tile), 7).unwrap());
        }
    }
    v
}

fn x(n: usize, c: usize, h: usize, w: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, c, h, w), |(b, c, i, j)| ((b * 7 + c * 5 + i * 3 + j) as f32 * 0.37).sin())
}

#[test]
fn invalid_geometry_and_layer_parameters_are_rejected() {
    type Edit = fn(&mut ConvConfig);
    let cases: [(&str, Edit, &str); 12] = [
        ("in_channels 0", |c| c.geometry.in_channels = 0, "in_channels"),
        // Zero sides with padding: the padded image is large enough for the kernel, but an
        // image of no pixels would make `forward` split its input into chunks of size 0.
        ("height 0 padded", |c| c.geometry.height = 0, "height"),
        ("width 0 padded", |c| c.geometry.width = 0, "width"),
        ("in_channels huge", |c| c.geometry.in_channels = usize::MAX, "in_channels"),
        ("kernel 0", |c| c.geometry.kernel = 0, "kernel"),
        ("kernel too large", |c| c.geometry.kernel = 9, "kernel"),
        ("stride 0", |c| c.geometry.stride = 0, "stride"),
        ("height huge", |c| c.geometry.height = usize::MAX, "height"),
        ("width huge", |c| c.geometry.width = 1 << 20, "width"),
        ("pad huge", |c| c.geometry.pad = usize::MAX / 2, "pad"),
        ("out_channels 0", |c| c.out_channels = 0, "out_channels"),
        ("init_std negative", |c| c.init_std = -1.0, "init_std"),
    ];
    for (case, edit, field) in cases {
        let mut c = cfg(Scheme::Random, 4, TileKind::Float);
        edit(&mut c);
        assert_invalid(case, no_panic(case, || RapaConv2d::new(c.clone(), 0)), field);
        if case.starts_with("in_") || case.starts_with("kernel") || case.starts_with("stride") || case.contains(" 0 ") {
            assert_invalid(case, no_panic(case, || c.geometry.validate()), field);
        }
    }
    for std in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let c = ConvConfig { init_std: std, ..cfg(Scheme::Random, 4, TileKind::Float) };
        assert_invalid("init_std", no_panic("init_std", || RapaConv2d::new(c, 0)), "init_std");
    }
}

#[test]
fn tile_counts_incompatible_with_the_scheme_are_rejected() {
    // 6×6 output map: 36 patches.
    let cases = [
        (Scheme::Random, 0, "at least one tile"),
        (Scheme::Random, 37, "more tiles than patches"),
        (Scheme::None, 4, "n = 1"),
        (Scheme::Alternate, 3, "square"),
        (Scheme::ImageOverlap, 8, "square"),
        (Scheme::ImagePad, 16, "divisible"),
        (Scheme::Perforated, 0, "at least one tile"),
        (Scheme::RandomFixed, 100, "more tiles than patches"),
    ];
    for (scheme, n, reason) in cases {
        let case = format!("{scheme} n = {n}");
        let r = no_panic(&case, || RapaConv2d::new(cfg(scheme, n, TileKind::Float), 0));
        assert_scheme(&case, r, scheme, n, reason);
        let r = no_panic(&case, || Assigner::new(scheme, n, &geom(), 0));
        assert_scheme(&case, r, scheme, n, reason);
    }
    let e = "tiles".parse::<Scheme>().unwrap_err();
    assert!(matches!(&e, LayerError::Invalid { field: "scheme", value, .. } if value == "tiles"), "{e:?}");
}

#[test]
fn invalid_analog_tile_configs_are_rejected() {
    let bad = TileConfig { forward: IoConfig { inp_res: 2.0, ..IoConfig::default() }, ..TileConfig::default() };
    let r = no_panic("analog config", || {
        RapaConv2d::new(cfg(Scheme::Random, 4, TileKind::Analog(Box::new(bad.clone()))), 0)
    });
    assert!(
        matches!(&r, Err(LayerError::Sim(SimError::Config(ConfigError::OutOfRange { field, .. }))) if field == "forward.inp_res"),
        "{r:?}"
    );
    assert!(r.unwrap_err().to_string().contains("forward.inp_res"));
    let r = no_panic("linear analog config", || TiledLinear::new(4, 2, &TileKind::Analog(Box::new(bad)), 0.1, 0));
    assert!(matches!(&r, Err(LayerError::Sim(SimError::Config(_)))), "{r:?}");
}

#[test]
fn forward_rejects_wrong_input_shapes() {
    for mut l in layers() {
        for (n, c, h, w) in [(2, 3, 6, 6), (2, 1, 6, 6), (2, 2, 5, 6), (2, 2, 6, 7), (1, 2, 6, 0), (0, 3, 6, 6)] {
            let case = format!("{} forward {:?}", l.config().scheme, (n, c, h, w));
            let r = no_panic(&case, || l.forward(x(n, c, h, w).view()));
            assert_shape(r, "RapaConv2d::forward", "x", &[n, 2, 6, 6], &[n, c, h, w]);
        }
        assert!(l.tiles().iter().all(|t| t.counters().forward_cycles == 0), "a rejected forward ran the tiles");
        assert!(l.last_assignment().is_empty());
    }
}

/// An empty batch is valid: an empty output, no panic, and the layer still works after it.
#[test]
fn empty_batches_are_empty_results() {
    for mut l in layers() {
        let case = format!("{} empty batch", l.config().scheme);
        let y = no_panic(&case, || l.forward(x(0, 2, 6, 6).view())).unwrap();
        assert_eq!(y.shape(), &[0, 3, 6, 6], "{case}");
        let dx = no_panic(&case, || l.backward(Array4::zeros((0, 3, 6, 6)).view())).unwrap();
        assert_eq!(dx.shape(), &[0, 2, 6, 6], "{case}");
        let before: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
        no_panic(&case, || l.update(0.1)).unwrap();
        assert!(l.tiles().iter().zip(&before).all(|(t, w)| t.weights() == w.view()), "{case}: weights changed");
        let y = no_panic(&case, || l.forward(x(2, 2, 6, 6).view())).unwrap();
        assert_eq!(y.shape(), &[2, 3, 6, 6], "{case}");
    }
}

#[test]
fn backward_and_update_check_order_and_gradient_shapes() {
    for mut l in layers() {
        let scheme = l.config().scheme;
        let dy = Array4::<f32>::ones((2, 3, 6, 6));
        let r = no_panic("backward first", || l.backward(dy.view()));
        assert!(matches!(r, Err(LayerError::Order { op: "RapaConv2d::backward", needs: "forward" })), "{r:?}");
        let r = no_panic("backward_weights_only first", || l.backward_weights_only(dy.view()));
        assert!(matches!(r, Err(LayerError::Order { needs: "forward", .. })), "{r:?}");
        let r = no_panic("update first", || l.update(0.1));
        assert!(matches!(r, Err(LayerError::Order { op: "RapaConv2d::update", needs: "forward" })), "{r:?}");
        l.forward(x(2, 2, 6, 6).view()).unwrap();
        let r = no_panic("update before backward", || l.update(0.1));
        assert!(matches!(r, Err(LayerError::Order { needs: "backward", .. })), "{r:?}");
        for bad in [(1, 3, 6, 6), (3, 3, 6, 6), (2, 2, 6, 6), (2, 3, 5, 6), (2, 3, 6, 7), (2, 3, 0, 6)] {
            let case = format!("{scheme} dy {bad:?}");
            let dy = Array4::<f32>::ones(bad);
            let r = no_panic(&case, || l.backward(dy.view()));
            assert_shape(r, "RapaConv2d::backward", "dy", &[2, 3, 6, 6], &[bad.0, bad.1, bad.2, bad.3]);
            let r = no_panic(&case, || l.backward_weights_only(dy.view()));
            assert_shape(r, "RapaConv2d::backward_weights_only", "dy", &[2, 3, 6, 6], &[bad.0, bad.1, bad.2, bad.3]);
            // A rejected gradient leaves no gradients to update with.
            let r = no_panic(&case, || l.update(0.1));
            assert!(matches!(r, Err(LayerError::Order { needs: "backward", .. })), "{case}: {r:?}");
        }
    }
}

#[test]
fn update_rejects_bad_learning_rates_and_keeps_the_weights() {
    for mut l in layers() {
        let scheme = l.config().scheme;
        l.forward(x(2, 2, 6, 6).view()).unwrap();
        l.backward(Array4::<f32>::ones((2, 3, 6, 6)).view()).unwrap();
        let before: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
        for lr in [f32::NAN, f32::INFINITY, -0.1] {
            assert_bad_lr(&format!("{scheme} lr {lr}"), no_panic("update", || l.update(lr)));
        }
        assert!(l.tiles().iter().zip(&before).all(|(t, w)| t.weights() == w.view()), "{scheme}: weights changed");
    }
}

/// A non-finite output gradient is an error naming `d` at the update, not a silent step.
#[test]
fn non_finite_gradients_are_rejected_at_the_update() {
    for mut l in layers() {
        let scheme = l.config().scheme;
        l.set_training(false); // perforated computes every patch only in evaluation
        l.forward(x(1, 2, 6, 6).view()).unwrap();
        let mut dy = Array4::<f32>::ones((1, 3, 6, 6));
        dy[[0, 1, 2, 3]] = f32::NAN;
        no_panic("backward", || l.backward_weights_only(dy.view())).unwrap();
        let before: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
        let r = no_panic("update", || l.update(0.1));
        assert!(matches!(&r, Err(LayerError::Sim(SimError::InvalidArgument { name: "d", .. }))), "{scheme}: {r:?}");
        // The tile holding the bad patch rejected it; the others may have stepped.
        assert!(l.tiles().iter().zip(&before).any(|(t, w)| t.weights() == w.view()), "{scheme}");
    }
}

/// A tile that counts which update entry the layer calls, with `checked_only` sends the fast
/// one down the checked path, and with `fail_forward` refuses every forward pass.
#[derive(Debug)]
struct Spy {
    inner: Box<dyn Tile>,
    checked_only: bool,
    fail_forward: bool,
    calls: std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>,
}

impl Tile for Spy {
    fn out_size(&self) -> usize {
        self.inner.out_size()
    }
    fn in_size(&self) -> usize {
        self.inner.in_size()
    }
    fn forward(&mut self, x: ArrayView2<'_, f32>, y: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        if self.fail_forward {
            return Err(SimError::InvalidArgument { op: "Spy::forward", name: "x", value: 0.0, reason: "refused" });
        }
        self.inner.forward(x, y)
    }
    fn backward(&mut self, d: ArrayView2<'_, f32>, z: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        self.inner.backward(d, z)
    }
    fn update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) -> Result<(), SimError> {
        self.calls[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.update(x, d, lr)
    }
    fn update_finite_inputs(
        &mut self,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
    ) -> Result<(), SimError> {
        self.calls[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.checked_only { self.inner.update(x, d, lr) } else { self.inner.update_finite_inputs(x, d, lr) }
    }
    fn weights(&self) -> ArrayView2<'_, f32> {
        self.inner.weights()
    }
    fn set_weights(&mut self, w: ArrayView2<'_, f32>) -> Result<(), SimError> {
        self.inner.set_weights(w)
    }
    fn set_training(&mut self, training: bool) {
        self.inner.set_training(training)
    }
    fn counters(&self) -> crossbar_sim::CycleCounters {
        self.inner.counters()
    }
    fn reset_counters(&mut self) {
        self.inner.reset_counters()
    }
    fn snapshot(&self) -> crossbar_sim::TileSnapshot {
        self.inner.snapshot()
    }
}

/// The layer lets its tiles skip their finiteness pass over the patches only when its input
/// was finite and the tile's gradients are: then every tile gets `update_finite_inputs`, with
/// the same weights bit for bit as the checked path. A non-finite input value sends the tiles
/// down the checked path only, and the one holding its patches refuses, naming `x`.
#[test]
fn the_update_skips_the_patch_check_only_for_finite_inputs() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for (mut l, mut reference) in layers().into_iter().zip(layers()) {
        let scheme = l.config().scheme;
        let n = l.tiles().len();
        let mut spies = Vec::new();
        for (ll, checked_only) in [(&mut l, false), (&mut reference, true)] {
            let calls = std::sync::Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            for t in 0..n {
                let slot = &mut ll.tiles_mut()[t];
                let inner = std::mem::replace(slot, Box::new(crossbar_sim::FloatTile::new(1, 1)));
                *slot = Box::new(Spy { inner, checked_only, fail_forward: false, calls: calls.clone() });
            }
            ll.set_training(false); // perforated computes every patch only in evaluation
            spies.push(calls);
        }
        let good = x(2, 2, 6, 6);
        let dy = Array4::<f32>::from_shape_fn((2, 3, 6, 6), |(b, c, i, j)| 0.1 * (b + c + i) as f32 - 0.05 * j as f32);
        for ll in [&mut l, &mut reference] {
            ll.forward(good.view()).unwrap();
            ll.backward_weights_only(dy.view()).unwrap();
            ll.update(0.1).unwrap();
        }
        let count = |i: usize, k: usize| spies[i][k].load(Ordering::Relaxed);
        assert_eq!((count(0, 0), count(0, 1)), (0, n), "{scheme}: finite input, fast entry");
        let bits = |w: ArrayView2<'_, f32>| w.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for t in 0..n {
            assert_eq!(bits(l.tiles()[t].weights()), bits(reference.tiles()[t].weights()), "{scheme} tile {t}");
        }
        let mut bad = good.clone();
        bad[[1, 1, 2, 3]] = f32::INFINITY;
        no_panic("forward", || l.forward(bad.view())).unwrap();
        no_panic("backward", || l.backward_weights_only(dy.view())).unwrap();
        let before: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
        let r = no_panic("update", || l.update(0.1));
        assert!(matches!(&r, Err(LayerError::Sim(SimError::InvalidArgument { name: "x", .. }))), "{scheme}: {r:?}");
        // (The update stops at the first refusal, so some tiles may not be called at all.)
        assert!(count(0, 0) >= 1 && count(0, 1) == n, "{scheme}: non-finite input, checked entry only");
        assert!(l.tiles().iter().zip(&before).any(|(t, w)| t.weights() == w.view()), "{scheme}");
    }
}

/// A forward pass that fails half-way (a tile refuses, after the assignment of the new batch
/// was made) leaves no batch behind: `backward` and `update` then ask for a forward pass, with
/// the old batch's gradient shape as with the new one, instead of pairing the old batch size
/// with the new assignment.
#[test]
fn a_failed_forward_leaves_no_batch() {
    let mut l = RapaConv2d::new(cfg(Scheme::Random, 4, TileKind::Float), 7).unwrap();
    l.forward(x(2, 2, 6, 6).view()).unwrap();
    let inner = std::mem::replace(&mut l.tiles_mut()[2], Box::new(crossbar_sim::FloatTile::new(1, 1)));
    let calls = std::sync::Arc::new([std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)]);
    l.tiles_mut()[2] = Box::new(Spy { inner, checked_only: false, fail_forward: true, calls });
    let r = no_panic("forward", || l.forward(x(3, 2, 6, 6).view()));
    assert!(matches!(r, Err(LayerError::Sim(SimError::InvalidArgument { op: "Spy::forward", .. }))), "{r:?}");
    for batch in [2, 3] {
        let dy = Array4::<f32>::ones((batch, 3, 6, 6));
        let r = no_panic("backward", || l.backward(dy.view()));
        assert!(matches!(r, Err(LayerError::Order { needs: "forward", .. })), "batch {batch}: {r:?}");
        let r = no_panic("backward_weights_only", || l.backward_weights_only(dy.view()));
        assert!(matches!(r, Err(LayerError::Order { needs: "forward", .. })), "batch {batch}: {r:?}");
    }
    let r = no_panic("update", || l.update(0.1));
    assert!(matches!(r, Err(LayerError::Order { needs: "forward", .. })), "{r:?}");
}

#[test]
fn lr_scale_must_match_and_be_finite() {
    let mut l = RapaConv2d::new(cfg(Scheme::Random, 4, TileKind::Float), 0).unwrap();
    for bad in [vec![1.0; 3], vec![1.0; 5], vec![], vec![1.0, f32::NAN, 1.0, 1.0], vec![1.0, 1.0, -1.0, 1.0]] {
        assert_invalid("lr_scale", no_panic("lr_scale", || l.set_lr_scale(bad)), "lr_scale");
    }
    assert_eq!(l.lr_scale(), &[1.0; 4]);
    let mut l = RapaConv2d::new(cfg(Scheme::Perforated, 4, TileKind::Float), 0).unwrap();
    assert_invalid("lr_scale perforated", l.set_lr_scale(vec![1.0; 4]), "lr_scale");
    l.set_lr_scale(vec![0.5]).unwrap();
}

#[test]
fn mismatched_states_are_rejected() {
    let l = RapaConv2d::new(cfg(Scheme::Random, 4, TileKind::Float), 0).unwrap();
    let mut s = l.state();
    s.tiles.pop();
    assert_invalid("tiles", no_panic("from_state", || RapaConv2d::from_state(s)), "tiles");
    let mut s = l.state();
    s.lr_scale.push(1.0);
    assert_invalid("lr_scale len", no_panic("from_state", || RapaConv2d::from_state(s)), "tiles");
    let mut s = l.state();
    s.config.n_tiles = 9;
    s.tiles.extend(s.tiles.clone());
    s.tiles.push(s.tiles[0].clone());
    s.lr_scale = vec![1.0; 9];
    assert_invalid("assigner", no_panic("from_state", || RapaConv2d::from_state(s)), "assigner");
    let mut s = l.state();
    s.config.out_channels = 5;
    let r = no_panic("from_state", || RapaConv2d::from_state(s));
    assert_shape(r, "RapaConv2d::from_state", "tile", &[5, 19], &[3, 19]);
    let mut s = l.state();
    s.config.geometry.stride = 0;
    assert_invalid("geometry", no_panic("from_state", || RapaConv2d::from_state(s)), "stride");
    let mut s = l.state();
    s.config.n_tiles = 0;
    s.tiles.clear();
    s.lr_scale.clear();
    let r = no_panic("from_state", || RapaConv2d::from_state(s));
    assert_scheme("from_state n = 0", r, Scheme::Random, 0, "at least one tile");
}

#[test]
fn linear_layer_rejects_hostile_input() {
    for (i, o) in [(0, 3), (3, 0), (0, 0)] {
        assert_invalid(
            "size",
            no_panic("linear new", || TiledLinear::new(i, o, &TileKind::Float, 0.1, 0)),
            "linear size",
        );
    }
    for std in [f32::NAN, -1.0, f32::INFINITY] {
        let r = no_panic("linear init_std", || TiledLinear::new(4, 3, &TileKind::Float, std, 0));
        assert_invalid(&format!("init_std {std}"), r, "init_std");
    }
    // A state whose tile has no room for the bias column.
    for w in [Array2::<f32>::zeros((3, 1)), Array2::<f32>::zeros((3, 0))] {
        let snap = crossbar_sim::TileSnapshot::Float(crossbar_sim::FloatTile::from_weights(w));
        assert_invalid("linear from_state", no_panic("from_state", || TiledLinear::from_state(snap)), "linear tile");
    }
    for tile in [TileKind::Float, analog()] {
        let mut l = TiledLinear::new(4, 3, &tile, 0.1, 0).unwrap();
        let r = no_panic("backward first", || l.backward(Array2::zeros((2, 3)).view()));
        assert!(matches!(r, Err(LayerError::Order { op: "TiledLinear::backward", needs: "forward" })), "{r:?}");
        let r = no_panic("update first", || l.update(0.1));
        assert!(matches!(r, Err(LayerError::Order { op: "TiledLinear::update", needs: "backward" })), "{r:?}");
        for bad in [(2, 3), (2, 5), (2, 0)] {
            let r = no_panic("forward", || l.forward(Array2::zeros(bad).view()));
            assert_shape(r, "TiledLinear::forward", "x", &[2, 4], &[bad.0, bad.1]);
        }
        l.forward(Array2::ones((2, 4)).view()).unwrap();
        for bad in [(1, 3), (2, 4), (3, 3)] {
            let r = no_panic("backward", || l.backward(Array2::zeros(bad).view()));
            assert_shape(r, "TiledLinear::backward", "dy", &[2, 3], &[bad.0, bad.1]);
        }
        let mut dy = Array2::<f32>::ones((2, 3));
        l.backward(dy.view()).unwrap();
        for lr in [f32::NAN, -1.0, f32::NEG_INFINITY] {
            assert_bad_lr("linear lr", no_panic("linear update", || l.update(lr)));
        }
        dy[[1, 1]] = f32::INFINITY;
        l.backward(dy.view()).unwrap();
        let r = no_panic("linear update", || l.update(0.1));
        assert!(matches!(&r, Err(LayerError::Sim(SimError::InvalidArgument { name: "d", .. }))), "{r:?}");
    }
}

#[test]
fn analyses_reject_hostile_input() {
    let l = RapaConv2d::new(cfg(Scheme::Random, 4, TileKind::Float), 0).unwrap();
    let r = no_panic("reduce mean choice", || reduction_choice(&l, &Reduction::Mean));
    assert_invalid("mean choice", r, "by");
    for bad in [(3, 3), (4, 2), (0, 0)] {
        let wins = Array2::<u64>::zeros(bad);
        let r = no_panic("wins", || reduction_choice(&l, &Reduction::Wins(wins.view())));
        assert_shape(r, "reduce", "wins", &[4, 3], &[bad.0, bad.1]);
        let r = no_panic("reduce wins", || reduce(&l, &Reduction::Wins(wins.view()), 0).map(|_| ()));
        assert_shape(r, "reduce", "wins", &[4, 3], &[bad.0, bad.1]);
    }
    for (patches, budget) in [(vec![], 4), (vec![10, 0], 4), (vec![10, 10, 10], 2)] {
        let case = format!("plan_tiles {patches:?} {budget}");
        assert_invalid(&case, no_panic(&case, || plan_tiles(&patches, budget)), "budget");
    }
}
