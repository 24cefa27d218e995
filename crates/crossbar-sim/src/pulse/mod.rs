//! Pulse trains of the stochastic update, bit-packed: one `u32` per vector element holds up
//! to 31 pulse slots (bits 0..BL) and the element's sign (bit 31). The coincidences of x_j and
//! d_i are `popcount(x_word & d_word & SLOT_MASK)` and their sign is the XOR of the sign bits.
//! For [`PulseType::MeanCount`] the low bits hold the deterministic pulse count instead.

use crate::periphery::round_half_even;

mod trains;
use crate::update_config::{PulseType, UpdateConfig};
pub use trains::TrainStream;

/// Bits that carry pulse slots.
pub const SLOT_MASK: u32 = 0x7FFF_FFFF;
/// The sign bit (set for a negative element).
pub const SIGN_BIT: u32 = 0x8000_0000;

/// Train length and probability scales for one vector pair: p(x_j) = |x_j|·b, p(d_i) = |d_i|·a.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainScales {
    /// Pulse-train length BL (0: no update).
    pub bl: u32,
    /// Scale of the d side (row pulses), aihwkit's A.
    pub a: f32,
    /// Scale of the x side (column pulses), aihwkit's B.
    pub b: f32,
}

impl TrainScales {
    /// BL, A and B per aihwkit's `calculateBlAB` / update management, for learning rate `lr`,
    /// device granularity `eps`, and the vectors' largest magnitudes. A·B·BL·eps = lr, so the
    /// expected update is −lr·d·xᵀ while no probability exceeds 1.
    pub fn compute(cfg: &UpdateConfig, lr: f32, eps: f32, x_max: f32, d_max: f32) -> Self {
        if x_max <= 0.0 || d_max <= 0.0 || lr <= 0.0 {
            return Self { bl: 0, a: 0.0, b: 0.0 };
        }
        // k in f64 from the f32 inputs, which carry ~1e-7 relative rounding error each: a k
        // within 1e-6 (relative) above an integer is that integer, so that e.g.
        // 0.01·0.5/0.001 gives BL 5, not 6.
        let desired = f64::from(cfg.desired_bl);
        let (lr64, eps64, g) = (f64::from(lr), f64::from(eps), f64::from(cfg.um_grad_scale));
        let (xm, dm) = (f64::from(x_max), f64::from(d_max));
        let k = lr64 * xm * g * dm / eps64;
        let bl = if cfg.update_bl_management { (k * (1.0 - 1e-6)).ceil().clamp(1.0, desired) } else { desired };
        let base = (lr64 / (eps64 * bl)).sqrt();
        let (mut a, mut b) = (base, base);
        if cfg.update_management || cfg.update_bl_management {
            let mut dp = g * dm;
            if k > desired {
                dp *= desired / k;
            }
            a *= (xm / dp).sqrt();
            b *= (dp / xm).sqrt();
        }
        let (a, b) = (a as f32, b as f32);
        Self { bl: bl as u32, a, b }
    }
}

/// Encodes `values·scale` as pulse words into `out` (same length): stochastic trains from
/// `trains` ([`TrainStream`]), or for [`PulseType::MeanCount`] the rounded expected count.
pub fn make_trains(kind: PulseType, values: &[f32], scale: f32, bl: u32, out: &mut [u32], trains: &mut TrainStream) {
    debug_assert_eq!(values.len(), out.len());
    if kind == PulseType::MeanCount {
        for (o, &v) in out.iter_mut().zip(values) {
            *o = round_half_even(bl as f32 * (v.abs() * scale)).clamp(0.0, bl as f32) as u32;
        }
    } else {
        trains.fill(values, scale, bl.min(31), out);
    }
    for (o, &v) in out.iter_mut().zip(values) {
        if *o != 0 && v < 0.0 {
            *o |= SIGN_BIT;
        }
    }
}

/// Signed number of *up* pulses (weight increases) from words `xw` (column) and `dw` (row).
/// A coincidence of sgn(x)·sgn(d) > 0 is a down pulse: SGD on +d·xᵀ with lr > 0.
#[inline]
pub fn coincidences(kind: PulseType, xw: u32, dw: u32, bl: u32) -> i32 {
    let n = match kind {
        PulseType::MeanCount => {
            let nx = xw & SLOT_MASK;
            let nd = dw & SLOT_MASK;
            round_half_even((nx * nd) as f32 / bl as f32) as i32
        }
        _ => (xw & dw & SLOT_MASK).count_ones() as i32,
    };
    if (xw ^ dw) & SIGN_BIT != 0 { n } else { -n }
}
