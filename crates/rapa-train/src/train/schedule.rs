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

#[cfg(test)]
mod tests {
    use super::*;

    /// lr/50 for the warm-up epochs, then lr halved every `lr_step` epochs counted from the
    /// first epoch after the warm-up: with 1 warm-up epoch and S = 25 the halvings fall on
    /// epochs 27, 52 and 77 (as the full-budget runs' metrics show).
    #[test]
    fn schedule_at_its_boundaries() {
        let cfg = TrainConfig { lr: 0.02, warmup_epochs: 1, lr_step: 25, lr_gamma: 0.5, ..TrainConfig::default() };
        let at = |e| learning_rate(&cfg, e);
        assert_eq!(at(1), 0.02 / 50.0);
        assert_eq!([at(2), at(26)], [0.02; 2]);
        assert_eq!([at(27), at(51)], [0.01; 2]);
        assert_eq!([at(52), at(76)], [0.005; 2]);
        assert_eq!(at(77), 0.0025);
        let five = TrainConfig { warmup_epochs: 5, lr_step: 3, lr_gamma: 0.1, ..cfg };
        let at = |e| learning_rate(&five, e);
        assert_eq!([at(1), at(5)], [0.02 / 50.0; 2]);
        assert_eq!([at(6), at(8)], [0.02; 2]);
        assert_eq!(at(9), 0.02 * 0.1);
        assert_eq!(at(12), 0.02 * 0.1f32.powi(2));
    }
}
