//! The SGD training loop.

use std::path::Path;
use std::time::Instant;

use crossbar_sim::rng::{derive_seed, stream};
use crossbar_sim::{CycleCounters, TimingModel};
use ndarray::Array4;
use rand::seq::SliceRandom;
use rapa_layers::TileKind;

use super::checkpoint::{CHECKPOINT_VERSION, Checkpoint, write_atomic, write_checkpoint};
use super::eval::evaluate;
use super::{EpochMetrics, TrainConfig, learning_rate};
use crate::data::{Augment, Dataset, IMAGE_BYTES, Normalizer, Split, fill_batch};
use crate::error::TrainError;
use crate::layers::SoftmaxCrossEntropy;
use crate::net::Network;

/// Stream indices of the trainer's random draws, derived from the master seed.
const SHUFFLE_STREAM: u64 = 1_000;
const AUGMENT_STREAM: u64 = 2_000;
const NET_STREAM: u64 = 3_000;

/// Progress of one batch, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchProgress {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Mean loss so far in this epoch.
    pub loss: f64,
    /// Running training error so far in this epoch.
    pub error: f64,
}

/// A training run: network, data and progress.
#[derive(Debug)]
pub struct Trainer {
    cfg: TrainConfig,
    net: Network,
    data: Split,
    norm: Normalizer,
    epoch: usize,
    metrics: Vec<EpochMetrics>,
}

impl Trainer {
    /// A fresh run; the number of classes comes from the data.
    pub fn new(mut cfg: TrainConfig, data: Split) -> Result<Self, TrainError> {
        cfg.net.classes = data.train.n_classes;
        cfg.validate()?;
        let data = limit(data, &cfg);
        let net = Network::new(&cfg.net, derive_seed(cfg.seed, NET_STREAM))?;
        let norm = Normalizer::fit_as(&data.train, cfg.input_norm);
        Ok(Self { cfg, net, data, norm, epoch: 0, metrics: Vec::new() })
    }

    /// Continues a run from a checkpoint (the data must be the run's data). `epochs` may be
    /// raised to train longer, or lowered to stop earlier, but not below the epochs the
    /// checkpoint has completed (an error: the run would claim fewer epochs than it holds).
    pub fn resume(ck: Checkpoint, data: Split, epochs: Option<usize>) -> Result<Self, TrainError> {
        let mut cfg = ck.config;
        if let Some(e) = epochs {
            if e < ck.epoch {
                return Err(TrainError::Config {
                    field: "epochs".into(),
                    reason: format!("{e} is below the {} epochs the checkpoint has completed", ck.epoch),
                });
            }
            cfg.epochs = e;
        }
        // A run recorded with more threads than MAX_THREADS (older builds) resumes; callers set
        // the thread count they want with `set_threads` (results do not depend on it).
        cfg.threads = cfg.threads.min(super::MAX_THREADS);
        cfg.validate()?;
        let data = limit(data, &cfg);
        if data.train.n_classes != cfg.net.classes {
            return Err(TrainError::Checkpoint {
                reason: format!("the data has {} classes, the checkpoint {}", data.train.n_classes, cfg.net.classes),
            });
        }
        let net = Network::from_state(ck.net, derive_seed(cfg.seed, NET_STREAM))?;
        let norm = Normalizer { mean: ck.norm_mean, std: ck.norm_std };
        Ok(Self { cfg, net, data, norm, epoch: ck.epoch, metrics: ck.metrics })
    }

    /// Changes the thread count used by [`crate::runtime::compute_pool`] callers (results do
    /// not depend on it).
    pub fn set_threads(&mut self, threads: usize) {
        self.cfg.threads = threads;
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The network.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Mutable network.
    pub fn net_mut(&mut self) -> &mut Network {
        &mut self.net
    }

    /// The data.
    pub fn data(&self) -> &Split {
        &self.data
    }

    /// The normalization fitted on the training set.
    pub fn normalizer(&self) -> &Normalizer {
        &self.norm
    }

    /// Epochs finished.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Metrics of the finished epochs.
    pub fn metrics(&self) -> &[EpochMetrics] {
        &self.metrics
    }

    /// The current state as a checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            // The network's own configuration: a network changed through `net_mut` (e.g.
            // `replace_conv`) is saved as it is, and the checkpoint stays readable.
            config: TrainConfig { net: self.net.config().clone(), ..self.cfg.clone() },
            epoch: self.epoch,
            metrics: self.metrics.clone(),
            norm_mean: self.norm.mean,
            norm_std: self.norm.std,
            net: self.net.state(),
        }
    }

    /// Trains one epoch and evaluates the test set.
    pub fn run_epoch(&mut self, progress: &mut dyn FnMut(BatchProgress)) -> Result<EpochMetrics, TrainError> {
        let epoch = self.epoch + 1;
        let lr = learning_rate(&self.cfg, epoch);
        let n = self.data.train.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut stream(derive_seed(self.cfg.seed, SHUFFLE_STREAM), epoch as u64));
        let augment = Augment { mirror: self.cfg.mirror, brightness: self.cfg.brightness };
        let aug_seed = derive_seed(derive_seed(self.cfg.seed, AUGMENT_STREAM), epoch as u64);
        let batches = n.div_ceil(self.cfg.batch);
        let before = all_counters(&self.net);
        let start = Instant::now();
        let (mut loss_sum, mut wrong, mut seen) = (0.0f64, 0usize, 0usize);
        let mut buf = Array4::<f32>::zeros((self.cfg.batch.min(n), 3, 32, 32));
        self.net.set_training(true);
        for (b, idx) in order.chunks(self.cfg.batch).enumerate() {
            if buf.shape()[0] != idx.len() {
                buf = Array4::zeros((idx.len(), 3, 32, 32));
            }
            let mut rng = stream(aug_seed, b as u64);
            fill_batch(&self.data.train, idx, &self.norm, Some((&augment, &mut rng)), &mut buf);
            let labels: Vec<u16> = idx.iter().map(|&i| self.data.train.labels[i]).collect();
            let logits = self.net.forward(buf.view())?;
            let (loss, grad, correct) = SoftmaxCrossEntropy::loss_grad(logits.view(), &labels);
            if !loss.is_finite() {
                return Err(TrainError::NonFiniteLoss { epoch, batch: b, loss });
            }
            self.net.backward_for_update(grad.view())?;
            self.net.update(lr, self.cfg.weight_decay)?;
            loss_sum += loss * idx.len() as f64;
            wrong += idx.len() - correct;
            seen += idx.len();
            progress(BatchProgress {
                epoch,
                batch: b + 1,
                batches,
                loss: loss_sum / seen as f64,
                error: wrong as f64 / seen as f64,
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let after = all_counters(&self.net);
        let timing = self.timing_model();
        let (mut cycles, mut time) = (0u64, 0.0f64);
        for (layer_after, layer_before) in after.iter().zip(&before) {
            // The layer's time is that of its busiest tile over this epoch.
            let busiest = layer_after
                .iter()
                .zip(layer_before)
                .map(|(a, b)| CycleCounters {
                    forward_cycles: a.forward_cycles - b.forward_cycles,
                    backward_cycles: a.backward_cycles - b.backward_cycles,
                    update_cycles: a.update_cycles - b.update_cycles,
                    forward_passes: a.forward_passes - b.forward_passes,
                    backward_passes: a.backward_passes - b.backward_passes,
                    update_slots: a.update_slots - b.update_slots,
                    pulses: a.pulses - b.pulses,
                })
                .max_by(|x, y| timing.analog_time_ns(x).total_cmp(&timing.analog_time_ns(y)))
                .unwrap_or_default();
            cycles += busiest.forward_cycles + busiest.backward_cycles + busiest.update_cycles;
            time += timing.analog_time_ns(&busiest);
        }
        let test = evaluate(&mut self.net, &self.data.test, &self.norm, self.cfg.eval_batch, 1)?;
        let train_error = wrong as f64 / seen.max(1) as f64;
        let best_test = self.metrics.iter().map(|m| m.test_error).fold(test.error, f64::min);
        let best_train = self.metrics.iter().map(|m| m.train_error).fold(train_error, f64::min);
        let m = EpochMetrics {
            epoch,
            train_error,
            test_error: test.error,
            loss: loss_sum / seen.max(1) as f64,
            lr,
            seconds,
            images_per_s: seen as f64 / seconds.max(1e-9),
            analog_cycles: cycles,
            analog_time_ns: time,
            best_test_error: best_test,
            best_train_error: best_train,
        };
        self.metrics.push(m.clone());
        self.epoch = epoch;
        Ok(m)
    }

    /// Trains until `config.epochs`, writing after every epoch into `out` (if given):
    /// `metrics.jsonl` (one JSON line per epoch), `config.toml` and `checkpoint.bin`, each
    /// atomically. `on_epoch` sees each epoch's metrics.
    pub fn fit(
        &mut self,
        out: Option<&Path>,
        progress: &mut dyn FnMut(BatchProgress),
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<(), TrainError> {
        if let Some(dir) = out {
            std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
            write_atomic(&dir.join("config.toml"), self.cfg.to_toml()?.as_bytes())?;
            // A resumed run rewrites its metrics from the checkpoint first: a crash between the
            // checkpoint and the metrics of its last epoch would otherwise leave metrics.jsonl
            // one epoch short for good.
            if !self.metrics.is_empty() {
                write_atomic(&dir.join("metrics.jsonl"), self.metrics_jsonl()?.as_bytes())?;
            }
        }
        while self.epoch < self.cfg.epochs {
            let m = self.run_epoch(progress)?;
            on_epoch(&m);
            // A NaN weight need not show in the loss (the ReLU maps NaN to 0, and a dead network
            // still has the finite loss ln 10), but a checkpoint holding one is refused when
            // read: stop here, keeping the previous epoch's checkpoint.
            let ck = self.checkpoint();
            if let Some((tensor, index, value)) = ck.first_non_finite() {
                return Err(TrainError::NonFiniteWeights { epoch: self.epoch, tensor, index, value });
            }
            if let Some(dir) = out {
                let lines = self.metrics_jsonl()?;
                // The checkpoint first: a crash between the two leaves metrics.jsonl one epoch
                // behind (a resumed run rewrites it at its start, see above), never a run that
                // looks finished with an older checkpoint.
                write_checkpoint(&dir.join("checkpoint.bin"), &ck)?;
                write_atomic(&dir.join("metrics.jsonl"), lines.as_bytes())?;
            }
        }
        Ok(())
    }

    /// The metrics so far, one JSON line per epoch.
    fn metrics_jsonl(&self) -> Result<String, TrainError> {
        let mut lines = String::new();
        for m in &self.metrics {
            lines.push_str(&serde_json::to_string(m).map_err(|e| TrainError::Internal(e.to_string()))?);
            lines.push('\n');
        }
        Ok(lines)
    }

    fn timing_model(&self) -> TimingModel {
        match self.cfg.net.tile_kind() {
            Ok(TileKind::Analog(t)) => t.timing.clone(),
            _ => TimingModel::default(),
        }
    }
}

fn limit(mut data: Split, cfg: &TrainConfig) -> Split {
    if let Some(n) = cfg.limit_train {
        keep_spread(&mut data.train, n);
    }
    if let Some(n) = cfg.limit_test {
        keep_spread(&mut data.test, n);
    }
    data
}

/// Keeps `n` images, stratified by class and spread evenly within each class: class c keeps
/// its share ⌊n·len_c/len⌉ (largest remainders fill up to n) of its images at evenly spaced
/// positions, in the original order. So a limit on a file sorted by class — the shared
/// CIFAR-10 test batch is — or with periodic labels (the synthetic set) still covers every class
/// in proportion. No effect when `n >= len`.
pub fn keep_spread(ds: &mut Dataset, n: usize) {
    let len = ds.len();
    if n >= len {
        return;
    }
    let classes = ds.labels.iter().map(|&l| usize::from(l) + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in ds.labels.iter().enumerate() {
        by_class[usize::from(l)].push(i);
    }
    // Largest-remainder apportionment of n over the classes.
    let mut share: Vec<usize> = by_class.iter().map(|c| c.len() * n / len).collect();
    let mut rest: Vec<(usize, usize)> = by_class.iter().enumerate().map(|(c, v)| ((v.len() * n) % len, c)).collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, c) in rest.iter().take(n - share.iter().sum::<usize>()) {
        share[c] += 1;
    }
    let mut picks: Vec<usize> =
        by_class.iter().zip(&share).flat_map(|(idx, &k)| (0..k).map(move |j| idx[j * idx.len() / k.max(1)])).collect();
    picks.sort_unstable();
    let mut images = Vec::with_capacity(n * IMAGE_BYTES);
    for &i in &picks {
        images.extend_from_slice(ds.image(i));
    }
    ds.labels = picks.iter().map(|&i| ds.labels[i]).collect();
    ds.images = images;
}

/// Per layer (3 convs and the FC), the counters of every tile.
fn all_counters(net: &Network) -> Vec<Vec<CycleCounters>> {
    let mut out: Vec<Vec<CycleCounters>> =
        net.convs().iter().map(|c| c.tiles().iter().map(|t| t.counters()).collect()).collect();
    out.push(vec![net.fc().tile().counters()]);
    out
}
