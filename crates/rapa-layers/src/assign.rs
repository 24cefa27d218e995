//! Patch-to-tile assignment: the tiling schemes of the RAPA paper.
//!
//! Patch p sits at output pixel (i, j) = (p / S_w, p % S_w). Every scheme but perforated
//! gives each tile ⌊P/n⌋ or ⌈P/n⌉ patches of every image (perforated: one tile, which computes
//! ⌈P/n⌉ of them in training and all P at test).

use std::fmt;
use std::str::FromStr;

use crossbar_sim::SimRng;
use crossbar_sim::rng::{derive_seed, stream};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::LayerError;
use crate::geometry::{ConvGeometry, Region};

/// Marks a patch that is not computed (perforated training).
pub const DROPPED: u32 = u32::MAX;

/// How patches are assigned to the n tiles of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// One tile (n = 1): the ordinary convolution.
    None,
    /// A fresh random balanced partition for every image, in training and at test. The default.
    #[default]
    Random,
    /// One random balanced partition drawn at construction, used for every image.
    RandomFixed,
    /// q×q square regions of the output map (q = √n); border patches still see neighbouring pixels.
    ImageOverlap,
    /// As image-overlap, but input pixels outside the patch's region are zero.
    ImagePad,
    /// tile = (i mod q)·q + (j mod q): neighbouring patches go to different tiles.
    Alternate,
    /// One kernel matrix; in training only a random 1/n of the patches of each image are
    /// computed (the other outputs are 0); at test all are.
    Perforated,
}

impl Scheme {
    /// All schemes, in the paper's table order.
    pub const ALL: [Scheme; 7] = [
        Scheme::None,
        Scheme::Perforated,
        Scheme::RandomFixed,
        Scheme::Random,
        Scheme::ImageOverlap,
        Scheme::ImagePad,
        Scheme::Alternate,
    ];

    /// The scheme's name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::None => "none",
            Scheme::Random => "random",
            Scheme::RandomFixed => "random-fixed",
            Scheme::ImageOverlap => "image-overlap",
            Scheme::ImagePad => "image-pad",
            Scheme::Alternate => "alternate",
            Scheme::Perforated => "perforated",
        }
    }

    /// Number of distinct kernel matrices (tiles holding weights) for `n` requested tiles.
    pub fn n_kernels(self, n: usize) -> usize {
        match self {
            Scheme::None | Scheme::Perforated => 1,
            _ => n,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = LayerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| LayerError::Invalid {
            field: "scheme",
            value: s.to_string(),
            reason: format!("known: {}", Scheme::ALL.map(Scheme::name).join(", ")),
        })
    }
}

/// Produces the tile index of every patch of every image for one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assigner {
    scheme: Scheme,
    n: usize,
    q: usize,
    out_h: usize,
    out_w: usize,
    in_h: usize,
    in_w: usize,
    seed: u64,
    fixed: Vec<u32>,
}

impl Assigner {
    /// An assigner for `n` tiles on the output map of `geom`; `seed` drives the random schemes.
    pub fn new(scheme: Scheme, n: usize, geom: &ConvGeometry, seed: u64) -> Result<Self, LayerError> {
        let (out_h, out_w) = (geom.out_height(), geom.out_width());
        let p = out_h * out_w;
        let err = |reason| Err(LayerError::Scheme { scheme: scheme.name(), n_tiles: n, out_h, out_w, reason });
        if n == 0 {
            return err("needs at least one tile");
        }
        if n > p {
            return err("has more tiles than patches");
        }
        let q = (n as f64).sqrt().round() as usize;
        match scheme {
            Scheme::None if n != 1 => return err("no tiling means n = 1"),
            Scheme::ImageOverlap | Scheme::ImagePad | Scheme::Alternate => {
                if q * q != n {
                    return err("needs a square number of tiles");
                }
                if out_h % q != 0 || out_w % q != 0 {
                    return err("needs output sides divisible by √n for a balanced split");
                }
            }
            _ => {}
        }
        let mut a = Self { scheme, n, q, out_h, out_w, in_h: geom.height, in_w: geom.width, seed, fixed: Vec::new() };
        if scheme == Scheme::RandomFixed {
            let mut rng = stream(seed, u64::MAX);
            a.fixed = vec![0; p];
            random_partition(n, &mut a.fixed, &mut rng);
        }
        Ok(a)
    }

    /// The seed of the random schemes' draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Number of tiles patches are spread over (1 for `None`; `n` for perforated, which
    /// selects 1/n of the patches).
    pub fn n_tiles(&self) -> usize {
        self.n
    }

    /// Patches per image.
    pub fn n_patches(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Writes the tile of every patch of image number `image` of forward call `call` into
    /// `out` (length P). Random draws come from a stream derived from (seed, call, image), so
    /// they do not depend on threads or on how the work of a call is split; they do depend on
    /// how images are grouped into calls (image 5 of one call of 10 is image 0 of the second
    /// call of 5). Perforated: in training the
    /// selected patches get tile 0 and the others [`DROPPED`]; at test all get tile 0.
    ///
    /// # Panics
    /// May panic if `out.len()` is not [`n_patches`](Self::n_patches) (checked in debug builds).
    pub fn assign(&self, call: u64, image: u64, training: bool, out: &mut [u32]) {
        debug_assert_eq!(out.len(), self.n_patches());
        let rng = || stream(derive_seed(self.seed, call), image);
        match self.scheme {
            Scheme::None => out.fill(0),
            Scheme::Random => random_partition(self.n, out, &mut rng()),
            Scheme::RandomFixed => out.copy_from_slice(&self.fixed),
            Scheme::ImageOverlap | Scheme::ImagePad => {
                let (rh, rw) = (self.out_h / self.q, self.out_w / self.q);
                for (p, o) in out.iter_mut().enumerate() {
                    let (i, j) = (p / self.out_w, p % self.out_w);
                    *o = ((i / rh) * self.q + j / rw) as u32;
                }
            }
            Scheme::Alternate => {
                for (p, o) in out.iter_mut().enumerate() {
                    let (i, j) = (p / self.out_w, p % self.out_w);
                    *o = ((i % self.q) * self.q + j % self.q) as u32;
                }
            }
            Scheme::Perforated => {
                if training && self.n > 1 {
                    // Keep the patches that a random balanced partition gives to part 0.
                    random_partition(self.n, out, &mut rng());
                    for o in out.iter_mut() {
                        *o = if *o == 0 { 0 } else { DROPPED };
                    }
                } else {
                    out.fill(0);
                }
            }
        }
    }

    /// For image-pad: the input region that patches of `tile` may see. None for other schemes.
    pub fn input_region(&self, tile: u32) -> Option<Region> {
        if self.scheme != Scheme::ImagePad {
            return None;
        }
        let (r, c) = (tile as usize / self.q, tile as usize % self.q);
        // Input pixel (y, x) belongs to region (⌊y·q/H⌋, ⌊x·q/W⌋).
        let lo = |k: usize, len: usize| (k * len).div_ceil(self.q);
        Some(Region { y0: lo(r, self.in_h), y1: lo(r + 1, self.in_h), x0: lo(c, self.in_w), x1: lo(c + 1, self.in_w) })
    }
}

/// A uniformly random balanced partition of `out.len()` items into `n` parts: labels
/// p mod n, shuffled (Fisher–Yates), so every part has ⌊P/n⌋ or ⌈P/n⌉ items.
///
/// # Panics
/// If `n` is 0 and `out` is not empty.
pub fn random_partition(n: usize, out: &mut [u32], rng: &mut SimRng) {
    for (p, o) in out.iter_mut().enumerate() {
        *o = (p % n) as u32;
    }
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
}
