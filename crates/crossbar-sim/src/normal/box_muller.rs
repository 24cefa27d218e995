//! [`NormalStream`]: eight xoshiro256++ lanes feeding a branch-free Box–Muller transform.
//!
//! One step of the eight lanes gives eight 64-bit words, and each word one pair of independent
//! normals (r·cos θ, r·sin θ):
//!
//! - radius: its low 32 bits drop one and give k ∈ [0, 2³¹), u = (k + ½)·2⁻³¹ ∈ (0, 1] and
//!   r = √(−2 ln u). (k is rounded to `f32` first, so near u = 1 the grid is 2⁻²⁴, and the top
//!   64 values of k give u = 1, r = 0.) The smallest u is 2⁻³², so |z| ≤ √(64 ln 2) ≈ 6.66:
//!   the truncated tail has probability P(r > 6.66) = 2⁻³² per pair.
//! - angle: θ is uniform on the circle, and the eight symmetries of the square (swap the two
//!   coordinates, flip either sign) map the octant [0, π/4] onto every octant, so three bits
//!   choose the symmetry and the other 29 bits a position φ = (j + ½)·2⁻²⁹·π/4 in the octant
//!   (again rounded to `f32`: ~24 useful bits).
//!
//! The roundings change the distribution by less than 2⁻²⁴ in its CDF.
//!
//! ln, sin and cos are single-precision minimax polynomials (the coefficients of Cephes'
//! `logf`, `sinf` and `cosf`, in fused multiply-adds; relative errors ≤ 2ε, checked in the
//! tests against `f64`), so the whole transform is straight-line code. It is written as plain
//! loops over lane arrays, compiled for AVX2 + FMA and for the baseline target, and in AVX-512
//! intrinsics sixteen lanes wide (compiled loops ran eight wide there: LLVM prefers 256-bit
//! vectors on x86), picked at run time. Nothing else is fused or reordered (Rust does not
//! contract `a·b + c`; the intrinsics do the same operations in the same order), and integer
//! ops, conversions, `+`, `·`, `√` and fused multiply-adds are correctly rounded IEEE
//! operations, so the three give the same
//! bits wherever `f32::mul_add` is correctly rounded: always with hardware FMA; without it,
//! the baseline variant calls the C library's `fmaf`, which glibc and musl round correctly,
//! but which some other C libraries (Microsoft's without FMA3, MinGW, openlibm) do not. That
//! library call also makes the baseline variant slow: on an x86 CPU without FMA (no AVX2), it
//! may draw more slowly than the ziggurat; every x86 CPU with AVX2 has FMA.

use crate::rng::{DERIVE_STREAM_KEY, splitmix64};

/// Generator lanes: one 64-bit word each per step.
pub(crate) const LANES: usize = 8;
/// Words per transform: two generator steps, so that the transform's `f32` vectors are 16
/// wide (one AVX-512 register) and two independent steps overlap.
const WORDS: usize = 2 * LANES;
/// Normals per transform: two per word.
const BLOCK: usize = 2 * WORDS;

/// xoshiro256++ state of the eight lanes, structure of arrays: `s[w][lane]`.
pub(crate) type State = [[u64; LANES]; 4];

/// Eight xoshiro256++ lanes seeded from `seed`: lane `l` with the SplitMix64 sequence started at
/// [`derive_seed`](crate::rng::derive_seed)`(seed, l)`, as `rand_xoshiro` seeds one generator from a `u64`. The 40
/// SplitMix64 calls (8 lane seeds, 32 state words) run eight lanes at a time, on AVX-512DQ's
/// 64-bit multiplies where the CPU has them (integer arithmetic: the same bits on every path).
pub(crate) fn seed_lanes(seed: u64) -> State {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU has AVX-512F and DQ (DQ implies F); the function is safe code.
        #[allow(unsafe_code)]
        return unsafe { seed_lanes_avx512(seed) };
    }
    seed_lanes_portable(seed)
}

/// [`seed_lanes_portable`] compiled for AVX-512 (vectorized 64-bit multiplies).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn seed_lanes_avx512(seed: u64) -> State {
    seed_lanes_portable(seed)
}

/// [`seed_lanes`] as lane-wise loops that the compiler vectorizes.
#[inline(always)]
fn seed_lanes_portable(seed: u64) -> State {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    /// `derive_seed(m, l) = splitmix64(splitmix64(m) ^ LANE_KEYS[l])`.
    const LANE_KEYS: [u64; LANES] = {
        let mut k = [0u64; LANES];
        let mut l = 0;
        while l < LANES {
            k[l] = splitmix64(l as u64 ^ DERIVE_STREAM_KEY);
            l += 1;
        }
        k
    };
    let master = splitmix64(seed);
    let x0: [u64; LANES] = std::array::from_fn(|l| splitmix64(master ^ LANE_KEYS[l]));
    std::array::from_fn(|w| std::array::from_fn(|l| splitmix64(x0[l].wrapping_add((w as u64).wrapping_mul(GAMMA)))))
}

/// One xoshiro256++ step of the eight lanes held in four 512-bit registers; returns the eight
/// output words.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn step_avx512(v: &mut [std::arch::x86_64::__m512i; 4]) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::{_mm512_add_epi64, _mm512_rol_epi64, _mm512_slli_epi64, _mm512_xor_si512};
    let [s0, s1, s2, s3] = *v;
    let r = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s0, s3)), s0);
    let t = _mm512_slli_epi64::<17>(s1);
    let s2 = _mm512_xor_si512(s2, s0);
    let s3 = _mm512_xor_si512(s3, s1);
    *v = [_mm512_xor_si512(s0, s3), _mm512_xor_si512(s1, s2), _mm512_xor_si512(s2, t), _mm512_rol_epi64::<45>(s3)];
    r
}

/// A stream of independent N(0, 1) draws in bulk, from its own seeded eight-lane generator.
///
/// The sequence depends only on the seed, not on how it is split into [`fill`](Self::fill)
/// calls, nor on the CPU's vector extensions.
///
/// ```
/// use crossbar_sim::normal::NormalStream;
///
/// let mut noise = vec![0.0f32; 1000];
/// NormalStream::new(7).fill(&mut noise);
/// let mean = noise.iter().sum::<f32>() / 1000.0;
/// assert!(mean.abs() < 0.2); // 6 standard errors of the mean
/// ```
#[derive(Debug, Clone)]
pub struct NormalStream {
    s: State,
    /// The last step's draws, of which `buf[used..]` are not handed out yet.
    buf: [f32; BLOCK],
    used: usize,
}

impl NormalStream {
    /// A stream seeded from `seed`: lane `l` is seeded with the SplitMix64 sequence started at
    /// [`derive_seed`](crate::rng::derive_seed)`(seed, l)`, as `rand_xoshiro` seeds one generator from a `u64`.
    pub fn new(seed: u64) -> Self {
        Self { s: seed_lanes(seed), buf: [0.0; BLOCK], used: BLOCK }
    }

    /// Fills `out` with the next `out.len()` draws of the stream.
    pub fn fill(&mut self, out: &mut [f32]) {
        let take = (BLOCK - self.used).min(out.len());
        out[..take].copy_from_slice(&self.buf[self.used..self.used + take]);
        self.used += take;
        let rest = &mut out[take..];
        let whole = rest.len() - rest.len() % BLOCK;
        let (body, tail) = rest.split_at_mut(whole);
        steps(&mut self.s, body);
        if !tail.is_empty() {
            steps(&mut self.s, &mut self.buf);
            tail.copy_from_slice(&self.buf[..tail.len()]);
            self.used = tail.len();
        }
    }
}

/// Fills `out` (a multiple of [`BLOCK`] long) with the next steps' draws, on the widest vector
/// extension the CPU has.
fn steps(s: &mut State, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F and FMA (checked just above); the function is safe
            // code.
            #[allow(unsafe_code)]
            unsafe {
                steps_avx512(s, out);
            }
            return;
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2 and FMA.
            #[allow(unsafe_code)]
            unsafe {
                steps_avx2(s, out);
            }
            return;
        }
    }
    steps_portable(s, out);
}

/// [`steps_portable`] for AVX-512, in explicit 512-bit instructions: the generator step (the
/// compiler does not always vectorize the 64-bit rotates on its own) and the transform
/// ([`transform_avx512`]; compiled from the portable loops, the transform ran on 256-bit
/// vectors, which LLVM prefers on x86 by default), on [`INTERLEAVE`] blocks at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn steps_avx512(s: &mut State, out: &mut [f32]) {
    use std::arch::x86_64::{__m512i, _mm512_loadu_si512, _mm512_storeu_si512};
    // SAFETY: each `s[w]` is eight u64 (64 bytes) and the unaligned load reads exactly those.
    #[allow(unsafe_code)]
    let mut v: [__m512i; 4] = std::array::from_fn(|w| unsafe { _mm512_loadu_si512(s[w].as_ptr().cast()) });
    let mut groups = out.chunks_exact_mut(INTERLEAVE * BLOCK);
    for group in &mut groups {
        let w = std::array::from_fn(|_| [step_avx512(&mut v), step_avx512(&mut v)]);
        transform_avx512::<INTERLEAVE>(w, group);
    }
    for block in groups.into_remainder().chunks_exact_mut(BLOCK) {
        transform_avx512::<1>([[step_avx512(&mut v), step_avx512(&mut v)]], block);
    }
    for (w, vw) in v.iter().enumerate() {
        // SAFETY: as for the load.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_si512(s[w].as_mut_ptr().cast(), *vw);
        }
    }
}

/// Blocks that [`steps_avx512`] transforms together. One block's transform is a single
/// dependency chain of ~110 cycles (the ln polynomial, √, the sin and cos polynomials), and the
/// core's scheduler does not look far enough ahead to overlap more than a few blocks in
/// program order: with every operation applied to eight blocks before the next, 20 480 draws
/// take 4.4 µs instead of 5.9 (2 blocks: 5.3 µs, 4: 4.9, 6: 4.5, 16: 5.7 with register
/// spills; `cargo bench -p rapa-benches --bench normal`, one thread).
#[cfg(target_arch = "x86_64")]
const INTERLEAVE: usize = 8;

/// [`transform`] on the sixteen words of two generator steps per block (`w[i][0]` holds words
/// 0–7 of block `i`, `w[i][1]` words 8–15), for `K` blocks into `out[i·32..(i + 1)·32]`, in
/// 512-bit instructions: the same operations in the same order per block (`mul_add` is
/// `vfmadd`, `as f32` is `vcvtdq2ps`, both correctly rounded), so the same bits. Each
/// operation runs on every block before the next operation, which interleaves the blocks'
/// dependency chains ([`INTERLEAVE`]).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn transform_avx512<const K: usize>(w: [[std::arch::x86_64::__m512i; 2]; K], out: &mut [f32]) {
    use std::arch::x86_64::{
        __m512, __m512i, __mmask16, _CMP_LT_OQ, _mm512_add_epi32, _mm512_add_ps, _mm512_and_si512, _mm512_castps_si512,
        _mm512_castsi512_ps, _mm512_cmp_ps_mask, _mm512_cvtepi32_ps, _mm512_fmadd_ps, _mm512_mask_blend_ps,
        _mm512_mul_ps, _mm512_or_si512, _mm512_permutex2var_epi32, _mm512_set1_epi32, _mm512_set1_ps,
        _mm512_setr_epi32, _mm512_slli_epi32, _mm512_sqrt_ps, _mm512_srli_epi32, _mm512_storeu_ps, _mm512_sub_ps,
        _mm512_test_epi32_mask, _mm512_xor_si512,
    };
    const TWO_M31: f32 = 1.0 / 2_147_483_648.0; // 2⁻³¹
    const OCTANT: f32 = std::f32::consts::FRAC_PI_4 / 536_870_912.0; // π/4 · 2⁻²⁹
    let c = _mm512_set1_ps;
    // `each!(i => e)`: the K values of `e` for blocks i = 0..K.
    macro_rules! each {
        ($i:ident => $e:expr) => {
            std::array::from_fn::<_, K, _>(|$i| $e)
        };
    }
    let lo_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let hi_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let lo: [__m512i; K] = each!(i => _mm512_permutex2var_epi32(w[i][0], lo_idx, w[i][1]));
    let hi: [__m512i; K] = each!(i => _mm512_permutex2var_epi32(w[i][0], hi_idx, w[i][1]));
    let u: [__m512; K] =
        each!(i => _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32::<1>(lo[i])), c(TWO_M31), c(0.5 * TWO_M31)));
    let bits: [__m512i; K] = each!(i => _mm512_castps_si512(u[i]));
    let e: [__m512; K] =
        each!(i => _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_srli_epi32::<23>(bits[i]), _mm512_set1_epi32(-126))));
    let m: [__m512; K] = each!(i => _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(bits[i], _mm512_set1_epi32(0x007f_ffff)),
        _mm512_set1_epi32(0x3f00_0000),
    )));
    let small: [__mmask16; K] = each!(i => _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m[i], c(std::f32::consts::FRAC_1_SQRT_2)));
    let e: [__m512; K] = each!(i => _mm512_mask_blend_ps(small[i], e[i], _mm512_sub_ps(e[i], c(1.0))));
    let f: [__m512; K] = each!(i => _mm512_mask_blend_ps(small[i], _mm512_sub_ps(m[i], c(1.0)), _mm512_sub_ps(_mm512_add_ps(m[i], m[i]), c(1.0))));
    let z: [__m512; K] = each!(i => _mm512_mul_ps(f[i], f[i]));
    let mut p = [c(LN_P[0]); K];
    for &k in &LN_P[1..] {
        p = each!(i => _mm512_fmadd_ps(p[i], f[i], c(k)));
    }
    let y: [__m512; K] = each!(i => _mm512_mul_ps(_mm512_mul_ps(p[i], f[i]), z[i]));
    let y: [__m512; K] = each!(i => _mm512_fmadd_ps(c(LN2_LO), e[i], y[i]));
    let y: [__m512; K] = each!(i => _mm512_fmadd_ps(c(-0.5), z[i], y[i]));
    let ln: [__m512; K] = each!(i => _mm512_fmadd_ps(c(LN2_HI), e[i], _mm512_add_ps(f[i], y[i])));
    let r: [__m512; K] = each!(i => _mm512_sqrt_ps(_mm512_mul_ps(c(-2.0), ln[i])));
    let phi: [__m512; K] =
        each!(i => _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32::<3>(hi[i])), c(OCTANT), c(0.5 * OCTANT)));
    let z: [__m512; K] = each!(i => _mm512_mul_ps(phi[i], phi[i]));
    let (mut ps, mut pc) = ([c(SIN_P[0]); K], [c(COS_P[0]); K]);
    for j in 1..3 {
        ps = each!(i => _mm512_fmadd_ps(ps[i], z[i], c(SIN_P[j])));
        pc = each!(i => _mm512_fmadd_ps(pc[i], z[i], c(COS_P[j])));
    }
    let sin: [__m512; K] = each!(i => _mm512_fmadd_ps(_mm512_mul_ps(ps[i], z[i]), phi[i], phi[i]));
    let cos: [__m512; K] =
        each!(i => _mm512_fmadd_ps(_mm512_mul_ps(pc[i], z[i]), z[i], _mm512_fmadd_ps(c(-0.5), z[i], c(1.0))));
    for i in 0..K {
        let swap = _mm512_test_epi32_mask(hi[i], _mm512_set1_epi32(1));
        let (a, b) = (_mm512_mask_blend_ps(swap, cos[i], sin[i]), _mm512_mask_blend_ps(swap, sin[i], cos[i]));
        let sign_a = _mm512_slli_epi32::<30>(_mm512_and_si512(hi[i], _mm512_set1_epi32(2)));
        let sign_b = _mm512_slli_epi32::<29>(_mm512_and_si512(hi[i], _mm512_set1_epi32(4)));
        let out_a = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(r[i], a)), sign_a));
        let out_b = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(r[i], b)), sign_b));
        let (first, second) = out[i * BLOCK..(i + 1) * BLOCK].split_at_mut(WORDS);
        // SAFETY: `first` and `second` are sixteen f32 each (BLOCK = 2·WORDS = 32 values,
        // sliced just above), exactly the 64 bytes each store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_ps(first.as_mut_ptr(), out_a);
            _mm512_storeu_ps(second.as_mut_ptr(), out_b);
        }
    }
}

/// [`steps_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn steps_avx2(s: &mut State, out: &mut [f32]) {
    steps_portable(s, out);
}

/// The generator and transform, inlined into each compiled variant. The state lives in locals
/// for the whole loop.
#[inline(always)]
fn steps_portable(s: &mut State, out: &mut [f32]) {
    let mut st = *s;
    let mut words = [0u64; WORDS];
    for block in out.chunks_exact_mut(BLOCK) {
        for half in words.chunks_exact_mut(LANES) {
            half.copy_from_slice(&next_words(&mut st));
        }
        let (first, second) = block.split_at_mut(WORDS);
        transform(&words, first, second);
    }
    *s = st;
}

/// One xoshiro256++ step of every lane, one statement per lane-wise operation (each a loop the
/// compiler turns into vector instructions).
#[inline(always)]
pub(crate) fn next_words(s: &mut State) -> [u64; LANES] {
    let [s0, s1, s2, s3] = *s;
    let lanes = |f: &dyn Fn(usize) -> u64| std::array::from_fn::<u64, LANES, _>(f);
    let out = lanes(&|l| s0[l].wrapping_add(s3[l]).rotate_left(23).wrapping_add(s0[l]));
    let t = lanes(&|l| s1[l] << 17);
    let s2 = lanes(&|l| s2[l] ^ s0[l]);
    let s3 = lanes(&|l| s3[l] ^ s1[l]);
    s[1] = lanes(&|l| s1[l] ^ s2[l]);
    s[0] = lanes(&|l| s0[l] ^ s3[l]);
    s[2] = lanes(&|l| s2[l] ^ t[l]);
    s[3] = lanes(&|l| s3[l].rotate_left(45));
    out
}

/// The Box–Muller pair of each word: word `l`'s pair goes to `first[l]` and `second[l]`.
#[inline(always)]
fn transform(words: &[u64; WORDS], first: &mut [f32], second: &mut [f32]) {
    const TWO_M31: f32 = 1.0 / 2_147_483_648.0; // 2⁻³¹
    const OCTANT: f32 = std::f32::consts::FRAC_PI_4 / 536_870_912.0; // π/4 · 2⁻²⁹
    let (first, second) = (&mut first[..WORDS], &mut second[..WORDS]);
    for l in 0..WORDS {
        let lo = words[l] as u32;
        let hi = (words[l] >> 32) as u32;
        let u = (((lo >> 1) as i32) as f32).mul_add(TWO_M31, 0.5 * TWO_M31);
        let r = (-2.0 * ln_unit(u)).sqrt();
        let phi = (((hi >> 3) as i32) as f32).mul_add(OCTANT, 0.5 * OCTANT);
        let (s, c) = sin_cos_octant(phi);
        let swap = hi & 1 == 1;
        let (a, b) = if swap { (s, c) } else { (c, s) };
        first[l] = f32::from_bits((r * a).to_bits() ^ ((hi >> 1) & 1) << 31);
        second[l] = f32::from_bits((r * b).to_bits() ^ ((hi >> 2) & 1) << 31);
    }
}

/// c₀xⁿ + c₁xⁿ⁻¹ + … + cₙ by Horner's rule in fused multiply-adds.
#[inline(always)]
fn horner(x: f32, c: &[f32]) -> f32 {
    c.iter().fold(0.0, |acc, &k| acc.mul_add(x, k))
}

/// ln u for a normal, positive `u` (here u ∈ [2⁻³², 1]): u = m·2ᵉ with m ∈ [√½, √2), then
/// ln m = f − f²/2 + f³·P(f) with f = m − 1 and ln 2 split in two parts (Cephes `logf`).
#[inline(always)]
fn ln_unit(u: f32) -> f32 {
    let bits = u.to_bits();
    let e = ((bits >> 23) as i32 - 126) as f32; // u = m'·2ᵉ, m' ∈ [½, 1)
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = if small { e - 1.0 } else { e };
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let y = horner(f, &LN_P) * f * z;
    let y = LN2_LO.mul_add(e, y);
    let y = (-0.5f32).mul_add(z, y);
    LN2_HI.mul_add(e, f + y)
}

/// Cephes `logf`'s polynomial P.
const LN_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_84e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];
/// ln 2 in two parts, Cephes' split: the high part exact in a few bits, the low part
/// negative.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `sinf`'s and `cosf`'s polynomials in z = φ².
const SIN_P: [f32; 3] = [-1.951_529_6e-4, 8.332_161e-3, -1.666_665_5e-1];
const COS_P: [f32; 3] = [2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2];

/// (sin φ, cos φ) for φ ∈ [0, π/4] (Cephes `sinf`/`cosf` polynomials).
#[inline(always)]
fn sin_cos_octant(phi: f32) -> (f32, f32) {
    let z = phi * phi;
    let s = (horner(z, &SIN_P) * z).mul_add(phi, phi);
    let c = (horner(z, &COS_P) * z).mul_add(z, (-0.5f32).mul_add(z, 1.0));
    (s, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normal::check::{assert_ks_normal, assert_moments_normal};

    fn draws(seed: u64, n: usize) -> Vec<f32> {
        let mut v = vec![0.0f32; n];
        NormalStream::new(seed).fill(&mut v);
        v
    }

    /// ln has a relative error ≤ 2ε (ε = `f32::EPSILON`, i.e. 2–4 ulp) over [2⁻³², 1]: every
    /// power of two, its neighbours, a dense sweep and the values just below 1.
    #[test]
    fn ln_is_accurate() {
        let mut xs: Vec<f32> = (0..=32).map(|k| 2f32.powi(-k)).collect();
        xs.extend(xs.clone().iter().flat_map(|&x| [f32::from_bits(x.to_bits() - 1), f32::from_bits(x.to_bits() + 1)]));
        xs.extend((1..200_000).map(|i| i as f32 / 200_000.0));
        xs.extend((1..2000).map(|i| 1.0 - i as f32 * f32::EPSILON / 2.0));
        for x in xs.into_iter().filter(|&x| (2f32.powi(-32)..=1.0).contains(&x)) {
            let want = f64::from(x).ln();
            let got = f64::from(ln_unit(x));
            assert!((got - want).abs() <= 2.0 * f64::from(f32::EPSILON) * want.abs(), "ln {x}: {got} vs {want}");
        }
    }

    /// sin and cos on [0, π/4] have relative errors ≤ 2ε (ε = `f32::EPSILON`, i.e. 2–4 ulp).
    #[test]
    fn sin_cos_are_accurate() {
        let eps = f64::from(f32::EPSILON);
        for i in 0..=100_000 {
            let phi = i as f32 / 100_000.0 * std::f32::consts::FRAC_PI_4;
            let (s, c) = sin_cos_octant(phi);
            let p = f64::from(phi);
            assert!((f64::from(s) - p.sin()).abs() <= 2.0 * eps * p.sin(), "sin {phi}: {s}");
            assert!((f64::from(c) - p.cos()).abs() <= 2.0 * eps * p.cos(), "cos {phi}: {c}");
        }
    }

    /// Moments and tail masses of 4·10⁶ draws, and a KS test on 200 000 (`check`).
    #[test]
    fn draws_are_normal() {
        assert_moments_normal(&draws(11, 4_000_000));
        assert_ks_normal(&draws(12, 200_000));
    }

    /// Each half of the pairs alone is normal too (a wrong octant map would skew one of them).
    #[test]
    fn both_coordinates_are_normal() {
        let v = draws(13, 400_000);
        let first: Vec<f32> = v.chunks_exact(BLOCK).flat_map(|b| b[..WORDS].to_vec()).collect();
        let second: Vec<f32> = v.chunks_exact(BLOCK).flat_map(|b| b[WORDS..].to_vec()).collect();
        assert_ks_normal(&first);
        assert_ks_normal(&second);
    }

    /// No correlation between the two draws of a pair, between neighbouring lanes, or from
    /// one step to the next: each sample correlation of n pairs is within 5/√n of zero
    /// (standard error 1/√n for independent normals).
    #[test]
    fn draws_are_uncorrelated() {
        let v = draws(14, 4_000_000);
        let steps: Vec<&[f32]> = v.chunks_exact(BLOCK).collect();
        let corr = |pairs: &[(f32, f32)]| {
            let n = pairs.len() as f64;
            let s: f64 = pairs.iter().map(|&(a, b)| f64::from(a) * f64::from(b)).sum();
            (s / n, 5.0 / n.sqrt())
        };
        let cases: [(&str, Vec<(f32, f32)>); 4] = [
            ("pair", steps.iter().flat_map(|b| (0..WORDS).map(|l| (b[l], b[WORDS + l]))).collect()),
            ("words", steps.iter().flat_map(|b| (1..WORDS).map(|l| (b[l - 1], b[l]))).collect()),
            ("steps", steps.windows(2).flat_map(|w| (0..BLOCK).map(|i| (w[0][i], w[1][i]))).collect()),
            (
                "squares",
                steps
                    .iter()
                    .flat_map(|b| (0..WORDS).map(|l| (b[l] * b[l] - 1.0, b[WORDS + l] * b[WORDS + l] - 1.0)))
                    .collect(),
            ),
        ];
        for (name, pairs) in cases {
            let (c, tol) = corr(&pairs);
            // the squares' products have variance 2·2 = 4: scale the tolerance by 2
            let tol = if name == "squares" { 2.0 * tol } else { tol };
            assert!(c.abs() < tol, "{name}: correlation {c}, tolerance {tol}");
        }
    }

    /// Every lane is xoshiro256++ exactly: its words equal `rand_xoshiro`'s generator started
    /// from the same state, for the portable step and (where the CPU has it) the AVX-512 step,
    /// whose raw words are recovered from its normals through the portable transform.
    #[test]
    fn lanes_are_xoshiro256plusplus() {
        use rand::{RngCore, SeedableRng};
        let start = NormalStream::new(21).s;
        let mut st = start;
        let words: Vec<[u64; LANES]> = (0..100).map(|_| next_words(&mut st)).collect();
        for lane in 0..LANES {
            let mut seed = [0u8; 32];
            for (w, bytes) in seed.chunks_exact_mut(8).enumerate() {
                bytes.copy_from_slice(&start[w][lane].to_le_bytes());
            }
            let mut reference = rand_xoshiro::Xoshiro256PlusPlus::from_seed(seed);
            for (step, ws) in words.iter().enumerate() {
                assert_eq!(ws[lane], reference.next_u64(), "lane {lane}, step {step}");
            }
        }
        // The same words through the transform equal what the dispatched stream draws.
        let mut want = vec![0.0f32; 50 * BLOCK];
        for (block, pair) in want.chunks_exact_mut(BLOCK).zip(words.chunks_exact(2)) {
            let mut ws = [0u64; WORDS];
            ws[..LANES].copy_from_slice(&pair[0]);
            ws[LANES..].copy_from_slice(&pair[1]);
            let (first, second) = block.split_at_mut(WORDS);
            transform(&ws, first, second);
        }
        assert_eq!(draws(21, want.len()), want);
    }

    /// Lane `l` of a stream seeded with `seed` is the generator `rng::stream(seed, l)` (SplitMix64
    /// from `derive_seed(seed, l)`, as `rand_xoshiro` seeds from a `u64`), on the vectorized and
    /// the portable seeding paths alike.
    #[test]
    fn lanes_are_the_derived_streams() {
        use rand::{RngCore, SeedableRng};
        for seed in [0, 21, u64::MAX] {
            let start = seed_lanes(seed);
            assert_eq!(start, seed_lanes_portable(seed), "seed {seed}");
            for lane in 0..LANES {
                let bytes: Vec<u8> = start.iter().flat_map(|word| word[lane].to_le_bytes()).collect();
                let mut ours = rand_xoshiro::Xoshiro256PlusPlus::from_seed(bytes.try_into().expect("32 bytes"));
                let mut reference = crate::rng::stream(seed, lane as u64);
                for _ in 0..10 {
                    assert_eq!(ours.next_u64(), reference.next_u64(), "seed {seed}, lane {lane}");
                }
            }
        }
    }

    /// The stream does not depend on how it is split into calls, every compiled variant gives
    /// the same bits, and distinct seeds give distinct streams.
    #[test]
    fn reproducible_whatever_the_split_and_the_cpu() {
        let whole = draws(5, 10_007);
        let mut pieces = vec![0.0f32; whole.len()];
        let mut stream = NormalStream::new(5);
        let mut at = 0;
        for len in [0, 1, 3, 16, 17, 5, 100, 2, 31].iter().cycle() {
            let end = (at + len).min(pieces.len());
            stream.fill(&mut pieces[at..end]);
            at = end;
            if at == pieces.len() {
                break;
            }
        }
        assert_eq!(whole, pieces);

        let mut st = NormalStream::new(5).s;
        // 309 blocks: 38 groups of `INTERLEAVE` = 8 on AVX-512, and 5 single blocks.
        let mut portable = vec![0.0f32; 309 * BLOCK];
        steps_portable(&mut st, &mut portable);
        assert_eq!(
            portable.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            whole[..portable.len()].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        #[cfg(target_arch = "x86_64")]
        {
            let mut st = NormalStream::new(5).s;
            let mut v = vec![0.0f32; portable.len()];
            let fma = std::arch::is_x86_feature_detected!("fma");
            if fma && std::arch::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: AVX2 and FMA checked just above.
                unsafe {
                    steps_avx2(&mut st, &mut v);
                }
                assert!(v.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()), "AVX2 differs");
            }
            let mut st = NormalStream::new(5).s;
            if fma && std::arch::is_x86_feature_detected!("avx512f") {
                #[allow(unsafe_code)]
                // SAFETY: AVX-512F and FMA checked just above.
                unsafe {
                    steps_avx512(&mut st, &mut v);
                }
                assert!(v.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()), "AVX-512 differs");
            }
        }
        assert_ne!(draws(6, 64), whole[..64]);
    }
}
