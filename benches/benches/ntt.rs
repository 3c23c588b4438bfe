//! The number-theoretic transform over BN254 `Fr`, all in one run: Keel's wgpu NTT
//! (`keel_prover::gpu::GpuNtt`, values up and back included) against halo2-axiom's `best_fft` on
//! this machine's CPU cores, the FFT every proof runs today (the size-n inverse transforms of
//! every column and the coset transforms onto the extended domain), and against the same CPU
//! transform on one thread (`RAYON_NUM_THREADS` does not apply: the one-thread figure runs inside
//! a one-thread pool), so the ratios say what the GPU and the cores give.
//!
//! Every size is checked for equality between the GPU and the CPU before anything is timed. On a
//! software adapter (lavapipe) the GPU runs once per size for that check and is not timed: its
//! figures would say nothing about a GPU.
//!
//! Sizes: `KEEL_NTT_LOG=lo..hi` (inclusive; default 16..20).

use std::ops::RangeInclusive;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use halo2_proofs::{
    arithmetic::best_fft,
    halo2curves::{bn256::Fr, ff::Field},
    poly::EvaluationDomain,
};
use keel_prover::gpu::{AdapterClass, GpuContext, GpuNtt, GpuPolicy, Ntt};
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
    let ctx = GpuContext::acquire(GpuPolicy::Auto).expect("GPU acquisition");
    let software = ctx
        .as_ref()
        .is_some_and(|c| c.class() == AdapterClass::Software);
    let gpu = ctx.map(|ctx| {
        let limbs = ctx.preferred_limbs();
        GpuNtt::new(ctx, limbs).expect("GPU NTT engine")
    });
    match &gpu {
        Some(g) if software => println!(
            "ntt: GPU {}: a software adapter, checked once per size, not timed",
            g.describe()
        ),
        Some(g) => println!("ntt: GPU {}", g.describe()),
        None => println!("ntt: no GPU found; only the CPU runs"),
    }
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for log_n in sizes() {
        let n = 1usize << log_n;
        let domain = EvaluationDomain::<Fr>::new(1, log_n);
        let omega = domain.get_omega();
        let data = domain.get_fft_data(n);
        let input: Vec<Fr> = (0..n).map(|_| Fr::random(&mut rng)).collect();
        g.throughput(Throughput::Elements(n as u64));
        if let Some(gpu) = &gpu {
            let (mut want, mut got) = (input.clone(), input.clone());
            best_fft(&mut want, omega, log_n, data, false);
            gpu.forward(&mut got, omega, log_n).expect("GPU NTT");
            assert!(
                want == got,
                "the GPU NTT differs from best_fft at 2^{log_n}"
            );
            if !software {
                g.bench_with_input(BenchmarkId::new("keel-gpu", log_n), &input, |b, input| {
                    b.iter_batched_ref(
                        || input.clone(),
                        |a| gpu.forward(a, omega, log_n).expect("GPU NTT"),
                        criterion::BatchSize::LargeInput,
                    )
                });
            }
        }
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
