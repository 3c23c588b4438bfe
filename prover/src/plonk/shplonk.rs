//! The SHPLONK multi-opening (Boneh, Drake, Fisch, Gabizon), as halo2-axiom's `ProverSHPLONK`
//! writes it, with its two MSMs and every polynomial operation on a [`PolyTable`] (on the
//! device where the backend keeps polynomials, so only the two commitments come back).
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

use super::{
    polys::{powers, PolyId, PolyTable},
    witness::to_affine,
    PlonkError, Query,
};

struct Opened {
    poly: PolyId,
    points: Vec<Fr>,
}

struct RotationSet {
    points: Vec<Fr>,
    /// Each polynomial with the coefficients of `r`, its interpolation at the points.
    polys: Vec<(PolyId, Vec<Fr>)>,
}

fn same_points(a: &[Fr], b: &[Fr]) -> bool {
    let key = |p: &[Fr]| {
        let mut k: Vec<[u8; 32]> = p.iter().map(|x| x.to_repr()).collect();
        k.sort_unstable();
        k
    };
    a.len() == b.len() && key(a) == key(b)
}

/// `Σ_j y^j · r_j` over the polynomials' small `r_j`: the head a combination subtracts.
fn weighted_head(polys: &[(PolyId, Vec<Fr>)], y: Fr) -> Vec<Fr> {
    let len = polys.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let mut head = vec![Fr::ZERO; len];
    let mut w = Fr::ONE;
    for (_, r) in polys {
        for (h, r) in head.iter_mut().zip(r) {
            *h += w * r;
        }
        w *= y;
    }
    head
}

/// Writes the opening of `queries` (polynomials of `table`) into `transcript`.
pub(super) fn open<E, T>(
    table: &PolyTable<'_>,
    queries: &[Query],
    transcript: &mut T,
) -> Result<(), PlonkError>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    let y = *transcript.squeeze_challenge_scalar::<()>();

    let mut opened: Vec<Opened> = Vec::new();
    let mut super_points: Vec<Fr> = Vec::new();
    for q in queries {
        if !super_points.contains(&q.point) {
            super_points.push(q.point);
        }
        match opened.iter_mut().find(|o| o.poly == q.poly) {
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
    let mut grouped: Vec<(Vec<Fr>, Vec<PolyId>)> = Vec::new();
    for o in &opened {
        match grouped.iter_mut().find(|(p, _)| same_points(p, &o.points)) {
            Some((_, polys)) => polys.push(o.poly),
            None => grouped.push((o.points.clone(), vec![o.poly])),
        }
    }
    // every polynomial at each of its set's points, in one batch
    let at: Vec<(PolyId, Fr)> = grouped
        .iter()
        .flat_map(|(points, polys)| {
            polys
                .iter()
                .flat_map(move |&p| points.iter().map(move |&x| (p, x)))
        })
        .collect();
    let mut evals = table.evaluate(&at)?.into_iter();
    let sets: Vec<RotationSet> = grouped
        .into_iter()
        .map(|(points, polys)| {
            let polys = polys
                .into_iter()
                .map(|p| {
                    let values: Vec<Fr> = evals.by_ref().take(points.len()).collect();
                    (p, lagrange_interpolate(&points, &values))
                })
                .collect();
            RotationSet { points, polys }
        })
        .collect();

    // h(X) = Σ_i v^i · (Σ_j y^j (p_j(X) − r_j(X))) / Z_{S_i}(X)
    let v = *transcript.squeeze_challenge_scalar::<()>();
    let quotients: Vec<PolyId> = sets
        .par_iter()
        .map(|set| {
            let terms = powers(set.polys.iter().map(|(p, _)| *p), y);
            let numerator = table.combine(&terms, &weighted_head(&set.polys, y))?;
            let mut q = numerator;
            for &point in &set.points {
                let next = table.divide(q, point)?;
                table.free(q);
                q = next;
            }
            Ok(q)
        })
        .collect::<Result<Vec<_>, PlonkError>>()?;
    let h = table.combine(&powers(quotients.iter().copied(), v), &[])?;
    for q in quotients {
        table.free(q);
    }
    let point = table.commit(h)?;
    transcript.write_point(to_affine(&[point])[0])?;

    // L(X) = Σ_i v^i Z_{T∖S_i}(u) Σ_j y^j (p_j(X) − r_j(u)) − Z_T(u) h(X), then
    // (L(X) − L(u)) / (X − u) / Z_{T∖S_0}(u)
    let u = *transcript.squeeze_challenge_scalar::<()>();
    let mut terms: Vec<(PolyId, Fr)> = Vec::new();
    let mut constant = Fr::ZERO;
    let mut z0 = None;
    let mut vi = Fr::ONE;
    for set in &sets {
        let diffs: Vec<Fr> = super_points
            .iter()
            .filter(|p| !set.points.contains(p))
            .copied()
            .collect();
        let z_i = evaluate_vanishing_polynomial(&diffs, u);
        z0.get_or_insert(z_i);
        let mut w = vi * z_i;
        for (p, r) in &set.polys {
            terms.push((*p, w));
            constant += w * eval_polynomial(r, u);
            w *= y;
        }
        vi *= v;
    }
    let zt = evaluate_vanishing_polynomial(&super_points, u);
    terms.push((h, -zt));
    let l = table.combine(&terms, &[constant])?;
    table.free(h);
    let divided = table.divide(l, u)?;
    table.free(l);
    let z0_inv = z0
        .unwrap_or(Fr::ONE)
        .invert()
        .expect("u is not an opening point");
    let w = table.combine(&[(divided, z0_inv)], &[])?;
    table.free(divided);
    let point = table.commit(w)?;
    transcript.write_point(to_affine(&[point])[0])?;
    table.free(w);
    Ok(())
}
