//! Tiki-Taka (`TransferConfig`): the fast device A takes the SGD pulses, transfers move it into
//! the visible device C; exact identities on ideal devices, the buffered rule, the pulsed
//! transfer's mean, state, threads and errors.

mod common;

use common::{exact_steps, uniform};
use crossbar_sim::device::PulsedParams;
use crossbar_sim::dynamics::DynamicsConfig;
use crossbar_sim::{
    AnalogTile, ConfigError, DeviceConfig, FloatTile, IoConfig, MappingConfig, MixedPrecisionConfig, NoiseManagement,
    PulseType, SimError, Tile, TileConfig, TileSnapshot, TransferAlgorithm, TransferConfig, UpdateConfig,
};
use ndarray::{Array2, ArrayView2, s};

/// Exact passes, exact SGD onto an ideal fast device, exact reads, an ideal visible device.
fn exact_tt(t: TransferConfig) -> TileConfig {
    TileConfig {
        transfer: TransferConfig {
            enabled: true,
            fast_device: DeviceConfig::Ideal,
            transfer_forward: IoConfig::perfect(),
            ..t
        },
        ..TileConfig::perfect()
    }
}

/// Update calls of the given batch sizes: (x, d) with x in [−1, 1], d in [−0.5, 0.5].
fn calls(batches: &[usize], n_in: usize, n_out: usize, seed: u64) -> Vec<(Array2<f32>, Array2<f32>)> {
    batches
        .iter()
        .enumerate()
        .map(|(k, &b)| (uniform(b, n_in, 1.0, seed + 2 * k as u64), uniform(b, n_out, 0.5, seed + 2 * k as u64 + 1)))
        .collect()
}

/// The transfer rules written out with float arrays, for exact devices and reads: returns
/// (C, A, H) after the calls. The SGD of each stretch of vectors between transfer points goes
/// through a `FloatTile` (the same product as the tile's).
fn reference(
    tc: &TransferConfig,
    w0: &Array2<f32>,
    calls: &[(Array2<f32>, Array2<f32>)],
    lr: f32,
    eps: f32,
) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let (n_out, n_in) = w0.dim();
    let mut a = FloatTile::from_weights(Array2::zeros((n_out, n_in)));
    let mut c = w0.clone();
    let mut h = Array2::<f32>::zeros((n_out, n_in));
    let (mut vectors, mut next) = (0u64, 0usize);
    let size = if tc.transfer_columns { n_in } else { n_out };
    let count = (tc.n_reads_per_transfer as usize).min(size);
    let lam = tc.transfer_rate(lr);
    for (x, d) in calls {
        let every = tc.period(x.nrows());
        let mut start = 0;
        while start < x.nrows() {
            let until = if every == 0 { x.nrows() - start } else { (every - vectors % every) as usize };
            let end = x.nrows().min(start + until);
            a.update(x.slice(s![start..end, ..]), d.slice(s![start..end, ..]), tc.fast_rate(lr)).unwrap();
            vectors += (end - start) as u64;
            if every > 0 && vectors % every == 0 && lam > 0.0 {
                for k in 0..count {
                    let i = (next + k) % size;
                    let read = if tc.transfer_columns {
                        a.weights().column(i).to_owned()
                    } else {
                        a.weights().row(i).to_owned()
                    };
                    let write = match tc.algorithm {
                        TransferAlgorithm::TikiTaka => read.mapv(|v| lam * v),
                        TransferAlgorithm::Chopped | TransferAlgorithm::Dynamic => unreachable!("chopped_reference"),
                        TransferAlgorithm::Buffered => {
                            let mut hs = if tc.transfer_columns { h.column_mut(i) } else { h.row_mut(i) };
                            let thres = tc.thres_scale * eps;
                            let max_n = tc.write_update().desired_bl as f32;
                            let mut n = read.clone();
                            for ((hv, &v), nv) in hs.iter_mut().zip(&read).zip(n.iter_mut()) {
                                let omega = *hv + v * lam;
                                *nv = (omega / thres).trunc().clamp(-max_n, max_n);
                                *hv = if *nv == 0.0 {
                                    omega
                                } else if tc.forget_buffer {
                                    omega * tc.momentum()
                                } else {
                                    omega - (1.0 - tc.momentum()) * *nv * thres
                                };
                            }
                            n.mapv(|n| tc.step * eps * n)
                        }
                    };
                    let mut target = if tc.transfer_columns { c.column_mut(i) } else { c.row_mut(i) };
                    target += &write;
                }
                next = (next + count) % size;
            }
            start = end;
        }
    }
    (c, a.weights().to_owned(), h)
}

/// The reference's chopper state and running means.
#[derive(Debug, Default)]
struct Chop {
    input: Vec<bool>,
    output: Vec<bool>,
    m_x: f32,
    m_d: f32,
    sweeps: u64,
}

/// The chopped rule written out, for exact devices and reads of granularity `eps` (A and C),
/// with deterministic chopper flips (regular input choppers; output choppers with probability
/// 0 or 1): returns (C, A, H, choppers) after the calls.
fn chopped_reference(
    tc: &TransferConfig,
    w0: &Array2<f32>,
    calls: &[(Array2<f32>, Array2<f32>)],
    lr: f32,
    eps: f32,
    bl: f32,
) -> (Array2<f32>, Array2<f32>, Array2<f32>, Chop) {
    assert!(!tc.in_chop_random() || tc.in_chop_prob == 0.0);
    assert!(tc.out_chop_prob == 0.0 || tc.out_chop_prob == 1.0);
    let (n_out, n_in) = w0.dim();
    let cols = tc.transfer_columns;
    let (size, other) = if cols { (n_in, n_out) } else { (n_out, n_in) };
    let mut a = FloatTile::from_weights(Array2::zeros((n_out, n_in)));
    let mut c = w0.clone();
    let mut h = Array2::<f32>::zeros((n_out, n_in));
    let mut ch = Chop { input: vec![false; size], output: vec![false; other], ..Chop::default() };
    // Dynamic: running means, references, and which inputs flipped after their last read.
    let (mut mean, mut past, mut switched) =
        (Array2::<f32>::zeros((n_out, n_in)), Array2::<f32>::zeros((n_out, n_in)), vec![false; size]);
    let period = tc.chop_period();
    let (mut vectors, mut next) = (0u64, 0usize);
    let lam = tc.transfer_rate(lr);
    let max_n = tc.write_update().desired_bl as f32;
    // The EMA of aihwkit: first value as is, then (1 − τ)·m + τ·v with τ = (1 − momentum)/B.
    let track = |m: &mut f32, v: f32, b: usize| {
        if *m <= 0.0 {
            *m = v
        } else if v > 0.0 {
            let tau = (1.0 - tc.auto_momentum) / b as f32;
            *m = (1.0 - tau) * *m + tau * v;
        }
    };
    for (x, d) in calls {
        let batch = x.nrows();
        let every = tc.period(batch);
        for b in 0..batch {
            // One vector at a time (chopped transfers fall between vectors).
            let mut xb = x.slice(s![b..b + 1, ..]).to_owned();
            let mut db = d.slice(s![b..b + 1, ..]).to_owned();
            let mut count_lr = tc.fast_rate(lr);
            if tc.auto_scale {
                track(&mut ch.m_x, xb.iter().fold(0.0, |m, v| m.max(v.abs())), batch);
                track(&mut ch.m_d, db.iter().fold(0.0, |m, v| m.max(v.abs())), batch);
                count_lr = tc.fast_lr * bl * eps;
                if ch.m_x > 0.0 && ch.m_d > 0.0 {
                    count_lr /= ch.m_x * ch.m_d;
                }
                if tc.scale_fast_lr() {
                    count_lr *= lr;
                }
            }
            let (cx, cd) = if cols { (&ch.input, &ch.output) } else { (&ch.output, &ch.input) };
            xb.iter_mut().zip(cx).filter(|(_, f)| **f).for_each(|(v, _)| *v = -*v);
            db.iter_mut().zip(cd).filter(|(_, f)| **f).for_each(|(v, _)| *v = -*v);
            a.update(xb.view(), db.view(), count_lr).unwrap();
            vectors += 1;
            if every == 0 || vectors % every != 0 || lam == 0.0 {
                if every > 0 && vectors % every == 0 {
                    next = (next + 1) % size;
                }
                continue;
            }
            let i = next;
            next = (i + 1) % size;
            let read = if cols { a.weights().column(i).to_owned() } else { a.weights().row(i).to_owned() };
            let mut unit = tc.buffer_granularity * eps;
            if tc.auto_granularity > 0.0 {
                unit *= tc.auto_granularity / (size as f32 * tc.transfer_every);
            }
            let scale = if tc.correct_gradient_magnitudes { lam / count_lr / unit } else { lam / unit };
            if tc.dynamic() {
                let sample = ch.sweeps % period + 1;
                let weight = (tc.tail_weightening / period as f32).min(1.0);
                let was_switched = std::mem::replace(&mut switched[i], false);
                let mut n = vec![0.0f32; read.len()];
                for (j, &v) in read.iter().enumerate() {
                    let at = if cols { (j, i) } else { (i, j) };
                    if was_switched {
                        past[at] = mean[at];
                    }
                    let sign = if ch.input[i] != ch.output[j] { -1.0 } else { 1.0 };
                    let mut omega = h[at] + sign * (v - past[at]) * scale;
                    if omega.abs() >= 1.0 {
                        n[j] = omega.trunc().clamp(-max_n, max_n);
                        omega = if tc.forget_buffer {
                            omega * tc.momentum()
                        } else {
                            let cap = max_n * tc.buffer_cap;
                            let o = omega - (1.0 - tc.momentum()) * n[j];
                            if cap > 0.0 { o.clamp(-cap, cap) } else { o }
                        };
                    }
                    h[at] = omega;
                    mean[at] = mean[at] * (1.0 - weight) + v * weight;
                }
                if ch.sweeps > period {
                    let mut target = if cols { c.column_mut(i) } else { c.row_mut(i) };
                    for (t, nv) in target.iter_mut().zip(&n) {
                        *t += tc.step * eps * nv;
                    }
                }
                if sample == period {
                    ch.input[i] = !ch.input[i];
                    switched[i] = true;
                }
                if i == size - 1 {
                    ch.sweeps += 1;
                }
                continue;
            }
            let mut hs = if cols { h.column_mut(i) } else { h.row_mut(i) };
            let mut target = if cols { c.column_mut(i) } else { c.row_mut(i) };
            for (j, (hv, &v)) in hs.iter_mut().zip(&read).enumerate() {
                let sign = if ch.input[i] != ch.output[j] { -1.0 } else { 1.0 };
                let mut omega = if tc.no_buffer { 0.0 } else { *hv };
                omega += sign * (v * scale);
                if omega.abs() >= 1.0 {
                    let n = omega.trunc().clamp(-max_n, max_n);
                    target[j] += tc.step * eps * n;
                    omega = if tc.forget_buffer { omega * tc.momentum() } else { omega - (1.0 - tc.momentum()) * n };
                }
                *hv = omega;
            }
            if tc.in_chop_prob > 0.0 && ch.sweeps % period + 1 == period {
                ch.input[i] = !ch.input[i];
            }
            if i == size - 1 {
                if tc.out_chop_prob == 1.0 {
                    ch.output.iter_mut().for_each(|c| *c = !*c);
                }
                ch.sweeps += 1;
            }
        }
    }
    (c, a.weights().to_owned(), h, ch)
}

fn assert_close(got: ArrayView2<'_, f32>, want: ArrayView2<'_, f32>, tol: f32, what: &str) {
    assert_eq!(got.dim(), want.dim(), "{what}");
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        assert!((g - w).abs() <= tol, "{what} at {idx:?}: {g} against {w}\n{got}\n{want}");
    }
}

/// On ideal devices with exact reads the tile is the rule written out: per-batch and
/// per-vector periods, several reads per transfer, columns and rows, a transfer rate not
/// scaled by lr, and a short batch in between (which shifts later transfers, as in aihwkit).
#[test]
fn exact_tiki_taka_follows_the_rule() {
    let (n_out, n_in) = (3, 5);
    let w0 = uniform(n_out, n_in, 0.3, 1);
    let data = calls(&[4, 4, 3, 4, 4, 4, 4], n_in, n_out, 10);
    let cases = [
        TransferConfig::default(),
        TransferConfig {
            transfer_every: 3.0,
            units_in_mbatch: Some(false),
            n_reads_per_transfer: 2,
            ..Default::default()
        },
        TransferConfig { transfer_every: 0.5, transfer_columns: false, ..Default::default() },
        TransferConfig { transfer_lr: 0.3, scale_transfer_lr: false, fast_lr: 2.0, ..Default::default() },
        TransferConfig { n_reads_per_transfer: 9, fast_lr: 0.5, scale_fast_lr: Some(false), ..Default::default() },
    ];
    for (k, t) in cases.into_iter().enumerate() {
        let cfg = exact_tt(t.clone());
        let mut tile = AnalogTile::new(n_out, n_in, &cfg, 3).unwrap();
        tile.set_weights(w0.view()).unwrap();
        for (x, d) in &data {
            tile.update(x.view(), d.view(), 0.1).unwrap();
        }
        let (c, a, _) = reference(&cfg.transfer, &w0, &data, 0.1, 1e-3);
        assert_close(tile.fast_weights().unwrap(), a.view(), 0.0, &format!("case {k}: A"));
        assert_close(tile.weights(), c.view(), 1e-6, &format!("case {k}: C"));
        assert!(tile.weights() != w0.view(), "case {k}: nothing was transferred");
        // γ = 0: the passes see C alone.
        let x = uniform(2, n_in, 1.0, 99);
        let want = FloatTile::from_weights(c.clone()).forward_new(x.view()).unwrap();
        assert_close(tile.forward_new(x.view()).unwrap().view(), want.view(), 1e-6, &format!("case {k}: forward"));
    }
}

/// With γ = 1 and no transfers the passes see W = C + A, and A takes plain SGD: the tile is
/// an SGD tile.
#[test]
fn gamma_one_without_transfers_is_sgd() {
    let w0 = uniform(4, 6, 0.3, 2);
    let cfg = exact_tt(TransferConfig { gamma: 1.0, transfer_lr: 0.0, ..Default::default() });
    let mut tile = AnalogTile::new(4, 6, &cfg, 5).unwrap();
    tile.set_weights(w0.view()).unwrap();
    let mut sgd = FloatTile::from_weights(w0.clone());
    for (x, d) in calls(&[5; 6], 6, 4, 20) {
        tile.update(x.view(), d.view(), 0.2).unwrap();
        sgd.update(x.view(), d.view(), 0.2).unwrap();
    }
    assert!(tile.fast_weights().unwrap().iter().any(|&a| a != 0.0));
    assert_close(tile.weights(), sgd.weights(), 1e-5, "W = C + A");
    let x = uniform(3, 6, 1.0, 98);
    let want = sgd.forward_new(x.view()).unwrap();
    assert_close(tile.forward_new(x.view()).unwrap().view(), want.view(), 1e-5, "forward");
    let d = uniform(3, 4, 1.0, 97);
    let want = sgd.backward_new(d.view()).unwrap();
    assert_close(tile.backward_new(d.view()).unwrap().view(), want.view(), 1e-5, "backward");
}

/// With a weight mapping (ω = 0.5 per output) and a digital bias, A lives in the stored units
/// (it takes the update on d/α) and the bias column keeps its exact SGD: with γ = 1 and no
/// transfers the tile's W = α·(C + A) plus the bias is again plain SGD, and C stays where it
/// was programmed.
#[test]
fn mapping_and_digital_bias_keep_the_sgd_identity() {
    let w0 = uniform(4, 6, 0.3, 8);
    let mut cfg = exact_tt(TransferConfig { gamma: 1.0, transfer_lr: 0.0, ..Default::default() });
    cfg.mapping = MappingConfig { weight_scaling_omega: 0.5, columnwise: true, digital_bias: true };
    let mut tile = AnalogTile::new(4, 6, &cfg, 5).unwrap();
    tile.set_weights(w0.view()).unwrap();
    let c0 = tile.stored_weights().to_owned();
    let mut sgd = FloatTile::from_weights(w0.clone());
    for (x, d) in calls(&[5; 6], 6, 4, 21) {
        tile.update(x.view(), d.view(), 0.2).unwrap();
        sgd.update(x.view(), d.view(), 0.2).unwrap();
    }
    assert_eq!(tile.stored_weights(), c0.view(), "no transfer, so C is untouched");
    assert_eq!(tile.fast_weights().unwrap().dim(), (4, 5), "A has the analog columns only");
    assert_close(tile.weights(), sgd.weights(), 1e-5, "W = α·(C + A), bias");
    let x = uniform(3, 6, 1.0, 96);
    let want = sgd.forward_new(x.view()).unwrap();
    assert_close(tile.forward_new(x.view()).unwrap().view(), want.view(), 1e-5, "forward");
}

/// Transferring every column after every vector at λ = 1 and then resetting A to exactly 0
/// moves the whole SGD step into C: C follows SGD, one vector at a time.
#[test]
fn full_transfer_with_reset_is_sgd_on_c() {
    let w0 = uniform(3, 4, 0.3, 3);
    let cfg = exact_tt(TransferConfig {
        transfer_every: 1.0,
        units_in_mbatch: Some(false),
        n_reads_per_transfer: 4,
        transfer_lr: 1.0,
        scale_transfer_lr: false,
        with_reset_prob: 1.0,
        fast_dynamics: DynamicsConfig { reset_std: 0.0, ..Default::default() },
        ..Default::default()
    });
    let mut tile = AnalogTile::new(3, 4, &cfg, 7).unwrap();
    tile.set_weights(w0.view()).unwrap();
    let mut sgd = FloatTile::from_weights(w0.clone());
    for (x, d) in calls(&[3, 5, 2], 4, 3, 30) {
        tile.update(x.view(), d.view(), 0.1).unwrap();
        for b in 0..x.nrows() {
            sgd.update(x.slice(s![b..b + 1, ..]), d.slice(s![b..b + 1, ..]), 0.1).unwrap();
        }
        assert!(tile.fast_weights().unwrap().iter().all(|&a| a == 0.0), "A is reset after each read");
        assert_close(tile.weights(), sgd.weights(), 1e-6, "C");
    }
}

/// The buffered rule (TTv2) on exact devices, against the rule written out, with and without
/// forgetting, and with a BL cap of 1 (the default) or 31. The default pulsed write (BL 1, no
/// update management, step 1) sends exactly one pulse of sign n, so on a device without
/// variation it lands exactly where the rule puts it.
#[test]
fn buffered_transfer_follows_the_rule() {
    let (n_out, n_in) = (3, 4);
    let w0 = uniform(n_out, n_in, 0.3, 4);
    let data = calls(&[4; 12], n_in, n_out, 40);
    let float_write = UpdateConfig { pulse_type: PulseType::Float, desired_bl: 31, ..UpdateConfig::default() };
    let cases = [
        (TransferConfig { n_reads_per_transfer: 2, transfer_lr: 0.5, ..Default::default() }, DeviceConfig::Ideal),
        (
            TransferConfig {
                forget_buffer: false,
                momentum: Some(0.3),
                thres_scale: 2.0,
                step: 0.5,
                transfer_update: Some(float_write),
                transfer_lr: 3.0,
                ..Default::default()
            },
            DeviceConfig::Ideal,
        ),
        (TransferConfig { n_reads_per_transfer: 4, transfer_lr: 0.5, ..Default::default() }, exact_steps(1e-3)),
    ];
    for (k, (t, device)) in cases.into_iter().enumerate() {
        let mut cfg = exact_tt(TransferConfig { algorithm: TransferAlgorithm::Buffered, ..t });
        cfg.device = device;
        let mut tile = AnalogTile::new(n_out, n_in, &cfg, 3).unwrap();
        tile.set_weights(w0.view()).unwrap();
        for (x, d) in &data {
            tile.update(x.view(), d.view(), 0.1).unwrap();
        }
        let (c, a, h) = reference(&cfg.transfer, &w0, &data, 0.1, 1e-3);
        assert_close(tile.fast_weights().unwrap(), a.view(), 0.0, &format!("case {k}: A"));
        assert_close(tile.transfer_buffer().unwrap(), h.view(), 1e-6, &format!("case {k}: H"));
        assert_close(tile.weights(), c.view(), 1e-6, &format!("case {k}: C"));
        let moved = c.iter().zip(&w0).filter(|(c, w)| c != w).count();
        assert!(moved >= 6, "case {k}: only {moved} weights moved");
    }
}

/// One Tiki-Taka transfer with stochastic pulses (BL up to 31, update and BL management) onto
/// a constant-step device without variation: C[:, i] moves by λ·A[:, i] on average. Each
/// device's pulse count is a sum of BL independent coincidences with mean λ·A/ε and variance
/// at most that mean, so the mean over N seeds lies within 5·√(mean/N) steps of it.
#[test]
fn a_pulsed_transfer_moves_c_by_lambda_a_on_average() {
    let eps = 1e-3f32;
    let (n_out, n_in) = (4, 3);
    let t = TransferConfig {
        enabled: true,
        fast_device: DeviceConfig::Ideal,
        transfer_forward: IoConfig::perfect(),
        n_reads_per_transfer: 3,
        transfer_lr: 1.0,
        scale_transfer_lr: false,
        ..Default::default()
    };
    let cfg = TileConfig { device: exact_steps(eps), transfer: t, ..TileConfig::perfect() };
    // A = −lr·dᵀx after the one call: entries up to 0.02 (20 steps, BL ≤ 20).
    let x = ndarray::array![[1.0f32, -0.5, 0.25]];
    let d = ndarray::array![[0.2f32, -0.1, 0.05, 0.15]];
    let lr = 0.1;
    let n = 400;
    let mut mean = Array2::<f64>::zeros((n_out, n_in));
    let mut a = Array2::zeros((0, 0));
    for seed in 0..n {
        let mut tile = AnalogTile::new(n_out, n_in, &cfg, seed).unwrap();
        tile.update(x.view(), d.view(), lr).unwrap();
        a = tile.fast_weights().unwrap().to_owned();
        mean.zip_mut_with(&tile.weights(), |m, &w| *m += f64::from(w / eps) / n as f64);
    }
    for ((idx, &m), &av) in mean.indexed_iter().zip(&a) {
        let want = f64::from(av / eps);
        let tol = 5.0 * (want.abs() / n as f64).sqrt() + 1e-3;
        assert!((m - want).abs() <= tol, "{idx:?}: mean {m:.3} steps, want {want:.3} ± {tol:.3}");
    }
    // The coarse check has power: A is not zero and the BL cap was not reached.
    assert!(a.iter().map(|v| (v / eps).abs()).fold(0.0, f32::max) > 10.0);
}

/// Snapshot in the middle of training, restore, continue: the same bits as the original (both
/// algorithms, noisy default periphery and devices; and Tiki-Taka with γ ≠ 0, a weight mapping,
/// a digital bias and write noise on both devices). A state without its transfer part, or with
/// a buffer of the wrong shape, is refused.
#[test]
fn state_round_trip_continues_bit_exactly() {
    let mut busy = TileConfig {
        transfer: TransferConfig {
            enabled: true,
            gamma: 0.5,
            transfer_every: 0.5,
            fast_dynamics: DynamicsConfig { write_noise_std: 2.0, ..Default::default() },
            ..Default::default()
        },
        mapping: MappingConfig { weight_scaling_omega: 0.3, columnwise: true, digital_bias: true },
        ..TileConfig::aihwkit_default()
    };
    busy.dynamics.write_noise_std = 2.0;
    let plain = |algorithm| TileConfig {
        transfer: TransferConfig { enabled: true, algorithm, transfer_every: 0.5, ..Default::default() },
        ..TileConfig::aihwkit_default()
    };
    let chopped = TileConfig {
        transfer: TransferConfig {
            enabled: true,
            algorithm: TransferAlgorithm::Chopped,
            auto_scale: true,
            out_chop_prob: 0.3,
            gamma: 0.2,
            fast_lr: 0.5,
            ..Default::default()
        },
        ..TileConfig::aihwkit_default()
    };
    let dynamic = TileConfig {
        transfer: TransferConfig {
            enabled: true,
            algorithm: TransferAlgorithm::Dynamic,
            in_chop_random: Some(true),
            in_chop_prob: 0.3,
            auto_scale: true,
            gamma: 0.2,
            fast_lr: 0.5,
            ..Default::default()
        },
        ..TileConfig::aihwkit_default()
    };
    let cases = [plain(TransferAlgorithm::TikiTaka), plain(TransferAlgorithm::Buffered), busy, chopped, dynamic];
    for (k, cfg) in cases.iter().enumerate() {
        let algorithm = format!("case {k}");
        let mut tile = AnalogTile::new(5, 7, cfg, 11).unwrap();
        tile.set_weights(uniform(5, 7, 0.3, 5).view()).unwrap();
        let data = calls(&[6; 8], 7, 5, 50);
        for (x, d) in &data[..4] {
            tile.update(x.view(), d.view(), 0.05).unwrap();
        }
        let snap = tile.snapshot();
        let json = serde_json::to_string(&snap).unwrap();
        let mut restored = serde_json::from_str::<TileSnapshot>(&json).unwrap().restore().unwrap();
        for (x, d) in &data[4..] {
            tile.update(x.view(), d.view(), 0.05).unwrap();
            restored.update(x.view(), d.view(), 0.05).unwrap();
        }
        assert_eq!(tile.weights(), restored.weights(), "{algorithm}");
        let TileSnapshot::Analog(a) = tile.snapshot() else { panic!() };
        let TileSnapshot::Analog(b) = restored.snapshot() else { panic!() };
        assert_eq!(a, b, "{algorithm}: full states");
        assert!(a.transfer.as_ref().unwrap().fast.weights.iter().any(|&w| w != 0.0));
        if k >= 3 {
            let ch = &a.transfer.as_ref().unwrap().choppers;
            assert!(ch.input.iter().chain(&ch.output).any(|&c| c) && ch.m_x > 0.0, "{algorithm}: {ch:?}");
        }
        if k == 4 {
            let ch = &a.transfer.as_ref().unwrap().choppers;
            assert!(ch.running_mean.iter().any(|&m| m != 0.0) && ch.switched.len() == 7, "{algorithm}: {ch:?}");
            let mut broken = a.clone();
            broken.transfer.as_mut().unwrap().choppers.past_mean = Array2::zeros((5, 6));
            assert!(matches!(AnalogTile::from_state(*broken), Err(SimError::State { .. })));
        }

        let mut broken = a.clone();
        broken.transfer = None;
        assert!(matches!(AnalogTile::from_state(*broken), Err(SimError::State { .. })));
        let mut broken = a.clone();
        broken.transfer.as_mut().unwrap().buffer = Array2::zeros((2, 2));
        assert!(matches!(AnalogTile::from_state(*broken), Err(SimError::State { .. })));
        let mut broken = a.clone();
        broken.transfer.as_mut().unwrap().choppers.input.push(true);
        assert!(matches!(AnalogTile::from_state(*broken), Err(SimError::State { .. })));
    }
}

/// The same seed gives the same tile on one thread and on two.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let tt = TileConfig {
        transfer: TransferConfig { enabled: true, n_reads_per_transfer: 3, ..Default::default() },
        ..TileConfig::aihwkit_default()
    };
    let chopped = TileConfig {
        transfer: TransferConfig {
            enabled: true,
            algorithm: TransferAlgorithm::Chopped,
            auto_scale: true,
            out_chop_prob: 0.2,
            ..Default::default()
        },
        ..TileConfig::aihwkit_default()
    };
    let mut dynamic = chopped.clone();
    dynamic.transfer.algorithm = TransferAlgorithm::Dynamic;
    dynamic.transfer.out_chop_prob = 0.0;
    dynamic.transfer.in_chop_random = Some(true);
    for cfg in [tt, chopped, dynamic] {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                let mut tile = AnalogTile::new(40, 30, &cfg, 13).unwrap();
                tile.set_weights(uniform(40, 30, 0.3, 6).view()).unwrap();
                for (x, d) in calls(&[64; 4], 30, 40, 60) {
                    tile.update(x.view(), d.view(), 0.05).unwrap();
                }
                (tile.weights().to_owned(), tile.fast_weights().unwrap().to_owned())
            })
        };
        assert_eq!(run(1), run(2));
    }
}

/// Counters: every SGD vector is an update cycle, every read a forward cycle of the tile,
/// every written read an update cycle; the fast device's pulses count too.
#[test]
fn counters_include_reads_and_writes() {
    let cfg = TileConfig {
        transfer: TransferConfig { enabled: true, n_reads_per_transfer: 2, transfer_every: 0.5, ..Default::default() },
        ..TileConfig::aihwkit_default()
    };
    let mut tile = AnalogTile::new(4, 6, &cfg, 1).unwrap();
    tile.set_weights(uniform(4, 6, 0.3, 7).view()).unwrap();
    let (x, d) = calls(&[8], 6, 4, 70).remove(0);
    tile.update(x.view(), d.view(), 0.1).unwrap();
    let c = tile.counters();
    // Period ⌈0.5·8⌉ = 4 vectors: two transfers of two reads each.
    assert_eq!(c.forward_cycles, 4);
    assert_eq!(c.update_cycles, 8 + 4);
    assert!(c.pulses > 0);
    assert_eq!(tile.fast_tile().unwrap().counters(), Default::default());
}

/// Invalid settings name their field.
#[test]
fn invalid_settings_are_named() {
    let field = |cfg: &TileConfig| match AnalogTile::new(3, 3, cfg, 0) {
        Err(SimError::Config(e)) => e.to_string(),
        other => panic!("expected a config error, got {other:?}"),
    };
    let on = TransferConfig { enabled: true, ..Default::default() };
    let cfg = TileConfig {
        transfer: on.clone(),
        mixed_precision: MixedPrecisionConfig { enabled: true, ..Default::default() },
        ..TileConfig::default()
    };
    assert!(field(&cfg).contains("transfer.enabled"));
    let mut noisy_read = on.clone();
    noisy_read.transfer_forward.noise_management = NoiseManagement::AbsMax;
    let cfg = TileConfig { transfer: noisy_read, ..TileConfig::default() };
    assert!(field(&cfg).contains("transfer.transfer_forward"));
    let cfg = TileConfig {
        transfer: TransferConfig {
            fast_device: DeviceConfig::ConstantStep(PulsedParams { dw_min: -1.0, ..PulsedParams::default() }),
            ..on.clone()
        },
        ..TileConfig::default()
    };
    assert!(field(&cfg).contains("transfer.fast_device.dw_min"), "{}", field(&cfg));
    let cfg =
        TileConfig { transfer: TransferConfig { transfer_every: f32::NAN, ..on.clone() }, ..TileConfig::default() };
    assert!(field(&cfg).contains("transfer.transfer_every"));
    // The fast device's decay runs after update calls only.
    let leaky = DynamicsConfig { lifetime: 100.0, per_update: false, ..Default::default() };
    let cfg = TileConfig { transfer: TransferConfig { fast_dynamics: leaky, ..on.clone() }, ..TileConfig::default() };
    assert!(field(&cfg).contains("transfer.fast_dynamics.per_update"), "{}", field(&cfg));
    // Write noise on an ideal fast device is refused under the fast device's name.
    let noisy = DynamicsConfig { write_noise_std: 1.0, ..Default::default() };
    let cfg = TileConfig {
        transfer: TransferConfig { fast_device: DeviceConfig::Ideal, fast_dynamics: noisy, ..on.clone() },
        ..TileConfig::default()
    };
    assert!(field(&cfg).contains("transfer.fast_dynamics.write_noise_std"), "{}", field(&cfg));
    let e = TransferConfig { n_reads_per_transfer: 0, ..Default::default() }.validate("transfer").unwrap_err();
    assert!(matches!(e, ConfigError::OutOfRange { .. }) && e.to_string().contains("n_reads_per_transfer"));
}

/// The chopped rule (c-TTv2) on exact devices, against the rule written out: regular input
/// choppers and output choppers that flip after every sweep, per-vector and per-batch periods,
/// `auto_scale` with `auto_granularity`, keeping the remainder with momentum, rows without a
/// buffer and with corrected gradient magnitudes, a pulsed BL-1 write onto a device without
/// variation; and with γ ≠ 0 the passes see C + γ·(c ⊙ A).
#[test]
fn chopped_transfer_follows_the_rule() {
    let (n_out, n_in) = (3, 4);
    let w0 = uniform(n_out, n_in, 0.3, 4);
    let data = calls(&[4, 4, 3, 4, 4, 4, 4, 4, 4, 4], n_in, n_out, 80);
    let chopped = TransferConfig {
        algorithm: TransferAlgorithm::Chopped,
        in_chop_random: Some(false),
        in_chop_prob: 0.5,
        out_chop_prob: 1.0,
        fast_lr: 0.05,
        transfer_lr: 1.0,
        ..Default::default()
    };
    let cases = [
        (chopped.clone(), DeviceConfig::Ideal),
        (
            TransferConfig {
                auto_scale: true,
                fast_lr: 0.1,
                auto_granularity: 8.0,
                transfer_every: 2.0,
                forget_buffer: false,
                momentum: Some(0.2),
                in_chop_prob: 0.3,
                out_chop_prob: 0.0,
                gamma: 0.5,
                ..chopped.clone()
            },
            exact_steps(1e-3),
        ),
        (
            TransferConfig {
                algorithm: TransferAlgorithm::Dynamic,
                in_chop_prob: 0.2,
                out_chop_prob: 0.0,
                tail_weightening: 2.0,
                transfer_lr: 3.0,
                gamma: 0.3,
                ..chopped.clone()
            },
            DeviceConfig::Ideal,
        ),
        (
            TransferConfig {
                algorithm: TransferAlgorithm::Dynamic,
                in_chop_prob: 0.25,
                out_chop_prob: 0.0,
                transfer_columns: false,
                forget_buffer: false,
                momentum: Some(0.1),
                buffer_cap: 1.5,
                transfer_update: Some(UpdateConfig {
                    desired_bl: 2,
                    pulse_type: PulseType::Float,
                    ..UpdateConfig::default()
                }),
                transfer_lr: 3.0,
                ..chopped.clone()
            },
            DeviceConfig::Ideal,
        ),
        (
            TransferConfig {
                transfer_columns: false,
                no_buffer: true,
                correct_gradient_magnitudes: true,
                units_in_mbatch: Some(true),
                transfer_every: 0.5,
                transfer_lr: 2.0,
                scale_fast_lr: Some(true),
                fast_lr: 0.5,
                gamma: -1.0,
                ..chopped.clone()
            },
            DeviceConfig::Ideal,
        ),
    ];
    for (k, (t, device)) in cases.into_iter().enumerate() {
        let mut cfg = exact_tt(t);
        cfg.device = device;
        let mut tile = AnalogTile::new(n_out, n_in, &cfg, 3).unwrap();
        tile.set_weights(w0.view()).unwrap();
        for (x, d) in &data {
            tile.update(x.view(), d.view(), 0.1).unwrap();
        }
        let (c, a, h, ch) = chopped_reference(&cfg.transfer, &w0, &data, 0.1, 1e-3, cfg.update.desired_bl as f32);
        let TileSnapshot::Analog(state) = tile.snapshot() else { panic!() };
        let got = &state.transfer.as_ref().unwrap().choppers;
        assert_eq!((&got.input, &got.output, got.sweeps), (&ch.input, &ch.output, ch.sweeps), "case {k}: choppers");
        assert!(got.input.iter().chain(&got.output).any(|&c| c), "case {k}: no chopper ever flipped");
        assert!((got.m_x - ch.m_x).abs() <= 1e-6 && (got.m_d - ch.m_d).abs() <= 1e-6, "case {k}: running means");
        let a_tol = 1e-6 * a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert_close(tile.fast_weights().unwrap(), a.view(), a_tol, &format!("case {k}: A"));
        assert_close(tile.transfer_buffer().unwrap(), h.view(), 1e-4, &format!("case {k}: H"));
        let stored = tile.stored_weights().to_owned();
        assert_close(stored.view(), c.view(), 1e-6, &format!("case {k}: C"));
        let moved = c.iter().zip(&w0).filter(|(c, w)| c != w).count();
        assert!(moved >= 6, "case {k}: only {moved} weights moved");
        // The passes see C + γ·(c ⊙ A).
        let gamma = cfg.transfer.gamma;
        let mut w = c.clone();
        for ((r, q), v) in w.indexed_iter_mut() {
            let flips =
                if cfg.transfer.transfer_columns { ch.input[q] != ch.output[r] } else { ch.input[r] != ch.output[q] };
            *v += gamma * if flips { -a[(r, q)] } else { a[(r, q)] };
        }
        assert_close(tile.weights(), w.view(), 1e-5, &format!("case {k}: W"));
    }
}

/// With both chopper probabilities 0 the chopped rule is the buffered one (aihwkit's
/// docstring): the buffer of the one is that of the other in units of θ = b, up to rounding.
#[test]
fn chopped_without_choppers_is_buffered() {
    let (n_out, n_in) = (4, 5);
    let w0 = uniform(n_out, n_in, 0.3, 9);
    let data = calls(&[5; 20], n_in, n_out, 90);
    let common = TransferConfig {
        transfer_every: 1.0,
        units_in_mbatch: Some(false),
        scale_fast_lr: Some(false),
        fast_lr: 0.05,
        transfer_lr: 0.05,
        momentum: Some(0.1),
        thres_scale: 2.0,
        buffer_granularity: 2.0,
        in_chop_prob: 0.0,
        ..Default::default()
    };
    let run = |algorithm| {
        let cfg = exact_tt(TransferConfig { algorithm, ..common.clone() });
        let mut tile = AnalogTile::new(n_out, n_in, &cfg, 3).unwrap();
        tile.set_weights(w0.view()).unwrap();
        for (x, d) in &data {
            tile.update(x.view(), d.view(), 0.1).unwrap();
        }
        (tile.weights().to_owned(), tile.transfer_buffer().unwrap().to_owned())
    };
    let (c_b, h_b) = run(TransferAlgorithm::Buffered);
    let (c_c, h_c) = run(TransferAlgorithm::Chopped);
    assert_close(c_c.view(), c_b.view(), 1e-6, "C");
    assert_close(h_c.mapv(|h| h * 2e-3).view(), h_b.view(), 1e-6, "H");
    assert!(c_b.iter().zip(&w0).filter(|(c, w)| c != w).count() >= 6, "too few writes");
}

/// Random input choppers flip with probability `in_chop_prob` after each read and output
/// choppers with `out_chop_prob` after each sweep: the counts over N reads are binomial, within
/// 5 standard deviations of N·p.
#[test]
fn random_choppers_flip_at_their_rates() {
    let (n_out, n_in) = (10, 8);
    let cfg = TileConfig {
        transfer: TransferConfig {
            enabled: true,
            algorithm: TransferAlgorithm::Chopped,
            in_chop_prob: 0.3,
            out_chop_prob: 0.25,
            ..Default::default()
        },
        ..TileConfig::aihwkit_default()
    };
    let mut tile = AnalogTile::new(n_out, n_in, &cfg, 21).unwrap();
    tile.set_weights(uniform(n_out, n_in, 0.3, 1).view()).unwrap();
    let choppers = |t: &AnalogTile| {
        let TileSnapshot::Analog(s) = t.snapshot() else { panic!() };
        s.transfer.unwrap().choppers
    };
    let (mut in_flips, mut out_flips, reads) = (0usize, 0usize, 2400usize);
    let mut before = choppers(&tile);
    for (x, d) in calls(&[1; 2400], n_in, n_out, 100) {
        tile.update(x.view(), d.view(), 0.01).unwrap();
        let after = choppers(&tile);
        in_flips += before.input.iter().zip(&after.input).filter(|(a, b)| a != b).count();
        out_flips += before.output.iter().zip(&after.output).filter(|(a, b)| a != b).count();
        before = after;
    }
    assert_eq!(before.sweeps as usize, reads / n_in);
    for (what, flips, n, p) in [("input", in_flips, reads, 0.3), ("output", out_flips, reads / n_in * n_out, 0.25)] {
        let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
        assert!((flips as f64 - mean).abs() <= 5.0 * sd, "{what}: {flips} flips of {n}, want {mean} ± {}", 5.0 * sd);
    }
}

/// What the choppers are for: a fast device whose up steps are three times its down steps
/// (`up_down` 0.5) drifts up under zero-mean gradients, and without choppers the buffered
/// reads carry that drift into C. With input choppers the drift enters the buffer with the
/// chopper's sign, which is as often + as −, and averages out. Per column and seed (64
/// independent units) the mean step count of C is compared with its standard error: without
/// choppers it lies far above 0 (the test's power), with them within 5 standard errors of 0.
#[test]
fn choppers_cancel_the_fast_devices_drift() {
    let (n_out, n_in) = (6, 8);
    let eps = 1e-3f32;
    let fast = DeviceConfig::ConstantStep(PulsedParams {
        up_down: 0.5,
        dw_min_dtod: 0.0,
        dw_min_std: 0.0,
        up_down_dtod: 0.0,
        w_max_dtod: 0.0,
        w_min_dtod: 0.0,
        ..PulsedParams::default()
    });
    let drift = |in_chop_prob: f32| {
        let cfg = TileConfig {
            device: exact_steps(eps),
            transfer: TransferConfig {
                enabled: true,
                algorithm: TransferAlgorithm::Chopped,
                fast_device: fast.clone(),
                transfer_forward: IoConfig::perfect(),
                in_chop_prob,
                fast_lr: 0.05,
                transfer_lr: 0.1,
                ..Default::default()
            },
            // Pulsed SGD onto A (BL 31 with update management), exact passes.
            update: UpdateConfig::default(),
            ..TileConfig::perfect()
        };
        let mut units = Vec::new();
        for seed in 0..8 {
            let mut tile = AnalogTile::new(n_out, n_in, &cfg, seed).unwrap();
            let w0 = Array2::<f32>::zeros((n_out, n_in));
            tile.set_weights(w0.view()).unwrap();
            for (x, d) in calls(&[4; 400], n_in, n_out, 1000 * seed + 7) {
                tile.update(x.view(), d.view(), 0.1).unwrap();
            }
            let steps = tile.weights().mapv(|w| f64::from(w / eps));
            units.extend(steps.columns().into_iter().map(|c| c.mean().unwrap()));
        }
        let n = units.len() as f64;
        let mean = units.iter().sum::<f64>() / n;
        let sd = (units.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        (mean, sd / n.sqrt())
    };
    let (plain, plain_se) = drift(0.0);
    let (chopped, chopped_se) = drift(0.1);
    println!("mean C steps: no choppers {plain:.2} ± {plain_se:.2}, choppers {chopped:.2} ± {chopped_se:.2}");
    assert!(plain > 5.0 * plain_se && plain > 10.0, "no choppers: {plain} ± {plain_se}");
    assert!(chopped.abs() <= 5.0 * chopped_se, "choppers: {chopped} ± {chopped_se}");
}

/// An update call at lr 0 does nothing to a transfer tile, as aihwkit's updater skips it: no
/// pulses onto A, no vector count, no transfer, no chopper flips, no running means — even where
/// the rate onto A does not scale with lr (chopped: `scale_fast_lr` off).
#[test]
fn a_call_at_lr_zero_changes_nothing() {
    for algorithm in [TransferAlgorithm::TikiTaka, TransferAlgorithm::Chopped] {
        let cfg = TileConfig {
            transfer: TransferConfig {
                enabled: true,
                algorithm,
                auto_scale: true,
                in_chop_prob: 1.0,
                ..Default::default()
            },
            ..TileConfig::aihwkit_default()
        };
        let mut tile = AnalogTile::new(4, 6, &cfg, 3).unwrap();
        tile.set_weights(uniform(4, 6, 0.3, 1).view()).unwrap();
        let data = calls(&[5, 5], 6, 4, 110);
        tile.update(data[0].0.view(), data[0].1.view(), 0.1).unwrap();
        let TileSnapshot::Analog(before) = tile.snapshot() else { panic!() };
        tile.update(data[1].0.view(), data[1].1.view(), 0.0).unwrap();
        let TileSnapshot::Analog(after) = tile.snapshot() else { panic!() };
        assert_eq!(before.transfer, after.transfer, "{algorithm:?}");
        assert_eq!(before.weights, after.weights, "{algorithm:?}");
    }
}

/// A negative chopped `transfer_every` sets the period from the fast device's states: the
/// default device (±0.6, dw_min 0.001: 1 200 states) over 10 columns at −0.5 reads every 60
/// vectors, and at −0.001 (0.12, rounded up to the minimum of 1) after every vector. Each read
/// is one forward cycle of the tile.
#[test]
fn automatic_chopped_period_follows_the_states() {
    for (every, reads) in [(-0.5f32, 2u64), (-0.001, 120)] {
        let cfg = TileConfig {
            transfer: TransferConfig {
                enabled: true,
                algorithm: TransferAlgorithm::Chopped,
                transfer_every: every,
                ..Default::default()
            },
            ..TileConfig::aihwkit_default()
        };
        let mut tile = AnalogTile::new(4, 10, &cfg, 1).unwrap();
        tile.set_weights(uniform(4, 10, 0.3, 2).view()).unwrap();
        for (x, d) in calls(&[40; 3], 10, 4, 120) {
            tile.update(x.view(), d.view(), 0.1).unwrap();
        }
        assert_eq!(tile.counters().forward_cycles, reads, "transfer_every {every}");
    }
    let ideal = TileConfig {
        transfer: TransferConfig {
            enabled: true,
            algorithm: TransferAlgorithm::Chopped,
            transfer_every: -1.0,
            fast_device: DeviceConfig::Ideal,
            ..Default::default()
        },
        ..TileConfig::aihwkit_default()
    };
    let e = AnalogTile::new(4, 10, &ideal, 1).unwrap_err().to_string();
    assert!(e.contains("transfer.transfer_every"), "{e}");
}

/// aihwkit's buffered transfer scales λ by γ_A/γ_C = γ when γ > 0 (its chopped and dynamic
/// rules inherit that; Tiki-Taka v1 does not): by hand, A = 0.0101 after one vector, the
/// buffer takes γ·λ·A = 0.00505 and C one write of trunc(5.05) = 5 steps of ε = 10⁻³ (10 without
/// the factor); and for every rule, a tile at γ = 0.5 moves C, A and the buffer exactly as one
/// at γ = 0 whose `transfer_lr` is halved (left as it is for Tiki-Taka v1).
#[test]
fn buffered_rules_scale_the_transfer_rate_by_gamma() {
    let float_write = UpdateConfig { pulse_type: PulseType::Float, desired_bl: 31, ..UpdateConfig::default() };
    let buffered = TransferConfig {
        algorithm: TransferAlgorithm::Buffered,
        gamma: 0.5,
        transfer_update: Some(float_write),
        ..Default::default()
    };
    let mut tile = AnalogTile::new(1, 1, &exact_tt(buffered), 1).unwrap();
    tile.set_weights(Array2::zeros((1, 1)).view()).unwrap();
    tile.update(Array2::from_elem((1, 1), 1.0).view(), Array2::from_elem((1, 1), -0.0101).view(), 1.0).unwrap();
    assert_eq!(tile.fast_weights().unwrap()[[0, 0]], 0.0101);
    assert!((tile.stored_weights()[[0, 0]] - 0.005).abs() < 1e-9, "C = {}", tile.stored_weights());
    // (The buffer forgets after a write, keeping momentum·ω = 0.1·0.00505.)
    assert!(
        (tile.transfer_buffer().unwrap()[[0, 0]] - 0.000505).abs() < 1e-9,
        "H = {}",
        tile.transfer_buffer().unwrap()
    );

    let (n_out, n_in) = (3, 4);
    let w0 = uniform(n_out, n_in, 0.3, 4);
    let data = calls(&[4; 8], n_in, n_out, 90);
    for algorithm in [
        TransferAlgorithm::TikiTaka,
        TransferAlgorithm::Buffered,
        TransferAlgorithm::Chopped,
        TransferAlgorithm::Dynamic,
    ] {
        let base = TransferConfig { algorithm, transfer_lr: 2.0, in_chop_prob: 0.2, ..Default::default() };
        let halved = if algorithm == TransferAlgorithm::TikiTaka { 2.0 } else { 1.0 };
        let tiles =
            [TransferConfig { gamma: 0.5, ..base.clone() }, TransferConfig { gamma: 0.0, transfer_lr: halved, ..base }]
                .map(|t| {
                    let mut tile = AnalogTile::new(n_out, n_in, &exact_tt(t), 5).unwrap();
                    tile.set_weights(w0.view()).unwrap();
                    for (x, d) in &data {
                        tile.update(x.view(), d.view(), 0.1).unwrap();
                    }
                    tile
                });
        let [g, z] = &tiles;
        assert_eq!(g.stored_weights(), z.stored_weights(), "{algorithm:?}: C");
        assert_eq!(g.fast_weights(), z.fast_weights(), "{algorithm:?}: A");
        assert_eq!(g.transfer_buffer(), z.transfer_buffer(), "{algorithm:?}: buffer");
        let moved = g.stored_weights().iter().zip(&w0).filter(|(c, w)| c != w).count();
        assert!(moved >= 4, "{algorithm:?}: only {moved} weights moved");
    }
}
