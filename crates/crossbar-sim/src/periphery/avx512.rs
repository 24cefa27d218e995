//! AVX-512 forms of the periphery's per-row loops: sixteen lanes with a masked tail, so that
//! the short rows of small tiles (32 or 75 values) run without scalar remainders.
//!
//! Each function equals its portable loop in the parent module bit for bit: the same exact
//! IEEE operations in the same order (no fused multiply-adds), and `max`/`min` with the
//! operand order that gives `f32::clamp`'s and `f32::max`'s NaN behaviour (`vmaxps`/`vminps`
//! return their second operand when either is NaN). The tests in the parent module compare
//! both forms on grids, ties, out-of-range values, infinities and NaN.

use std::arch::x86_64::{
    __m512, __mmask16, _CMP_GT_OQ, _CMP_LT_OQ, _mm512_abs_ps, _mm512_add_ps, _mm512_cmp_ps_mask, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_permute_ps, _mm512_reduce_max_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_storeu_ps,
};

use std::arch::x86_64::{_MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT, _mm512_roundscale_ps};

use super::Grid;

/// Lanes of one vector.
const W: usize = 16;

/// The lanes `i..min(i + 16, len)` of a row of `len` values.
#[inline(always)]
fn mask(len: usize, i: usize) -> __mmask16 {
    let n = (len - i).min(W);
    ((1u32 << n) - 1) as __mmask16
}

/// Loads the lanes of `m` from `x[i..]` (zeros elsewhere).
#[inline]
#[target_feature(enable = "avx512f")]
fn load(x: &[f32], i: usize, m: __mmask16) -> __m512 {
    debug_assert!(i + (m.count_ones() as usize) <= x.len());
    // SAFETY: `m` covers only lanes `i..min(i + 16, x.len())` (see `mask`), and masked-off
    // lanes are not read (AVX-512 masked loads do not fault on them).
    #[allow(unsafe_code)]
    unsafe {
        _mm512_maskz_loadu_ps(m, x.as_ptr().add(i))
    }
}

/// Stores the lanes of `m` of `v` to `y[i..]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(y: &mut [f32], i: usize, m: __mmask16, v: __m512) {
    debug_assert!(i + (m.count_ones() as usize) <= y.len());
    // SAFETY: as for `load`: only lanes inside `y` are written.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_mask_storeu_ps(y.as_mut_ptr().add(i), m, v)
    }
}

/// `f32::clamp(x, lo, hi)` lane-wise (a NaN stays NaN).
#[inline]
#[target_feature(enable = "avx512f")]
fn clamp(x: __m512, lo: __m512, hi: __m512) -> __m512 {
    _mm512_min_ps(hi, _mm512_max_ps(lo, x))
}

/// A [`Grid`]'s constants in vectors.
#[derive(Clone, Copy)]
struct Consts {
    step: __m512,
    inv_step: __m512,
    lo: __m512,
    hi: __m512,
}

impl Consts {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn of(g: Grid) -> Self {
        Self {
            step: _mm512_set1_ps(g.step),
            inv_step: _mm512_set1_ps(g.inv_step),
            lo: _mm512_set1_ps(-g.bound),
            hi: _mm512_set1_ps(g.bound),
        }
    }

    /// The parent's `quantize_clamped` lane-wise, Δ·round(clamp(a·Δ⁻¹, ±k_max)), then
    /// clamped to ±bound.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn quantize(&self, a: __m512) -> (__m512, __m512) {
        // `vrndscaleps` rounds half to even exactly for every value, so the clamp that keeps
        // the magic-number rounding exact is not needed: a code beyond ±k_max (two steps past
        // the bound) gives an r beyond the bound by more than the clip tolerance either way,
        // which clips to it and fails the same test. Adding +0
        // turns the −0 of a small negative k into the +0 that the magic number gives.
        let k = _mm512_mul_ps(a, self.inv_step);
        let rounded = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(k);
        let r = _mm512_mul_ps(_mm512_add_ps(rounded, _mm512_setzero_ps()), self.step);
        (r, clamp(r, self.lo, self.hi))
    }
}

/// max(0, |x₀|, |x₁|, …) with NaNs ignored: the parent's `lane_max(x, f32::abs, 0.0)`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn abs_max(x: &[f32]) -> f32 {
    _mm512_reduce_max_ps(abs_max_lanes(x))
}

/// The lane-wise part of [`abs_max`]: sixteen partial maxima (no NaN among them) whose maximum
/// is the row's.
#[inline]
#[target_feature(enable = "avx512f")]
fn abs_max_lanes(x: &[f32]) -> __m512 {
    let mut acc = _mm512_setzero_ps();
    // Whole vectors unmasked, then one masked tail (the mask of every block computed alike
    // would cost more scalar work than the maximum itself on rows of 32 or 75 values).
    let whole = x.len() / W * W;
    for i in (0..whole).step_by(W) {
        // A NaN lane returns `acc` (the second operand).
        acc = _mm512_max_ps(_mm512_abs_ps(load(x, i, 0xFFFF)), acc);
    }
    if whole < x.len() {
        // Masked-off lanes load 0.
        acc = _mm512_max_ps(_mm512_abs_ps(load(x, whole, mask(x.len(), whole))), acc);
    }
    acc
}

/// The maxima of four rows' lane vectors (none holds a NaN, so the order of the `max`
/// operations does not change the result), in lanes 0, 4, 8 and 12 of the result: one
/// cross-row reduction instead of four horizontal ones.
#[inline]
#[target_feature(enable = "avx512f")]
fn max4(a: __m512, b: __m512, c: __m512, d: __m512) -> __m512 {
    // Halves: lanes 0–7 fold a, lanes 8–15 fold b (likewise c and d).
    let ab = _mm512_max_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b));
    let cd = _mm512_max_ps(_mm512_shuffle_f32x4::<0x44>(c, d), _mm512_shuffle_f32x4::<0xEE>(c, d));
    // Quarters: 128-bit lane k folds row k.
    let q = _mm512_max_ps(_mm512_shuffle_f32x4::<0x88>(ab, cd), _mm512_shuffle_f32x4::<0xDD>(ab, cd));
    // Within each 128-bit lane: 4 → 2 → 1.
    let q = _mm512_max_ps(q, _mm512_permute_ps::<0x4E>(q));
    _mm512_max_ps(q, _mm512_permute_ps::<0xB1>(q))
}

/// `v[i] = clamp(Δ·round(clamp(x[i]·s·Δ⁻¹, ±k_max)), ±bound)`: the DAC fast path of
/// `prepare_input`, on `min(x.len(), v.len())` values.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn dac_row(x: &[f32], s: f32, g: Grid, v: &mut [f32]) {
    dac_row_clamped::<true>(x, s, g, v);
}

/// [`dac_row`], with the final clamp to ±bound only if `CLAMP` (without it, the caller
/// guarantees that no value reaches beyond the bound: see [`dac_rows`]).
#[inline]
#[target_feature(enable = "avx512f")]
fn dac_row_clamped<const CLAMP: bool>(x: &[f32], s: f32, g: Grid, v: &mut [f32]) {
    let len = x.len().min(v.len());
    let (s, c) = (_mm512_set1_ps(s), Consts::of(g));
    let q = |a: __m512| {
        let (r, clamped) = c.quantize(_mm512_mul_ps(a, s));
        if CLAMP { clamped } else { r }
    };
    // Whole vectors with a constant mask, then one masked tail (as in `abs_max`).
    let whole = len / W * W;
    for i in (0..whole).step_by(W) {
        store(v, i, 0xFFFF, q(load(x, i, 0xFFFF)));
    }
    if whole < len {
        let m = mask(len, whole);
        store(v, whole, m, q(load(x, whole, m)));
    }
}

/// The ADC fast path of `finalize_output` on one row, in place: `a = y + σ·z` (with `noise =
/// Some((σ, z))`), `r = Δ·round(clamp(a·Δ⁻¹, ±k_max))`, `y = clamp(r, ±bound)·scale`. Returns
/// whether some `r` lies beyond the bound (beyond −bound too if `test_negative`), by more
/// than 4 ulp.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn adc_row(y: &mut [f32], noise: Option<(f32, &[f32])>, g: Grid, test_negative: bool, scale: f32) -> bool {
    let len = match noise {
        Some((_, z)) => y.len().min(z.len()),
        None => y.len(),
    };
    let (c, sc) = (Consts::of(g), _mm512_set1_ps(scale));
    let tol = g.bound * (1.0 + 4.0 * f32::EPSILON);
    let (tol_hi, tol_lo) = (_mm512_set1_ps(tol), _mm512_set1_ps(-tol));
    let mut clip: __mmask16 = 0;
    let mut block = |i: usize, m: __mmask16| {
        let mut a = load(y, i, m);
        if let Some((sigma, z)) = noise {
            a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(sigma), load(z, i, m)));
        }
        let (r, q) = c.quantize(a);
        clip |= _mm512_cmp_ps_mask::<_CMP_GT_OQ>(r, tol_hi) & m;
        if test_negative {
            clip |= _mm512_cmp_ps_mask::<_CMP_LT_OQ>(r, tol_lo) & m;
        }
        store(y, i, m, _mm512_mul_ps(q, sc));
    };
    // Whole vectors with a constant mask, then one masked tail (as in `abs_max`).
    let whole = len / W * W;
    for i in (0..whole).step_by(W) {
        block(i, 0xFFFF);
    }
    if whole < len {
        block(whole, mask(len, whole));
    }
    clip != 0
}

/// [`abs_max`] of each row of the row-major `x` (`cols` > 0 values per row) into `out`.
#[target_feature(enable = "avx512f")]
pub(super) fn abs_max_rows(x: &[f32], cols: usize, out: &mut [f32]) {
    let rows = out.len().min(x.len() / cols);
    let (out4, rest) = out[..rows].split_at_mut(rows / 4 * 4);
    for (o, r) in out4.chunks_exact_mut(4).zip(x.chunks_exact(4 * cols)) {
        let (r0, r1) = r.split_at(cols);
        let (r1, r2) = r1.split_at(cols);
        let (r2, r3) = r2.split_at(cols);
        let m = max4(abs_max_lanes(r0), abs_max_lanes(r1), abs_max_lanes(r2), abs_max_lanes(r3));
        let mut lanes = [0.0f32; 16];
        // SAFETY: `lanes` is sixteen f32 (64 bytes), exactly what the store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_ps(lanes.as_mut_ptr(), m)
        };
        o.copy_from_slice(&[lanes[0], lanes[4], lanes[8], lanes[12]]);
    }
    let done = out4.len();
    for (o, row) in rest.iter_mut().zip(x[done * cols..].chunks_exact(cols)) {
        *o = abs_max(row);
    }
}

/// [`dac_row`] on every row of the row-major `x` (`cols` > 0 values per row) into `v`, with
/// s = 1/α of the row; rows with α = 0 are set to zero.
///
/// With `clamp = false` the final clamp to ±bound is left out for rows with 2⁻¹²⁶ ≤ α ≤ 2¹²⁶.
/// The caller passes that only where it changes nothing: each α is the row's exact absolute
/// maximum (no cap) and the grid passes `Grid::absmax_rows_stay_within`.
#[target_feature(enable = "avx512f")]
pub(super) fn dac_rows(x: &[f32], cols: usize, alphas: &[f32], g: Grid, clamp: bool, v: &mut [f32]) {
    // The proof needs 1/α normal: α in [2⁻¹²⁶, 2¹²⁶]. (A subnormal α makes 1/α infinite, a
    // huge one makes it subnormal and less exact; such rows keep the clamp.)
    let exact_inverse = f32::MIN_POSITIVE..=1.0 / f32::MIN_POSITIVE;
    for ((xr, vr), &alpha) in x.chunks_exact(cols).zip(v.chunks_exact_mut(cols)).zip(alphas) {
        if alpha > 0.0 {
            if clamp || !exact_inverse.contains(&alpha) {
                dac_row_clamped::<true>(xr, 1.0 / alpha, g, vr);
            } else {
                dac_row_clamped::<false>(xr, 1.0 / alpha, g, vr);
            }
        } else {
            vr.fill(0.0);
        }
    }
}

/// The shape and scaling of [`adc_rows`]' output.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowsOut {
    /// Values per row (> 0).
    pub cols: usize,
    /// The digital output scale; each row is scaled by α·`out_scale`.
    pub out_scale: f32,
    /// Whether clips at −bound fail a pass.
    pub test_negative: bool,
}

/// [`adc_row`] on every row of the row-major `y`, with the scale α·`out_scale` of the row and,
/// given `noise = Some((σ, z))`, the next `cols` values of `z` for each row with α ≠ 0 (in row
/// order). Rows with α = 0 are set to zero and take no noise. `failed[b]` is set for the rows
/// that clipped.
///
/// The same operations as [`adc_row`] per value, with the constants set up once for all rows
/// and the zero rows stored in vectors (a `memset` call per row made the compiler keep the
/// constants on the stack and reload them for every row).
///
/// # Panics
/// If `z` holds fewer values than the rows with α ≠ 0 take.
#[target_feature(enable = "avx512f")]
pub(super) fn adc_rows(
    y: &mut [f32],
    alphas: &[f32],
    noise: Option<(f32, &[f32])>,
    g: Grid,
    out: RowsOut,
    failed: &mut [bool],
) {
    match (noise, out.test_negative) {
        (Some((sigma, z)), true) => rows::<true, true>(y, alphas, sigma, z, g, out, failed),
        (Some((sigma, z)), false) => rows::<true, false>(y, alphas, sigma, z, g, out, failed),
        (None, true) => rows::<false, true>(y, alphas, 0.0, &[], g, out, failed),
        (None, false) => rows::<false, false>(y, alphas, 0.0, &[], g, out, failed),
    }
}

/// [`adc_rows`] for one combination of noise and negative-bound test.
#[inline]
#[target_feature(enable = "avx512f")]
fn rows<const NOISY: bool, const NEG: bool>(
    y: &mut [f32],
    alphas: &[f32],
    sigma: f32,
    z: &[f32],
    g: Grid,
    out: RowsOut,
    failed: &mut [bool],
) {
    let cols = out.cols;
    let c = Consts::of(g);
    let tol = g.bound * (1.0 + 4.0 * f32::EPSILON);
    let (tol_hi, tol_lo, sig, zero) =
        (_mm512_set1_ps(tol), _mm512_set1_ps(-tol), _mm512_set1_ps(sigma), _mm512_setzero_ps());
    let whole = cols / W * W;
    let tail = if whole < cols { mask(cols, whole) } else { 0 };
    let mut next = 0;
    for ((yr, &alpha), f) in y.chunks_exact_mut(cols).zip(alphas).zip(failed) {
        if alpha == 0.0 {
            for i in (0..whole).step_by(W) {
                store(yr, i, 0xFFFF, zero);
            }
            if tail != 0 {
                store(yr, whole, tail, zero);
            }
            *f = false;
            continue;
        }
        let zr: &[f32] = if NOISY {
            let zr = &z[next..next + cols];
            next += cols;
            zr
        } else {
            &[]
        };
        let sc = _mm512_set1_ps(alpha * out.out_scale);
        let mut clip: __mmask16 = 0;
        let mut block = |i: usize, m: __mmask16| {
            let mut a = load(yr, i, m);
            if NOISY {
                a = _mm512_add_ps(a, _mm512_mul_ps(sig, load(zr, i, m)));
            }
            let (r, q) = c.quantize(a);
            clip |= _mm512_cmp_ps_mask::<_CMP_GT_OQ>(r, tol_hi) & m;
            if NEG {
                clip |= _mm512_cmp_ps_mask::<_CMP_LT_OQ>(r, tol_lo) & m;
            }
            store(yr, i, m, _mm512_mul_ps(q, sc));
        };
        for i in (0..whole).step_by(W) {
            block(i, 0xFFFF);
        }
        if tail != 0 {
            block(whole, tail);
        }
        *f = clip != 0;
    }
}
