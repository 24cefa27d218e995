//! FGSM, SNR and network reduction.

use crossbar_sim::rng::seeded;
use ndarray::{Array2, Array4, Axis};
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

/// FGSM's sign is the sign of the loss gradient through the assignment it held: checked for a
/// deterministic assignment (alternate) and for a random one, where the losses are taken by a
/// copy of the network holding the same draw (the copy starts at the same assignment stream
/// position; `fgsm_perturb` moves the original past its held draw).
#[test]
fn fgsm_raises_the_loss_along_the_finite_difference_direction() {
    for scheme in [Scheme::Alternate, Scheme::Random] {
        let mut net = tiny(scheme, [4, 4, 1]);
        net.set_training(false);
        let mut held = Network::from_state(net.state(), 3).unwrap();
        held.set_training(false);
        held.hold_assignments(true);
        let mut rng = seeded(1);
        let p = Array4::from_shape_simple_fn((2, 3, 32, 32), || rng.random_range(0.2f32..0.8));
        let labels = [3u16, 7];
        let id = Normalizer::identity();
        let sign = fgsm_perturb(&mut net, p.view(), &labels, &id).unwrap();
        let l0 = loss(&mut held, &p, &labels);
        for eps in [1e-3f32, 1e-2] {
            let adv = &p + &(eps * &sign);
            assert!(loss(&mut held, &adv, &labels) > l0, "{scheme:?}: eps {eps} did not raise the loss");
        }
        // The sign matches a central finite difference wherever the derivative is clearly nonzero.
        let h = 1e-2f32;
        let mut checked = 0;
        for (idx, &s) in sign.indexed_iter().step_by(97) {
            let mut xp = p.clone();
            xp[idx] += h;
            let lp = loss(&mut held, &xp, &labels);
            xp[idx] -= 2.0 * h;
            let lm = loss(&mut held, &xp, &labels);
            let fd = (lp - lm) / (2.0 * f64::from(h));
            if fd.abs() > 1e-4 {
                assert_eq!(fd.signum() as f32, s, "{scheme:?} {idx:?}: finite difference {fd}, sign {s}");
                checked += 1;
            }
        }
        assert!(checked > 10, "{scheme:?}: only {checked} coordinates had a clear derivative");
    }
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
    for by in [ReduceBy::Norm, ReduceBy::Wins, ReduceBy::Mean] {
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

/// With distinct tiles (independent He draws), reduction by norm keeps, per layer and output
/// channel, the row (filter and bias) of the tile whose filter has the largest L2 norm,
/// found here by hand; the chosen tiles differ between channels, so a wrong choice shows.
#[test]
fn reducing_by_norm_keeps_each_channels_largest_filter() {
    let mut net = tiny(Scheme::Random, [4, 4, 1]);
    let originals: Vec<Vec<Array2<f32>>> =
        net.convs().iter().map(|c| c.tiles().iter().map(|t| t.weights().to_owned()).collect()).collect();
    let data = synthetic(20, 10, 1);
    let norm = Normalizer::fit(&data.train);
    reduce_network(&mut net, ReduceBy::Norm, &data.train, &norm, 10, 5).unwrap();
    let mut chosen = std::collections::BTreeSet::new();
    for (l, tiles) in originals.iter().enumerate() {
        let reduced = net.convs()[l].tiles()[0].weights().to_owned();
        let k = tiles[0].ncols() - 1; // the last column is the bias
        for c in 0..reduced.nrows() {
            let norm2 = |t: &Array2<f32>| t.row(c).iter().take(k).map(|&v| f64::from(v).powi(2)).sum::<f64>();
            let best = (0..tiles.len()).fold(0, |b, t| if norm2(&tiles[t]) > norm2(&tiles[b]) { t } else { b });
            chosen.insert((l, best));
            assert_eq!(reduced.row(c), tiles[best].row(c), "layer {l} channel {c}: tile {best}");
        }
    }
    assert!(chosen.iter().filter(|(l, _)| *l == 0).count() > 1, "every channel chose one tile: {chosen:?}");
}

/// Max-pool wins are mapped back to the tiles whose outputs won: with identical tiles except
/// one whose channel-0 bias is raised far above every other output, that tile wins every pool
/// window of channel 0 that holds one of its patches, i.e. 1 − (3/4)⁹ ≈ 92.5 % of the 3×3
/// windows with four tiles under a uniform random assignment; in channels 1 and 2 the tiles
/// are alike and share the wins. The biases of channels 0–2 are raised so that every output is
/// positive, and every window has exactly one winner; channel 3's is lowered so that every
/// output is 0 after the ReLU, and its windows have none. A reduction by wins keeps the raised
/// tile's filter for channel 0.
#[test]
fn pool_wins_are_counted_for_the_tile_that_won() {
    use rapa_train::analysis::count_pool_wins;
    let mut net = tiny(Scheme::Random, [4, 4, 1]);
    let conv = &mut net.convs_mut()[0];
    let mut w = conv.tiles()[0].weights().to_owned();
    let bias = w.ncols() - 1;
    for c in 0..3 {
        w[[c, bias]] += 10.0;
    }
    w[[3, bias]] -= 1000.0;
    for (t, tile) in conv.tiles_mut().iter_mut().enumerate() {
        let mut wt = w.clone();
        if t == 2 {
            wt[[0, bias]] += 100.0;
        }
        tile.set_weights(wt.view()).unwrap();
    }
    let data = synthetic(40, 10, 1);
    let norm = Normalizer::fit(&data.train);
    let wins = count_pool_wins(&mut net, 0, &data.train, &norm, 10).unwrap();
    assert_eq!(wins.dim(), (4, 4));
    let windows = net.pools()[0].last_argmax().unwrap().len() as u64 / (10 * 4) * 40;
    for c in 0..3 {
        assert_eq!(wins.column(c).sum(), windows, "channel {c}: one winner per window");
    }
    assert_eq!(wins.column(3).sum(), 0, "channel 3: all-zero windows have no winner");
    let share = wins[[2, 0]] as f64 / windows as f64;
    assert!(share > 0.85 && wins[[2, 0]] < windows, "raised tile's share of channel 0: {share}");
    for c in 1..3 {
        for t in 0..4 {
            let s = wins[[t, c]] as f64 / windows as f64;
            assert!((0.15..0.35).contains(&s), "tile {t}, channel {c}: share {s}");
        }
    }
    reduce_network(&mut net, ReduceBy::Wins, &data.train, &norm, 10, 5).unwrap();
    let kept = net.convs()[0].tiles()[0].weights();
    assert_eq!(kept[[0, bias]], w[[0, bias]] + 100.0, "channel 0 keeps the winning tile's filter");
}

/// A network snapshot whose layers do not fit its configuration (a conv layer of another
/// network, an fc layer for another number of classes) is a checkpoint error, not a panic in
/// the pools or the loss.
#[test]
fn network_state_that_does_not_fit_its_configuration_is_refused() {
    let net = tiny(Scheme::Random, [4, 4, 1]);
    let wide =
        Network::new(&NetConfig { channels: [8, 4, 4], tiles: [4, 4, 1], init: Init::He, ..NetConfig::default() }, 3)
            .unwrap();
    let mut s = net.state();
    s.convs[0] = wide.state().convs[0].clone();
    let err = Network::from_state(s, 3).unwrap_err().to_string();
    assert!(err.contains("conv1 does not match"), "{err}");
    let hundred = Network::new(&NetConfig { classes: 100, ..net.config().clone() }, 3).unwrap();
    let mut s = net.state();
    s.fc = hundred.state().fc;
    let err = Network::from_state(s, 3).unwrap_err().to_string();
    assert!(err.contains("fc layer is 100×"), "{err}");
    Network::from_state(net.state(), 3).unwrap();
}

/// The vote of `evaluate` over K passes is the per-image majority of the K passes'
/// predictions (ties to the lowest class): K single-pass evaluations of an identical network
/// draw the same assignments in the same order, so their predictions, voted by hand, must give
/// the same vote error; its first pass is theirs.
#[test]
fn majority_vote_of_passes() {
    use rapa_train::train::evaluate;
    let data = synthetic(10, 60, 4);
    let norm = Normalizer::fit(&data.train);
    let (k, classes) = (5, 10);
    let mut voted = tiny(Scheme::Random, [4, 4, 1]);
    let result = evaluate(&mut voted, &data.test, &norm, 16, k).unwrap();
    let mut single = tiny(Scheme::Random, [4, 4, 1]);
    let passes: Vec<Vec<usize>> =
        (0..k).map(|_| evaluate(&mut single, &data.test, &norm, 16, 1).unwrap().predictions).collect();
    assert_eq!(result.predictions, passes[0]);
    // Random assignments make the untrained network's passes disagree on some images.
    assert!((0..60).any(|i| passes.iter().any(|p| p[i] != passes[0][i])));
    let wrong = (0..60)
        .filter(|&i| {
            let mut count = vec![0; classes];
            passes.iter().for_each(|p| count[p[i]] += 1);
            let top = (0..classes).fold(0, |b, c| if count[c] > count[b] { c } else { b });
            top != usize::from(data.test.labels[i])
        })
        .count();
    assert_eq!(result.vote_error, wrong as f64 / 60.0);
    assert!(evaluate(&mut single, &data.test, &norm, 16, 0).is_err());
}

/// `fgsm_curve` attacks exactly the images the network classifies correctly: on a
/// deterministic (untiled) network, their count equals that of `evaluate`'s correct
/// predictions; with ε = 0 every attacked image stays correct at infinite SNR; with ε > 0 the
/// mean SNR is at least that of an unclipped perturbation, 20·log10(‖x‖/(ε·√D)) averaged over
/// the images (clipping at 0 and 1 only shrinks the perturbation). And every point equals an
/// independent recomputation through the network's own forward and backward passes: per batch
/// of 16, the correctly classified images are perturbed by ε·sign(∂L/∂x) (the sign of the
/// gradient with respect to the normalized input is that with respect to the pixels, the std
/// being > 0), clipped to [0, 1], normalized, classified again; accuracy is the fraction still
/// correct and the SNR the mean of 20·log10(‖p‖/‖p' − p‖) (f64; equal up to summation order).
#[test]
fn fgsm_curve_attacks_the_correct_images() {
    use rapa_train::analysis::fgsm_curve;
    use rapa_train::train::evaluate;
    let data = synthetic(10, 80, 6);
    let norm = Normalizer::fit(&data.train);
    let mut net = tiny(Scheme::None, [1, 1, 1]);
    let pred = evaluate(&mut net, &data.test, &norm, 16, 1).unwrap().predictions;
    let correct: Vec<usize> = (0..80).filter(|&i| pred[i] == usize::from(data.test.labels[i])).collect();
    assert!(!correct.is_empty() && correct.len() < 80, "{} correct", correct.len());
    let eps = 0.004f32;
    let eps_list = [0.0, eps, 0.02, 0.05, 0.2];
    let points = fgsm_curve(&mut net, &data.test, &norm, &eps_list, 16).unwrap();
    assert!(points.iter().all(|p| p.n == correct.len()));
    assert_eq!(points[0].accuracy, 1.0);
    assert!(points[0].snr_db.is_infinite());
    let d = (3 * 32 * 32) as f64;
    let unclipped = correct
        .iter()
        .map(|&i| {
            let norm_x = data.test.image(i).iter().map(|&b| (f64::from(b) / 255.0).powi(2)).sum::<f64>().sqrt();
            20.0 * (norm_x / (f64::from(eps) * d.sqrt())).log10()
        })
        .sum::<f64>()
        / correct.len() as f64;
    // The perturbed pixels are f32: p + ε rounds by ≤ 2⁻²⁵ (half an ulp below 1), a relative
    // error of ≤ 2⁻²⁵/ε ≈ 7.5·10⁻⁶ in each perturbation, 20·log10(1 + 2⁻²⁴/ε) ≈ 1.3·10⁻⁴ dB with
    // room for the subtraction; so the clipped SNR may fall that far below the exact bound.
    let slack = 20.0 * (1.0 + 2f64.powi(-24) / f64::from(eps)).log10();
    assert!(
        points[1].snr_db.is_finite() && points[1].snr_db >= unclipped - slack,
        "{} < {unclipped} - {slack}",
        points[1].snr_db
    );

    // The independent recomputation.
    let normalize = |p: &Array4<f32>| {
        let mut x = p.clone();
        for ((_, c, _, _), v) in x.indexed_iter_mut() {
            *v = (*v - norm.mean[c]) / norm.std[c];
        }
        x
    };
    let argmax = |logits: &Array2<f32>| -> Vec<usize> {
        logits
            .rows()
            .into_iter()
            .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (k, &v)| if v > b.1 { (k, v) } else { b }).0)
            .collect()
    };
    net.set_training(false);
    let (mut still, mut snr_sum, mut attacked) = (vec![0usize; eps_list.len()], vec![0.0f64; eps_list.len()], 0);
    for start in (0..80).step_by(16) {
        let idx: Vec<usize> = correct.iter().copied().filter(|&i| (start..start + 16).contains(&i)).collect();
        if idx.is_empty() {
            continue;
        }
        let labels: Vec<u16> = idx.iter().map(|&i| data.test.labels[i]).collect();
        let p = Array4::from_shape_fn((idx.len(), 3, 32, 32), |(k, c, y, x)| {
            f32::from(data.test.image(idx[k])[(c * 32 + y) * 32 + x]) / 255.0
        });
        let logits = net.forward(normalize(&p).view()).unwrap();
        let labels_usize: Vec<usize> = labels.iter().map(|&l| usize::from(l)).collect();
        assert_eq!(argmax(&logits), labels_usize, "images {idx:?} were classified correctly");
        let (_, g, _) = SoftmaxCrossEntropy::loss_grad(logits.view(), &labels);
        let sign = net.backward(g.view()).unwrap().mapv(|v| {
            if v > 0.0 {
                1.0f32
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        });
        attacked += idx.len();
        for (e, &eps_e) in eps_list.iter().enumerate() {
            let adv = (&p + &(eps_e * &sign)).mapv(|v| v.clamp(0.0, 1.0));
            let pred = argmax(&net.forward(normalize(&adv).view()).unwrap());
            for k in 0..idx.len() {
                still[e] += usize::from(pred[k] == labels_usize[k]);
                let (a, c) = (adv.index_axis(Axis(0), k), p.index_axis(Axis(0), k));
                let signal = c.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
                let noise = a.iter().zip(c).map(|(&u, &v)| (f64::from(u) - f64::from(v)).powi(2)).sum::<f64>().sqrt();
                snr_sum[e] += 20.0 * (signal / noise).log10();
            }
        }
    }
    assert_eq!(attacked, correct.len());
    for (e, point) in points.iter().enumerate() {
        let (accuracy, snr) = (still[e] as f64 / attacked as f64, snr_sum[e] / attacked as f64);
        assert_eq!((point.eps, point.n), (eps_list[e], attacked));
        assert_eq!(point.accuracy, accuracy, "ε = {}: accuracy", eps_list[e]);
        if snr.is_infinite() {
            assert_eq!(point.snr_db, snr, "ε = {}: SNR", eps_list[e]);
        } else {
            assert!(
                (point.snr_db - snr).abs() <= 1e-9 * snr.abs(),
                "ε = {}: SNR {} vs {snr}",
                eps_list[e],
                point.snr_db
            );
        }
    }
    // Not vacuous: some ε leaves part of the images correct and turns others wrong.
    assert!(points.iter().any(|p| p.accuracy > 0.0 && p.accuracy < 1.0), "{points:?}");
}

/// A diverged network (an infinite conv3 bias makes every logit NaN or infinite) is an error
/// naming the dataset and the first image, in evaluation and in the FGSM curve, not a
/// prediction of class 0 scored as ~90 % error.
#[test]
fn non_finite_outputs_are_an_error_not_a_prediction() {
    use rapa_train::analysis::fgsm_curve;
    use rapa_train::train::evaluate;
    let mut net = tiny(Scheme::Random, [4, 4, 1]);
    let data = synthetic(10, 30, 4);
    let norm = Normalizer::fit(&data.train);
    assert!(evaluate(&mut net, &data.test, &norm, 16, 1).is_ok());
    let conv3 = &mut net.convs_mut()[2];
    let mut w = conv3.tiles()[0].weights().to_owned();
    let bias = w.ncols() - 1;
    w.column_mut(bias).fill(f32::INFINITY);
    conv3.tiles_mut()[0].set_weights(w.view()).unwrap();
    for e in [
        evaluate(&mut net, &data.test, &norm, 16, 1).unwrap_err(),
        fgsm_curve(&mut net, &data.test, &norm, &[0.01], 16).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(
            matches!(&e, rapa_train::TrainError::NonFiniteOutput { image: 0, dataset } if *dataset == data.test.name),
            "{msg}"
        );
    }
}

/// With no originally correct image there is nothing to attack: an error naming the dataset,
/// not a curve of made-up points (accuracy 0 and SNR 0 over 0 images). An empty set likewise.
#[test]
fn fgsm_curve_without_a_correct_image_is_an_error() {
    use rapa_train::analysis::fgsm_curve;
    use rapa_train::data::{Dataset, IMAGE_BYTES};
    use rapa_train::train::evaluate;
    let data = synthetic(10, 80, 6);
    let norm = Normalizer::fit(&data.train);
    let mut net = tiny(Scheme::None, [1, 1, 1]);
    let pred = evaluate(&mut net, &data.test, &norm, 16, 1).unwrap().predictions;
    let mut wrong = Dataset::empty("wrong-only", data.test.n_classes);
    for i in (0..data.test.len()).filter(|&i| pred[i] != usize::from(data.test.labels[i])) {
        wrong.images.extend_from_slice(data.test.image(i));
        wrong.labels.push(data.test.labels[i]);
    }
    assert!(!wrong.is_empty() && wrong.images.len() == wrong.len() * IMAGE_BYTES);
    for ds in [&wrong, &Dataset::empty("nothing", 10)] {
        let err = fgsm_curve(&mut net, ds, &norm, &[0.01, 0.02], 16).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(&err, rapa_train::TrainError::Config { field, .. } if field == "model"), "{msg}");
        assert!(msg.contains(&ds.name) && msg.contains("none of the"), "{msg}");
    }
}
