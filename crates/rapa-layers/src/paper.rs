//! The conv stack of the paper's network (Caffe "cifar10_full" with ReLU, design §3), defined
//! once so that weight counts, timing and the trainer all derive from the same layers.

use crate::assign::Scheme;
use crate::conv::{ConvConfig, TileKind};
use crate::geometry::ConvGeometry;

/// Output side of a Caffe pooling window (ceil mode): ⌈(size − k)/stride⌉ + 1, without a
/// last window that would start at or beyond the input's edge. (That happens only with a
/// kernel smaller than the stride, e.g. a 1×1/2 pool of an even side; Caffe's unpadded layer
/// then pools an empty window into −∞ and an index outside it.)
///
/// # Panics
/// If `stride` is 0.
pub fn pool_out(size: usize, kernel: usize, stride: usize) -> usize {
    let ceil = size.saturating_sub(kernel).div_ceil(stride) + 1;
    ceil.min(size.saturating_sub(1) / stride + 1)
}

/// The three conv layers of the paper's network on 32×32×3 images: 5×5 kernels with pad 2,
/// 32, 32 and 64 channels, each followed by a 3×3/2 pool (32 → 16 → 8 → 4). `tiles` gives n
/// per layer; the scheme applies to every layer with n > 1 (layers with n = 1 use `none`,
/// except perforated, which keeps its scheme: one kernel on all patches either way).
/// Initial weight std as in Caffe: 1e-4, 0.01, 0.01.
pub fn paper_convs(tiles: [usize; 3], scheme: Scheme, tile: &TileKind) -> [ConvConfig; 3] {
    paper_like_convs([32, 32, 64], tiles, scheme, tile)
}

/// The paper's conv stack with other channel counts (e.g. the "enlarged" 54, 64, 64).
pub fn paper_like_convs(channels: [usize; 3], tiles: [usize; 3], scheme: Scheme, tile: &TileKind) -> [ConvConfig; 3] {
    let init = [1e-4, 0.01, 0.01];
    let mut side = 32;
    let mut c_in = 3;
    std::array::from_fn(|l| {
        let geometry = ConvGeometry { in_channels: c_in, height: side, width: side, kernel: 5, stride: 1, pad: 2 };
        let n = tiles[l];
        let cfg = ConvConfig {
            geometry,
            out_channels: channels[l],
            n_tiles: n,
            scheme: if n == 1 && scheme != Scheme::Perforated { Scheme::None } else { scheme },
            tile: tile.clone(),
            init_std: init[l],
        };
        side = pool_out(geometry.out_height(), 3, 2);
        c_in = channels[l];
        cfg
    })
}

/// Weights (including per-tile biases) of a conv stack: Σ kernels·(K + 1)·C_out.
pub fn conv_weight_count(layers: &[ConvConfig]) -> usize {
    layers.iter().map(|c| c.scheme.n_kernels(c.n_tiles) * (c.geometry.patch_len() + 1) * c.out_channels).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer defaults are the paper's first layer as RAPA tiles it.
    #[test]
    fn conv_defaults_are_the_papers_conv1() {
        let [conv1, conv2, _] = paper_convs([16, 4, 1], Scheme::Random, &TileKind::Float);
        assert_eq!(conv1, ConvConfig::default());
        assert_eq!(conv1.geometry, ConvGeometry::default());
        assert_ne!(conv2.geometry, ConvGeometry::default());
    }
}
