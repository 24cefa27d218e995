//! Layers that are not tiles: ReLU, pooling (max, average, stochastic, mixed), Caffe's
//! WITHIN_CHANNEL LRN and the softmax cross-entropy loss. All work on `[N, C, H, W]` batches and
//! keep what their backward pass needs.

mod loss;
mod lrn;
mod pool;
mod pool_rows;
mod relu;

pub use loss::{SoftmaxCrossEntropy, argmax_row, softmax};
pub use lrn::Lrn;
pub use pool::{Pool, PoolKind, pool_out};
pub use relu::Relu;
