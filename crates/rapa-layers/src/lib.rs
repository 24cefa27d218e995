//! # rapa-layers
//!
//! The RAPA convolution (Replicated Arrays with Permuted Assignment) over n parallel
//! crossbar tiles. This crate is being built (issue 3); today it only re-exports the tile
//! types it will be built on.
//!
//! ```
//! use rapa_layers::crossbar_sim::{FloatTile, Tile};
//! let tile = FloatTile::new(32, 75);
//! assert_eq!(tile.in_size(), 75);
//! ```

pub use crossbar_sim;
