//! Reduction of a tiled network to one kernel matrix per conv layer (paper §5): per output
//! channel keep the filter of the tile with the largest norm, or of the tile that wins the
//! max pool most often on the training set; or (beyond the paper) average the tiles.

use ndarray::{Array2, Array4};
use rapa_layers::analysis::{Reduction, reduce};

use crate::data::{Dataset, Normalizer, fill_batch};
use crate::error::TrainError;
use crate::layers::PoolKind;
use crate::net::Network;

/// How to pick each channel's surviving tile, or to average the tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceBy {
    /// Largest filter norm.
    Norm,
    /// Most max-pool wins, counted on a dataset.
    Wins,
    /// The mean of the tiles' filters and biases (no tile chosen).
    Mean,
}

impl ReduceBy {
    /// `norm`, `wins` or `mean`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Norm => "norm",
            Self::Wins => "wins",
            Self::Mean => "mean",
        }
    }
}

impl std::fmt::Display for ReduceBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ReduceBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ReduceBy::Norm, ReduceBy::Wins, ReduceBy::Mean]
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| format!("unknown reduction `{s}`; known: norm, wins, mean"))
    }
}

/// For conv layer `l`: `wins[[t, c]]` = how often the output of tile t was the maximum of a pool
/// window in channel c, over `ds` in evaluation mode (fresh assignments per pass, as at test).
/// A window whose values are all 0 after the ReLU has no winner and counts for no tile. Needs
/// max (or mixed) pooling after that layer.
pub fn count_pool_wins(
    net: &mut Network,
    l: usize,
    ds: &Dataset,
    norm: &Normalizer,
    batch: usize,
) -> Result<Array2<u64>, TrainError> {
    let kind = net.pools().get(l).map(|p| p.kind).ok_or_else(|| TrainError::Internal(format!("no pool {l}")))?;
    if !matches!(kind, PoolKind::Max | PoolKind::Mixed) {
        return Err(TrainError::Config {
            field: "--by".into(),
            reason: format!("max-pool wins need max or mixed pooling after conv{}, found {kind}", l + 1),
        });
    }
    let n_tiles = net.convs()[l].tiles().len();
    let c_out = net.convs()[l].config().out_channels;
    let p_count = net.convs()[l].config().geometry.n_patches();
    let mut wins = Array2::<u64>::zeros((n_tiles, c_out));
    net.set_training(false);
    let mut buf = Array4::<f32>::zeros((batch.min(ds.len()), 3, 32, 32));
    for start in (0..ds.len()).step_by(batch.max(1)) {
        let idx: Vec<usize> = (start..(start + batch).min(ds.len())).collect();
        if buf.shape()[0] != idx.len() {
            buf = Array4::zeros((idx.len(), 3, 32, 32));
        }
        fill_batch(ds, &idx, norm, None, &mut buf);
        net.forward(buf.view())?;
        let assign = net.convs()[l].last_assignment();
        let picks = net.pools()[l].last_argmax().ok_or_else(|| TrainError::Internal("pool has no argmax".into()))?;
        // The window's maximum is positive exactly where the ReLU passed its input.
        let positive = net.relus()[l]
            .last_mask()
            .and_then(|m| m.as_slice())
            .ok_or_else(|| TrainError::Internal("ReLU has no mask".into()))?;
        if positive.len() != idx.len() * c_out * p_count {
            return Err(TrainError::Internal(format!(
                "ReLU mask of conv{} has {} values, not {}·{c_out}·{p_count}",
                l + 1,
                positive.len(),
                idx.len()
            )));
        }
        let per_image = picks.len() / idx.len().max(1);
        let per_channel = per_image / c_out.max(1);
        for (o, &pick) in picks.iter().enumerate() {
            let (b, c) = (o / per_image, (o % per_image) / per_channel);
            if !positive[(b * c_out + c) * p_count + pick as usize] {
                continue;
            }
            let t = assign[b * p_count + pick as usize];
            if let Some(w) = wins.get_mut([t as usize, c]) {
                *w += 1;
            }
        }
    }
    net.set_training(true);
    Ok(wins)
}

/// Reduces every conv layer of `net` to one kernel matrix (scheme none), choosing tiles by
/// norm, or by max-pool wins counted on `ds` (layers not followed by a max or mixed pool —
/// conv3 before the average pool, or any layer with average or stochastic pooling — and
/// layers with one tile use the norm), or averaging the tiles (`Mean`, every layer). Returns
/// the method used for each conv layer.
pub fn reduce_network(
    net: &mut Network,
    by: ReduceBy,
    ds: &Dataset,
    norm: &Normalizer,
    batch: usize,
    seed: u64,
) -> Result<[ReduceBy; 3], TrainError> {
    let mut used = [ReduceBy::Norm; 3];
    for (l, used) in used.iter_mut().enumerate() {
        let reduced = match by {
            ReduceBy::Norm => reduce(&net.convs()[l], &Reduction::Norm, seed ^ l as u64)?,
            // Wins need a max (or mixed) pool after the layer; other layers fall back to norm.
            ReduceBy::Wins
                if net.convs()[l].tiles().len() > 1
                    && matches!(net.pools()[l].kind, PoolKind::Max | PoolKind::Mixed) =>
            {
                let wins = count_pool_wins(net, l, ds, norm, batch)?;
                *used = ReduceBy::Wins;
                reduce(&net.convs()[l], &Reduction::Wins(wins.view()), seed ^ l as u64)?
            }
            ReduceBy::Wins => reduce(&net.convs()[l], &Reduction::Norm, seed ^ l as u64)?,
            ReduceBy::Mean => {
                *used = ReduceBy::Mean;
                reduce(&net.convs()[l], &Reduction::Mean, seed ^ l as u64)?
            }
        };
        net.replace_conv(l, reduced)?;
    }
    Ok(used)
}
