//! Digital bias (`mapping.digital_bias`): the last input column is kept in float. The analog
//! columns must then behave bit for bit like a tile without that column (same seed, same noise,
//! same pulses: the bias takes no part in noise management, the DAC, the mapping's α, the bounds
//! or the pulsed update), and the bias column must be exact float arithmetic.

mod common;

use common::uniform;
use crossbar_sim::{AnalogTile, MappingConfig, SimError, Tile, TileConfig};
use ndarray::{Array1, Array2, s};

const OUT: usize = 8;
const IN: usize = 13;

fn configs() -> Vec<(TileConfig, TileConfig)> {
    let with = |m: MappingConfig| {
        let plain = TileConfig { mapping: m.clone(), ..TileConfig::aihwkit_default() };
        let digital =
            TileConfig { mapping: MappingConfig { digital_bias: true, ..m }, ..TileConfig::aihwkit_default() };
        (digital, plain)
    };
    vec![
        with(MappingConfig::default()),
        with(MappingConfig { weight_scaling_omega: 0.3, columnwise: true, ..Default::default() }),
    ]
}

/// Σ_o d[b, o]·bias[o] in output order, as the tile sums it.
fn bias_grad_in(d: &Array2<f32>, bias: &[f32]) -> Array1<f32> {
    d.rows().into_iter().map(|r| r.iter().zip(bias).map(|(&d, &b)| d * b).sum()).collect()
}

#[test]
fn analog_columns_equal_a_tile_without_the_bias_column_and_the_bias_is_exact() {
    for (digital_cfg, plain_cfg) in configs() {
        let mut digital = AnalogTile::new(OUT, IN, &digital_cfg, 5).unwrap();
        let mut plain = AnalogTile::new(OUT, IN - 1, &plain_cfg, 5).unwrap();
        let mut w = uniform(OUT, IN, 0.3, 1);
        // A bias far outside the device range and far above the weights: it must neither clip
        // nor enter the mapping's α.
        w.column_mut(IN - 1).assign(&Array1::linspace(-4.0, 4.0, OUT));
        digital.set_weights(w.view()).unwrap();
        plain.set_weights(w.slice(s![.., ..IN - 1])).unwrap();
        // The analog columns are clipped to each device's bounds like the plain tile's; the bias
        // is kept as given.
        assert_eq!(digital.weights().slice(s![.., ..IN - 1]), plain.weights());
        assert_eq!(digital.weights().column(IN - 1), w.column(IN - 1));
        assert_eq!(digital.mapping_scales(), plain.mapping_scales());

        for step in 0..3 {
            // Inputs much smaller than the constant 1 of the bias column: with an analog bias
            // noise management would scale them against 1.
            let mut x = uniform(20, IN, 0.01, 10 + step);
            x.column_mut(IN - 1).fill(1.0);
            x[[3, IN - 1]] = 0.5; // the last input need not be 1
            let xa = x.slice(s![.., ..IN - 1]).to_owned();
            let bias = digital.digital_bias().to_vec();

            let yd = digital.forward_new(x.view()).unwrap();
            let mut want = plain.forward_new(xa.view()).unwrap();
            for (mut r, &xl) in want.rows_mut().into_iter().zip(x.column(IN - 1)) {
                r.zip_mut_with(&Array1::from(bias.clone()), |y, &b| *y += b * xl);
            }
            assert_eq!(yd, want, "forward, step {step}");

            let d = uniform(20, OUT, 0.5, 20 + step);
            let zd = digital.backward_new(d.view()).unwrap();
            assert_eq!(zd.slice(s![.., ..IN - 1]), plain.backward_new(d.view()).unwrap(), "backward, step {step}");
            assert_eq!(zd.column(IN - 1), bias_grad_in(&d, &bias), "bias column of the backward pass");

            let lr = 0.05;
            digital.update(x.view(), d.view(), lr).unwrap();
            plain.update(xa.view(), d.view(), lr).unwrap();
            assert_eq!(digital.stored_weights(), plain.stored_weights(), "pulsed update, step {step}");
            let want_bias: Vec<f32> = bias
                .iter()
                .zip(d.columns())
                .map(|(&b, dc)| b - lr * dc.iter().zip(x.column(IN - 1)).map(|(&d, &xl)| d * xl).sum::<f32>())
                .collect();
            assert_eq!(digital.digital_bias(), &want_bias[..], "bias follows plain SGD");
            assert_eq!(digital.weights().slice(s![.., ..IN - 1]), plain.weights());
            assert_eq!(digital.weights().column(IN - 1), Array1::from(want_bias));
            assert!(digital.counters().pulses > 0 && digital.counters() == plain.counters());
        }

        // A checkpoint restores the bias and continues identically.
        let mut restored = AnalogTile::from_state(digital.state()).unwrap();
        let x = uniform(4, IN, 0.01, 99);
        assert_eq!(restored.forward_new(x.view()).unwrap(), digital.forward_new(x.view()).unwrap());
    }
}

#[test]
fn digital_bias_needs_an_analog_column_and_a_matching_state() {
    let cfg = TileConfig {
        mapping: MappingConfig { digital_bias: true, ..Default::default() },
        ..TileConfig::aihwkit_default()
    };
    assert!(matches!(AnalogTile::new(3, 1, &cfg, 1), Err(SimError::ShapeMismatch { .. })));
    let tile = AnalogTile::new(3, 2, &cfg, 1).unwrap();
    assert_eq!((tile.in_size(), tile.stored_weights().ncols(), tile.digital_bias().len()), (2, 1, 3));
    let mut state = tile.state();
    state.digital_bias.pop();
    let err = AnalogTile::from_state(state).unwrap_err().to_string();
    assert!(err.contains("2 digital bias values for 3"), "{err}");
    let mut state = tile.state();
    state.config.mapping.digital_bias = false;
    let err = AnalogTile::from_state(state).unwrap_err().to_string();
    assert!(err.contains("3 digital bias values for 0"), "{err}");
    let mut state = tile.state();
    state.digital_bias[1] = f32::NAN;
    let err = AnalogTile::from_state(state).unwrap_err().to_string();
    assert!(err.contains("finite"), "{err}");
    // No analog column left: refused like a tile of one input with a digital bias.
    let mut state = tile.state();
    state.weights = Array2::zeros((3, 0));
    let err = AnalogTile::from_state(state).unwrap_err().to_string();
    assert!(err.contains("empty tile"), "{err}");
}
