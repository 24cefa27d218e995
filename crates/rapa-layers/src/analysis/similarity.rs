//! Filter similarity: for each output channel, the Pearson correlation between the filters of
//! every pair of tiles, averaged over pairs and channels.

use crate::conv::RapaConv2d;

/// Similarity of a layer's replicated filters.
#[derive(Debug, Clone, PartialEq)]
pub struct Similarity {
    /// Mean over channels of the per-channel mean pairwise correlation.
    pub mean: f64,
    /// Mean pairwise correlation of each output channel.
    pub per_channel: Vec<f64>,
}

/// Pearson correlation of two equally long vectors (0 if either is constant).
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mb = b.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

/// Filter similarity of a layer (biases excluded). `None` with fewer than two kernel matrices.
pub fn filter_similarity(layer: &RapaConv2d) -> Option<Similarity> {
    let n = layer.tiles().len();
    if n < 2 {
        return None;
    }
    let kernels: Vec<_> = (0..n).map(|t| layer.kernel(t).to_owned()).collect();
    let c_out = layer.config().out_channels;
    let per_channel: Vec<f64> = (0..c_out)
        .map(|c| {
            let rows: Vec<Vec<f32>> = kernels.iter().map(|k| k.row(c).to_vec()).collect();
            let mut sum = 0.0;
            let mut pairs = 0usize;
            for i in 0..n {
                for j in i + 1..n {
                    sum += pearson(&rows[i], &rows[j]);
                    pairs += 1;
                }
            }
            sum / pairs as f64
        })
        .collect();
    let mean = per_channel.iter().sum::<f64>() / c_out as f64;
    Some(Similarity { mean, per_channel })
}
