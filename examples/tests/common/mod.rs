//! Comparing rapa's runs with aihwkit's recorded ones (`docs/results/aihwkit-compare/`): the
//! seeds' random streams differ between the simulators, so samples over seeds are compared as
//! distributions.

/// The JSON lines of a recorded file.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("a recorded JSON line")).collect()
}

/// Sample mean and (n − 1) variance.
pub fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0))
}

/// Whether two equally large samples agree: means within four standard errors of their
/// difference (Welch), and variances within the ratio `f_max`, the F distribution's
/// 1 − 10⁻⁴ quantile at the samples' degrees of freedom (so two-sided p < 0.0002 when equal).
/// Samples that are (nearly) constant in both (standard error of the difference below 10⁻⁴),
/// e.g. weights a rule never touched, are compared by value alone (means within `abs_tol`). Returns a line describing the two samples.
pub fn agree(ours: &[f64], theirs: &[f64], f_max: f64, abs_tol: f64) -> (bool, String) {
    let ((ma, va), (mb, vb)) = (mean_var(ours), mean_var(theirs));
    let se = (va / ours.len() as f64 + vb / theirs.len() as f64).sqrt();
    let means = if se < 1e-4 { (ma - mb).abs() < abs_tol } else { (ma - mb).abs() < 4.0 * se };
    let spreads = se < 1e-4 || va.max(vb) / va.min(vb).max(1e-12) < f_max;
    let line = format!("rapa {ma:8.4} ± {:.4}  aihwkit {mb:8.4} ± {:.4}", va.sqrt(), vb.sqrt());
    (means && spreads, line)
}
