//! Analog inference of a trained network on PCM: every tile of every layer (each of a RAPA
//! layer's n replicas on its own chip area) is programmed onto an
//! [`InferenceTile`], read at chosen times after programming (drift, read noise), and the
//! network is evaluated through the noisy forward periphery with drift compensation.

use crossbar_sim::rng::derive_seed;
use crossbar_sim::{FloatTile, InferenceConfig, InferenceTile, Tile};

use crate::data::{Dataset, Normalizer};
use crate::error::TrainError;
use crate::net::{NetState, Network};
use crate::train::evaluate;

/// Where a tile sits in the network: conv layer `layer` (0-based; `layer` = number of conv
/// layers is the fully connected layer) and its index within the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileLoc {
    /// The layer.
    pub layer: usize,
    /// The tile within the layer.
    pub tile: usize,
}

/// A network's tiles programmed onto PCM: one [`InferenceTile`] per tile of the network.
#[derive(Debug, Clone)]
pub struct PcmChip {
    tiles: Vec<(TileLoc, InferenceTile)>,
}

impl PcmChip {
    /// Programs every tile of `net` with its current effective weights
    /// ([`Tile::weights`], so analog-trained tiles bring their mapping scales and digital
    /// bias); tile `k` of layer `l` is seeded with `derive_seed(derive_seed(seed, l), k)`.
    pub fn program(net: &Network, cfg: &InferenceConfig, seed: u64) -> Result<Self, TrainError> {
        Self::program_layers(net, cfg, seed, &[])
    }

    /// [`program`](Self::program) restricted to the layers in `layers` (0-based; the number of
    /// conv layers is the fully connected layer; empty: all): the other layers stay digital. A
    /// layer is seeded as in a whole chip, so it gets the same devices either way.
    pub fn program_layers(
        net: &Network,
        cfg: &InferenceConfig,
        seed: u64,
        layers: &[usize],
    ) -> Result<Self, TrainError> {
        cfg.validate().map_err(|e| TrainError::Config { field: "inference".into(), reason: e.to_string() })?;
        let n_layers = net.convs().len() + 1;
        if let Some(l) = layers.iter().find(|&&l| l >= n_layers) {
            return Err(TrainError::Config {
                field: "layers".into(),
                reason: format!("layer {l} does not exist (the network has {n_layers} layers, 0-based)"),
            });
        }
        let chosen = |l: usize| layers.is_empty() || layers.contains(&l);
        let mut tiles = Vec::new();
        let mut add = |layer: usize, k: usize, t: &dyn Tile| -> Result<(), TrainError> {
            if !chosen(layer) {
                return Ok(());
            }
            let s = derive_seed(derive_seed(seed, layer as u64), k as u64);
            let mut tile = InferenceTile::from_weights(t.weights(), cfg, s)?;
            tile.program();
            tiles.push((TileLoc { layer, tile: k }, tile));
            Ok(())
        };
        for (l, conv) in net.convs().iter().enumerate() {
            for (k, t) in conv.tiles().iter().enumerate() {
                add(l, k, t.as_ref())?;
            }
        }
        add(net.convs().len(), 0, net.fc().tile())?;
        Ok(Self { tiles })
    }

    /// The programmed tiles with their places.
    pub fn tiles(&self) -> &[(TileLoc, InferenceTile)] {
        &self.tiles
    }

    /// Puts copies of the programmed tiles into `net` (a network of the same shape), each read
    /// `t_inference` seconds after programming ([`InferenceTile::drift_to`]). The copies continue
    /// each tile's random stream from the programming, so reads at different times of one chip
    /// share their draws (common random numbers: the differences between times are the drift).
    pub fn read_into(&self, net: &mut Network, t_inference: f64) -> Result<(), TrainError> {
        let n_convs = net.convs().len();
        for (loc, programmed) in &self.tiles {
            let mut tile = programmed.clone();
            tile.drift_to(t_inference)?;
            let tile: Box<dyn Tile> = Box::new(tile);
            if loc.layer < n_convs {
                net.convs_mut()[loc.layer].replace_tile(loc.tile, tile)?;
            } else {
                net.fc_mut().replace_tile(tile)?;
            }
        }
        Ok(())
    }
}

/// Replaces every tile of `net` by a [`FloatTile`] holding its effective weights
/// ([`Tile::weights`]): the exact digital network that a chip approximates, whatever tiles the
/// network was trained on (float, analog or inference tiles).
pub fn make_digital(net: &mut Network) -> Result<(), TrainError> {
    for conv in net.convs_mut() {
        for k in 0..conv.tiles().len() {
            let w = conv.tiles()[k].weights().to_owned();
            conv.replace_tile(k, Box::new(FloatTile::from_weights(w)))?;
        }
    }
    let w = net.fc().tile().weights().to_owned();
    net.fc_mut().replace_tile(Box::new(FloatTile::from_weights(w)))?;
    Ok(())
}

/// One evaluation of a programmed network.
#[derive(Debug, Clone, PartialEq)]
pub struct InferencePoint {
    /// Seconds since programming.
    pub t_inference: f64,
    /// The chip (programming) index.
    pub repeat: usize,
    /// Test error of one pass (fraction).
    pub error: f64,
}

/// What [`pcm_curve`] evaluates.
#[derive(Debug, Clone, PartialEq)]
pub struct PcmEval {
    /// The inference tiles' configuration.
    pub cfg: InferenceConfig,
    /// Read times, seconds since programming (each in [0, 10¹²]).
    pub times: Vec<f64>,
    /// Chips (independent programmings), ≥ 1.
    pub repeats: usize,
    /// Seed of the chips: chip r is programmed with `derive_seed(seed, r)`.
    pub seed: u64,
    /// Evaluation batch size.
    pub batch: usize,
    /// The layers put on PCM (see [`PcmChip::program_layers`]; empty: all).
    pub layers: Vec<usize>,
}

/// Test error of the network `state` (built with `net_seed`) on `ds`, programmed on
/// `eval.repeats` chips, each read at every time of `eval.times`. The network's patch
/// assignments and pooling draws restart from `state` for every evaluation, so chips and times
/// are compared on the same assignments.
pub fn pcm_curve(
    state: &NetState,
    net_seed: u64,
    ds: &Dataset,
    norm: &Normalizer,
    eval: &PcmEval,
) -> Result<Vec<InferencePoint>, TrainError> {
    let PcmEval { cfg, times, repeats, seed, batch, layers } = eval;
    let (repeats, seed, batch) = (*repeats, *seed, *batch);
    if repeats == 0 {
        return Err(TrainError::Config { field: "repeats".into(), reason: "must be >= 1".into() });
    }
    let max = crossbar_sim::pcm::MAX_T_INFERENCE;
    if let Some(t) = times.iter().find(|t| !(0.0..=max).contains(*t)) {
        return Err(TrainError::Config {
            field: "t_inference".into(),
            reason: format!("times must be in [0, {max:e}] seconds, got {t}"),
        });
    }
    let mut points = Vec::with_capacity(times.len() * repeats);
    let base = Network::from_state(state.clone(), net_seed)?;
    for repeat in 0..repeats {
        let chip = PcmChip::program_layers(&base, cfg, derive_seed(seed, repeat as u64), layers)?;
        for &t_inference in times {
            let mut net = Network::from_state(state.clone(), net_seed)?;
            // Layers left off the chip are exact (a model trained on analog or inference tiles
            // would otherwise keep its noisy tiles there).
            make_digital(&mut net)?;
            chip.read_into(&mut net, t_inference)?;
            let r = evaluate(&mut net, ds, norm, batch, 1)?;
            points.push(InferencePoint { t_inference, repeat, error: r.error });
        }
    }
    Ok(points)
}
