//! Softmax cross-entropy, averaged over the batch.

use ndarray::{Array2, ArrayView2, Axis};

/// Row-wise softmax (numerically stable).
pub fn softmax(logits: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut p = logits.to_owned();
    for mut row in p.axis_iter_mut(Axis(0)) {
        let m = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let z = row.sum();
        row.mapv_inplace(|v| v / z);
    }
    p
}

/// Loss and gradient of the mean softmax cross-entropy.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftmaxCrossEntropy;

impl SoftmaxCrossEntropy {
    /// Returns (mean loss, d loss / d logits, number of correct arg-max predictions).
    ///
    /// # Panics
    /// If a label is ≥ the number of columns or there are fewer labels than rows (the dataset
    /// loaders reject labels outside the class range, and the trainer checks that the network
    /// has as many outputs as the data has classes).
    pub fn loss_grad(logits: ArrayView2<'_, f32>, labels: &[u16]) -> (f64, Array2<f32>, usize) {
        assert!(labels.len() >= logits.nrows(), "{} labels for {} rows of logits", labels.len(), logits.nrows());
        let n = logits.nrows().max(1) as f32;
        let mut g = softmax(logits);
        let mut loss = 0.0f64;
        let mut correct = 0;
        for ((mut row, lrow), &l) in g.axis_iter_mut(Axis(0)).zip(logits.axis_iter(Axis(0))).zip(labels) {
            let l = usize::from(l);
            let v = lrow.to_vec();
            correct += usize::from(argmax_row(&v) == l);
            // log-sum-exp: loss = m + ln Σ exp(v − m) − v_l, exact where ln(p_l) would underflow.
            let m = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let z: f64 = v.iter().map(|&x| f64::from(x - m).exp()).sum();
            loss += f64::from(m) + z.ln() - f64::from(v[l]);
            row[l] -= 1.0;
            row.mapv_inplace(|v| v / n);
        }
        (loss / f64::from(n), g, correct)
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax_row(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (k, &x)| if x > v[best] { k } else { best })
}
