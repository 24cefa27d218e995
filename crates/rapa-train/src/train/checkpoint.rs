//! Checkpoints: the network state, the finished epochs and their metrics, written atomically.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::MAX_BATCH;
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
    /// [`Normalizer::MIN_STD`](crate::data::Normalizer::MIN_STD), and there is one metrics
    /// record per finished epoch. [`read_checkpoint`] calls it, so a damaged or hand-edited
    /// file is refused before any of it is used.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |reason: String| Err(TrainError::Checkpoint { reason });
        // The batch sizes do not shape the stored model: a run an older build allowed a larger
        // batch than MAX_BATCH stays readable (resuming it is refused by the trainer).
        let cfg = TrainConfig {
            batch: self.config.batch.min(MAX_BATCH),
            eval_batch: self.config.eval_batch.min(MAX_BATCH),
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
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (named for this
/// process, so that two processes writing the same file never share one), synced, then renamed
/// over the target, and the directory synced where the file system allows it (Unix) so that the
/// rename itself survives a power loss. A crash leaves the old file or the new one, never a torn
/// one (and possibly a stray `.NAME.PID.tmp`); a failed write removes its temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
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

/// Serializes (MessagePack, self-describing: floats are stored bit-exactly) and writes a
/// checkpoint atomically.
pub fn write_checkpoint(path: &Path, ck: &Checkpoint) -> Result<(), TrainError> {
    let bytes =
        rmp_serde::to_vec_named(ck).map_err(|e| TrainError::Internal(format!("serializing checkpoint: {e}")))?;
    write_atomic(path, &bytes)
}

/// Reads a checkpoint, checking its version and that its parts agree ([`Checkpoint::validate`]).
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let ck: Checkpoint = rmp_serde::from_slice(&bytes)
        .map_err(|e| TrainError::Checkpoint { reason: format!("{}: cannot decode: {e}", path.display()) })?;
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
