//! FGSM, x' = clip(x + ε·sign(∇ₓ loss), 0, 1) in pixel space, and the accuracy of the
//! originally correct images against the signal-to-noise ratio
//! SNR = 20·log10(‖x‖₂ / ‖x' − x‖₂) dB.

use ndarray::{Array4, ArrayView4, Axis};

use crate::data::{Dataset, IMAGE_BYTES, Normalizer};
use crate::error::TrainError;
use crate::layers::SoftmaxCrossEntropy;
use crate::net::Network;

/// One point of a robustness curve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttackPoint {
    /// Perturbation size ε (pixel units in [0, 1]).
    pub eps: f32,
    /// Mean SNR over the attacked images (dB).
    pub snr_db: f64,
    /// Fraction of the originally correct images still classified correctly.
    pub accuracy: f64,
    /// Number of originally correct images attacked.
    pub n: usize,
}

/// 20·log10(‖x‖₂ / ‖x' − x‖₂) in dB (∞ for no perturbation).
pub fn snr_db(x: &[f32], x_adv: &[f32]) -> f64 {
    let signal: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
    let noise: f64 = x.iter().zip(x_adv).map(|(&a, &b)| (f64::from(b) - f64::from(a)).powi(2)).sum::<f64>().sqrt();
    20.0 * (signal / noise).log10()
}

fn pixels(ds: &Dataset, idx: &[usize]) -> Array4<f32> {
    let mut p = Array4::zeros((idx.len(), 3, 32, 32));
    for (mut dst, &i) in p.axis_iter_mut(Axis(0)).zip(idx) {
        for (d, &b) in dst.iter_mut().zip(ds.image(i)) {
            *d = f32::from(b) / 255.0;
        }
    }
    p
}

fn normalize(p: ArrayView4<'_, f32>, norm: &Normalizer) -> Array4<f32> {
    let mut x = p.to_owned();
    for mut img in x.axis_iter_mut(Axis(0)) {
        for (c, mut plane) in img.axis_iter_mut(Axis(0)).enumerate() {
            plane.mapv_inplace(|v| (v - norm.mean[c]) / norm.std[c]);
        }
    }
    x
}

/// The sign of the loss gradient with respect to the pixels of `p`, taken through the network
/// with one held assignment (the assignment is released afterwards).
pub fn fgsm_perturb(
    net: &mut Network,
    p: ArrayView4<'_, f32>,
    labels: &[u16],
    norm: &Normalizer,
) -> Result<Array4<f32>, TrainError> {
    net.hold_assignments(true);
    let result = (|| {
        let logits = net.forward(normalize(p, norm).view())?;
        let (_, g, _) = SoftmaxCrossEntropy::loss_grad(logits.view(), labels);
        net.backward(g.view())
    })();
    net.hold_assignments(false);
    // dL/dp = dL/dx / std_c: the same sign, since std > 0.
    Ok(result?.mapv(|v| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    }))
}

/// Accuracy-vs-SNR curve of FGSM on `ds` (evaluation mode, batches of `batch`): only images the
/// network classifies correctly (with a fresh assignment) are attacked; each attacked image is
/// classified again with a fresh assignment.
///
/// # Errors
/// [`TrainError::Config`] with the field `model` if the network classifies none of the images
/// correctly (nothing to attack, no point to report); [`TrainError::NonFiniteOutput`] for a
/// diverged network; layer errors.
pub fn fgsm_curve(
    net: &mut Network,
    ds: &Dataset,
    norm: &Normalizer,
    eps: &[f32],
    batch: usize,
) -> Result<Vec<AttackPoint>, TrainError> {
    net.set_training(false);
    let mut snr_sum = vec![0.0f64; eps.len()];
    let mut still = vec![0usize; eps.len()];
    let mut attacked = 0usize;
    for start in (0..ds.len()).step_by(batch.max(1)) {
        let idx: Vec<usize> = (start..(start + batch).min(ds.len())).collect();
        let labels: Vec<u16> = idx.iter().map(|&i| ds.labels[i]).collect();
        let p = pixels(ds, &idx);
        let clean = Network::predict_finite(&net.forward(normalize(p.view(), norm).view())?, &ds.name, &idx)?;
        let keep: Vec<usize> = (0..idx.len()).filter(|&k| clean[k] == usize::from(labels[k])).collect();
        if keep.is_empty() {
            continue;
        }
        let pk = p.select(Axis(0), &keep);
        let lk: Vec<u16> = keep.iter().map(|&k| labels[k]).collect();
        let kept: Vec<usize> = keep.iter().map(|&k| idx[k]).collect();
        let sign = fgsm_perturb(net, pk.view(), &lk, norm)?;
        attacked += keep.len();
        for (e, &eps_e) in eps.iter().enumerate() {
            let adv = (&pk + &(eps_e * &sign)).mapv(|v| v.clamp(0.0, 1.0));
            let pred = Network::predict_finite(&net.forward(normalize(adv.view(), norm).view())?, &ds.name, &kept)?;
            for (k, (a, c)) in adv.axis_iter(Axis(0)).zip(pk.axis_iter(Axis(0))).enumerate() {
                still[e] += usize::from(pred[k] == usize::from(lk[k]));
                let (cs, as_): (Vec<f32>, Vec<f32>) = (c.iter().copied().collect(), a.iter().copied().collect());
                debug_assert_eq!(cs.len(), IMAGE_BYTES);
                snr_sum[e] += snr_db(&cs, &as_);
            }
        }
    }
    net.set_training(true);
    if attacked == 0 {
        // No point to report: an accuracy of 0 over 0 images would read as "every attack won".
        return Err(TrainError::Config {
            field: "model".into(),
            reason: format!(
                "classifies none of the {} {} images correctly, so FGSM has no image to attack",
                ds.len(),
                ds.name
            ),
        });
    }
    Ok(eps
        .iter()
        .enumerate()
        .map(|(e, &eps_e)| AttackPoint {
            eps: eps_e,
            snr_db: snr_sum[e] / attacked as f64,
            accuracy: still[e] as f64 / attacked as f64,
            n: attacked,
        })
        .collect())
}
