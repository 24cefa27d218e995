//! Analog timing of conv layers and networks, and the load-balancing planner.
//!
//! Per image, a layer with P patches on n tiles costs ⌈P/n⌉ MVM cycles per tile forward, as
//! many backward and as many rank-1 update cycles (§5) — except that training runs no backward
//! MVMs in the first layer (nothing needs the gradient of the image), and a perforated layer
//! computes only ⌈P/n⌉ of its patches on its one tile in training but all P at test. Layers of a
//! network, and images, can be pipelined: the throughput is then set by the slowest layer;
//! without pipelining the layers' cycles add up.

use crossbar_sim::TimingModel;

use crate::assign::Scheme;
use crate::conv::ConvConfig;
use crate::error::LayerError;

/// Timing of one conv layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTiming {
    /// Layer name.
    pub name: String,
    /// Patches per image P.
    pub patches: usize,
    /// Tiles that share the patches (the scheme's kernel matrices: n, or 1 for no tiling and
    /// perforated).
    pub n_tiles: usize,
    /// Patches per image computed in training: P, or ⌈P/n⌉ for perforated.
    pub train_patches: usize,
    /// Whether training runs this layer's backward MVMs (false for a network's first layer).
    pub backward: bool,
    /// Kernel-matrix inputs (K + 1 with the bias).
    pub kernel_rows: usize,
    /// Kernel-matrix outputs (C_out).
    pub kernel_cols: usize,
}

impl LayerTiming {
    /// Timing of a conv layer configuration, as a layer whose backward MVMs training runs
    /// (not the first layer; [`NetworkTiming::from_configs`] marks that one).
    pub fn from_config(name: impl Into<String>, cfg: &ConvConfig) -> Self {
        let patches = cfg.geometry.n_patches();
        Self {
            name: name.into(),
            patches,
            n_tiles: cfg.scheme.n_kernels(cfg.n_tiles),
            train_patches: if cfg.scheme == Scheme::Perforated { patches.div_ceil(cfg.n_tiles) } else { patches },
            backward: true,
            kernel_rows: cfg.geometry.patch_len() + 1,
            kernel_cols: cfg.out_channels,
        }
    }

    /// ⌈P/n⌉: MVM cycles per tile per image at inference (forward only).
    ///
    /// # Panics
    /// If `n_tiles` is 0 (a [`ConvConfig`] that passes its validation has n ≥ 1).
    pub fn cycles_per_tile(&self) -> usize {
        self.patches.div_ceil(self.n_tiles)
    }

    /// MVM cycles per tile per image in training, each of forward, backward (where it runs)
    /// and update: ⌈P/n⌉, or for perforated ⌈P/n⌉ on its one tile.
    ///
    /// # Panics
    /// As [`cycles_per_tile`](Self::cycles_per_tile).
    pub fn train_cycles_per_tile(&self) -> usize {
        self.train_patches.div_ceil(self.n_tiles)
    }

    /// The same layer on one tile, computing every patch (no tiling).
    pub fn untiled(&self) -> Self {
        Self { n_tiles: 1, train_patches: self.patches, ..self.clone() }
    }

    /// Multiply-accumulates per image (P·(K + 1)·C_out), whatever n is.
    pub fn macs(&self) -> usize {
        self.patches * self.kernel_rows * self.kernel_cols
    }

    /// Analog time per image (ns): forward only (`training = false`) or forward + backward
    /// (where it runs) + update with pulse trains of `bl` slots.
    pub fn time_ns(&self, model: &TimingModel, training: bool, bl: u32) -> f64 {
        if !training {
            return self.cycles_per_tile() as f64 * model.forward_pass_ns;
        }
        let backward = if self.backward { model.backward_pass_ns } else { 0.0 };
        self.train_cycles_per_tile() as f64
            * (model.forward_pass_ns + backward + f64::from(bl) * model.update_slot_ns + model.update_cycle_ns)
    }
}

/// Timing of a conv stack.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkTiming {
    /// The layers in order.
    pub layers: Vec<LayerTiming>,
}

impl NetworkTiming {
    /// Timing of a conv stack, layers named `conv1`, `conv2`, …; the first runs no backward
    /// MVMs in training.
    pub fn from_configs(layers: &[ConvConfig]) -> Self {
        Self {
            layers: layers
                .iter()
                .enumerate()
                .map(|(i, c)| LayerTiming { backward: i > 0, ..LayerTiming::from_config(format!("conv{}", i + 1), c) })
                .collect(),
        }
    }

    /// Cycles per image at inference with layers pipelined: the slowest layer's ⌈P/n⌉.
    pub fn pipelined_cycles(&self) -> usize {
        self.layers.iter().map(LayerTiming::cycles_per_tile).max().unwrap_or(0)
    }

    /// Cycles per image at inference with layers one after another: Σ ⌈P/n⌉.
    pub fn sequential_cycles(&self) -> usize {
        self.layers.iter().map(LayerTiming::cycles_per_tile).sum()
    }

    /// The same network with one tile per layer, computing every patch.
    pub fn untiled(&self) -> Self {
        Self { layers: self.layers.iter().map(LayerTiming::untiled).collect() }
    }

    /// Pipelined speed-up over the untiled network.
    pub fn speedup(&self) -> f64 {
        self.untiled().pipelined_cycles() as f64 / self.pipelined_cycles() as f64
    }

    /// Pipelined analog time per image (ns): the slowest layer's time.
    pub fn pipelined_time_ns(&self, model: &TimingModel, training: bool, bl: u32) -> f64 {
        self.layers.iter().map(|l| l.time_ns(model, training, bl)).fold(0.0, f64::max)
    }

    /// Sequential analog time per image (ns).
    pub fn sequential_time_ns(&self, model: &TimingModel, training: bool, bl: u32) -> f64 {
        self.layers.iter().map(|l| l.time_ns(model, training, bl)).sum()
    }
}

/// Load-balancing planner: tile counts n_l for layers with `patches[l]` patches per image that
/// minimize the slowest layer's ⌈P_l/n_l⌉ within `budget` tiles in total, using the fewest tiles
/// that reach that minimum.
pub fn plan_tiles(patches: &[usize], budget: usize) -> Result<Vec<usize>, LayerError> {
    if patches.is_empty() || patches.contains(&0) || budget < patches.len() {
        return Err(LayerError::Invalid {
            field: "budget",
            value: budget.to_string(),
            reason: format!("needs ≥ one tile per layer and non-empty layers, patches {patches:?}"),
        });
    }
    let need = |t: usize| patches.iter().map(|&p| p.div_ceil(t)).sum::<usize>();
    // need(T) is non-increasing in T: binary search the smallest feasible T.
    let (mut lo, mut hi) = (1usize, *patches.iter().max().unwrap_or(&1));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if need(mid) <= budget { hi = mid } else { lo = mid + 1 }
    }
    // Fewest tiles reaching cycle count lo.
    Ok(patches.iter().map(|&p| p.div_ceil(lo)).collect())
}
