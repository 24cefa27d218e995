//! The RAPA convolution: one conv layer over n replicated tiles with permuted patch assignment.

use crossbar_sim::rng::{derive_seed, stream};
use crossbar_sim::{AnalogTile, FloatTile, InferenceConfig, InferenceTile, Tile, TileConfig, TileSnapshot, all_finite};
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
    /// Inference tiles (noisy analog forward pass with an optional weight modifier, exact
    /// backward pass and SGD: hardware-aware training) with this configuration.
    Inference(Box<InferenceConfig>),
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

impl Default for ConvConfig {
    /// conv1 of the paper's network as RAPA tiles it: [`ConvGeometry::default`], 32 output
    /// channels, n = 16 float tiles with the random scheme, initial weight std 1e-4 (Caffe's).
    fn default() -> Self {
        Self {
            geometry: ConvGeometry::default(),
            out_channels: 32,
            n_tiles: 16,
            scheme: Scheme::Random,
            tile: TileKind::Float,
            init_std: 1e-4,
        }
    }
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
    /// Batch size of the last forward pass (None before the first).
    batch: Option<usize>,
    /// Whether `backward` ran after the last forward.
    has_grads: bool,
    /// Whether every value of the last forward pass's input was finite: then so is every patch
    /// gathered from it (its values, padding zeros and the bias input 1), and `update` checks
    /// only the gradients before it lets the tiles skip their pass over the patches.
    input_finite: bool,
    /// Tile of every (image, patch) of the last batch.
    tile_of: Vec<u32>,
    /// Tile and row of every (image, patch); `u32::MAX` for dropped patches.
    loc: Vec<(u32, u32)>,
    /// Per-tile buffers, reused across calls.
    bufs: Vec<TileBuf>,
    /// Zero-padded input images of the last forward pass (see `pad_inputs`), reused.
    padded: Vec<f32>,
}

/// The serializable state of a [`RapaConv2d`] (weights, tile states, assignment stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvState {
    /// The layer's configuration.
    pub config: ConvConfig,
    /// The patch assigner (scheme, seed, fixed partition).
    pub assigner: Assigner,
    /// Every tile's state.
    pub tiles: Vec<TileSnapshot>,
    /// Per-tile learning-rate multipliers.
    pub lr_scale: Vec<f32>,
    /// Forward calls so far (the assignment stream position).
    pub calls: u64,
    /// Training mode.
    pub training: bool,
}

/// Per-tile work buffers: kept between calls so that a steady batch size allocates nothing.
#[derive(Debug, Default)]
struct TileBuf {
    /// The (image, patch) of each row.
    rows: Vec<(u32, u32)>,
    /// Gathered patches with a bias column, `[M_t, K + 1]`.
    cols: Array2<f32>,
    /// Forward outputs, `[M_t, C_out]`. Row-major, not channel-major: the gemm crate (the SGEMM
    /// backend when this was measured, fourth round) packs a
    /// row-major patch matrix when it must write a column-major product, which made the forward
    /// products ~1.5× slower (`docs/performance.md`).
    y: Array2<f32>,
    /// Output gradients, channel-major `[C_out, M_t]` (unlike `y`).
    d: Array2<f32>,
    /// Patch gradients, `[M_t, K + 1]`.
    dcols: Array2<f32>,
}

/// Patches per parallel work item of the im2col gather.
const GATHER_CHUNK: usize = 64;

/// Rows of a tile's output per block of the scatter into NCHW.
const SCATTER_BLOCK: usize = 16;

/// Gives `a` the shape `shape` (contents unspecified), keeping it when the shape is already right.
fn ensure(a: &mut Array2<f32>, shape: (usize, usize)) {
    if a.dim() != shape {
        *a = Array2::zeros(shape);
    }
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
                TileKind::Inference(ic) => Box::new(InferenceTile::new(cfg.out_channels, k1, ic, tile_seed)?),
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
            batch: None,
            has_grads: false,
            input_finite: false,
            tile_of: Vec::new(),
            loc: Vec::new(),
            bufs: (0..n_kernels).map(|_| TileBuf::default()).collect(),
            padded: Vec::new(),
        })
    }

    /// A snapshot of the full state.
    pub fn state(&self) -> ConvState {
        ConvState {
            config: self.cfg.clone(),
            assigner: self.assigner.clone(),
            tiles: self.tiles.iter().map(|t| t.snapshot()).collect(),
            lr_scale: self.lr_scale.clone(),
            calls: self.calls,
            training: self.training,
        }
    }

    /// Rebuilds a layer from a snapshot; it continues exactly where the snapshot was taken,
    /// except that a held assignment ([`hold_assignment`](Self::hold_assignment)) is not
    /// part of the snapshot: the rebuilt layer is not held.
    pub fn from_state(state: ConvState) -> Result<Self, LayerError> {
        state.config.geometry.validate()?;
        let n_kernels = state.config.scheme.n_kernels(state.config.n_tiles);
        let k1 = state.config.geometry.patch_len() + 1;
        if state.tiles.len() != n_kernels || state.lr_scale.len() != n_kernels {
            return Err(LayerError::Invalid {
                field: "tiles",
                value: state.tiles.len().to_string(),
                reason: format!("the configuration needs {n_kernels} tiles and multipliers"),
            });
        }
        // The assignment must be the one the configuration and the assigner's seed define
        // (a mismatched one would index tiles or patches that do not exist).
        let expected =
            Assigner::new(state.config.scheme, state.config.n_tiles, &state.config.geometry, state.assigner.seed())?;
        if state.assigner != expected {
            return Err(LayerError::Invalid {
                field: "assigner",
                value: format!("{} over {} tiles", state.assigner.scheme().name(), state.assigner.n_tiles()),
                reason: format!(
                    "does not match the configuration ({} over {} tiles, {} patches)",
                    state.config.scheme.name(),
                    state.config.n_tiles,
                    state.config.geometry.n_patches()
                ),
            });
        }
        let tiles = state.tiles.into_iter().map(|t| t.restore()).collect::<Result<Vec<_>, _>>()?;
        for t in &tiles {
            check_shape(
                "RapaConv2d::from_state",
                "tile",
                &[t.out_size(), t.in_size()],
                &[state.config.out_channels, k1],
            )?;
        }
        Ok(Self {
            lr_scale: state.lr_scale,
            cfg: state.config,
            assigner: state.assigner,
            tiles,
            training: state.training,
            hold: false,
            calls: state.calls,
            batch: None,
            has_grads: false,
            input_finite: false,
            tile_of: Vec::new(),
            loc: Vec::new(),
            bufs: (0..n_kernels).map(|_| TileBuf::default()).collect(),
            padded: Vec::new(),
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

    /// Replaces tile `t` by `tile`, which must have the same shape (`C_out × (K + 1)`), and
    /// returns the old one: e.g. to read a trained layer through
    /// [`InferenceTile`](crossbar_sim::InferenceTile)s with that tile's
    /// [`weights`](Tile::weights).
    pub fn replace_tile(&mut self, t: usize, tile: Box<dyn Tile>) -> Result<Box<dyn Tile>, LayerError> {
        let (n, training) = (self.tiles.len(), self.training);
        let old = self.tiles.get_mut(t).ok_or_else(|| LayerError::Invalid {
            field: "tile index",
            value: t.to_string(),
            reason: format!("the layer has {n} tiles"),
        })?;
        check_shape(
            "RapaConv2d::replace_tile",
            "tile",
            &[tile.out_size(), tile.in_size()],
            &[old.out_size(), old.in_size()],
        )?;
        // The new tile follows the layer's mode.
        let mut tile = tile;
        tile.set_training(training);
        Ok(std::mem::replace(old, tile))
    }

    /// The patch assigner.
    pub fn assigner(&self) -> &Assigner {
        &self.assigner
    }

    /// Training (true) or evaluation mode: perforated computes all patches only in evaluation.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
        for t in &mut self.tiles {
            t.set_training(training);
        }
    }

    /// While held, every forward pass reuses the assignment of the next draw instead of drawing
    /// a new one (e.g. for finite-difference checks, or an attack taken through one assignment).
    /// Releasing a hold moves the stream past the held draw, so the next forward pass gets a
    /// fresh assignment.
    pub fn hold_assignment(&mut self, hold: bool) {
        if self.hold && !hold {
            self.calls += 1;
        }
        self.hold = hold;
    }

    /// Tile of every (image, patch) of the last forward batch (`[N·P]`, image-major;
    /// [`DROPPED`] for patches perforation skipped).
    pub fn last_assignment(&self) -> &[u32] {
        &self.tile_of
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Per-tile learning-rate multipliers, one per kernel matrix.
    pub fn lr_scale(&self) -> &[f32] {
        &self.lr_scale
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
        // The assignment and the tiles' buffers are about to change: until this pass succeeds
        // there is no batch for `backward` and `update` to work on (a pass that fails half-way
        // must not leave them pairing the old batch's size with the new assignment).
        self.batch = None;
        self.has_grads = false;
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        // (Recorded with the batch at the end: a pass that fails half-way leaves no claim.)
        let input_finite = all_finite(xs);
        self.input_finite = false;
        let (p_count, k, c_out) = (g.n_patches(), g.patch_len(), self.cfg.out_channels);
        let whole = self.uses_whole_images();
        if whole && g.pad > 0 {
            self.pad_inputs(xs, n);
        }
        // 1. Assignment of every patch of every image.
        let call = self.calls;
        if !self.hold {
            self.calls += 1;
        }
        self.tile_of.resize(n * p_count, 0);
        let assigner = &self.assigner;
        let training = self.training;
        self.tile_of.par_chunks_mut(p_count).enumerate().for_each(|(b, out)| {
            assigner.assign(call, b as u64, training, out);
        });
        for buf in &mut self.bufs {
            buf.rows.clear();
        }
        self.loc.clear();
        self.loc.resize(n * p_count, (u32::MAX, u32::MAX));
        for (idx, &t) in self.tile_of.iter().enumerate() {
            if t != DROPPED {
                let r = &mut self.bufs[t as usize].rows;
                self.loc[idx] = (t, r.len() as u32);
                r.push(((idx / p_count) as u32, (idx % p_count) as u32));
            }
        }

        // 2. Per tile: gather its patches (in parallel over tiles and over chunks of patches, so
        //    that a layer with fewer tiles than threads gathers on every thread too), then, in
        //    the same task while they are still in cache, one batched forward of the tile.
        //    Without input regions, the patches come from zero-padded copies of the images,
        //    where every window is a full k×k block.
        let source = match (whole, g.pad) {
            (false, _) => None,
            (true, 0) => Some(xs),
            (true, _) => Some(&self.padded[..]),
        };
        self.tiles
            .par_iter_mut()
            .zip(self.bufs.par_iter_mut())
            .enumerate()
            .map(|(t, (tile, buf))| {
                let keep = assigner.input_region(t as u32);
                let m = buf.rows.len();
                ensure(&mut buf.cols, (m, k + 1));
                ensure(&mut buf.y, (m, c_out));
                let cols = buf.cols.as_slice_mut().expect("standard layout");
                cols.par_chunks_mut(GATHER_CHUNK * (k + 1)).zip(buf.rows.par_chunks(GATHER_CHUNK)).for_each(
                    |(chunk, rows)| {
                        for (r, &(b, p)) in chunk.chunks_exact_mut(k + 1).zip(rows) {
                            let b = b as usize;
                            match source {
                                Some(pad) => g.gather_padded(&pad[b * g.padded_len()..], p as usize, &mut r[..k]),
                                None => g.gather_patch(&xs[b * g.image_len()..], p as usize, keep, &mut r[..k]),
                            }
                            r[k] = 1.0;
                        }
                    },
                );
                tile.forward(buf.cols.view(), buf.y.view_mut())
            })
            .collect::<Result<Vec<()>, _>>()?;

        // 3. Scatter into the output, in parallel over images.
        let mut out = Array4::<f32>::zeros((n, c_out, g.out_height(), g.out_width()));
        let out_len = c_out * p_count;
        // A tile's rows are sorted by image, so image b's patches are one range of its rows:
        // a sequential read of y, each row spread over the image's (cache-resident) planes.
        let bufs = &self.bufs;
        out.as_slice_mut().expect("standard layout").par_chunks_mut(out_len).enumerate().for_each(|(b, o)| {
            let b = b as u32;
            for buf in bufs {
                let rows = &buf.rows;
                let (lo, hi) = (rows.partition_point(|r| r.0 < b), rows.partition_point(|r| r.0 <= b));
                let y = buf.y.as_slice().expect("standard layout");
                // Blocks of SCATTER_BLOCK rows stay in L1 while they are written plane by plane
                // (row by row, the writes would be one plane apart: 4 KiB for conv1, so they
                // would all fall into the same cache set).
                let ys = y[lo * c_out..hi * c_out].chunks(SCATTER_BLOCK * c_out);
                for (yb, rb) in ys.zip(rows[lo..hi].chunks(SCATTER_BLOCK)) {
                    for (c, plane) in o.chunks_exact_mut(p_count).enumerate() {
                        for (i, &(_, p)) in rb.iter().enumerate() {
                            plane[p as usize] = yb[i * c_out + c];
                        }
                    }
                }
            }
        });
        self.batch = Some(n);
        self.has_grads = false;
        self.input_finite = input_finite;
        Ok(out)
    }

    /// Whether no tile reads a restricted input region (image-pad tiling), so that every patch
    /// can be gathered from, and scattered into, a zero-padded image.
    fn uses_whole_images(&self) -> bool {
        (0..self.tiles.len()).all(|t| self.assigner.input_region(t as u32).is_none())
    }

    /// Writes zero-padded copies of the `n` images in `xs` into `self.padded` (see
    /// [`ConvGeometry::pad_image`]), reusing its allocation.
    fn pad_inputs(&mut self, xs: &[f32], n: usize) {
        let g = self.cfg.geometry;
        self.padded.resize(n * g.padded_len(), 0.0);
        self.padded
            .par_chunks_mut(g.padded_len())
            .zip(xs.par_chunks(g.image_len()))
            .for_each(|(o, img)| g.pad_image(img, o));
    }

    /// Backward pass without the input gradient (e.g. the first layer of a network): only
    /// keeps `dy` per tile for [`update`](Self::update), so the tiles run no backward MVMs.
    pub fn backward_weights_only(&mut self, dy: ArrayView4<'_, f32>) -> Result<(), LayerError> {
        self.stash_dy("RapaConv2d::backward_weights_only", dy, false)?;
        self.has_grads = true;
        Ok(())
    }

    /// Checks `dy`, copies it per tile into the tiles' `d` buffers and, if `through`, runs the
    /// tiles' backward MVMs into their `dcols`. Returns the batch size.
    fn stash_dy(&mut self, op: &'static str, dy: ArrayView4<'_, f32>, through: bool) -> Result<usize, LayerError> {
        let g = self.cfg.geometry;
        let n = self.batch.ok_or(LayerError::Order { op, needs: "forward" })?;
        let (p_count, k, c_out) = (g.n_patches(), g.patch_len(), self.cfg.out_channels);
        check_shape(op, "dy", dy.shape(), &[n, c_out, g.out_height(), g.out_width()])?;
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice().expect("standard layout");

        // Each tile's `d` is `[C_out, rows]`. Filled channel by channel (in parallel over the
        // channels), reading dy's planes once in order: a patch's tile and row come from `loc`,
        // and a tile's rows of one image ascend with the patch, so each tile's row c is
        // written in order too. (Tile by tile, every tile swept all of dy for its share of
        // the values: 16 passes over conv1's gradient.)
        let mut per_channel: Vec<Vec<&mut [f32]>> = (0..c_out).map(|_| Vec::with_capacity(self.bufs.len())).collect();
        for buf in &mut self.bufs {
            let m = buf.rows.len();
            ensure(&mut buf.d, (c_out, m));
            let d = buf.d.as_slice_mut().expect("standard layout");
            if m == 0 {
                per_channel.iter_mut().for_each(|rows| rows.push(&mut []));
            } else {
                per_channel.iter_mut().zip(d.chunks_exact_mut(m)).for_each(|(rows, row)| rows.push(row));
            }
        }
        let loc = &self.loc;
        per_channel.into_par_iter().enumerate().for_each(|(c, mut rows)| {
            for b in 0..n {
                let plane = &dys[(b * c_out + c) * p_count..(b * c_out + c + 1) * p_count];
                for (&g, &(t, r)) in plane.iter().zip(&loc[b * p_count..(b + 1) * p_count]) {
                    if t != u32::MAX {
                        rows[t as usize][r as usize] = g;
                    }
                }
            }
        });
        if !through {
            return Ok(n);
        }
        self.tiles
            .par_iter_mut()
            .zip(self.bufs.par_iter_mut())
            .map(|(tile, buf)| {
                ensure(&mut buf.dcols, (buf.rows.len(), k + 1));
                tile.backward(buf.d.t(), buf.dcols.view_mut())
            })
            .collect::<Result<Vec<()>, _>>()?;
        Ok(n)
    }

    /// Backward pass: the input gradient for the output gradient `dy` of the last forward
    /// batch. Keeps `dy` per tile for [`update`](Self::update).
    pub fn backward(&mut self, dy: ArrayView4<'_, f32>) -> Result<Array4<f32>, LayerError> {
        let n = self.stash_dy("RapaConv2d::backward", dy, true)?;
        let g = self.cfg.geometry;
        let (p_count, k) = (g.n_patches(), g.patch_len());
        let whole = self.uses_whole_images();
        let (assigner, loc, bufs) = (&self.assigner, &self.loc, &self.bufs);
        let mut dx = Array4::<f32>::zeros((n, g.in_channels, g.height, g.width));
        dx.as_slice_mut().expect("standard layout").par_chunks_mut(g.image_len()).enumerate().for_each(|(b, o)| {
            // Without input regions, the patch gradients go into a zero-padded image gradient
            // (full k×k blocks, no clipping), whose interior is then added into dx.
            let mut padded = if whole && g.pad > 0 { vec![0.0f32; g.padded_len()] } else { Vec::new() };
            for p in 0..p_count {
                let (t, r) = loc[b * p_count + p];
                if t != u32::MAX {
                    let grow = bufs[t as usize].dcols.row(r as usize);
                    let gs = &grow.as_slice().expect("standard layout")[..k];
                    match (whole, g.pad > 0) {
                        (true, true) => g.scatter_padded_add(gs, p, &mut padded),
                        (true, false) => g.scatter_padded_add(gs, p, o),
                        (false, _) => g.scatter_patch_add(gs, p, assigner.input_region(t), o),
                    }
                }
            }
            if !padded.is_empty() {
                g.unpad_add(&padded, o);
            }
        });
        self.has_grads = true;
        Ok(dx)
    }

    /// Updates every tile with its own patches: W_t ← W_t − lr·s_t·D_tᵀ·X_t.
    pub fn update(&mut self, lr: f32) -> Result<(), LayerError> {
        if self.batch.is_none() {
            return Err(LayerError::Order { op: "RapaConv2d::update", needs: "forward" });
        }
        if !self.has_grads {
            return Err(LayerError::Order { op: "RapaConv2d::update", needs: "backward" });
        }
        // With a finite input (checked in `forward`) and finite gradients the patch matrix is
        // finite too, and the tiles need not scan it (tens of times larger than the input):
        // `update_finite_inputs`. Otherwise `update` finds the non-finite value and names it.
        let input_finite = self.input_finite;
        self.tiles
            .par_iter_mut()
            .zip(self.bufs.par_iter())
            .zip(&self.lr_scale)
            .map(|((tile, buf), s)| {
                if input_finite && buf.d.as_slice_memory_order().is_some_and(all_finite) {
                    tile.update_finite_inputs(buf.cols.view(), buf.d.t(), lr * s)
                } else {
                    tile.update(buf.cols.view(), buf.d.t(), lr * s)
                }
            })
            .collect::<Result<Vec<()>, _>>()?;
        Ok(())
    }

    /// The kernel matrix of tile `t` without its bias: `[C_out, K]`.
    pub fn kernel(&self, t: usize) -> ArrayView2<'_, f32> {
        let k = self.cfg.geometry.patch_len();
        self.tiles[t].weights().slice_move(ndarray::s![.., ..k])
    }
}
