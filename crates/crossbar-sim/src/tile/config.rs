//! [`TileConfig`]: everything that defines an analog tile, and its presets.

use serde::{Deserialize, Serialize};

use crate::cycles::TimingModel;
use crate::device::{DeviceConfig, PulsedParams, SoftBounds};
use crate::error::ConfigError;
use crate::io_config::IoConfig;
use crate::update_config::{PulseType, UpdateConfig};

/// Complete configuration of an analog tile. `Default` is the aihwkit-like default: constant
/// step device, default IO in both directions, stochastic-compressed update with BL 31.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TileConfig {
    /// Periphery of the forward pass.
    pub forward: IoConfig,
    /// Periphery of the backward pass (bound management is never applied here).
    pub backward: IoConfig,
    /// Pulsed update.
    pub update: UpdateConfig,
    /// Device model.
    pub device: DeviceConfig,
    /// Durations used by the analog-time estimate.
    pub timing: TimingModel,
}

/// Names accepted by [`TileConfig::preset`].
pub const PRESETS: [&str; 5] = ["aihwkit-default", "gokmen-vlasov", "idealized", "reram-sb", "perfect"];

impl TileConfig {
    /// Checks every field, naming the offending one in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.forward.validate("forward")?;
        self.backward.validate("backward")?;
        self.update.validate("update")?;
        self.device.validate("device")?;
        self.timing.validate("timing")
    }

    /// aihwkit's default `SingleRPUConfig`: constant step, dw_min 0.001, ±0.6 bounds, 30 %
    /// variations, default IO, BL 31 with update and BL management.
    pub fn aihwkit_default() -> Self {
        Self::default()
    }

    /// Gokmen–Vlasov-like (aihwkit `GokmenVlasovPresetDevice`): constant step, dw_min 0.0016
    /// (~1200 states in ±1), 30 % d2d and c2c, bounds ±1 with 30 % spread.
    pub fn gokmen_vlasov() -> Self {
        let params = PulsedParams { dw_min: 0.0016, w_max: 1.0, w_min: -1.0, ..PulsedParams::default() };
        Self { device: DeviceConfig::ConstantStep(params), ..Self::default() }
    }

    /// Idealized (aihwkit `IdealizedPresetDevice`): constant step, dw_min 0.0002 (~10 000
    /// states in ±1), 30 % d2d and c2c, no up/down d2d asymmetry, bounds ±1 with 30 % spread.
    pub fn idealized() -> Self {
        let params =
            PulsedParams { dw_min: 0.0002, w_max: 1.0, w_min: -1.0, up_down_dtod: 0.0, ..PulsedParams::default() };
        Self { device: DeviceConfig::ConstantStep(params), ..Self::default() }
    }

    /// Soft-bounds ReRAM-like (after aihwkit's `ReRamSBPresetDevice`): soft bounds with
    /// dw_min 0.002, bounds −0.75…1.25 (asymmetric, so the step sizes up and down differ at
    /// w = 0), 30 % d2d spreads, c2c 30 %; aihwkit's preset IO (out_bound 20, out_noise 0.1).
    pub fn reram_soft_bounds() -> Self {
        let params =
            PulsedParams { dw_min: 0.002, w_max: 1.25, w_min: -0.75, up_down_dtod: 0.05, ..PulsedParams::default() };
        let io = IoConfig { out_bound: 20.0, out_noise: 0.1, ..IoConfig::default() };
        Self {
            forward: io.clone(),
            backward: io,
            device: DeviceConfig::SoftBounds(SoftBounds { params, mult_noise: true }),
            ..Self::default()
        }
    }

    /// Exact float math: perfect IO, ideal device, float update. Equals [`FloatTile`](crate::FloatTile).
    pub fn perfect() -> Self {
        Self {
            forward: IoConfig::perfect(),
            backward: IoConfig::perfect(),
            update: UpdateConfig { pulse_type: PulseType::Float, ..UpdateConfig::default() },
            device: DeviceConfig::Ideal,
            timing: TimingModel::default(),
        }
    }

    /// A preset by name (one of [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        match name {
            "aihwkit-default" => Ok(Self::aihwkit_default()),
            "gokmen-vlasov" => Ok(Self::gokmen_vlasov()),
            "idealized" => Ok(Self::idealized()),
            "reram-sb" => Ok(Self::reram_soft_bounds()),
            "perfect" => Ok(Self::perfect()),
            _ => Err(ConfigError::UnknownName { what: "tile preset", name: name.into(), known: PRESETS.join(", ") }),
        }
    }
}
