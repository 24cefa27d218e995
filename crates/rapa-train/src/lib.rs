//! # rapa-train
//!
//! Training of RAPA ConvNets on simulated analog arrays. This crate is being built (issue 4);
//! today it only re-exports the layer crate it will be built on.
//!
//! ```
//! use rapa_train::rapa_layers::crossbar_sim::TileConfig;
//! assert!(TileConfig::default().validate().is_ok());
//! ```

pub use rapa_layers;
