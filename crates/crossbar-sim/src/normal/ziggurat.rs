//! Standard-normal `f32` draws from any generator: the Marsaglia–Tsang ziggurat (128 layers) on
//! 32-bit halves of the generator's 64-bit outputs, two normals per draw.
//!
//! `rand_distr`'s `StandardNormal` for `f32` samples an `f64` ziggurat and rounds (one 64-bit
//! draw per normal); here each 32-bit half picks a layer with 7 bits and a signed 25-bit
//! position with the other 25 bits (disjoint bits, so layer and position are independent),
//! which is 2⁻²⁴ resolution inside a layer — the precision of an `f32` mantissa. The rare slow path (≈1.2 % of draws: the wedges and the
//! tail beyond r = 3.4426) is the exact rejection step of the original algorithm.
//!
//! Checked in the tests against the normal distribution (`check`).

use std::sync::OnceLock;

use rand::{Rng, RngCore};

/// Number of layers.
const LAYERS: usize = 128;
/// Start of the tail, r.
const R: f64 = 3.442_619_855_899;
/// Area of each layer, v.
const V: f64 = 9.912_563_035_262_17e-3;
/// Scale of the signed 25-bit position: |position| < 2²⁴.
const M: f64 = 16_777_216.0;

struct Tables {
    /// Fast-accept thresholds on |position|.
    k: [u32; LAYERS],
    /// Position → x scale per layer.
    w: [f32; LAYERS],
    /// Density exp(−x²/2) at each layer's edge.
    f: [f32; LAYERS],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut k = [0u32; LAYERS];
        let mut w = [0f32; LAYERS];
        let mut f = [0f32; LAYERS];
        let mut dn = R;
        let mut tn = dn;
        let q = V / (-0.5 * dn * dn).exp();
        k[0] = ((dn / q) * M) as u32;
        k[1] = 0;
        w[0] = (q / M) as f32;
        w[LAYERS - 1] = (dn / M) as f32;
        f[0] = 1.0;
        f[LAYERS - 1] = (-0.5 * dn * dn).exp() as f32;
        for i in (1..LAYERS - 1).rev() {
            dn = (-2.0 * (V / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            k[i + 1] = ((dn / tn) * M) as u32;
            tn = dn;
            f[i] = (-0.5 * dn * dn).exp() as f32;
            w[i] = (dn / M) as f32;
        }
        Tables { k, w, f }
    })
}

/// Fills `out` with independent N(0, 1) draws.
pub fn fill_standard_normal<G: RngCore + ?Sized>(rng: &mut G, out: &mut [f32]) {
    let t = tables();
    let mut pairs = out.chunks_exact_mut(2);
    for pair in &mut pairs {
        let u = rng.next_u64();
        pair[0] = from_bits(t, u as u32, rng);
        pair[1] = from_bits(t, (u >> 32) as u32, rng);
    }
    if let [last] = pairs.into_remainder() {
        let u = rng.next_u64();
        *last = from_bits(t, u as u32, rng);
    }
}

/// One N(0, 1) draw (uses a whole 64-bit draw; prefer [`fill_standard_normal`] in bulk).
pub fn standard_normal<G: RngCore + ?Sized>(rng: &mut G) -> f32 {
    let u = rng.next_u64();
    from_bits(tables(), u as u32, rng)
}

#[inline]
fn from_bits<G: RngCore + ?Sized>(t: &Tables, bits: u32, rng: &mut G) -> f32 {
    let i = (bits & 127) as usize;
    let pos = (bits as i32) >> 7; // signed, |pos| ≤ 2²⁴
    if pos.unsigned_abs() < t.k[i] {
        return pos as f32 * t.w[i];
    }
    slow(t, i, pos, rng)
}

/// The rejection step: the tail (layer 0) or a wedge, retrying with fresh bits as needed.
#[cold]
fn slow<G: RngCore + ?Sized>(t: &Tables, mut i: usize, mut pos: i32, rng: &mut G) -> f32 {
    loop {
        if i == 0 {
            // Marsaglia's tail method beyond r.
            loop {
                let x = -open01(rng).ln() / R;
                let y = -open01(rng).ln();
                if y + y >= x * x {
                    let v = (R + x) as f32;
                    return if pos > 0 { v } else { -v };
                }
            }
        }
        let x = pos as f32 * t.w[i];
        let u: f32 = rng.random();
        if t.f[i] + u * (t.f[i - 1] - t.f[i]) < (-0.5 * x * x).exp() {
            return x;
        }
        let bits = rng.next_u32();
        i = (bits & 127) as usize;
        pos = (bits as i32) >> 7;
        if pos.unsigned_abs() < t.k[i] {
            return pos as f32 * t.w[i];
        }
    }
}

/// Uniform in (0, 1], never 0 (for logarithms).
fn open01<G: RngCore + ?Sized>(rng: &mut G) -> f64 {
    1.0 - rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normal::check::{assert_ks_normal, assert_moments_normal};
    use crate::rng::seeded;

    /// Moments and tail masses of 4·10⁶ draws (`check::assert_moments_normal`).
    #[test]
    fn moments_and_tails_are_normal() {
        let mut v = vec![0.0f32; 4_000_000];
        fill_standard_normal(&mut seeded(11), &mut v);
        assert_moments_normal(&v);
    }

    /// Kolmogorov–Smirnov distance of 200 000 draws from Φ (`check::assert_ks_normal`).
    #[test]
    fn kolmogorov_smirnov_against_phi() {
        let mut v = vec![0.0f32; 200_000];
        fill_standard_normal(&mut seeded(12), &mut v);
        assert_ks_normal(&v);
    }

    /// Same seed, same draws; the single-draw function agrees in distribution (mean, variance).
    #[test]
    fn reproducible_and_single_draws_agree() {
        let (mut a, mut b) = (vec![0.0f32; 1001], vec![0.0f32; 1001]);
        fill_standard_normal(&mut seeded(5), &mut a);
        fill_standard_normal(&mut seeded(5), &mut b);
        assert_eq!(a, b);
        let mut rng = seeded(6);
        let n = 1_000_000;
        let xs: Vec<f64> = (0..n).map(|_| f64::from(standard_normal(&mut rng))).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 5e-3 && (var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(), "{mean} {var}");
    }
}
