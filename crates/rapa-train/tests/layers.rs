//! Gradient checks of the non-tile layers, and of the whole network (`whole_network`), against
//! central finite differences.
//!
//! Tolerances: the layers compute in f32. With h = 1e-2 and O(1) inputs the central
//! difference has truncation error O(h²·|f'''|) ≈ 1e-4 for the smooth layers (LRN, softmax,
//! stochastic pooling at test time) and none for the piecewise-linear ones (max/avg/mixed
//! pooling, ReLU) as long as no input crosses a kink — inputs are a shuffled grid with spacing
//! 0.05 > 2h, so none does. f32 rounding of L = Σ r·y (accumulated in f64) adds ≈ 1e-6/h = 1e-4.
//! So |fd − g| ≤ 1e-3·max(1, |g|) holds for a correct gradient, while an index or formula
//! error is O(0.1).

use crossbar_sim::rng::seeded;
use ndarray::{Array2, Array4, ArrayView4};
use rand::Rng;
use rand::seq::SliceRandom;
use rapa_train::layers::{Lrn, Pool, PoolKind, Relu, SoftmaxCrossEntropy, pool_out};

const H: f32 = 1e-2;

/// Distinct values on a 0.05 grid, shuffled, shifted to [lo, lo + 0.05·len).
fn grid(shape: (usize, usize, usize, usize), lo: f32, seed: u64) -> Array4<f32> {
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let mut v: Vec<f32> = (0..n).map(|k| lo + 0.05 * k as f32).collect();
    v.shuffle(&mut seeded(seed));
    Array4::from_shape_vec(shape, v).unwrap()
}

fn weights(shape: &[usize], seed: u64) -> Array4<f32> {
    let mut rng = seeded(seed);
    Array4::from_shape_simple_fn((shape[0], shape[1], shape[2], shape[3]), || rng.random_range(-1.0f32..1.0))
}

fn dot(a: ArrayView4<'_, f32>, b: &Array4<f32>) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

fn close(fd: f64, g: f32) -> bool {
    (fd - f64::from(g)).abs() <= 1e-3 * f64::from(g.abs()).max(1.0)
}

/// Checks dL/dx of `f` for L = Σ r·f(x), every element.
fn check_input_grad(
    name: &str,
    x: &Array4<f32>,
    f: &mut dyn FnMut(ArrayView4<'_, f32>) -> Array4<f32>,
    grad: &Array4<f32>,
    r: &Array4<f32>,
) {
    for (idx, &g) in grad.indexed_iter() {
        let mut xp = x.clone();
        xp[idx] += H;
        let lp = dot(f(xp.view()).view(), r);
        xp[idx] -= 2.0 * H;
        let lm = dot(f(xp.view()).view(), r);
        let fd = (lp - lm) / (2.0 * f64::from(H));
        assert!(close(fd, g), "{name}: dL/dx{idx:?} = {g}, finite difference {fd}");
    }
}

#[test]
fn relu_gradient() {
    // Values ±0.025 from the kink at 0 at the closest: farther than h.
    let x = grid((2, 2, 3, 3), -0.925, 1);
    let mut relu = Relu::new();
    let y = relu.forward(x.view());
    let r = weights(y.shape(), 2);
    let g = relu.backward(r.view()).unwrap();
    check_input_grad("relu", &x, &mut |x| Relu::new().forward(x), &g, &r);
    // The in-place variants the network uses give the same values and gradient.
    let mut inplace = Relu::new();
    let mut y2 = x.clone();
    inplace.forward_in_place(&mut y2);
    assert_eq!(y2, y);
    let mut g2 = r.clone();
    assert!(inplace.backward_in_place(&mut g2));
    assert_eq!(g2, g);
    assert!(!Relu::new().backward_in_place(&mut g2), "backward before forward must be refused");
}

#[test]
fn pool_gradients_ceil_mode() {
    // 7×7 with 3×3/2 windows: ceil mode gives 3×3 outputs, the last window clipped at the edge.
    assert_eq!(pool_out(7, 3, 2), 3);
    assert_eq!(pool_out(32, 3, 2), 16);
    for kind in [PoolKind::Max, PoolKind::Avg, PoolKind::Mixed] {
        let x = grid((2, 3, 7, 7), 0.0, 3);
        let mut p = Pool::new(kind, 3, 2, 3, 4);
        if kind == PoolKind::Mixed {
            // A different mixing weight per channel (all start at MIXED_INIT), so that a channel
            // mixed with another channel's α shows.
            p.mix = ndarray::arr1(&[-1.5f32, 0.4, 2.2]);
        }
        let y = p.forward(x.view());
        assert_eq!(y.shape(), &[2, 3, 3, 3]);
        // Values against a direct scan of each clipped window: max, mean, and for mixed
        // α_c·max + (1 − α_c)·mean with α_c = sigmoid(a_c) of the output's own channel.
        for ((b, c, oy, ox), &got) in y.indexed_iter() {
            let win: Vec<f32> = (oy * 2..(oy * 2 + 3).min(7))
                .flat_map(|yy| (ox * 2..(ox * 2 + 3).min(7)).map(move |xx| (yy, xx)))
                .map(|(yy, xx)| x[[b, c, yy, xx]])
                .collect();
            let max = win.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mean = win.iter().sum::<f32>() / win.len() as f32;
            let want = match kind {
                PoolKind::Max => max,
                PoolKind::Avg => mean,
                _ => {
                    let a = 1.0 / (1.0 + (-p.mix[c]).exp());
                    a * max + (1.0 - a) * mean
                }
            };
            assert!((got - want).abs() < 1e-5, "{kind:?} ({b},{c},{oy},{ox}): {got} vs {want}");
        }
        let r = weights(y.shape(), 5);
        let g = p.backward(r.view()).unwrap();
        let mut fresh = p.clone();
        check_input_grad(kind.name(), &x, &mut |x| fresh.forward(x), &g, &r);
    }
}

#[test]
fn avg_pool_divides_by_clipped_window() {
    // 4×4 input, 3×3/2: windows rows 0..3 and 2..4 — the second has 2 rows.
    let x = Array4::from_shape_fn((1, 1, 4, 4), |(_, _, i, j)| (i * 4 + j) as f32);
    let y = Pool::new(PoolKind::Avg, 3, 2, 1, 0).forward(x.view());
    // Window (rows 2..4, cols 2..4) = {10, 11, 14, 15} → mean 12.5.
    assert_eq!(y[[0, 0, 1, 1]], 12.5);
    // Window (rows 0..3, cols 0..3) mean = (0+1+2+4+5+6+8+9+10)/9 = 5.
    assert_eq!(y[[0, 0, 0, 0]], 5.0);
    let m = Pool::new(PoolKind::Max, 3, 2, 1, 0).forward(x.view());
    assert_eq!(m[[0, 0, 1, 1]], 15.0);
}

/// Every pooling window starts inside the input, also with a kernel smaller than the stride
/// (the ceil of Caffe's formula would add an empty last window for an even side of a 1×1/2
/// pool): every output's gradient lands in its own window, none beyond the plane.
#[test]
fn pooling_windows_start_inside_the_input() {
    for size in 1..40 {
        for k in 1..6 {
            for s in 1..5 {
                let n = pool_out(size, k, s);
                assert!(n >= 1 && (n - 1) * s < size, "size {size}, k {k}, s {s}: {n} windows");
                if k >= s {
                    assert_eq!(n, (size.saturating_sub(k)).div_ceil(s) + 1, "Caffe's ceil mode");
                }
            }
        }
    }
    for (k, s, h, w) in [(1, 2, 4, 6), (1, 3, 6, 5), (2, 3, 6, 6)] {
        let x = Array4::from_shape_fn((1, 2, h, w), |(_, c, i, j)| ((c * 31 + i * 7 + j) as f32 * 0.7).sin());
        for kind in [PoolKind::Max, PoolKind::Avg, PoolKind::Mixed] {
            let mut pool = Pool::new(kind, k, s, 2, 0);
            let y = pool.forward(x.view());
            assert!(y.iter().all(|v| v.is_finite()), "{kind:?} k {k} s {s}: {y}");
            let dx = pool.backward(Array4::ones(y.dim()).view()).unwrap();
            let total: f32 = dx.sum();
            assert!(
                (total - y.len() as f32).abs() < 1e-4,
                "{kind:?} k {k} s {s}: gradient {total} for {} outputs",
                y.len()
            );
        }
    }
}

#[test]
fn max_pool_of_a_window_without_a_maximum_picks_a_pixel_of_that_window() {
    // 4×4 input, 3×3/2; the second window of the second row (rows 2..4, cols 2..4) is all NaN
    // and −∞: its argmax must still lie in the window, so the gradient stays there.
    let mut x = Array4::from_shape_fn((1, 1, 4, 4), |(_, _, i, j)| (i * 4 + j) as f32);
    for (i, j) in [(2, 2), (2, 3), (3, 2), (3, 3)] {
        x[[0, 0, i, j]] = if (i + j) % 2 == 0 { f32::NAN } else { f32::NEG_INFINITY };
    }
    for kind in [PoolKind::Max, PoolKind::Mixed] {
        let mut pool = Pool::new(kind, 3, 2, 1, 0);
        pool.forward(x.view());
        assert_eq!(pool.last_argmax().unwrap()[3], 2 * 4 + 2, "{kind:?}");
        if kind == PoolKind::Max {
            // Pixel 0 is no window's maximum (window 0's is pixel 10), so it gets no gradient.
            let dx = pool.backward(Array4::ones((1, 1, 2, 2)).view()).unwrap();
            assert_eq!(dx[[0, 0, 0, 0]], 0.0, "no gradient outside the window");
        }
    }
}

/// Max pooling's values and argmaxes equal a direct scan of each (clipped) window in row-major
/// order with `>`, the first maximum winning, on inputs with many ties (values in {0, 1, 2, 3},
/// and in a second pass also NaN and −∞, which never win: a window without a larger value keeps
/// −∞ and its first pixel), for several kernels, strides and sizes (also an image smaller than
/// the kernel, and a stride larger than the kernel); average pooling equals the direct sum
/// bit for bit on the same windows. At stride 2 this checks the AVX-512 loops where the CPU
/// has them.
#[test]
fn max_pool_matches_a_direct_scan_with_ties() {
    let mut rng = seeded(9);
    // Windows of the second pass with nothing above −∞ (so the first-pixel rule is exercised).
    let mut empty_windows = 0;
    for (k, s, h, w) in [
        (3, 2, 32, 32),
        (3, 2, 7, 9),
        (2, 2, 6, 5),
        (3, 1, 5, 6),
        (5, 3, 11, 8),
        (3, 2, 2, 2),
        (2, 3, 7, 7),
        // Stride 2 runs sixteen outputs at a time on AVX-512: rows of several vectors with a
        // masked tail, clipped last windows, a kernel wider than the stride by 3, a one-pixel
        // kernel, and a plane one pixel wide.
        (3, 2, 5, 70),
        (3, 2, 4, 33),
        (5, 2, 9, 41),
        (1, 2, 3, 31),
        (3, 2, 6, 1),
    ] {
        for special in [false, true] {
            let values = [0.0, 1.0, 2.0, 3.0, f32::NAN, f32::NEG_INFINITY];
            let n_values = if special { 6 } else { 4 };
            let x = Array4::from_shape_simple_fn((2, 3, h, w), || values[rng.random_range(0..n_values)]);
            let mut pool = Pool::new(PoolKind::Max, k, s, 3, 0);
            let y = pool.forward(x.view());
            let arg = pool.last_argmax().unwrap().to_vec();
            let (oh, ow) = (pool_out(h, k, s), pool_out(w, k, s));
            for ((b, c, oy, ox), &got) in y.indexed_iter() {
                let (mut best, mut best_i) = (f32::NEG_INFINITY, oy * s * w + ox * s);
                for yy in oy * s..(oy * s + k).min(h) {
                    for xx in ox * s..(ox * s + k).min(w) {
                        if x[[b, c, yy, xx]] > best {
                            (best, best_i) = (x[[b, c, yy, xx]], yy * w + xx);
                        }
                    }
                }
                let o = ((b * 3 + c) * oh + oy) * ow + ox;
                empty_windows += usize::from(best == f32::NEG_INFINITY);
                let at = (b, c, oy, ox);
                assert_eq!(
                    (got, arg[o] as usize),
                    (best, best_i),
                    "k {k}, s {s}, {h}×{w}, special {special}, output {at:?}"
                );
            }
            // Average pooling: the window's sum in row-major order from +0, divided by its
            // pixel count, bit for bit (with a NaN anywhere in the window, NaN); real values
            // here, so that the order of the additions shows.
            let xr = x.mapv(|v| if v.is_finite() { v * 0.37 + 1e-3 * v * v * v } else { v });
            let mut avg = Pool::new(PoolKind::Avg, k, s, 3, 0);
            let ya = avg.forward(xr.view());
            // Mixed pooling: α·max + (1 − α)·sum/size with the channel's α, and the max's
            // argmax, bit for bit.
            let mut mixed = Pool::new(PoolKind::Mixed, k, s, 3, 0);
            let alphas = mixed.alphas();
            let ym = mixed.forward(xr.view());
            let arg = mixed.last_argmax().unwrap().to_vec();
            for ((b, c, oy, ox), &got) in ym.indexed_iter() {
                let (rows, cols) = (oy * s..(oy * s + k).min(h), ox * s..(ox * s + k).min(w));
                let (mut best, mut best_i, mut sum) = (f32::NEG_INFINITY, oy * s * w + ox * s, 0.0f32);
                for yy in rows.clone() {
                    for xx in cols.clone() {
                        let v = xr[[b, c, yy, xx]];
                        if v > best {
                            (best, best_i) = (v, yy * w + xx);
                        }
                        sum += v;
                    }
                }
                let size = (rows.len() * cols.len()) as f32;
                let want = alphas[c] * best + (1.0 - alphas[c]) * sum / size;
                let o = ((b * 3 + c) * oh + oy) * ow + ox;
                let at = (b, c, oy, ox);
                assert!(
                    (got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())) && arg[o] as usize == best_i,
                    "mixed, k {k}, s {s}, {h}×{w}, output {at:?}: {got} at {} against {want} at {best_i}",
                    arg[o]
                );
            }
            // Its backward pass: each output's share g/size added to its window's pixels,
            // outputs in row-major order, bit for bit (the order of the additions matters
            // where windows overlap).
            let dy = Array4::from_shape_simple_fn(ya.dim(), || rng.random_range(-1.0f32..1.0));
            let dx = avg.backward(dy.view()).unwrap();
            let mut want = Array4::<f32>::zeros(x.dim());
            for ((b, c, oy, ox), &g) in dy.indexed_iter() {
                let (rows, cols) = (oy * s..(oy * s + k).min(h), ox * s..(ox * s + k).min(w));
                let share = g / (rows.len() * cols.len()) as f32;
                for yy in rows {
                    for xx in cols.clone() {
                        want[[b, c, yy, xx]] += share;
                    }
                }
            }
            for ((at, got), want) in dx.indexed_iter().zip(&want) {
                assert_eq!(got.to_bits(), want.to_bits(), "average backward, k {k}, s {s}, {h}×{w}, pixel {at:?}");
            }
            for ((b, c, oy, ox), &got) in ya.indexed_iter() {
                let (rows, cols) = (oy * s..(oy * s + k).min(h), ox * s..(ox * s + k).min(w));
                let mut sum = 0.0f32;
                for yy in rows.clone() {
                    for xx in cols.clone() {
                        sum += xr[[b, c, yy, xx]];
                    }
                }
                let want = sum / (rows.len() * cols.len()) as f32;
                let at = (b, c, oy, ox);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "average, k {k}, s {s}, {h}×{w}, special {special}, output {at:?}: {got} against {want}"
                );
            }
        }
    }
    assert!(empty_windows > 0, "no window of NaNs and −∞ was drawn");
}

#[test]
fn mixed_pool_logit_gradient() {
    let x = grid((2, 2, 5, 5), 0.0, 6);
    let mut p = Pool::new(PoolKind::Mixed, 3, 2, 2, 7);
    // Distinct logits per channel (they all start at MIXED_INIT), so that using another
    // channel's α in the forward or the backward pass shows.
    p.mix = ndarray::arr1(&[-0.8f32, 1.9]);
    let y = p.forward(x.view());
    let r = weights(y.shape(), 8);
    p.backward(r.view()).unwrap();
    let ga = p.mix_grad().unwrap().clone();
    for c in 0..2 {
        let mut q = p.clone();
        q.mix[c] += H;
        let lp = dot(q.forward(x.view()).view(), &r);
        q.mix[c] -= 2.0 * H;
        let lm = dot(q.forward(x.view()).view(), &r);
        let fd = (lp - lm) / (2.0 * f64::from(H));
        assert!(close(fd, ga[c]), "dL/da_{c} = {}, finite difference {fd}", ga[c]);
    }
    // An SGD step moves a against its gradient.
    let before = p.mix.clone();
    p.update(0.1);
    assert!(((&before - &p.mix) - &(0.1 * &ga)).iter().all(|v| v.abs() < 1e-6));
}

#[test]
fn stochastic_pool_test_mode_gradient_and_sampling() {
    // Test mode: y = Σx²/Σx, smooth for positive inputs.
    let x = grid((1, 2, 5, 5), 0.1, 9);
    let mut p = Pool::new(PoolKind::Stochastic, 3, 2, 2, 10);
    p.set_training(false);
    let y = p.forward(x.view());
    let r = weights(y.shape(), 11);
    let g = p.backward(r.view()).unwrap();
    let mut fresh = p.clone();
    check_input_grad("stochastic (test)", &x, &mut |x| fresh.forward(x), &g, &r);

    // Training: an element is picked with probability ∝ its value. Window {1, 2, 3, 4} (2×2
    // input, one clipped window): P = 0.1, 0.2, 0.3, 0.4. Over 20 000 draws each frequency is
    // within 4 binomial SEs (≤ 4·√(0.25/20000) = 0.014).
    let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let mut p = Pool::new(PoolKind::Stochastic, 3, 2, 1, 12);
    let mut counts = [0usize; 4];
    let n = 20_000;
    for _ in 0..n {
        let y = p.forward(x.view());
        let picked = y[[0, 0, 0, 0]] as usize - 1;
        counts[picked] += 1;
        // The gradient goes to the picked element (the one whose value the output took) only,
        // with the output's gradient as its value.
        let g = p.backward(Array4::from_elem((1, 1, 1, 1), 0.375).view()).unwrap();
        let want: Vec<f32> = (0..4).map(|k| if k == picked { 0.375 } else { 0.0 }).collect();
        assert_eq!(g.iter().copied().collect::<Vec<_>>(), want, "picked element {picked}");
    }
    for (k, &c) in counts.iter().enumerate() {
        let f = c as f64 / n as f64;
        assert!((f - 0.1 * (k + 1) as f64).abs() < 0.014, "element {k}: frequency {f}");
    }
}

/// Stochastic pooling in training, many windows per call (3 images × 2 channels × 3×3
/// overlapping 3×3/2 windows of distinct positive values): every output is an element of its
/// own window, and the input gradient is exactly Σ_o dy_o at the element o sampled (the one
/// whose value the output took; overlapping windows may pick the same element), 0 elsewhere.
#[test]
fn stochastic_pool_training_gradient_goes_to_the_sampled_elements() {
    let x = grid((3, 2, 7, 7), 0.1, 18);
    let mut p = Pool::new(PoolKind::Stochastic, 3, 2, 2, 19);
    let (mut not_max, mut outputs) = (0, 0);
    for call in 0..20 {
        let y = p.forward(x.view());
        assert_eq!(y.shape(), &[3, 2, 3, 3]);
        let dy = weights(y.shape(), 100 + call);
        let g = p.backward(dy.view()).unwrap();
        let mut want = Array4::<f32>::zeros(x.dim());
        for ((b, c, oy, ox), &v) in y.indexed_iter() {
            let window: Vec<(usize, usize)> = (oy * 2..(oy * 2 + 3).min(7))
                .flat_map(|yy| (ox * 2..(ox * 2 + 3).min(7)).map(move |xx| (yy, xx)))
                .collect();
            let picked: Vec<_> = window.iter().filter(|&&(yy, xx)| x[[b, c, yy, xx]] == v).collect();
            assert_eq!(picked.len(), 1, "call {call}: output ({b},{c},{oy},{ox}) = {v} is no element of its window");
            let &(yy, xx) = picked[0];
            want[[b, c, yy, xx]] += dy[[b, c, oy, ox]];
            let max = window.iter().map(|&(yy, xx)| x[[b, c, yy, xx]]).fold(f32::NEG_INFINITY, f32::max);
            not_max += usize::from(v != max);
            outputs += 1;
        }
        let err = (&g - &want).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-6, "call {call}: gradient off by {err}");
    }
    // Sampling, not the maximum: most windows hold 9 elements, the max has P ≤ ~0.2.
    assert!(not_max > outputs / 2, "{not_max} of {outputs} samples were not the window maximum");
}

/// The smallest x with P(χ²_k ≥ x) ≤ α by the Chernoff bound P(χ²_k ≥ x) ≤ (x/k·e^{1−x/k})^{k/2}
/// (x > k): a threshold at least as large as the exact quantile, so a test with it rejects
/// independent samples with probability ≤ α.
fn chi2_threshold(k: f64, alpha: f64) -> f64 {
    let bound = |x: f64| (x / k * (1.0 - x / k).exp()).powf(k / 2.0);
    let (mut lo, mut hi) = (k, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if bound(mid) > alpha { lo = mid } else { hi = mid }
    }
    hi
}

/// Stochastic pooling draws every window's pick independently: in each call 2 images × 2
/// channels × 4 non-overlapping 2×2 windows, all holding {1, 2, 3, 4} (picked with probability
/// 0.1…0.4). Over 4 000 calls the picks of two windows of the same plane, of the same window in
/// two channels and in two images are independent by a χ² test on their 4×4 table (9 degrees
/// of freedom, each test at α = 1e-6 with the Chernoff threshold ≈ 52.5; the exact quantile is
/// ≈ 44.8, and identical picks would give χ² = 3·4 000), and each window's pick frequencies
/// match 0.1…0.4 within 5 binomial SEs (≤ 5·√(0.25/4 000) ≈ 0.04).
#[test]
fn stochastic_pool_picks_are_independent_across_windows_channels_and_images() {
    let x = Array4::from_shape_fn((2, 2, 4, 4), |(_, _, i, j)| ((i % 2) * 2 + j % 2 + 1) as f32);
    let mut p = Pool::new(PoolKind::Stochastic, 2, 2, 2, 20);
    let calls = 4_000usize;
    // picks[call][(b·2 + c)·4 + window] = picked value − 1.
    let mut picks = vec![[0usize; 16]; calls];
    for row in picks.iter_mut() {
        let y = p.forward(x.view());
        for (o, &v) in y.iter().enumerate() {
            assert!([1.0, 2.0, 3.0, 4.0].contains(&v), "output {v}");
            row[o] = v as usize - 1;
        }
    }
    for w in 0..16 {
        for k in 0..4 {
            let f = picks.iter().filter(|r| r[w] == k).count() as f64 / calls as f64;
            assert!((f - 0.1 * (k + 1) as f64).abs() < 0.04, "window {w}, value {}: frequency {f}", k + 1);
        }
    }
    let threshold = chi2_threshold(9.0, 1e-6);
    assert!((50.0..60.0).contains(&threshold), "threshold {threshold}");
    for (a, b, what) in [(0, 1, "neighbouring windows"), (0, 4, "two channels"), (0, 8, "two images"), (5, 14, "other")]
    {
        let mut table = [[0.0f64; 4]; 4];
        for r in &picks {
            table[r[a]][r[b]] += 1.0;
        }
        let rows: Vec<f64> = table.iter().map(|r| r.iter().sum()).collect();
        let cols: Vec<f64> = (0..4).map(|j| table.iter().map(|r| r[j]).sum()).collect();
        let mut chi2 = 0.0;
        for i in 0..4 {
            for j in 0..4 {
                let e = rows[i] * cols[j] / calls as f64;
                chi2 += (table[i][j] - e).powi(2) / e;
            }
        }
        assert!(chi2 < threshold, "{what} (outputs {a}, {b}): χ² = {chi2} ≥ {threshold}");
    }
}

/// The backward pass follows the mode of its forward pass, not the layer's mode at backward
/// time: switching between the two passes (e.g. to evaluate in between) changes nothing.
#[test]
fn pool_backward_follows_its_forward_mode() {
    let x = grid((2, 2, 5, 5), 0.1, 15);
    for kind in [PoolKind::Stochastic, PoolKind::Mixed, PoolKind::Max, PoolKind::Avg] {
        for forward_training in [false, true] {
            let mut p = Pool::new(kind, 3, 2, 2, 16);
            p.set_training(forward_training);
            let mut q = p.clone();
            let y = p.forward(x.view());
            let r = weights(y.shape(), 17);
            let want = p.backward(r.view()).unwrap();
            assert_eq!(q.forward(x.view()), y);
            q.set_training(!forward_training);
            let got = q.backward(r.view()).expect("a gradient whatever the mode");
            assert_eq!(got, want, "{kind:?}, forward in training mode: {forward_training}");
        }
    }
}

#[test]
fn lrn_gradient_and_value() {
    // Large α so the normalization matters: α = 0.5, β = 0.75, 3×3.
    let x = grid((1, 2, 4, 4), -0.8, 13);
    let mut lrn = Lrn::new(3, 0.5, 0.75);
    let y = lrn.forward(x.view());
    // Corner (0,0): window is the 2×2 corner (zero padding), divided by 9.
    let sq: f32 = [x[[0, 0, 0, 0]], x[[0, 0, 0, 1]], x[[0, 0, 1, 0]], x[[0, 0, 1, 1]]].iter().map(|v| v * v).sum();
    let want = x[[0, 0, 0, 0]] * (1.0 + 0.5 / 9.0 * sq).powf(-0.75);
    assert!((y[[0, 0, 0, 0]] - want).abs() < 1e-6);
    let r = weights(y.shape(), 14);
    let g = lrn.backward(r.view()).unwrap();
    let mut fresh = lrn.clone();
    check_input_grad("lrn", &x, &mut |x| fresh.forward(x), &g, &r);
}

/// LRN against its definition at every pixel of a 5×5 plane — corners, edges and the interior
/// pixels whose 3×3 window lies wholly inside — y = x·(1 + α/9·Σ_window x²)^(−β) in f64 with
/// zero padding, and its gradient against finite differences: for β = 0.75 (computed with two
/// square roots) and β = 0.6 (the general `powf` branch). The value is within 1e-6 of the f64
/// definition: |y| ≤ 2.3 here, so ~4 f32 ulps (measured: ≤ 2.4e-7); a wrong exponent or window
/// is off by far more.
#[test]
fn lrn_matches_its_definition_for_any_beta() {
    let x = grid((2, 2, 5, 5), -1.2, 30);
    for beta in [0.75f32, 0.6] {
        let mut lrn = Lrn::new(3, 0.5, beta);
        let y = lrn.forward(x.view());
        for ((b, c, i, j), &got) in y.indexed_iter() {
            let mut sq = 0.0f64;
            for yy in i.saturating_sub(1)..(i + 2).min(5) {
                for xx in j.saturating_sub(1)..(j + 2).min(5) {
                    sq += f64::from(x[[b, c, yy, xx]]).powi(2);
                }
            }
            let want = f64::from(x[[b, c, i, j]]) * (1.0 + 0.5 / 9.0 * sq).powf(-f64::from(beta));
            assert!((f64::from(got) - want).abs() < 1e-6, "β {beta} ({b},{c},{i},{j}): {got} vs {want}");
        }
        // The normalization matters at an interior pixel: (2, 2)'s window sum is large here.
        let s: f32 = (1..4).flat_map(|i| (1..4).map(move |j| (i, j))).map(|(i, j)| x[[0, 0, i, j]].powi(2)).sum();
        assert!(1.0 + 0.5 / 9.0 * s > 1.2, "interior scale {s}");
        let r = weights(y.shape(), 31);
        let g = lrn.backward(r.view()).unwrap();
        let mut fresh = lrn.clone();
        check_input_grad(&format!("lrn β {beta}"), &x, &mut |x| fresh.forward(x), &g, &r);
    }
}

/// Empty planes (or an empty batch) pass through LRN as empty arrays instead of panicking.
#[test]
fn lrn_of_empty_planes_is_empty() {
    let mut lrn = Lrn::new(3, 0.5, 0.75);
    for shape in [(2, 3, 0, 0), (0, 3, 4, 4)] {
        let y = lrn.forward(ndarray::Array4::<f32>::zeros(shape).view());
        assert_eq!(y.dim(), shape);
        let g = lrn.backward(ndarray::Array4::<f32>::zeros(shape).view()).unwrap();
        assert_eq!(g.dim(), shape);
    }
}

#[test]
fn softmax_cross_entropy_gradient() {
    let mut rng = seeded(15);
    let logits = Array2::from_shape_simple_fn((4, 5), || rng.random_range(-3.0f32..3.0));
    let labels = [0u16, 3, 4, 1];
    let (loss, g, _) = SoftmaxCrossEntropy::loss_grad(logits.view(), &labels);
    assert!(loss > 0.0);
    for (idx, &gv) in g.indexed_iter() {
        let mut l = logits.clone();
        l[idx] += H;
        let lp = SoftmaxCrossEntropy::loss_grad(l.view(), &labels).0;
        l[idx] -= 2.0 * H;
        let lm = SoftmaxCrossEntropy::loss_grad(l.view(), &labels).0;
        let fd = (lp - lm) / (2.0 * f64::from(H));
        assert!(close(fd, gv), "dL/dz{idx:?} = {gv}, finite difference {fd}");
    }
    // Huge logits do not overflow.
    let big = Array2::from_shape_vec((1, 3), vec![1000.0f32, 0.0, -1000.0]).unwrap();
    let (l, _, correct) = SoftmaxCrossEntropy::loss_grad(big.view(), &[2]);
    assert!((l - 2000.0).abs() < 1e-3 && correct == 0);
}

/// The loss gradient of the whole network (conv tiles, ReLU, the pooling variants, LRN, the
/// classifier, softmax cross-entropy) against central finite differences, in training mode.
mod whole_network {
    use crossbar_sim::TileSnapshot;
    use crossbar_sim::rng::seeded;
    use ndarray::{Array2, Array4};
    use rand::Rng;
    use rapa_layers::Scheme;
    use rapa_train::layers::{PoolKind, SoftmaxCrossEntropy, pool_out};
    use rapa_train::net::{Init, NetConfig, NetState, Network};

    const SEED: u64 = 3;

    /// A coordinate of the network's input or parameters.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Coord {
        Input([usize; 4]),
        /// Row `out`, column `col` (the last column is the bias) of a conv tile.
        Conv {
            layer: usize,
            tile: usize,
            out: usize,
            col: usize,
        },
        Fc {
            out: usize,
            col: usize,
        },
        /// Mixed pooling's mixing logit.
        Mix {
            layer: usize,
            channel: usize,
        },
    }

    fn weights(s: &TileSnapshot) -> Array2<f32> {
        s.clone().restore().unwrap().weights().to_owned()
    }

    fn add_weight(s: &mut TileSnapshot, at: [usize; 2], d: f32) {
        let mut t = s.clone().restore().unwrap();
        let mut w = t.weights().to_owned();
        w[at] += d;
        t.set_weights(w.view()).unwrap();
        *s = t.snapshot();
    }

    fn rms<'a>(v: impl IntoIterator<Item = &'a f32>) -> f32 {
        let (s, n) = v.into_iter().fold((0.0f64, 0usize), |(s, n), &x| (s + f64::from(x) * f64::from(x), n + 1));
        (s / n as f64).sqrt() as f32
    }

    /// What the last forward pass decided besides values: every ReLU's sign mask, the argmaxes of
    /// max (and mixed) pooling, and the picks of stochastic pooling (read back as the input
    /// gradient of the distinct output gradients 1, 2, 3, …, which lands on the picked elements
    /// only). While these stay the same, the loss is a smooth function of the input and the
    /// parameters (convs, LRN, the linear parts of pooling, softmax).
    fn decisions(net: &mut Network) -> Vec<Vec<u32>> {
        let masks: Vec<Array4<bool>> = net.relus().iter().map(|r| r.last_mask().unwrap().clone()).collect();
        let mut out: Vec<Vec<u32>> = masks.iter().map(|m| m.iter().map(|&b| u32::from(b)).collect()).collect();
        for (p, m) in net.pools_mut().iter_mut().zip(&masks) {
            match p.kind {
                PoolKind::Max | PoolKind::Mixed => out.push(p.last_argmax().unwrap().to_vec()),
                PoolKind::Stochastic => {
                    let (n, c, h, w) = m.dim();
                    let mut k = 0.0f32;
                    let dy = Array4::from_shape_simple_fn((n, c, pool_out(h, 3, 2), pool_out(w, 3, 2)), || {
                        k += 1.0;
                        k
                    });
                    out.push(p.backward(dy.view()).unwrap().iter().map(|v| v.to_bits()).collect());
                }
                PoolKind::Avg => {}
            }
        }
        out
    }

    /// The network's loss gradient with respect to its input (`Network::backward`, the attack
    /// path) and to its parameters (the training path: `backward_for_update`, then `update`
    /// with weight decay 0, which moves each weight by −lr·s·∂L/∂w, s the tile's learning-rate
    /// factor) against central finite differences of the loss, for every pooling variant, with
    /// LRN, in training mode: 12 input pixels, 3–4 weights of every conv tile (each tile's
    /// bias among them; 4 tiles in conv1 and conv2), 8 classifier weights (its bias among them)
    /// and mixed pooling's 8 mixing logits.
    ///
    /// Repeatable forward passes: every evaluation rebuilds the network from one snapshot taken
    /// after a first forward pass, so each replays the same draw of the random assignment and the
    /// same stochastic-pooling stream position (checked: the same logits and assignments).
    ///
    /// Setup: a small paper network (4 channels per layer, tiles 4, 4, 1, He init), a batch of 2
    /// images. Caffe's LRN (α = 5e-5) is nearly the identity on O(1) activations, so conv1's
    /// weights are scaled by 60 (outputs O(50)), where it is not (checked: switching LRN off
    /// moves the logits by > 30 % rms for max pooling; measured 180 %, and 90 % and 80 % with
    /// mixed and stochastic pooling, 7 % with average pooling); conv3's by 1/60 to keep the
    /// logits O(1).
    ///
    /// Kinks: ReLU, max pooling and stochastic pooling's picks make the loss piecewise smooth.
    /// The step starts at h = 20 % of the coordinate's scale (RMS of the input, of the tile's or
    /// the classifier's weights; 1 for mixing logits) and is halved, down to 1e-4 of it, until
    /// the forward passes at ±h take the same decisions (ReLU masks, argmaxes, picks) as the
    /// unperturbed one; the difference is then taken on one smooth piece (a single weight moves
    /// every activation by a small fraction of its scale there, so truncation is negligible).
    ///
    /// Tolerance: |fd − g| ≤ 1 %·|g| + 4·ε·Z/h. The second term is rounding: the logits are f32,
    /// each evaluation of the loss carries an error of a few ulps of the largest logit Z (an ulp
    /// is ε·Z, ε = 2^−23; Σ_j |∂L/∂z_j| ≤ 2), and the central difference divides it by h
    /// (measured errors stay below a fifth of the tolerance). A wrong gradient (another
    /// channel's mixing weight, a dropped LRN term, a missing learning-rate factor, a gradient
    /// routed to the max instead of the stochastic pick) is off by 30 %–100 %: asserted per
    /// group, at least half of the checked gradients are ≥ 4× the rounding term, where a 30 %
    /// error exceeds the tolerance.
    #[test]
    fn network_gradient_matches_finite_differences() {
        let mut rng = seeded(21);
        let x = Array4::from_shape_simple_fn((2, 3, 32, 32), || rng.random_range(-1.0f32..1.0));
        let labels = [3u16, 7];
        for pool in [PoolKind::Max, PoolKind::Avg, PoolKind::Mixed, PoolKind::Stochastic] {
            let cfg = NetConfig {
                channels: [4, 4, 4],
                tiles: [4, 4, 1],
                scheme: Scheme::Random,
                pool,
                init: Init::He,
                ..NetConfig::default()
            };
            assert!(cfg.lrn);
            let mut net = Network::new(&cfg, SEED).unwrap();
            for (l, f) in [(0usize, 60.0f32), (2, 1.0 / 60.0)] {
                for t in net.convs_mut()[l].tiles_mut() {
                    let w = t.weights().mapv(|v| v * f);
                    t.set_weights(w.view()).unwrap();
                }
            }
            if pool == PoolKind::Mixed {
                // Distinct mixing weights per channel and layer (they all start equal).
                for (l, p) in net.pools_mut().iter_mut().take(2).enumerate() {
                    p.mix = ndarray::arr1(&[-1.2f32, 0.3, 1.1, 2.0]) + l as f32 * 0.5;
                }
            }
            net.set_training(true);
            net.forward(x.view()).unwrap();
            let state = net.state();
            let fresh = || Network::from_state(state.clone(), SEED).unwrap();
            let eval = |s: NetState, x: &Array4<f32>| {
                let mut n = Network::from_state(s, SEED).unwrap();
                let z = n.forward(x.view()).unwrap();
                (SoftmaxCrossEntropy::loss_grad(z.view(), &labels).0, decisions(&mut n))
            };

            // The analytic gradients.
            let mut train = fresh();
            let z = train.forward(x.view()).unwrap();
            let (_, dz, _) = SoftmaxCrossEntropy::loss_grad(z.view(), &labels);
            let unperturbed = decisions(&mut train);
            let mut attack = fresh();
            assert_eq!(attack.forward(x.view()).unwrap(), z, "{pool:?}: the forward pass is not repeatable");
            for (a, b) in attack.convs().iter().zip(train.convs()) {
                assert_eq!(a.last_assignment(), b.last_assignment(), "{pool:?}: another assignment");
            }
            let dx = attack.backward(dz.view()).unwrap();
            let lr = 256.0f32;
            train.backward_for_update(dz.view()).unwrap();
            train.update(lr, 0.0).unwrap();
            let after = train.state();
            // The attack path's backward prepares the same update (the same weights; the cycle
            // counters differ by conv1's backward MVMs).
            attack.update(lr, 0.0).unwrap();
            let all_weights = |s: &NetState| {
                let convs = s.convs.iter().flat_map(|c| c.tiles.iter().map(weights));
                (convs.collect::<Vec<_>>(), weights(&s.fc), s.pools.clone())
            };
            assert!(
                all_weights(&attack.state()) == all_weights(&after),
                "{pool:?}: backward and backward_for_update disagree"
            );
            if pool == PoolKind::Max {
                let mut s = state.clone();
                s.config.lrn = false;
                let z_off = Network::from_state(s, SEED).unwrap().forward(x.view()).unwrap();
                let moved = rms(&(&z - &z_off)) / rms(&z);
                assert!(moved > 0.3, "LRN moves the logits by only {moved}: it is nearly the identity here");
            }

            let mut coords = Vec::new();
            let mut crng = seeded(5);
            for _ in 0..12 {
                let i = [
                    crng.random_range(0..2),
                    crng.random_range(0..3),
                    crng.random_range(0..32),
                    crng.random_range(0..32),
                ];
                coords.push(Coord::Input(i));
            }
            for (layer, conv) in state.convs.iter().enumerate() {
                for (tile, t) in conv.tiles.iter().enumerate() {
                    let (rows, cols) = weights(t).dim();
                    for k in 0..(8 / conv.tiles.len()).max(3) {
                        let col = if k == 0 { cols - 1 } else { crng.random_range(0..cols) };
                        coords.push(Coord::Conv { layer, tile, out: crng.random_range(0..rows), col });
                    }
                }
            }
            let wf = weights(&state.fc);
            for k in 0..8 {
                let col = if k == 0 { wf.ncols() - 1 } else { crng.random_range(0..wf.ncols()) };
                coords.push(Coord::Fc { out: crng.random_range(0..wf.nrows()), col });
            }
            if pool == PoolKind::Mixed {
                for layer in 0..2 {
                    for channel in 0..4 {
                        coords.push(Coord::Mix { layer, channel });
                    }
                }
            }

            let z_max = z.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            // Per group (input, conv1..3, fc, mix): coordinates sampled, checked (a smooth step
            // was found), and checked with a gradient ≥ 4× the rounding term, where an error of
            // 30 % of the gradient exceeds the tolerance.
            let mut groups = std::collections::BTreeMap::<&str, [usize; 3]>::new();
            for c in coords {
                let (g, scale, group) = match c {
                    Coord::Input(i) => (dx[i], rms(&x), "input"),
                    Coord::Conv { layer, tile, out, col } => {
                        let (w0, w1) =
                            (weights(&state.convs[layer].tiles[tile]), weights(&after.convs[layer].tiles[tile]));
                        let s = state.convs[layer].lr_scale[tile];
                        ((w0[[out, col]] - w1[[out, col]]) / (lr * s), rms(&w0), ["conv1", "conv2", "conv3"][layer])
                    }
                    Coord::Fc { out, col } => ((wf[[out, col]] - weights(&after.fc)[[out, col]]) / lr, rms(&wf), "fc"),
                    Coord::Mix { layer, channel } => {
                        ((state.pools[layer].mix[channel] - after.pools[layer].mix[channel]) / lr, 1.0, "mix")
                    }
                };
                let loss_at = |d: f32| {
                    let (mut s, mut x) = (state.clone(), x.clone());
                    match c {
                        Coord::Input(i) => x[i] += d,
                        Coord::Conv { layer, tile, out, col } => {
                            add_weight(&mut s.convs[layer].tiles[tile], [out, col], d)
                        }
                        Coord::Fc { out, col } => add_weight(&mut s.fc, [out, col], d),
                        Coord::Mix { layer, channel } => s.pools[layer].mix[channel] += d,
                    }
                    eval(s, &x)
                };
                let counts = groups.entry(group).or_default();
                counts[0] += 1;
                let mut h = 0.2 * scale;
                let fd = loop {
                    let ((lp, dp), (lm, dm)) = (loss_at(h), loss_at(-h));
                    if dp == unperturbed && dm == unperturbed {
                        break Some((lp - lm) / (2.0 * f64::from(h)));
                    }
                    if h < 2e-4 * scale {
                        break None;
                    }
                    h /= 2.0;
                };
                let Some(fd) = fd else { continue };
                let rounding = 4.0 * f64::from(f32::EPSILON * z_max / h);
                let g = f64::from(g);
                assert!(
                    (fd - g).abs() <= 1e-2 * g.abs() + rounding,
                    "{pool:?} {c:?}: gradient {g:e}, finite difference {fd:e} (h = {h:e}, rounding term {rounding:e})"
                );
                counts[1] += 1;
                counts[2] += usize::from(g.abs() >= 4.0 * rounding);
            }
            for (group, [sampled, checked, clear]) in groups {
                // At most one coordinate per group without a smooth step (none at present).
                assert!(
                    checked + 1 >= sampled,
                    "{pool:?} {group}: {checked} of {sampled} coordinates had a smooth step"
                );
                assert!(
                    2 * clear >= checked,
                    "{pool:?} {group}: only {clear} of {checked} gradients well above rounding"
                );
            }
        }
    }
}

/// Pooling a plane smaller than the window uses the window clipped to it (one output, Caffe's
/// ceil mode); empty planes and a zero kernel or stride panic as documented.
#[test]
fn pooling_small_and_empty_planes() {
    let x = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0f32, 4.0, 2.0, 3.0]).unwrap();
    let y = Pool::new(PoolKind::Max, 3, 2, 1, 0).forward(x.view());
    assert_eq!(y.shape(), &[1, 1, 1, 1]);
    assert_eq!(y[[0, 0, 0, 0]], 4.0);
    assert_eq!(Pool::new(PoolKind::Avg, 3, 2, 1, 0).forward(x.view())[[0, 0, 0, 0]], 2.5);
    let empty = Array4::<f32>::zeros((1, 1, 0, 0));
    for (kernel, stride, input) in [(3, 2, &empty), (0, 2, &x), (3, 0, &x)] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pool::new(PoolKind::Avg, kernel, stride, 1, 0).forward(input.view())
        }));
        assert!(r.is_err(), "kernel {kernel}, stride {stride}, {:?}: no panic", input.shape());
    }
}

/// The loss needs a label for every row of logits (documented panic, not a silent gradient
/// of raw probabilities for the unlabelled rows).
#[test]
#[should_panic(expected = "1 labels for 2 rows")]
fn loss_with_fewer_labels_than_rows_panics() {
    let _ = SoftmaxCrossEntropy::loss_grad(Array2::zeros((2, 2)).view(), &[0]);
}
