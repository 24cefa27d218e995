//! Gradient checks of the non-tile layers against central finite differences.
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
        let y = p.forward(x.view());
        assert_eq!(y.shape(), &[2, 3, 3, 3]);
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
/// the kernel, and a stride larger than the kernel).
#[test]
fn max_pool_matches_a_direct_scan_with_ties() {
    let mut rng = seeded(9);
    // Windows of the second pass with nothing above −∞ (so the first-pixel rule is exercised).
    let mut empty_windows = 0;
    for (k, s, h, w) in
        [(3, 2, 32, 32), (3, 2, 7, 9), (2, 2, 6, 5), (3, 1, 5, 6), (5, 3, 11, 8), (3, 2, 2, 2), (2, 3, 7, 7)]
    {
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
        }
    }
    assert!(empty_windows > 0, "no window of NaNs and −∞ was drawn");
}

#[test]
fn mixed_pool_logit_gradient() {
    let x = grid((2, 2, 5, 5), 0.0, 6);
    let mut p = Pool::new(PoolKind::Mixed, 3, 2, 2, 7);
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
        counts[y[[0, 0, 0, 0]] as usize - 1] += 1;
        // The gradient goes to the picked element only.
        let g = p.backward(Array4::from_elem((1, 1, 1, 1), 1.0).view()).unwrap();
        assert_eq!(g.iter().filter(|&&v| v != 0.0).count(), 1);
    }
    for (k, &c) in counts.iter().enumerate() {
        let f = c as f64 / n as f64;
        assert!((f - 0.1 * (k + 1) as f64).abs() < 0.014, "element {k}: frequency {f}");
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
