use halo2_proofs::halo2curves::{
    bn256::{Fq, G1Affine, G1},
    ff::Field,
    group::{prime::PrimeCurveAffine, Curve, Group},
};
use keel_prover::gpu::diag;

use super::{ctx, limb_widths, rng};

#[test]
fn gpu_g1_addition_and_doubling_match_halo2curves() {
    let mut r = rng(3);
    let p = G1::random(&mut r).to_affine();
    let q = G1::random(&mut r).to_affine();
    let id = G1Affine::identity();
    let neg = |a: G1Affine| (-a.to_curve()).to_affine();
    // Each exceptional case of the formulas: equal points (the addition doubles), opposite
    // points (the identity), the identity on either side.
    let mut cases = vec![
        (p, q),
        (p, p),
        (p, neg(p)),
        (id, p),
        (p, id),
        (id, id),
        ((p + p).to_affine(), p),
        (G1Affine::generator(), G1Affine::generator()),
    ];
    for _ in 0..56 {
        cases.push((
            G1::random(&mut r).to_affine(),
            G1::random(&mut r).to_affine(),
        ));
    }
    // Different scalings of p and q, so equal points reach the kernels in different XYZZ
    // representations; one case with the trivial scaling.
    let mut zs: Vec<(Fq, Fq)> = (0..cases.len())
        .map(|_| (Fq::random(&mut r), Fq::random(&mut r)))
        .collect();
    zs[0] = (Fq::ONE, Fq::ONE);
    for limbs in limb_widths() {
        let got = diag::g1_ops(&ctx(), limbs, &cases, &zs).unwrap();
        for ((p, q), out) in cases.iter().zip(got) {
            assert_eq!(out, [p + q, p + q], "{limbs:?}: p = {p:?}, q = {q:?}");
        }
    }
}
