//! The layer stack of the paper's network, built from a [`NetConfig`].

use ndarray::{Array2, Array4, ArrayView4, Axis};
use rapa_layers::paper::paper_like_convs;
use rapa_layers::{ConvState, RapaConv2d, TileKind, TiledLinear};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crossbar_sim::TileSnapshot;
use crossbar_sim::rng::derive_seed;

use super::config::{Init, NetConfig};
use super::profile::{StageTimes, timed};
use crate::error::TrainError;
use crate::layers::{Lrn, Pool, PoolKind, Relu};

/// Std of the fully connected layer's initial weights (Caffe cifar10_full: 0.01).
const FC_INIT_STD: f32 = 0.01;

/// Stage names of the profiler, per layer index.
const CONV_FWD: [&str; 3] = ["conv1 forward", "conv2 forward", "conv3 forward"];
const RELU_FWD: [&str; 3] = ["relu1 forward", "relu2 forward", "relu3 forward"];
const POOL_FWD: [&str; 3] = ["pool1 forward", "pool2 forward", "pool3 forward"];
const LRN_FWD: [&str; 2] = ["lrn1 forward", "lrn2 forward"];
const CONV_BWD: [&str; 3] = ["conv1 backward", "conv2 backward", "conv3 backward"];
const RELU_BWD: [&str; 3] = ["relu1 backward", "relu2 backward", "relu3 backward"];
const POOL_BWD: [&str; 3] = ["pool1 backward", "pool2 backward", "pool3 backward"];
const LRN_BWD: [&str; 2] = ["lrn1 backward", "lrn2 backward"];
const CONV_UPD: [&str; 3] = ["conv1 update", "conv2 update", "conv3 update"];

/// The network.
#[derive(Debug)]
pub struct Network {
    cfg: NetConfig,
    convs: Vec<RapaConv2d>,
    relus: Vec<Relu>,
    pools: Vec<Pool>,
    lrns: Vec<Lrn>,
    fc: TiledLinear,
    fc_shape: [usize; 3],
    times: Option<StageTimes>,
}

/// Everything needed to restore a [`Network`] bit-exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetState {
    /// The configuration.
    pub config: NetConfig,
    /// Conv layers.
    pub convs: Vec<ConvState>,
    /// Pool layers (mixing logits, sampling stream position).
    pub pools: Vec<PoolSnapshot>,
    /// The fully connected tile.
    pub fc: TileSnapshot,
}

/// The learnable / stateful part of a pool layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSnapshot {
    /// Mixing logits (mixed pooling).
    pub mix: Vec<f32>,
    /// Forward calls so far.
    pub calls: u64,
}

impl Network {
    /// Builds the network for 32×32×3 inputs; every layer's seed derives from `seed`.
    pub fn new(cfg: &NetConfig, seed: u64) -> Result<Self, TrainError> {
        cfg.validate()?;
        let tile = cfg.tile_kind()?;
        let mut conv_cfgs = paper_like_convs(cfg.channels, cfg.tiles, cfg.scheme, &tile);
        if cfg.init == Init::He {
            for c in &mut conv_cfgs {
                c.init_std = (2.0 / c.geometry.patch_len() as f32).sqrt();
            }
        }
        let mut convs = Vec::with_capacity(3);
        let mut pools = Vec::with_capacity(3);
        for (l, c) in conv_cfgs.iter().enumerate() {
            let mut conv = RapaConv2d::new(c.clone(), derive_seed(seed, l as u64))?;
            let n = conv.tiles().len();
            conv.set_lr_scale(vec![cfg.tile_lr_factors()[l]; n])?;
            convs.push(conv);
            let kind = if l < 2 { cfg.pool } else { PoolKind::Avg };
            pools.push(Pool::new(kind, 3, 2, c.out_channels, derive_seed(seed, 100 + l as u64)));
        }
        let fc_shape = cfg.fc_shape();
        let fc_tile = if cfg.analog_fc { tile } else { TileKind::Float };
        let fc_in: usize = fc_shape.iter().product();
        let fc_std = if cfg.init == Init::He { (1.0 / fc_in as f32).sqrt() } else { FC_INIT_STD };
        let fc = TiledLinear::new(fc_in, cfg.classes, &fc_tile, fc_std, derive_seed(seed, 200))?;
        Ok(Self {
            cfg: cfg.clone(),
            convs,
            relus: vec![Relu::new(); 3],
            pools,
            lrns: if cfg.lrn { vec![Lrn::paper(), Lrn::paper()] } else { Vec::new() },
            fc,
            fc_shape,
            times: None,
        })
    }

    /// Turns the per-stage profiler on (starting from zero) or off. While on, every layer's
    /// forward, backward and update adds its wall time to [`stage_times`](Self::stage_times).
    pub fn set_profiling(&mut self, on: bool) {
        self.times = on.then(StageTimes::default);
    }

    /// Time per layer and pass since profiling was turned on (`None` when off).
    pub fn stage_times(&self) -> Option<&StageTimes> {
        self.times.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The conv layers.
    pub fn convs(&self) -> &[RapaConv2d] {
        &self.convs
    }

    /// Mutable conv layers (e.g. to hold assignments or program weights).
    pub fn convs_mut(&mut self) -> &mut [RapaConv2d] {
        &mut self.convs
    }

    /// The fully connected layer.
    pub fn fc(&self) -> &TiledLinear {
        &self.fc
    }

    /// The mutable fully connected layer (e.g. to replace its tile).
    pub fn fc_mut(&mut self) -> &mut TiledLinear {
        &mut self.fc
    }

    /// The pool layers.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The ReLU after each conv layer (each keeps the sign mask of its last forward pass).
    pub fn relus(&self) -> &[Relu] {
        &self.relus
    }

    /// Training or evaluation mode for every layer.
    pub fn set_training(&mut self, training: bool) {
        for c in &mut self.convs {
            c.set_training(training);
        }
        self.fc.set_training(training);
        for p in &mut self.pools {
            p.set_training(training);
        }
    }

    /// Holds (or releases) the patch assignment of every conv layer: while held, forward
    /// passes reuse one assignment; releasing moves on to fresh draws.
    pub fn hold_assignments(&mut self, hold: bool) {
        for c in &mut self.convs {
            c.hold_assignment(hold);
        }
    }

    /// Mutable pool layers.
    pub fn pools_mut(&mut self) -> &mut [Pool] {
        &mut self.pools
    }

    /// Replaces conv layer `l` (e.g. by its reduction to one kernel matrix).
    pub fn replace_conv(&mut self, l: usize, conv: RapaConv2d) -> Result<(), TrainError> {
        let old = self.convs.get(l).ok_or_else(|| TrainError::Internal(format!("no conv layer {l}")))?;
        if old.config().geometry != conv.config().geometry || old.config().out_channels != conv.config().out_channels {
            return Err(TrainError::Config {
                field: format!("conv{}", l + 1),
                reason: "replacement has another shape".into(),
            });
        }
        self.convs[l] = conv;
        self.cfg.tiles[l] = self.convs[l].config().n_tiles;
        if self.cfg.tiles.iter().all(|&n| n == 1) {
            self.cfg.scheme = rapa_layers::Scheme::None;
        }
        Ok(())
    }

    /// Conv weights including per-tile biases.
    pub fn n_conv_weights(&self) -> usize {
        self.convs.iter().map(RapaConv2d::n_weights).sum()
    }

    /// Forward pass: `[N, 3, 32, 32]` → logits `[N, classes]`.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Result<Array2<f32>, TrainError> {
        let times = &mut self.times;
        let mut h = timed(times, CONV_FWD[0], || self.convs[0].forward(x))?;
        for l in 0..3 {
            if l > 0 {
                h = timed(times, CONV_FWD[l], || self.convs[l].forward(h.view()))?;
            }
            timed(times, RELU_FWD[l], || self.relus[l].forward_in_place(&mut h));
            h = timed(times, POOL_FWD[l], || self.pools[l].forward(h.view()));
            if let Some(lrn) = self.lrns.get_mut(l) {
                h = timed(times, LRN_FWD[l], || lrn.forward(h.view()));
            }
        }
        let n = h.shape()[0];
        let flat_len: usize = self.fc_shape.iter().product();
        let flat = h.into_shape_with_order((n, flat_len)).map_err(|e| TrainError::Internal(e.to_string()))?;
        Ok(timed(times, "fc forward", || self.fc.forward(flat.view()))?)
    }

    /// Backward pass from the logit gradient; returns the input gradient `[N, 3, 32, 32]`
    /// (what adversarial attacks need). Training uses [`backward_for_update`](Self::backward_for_update).
    pub fn backward(&mut self, dlogits: ndarray::ArrayView2<'_, f32>) -> Result<Array4<f32>, TrainError> {
        let d = self.backward_to_first(dlogits)?;
        Ok(timed(&mut self.times, CONV_BWD[0], || self.convs[0].backward(d.view()))?)
    }

    /// Backward pass that prepares [`update`](Self::update) but skips the input gradient: the
    /// first conv layer runs no backward MVMs (as on hardware, where nothing needs them).
    pub fn backward_for_update(&mut self, dlogits: ndarray::ArrayView2<'_, f32>) -> Result<(), TrainError> {
        let d = self.backward_to_first(dlogits)?;
        Ok(timed(&mut self.times, CONV_BWD[0], || self.convs[0].backward_weights_only(d.view()))?)
    }

    /// Backward through everything above the first conv layer; returns the gradient at its output.
    fn backward_to_first(&mut self, dlogits: ndarray::ArrayView2<'_, f32>) -> Result<Array4<f32>, TrainError> {
        let n = dlogits.nrows();
        let times = &mut self.times;
        let d = timed(times, "fc backward", || self.fc.backward(dlogits))?;
        let [c, hh, ww] = self.fc_shape;
        let mut d = d.into_shape_with_order((n, c, hh, ww)).map_err(|e| TrainError::Internal(e.to_string()))?;
        let order = |what: &'static str| TrainError::Internal(format!("{what} backward without forward"));
        for l in (0..3).rev() {
            if let Some(lrn) = self.lrns.get(l) {
                d = timed(times, LRN_BWD[l], || lrn.backward(d.view())).ok_or_else(|| order("lrn"))?;
            }
            d = timed(times, POOL_BWD[l], || self.pools[l].backward(d.view())).ok_or_else(|| order("pool"))?;
            if !timed(times, RELU_BWD[l], || self.relus[l].backward_in_place(&mut d)) {
                return Err(order("relu"));
            }
            if l > 0 {
                d = timed(times, CONV_BWD[l], || self.convs[l].backward(d.view()))?;
            }
        }
        Ok(d)
    }

    /// SGD step on every tile (and the mixing logits), then weight decay W ← W·(1 − lr·wd) on
    /// the float and inference tiles' weights (biases excluded; both train digitally); with
    /// [`decay_with_tile_lr`](NetConfig::decay_with_tile_lr) a conv tile decays with its own
    /// rate, W ← W·(1 − lr·s·wd) for its learning-rate factor s. Analog tiles get no decay:
    /// their weights change only through pulses.
    pub fn update(&mut self, lr: f32, weight_decay: f32) -> Result<(), TrainError> {
        let times = &mut self.times;
        for (l, c) in self.convs.iter_mut().enumerate() {
            timed(times, CONV_UPD[l], || c.update(lr))?;
        }
        for p in &mut self.pools {
            p.update(lr);
        }
        timed(times, "fc update", || self.fc.update(lr))?;
        let t = std::time::Instant::now();
        if weight_decay > 0.0 {
            let f = 1.0 - lr * weight_decay;
            // The tile kind follows from the configuration (see `NetConfig::tile_kind`).
            let float_convs = self.cfg.tile.is_none() && self.cfg.device == "float"; // float or inference tiles
            if float_convs {
                // (In parallel over each layer's tiles: a copy of every weight, serial it was
                // ~1 % of a training step on two threads.)
                let with_tile_lr = self.cfg.decay_with_tile_lr;
                for c in &mut self.convs {
                    let scales = c.lr_scale().to_vec();
                    c.tiles_mut()
                        .par_iter_mut()
                        .enumerate()
                        .map(|(i, tile)| {
                            decay(tile.as_mut(), if with_tile_lr { 1.0 - lr * scales[i] * weight_decay } else { f })
                        })
                        .collect::<Result<Vec<()>, _>>()?;
                }
            }
            if float_convs || !self.cfg.analog_fc {
                decay(self.fc.tile_mut(), f)?;
            }
        }
        if let Some(times) = &mut self.times {
            times.add("weight decay", t.elapsed());
        }
        Ok(())
    }

    /// Predicted class of each row of `logits`.
    pub fn predict(logits: &Array2<f32>) -> Vec<usize> {
        logits.axis_iter(Axis(0)).map(|r| crate::layers::argmax_row(r.as_slice().unwrap_or(&r.to_vec()))).collect()
    }

    /// [`predict`](Self::predict), refusing NaN or infinite logits (a diverged network would
    /// otherwise predict class 0 and be scored as if it had learned something): the error names
    /// `dataset` and the image, `images[row]`.
    pub fn predict_finite(logits: &Array2<f32>, dataset: &str, images: &[usize]) -> Result<Vec<usize>, TrainError> {
        if let Some(row) = logits.axis_iter(Axis(0)).position(|r| !r.iter().all(|v| v.is_finite())) {
            return Err(TrainError::NonFiniteOutput {
                dataset: dataset.to_string(),
                image: images.get(row).copied().unwrap_or(row),
            });
        }
        Ok(Self::predict(logits))
    }

    /// A snapshot of the full state.
    pub fn state(&self) -> NetState {
        NetState {
            config: self.cfg.clone(),
            convs: self.convs.iter().map(RapaConv2d::state).collect(),
            pools: self.pools.iter().map(|p| PoolSnapshot { mix: p.mix.to_vec(), calls: p.calls() }).collect(),
            fc: self.fc.state(),
        }
    }

    /// Rebuilds a network from a snapshot.
    pub fn from_state(state: NetState, seed: u64) -> Result<Self, TrainError> {
        let mut net = Self::new(&state.config, seed)?;
        if state.convs.len() != 3 || state.pools.len() != 3 {
            return Err(TrainError::Checkpoint { reason: "a network state needs 3 conv and 3 pool layers".into() });
        }
        // Each layer must be the one the configuration builds (channels, geometry, scheme,
        // tiles): later layers, the pools and the loss index by those sizes. Compared before
        // the layers are rebuilt, so that a corrupt geometry is never used to allocate.
        for (l, (c, built)) in state.convs.iter().zip(&net.convs).enumerate() {
            if &c.config != built.config() {
                return Err(TrainError::Checkpoint {
                    reason: format!("conv{} does not match the network configuration ({:?})", l + 1, built.config()),
                });
            }
        }
        let convs = state.convs.into_iter().map(RapaConv2d::from_state).collect::<Result<Vec<_>, _>>()?;
        net.convs = convs;
        for (l, (p, s)) in net.pools.iter_mut().zip(state.pools).enumerate() {
            if s.mix.len() != p.mix.len() {
                return Err(TrainError::Checkpoint {
                    reason: format!(
                        "pool{} has {} mixing weights, the configuration needs {}",
                        l + 1,
                        s.mix.len(),
                        p.mix.len()
                    ),
                });
            }
            p.mix = ndarray::Array1::from(s.mix);
            p.set_calls(s.calls);
        }
        let fc = TiledLinear::from_state(state.fc)?;
        let (got, want) = (fc.tile(), net.fc.tile());
        if (got.out_size(), got.in_size()) != (want.out_size(), want.in_size()) {
            return Err(TrainError::Checkpoint {
                reason: format!(
                    "the fc layer is {}×{}, the configuration needs {}×{} (classes × inputs with the bias)",
                    got.out_size(),
                    got.in_size(),
                    want.out_size(),
                    want.in_size()
                ),
            });
        }
        net.fc = fc;
        Ok(net)
    }
}

/// W[:, :K] ← f·W[:, :K] (the bias column is not decayed); called for float and inference
/// tiles only (both train digitally).
fn decay(t: &mut dyn crossbar_sim::Tile, f: f32) -> Result<(), TrainError> {
    let mut w = t.weights().to_owned();
    let k = w.ncols() - 1;
    w.slice_mut(ndarray::s![.., ..k]).mapv_inplace(|v| v * f);
    t.set_weights(w.view())?;
    Ok(())
}
