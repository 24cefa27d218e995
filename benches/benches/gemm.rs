//! SGEMM on this machine: the rten-gemm product every tile uses (`crossbar_sim::linalg`) against
//! the `gemm` crate (0.18, stable features: AVX2 kernels; the backend before) and ndarray's
//! `matrixmultiply`, on a large square product (the machine's practical peak) and on the tile
//! shapes of the paper's network (640 patch rows per tile and mini-batch): forward `[640, k]·[k,
//! n]`, input gradient `[640, n]·[n, k]` and weight gradient `[n, 640]·[640, k]` with the
//! transposed operands the layers pass. GFLOP/s = 2·m·k·n / median, one thread
//! unless the name says otherwise.
//!
//! `cargo bench -p rapa-benches --bench gemm`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crossbar_sim::linalg::sgemm;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use std::hint::black_box;

/// `c ← a·b` through the `gemm` crate (`c` row-major).
fn gemm_crate(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, c: &mut Array2<f32>) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert!(b.nrows() == k && c.dim() == (m, n) && c.is_standard_layout());
    let (a_s, b_s) = (a.strides(), b.strides());
    // SAFETY: shapes checked above; the strides are those of the views, so every element read
    // or written lies inside `a`, `b` or `c`; `c` is borrowed mutably, so nothing aliases it.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_s[1],
            a_s[0],
            b.as_ptr(),
            b_s[1],
            b_s[0],
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn bench_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    g.sample_size(20);
    println!("crossbar_sim::linalg kernel: {}", crossbar_sim::linalg::kernel_name());
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("a rayon pool");
    let (one, two) = (pool(1), pool(2));
    // (m, k, n, a stored transposed, b stored transposed)
    let shapes = [
        (1024, 1024, 1024, false, false),
        (640, 75, 32, false, true),
        (640, 800, 32, false, true),
        (640, 800, 64, false, true),
        (640, 64, 800, false, false),
        (64, 640, 800, true, false),
    ];
    for (m, k, n, ta, tb) in shapes {
        let a_store = Array2::from_shape_fn(if ta { (k, m) } else { (m, k) }, |(i, j)| ((i * 3 + j) % 17) as f32 * 0.1);
        let b_store = Array2::from_shape_fn(if tb { (n, k) } else { (k, n) }, |(i, j)| ((i + j * 5) % 13) as f32 * 0.1);
        let a = if ta { a_store.t() } else { a_store.view() };
        let b = if tb { b_store.t() } else { b_store.view() };
        let mut out = Array2::<f32>::zeros((m, n));
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        let id = format!("{m}x{k}x{n}{}{}", if ta { "-at" } else { "" }, if tb { "-bt" } else { "" });
        // Per thread: rten-gemm splits a product over the pool it runs on, so it runs on a
        // 1-thread pool here (as the other two, which run on the calling thread); the 2-thread
        // row is the machine's practical peak that `rapa bench` reports.
        g.bench_function(BenchmarkId::new("rten_gemm", &id), |bch| {
            one.install(|| bch.iter(|| sgemm(1.0, black_box(a), b, 0.0, &mut out.view_mut())))
        });
        if (m, k, n) == (1024, 1024, 1024) {
            g.bench_function(BenchmarkId::new("rten_gemm_2_threads", &id), |bch| {
                two.install(|| bch.iter(|| sgemm(1.0, black_box(a), b, 0.0, &mut out.view_mut())))
            });
        }
        g.bench_function(BenchmarkId::new("gemm_crate", &id), |bch| bch.iter(|| gemm_crate(black_box(a), b, &mut out)));
        g.bench_function(BenchmarkId::new("matrixmultiply", &id), |bch| {
            bch.iter(|| general_mat_mul(1.0, black_box(&a), &b, 0.0, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
