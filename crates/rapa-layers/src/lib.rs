//! # rapa-layers
//!
//! The RAPA convolution (Replicated Arrays with Permuted Assignment; Rasch et al. 2018) over n
//! parallel crossbar tiles from `crossbar-sim`: im2col patch gathering with Caffe semantics
//! ([`ConvGeometry`]), every tiling scheme of the paper ([`Scheme`], [`Assigner`]) and the
//! layer itself ([`RapaConv2d`]), with float or analog tiles through the same code path.
//!
//! ```
//! use rapa_layers::{ConvConfig, ConvGeometry, RapaConv2d, Scheme, TileKind};
//! use ndarray::Array4;
//!
//! # fn main() -> Result<(), rapa_layers::LayerError> {
//! let geometry = ConvGeometry { in_channels: 3, height: 32, width: 32, kernel: 5, stride: 1, pad: 2 };
//! let cfg = ConvConfig { geometry, out_channels: 32, n_tiles: 16, scheme: Scheme::Random, tile: TileKind::Float, init_std: 1e-2 };
//! // The same layer: the defaults are the paper's conv1 (but with Caffe's initial std 1e-4).
//! assert_eq!(cfg, ConvConfig { init_std: 1e-2, ..ConvConfig::default() });
//! let mut conv1 = RapaConv2d::new(cfg, 42)?;
//! let x = Array4::<f32>::from_elem((2, 3, 32, 32), 0.5);
//! let y = conv1.forward(x.view())?;
//! assert_eq!(y.shape(), &[2, 32, 32, 32]);
//! // 16 tiles share the 2·1024 patches: 128 each, 64 per image.
//! assert!(conv1.tiles().iter().all(|t| t.counters().forward_cycles == 128));
//! assert_eq!(conv1.n_weights(), 16 * (75 + 1) * 32);
//! # Ok(())
//! # }
//! ```

pub mod analysis;
mod assign;
mod conv;
mod error;
mod geometry;
mod linear;
pub mod paper;

pub use assign::{Assigner, DROPPED, Scheme, random_partition};
pub use conv::{ConvConfig, ConvState, RapaConv2d, TileKind};
pub use error::LayerError;
pub use geometry::{ConvGeometry, MAX_CHANNELS, MAX_SIDE, Region};
pub use linear::TiledLinear;

pub use crossbar_sim;
