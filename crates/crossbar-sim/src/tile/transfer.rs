//! The Tiki-Taka parts of an [`AnalogTile`]: the fast device A (itself an analog tile whose
//! periphery is the transfer read's), the buffer of the buffered variant, and the transfer
//! ([`crate::transfer`] describes the algorithm).

use ndarray::{Array2, ArrayView2, s};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use super::analog::exact_update;
use super::{AnalogTile, AnalogTileState, Tile, TileConfig};
use crate::error::{ConfigError, SimError};
use crate::mapping::MappingConfig;
use crate::mixed_precision::{MixedPrecisionConfig, one_hot_rows, transfer_rows};
use crate::periphery::{abs_max_of, contiguous};
use crate::rng::{derive_seed, stream};
use crate::transfer::{BufferRule, ChopRule, TransferAlgorithm, TransferConfig};

/// Stream index of the fast device's seed within a tile's seed.
const FAST_STREAM: u64 = 4;

/// The fast device and the transfer's state.
#[derive(Debug)]
pub(super) struct TransferParts {
    /// The fast device A: stored weights in the units of the visible device's (W/α).
    pub(super) fast: AnalogTile,
    /// Buffered: the digital buffer H, `[out, in]` of the stored weights; `0 × 0` otherwise.
    pub(super) buffer: Array2<f32>,
    /// Update vectors since the weights were set.
    pub(super) vectors: u64,
    /// The column (row) the next transfer starts at.
    pub(super) next: usize,
    /// The chopper state (chopped only).
    pub(super) chop: Choppers,
}

/// What [`AnalogTile::chop_read`] returns: the column (row) read and their count, its one-hot
/// input, the read, the buffer's increment per unit read, the transfer's generator and C's
/// granularity.
struct ChopRead {
    i: usize,
    size: usize,
    one_hot: Array2<f32>,
    v: Array2<f32>,
    scale: f32,
    rng: crate::rng::SimRng,
    eps_c: f32,
}

/// The chopper state of the chopped transfer (all empty or zero for the other algorithms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choppers {
    /// The input chopper of each column (row, with `transfer_columns` off) that is read; true
    /// = negative sign.
    pub input: Vec<bool>,
    /// The output chopper of each entry of a read.
    pub output: Vec<bool>,
    /// The running mean of max|x| per vector (`auto_scale`; 0 until the first vector).
    pub m_x: f32,
    /// The running mean of max|d| per vector.
    pub m_d: f32,
    /// Completed sweeps over all columns (rows).
    pub sweeps: u64,
    /// A's pulse-count learning rate of the last update vector.
    pub count_lr: f32,
    /// Dynamic: the running mean of each stored weight's reads (`[out, in]`; empty otherwise).
    #[serde(default)]
    pub running_mean: Array2<f32>,
    /// Dynamic: the reference of each stored weight, the running mean at the end of the
    /// previous chopper period (`[out, in]`; empty otherwise).
    #[serde(default)]
    pub past_mean: Array2<f32>,
    /// Dynamic: whether each column's (row's) input chopper flipped after its last read.
    #[serde(default)]
    pub switched: Vec<bool>,
}

impl Choppers {
    fn new(cfg: &TileConfig, out: usize, n_analog: usize) -> Self {
        if !cfg.transfer.chopped() {
            return Self::default();
        }
        let (size, other) = if cfg.transfer.transfer_columns { (n_analog, out) } else { (out, n_analog) };
        let dynamic = cfg.transfer.dynamic();
        let means = || if dynamic { Array2::zeros((out, n_analog)) } else { Array2::zeros((0, 0)) };
        Self {
            input: vec![false; size],
            output: vec![false; other],
            m_x: 0.0,
            m_d: 0.0,
            sweeps: 0,
            count_lr: 1.0,
            running_mean: means(),
            past_mean: means(),
            switched: if dynamic { vec![false; size] } else { Vec::new() },
        }
    }

    /// Whether the chopper signs of stored weight (`r`, `c`) differ (its product is −1).
    fn flips(&self, columns: bool, r: usize, c: usize) -> bool {
        if columns { self.input[c] != self.output[r] } else { self.input[r] != self.output[c] }
    }

    /// aihwkit's running mean: the first value is taken as is, values ≤ 0 are skipped, else
    /// m moves by τ = (1 − momentum)/batch of the way.
    fn track(m: &mut f32, value: f32, momentum: f32, batch: usize) {
        if *m <= 0.0 {
            *m = value;
        } else if value > 0.0 {
            let tau = (1.0 - momentum) / batch as f32;
            *m = (1.0 - tau) * *m + tau * value;
        }
    }
}

/// The serializable state of the Tiki-Taka parts of an [`AnalogTileState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferState {
    /// The fast device A as an analog tile (its configuration is derived from the visible
    /// tile's: [`TransferConfig`] fields and the tile's `update` and `timing`).
    pub fast: AnalogTileState,
    /// Buffered: the digital buffer H (`[out, in]` of the stored weights); empty otherwise.
    #[serde(default)]
    pub buffer: Array2<f32>,
    /// Update vectors since the weights were set.
    pub vectors: u64,
    /// The column (row) the next transfer starts at.
    pub next: usize,
    /// Chopped: the choppers and the running means of `auto_scale`.
    #[serde(default)]
    pub choppers: Choppers,
}

/// The configuration of the fast tile of a tile configured with `cfg`: its device and dynamics
/// from `cfg.transfer`, the SGD `update` and `timing` of `cfg`, and the transfer read's
/// periphery in both directions; no mapping.
pub(super) fn fast_config(cfg: &TileConfig) -> TileConfig {
    let t = &cfg.transfer;
    TileConfig {
        forward: t.transfer_forward.clone(),
        backward: t.transfer_forward.clone(),
        update: cfg.update.clone(),
        device: t.fast_device.clone(),
        timing: cfg.timing.clone(),
        mapping: MappingConfig::default(),
        mixed_precision: MixedPrecisionConfig::default(),
        dynamics: t.fast_dynamics.clone(),
        transfer: TransferConfig::default(),
    }
}

impl TransferParts {
    /// Fresh parts for a tile of `out × n_analog` devices (A = 0).
    pub(super) fn new(cfg: &TileConfig, out: usize, n_analog: usize, seed: u64) -> Result<Self, SimError> {
        let fast =
            AnalogTile::new(out, n_analog, &fast_config(cfg), derive_seed(seed, FAST_STREAM)).map_err(prefix_error)?;
        if cfg.transfer.chopped() && cfg.transfer.transfer_every < 0.0 && cfg.transfer.fast_device.params().is_none() {
            return Err(ConfigError::Invalid {
                field: "transfer.transfer_every".into(),
                reason: "a negative (automatic) period counts the fast device's states, which the ideal device \
                         does not have"
                    .into(),
            }
            .into());
        }
        if cfg.transfer.chopped() {
            let g = fast.device.granularity();
            if !(g > 0.0 && cfg.transfer.buffer_unit(g, 1).is_finite()) {
                return Err(ConfigError::Invalid {
                    field: "transfer.fast_device".into(),
                    reason: format!(
                        "the chopped transfer counts the buffer in the fast device's granularity, but device `{}` \
                         reports {g} (or buffer_granularity times it overflows)",
                        fast.device.name()
                    ),
                }
                .into());
            }
        }
        Ok(Self {
            fast,
            buffer: empty_or_zero_buffer(cfg, out, n_analog),
            vectors: 0,
            next: 0,
            chop: Choppers::new(cfg, out, n_analog),
        })
    }

    pub(super) fn state(&self) -> TransferState {
        TransferState {
            fast: self.fast.state(),
            buffer: self.buffer.clone(),
            vectors: self.vectors,
            next: self.next,
            choppers: self.chop.clone(),
        }
    }

    /// Restores the parts of a tile configured with `cfg` with `shape` stored weights.
    pub(super) fn from_state(state: TransferState, cfg: &TileConfig, shape: [usize; 2]) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::State { reason };
        if state.fast.config != fast_config(cfg) {
            return Err(bad("the fast device's configuration does not follow the tile's transfer settings".into()));
        }
        let fast = AnalogTile::from_state(state.fast)?;
        if [fast.out_size(), fast.in_size()] != shape {
            return Err(bad(format!(
                "fast device of shape {:?}, expected {shape:?}",
                [fast.out_size(), fast.in_size()]
            )));
        }
        let want = if cfg.transfer.buffered() { shape } else { [0, 0] };
        if state.buffer.shape() != want || state.buffer.iter().any(|h| !h.is_finite()) {
            return Err(bad(format!(
                "transfer buffer of shape {:?}, expected {want:?} of finite values",
                state.buffer.shape()
            )));
        }
        let size = if cfg.transfer.transfer_columns { shape[1] } else { shape[0] };
        if state.next >= size {
            return Err(bad(format!("transfer start {} of {size}", state.next)));
        }
        let fresh = Choppers::new(cfg, shape[0], shape[1]);
        let ch = &state.choppers;
        if ch.input.len() != fresh.input.len()
            || ch.output.len() != fresh.output.len()
            || ch.switched.len() != fresh.switched.len()
            || ch.running_mean.dim() != fresh.running_mean.dim()
            || ch.past_mean.dim() != fresh.past_mean.dim()
            || ch.running_mean.iter().chain(&ch.past_mean).any(|v| !v.is_finite())
        {
            return Err(bad(format!(
                "{} input and {} output choppers and running means of shape {:?}, expected {} and {} and {:?} \
                 of finite values",
                ch.input.len(),
                ch.output.len(),
                ch.running_mean.dim(),
                fresh.input.len(),
                fresh.output.len(),
                fresh.running_mean.dim()
            )));
        }
        if [ch.m_x, ch.m_d, ch.count_lr].iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(bad(format!(
                "chopper running means {} and {} and count rate {} must be finite and >= 0",
                ch.m_x, ch.m_d, ch.count_lr
            )));
        }
        let mut chop = state.choppers;
        chop.running_mean = crate::linalg::standard_layout(chop.running_mean);
        chop.past_mean = crate::linalg::standard_layout(chop.past_mean);
        Ok(Self {
            fast,
            buffer: crate::linalg::standard_layout(state.buffer),
            vectors: state.vectors,
            next: state.next,
            chop,
        })
    }

    /// Programming the weights: A = 0, the counts and the buffer start afresh.
    pub(super) fn restart(&mut self, cfg: &TileConfig) -> Result<(), SimError> {
        let (out, n) = (self.fast.out_size(), self.fast.in_size());
        self.fast.set_weights(Array2::zeros((out, n)).view())?;
        self.buffer = empty_or_zero_buffer(cfg, out, n);
        self.vectors = 0;
        self.next = 0;
        self.chop = Choppers::new(cfg, out, n);
        Ok(())
    }

    /// The weights the passes see with γ ≠ 0: C + γ·A, with A de-chopped (chopped: each entry
    /// times its two choppers' sign, as aihwkit's CUDA `reduceToWeights`; its CPU version
    /// indexes the choppers transposed).
    pub(super) fn visible(&self, cfg: &TileConfig, c: ArrayView2<'_, f32>, out: &mut Array2<f32>) {
        let gamma = cfg.transfer.gamma;
        let a = self.fast.stored_weights();
        if cfg.transfer.chopped() {
            let columns = cfg.transfer.transfer_columns;
            ndarray::Zip::indexed(out).and(c).and(a).for_each(|(r, k), v, &c, &a| {
                *v = c + gamma * if self.chop.flips(columns, r, k) { -a } else { a };
            });
        } else {
            ndarray::Zip::from(out).and(c).and(a).for_each(|v, &c, &a| *v = c + gamma * a);
        }
    }
}

fn empty_or_zero_buffer(cfg: &TileConfig, out: usize, n: usize) -> Array2<f32> {
    if cfg.transfer.buffered() { Array2::zeros((out, n)) } else { Array2::zeros((0, 0)) }
}

/// Names the fast device's settings in a configuration error raised while building it.
/// (The fast tile's `device` and `dynamics` are the tile's `transfer.fast_device` and
/// `transfer.fast_dynamics`; its `update` is the tile's.)
fn prefix_error(e: SimError) -> SimError {
    match e {
        SimError::Config(c) => SimError::Config(c.map_fields(|f| {
            if f.starts_with("device") || f.starts_with("dynamics") {
                format!("transfer.fast_{f}")
            } else {
                f.to_string()
            }
        })),
        other => other,
    }
}

impl AnalogTile {
    /// The fast device's stored weights A (`[out, in]` of the stored weights, in their units);
    /// `None` unless `transfer.enabled`.
    pub fn fast_weights(&self) -> Option<ArrayView2<'_, f32>> {
        self.tt.as_ref().map(|t| t.fast.stored_weights())
    }

    /// The fast device as a tile (its hidden parameters, dynamics, state); `None` unless
    /// `transfer.enabled`.
    pub fn fast_tile(&self) -> Option<&AnalogTile> {
        self.tt.as_ref().map(|t| &t.fast)
    }

    /// The buffer H of the buffered transfer (`[out, in]` of the stored weights); empty for
    /// Tiki-Taka, `None` unless `transfer.enabled`.
    pub fn transfer_buffer(&self) -> Option<ArrayView2<'_, f32>> {
        self.tt.as_ref().map(|t| t.buffer.view())
    }

    /// The SGD update of a call onto A, split at the transfer points, with the transfers in
    /// between (on the stored weights: `x` without a digital-bias column, `d` already divided by
    /// the mapping's α). Chopped: A takes the chopped vectors, and with `auto_scale` each vector
    /// its own pulse-count learning rate.
    pub(super) fn transfer_update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) {
        let tc = self.cfg.transfer.clone();
        let batch = x.nrows();
        let every = self.transfer_period(&tc, batch);
        let (lr_fast, lr_t) = (tc.fast_rate(lr), tc.transfer_rate(lr));
        let auto = tc.chopped() && tc.auto_scale;
        let bl = self.cfg.update.desired_bl as f32;
        // A call at lr 0 is skipped by aihwkit's updater vector by vector: no pulses, no count,
        // no transfer, no running means.
        let mut start = if lr == 0.0 { batch } else { 0 };
        while start < batch {
            let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
            let until = if every == 0 { batch - start } else { (every - tt.vectors % every) as usize };
            let end = if auto { start + 1 } else { batch.min(start + until) };
            let (xs, ds) = (x.slice(s![start..end, ..]), d.slice(s![start..end, ..]));
            let count_lr = if auto {
                // (With `auto_scale` the stretch is one vector.)
                let ch = &mut tt.chop;
                Choppers::track(&mut ch.m_x, abs_max_of(&contiguous(xs.row(0))), tc.auto_momentum, batch);
                Choppers::track(&mut ch.m_d, abs_max_of(&contiguous(ds.row(0))), tc.auto_momentum, batch);
                let mut r = tc.fast_lr * bl * tt.fast.device.granularity();
                if ch.m_x > 0.0 && ch.m_d > 0.0 {
                    r /= ch.m_x * ch.m_d;
                }
                if tc.scale_fast_lr() { r * lr } else { r }
            } else {
                lr_fast
            };
            tt.chop.count_lr = count_lr;
            if tc.chopped() && tt.chop.input.iter().chain(&tt.chop.output).any(|&c| c) {
                // Each coincidence's sign times the product of its two choppers.
                let (x_chop, d_chop) = if tc.transfer_columns {
                    (&tt.chop.input, &tt.chop.output)
                } else {
                    (&tt.chop.output, &tt.chop.input)
                };
                let flip = |v: ArrayView2<'_, f32>, c: &[bool]| {
                    let mut v = v.to_owned();
                    for mut row in v.rows_mut() {
                        row.iter_mut().zip(c).filter(|(_, c)| **c).for_each(|(a, _)| *a = -*a);
                    }
                    v
                };
                let (xc, dc) = (flip(xs, x_chop), flip(ds, d_chop));
                tt.fast.sgd_pulses(xc.view(), dc.view(), count_lr);
            } else {
                tt.fast.sgd_pulses(xs, ds, count_lr);
            }
            tt.vectors += (end - start) as u64;
            if every > 0 && tt.vectors.is_multiple_of(every) {
                if tc.dynamic() {
                    self.dynamic_transfer(&tc, lr_t);
                } else if tc.chopped() {
                    self.chopped_transfer(&tc, lr_t);
                } else {
                    self.transfer(&tc, lr_t);
                }
            }
            start = end;
        }
        let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
        tt.fast.post_update_dynamics();
        // The reads and the fast device's pulses are this tile's operations.
        let fast = tt.fast.counters();
        tt.fast.reset_counters();
        self.counters.accumulate(&fast);
    }

    /// Vectors between transfers in a call of `batch` vectors: [`TransferConfig::period`], or
    /// for chopped with a negative `transfer_every` the automatic period from the fast device's
    /// number of states (its parameters' range over its granularity, as aihwkit's).
    fn transfer_period(&self, tc: &TransferConfig, batch: usize) -> u64 {
        if !(tc.chopped() && tc.transfer_every < 0.0) {
            return tc.period(batch);
        }
        let tt = self.tt.as_ref().expect("transfer parts exist when transfer is enabled");
        let p = tc.fast_device.params().expect("checked when the tile was built");
        let size = if tc.transfer_columns { self.w.ncols() } else { self.w.nrows() };
        tc.auto_period((p.w_max - p.w_min) / tt.fast.device.granularity(), size)
    }

    /// One transfer: read the next columns (rows) of A and write them to C. With λ = 0 only the
    /// pointer moves on (as in aihwkit).
    fn transfer(&mut self, tc: &TransferConfig, lr_t: f32) {
        let (n_out, n_in) = self.w.dim();
        let size = if tc.transfer_columns { n_in } else { n_out };
        let count = (tc.n_reads_per_transfer as usize).min(size);
        let seed = self.rng.next_u64();
        let mut rng = stream(seed, 0);
        let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
        let start = if tc.random_selection {
            let u: f32 = rng.random();
            ((u * size as f32).floor() as usize).min(size - 1)
        } else {
            tt.next
        };
        tt.next = (start + count) % size;
        if lr_t == 0.0 {
            return;
        }
        let idx = transfer_rows(start, count, size);
        let one_hot = one_hot_rows(&idx, size);
        // The reads: v_k = A·e_i (columns) or Aᵀ·e_i (rows), through the read periphery.
        let read = if tc.transfer_columns {
            tt.fast.forward_new(one_hot.view())
        } else {
            tt.fast.backward_new(one_hot.view())
        };
        let mut v = read.expect("one-hot reads have the fast tile's shapes");
        if tc.with_reset_prob > 0.0 && (0..count).any(|_| rng.random::<f32>() < tc.with_reset_prob) {
            tt.fast.reset_columns(start, count, 1.0).expect("the read columns exist");
        }
        let wu = tc.write_update();
        // The values to write, one row per read: λ·v (Tiki-Taka) or n·step·ε (buffered).
        let lr_write = match tc.algorithm {
            TransferAlgorithm::TikiTaka => lr_t,
            TransferAlgorithm::Buffered | TransferAlgorithm::Chopped | TransferAlgorithm::Dynamic => {
                let eps = self.device.granularity();
                let rule = BufferRule {
                    lr: lr_t,
                    thres: tc.thres_scale * eps,
                    max_n: wu.desired_bl as f32,
                    momentum: tc.momentum(),
                    forget: tc.forget_buffer,
                };
                let mut n = vec![0.0f32; v.ncols()];
                for (k, &i) in idx.iter().enumerate() {
                    let mut slice = if tc.transfer_columns { tt.buffer.column_mut(i) } else { tt.buffer.row_mut(i) };
                    let mut h = slice.to_vec();
                    rule.step(&mut h, &v.row(k).to_vec(), &mut n);
                    slice.assign(&ndarray::ArrayView1::from(&h));
                    v.row_mut(k).assign(&ndarray::ArrayView1::from(&n));
                }
                tc.step * eps
            }
        };
        // (A buffered read with no whole step writes nothing: no update cycle.)
        let writes = v.rows().into_iter().filter(|r| r.iter().any(|&a| a != 0.0)).count();
        self.counters.update_cycles += if tc.buffered() { writes as u64 } else { count as u64 };
        self.write_reads(tc, &idx, one_hot.view(), v, lr_write);
    }

    /// Writes the values `v` (one row per read `idx`) to C at `lr_write`: exactly on an exact
    /// device, else with the transfer's pulsed update.
    fn write_reads(
        &mut self,
        tc: &TransferConfig,
        idx: &[usize],
        one_hot: ArrayView2<'_, f32>,
        mut v: Array2<f32>,
        lr_write: f32,
    ) {
        if exact_update(self.device.as_ref(), &self.cfg) {
            // C[:, i] += lr_write·v_k (columns) or C[i, :] += lr_write·v_k (rows).
            for (k, &i) in idx.iter().enumerate() {
                let mut target = if tc.transfer_columns { self.w.column_mut(i) } else { self.w.row_mut(i) };
                target.scaled_add(lr_write, &v.row(k));
            }
        } else {
            let wu = tc.write_update();
            v.mapv_inplace(|a| -a);
            // ΔC = −lr·dᵀ·x: columns x = e_i, d = −v; rows x = −v, d = e_i.
            if tc.transfer_columns {
                self.pulsed_update(&wu, one_hot, v.view(), lr_write);
            } else {
                self.pulsed_update(&wu, v.view(), one_hot, lr_write);
            }
        }
    }

    /// The common start of a chopped or dynamic transfer: the transfer's generator, the column
    /// (row) pointer moved on, and unless λ = 0 the read of the column and the buffer's
    /// increment per unit read.
    fn chop_read(&mut self, tc: &TransferConfig, lr_t: f32) -> Option<ChopRead> {
        let (n_out, n_in) = self.w.dim();
        let size = if tc.transfer_columns { n_in } else { n_out };
        let rng = stream(self.rng.next_u64(), 0);
        let eps_c = self.device.granularity();
        let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
        let i = tt.next;
        tt.next = (i + 1) % size;
        if lr_t == 0.0 {
            return None;
        }
        let one_hot = one_hot_rows(&[i], size);
        let read = if tc.transfer_columns {
            tt.fast.forward_new(one_hot.view())
        } else {
            tt.fast.backward_new(one_hot.view())
        };
        let v = read.expect("one-hot reads have the fast tile's shapes");
        let eps_a = tt.fast.device.granularity();
        let mut unit = tc.buffer_unit(eps_a, size);
        let scale = if tc.correct_gradient_magnitudes {
            unit *= eps_c / eps_a;
            lr_t / tt.chop.count_lr / unit
        } else {
            lr_t / unit
        };
        Some(ChopRead { i, size, one_hot, v, scale, rng, eps_c })
    }

    /// One chopped transfer (module [`crate::transfer`]): read the next column (row) of A, add
    /// it with its chopper signs into the buffer, write the whole steps to C, then flip the
    /// choppers that are due.
    fn chopped_transfer(&mut self, tc: &TransferConfig, lr_t: f32) {
        let Some(ChopRead { i, size, one_hot, mut v, scale, mut rng, eps_c }) = self.chop_read(tc, lr_t) else {
            return;
        };
        let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
        let rule = ChopRule {
            scale,
            max_n: tc.write_update().desired_bl as f32,
            momentum: tc.momentum(),
            forget: tc.forget_buffer,
            no_buffer: tc.no_buffer,
        };
        let mut slice = if tc.transfer_columns { tt.buffer.column_mut(i) } else { tt.buffer.row_mut(i) };
        let mut h = slice.to_vec();
        let mut n = vec![0.0f32; h.len()];
        rule.step(&mut h, &v.row(0).to_vec(), tt.chop.input[i], &tt.chop.output, &mut n);
        slice.assign(&ndarray::ArrayView1::from(&h));
        v.row_mut(0).assign(&ndarray::ArrayView1::from(&n));
        // The choppers change after the read: c_in of this column at random or after every
        // max(⌈1/p⌉, 2)-th sweep; after the last column each c_out at random.
        let ch = &mut tt.chop;
        if tc.in_chop_prob > 0.0 {
            let flip = if tc.in_chop_random() {
                rng.random::<f32>() < tc.in_chop_prob
            } else {
                let period = tc.chop_period();
                ch.sweeps % period + 1 == period
            };
            if flip {
                ch.input[i] = !ch.input[i];
            }
        }
        if i == size - 1 {
            if tc.out_chop_prob > 0.0 {
                for c in ch.output.iter_mut() {
                    if rng.random::<f32>() < tc.out_chop_prob {
                        *c = !*c;
                    }
                }
            }
            ch.sweeps += 1;
        }
        if n.iter().any(|&a| a != 0.0) {
            self.counters.update_cycles += 1;
            self.write_reads(tc, &[i], one_hot.view(), v, tc.step * eps_c);
        }
    }

    /// One dynamic (AGAD) transfer: as [`chopped_transfer`](Self::chopped_transfer), but each
    /// entry enters the buffer relative to its reference, the running mean of its reads at the
    /// end of the previous chopper period (module [`crate::transfer`]); nothing is written
    /// during the first N + 1 sweeps.
    fn dynamic_transfer(&mut self, tc: &TransferConfig, lr_t: f32) {
        let Some(ChopRead { i, size, one_hot, mut v, scale, mut rng, eps_c }) = self.chop_read(tc, lr_t) else {
            return;
        };
        let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
        let period = tc.chop_period();
        let ch = &mut tt.chop;
        let sample = ch.sweeps % period + 1;
        let weight = (tc.tail_weightening / period as f32).min(1.0);
        let switched = std::mem::replace(&mut ch.switched[i], false);
        let max_n = tc.write_update().desired_bl as f32;
        let cap = max_n * tc.buffer_cap;
        let momentum = tc.momentum();
        let c_in = ch.input[i];
        let mut n = vec![0.0f32; v.ncols()];
        for (j, (&val, nj)) in v.row(0).iter().zip(n.iter_mut()).enumerate() {
            let at = if tc.transfer_columns { (j, i) } else { (i, j) };
            if switched {
                // A new chopper period: its reference is the last period's running mean.
                ch.past_mean[at] = ch.running_mean[at];
            }
            let dw = val - ch.past_mean[at];
            let dw = if c_in != ch.output[j] { -dw } else { dw };
            let mut omega = tt.buffer[at] + dw * scale;
            if omega.abs() >= 1.0 {
                *nj = omega.trunc().clamp(-max_n, max_n);
                if tc.forget_buffer {
                    omega *= momentum;
                } else {
                    omega -= (1.0 - momentum) * *nj;
                    if cap > 0.0 {
                        omega = omega.clamp(-cap, cap);
                    }
                }
            }
            tt.buffer[at] = omega;
            ch.running_mean[at] = ch.running_mean[at] * (1.0 - weight) + val * weight;
        }
        let write = n.iter().any(|&a| a != 0.0) && ch.sweeps > period;
        // The input chopper flips at the end of every period, and with `in_chop_random` also at
        // random in between.
        let mut flip = sample == period;
        if tc.in_chop_random() && rng.random::<f32>() < tc.in_chop_prob {
            flip = true;
        }
        if flip {
            ch.input[i] = !ch.input[i];
            ch.switched[i] = true;
        }
        if i == size - 1 {
            ch.sweeps += 1;
        }
        if write {
            v.row_mut(0).assign(&ndarray::ArrayView1::from(&n));
            self.counters.update_cycles += 1;
            self.write_reads(tc, &[i], one_hot.view(), v, tc.step * eps_c);
        }
    }
}
