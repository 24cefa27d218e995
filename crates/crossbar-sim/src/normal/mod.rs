//! Standard-normal `f32` draws, in two forms:
//!
//! - [`standard_normal`] and [`fill_standard_normal`]: a ziggurat on any [`rand::RngCore`],
//!   for single draws and short runs (device-to-device variation, cycle-to-cycle noise per
//!   pulse, input noise);
//! - [`NormalStream`]: its own eight-lane generator and a branch-free Box–Muller transform, for
//!   the millions of draws of the analog periphery (one output-noise draw per output element of
//!   every MVM: 512 000 per backward call of an 800×64 tile on 640 vectors). Its loops compile
//!   to vector code (AVX2 or AVX-512 where the CPU has them, detected at run time) and draw a
//!   normal in a fraction of the ziggurat's time; every path gives the same bits
//!   wherever `f32::mul_add` is correctly rounded (see `box_muller`).
//!
//! Both are checked in the tests against the normal distribution: mean, variance, skewness and
//! kurtosis, tail masses beyond 2, 3 and 4 σ, and a Kolmogorov–Smirnov distance, at tolerances
//! derived from the sample size.

mod box_muller;
mod ziggurat;

pub use box_muller::NormalStream;
#[cfg(target_arch = "x86_64")]
pub(crate) use box_muller::step_avx512;
pub(crate) use box_muller::{LANES, State, next_words, seed_lanes};
pub use ziggurat::{fill_standard_normal, standard_normal};

/// Statistical checks shared by the generators' tests.
#[cfg(test)]
pub(crate) mod check {
    /// Φ(x) by the complementary error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7,
    /// far below the tolerances used here).
    pub fn phi(x: f64) -> f64 {
        let z = x.abs() / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * z);
        let poly =
            t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erfc = poly * (-z * z).exp();
        if x >= 0.0 { 1.0 - 0.5 * erfc } else { 0.5 * erfc }
    }

    /// Moments and tail masses of `v` agree with N(0, 1) within 5 standard errors of each
    /// statistic (se of the mean 1/√n, of the variance √(2/n), of the skewness √(6/n), of the
    /// kurtosis √(24/n), of a tail mass √(p(1 − p)/n)).
    pub fn assert_moments_normal(v: &[f32]) {
        let nf = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / nf;
        let m = |p: i32| v.iter().map(|&x| (f64::from(x) - mean).powi(p)).sum::<f64>() / nf;
        let (var, m3, m4) = (m(2), m(3), m(4));
        let (skew, kurt) = (m3 / var.powf(1.5), m4 / (var * var));
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
        assert!(skew.abs() < 5.0 * (6.0 / nf).sqrt(), "skewness {skew}");
        assert!((kurt - 3.0).abs() < 5.0 * (24.0 / nf).sqrt(), "kurtosis {kurt}");
        for z in [2.0f64, 3.0, 4.0] {
            let p = 2.0 * (1.0 - phi(z));
            let got = v.iter().filter(|&&x| f64::from(x).abs() > z).count() as f64 / nf;
            let se = (p * (1.0 - p) / nf).sqrt();
            assert!((got - p).abs() < 5.0 * se, "P(|Z| > {z}) = {got}, expected {p} (se {se})");
        }
    }

    /// Kolmogorov–Smirnov distance of `v` from Φ below the 0.1 % critical value 1.95/√n.
    pub fn assert_ks_normal(v: &[f32]) {
        let mut s: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
        s.sort_by(f64::total_cmp);
        let nf = s.len() as f64;
        let d = s
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let c = phi(x);
                (c - i as f64 / nf).abs().max(((i + 1) as f64 / nf - c).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.95 / nf.sqrt(), "KS distance {d} ≥ {}", 1.95 / nf.sqrt());
    }
}
