//! [`TrainStream`]: stochastic pulse trains sixteen elements at a time.
//!
//! Each pulse slot of sixteen elements takes one step of eight xoshiro256++ lanes (the
//! generator of [`NormalStream`](crate::normal::NormalStream)): its eight 64-bit words are
//! sixteen 32-bit uniforms u, element `j` of the group taking the low half of word `j/2` for
//! even `j` and the high half for odd `j`. Slot `k` of element `j` fires when `u < ⌊p_j·2³²⌋`,
//! so it fires with probability p_j to a resolution of 2⁻³², independently of every other slot
//! and element. An element with p ≥ 1 fires in every slot, one with p ≤ 0 (or NaN) in none.
//!
//! The AVX-512 variant (one compare and one masked OR per slot and group) and the portable one
//! give the same bits; the sequence depends only on the seed and on the lengths of the
//! [`fill`](TrainStream::fill) calls (each group of up to sixteen elements takes BL steps).

use crate::normal::{LANES, State, next_words, seed_lanes};

/// Elements per group: the 32-bit halves of one generator step.
const GROUP: usize = 2 * LANES;

/// A source of stochastic pulse trains from its own seeded eight-lane generator.
#[derive(Debug, Clone)]
pub struct TrainStream {
    s: State,
}

impl TrainStream {
    /// A stream seeded from `seed` (lane seeding as [`NormalStream::new`](crate::normal::NormalStream::new)).
    pub fn new(seed: u64) -> Self {
        Self { s: seed_lanes(seed) }
    }

    /// Writes into `out[j]` the BL = `bl` (≤ 31) Bernoulli slots of p = `|values[j]|·scale` in
    /// bits 0..BL (no sign bit). `values` and `out` have the same length.
    pub fn fill(&mut self, values: &[f32], scale: f32, bl: u32, out: &mut [u32]) {
        debug_assert!(bl <= 31 && values.len() == out.len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); the function is safe code.
            #[allow(unsafe_code)]
            unsafe {
                fill_avx512(&mut self.s, values, scale, bl, out)
            };
            return;
        }
        fill_portable(&mut self.s, values, scale, bl, out);
    }
}

/// The slot thresholds ⌊p·2³²⌋ of a group's p = |v|·scale (lanes past the group's end: 0), and
/// which elements have p ≥ 1 (every slot fires). p ≤ 0 and NaN give 0 (no slot fires); p < 1
/// in `f32` is at most 1 − 2⁻²⁴, so the threshold fits in 32 bits.
#[inline(always)]
fn thresholds(values: &[f32], scale: f32) -> ([u32; GROUP], [bool; GROUP]) {
    let (mut thr, mut always) = ([0u32; GROUP], [false; GROUP]);
    for ((t, a), &v) in thr.iter_mut().zip(&mut always).zip(values) {
        let p = v.abs() * scale;
        *a = p >= 1.0;
        *t = if *a { u32::MAX } else { (f64::from(p) * 4_294_967_296.0) as u32 };
    }
    (thr, always)
}

/// Writes a group's slot bits to `out`, all `bl` slots for the elements with p ≥ 1.
#[inline(always)]
fn finish(out: &mut [u32], bits: &[u32; GROUP], always: &[bool; GROUP], bl: u32) {
    for ((o, &b), &a) in out.iter_mut().zip(bits).zip(always) {
        *o = if a { full(bl) } else { b };
    }
}

/// All of `bl` slots.
#[inline(always)]
fn full(bl: u32) -> u32 {
    if bl >= 32 { u32::MAX } else { (1u32 << bl) - 1 }
}

/// The portable form: plain loops over the sixteen elements of a group.
fn fill_portable(s: &mut State, values: &[f32], scale: f32, bl: u32, out: &mut [u32]) {
    for (vg, og) in values.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
        let (thr, always) = thresholds(vg, scale);
        let mut bits = [0u32; GROUP];
        for k in 0..bl {
            let w = next_words(s);
            for (j, b) in bits.iter_mut().enumerate() {
                let u = (w[j / 2] >> (32 * (j % 2))) as u32;
                *b |= u32::from(u < thr[j]) << k;
            }
        }
        finish(og, &bits, &always, bl);
    }
}

/// The AVX-512 form: the group's thresholds in one register, one generator step, one unsigned
/// compare and one masked OR per slot.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fill_avx512(s: &mut State, values: &[f32], scale: f32, bl: u32, out: &mut [u32]) {
    use std::arch::x86_64::{
        __m512i, _mm512_cmplt_epu32_mask, _mm512_loadu_si512, _mm512_mask_or_epi32, _mm512_set1_epi32,
        _mm512_setzero_si512, _mm512_storeu_si512,
    };

    use crate::normal::step_avx512;
    // SAFETY: each `s[w]` is eight u64 (64 bytes) and the unaligned load reads exactly those.
    #[allow(unsafe_code)]
    let mut v: [__m512i; 4] = std::array::from_fn(|w| unsafe { _mm512_loadu_si512(s[w].as_ptr().cast()) });
    let mut bits_out = [0u32; GROUP];
    for (vg, og) in values.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
        let (thr, always) = thresholds(vg, scale);
        // SAFETY: `thr` is sixteen u32 (64 bytes), exactly what the load reads.
        #[allow(unsafe_code)]
        let t = unsafe { _mm512_loadu_si512(thr.as_ptr().cast()) };
        let mut bits = _mm512_setzero_si512();
        for k in 0..bl {
            let u = step_avx512(&mut v);
            bits = _mm512_mask_or_epi32(bits, _mm512_cmplt_epu32_mask(u, t), bits, _mm512_set1_epi32(1 << k));
        }
        // SAFETY: `bits_out` is sixteen u32 (64 bytes), exactly what the store writes.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_si512(bits_out.as_mut_ptr().cast(), bits)
        };
        finish(og, &bits_out, &always, bl);
    }
    for (w, vw) in v.iter().enumerate() {
        // SAFETY: as for the load.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_si512(s[w].as_mut_ptr().cast(), *vw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms give the same bits, on groups with a tail, p ≥ 1, p = 0, NaN and negative
    /// values, for several train lengths, and the stream carries on across calls.
    #[test]
    fn portable_and_avx512_agree() {
        let values: Vec<f32> =
            (0..37).map(|i| (i as f32 - 9.0) * 0.031).chain([f32::NAN, 2.0, -40.0, 0.0, 1e-9]).collect();
        for bl in [1, 2, 7, 31] {
            let run = |wide: bool| {
                let mut s = seed_lanes(3);
                let mut out = vec![0u32; values.len()];
                let mut all = Vec::new();
                for scale in [1.0f32, 0.5] {
                    #[cfg(target_arch = "x86_64")]
                    if wide {
                        // SAFETY: only called after the feature check below.
                        #[allow(unsafe_code)]
                        unsafe {
                            fill_avx512(&mut s, &values, scale, bl, &mut out)
                        };
                        all.extend_from_slice(&out);
                        continue;
                    }
                    fill_portable(&mut s, &values, scale, bl, &mut out);
                    all.extend_from_slice(&out);
                }
                all
            };
            let portable = run(false);
            // p ≥ 1 fires every slot; p = 0 and NaN none.
            assert_eq!(portable[values.len() - 4], full(bl));
            assert_eq!(portable[values.len() - 2], 0);
            assert_eq!(portable[values.len() - 5], 0);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                assert_eq!(run(true), portable, "BL {bl}");
            } else {
                eprintln!("no AVX-512F on this CPU: only the portable form is tested");
            }
        }
    }

    /// Every slot fires with probability p: over 4 000 groups of sixteen elements at p = 0.3
    /// and 0.02, the count of each (element, slot) is within 5 binomial standard deviations
    /// of its mean, and so is the number of coinciding slots of neighbouring elements: with
    /// independent slots X = Σ_j a_j·a_{j+1} over the 15 neighbour pairs of a group has mean
    /// 15p² and variance 15(p² − p⁴) + 2·14(p³ − p⁴) (adjacent pairs share an element).
    ///
    /// Slots of one element are independent too. (1) Its popcount c over BL = 31 slots is
    /// Binomial(31, p): the sample variance of each element's 4 000 popcounts is within 5
    /// standard errors of 31·p·q (q = 1 − p), the SE from the binomial fourth central moment
    /// μ₄ = 31pq(1 + 3·29·pq), Var(s²) = (μ₄ − σ⁴(n − 3)/(n − 1))/n. Slots that repeat (e.g. one
    /// uniform reused for two slots) keep the mean and inflate this variance. (2) The lag-1
    /// autocorrelation r = Σ (a_k − p)(a_{k+1} − p)/(N·p·q) over the N = 4 000·16·30 neighbouring
    /// slot pairs: the centred products are uncorrelated with mean 0 and variance (pq)² under
    /// independence (pairs sharing a slot still have a zero covariance), so Var(r) = 1/N exactly
    /// and |r| < 5/√N. The seed is fixed.
    #[test]
    fn slots_are_independent_bernoulli() {
        let n = 4000;
        for p in [0.3f32, 0.02] {
            let mut stream = TrainStream::new(17);
            let values = vec![p; GROUP];
            let mut out = vec![0u32; GROUP];
            let mut counts = vec![[0u32; 31]; GROUP];
            let mut pairs = 0u64;
            // Per element: Σ popcount and Σ popcount²; over all elements: Σ of lag-1 products.
            let (mut pop, mut pop2) = (vec![0u64; GROUP], vec![0u64; GROUP]);
            let mut lag1 = 0.0f64;
            let pf = f64::from(p);
            for _ in 0..n {
                stream.fill(&values, 1.0, 31, &mut out);
                for (c, &w) in counts.iter_mut().zip(&out) {
                    for (k, ck) in c.iter_mut().enumerate() {
                        *ck += (w >> k) & 1;
                    }
                }
                pairs += out.windows(2).map(|w| u64::from((w[0] & w[1]).count_ones())).sum::<u64>();
                for (j, &w) in out.iter().enumerate() {
                    let c = u64::from(w.count_ones());
                    pop[j] += c;
                    pop2[j] += c * c;
                    for k in 0..30 {
                        let bit = |k: u32| f64::from((w >> k) & 1);
                        lag1 += (bit(k) - pf) * (bit(k + 1) - pf);
                    }
                }
            }
            let (nf, bl, q) = (f64::from(n), 31.0, 1.0 - pf);
            let var = bl * pf * q;
            let mu4 = var * (1.0 + 3.0 * (bl - 2.0) * pf * q);
            let se_var = ((mu4 - var * var * (nf - 3.0) / (nf - 1.0)) / nf).sqrt();
            for (j, (&s1, &s2)) in pop.iter().zip(&pop2).enumerate() {
                let (s1, s2) = (s1 as f64, s2 as f64);
                let sample_var = (s2 - s1 * s1 / nf) / (nf - 1.0);
                assert!(
                    (sample_var - var).abs() < 5.0 * se_var,
                    "p {p}, element {j}: popcount variance {sample_var}, binomial {var} (se {se_var})"
                );
            }
            let n_pairs = nf * GROUP as f64 * 30.0;
            let r = lag1 / (n_pairs * pf * q);
            assert!(
                r.abs() < 5.0 / n_pairs.sqrt(),
                "p {p}: lag-1 slot correlation {r}, bound {}",
                5.0 / n_pairs.sqrt()
            );
            let sd = (nf * pf * (1.0 - pf)).sqrt();
            for c in &counts {
                for &ck in c {
                    assert!((f64::from(ck) - nf * pf).abs() < 5.0 * sd, "p {p}: count {ck}, mean {}", nf * pf);
                }
            }
            let instances = nf * 31.0;
            let (p2, p3, p4) = (pf * pf, pf.powi(3), pf.powi(4));
            let mean = instances * 15.0 * p2;
            let sd2 = (instances * (15.0 * (p2 - p4) + 28.0 * (p3 - p4))).sqrt();
            assert!((pairs as f64 - mean).abs() < 5.0 * sd2, "p {p}: {pairs} coinciding slots, mean {mean}");
        }
    }
}
