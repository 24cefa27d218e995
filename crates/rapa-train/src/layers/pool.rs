//! Pooling with Caffe's ceil-mode windows: max, average, stochastic and mixed.

use std::fmt;
use std::str::FromStr;

use super::pool_rows;
use crossbar_sim::rng::{derive_seed, stream};
use ndarray::{Array1, Array4, ArrayView4};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Output side of a Caffe pooling window without padding: ⌈(size − k)/stride⌉ + 1.
pub fn pool_out(size: usize, kernel: usize, stride: usize) -> usize {
    rapa_layers::paper::pool_out(size, kernel, stride)
}

/// The pooling variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolKind {
    /// Maximum of the window. The default.
    #[default]
    Max,
    /// Mean of the window (divided by the window's size clipped to the image, as Caffe).
    Avg,
    /// Training: one element sampled with probability ∝ its value; test: the
    /// probability-weighted average Σx²/Σx (Zeiler & Fergus). Inputs must be ≥ 0.
    Stochastic,
    /// α_c·max + (1 − α_c)·avg with a learnable α_c = sigmoid(a_c) per channel.
    Mixed,
}

impl PoolKind {
    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "max",
            PoolKind::Avg => "avg",
            PoolKind::Stochastic => "stochastic",
            PoolKind::Mixed => "mixed",
        }
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PoolKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [PoolKind::Max, PoolKind::Avg, PoolKind::Stochastic, PoolKind::Mixed]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown pooling `{s}`; known: max, avg, stochastic, mixed"))
    }
}

/// Initial mixing logit a_c of mixed pooling: α = sigmoid(1) ≈ 0.73, a bias toward max.
pub const MIXED_INIT: f32 = 1.0;

/// A pooling layer (square window `kernel`, `stride`, no padding).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pool {
    /// Variant.
    pub kind: PoolKind,
    /// Window side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Mixing logits a_c of mixed pooling (one per channel; empty otherwise).
    pub mix: Array1<f32>,
    seed: u64,
    calls: u64,
    training: bool,
    #[serde(skip)]
    cache: Option<PoolCache>,
}

/// What backward needs: the input, and per output the selected input index (max/stochastic).
#[derive(Debug, Clone)]
struct PoolCache {
    /// Input shape `[N, C, H, W]`.
    dim: (usize, usize, usize, usize),
    /// The mode of the forward pass (stochastic pooling samples in training and averages in
    /// evaluation): the backward pass follows it, even if the mode was switched in between.
    training: bool,
    /// The input, kept only where the backward pass reads it (stochastic pooling in evaluation).
    x: Option<Array4<f32>>,
    pick: Vec<u32>,
    max: Array4<f32>,
    avg: Array4<f32>,
    mix_grad: Array1<f32>,
}

/// Marks an output whose window sum was 0 in stochastic pooling (no element picked).
const NONE: u32 = u32::MAX;

impl Pool {
    /// A pooling layer for `channels` channels; `seed` drives stochastic sampling.
    ///
    /// A plane smaller than the window is pooled over the window clipped to it (Caffe's ceil
    /// mode: one output for a 2×2 plane and a 3×3 window).
    ///
    /// # Panics
    /// In `forward`, if `kernel` or `stride` is 0, the input planes are empty, or (mixed
    /// pooling) the input has more channels than `channels`; the network builds its pools from
    /// a validated configuration for 32×32 images.
    pub fn new(kind: PoolKind, kernel: usize, stride: usize, channels: usize, seed: u64) -> Self {
        let mix = if kind == PoolKind::Mixed { Array1::from_elem(channels, MIXED_INIT) } else { Array1::zeros(0) };
        Self { kind, kernel, stride, mix, seed, calls: 0, training: true, cache: None }
    }

    /// Training (sampling) or evaluation mode.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Number of forward calls so far (drives the sampling streams; saved in checkpoints).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Sets the forward-call counter (restoring a checkpoint).
    pub fn set_calls(&mut self, calls: u64) {
        self.calls = calls;
    }

    /// The mixing weights α_c = sigmoid(a_c).
    pub fn alphas(&self) -> Array1<f32> {
        self.mix.mapv(sigmoid)
    }

    /// Window rows/cols `[start, end)` of output index `o` along a side of length `len`.
    fn window(&self, o: usize, len: usize) -> (usize, usize) {
        window(self.kernel, self.stride, o, len)
    }

    /// Forward pass.
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Array4<f32> {
        let (n, c, h, w) = x.dim();
        assert!(self.kernel > 0 && self.stride > 0, "pooling needs kernel and stride > 0");
        assert!(h > 0 && w > 0, "pooling needs non-empty planes, got {h}×{w}");
        let (oh, ow) = (pool_out(h, self.kernel, self.stride), pool_out(w, self.kernel, self.stride));
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let call = self.calls;
        self.calls += 1;
        let call_seed = derive_seed(self.seed, call);
        let plane_out = oh * ow;
        let mut pick = vec![NONE; n * c * plane_out];
        // The max and the mean of every window are kept for mixed pooling's mixing gradient only.
        let mixed_shape = if self.kind == PoolKind::Mixed { (n, c, oh, ow) } else { (n, 1, 1, 1) };
        let mut maxv = Array4::<f32>::zeros(mixed_shape);
        let mut avgv = Array4::<f32>::zeros(mixed_shape);
        let (kind, training) = (self.kind, self.training);
        let mut y = Array4::<f32>::zeros((n, c, oh, ow));
        let ys = y.as_slice_mut().expect("standard layout");
        let ms = maxv.as_slice_mut().expect("standard layout");
        let avs = avgv.as_slice_mut().expect("standard layout");
        // Per-image chunks of the mixed-only arrays (one unused value per image for other kinds).
        let mixed_chunk = if self.kind == PoolKind::Mixed { c * plane_out } else { 1 };
        let alphas = self.alphas();
        ys.par_chunks_mut(c * plane_out)
            .zip(pick.par_chunks_mut(c * plane_out))
            .zip(ms.par_chunks_mut(mixed_chunk).zip(avs.par_chunks_mut(mixed_chunk)))
            .enumerate()
            .for_each(|(b, ((yb, pb), (mb, ab)))| {
                let mut rng = stream(call_seed, b as u64);
                for ch in 0..c {
                    let plane = &xs[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
                    if kind == PoolKind::Max {
                        // Max alone: no sums, one compare per element.
                        let k = self.kernel;
                        // Outputs whose window lies wholly inside the row.
                        let full = if w >= k { (w - k) / self.stride + 1 } else { 0 }.min(ow);
                        for oy in 0..oh {
                            let (y0, y1) = self.window(oy, h);
                            let o = ch * plane_out + oy * ow;
                            if self.stride == 2
                                && pool_rows::max_row_stride2(
                                    plane,
                                    w,
                                    y0..y1,
                                    k,
                                    &mut yb[o..o + ow],
                                    &mut pb[o..o + ow],
                                )
                            {
                                continue;
                            }
                            // MAX_LANES full windows at a time: independent compare chains
                            // that overlap, where one window's chain is latency-bound. Each
                            // window is still scanned in row-major order (same results).
                            let mut ox = 0;
                            while ox + MAX_LANES <= full {
                                let x0: [usize; MAX_LANES] = std::array::from_fn(|l| (ox + l) * self.stride);
                                let mut best = [f32::NEG_INFINITY; MAX_LANES];
                                let mut best_i: [usize; MAX_LANES] = std::array::from_fn(|l| y0 * w + x0[l]);
                                for yy in y0..y1 {
                                    for dx in 0..k {
                                        for l in 0..MAX_LANES {
                                            let i = yy * w + x0[l] + dx;
                                            let v = plane[i];
                                            let gt = v > best[l];
                                            best[l] = if gt { v } else { best[l] };
                                            best_i[l] = if gt { i } else { best_i[l] };
                                        }
                                    }
                                }
                                let o = ch * plane_out + oy * ow + ox;
                                yb[o..o + MAX_LANES].copy_from_slice(&best);
                                for (p, &i) in pb[o..o + MAX_LANES].iter_mut().zip(&best_i) {
                                    *p = i as u32;
                                }
                                ox += MAX_LANES;
                            }
                            for ox in ox..ow {
                                let (x0, x1) = self.window(ox, w);
                                // Selects, not branches: which element wins is data-dependent
                                // and would mispredict constantly.
                                // A window of NaNs or −∞ keeps its first pixel as the argmax.
                                let (mut best, mut best_i) = (f32::NEG_INFINITY, y0 * w + x0);
                                for yy in y0..y1 {
                                    for (xx, &v) in plane[yy * w + x0..yy * w + x1].iter().enumerate() {
                                        let gt = v > best;
                                        best = if gt { v } else { best };
                                        best_i = if gt { yy * w + x0 + xx } else { best_i };
                                    }
                                }
                                let o = ch * plane_out + oy * ow + ox;
                                yb[o] = best;
                                pb[o] = best_i as u32;
                            }
                        }
                        continue;
                    }
                    if kind == PoolKind::Avg {
                        // Average alone: the sum of the window in the same order as below,
                        // without the maximum and the sum of squares.
                        for oy in 0..oh {
                            let (y0, y1) = self.window(oy, h);
                            let o = ch * plane_out + oy * ow;
                            if self.stride == 2
                                && pool_rows::avg_row_stride2(plane, w, y0..y1, self.kernel, &mut yb[o..o + ow])
                            {
                                continue;
                            }
                            for ox in 0..ow {
                                let (x0, x1) = self.window(ox, w);
                                let mut sum = 0.0f32;
                                for yy in y0..y1 {
                                    sum = plane[yy * w + x0..yy * w + x1].iter().fold(sum, |s, &v| s + v);
                                }
                                yb[ch * plane_out + oy * ow + ox] = sum / ((y1 - y0) * (x1 - x0)) as f32;
                            }
                        }
                        continue;
                    }
                    for oy in 0..oh {
                        let (y0, y1) = self.window(oy, h);
                        let o = ch * plane_out + oy * ow;
                        if kind == PoolKind::Mixed
                            && self.stride == 2
                            && pool_rows::max_row_stride2(
                                plane,
                                w,
                                y0..y1,
                                self.kernel,
                                &mut mb[o..o + ow],
                                &mut pb[o..o + ow],
                            )
                            && pool_rows::sum_row_stride2(plane, w, y0..y1, self.kernel, &mut ab[o..o + ow])
                        {
                            // The window's maximum, argmax and sum from the row loops, then the
                            // same arithmetic as below.
                            let a = alphas[ch];
                            for ox in 0..ow {
                                let (x0, x1) = self.window(ox, w);
                                let (best, sum, size) = (mb[o + ox], ab[o + ox], ((y1 - y0) * (x1 - x0)) as f32);
                                ab[o + ox] = sum / size;
                                yb[o + ox] = a * best + (1.0 - a) * sum / size;
                            }
                            continue;
                        }
                        for ox in 0..ow {
                            let (x0, x1) = self.window(ox, w);
                            let o = ch * plane_out + oy * ow + ox;
                            let (mut best, mut best_i, mut sum, mut sq) =
                                (f32::NEG_INFINITY, y0 * w + x0, 0.0f32, 0.0f32);
                            for yy in y0..y1 {
                                for xx in x0..x1 {
                                    let i = yy * w + xx;
                                    let v = plane[i];
                                    if v > best {
                                        best = v;
                                        best_i = i;
                                    }
                                    sum += v;
                                    sq += v * v;
                                }
                            }
                            let size = ((y1 - y0) * (x1 - x0)) as f32;
                            match kind {
                                // Max and average pooling have their own loops above.
                                PoolKind::Max | PoolKind::Avg => {}
                                PoolKind::Mixed => {
                                    let a = alphas[ch];
                                    mb[o] = best;
                                    ab[o] = sum / size;
                                    pb[o] = best_i as u32;
                                    yb[o] = a * best + (1.0 - a) * sum / size;
                                }
                                PoolKind::Stochastic if training => {
                                    if sum > 0.0 {
                                        // Sample an index with probability ∝ value.
                                        let u = rng.random::<f32>() * sum;
                                        let mut acc = 0.0;
                                        let mut chosen = best_i;
                                        'outer: for yy in y0..y1 {
                                            for xx in x0..x1 {
                                                let i = yy * w + xx;
                                                acc += plane[i];
                                                if acc > u {
                                                    chosen = i;
                                                    break 'outer;
                                                }
                                            }
                                        }
                                        yb[o] = plane[chosen];
                                        pb[o] = chosen as u32;
                                    }
                                }
                                PoolKind::Stochastic => {
                                    if sum > 0.0 {
                                        yb[o] = sq / sum;
                                    }
                                }
                            }
                        }
                    }
                }
            });
        let keep_x = kind == PoolKind::Stochastic && !training;
        self.cache = Some(PoolCache {
            dim: (n, c, h, w),
            training,
            x: keep_x.then(|| x.into_owned()),
            pick,
            max: maxv,
            avg: avgv,
            mix_grad: Array1::zeros(self.mix.len()),
        });
        y
    }

    /// Backward pass: the input gradient (and, for mixed pooling, the gradient of the mixing
    /// logits, applied by [`update`](Self::update)). `None` without a matching forward pass.
    /// It follows the mode of that forward pass ([`set_training`](Self::set_training) in
    /// between changes nothing).
    pub fn backward(&mut self, dy: ArrayView4<'_, f32>) -> Option<Array4<f32>> {
        let alphas = self.alphas();
        let cache = self.cache.as_mut()?;
        let (kind, training) = (self.kind, cache.training);
        let (n, c, h, w) = cache.dim;
        let (oh, ow) = (pool_out(h, self.kernel, self.stride), pool_out(w, self.kernel, self.stride));
        if dy.shape() != [n, c, oh, ow] {
            return None;
        }
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice()?;
        let xs = cache.x.as_ref().map_or(Some(&[][..]), |x| x.as_slice())?;
        let plane_out = oh * ow;
        let mut dx = Array4::<f32>::zeros((n, c, h, w));
        let (kernel, stride) = (self.kernel, self.stride);
        let window = |o: usize, len: usize| window(kernel, stride, o, len);
        let pick = &cache.pick;
        let (ms, avs) = (cache.max.as_slice()?, cache.avg.as_slice()?);
        // Average pooling at stride 2: whole rows of shares at a time on AVX-512.
        let spreader =
            if kind == PoolKind::Avg && stride == 2 { pool_rows::AvgSpread::new(w, ow, kernel) } else { None };
        // Per image: input gradient, and per channel the mixing-logit gradient.
        let mix_parts: Vec<Vec<f32>> = dx
            .as_slice_mut()?
            .par_chunks_mut(c * h * w)
            .enumerate()
            .map(|(b, db)| {
                let mut mix = vec![0.0f32; c];
                for ch in 0..c {
                    let plane = xs.get((b * c + ch) * h * w..(b * c + ch + 1) * h * w).unwrap_or(&[]);
                    let dplane = &mut db[ch * h * w..(ch + 1) * h * w];
                    if kind == PoolKind::Max {
                        // Each output's gradient goes to its window's maximum.
                        let outs = (b * c + ch) * plane_out..(b * c + ch + 1) * plane_out;
                        for (&g, &i) in dys[outs.clone()].iter().zip(&pick[outs]) {
                            dplane[i as usize] += g;
                        }
                        continue;
                    }
                    if let Some(spreader) = &spreader {
                        // Each output's share g/size, as below, then a row of them at once.
                        let mut shares = vec![0.0f32; ow];
                        for oy in 0..oh {
                            let (y0, y1) = window(oy, h);
                            for (ox, share) in shares.iter_mut().enumerate() {
                                let (x0, x1) = window(ox, w);
                                let size = ((y1 - y0) * (x1 - x0)) as f32;
                                *share = dys[(b * c + ch) * plane_out + oy * ow + ox] / size;
                            }
                            spreader.add_row(dplane, y0..y1, &shares);
                        }
                        continue;
                    }
                    for oy in 0..oh {
                        let (y0, y1) = window(oy, h);
                        for ox in 0..ow {
                            let (x0, x1) = window(ox, w);
                            let o = (b * c + ch) * plane_out + oy * ow + ox;
                            let g = dys[o];
                            let size = ((y1 - y0) * (x1 - x0)) as f32;
                            let spread = |dplane: &mut [f32], scale: f32| {
                                for yy in y0..y1 {
                                    for xx in x0..x1 {
                                        dplane[yy * w + xx] += scale;
                                    }
                                }
                            };
                            match kind {
                                // Max pooling has its own loop above.
                                PoolKind::Max => {}
                                PoolKind::Avg => spread(dplane, g / size),
                                PoolKind::Mixed => {
                                    let a = alphas[ch];
                                    dplane[pick[o] as usize] += a * g;
                                    spread(dplane, (1.0 - a) * g / size);
                                    mix[ch] += g * (ms[o] - avs[o]) * a * (1.0 - a);
                                }
                                PoolKind::Stochastic if training => {
                                    if pick[o] != NONE {
                                        dplane[pick[o] as usize] += g;
                                    }
                                }
                                PoolKind::Stochastic => {
                                    // y = Σx²/Σx: ∂y/∂x_j = (2x_j − y)/Σx.
                                    let (mut sum, mut sq) = (0.0f32, 0.0f32);
                                    for yy in y0..y1 {
                                        for xx in x0..x1 {
                                            let v = plane[yy * w + xx];
                                            sum += v;
                                            sq += v * v;
                                        }
                                    }
                                    if sum > 0.0 {
                                        let yv = sq / sum;
                                        for yy in y0..y1 {
                                            for xx in x0..x1 {
                                                let i = yy * w + xx;
                                                dplane[i] += g * (2.0 * plane[i] - yv) / sum;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                mix
            })
            .collect();
        let mut mix_grad = Array1::<f32>::zeros(self.mix.len());
        if kind == PoolKind::Mixed {
            for part in mix_parts {
                for (m, p) in mix_grad.iter_mut().zip(part) {
                    *m += p;
                }
            }
        }
        cache.mix_grad = mix_grad;
        Some(dx)
    }

    /// For max and mixed pooling: the input index (within its channel plane) of each output's
    /// maximum in the last forward pass, `[N·C·H_out·W_out]`.
    pub fn last_argmax(&self) -> Option<&[u32]> {
        match self.kind {
            PoolKind::Max | PoolKind::Mixed => self.cache.as_ref().map(|c| c.pick.as_slice()),
            _ => None,
        }
    }

    /// The gradient of the mixing logits from the last backward pass.
    pub fn mix_grad(&self) -> Option<&Array1<f32>> {
        self.cache.as_ref().map(|c| &c.mix_grad)
    }

    /// SGD step on the mixing logits (mixed pooling only).
    pub fn update(&mut self, lr: f32) {
        if let Some(c) = &self.cache
            && c.mix_grad.len() == self.mix.len()
        {
            self.mix.scaled_add(-lr, &c.mix_grad);
        }
    }
}

/// Outputs of max pooling computed side by side in its fast loop.
const MAX_LANES: usize = 4;

/// Window rows/cols `[start, end)` of output index `o` along a side of length `len`.
fn window(kernel: usize, stride: usize, o: usize, len: usize) -> (usize, usize) {
    let s = o * stride;
    (s, (s + kernel).min(len))
}

fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + (-a).exp())
}
