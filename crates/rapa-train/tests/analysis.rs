//! FGSM, SNR and network reduction.

use crossbar_sim::rng::seeded;
use ndarray::{Array4, Axis};
use rand::Rng;
use rapa_layers::Scheme;
use rapa_train::analysis::{ReduceBy, fgsm_perturb, reduce_network, snr_db};
use rapa_train::data::{Normalizer, synthetic};
use rapa_train::layers::SoftmaxCrossEntropy;
use rapa_train::net::{Init, NetConfig, Network};

fn tiny(scheme: Scheme, tiles: [usize; 3]) -> Network {
    let cfg = NetConfig { channels: [4, 4, 4], tiles, scheme, init: Init::He, ..NetConfig::default() };
    Network::new(&cfg, 3).unwrap()
}

fn loss(net: &mut Network, x: &Array4<f32>, labels: &[u16]) -> f64 {
    let logits = net.forward(x.view()).unwrap();
    SoftmaxCrossEntropy::loss_grad(logits.view(), labels).0
}

#[test]
fn snr_of_a_hand_computed_case() {
    // ‖x‖ = √(3² + 4²) = 5, ‖δ‖ = √(0.3² + 0.4²) = 0.5: 20·log10(10) = 20 dB.
    let x = [3.0f32, 4.0];
    let adv = [3.3f32, 4.4];
    assert!((snr_db(&x, &adv) - 20.0).abs() < 1e-5);
    assert!(snr_db(&x, &x).is_infinite());
}

#[test]
fn fgsm_raises_the_loss_along_the_finite_difference_direction() {
    // A deterministic assignment (alternate), so every pass sees the same tiles.
    let mut net = tiny(Scheme::Alternate, [4, 4, 1]);
    net.set_training(false);
    let mut rng = seeded(1);
    let p = Array4::from_shape_simple_fn((2, 3, 32, 32), || rng.random_range(0.2f32..0.8));
    let labels = [3u16, 7];
    let id = Normalizer::identity();
    let sign = fgsm_perturb(&mut net, p.view(), &labels, &id).unwrap();
    let l0 = loss(&mut net, &p, &labels);
    for eps in [1e-3f32, 1e-2] {
        let adv = &p + &(eps * &sign);
        assert!(loss(&mut net, &adv, &labels) > l0, "eps {eps} did not raise the loss");
    }
    // The sign matches a central finite difference wherever the derivative is clearly nonzero.
    let h = 1e-2f32;
    let mut checked = 0;
    for (idx, &s) in sign.indexed_iter().step_by(97) {
        let mut xp = p.clone();
        xp[idx] += h;
        let lp = loss(&mut net, &xp, &labels);
        xp[idx] -= 2.0 * h;
        let lm = loss(&mut net, &xp, &labels);
        let fd = (lp - lm) / (2.0 * f64::from(h));
        if fd.abs() > 1e-4 {
            assert_eq!(fd.signum() as f32, s, "{idx:?}: finite difference {fd}, sign {s}");
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} coordinates had a clear derivative");
}

#[test]
fn reducing_identical_tiles_keeps_the_network_outputs() {
    let mut net = tiny(Scheme::Random, [4, 4, 1]);
    // Program every tile of a layer with its first tile's weights.
    for conv in net.convs_mut() {
        let w = conv.tiles()[0].weights().to_owned();
        for t in conv.tiles_mut() {
            t.set_weights(w.view()).unwrap();
        }
    }
    net.set_training(false);
    let data = synthetic(20, 10, 1);
    let norm = Normalizer::fit(&data.train);
    let mut x = Array4::zeros((10, 3, 32, 32));
    rapa_train::data::fill_batch(&data.test, &(0..10).collect::<Vec<_>>(), &norm, None, &mut x);
    let before = net.forward(x.view()).unwrap();
    for by in [ReduceBy::Norm, ReduceBy::Wins] {
        let mut reduced = tiny(Scheme::Random, [4, 4, 1]);
        for (dst, src) in reduced.convs_mut().iter_mut().zip(net.convs()) {
            *dst = rapa_layers::RapaConv2d::from_state(src.state()).unwrap();
        }
        // The FC layer too.
        let mut st = reduced.state();
        st.fc = net.state().fc;
        let mut reduced = Network::from_state(st, 3).unwrap();
        reduce_network(&mut reduced, by, &data.train, &norm, 10, 5).unwrap();
        assert!(reduced.convs().iter().all(|c| c.tiles().len() == 1));
        assert_eq!(reduced.config().tiles, [1, 1, 1]);
        reduced.set_training(false);
        let after = reduced.forward(x.view()).unwrap();
        let err = (&before - &after).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
        assert!(err < 1e-4, "{by:?}: outputs differ by {err}");
        assert_eq!(after.len_of(Axis(0)), 10);
    }
}
