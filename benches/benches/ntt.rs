//! The number-theoretic transform over BN254 `Fr` on this machine's CPU cores: halo2-axiom's
//! `best_fft`, the FFT every proof runs today (the size-n inverse transforms of every column and
//! the coset transforms onto the extended domain).
//!
//! Keel has no GPU NTT yet (it comes with our own prover over a backend seam); this benchmark is
//! the CPU figure a GPU NTT will be measured against, at the sizes proofs use. The peer in the
//! same run is the same transform on one thread (`RAYON_NUM_THREADS` does not apply: the
//! one-thread figure runs inside a one-thread pool), so the ratio says what the cores give.
//!
//! Sizes: `KEEL_NTT_LOG=lo..hi` (inclusive; default 16..20).

use std::ops::RangeInclusive;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use halo2_proofs::{
    arithmetic::best_fft,
    halo2curves::{bn256::Fr, ff::Field},
    poly::EvaluationDomain,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn sizes() -> RangeInclusive<u32> {
    match std::env::var("KEEL_NTT_LOG") {
        Ok(spec) => {
            let (lo, hi) = spec.split_once("..").expect("KEEL_NTT_LOG=lo..hi");
            lo.parse().expect("lo")..=hi.parse().expect("hi")
        }
        Err(_) => 16..=20,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ntt");
    g.sample_size(10);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    println!(
        "ntt: {} threads against one, halo2-axiom best_fft",
        rayon::current_num_threads()
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for log_n in sizes() {
        let n = 1usize << log_n;
        let domain = EvaluationDomain::<Fr>::new(1, log_n);
        let omega = domain.get_omega();
        let data = domain.get_fft_data(n);
        let input: Vec<Fr> = (0..n).map(|_| Fr::random(&mut rng)).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("cpu", log_n), &input, |b, input| {
            b.iter_batched_ref(
                || input.clone(),
                |a| best_fft(a, omega, log_n, data, false),
                criterion::BatchSize::LargeInput,
            )
        });
        g.bench_with_input(
            BenchmarkId::new("cpu-1-thread", log_n),
            &input,
            |b, input| {
                b.iter_batched_ref(
                    || input.clone(),
                    |a| one.install(|| best_fft(a, omega, log_n, data, false)),
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
