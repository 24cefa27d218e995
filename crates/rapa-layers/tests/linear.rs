//! The fully connected layer on a tile: y = W·x + b, with exact gradients.

use crossbar_sim::rng::seeded;
use ndarray::Array2;
use rand::Rng;
use rapa_layers::{TileKind, TiledLinear};

#[test]
fn linear_forward_backward_update() {
    let mut rng = seeded(1);
    let x = Array2::from_shape_simple_fn((5, 7), || rng.random_range(-1.0f32..1.0));
    let dy = Array2::from_shape_simple_fn((5, 3), || rng.random_range(-1.0f32..1.0));
    let mut l = TiledLinear::new(7, 3, &TileKind::Float, 0.3, 2).unwrap();
    assert_eq!(l.n_weights(), 3 * 8);
    let w = l.tile().weights().to_owned();
    let y = l.forward(x.view()).unwrap();
    // Bias starts at 0: y = x·W[:, :7]ᵀ.
    let want = x.dot(&w.slice(ndarray::s![.., ..7]).t());
    assert!((&y - &want).iter().all(|v| v.abs() < 1e-5));
    let dx = l.backward(dy.view()).unwrap();
    let want_dx = dy.dot(&w.slice(ndarray::s![.., ..7]));
    assert!((&dx - &want_dx).iter().all(|v| v.abs() < 1e-5));
    l.update(0.1).unwrap();
    // Bias gradient = column sums of dy.
    let db = dy.sum_axis(ndarray::Axis(0));
    for o in 0..3 {
        assert!((l.tile().weights()[[o, 7]] + 0.1 * db[o]).abs() < 1e-5);
    }
    assert!(TiledLinear::new(0, 3, &TileKind::Float, 0.1, 1).is_err());
    assert!(l.forward(Array2::zeros((2, 6)).view()).is_err());
}
