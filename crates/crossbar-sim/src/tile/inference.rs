//! The inference tile: trained weights programmed onto PCM devices, read through the analog
//! forward periphery at a chosen time after programming, with drift compensation.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, s};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{Tile, add_digital_bias, check_finite, check_io, check_lr};
use crate::cycles::CycleCounters;
use crate::error::{ConfigError, SimError, check_shape};
use crate::io_config::IoConfig;
use crate::linalg::sgemm;
use crate::mapping::MappingConfig;
use crate::normal::standard_normal;
use crate::pcm::{MAX_T_INFERENCE, PcmDevices, PcmNoiseModel};
use crate::periphery::analog_mvm;
use crate::rng::{SimRng, stream};

/// How the outputs are corrected for the conductance lost to drift (aihwkit's
/// `inference/compensation/drift.py`).
///
/// At programming the tile reads the identity matrix through its analog forward pass (one
/// one-hot input per analog column, without mapping scales or bias) and keeps the readout
/// r₀ = mean|y|, clamped to ≥ 10⁻⁴; after each drift it reads again and multiplies its outputs
/// digitally by α = r₀/r(t).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftCompensation {
    /// No correction (α = 1).
    None,
    /// One factor per tile: the mean over all outputs of the readout. The default, as in
    /// aihwkit (`GlobalDriftCompensation`).
    #[default]
    Global,
    /// One factor per output (row of W): the mean over that output's readouts
    /// (`PerColumnDriftCompensation`).
    PerColumn,
}

impl DriftCompensation {
    /// The accepted names.
    pub const NAMES: [&'static str; 3] = ["none", "global", "per-column"];
}

impl FromStr for DriftCompensation {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "global" => Ok(Self::Global),
            "per-column" => Ok(Self::PerColumn),
            _ => Err(ConfigError::UnknownName {
                what: "drift compensation",
                name: s.to_string(),
                known: Self::NAMES.join(", "),
            }),
        }
    }
}

impl fmt::Display for DriftCompensation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Global => "global",
            Self::PerColumn => "per-column",
        })
    }
}

/// Configuration of an [`InferenceTile`]. `Default`: aihwkit's `InferenceRPUConfig` (default
/// forward IO, digital bias, PCM model, global drift compensation) except for the weight
/// mapping, which here maps the largest |weight| of each tile to 1 (ω = 1; aihwkit's default is
/// ω = 0, no scaling, and its hardware-aware presets use ω = 1): the output noise 0.06 and the
/// ADC range ±12 are defined for weights of order 1, and the conductance scale s makes the
/// device noise independent of the weight scale anyway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Periphery of the forward pass (the backward pass is exact).
    pub forward: IoConfig,
    /// Weight mapping and digital bias. Default: ω = 1 per tile, digital bias on.
    pub mapping: MappingConfig,
    /// The PCM device model.
    pub pcm: PcmNoiseModel,
    /// Drift compensation. Default: global.
    pub compensation: DriftCompensation,
    /// Weight noise injected into the forward and backward passes while training
    /// (hardware-aware training). Default: none.
    pub modifier: WeightModifier,
}

/// The kind of [`WeightModifier`] noise (aihwkit's `WeightModifierType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModifierKind {
    /// No modification. The default.
    #[default]
    None,
    /// w + σ·a·ξ (aihwkit `ADD_NORMAL`).
    AddNormal,
    /// w + w·σ·a·ξ (aihwkit `MULT_NORMAL`, with its factor a).
    MultNormal,
    /// w + a·σ·(c₀ + c₁|w|/a + c₂(w/a)²)·ξ (aihwkit `POLY`): with the default coefficients,
    /// PCM-like programming noise relative to the largest weight.
    Poly,
}

/// Weight noise for hardware-aware training (aihwkit's `WeightModifierParameter`). While the
/// tile trains (and in evaluation with `enable_during_test`), every forward pass draws modified
/// weights from the stored ones, and the forward pass and the following backward pass use them;
/// updates go to the unmodified weights. a = max|W'| of the tile's stored weights (without the
/// digital bias) with `rel_to_actual_wmax`, else `assumed_wmax`. `Default`: aihwkit's (no
/// modification, σ = 0, relative to the actual max, PCM-like polynomial).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightModifier {
    /// The noise. Default: none.
    pub kind: ModifierKind,
    /// σ (≥ 0, ≤ 10). Default: 0.
    pub std_dev: f32,
    /// a = max|W'| of the tile (else `assumed_wmax`). Default: true.
    pub rel_to_actual_wmax: bool,
    /// a when `rel_to_actual_wmax` is off (> 0). Default: 1.
    pub assumed_wmax: f32,
    /// Coefficients c of `poly`. Default: [0.26348/25, 0.0768, −0.001877·25] (aihwkit's).
    pub coeffs: [f32; 3],
    /// Modify in evaluation too. Default: false.
    pub enable_during_test: bool,
}

impl Default for WeightModifier {
    fn default() -> Self {
        Self {
            kind: ModifierKind::None,
            std_dev: 0.0,
            rel_to_actual_wmax: true,
            assumed_wmax: 1.0,
            coeffs: [0.26348 / 25.0, 0.0768, -0.001877 * 25.0],
            enable_during_test: false,
        }
    }
}

impl WeightModifier {
    /// Checks every field; `prefix` is prepended to field names in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let p = |f: &'static str| move || crate::error::path(prefix, f);
        ConfigError::check_range(p("std_dev"), self.std_dev.into(), 0.0, 10.0)?;
        ConfigError::check_positive(p("assumed_wmax"), self.assumed_wmax.into())?;
        if let Some(c) = self.coeffs.iter().find(|c| !c.is_finite()) {
            return Err(ConfigError::Invalid {
                field: crate::error::path(prefix, "coeffs"),
                reason: format!("must be finite, got {c}"),
            });
        }
        Ok(())
    }

    /// Whether it modifies anything.
    pub fn is_active(&self) -> bool {
        self.kind != ModifierKind::None && self.std_dev > 0.0
    }

    /// The modified weights of `w`, drawn from `rng` row by row.
    pub fn apply(&self, w: ArrayView2<'_, f32>, rng: &mut SimRng) -> Array2<f32> {
        let a = if self.rel_to_actual_wmax {
            let m = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if m > 0.0 { m } else { 1.0 }
        } else {
            self.assumed_wmax
        };
        let s = self.std_dev;
        let [c0, c1, c2] = self.coeffs;
        w.as_standard_layout().mapv(|v| {
            let xi = standard_normal(rng);
            match self.kind {
                ModifierKind::None => v,
                ModifierKind::AddNormal => v + s * a * xi,
                ModifierKind::MultNormal => v + v * s * a * xi,
                ModifierKind::Poly => {
                    let r = v.abs() / a;
                    v + a * s * (c0 + c1 * r + c2 * r * r) * xi
                }
            }
        })
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            forward: IoConfig::default(),
            mapping: MappingConfig { weight_scaling_omega: 1.0, columnwise: false, digital_bias: true },
            pcm: PcmNoiseModel::default(),
            compensation: DriftCompensation::Global,
            modifier: WeightModifier::default(),
        }
    }
}

impl InferenceConfig {
    /// Checks every field, naming the offending one in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.forward.validate("forward")?;
        self.mapping.validate("mapping")?;
        self.pcm.validate("pcm")?;
        self.modifier.validate("modifier")
    }
}

/// Stream index of the runtime generator within a tile's seed.
const RUNTIME_STREAM: u64 = 1;
/// Stream index of the weight modifier's generator within a tile's seed (the layers draw a
/// tile's initial weights from stream 2).
const MODIFIER_STREAM: u64 = 3;

/// A tile for analog inference on PCM (aihwkit's `InferenceTile` with `InferenceRPUConfig`).
///
/// - [`set_weights`](Tile::set_weights) takes trained weights (the target); with the mapping
///   they are stored as W' = W/α (`crate::mapping`), a digital bias stays digital.
/// - [`program`](Self::program) writes W' onto a (g⁺, g⁻) pair of PCM devices per weight with
///   programming noise and draws each device's drift exponent ([`crate::pcm`]), then reads the
///   drift-compensation reference.
/// - [`drift_to`](Self::drift_to)`(t)` reads the devices `t` seconds after programming (drift and
///   fresh 1/f read noise; programming first if that has not happened) and computes the
///   compensation factors.
/// - [`forward`](Tile::forward) runs the analog MVM of the weights read last (the target
///   weights before programming) through the forward periphery, then multiplies by the mapping
///   scales and the compensation factors and adds the digital bias.
/// - [`backward`](Tile::backward) is exact: z = d·W with W = [`weights`](Tile::weights), the
///   effective weights of the forward pass (aihwkit leaves out the compensation factor there).
/// - [`update`](Tile::update) is exact SGD on the target weights (hardware-aware training on the
///   noisy forward pass) and discards the programming: the changed weights must be programmed
///   again (aihwkit keeps the stale programmed state and overwrites the trained weights at the
///   next drift).
///
/// Randomness: one runtime generator (stream 1 of the seed) gives each forward pass its call
/// seed and draws the programming and read noise, so results do not depend on the thread count
/// and a clone continues the same stream.
///
/// ```
/// use crossbar_sim::{InferenceConfig, InferenceTile, Tile};
/// use ndarray::Array2;
///
/// # fn main() -> Result<(), crossbar_sim::SimError> {
/// // Trained weights with the bias in the last column (kept digital by default).
/// let w = Array2::from_shape_fn((8, 17), |(i, j)| 0.02 * ((3 * i + 5 * j) % 11) as f32 - 0.1);
/// let x = Array2::from_shape_fn((64, 17), |(b, j)| if j == 16 { 1.0 } else { ((b * 17 + j) as f32).sin() });
///
/// let mut tile = InferenceTile::from_weights(w.view(), &InferenceConfig::default(), 7)?;
/// tile.program();
/// let mut errors = Vec::new();
/// for t in [1.0, 86_400.0, 3.15e7] {
///     tile.drift_to(t)?; // seconds after programming
///     // Global drift compensation: one factor > 1 restores the readout lost to drift.
///     assert_eq!(tile.compensation_factors().len(), 1);
///     let y = tile.forward_new(x.view())?;
///     let exact = x.dot(&w.t());
///     errors.push((&y - &exact).mapv(f32::abs).mean().unwrap_or(0.0));
/// }
/// // Programming, read noise and the periphery's noise leave an error that grows with time.
/// assert!(errors.iter().all(|&e| e > 0.0) && errors[2] > errors[0]);
/// # Ok(())
/// # }
/// ```
///
/// Equality compares the state that [`Tile::snapshot`] saves: the modified weights kept for
/// the backward pass after a training forward pass are scratch and not compared, so a restored
/// tile equals the one it was saved from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceTile {
    cfg: InferenceConfig,
    seed: u64,
    /// Target stored weights W' (`[out, n_analog]`).
    target: Array2<f32>,
    /// The digital bias (empty without).
    bias: Vec<f32>,
    /// Mapping scales α, one per output (empty when mapping is off).
    scales: Vec<f32>,
    /// The stored weights the analog MVM uses now.
    current: Array2<f32>,
    /// The programmed devices, after [`program`](Self::program).
    devices: Option<PcmDevices>,
    /// Compensation reference r₀ (one value, or one per output), after programming.
    reference: Vec<f32>,
    /// Compensation factors applied to the outputs (empty: 1).
    factors: Vec<f32>,
    /// Seconds since programming of the last read (None before the first).
    t_inference: Option<f64>,
    rng: SimRng,
    counters: CycleCounters,
    /// The effective weights of [`Tile::weights`].
    w_eff: Array2<f32>,
    /// Training mode (the weight modifier acts only then, unless `enable_during_test`).
    #[serde(default = "yes")]
    training: bool,
    /// The weight modifier's generator.
    #[serde(default)]
    modifier_rng: Option<SimRng>,
    /// The modified stored weights of the last forward pass, for the backward pass (empty when
    /// none; not saved: the next forward pass draws new ones).
    #[serde(skip)]
    modified: Array2<f32>,
}

fn yes() -> bool {
    true
}

impl PartialEq for InferenceTile {
    fn eq(&self, other: &Self) -> bool {
        // Every field but the scratch `modified` (spelled out so that a new field is not
        // forgotten: the destructuring fails to compile without it).
        let Self {
            cfg,
            seed,
            target,
            bias,
            scales,
            current,
            devices,
            reference,
            factors,
            t_inference,
            rng,
            counters,
            w_eff,
            training,
            modifier_rng,
            modified: _,
        } = self;
        *cfg == other.cfg
            && *seed == other.seed
            && *target == other.target
            && *bias == other.bias
            && *scales == other.scales
            && *current == other.current
            && *devices == other.devices
            && *reference == other.reference
            && *factors == other.factors
            && *t_inference == other.t_inference
            && *rng == other.rng
            && *counters == other.counters
            && *w_eff == other.w_eff
            && *training == other.training
            && *modifier_rng == other.modifier_rng
    }
}

impl InferenceTile {
    /// A tile of `out × in` zero weights (with a digital bias the last input is the bias).
    pub fn new(out_size: usize, in_size: usize, cfg: &InferenceConfig, seed: u64) -> Result<Self, SimError> {
        cfg.validate()?;
        let digital = usize::from(cfg.mapping.digital_bias);
        if out_size == 0 || in_size <= digital {
            return Err(SimError::ShapeMismatch {
                op: "InferenceTile::new",
                what: if digital == 1 { "tile (a digital bias needs one more input)" } else { "tile" },
                expected: vec![1, 1 + digital],
                got: vec![out_size, in_size],
            });
        }
        let n_analog = in_size - digital;
        let mut tile = Self {
            cfg: cfg.clone(),
            seed,
            target: Array2::zeros((out_size, n_analog)),
            bias: vec![0.0; out_size * digital],
            scales: Vec::new(),
            current: Array2::zeros((out_size, n_analog)),
            devices: None,
            reference: Vec::new(),
            factors: Vec::new(),
            t_inference: None,
            rng: stream(seed, RUNTIME_STREAM),
            counters: CycleCounters::default(),
            w_eff: Array2::zeros((out_size, in_size)),
            training: true,
            modifier_rng: cfg.modifier.is_active().then(|| stream(seed, MODIFIER_STREAM)),
            modified: Array2::zeros((0, 0)),
        };
        tile.refresh_effective();
        Ok(tile)
    }

    /// A tile holding the trained weights `w` (`[out, in]`, the last column the bias with a
    /// digital bias).
    pub fn from_weights(w: ArrayView2<'_, f32>, cfg: &InferenceConfig, seed: u64) -> Result<Self, SimError> {
        let mut tile = Self::new(w.nrows(), w.ncols(), cfg, seed)?;
        tile.set_weights(w)?;
        Ok(tile)
    }

    /// The configuration.
    pub fn config(&self) -> &InferenceConfig {
        &self.cfg
    }

    /// The target stored weights W' (without the digital bias, divided by the mapping scales).
    pub fn target_weights(&self) -> ArrayView2<'_, f32> {
        self.target.view()
    }

    /// The stored weights the analog MVM uses now: the target before programming, else the
    /// weights of the last read.
    pub fn current_weights(&self) -> ArrayView2<'_, f32> {
        self.current.view()
    }

    /// The mapping scales α (empty when mapping is off).
    pub fn mapping_scales(&self) -> &[f32] {
        &self.scales
    }

    /// The programmed devices (None before [`program`](Self::program)).
    pub fn devices(&self) -> Option<&PcmDevices> {
        self.devices.as_ref()
    }

    /// The drift-compensation factors applied to the outputs: empty before the first read or
    /// without compensation, one value (global) or one per output (per column).
    pub fn compensation_factors(&self) -> &[f32] {
        &self.factors
    }

    /// Seconds since programming of the weights read last (None before the first read).
    pub fn t_inference(&self) -> Option<f64> {
        self.t_inference
    }

    /// Programs the target weights onto the devices (programming noise, drift exponents) and
    /// reads the compensation reference r₀ through the forward pass of the programmed weights
    /// (no drift, no read noise). The tile then computes with the programmed weights and no
    /// compensation factor until [`drift_to`](Self::drift_to). Programming again draws a new
    /// chip.
    pub fn program(&mut self) {
        let devices = PcmDevices::program(&self.cfg.pcm, self.target.view(), &mut self.rng);
        self.current = devices.programmed_weights();
        self.devices = Some(devices);
        self.reference = self.readout();
        self.factors.clear();
        self.t_inference = None;
        self.refresh_effective();
    }

    /// Reads the devices `t_inference` seconds after programming (programming first if the
    /// tile is not programmed): drift, fresh read noise, and new compensation factors
    /// α = r₀/r(t) from a fresh readout. `t_inference` must be in [0, 10¹²] seconds
    /// ([`MAX_T_INFERENCE`](crate::pcm::MAX_T_INFERENCE)).
    pub fn drift_to(&mut self, t_inference: f64) -> Result<(), SimError> {
        if !(0.0..=MAX_T_INFERENCE).contains(&t_inference) {
            return Err(SimError::InvalidArgument {
                op: "InferenceTile::drift_to",
                name: "t_inference",
                value: t_inference,
                reason: "must be in [0, 1e12] seconds since programming",
            });
        }
        if self.devices.is_none() {
            self.program();
        }
        let devices = self.devices.as_ref().expect("programmed just above");
        devices.read(&self.cfg.pcm, t_inference, &mut self.rng, &mut self.current);
        self.t_inference = Some(t_inference);
        let now = self.readout();
        self.factors = self.reference.iter().zip(&now).map(|(r0, r)| r0 / r).collect();
        self.refresh_effective();
        Ok(())
    }

    /// The compensation readout of the current weights: the analog forward pass of the
    /// identity, mean |y| over all outputs (global) or per output, clamped to ≥ 10⁻⁴; empty
    /// without compensation. The call seed is drawn either way, so tiles that differ only in
    /// their compensation draw the same noise everywhere else.
    fn readout(&mut self) -> Vec<f32> {
        let seed = self.rng.next_u64();
        let c = self.cfg.compensation;
        if c == DriftCompensation::None {
            return Vec::new();
        }
        let n = self.current.ncols();
        let eye = Array2::<f32>::eye(n);
        let mut y = Array2::<f32>::zeros((n, self.current.nrows()));
        let passes = analog_mvm(&self.cfg.forward, self.current.t(), eye.view(), y.view_mut(), true, seed);
        self.counters.forward_cycles += n as u64;
        self.counters.forward_passes += passes;
        let per_output: Array1<f32> = y.mapv(f32::abs).mean_axis(Axis(0)).expect("n ≥ 1 analog inputs");
        let clamp = |v: f32| v.max(1e-4);
        match c {
            DriftCompensation::PerColumn => per_output.iter().map(|&v| clamp(v)).collect(),
            _ => vec![clamp(per_output.mean().expect("n ≥ 1 outputs"))],
        }
    }

    /// The digital factor of output `i`: mapping scale × compensation factor.
    fn out_factor(&self, i: usize) -> f32 {
        let a = self.scales.get(i).copied().unwrap_or(1.0);
        let c = match self.factors.len() {
            0 => 1.0,
            1 => self.factors[0],
            _ => self.factors[i],
        };
        a * c
    }

    /// Recomputes the effective weights after the current weights, the scales, the factors
    /// or the bias changed.
    fn refresh_effective(&mut self) {
        self.w_eff = self.effective(self.current.view(), true);
    }

    /// The effective weights of the stored weights `stored`: row i times output i's mapping
    /// scale (and, when `compensated`, its compensation factor), with the digital bias column.
    fn effective(&self, stored: ArrayView2<'_, f32>, compensated: bool) -> Array2<f32> {
        let n_analog = stored.ncols();
        let mut w = Array2::zeros((stored.nrows(), n_analog + usize::from(!self.bias.is_empty())));
        for (i, (mut e, r)) in w.rows_mut().into_iter().zip(stored.rows()).enumerate() {
            let f = if compensated { self.out_factor(i) } else { self.scales.get(i).copied().unwrap_or(1.0) };
            e.slice_mut(s![..n_analog]).zip_mut_with(&r, |e, &v| *e = f * v);
        }
        if !self.bias.is_empty() {
            w.column_mut(n_analog).assign(&ndarray::ArrayView1::from(&self.bias));
        }
        w
    }

    /// Checks the internal consistency of a deserialized tile (used by
    /// [`TileSnapshot::restore`](super::TileSnapshot::restore)).
    pub(crate) fn check_restored(mut self) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::State { reason };
        self.cfg.validate()?;
        let (out, n_analog) = self.target.dim();
        let digital = usize::from(self.cfg.mapping.digital_bias);
        if out == 0 || n_analog == 0 || self.current.dim() != (out, n_analog) {
            return Err(bad(format!("target {:?} and current {:?} weights", self.target.dim(), self.current.dim())));
        }
        if self.bias.len() != out * digital || !(self.scales.is_empty() || self.scales.len() == out) {
            return Err(bad(format!(
                "{} bias values, {} scales for {out} outputs",
                self.bias.len(),
                self.scales.len()
            )));
        }
        // The compensation reference exists once programmed (one value, or one per output), and
        // the factors once read.
        let want = match (self.devices.is_some(), self.cfg.compensation) {
            (false, _) | (_, DriftCompensation::None) => 0,
            (true, DriftCompensation::Global) => 1,
            (true, DriftCompensation::PerColumn) => out,
        };
        let read = self.t_inference.is_some();
        if self.reference.len() != want || self.factors.len() != if read { want } else { 0 } {
            return Err(bad(format!(
                "{} compensation references and {} factors for {} compensation of {out} outputs",
                self.reference.len(),
                self.factors.len(),
                self.cfg.compensation
            )));
        }
        if read && self.devices.is_none() {
            return Err(bad("a read time without programmed devices".into()));
        }
        if let Some(t) = self.t_inference.filter(|t| !(0.0..=MAX_T_INFERENCE).contains(t)) {
            return Err(bad(format!("read time {t} s is outside [0, 1e12]")));
        }
        let arrays: [(&str, &[f32]); 4] = [
            ("bias", &self.bias),
            ("reference", &self.reference),
            ("factors", &self.factors),
            ("scales", &self.scales),
        ];
        let finite = |v: &f32| v.is_finite();
        for (name, a) in arrays {
            if let Some(v) = a.iter().find(|v| !finite(v)) {
                return Err(bad(format!("{name} holds {v}")));
            }
        }
        if let Some(v) = self.scales.iter().chain(&self.reference).find(|v| **v <= 0.0) {
            return Err(bad(format!("mapping scales and compensation references must be > 0, got {v}")));
        }
        for (name, a) in [("target", &self.target), ("current", &self.current)] {
            if let Some(v) = a.iter().find(|v| !finite(v)) {
                return Err(bad(format!("{name} weights hold {v}")));
            }
        }
        if self.cfg.modifier.is_active() != self.modifier_rng.is_some() {
            return Err(bad("a weight modifier without its generator state (or the reverse)".into()));
        }
        if let Some(d) = self.devices.take() {
            d.check([out, n_analog]).map_err(bad)?;
            self.devices = Some(d.into_standard_layout());
        }
        let std = crate::linalg::standard_layout;
        self.target = std(self.target);
        self.current = std(self.current);
        self.refresh_effective();
        Ok(self)
    }
}

impl InferenceTile {
    /// SGD on the effective target weights W = α ⊙ W' (+ bias), W' receiving ΔW/α, after
    /// checking the shapes and lr, and with `check_values` that x and d are finite.
    fn apply_update(
        &mut self,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
        check_values: bool,
    ) -> Result<(), SimError> {
        check_io("InferenceTile::update", "x", x.dim().into(), self.in_size(), "d", d.dim().into(), self.out_size())?;
        check_lr("InferenceTile::update", lr)?;
        if check_values {
            check_finite("InferenceTile::update", "x", x)?;
            check_finite("InferenceTile::update", "d", d)?;
        }
        let n_analog = self.target.ncols();
        let mut w = self.effective(self.target.view(), false);
        sgemm(-lr, d.t(), x, 1.0, &mut w.view_mut());
        if !self.bias.is_empty() {
            self.bias = w.column(n_analog).to_vec();
        }
        for (i, (mut t, wr)) in self.target.rows_mut().into_iter().zip(w.rows()).enumerate() {
            let a = self.scales.get(i).copied().unwrap_or(1.0);
            t.zip_mut_with(&wr.slice(s![..n_analog]), |t, &w| *t = w / a);
        }
        self.counters.update_cycles += x.nrows() as u64;
        self.discard_programming();
        Ok(())
    }
}

impl Tile for InferenceTile {
    fn out_size(&self) -> usize {
        self.w_eff.nrows()
    }
    fn in_size(&self) -> usize {
        self.w_eff.ncols()
    }
    fn forward(&mut self, x: ArrayView2<'_, f32>, mut y: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        check_io("InferenceTile::forward", "x", x.dim().into(), self.in_size(), "y", y.dim().into(), self.out_size())?;
        let seed = self.rng.next_u64();
        let n_analog = self.current.ncols();
        let x_analog = (!self.bias.is_empty()).then(|| x.slice(s![.., ..n_analog]).as_standard_layout().into_owned());
        let xa = x_analog.as_ref().map_or(x, |a| a.view());
        let m = &self.cfg.modifier;
        self.modified = match self.modifier_rng.as_mut() {
            Some(rng) if m.is_active() && (self.training || m.enable_during_test) => m.apply(self.current.view(), rng),
            _ => Array2::zeros((0, 0)),
        };
        let stored = if self.modified.is_empty() { self.current.t() } else { self.modified.t() };
        let passes = analog_mvm(&self.cfg.forward, stored, xa, y.view_mut(), true, seed);
        let factors: Vec<f32> = (0..self.out_size()).map(|i| self.out_factor(i)).collect();
        if factors.iter().any(|&f| f != 1.0) {
            super::analog::scale_columns_in_place(y.view_mut(), &factors, false);
        }
        if !self.bias.is_empty() {
            add_digital_bias(y.view_mut(), x.column(n_analog), &self.bias);
        }
        self.counters.forward_cycles += x.nrows() as u64;
        self.counters.forward_passes += passes;
        Ok(())
    }
    fn backward(&mut self, d: ArrayView2<'_, f32>, mut z: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        check_io("InferenceTile::backward", "d", d.dim().into(), self.out_size(), "z", z.dim().into(), self.in_size())?;
        if self.modified.is_empty() {
            sgemm(1.0, d, self.w_eff.view(), 0.0, &mut z);
        } else {
            // The transpose of the modified weights of the last forward pass.
            let w = self.effective(self.modified.view(), true);
            sgemm(1.0, d, w.view(), 0.0, &mut z);
        }
        let n = d.nrows() as u64;
        self.counters.backward_cycles += n;
        self.counters.backward_passes += n;
        Ok(())
    }
    fn update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) -> Result<(), SimError> {
        self.apply_update(x, d, lr, true)
    }
    fn update_finite_inputs(
        &mut self,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
    ) -> Result<(), SimError> {
        self.apply_update(x, d, lr, false)
    }
    fn weights(&self) -> ArrayView2<'_, f32> {
        self.w_eff.view()
    }
    fn set_weights(&mut self, w: ArrayView2<'_, f32>) -> Result<(), SimError> {
        check_shape("InferenceTile::set_weights", "w", w.shape(), [self.out_size(), self.in_size()])?;
        check_finite("InferenceTile::set_weights", "w", w)?;
        let n_analog = self.target.ncols();
        if !self.bias.is_empty() {
            self.bias = w.column(n_analog).to_vec();
        }
        let analog = w.slice(s![.., ..n_analog]);
        self.scales = self.cfg.mapping.scales(analog);
        self.target.assign(&analog);
        for (mut row, &a) in self.target.rows_mut().into_iter().zip(&self.scales) {
            row.mapv_inplace(|v| v / a);
        }
        self.discard_programming();
        Ok(())
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn counters(&self) -> CycleCounters {
        self.counters
    }
    fn reset_counters(&mut self) {
        self.counters = CycleCounters::default();
    }
    fn snapshot(&self) -> super::TileSnapshot {
        super::TileSnapshot::Inference(Box::new(self.clone()))
    }
}

impl InferenceTile {
    /// Back to the unprogrammed state: the tile computes with the target weights.
    fn discard_programming(&mut self) {
        self.devices = None;
        self.reference.clear();
        self.factors.clear();
        self.t_inference = None;
        self.current.assign(&self.target);
        self.refresh_effective();
    }
}
