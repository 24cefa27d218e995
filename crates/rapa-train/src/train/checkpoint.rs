//! Checkpoints: the network state, the finished epochs and their metrics, written atomically.

use std::io::Write;
use std::path::Path;

use crossbar_sim::{Tile, TileSnapshot};
use serde::{Deserialize, Serialize};

use super::config::{MAX_BATCH, MAX_THREADS};
use super::{EpochMetrics, TrainConfig};
use crate::error::TrainError;
use crate::net::NetState;

/// Format version stored in every checkpoint.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Everything needed to continue a run bit-exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The run's configuration.
    pub config: TrainConfig,
    /// Epochs finished.
    pub epoch: usize,
    /// Metrics of the finished epochs.
    pub metrics: Vec<EpochMetrics>,
    /// Per-channel mean of the training images (normalization).
    pub norm_mean: [f32; 3],
    /// Per-channel std of the training images.
    pub norm_std: [f32; 3],
    /// The network.
    pub net: NetState,
}

impl Checkpoint {
    /// Checks that the parts agree: the configuration is valid, the network is the one it
    /// describes, the normalization is finite with every std at least
    /// [`Normalizer::MIN_STD`](crate::data::Normalizer::MIN_STD), every weight, digital bias,
    /// mapping scale and pool mixing logit of the network is finite (the error names the
    /// tensor: `conv2 tile 3 weights`, `fc weights`, …), and there is one metrics record per
    /// finished epoch, each as [`read_metrics`](super::read_metrics) accepts it (epochs in
    /// order, error rates in [0, 1]). [`read_checkpoint`] calls it, so a damaged or hand-edited file is
    /// refused before any of it is used.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |reason: String| Err(TrainError::Checkpoint { reason });
        // The batch sizes and the thread count do not shape the stored model: a run an older
        // build allowed a larger batch than MAX_BATCH stays readable (resuming it is refused by
        // the trainer), and so does one recorded with more threads than MAX_THREADS.
        let cfg = TrainConfig {
            batch: self.config.batch.min(MAX_BATCH),
            eval_batch: self.config.eval_batch.min(MAX_BATCH),
            threads: self.config.threads.min(MAX_THREADS),
            ..self.config.clone()
        };
        cfg.validate()?;
        if self.config.net != self.net.config {
            let stored = TrainConfig { net: self.net.config.clone(), ..self.config.clone() };
            let what = match crate::experiment::first_difference(&stored, &self.config)? {
                Some((field, got, want)) => format!("{field}: {got} against {want}"),
                None => format!("{:?} against {:?}", self.net.config, self.config.net),
            };
            return bad(format!("the stored network's configuration differs from the run's [net] ({what})"));
        }
        let min_std = crate::data::Normalizer::MIN_STD;
        if !self.norm_mean.iter().all(|m| m.is_finite())
            || !self.norm_std.iter().all(|s| s.is_finite() && *s >= min_std)
        {
            return bad(format!(
                "normalization mean {:?}, std {:?}: must be finite, std >= {min_std}",
                self.norm_mean, self.norm_std
            ));
        }
        if self.metrics.len() != self.epoch {
            return bad(format!("{} epochs finished but {} metrics records", self.epoch, self.metrics.len()));
        }
        // The records as `read_metrics` accepts them: resuming rewrites `metrics.jsonl` from
        // them, which must then read back.
        for (i, m) in self.metrics.iter().enumerate() {
            if let Err(r) = m.check_after(i.checked_sub(1).map(|j| &self.metrics[j]), "the record before") {
                return bad(format!("metrics record {}: {r}", i + 1));
            }
        }
        if let Some((tensor, index, value)) = self.first_non_finite() {
            return bad(format!(
                "{tensor} holds a non-finite value ({value} at index {index}): the weights have diverged or the file is damaged"
            ));
        }
        Ok(())
    }

    /// The first NaN or infinite number among the network's learned values: (tensor, flat
    /// index, value). Hidden device bounds may be infinite (ideal devices) and are not looked at.
    pub(crate) fn first_non_finite(&self) -> Option<(String, usize, f32)> {
        let bad_in = |name: String, values: &mut dyn Iterator<Item = f32>| {
            values.enumerate().find(|(_, v)| !v.is_finite()).map(|(i, v)| (name, i, v))
        };
        let tile = |name: &str, t: &TileSnapshot| match t {
            TileSnapshot::Float(f) => bad_in(format!("{name} weights"), &mut f.weights().iter().copied()),
            TileSnapshot::Analog(a) => bad_in(format!("{name} weights"), &mut a.weights.iter().copied())
                .or_else(|| bad_in(format!("{name} digital bias"), &mut a.digital_bias.iter().copied()))
                .or_else(|| bad_in(format!("{name} mapping scales"), &mut a.mapping_scales.iter().copied()))
                .or_else(|| {
                    let t = a.transfer.as_ref()?;
                    bad_in(format!("{name} fast-device weights"), &mut t.fast.weights.iter().copied())
                        .or_else(|| bad_in(format!("{name} transfer buffer"), &mut t.buffer.iter().copied()))
                }),
            TileSnapshot::Inference(t) => bad_in(format!("{name} weights"), &mut t.weights().iter().copied()),
        };
        let net = &self.net;
        net.convs
            .iter()
            .enumerate()
            .find_map(|(l, c)| {
                c.tiles
                    .iter()
                    .enumerate()
                    .find_map(|(t, s)| tile(&format!("conv{} tile {}", l + 1, t + 1), s))
                    .or_else(|| bad_in(format!("conv{} lr scales", l + 1), &mut c.lr_scale.iter().copied()))
            })
            .or_else(|| {
                net.pools
                    .iter()
                    .enumerate()
                    .find_map(|(p, s)| bad_in(format!("pool{} mixing logits", p + 1), &mut s.mix.iter().copied()))
            })
            .or_else(|| tile("fc", &net.fc))
    }
}

/// Refuses to replace `path` when it exists and is not a regular file (a directory, a symbolic
/// link, a FIFO, a device, a socket): renaming a new file over it would destroy it (or, for a
/// device node such as `/dev/null`, replace it for every program). A missing path or a regular
/// file is fine.
///
/// # Errors
/// [`TrainError::Io`] naming the path, of kind [`InvalidInput`](std::io::ErrorKind::InvalidInput),
/// "is not a regular file (…); refusing to replace it".
pub fn check_replaceable(path: &Path) -> Result<(), TrainError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let what = if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        special_kind(&ft)
    };
    Err(TrainError::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is not a regular file ({what}); refusing to replace it"),
        ),
    ))
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (named for this
/// process, so that two processes writing the same file never share one), synced, then renamed
/// over the target, and the directory synced where the file system allows it (Unix) so that the
/// rename itself survives a power loss. A crash leaves the old file or the new one, never a torn
/// one (and possibly a stray `.NAME.PID.tmp`); a failed write removes its temporary file. A
/// target that exists but is not a regular file (a directory, symbolic link, FIFO or device) is
/// refused before anything is written ([`check_replaceable`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    check_replaceable(path)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| TrainError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // Best effort: some network and FUSE file systems refuse to sync a directory; the rename
    // has happened either way.
    #[cfg(unix)]
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// Marks the 8-byte trailer of a checkpoint file: these 4 bytes, then the CRC-32 (IEEE) of
/// everything before the trailer, little-endian.
const CHECKSUM_MAGIC: &[u8; 4] = b"rck\x01";

/// Serializes (MessagePack, self-describing: floats are stored bit-exactly), appends the
/// checksum trailer and writes a checkpoint atomically.
pub fn write_checkpoint(path: &Path, ck: &Checkpoint) -> Result<(), TrainError> {
    let mut bytes =
        rmp_serde::to_vec_named(ck).map_err(|e| TrainError::Internal(format!("serializing checkpoint: {e}")))?;
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(CHECKSUM_MAGIC);
    bytes.extend_from_slice(&crc.to_le_bytes());
    write_atomic(path, &bytes)
}

/// The MessagePack part of a checkpoint file: without its checksum trailer after checking it,
/// or the whole file if it has none (written before 2026-11-27; such files still load, with
/// only the decoding and [`Checkpoint::validate`] to catch damage).
fn checked_payload<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], TrainError> {
    let Some(split) = bytes.len().checked_sub(8) else { return Ok(bytes) };
    let (payload, trailer) = bytes.split_at(split);
    if &trailer[..4] != CHECKSUM_MAGIC {
        return Ok(bytes);
    }
    let stored = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    let actual = crc32fast::hash(payload);
    if stored != actual {
        return Err(TrainError::Checkpoint {
            reason: format!(
                "{}: checksum mismatch (stored {stored:08x}, computed {actual:08x}): the file is damaged",
                path.display()
            ),
        });
    }
    Ok(payload)
}

/// The bytes of the file at `path`, at most `max` of them, as the dataset readers read theirs
/// ([`read_limited`](crate::data::read_limited): a longer file is refused from its length,
/// [`DataError::Oversized`](crate::data::DataError::Oversized), before anything is allocated),
/// with IO errors (a missing file included) as [`TrainError::Io`], as from `std::fs`.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, TrainError> {
    crate::data::read_limited(path, max).map_err(|e| match e {
        crate::data::DataError::Io { path, source } => TrainError::Io { path, source },
        e => TrainError::Data(e),
    })
}

/// Largest checkpoint file [`read_checkpoint`] reads: 64 GiB, ~16 `f32` arrays per weight of
/// the largest network ([`MAX_NET_WEIGHTS`](crate::net::MAX_NET_WEIGHTS)), more than any
/// valid checkpoint holds; a larger file is refused from its length.
pub const MAX_CHECKPOINT_BYTES: u64 = 64 << 30;

/// Reads a checkpoint, checking its checksum (files written before the checksum have none),
/// its version, that nothing follows the encoded checkpoint, and that its parts agree and its
/// weights are finite ([`Checkpoint::validate`]); every error names the file.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, TrainError> {
    // Only a regular file (a symbolic link to one is fine): `/dev/zero` or a FIFO would be read
    // without end. Then at most `MAX_CHECKPOINT_BYTES`, checked from the length first.
    let meta = std::fs::metadata(path).map_err(|e| TrainError::io(path, e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { special_kind(&meta.file_type()) };
        return Err(TrainError::Checkpoint { reason: format!("{}: not a regular file ({what})", path.display()) });
    }
    let file = read_bounded(path, MAX_CHECKPOINT_BYTES)?;
    let bytes = checked_payload(path, &file)?;
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let ck = Checkpoint::deserialize(&mut de)
        .map_err(|e| TrainError::Checkpoint { reason: format!("{}: cannot decode: {e}", path.display()) })?;
    let used = usize::try_from(de.position()).unwrap_or(usize::MAX);
    if used < bytes.len() {
        return Err(TrainError::Checkpoint {
            reason: format!(
                "{}: {} trailing bytes after the checkpoint's {used} (a damaged or concatenated file)",
                path.display(),
                bytes.len() - used
            ),
        });
    }
    if ck.version != CHECKPOINT_VERSION {
        return Err(TrainError::Checkpoint {
            reason: format!("{}: version {} (this build reads {CHECKPOINT_VERSION})", path.display(), ck.version),
        });
    }
    ck.validate().map_err(|e| match e {
        TrainError::Checkpoint { reason } => TrainError::Checkpoint { reason: format!("{}: {reason}", path.display()) },
        TrainError::Config { field, reason } => {
            TrainError::Checkpoint { reason: format!("{}: config field {field}: {reason}", path.display()) }
        }
        other => other,
    })?;
    Ok(ck)
}
