//! [`TileConfig`]: everything that defines an analog tile, and its presets.

use serde::{Deserialize, Serialize};

use crate::cycles::TimingModel;
use crate::device::{DeviceConfig, LinearStep, PulsedParams, SoftBounds};
use crate::dynamics::DynamicsConfig;
use crate::error::ConfigError;
use crate::io_config::{BoundManagement, IoConfig, NoiseManagement};
use crate::mapping::MappingConfig;
use crate::mixed_precision::MixedPrecisionConfig;
use crate::transfer::TransferConfig;
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
    /// Weight-to-conductance mapping (digital output scales). Default: off.
    pub mapping: MappingConfig,
    /// Mixed-precision update: digital accumulation, whole device steps transferred. Default:
    /// off.
    pub mixed_precision: MixedPrecisionConfig,
    /// Decay, diffusion, reset and stuck devices ([`crate::dynamics`]). Default: all off.
    pub dynamics: DynamicsConfig,
    /// Tiki-Taka: a fast device per weight takes the SGD pulses and is transferred into the
    /// visible one ([`crate::transfer`]). Default: off.
    pub transfer: TransferConfig,
}

/// Names accepted by [`TileConfig::preset`].
pub const PRESETS: [&str; 11] = [
    "aihwkit-default",
    "gokmen-vlasov",
    "idealized",
    "reram-sb",
    "capacitor",
    "tiki-taka",
    "tiki-taka-idealized",
    "tiki-taka-reram-sb",
    "chopped-tiki-taka",
    "agad",
    "perfect",
];

impl TileConfig {
    /// Checks every field, naming the offending one in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.forward.validate("forward")?;
        self.backward.validate("backward")?;
        self.update.validate("update")?;
        self.device.validate("device")?;
        self.timing.validate("timing")?;
        self.mapping.validate("mapping")?;
        self.mixed_precision.validate("mixed_precision")?;
        self.dynamics.validate("dynamics")?;
        self.transfer.validate("transfer")?;
        if self.transfer.enabled && self.mixed_precision.enabled {
            return Err(ConfigError::Invalid {
                field: "transfer.enabled".into(),
                reason: "cannot be combined with mixed_precision.enabled: both replace the pulsed update".into(),
            });
        }
        Ok(())
    }

    /// aihwkit's default `SingleRPUConfig`: constant step, dw_min 0.001, ±0.6 bounds, 30 %
    /// variations, default IO, BL 31 with update and BL management.
    pub fn aihwkit_default() -> Self {
        Self::default()
    }

    /// Gokmen–Vlasov-like (aihwkit `GokmenVlasovPreset`): constant step, dw_min 0.0016
    /// (~1200 states in ±1), 30 % d2d and c2c, bounds ±1 with 30 % spread; preset IO.
    pub fn gokmen_vlasov() -> Self {
        let params = PulsedParams { dw_min: 0.0016, w_max: 1.0, w_min: -1.0, ..PulsedParams::default() };
        Self::with_preset_io(DeviceConfig::ConstantStep(params))
    }

    /// Idealized (aihwkit `IdealizedPreset`): constant step, dw_min 0.0002 (~10 000 states in
    /// ±1), 30 % d2d and c2c, no up/down d2d asymmetry, bounds ±1 with 30 % spread; preset IO.
    pub fn idealized() -> Self {
        let params =
            PulsedParams { dw_min: 0.0002, w_max: 1.0, w_min: -1.0, up_down_dtod: 0.0, ..PulsedParams::default() };
        Self::with_preset_io(DeviceConfig::ConstantStep(params))
    }

    /// Soft-bounds ReRAM-like, aihwkit's `ReRamSBPreset` (its `ReRamSBPresetDevice` is a
    /// soft-bounds reference device whose reference is 0 unless set): soft bounds with dw_min
    /// 0.002, bounds −0.75…1.25 with 24 % / 40 % d2d spread, up/down d2d 1 %, additive
    /// cycle-to-cycle noise of 3.75·dw_min per pulse, write noise of 56·dw_min
    /// (`dynamics.write_noise_std`); preset IO.
    pub fn reram_soft_bounds() -> Self {
        let params = PulsedParams {
            dw_min: 0.002,
            dw_min_std: 3.75,
            w_max: 1.25,
            w_min: -0.75,
            w_max_dtod: 0.24,
            w_min_dtod: 0.4,
            up_down_dtod: 0.01,
            ..PulsedParams::default()
        };
        let dynamics = DynamicsConfig { write_noise_std: 56.0, ..DynamicsConfig::default() };
        Self {
            dynamics,
            ..Self::with_preset_io(DeviceConfig::SoftBounds(SoftBounds {
                params,
                mult_noise: false,
                ..SoftBounds::default()
            }))
        }
    }

    /// Capacitor-based cell (aihwkit `CapacitorPresetDevice`, a linear-step fit to Li et al.,
    /// VLSI 2018, with leakage): dw_min 0.005, bounds ±1 with 7 % spread, slopes γ 0.05 (d2d
    /// 0.01), step d2d 10 %, up/down d2d 6 %, additive c2c noise 30 %, and a decay lifetime of
    /// 10⁶ update calls with 30 % d2d spread; preset IO. The lifetime counts mini-batches: how
    /// many a real capacitor holds depends on the time a training step takes, so set
    /// `dynamics.lifetime` for your system.
    pub fn capacitor() -> Self {
        let params = PulsedParams {
            dw_min: 0.005,
            dw_min_dtod: 0.1,
            dw_min_std: 0.3,
            w_max: 1.0,
            w_min: -1.0,
            w_max_dtod: 0.07,
            w_min_dtod: 0.07,
            up_down: 0.0,
            up_down_dtod: 0.06,
            ..PulsedParams::default()
        };
        let device = DeviceConfig::LinearStep(LinearStep {
            params,
            gamma_up: 0.05,
            gamma_down: 0.05,
            gamma_up_dtod: 0.01,
            gamma_down_dtod: 0.01,
            mean_bound_reference: true,
            mult_noise: false,
        });
        let dynamics = DynamicsConfig { lifetime: 1e6, lifetime_dtod: 0.3, ..DynamicsConfig::default() };
        Self { dynamics, ..Self::with_preset_io(device) }
    }

    /// Tiki-Taka on aihwkit's default devices: the [`aihwkit_default`](Self::aihwkit_default)
    /// tile with a second, identical device per weight that takes the SGD pulses, and aihwkit's
    /// `TransferCompound` defaults (one column read per batch with the default periphery
    /// without noise and bound management, written at λ = lr with BL 31; γ = 0).
    pub fn tiki_taka() -> Self {
        let transfer =
            TransferConfig { enabled: true, fast_device: DeviceConfig::default(), ..TransferConfig::default() };
        Self { transfer, ..Self::default() }
    }

    /// aihwkit's `TikiTakaIdealizedPreset`: two [`idealized`](Self::idealized) devices per
    /// weight, preset IO for the passes and for the reads of the fast device (without noise
    /// and bound management), the transfer's defaults otherwise.
    pub fn tiki_taka_idealized() -> Self {
        Self::preset_pair(Self::idealized())
    }

    /// aihwkit's `TikiTakaReRamSBPreset`: two [`reram_soft_bounds`](Self::reram_soft_bounds)
    /// devices per weight, each read against its own symmetry point
    /// (`subtract_symmetry_point`), both with the write noise; preset IO for the passes and for
    /// the reads of A (without noise and bound management), the Tiki-Taka defaults otherwise
    /// (one column per batch, BL 31 writes at λ = lr).
    pub fn tiki_taka_reram_sb() -> Self {
        let mut base = Self::reram_soft_bounds();
        if let DeviceConfig::SoftBounds(d) = &mut base.device {
            d.subtract_symmetry_point = true;
        }
        Self::preset_pair(base)
    }

    /// Tiki-Taka on a preset-IO tile `base`: its device and dynamics for both devices, preset IO
    /// without noise and bound management for the reads of A, the transfer's defaults.
    fn preset_pair(base: Self) -> Self {
        let transfer = TransferConfig {
            enabled: true,
            fast_device: base.device.clone(),
            fast_dynamics: base.dynamics.clone(),
            transfer_forward: IoConfig {
                noise_management: NoiseManagement::None,
                bound_management: BoundManagement::None,
                ..Self::preset_io()
            },
            ..TransferConfig::default()
        };
        Self { transfer, ..base }
    }

    /// Chopped Tiki-Taka v2 (c-TTv2) as aihwkit's `build_config("c-ttv2", …)` builds it: two
    /// default constant-step devices per weight, the SGD pulses onto A with BL 5 and a
    /// pulse-count learning rate set by `auto_scale` (`fast_lr` 0.1 of BL·ε_A per mean
    /// max|x|·max|d|), one column read after every vector through the default periphery without
    /// noise and bound management, the buffer in units of ε_A, whole steps written with BL 1,
    /// input choppers flipping with probability 0.1 per read; γ = 0.
    pub fn chopped_tiki_taka() -> Self {
        let transfer = TransferConfig {
            enabled: true,
            algorithm: crate::TransferAlgorithm::Chopped,
            fast_device: DeviceConfig::default(),
            fast_lr: 0.1,
            auto_scale: true,
            ..TransferConfig::default()
        };
        Self { transfer, update: UpdateConfig { desired_bl: 5, ..UpdateConfig::default() }, ..Self::default() }
    }

    /// AGAD (aihwkit `DynamicTransferCompound`, TTv4) as aihwkit's `build_config("agad", …)`
    /// builds it: the [`chopped_tiki_taka`](Self::chopped_tiki_taka) settings (BL 5 onto A at
    /// the `auto_scale` rate with `fast_lr` 0.1, one column read after every vector), each read
    /// taken relative to the column's running mean of the previous chopper period, input
    /// choppers flipping regularly every 10 reads of a column, writes of BL 1 with update and
    /// BL management.
    pub fn agad() -> Self {
        let mut cfg = Self::chopped_tiki_taka();
        cfg.transfer.algorithm = crate::TransferAlgorithm::Dynamic;
        // (The rule's own default write has neither management; aihwkit's helper turns both on.)
        cfg.transfer.transfer_update = Some(UpdateConfig { desired_bl: 1, ..UpdateConfig::default() });
        cfg
    }

    /// aihwkit's `PresetIOParameters` in both directions: 7-bit DAC, 9-bit ADC, out_bound 20,
    /// out_noise 0.1, iterative bound management, abs-max noise management.
    pub fn preset_io() -> IoConfig {
        IoConfig { out_bound: 20.0, out_noise: 0.1, ..IoConfig::default() }
    }

    fn with_preset_io(device: DeviceConfig) -> Self {
        Self { forward: Self::preset_io(), backward: Self::preset_io(), device, ..Self::default() }
    }

    /// Exact float math: perfect IO, ideal device, float update. Equals [`FloatTile`](crate::FloatTile).
    pub fn perfect() -> Self {
        Self {
            forward: IoConfig::perfect(),
            backward: IoConfig::perfect(),
            update: UpdateConfig { pulse_type: PulseType::Float, ..UpdateConfig::default() },
            device: DeviceConfig::Ideal,
            timing: TimingModel::default(),
            mapping: MappingConfig::default(),
            mixed_precision: MixedPrecisionConfig::default(),
            dynamics: DynamicsConfig::default(),
            transfer: TransferConfig::default(),
        }
    }

    /// A preset by name (one of [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        match name {
            "aihwkit-default" => Ok(Self::aihwkit_default()),
            "gokmen-vlasov" => Ok(Self::gokmen_vlasov()),
            "idealized" => Ok(Self::idealized()),
            "reram-sb" => Ok(Self::reram_soft_bounds()),
            "capacitor" => Ok(Self::capacitor()),
            "tiki-taka" => Ok(Self::tiki_taka()),
            "tiki-taka-idealized" => Ok(Self::tiki_taka_idealized()),
            "tiki-taka-reram-sb" => Ok(Self::tiki_taka_reram_sb()),
            "chopped-tiki-taka" => Ok(Self::chopped_tiki_taka()),
            "agad" => Ok(Self::agad()),
            "perfect" => Ok(Self::perfect()),
            _ => Err(ConfigError::UnknownName { what: "tile preset", name: name.into(), known: PRESETS.join(", ") }),
        }
    }
}
