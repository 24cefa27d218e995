//! Standard-normal draws in bulk, 20 480 per call (the output noise of one 75×32 forward on
//! 640 vectors): the ziggurat on xoshiro256++ (`normal::fill_standard_normal`), the eight-lane
//! Box–Muller stream the periphery uses (`normal::NormalStream`), and `rand_distr`'s
//! `StandardNormal` for reference. Throughput in draws per second.
//!
//! `cargo bench -p rapa-benches --bench normal`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbar_sim::normal::{NormalStream, fill_standard_normal};
use crossbar_sim::rng::seeded;
use rand::Rng;
use rand_distr::StandardNormal;
use std::hint::black_box;

const N: usize = 20_480;

fn bench_normal(c: &mut Criterion) {
    let mut g = c.benchmark_group("normal");
    g.throughput(Throughput::Elements(N as u64));
    let mut out = vec![0.0f32; N];
    let mut rng = seeded(1);
    g.bench_function("ziggurat", |b| b.iter(|| fill_standard_normal(&mut rng, black_box(&mut out))));
    let mut stream = NormalStream::new(1);
    g.bench_function("box_muller_stream", |b| b.iter(|| stream.fill(black_box(&mut out))));
    g.bench_function("rand_distr", |b| {
        b.iter(|| out.iter_mut().for_each(|v| *v = rng.sample(StandardNormal)));
        black_box(&out);
    });
    g.finish();
}

criterion_group!(benches, bench_normal);
criterion_main!(benches);
