//! Analyses of trained networks (paper §5): FGSM robustness, reduction to one kernel per layer,
//! and filter similarity; learning curves of runs; the pulse response of a device; analog
//! inference on PCM with drift.

mod attack;
mod curves;
mod device;
mod inference;
#[cfg(feature = "plots")]
pub mod plots;
mod reduce;

pub use attack::{AttackPoint, fgsm_curve, fgsm_perturb, snr_db};
pub use curves::{CurveMetric, curves_csv, learning_curves};
pub use device::{MAX_PULSES, Pulse, PulseResponse, default_pulses, pulse_response};
pub use inference::{InferencePoint, PcmChip, PcmEval, TileLoc, make_digital, pcm_curve};
pub use reduce::{ReduceBy, count_pool_wins, reduce_network};
