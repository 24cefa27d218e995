//! The analog tile: noisy, quantized MVMs and pulsed updates on a device model.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, s};
use rand::{Rng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::merged::{RowScratch, Trains, merged_row};
use super::transfer::{TransferParts, TransferState};
use super::{Tile, TileConfig, add_digital_bias, check_finite, check_io, check_lr, check_non_negative};
use crate::cycles::CycleCounters;
use crate::device::{DeviceArrays, DeviceModel};
use crate::drift::DriftState;
use crate::dynamics::{DynamicsArrays, draw_write_noise, pin_stuck, stuck_devices};
use crate::error::{ConfigError, SimError, check_shape};
use crate::mixed_precision::{one_hot_rows, quantize_rows, take_steps, transfer_rows};
use crate::parallel;
use crate::periphery::{CHUNK, abs_max_of, analog_mvm, contiguous};
use crate::pulse::{SLOT_MASK, TrainScales, TrainStream, coincidences, make_trains};
use crate::rng::{SimRng, derive_seed, stream};
use crate::update_config::{PulseType, UpdateConfig};

/// Stream index of the hidden device parameters within a tile's seed.
const HIDDEN_STREAM: u64 = 0;
/// Stream index of the runtime generator within a tile's seed.
const RUNTIME_STREAM: u64 = 1;
/// Stream index of the hidden values of [`crate::dynamics`] (stuck devices, decay, diffusion).
const DYNAMICS_STREAM: u64 = 2;
/// Stream index of the write-noise generator within a tile's seed.
const WRITE_NOISE_STREAM: u64 = 3;

/// An analog crossbar tile (see the crate docs for the model).
///
/// Randomness: the hidden device parameters are drawn once from stream 0 of the tile's seed;
/// every operation draws one 64-bit call seed from the tile's runtime generator (stream 1)
/// and splits its work into fixed chunks (vectors for MVMs, rows for updates) with streams
/// derived from that call seed. Results are therefore identical for any number of threads.
#[derive(Debug)]
pub struct AnalogTile {
    pub(super) cfg: TileConfig,
    seed: u64,
    /// The weights on the devices: every input column, or with a digital bias all but the last.
    pub(super) w: Array2<f32>,
    /// The digital bias (the last input column's weights), one per output; empty without.
    bias: Vec<f32>,
    /// Digital output scales α of the weight mapping (empty when mapping is off).
    scales: Vec<f32>,
    /// The weights as [`Tile::weights`] shows them, `[out, in]`: α ⊙ W' and the digital bias
    /// column (`0 × 0` when they are `w` itself: no mapping, no digital bias).
    w_eff: Array2<f32>,
    hidden: DeviceArrays,
    pub(super) device: Box<dyn DeviceModel>,
    pub(super) rng: SimRng,
    pub(super) counters: CycleCounters,
    /// The mixed-precision accumulator χ (shape of `w`; `0 × 0` when mixed precision is off).
    chi: Array2<f32>,
    /// Update calls since the weights were set (mixed precision: when to transfer).
    mp_calls: u64,
    /// The row the next mixed-precision transfer starts at.
    mp_next_row: usize,
    /// Per-device values of decay, diffusion and reset.
    dynamics: DynamicsArrays,
    /// Flat indices of the stuck devices (both bounds equal).
    stuck: Vec<usize>,
    /// With write noise: the persistent device weights (`w` then holds the apparent ones the
    /// passes see); `0 × 0` without.
    persistent: Array2<f32>,
    /// The write-noise generator (its own, so that write noise never changes the course of the
    /// persistent weights).
    wn_rng: SimRng,
    /// With write noise, during an update: the devices pulsed so far (row-major).
    wn_touched: Vec<bool>,
    /// Drift exponents and clock.
    drift: DriftState,
    /// Tiki-Taka: the fast device and the transfer state (`None` when transfer is off).
    pub(super) tt: Option<Box<TransferParts>>,
    /// Tiki-Taka with γ ≠ 0: the weights the passes see, C + γ·A (`0 × 0` otherwise).
    w_vis: Array2<f32>,
}

/// Everything needed to restore an [`AnalogTile`] bit-exactly (serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalogTileState {
    /// The tile's configuration.
    pub config: TileConfig,
    /// Name of the device model ([`DeviceModel::name`]).
    pub device_name: String,
    /// The seed the tile was built with.
    pub seed: u64,
    /// Weights as stored on the devices (W' = W/α when a mapping is active): `[out, in]`, or
    /// `[out, in − 1]` with a digital bias.
    pub weights: Array2<f32>,
    /// The digital bias, one per output, with `mapping.digital_bias`; empty without.
    #[serde(default)]
    pub digital_bias: Vec<f32>,
    /// Digital output scales α of the weight mapping, one per output row; empty when mapping is
    /// off ([`MappingConfig`](crate::MappingConfig)).
    #[serde(default)]
    pub mapping_scales: Vec<f32>,
    /// Hidden device parameters.
    pub hidden: DeviceArrays,
    /// Runtime generator state.
    pub rng: SimRng,
    /// Operation counters.
    pub counters: CycleCounters,
    /// The mixed-precision accumulator χ (`[out, in]` of the stored weights; empty when mixed
    /// precision is off).
    #[serde(default)]
    pub chi: Array2<f32>,
    /// Update calls since the weights were set (mixed precision).
    #[serde(default)]
    pub mp_calls: u64,
    /// The row the next mixed-precision transfer starts at.
    #[serde(default)]
    pub mp_next_row: usize,
    /// Per-device values of decay, diffusion and reset (empty arrays for effects that are off).
    #[serde(default)]
    pub dynamics: DynamicsArrays,
    /// With write noise: the persistent device weights (`weights` are then the apparent ones);
    /// empty without.
    #[serde(default)]
    pub persistent_weights: Array2<f32>,
    /// With write noise: the state of its generator.
    #[serde(default)]
    pub write_noise_rng: Option<SimRng>,
    /// Drift exponents and clock (empty arrays when drift is off or has not run).
    #[serde(default)]
    pub drift: DriftState,
    /// Tiki-Taka: the fast device and the transfer state (`None` when transfer is off).
    #[serde(default)]
    pub transfer: Option<Box<TransferState>>,
}

impl AnalogTile {
    /// A tile of `out_size × in_size` zero weights with the built-in device of `cfg.device`.
    pub fn new(out_size: usize, in_size: usize, cfg: &TileConfig, seed: u64) -> Result<Self, SimError> {
        cfg.validate()?;
        Self::with_device(out_size, in_size, cfg, cfg.device.build(), seed)
    }

    /// A tile with a user-supplied device model (`cfg.device` is then not used).
    pub fn with_device(
        out_size: usize,
        in_size: usize,
        cfg: &TileConfig,
        device: Box<dyn DeviceModel>,
        seed: u64,
    ) -> Result<Self, SimError> {
        cfg.validate()?;
        let digital = usize::from(cfg.mapping.digital_bias);
        if out_size == 0 || in_size <= digital {
            return Err(SimError::ShapeMismatch {
                op: "AnalogTile::new",
                what: if digital == 1 { "tile (a digital bias needs one more input)" } else { "tile" },
                expected: vec![1, 1 + digital],
                got: vec![out_size, in_size],
            });
        }
        check_device_settings(cfg, device.as_ref())?;
        // The devices hold the analog columns only.
        let n_analog = in_size - digital;
        let mut hidden = device.draw(out_size, n_analog, &mut stream(seed, HIDDEN_STREAM));
        let dynamics_seed = derive_seed(seed, DYNAMICS_STREAM);
        cfg.dynamics.corrupt(&mut hidden, dynamics_seed);
        // Parameters that are valid one by one can still draw unusable values together (e.g. a
        // bound of 0 times an enormous spread is NaN).
        check_hidden(&hidden).map_err(|what| ConfigError::Invalid {
            field: "device".into(),
            reason: format!("the drawn device parameters are unusable: {what}"),
        })?;
        let dynamics = cfg.dynamics.draw(out_size, n_analog, dynamics_seed);
        // Parameters that pass validation one by one can still overflow together (e.g. a reset
        // value near f32::MAX plus its spread): refuse what the state check would refuse.
        dynamics.check(&cfg.dynamics, [out_size, n_analog]).map_err(|reason| ConfigError::Invalid {
            field: "dynamics".into(),
            reason: format!("the drawn per-device values are unusable: {reason}"),
        })?;
        let stuck = stuck_devices(&hidden);
        let mut tile = Self {
            cfg: cfg.clone(),
            seed,
            w: Array2::zeros((out_size, n_analog)),
            bias: vec![0.0; out_size * digital],
            scales: Vec::new(),
            w_eff: Array2::zeros((0, 0)),
            hidden,
            device,
            rng: stream(seed, RUNTIME_STREAM),
            counters: CycleCounters::default(),
            chi: if cfg.mixed_precision.enabled { Array2::zeros((out_size, n_analog)) } else { Array2::zeros((0, 0)) },
            mp_calls: 0,
            mp_next_row: 0,
            dynamics,
            stuck,
            persistent: Array2::zeros((0, 0)),
            wn_rng: stream(seed, WRITE_NOISE_STREAM),
            wn_touched: Vec::new(),
            drift: DriftState {
                nu: cfg.dynamics.drift.draw_nu(out_size, n_analog, derive_seed(dynamics_seed, 4)),
                ..DriftState::default()
            },
            tt: None,
            w_vis: Array2::zeros((0, 0)),
        };
        if cfg.transfer.enabled {
            tile.tt = Some(Box::new(TransferParts::new(cfg, out_size, n_analog, seed)?));
        }
        // A stuck device shows its value from the start.
        pin_stuck(&mut tile.w, &tile.hidden, &tile.stuck);
        if cfg.dynamics.has_write_noise() {
            tile.persistent = tile.w.clone();
            // aihwkit programs the initial weights through onSetWeights.
            if cfg.dynamics.apply_write_noise_on_set {
                tile.redraw_write_noise(false);
            }
        }
        tile.refresh_effective();
        Ok(tile)
    }

    /// The analog weights the passes see: the stored ones, or C + γ·A with Tiki-Taka and γ ≠ 0.
    fn pass_weights(&self) -> ArrayView2<'_, f32> {
        if self.w_vis.is_empty() { self.w.view() } else { self.w_vis.view() }
    }

    /// The SGD pulses of a fast device (a Tiki-Taka fast tile) for a chunk of vectors: the
    /// update of the stored weights without the per-call decay and diffusion
    /// ([`post_update_dynamics`](Self::post_update_dynamics)).
    pub(super) fn sgd_pulses(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) {
        self.on_persistent_marking(true, |t| {
            t.sgd_step(x, d, lr);
            pin_stuck(&mut t.w, &t.hidden, &t.stuck);
        });
    }

    /// The plain SGD update of the stored weights: an exact product or the pulsed update.
    fn sgd_step(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) {
        if self.exact_update() {
            crate::linalg::sgemm(-lr, d.t(), x, 1.0, &mut self.w.view_mut());
        } else {
            let ucfg = self.cfg.update.clone();
            self.pulsed_update(&ucfg, x, d, lr);
        }
    }

    /// Diffusion, then decay, as aihwkit's post_update_step (each a no-op when off).
    fn post_step(&mut self) {
        self.diffuse();
        self.dynamics.decay(&mut self.w, &self.hidden, 1.0);
    }

    /// The per-call decay and diffusion (`dynamics.per_update`) of a fast device.
    pub(super) fn post_update_dynamics(&mut self) {
        let dyn_cfg = &self.cfg.dynamics;
        if dyn_cfg.per_update && (dyn_cfg.diffuses() || dyn_cfg.decays()) {
            self.on_persistent(Self::post_step);
        }
    }

    /// Whether the last input column is a digital bias.
    fn has_digital_bias(&self) -> bool {
        !self.bias.is_empty()
    }

    /// The analog columns of `x` (all but the last with a digital bias), contiguous.
    fn analog_inputs(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        x.slice(s![.., ..self.w.ncols()]).as_standard_layout().into_owned()
    }

    /// The configuration.
    pub fn config(&self) -> &TileConfig {
        &self.cfg
    }

    /// The device model.
    pub fn device(&self) -> &dyn DeviceModel {
        self.device.as_ref()
    }

    /// The hidden per-device parameters.
    pub fn hidden(&self) -> &DeviceArrays {
        &self.hidden
    }

    /// Simulated analog time of the counted operations (ns), from the config's timing model.
    pub fn analog_time_ns(&self) -> f64 {
        self.cfg.timing.analog_time_ns(&self.counters)
    }

    /// A snapshot of the full state.
    pub fn state(&self) -> AnalogTileState {
        AnalogTileState {
            config: self.cfg.clone(),
            device_name: self.device.name().to_string(),
            seed: self.seed,
            weights: self.w.clone(),
            digital_bias: self.bias.clone(),
            mapping_scales: self.scales.clone(),
            hidden: self.hidden.clone(),
            rng: self.rng.clone(),
            counters: self.counters,
            chi: self.chi.clone(),
            mp_calls: self.mp_calls,
            mp_next_row: self.mp_next_row,
            dynamics: self.dynamics.clone(),
            persistent_weights: self.persistent.clone(),
            write_noise_rng: self.write_noise_on().then(|| self.wn_rng.clone()),
            drift: self.drift.clone(),
            transfer: self.tt.as_ref().map(|t| Box::new(t.state())),
        }
    }

    /// Restores a tile with a built-in device (the state's `config.device`).
    pub fn from_state(state: AnalogTileState) -> Result<Self, SimError> {
        state.config.validate()?;
        let device = state.config.device.build();
        Self::from_state_with_device(state, device)
    }

    /// Restores a tile with a user-supplied device model, which must have the saved name.
    pub fn from_state_with_device(state: AnalogTileState, device: Box<dyn DeviceModel>) -> Result<Self, SimError> {
        state.config.validate()?;
        check_device_settings(&state.config, device.as_ref())?;
        if device.name() != state.device_name {
            return Err(SimError::State {
                reason: format!("saved device `{}`, restoring with `{}`", state.device_name, device.name()),
            });
        }
        let shape = [state.weights.nrows(), state.weights.ncols()];
        if shape.contains(&0) {
            return Err(SimError::State { reason: format!("an empty tile: weights {shape:?}") });
        }
        let arrays = [&state.hidden.step_up, &state.hidden.step_down, &state.hidden.w_min, &state.hidden.w_max];
        for a in arrays.into_iter().chain(state.hidden.extra.iter().map(|(_, a)| a)) {
            check_shape("AnalogTile::from_state", "hidden array", a.shape(), shape)?;
        }
        let bad = |what: &str| SimError::State { reason: format!("hidden device parameters: {what}") };
        // The model's own extra arrays (e.g. the power step's γ), by name: one drawn for a 1×1
        // tile shows which the model reads.
        let mut want: Vec<String> =
            device.draw(1, 1, &mut crate::rng::seeded(0)).extra.iter().map(|(n, _)| n.to_string()).collect();
        let mut got: Vec<String> = state.hidden.extra.iter().map(|(n, _)| n.to_string()).collect();
        want.sort();
        got.sort();
        if want != got {
            return Err(bad(&format!("device `{}` needs the arrays {want:?}, the state has {got:?}", device.name())));
        }
        check_hidden(&state.hidden).map_err(bad)?;
        if !(state.mapping_scales.is_empty() || state.mapping_scales.len() == shape[0]) {
            return Err(SimError::State {
                reason: format!("{} mapping scales for {} outputs", state.mapping_scales.len(), shape[0]),
            });
        }
        if state.mapping_scales.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
            return Err(SimError::State { reason: "mapping scales must be finite and > 0".into() });
        }
        if state.digital_bias.iter().any(|b| !b.is_finite()) {
            return Err(SimError::State { reason: "digital bias values must be finite".into() });
        }
        let want_bias = if state.config.mapping.digital_bias { shape[0] } else { 0 };
        if state.digital_bias.len() != want_bias {
            return Err(SimError::State {
                reason: format!(
                    "{} digital bias values for {want_bias} (mapping.digital_bias = {})",
                    state.digital_bias.len(),
                    state.config.mapping.digital_bias
                ),
            });
        }
        let want_chi = if state.config.mixed_precision.enabled { shape } else { [0, 0] };
        if state.chi.shape() != want_chi {
            return Err(SimError::State {
                reason: format!(
                    "mixed-precision accumulator of shape {:?}, expected {want_chi:?} (mixed_precision.enabled = {})",
                    state.chi.shape(),
                    state.config.mixed_precision.enabled
                ),
            });
        }
        if state.chi.iter().any(|c| !c.is_finite()) {
            return Err(SimError::State { reason: "mixed-precision accumulator values must be finite".into() });
        }
        if state.mp_next_row >= shape[0] {
            return Err(SimError::State {
                reason: format!("mixed-precision transfer row {} of {} rows", state.mp_next_row, shape[0]),
            });
        }
        state.dynamics.check(&state.config.dynamics, shape).map_err(|reason| SimError::State { reason })?;
        let wn = state.config.dynamics.has_write_noise();
        let want_persistent = if wn { shape } else { [0, 0] };
        if state.persistent_weights.shape() != want_persistent || state.write_noise_rng.is_some() != wn {
            return Err(SimError::State {
                reason: format!(
                    "persistent weights of shape {:?} and {} write-noise generator, expected {want_persistent:?} and {} (dynamics.write_noise_std = {})",
                    state.persistent_weights.shape(),
                    if state.write_noise_rng.is_some() { "a" } else { "no" },
                    if wn { "one" } else { "none" },
                    state.config.dynamics.write_noise_std
                ),
            });
        }
        state.drift.check(&state.config.dynamics.drift, shape).map_err(|reason| SimError::State { reason })?;
        if state.transfer.is_some() != state.config.transfer.enabled {
            return Err(SimError::State {
                reason: format!(
                    "{} transfer state with transfer.enabled = {}",
                    if state.transfer.is_some() { "a" } else { "no" },
                    state.config.transfer.enabled
                ),
            });
        }
        let tt = match state.transfer {
            Some(t) => Some(Box::new(TransferParts::from_state(*t, &state.config, shape)?)),
            None => None,
        };
        if state.persistent_weights.iter().any(|w| !w.is_finite()) {
            return Err(SimError::State { reason: "persistent weights must be finite".into() });
        }
        let std_layout = crate::linalg::standard_layout;
        let hidden = DeviceArrays {
            step_up: std_layout(state.hidden.step_up),
            step_down: std_layout(state.hidden.step_down),
            w_min: std_layout(state.hidden.w_min),
            w_max: std_layout(state.hidden.w_max),
            extra: state.hidden.extra.into_iter().map(|(n, a)| (n, std_layout(a))).collect(),
        };
        let mut tile = Self {
            cfg: state.config,
            seed: state.seed,
            w: std_layout(state.weights),
            bias: state.digital_bias,
            scales: state.mapping_scales,
            w_eff: Array2::zeros((0, 0)),
            hidden,
            device,
            rng: state.rng,
            counters: state.counters,
            chi: std_layout(state.chi),
            mp_calls: state.mp_calls,
            mp_next_row: state.mp_next_row,
            dynamics: state.dynamics.into_standard_layout(),
            stuck: Vec::new(),
            persistent: std_layout(state.persistent_weights),
            wn_rng: state.write_noise_rng.unwrap_or_else(|| stream(state.seed, WRITE_NOISE_STREAM)),
            wn_touched: Vec::new(),
            drift: state.drift.into_standard_layout(),
            tt,
            w_vis: Array2::zeros((0, 0)),
        };
        tile.stuck = stuck_devices(&tile.hidden);
        tile.refresh_effective();
        Ok(tile)
    }

    /// The weights as stored on the devices, W' = W/α (equal to [`Tile::weights`] when no
    /// mapping is active and there is no digital bias; without its last column with one). With
    /// write noise these are the apparent weights the passes see
    /// ([`persistent_weights`](Self::persistent_weights) are the ones updates act on).
    pub fn stored_weights(&self) -> ArrayView2<'_, f32> {
        self.w.view()
    }

    /// The digital bias, one per output (empty unless `mapping.digital_bias`).
    pub fn digital_bias(&self) -> &[f32] {
        &self.bias
    }

    /// The digital output scales α of the weight mapping (one per output; empty when mapping is
    /// off). Fixed when the weights are programmed.
    pub fn mapping_scales(&self) -> &[f32] {
        &self.scales
    }

    /// Recomputes the weights that [`Tile::weights`] shows after W', α or the bias changed.
    fn refresh_effective(&mut self) {
        if let Some(tt) = self.tt.as_ref().filter(|_| self.cfg.transfer.gamma != 0.0) {
            if self.w_vis.dim() != self.w.dim() {
                self.w_vis = Array2::zeros(self.w.dim());
            }
            tt.visible(&self.cfg, self.w.view(), &mut self.w_vis);
        }
        if self.scales.is_empty() && !self.has_digital_bias() {
            self.w_eff = Array2::zeros((0, 0));
            return;
        }
        let (out, n_analog) = self.w.dim();
        let dim = (out, self.in_size());
        if self.w_eff.dim() != dim {
            self.w_eff = Array2::zeros(dim);
        }
        let mut analog = self.w_eff.slice_mut(s![.., ..n_analog]);
        let pass = if self.w_vis.is_empty() { self.w.view() } else { self.w_vis.view() };
        if self.scales.is_empty() {
            analog.assign(&pass);
        } else {
            for ((mut e, w), &a) in analog.rows_mut().into_iter().zip(pass.rows()).zip(&self.scales) {
                e.zip_mut_with(&w, |e, &w| *e = a * w);
            }
        }
        if self.has_digital_bias() {
            self.w_eff.column_mut(n_analog).assign(&ndarray::ArrayView1::from(&self.bias));
        }
    }

    /// The pulsed update W ← W − lr·dᵀ·x of the stored weights with the update settings `ucfg`.
    pub(super) fn pulsed_update(
        &mut self,
        ucfg: &UpdateConfig,
        x: ArrayView2<'_, f32>,
        d: ArrayView2<'_, f32>,
        lr: f32,
    ) {
        let (batch, n_in, n_out) = (x.nrows(), x.ncols(), d.ncols());
        let kind = ucfg.pulse_type;
        let eps = self.device.granularity();
        let train_seed = self.rng.next_u64();
        let row_seed = self.rng.next_u64();

        // 1. Pulse trains of every vector pair, in parallel chunks of vectors.
        let mut scales = vec![TrainScales { bl: 0, a: 0.0, b: 0.0 }; batch];
        let mut x_words = vec![0u32; batch * n_in];
        let mut d_words = vec![0u32; batch * n_out];
        scales
            .par_chunks_mut(CHUNK)
            .zip(x_words.par_chunks_mut(CHUNK * n_in))
            .zip(d_words.par_chunks_mut(CHUNK * n_out))
            .enumerate()
            .for_each(|(c, ((sc, xw), dw))| {
                let mut trains = TrainStream::new(derive_seed(train_seed, c as u64));
                for (k, s) in sc.iter_mut().enumerate() {
                    let b = c * CHUNK + k;
                    let (xr, dr) = (x.row(b), d.row(b));
                    let (xv, dv) = (contiguous(xr), contiguous(dr));
                    *s = TrainScales::compute(ucfg, lr, eps, abs_max_of(&xv), abs_max_of(&dv));
                    if s.bl == 0 {
                        continue;
                    }
                    make_trains(kind, &xv, s.b, s.bl, &mut xw[k * n_in..(k + 1) * n_in], &mut trains);
                    make_trains(kind, &dv, s.a, s.bl, &mut dw[k * n_out..(k + 1) * n_out], &mut trains);
                }
            });
        self.counters.update_slots += scales.iter().map(|s| u64::from(s.bl)).sum::<u64>();

        // With write noise: mark every device that gets at least one coincidence (per device,
        // the vectors of the batch until the first one that pulses it).
        // (Small calls run their rows on the calling thread: `parallel::min_rows`.)
        let min_rows = parallel::min_rows(batch * n_in * n_out, n_out);
        if !self.wn_touched.is_empty() {
            self.wn_touched.par_chunks_mut(n_in).enumerate().with_min_len(min_rows).for_each(|(i, touched)| {
                let active: Vec<usize> =
                    (0..batch).filter(|&b| scales[b].bl != 0 && d_words[b * n_out + i] & SLOT_MASK != 0).collect();
                for (j, t) in touched.iter_mut().enumerate().filter(|(_, t)| !**t) {
                    *t = active
                        .iter()
                        .any(|&b| coincidences(kind, x_words[b * n_in + j], d_words[b * n_out + i], scales[b].bl) != 0);
                }
            });
        }

        // 2. Coincidences and device pulses, one row of W at a time (rows are independent). A
        // small call (one vector of a Tiki-Taka fast device, a transfer's write) runs its rows
        // on the calling thread: waking the pool would cost more than the work.
        let device = self.device.as_ref();
        let hidden = &self.hidden;
        if let Some(c2c) = device.merged_c2c().filter(|_| ucfg.merge_pulses) {
            let x_active = if batch == 1 { Trains::active_columns(&x_words) } else { Vec::new() };
            // One vector visits only its active columns (a transfer's write: one).
            let min_rows = if batch == 1 { parallel::min_rows(x_active.len() * n_out, n_out) } else { min_rows };
            let trains = Trains {
                kind,
                scales: &scales,
                x_words: &x_words,
                d_words: &d_words,
                n_in,
                n_out,
                x_active: &x_active,
            };
            let pulses: u64 = self
                .w
                .as_slice_mut()
                .expect("tile weights are in standard layout")
                .par_chunks_mut(n_in)
                .enumerate()
                .with_min_len(min_rows)
                .map_init(RowScratch::default, |scratch, (i, w)| {
                    let mut rng = stream(row_seed, i as u64);
                    merged_row(trains, i, c2c, hidden.row(i), w, scratch, &mut rng)
                })
                .sum();
            self.counters.pulses += pulses;
            return;
        }
        let pulses: u64 = self
            .w
            .as_slice_mut()
            .expect("tile weights are in standard layout")
            .par_chunks_mut(n_in)
            .enumerate()
            .with_min_len(min_rows)
            .map_init(
                || vec![0i32; n_in],
                |counts, (i, w)| {
                    let mut rng = stream(row_seed, i as u64);
                    let hrow = hidden.row(i);
                    let mut n_pulses = 0u64;
                    for (b, s) in scales.iter().enumerate() {
                        let dw = d_words[b * n_out + i];
                        if s.bl == 0 || dw & SLOT_MASK == 0 {
                            continue;
                        }
                        let xs = &x_words[b * n_in..(b + 1) * n_in];
                        let mut any = 0u64;
                        for (c, &xw) in counts.iter_mut().zip(xs) {
                            *c = coincidences(kind, xw, dw, s.bl);
                            any += u64::from(c.unsigned_abs());
                        }
                        if any > 0 {
                            n_pulses += any;
                            device.apply_row(hidden, hrow, w, counts, &mut rng);
                        }
                    }
                    n_pulses
                },
            )
            .sum();
        self.counters.pulses += pulses;
    }
}

impl AnalogTile {
    /// Whether updates are exact float products (an ideal device or the float pulse type).
    fn exact_update(&self) -> bool {
        exact_update(self.device.as_ref(), &self.cfg)
    }

    /// The mixed-precision accumulator χ (`[out, in]` of the stored weights, without a digital
    /// bias column; empty when `mixed_precision.enabled` is off).
    pub fn mixed_precision_accumulator(&self) -> ArrayView2<'_, f32> {
        self.chi.view()
    }

    /// The granularity ε of a mixed-precision transfer step.
    fn transfer_granularity(&self) -> f32 {
        let g = self.cfg.mixed_precision.granularity;
        if g > 0.0 { g } else { self.device.granularity() }
    }

    /// χ += lr·dᵀ·x (after the optional quantization of x and d), then a transfer after every
    /// `transfer_every`-th call (module [`crate::mixed_precision`]).
    fn mixed_precision_update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) {
        let mp = self.cfg.mixed_precision.clone();
        let call_seed = self.rng.next_u64();
        let quantized = |m: ArrayView2<'_, f32>, bins: u32, stochastic: bool, stream_index: u64| {
            (bins > 0).then(|| {
                let mut q = m.to_owned();
                quantize_rows(q.view_mut(), bins, stochastic, &mut stream(call_seed, stream_index));
                q
            })
        };
        let qx = quantized(x, mp.n_x_bins, mp.stoc_round_x, 0);
        let qd = quantized(d, mp.n_d_bins, mp.stoc_round_d, 1);
        let x = qx.as_ref().map_or(x, |q| q.view());
        let d = qd.as_ref().map_or(d, |q| q.view());
        crate::linalg::sgemm(lr, d.t(), x, 1.0, &mut self.chi.view_mut());
        self.mp_calls += 1;
        if !self.mp_calls.is_multiple_of(u64::from(mp.transfer_every)) {
            return;
        }
        let n_rows = self.w.nrows();
        let count = if mp.rows_per_transfer == 0 { n_rows } else { (mp.rows_per_transfer as usize).min(n_rows) };
        let start = if mp.random_row && count < n_rows {
            let u: f32 = stream(call_seed, 2).random();
            ((u * n_rows as f32).floor() as usize).min(n_rows - 1)
        } else {
            self.mp_next_row
        };
        let rows = transfer_rows(start, count, n_rows);
        self.mp_next_row = (start + count) % n_rows;
        let eps = self.transfer_granularity();
        let steps = take_steps(&mut self.chi.view_mut(), &rows, eps);
        let lr_t = eps * mp.transfer_lr;
        self.counters.update_cycles += count as u64;
        if self.exact_update() {
            for (k, &i) in rows.iter().enumerate() {
                self.w.row_mut(i).scaled_add(-lr_t, &steps.row(k));
            }
        } else {
            let one_hot = one_hot_rows(&rows, n_rows);
            // aihwkit turns update and BL management on for the transfer: BL = max|n| (up to
            // desired_bl), so every element gets |n| pulses on average. um_grad_scale is 1 here
            // (aihwkit keeps the SGD update's: with g < 1 only ~g·|n| pulses would arrive).
            let ucfg = UpdateConfig {
                update_management: true,
                update_bl_management: true,
                um_grad_scale: 1.0,
                ..self.cfg.update.clone()
            };
            self.pulsed_update(&ucfg, steps.view(), one_hot.view(), lr_t);
        }
    }
}

/// Decay, diffusion and reset ([`crate::dynamics`]).
impl AnalogTile {
    /// The per-device values of decay, diffusion and reset.
    pub fn dynamics(&self) -> &DynamicsArrays {
        &self.dynamics
    }

    /// Flat (row-major) indices of the stuck devices of the stored weights: those whose two
    /// bounds coincide, e.g. drawn with `dynamics.corrupt_devices_prob`.
    pub fn stuck_devices(&self) -> &[usize] {
        &self.stuck
    }

    /// One decay step w ← clip((w − b)·max(0, 1 + α(s − 1)) + b) with the tile's per-device
    /// factors s and reset values b; α = 1 is the step an update call applies with
    /// `dynamics.per_update` (aihwkit `decay_weights(alpha)`). Does nothing when
    /// `dynamics.lifetime` is 0. `alpha` must be finite and ≥ 0.
    pub fn decay_weights(&mut self, alpha: f32) -> Result<(), SimError> {
        check_non_negative("AnalogTile::decay_weights", "alpha", alpha)?;
        if self.cfg.dynamics.decays() {
            self.on_persistent(|t| t.dynamics.decay(&mut t.w, &t.hidden, alpha));
        }
        Ok(())
    }

    /// One diffusion step w ← clip(w + ρ·ξ) (aihwkit `diffuse_weights`); does nothing when
    /// `dynamics.diffusion` is 0.
    pub fn diffuse_weights(&mut self) {
        if self.cfg.dynamics.diffuses() {
            self.on_persistent(Self::diffuse);
        }
    }

    /// Runs `op` on the device weights (the persistent ones with write noise, followed by fresh
    /// noise on every device), then refreshes the effective weights.
    fn on_persistent(&mut self, op: impl FnOnce(&mut Self)) {
        self.on_persistent_marking(false, op);
    }

    /// [`on_persistent`](Self::on_persistent), with fresh noise only on the devices `op` pulses
    /// when `only_pulsed` (the pulsed update marks them in `wn_touched`).
    fn on_persistent_marking(&mut self, only_pulsed: bool, op: impl FnOnce(&mut Self)) {
        let write_noise = self.write_noise_on();
        if write_noise {
            std::mem::swap(&mut self.w, &mut self.persistent);
            self.wn_touched.clear();
            if only_pulsed {
                self.wn_touched.resize(self.w.len(), false);
            }
        }
        op(self);
        if write_noise {
            std::mem::swap(&mut self.w, &mut self.persistent);
            self.redraw_write_noise(only_pulsed);
            self.wn_touched.clear();
        }
        self.refresh_effective();
    }

    /// One drift step of Δt = `dt` (in the units of `dynamics.drift.t_0`) on the device weights
    /// (aihwkit `drift_weights`; [`crate::drift`]); does nothing when `dynamics.drift.nu` is 0.
    /// `dt` must be finite and ≥ 0, and the clock must stay finite.
    pub fn drift_weights(&mut self, dt: f32) -> Result<(), SimError> {
        check_non_negative("AnalogTile::drift_weights", "dt", dt)?;
        if self.cfg.dynamics.drift.drifts() {
            let cfg = self.cfg.dynamics.drift.clone();
            if !(self.drift.time + dt / cfg.t_0).is_finite() {
                return Err(SimError::InvalidArgument {
                    op: "AnalogTile::drift_weights",
                    name: "dt",
                    value: dt.into(),
                    reason: "would overflow the drift clock (time + dt/t_0)",
                });
            }
            // (A seed only when the step draws: switching drift on leaves the other noise alone.)
            let seed = if cfg.draws() { self.rng.next_u64() } else { 0 };
            self.on_persistent(|t| t.drift.apply(&cfg, &mut t.w, &t.hidden, dt, seed));
        }
        Ok(())
    }

    /// The drift exponents and clock.
    pub fn drift_state(&self) -> &DriftState {
        &self.drift
    }

    /// Whether the tile has write noise (persistent and apparent weights).
    fn write_noise_on(&self) -> bool {
        !self.persistent.is_empty()
    }

    /// Apparent = persistent + σ·ε·ξ on the devices pulsed in this update (`only_touched`) or
    /// on all.
    fn redraw_write_noise(&mut self, only_touched: bool) {
        let sigma = self.cfg.dynamics.write_noise_std * self.device.granularity();
        let seed = self.wn_rng.next_u64();
        let mask = only_touched.then_some(&self.wn_touched[..]);
        draw_write_noise(&mut self.w, &self.persistent, sigma, mask, seed);
    }

    /// The persistent device weights (stored units, without a digital bias column): with write
    /// noise those the updates act on, of which [`stored_weights`](Self::stored_weights) are the
    /// noisy apparent version; without, the stored weights themselves.
    pub fn persistent_weights(&self) -> ArrayView2<'_, f32> {
        if self.write_noise_on() { self.persistent.view() } else { self.w.view() }
    }

    fn diffuse(&mut self) {
        if self.cfg.dynamics.diffuses() {
            let seed = self.rng.next_u64();
            self.dynamics.diffuse(&mut self.w, &self.hidden, seed);
        }
    }

    /// Resets `count` device columns starting at `start` (wrapping around the last one; a count
    /// of at least the number of columns resets all), each device with probability `prob`, to
    /// clip(b + reset_std·ξ) (aihwkit `reset_columns`). Columns index the stored weights: with a
    /// digital bias, its column is not a device column.
    pub fn reset_columns(&mut self, start: usize, count: usize, prob: f32) -> Result<(), SimError> {
        let n = self.w.ncols();
        let bad = |name, value: usize, reason| SimError::InvalidArgument {
            op: "AnalogTile::reset_columns",
            name,
            value: value as f64,
            reason,
        };
        if start >= n {
            return Err(bad("start", start, "must be below the number of device columns"));
        }
        if !(prob.is_finite() && (0.0..=1.0).contains(&prob)) {
            return Err(SimError::InvalidArgument {
                op: "AnalogTile::reset_columns",
                name: "prob",
                value: prob.into(),
                reason: "must be in [0, 1]",
            });
        }
        let mut cols = vec![false; n];
        for k in 0..count.min(n) {
            cols[(start + k) % n] = true;
        }
        let seed = self.rng.next_u64();
        let std = self.cfg.dynamics.reset_std;
        self.on_persistent(|t| t.dynamics.reset(&mut t.w, &t.hidden, &cols, prob, std, seed));
        Ok(())
    }
}

impl Tile for AnalogTile {
    fn out_size(&self) -> usize {
        self.w.nrows()
    }
    fn in_size(&self) -> usize {
        self.w.ncols() + usize::from(self.has_digital_bias())
    }
    fn forward(&mut self, x: ArrayView2<'_, f32>, y: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        check_io("AnalogTile::forward", "x", x.dim().into(), self.in_size(), "y", y.dim().into(), self.out_size())?;
        let seed = self.rng.next_u64();
        let mut y = y;
        let x_analog = self.has_digital_bias().then(|| self.analog_inputs(x));
        let xa = x_analog.as_ref().map_or(x, |a| a.view());
        let passes = analog_mvm(&self.cfg.forward, self.pass_weights().t(), xa, y.view_mut(), true, seed);
        if !self.scales.is_empty() {
            scale_columns_in_place(y.view_mut(), &self.scales, false);
        }
        if self.has_digital_bias() {
            add_digital_bias(y.view_mut(), x.column(self.w.ncols()), &self.bias);
        }
        self.counters.forward_cycles += x.nrows() as u64;
        self.counters.forward_passes += passes;
        Ok(())
    }
    fn backward(&mut self, d: ArrayView2<'_, f32>, z: ArrayViewMut2<'_, f32>) -> Result<(), SimError> {
        check_io("AnalogTile::backward", "d", d.dim().into(), self.out_size(), "z", z.dim().into(), self.in_size())?;
        let seed = self.rng.next_u64();
        let mut z = z;
        let n_analog = self.w.ncols();
        // With a digital bias the analog columns go to a contiguous buffer, the last one is exact.
        let mut z_analog = self.has_digital_bias().then(|| Array2::<f32>::zeros((d.nrows(), n_analog)));
        let za = match z_analog.as_mut() {
            Some(a) => a.view_mut(),
            None => z.view_mut(),
        };
        let passes = if self.scales.is_empty() {
            analog_mvm(&self.cfg.backward, self.pass_weights(), d, za, false, seed)
        } else {
            let ds = scale_columns(d, &self.scales, false);
            analog_mvm(&self.cfg.backward, self.pass_weights(), ds.view(), za, false, seed)
        };
        if let Some(a) = z_analog {
            z.slice_mut(s![.., ..n_analog]).assign(&a);
            for (zl, dr) in z.column_mut(n_analog).iter_mut().zip(d.rows()) {
                *zl = dr.iter().zip(&self.bias).map(|(&d, &b)| d * b).sum();
            }
        }
        self.counters.backward_cycles += d.nrows() as u64;
        self.counters.backward_passes += passes;
        Ok(())
    }
    fn update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) -> Result<(), SimError> {
        check_io("AnalogTile::update", "x", x.dim().into(), self.in_size(), "d", d.dim().into(), self.out_size())?;
        check_lr("AnalogTile::update", lr)?;
        check_finite("AnalogTile::update", "x", x)?;
        check_finite("AnalogTile::update", "d", d)?;
        // (With mixed precision the outer products are digital: only the transfers count.)
        if !self.cfg.mixed_precision.enabled {
            self.counters.update_cycles += x.nrows() as u64;
        }
        // A digital bias follows plain SGD on the unscaled d; the devices get the other columns.
        if self.has_digital_bias() {
            let last = x.column(self.w.ncols());
            for (b, dc) in self.bias.iter_mut().zip(d.axis_iter(Axis(1))) {
                let g: f32 = dc.iter().zip(last).map(|(&d, &xl)| d * xl).sum();
                *b -= lr * g;
            }
        }
        let x_analog = self.has_digital_bias().then(|| self.analog_inputs(x));
        let x = x_analog.as_ref().map_or(x, |a| a.view());
        // With a mapping, W' = W/α receives ΔW/α: the update runs on d/α (aihwkit `pre_update`).
        let scaled = (!self.scales.is_empty()).then(|| scale_columns(d, &self.scales, true));
        let d = scaled.as_ref().map_or(d, |s| s.view());
        // With write noise everything below acts on the persistent weights, and the pulsed
        // devices get fresh noise; all do after decay or diffusion. (Write noise is refused with
        // exact updates.)
        let dyn_cfg = &self.cfg.dynamics;
        let post_step = dyn_cfg.per_update && (dyn_cfg.diffuses() || dyn_cfg.decays());
        self.on_persistent_marking(!post_step, |t| {
            if t.cfg.mixed_precision.enabled {
                t.mixed_precision_update(x, d, lr);
            } else if t.tt.is_some() {
                t.transfer_update(x, d, lr);
            } else {
                t.sgd_step(x, d, lr);
            }
            pin_stuck(&mut t.w, &t.hidden, &t.stuck);
            if t.cfg.dynamics.per_update {
                t.post_step();
            }
        });
        Ok(())
    }
    fn weights(&self) -> ArrayView2<'_, f32> {
        if self.w_eff.is_empty() { self.pass_weights() } else { self.w_eff.view() }
    }
    fn set_weights(&mut self, w: ArrayView2<'_, f32>) -> Result<(), SimError> {
        check_shape("AnalogTile::set_weights", "w", w.shape(), [self.out_size(), self.in_size()])?;
        check_finite("AnalogTile::set_weights", "w", w)?;
        let n_analog = self.w.ncols();
        if self.has_digital_bias() {
            self.bias = w.column(n_analog).to_vec();
        }
        let w = w.slice(s![.., ..n_analog]);
        self.w.assign(&w);
        self.scales = self.cfg.mapping.scales(w);
        for (mut row, &a) in self.w.rows_mut().into_iter().zip(&self.scales) {
            row.mapv_inplace(|v| v / a);
        }
        self.hidden.clip(&mut self.w);
        if self.write_noise_on() {
            self.persistent.assign(&self.w);
            if self.cfg.dynamics.apply_write_noise_on_set {
                self.redraw_write_noise(false);
            }
        }
        // Programming the weights starts the mixed-precision accumulation afresh.
        self.chi.fill(0.0);
        self.mp_calls = 0;
        self.mp_next_row = 0;
        // And the transfer's: A = 0, so that the passes see W.
        if let Some(tt) = self.tt.as_mut() {
            tt.restart(&self.cfg)?;
        }
        self.refresh_effective();
        Ok(())
    }
    fn counters(&self) -> CycleCounters {
        self.counters
    }
    fn reset_counters(&mut self) {
        self.counters = CycleCounters::default();
    }
    fn snapshot(&self) -> super::TileSnapshot {
        super::TileSnapshot::Analog(Box::new(self.state()))
    }
}

/// Settings that depend on the device model: with mixed precision on and `granularity` 0, the
/// device must report a usable granularity; write noise needs a pulsed update on a pulsed device
/// (aihwkit has none for the ideal device or `PulseType.NONE`) and a finite σ·ε.
fn check_device_settings(cfg: &TileConfig, device: &dyn DeviceModel) -> Result<(), SimError> {
    let g = device.granularity();
    if cfg.dynamics.has_write_noise() {
        let exact = exact_update(device, cfg);
        let sigma = cfg.dynamics.write_noise_std * g;
        let reason = if exact {
            Some(format!(
                "needs a pulsed update on a pulsed device, got device `{}` with pulse type {:?}{}",
                device.name(),
                if cfg.transfer.enabled { cfg.transfer.write_update().pulse_type } else { cfg.update.pulse_type },
                if cfg.transfer.enabled { " (transfer.transfer_update)" } else { "" }
            ))
        } else if !sigma.is_finite() {
            Some(format!("times the granularity {g} of device `{}` overflows", device.name()))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ConfigError::Invalid { field: "dynamics.write_noise_std".into(), reason }.into());
        }
    }
    let thres = if cfg.transfer.chopped() { 1.0 } else { cfg.transfer.thres_scale };
    if cfg.transfer.enabled
        && cfg.transfer.buffered()
        && !(g > 0.0 && (thres * g).is_finite() && (cfg.transfer.step * g).is_finite())
    {
        return Err(ConfigError::Invalid {
            field: "transfer.algorithm".into(),
            reason: format!(
                "the buffered and chopped transfers write steps of the visible device's granularity, but device `{}` \
                 reports {g} (or thres_scale or step times it overflows)",
                device.name()
            ),
        }
        .into());
    }
    if cfg.mixed_precision.enabled && cfg.mixed_precision.granularity == 0.0 && !(g > 0.0 && g.is_finite()) {
        return Err(ConfigError::Invalid {
            field: "mixed_precision.granularity".into(),
            reason: format!("is 0 (the device's), but device `{}` reports granularity {g}; set it > 0", device.name()),
        }
        .into());
    }
    Ok(())
}

/// Whether `device` under `cfg` takes exact float updates (an ideal device or the float pulse
/// type) instead of pulses.
pub(super) fn exact_update(device: &dyn DeviceModel, cfg: &TileConfig) -> bool {
    // With Tiki-Taka the visible device is written by the transfer's update.
    let kind = if cfg.transfer.enabled { cfg.transfer.write_update().pulse_type } else { cfg.update.pulse_type };
    device.is_ideal() || kind == PulseType::Float
}

/// What is wrong with hidden device parameters, if anything: steps must be finite and ≥ 0,
/// bounds ordered and not NaN.
fn check_hidden(h: &DeviceArrays) -> Result<(), &'static str> {
    if h.step_up.iter().chain(&h.step_down).any(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err("steps must be finite and >= 0");
    }
    if h.w_min.iter().zip(&h.w_max).any(|(lo, hi)| lo.is_nan() || hi.is_nan() || lo > hi) {
        return Err("bounds must be ordered, w_min <= w_max, and not NaN");
    }
    Ok(())
}

/// Multiplies column j of `m` by `scales[j]` (or divides, when `divide`).
pub(super) fn scale_columns_in_place(mut m: ArrayViewMut2<'_, f32>, scales: &[f32], divide: bool) {
    for mut row in m.rows_mut() {
        for (v, &a) in row.iter_mut().zip(scales) {
            *v = if divide { *v / a } else { *v * a };
        }
    }
}

/// `m` with column j multiplied by `scales[j]` (or divided, when `divide`).
fn scale_columns(m: ArrayView2<'_, f32>, scales: &[f32], divide: bool) -> Array2<f32> {
    let mut out = m.to_owned();
    scale_columns_in_place(out.view_mut(), scales, divide);
    out
}
