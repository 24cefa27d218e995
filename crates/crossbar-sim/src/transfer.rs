//! Tiki-Taka transfer learning (aihwkit `TransferCompound`, Gokmen & Haensch, Front. Neurosci.
//! 2020; and its buffered variant `BufferedTransferCompound`, TTv2, Gokmen 2021): each weight
//! is held by two devices, a fast device A that receives the SGD pulses and a slow device C
//! that the forward and backward passes see (W = γ·A + C; γ = 0 by default, so W = C).
//!
//! An update call sends the pulsed SGD update of every vector pair to A (learning rate
//! `fast_lr`·lr). After every `transfer_every` vectors (times the batch size with
//! `units_in_mbatch`), `n_reads_per_transfer` columns of A are read (forward passes with one-hot
//! inputs through the `transfer_forward` periphery, cycling through the columns) and written to
//! C with a pulsed update on `transfer_update`:
//!
//! - **Tiki-Taka** (TTv1): C[:, j] += λ·v_j for the read column v_j = A[:, j] + noise, with
//!   λ = `transfer_lr` (times lr with `scale_transfer_lr`).
//! - **Buffered** (TTv2): the read is accumulated in a digital buffer H per weight,
//!   ω = H + λ·v; n = trunc(ω/θ) clipped to ±BL of `transfer_update` with θ = `thres_scale`
//!   times C's granularity; where n ≠ 0, H ← ω·`momentum` (`forget_buffer`) or
//!   H ← ω − (1 − `momentum`)·n·θ, else H ← ω; C[:, j] receives a pulsed update of n steps
//!   (learning rate `step`·θ/`thres_scale`, i.e. `step` device steps per unit of n).
//!
//! - **Chopped** (c-TTv2 / TTv3, aihwkit `ChoppedTransferCompound`, Rasch et al. 2024): as
//!   buffered, with random sign "choppers" c_in per column and c_out per row (for column
//!   transfers). A takes the chopped gradient (each coincidence's sign times c_in·c_out), and
//!   the read is multiplied by the same signs before it enters the buffer, so the gradient is
//!   recovered while A's own bias is not. The buffer counts in units of the threshold:
//!   H += λ/b·c·v with b = `buffer_granularity`·ε_A (·`auto_granularity`/(size·|`transfer_every`|)
//!   when set); where |H| ≥ 1, n = trunc(H) clipped to ±BL is written to C and H is reduced as
//!   for the buffered rule (with n in place of n·θ). After each read of column i, c_in(i) flips
//!   with probability `in_chop_prob` (or regularly); after the last column each c_out flips with
//!   `out_chop_prob`. `auto_scale` sets A's pulse-count learning rate per vector from running
//!   means of max|x| and max|d|.
//! - **Dynamic** (AGAD / TTv4, aihwkit `DynamicTransferCompound`): chopped, with each read
//!   taken relative to a reference, the running mean of the weight's reads at the end of the
//!   previous chopper period; the input choppers flip regularly (and optionally at random).
//!
//! With `transfer_columns` off, rows are read instead (backward passes with one-hot errors)
//! and written row by row. The order within an update call follows aihwkit's per-vector loop:
//! the SGD pulses of the vectors up to a transfer point, then the transfer, then the next
//! vectors. `docs/devices.md` has the details and the differences from aihwkit.

use serde::{Deserialize, Serialize};

use crate::device::DeviceConfig;
use crate::dynamics::DynamicsConfig;
use crate::error::{ConfigError, path};
use crate::io_config::{BoundManagement, IoConfig, NoiseManagement};
use crate::update_config::UpdateConfig;

/// Which transfer rule moves A into C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferAlgorithm {
    /// Tiki-Taka v1 (aihwkit `TransferCompound`): the read column is written to C directly
    /// with a stochastic pulsed update. The default.
    #[default]
    TikiTaka,
    /// Tiki-Taka v2 (aihwkit `BufferedTransferCompound`): the reads accumulate in a digital
    /// buffer and only whole thresholds are written.
    Buffered,
    /// Chopped Tiki-Taka v2 (aihwkit `ChoppedTransferCompound`, also called TTv3 or c-TTv2):
    /// buffered, with sign choppers on A's gradient and on the reads. One read per transfer,
    /// sequential, no resets.
    Chopped,
    /// AGAD (aihwkit `DynamicTransferCompound`, TTv4, Rasch et al. 2024): chopped, but each read
    /// enters the buffer relative to a dynamic reference, the running mean of the column's reads
    /// in the previous chopper period, instead of relative to 0.
    Dynamic,
}

/// Settings of the transfer (Tiki-Taka) update. Off by default; the other defaults are
/// aihwkit's Python defaults of `TransferCompound` / `BufferedTransferCompound`.
///
/// The tile's own [`TileConfig`](crate::TileConfig) fields describe the slow, visible device C
/// (`device`, `dynamics`), the passes (`forward`, `backward`, `mapping`) and the SGD pulses
/// onto A (`update`); the fields here describe A and the transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// Use two devices per weight with transfers from A to C. Default: false.
    pub enabled: bool,
    /// Transfer rule. Default: [`TransferAlgorithm::TikiTaka`].
    pub algorithm: TransferAlgorithm,
    /// Device model of the fast device A. Default: the constant step device with aihwkit's
    /// defaults.
    pub fast_device: DeviceConfig,
    /// Decay, diffusion, reset and stuck devices of A (drift is not supported here; the visible
    /// device's are `dynamics` of the tile). Decay and diffusion run once per update call, after
    /// the last transfer, so they need `per_update`. Default: all off.
    pub fast_dynamics: DynamicsConfig,
    /// Weight of A in what the passes see, W = γ·A + C. Finite. Default: 0 (W = C).
    pub gamma: f32,
    /// Transfer after every this many update vectors (in units of the batch size with
    /// `units_in_mbatch`: every ⌈`transfer_every`·batch⌉ vectors; else every
    /// round(`transfer_every`) vectors); 0 = never. Chopped only: a negative value sets the
    /// period from the fast device's number of states n = (w_max − w_min)/ε_A, every
    /// max(1, round(n/size·|`transfer_every`|)) vectors (size: the columns, or rows, read), as
    /// aihwkit's automatic period. Finite, ≥ 0 for the other algorithms. Default: 1.
    pub transfer_every: f32,
    /// Count `transfer_every` in batches (update calls) instead of single vectors; unset = the
    /// algorithm's default (aihwkit's): true, false for chopped. Default: unset.
    pub units_in_mbatch: Option<bool>,
    /// Columns (or rows) of A read and written per transfer, consecutive and wrapping around;
    /// at most the column count is used. At least 1. Default: 1.
    pub n_reads_per_transfer: u32,
    /// Read columns of A (forward passes with one-hot inputs); `false` reads rows (backward
    /// passes with one-hot errors). Default: true.
    pub transfer_columns: bool,
    /// Start each transfer at a uniformly drawn column (row) instead of the one after the last
    /// transfer. Default: false.
    pub random_selection: bool,
    /// Tiki-Taka with columns only: each read of a transfer draws, and if any draw falls below
    /// this probability the transfer's columns of A are reset after all its reads (to `fast_dynamics.reset` + `reset_std`·ξ, as
    /// [`AnalogTile::reset_columns`](crate::AnalogTile::reset_columns)). In [0, 1]. Default: 0.
    pub with_reset_prob: f32,
    /// Learning rate of the SGD pulses onto A: `fast_lr`·lr with `scale_fast_lr`, else
    /// `fast_lr` itself. Finite, > 0. Default: 1.
    pub fast_lr: f32,
    /// Multiply `fast_lr` by the learning rate of the update call; unset = the algorithm's
    /// default (aihwkit's): true, false for chopped. Default: unset.
    pub scale_fast_lr: Option<bool>,
    /// Learning rate λ of a transfer: `transfer_lr`·lr with `scale_transfer_lr`, else
    /// `transfer_lr` itself; a λ of 0 skips the transfers. Finite, ≥ 0. Default: 1.
    pub transfer_lr: f32,
    /// Multiply `transfer_lr` by the learning rate of the update call. Default: true.
    pub scale_transfer_lr: bool,
    /// Periphery of the reads of A. aihwkit reads without noise or bound management, so both
    /// must be `none`. Default: the default periphery with both off.
    pub transfer_forward: IoConfig,
    /// The pulsed update that writes C; unset = the algorithm's default: for Tiki-Taka the
    /// default [`UpdateConfig`] (BL 31 with update and BL management), for buffered, chopped and dynamic BL 1
    /// without either (aihwkit's defaults). Default: unset.
    pub transfer_update: Option<UpdateConfig>,
    /// Buffered: the threshold θ in units of C's granularity (chopped uses
    /// `buffer_granularity` instead). Finite, > 0. Default: 1.
    pub thres_scale: f32,
    /// Buffered and chopped: device steps written per unit of n. Finite, > 0. Default: 1.
    pub step: f32,
    /// Buffered and chopped: the share of the buffer kept after a write (see the module docs);
    /// unset = the algorithm's default (aihwkit's): 0.1, 0 for chopped. In [0, 1]. Default:
    /// unset.
    pub momentum: Option<f32>,
    /// Buffered and chopped: after a write keep `momentum`·ω (true) or subtract
    /// (1 − `momentum`)·n·θ (false). Default: true.
    pub forget_buffer: bool,
    /// Chopped: probability that a column's (row's) input chopper flips after its read; with
    /// `in_chop_random` off, every chopper flips after every max(⌈1/p⌉, 2)-th sweep over the
    /// columns instead; 0 = never. In [0, 1]. Default: 0.1.
    pub in_chop_prob: f32,
    /// Chopped: flip the input choppers at random (true) or regularly (false); dynamic: flip
    /// regularly and, if true, also at random. Unset = the algorithm's default (aihwkit's): true
    /// for chopped, false for dynamic. Default: unset.
    pub in_chop_random: Option<bool>,
    /// Dynamic: the running mean of a column's reads moves by
    /// min(`tail_weightening`/N, 1) of the way per read, N = max(⌈1/`in_chop_prob`⌉, 2) the
    /// reads per chopper period. Finite, > 0. Default: 5.
    pub tail_weightening: f32,
    /// Dynamic, without `forget_buffer`: clip the buffer to ±`buffer_cap`·BL of the write after a
    /// write; 0 = no cap. Finite, ≥ 0. Default: 0.
    pub buffer_cap: f32,
    /// Chopped: probability that each output chopper flips after a sweep over all columns
    /// (rows). In [0, 1]. Default: 0.
    pub out_chop_prob: f32,
    /// Chopped: the buffer's unit b in units of A's granularity ε_A (replaces `thres_scale`).
    /// Finite, > 0. Default: 1.
    pub buffer_granularity: f32,
    /// Chopped: if > 0, b is further multiplied by `auto_granularity`/(size·|`transfer_every`|),
    /// size the number of columns (rows) read. Finite, ≥ 0. Default: 0 (off).
    pub auto_granularity: f32,
    /// Chopped: no buffer; each read's own n = trunc(λ/b·c·v) is written (Tiki-Taka v1 with
    /// whole steps). Default: false.
    pub no_buffer: bool,
    /// Chopped: A's pulse-count learning rate per vector is
    /// `fast_lr`·BL·ε_A/(m_x·m_d) (times lr with `scale_fast_lr`), BL the SGD update's
    /// `desired_bl`, m_x and m_d running means of max|x| and max|d| per vector. Default: false.
    pub auto_scale: bool,
    /// Chopped: momentum of the running means of `auto_scale`; each vector of a batch of B moves
    /// them by (1 − `auto_momentum`)/B of the way. In [0, 1]. Default: 0.99.
    pub auto_momentum: f32,
    /// Chopped: divide the transfer rate by A's pulse-count learning rate and count the buffer
    /// in units of C's granularity instead (b·ε_C/ε_A), so that C receives λ times the gradient.
    /// Default: false.
    pub correct_gradient_magnitudes: bool,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            algorithm: TransferAlgorithm::TikiTaka,
            fast_device: DeviceConfig::default(),
            fast_dynamics: DynamicsConfig::default(),
            gamma: 0.0,
            transfer_every: 1.0,
            units_in_mbatch: None,
            n_reads_per_transfer: 1,
            transfer_columns: true,
            random_selection: false,
            with_reset_prob: 0.0,
            fast_lr: 1.0,
            scale_fast_lr: None,
            transfer_lr: 1.0,
            scale_transfer_lr: true,
            transfer_forward: Self::read_io(),
            transfer_update: None,
            thres_scale: 1.0,
            step: 1.0,
            momentum: None,
            forget_buffer: true,
            in_chop_prob: 0.1,
            in_chop_random: None,
            tail_weightening: 5.0,
            buffer_cap: 0.0,
            out_chop_prob: 0.0,
            buffer_granularity: 1.0,
            auto_granularity: 0.0,
            no_buffer: false,
            auto_scale: false,
            auto_momentum: 0.99,
            correct_gradient_magnitudes: false,
        }
    }
}

impl TransferConfig {
    /// The default periphery without noise and bound management: aihwkit's `transfer_forward`.
    pub fn read_io() -> IoConfig {
        IoConfig {
            noise_management: NoiseManagement::None,
            bound_management: BoundManagement::None,
            ..IoConfig::default()
        }
    }

    /// The update that writes C: `transfer_update`, or the algorithm's default.
    pub fn write_update(&self) -> UpdateConfig {
        self.transfer_update.clone().unwrap_or_else(|| match self.algorithm {
            TransferAlgorithm::TikiTaka => UpdateConfig::default(),
            TransferAlgorithm::Buffered | TransferAlgorithm::Chopped | TransferAlgorithm::Dynamic => UpdateConfig {
                desired_bl: 1,
                update_management: false,
                update_bl_management: false,
                ..UpdateConfig::default()
            },
        })
    }

    /// Whether the algorithm uses choppers (chopped or dynamic).
    pub fn chopped(&self) -> bool {
        matches!(self.algorithm, TransferAlgorithm::Chopped | TransferAlgorithm::Dynamic)
    }

    /// Whether the algorithm is dynamic (AGAD).
    pub fn dynamic(&self) -> bool {
        self.algorithm == TransferAlgorithm::Dynamic
    }

    /// `in_chop_random`, or the algorithm's default.
    pub fn in_chop_random(&self) -> bool {
        self.in_chop_random.unwrap_or(!self.dynamic())
    }

    /// Reads per chopper period of the regular input choppers: max(⌈1/`in_chop_prob`⌉, 2).
    pub fn chop_period(&self) -> u64 {
        if self.in_chop_prob > 0.0 { ((1.0 / self.in_chop_prob).ceil() as u64).max(2) } else { 2 }
    }

    /// Whether a digital buffer is kept (buffered and chopped).
    pub fn buffered(&self) -> bool {
        self.algorithm != TransferAlgorithm::TikiTaka
    }

    /// `units_in_mbatch`, or the algorithm's default.
    pub fn units_in_mbatch(&self) -> bool {
        self.units_in_mbatch.unwrap_or(!self.chopped())
    }

    /// `scale_fast_lr`, or the algorithm's default.
    pub fn scale_fast_lr(&self) -> bool {
        self.scale_fast_lr.unwrap_or(!self.chopped())
    }

    /// `momentum`, or the algorithm's default.
    pub fn momentum(&self) -> f32 {
        self.momentum.unwrap_or(if self.chopped() { 0.0 } else { 0.1 })
    }

    /// Chopped with a negative `transfer_every`: vectors between transfers for a fast device
    /// of `n_states` states and `size` columns (rows) read.
    pub fn auto_period(&self, n_states: f32, size: usize) -> u64 {
        let t = n_states / size as f32 * self.transfer_every.abs();
        (t.round() as u64).max(1)
    }

    /// Vectors between transfers for an update call of `batch` vectors; 0 = no transfer (for
    /// a negative chopped `transfer_every`, see [`auto_period`](Self::auto_period)).
    pub fn period(&self, batch: usize) -> u64 {
        // (In f32, as aihwkit: the f64 product of the f32 0.1 and 10 is just above 1.)
        let every = if self.units_in_mbatch() {
            (self.transfer_every * batch as f32).ceil()
        } else {
            self.transfer_every.round()
        };
        if every >= 1.0 { every as u64 } else { 0 }
    }

    /// The learning rate of the SGD pulses onto A for an update call at `lr`.
    pub fn fast_rate(&self, lr: f32) -> f32 {
        if self.scale_fast_lr() { self.fast_lr * lr } else { self.fast_lr }
    }

    /// Chopped: the buffer's unit b for a fast device of granularity `eps_fast` and `size`
    /// columns (rows) read.
    pub fn buffer_unit(&self, eps_fast: f32, size: usize) -> f32 {
        let b = self.buffer_granularity * eps_fast;
        if self.auto_granularity > 0.0 {
            b * self.auto_granularity / (size as f32 * self.transfer_every.abs())
        } else {
            b
        }
    }

    /// The transfer learning rate λ for an update call at `lr`: `transfer_lr` (times `lr` with
    /// `scale_transfer_lr`), and for the buffered, chopped and dynamic rules also times γ when
    /// γ > 0, as aihwkit's buffered transfer scales it by the ratio of the two devices' weights
    /// in the read-out, γ_A/γ_C = γ/1 (`BufferedTransferRPUDeviceMetaParameter::getTransferLR`,
    /// which the chopped and dynamic devices inherit; Tiki-Taka v1 does not scale).
    pub fn transfer_rate(&self, lr: f32) -> f32 {
        let rate = if self.scale_transfer_lr { self.transfer_lr * lr } else { self.transfer_lr };
        if self.algorithm != TransferAlgorithm::TikiTaka && self.gamma > 0.0 { rate * self.gamma } else { rate }
    }

    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &'static str| move || path(prefix, f);
        self.fast_device.validate(&path(prefix, "fast_device"))?;
        self.fast_dynamics.validate(&path(prefix, "fast_dynamics"))?;
        if self.fast_dynamics.drift.drifts() {
            return Err(ConfigError::Invalid {
                field: path(prefix, "fast_dynamics.drift.nu"),
                reason: "drift of the fast device is not supported (drift the visible device with `dynamics.drift`)"
                    .into(),
            });
        }
        let fd = &self.fast_dynamics;
        if (fd.decays() || fd.diffuses()) && !fd.per_update {
            return Err(ConfigError::Invalid {
                field: path(prefix, "fast_dynamics.per_update"),
                reason: "the fast device decays and diffuses only after update calls: set per_update = true".into(),
            });
        }
        ConfigError::check_range(p("gamma"), self.gamma.into(), f32::MIN.into(), f32::MAX.into())?;
        if self.chopped() {
            ConfigError::check_range(
                p("transfer_every"),
                self.transfer_every.into(),
                f32::MIN.into(),
                f32::MAX.into(),
            )?;
        } else {
            ConfigError::check_non_negative(p("transfer_every"), self.transfer_every.into())?;
        }
        ConfigError::check_range(p("n_reads_per_transfer"), self.n_reads_per_transfer.into(), 1.0, u32::MAX.into())?;
        ConfigError::check_range(p("with_reset_prob"), self.with_reset_prob.into(), 0.0, 1.0)?;
        ConfigError::check_positive(p("fast_lr"), self.fast_lr.into())?;
        ConfigError::check_non_negative(p("transfer_lr"), self.transfer_lr.into())?;
        self.transfer_forward.validate(&path(prefix, "transfer_forward"))?;
        let io = &self.transfer_forward;
        if !io.is_perfect
            && (io.noise_management != NoiseManagement::None || io.bound_management != BoundManagement::None)
        {
            return Err(ConfigError::Invalid {
                field: path(prefix, "transfer_forward"),
                reason: "the reads of the fast device run without noise and bound management (as aihwkit's): \
                         set noise_management and bound_management to \"none\""
                    .into(),
            });
        }
        if let Some(u) = &self.transfer_update {
            u.validate(&path(prefix, "transfer_update"))?;
        }
        ConfigError::check_positive(p("thres_scale"), self.thres_scale.into())?;
        ConfigError::check_positive(p("step"), self.step.into())?;
        if let Some(m) = self.momentum {
            ConfigError::check_range(p("momentum"), m.into(), 0.0, 1.0)?;
        }
        ConfigError::check_range(p("in_chop_prob"), self.in_chop_prob.into(), 0.0, 1.0)?;
        ConfigError::check_range(p("out_chop_prob"), self.out_chop_prob.into(), 0.0, 1.0)?;
        ConfigError::check_positive(p("buffer_granularity"), self.buffer_granularity.into())?;
        ConfigError::check_non_negative(p("auto_granularity"), self.auto_granularity.into())?;
        ConfigError::check_range(p("auto_momentum"), self.auto_momentum.into(), 0.0, 1.0)?;
        ConfigError::check_positive(p("tail_weightening"), self.tail_weightening.into())?;
        ConfigError::check_non_negative(p("buffer_cap"), self.buffer_cap.into())?;
        if self.chopped() {
            // aihwkit's chopped device supports sequential single reads only.
            let unsupported = if self.n_reads_per_transfer != 1 {
                Some(("n_reads_per_transfer", "must be 1"))
            } else if self.random_selection {
                Some(("random_selection", "must be false"))
            } else if self.with_reset_prob != 0.0 {
                Some(("with_reset_prob", "must be 0"))
            } else {
                None
            };
            if let Some((field, what)) = unsupported {
                return Err(ConfigError::Invalid {
                    field: path(prefix, field),
                    reason: format!(
                        "{what} with the chopped algorithm (one sequential read per transfer, as in aihwkit)"
                    ),
                });
            }
            if self.dynamic() && self.out_chop_prob != 0.0 {
                return Err(ConfigError::Invalid {
                    field: path(prefix, "out_chop_prob"),
                    reason: "must be 0 with the dynamic algorithm (aihwkit's never flips its output choppers)".into(),
                });
            }
            if self.dynamic() && self.in_chop_prob == 0.0 {
                return Err(ConfigError::Invalid {
                    field: path(prefix, "in_chop_prob"),
                    reason: "must be > 0 with the dynamic algorithm (its reference is the mean of a chopper period)"
                        .into(),
                });
            }
            if self.dynamic() && !(self.auto_momentum > 0.0 && self.auto_momentum < 1.0) {
                return Err(ConfigError::Invalid {
                    field: path(prefix, "auto_momentum"),
                    reason: format!(
                        "must lie strictly between 0 and 1 with the dynamic algorithm, got {}",
                        self.auto_momentum
                    ),
                });
            }
            if self.auto_granularity > 0.0 && self.transfer_every == 0.0 {
                return Err(ConfigError::Invalid {
                    field: path(prefix, "auto_granularity"),
                    reason: "scales the buffer by 1/transfer_every, which is 0".into(),
                });
            }
        }
        if self.with_reset_prob > 0.0 && !(self.algorithm == TransferAlgorithm::TikiTaka && self.transfer_columns) {
            return Err(ConfigError::Invalid {
                field: path(prefix, "with_reset_prob"),
                reason: "resets after a read need the Tiki-Taka algorithm with transfer_columns (as in aihwkit)".into(),
            });
        }
        Ok(())
    }
}

/// The constants of one chopped (c-TTv2) transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChopRule {
    /// λ/b: the buffer's increment per unit read.
    pub scale: f32,
    /// The largest |n| (the write's BL).
    pub max_n: f32,
    /// `momentum`.
    pub momentum: f32,
    /// `forget_buffer`.
    pub forget: bool,
    /// `no_buffer`.
    pub no_buffer: bool,
}

impl ChopRule {
    /// One read vector `v` into its buffer slice `h` (in units of b), with the read's input
    /// chopper `c_in` and the output choppers `c_out` (true = negative sign), writing the
    /// signed step counts to `n` (module docs): H += ±scale·v; where |H| ≥ 1,
    /// n = trunc(H) clipped to ±`max_n`.
    pub(crate) fn step(&self, h: &mut [f32], v: &[f32], c_in: bool, c_out: &[bool], n: &mut [f32]) {
        for (((h, &v), &c), n) in h.iter_mut().zip(v).zip(c_out).zip(n.iter_mut()) {
            let val = v * self.scale;
            let mut omega = if self.no_buffer { 0.0 } else { *h };
            omega += if c_in != c { -val } else { val };
            *n = 0.0;
            if omega.abs() >= 1.0 {
                *n = omega.trunc().clamp(-self.max_n, self.max_n);
                omega = if self.forget { omega * self.momentum } else { omega - (1.0 - self.momentum) * *n };
            }
            *h = omega;
        }
    }
}

/// The constants of one buffered (TTv2) transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BufferRule {
    /// The transfer rate λ.
    pub lr: f32,
    /// The threshold θ.
    pub thres: f32,
    /// The largest |n| (the write's BL).
    pub max_n: f32,
    /// `momentum`.
    pub momentum: f32,
    /// `forget_buffer`.
    pub forget: bool,
}

impl BufferRule {
    /// One read vector `v` into its buffer slice `h`, writing the signed step counts to `n`
    /// (module docs): ω = h + λ·v, n = trunc(ω/θ) clipped to ±`max_n`.
    pub(crate) fn step(&self, h: &mut [f32], v: &[f32], n: &mut [f32]) {
        for ((h, &v), n) in h.iter_mut().zip(v).zip(n.iter_mut()) {
            let omega = *h + v * self.lr;
            let steps = (omega / self.thres).trunc().clamp(-self.max_n, self.max_n);
            *n = steps;
            *h = if steps == 0.0 {
                omega
            } else if self.forget {
                omega * self.momentum
            } else {
                omega - (1.0 - self.momentum) * steps * self.thres
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_counts_vectors_or_batches() {
        let c = TransferConfig { transfer_every: 1.0, ..TransferConfig::default() };
        assert_eq!(c.period(10), 10);
        let c = TransferConfig { transfer_every: 0.25, ..TransferConfig::default() };
        assert_eq!(c.period(10), 3); // ⌈2.5⌉
        let c = TransferConfig { transfer_every: 2.4, units_in_mbatch: Some(false), ..TransferConfig::default() };
        assert_eq!(c.period(10), 2);
        let c = TransferConfig { transfer_every: 0.4, units_in_mbatch: Some(false), ..TransferConfig::default() };
        assert_eq!(c.period(10), 0);
        let c = TransferConfig { transfer_every: 0.0, ..TransferConfig::default() };
        assert_eq!(c.period(10), 0);
        // Decimal fractions whose f32 is just above the decimal: ⌈0.1·10⌉ = 1, ⌈0.2·5⌉ = 1,
        // ⌈0.6·10⌉ = 6, ⌈1.1·10⌉ = 11, as aihwkit's f32 arithmetic gives.
        for (every, batch, want) in [(0.1, 10, 1), (0.2, 5, 1), (0.2, 100, 20), (0.6, 10, 6), (1.1, 10, 11)] {
            let c = TransferConfig { transfer_every: every, ..TransferConfig::default() };
            assert_eq!(c.period(batch), want, "{every} × {batch}");
        }
    }

    #[test]
    fn buffer_step_by_hand() {
        // θ = 0.1, λ = 0.5: ω = h + v/2.
        let mut h = [0.05, -0.02, 0.0, 0.3];
        let v = [0.2, -0.3, 0.1, 0.0];
        let mut n = [9.0; 4];
        BufferRule { lr: 0.5, thres: 0.1, max_n: 1.0, momentum: 0.1, forget: false }.step(&mut h, &v, &mut n);
        // ω = 0.15 → n 1, h = 0.15 − 0.9·0.1; ω = −0.17 → n −1, h = −0.17 + 0.09;
        // ω = 0.05 → n 0, h = 0.05; ω = 0.3 → trunc 3 clipped to 1, h = 0.3 − 0.09.
        assert_eq!(n, [1.0, -1.0, 0.0, 1.0]);
        let want = [0.15 - 0.09, -0.17 + 0.09, 0.05, 0.3 - 0.09];
        for (g, w) in h.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{h:?}");
        }
        // forget_buffer: h = 0.1·ω after a write; ω = 0.35 → trunc(3.5) = 3 (BL 31).
        let mut h = [0.05, 0.35];
        BufferRule { lr: 0.5, thres: 0.1, max_n: 31.0, momentum: 0.1, forget: true }.step(
            &mut h,
            &[0.2, 0.0],
            &mut n[..2],
        );
        assert_eq!(n[..2], [1.0, 3.0]);
        assert!((h[0] - 0.015).abs() < 1e-7 && (h[1] - 0.035).abs() < 1e-7, "{h:?}");
    }

    #[test]
    fn validation_names_fields() {
        let bad = TransferConfig { fast_lr: 0.0, ..TransferConfig::default() };
        assert!(bad.validate("transfer").unwrap_err().to_string().contains("transfer.fast_lr"));
        let bad = TransferConfig { transfer_forward: IoConfig::default(), ..TransferConfig::default() };
        assert!(bad.validate("transfer").unwrap_err().to_string().contains("transfer.transfer_forward"));
        let bad = TransferConfig { momentum: Some(1.5), ..TransferConfig::default() };
        assert!(bad.validate("transfer").unwrap_err().to_string().contains("transfer.momentum"));
        let bad = TransferConfig {
            with_reset_prob: 0.5,
            algorithm: TransferAlgorithm::Buffered,
            ..TransferConfig::default()
        };
        assert!(bad.validate("transfer").unwrap_err().to_string().contains("with_reset_prob"));
        TransferConfig::default().validate("transfer").unwrap();
        let chopped = TransferConfig { algorithm: TransferAlgorithm::Chopped, ..TransferConfig::default() };
        chopped.validate("transfer").unwrap();
        for (bad, field) in [
            (TransferConfig { n_reads_per_transfer: 2, ..chopped.clone() }, "transfer.n_reads_per_transfer"),
            (TransferConfig { random_selection: true, ..chopped.clone() }, "transfer.random_selection"),
            (TransferConfig { in_chop_prob: -0.1, ..chopped.clone() }, "transfer.in_chop_prob"),
            (TransferConfig { out_chop_prob: 2.0, ..chopped.clone() }, "transfer.out_chop_prob"),
            (TransferConfig { buffer_granularity: 0.0, ..chopped.clone() }, "transfer.buffer_granularity"),
            (TransferConfig { tail_weightening: 0.0, ..chopped.clone() }, "transfer.tail_weightening"),
            (TransferConfig { buffer_cap: -1.0, ..chopped.clone() }, "transfer.buffer_cap"),
            (
                TransferConfig { algorithm: TransferAlgorithm::Dynamic, in_chop_prob: 0.0, ..chopped.clone() },
                "transfer.in_chop_prob",
            ),
            (
                TransferConfig { algorithm: TransferAlgorithm::Dynamic, out_chop_prob: 0.5, ..chopped.clone() },
                "transfer.out_chop_prob",
            ),
            (
                TransferConfig { algorithm: TransferAlgorithm::Dynamic, auto_momentum: 1.0, ..chopped.clone() },
                "transfer.auto_momentum",
            ),
            (TransferConfig { auto_momentum: f32::NAN, ..chopped.clone() }, "transfer.auto_momentum"),
            (
                TransferConfig { auto_granularity: 100.0, transfer_every: 0.0, ..chopped.clone() },
                "transfer.auto_granularity",
            ),
        ] {
            let e = bad.validate("transfer").unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn algorithm_defaults_follow_aihwkit() {
        let tt = TransferConfig::default();
        assert!(tt.units_in_mbatch() && tt.scale_fast_lr() && tt.momentum() == 0.1);
        let ch = TransferConfig { algorithm: TransferAlgorithm::Chopped, ..tt.clone() };
        assert!(!ch.units_in_mbatch() && !ch.scale_fast_lr() && ch.momentum() == 0.0 && ch.in_chop_random());
        let dy = TransferConfig { algorithm: TransferAlgorithm::Dynamic, ..tt.clone() };
        assert!(!dy.units_in_mbatch() && !dy.scale_fast_lr() && dy.momentum() == 0.0 && !dy.in_chop_random());
        let wu = dy.write_update();
        assert!(wu.desired_bl == 1 && !wu.update_management && !wu.update_bl_management);
        assert_eq!((dy.chop_period(), dy.tail_weightening, dy.buffer_cap), (10, 5.0, 0.0));
        assert_eq!(ch.period(10), 1, "chopped transfers after every vector by default");
        let wu = ch.write_update();
        assert!(wu.desired_bl == 1 && !wu.update_management && !wu.update_bl_management);
        // b = buffer_granularity·ε_A, times auto_granularity/(size·transfer_every).
        let ch = TransferConfig { buffer_granularity: 2.0, ..ch };
        assert_eq!(ch.buffer_unit(1e-3, 8), 2e-3);
        let ch = TransferConfig { auto_granularity: 1000.0, transfer_every: 2.0, ..ch };
        assert!((ch.buffer_unit(1e-3, 8) - 2e-3 * 1000.0 / 16.0).abs() < 1e-9);
    }

    #[test]
    fn automatic_period_counts_states_per_column() {
        let c = TransferConfig { algorithm: TransferAlgorithm::Chopped, transfer_every: -0.5, ..Default::default() };
        c.validate("transfer").unwrap();
        // 1 200 states over 10 columns, half of that: every 60 vectors; never below 1.
        assert_eq!(c.auto_period(1200.0, 10), 60);
        assert_eq!(c.auto_period(1200.0, 10_000), 1);
        let tt = TransferConfig { transfer_every: -0.5, ..Default::default() };
        assert!(tt.validate("transfer").unwrap_err().to_string().contains("transfer.transfer_every"));
    }

    #[test]
    fn chop_step_by_hand() {
        // scale 10 (λ/b): H += ±10·v; sign − where c_in ≠ c_out.
        let rule = ChopRule { scale: 10.0, max_n: 1.0, momentum: 0.0, forget: true, no_buffer: false };
        let mut h = [0.5, 0.5, -0.2, 0.0, 0.95];
        let v = [0.06, 0.06, 0.05, 0.25, 0.0];
        let c_out = [false, true, true, false, false];
        let mut n = [9.0; 5];
        rule.step(&mut h, &v, true, &c_out, &mut n);
        // ω: 0.5 − 0.6 = −0.1 (no step); 0.5 + 0.6 = 1.1 → n 1, H 0 (forget, momentum 0);
        // −0.2 + 0.5 = 0.3; 0 − 2.5 → trunc −2 clipped to −1, H 0; 0.95 stays.
        assert_eq!(n, [0.0, 1.0, 0.0, -1.0, 0.0]);
        let want = [-0.1, 0.0, 0.3, 0.0, 0.95];
        for (g, w) in h.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{h:?}");
        }
        // Keeping the remainder: H −= (1 − 0.25)·n; BL 31 lets n = −2 through.
        let rule = ChopRule { scale: 10.0, max_n: 31.0, momentum: 0.25, forget: false, no_buffer: false };
        let mut h = [0.0, 0.5];
        rule.step(&mut h, &[-0.25, 0.1], false, &[false, false], &mut n[..2]);
        assert_eq!(n[..2], [-2.0, 1.0]);
        assert!((h[0] + 1.0).abs() < 1e-6 && (h[1] - 0.75).abs() < 1e-6, "{h:?}");
        // Without a buffer the old H is ignored.
        let rule = ChopRule { no_buffer: true, ..rule };
        let mut h = [0.9];
        rule.step(&mut h, &[0.05], false, &[false], &mut n[..1]);
        assert_eq!((n[0], h[0]), (0.0, 0.5));
    }
}
