//! Device models: how a resistive device's conductance (weight) responds to one pulse.
//!
//! A model implements [`DeviceModel`]; the built-in models are configured by [`DeviceConfig`]
//! and documented with their equations in `docs/devices.md`. Users add their own model by
//! implementing the trait (see `examples/examples/custom_device.rs`) and passing it to
//! [`AnalogTile::with_device`](crate::AnalogTile::with_device).

mod common;
mod config;
mod constant_step;
mod exp_step;
mod linear_step;
mod model;
mod pow_step;
mod soft_bounds;

pub use common::PulsedParams;
pub use config::DeviceConfig;
pub use constant_step::ConstantStep;
pub use exp_step::ExpStep;
pub use linear_step::LinearStep;
pub use model::{DeviceArrays, DeviceModel, DeviceRow, Ideal};
pub use pow_step::PowStep;
pub use soft_bounds::SoftBounds;
