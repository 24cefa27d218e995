//! Analyses of trained networks (paper §5): FGSM robustness, reduction to one kernel per layer,
//! and filter similarity.

mod attack;
#[cfg(feature = "plots")]
pub mod plots;
mod reduce;

pub use attack::{AttackPoint, fgsm_curve, fgsm_perturb, snr_db};
pub use reduce::{ReduceBy, count_pool_wins, reduce_network};
