use halo2_proofs::halo2curves::{
    bn256::{Fq, Fr},
    ff::PrimeField,
};
use keel_prover::gpu::diag;

use super::{ctx, limb_widths, rng};

/// Zero, one, two, modulus − 1, modulus − 2, a value with every limb full below the modulus'
/// top, and random values; every ordered pair of the specials, then random pairs.
fn cases<F: PrimeField>(seed: u64) -> Vec<(F, F)> {
    let mut r = rng(seed);
    let specials = [
        F::ZERO,
        F::ONE,
        F::from(2),
        -F::ONE,
        -F::from(2),
        F::from(u64::MAX),
        F::from(u64::MAX).square(),
        F::random(&mut r),
    ];
    let mut out: Vec<(F, F)> = specials
        .iter()
        .flat_map(|a| specials.iter().map(move |b| (*a, *b)))
        .collect();
    out.extend((0..200).map(|_| (F::random(&mut r), F::random(&mut r))));
    out
}

#[test]
fn gpu_fq_arithmetic_matches_halo2curves() {
    let pairs = cases::<Fq>(1);
    for limbs in limb_widths() {
        let got = diag::fq_ops(&ctx(), limbs, &pairs).unwrap();
        for ((a, b), out) in pairs.iter().zip(got) {
            assert_eq!(
                out,
                [a * b, a + b, a - b, -a],
                "{limbs:?}: a = {a:?}, b = {b:?}"
            );
        }
    }
}

#[test]
fn gpu_fr_arithmetic_matches_halo2curves() {
    let pairs = cases::<Fr>(2);
    for limbs in limb_widths() {
        let got = diag::fr_ops(&ctx(), limbs, &pairs).unwrap();
        for ((a, b), out) in pairs.iter().zip(got) {
            assert_eq!(
                out,
                [a * b, a + b, a - b, -a],
                "{limbs:?}: a = {a:?}, b = {b:?}"
            );
        }
    }
}
