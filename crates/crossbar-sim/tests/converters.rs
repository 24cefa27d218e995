//! DAC and ADC: level counts, round-then-clip order, half-to-even rounding.

mod common;

use std::collections::BTreeSet;

use common::{ideal_with_forward, transparent_io};
use crossbar_sim::periphery::Converter;
use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, IoConfig, Tile};
use ndarray::{Array2, array};

/// Distinct values (bit patterns) of a 1×1 tile's forward output over a sweep of inputs.
fn levels(cfg: IoConfig, weight: f32, lo: f32, hi: f32) -> BTreeSet<u32> {
    let mut tile = AnalogTile::new(1, 1, &ideal_with_forward(cfg), 1).unwrap();
    tile.set_weights(array![[weight]].view()).unwrap();
    let n = 20_001;
    let x = Array2::from_shape_fn((n, 1), |(i, _)| lo + (hi - lo) * i as f32 / (n - 1) as f32);
    let y = tile.forward_new(x.view()).unwrap();
    y.iter().map(|v| (v + 0.0).to_bits()).collect()
}

#[test]
fn dac_has_127_levels_over_unit_range() {
    // inp_res = 1/126 over ±1: step 2/126 = 1/63, codes −63..=63.
    let cfg = IoConfig { inp_res: 1.0 / 126.0, ..transparent_io() };
    let l = levels(cfg, 1.0, -1.5, 1.5);
    assert_eq!(l.len(), 127);
    let vals: Vec<f32> = l.iter().map(|b| f32::from_bits(*b)).collect();
    let max = vals.iter().cloned().fold(f32::MIN, f32::max);
    let min = vals.iter().cloned().fold(f32::MAX, f32::min);
    assert_eq!(max, 1.0);
    assert_eq!(min, -1.0);
}

#[test]
fn adc_has_511_levels_over_12() {
    // out_res = 1/510 over ±12: step 24/510, codes −255..=255; the DAC is off and W = 14
    // drives the output beyond both bounds.
    let cfg = IoConfig { out_res: 1.0 / 510.0, out_bound: 12.0, ..transparent_io() };
    let l = levels(cfg, 14.0, -1.0, 1.0);
    assert_eq!(l.len(), 511);
    let vals: Vec<f32> = l.iter().map(|b| f32::from_bits(*b)).collect();
    assert_eq!(vals.iter().cloned().fold(f32::MIN, f32::max), 12.0);
}

#[test]
fn rounds_then_clips() {
    let mut rng = seeded(0);
    // Step 0.25, bound 0.9 (off the grid): 0.95 rounds to 1.0, which is then clipped to 0.9.
    // Clip-then-round would give round(0.9/0.25)·0.25 = 1.0, beyond the bound.
    let c = Converter { step: 0.25, bound: 0.9, stochastic: false };
    assert_eq!(c.convert(0.95, &mut rng), (0.9, true));
    assert_eq!(c.convert(-0.95, &mut rng), (-0.9, true));
    // 0.85 rounds to 0.75, inside the bound: not clipped.
    assert_eq!(c.convert(0.85, &mut rng), (0.75, false));
    // ADC defaults: 12.02 rounds to the top code 255·Δ = 12 (not a clip); 12.03 rounds to
    // 256·Δ > 12 and is clipped — the clip flag is what bound management tests.
    let adc = Converter::adc(&IoConfig::default());
    assert!(!adc.convert(12.02, &mut rng).1);
    assert_eq!(adc.convert(12.03, &mut rng), (12.0, true));
}

#[test]
fn rounds_half_to_even() {
    let mut rng = seeded(0);
    let c = Converter { step: 0.25, bound: 10.0, stochastic: false };
    // k + ½ ties go to the even k.
    for (v, want) in [(0.125, 0.0), (0.375, 0.5), (0.625, 0.5), (0.875, 1.0), (-0.125, 0.0), (-0.375, -0.5)] {
        assert_eq!(c.round(v, &mut rng), want, "round({v})");
    }
}

#[test]
fn stochastic_rounding_is_unbiased() {
    // E[q(v)] = v for stochastic rounding. 0.3 = 1.2 steps of 0.25: P(up) = 0.2.
    // Mean over n draws has SE = 0.25·sqrt(0.2·0.8/n); allow 4 SE.
    let mut rng = seeded(7);
    let c = Converter { step: 0.25, bound: 10.0, stochastic: true };
    let n = 100_000;
    let mean = (0..n).map(|_| f64::from(c.round(0.3, &mut rng))).sum::<f64>() / n as f64;
    let se = 0.25 * (0.2f64 * 0.8 / n as f64).sqrt();
    assert!((mean - 0.3).abs() < 4.0 * se, "mean {mean}");
}

#[test]
fn fast_rounding_equals_library_rounding() {
    use crossbar_sim::periphery::round_half_even;
    let mut rng = seeded(3);
    let ties = (-100..100).map(|k| k as f32 + 0.5);
    let randoms = (0..100_000).map(|_| rand::Rng::random_range(&mut rng, -1e7f32..1e7) / 8.0);
    let edges = [0.0, -0.0, 0.49999997, -0.49999997, 4_194_303.5, 4_194_304.5, -4_194_304.5, 1e9, -1e9];
    for k in ties.chain(randoms).chain(edges) {
        assert_eq!(round_half_even(k), k.round_ties_even(), "k = {k}");
    }
}
