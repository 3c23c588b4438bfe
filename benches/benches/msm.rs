//! MSM over BN254 G1, all in one run: Keel's wgpu engine against halo2curves' Pippenger on this
//! machine's CPU cores (the CPU reference) and against `msm-webgpu` (ICME-Lab's published wgpu
//! BN254 MSM, a cuZK port) on the same adapter.
//!
//! Sizes: `KEEL_MSM_LOG=lo..hi` (inclusive); by default 12..16 on a hardware GPU and 10..12 on
//! a software adapter (lavapipe), where the figures check the path end to end and say nothing
//! about speed. Every size is checked for equality across the engines before it is timed.
//!
//! `KEEL_MSM_PEER=0` leaves msm-webgpu out; a peer that panics (msm-webgpu turns every wgpu
//! error into a panic) is reported and left out for the rest of the run.
//!
//! Keel's figure includes the scalars' conversion and upload (bases are resident, as for a KZG
//! SRS). `msm-webgpu`'s API opens the device, compiles its shaders and uploads the bases on
//! every call, so its figure includes those too: that is the cost of using it as published.

use std::{hint::black_box, ops::RangeInclusive, sync::Arc};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use halo2_proofs::halo2curves::{
    bn256::{Fr, G1Affine, G1},
    ff::Field,
    group::{prime::PrimeCurveAffine, Curve, Group},
    CurveAffine,
};
use keel_prover::gpu::{AdapterClass, CpuMsm, GpuContext, GpuMsm, GpuPolicy, Msm, MsmConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn sizes(ctx: Option<&Arc<GpuContext>>) -> RangeInclusive<u32> {
    if let Ok(spec) = std::env::var("KEEL_MSM_LOG") {
        let (lo, hi) = spec
            .split_once("..")
            .expect("KEEL_MSM_LOG=lo..hi, e.g. 12..20");
        return lo.parse().expect("lo")..=hi.parse().expect("hi");
    }
    match ctx.map(|c| c.class()) {
        Some(AdapterClass::Software) | None => 10..=12,
        Some(_) => 12..=16,
    }
}

/// `n` distinct bases: a random point plus multiples of a random step (one addition each, so
/// 2^22 bases take seconds, not minutes).
fn bases(n: usize, rng: &mut ChaCha20Rng) -> Vec<G1Affine> {
    let step = G1::random(&mut *rng);
    let mut p = G1::random(&mut *rng);
    let projective: Vec<G1> = (0..n)
        .map(|_| {
            p += step;
            p
        })
        .collect();
    let mut affine = vec![G1Affine::identity(); n];
    G1::batch_normalize(&projective, &mut affine);
    affine
}

mod peer {
    //! `msm-webgpu` works on halo2curves 0.6 types: the same curve, other Rust types.
    use super::*;
    use halo2curves_06::bn256 as b06;

    pub(super) struct Inputs {
        bases: Vec<b06::G1Affine>,
        scalars: Vec<b06::Fr>,
    }

    pub(super) fn convert(bases: &[G1Affine], scalars: &[Fr]) -> Inputs {
        let fq = |x: &halo2_proofs::halo2curves::bn256::Fq| {
            use halo2curves_06::ff::PrimeField as _;
            b06::Fq::from_repr(x.to_repr()).unwrap()
        };
        let bases = bases
            .iter()
            .map(|b| {
                let c = b.coordinates().unwrap();
                b06::G1Affine::from_xy(fq(c.x()), fq(c.y())).unwrap()
            })
            .collect();
        let scalars = scalars
            .iter()
            .map(|s| {
                use halo2curves_06::ff::PrimeField as _;
                b06::Fr::from_repr(s.to_repr()).unwrap()
            })
            .collect();
        Inputs { bases, scalars }
    }

    pub(super) fn msm(inputs: &Inputs) -> b06::G1 {
        msm_webgpu::run_webgpu_msm(&inputs.bases, &inputs.scalars)
    }

    /// The peer's result in our types, to check it before timing it.
    pub(super) fn to_ours(p: b06::G1) -> G1 {
        use halo2curves_06::ff::PrimeField as _;
        let a = p.to_affine();
        if bool::from(halo2curves_06::group::prime::PrimeCurveAffine::is_identity(
            &a,
        )) {
            return G1::identity();
        }
        let c: Option<halo2curves_06::Coordinates<b06::G1Affine>> = a.coordinates().into();
        match c {
            None => G1::identity(),
            Some(c) => {
                let fq = |x: &b06::Fq| {
                    halo2_proofs::halo2curves::bn256::Fq::from_repr(x.to_repr()).unwrap()
                };
                G1Affine::from_xy(fq(c.x()), fq(c.y())).unwrap().to_curve()
            }
        }
    }
}

fn msm(c: &mut Criterion) {
    let ctx = GpuContext::acquire(GpuPolicy::Auto).expect("GPU acquisition");
    let range = sizes(ctx.as_ref());
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let all_bases = bases(1 << range.end(), &mut rng);
    let cpu = CpuMsm::new(&all_bases);
    let gpu = ctx.as_ref().map(|ctx| {
        GpuMsm::new(ctx.clone(), &all_bases, MsmConfig::default()).expect("GPU MSM engine")
    });
    eprintln!("CPU: {}", cpu.describe());
    match &gpu {
        Some(g) => eprintln!("GPU: {}", g.describe()),
        None => eprintln!("GPU: none found; only the CPU reference runs"),
    }
    let mut run_peer = std::env::var("KEEL_MSM_PEER").map_or(true, |v| v != "0");

    let mut group = c.benchmark_group("msm");
    group.sample_size(10);
    for log in range {
        let n = 1usize << log;
        let scalars: Vec<Fr> = (0..n).map(|_| Fr::random(&mut rng)).collect();
        let bases = &all_bases[..n];
        let expected = cpu.msm(&scalars).unwrap();
        group.throughput(Throughput::Elements(n as u64));
        let id = format!("2^{log}");
        if let Some(gpu) = &gpu {
            assert_eq!(gpu.msm(&scalars).unwrap(), expected, "keel-gpu at 2^{log}");
            group.bench_with_input(BenchmarkId::new("keel-gpu", &id), &scalars, |b, s| {
                b.iter(|| gpu.msm(black_box(s)).unwrap())
            });
        }
        group.bench_with_input(
            BenchmarkId::new("cpu-halo2curves", &id),
            &scalars,
            |b, s| b.iter(|| cpu.msm(black_box(s)).unwrap()),
        );
        if gpu.is_some() && run_peer {
            let inputs = peer::convert(bases, &scalars);
            // msm-webgpu panics on any wgpu error (it has no error path): catch that, report it,
            // and leave the peer out for the rest of the run rather than losing the whole run.
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| peer::msm(&inputs)));
            match got {
                Ok(got) if peer::to_ours(got) == expected => {
                    group.bench_with_input(BenchmarkId::new("msm-webgpu", &id), &inputs, |b, i| {
                        b.iter(|| peer::msm(black_box(i)))
                    });
                }
                Ok(_) => {
                    eprintln!("msm-webgpu at 2^{log}: WRONG RESULT on this adapter; not timed")
                }
                Err(_) => {
                    eprintln!(
                        "msm-webgpu at 2^{log}: panicked on this adapter (see above); left out"
                    );
                    run_peer = false;
                }
            }
        }
    }
    group.finish();
}

criterion_group!(benches, msm);
criterion_main!(benches);
