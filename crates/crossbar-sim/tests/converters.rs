//! DAC and ADC: level counts, round-then-clip order, half-to-even rounding.

mod common;

use std::collections::BTreeSet;

use common::{ideal_with_forward, transparent_io};
use crossbar_sim::periphery::Converter;
use crossbar_sim::rng::seeded;
use crossbar_sim::{AnalogTile, IoConfig, Tile, TileConfig};
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

/// The ADC codes k = y/(scale·Δ_out) of a batch's outputs, where `scale(b)` is the digital
/// rescale of vector b (α_b·ρ·out_scale): each must be an integer with |k| ≤ 255 (the 511 codes
/// of the default ADC, bound 12 = 255·Δ_out). Tolerance 10⁻⁴ on the integer: the tile's y is
/// the f32 product of the code's value kΔ (rounded once) and the f32 scale (rounded once), so
/// y/(scale·Δ) is within 3·2⁻²⁴ relatively of k, ≤ 4.6·10⁻⁵ absolutely for |k| ≤ 255.
/// Returns the codes.
fn adc_codes(y: &Array2<f32>, scale: impl Fn(usize) -> f64, step: f64) -> Vec<f64> {
    let mut codes = Vec::with_capacity(y.len());
    for ((b, i), &v) in y.indexed_iter() {
        let k = f64::from(v) / (scale(b) * step);
        assert!((k - k.round()).abs() <= 1e-4, "output [{b},{i}] = {v}: code {k} is off the ADC grid");
        assert!(k.round().abs() <= 255.0, "output [{b},{i}] = {v}: code {k} beyond the bound");
        codes.push(k.round());
    }
    codes
}

fn abs_max(r: ndarray::ArrayView1<'_, f32>) -> f32 {
    r.iter().fold(0.0f32, |m, &v| m.max(v.abs()))
}

/// With the default converters and output noise on, every output of the forward and backward
/// pass is an ADC code times the digital rescale α·ρ·out_scale (α = max|x| of the vector): the
/// output noise is added before the ADC, so nothing off the grid comes out ([`adc_codes`]).
/// Forward (out_scale 0.37): |W·v| ≤ Σ_j|w_ij| ≤ 75·0.1 = 7.5 with |v| ≤ 1, and output noise
/// beyond 4.5 = 75σ does not occur, so no output clips and bound management never repeats a
/// vector (ρ = 1, asserted through the pass count). Without bound management, with weights
/// of ±0.5 and vectors sgn(w_i·) driving outputs to Σ_j|w_ij| ≈ 19 > 12, the clipped outputs
/// sit exactly on the top code ±255 (asserted to occur) and none beyond. Backward (no bound
/// management, default IO): the same, with α = max|d|. Noise added after the ADC would put
/// almost every code off the grid (P(|frac| < 10⁻⁴) = 2·10⁻⁴ per output).
#[test]
fn noisy_outputs_lie_on_the_adc_grid() {
    let fwd = IoConfig { out_scale: 0.37, ..IoConfig::default() };
    assert!(fwd.out_noise > 0.0);
    let step = f64::from(fwd.out_step());
    let cfg = TileConfig { forward: fwd.clone(), backward: IoConfig::default(), ..ideal_with_forward(fwd.clone()) };
    let w = common::uniform(32, 75, 0.1, 61);
    let x = common::uniform(200, 75, 1.0, 62);
    let mut tile = AnalogTile::new(32, 75, &cfg, 63).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    assert_eq!(tile.counters().forward_passes, 200, "bound management ran");
    adc_codes(&y, |b| f64::from(abs_max(x.row(b))) * 0.37, step);

    let d = common::uniform(150, 32, 1.0, 64);
    let z = tile.backward_new(d.view()).unwrap();
    adc_codes(&z, |b| f64::from(abs_max(d.row(b))), step);

    let no_bm = IoConfig { bound_management: crossbar_sim::BoundManagement::None, ..IoConfig::default() };
    let w = common::uniform(16, 75, 0.5, 65);
    let mut x = common::uniform(64, 75, 1.0, 66);
    for b in 0..16 {
        x.row_mut(b).assign(&w.row(b).mapv(f32::signum));
    }
    let mut tile = AnalogTile::new(16, 75, &ideal_with_forward(no_bm), 67).unwrap();
    tile.set_weights(w.view()).unwrap();
    let y = tile.forward_new(x.view()).unwrap();
    let codes = adc_codes(&y, |b| f64::from(abs_max(x.row(b))), step);
    assert!(codes.iter().filter(|k| k.abs() == 255.0).count() >= 16, "no output reached the bound");
}

/// Stochastic rounding through a tile, for the DAC (`inp_sto_round`, Δ = 0.1) and the ADC
/// (`out_sto_round`, Δ = 24/510), each alone with everything else exact (inputs within the DAC
/// range ±1, identity weights, so y_j = DAC(x_j) or ADC(x_j) bit for bit). A value at code
/// k = v·Δ⁻¹ (the f32 product, as the converter forms it) with fractional part f = k − ⌊k⌋
/// becomes ⌊k⌋·Δ or ⌈k⌉·Δ and nothing else, the upper one with probability f (U − ½ is added
/// before rounding half to even: up iff U ≥ 1 − f). So over N = 4 096 vectors the count of
/// upper values is Binomial(N, f) (z-test at 4.5 SD, +1 for the 2⁻²⁴ resolution of U), i.e. the
/// mean is kΔ, unbiased; and the sample variance is Δ²·f(1 − f), its SE from the two-point
/// fourth moment Δ⁴f(1 − f)(1 − 3f(1 − f)). DAC codes 3.2, −4.7, 9.5, 5.7, 6 and −0.3
/// (f ≈ 0.2, 0.3, 0.5, 0.7, ~0 on the grid, 0.7) and 0; ADC codes of the same values 6.8,
/// −9.99, 20.19, 12.11, 12.75, −0.64 and 0.
#[test]
fn stochastic_rounding_is_unbiased_through_a_tile() {
    let values = [0.32f32, -0.47, 0.95, 0.57, 0.6, -0.03, 0.0];
    let n = values.len();
    let dac = IoConfig { inp_res: 0.05, inp_sto_round: true, ..transparent_io() };
    let adc = IoConfig { out_res: 1.0 / 510.0, out_bound: 12.0, out_sto_round: true, ..transparent_io() };
    for (name, cfg) in [("DAC", dac), ("ADC", adc)] {
        let conv = if name == "DAC" { Converter::dac(&cfg) } else { Converter::adc(&cfg) };
        let step = conv.step;
        let batch = 4096;
        let x = Array2::from_shape_fn((batch, n), |(_, j)| values[j]);
        let mut tile = AnalogTile::new(n, n, &ideal_with_forward(cfg), 71).unwrap();
        tile.set_weights(Array2::<f32>::eye(n).view()).unwrap();
        let y = tile.forward_new(x.view()).unwrap();
        for (j, &v) in values.iter().enumerate() {
            let k = f64::from(v * (1.0 / step));
            let (lo, hi) = (k.floor(), k.ceil());
            let f = k - lo;
            let (lo_v, hi_v) = (lo as f32 * step, hi as f32 * step);
            let col = y.column(j);
            assert!(col.iter().all(|&q| q == lo_v || q == hi_v), "{name} {v}: values other than {lo_v}, {hi_v}");
            let ups = col.iter().filter(|&&q| q == hi_v && hi != lo).count() as f64;
            let nf = batch as f64;
            let sd = (nf * f * (1.0 - f)).sqrt();
            assert!(
                (ups - nf * f).abs() <= 4.5 * sd + 1.0,
                "{name} {v}: {ups} rounded up, expected {} (sd {sd})",
                nf * f
            );
            let d = f64::from(step);
            let mean = col.iter().map(|&q| f64::from(q)).sum::<f64>() / nf;
            let var = col.iter().map(|&q| (f64::from(q) - mean).powi(2)).sum::<f64>() / (nf - 1.0);
            let pq = f * (1.0 - f);
            let (want, m4) = (d * d * pq, d.powi(4) * pq * (1.0 - 3.0 * pq));
            let se = ((m4 - want * want * (nf - 3.0) / (nf - 1.0)) / nf).max(0.0).sqrt();
            assert!(
                (var - want).abs() <= 4.5 * se + d * d / nf,
                "{name} {v}: variance {var}, expected {want} (se {se})"
            );
        }
    }
}

/// The noise-management scale α of every vector against its definition (aihwkit
/// `computeNoiseManagement`), computed here per row: None 1; AbsMax max_j|x_j|; Max max_j x_j;
/// both capped at nm_thres when it is > 0; Constant nm_thres (1 if 0); α ≤ 0 (an all-zero row, or
/// an all-negative one under Max) gives a zero output. α is seen through the 7-bit DAC, which
/// quantizes x/α and clips it to ±1, with identity weights and nothing else (ADC, noise and
/// bound management off): y_j = α·DAC(x_j/α). So y_j/α must lie on the DAC grid (within 10⁻⁴ of
/// a code, f32 rounding of ≤ 63-step codes is ≤ 10⁻⁵), |y_j| ≤ α, and |y_j − clip(x_j, ±α)| ≤ α·Δ/2
/// (rounding; beyond ±α the DAC clips), with a relative 10⁻⁵ for f32. A wrong α (uncapped, |x| for
/// x under Max, a constant of 1) breaks the grid or the clip test on the rows it changes: rows
/// of different magnitudes, one all-negative row, one zero row and rows whose positive maximum
/// (0.05) is far below their largest magnitude (0.9), over 70 vectors (two RNG chunks) of 37
/// values (masked tails).
#[test]
fn noise_management_scale_follows_its_definition() {
    use crossbar_sim::NoiseManagement::{AbsMax, Constant, Max, None};
    let (batch, n) = (70, 37);
    let mut x = common::uniform(batch, n, 1.0, 81);
    for (b, mut row) in x.rows_mut().into_iter().enumerate() {
        row *= [1.0f32, 0.5, 0.25, 0.125][b % 4];
    }
    x.row_mut(5).mapv_inplace(|v| -v.abs() - 0.01);
    x.row_mut(6).fill(0.0);
    for b in [7, 66] {
        x.row_mut(b).assign(&Array2::from_shape_fn((1, n), |(_, j)| if j == 3 { 0.05f32 } else { -0.9 }).row(0));
    }
    let max = |r: &[f32]| r.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let amax = |r: &[f32]| r.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    let cap = |a: f32, t: f32| if t > 0.0 { a.min(t) } else { a };
    let cases: [(crossbar_sim::NoiseManagement, f32); 7] =
        [(None, 0.0), (AbsMax, 0.0), (AbsMax, 0.3), (Max, 0.0), (Max, 0.3), (Constant, 0.0), (Constant, 0.5)];
    for (nm, thres) in cases {
        let reference = |r: &[f32]| match nm {
            None => 1.0,
            AbsMax => cap(amax(r), thres),
            Max => cap(max(r), thres),
            Constant => {
                if thres > 0.0 {
                    thres
                } else {
                    1.0
                }
            }
        };
        let cfg = IoConfig { noise_management: nm, nm_thres: thres, inp_res: 1.0 / 126.0, ..transparent_io() };
        let dstep = f64::from(cfg.inp_step());
        let mut tile = AnalogTile::new(n, n, &ideal_with_forward(cfg), 82).unwrap();
        tile.set_weights(Array2::<f32>::eye(n).view()).unwrap();
        let y = tile.forward_new(x.view()).unwrap();
        for (b, (xr, yr)) in x.outer_iter().zip(y.outer_iter()).enumerate() {
            let alpha = reference(xr.as_slice().unwrap());
            let what = format!("{nm:?} nm_thres {thres}, vector {b}, α {alpha}");
            if alpha <= 0.0 {
                assert!(yr.iter().all(|&v| v == 0.0), "{what}: {yr}");
                continue;
            }
            let a = f64::from(alpha);
            for (&xj, &yj) in xr.iter().zip(yr) {
                let (xj, yj) = (f64::from(xj), f64::from(yj));
                let k = yj / a / dstep;
                assert!((k - k.round()).abs() <= 1e-4, "{what}: y {yj} / α is off the DAC grid ({k})");
                assert!(yj.abs() <= a * (1.0 + 1e-5), "{what}: |y| = {yj} > α");
                let err = (yj - xj.clamp(-a, a)).abs();
                assert!(err <= a * dstep / 2.0 * (1.0 + 1e-5), "{what}: x {xj}, y {yj}: error {err} > αΔ/2");
            }
        }
    }
}
