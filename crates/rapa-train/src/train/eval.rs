//! Evaluation: test error of one pass and of a majority vote over K passes.

use ndarray::Array4;

use crate::data::{Dataset, Normalizer, fill_batch};
use crate::error::TrainError;
use crate::net::Network;

/// Result of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    /// Images evaluated.
    pub n: usize,
    /// Error of the first pass (fraction).
    pub error: f64,
    /// Error of the majority vote over all passes (fraction); equals `error` for one pass.
    pub vote_error: f64,
    /// Predictions of the first pass.
    pub predictions: Vec<usize>,
}

/// Evaluates `net` (in evaluation mode) on `ds` in batches of `batch`, `passes` times (≥ 1).
/// With random tiling every pass draws fresh assignments; the vote takes the most frequent
/// class per image (ties: the lowest class index). NaN or infinite outputs are an error
/// ([`TrainError::NonFiniteOutput`]), not a prediction.
pub fn evaluate(
    net: &mut Network,
    ds: &Dataset,
    norm: &Normalizer,
    batch: usize,
    passes: usize,
) -> Result<EvalResult, TrainError> {
    if batch == 0 || passes == 0 {
        return Err(TrainError::Config { field: "eval".into(), reason: "batch and passes must be > 0".into() });
    }
    let n = ds.len();
    if n == 0 {
        return Err(TrainError::Config {
            field: "eval".into(),
            reason: format!("{} holds no images to evaluate", ds.name),
        });
    }
    net.set_training(false);
    let classes = net.config().classes;
    let mut votes = vec![0u32; n * classes];
    let mut first = Vec::with_capacity(n);
    let mut buf = Array4::<f32>::zeros((batch.min(ds.len()), 3, 32, 32));
    for pass in 0..passes {
        for start in (0..n).step_by(batch) {
            let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
            if buf.shape()[0] != idx.len() {
                buf = Array4::zeros((idx.len(), 3, 32, 32));
            }
            fill_batch(ds, &idx, norm, None, &mut buf);
            let logits = net.forward(buf.view())?;
            for (k, p) in Network::predict_finite(&logits, &ds.name, &idx)?.into_iter().enumerate() {
                votes[(start + k) * classes + p.min(classes - 1)] += 1;
                if pass == 0 {
                    first.push(p);
                }
            }
        }
    }
    net.set_training(true);
    let wrong = |pred: &mut dyn Iterator<Item = usize>| {
        pred.zip(&ds.labels).filter(|(p, l)| *p != usize::from(**l)).count() as f64 / n.max(1) as f64
    };
    let error = wrong(&mut first.iter().copied());
    let vote = (0..n).map(|i| {
        let v = &votes[i * classes..(i + 1) * classes];
        v.iter().enumerate().fold(0, |best, (k, &c)| if c > v[best] { k } else { best })
    });
    let vote_error = wrong(&mut vote.collect::<Vec<_>>().into_iter());
    Ok(EvalResult { n, error, vote_error, predictions: first })
}
