//! SGEMM on this machine: the `gemm`-crate product every tile uses (`crossbar_sim::linalg`)
//! against ndarray's `matrixmultiply` backend, on a large square product (the machine's
//! practical peak) and on the tile shapes of the paper's network (640 patch rows per tile and
//! mini-batch). GFLOP/s = 2·m·k·n / median.
//!
//! `cargo bench -p rapa-benches --bench gemm`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crossbar_sim::linalg::sgemm;
use ndarray::Array2;
use ndarray::linalg::general_mat_mul;
use std::hint::black_box;

fn bench_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    g.sample_size(20);
    for (m, k, n) in [(1024, 1024, 1024), (640, 75, 32), (640, 800, 32), (640, 800, 64)] {
        let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 3 + j) % 17) as f32 * 0.1);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i + j * 5) % 13) as f32 * 0.1);
        let mut out = Array2::<f32>::zeros((m, n));
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        let id = format!("{m}x{k}x{n}");
        g.bench_function(BenchmarkId::new("gemm_crate", &id), |bch| {
            bch.iter(|| sgemm(1.0, black_box(a.view()), b.view(), 0.0, &mut out.view_mut()))
        });
        g.bench_function(BenchmarkId::new("matrixmultiply", &id), |bch| {
            bch.iter(|| general_mat_mul(1.0, black_box(&a), &b, 0.0, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
