//! The network's SGD step: per-tile learning-rate factors and weight decay.

use ndarray::Array4;
use rand::Rng;
use rapa_layers::Scheme;
use rapa_train::layers::SoftmaxCrossEntropy;
use rapa_train::net::{Init, NetConfig, Network};

fn input(seed: u64) -> Array4<f32> {
    let mut rng = crossbar_sim::rng::seeded(seed);
    Array4::from_shape_simple_fn((4, 3, 32, 32), || rng.random_range(-1.0f32..1.0))
}

/// Every tile of layer l gets the factor lr_scale[l]·n_l (n_l kernel matrices) by default —
/// a tile sees 1/n_l of the patches — and lr_scale[l] alone without `scale_lr_by_tiles`.
#[test]
fn tiles_learning_rate_factor_is_the_layers_scale_times_its_tile_count() {
    let base = NetConfig {
        channels: [4, 4, 4],
        tiles: [4, 2, 1],
        scheme: Scheme::Random,
        lr_scale: [1.0, 0.5, 2.0],
        ..NetConfig::default()
    };
    let net = Network::new(&base, 1).unwrap();
    let factors: Vec<Vec<f32>> = net.convs().iter().map(|c| c.state().lr_scale).collect();
    assert_eq!(factors, vec![vec![4.0; 4], vec![1.0; 2], vec![2.0]]);
    let net = Network::new(&NetConfig { scale_lr_by_tiles: false, ..base }, 1).unwrap();
    let factors: Vec<Vec<f32>> = net.convs().iter().map(|c| c.state().lr_scale).collect();
    assert_eq!(factors, vec![vec![1.0; 4], vec![0.5; 2], vec![2.0]]);
}

/// Weights of every tile after one step with and without weight decay, from the same state.
fn step_pair(cfg: &NetConfig, lr: f32, wd: f32) -> (Vec<ndarray::Array2<f32>>, Vec<ndarray::Array2<f32>>) {
    let x = input(5);
    let labels = [0u16, 3, 7, 9];
    let run = |wd: f32| {
        let mut net = Network::new(cfg, 2).unwrap();
        let logits = net.forward(x.view()).unwrap();
        let (_, g, _) = SoftmaxCrossEntropy::loss_grad(logits.view(), &labels);
        net.backward(g.view()).unwrap();
        net.update(lr, wd).unwrap();
        let mut w: Vec<_> = net.convs().iter().flat_map(|c| c.tiles().iter().map(|t| t.weights().to_owned())).collect();
        w.push(net.fc().tile().weights().to_owned());
        w
    };
    (run(0.0), run(wd))
}

/// Float network: W ← W·(1 − lr·wd) on every tile's weights after the SGD step, biases (the
/// last column) untouched — exactly, since the decayed run repeats the other's arithmetic and
/// then multiplies. Analog tiles get no decay (their weights change only through pulses): the
/// same step with and without decay gives the same weights bit for bit.
#[test]
fn weight_decay_shrinks_float_weights_but_not_biases_or_analog_tiles() {
    let (lr, wd) = (0.5, 0.2); // factor 0.9
    let cfg = NetConfig { channels: [4, 4, 4], tiles: [4, 2, 1], init: Init::He, ..NetConfig::default() };
    let (plain, decayed) = step_pair(&cfg, lr, wd);
    for (i, (p, d)) in plain.iter().zip(&decayed).enumerate() {
        let k = p.ncols() - 1;
        for ((r, c), &v) in d.indexed_iter() {
            let want = if c == k { p[[r, c]] } else { p[[r, c]] * (1.0 - lr * wd) };
            assert_eq!(v, want, "tile {i} [{r}, {c}]");
        }
        assert!(p.iter().any(|&v| v != 0.0));
    }

    let analog = NetConfig { device: "aihwkit-default".into(), ..cfg };
    let (plain, decayed) = step_pair(&analog, lr, wd);
    assert_eq!(plain, decayed);
}

/// With `decay_with_tile_lr` each conv tile decays with its own learning rate: W ← W·(1 − lr·s·wd)
/// for its factor s (lr_scale[l]·n_l: 4, 1 and 2 here), biases untouched; the fully connected
/// layer (factor 1) decays as before. Exact, as above.
#[test]
fn decay_with_tile_lr_uses_each_tiles_factor() {
    let (lr, wd) = (0.5, 0.1); // factors 0.8, 0.95, 0.9 for s = 4, 1, 2
    let cfg = NetConfig {
        channels: [4, 4, 4],
        tiles: [4, 2, 1],
        lr_scale: [1.0, 0.5, 2.0],
        decay_with_tile_lr: true,
        init: Init::He,
        ..NetConfig::default()
    };
    let check = |cfg: &NetConfig, factors: [f32; 8]| {
        let (plain, decayed) = step_pair(cfg, lr, wd);
        assert_eq!(plain.len(), factors.len());
        for (i, ((p, d), s)) in plain.iter().zip(&decayed).zip(factors).enumerate() {
            let k = p.ncols() - 1;
            for ((r, c), &v) in d.indexed_iter() {
                let want = if c == k { p[[r, c]] } else { p[[r, c]] * (1.0 - lr * s * wd) };
                assert_eq!(v, want, "tile {i} [{r}, {c}]");
            }
        }
    };
    check(&cfg, [4.0, 4.0, 4.0, 4.0, 1.0, 1.0, 2.0, 1.0]); // 4 + 2 + 1 conv tiles, then fc
    // Without scale_lr_by_tiles the factor is lr_scale alone.
    check(&NetConfig { scale_lr_by_tiles: false, ..cfg.clone() }, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 2.0, 1.0]);
    // Analog tiles still get no decay.
    let (plain, decayed) = step_pair(&NetConfig { device: "aihwkit-default".into(), ..cfg }, lr, wd);
    assert_eq!(plain, decayed);
}
