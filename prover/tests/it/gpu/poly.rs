//! Polynomials in coefficient form on the device (`GpuPolys`) against halo2-axiom's host
//! arithmetic, exact equality: evaluation at a point, division by `X − b`, linear combinations
//! with a head subtracted, and the canonical words an MSM reads.

use std::sync::Arc;

use halo2_proofs::{
    arithmetic::{eval_polynomial, kate_division},
    halo2curves::{
        bn256::{Fr, G1Affine, G1},
        ff::Field,
        group::{Curve, Group},
    },
};
use keel_prover::gpu::{CpuMsm, GpuMsm, GpuNtt, GpuPolys, GpuQuotient, Msm, MsmConfig};

use super::{ctx, limb_widths, rng};

fn random(n: usize, seed: u64) -> Vec<Fr> {
    let mut r = rng(seed);
    (0..n).map(|_| Fr::random(&mut r)).collect()
}

#[test]
fn polynomials_on_the_device_evaluate_divide_and_combine_as_the_host_does() {
    for limbs in limb_widths() {
        let ntt = Arc::new(GpuNtt::new(ctx(), limbs).unwrap());
        let polys = GpuPolys::new(ctx(), limbs, ntt).unwrap();
        // one run, several runs of one, and runs of several coefficients (4096 > the most runs)
        for log_n in [0u32, 1, 6, 12] {
            let n = 1usize << log_n;
            let a = random(n, 30 + u64::from(log_n));
            let b = random(n, 40 + u64::from(log_n));
            let mut points = random(3, 50);
            points.push(Fr::ZERO);
            points.push(Fr::ONE);
            let pa = polys.upload(&a).unwrap();
            let pb = polys.upload(&b).unwrap();
            assert_eq!(polys.read(&pa).unwrap(), a);

            let at: Vec<_> = points.iter().flat_map(|&x| [(&pa, x), (&pb, x)]).collect();
            let expected: Vec<Fr> = at
                .iter()
                .map(|(p, x)| eval_polynomial(if std::ptr::eq(*p, &pa) { &a } else { &b }, *x))
                .collect();
            assert_eq!(polys.evaluate(&at).unwrap(), expected, "{limbs}, n = {n}");

            for &x in &points {
                let mut q = kate_division(&a, x);
                q.resize(n, Fr::ZERO);
                let d = polys.divide(&pa, x).unwrap();
                assert_eq!(
                    polys.read(&d).unwrap(),
                    q,
                    "{limbs}, n = {n}: a / (X − {x:?})"
                );
            }

            let (c0, c1) = (Fr::from(3), -Fr::from(7));
            let head: Vec<Fr> = random(n.min(3), 60);
            let mut combined: Vec<Fr> = a.iter().zip(&b).map(|(x, y)| c0 * x + c1 * y).collect();
            for (c, h) in combined.iter_mut().zip(&head) {
                *c -= h;
            }
            let c = polys.combine(&[(&pa, c0), (&pb, c1)], &head, n).unwrap();
            assert_eq!(
                polys.read(&c).unwrap(),
                combined,
                "{limbs}, n = {n}: combination"
            );
        }

        // the MSM over a polynomial's canonical words, and a column of a kept buffer read in
        // place
        let n = 256;
        let a = random(n, 70);
        let mut r = rng(71);
        let projective: Vec<G1> = (0..n).map(|_| G1::random(&mut r)).collect();
        let mut bases = vec![G1Affine::default(); n];
        G1::batch_normalize(&projective, &mut bases);
        let msm = GpuMsm::new(
            ctx(),
            &bases,
            MsmConfig {
                limbs: Some(limbs),
                ..MsmConfig::default()
            },
        )
        .unwrap();
        let q = GpuQuotient::new(ctx(), limbs).unwrap();
        let other = random(n, 72);
        let kept = q.upload(&[&other, &a], n).unwrap();
        assert!(kept.column(2).is_none());
        let column = kept.column(1).unwrap();
        assert_eq!(polys.read(&column).unwrap(), a);
        let words = polys.scalars(&column).unwrap();
        let point = msm.msm_on_device(&words, n).unwrap().unwrap();
        assert_eq!(
            point.to_affine(),
            CpuMsm::new(&bases).msm(&a).unwrap().to_affine(),
            "{limbs}: the MSM over a kept column"
        );
        let x = Fr::from(5);
        assert_eq!(
            polys.evaluate(&[(&column, x)]).unwrap(),
            vec![eval_polynomial(&a, x)]
        );
    }
}
