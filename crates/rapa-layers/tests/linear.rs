//! The fully connected layer on a tile: y = W·x + b, with exact gradients.

use crossbar_sim::rng::seeded;
use ndarray::{Array2, Axis, concatenate, s};
use rand::Rng;
use rapa_layers::{TileKind, TiledLinear};

/// With a nonzero bias: forward y = x·W[:, :7]ᵀ + b, backward dx = dy·W[:, :7], and the update
/// is the tile's rule W ← W − lr·dyᵀ·[x | 1] on the whole matrix `[W | b]` (the bias column's
/// step is lr times the column sums of dy). The reference is computed in f64; the layer's f32
/// results differ by rounding only (sums of ≤ 8 terms of magnitude ≤ 1: < 1e-5), while a
/// wrong column, sign or cached input errs by O(0.01) or more.
#[test]
fn linear_forward_backward_update() {
    let mut rng = seeded(1);
    let x = Array2::from_shape_simple_fn((5, 7), || rng.random_range(-1.0f32..1.0));
    let dy = Array2::from_shape_simple_fn((5, 3), || rng.random_range(-1.0f32..1.0));
    let mut l = TiledLinear::new(7, 3, &TileKind::Float, 0.3, 2).unwrap();
    assert_eq!(l.n_weights(), 3 * 8);
    // A nonzero bias column, so that the constant bias input is exercised everywhere.
    let mut w = l.tile().weights().to_owned();
    w.column_mut(7).assign(&ndarray::arr1(&[0.7f32, -1.1, 0.4]));
    l.tile_mut().set_weights(w.view()).unwrap();
    assert_eq!(l.tile().weights(), w);
    let close = |a: &Array2<f32>, b: &Array2<f64>, what: &str| {
        assert_eq!(a.dim(), b.dim(), "{what}");
        let err = a.iter().zip(b).fold(0.0f64, |m, (&u, &v)| m.max((f64::from(u) - v).abs()));
        assert!(err < 1e-5, "{what}: max error {err}");
    };
    let (x64, dy64, w64) = (x.mapv(f64::from), dy.mapv(f64::from), w.mapv(f64::from));
    let xb = concatenate(Axis(1), &[x64.view(), Array2::ones((5, 1)).view()]).unwrap();

    let y = l.forward(x.view()).unwrap();
    close(&y, &xb.dot(&w64.t()), "forward y = [x|1]·[W|b]ᵀ");
    let dx = l.backward(dy.view()).unwrap();
    close(&dx, &dy64.dot(&w64.slice(s![.., ..7])), "backward dx = dy·W");
    let lr = 0.1;
    l.update(lr).unwrap();
    let want = &w64 - &(f64::from(lr) * dy64.t().dot(&xb));
    close(&l.tile().weights().to_owned(), &want, "update W ← W − lr·dyᵀ·[x|1]");
    // Every entry moved (no column left out of the update).
    assert!(l.tile().weights().iter().zip(&w).all(|(a, b)| a != b));

    assert!(TiledLinear::new(0, 3, &TileKind::Float, 0.1, 1).is_err());
    assert!(l.forward(Array2::zeros((2, 6)).view()).is_err());
}
