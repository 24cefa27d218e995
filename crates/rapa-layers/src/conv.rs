//! The RAPA convolution: one conv layer over n replicated tiles with permuted patch assignment.

use crossbar_sim::rng::{derive_seed, stream};
use crossbar_sim::{AnalogTile, FloatTile, Tile, TileConfig};
use ndarray::{Array2, Array4, ArrayView2, ArrayView4};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::assign::{Assigner, DROPPED, Scheme};
use crate::error::{LayerError, check_shape};
use crate::geometry::ConvGeometry;

/// Which tile implementation holds the kernel matrices.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TileKind {
    /// Exact float tiles. The default.
    #[default]
    Float,
    /// Analog tiles with this configuration.
    Analog(Box<TileConfig>),
}

/// Configuration of a RAPA conv layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvConfig {
    /// Input geometry, kernel, stride and padding.
    pub geometry: ConvGeometry,
    /// Output channels.
    pub out_channels: usize,
    /// Requested tiles n (the kernel count is 1 for `none` and `perforated`).
    pub n_tiles: usize,
    /// Patch assignment.
    pub scheme: Scheme,
    /// Tile implementation.
    pub tile: TileKind,
    /// Std of the Gaussian initial weights (biases start at 0). Default in the paper's net:
    /// 1e-4 (conv1), 0.01 (conv2, conv3).
    pub init_std: f32,
}

/// A convolution whose kernel matrix (`K + 1` inputs with the bias, `C_out` outputs) is
/// replicated on n tiles; every patch of every image is computed by exactly one tile.
///
/// # Shapes
/// forward: `[N, C, H, W]` → `[N, C_out, H_out, W_out]`; backward: the reverse.
#[derive(Debug)]
pub struct RapaConv2d {
    cfg: ConvConfig,
    assigner: Assigner,
    tiles: Vec<Box<dyn Tile>>,
    lr_scale: Vec<f32>,
    training: bool,
    hold: bool,
    calls: u64,
    cache: Option<Cache>,
}

/// Two matrices produced per tile (gathered inputs and outputs, or gradients).
type MatrixPair = (Array2<f32>, Array2<f32>);

/// What forward leaves for backward and update.
#[derive(Debug)]
struct Cache {
    batch: usize,
    /// Tile and row of every (image, patch); row `u32::MAX` for dropped patches.
    loc: Vec<(u32, u32)>,
    /// Per tile: the (image, patch) of each of its rows.
    rows: Vec<Vec<(u32, u32)>>,
    /// Per tile: gathered patches with a bias column, `[M_t, K + 1]`.
    cols: Vec<Array2<f32>>,
    /// Per tile: output gradients from backward, `[M_t, C_out]`.
    grads: Vec<Array2<f32>>,
}

impl RapaConv2d {
    /// Builds the layer; tile `t` is seeded with `derive_seed(seed, t)` and initialized with its
    /// own Gaussian draw.
    pub fn new(cfg: ConvConfig, seed: u64) -> Result<Self, LayerError> {
        cfg.geometry.validate()?;
        if cfg.out_channels == 0 {
            return Err(LayerError::Invalid { field: "out_channels", value: "0".into(), reason: "must be > 0".into() });
        }
        if !(cfg.init_std.is_finite() && cfg.init_std >= 0.0) {
            return Err(LayerError::Invalid {
                field: "init_std",
                value: cfg.init_std.to_string(),
                reason: "must be finite and >= 0".into(),
            });
        }
        let assigner = Assigner::new(cfg.scheme, cfg.n_tiles, &cfg.geometry, derive_seed(seed, u64::MAX))?;
        let k1 = cfg.geometry.patch_len() + 1;
        let n_kernels = cfg.scheme.n_kernels(cfg.n_tiles);
        let normal = Normal::new(0.0f32, cfg.init_std).map_err(|e| LayerError::Invalid {
            field: "init_std",
            value: cfg.init_std.to_string(),
            reason: e.to_string(),
        })?;
        let mut tiles: Vec<Box<dyn Tile>> = Vec::with_capacity(n_kernels);
        for t in 0..n_kernels {
            let tile_seed = derive_seed(seed, t as u64);
            let mut rng = stream(tile_seed, 2);
            let mut w = Array2::from_shape_simple_fn((cfg.out_channels, k1), || normal.sample(&mut rng));
            w.column_mut(k1 - 1).fill(0.0);
            let mut tile: Box<dyn Tile> = match &cfg.tile {
                TileKind::Float => Box::new(FloatTile::new(cfg.out_channels, k1)),
                TileKind::Analog(tc) => Box::new(AnalogTile::new(cfg.out_channels, k1, tc, tile_seed)?),
            };
            tile.set_weights(w.view())?;
            tiles.push(tile);
        }
        Ok(Self {
            lr_scale: vec![1.0; n_kernels],
            cfg,
            assigner,
            tiles,
            training: true,
            hold: false,
            calls: 0,
            cache: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConvConfig {
        &self.cfg
    }

    /// The tiles (one per kernel matrix).
    pub fn tiles(&self) -> &[Box<dyn Tile>] {
        &self.tiles
    }

    /// Mutable access to the tiles (e.g. to program weights).
    pub fn tiles_mut(&mut self) -> &mut [Box<dyn Tile>] {
        &mut self.tiles
    }

    /// The patch assigner.
    pub fn assigner(&self) -> &Assigner {
        &self.assigner
    }

    /// Training (true) or evaluation mode: perforated computes all patches only in evaluation.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// While held, every forward pass reuses the assignment of the next draw instead of drawing
    /// a new one (e.g. for finite-difference checks, or an attack taken through one assignment).
    pub fn hold_assignment(&mut self, hold: bool) {
        self.hold = hold;
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Per-tile learning-rate multipliers (default 1).
    pub fn set_lr_scale(&mut self, scale: Vec<f32>) -> Result<(), LayerError> {
        if scale.len() != self.tiles.len() || scale.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(LayerError::Invalid {
                field: "lr_scale",
                value: format!("{scale:?}"),
                reason: format!("needs {} finite values >= 0", self.tiles.len()),
            });
        }
        self.lr_scale = scale;
        Ok(())
    }

    /// Output shape for a batch of `n` images.
    pub fn out_shape(&self, n: usize) -> [usize; 4] {
        let g = &self.cfg.geometry;
        [n, self.cfg.out_channels, g.out_height(), g.out_width()]
    }

    /// Weight count: kernel matrices × (K + 1) × C_out (each tile has its own bias).
    pub fn n_weights(&self) -> usize {
        self.tiles.len() * (self.cfg.geometry.patch_len() + 1) * self.cfg.out_channels
    }

    /// Forward pass of a batch.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Result<Array4<f32>, LayerError> {
        let g = self.cfg.geometry;
        let n = x.shape()[0];
        check_shape("RapaConv2d::forward", "x", x.shape(), &[n, g.in_channels, g.height, g.width])?;
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let (p_count, k, c_out) = (g.n_patches(), g.patch_len(), self.cfg.out_channels);
        let n_kernels = self.tiles.len();

        // 1. Assignment of every patch of every image.
        let call = self.calls;
        if !self.hold {
            self.calls += 1;
        }
        let mut tile_of = vec![0u32; n * p_count];
        tile_of.par_chunks_mut(p_count).enumerate().for_each(|(b, out)| {
            self.assigner.assign(call, b as u64, self.training, out);
        });
        let mut rows: Vec<Vec<(u32, u32)>> = vec![Vec::with_capacity(n * p_count / n_kernels + 1); n_kernels];
        let mut loc = vec![(u32::MAX, u32::MAX); n * p_count];
        for (idx, &t) in tile_of.iter().enumerate() {
            if t != DROPPED {
                let r = &mut rows[t as usize];
                loc[idx] = (t, r.len() as u32);
                r.push(((idx / p_count) as u32, (idx % p_count) as u32));
            }
        }

        // 2. Per tile: gather its patches, one batched forward.
        let assigner = &self.assigner;
        let results: Result<Vec<MatrixPair>, LayerError> = self
            .tiles
            .par_iter_mut()
            .zip(rows.par_iter())
            .enumerate()
            .map(|(t, (tile, rows))| {
                let keep = assigner.input_region(t as u32);
                let mut cols = Array2::<f32>::zeros((rows.len(), k + 1));
                for (mut row, &(b, p)) in cols.outer_iter_mut().zip(rows) {
                    let r = row.as_slice_mut().expect("standard layout");
                    let img = &xs[b as usize * g.image_len()..(b as usize + 1) * g.image_len()];
                    g.gather_patch(img, p as usize, keep, &mut r[..k]);
                    r[k] = 1.0;
                }
                let y = tile.forward_new(cols.view())?;
                Ok((cols, y))
            })
            .collect();
        let (cols, ys): (Vec<_>, Vec<_>) = results?.into_iter().unzip();

        // 3. Scatter into the output, in parallel over images.
        let mut out = Array4::<f32>::zeros((n, c_out, g.out_height(), g.out_width()));
        let out_len = c_out * p_count;
        out.as_slice_mut().expect("standard layout").par_chunks_mut(out_len).enumerate().for_each(|(b, o)| {
            for p in 0..p_count {
                let (t, r) = loc[b * p_count + p];
                if t != u32::MAX {
                    let yrow = ys[t as usize].row(r as usize);
                    for (c, v) in yrow.iter().enumerate() {
                        o[c * p_count + p] = *v;
                    }
                }
            }
        });
        self.cache = Some(Cache { batch: n, loc, rows, cols, grads: Vec::new() });
        Ok(out)
    }

    /// Backward pass: the input gradient for the output gradient `dy` of the last forward
    /// batch. Keeps `dy` per tile for [`update`](Self::update).
    pub fn backward(&mut self, dy: ArrayView4<'_, f32>) -> Result<Array4<f32>, LayerError> {
        let g = self.cfg.geometry;
        let cache = self.cache.as_mut().ok_or(LayerError::Order { op: "RapaConv2d::backward", needs: "forward" })?;
        let n = cache.batch;
        let (p_count, k, c_out) = (g.n_patches(), g.patch_len(), self.cfg.out_channels);
        check_shape("RapaConv2d::backward", "dy", dy.shape(), &[n, c_out, g.out_height(), g.out_width()])?;
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice().expect("standard layout");

        let results: Result<Vec<MatrixPair>, LayerError> = self
            .tiles
            .par_iter_mut()
            .zip(cache.rows.par_iter())
            .map(|(tile, rows)| {
                let mut d = Array2::<f32>::zeros((rows.len(), c_out));
                for (mut row, &(b, p)) in d.outer_iter_mut().zip(rows) {
                    let base = b as usize * c_out * p_count + p as usize;
                    for (c, v) in row.iter_mut().enumerate() {
                        *v = dys[base + c * p_count];
                    }
                }
                let dcols = tile.backward_new(d.view())?;
                Ok((d, dcols))
            })
            .collect();
        let (grads, dcols): (Vec<_>, Vec<_>) = results?.into_iter().unzip();

        let assigner = &self.assigner;
        let loc = &cache.loc;
        let mut dx = Array4::<f32>::zeros((n, g.in_channels, g.height, g.width));
        dx.as_slice_mut().expect("standard layout").par_chunks_mut(g.image_len()).enumerate().for_each(|(b, o)| {
            for p in 0..p_count {
                let (t, r) = loc[b * p_count + p];
                if t != u32::MAX {
                    let grow = dcols[t as usize].row(r as usize);
                    let gs = grow.as_slice().expect("standard layout");
                    g.scatter_patch_add(&gs[..k], p, assigner.input_region(t), o);
                }
            }
        });
        cache.grads = grads;
        Ok(dx)
    }

    /// Updates every tile with its own patches: W_t ← W_t − lr·s_t·D_tᵀ·X_t.
    pub fn update(&mut self, lr: f32) -> Result<(), LayerError> {
        let cache = self.cache.as_ref().ok_or(LayerError::Order { op: "RapaConv2d::update", needs: "forward" })?;
        if cache.grads.len() != self.tiles.len() {
            return Err(LayerError::Order { op: "RapaConv2d::update", needs: "backward" });
        }
        self.tiles
            .par_iter_mut()
            .zip(cache.cols.par_iter().zip(&cache.grads))
            .zip(&self.lr_scale)
            .map(|((tile, (x, d)), s)| tile.update(x.view(), d.view(), lr * s))
            .collect::<Result<Vec<()>, _>>()?;
        Ok(())
    }

    /// The kernel matrix of tile `t` without its bias: `[C_out, K]`.
    pub fn kernel(&self, t: usize) -> ArrayView2<'_, f32> {
        let k = self.cfg.geometry.patch_len();
        self.tiles[t].weights().slice_move(ndarray::s![.., ..k])
    }
}
