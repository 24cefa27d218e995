//! A fully connected layer on one tile, with the bias as an extra input column.

use crossbar_sim::rng::stream;
use crossbar_sim::{AnalogTile, FloatTile, InferenceTile, Tile, TileSnapshot};
use ndarray::{Array2, ArrayView2, s};
use rand_distr::{Distribution, Normal};

use crate::conv::TileKind;
use crate::error::{LayerError, check_shape};

/// y = W·x + b on one tile holding `[W | b]` (`out × (in + 1)`).
#[derive(Debug)]
pub struct TiledLinear {
    tile: Box<dyn Tile>,
    in_size: usize,
    cache: Option<(Array2<f32>, Option<Array2<f32>>)>,
}

impl TiledLinear {
    /// A layer with Gaussian(0, `init_std`) weights and zero bias; `seed` seeds the tile.
    pub fn new(in_size: usize, out_size: usize, tile: &TileKind, init_std: f32, seed: u64) -> Result<Self, LayerError> {
        if in_size == 0 || out_size == 0 {
            return Err(LayerError::Invalid {
                field: "linear size",
                value: format!("{out_size}×{in_size}"),
                reason: "must be non-empty".into(),
            });
        }
        // rand_distr accepts a negative or infinite std (mirrored or infinite draws): refuse
        // them as `RapaConv2d::new` does.
        if !(init_std.is_finite() && init_std >= 0.0) {
            return Err(LayerError::Invalid {
                field: "init_std",
                value: init_std.to_string(),
                reason: "must be finite and >= 0".into(),
            });
        }
        let normal = Normal::new(0.0f32, init_std).map_err(|e| LayerError::Invalid {
            field: "init_std",
            value: init_std.to_string(),
            reason: e.to_string(),
        })?;
        let mut rng = stream(seed, 2);
        let mut w = Array2::from_shape_simple_fn((out_size, in_size + 1), || normal.sample(&mut rng));
        w.column_mut(in_size).fill(0.0);
        let mut tile: Box<dyn Tile> = match tile {
            TileKind::Float => Box::new(FloatTile::new(out_size, in_size + 1)),
            TileKind::Analog(cfg) => Box::new(AnalogTile::new(out_size, in_size + 1, cfg, seed)?),
            TileKind::Inference(cfg) => Box::new(InferenceTile::new(out_size, in_size + 1, cfg, seed)?),
        };
        tile.set_weights(w.view())?;
        Ok(Self { tile, in_size, cache: None })
    }

    /// Training or evaluation mode of the tile ([`Tile::set_training`]).
    pub fn set_training(&mut self, training: bool) {
        self.tile.set_training(training);
    }

    /// Replaces the tile by `tile`, which must have the same shape (`out × (in + 1)`), and
    /// returns the old one (see [`RapaConv2d::replace_tile`](crate::RapaConv2d::replace_tile)).
    pub fn replace_tile(&mut self, tile: Box<dyn Tile>) -> Result<Box<dyn Tile>, LayerError> {
        let (old, new) = ([self.tile.out_size(), self.tile.in_size()], [tile.out_size(), tile.in_size()]);
        check_shape("TiledLinear::replace_tile", "tile", &new, &old)?;
        self.cache = None;
        Ok(std::mem::replace(&mut self.tile, tile))
    }

    /// The tile's state (for checkpoints).
    pub fn state(&self) -> TileSnapshot {
        self.tile.snapshot()
    }

    /// Rebuilds the layer from a tile state (`in_size` = the tile's inputs − 1).
    pub fn from_state(state: TileSnapshot) -> Result<Self, LayerError> {
        let tile = state.restore()?;
        let in_size = tile.in_size().saturating_sub(1);
        if in_size == 0 {
            return Err(LayerError::Invalid {
                field: "linear tile",
                value: "1 input".into(),
                reason: "needs ≥ 2 inputs".into(),
            });
        }
        Ok(Self { tile, in_size, cache: None })
    }

    /// The tile.
    pub fn tile(&self) -> &dyn Tile {
        self.tile.as_ref()
    }

    /// Mutable access to the tile.
    pub fn tile_mut(&mut self) -> &mut dyn Tile {
        self.tile.as_mut()
    }

    /// Weights including the bias column.
    pub fn n_weights(&self) -> usize {
        self.tile.out_size() * self.tile.in_size()
    }

    /// Forward of a batch `[N, in]` → `[N, out]`.
    pub fn forward(&mut self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, LayerError> {
        check_shape("TiledLinear::forward", "x", x.shape(), &[x.nrows(), self.in_size])?;
        let mut xb = Array2::<f32>::ones((x.nrows(), self.in_size + 1));
        xb.slice_mut(s![.., ..self.in_size]).assign(&x);
        let y = self.tile.forward_new(xb.view())?;
        self.cache = Some((xb, None));
        Ok(y)
    }

    /// Backward of the output gradient `[N, out]` → `[N, in]`.
    pub fn backward(&mut self, dy: ArrayView2<'_, f32>) -> Result<Array2<f32>, LayerError> {
        let (xb, d) = self.cache.as_mut().ok_or(LayerError::Order { op: "TiledLinear::backward", needs: "forward" })?;
        check_shape("TiledLinear::backward", "dy", dy.shape(), &[xb.nrows(), self.tile.out_size()])?;
        let z = self.tile.backward_new(dy)?;
        *d = Some(dy.to_owned());
        Ok(z.slice(s![.., ..self.in_size]).to_owned())
    }

    /// W ← W − lr·dᵀ·x with the cached batch.
    pub fn update(&mut self, lr: f32) -> Result<(), LayerError> {
        match &self.cache {
            Some((xb, Some(d))) => Ok(self.tile.update(xb.view(), d.view(), lr)?),
            _ => Err(LayerError::Order { op: "TiledLinear::update", needs: "backward" }),
        }
    }
}
