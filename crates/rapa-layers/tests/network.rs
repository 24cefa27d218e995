//! The paper's network: weight counts, timing, the planner, analog tiles, determinism,
//! similarity and reduction.

mod common;

use common::{random4, set_all};
use rapa_layers::analysis::{NetworkTiming, Reduction, filter_similarity, plan_tiles, reduce, reduction_choice};
use rapa_layers::paper::{conv_weight_count, paper_convs, paper_like_convs, pool_out};
use rapa_layers::{RapaConv2d, Scheme, TileKind};

#[test]
fn paper_weight_counts_follow_from_the_layers() {
    assert_eq!(pool_out(32, 3, 2), 16);
    assert_eq!(pool_out(8, 3, 2), 4);
    let untiled = paper_convs([1, 1, 1], Scheme::None, &TileKind::Float);
    assert_eq!(conv_weight_count(&untiled), 79_328);
    let rapa = paper_convs([16, 4, 1], Scheme::Random, &TileKind::Float);
    assert_eq!(conv_weight_count(&rapa), 192_704);
    let enlarged = paper_like_convs([54, 64, 64], [1, 1, 1], Scheme::None, &TileKind::Float);
    assert_eq!(conv_weight_count(&enlarged), 193_032);
    // The built layers agree with the definitions.
    let built: usize = rapa.iter().map(|c| RapaConv2d::new(c.clone(), 1).unwrap().n_weights()).sum();
    assert_eq!(built, 192_704);
}

#[test]
fn paper_timing_and_planner() {
    let rapa = NetworkTiming::from_configs(&paper_convs([16, 4, 1], Scheme::Random, &TileKind::Float));
    assert!(rapa.layers.iter().all(|l| l.cycles_per_tile() == 64));
    assert_eq!(rapa.pipelined_cycles(), 64);
    assert_eq!(rapa.untiled().pipelined_cycles(), 1024);
    assert_eq!(rapa.speedup(), 16.0);
    // Same MACs whatever n is.
    let plain = rapa.untiled();
    for (a, b) in rapa.layers.iter().zip(&plain.layers) {
        assert_eq!(a.macs(), b.macs());
    }
    let patches: Vec<usize> = rapa.layers.iter().map(|l| l.patches).collect();
    assert_eq!(patches, vec![1024, 256, 64]);
    assert_eq!(plan_tiles(&patches, 21).unwrap(), vec![16, 4, 1]);
    // More tiles than needed for the next balance point: still (16, 4, 1) until 24 tiles.
    assert_eq!(plan_tiles(&patches, 23).unwrap(), vec![16, 4, 1]);
    // 24 tiles: 61 cycles (⌈1024/17⌉), with 5 and 2 tiles the fewest that keep the others ≤ 61.
    assert_eq!(plan_tiles(&patches, 24).unwrap(), vec![17, 5, 2]);
    assert!(plan_tiles(&patches, 2).is_err());
    // Analog time with the default timing model: forward-only, pipelined, 64·80 ns per image.
    let t = crossbar_sim::TimingModel::default();
    assert_eq!(rapa.pipelined_time_ns(&t, false, 31), 64.0 * 80.0);
    assert_eq!(plain.pipelined_time_ns(&t, false, 31) / rapa.pipelined_time_ns(&t, false, 31), 16.0);
}

#[test]
fn analog_tiles_plug_in_and_count_their_patches() {
    let mut cfg = paper_convs([16, 4, 1], Scheme::Random, &TileKind::Analog(Box::default()))[0].clone();
    cfg.init_std = 0.05;
    let mut l = RapaConv2d::new(cfg, 3).unwrap();
    let x = random4((2, 3, 32, 32), 1);
    let y = l.forward(x.view()).unwrap();
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 0.0));
    let dx = l.backward(random4((2, 32, 32, 32), 2).view()).unwrap();
    assert!(dx.iter().all(|v| v.is_finite()));
    l.update(0.01).unwrap();
    for t in l.tiles() {
        let c = t.counters();
        // Random assignment is balanced: 1024/16 = 64 patches per image per tile.
        assert_eq!((c.forward_cycles, c.backward_cycles, c.update_cycles), (128, 128, 128));
        assert!(c.pulses > 0);
    }
}

/// Every pass of a layer is bit-identical whatever the number of threads (1, 2, 3 and 7: fewer
/// and more threads than tiles, and counts that do not divide the batch, the tiles or the
/// gather chunks): for analog and float tiles, and the random, perforated (a fresh random subset
/// of patches per image) and image-pad (masked input regions) schemes, two training steps —
/// forward, backward with the input gradient, update; then forward, the weights-only backward
/// of a first layer, update — give the same outputs, input gradients and updated weights.
#[test]
fn layer_is_deterministic_for_any_thread_count() {
    let run = |threads: usize, tile: &TileKind, scheme: Scheme| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut cfg = paper_convs([4, 4, 1], scheme, tile)[1].clone();
            cfg.init_std = 0.05;
            let mut l = RapaConv2d::new(cfg, 9).unwrap();
            let y1 = l.forward(random4((3, 32, 16, 16), 4).view()).unwrap();
            let dx = l.backward(random4((3, 32, 16, 16), 5).view()).unwrap();
            l.update(0.01).unwrap();
            let w1: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
            let y2 = l.forward(random4((3, 32, 16, 16), 6).view()).unwrap();
            let assignment = l.last_assignment().to_vec();
            l.backward_weights_only(random4((3, 32, 16, 16), 7).view()).unwrap();
            l.update(0.01).unwrap();
            let w2: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
            (y1, dx, w1, y2, assignment, w2)
        })
    };
    for tile in [TileKind::Analog(Box::default()), TileKind::Float] {
        for scheme in [Scheme::Random, Scheme::Perforated, Scheme::ImagePad] {
            let one = run(1, &tile, scheme);
            // Not a no-op: both steps moved the weights, the two forward passes differ.
            assert_ne!(one.2, one.5, "{scheme}: the second update changed nothing");
            assert_ne!(one.0, one.3);
            for threads in [2, 3, 7] {
                let kind = if matches!(tile, TileKind::Float) { "float" } else { "analog" };
                assert!(run(threads, &tile, scheme) == one, "{kind} tiles, {scheme}: {threads} threads differ from 1");
            }
        }
    }
}

#[test]
fn similarity_and_reduction() {
    let cfg = paper_convs([4, 1, 1], Scheme::Random, &TileKind::Float)[0].clone();
    let mut l = RapaConv2d::new(rapa_layers::ConvConfig { init_std: 0.1, ..cfg }, 5).unwrap();
    // Independent random kernels: similarity near 0 (|r| of 75-element random vectors has
    // std 1/√75 ≈ 0.12 per pair; the mean over 6 pairs × 32 channels has std ≈ 0.008).
    let s = filter_similarity(&l).unwrap();
    assert!(s.mean.abs() < 0.05, "{}", s.mean);
    // Reduction of identical tiles gives back the same network outputs.
    let w = l.tiles()[2].weights().to_owned();
    // Pearson, not cosine: affine copies correlate ±1 whatever their offset. Tiles
    // (w, 2w + 0.3, −w, −(2w + 0.3)): pairs 0–1 and 2–3 give +1, the four others −1, so
    // every channel's mean is (2 − 4)/6 = −1/3 (cosine similarity would not give ±1 for the
    // offset copies).
    let affine = w.mapv(|v| 2.0 * v + 0.3);
    for (t, wt) in [w.clone(), affine.clone(), -&w, -&affine].iter().enumerate() {
        l.tiles_mut()[t].set_weights(wt.view()).unwrap();
    }
    let s = filter_similarity(&l).unwrap();
    assert!(s.per_channel.iter().all(|&c| (c + 1.0 / 3.0).abs() < 1e-6), "{:?}", s.per_channel);
    set_all(&mut l, w.view());
    assert!((filter_similarity(&l).unwrap().mean - 1.0).abs() < 1e-9);
    let x = random4((2, 3, 32, 32), 6);
    let y = l.forward(x.view()).unwrap();
    let reduced = reduce(&l, &Reduction::Norm, 7).unwrap();
    assert_eq!(reduced.tiles().len(), 1);
    let mut reduced = reduced;
    let yr = reduced.forward(x.view()).unwrap();
    let err = (&y - &yr).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err < 1e-5, "{err}");
}

#[test]
fn reduction_picks_largest_norm_or_most_wins() {
    let cfg = paper_convs([4, 1, 1], Scheme::Random, &TileKind::Float)[0].clone();
    let mut l = RapaConv2d::new(rapa_layers::ConvConfig { init_std: 0.1, ..cfg }, 5).unwrap();
    // Scale tile 3's filter of channel 0 up, and tile 1's of channel 1.
    for (t, c) in [(3usize, 0usize), (1, 1)] {
        let mut w = l.tiles()[t].weights().to_owned();
        w.row_mut(c).mapv_inplace(|v| v * 10.0);
        l.tiles_mut()[t].set_weights(w.view()).unwrap();
    }
    let choice = reduction_choice(&l, &Reduction::Norm).unwrap();
    assert_eq!((choice[0], choice[1]), (3, 1));
    let mut wins = ndarray::Array2::<u64>::zeros((4, 32));
    wins[[2, 0]] = 10;
    wins[[0, 1]] = 3;
    let choice = reduction_choice(&l, &Reduction::Wins(wins.view())).unwrap();
    assert_eq!((choice[0], choice[1], choice[2]), (2, 0, 0));
    let bad = ndarray::Array2::<u64>::zeros((3, 32));
    assert!(reduction_choice(&l, &Reduction::Wins(bad.view())).is_err());
    let reduced = reduce(&l, &Reduction::Wins(wins.view()), 1).unwrap();
    assert_eq!(reduced.tiles()[0].weights().row(0), l.tiles()[2].weights().row(0));
}

/// The layer's output before the activation is linear in the kernel, so the layer reduced to
/// the mean of its tiles computes, for every patch, the mean of what each tile computes: here
/// the mean of n untiled layers, layer t programmed with tile t's kernel everywhere.
#[test]
fn reduction_by_mean_computes_the_tiles_mean_output() {
    let cfg = paper_convs([4, 1, 1], Scheme::Random, &TileKind::Float)[0].clone();
    let l = RapaConv2d::new(rapa_layers::ConvConfig { init_std: 0.1, ..cfg }, 5).unwrap();
    assert!(reduction_choice(&l, &Reduction::Mean).is_err(), "the mean chooses no tile");
    let mut reduced = reduce(&l, &Reduction::Mean, 3).unwrap();
    assert_eq!(reduced.tiles().len(), 1);
    let w: Vec<_> = l.tiles().iter().map(|t| t.weights().to_owned()).collect();
    let mean = (&w[0] + &w[1] + &w[2] + &w[3]) / 4.0;
    let got = reduced.tiles()[0].weights().to_owned();
    let max_diff =
        |a: &ndarray::Array2<f32>, b: &ndarray::Array2<f32>| (a - b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(max_diff(&got, &mean) < 1e-6, "weights are not the tiles' mean");
    assert!(max_diff(&got, &w[0]) > 1e-2, "distinct tiles: the mean is none of them");
    let x = random4((2, 3, 32, 32), 8);
    let y = reduced.forward(x.view()).unwrap();
    let mut sum = ndarray::Array4::<f32>::zeros(y.raw_dim());
    for wt in &w {
        let mut single = RapaConv2d::from_state(l.state()).unwrap();
        set_all(&mut single, wt.view());
        sum += &single.forward(x.view()).unwrap();
    }
    let err = (&y - &(sum / 4.0)).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    let scale = y.mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(err < 1e-5 * scale.max(1.0), "reduced output differs from the tiles' mean output by {err}");
}

#[test]
fn layer_state_round_trips_and_continues_identically() {
    let tile = TileKind::Analog(Box::default());
    let mut cfg = paper_convs([4, 4, 1], Scheme::Random, &tile)[1].clone();
    cfg.init_std = 0.05;
    let mut a = RapaConv2d::new(cfg, 9).unwrap();
    let step = |l: &mut RapaConv2d, s: u64| {
        let y = l.forward(random4((2, 32, 16, 16), s).view()).unwrap();
        l.backward(random4((2, 32, 16, 16), s + 1).view()).unwrap();
        l.update(0.01).unwrap();
        y
    };
    step(&mut a, 1);
    let json = serde_json::to_string(&a.state()).unwrap();
    let mut b = RapaConv2d::from_state(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(step(&mut a, 3), step(&mut b, 3));
    assert_eq!(a.state(), b.state());
}

/// A snapshot whose assignment does not belong to its configuration (another tile count, or
/// another seed's fixed partition) is refused instead of indexing tiles or patches that do not
/// exist.
#[test]
fn layer_state_with_a_foreign_assignment_is_refused() {
    let cfg = paper_convs([16, 4, 1], Scheme::RandomFixed, &TileKind::Float)[0].clone();
    let layer = RapaConv2d::new(cfg.clone(), 9).unwrap();
    let other = RapaConv2d::new(paper_convs([4, 4, 1], Scheme::RandomFixed, &TileKind::Float)[0].clone(), 9).unwrap();
    let mut s = layer.state();
    s.assigner = other.state().assigner;
    let err = RapaConv2d::from_state(s).unwrap_err().to_string();
    assert!(err.contains("assigner") && err.contains("16 tiles"), "{err}");
    // Same scheme and tile count, but a partition that the seed does not give.
    let mut s = layer.state();
    let mut json: serde_json::Value = serde_json::to_value(&s.assigner).unwrap();
    let fixed = json["fixed"].as_array_mut().unwrap();
    let j = fixed.iter().position(|t| *t != fixed[0]).expect("16 tiles share the patches");
    fixed.swap(0, j);
    s.assigner = serde_json::from_value(json).unwrap();
    let err = RapaConv2d::from_state(s).unwrap_err().to_string();
    assert!(err.contains("assigner"), "{err}");
    RapaConv2d::from_state(layer.state()).unwrap();
}

/// The planner against exhaustive search: for the paper's layers (1 024, 256, 64 patches) and
/// an uneven set, at every budget up to 40 tiles, its choice reaches the smallest possible
/// slowest-layer cycle count max_l ⌈P_l/n_l⌉ over all tile counts within the budget, with the
/// fewest tiles among those that do.
#[test]
fn planner_matches_exhaustive_search() {
    for patches in [[1024usize, 256, 64], [900, 300, 7]] {
        for budget in 3..=40 {
            let cycles = |n: &[usize]| patches.iter().zip(n).map(|(&p, &k)| p.div_ceil(k)).max().unwrap();
            let mut best: Option<(usize, usize)> = None; // (cycles, tiles)
            for a in 1..=budget {
                for b in 1..=budget - a {
                    for c in 1..=budget - a - b {
                        let key = (cycles(&[a, b, c]), a + b + c);
                        best = Some(best.map_or(key, |k| k.min(key)));
                    }
                }
            }
            let plan = plan_tiles(&patches, budget).unwrap();
            let (want_cycles, want_tiles) = best.unwrap();
            assert_eq!(
                (cycles(&plan), plan.iter().sum::<usize>()),
                (want_cycles, want_tiles),
                "{patches:?} at {budget}"
            );
        }
    }
}

/// Training and sequential times by hand, with a timing model whose four constants differ so
/// that each term shows: per tile and image a layer costs ⌈P/n⌉·(t_fwd + t_bwd + BL·t_slot +
/// t_cycle) in training — without t_bwd in the first layer, whose backward MVMs training does
/// not run — and ⌈P/n⌉·t_fwd in inference; pipelined, the slowest layer sets the time;
/// sequential, the layers add. The paper's (16, 4, 1) tiling: 64 cycles in every layer.
#[test]
fn training_and_sequential_times_by_hand() {
    let t = crossbar_sim::TimingModel {
        forward_pass_ns: 80.0,
        backward_pass_ns: 70.0,
        update_slot_ns: 2.0,
        update_cycle_ns: 5.0,
    };
    let rapa = NetworkTiming::from_configs(&paper_convs([16, 4, 1], Scheme::Random, &TileKind::Float));
    let per_cycle = 80.0 + 70.0 + 31.0 * 2.0 + 5.0; // 217 ns
    let first = per_cycle - 70.0; // conv1: no backward MVMs
    assert_eq!(rapa.layers.iter().map(|l| l.backward).collect::<Vec<_>>(), [false, true, true]);
    for (i, l) in rapa.layers.iter().enumerate() {
        assert_eq!((l.cycles_per_tile(), l.train_cycles_per_tile()), (64, 64));
        assert_eq!(l.time_ns(&t, true, 31), 64.0 * if i == 0 { first } else { per_cycle });
        assert_eq!(l.time_ns(&t, false, 31), 64.0 * 80.0);
    }
    assert_eq!(rapa.pipelined_time_ns(&t, true, 31), 64.0 * per_cycle);
    assert_eq!(rapa.sequential_time_ns(&t, true, 31), 64.0 * (first + 2.0 * per_cycle));
    // Untiled: 1 024, 256 and 64 cycles; BL 1 changes only the update slots.
    let plain = rapa.untiled();
    let per_cycle_bl1 = 80.0 + 70.0 + 2.0 + 5.0;
    assert_eq!(plain.sequential_time_ns(&t, true, 1), 1024.0 * (per_cycle_bl1 - 70.0) + (256.0 + 64.0) * per_cycle_bl1);
    assert_eq!(plain.pipelined_time_ns(&t, false, 1), 1024.0 * 80.0);
}

/// The scheme decides how many tiles share the patches: perforated keeps one kernel matrix,
/// which computes ⌈P/n⌉ patches per image in training but all P at test; no tiling computes
/// all on one.
#[test]
fn timing_follows_the_scheme() {
    let t = crossbar_sim::TimingModel::default();
    let perf = NetworkTiming::from_configs(&paper_convs([16, 4, 1], Scheme::Perforated, &TileKind::Float));
    let l = &perf.layers[0];
    assert_eq!((l.n_tiles, l.cycles_per_tile(), l.train_cycles_per_tile()), (1, 1024, 64));
    assert_eq!(l.time_ns(&t, false, 31), 1024.0 * 80.0);
    assert_eq!(perf.layers[1].train_cycles_per_tile(), 64);
    assert_eq!(perf.pipelined_cycles(), 1024);
    assert_eq!(perf.speedup(), 1.0);
    let plain = perf.untiled();
    assert_eq!(plain.layers[0].train_cycles_per_tile(), 1024);
    let none = NetworkTiming::from_configs(&paper_convs([1, 1, 1], Scheme::None, &TileKind::Float));
    assert_eq!(none, none.untiled());
}

/// A layer on analog tiles with perfect IO, an ideal device and the exact (float) update
/// (`TileConfig::perfect`, which equals a float tile bit for bit) equals the float-tile layer
/// bit for bit: same initial weights, and over several training steps (distinct nonzero biases
/// per tile programmed into both) the same forward outputs, input gradients and updated
/// weights, for the untiled, random (also n = 5, unequal loads), image-pad and perforated
/// layers, with and without padding.
#[test]
fn perfect_analog_tiles_equal_float_tiles() {
    use rapa_layers::{ConvConfig, ConvGeometry};
    let perfect = TileKind::Analog(Box::new(crossbar_sim::TileConfig::perfect()));
    for (g, scheme, n) in [
        (ConvGeometry { in_channels: 3, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 }, Scheme::None, 1),
        (ConvGeometry { in_channels: 3, height: 8, width: 8, kernel: 5, stride: 1, pad: 2 }, Scheme::Random, 4),
        (ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 1, pad: 0 }, Scheme::Random, 5),
        (ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 2, pad: 1 }, Scheme::ImagePad, 4),
        (ConvGeometry { in_channels: 2, height: 8, width: 8, kernel: 3, stride: 1, pad: 1 }, Scheme::Perforated, 4),
    ] {
        let cfg = |tile: TileKind| ConvConfig { geometry: g, out_channels: 4, n_tiles: n, scheme, tile, init_std: 0.1 };
        let mut float = RapaConv2d::new(cfg(TileKind::Float), 9).unwrap();
        let mut analog = RapaConv2d::new(cfg(perfect.clone()), 9).unwrap();
        let weights = |l: &RapaConv2d| l.tiles().iter().map(|t| t.weights().to_owned()).collect::<Vec<_>>();
        assert_eq!(weights(&analog), weights(&float), "{scheme}: initial weights");
        let distinct = common::set_distinct(&mut float, 70);
        assert_eq!(common::set_distinct(&mut analog, 70), distinct);
        for step in 0..3u64 {
            let x = random4((2, g.in_channels, g.height, g.width), 80 + step);
            let dy = random4((2, 4, g.out_height(), g.out_width()), 90 + step);
            let y = float.forward(x.view()).unwrap();
            assert_eq!(analog.forward(x.view()).unwrap(), y, "{scheme} n={n}, step {step}: forward");
            assert_eq!(analog.last_assignment(), float.last_assignment());
            let dx = float.backward(dy.view()).unwrap();
            assert_eq!(analog.backward(dy.view()).unwrap(), dx, "{scheme} n={n}, step {step}: backward");
            float.update(0.05).unwrap();
            analog.update(0.05).unwrap();
            assert_eq!(weights(&analog), weights(&float), "{scheme} n={n}, step {step}: update");
            assert_ne!(weights(&float), distinct, "{scheme}: the update changed nothing");
        }
    }
}
