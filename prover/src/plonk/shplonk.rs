//! The SHPLONK multi-opening (Boneh, Drake, Fisch, Gabizon), as halo2-axiom's `ProverSHPLONK`
//! writes it, with its two MSMs and every polynomial operation on the [`Backend`].
//!
//! Queries are grouped as halo2's verifier groups them: polynomials by identity (address) in
//! order of first query, each with the set of points it is opened at; polynomials with equal
//! point sets form one rotation set, in order of first appearance. Then
//! `h(X) = Σ_i v^i · (Σ_j y^j (p_j(X) − r_j(X))) / Z_{S_i}(X)` is committed, and after `u`,
//! `(L(X) − L(u)) / (X − u) / Z_{T∖S_0}(u)` with
//! `L(X) = Σ_i v^i Z_{T∖S_i}(u) Σ_j y^j (p_j(X) − r_j(u)) − Z_T(u) h(X)`.

use halo2_proofs::{
    arithmetic::{eval_polynomial, evaluate_vanishing_polynomial, lagrange_interpolate},
    halo2curves::{
        bn256::{Fr, G1Affine},
        ff::{Field, PrimeField},
    },
    transcript::{EncodedChallenge, TranscriptWrite},
};
use rayon::prelude::*;

use super::{backend::Basis, witness::to_affine, Backend, PlonkError, Query};

struct Opened<'a> {
    poly: &'a [Fr],
    points: Vec<Fr>,
}

struct RotationSet<'a> {
    points: Vec<Fr>,
    polys: Vec<(&'a [Fr], Vec<Fr>)>,
}

fn same_points(a: &[Fr], b: &[Fr]) -> bool {
    let key = |p: &[Fr]| {
        let mut k: Vec<[u8; 32]> = p.iter().map(|x| x.to_repr()).collect();
        k.sort_unstable();
        k
    };
    a.len() == b.len() && key(a) == key(b)
}

/// Writes the opening of `queries` (polynomials of at most `n` coefficients) into `transcript`.
pub(super) fn open<E, T>(
    backend: &dyn Backend,
    n: usize,
    queries: &[Query<'_>],
    transcript: &mut T,
) -> Result<(), PlonkError>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    let y = *transcript.squeeze_challenge_scalar::<()>();

    let mut opened: Vec<Opened<'_>> = Vec::new();
    let mut super_points: Vec<Fr> = Vec::new();
    for q in queries {
        if !super_points.contains(&q.point) {
            super_points.push(q.point);
        }
        match opened.iter_mut().find(|o| std::ptr::eq(o.poly, q.poly)) {
            Some(o) => {
                if !o.points.contains(&q.point) {
                    o.points.push(q.point);
                }
            }
            None => opened.push(Opened {
                poly: q.poly,
                points: vec![q.point],
            }),
        }
    }
    let mut grouped: Vec<(Vec<Fr>, Vec<&[Fr]>)> = Vec::new();
    for o in &opened {
        match grouped.iter_mut().find(|(p, _)| same_points(p, &o.points)) {
            Some((_, polys)) => polys.push(o.poly),
            None => grouped.push((o.points.clone(), vec![o.poly])),
        }
    }
    let sets: Vec<RotationSet<'_>> = grouped
        .into_par_iter()
        .map(|(points, polys)| {
            let polys = polys
                .into_par_iter()
                .map(|p| {
                    let evals: Vec<Fr> = points.iter().map(|&x| backend.evaluate(p, x)).collect();
                    (p, lagrange_interpolate(&points, &evals))
                })
                .collect();
            RotationSet { points, polys }
        })
        .collect();

    let v = *transcript.squeeze_challenge_scalar::<()>();
    let quotients: Vec<Vec<Fr>> = sets
        .par_iter()
        .map(|set| {
            let mut numerator = vec![Fr::ZERO; n];
            for (p, r) in set.polys.iter().rev() {
                let mut term = p.to_vec();
                term.resize(n, Fr::ZERO);
                for (t, r) in term.iter_mut().zip(r) {
                    *t -= r;
                }
                backend.scale_add(&mut numerator, y, &term);
            }
            let mut q = numerator;
            for &point in &set.points {
                q = backend.kate_division(&q, point);
            }
            q.resize(n, Fr::ZERO);
            q
        })
        .collect();
    let mut h = vec![Fr::ZERO; n];
    for q in quotients.iter().rev() {
        backend.scale_add(&mut h, v, q);
    }
    let point = backend.msm(Basis::Monomial, &h)?;
    transcript.write_point(to_affine(&[point])[0])?;

    let u = *transcript.squeeze_challenge_scalar::<()>();
    let (contributions, z_diffs): (Vec<Vec<Fr>>, Vec<Fr>) = sets
        .par_iter()
        .map(|set| {
            let diffs: Vec<Fr> = super_points
                .iter()
                .filter(|p| !set.points.contains(p))
                .copied()
                .collect();
            let z_i = evaluate_vanishing_polynomial(&diffs, u);
            let mut l = vec![Fr::ZERO; n];
            for (p, r) in set.polys.iter().rev() {
                let mut term = p.to_vec();
                term.resize(n, Fr::ZERO);
                term[0] -= eval_polynomial(r, u);
                backend.scale_add(&mut l, y, &term);
            }
            backend.scale(&mut l, z_i);
            (l, z_i)
        })
        .unzip();
    let mut l = vec![Fr::ZERO; n];
    for c in contributions.iter().rev() {
        backend.scale_add(&mut l, v, c);
    }
    let zt = evaluate_vanishing_polynomial(&super_points, u);
    let mut minus_h = h;
    backend.scale(&mut minus_h, -zt);
    backend.scale_add(&mut l, Fr::ONE, &minus_h);
    let mut w = backend.kate_division(&l, u);
    let z0_inv = z_diffs[0].invert().expect("u is not an opening point");
    backend.scale(&mut w, z0_inv);
    let point = backend.msm(Basis::Monomial, &w)?;
    transcript.write_point(to_affine(&[point])[0])?;
    Ok(())
}
