//! Runnable examples live in `examples/examples/`; run one with `cargo run --release -p rapa-examples --example NAME`.

pub mod correlation;
pub mod pcm_drift;
pub mod softmax;
