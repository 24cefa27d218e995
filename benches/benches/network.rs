//! The paper's network end to end, as `rapa bench` measures it: one training step (forward,
//! backward, SGD update) on a mini-batch of 10 synthetic images and inference on a batch of
//! 100, for the RAPA layouts and tile kinds issue 6 compares. Denormals are flushed, as in
//! `rapa train` and `rapa bench` by default.
//!
//! Per-image cost = median / batch. `cargo bench -p rapa-benches --bench network`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array4;
use rapa_layers::Scheme;
use rapa_train::data::{Normalizer, fill_batch, synthetic};
use rapa_train::layers::SoftmaxCrossEntropy;
use rapa_train::net::{NetConfig, Network};
use rapa_train::runtime::flush_denormals;
use std::hint::black_box;

const BATCH: usize = 10;
const INFER_BATCH: usize = 100;

fn bench_network(c: &mut Criterion) {
    // Flush denormals on every thread of the global pool (the benches run there).
    rayon::broadcast(|_| flush_denormals());
    flush_denormals();
    let data = synthetic(400, 10, 1).train;
    let norm = Normalizer::fit(&data);
    let idx: Vec<usize> = (0..BATCH).collect();
    let labels: Vec<u16> = idx.iter().map(|&i| data.labels[i]).collect();
    let mut x = Array4::<f32>::zeros((BATCH, 3, 32, 32));
    fill_batch(&data, &idx, &norm, None, &mut x);
    let infer_idx: Vec<usize> = (0..INFER_BATCH).collect();
    let mut xi = Array4::<f32>::zeros((INFER_BATCH, 3, 32, 32));
    fill_batch(&data, &infer_idx, &norm, None, &mut xi);

    let configs: Vec<(String, NetConfig)> = [
        ("random_16_4_1_float", [16, 4, 1], Scheme::Random, "float"),
        ("none_1_1_1_float", [1, 1, 1], Scheme::None, "float"),
        ("random_4_1_1_float", [4, 1, 1], Scheme::Random, "float"),
        ("random_16_1_1_float", [16, 1, 1], Scheme::Random, "float"),
        ("random_64_1_1_float", [64, 1, 1], Scheme::Random, "float"),
        ("random_16_4_1_aihwkit_default", [16, 4, 1], Scheme::Random, "aihwkit-default"),
    ]
    .into_iter()
    .map(|(name, tiles, scheme, device)| {
        (name.to_string(), NetConfig { tiles, scheme, device: device.into(), ..NetConfig::default() })
    })
    .collect();

    let mut g = c.benchmark_group("network_train_step");
    g.sample_size(20).throughput(Throughput::Elements(BATCH as u64));
    for (name, cfg) in &configs {
        let mut net = Network::new(cfg, 1).unwrap();
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let logits = net.forward(black_box(x.view())).unwrap();
                let (_, grad, _) = SoftmaxCrossEntropy::loss_grad(logits.view(), &labels);
                net.backward_for_update(grad.view()).unwrap();
                net.update(1e-3, 1e-4).unwrap();
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("network_infer");
    g.sample_size(20).throughput(Throughput::Elements(INFER_BATCH as u64));
    for (name, cfg) in configs.iter().filter(|(n, _)| n.starts_with("random_16_4_1") || n.starts_with("none")) {
        let mut net = Network::new(cfg, 1).unwrap();
        net.set_training(false);
        g.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(|| net.forward(black_box(xi.view())).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench_network);
criterion_main!(benches);
