//! [`DeviceConfig`]: the serializable choice of a built-in device model.

use serde::{Deserialize, Serialize};

use super::common::PulsedParams;
use super::constant_step::ConstantStep;
use super::exp_step::ExpStep;
use super::linear_step::LinearStep;
use super::model::{DeviceModel, Ideal};
use super::pow_step::PowStep;
use super::soft_bounds::SoftBounds;
use crate::error::ConfigError;

/// A built-in device model with its parameters. In TOML: `model = "constant-step"` plus the
/// model's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum DeviceConfig {
    /// Exact float updates, no bounds.
    Ideal,
    /// Constant step (the default, with aihwkit's default parameters).
    ConstantStep(PulsedParams),
    /// Linear step.
    LinearStep(LinearStep),
    /// Soft bounds.
    SoftBounds(SoftBounds),
    /// Exponential step.
    ExpStep(ExpStep),
    /// Power step.
    PowStep(PowStep),
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self::ConstantStep(PulsedParams::default())
    }
}

impl DeviceConfig {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        match self {
            Self::Ideal => Ok(()),
            Self::ConstantStep(p) => p.validate(prefix),
            Self::LinearStep(d) => d.validate(prefix),
            Self::SoftBounds(d) => d.validate(prefix),
            Self::ExpStep(d) => d.validate(prefix),
            Self::PowStep(d) => d.validate(prefix),
        }
    }

    /// The common pulsed parameters (None for the ideal device).
    pub fn params(&self) -> Option<&PulsedParams> {
        match self {
            Self::Ideal => None,
            Self::ConstantStep(p) => Some(p),
            Self::LinearStep(d) => Some(&d.params),
            Self::SoftBounds(d) => Some(&d.params),
            Self::ExpStep(d) => Some(&d.params),
            Self::PowStep(d) => Some(&d.params),
        }
    }

    /// Builds the runtime model (after [`validate`](Self::validate)).
    pub fn build(&self) -> Box<dyn DeviceModel> {
        match self {
            Self::Ideal => Box::new(Ideal),
            Self::ConstantStep(p) => Box::new(ConstantStep { params: p.clone() }),
            Self::LinearStep(d) => Box::new(d.clone()),
            Self::SoftBounds(d) => Box::new(d.clone()),
            Self::ExpStep(d) => Box::new(d.clone()),
            Self::PowStep(d) => Box::new(d.clone()),
        }
    }
}
