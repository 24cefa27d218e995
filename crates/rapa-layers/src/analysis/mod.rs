//! Analyses of RAPA layers (paper §5): filter similarity, reduction to one kernel, analog
//! timing and the load-balancing planner.

mod reduce;
mod similarity;
mod timing;

pub use reduce::{Reduction, reduce, reduction_choice};
pub use similarity::{Similarity, filter_similarity, pearson};
pub use timing::{LayerTiming, NetworkTiming, plan_tiles};
