//! Learning-rate schedule: warm-up, then step annealing.

use super::TrainConfig;

/// Learning rate of `epoch` (1-based): lr/50 during the first `warmup_epochs` epochs, then
/// lr·γ^⌊(epoch − 1 − warmup)/S⌋ with S = `lr_step`.
pub fn learning_rate(cfg: &TrainConfig, epoch: usize) -> f32 {
    if epoch <= cfg.warmup_epochs {
        return cfg.lr / 50.0;
    }
    let steps = (epoch - 1 - cfg.warmup_epochs) / cfg.lr_step;
    cfg.lr * cfg.lr_gamma.powi(steps.min(i32::MAX as usize) as i32)
}
