//! Reduction of a tiled layer to one kernel matrix: per output channel keep the filter (and
//! bias) of one tile, chosen by largest filter norm or by most max-pool wins, or average the
//! tiles' filters.

use ndarray::{Array2, ArrayView2};

use crate::assign::Scheme;
use crate::conv::{ConvConfig, RapaConv2d};
use crate::error::{LayerError, check_shape};

/// How the surviving tile of each output channel is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Reduction<'a> {
    /// The tile whose filter has the largest L2 norm.
    Norm,
    /// The tile with the most max-pool wins: `wins[[t, c]]` counts how often tile t's output
    /// won the max pool in channel c (counted by the caller on the training set).
    Wins(ArrayView2<'a, u64>),
    /// No choice: the mean of every tile's filter and bias. The layer's pre-activation output
    /// is linear in the kernel, so with float tiles the reduced layer computes, for every
    /// patch, the mean of what the n tiles would compute for it. With random assignment that
    /// is the layer's output averaged over assignments when n divides the patches per image P
    /// (as in the paper's layers; otherwise a tile's share of the patches is its count of the
    /// labels p mod n, over P, not 1/n). Not for image-pad tiles, which mask each patch to their
    /// own region: the reduced layer applies no mask. Analog tiles add noise and quantization,
    /// so there it holds only on average.
    Mean,
}

/// The chosen tile per output channel.
///
/// # Errors
/// [`LayerError::Invalid`] for [`Reduction::Mean`] (it chooses no tile) or a `wins` array
/// that is not `[n_tiles, out_channels]`.
pub fn reduction_choice(layer: &RapaConv2d, by: &Reduction<'_>) -> Result<Vec<usize>, LayerError> {
    let n = layer.tiles().len();
    let c_out = layer.config().out_channels;
    if *by == Reduction::Mean {
        return Err(LayerError::Invalid {
            field: "by",
            value: "mean".into(),
            reason: "the mean of the tiles chooses no tile".into(),
        });
    }
    let score = |t: usize, c: usize| -> f64 {
        match by {
            Reduction::Norm => layer.kernel(t).row(c).iter().map(|&v| f64::from(v) * f64::from(v)).sum(),
            Reduction::Wins(w) => w[[t, c]] as f64,
            Reduction::Mean => 0.0, // refused above
        }
    };
    if let Reduction::Wins(w) = by {
        check_shape("reduce", "wins", w.shape(), &[n, c_out])?;
    }
    // Ties go to the lowest tile index.
    Ok((0..c_out).map(|c| (0..n).fold(0, |best, t| if score(t, c) > score(best, c) { t } else { best })).collect())
}

/// A new untiled layer (scheme `none`, n = 1, same tile kind) holding, per output channel,
/// the filter and bias of the chosen tile, or for [`Reduction::Mean`] the mean of all tiles'
/// (accumulated in f64). `seed` seeds the new tile.
pub fn reduce(layer: &RapaConv2d, by: &Reduction<'_>, seed: u64) -> Result<RapaConv2d, LayerError> {
    let cfg = ConvConfig { n_tiles: 1, scheme: Scheme::None, ..layer.config().clone() };
    let c_out = cfg.out_channels;
    let k1 = cfg.geometry.patch_len() + 1;
    let mut out = RapaConv2d::new(cfg, seed)?;
    let w = if *by == Reduction::Mean {
        let mut sum = Array2::<f64>::zeros((c_out, k1));
        for tile in layer.tiles() {
            sum.zip_mut_with(&tile.weights(), |s, &v| *s += f64::from(v));
        }
        let n = layer.tiles().len() as f64;
        sum.mapv(|s| (s / n) as f32)
    } else {
        let choice = reduction_choice(layer, by)?;
        let mut w = Array2::<f32>::zeros((c_out, k1));
        for (c, &t) in choice.iter().enumerate() {
            w.row_mut(c).assign(&layer.tiles()[t].weights().row(c));
        }
        w
    };
    out.tiles_mut()[0].set_weights(w.view())?;
    Ok(out)
}
