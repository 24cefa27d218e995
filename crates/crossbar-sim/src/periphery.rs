//! Converters and the analog MVM with its non-idealities, in aihwkit's order of operations
//! (`docs/io.md`):
//!
//! 1. noise management: α from the raw vector;
//! 2. for reduction ρ = 1, 2, 4, … (bound management): v = x/(α·ρ), DAC (round, then clip),
//!    plus input noise;
//! 3. analog product W·v, output-referred weight noise, additive output noise;
//! 4. ADC (round, then clip); a clipped output fails the pass and the loop goes on;
//! 5. digital rescale y·α·ρ·out_scale.
//!
//! A batch is split into fixed chunks of [`CHUNK`] vectors, each drawing from its own RNG
//! stream derived from one per-call seed: the chunks run in parallel and the result does not
//! depend on the number of threads.

use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::io_config::{BoundManagement, IoConfig, NoiseManagement, WeightNoise};
use crate::linalg::sgemm;
use crate::rng::{SimRng, stream};

/// Vectors per RNG chunk of an analog MVM batch.
pub const CHUNK: usize = 64;

/// A uniform mid-tread quantizer with clipping: q(v) = clip(Δ·round(v/Δ), ±bound), the
/// rounding half-to-even, or stochastic (add U − ½ before rounding) when `stochastic` is set.
/// This is the DAC and the ADC of a tile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Converter {
    /// Quantization step Δ (0: no quantization).
    pub step: f32,
    /// Clipping bound (infinite: no clipping).
    pub bound: f32,
    /// Stochastic rounding.
    pub stochastic: bool,
}

impl Converter {
    /// The DAC of `cfg`.
    pub fn dac(cfg: &IoConfig) -> Self {
        Self { step: cfg.inp_step(), bound: cfg.inp_bound, stochastic: cfg.inp_sto_round }
    }

    /// The ADC of `cfg`.
    pub fn adc(cfg: &IoConfig) -> Self {
        let bound = if cfg.out_bound > 0.0 { cfg.out_bound } else { f32::INFINITY };
        Self { step: cfg.out_step(), bound, stochastic: cfg.out_sto_round }
    }

    /// Rounds `v` to the grid (no clipping).
    #[inline]
    pub fn round(&self, v: f32, rng: &mut SimRng) -> f32 {
        if self.step <= 0.0 {
            return v;
        }
        let mut k = v / self.step;
        if self.stochastic {
            k += rng.random::<f32>() - 0.5;
        }
        round_half_even(k) * self.step
    }

    /// Round, then clip. Returns the value and whether it was clipped. A value that rounds
    /// onto the bound within float rounding of the grid (4 ulp) is the top code, not a clip.
    #[inline]
    pub fn convert(&self, v: f32, rng: &mut SimRng) -> (f32, bool) {
        let q = self.round(v, rng);
        let tol = self.bound * (1.0 + 4.0 * f32::EPSILON);
        if q > self.bound {
            (self.bound, q > tol)
        } else if q < -self.bound {
            (-self.bound, q < -tol)
        } else {
            (q, false)
        }
    }
}

/// Round half to even without a libm call: adding and subtracting 1.5·2²³ rounds to an integer
/// in the default (nearest-even) rounding mode, exactly for |k| < 2²²; larger values are already
/// integers or take the library path.
#[inline]
pub fn round_half_even(k: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³
    if k.abs() < 4_194_304.0 { (k + MAGIC) - MAGIC } else { k.round_ties_even() }
}

/// Noise-management scale α of one vector (before any cap semantics of `Constant`).
fn nm_scale(cfg: &IoConfig, x: &[f32]) -> f32 {
    let cap = |a: f32| if cfg.nm_thres > 0.0 { a.min(cfg.nm_thres) } else { a };
    match cfg.noise_management {
        NoiseManagement::None => 1.0,
        NoiseManagement::AbsMax => cap(x.iter().fold(0.0f32, |m, v| m.max(v.abs()))),
        NoiseManagement::Max => cap(x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))),
        NoiseManagement::Constant => {
            if cfg.nm_thres > 0.0 {
                cfg.nm_thres
            } else {
                1.0
            }
        }
    }
}

/// Runs one analog MVM direction on a batch: `y[b] = W·x[b]` where the product is given as
/// `y = x · m` with `m` of shape `[in, out]` (`m = Wᵀ` forward, `m = W` backward).
///
/// Returns the number of analog passes (≥ one per vector; bound-management repeats add more).
pub(crate) fn analog_mvm(
    cfg: &IoConfig,
    m: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    mut y: ArrayViewMut2<'_, f32>,
    allow_bm: bool,
    call_seed: u64,
) -> u64 {
    if cfg.is_perfect {
        sgemm(cfg.out_scale, x, m, 0.0, &mut y);
        return x.nrows() as u64;
    }
    let bm = allow_bm && cfg.bound_management == BoundManagement::Iterative;
    let x_chunks: Vec<_> = x.axis_chunks_iter(Axis(0), CHUNK).collect();
    let y_chunks: Vec<_> = y.axis_chunks_iter_mut(Axis(0), CHUNK).collect();
    x_chunks
        .into_par_iter()
        .zip(y_chunks)
        .enumerate()
        .map(|(c, (xc, yc))| {
            let mut rng = stream(call_seed, c as u64);
            mvm_chunk(cfg, m, xc, yc, bm, &mut rng)
        })
        .collect::<Vec<u64>>()
        .into_iter()
        .sum()
}

/// One chunk: a batched first pass, then per-vector bound-management repeats.
fn mvm_chunk(
    cfg: &IoConfig,
    m: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    mut y: ArrayViewMut2<'_, f32>,
    bm: bool,
    rng: &mut SimRng,
) -> u64 {
    let n = x.nrows();
    let dac = Converter::dac(cfg);
    let adc = Converter::adc(cfg);
    let mut alphas = vec![0.0f32; n];
    let mut v = Array2::<f32>::zeros(x.raw_dim());
    for (b, (xr, vr)) in x.outer_iter().zip(v.outer_iter_mut()).enumerate() {
        let xs = xr.to_slice().map(std::borrow::Cow::Borrowed).unwrap_or_else(|| xr.to_vec().into());
        let mut alpha = nm_scale(cfg, &xs);
        if alpha <= 0.0 || !alpha.is_finite() {
            // aihwkit: an all-zero vector gives a zero output unless there is input noise
            alpha = if cfg.inp_noise > 0.0 { 1.0 } else { 0.0 };
        }
        alphas[b] = alpha;
        if alpha > 0.0 {
            prepare_input(cfg, &dac, &xs, 1.0 / alpha, vr, rng);
        }
    }
    sgemm(1.0, v.view(), m, 0.0, &mut y);
    let mut passes = n as u64;
    let mut redo = Vec::new();
    for (b, (&alpha, mut yr)) in alphas.iter().zip(y.outer_iter_mut()).enumerate() {
        if alpha == 0.0 {
            yr.fill(0.0);
            continue;
        }
        let failed = finalize_output(cfg, &adc, v.row(b).as_slice().unwrap_or(&[]), yr.view_mut(), rng);
        if bm && failed {
            redo.push(b);
        } else {
            scale_row(yr, alpha * cfg.out_scale);
        }
    }
    // Bound management: repeat the failed vectors one by one with halved inputs.
    let mut vb = vec![0.0f32; x.ncols()];
    for b in redo {
        let xs = x.row(b).to_vec();
        let mut rho = 1.0f64;
        loop {
            if !cfg.bm_may_retry(rho) {
                break;
            }
            rho *= 2.0;
            passes += 1;
            let s = 1.0 / (f64::from(alphas[b]) * rho) as f32;
            prepare_input(cfg, &dac, &xs, s, ArrayViewMut1::from(&mut vb[..]), rng);
            let mut yr = y.row_mut(b);
            for (o, col) in yr.iter_mut().zip(m.axis_iter(Axis(1))) {
                *o = col.iter().zip(&vb).map(|(a, b)| a * b).sum();
            }
            if !finalize_output(cfg, &adc, &vb, yr, rng) {
                break;
            }
        }
        scale_row(y.row_mut(b), (f64::from(alphas[b]) * rho) as f32 * cfg.out_scale);
    }
    passes
}

fn scale_row(mut y: ArrayViewMut1<'_, f32>, s: f32) {
    y.mapv_inplace(|v| v * s);
}

/// v = DAC(s·x) + input noise.
fn prepare_input(cfg: &IoConfig, dac: &Converter, x: &[f32], s: f32, mut v: ArrayViewMut1<'_, f32>, rng: &mut SimRng) {
    for (vo, &xi) in v.iter_mut().zip(x) {
        let (mut q, _) = dac.convert(xi * s, rng);
        if cfg.inp_noise > 0.0 {
            q += cfg.inp_noise * rng.sample::<f32, _>(StandardNormal);
        }
        *vo = q;
    }
}

/// Weight noise, output noise and ADC on one analog output vector; true if any output clipped
/// in a direction that bound management tests.
fn finalize_output(
    cfg: &IoConfig,
    adc: &Converter,
    v: &[f32],
    mut y: ArrayViewMut1<'_, f32>,
    rng: &mut SimRng,
) -> bool {
    let w_sigma = match cfg.w_noise_type {
        WeightNoise::None => 0.0,
        WeightNoise::AdditiveConstant => cfg.w_noise * v.iter().map(|a| a * a).sum::<f32>().sqrt(),
    };
    let mut failed = false;
    for yo in y.iter_mut() {
        let mut a = *yo;
        if w_sigma > 0.0 {
            a += w_sigma * rng.sample::<f32, _>(StandardNormal);
        }
        if cfg.out_noise > 0.0 {
            a += cfg.out_noise * rng.sample::<f32, _>(StandardNormal);
        }
        let (q, clipped) = adc.convert(a, rng);
        failed |= clipped && (q > 0.0 || cfg.bm_test_negative_bound);
        a = q;
        *yo = a;
    }
    failed
}
