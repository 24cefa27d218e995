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
//! stream derived from one per-call seed. The chunks run in parallel, in runs of consecutive
//! chunks that share one product call, and the result does not depend on the number of
//! threads.

use std::borrow::Cow;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::{Rng, RngCore};
use rayon::prelude::*;

use crate::io_config::{BoundManagement, IoConfig, NoiseManagement, WeightNoise};
use crate::linalg::{PackedRhs, sgemm, sgemm_packed};
use crate::normal::{NormalStream, standard_normal};
use crate::rng::{SimRng, stream};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Vectors per RNG chunk of an analog MVM batch.
pub const CHUNK: usize = 64;

/// At most this many input values in one run of chunks of an analog MVM (`analog_mvm`).
const RUN_INPUTS: usize = 32 * 1024;

/// A uniform mid-tread quantizer with clipping: q(v) = clip(Δ·round(v·Δ⁻¹), ±bound), the
/// rounding half-to-even, or stochastic (add U − ½ before rounding) when `stochastic` is set.
/// This is the DAC and the ADC of a tile.
///
/// Δ⁻¹ is the `f32` reciprocal of Δ, so the code k = v·Δ⁻¹ is a multiplication, not
/// aihwkit's division v/Δ (a vector division costs ~10× a multiplication): the two differ by at
/// most an ulp of k, which changes the code only for values within an ulp of a half-step tie.
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
        let mut k = v * (1.0 / self.step);
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

/// Δ·round(v·Δ⁻¹) with v·Δ⁻¹ first clamped to ±`k_max` (two steps beyond the bound, so that
/// [`round_small`] stays exact and nothing that clips changes, clip flag included): the vectorizing core of the
/// DAC and ADC fast paths.
#[inline(always)]
fn quantize_clamped(v: f32, g: Grid) -> f32 {
    round_small((v * g.inv_step).clamp(-g.k_max, g.k_max)) * g.step
}

/// Noise-management scale α of one vector (before any cap semantics of `Constant`).
#[inline(always)]
fn nm_scale<const AVX512: bool>(cfg: &IoConfig, x: &[f32]) -> f32 {
    match cfg.noise_management {
        NoiseManagement::None => 1.0,
        NoiseManagement::AbsMax => nm_cap(cfg, abs_max::<AVX512>(x)),
        NoiseManagement::Max => nm_cap(cfg, lane_max(x, |v| v, f32::NEG_INFINITY)),
        NoiseManagement::Constant => {
            if cfg.nm_thres > 0.0 {
                cfg.nm_thres
            } else {
                1.0
            }
        }
    }
}

/// The `AbsMax`/`Max` scale `a`, capped at `nm_thres` when that is set.
#[inline(always)]
fn nm_cap(cfg: &IoConfig, a: f32) -> f32 {
    if cfg.nm_thres > 0.0 { a.min(cfg.nm_thres) } else { a }
}

/// max(0, |x₀|, |x₁|, …), NaNs ignored.
#[inline(always)]
fn abs_max<const AVX512: bool>(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if AVX512 {
        // SAFETY: `AVX512` is true only inside `mvm_chunk_avx512`, which runs only on a CPU
        // with AVX-512F.
        #[allow(unsafe_code)]
        return unsafe { avx512::abs_max(x) };
    }
    lane_max(x, f32::abs, 0.0)
}

/// max(0, |x₀|, |x₁|, …) with NaNs ignored (as a fold with `f32::max`), on the widest vectors
/// the CPU has: for callers outside the MVM (the pulsed update's train scales).
pub(crate) fn abs_max_of(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        #[allow(unsafe_code)]
        return unsafe { avx512::abs_max(x) };
    }
    lane_max(x, f32::abs, 0.0)
}

/// The values of `r` as a slice: borrowed when `r` is contiguous, else copied.
pub(crate) fn contiguous(r: ArrayView1<'_, f32>) -> Cow<'_, [f32]> {
    r.to_slice().map_or_else(|| r.to_vec().into(), Cow::Borrowed)
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
    // Every chunk multiplies by the same matrix: pack it for the kernel once — unless the call
    // is a few one-hot vectors (the reads of a Tiki-Taka transfer), whose products are single
    // rows of `m`: packing all of `m` would cost more than the call.
    let packed = if one_hot_rows(cfg, x) { None } else { Some(PackedRhs::new(m)) };
    // The chunks go to the threads in runs of consecutive chunks, two runs per thread of as
    // equal lengths as can be: each run takes one product for all its vectors (a GEMM call
    // per chunk cost ~8 % of a 75×32 forward). A vector's product does not depend on the rows
    // around it, nor a chunk's generator on the run it is in, so the bits do not depend on the
    // number of threads.
    let chunks = x.nrows().div_ceil(CHUNK);
    if chunks == 0 {
        return 0;
    }
    // Runs of at most ~128 KiB of inputs, so that the DAC's output is still in cache for the
    // product (inference batches of 6 400 vectors per tile in one run each were 7 % slower).
    let longest = (RUN_INPUTS / (CHUNK * x.ncols().max(1))).max(1);
    let runs = (2 * rayon::current_num_threads()).max(chunks.div_ceil(longest)).min(chunks);
    let bounds: Vec<usize> = (0..=runs).map(|r| r * chunks / runs).collect();
    let mut xy_runs = Vec::with_capacity(runs);
    let (mut x_rest, mut y_rest) = (x, y);
    for w in bounds.windows(2) {
        let len = (w[1] * CHUNK).min(x.nrows()) - w[0] * CHUNK;
        let ((x_run, x_tail), (y_run, y_tail)) = (x_rest.split_at(Axis(0), len), y_rest.split_at(Axis(0), len));
        xy_runs.push((x_run, y_run));
        (x_rest, y_rest) = (x_tail, y_tail);
    }
    bounds
        .par_windows(2)
        .zip(xy_runs)
        .map(|(w, (x, y))| {
            let mut rngs: Vec<SimRng> = (w[0]..w[1]).map(|c| stream(call_seed, c as u64)).collect();
            mvm_chunk(Chunk { cfg, m, packed: packed.as_ref(), x, y, bm }, &mut rngs)
        })
        .sum()
}

/// Whether an MVM call is a few vectors with at most one nonzero element each and the DAC
/// keeps zeros at zero (no input noise), so that [`analog_mvm`] can take each product as one
/// row of `m` instead of packing it. Only calls of up to four vectors are checked.
fn one_hot_rows(cfg: &IoConfig, x: ArrayView2<'_, f32>) -> bool {
    cfg.inp_noise == 0.0 && x.nrows() <= 4 && x.rows().into_iter().all(|r| r.iter().filter(|&&a| a != 0.0).count() <= 1)
}

/// A run of chunks of an analog MVM: the product `y = x·m` of [`analog_mvm`] on consecutive
/// chunks of [`CHUNK`] vectors (the last one may be shorter), each with its own generator.
struct Chunk<'a, 'b> {
    cfg: &'a IoConfig,
    m: ArrayView2<'a, f32>,
    /// `m`, packed for the SGEMM kernel; `None` when every vector has at most one nonzero
    /// element and no input noise ([`one_hot_rows`]).
    packed: Option<&'a PackedRhs>,
    x: ArrayView2<'a, f32>,
    y: ArrayViewMut2<'b, f32>,
    /// Bound management on.
    bm: bool,
}

/// A run of chunks (`rngs[c]` the generator of chunk `c`): a batched first pass, then
/// per-vector bound-management repeats. Compiled for
/// AVX-512 and AVX2 besides the baseline target and picked at run time. On AVX-512 the
/// per-row loops of the common case (absolute-maximum noise management, deterministic DAC and
/// ADC) are hand-written with masked tails ([`avx512`]), since rows of 32 or 75 values leave
/// long scalar remainders in compiled loops; elsewhere they are plain loops the compiler
/// vectorizes. All variants give the same bits: they use only exact IEEE operations (no fused
/// multiply-adds), in the same order.
fn mvm_chunk(job: Chunk<'_, '_>, rngs: &mut [SimRng]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); the function is safe code.
            #[allow(unsafe_code)]
            return unsafe { mvm_chunk_avx512(job, rngs) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            #[allow(unsafe_code)]
            return unsafe { mvm_chunk_avx2(job, rngs) };
        }
    }
    mvm_chunk_body::<false>(job, rngs)
}

/// [`mvm_chunk_body`] compiled for AVX-512, with the hand-written row loops.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn mvm_chunk_avx512(job: Chunk<'_, '_>, rngs: &mut [SimRng]) -> u64 {
    mvm_chunk_body::<true>(job, rngs)
}

/// [`mvm_chunk_body`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mvm_chunk_avx2(job: Chunk<'_, '_>, rngs: &mut [SimRng]) -> u64 {
    mvm_chunk_body::<false>(job, rngs)
}

/// The quantizer constants of a converter's vectorizing fast path, or `None` where the
/// general path must run (stochastic rounding, no quantization, or a grid so fine that the
/// magic-number rounding would not be exact).
#[derive(Debug, Clone, Copy)]
struct Grid {
    step: f32,
    /// 1/step, rounded to `f32` (as in [`Converter::round`]).
    inv_step: f32,
    bound: f32,
    /// Two steps beyond the bound, in steps: [`quantize_clamped`]'s clamp. (One step beyond
    /// would be enough for the value, but on the finest grids accepted, 2²⁰–2²¹ steps to the
    /// bound, the bound plus one step rounds to within the 4-ulp clip tolerance, so a value
    /// far beyond the bound would not count as clipped; two steps always exceed it.)
    k_max: f32,
}

impl Grid {
    fn of(conv: &Converter) -> Option<Self> {
        (!conv.stochastic && conv.step > 0.0 && conv.bound / conv.step < 2_097_152.0).then(|| Grid {
            step: conv.step,
            inv_step: 1.0 / conv.step,
            bound: conv.bound,
            k_max: conv.bound / conv.step + 2.0,
        })
    }

    /// Whether a DAC on this grid keeps every input scaled by its own absolute maximum within
    /// the bound without its final clamp, so that the clamp may be left out.
    ///
    /// Such an input is v = x·s with |x| ≤ α and s = fl(1/α) = (1 + δ)/α, |δ| ≤ 2⁻²⁴ (for
    /// 2⁻¹²⁶ ≤ α ≤ 2¹²⁶, where 1/α is a normal float: `avx512::dac_rows` keeps the clamp for
    /// other α, whose inverse is infinite or subnormal), so
    /// |v| ≤ fl(α·s) ≤ 1 + 2⁻²³ (rounding is monotone, and the float after 1 is 1 + 2⁻²³).
    /// Every later step (·Δ⁻¹, rounding half to even, ·Δ) is monotone and odd, so
    /// |Δ·round(v·Δ⁻¹)| ≤ Δ·round((1 + 2⁻²³)·Δ⁻¹), which is checked here against the bound.
    /// (A NaN stays NaN either way; flushing subnormals to zero only shrinks values.) True
    /// for the default DAC (Δ = 1/63, bound 1: the top code is exactly 1); false on grids
    /// whose top code lies beyond the bound, e.g. Δ = 2/3 with bound 1.
    fn absmax_rows_stay_within(self) -> bool {
        round_half_even((1.0 + f32::EPSILON) * self.inv_step) * self.step <= self.bound
    }
}

/// The body of [`mvm_chunk`], inlined into each compiled variant. `AVX512` is true only in
/// [`mvm_chunk_avx512`], and selects the hand-written row loops.
///
/// Contract of every `<const AVX512: bool>` function here: `AVX512 = true` only where the CPU
/// has AVX-512F. They call AVX-512 code without checking; their only callers with `true` are
/// `mvm_chunk_avx512` (reached after `is_x86_feature_detected!`) and tests that check first.
#[inline(always)]
fn mvm_chunk_body<const AVX512: bool>(job: Chunk<'_, '_>, rngs: &mut [SimRng]) -> u64 {
    let Chunk { cfg, m, packed, x, mut y, bm } = job;
    let n = x.nrows();
    assert!(n <= rngs.len() * CHUNK, "a generator for every chunk of the run");
    let dac = Converter::dac(cfg);
    let adc = Converter::adc(cfg);
    // The fast paths' grids, once per run.
    let (dac_grid, adc_grid) = (if cfg.inp_noise == 0.0 { Grid::of(&dac) } else { None }, Grid::of(&adc));
    // Noise management for every vector first, then the DAC: the rows' maxima are
    // independent and overlap in the CPU, where one row's DAC would wait on its own maximum.
    // On AVX-512, with a row-major run, each phase is one call over all rows
    // (`avx512::*_rows`), so that its constants stay in registers.
    let cols = x.ncols();
    let wide_x = if AVX512 && cols > 0 { x.as_slice() } else { None };
    let mut scratch = SCRATCH.with(|s| s.take());
    let Scratch { alphas, v: v_buf, noise, failed } = &mut scratch;
    alphas.clear();
    alphas.resize(n, 0.0);
    let alphas = &mut alphas[..];
    let x_rows: Vec<Cow<'_, [f32]>>;
    match wide_x {
        #[cfg(target_arch = "x86_64")]
        Some(xs) if cfg.noise_management == NoiseManagement::AbsMax => {
            // SAFETY: as in `abs_max`.
            #[allow(unsafe_code)]
            unsafe {
                avx512::abs_max_rows(xs, cols, alphas)
            };
            alphas.iter_mut().for_each(|a| *a = nm_cap(cfg, *a));
            x_rows = Vec::new();
        }
        _ => {
            x_rows = x.outer_iter().map(contiguous).collect();
            // (A plain loop, not an iterator chain: closures are compiled outside the AVX-512
            // variant, and would call the row maximum instead of inlining it.)
            for (alpha, xs) in alphas.iter_mut().zip(&x_rows) {
                *alpha = nm_scale::<AVX512>(cfg, xs);
            }
        }
    }
    // (Usually every α is positive and finite: one branch-free scan, which vectorizes, skips
    // the loop below.)
    let all_regular = alphas.iter().fold(true, |ok, &a| ok & (a > 0.0) & (a < f32::INFINITY));
    if !all_regular {
        for (b, alpha) in alphas.iter_mut().enumerate() {
            if *alpha == f32::INFINITY {
                // An infinite input: the scaled vector is undefined, and every output of the
                // vector becomes NaN (as in aihwkit, where s = 1/α = 0 turns the infinite
                // element into NaN), never a silent zero.
                *alpha = f32::NAN;
            } else if alpha.is_nan() || *alpha <= 0.0 {
                // aihwkit: an all-zero vector gives a zero output unless there is input noise.
                // (The maximum skips NaN: a vector of zeros and NaNs must not pass for all-zero,
                // which would give a silent zero; its outputs become NaN.)
                *alpha = if x.row(b).iter().any(|v| v.is_nan()) {
                    f32::NAN
                } else if cfg.inp_noise > 0.0 {
                    1.0
                } else {
                    0.0
                };
            }
        }
    }
    // The DAC's output, in the thread's scratch buffer (every element is written below). A
    // run that work stealing brings to this thread while this one waits finds the buffers
    // taken, and allocates its own.
    if v_buf.len() < n * cols {
        v_buf.resize(n * cols, 0.0);
    }
    let mut v = ArrayViewMut2::from_shape((n, cols), &mut v_buf[..n * cols]).expect("n·cols elements");
    match (wide_x, dac_grid, v.as_slice_mut()) {
        #[cfg(target_arch = "x86_64")]
        (Some(xs), Some(g), Some(vs)) => {
            // Without a cap, α is each row's absolute maximum, and on most grids the DAC's
            // final clamp then changes nothing (`Grid::absmax_rows_stay_within`).
            let exact_absmax = cfg.noise_management == NoiseManagement::AbsMax && cfg.nm_thres <= 0.0;
            let clamp = !(exact_absmax && g.absmax_rows_stay_within());
            // SAFETY: as in `abs_max`.
            #[allow(unsafe_code)]
            unsafe {
                avx512::dac_rows(xs, cols, alphas, g, clamp, vs)
            };
        }
        _ => {
            v.fill(0.0);
            for (b, (&alpha, vr)) in alphas.iter().zip(v.outer_iter_mut()).enumerate() {
                if alpha > 0.0 {
                    let xs = x_rows.get(b).map_or_else(|| contiguous(x.row(b)), |r| Cow::Borrowed(r));
                    prepare_input::<AVX512>(cfg, &dac, dac_grid, &xs, 1.0 / alpha, vr, &mut rngs[b / CHUNK]);
                }
            }
        }
    }
    match packed {
        Some(packed) => sgemm_packed(1.0, v.view(), packed, 0.0, &mut y),
        None => {
            // At most one nonzero input per vector (the DAC maps 0 to 0 without input noise):
            // the product is that input times one row of `m`, exactly what the kernel's sum
            // gives, since every other term is a zero (`+ 0.0`: the kernel's sum starts at +0,
            // so a −0 product comes out +0). A NaN in the DAC's output (zeros times an infinite
            // 1/α, for an input too small to invert) makes the kernel's whole row NaN.
            for (vr, mut yr) in v.outer_iter().zip(y.outer_iter_mut()) {
                if vr.iter().any(|a| a.is_nan()) {
                    yr.fill(f32::NAN);
                    continue;
                }
                match vr.iter().position(|&a| a != 0.0) {
                    Some(k) => yr.iter_mut().zip(m.row(k)).for_each(|(o, &w)| *o = vr[k] * w + 0.0),
                    None => yr.fill(0.0),
                }
            }
        }
    }
    let mut passes = 0;
    // (Chunk iterators: slicing with `s![]` cost ~2 % of a 75×32 forward.)
    let chunks = x
        .axis_chunks_iter(Axis(0), CHUNK)
        .zip(v.axis_chunks_iter(Axis(0), CHUNK))
        .zip(y.axis_chunks_iter_mut(Axis(0), CHUNK))
        .zip(alphas.chunks(CHUNK));
    for ((((x, v), y), alphas), rng) in chunks.zip(rngs.iter_mut()) {
        let out = Outputs { cfg, m, x, v, alphas, y, dac: &dac, dac_grid, adc: &adc, adc_grid, bm };
        passes += finish_outputs::<AVX512>(out, rng, noise, failed);
    }
    SCRATCH.with(|s| s.replace(scratch));
    passes
}

/// One chunk's share of a run's first pass after the product, for [`finish_outputs`].
struct Outputs<'a, 'b> {
    cfg: &'a IoConfig,
    m: ArrayView2<'a, f32>,
    x: ArrayView2<'a, f32>,
    /// The DAC's output for the chunk's vectors.
    v: ArrayView2<'a, f32>,
    /// Noise-management scales (0: an all-zero vector; NaN: a vector with a NaN or an
    /// infinity).
    alphas: &'a [f32],
    /// The product of the chunk's vectors, turned into the outputs.
    y: ArrayViewMut2<'b, f32>,
    /// The converters and their fast-path grids ([`Grid::of`]).
    dac: &'a Converter,
    dac_grid: Option<Grid>,
    adc: &'a Converter,
    adc_grid: Option<Grid>,
    bm: bool,
}

/// Output noise, ADC and scaling of one chunk's products, then its bound-management repeats,
/// with the chunk's generator `rng`; returns the chunk's analog passes. `noise` and `failed`
/// are scratch buffers.
#[inline(always)]
fn finish_outputs<const AVX512: bool>(
    out: Outputs<'_, '_>,
    rng: &mut SimRng,
    noise: &mut Vec<f32>,
    failed: &mut Vec<bool>,
) -> u64 {
    let Outputs { cfg, m, x, v, alphas, mut y, dac, dac_grid, adc, adc_grid, bm } = out;
    let n = x.nrows();
    let mut passes = n as u64;
    let mut redo = Vec::new();
    // The output-noise stream's seed is always drawn (so that later draws of `rng` do not
    // depend on whether there is noise); the stream itself is seeded on first use.
    let mut normals = LazyNormals { seed: rng.next_u64(), stream: None };
    // Without weight noise every output has the same noise standard deviation: the draws of
    // all the chunk's live vectors are taken at once (the same sequence as one row at a time).
    let out_len = y.ncols();
    // (With `AdditiveConstant` weight noise, even of size 0, σ is computed per vector: a NaN
    // input makes it NaN, and that vector draws no noise, as it always has.)
    let uniform_sigma = matches!(cfg.w_noise_type, WeightNoise::None);
    let mut noise_len = 0;
    if uniform_sigma && cfg.out_noise > 0.0 {
        noise_len = alphas.iter().filter(|&&a| a != 0.0).count() * out_len;
        // (Grown, never cleared: the draws overwrite it.)
        if noise.len() < noise_len {
            noise.resize(noise_len, 0.0);
        }
        normals.fill(&mut noise[..noise_len]);
    }
    let noise = &noise[..noise_len];
    let mut row_noise = Vec::new();
    let wide_y = if AVX512 && uniform_sigma && out_len > 0 { adc_grid.zip(y.as_slice_mut()) } else { None };
    match wide_y {
        #[cfg(target_arch = "x86_64")]
        Some((g, ys)) => {
            failed.clear();
            failed.resize(n, false);
            let noise = (cfg.out_noise > 0.0).then_some((cfg.out_noise, noise));
            let opts =
                avx512::RowsOut { cols: out_len, out_scale: cfg.out_scale, test_negative: cfg.bm_test_negative_bound };
            // SAFETY: as in `abs_max`.
            #[allow(unsafe_code)]
            unsafe {
                avx512::adc_rows(ys, alphas, noise, g, opts, failed)
            };
            if bm && failed.contains(&true) {
                redo.extend(failed.iter().enumerate().filter(|&(_, &f)| f).map(|(b, _)| b));
            }
        }
        _ => {
            let mut next_noise = 0;
            for (b, (&alpha, mut yr)) in alphas.iter().zip(y.outer_iter_mut()).enumerate() {
                if alpha == 0.0 {
                    yr.fill(0.0);
                    continue;
                }
                let vb = v.row(b);
                let (sigma, z) = if uniform_sigma {
                    let z = noise.get(next_noise..next_noise + out_len).unwrap_or(&[]);
                    next_noise += z.len();
                    (cfg.out_noise, z)
                } else {
                    let sigma = output_sigma(cfg, vb.as_slice().unwrap_or(&[]));
                    draw_noise(sigma, out_len, &mut row_noise, &mut normals);
                    (sigma, &row_noise[..])
                };
                let scale = alpha * cfg.out_scale;
                let failed = finalize_output::<AVX512>(cfg, adc, adc_grid, yr.view_mut(), Some((sigma, z)), scale, rng);
                if bm && failed {
                    redo.push(b);
                }
            }
        }
    }
    // Bound management: repeat the failed vectors one by one with halved inputs.
    let mut vb = if redo.is_empty() { Vec::new() } else { vec![0.0f32; x.ncols()] };
    for b in redo {
        let xs = x.row(b).to_vec();
        let mut rho = 1.0f64;
        // Each pass's row is finished and scaled by `finalize_output`, the first pass's too:
        // a row that cannot be retried keeps its last pass.
        while cfg.bm_may_retry(rho) {
            rho *= 2.0;
            passes += 1;
            let s = 1.0 / (f64::from(alphas[b]) * rho) as f32;
            prepare_input::<AVX512>(cfg, dac, dac_grid, &xs, s, ArrayViewMut1::from(&mut vb[..]), rng);
            let mut yr = y.row_mut(b);
            for (o, col) in yr.iter_mut().zip(m.axis_iter(Axis(1))) {
                *o = col.iter().zip(&vb).map(|(a, b)| a * b).sum();
            }
            let sigma = output_sigma(cfg, &vb);
            draw_noise(sigma, out_len, &mut row_noise, &mut normals);
            let scale = (f64::from(alphas[b]) * rho) as f32 * cfg.out_scale;
            if !finalize_output::<AVX512>(cfg, adc, adc_grid, yr, Some((sigma, &row_noise)), scale, rng) {
                break;
            }
        }
    }
    passes
}

/// A [`NormalStream`] seeded only when the first draw is asked for (seeding its eight lanes
/// costs as much as ~300 draws, and noise-free configurations never draw).
struct LazyNormals {
    seed: u64,
    stream: Option<NormalStream>,
}

impl LazyNormals {
    fn fill(&mut self, out: &mut [f32]) {
        if !out.is_empty() {
            self.stream.get_or_insert_with(|| NormalStream::new(self.seed)).fill(out);
        }
    }
}

/// A thread's buffers for [`mvm_chunk_body`], kept between calls (allocating and zeroing them
/// per chunk cost a tenth of a small tile's MVM).
#[derive(Default)]
struct Scratch {
    alphas: Vec<f32>,
    v: Vec<f32>,
    noise: Vec<f32>,
    failed: Vec<bool>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}
/// The standard deviation of one output's noise: output-referred weight noise and output
/// noise are independent Gaussians per element, so their sum is one Gaussian with the combined
/// standard deviation. `v` is the vector the array was driven with.
#[inline(always)]
fn output_sigma(cfg: &IoConfig, v: &[f32]) -> f32 {
    let w_sigma = match cfg.w_noise_type {
        WeightNoise::None => 0.0,
        WeightNoise::AdditiveConstant => cfg.w_noise * v.iter().map(|a| a * a).sum::<f32>().sqrt(),
    };
    w_sigma.hypot(cfg.out_noise)
}

/// `len` standard normals from `normals` into `buf` (left empty when `sigma` is 0).
#[inline(always)]
fn draw_noise(sigma: f32, len: usize, buf: &mut Vec<f32>, normals: &mut LazyNormals) {
    buf.clear();
    if sigma > 0.0 {
        buf.resize(len, 0.0);
        normals.fill(buf);
    }
}

/// v = DAC(s·x) + input noise. `grid` is the DAC's fast-path grid ([`Grid::of`]; `None` with
/// input noise or where the general path must run).
#[inline(always)]
fn prepare_input<const AVX512: bool>(
    cfg: &IoConfig,
    dac: &Converter,
    grid: Option<Grid>,
    x: &[f32],
    s: f32,
    mut v: ArrayViewMut1<'_, f32>,
    rng: &mut SimRng,
) {
    // Common case (deterministic rounding, no input noise, a grid of < 2²¹ steps up to the
    // bound): a branch-free loop that vectorizes. k is first clamped to two steps beyond the
    // bound, which keeps the magic-number rounding exact and changes no result (anything
    // beyond the bound clips to it either way), so it equals `Converter::convert` bit for bit.
    if let Some(g) = grid
        && let Some(vs) = v.as_slice_mut()
    {
        #[cfg(target_arch = "x86_64")]
        if AVX512 {
            // SAFETY: as in `abs_max`.
            #[allow(unsafe_code)]
            unsafe {
                avx512::dac_row(x, s, g, vs)
            };
            return;
        }
        for (vo, &xi) in vs.iter_mut().zip(x) {
            *vo = quantize_clamped(xi * s, g).clamp(-g.bound, g.bound);
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

/// Output noise (σ·z with `noise = Some((σ, z))`, `z` the standard normals; `None` or σ = 0:
/// no noise), ADC and the digital rescale by `scale` on one analog output vector; true if any output clipped in a direction
/// that bound management tests. Stochastic rounding draws from `rng`. `grid` is the ADC's
/// fast-path grid ([`Grid::of`]); the fast path also needs contiguous outputs.
#[inline(always)]
fn finalize_output<const AVX512: bool>(
    cfg: &IoConfig,
    adc: &Converter,
    grid: Option<Grid>,
    mut y: ArrayViewMut1<'_, f32>,
    noise: Option<(f32, &[f32])>,
    scale: f32,
    rng: &mut SimRng,
) -> bool {
    let (sigma, z) = noise.unwrap_or((0.0, &[]));
    let noisy = sigma > 0.0;
    debug_assert!(!noisy || z.len() == y.len());
    // Common case: the branch-free, vectorizing form of the loop below (same argument and
    // test as the DAC fast path in `prepare_input`).
    if let Some(g) = grid
        && let Some(ys) = y.as_slice_mut()
    {
        let test_negative = cfg.bm_test_negative_bound;
        #[cfg(target_arch = "x86_64")]
        if AVX512 {
            // SAFETY: as in `abs_max`.
            #[allow(unsafe_code)]
            return unsafe {
                avx512::adc_row(ys, if noisy { Some((sigma, z)) } else { None }, g, test_negative, scale)
            };
        }
        let tol = g.bound * (1.0 + 4.0 * f32::EPSILON);
        let mut clip = false;
        let mut finish = |yo: &mut f32, a: f32| {
            let r = quantize_clamped(a, g);
            clip |= r > tol || (test_negative && r < -tol);
            *yo = r.clamp(-g.bound, g.bound) * scale;
        };
        if noisy {
            for (yo, &zi) in ys.iter_mut().zip(z) {
                finish(yo, *yo + sigma * zi);
            }
        } else {
            for yo in ys.iter_mut() {
                finish(yo, *yo);
            }
        }
        return clip;
    }
    let mut failed = false;
    for (i, yo) in y.iter_mut().enumerate() {
        let a = if noisy { *yo + sigma * z[i] } else { *yo };
        let (q, clipped) = adc.convert(a, rng);
        failed |= clipped && (q > 0.0 || cfg.bm_test_negative_bound);
        *yo = q * scale;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use ndarray::Array2;

    /// Whether this CPU runs the hand-written AVX-512 loops (the tests compare them with the
    /// portable ones there, and say so where they cannot).
    fn has_avx512() -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return true;
        }
        eprintln!("no AVX-512F on this CPU: only the portable loops are tested");
        false
    }

    /// `prepare_input` in both forms, or only the portable one where the CPU lacks AVX-512.
    fn dac_both(cfg: &IoConfig, dac: &Converter, x: &[f32], s: f32) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        for wide in [false, true] {
            if wide && !has_avx512() {
                continue;
            }
            let mut v = Array2::<f32>::zeros((1, x.len()));
            if wide {
                prepare_input::<true>(cfg, dac, Grid::of(dac), x, s, v.row_mut(0), &mut seeded(1));
            } else {
                prepare_input::<false>(cfg, dac, Grid::of(dac), x, s, v.row_mut(0), &mut seeded(1));
            }
            out.push(v.into_raw_vec_and_offset().0);
        }
        out
    }

    /// The vectorized DAC loops of `prepare_input` (portable and AVX-512) equal
    /// `Converter::convert` bit for bit: grid points, exact half steps (ties to even), values
    /// beyond the bound, huge values, infinities and NaN, for the default DAC and a coarse,
    /// wide one, on rows of every length from 1 to 40 (masked tails).
    #[test]
    fn fast_dac_path_equals_convert() {
        let mut values: Vec<f32> = (-3000..=3000).map(|i| i as f32 * 0.5 / 126.0 * 0.999_9).collect();
        values.extend((-300..=300).map(|i| (i as f32 + 0.5) / 63.0)); // half steps of the default grid
        values.extend([1e30, -1e30, 5e6, -5e6, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, -1.0]);
        for cfg in [IoConfig::default(), IoConfig { inp_res: 0.25, inp_bound: 3.0, ..IoConfig::default() }] {
            let dac = Converter::dac(&cfg);
            for s in [1.0f32, 0.37, 8.0] {
                for got in dac_both(&cfg, &dac, &values, s) {
                    for (&x, &got) in values.iter().zip(&got) {
                        let (want, _) = dac.convert(x * s, &mut seeded(1));
                        assert_eq!(got.to_bits(), want.to_bits(), "x {x}, s {s}: {got} vs {want}");
                    }
                }
            }
            for len in 1..=40 {
                let x = &values[values.len() - 10 - len..values.len() - 10];
                for got in dac_both(&cfg, &dac, x, 0.37) {
                    let want: Vec<f32> = x.iter().map(|&xi| dac.convert(xi * 0.37, &mut seeded(1)).0).collect();
                    assert_eq!(got, want, "row of {len}");
                }
            }
            for got in dac_both(&cfg, &dac, &[f32::NAN, 0.5, f32::NAN], 1.0) {
                assert!(got[0].is_nan() && got[2].is_nan() && got[1] == dac.convert(0.5, &mut seeded(1)).0);
            }
        }
    }

    /// Noise management's maximum of |x| in both forms equals a plain fold: NaNs ignored,
    /// infinities kept, all-zero and all-NaN rows give 0, on rows of every length 0 to 40.
    #[test]
    fn abs_max_equals_fold() {
        let pool: Vec<f32> =
            (0..120).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).chain([f32::NAN, -7.5, f32::NAN]).collect();
        let mut rows: Vec<Vec<f32>> = (0..=40).map(|len| pool[pool.len() - len..].to_vec()).collect();
        rows.extend([vec![0.0; 19], vec![f32::NAN; 17], vec![1.0, f32::NEG_INFINITY, 2.0], vec![-0.0; 3]]);
        for x in rows {
            let want = x.iter().filter(|v| !v.is_nan()).fold(0.0f32, |m, &v| if v.abs() > m { v.abs() } else { m });
            assert_eq!(abs_max::<false>(&x).to_bits(), want.to_bits(), "{x:?}");
            if has_avx512() {
                assert_eq!(abs_max::<true>(&x).to_bits(), want.to_bits(), "{x:?}");
            }
        }
    }

    /// The row maxima of noise management equal a scalar fold (max of |x_j| over the non-NaN
    /// values, from 0), for 0 to 9 rows of several lengths, NaN, infinite and all-zero rows
    /// included: the portable row maximum everywhere, and on AVX-512 also the chunk-wide
    /// maximum (four rows per cross-row reduction, then single rows).
    #[test]
    fn abs_max_rows_equals_row_by_row() {
        let wide = has_avx512();
        for cols in [1, 3, 16, 32, 75] {
            for rows in 0..=9 {
                let x: Vec<f32> = (0..rows * cols)
                    .map(|i| match i % 23 {
                        5 => f32::NAN,
                        11 if rows > 4 => f32::NEG_INFINITY,
                        _ => ((i * 37 % 101) as f32 - 50.0) * 0.013 * (1 + i / cols) as f32,
                    })
                    .collect();
                let mut x = x;
                if rows > 2 {
                    x[2 * cols..3 * cols].fill(0.0);
                }
                let want: Vec<f32> = x
                    .chunks(cols)
                    .map(|r| {
                        r.iter().filter(|v| !v.is_nan()).fold(0.0f32, |m, &v| if v.abs() > m { v.abs() } else { m })
                    })
                    .collect();
                for (r, w) in want.iter().enumerate() {
                    let got = abs_max::<false>(&x[r * cols..(r + 1) * cols]);
                    assert_eq!(got.to_bits(), w.to_bits(), "portable: cols {cols}, rows {rows}, row {r}");
                }
                #[cfg(target_arch = "x86_64")]
                if wide {
                    let mut got = vec![-1.0f32; rows];
                    // SAFETY: the CPU has AVX-512F (checked above).
                    #[allow(unsafe_code)]
                    unsafe {
                        avx512::abs_max_rows(&x, cols, &mut got)
                    };
                    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g.to_bits(), w.to_bits(), "chunk-wide: cols {cols}, rows {rows}, row {r}");
                    }
                }
            }
        }
    }

    /// The vectorized ADC loops of `finalize_output` (contiguous outputs, portable and
    /// AVX-512) equal the general loop (strided outputs) bit for bit, clip flag included, with
    /// and without noise, for both bound-management sign conventions and several output
    /// scales, on long rows and on rows of every length from 1 to 40.
    #[test]
    fn fast_adc_path_equals_general_path() {
        // Only negative values reach the bound (12), so the flag must equal `test_negative`.
        let y0: Vec<f32> = (-4000..=2000).map(|i| i as f32 * 0.005_01).chain([-1e9, 11.9, -11.99]).collect();
        let mut z = vec![0.0f32; y0.len()];
        NormalStream::new(4).fill(&mut z);
        // The default 9-bit ADC, and the finest grid the fast path accepts (~2.08·10⁶ steps to
        // the bound, where one step past the bound lies within the clip tolerance).
        let grids = [IoConfig::default().out_res, 2.4e-7];
        for ((noise, test_negative), out_res) in
            [(0.0, false), (0.06, false), (0.06, true), (0.0, true)].into_iter().flat_map(|c| grids.map(|g| (c, g)))
        {
            let cfg =
                IoConfig { out_noise: noise, bm_test_negative_bound: test_negative, out_res, ..IoConfig::default() };
            assert!(Grid::of(&Converter::adc(&cfg)).is_some(), "out_res {out_res}: the fast path must run");
            let adc = Converter::adc(&cfg);
            for (scale, out_scale) in [(1.0f32, 1.0f32), (0.1, 1.0), (1.0, 0.37)] {
                let ys: Vec<f32> = y0.iter().map(|v| v * scale).collect();
                let zs = if noise > 0.0 { &z[..] } else { &[][..] };
                // The general loop runs on a strided (non-contiguous) output.
                let general = |ys: &[f32], zs: &[f32]| {
                    let mut strided = Array2::<f32>::zeros((ys.len(), 2));
                    strided.column_mut(0).assign(&ndarray::ArrayView1::from(ys));
                    let f = finalize_output::<false>(
                        &cfg,
                        &adc,
                        Grid::of(&adc),
                        strided.column_mut(0),
                        Some((noise, zs)),
                        out_scale,
                        &mut seeded(3),
                    );
                    (f, strided.column(0).to_vec())
                };
                let (f2, want_all) = general(&ys, zs);
                assert_eq!(f2, test_negative, "clip flag, noise {noise}, scale {scale}");
                for wide in [false, true] {
                    if wide && !has_avx512() {
                        continue;
                    }
                    let run = |ys: &[f32], zs: &[f32]| {
                        let mut fast = Array2::from_shape_vec((1, ys.len()), ys.to_vec()).unwrap();
                        let mut rng = seeded(3);
                        let finalize = if wide { finalize_output::<true> } else { finalize_output::<false> };
                        let f = finalize(
                            &cfg,
                            &adc,
                            Grid::of(&adc),
                            fast.row_mut(0),
                            Some((noise, zs)),
                            out_scale,
                            &mut rng,
                        );
                        (f, fast.into_raw_vec_and_offset().0)
                    };
                    let (f1, fast) = run(&ys, zs);
                    assert_eq!(f1, test_negative, "clip flag, noise {noise}, scale {scale}, wide {wide}");
                    for (a, b) in fast.iter().zip(&want_all) {
                        assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}, wide {wide}");
                    }
                    // Short rows ending at the clipping values: tails of every length.
                    for len in 1..=40 {
                        let (lo, hi) = (ys.len() - len, ys.len());
                        let zr = if noise > 0.0 { &z[lo..hi] } else { &[][..] };
                        assert_eq!(run(&ys[lo..hi], zr), general(&ys[lo..hi], zr), "row of {len}, wide {wide}");
                    }
                }
            }
        }
    }

    /// A scalar reference of one chunk on a noise-free configuration (no output, input or
    /// weight noise; deterministic converters), from the definitions in `docs/io.md`: per
    /// vector, α (None 1; AbsMax max|x_j|; Max max x_j; both capped at nm_thres > 0; Constant
    /// nm_thres or 1); α ≤ 0 or not finite gives a zero output. Then for ρ = 1, 2, 4, …: v_j =
    /// DAC(x_j·s), s = 1/(α·ρ) (in f32 as the tile forms it), y_k = Σ_j v_j·m_jk, code c_k =
    /// round(y_k/Δ_out); the pass fails if some c_k·Δ_out lies beyond +bound by more than 4 ulp
    /// (or beyond −bound, with `bm_test_negative_bound`), and is repeated at 2ρ while ρ ≤
    /// max_bm_factor and ρ ≤ max_bm_res/Δ_in; the last pass's clip(c_k·Δ_out, ±bound)·α·ρ·out_scale
    /// is the output. The DAC is `Converter::convert`, the scalar definition (the fast loops are
    /// tested against it above). The product is exact (f64): the tile's f32 product is within
    /// γ_n·Σ_j|v_j·m_jk| of it (n = inputs, γ_n = n·u/(1 − n·u), u = 2⁻²⁴; any summation order, with
    /// or without fused multiply-adds), and its code y·Δ⁻¹ adds ≤ 3u·|c|: so where the exact code
    /// lies within that distance of a rounding tie, either neighbouring code is accepted. Returns
    /// per vector the accepted output values (one or two per output) and the total passes; it
    /// panics where a tie decides whether a pass fails (the data must avoid that).
    fn reference_chunk(cfg: &IoConfig, m: &Array2<f32>, x: &Array2<f32>) -> (Vec<Vec<Vec<f32>>>, u64) {
        let dac = Converter::dac(cfg);
        let (step, bound) = (cfg.out_step(), cfg.out_bound);
        let inv_step = f64::from(1.0 / step);
        let tol = bound * (1.0 + 4.0 * f32::EPSILON);
        let u = 2f64.powi(-24);
        let n_in = m.nrows() as f64;
        let gamma = n_in * u / (1.0 - n_in * u);
        let mut passes = 0u64;
        let mut out = Vec::new();
        for xr in x.outer_iter() {
            let xs = xr.to_vec();
            let cap = |a: f32| if cfg.nm_thres > 0.0 { a.min(cfg.nm_thres) } else { a };
            let alpha = match cfg.noise_management {
                NoiseManagement::None => 1.0,
                NoiseManagement::AbsMax => cap(xs.iter().fold(0.0f32, |a, &v| if v.abs() > a { v.abs() } else { a })),
                NoiseManagement::Max => cap(xs.iter().fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a })),
                NoiseManagement::Constant => {
                    if cfg.nm_thres > 0.0 {
                        cfg.nm_thres
                    } else {
                        1.0
                    }
                }
            };
            passes += 1;
            if alpha == f32::INFINITY {
                out.push(vec![vec![f32::NAN]; m.ncols()]);
                continue;
            }
            if alpha.is_nan() || alpha <= 0.0 {
                out.push(vec![vec![0.0]; m.ncols()]);
                continue;
            }
            let mut rho = 1.0f64;
            loop {
                let s = if rho == 1.0 { 1.0 / alpha } else { 1.0 / (f64::from(alpha) * rho) as f32 };
                let v: Vec<f64> = xs.iter().map(|&xj| f64::from(dac.convert(xj * s, &mut seeded(0)).0)).collect();
                let scale = (f64::from(alpha) * rho) as f32 * cfg.out_scale;
                let mut row = Vec::new();
                let mut fails = Vec::new();
                for col in m.columns() {
                    let (y, mag) = col.iter().zip(&v).fold((0.0f64, 0.0f64), |(y, a), (&mj, vj)| {
                        (y + f64::from(mj) * vj, a + (f64::from(mj) * vj).abs())
                    });
                    let k = y * inv_step;
                    let delta = gamma * mag * inv_step + 3.0 * u * k.abs();
                    let codes =
                        if (k - k.floor() - 0.5).abs() <= delta { vec![k.floor(), k.ceil()] } else { vec![k.round()] };
                    let mut vals = Vec::new();
                    let mut f = Vec::new();
                    for c in codes {
                        // (+0 for a code of 0, as `round_half_even` gives, not −0.)
                        let r = (c + 0.0) as f32 * step;
                        f.push(r > tol || (cfg.bm_test_negative_bound && r < -tol));
                        vals.push(r.clamp(-bound, bound) * scale);
                    }
                    fails.push(f);
                    row.push(vals);
                }
                let sure = fails.iter().any(|f| f.iter().all(|&b| b));
                let maybe = fails.iter().any(|f| f.iter().any(|&b| b));
                assert_eq!(sure, maybe, "the reference cannot decide a pass at ρ = {rho}: an output code is at a tie");
                let may_retry =
                    rho <= f64::from(cfg.max_bm_factor) && rho <= f64::from(cfg.max_bm_res) / f64::from(cfg.inp_step());
                if !(sure && cfg.bound_management == BoundManagement::Iterative && may_retry) {
                    out.push(row);
                    break;
                }
                rho *= 2.0;
                passes += 1;
            }
        }
        (out, passes)
    }

    /// A few one-hot vectors skip packing `m`: each product is one row of `m`. Same bits as
    /// the packed kernel (NaN for NaN), with noise, quantization, bound management (a column
    /// far beyond the output bound), zero and −0 weights, an input too small to invert, a
    /// transposed `m` view and stochastic DAC rounding; calls with a second nonzero element
    /// per row, more than four vectors or input noise keep the kernel.
    #[test]
    fn one_hot_calls_skip_packing_with_the_same_bits() {
        let (k, o) = (75, 32);
        let mut rng = seeded(8);
        let mut w = Array2::from_shape_simple_fn((o, k), || rng.random::<f32>() - 0.5);
        w.column_mut(3).fill(40.0);
        // Zero weights (a product of −0 from a negative input), and a tiny input whose 1/α
        // overflows (vector 2: NaN outputs on both paths).
        w.column_mut(10).iter_mut().step_by(2).for_each(|v| *v = 0.0);
        w.column_mut(74).iter_mut().step_by(3).for_each(|v| *v = -0.0);
        let m = w.t();
        let packed = PackedRhs::new(m);
        let mut x = Array2::<f32>::zeros((4, k));
        x[[0, 3]] = 1.0;
        x[[1, 10]] = -0.7;
        x[[2, 0]] = 1e-40;
        x[[3, 74]] = 0.3;
        for cfg in [
            IoConfig::default(),
            IoConfig { inp_sto_round: true, out_sto_round: true, ..IoConfig::default() },
            IoConfig {
                noise_management: NoiseManagement::None,
                bound_management: BoundManagement::None,
                ..IoConfig::default()
            },
            // (No output noise or ADC: the sign of a zero output survives.)
            IoConfig { out_noise: 0.0, out_res: 0.0, ..IoConfig::default() },
        ] {
            assert!(one_hot_rows(&cfg, x.view()));
            let bm = cfg.bound_management == BoundManagement::Iterative;
            let run = |p: Option<&PackedRhs>| {
                let mut y = Array2::<f32>::from_elem((4, o), -7.0);
                let passes =
                    mvm_chunk(Chunk { cfg: &cfg, m, packed: p, x: x.view(), y: y.view_mut(), bm }, &mut [seeded(9)]);
                (y, passes)
            };
            let (a, b) = (run(Some(&packed)), run(None));
            assert_eq!(a.1, b.1, "passes");
            for (u, v) in a.0.iter().zip(&b.0) {
                assert!(u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()), "{u:?} vs {v:?}, {cfg:?}");
            }
        }
        let mut two = x.clone();
        two[[0, 5]] = 0.1;
        assert!(!one_hot_rows(&IoConfig::default(), two.view()));
        assert!(!one_hot_rows(&IoConfig::default(), Array2::<f32>::zeros((5, k)).view()));
        assert!(!one_hot_rows(&IoConfig { inp_noise: 0.01, ..IoConfig::default() }, x.view()));
    }

    /// Non-finite inputs, on the portable and the AVX-512 paths: a NaN element makes every
    /// output of its vector NaN under every noise management, also alone among zeros; an infinite element does so where
    /// it sets the scale α (absolute maximum without a cap, and +∞ under `Max`), and elsewhere
    /// (a cap, `Constant`, `None`, −∞ under `Max`) saturates the DAC like any value far beyond
    /// its bound: the same bits as 10³⁰ in its place. The other vectors are never touched.
    #[test]
    fn non_finite_inputs_give_nan_or_saturate() {
        let paths: &[bool] = if has_avx512() { &[false, true] } else { &[false] };
        let (n, k, o) = (6, 75, 32);
        let mut rng = seeded(4);
        let finite = Array2::from_shape_simple_fn((n, k), || rng.random::<f32>() - 0.5);
        let m = Array2::from_shape_simple_fn((k, o), || rng.random::<f32>() - 0.5);
        let packed = PackedRhs::new(m.view());
        let quiet = IoConfig { out_noise: 0.0, ..IoConfig::default() };
        let nm = |noise_management, nm_thres| IoConfig { noise_management, nm_thres, ..IoConfig::default() };
        // (config, whether +∞ and −∞ set α)
        let configs = [
            (IoConfig::default(), true, true),
            (quiet.clone(), true, true),
            (IoConfig { bound_management: BoundManagement::None, ..IoConfig::default() }, true, true),
            (nm(NoiseManagement::Max, 0.0), true, false),
            (nm(NoiseManagement::AbsMax, 0.3), false, false),
            (nm(NoiseManagement::Max, 0.3), false, false),
            (nm(NoiseManagement::Constant, 0.5), false, false),
            (nm(NoiseManagement::None, 0.0), false, false),
        ];
        for (i, (cfg, pos_sets, neg_sets)) in configs.iter().enumerate() {
            let bm = cfg.bound_management == BoundManagement::Iterative;
            let run = |x: &Array2<f32>, wide: bool| {
                let mut y = Array2::<f32>::from_elem((n, o), -7.0);
                let job = Chunk { cfg, m: m.view(), packed: Some(&packed), x: x.view(), y: y.view_mut(), bm };
                if wide {
                    mvm_chunk_body::<true>(job, &mut [seeded(5)]);
                } else {
                    mvm_chunk_body::<false>(job, &mut [seeded(5)]);
                }
                y
            };
            for &wide in paths {
                let base = run(&finite, wide);
                for (v, sets) in [(f32::NAN, true), (f32::INFINITY, *pos_sets), (f32::NEG_INFINITY, *neg_sets)] {
                    let mut x = finite.clone();
                    x[[2, 40]] = v;
                    let y = run(&x, wide);
                    let case = format!("config {i}, wide {wide}, {v}");
                    for r in [0, 1, 3, 4, 5] {
                        assert_eq!(y.row(r), base.row(r), "{case}: row {r} changed");
                    }
                    if v.is_nan() {
                        // Alone in a vector of zeros too: the maximum skips it, but the vector
                        // is not all-zero.
                        let mut lone = finite.clone();
                        lone.row_mut(4).fill(0.0);
                        lone[[4, 7]] = v;
                        let y = run(&lone, wide);
                        assert!(y.row(4).iter().all(|o| o.is_nan()), "{case}: lone NaN gave {}", y.row(4));
                    }
                    if sets {
                        assert!(y.row(2).iter().all(|o| o.is_nan()), "{case}: {}", y.row(2));
                    } else {
                        x[[2, 40]] = 1e30 * v.signum();
                        let huge = run(&x, wide);
                        assert!(y.row(2).iter().all(|o| o.is_finite()), "{case}: {}", y.row(2));
                        assert!(
                            y.row(2).iter().zip(huge.row(2)).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{case}: {} against {}",
                            y.row(2),
                            huge.row(2)
                        );
                    }
                }
            }
        }
    }

    /// A whole chunk through the portable path, and on AVX-512 through the chunk-wide row loops
    /// too, with all-zero rows, an all-negative row, rows that clip and are redone by bound
    /// management, and the configurations that switch between the chunk-wide and the per-row
    /// paths (noise-management kind and cap, input noise, weight noise, no output noise, both
    /// negative-bound conventions, with and without bound management). The two paths give the
    /// same bits and pass counts; on the
    /// noise-free configurations both equal the scalar reference ([`reference_chunk`]): the same
    /// pass counts, and every output one of the reference's accepted values, bit for bit.
    /// The default DAC grid lets the clamp go for rows scaled by their absolute maximum (its
    /// top code is exactly the bound); a grid whose top code lies beyond the bound does not.
    #[test]
    fn dac_clamp_is_left_out_only_where_it_changes_nothing() {
        let grid = |cfg: &IoConfig| Grid::of(&Converter::dac(cfg)).expect("a fast-path grid");
        let base = IoConfig::default();
        assert!(grid(&base).absmax_rows_stay_within());
        assert!(!grid(&IoConfig { inp_res: 1.0 / 3.0, ..base.clone() }).absmax_rows_stay_within());
        // On the default grid, every x·fl(1/α) with |x| ≤ α rounds to at most the bound, over
        // a million α (the bound reached exactly at x = ±α).
        let g = grid(&base);
        let mut rng = seeded(3);
        for _ in 0..1_000_000 {
            let alpha: f32 = rng.random_range(1e-6..1e6);
            let s = 1.0 / alpha;
            for x in [alpha, -alpha, alpha * rng.random::<f32>()] {
                let k = x * s * g.inv_step;
                let r = round_half_even(k) * g.step;
                assert!(r.abs() <= g.bound, "α {alpha}, x {x}: {r}");
            }
        }
    }

    /// A call's outputs and passes are those of its chunks run one at a time, each with its
    /// own generator and its own product (the path before runs of chunks), on 1, 2 and 3
    /// threads (the 11 chunks in two, four and six runs), with the rounding, noise and bound
    /// management that draw from the chunks' generators.
    #[test]
    fn runs_of_chunks_equal_chunks_one_at_a_time() {
        let (n, k, o) = (10 * CHUNK + 17, 75, 32);
        let mut rng = seeded(21);
        let mut x = Array2::from_shape_simple_fn((n, k), || rng.random::<f32>() - 0.5);
        let m = Array2::from_shape_simple_fn((k, o), || rng.random::<f32>() - 0.5);
        for b in [5, 70, 300] {
            x.row_mut(b).fill(0.0);
        }
        // Vectors that clip (bound management repeats them) in several chunks.
        for b in [10, 200, 201, 640, 650] {
            x.row_mut(b).assign(&m.column(b % o).mapv(|w| w.signum()));
        }
        let base = IoConfig::default();
        let configs = [
            base.clone(),
            IoConfig { inp_sto_round: true, out_sto_round: true, ..base.clone() },
            IoConfig { inp_noise: 0.01, ..base.clone() },
            IoConfig { w_noise_type: WeightNoise::AdditiveConstant, w_noise: 0.02, ..base.clone() },
        ];
        let seed = 77;
        for (i, cfg) in configs.iter().enumerate() {
            let packed = PackedRhs::new(m.view());
            let mut want = Array2::<f32>::zeros((n, o));
            let mut want_passes = 0;
            for (c, (xc, yc)) in
                x.axis_chunks_iter(Axis(0), CHUNK).zip(want.axis_chunks_iter_mut(Axis(0), CHUNK)).enumerate()
            {
                let job = Chunk { cfg, m: m.view(), packed: Some(&packed), x: xc, y: yc, bm: true };
                want_passes += mvm_chunk(job, &mut [stream(seed, c as u64)]);
            }
            assert!(want_passes > n as u64, "config {i}: bound management never ran");
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
                let mut y = Array2::<f32>::from_elem((n, o), f32::NAN);
                let passes = pool.install(|| analog_mvm(cfg, m.view(), x.view(), y.view_mut(), true, seed));
                assert_eq!(passes, want_passes, "config {i}, {threads} threads: passes");
                assert!(
                    y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "config {i}, {threads} threads: outputs differ"
                );
            }
        }
    }

    #[test]
    fn chunk_paths_agree() {
        let wide = has_avx512();
        let (n, k, o) = (64, 75, 32);
        let mut rng = seeded(9);
        let mut x = Array2::from_shape_simple_fn((n, k), || rng.random::<f32>() - 0.5);
        x.row_mut(3).fill(0.0);
        x.row_mut(7).fill(-0.25);
        // Rows scaled by an α whose inverse is infinite (subnormal α) or subnormal (α > 2¹²⁶):
        // the DAC keeps its clamp for them.
        x.row_mut(20).iter_mut().enumerate().for_each(|(j, v)| *v = if j % 2 == 0 { 1e-40 } else { -1e-40 });
        x.row_mut(21).iter_mut().enumerate().for_each(|(j, v)| *v = if j % 3 == 0 { 2e38 } else { -1e38 });
        let m = Array2::from_shape_simple_fn((k, o), || rng.random::<f32>() - 0.5);
        // Rows 10–13 drive every output of some column far beyond the ADC bound.
        for b in 10..14 {
            x.row_mut(b).assign(&m.column(b - 10).mapv(|w| w.signum()));
        }
        let base = IoConfig::default();
        let quiet = IoConfig { out_noise: 0.0, ..base.clone() };
        let configs = [
            (base.clone(), false),
            (quiet.clone(), true),
            (IoConfig { bm_test_negative_bound: false, ..base.clone() }, false),
            (IoConfig { bm_test_negative_bound: false, ..quiet.clone() }, true),
            (IoConfig { noise_management: NoiseManagement::Max, ..base.clone() }, false),
            (IoConfig { noise_management: NoiseManagement::Max, ..quiet.clone() }, true),
            (IoConfig { nm_thres: 0.3, ..quiet.clone() }, true),
            (IoConfig { noise_management: NoiseManagement::Constant, nm_thres: 0.5, ..quiet.clone() }, true),
            (IoConfig { noise_management: NoiseManagement::None, ..quiet.clone() }, true),
            (IoConfig { noise_management: NoiseManagement::Max, nm_thres: 0.3, ..quiet.clone() }, true),
            (IoConfig { bound_management: BoundManagement::None, ..quiet.clone() }, true),
            (
                IoConfig { bound_management: BoundManagement::None, bm_test_negative_bound: false, ..quiet.clone() },
                true,
            ),
            (IoConfig { inp_noise: 0.01, ..base.clone() }, false),
            (IoConfig { w_noise_type: WeightNoise::AdditiveConstant, w_noise: 0.02, ..base.clone() }, false),
            (IoConfig { nm_thres: 0.3, ..base.clone() }, false),
            // A DAC grid whose top code, 2·Δ = 4/3, lies beyond the bound: the AVX-512 path
            // must keep the clamp that the default grid lets it leave out. (Bound management
            // off: it would not retry on a grid this coarse, `max_bm_res`.)
            (IoConfig { inp_res: 1.0 / 3.0, bound_management: BoundManagement::None, ..quiet.clone() }, true),
        ];
        let packed = PackedRhs::new(m.view());
        for (i, (cfg, noise_free)) in configs.iter().enumerate() {
            let bm = cfg.bound_management == BoundManagement::Iterative;
            let run = |wide: bool| {
                let mut y = Array2::<f32>::from_elem((n, o), f32::NAN);
                let job = Chunk { cfg, m: m.view(), packed: Some(&packed), x: x.view(), y: y.view_mut(), bm };
                let passes = if wide {
                    mvm_chunk_body::<true>(job, &mut [seeded(5)])
                } else {
                    mvm_chunk_body::<false>(job, &mut [seeded(5)])
                };
                (passes, y)
            };
            let (p1, y1) = run(false);
            assert!(p1 > n as u64 || !bm, "config {i}: bound management never ran");
            // Without bound management rows 10–13 (x = ±1, so α = 1) keep outputs clipped at the bound.
            assert!(bm || y1.iter().any(|&v| v.abs() == cfg.out_bound), "config {i}: nothing clipped");
            assert!(y1.row(3).iter().all(|&v| v == 0.0) || cfg.inp_noise > 0.0, "config {i}: zero row");
            let mut results = vec![("portable", p1, y1)];
            if wide {
                let (p2, y2) = run(true);
                assert_eq!(results[0].1, p2, "config {i}: passes");
                assert!(
                    results[0].2.iter().zip(&y2).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "config {i}: outputs differ"
                );
                results.push(("AVX-512", p2, y2));
            }
            if !noise_free {
                continue;
            }
            let (want, want_passes) = reference_chunk(cfg, &m, &x);
            for (path, passes, y) in &results {
                assert_eq!(*passes, want_passes, "config {i}, {path}: passes against the reference");
                for ((b, c), &got) in y.indexed_iter() {
                    let ok = &want[b][c];
                    assert!(
                        ok.iter().any(|w| w.to_bits() == got.to_bits()),
                        "config {i}, {path}: output [{b},{c}] = {got}, reference {ok:?}"
                    );
                }
            }
        }
    }
}
