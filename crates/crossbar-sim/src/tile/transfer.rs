//! The Tiki-Taka parts of an [`AnalogTile`]: the fast device A (itself an analog tile whose
//! periphery is the transfer read's), the buffer of the buffered variant, and the transfer
//! ([`crate::transfer`] describes the algorithm).

use ndarray::{Array2, ArrayView2, s};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use super::analog::exact_update;
use super::{AnalogTile, AnalogTileState, Tile, TileConfig};
use crate::error::SimError;
use crate::mapping::MappingConfig;
use crate::mixed_precision::{MixedPrecisionConfig, one_hot_rows, transfer_rows};
use crate::rng::{derive_seed, stream};
use crate::transfer::{BufferRule, TransferAlgorithm, TransferConfig};

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
        Ok(Self { fast, buffer: empty_or_zero_buffer(cfg, out, n_analog), vectors: 0, next: 0 })
    }

    pub(super) fn state(&self) -> TransferState {
        TransferState { fast: self.fast.state(), buffer: self.buffer.clone(), vectors: self.vectors, next: self.next }
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
        let want = if cfg.transfer.algorithm == TransferAlgorithm::Buffered { shape } else { [0, 0] };
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
        Ok(Self {
            fast,
            buffer: crate::linalg::standard_layout(state.buffer),
            vectors: state.vectors,
            next: state.next,
        })
    }

    /// Programming the weights: A = 0, the counts and the buffer start afresh.
    pub(super) fn restart(&mut self, cfg: &TileConfig) -> Result<(), SimError> {
        let (out, n) = (self.fast.out_size(), self.fast.in_size());
        self.fast.set_weights(Array2::zeros((out, n)).view())?;
        self.buffer = empty_or_zero_buffer(cfg, out, n);
        self.vectors = 0;
        self.next = 0;
        Ok(())
    }
}

fn empty_or_zero_buffer(cfg: &TileConfig, out: usize, n: usize) -> Array2<f32> {
    if cfg.transfer.algorithm == TransferAlgorithm::Buffered { Array2::zeros((out, n)) } else { Array2::zeros((0, 0)) }
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
    /// the mapping's α).
    pub(super) fn transfer_update(&mut self, x: ArrayView2<'_, f32>, d: ArrayView2<'_, f32>, lr: f32) {
        let tc = self.cfg.transfer.clone();
        let batch = x.nrows();
        let every = tc.period(batch);
        let (lr_fast, lr_t) = (tc.fast_rate(lr), tc.transfer_rate(lr));
        let mut start = 0;
        while start < batch {
            let tt = self.tt.as_mut().expect("transfer parts exist when transfer is enabled");
            let until = if every == 0 { batch - start } else { (every - tt.vectors % every) as usize };
            let end = batch.min(start + until);
            tt.fast.sgd_pulses(x.slice(s![start..end, ..]), d.slice(s![start..end, ..]), lr_fast);
            tt.vectors += (end - start) as u64;
            if every > 0 && tt.vectors.is_multiple_of(every) {
                self.transfer(&tc, lr_t);
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
        let exact = exact_update(self.device.as_ref(), &self.cfg);
        // The values to write, one row per read: λ·v (Tiki-Taka) or n·step·ε (buffered).
        let lr_write = match tc.algorithm {
            TransferAlgorithm::TikiTaka => lr_t,
            TransferAlgorithm::Buffered => {
                let eps = self.device.granularity();
                let rule = BufferRule {
                    lr: lr_t,
                    thres: tc.thres_scale * eps,
                    max_n: wu.desired_bl as f32,
                    momentum: tc.momentum,
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
        self.counters.update_cycles +=
            if tc.algorithm == TransferAlgorithm::Buffered { writes as u64 } else { count as u64 };
        if exact {
            // C[:, i] += lr_write·v_k (columns) or C[i, :] += lr_write·v_k (rows).
            for (k, &i) in idx.iter().enumerate() {
                let mut target = if tc.transfer_columns { self.w.column_mut(i) } else { self.w.row_mut(i) };
                target.scaled_add(lr_write, &v.row(k));
            }
        } else {
            v.mapv_inplace(|a| -a);
            // ΔC = −lr·dᵀ·x: columns x = e_i, d = −v; rows x = −v, d = e_i.
            if tc.transfer_columns {
                self.pulsed_update(&wu, one_hot.view(), v.view(), lr_write);
            } else {
                self.pulsed_update(&wu, v.view(), one_hot.view(), lr_write);
            }
        }
    }
}
