use std::sync::OnceLock;

use halo2_proofs::halo2curves::{
    bn256::{Fr, G1Affine, G1},
    ff::Field,
    group::{prime::PrimeCurveAffine, Curve, Group},
};
use keel_prover::gpu::{CpuMsm, GpuError, GpuMsm, Limbs, Msm, MsmConfig, MsmError};

use super::{ctx, limb_widths, rng};

const MAX_N: usize = (1 << 12) + 1;

/// Random bases, shared by the tests (generating them is the slow part on the CPU).
fn bases() -> &'static [G1Affine] {
    static BASES: OnceLock<Vec<G1Affine>> = OnceLock::new();
    BASES.get_or_init(|| {
        let mut r = rng(10);
        let projective: Vec<G1> = (0..MAX_N).map(|_| G1::random(&mut r)).collect();
        let mut affine = vec![G1Affine::identity(); MAX_N];
        G1::batch_normalize(&projective, &mut affine);
        affine
    })
}

fn random_scalars(n: usize, seed: u64) -> Vec<Fr> {
    let mut r = rng(seed);
    (0..n).map(|_| Fr::random(&mut r)).collect()
}

fn engine(bases: &[G1Affine], config: MsmConfig) -> GpuMsm {
    GpuMsm::new(ctx(), bases, config).expect("building the GPU MSM")
}

/// The GPU engine equals the CPU reference on `scalars` over `bases`.
fn assert_matches(gpu: &GpuMsm, cpu: &CpuMsm, scalars: &[Fr], what: &str) {
    let expected = cpu.msm(scalars).unwrap();
    let got = gpu
        .msm(scalars)
        .unwrap_or_else(|e| panic!("{what}: n = {}, {:?}: {e}", scalars.len(), gpu.limbs()));
    assert_eq!(
        got,
        expected,
        "{what}: n = {}, {:?}, plan {:?}",
        scalars.len(),
        gpu.limbs(),
        gpu.plan(scalars.len())
    );
}

#[test]
fn gpu_msm_sizes_one_two_three_and_around_powers_of_two() {
    let mut sizes = vec![1, 2, 3];
    for k in 2..=12 {
        sizes.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
    }
    sizes.dedup();
    let cpu = CpuMsm::new(bases());
    for limbs in limb_widths() {
        let gpu = engine(
            bases(),
            MsmConfig {
                limbs: Some(limbs),
                ..MsmConfig::default()
            },
        );
        for &n in &sizes {
            assert_matches(&gpu, &cpu, &random_scalars(n, n as u64), "random scalars");
        }
    }
}

#[test]
fn gpu_msm_edge_scalars() {
    let n = 1000;
    assert_eq!(keel_prover::gpu::default_window_bits(n), 6);
    let cpu = CpuMsm::new(&bases()[..n]);
    let mut r = rng(11);
    let minus_one = -Fr::ONE;
    let cases: Vec<(&str, Vec<Fr>)> = vec![
        ("all zero", vec![Fr::ZERO; n]),
        ("all one", vec![Fr::ONE; n]),
        ("all r - 1", vec![minus_one; n]),
        (
            // n = 1000 runs 6-bit windows: 32 is the largest positive digit, 33 and 63 carry.
            "digits at the sign boundary",
            (0..n)
                .map(|i| Fr::from([31, 32, 33, 63, 64, u64::MAX][i % 6]))
                .collect(),
        ),
        (
            "mixed zero, one, r - 1, random",
            (0..n)
                .map(|i| match i % 4 {
                    0 => Fr::ZERO,
                    1 => Fr::ONE,
                    2 => minus_one,
                    _ => Fr::random(&mut r),
                })
                .collect(),
        ),
        (
            "small scalars (high windows empty)",
            (0..n).map(|i| Fr::from(i as u64)).collect(),
        ),
    ];
    for limbs in limb_widths() {
        let gpu = engine(
            &bases()[..n],
            MsmConfig {
                limbs: Some(limbs),
                ..MsmConfig::default()
            },
        );
        for (what, scalars) in &cases {
            assert_matches(&gpu, &cpu, scalars, what);
        }
    }
}

#[test]
fn gpu_msm_identity_repeated_and_opposite_bases() {
    let n = 600;
    let mut r = rng(12);
    let p = G1::random(&mut r).to_affine();
    let neg_p = (-p.to_curve()).to_affine();
    let cases: Vec<(&str, Vec<G1Affine>)> = vec![
        ("all identity", vec![G1Affine::identity(); n]),
        (
            "every third base the identity",
            (0..n)
                .map(|i| {
                    if i % 3 == 0 {
                        G1Affine::identity()
                    } else {
                        bases()[i]
                    }
                })
                .collect(),
        ),
        ("one base repeated (buckets double)", vec![p; n]),
        (
            "a base and its negation (buckets cancel)",
            (0..n).map(|i| if i % 2 == 0 { p } else { neg_p }).collect(),
        ),
    ];
    let scalar_sets = [
        ("equal scalars", vec![Fr::from(5); n]),
        ("random scalars", random_scalars(n, 13)),
    ];
    for limbs in limb_widths() {
        for (what, bs) in &cases {
            let cpu = CpuMsm::new(bs);
            let gpu = engine(
                bs,
                MsmConfig {
                    limbs: Some(limbs),
                    ..MsmConfig::default()
                },
            );
            for (s_what, scalars) in &scalar_sets {
                assert_matches(&gpu, &cpu, scalars, &format!("{what}, {s_what}"));
            }
        }
    }
}

#[test]
fn gpu_msm_every_window_width() {
    let n = 300;
    let cpu = CpuMsm::new(&bases()[..n]);
    let scalars = random_scalars(n, 14);
    for limbs in limb_widths() {
        for c in 4..=16 {
            let gpu = engine(
                &bases()[..n],
                MsmConfig {
                    limbs: Some(limbs),
                    window_bits: Some(c),
                    ..MsmConfig::default()
                },
            );
            assert_eq!(gpu.plan(n).window_bits, c);
            assert_matches(&gpu, &cpu, &scalars, &format!("{c}-bit windows"));
        }
    }
}

#[test]
fn gpu_msm_in_chunks_equals_one_pass() {
    let n = MAX_N;
    let cpu = CpuMsm::new(bases());
    let scalars = random_scalars(n, 15);
    for limbs in limb_widths() {
        let gpu = engine(
            bases(),
            MsmConfig {
                limbs: Some(limbs),
                max_chunk: Some(1000),
                ..MsmConfig::default()
            },
        );
        assert_eq!(gpu.chunk_len(), 1000);
        assert_matches(&gpu, &cpu, &scalars, "five chunks");
        // Fewer scalars than bases use a prefix of the resident bases, across a chunk border.
        assert_matches(&gpu, &cpu, &scalars[..1500], "prefix over two chunks");
    }
}

#[test]
fn gpu_msm_resident_bases_serve_repeated_calls() {
    let n = 777;
    let cpu = CpuMsm::new(&bases()[..n]);
    let gpu = engine(&bases()[..n], MsmConfig::default());
    for seed in 0..4 {
        assert_matches(&gpu, &cpu, &random_scalars(n, 100 + seed), "repeated call");
    }
    assert_eq!(gpu.msm(&[]).unwrap(), G1::identity());
}

#[test]
fn gpu_msm_refuses_more_scalars_than_bases() {
    let gpu = engine(&bases()[..4], MsmConfig::default());
    let err = gpu.msm(&random_scalars(5, 16)).unwrap_err();
    assert!(
        matches!(
            err,
            MsmError::TooManyScalars {
                scalars: 5,
                bases: 4
            }
        ),
        "{err}"
    );
}

#[test]
fn gpu_msm_limb_choice_follows_the_device() {
    let ctx = ctx();
    let gpu = engine(&bases()[..4], MsmConfig::default());
    let expected = if ctx.supports_int64() {
        Limbs::U32
    } else {
        Limbs::U16
    };
    assert_eq!(gpu.limbs(), expected);
    if !ctx.supports_int64() {
        let err = GpuMsm::new(
            ctx,
            &bases()[..4],
            MsmConfig {
                limbs: Some(Limbs::U32),
                ..MsmConfig::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, GpuError::NoInt64 { .. }), "{err}");
    }
}
