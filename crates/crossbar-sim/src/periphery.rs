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
use rand::{Rng, RngCore};
use rayon::prelude::*;

use crate::io_config::{BoundManagement, IoConfig, NoiseManagement, WeightNoise};
use crate::linalg::sgemm;
use crate::normal::{NormalStream, standard_normal};
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
    if k.abs() < 4_194_304.0 { round_small(k) } else { k.round_ties_even() }
}

/// The magic-number rounding of [`round_half_even`], valid for |k| < 2²²: branch-free, so
/// loops over it vectorize.
#[inline(always)]
fn round_small(k: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³
    (k + MAGIC) - MAGIC
}

/// Δ·round(v/Δ) with v/Δ first clamped to ±`k_max` (one step beyond the bound, so that
/// [`round_small`] stays exact and nothing that clips changes): the vectorizing core of the
/// DAC and ADC fast paths.
#[inline(always)]
fn quantize_clamped(v: f32, step: f32, k_max: f32) -> f32 {
    round_small((v / step).clamp(-k_max, k_max)) * step
}

/// Noise-management scale α of one vector (before any cap semantics of `Constant`).
#[inline(always)]
fn nm_scale(cfg: &IoConfig, x: &[f32]) -> f32 {
    let cap = |a: f32| if cfg.nm_thres > 0.0 { a.min(cfg.nm_thres) } else { a };
    match cfg.noise_management {
        NoiseManagement::None => 1.0,
        NoiseManagement::AbsMax => cap(lane_max(x, f32::abs, 0.0)),
        NoiseManagement::Max => cap(lane_max(x, |v| v, f32::NEG_INFINITY)),
        NoiseManagement::Constant => {
            if cfg.nm_thres > 0.0 {
                cfg.nm_thres
            } else {
                1.0
            }
        }
    }
}

/// max(init, f(x₀), f(x₁), …) with `f32::max` (NaNs ignored), in eight independent lanes so
/// that the loop vectorizes; max is exact, so the order does not change the result.
#[inline(always)]
fn lane_max(x: &[f32], f: impl Fn(f32) -> f32, init: f32) -> f32 {
    let mut acc = [init; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(f(v));
        }
    }
    let m = chunks.remainder().iter().fold(init, |m, &v| m.max(f(v)));
    acc.iter().fold(m, |m, &a| m.max(a))
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
            mvm_chunk(Chunk { cfg, m, x: xc, y: yc, bm }, &mut rng)
        })
        .collect::<Vec<u64>>()
        .into_iter()
        .sum()
}

/// One chunk of an analog MVM: the product `y = x·m` of [`analog_mvm`] on up to [`CHUNK`]
/// vectors.
struct Chunk<'a, 'b> {
    cfg: &'a IoConfig,
    m: ArrayView2<'a, f32>,
    x: ArrayView2<'a, f32>,
    y: ArrayViewMut2<'b, f32>,
    /// Bound management on.
    bm: bool,
}

/// One chunk: a batched first pass, then per-vector bound-management repeats. Compiled for
/// AVX-512 and AVX2 besides the baseline target and picked at run time, so that the per-element
/// loops (noise management, DAC, noise, ADC) run on the widest vectors the CPU has. All variants
/// give the same bits: the loops use only exact IEEE operations (no fused multiply-adds).
fn mvm_chunk(job: Chunk<'_, '_>, rng: &mut SimRng) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); the function is safe code.
            #[allow(unsafe_code)]
            return unsafe { mvm_chunk_avx512(job, rng) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            #[allow(unsafe_code)]
            return unsafe { mvm_chunk_avx2(job, rng) };
        }
    }
    mvm_chunk_body(job, rng)
}

/// [`mvm_chunk_body`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn mvm_chunk_avx512(job: Chunk<'_, '_>, rng: &mut SimRng) -> u64 {
    mvm_chunk_body(job, rng)
}

/// [`mvm_chunk_body`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mvm_chunk_avx2(job: Chunk<'_, '_>, rng: &mut SimRng) -> u64 {
    mvm_chunk_body(job, rng)
}

/// The body of [`mvm_chunk`], inlined into each compiled variant.
#[inline(always)]
fn mvm_chunk_body(job: Chunk<'_, '_>, rng: &mut SimRng) -> u64 {
    let Chunk { cfg, m, x, mut y, bm } = job;
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
    let mut noise = Vec::new();
    let mut normals = NormalStream::new(rng.next_u64());
    for (b, (&alpha, mut yr)) in alphas.iter().zip(y.outer_iter_mut()).enumerate() {
        if alpha == 0.0 {
            yr.fill(0.0);
            continue;
        }
        let vb = v.row(b);
        let failed =
            finalize_output(cfg, &adc, vb.as_slice().unwrap_or(&[]), yr.view_mut(), &mut noise, &mut normals, rng);
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
            if !finalize_output(cfg, &adc, &vb, yr, &mut noise, &mut normals, rng) {
                break;
            }
        }
        scale_row(y.row_mut(b), (f64::from(alphas[b]) * rho) as f32 * cfg.out_scale);
    }
    passes
}

#[inline(always)]
fn scale_row(mut y: ArrayViewMut1<'_, f32>, s: f32) {
    y.mapv_inplace(|v| v * s);
}

/// v = DAC(s·x) + input noise.
#[inline(always)]
fn prepare_input(cfg: &IoConfig, dac: &Converter, x: &[f32], s: f32, mut v: ArrayViewMut1<'_, f32>, rng: &mut SimRng) {
    // Common case (deterministic rounding, no input noise, a grid of < 2²¹ steps up to the
    // bound): a branch-free loop that vectorizes. k is first clamped to one step beyond the
    // bound, which keeps the magic-number rounding exact and changes no result (anything
    // beyond the bound clips to it either way), so it equals `Converter::convert` bit for bit.
    if cfg.inp_noise == 0.0
        && !dac.stochastic
        && dac.step > 0.0
        && dac.bound / dac.step < 2_097_152.0
        && let Some(vs) = v.as_slice_mut()
    {
        let (step, bound) = (dac.step, dac.bound);
        let k_max = bound / step + 1.0;
        for (vo, &xi) in vs.iter_mut().zip(x) {
            *vo = quantize_clamped(xi * s, step, k_max).clamp(-bound, bound);
        }
        return;
    }
    for (vo, &xi) in v.iter_mut().zip(x) {
        let (mut q, _) = dac.convert(xi * s, rng);
        if cfg.inp_noise > 0.0 {
            q += cfg.inp_noise * standard_normal(rng);
        }
        *vo = q;
    }
}

/// Weight noise, output noise and ADC on one analog output vector; true if any output clipped
/// in a direction that bound management tests. The noise comes from `normals` (into the scratch
/// buffer `noise`), stochastic rounding from `rng`.
#[inline(always)]
fn finalize_output(
    cfg: &IoConfig,
    adc: &Converter,
    v: &[f32],
    mut y: ArrayViewMut1<'_, f32>,
    noise: &mut Vec<f32>,
    normals: &mut NormalStream,
    rng: &mut SimRng,
) -> bool {
    let w_sigma = match cfg.w_noise_type {
        WeightNoise::None => 0.0,
        WeightNoise::AdditiveConstant => cfg.w_noise * v.iter().map(|a| a * a).sum::<f32>().sqrt(),
    };
    // Output-referred weight noise and output noise are independent Gaussians per element:
    // their sum is one Gaussian with the combined standard deviation, drawn in bulk.
    let sigma = w_sigma.hypot(cfg.out_noise);
    noise.clear();
    if sigma > 0.0 {
        noise.resize(y.len(), 0.0);
        normals.fill(noise);
    }
    let mut failed = false;
    // Common case: the branch-free, vectorizing form of the loop below (same argument and
    // test as the DAC fast path in `prepare_input`).
    if !adc.stochastic
        && adc.step > 0.0
        && adc.bound / adc.step < 2_097_152.0
        && let Some(ys) = y.as_slice_mut()
    {
        let (step, bound) = (adc.step, adc.bound);
        let (k_max, tol) = (bound / step + 1.0, bound * (1.0 + 4.0 * f32::EPSILON));
        let test_negative = cfg.bm_test_negative_bound;
        let mut clip = false;
        let mut finish = |yo: &mut f32, a: f32| {
            let r = quantize_clamped(a, step, k_max);
            clip |= r > tol || (test_negative && r < -tol);
            *yo = r.clamp(-bound, bound);
        };
        if sigma > 0.0 {
            for (yo, &z) in ys.iter_mut().zip(noise.iter()) {
                finish(yo, *yo + sigma * z);
            }
        } else {
            for yo in ys.iter_mut() {
                finish(yo, *yo);
            }
        }
        return clip;
    }
    for (i, yo) in y.iter_mut().enumerate() {
        let a = if sigma > 0.0 { *yo + sigma * noise[i] } else { *yo };
        let (q, clipped) = adc.convert(a, rng);
        failed |= clipped && (q > 0.0 || cfg.bm_test_negative_bound);
        *yo = q;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    /// The vectorized DAC loop of `prepare_input` equals `Converter::convert` bit for bit:
    /// grid points, exact half steps (ties to even), values beyond the bound, huge values,
    /// infinities and NaN, for the default DAC and a coarse, wide one.
    #[test]
    fn fast_dac_path_equals_convert() {
        let mut values: Vec<f32> = (-3000..=3000).map(|i| i as f32 * 0.5 / 126.0 * 0.999_9).collect();
        values.extend((-300..=300).map(|i| (i as f32 + 0.5) / 63.0)); // half steps of the default grid
        values.extend([1e30, -1e30, 5e6, -5e6, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, -1.0]);
        for cfg in [IoConfig::default(), IoConfig { inp_res: 0.25, inp_bound: 3.0, ..IoConfig::default() }] {
            let dac = Converter::dac(&cfg);
            for s in [1.0f32, 0.37, 8.0] {
                let mut v = Array2::<f32>::zeros((1, values.len()));
                prepare_input(&cfg, &dac, &values, s, v.row_mut(0), &mut seeded(1));
                for (&x, &got) in values.iter().zip(v.iter()) {
                    let (want, _) = dac.convert(x * s, &mut seeded(1));
                    assert_eq!(got.to_bits(), want.to_bits(), "x {x}, s {s}: {got} vs {want}");
                }
            }
            let mut v = Array2::<f32>::zeros((1, 1));
            prepare_input(&cfg, &dac, &[f32::NAN], 1.0, v.row_mut(0), &mut seeded(1));
            assert!(v[[0, 0]].is_nan());
        }
    }

    /// The vectorized ADC loop of `finalize_output` (contiguous outputs) equals the general
    /// loop (strided outputs) bit for bit, clip flag included, with and without noise and for
    /// both bound-management sign conventions.
    #[test]
    fn fast_adc_path_equals_general_path() {
        // Only negative values reach the bound (12), so the flag must equal `test_negative`.
        let y0: Vec<f32> = (-4000..=2000).map(|i| i as f32 * 0.005_01).chain([-1e9, 11.9, -11.99]).collect();
        for (noise, test_negative) in [(0.0, false), (0.06, false), (0.06, true), (0.0, true)] {
            for scale in [1.0f32, 0.1] {
                let cfg = IoConfig { out_noise: noise, bm_test_negative_bound: test_negative, ..IoConfig::default() };
                let adc = Converter::adc(&cfg);
                let ys: Vec<f32> = y0.iter().map(|v| v * scale).collect();
                let mut fast = Array2::from_shape_vec((1, ys.len()), ys.clone()).unwrap();
                let mut strided = Array2::<f32>::zeros((ys.len(), 2));
                strided.column_mut(0).assign(&ndarray::ArrayView1::from(&ys));
                let (mut b1, mut b2) = (Vec::new(), Vec::new());
                let (mut n1, mut n2) = (NormalStream::new(4), NormalStream::new(4));
                let f1 = finalize_output(&cfg, &adc, &[], fast.row_mut(0), &mut b1, &mut n1, &mut seeded(3));
                let f2 = finalize_output(&cfg, &adc, &[], strided.column_mut(0), &mut b2, &mut n2, &mut seeded(3));
                assert_eq!((f1, f2), (test_negative, test_negative), "clip flag, noise {noise}, scale {scale}");
                for (a, b) in fast.iter().zip(strided.column(0)) {
                    assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
                }
            }
        }
    }
}
