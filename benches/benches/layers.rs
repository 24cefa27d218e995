//! RAPA conv layers of the paper's network: forward + backward + update on a batch of 10,
//! n = 1 against the paper's n (16, 4, 1), float tiles; plus conv1 with analog tiles. And the
//! paper's first pooling layer (3×3, stride 2, on conv1's 32 × 32 × 32 output): max, average
//! and mixed (the AVX-512 row loops where the CPU has them), forward and forward + backward.
//!
//! `cargo bench -p rapa-benches --bench layers`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crossbar_sim::rng::seeded;
use ndarray::Array4;
use rand::Rng;
use rapa_layers::paper::paper_convs;
use rapa_layers::{RapaConv2d, Scheme, TileKind};
use rapa_train::layers::{Pool, PoolKind};
use std::hint::black_box;

const BATCH: usize = 10;

fn step(layer: &mut RapaConv2d, x: &Array4<f32>, dy: &Array4<f32>) {
    layer.forward(black_box(x.view())).unwrap();
    layer.backward(dy.view()).unwrap();
    layer.update(1e-3).unwrap();
}

fn bench_layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv_step");
    g.sample_size(20);
    let mut rng = seeded(1);
    let untiled = paper_convs([1, 1, 1], Scheme::None, &TileKind::Float);
    let tiled = paper_convs([16, 4, 1], Scheme::Random, &TileKind::Float);
    for (l, (plain, rapa)) in untiled.iter().zip(&tiled).enumerate() {
        let geo = plain.geometry;
        let x = Array4::from_shape_simple_fn((BATCH, geo.in_channels, geo.height, geo.width), || {
            rng.random_range(-1.0f32..1.0)
        });
        let dy = Array4::from_shape_simple_fn((BATCH, plain.out_channels, geo.out_height(), geo.out_width()), || {
            rng.random_range(-1.0f32..1.0)
        });
        for (label, cfg) in [("n1", plain), ("paper_n", rapa)] {
            let mut layer = RapaConv2d::new(cfg.clone(), 2).unwrap();
            g.bench_function(BenchmarkId::new(format!("conv{}", l + 1), label), |b| {
                b.iter(|| step(&mut layer, &x, &dy))
            });
        }
    }
    // conv1 with analog tiles (default preset), n = 16.
    let analog = paper_convs([16, 4, 1], Scheme::Random, &TileKind::Analog(Box::default()));
    let geo = analog[0].geometry;
    let x = Array4::from_shape_simple_fn((BATCH, 3, geo.height, geo.width), || rng.random_range(-1.0f32..1.0));
    let dy = Array4::from_shape_simple_fn((BATCH, 32, 32, 32), || rng.random_range(-0.01f32..0.01));
    let mut layer = RapaConv2d::new(analog[0].clone(), 3).unwrap();
    g.bench_function(BenchmarkId::new("conv1", "paper_n_analog"), |b| b.iter(|| step(&mut layer, &x, &dy)));
    g.finish();
}

fn bench_pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool1");
    let mut rng = seeded(4);
    let x = Array4::from_shape_simple_fn((BATCH, 32, 32, 32), || rng.random_range(-1.0f32..1.0));
    let dy = Array4::from_shape_simple_fn((BATCH, 32, 16, 16), || rng.random_range(-1.0f32..1.0));
    for kind in [PoolKind::Max, PoolKind::Avg, PoolKind::Mixed] {
        let mut pool = Pool::new(kind, 3, 2, 32, 5);
        g.bench_function(BenchmarkId::new("forward", kind.name()), |b| b.iter(|| pool.forward(black_box(x.view()))));
        g.bench_function(BenchmarkId::new("forward_backward", kind.name()), |b| {
            b.iter(|| {
                pool.forward(black_box(x.view()));
                pool.backward(dy.view()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_layers, bench_pool);
criterion_main!(benches);
