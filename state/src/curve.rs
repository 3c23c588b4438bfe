//! Variable-time multi-scalar multiplication on Grumpkin, for signature verification.
//!
//! halo2curves' `G1 * Scalar` is constant-time double-and-add: 256 doublings and 256 additions
//! per product. Verification handles only public values, so it may branch on them:
//! [`multi_mul_vartime`] computes `g·G + Σ kᵢ·Pᵢ` by Straus' method, one shared chain of
//! doublings adding precomputed odd multiples at the non-zero digits of each scalar's width-`w`
//! NAF (about one digit in `w + 1`).
//!
//! Every scalar is first split with Grumpkin's endomorphism (GLV): `k = k₁ + k₂·ζ` with
//! `|k₁|, |k₂| < 2^128` and `ζ·P = (β·x, y)`, so the chain has ~128 doublings instead of ~254,
//! and the table of `ζ·P` costs one field multiplication per entry. The generator's tables are
//! built once with a wider window, and a scalar that is already short (a batch's 128-bit weight)
//! goes in whole. In a batch a signature costs three chains (about 26 + 2 × 21 mixed additions)
//! and two small tables, whatever the group's size (the doublings are shared): about 57 µs of
//! curve work on the benchmark VM at any size from 8 to 128, against 92 µs (24) down to 52 µs
//! (128) for halo2curves' Pippenger sum (`stf/verify` in BENCHMARKS.md).
//!
//! The chain's accumulator is a [`Jacobian`] point with `a = 0` formulas (11 multiplications a
//! mixed addition, 7 a doubling, against 13 and 9 for halo2curves' complete ones): the same
//! 24-signature sum took 1.15–1.19× less time with it than with halo2curves' points
//! (medians of 40 interleaved pairs, three runs, 2026-12-02). The tables are still built with
//! halo2curves' points and normalised with its shared inversion.
//!
//! Never use this with secret scalars: its timing depends on them.

use std::sync::LazyLock;

use halo2_proofs::halo2curves::{
    ff::{Field, PrimeField, WithSmallOrderMulGroup},
    group::{prime::PrimeCurveAffine, Curve, Group},
    grumpkin::{Fr as Scalar, G1Affine, G1},
};

use crate::field::Fr;

/// Window of the variable bases' NAFs (8 precomputed points each).
const W_VAR: u32 = 5;
/// Window of a short (128-bit) scalar's NAF (4 precomputed points).
const W_SHORT: u32 = 4;
/// Window of the generator's NAFs (32 precomputed points each, built once).
const W_GEN: u32 = 7;

/// `[1·P, 3·P, 5·P, …, (2^(w−1) − 1)·P]` in affine form.
fn odd_multiples(p: &G1, w: u32) -> Vec<G1Affine> {
    let mut proj = Vec::with_capacity(1 << (w - 2));
    push_odd_multiples(&mut proj, p, w);
    let mut out = vec![G1Affine::identity(); proj.len()];
    G1::batch_normalize(&proj, &mut out);
    out
}

/// Appends `[1·P, 3·P, …, (2^(w−1) − 1)·P]` in projective form.
fn push_odd_multiples(out: &mut Vec<G1>, p: &G1, w: u32) {
    let twice = p.double();
    let mut cur = *p;
    out.push(cur);
    for _ in 1..1usize << (w - 2) {
        cur += twice;
        out.push(cur);
    }
}

/// The generator's odd multiples and those of `ζ·G`.
static GENERATOR_TABLES: LazyLock<[Vec<G1Affine>; 2]> = LazyLock::new(|| {
    let table = odd_multiples(&G1::generator(), W_GEN);
    let endo = table.iter().map(endo).collect();
    [table, endo]
});

/// `ζ·P`: Grumpkin's endomorphism `(x, y) ↦ (β·x, y)`, with `β` a cube root of unity in `Fr`.
fn endo(p: &G1Affine) -> G1Affine {
    G1Affine {
        x: p.x * Fr::ZETA,
        y: p.y,
    }
}

/// The short lattice basis of GLV for Grumpkin's scalar field `n` and `λ = ζ`: the vectors
/// `(a₁, b₁) = (A1, −B1)` and `(a₂, b₂) = (B1, B2)` both satisfy `a + b·λ ≡ 0 (mod n)` (the
/// extended Euclidean algorithm on `(n, λ)`, stopped at `√n`; checked by a unit test).
#[cfg(test)]
const A1: u128 = 0x6f4d8248eeb859fc8211bbeb7d4f1129;
const B1: u128 = 0x89d3256894d213e2;
const B2: u128 = 0x6f4d8248eeb859fd0be4e1541221250b;
/// `round(2²⁵⁶·b₂/n)` and `round(2²⁵⁶·(−b₁)/n)`, little-endian limbs: `cᵢ = ⌊k·gᵢ / 2²⁵⁶⌋`
/// approximates the rounded coordinates of `k` in the basis.
const G1_LIMBS: [u64; 3] = [0x5398fd0300ff6560, 0x4ccef014a773d2d2, 0x2];
const G2_LIMBS: [u64; 2] = [0xd91d232ec7e0b3d2, 0x2];

/// `⌊k·g / 2²⁵⁶⌋` for a scalar's limbs `k` (the fifth is zero) and a `g` of at most 192 bits;
/// the result fits 128 bits.
fn mul_shift_256(k: &[u64; 5], g: &[u64]) -> u128 {
    let mut prod = [0u64; 8];
    for (i, &ki) in k[..4].iter().enumerate() {
        let mut carry = 0u128;
        for (j, &gj) in g.iter().enumerate() {
            let t = u128::from(ki) * u128::from(gj) + u128::from(prod[i + j]) + carry;
            prod[i + j] = t as u64;
            carry = t >> 64;
        }
        prod[i + g.len()] = carry as u64;
    }
    debug_assert!(prod[6] == 0 && prod[7] == 0, "k < 2^254 and g < 2^131");
    u128::from(prod[4]) | (u128::from(prod[5]) << 64)
}

/// A field element as a signed magnitude `(|v|, v < 0)`, if `v` or `−v` is below 2^128.
fn signed_u128(v: Scalar) -> Option<(u128, bool)> {
    let short = |x: Scalar| {
        let repr = x.to_repr();
        let (low, high) = repr.split_at(16);
        high.iter()
            .all(|&b| b == 0)
            .then(|| u128::from_le_bytes(low.try_into().expect("16 bytes")))
    };
    short(v)
        .map(|m| (m, false))
        .or_else(|| short(-v).map(|m| (m, true)))
}

/// `k = s₁·k₁ + s₂·k₂·ζ` with 128-bit magnitudes `k₁, k₂` (in practice under 2^127) and signs
/// `sᵢ` (`true`: negative), or `None` if a half came out longer (never seen; then `k` is used
/// whole). `k₂` is the rounded projection of `k` on the basis and `k₁ = k − k₂·ζ`, so the
/// halves reconstruct `k` by construction.
fn split(k: &Scalar) -> Option<[(u128, bool); 2]> {
    let limbs = limbs_scalar(k);
    let c1 = Scalar::from_u128(mul_shift_256(&limbs, &G1_LIMBS));
    let c2 = Scalar::from_u128(mul_shift_256(&limbs, &G2_LIMBS));
    // (k₁, k₂) = (k, 0) − c₁·(a₁, b₁) − c₂·(a₂, b₂), with b₁ = −B1
    let k2 = c1 * Scalar::from_u128(B1) - c2 * Scalar::from_u128(B2);
    let k1 = *k - k2 * Scalar::ZETA;
    Some([signed_u128(k1)?, signed_u128(k2)?])
}

/// A 128-bit magnitude as the limbs [`wnaf`] reads.
fn limbs_u128(m: u128) -> [u64; 5] {
    [m as u64, (m >> 64) as u64, 0, 0, 0]
}

/// A scalar's canonical integer as the limbs [`wnaf`] reads.
fn limbs_scalar(k: &Scalar) -> [u64; 5] {
    let repr = k.to_repr();
    let mut limbs = [0u64; 5];
    for (i, chunk) in repr.chunks_exact(8).enumerate() {
        limbs[i] = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    limbs
}

/// The width-`w` non-adjacent form of `k`, least significant digit first: every non-zero digit
/// is odd, below `2^(w−1)` in magnitude, and followed by at least `w − 1` zeros.
///
/// The integer comes as five little-endian limbs: up to 256 bits plus room for the carries of
/// negative digits.
fn wnaf(mut limbs: [u64; 5], w: u32) -> Vec<i8> {
    let window = 1u64 << w;
    let mut digits = Vec::with_capacity(257);
    while limbs.iter().any(|&l| l != 0) {
        let digit = if limbs[0] & 1 == 1 {
            let m = limbs[0] & (window - 1);
            if m >= window / 2 {
                // digit m − 2^w < 0: k −= digit, i.e. add 2^w − m
                add_small(&mut limbs, window - m);
                (m as i64 - window as i64) as i8
            } else {
                limbs[0] -= m;
                m as i8
            }
        } else {
            0
        };
        digits.push(digit);
        shr1(&mut limbs);
    }
    digits
}

fn add_small(limbs: &mut [u64; 5], v: u64) {
    let mut carry = v;
    for l in limbs.iter_mut() {
        let (s, c) = l.overflowing_add(carry);
        *l = s;
        if !c {
            return;
        }
        carry = 1;
    }
}

fn shr1(limbs: &mut [u64; 5]) {
    for i in 0..5 {
        let hi = if i + 1 < 5 { limbs[i + 1] << 63 } else { 0 };
        limbs[i] = (limbs[i] >> 1) | hi;
    }
}

/// One NAF of a Straus chain: its digits (least significant first), the odd multiples they
/// index, and whether they are negated.
struct Chain<'a> {
    digits: Vec<i8>,
    table: &'a [G1Affine],
    neg: bool,
}

/// `g·G + Σ kᵢ·Pᵢ` (with `G` Grumpkin's generator) in variable time. No `Pᵢ` may be the identity.
pub(crate) fn multi_mul_vartime(g: &Scalar, terms: &[(Scalar, G1Affine)]) -> G1 {
    multi_mul_with(g, terms, split)
}

/// [`multi_mul_vartime`] with the scalar split as a parameter (tests force the whole-scalar path).
fn multi_mul_with(
    g: &Scalar,
    terms: &[(Scalar, G1Affine)],
    split: impl Fn(&Scalar) -> Option<[(u128, bool); 2]>,
) -> G1 {
    let plans: Vec<Plan> = terms.iter().map(|(k, _)| Plan::of(k, &split)).collect();
    // every base's odd multiples, brought to affine form with one shared inversion
    let mut proj = Vec::with_capacity(terms.len() << (W_VAR - 2));
    for ((_, p), plan) in terms.iter().zip(&plans) {
        debug_assert!(!bool::from(p.is_identity()), "a base is the identity");
        push_odd_multiples(&mut proj, &G1::from(*p), plan.window());
    }
    let mut tables = vec![G1Affine::identity(); proj.len()];
    G1::batch_normalize(&proj, &mut tables);
    let mut rest = &tables[..];
    let tables: Vec<&[G1Affine]> = plans
        .iter()
        .map(|plan| {
            let (mine, others) = rest.split_at(1 << (plan.window() - 2));
            rest = others;
            mine
        })
        .collect();
    let endo_tables: Vec<Vec<G1Affine>> = plans
        .iter()
        .zip(&tables)
        .map(|(plan, t)| match plan {
            Plan::Split([_, (k2, _)]) if *k2 != 0 => t.iter().map(endo).collect(),
            _ => Vec::new(),
        })
        .collect();

    let mut chains = Vec::with_capacity(2 * terms.len() + 2);
    let gen = &*GENERATOR_TABLES;
    Plan::of(g, &split).push_chains(g, W_GEN, [&gen[0], &gen[1]], &mut chains);
    for (((k, _), plan), (table, endo_table)) in terms
        .iter()
        .zip(&plans)
        .zip(tables.iter().zip(&endo_tables))
    {
        plan.push_chains(k, plan.window(), [table, endo_table], &mut chains);
    }

    let len = chains.iter().map(|c| c.digits.len()).max().unwrap_or(0);
    let mut acc = Jacobian::IDENTITY;
    for i in (0..len).rev() {
        acc = acc.double();
        for c in &chains {
            let Some(&d) = c.digits.get(i) else { continue };
            if d == 0 {
                continue;
            }
            let p = &c.table[usize::from(d.unsigned_abs() / 2)];
            acc = acc.add_affine(p, (d < 0) != c.neg);
        }
    }
    acc.to_projective()
}

/// A point in Jacobian coordinates, `(x, y) = (X/Z², Y/Z³)`, `Z = 0` for the identity: the
/// chain's accumulator. halo2curves' points use complete formulas (homogeneous coordinates, a
/// multiplication by `3b` in each, constant-time selects) that cost 13 multiplications a mixed
/// addition and 9 a doubling; for `a = 0` the Jacobian formulas below cost 11 and 7. They are not
/// complete: the equal and opposite operands and the identity are caught by branches, which is
/// why they are only for public values.
#[derive(Clone, Copy, Debug)]
struct Jacobian {
    x: Fr,
    y: Fr,
    z: Fr,
}

impl Jacobian {
    const IDENTITY: Self = Self {
        x: Fr::ONE,
        y: Fr::ONE,
        z: Fr::ZERO,
    };

    fn is_identity(&self) -> bool {
        bool::from(self.z.is_zero())
    }

    /// `2·self` ("dbl-2009-l" for `a = 0`, with `D = 4·X·Y²`). A point with `Y = 0` would have
    /// order 2, which Grumpkin (prime order) has none of; `Z = 0` stays the identity.
    fn double(&self) -> Self {
        if self.is_identity() {
            return *self;
        }
        let a = self.x.square();
        let b = self.y.square();
        let c = b.square();
        let d = (self.x * b).double().double();
        let e = a.double() + a;
        let f = e.square();
        let x = f - d.double();
        let y = e * (d - x) - c.double().double().double();
        let z = (self.y * self.z).double();
        Self { x, y, z }
    }

    /// `self ± p` for an affine `p` that is not the identity (minus when `negate`), by
    /// "madd-2007-bl" with `Z₃ = 2·Z₁·H`. Equal operands are doubled, opposite ones give the
    /// identity.
    fn add_affine(&self, p: &G1Affine, negate: bool) -> Self {
        let py = if negate { -p.y } else { p.y };
        if self.is_identity() {
            return Self {
                x: p.x,
                y: py,
                z: Fr::ONE,
            };
        }
        let z1z1 = self.z.square();
        let u2 = p.x * z1z1;
        let s2 = py * self.z * z1z1;
        let h = u2 - self.x;
        let r = (s2 - self.y).double();
        if bool::from(h.is_zero()) {
            return if bool::from(r.is_zero()) {
                self.double()
            } else {
                Self::IDENTITY
            };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h * i;
        let v = self.x * i;
        let x = r.square() - j - v.double();
        let y = r * (v - x) - (self.y * j).double();
        let z = (self.z * h).double();
        Self { x, y, z }
    }

    /// The same point in halo2curves' homogeneous coordinates: `(X·Z, Y, Z³)`.
    fn to_projective(self) -> G1 {
        if self.is_identity() {
            return G1::identity();
        }
        G1 {
            x: self.x * self.z,
            y: self.y,
            z: self.z.square() * self.z,
        }
    }
}

/// How one scalar enters the chain.
enum Plan {
    /// It, or its negation, is below 2^128 (a batch's weight): one chain as it is.
    Short(u128, bool),
    /// Split by the endomorphism: two 128-bit chains over one table.
    Split([(u128, bool); 2]),
    /// Neither (a split that failed, never seen): one 254-bit chain.
    Whole,
}

impl Plan {
    fn of(k: &Scalar, split: &impl Fn(&Scalar) -> Option<[(u128, bool); 2]>) -> Self {
        if let Some((m, neg)) = signed_u128(*k) {
            return Self::Short(m, neg);
        }
        split(k).map_or(Self::Whole, Self::Split)
    }

    /// The chains of `k` (planned as `self`) at window `w`: `tables` are the odd multiples of
    /// its base and of the base's endomorphism image (used by the second half of a split).
    fn push_chains<'a>(
        &self,
        k: &Scalar,
        w: u32,
        [table, endo_table]: [&'a [G1Affine]; 2],
        chains: &mut Vec<Chain<'a>>,
    ) {
        match self {
            Self::Short(m, neg) => chains.push(Chain::new(limbs_u128(*m), w, table, *neg)),
            Self::Split([(k1, neg1), (k2, neg2)]) => {
                chains.push(Chain::new(limbs_u128(*k1), w, table, *neg1));
                chains.push(Chain::new(limbs_u128(*k2), w, endo_table, *neg2));
            }
            Self::Whole => chains.push(Chain::new(limbs_scalar(k), w, table, false)),
        }
    }

    /// The NAF window: a short scalar's one chain pays less for a smaller table; a split
    /// scalar's two chains share a larger one.
    fn window(&self) -> u32 {
        match self {
            Self::Short(..) => W_SHORT,
            _ => W_VAR,
        }
    }
}

impl<'a> Chain<'a> {
    fn new(limbs: [u64; 5], w: u32, table: &'a [G1Affine], neg: bool) -> Self {
        Self {
            digits: wnaf(limbs, w),
            table,
            neg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::{ff::Field, CurveAffine};
    use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

    fn naf_value(d: &[i8]) -> Scalar {
        d.iter().rev().fold(Scalar::ZERO, |acc, &x| {
            let x = if x < 0 {
                -Scalar::from(u64::from(x.unsigned_abs()))
            } else {
                Scalar::from(x as u64)
            };
            acc.double() + x
        })
    }

    #[test]
    fn wnaf_digits_reconstruct_and_are_sparse() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let edge = [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(15),
            Scalar::from(16),
            -Scalar::from(2),
            Scalar::from_u128(u128::MAX),
        ];
        let randoms: Vec<Scalar> = (0..200).map(|_| Scalar::random(&mut rng)).collect();
        for k in edge.iter().chain(&randoms) {
            let low = u128::from_le_bytes(k.to_repr()[..16].try_into().unwrap());
            for (limbs, value) in [
                (limbs_scalar(k), *k),
                (limbs_u128(low), Scalar::from_u128(low)),
            ] {
                for w in [W_SHORT, W_VAR, W_GEN] {
                    let d = wnaf(limbs, w);
                    assert_eq!(naf_value(&d), value);
                    for (i, &x) in d.iter().enumerate() {
                        if x != 0 {
                            assert!(x % 2 != 0 && i32::from(x).abs() < 1 << (w - 1));
                            assert!(
                                d[i + 1..].iter().take(w as usize - 1).all(|&y| y == 0),
                                "not a NAF"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_endomorphism_is_multiplication_by_zeta() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..8 {
            let p = (G1::generator() * Scalar::random(&mut rng)).to_affine();
            assert_eq!(G1::from(endo(&p)), p * Scalar::ZETA);
            assert!(bool::from(endo(&p).is_on_curve()));
        }
    }

    #[test]
    fn the_lattice_basis_is_in_the_kernel() {
        // a + b·ζ ≡ 0 for (A1, −B1) and (B1, B2)
        let z = Scalar::ZETA;
        assert_eq!(
            Scalar::from_u128(A1) - Scalar::from_u128(B1) * z,
            Scalar::ZERO
        );
        assert_eq!(
            Scalar::from_u128(B1) + Scalar::from_u128(B2) * z,
            Scalar::ZERO
        );
    }

    #[test]
    fn the_split_reconstructs_every_scalar_in_two_halves() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let edge = [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::ZETA,
            -Scalar::ZETA,
            Scalar::from_u128(u128::MAX),
            -Scalar::from_u128(u128::MAX),
        ];
        let randoms: Vec<Scalar> = (0..10_000).map(|_| Scalar::random(&mut rng)).collect();
        for k in edge.iter().chain(&randoms) {
            let parts = split(k).unwrap_or_else(|| panic!("{k:?} did not split"));
            let value = |(m, neg): (u128, bool)| {
                let v = Scalar::from_u128(m);
                if neg {
                    -v
                } else {
                    v
                }
            };
            assert_eq!(value(parts[0]) + value(parts[1]) * Scalar::ZETA, *k);
            // and each half is short: at most 128 bits, in practice 127
            assert!(parts.iter().all(|(m, _)| *m < 1 << 127), "{k:?}: {parts:?}");
        }
    }

    #[test]
    fn jacobian_arithmetic_matches_halo2curves() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let gen = G1::generator();
        let point = |rng: &mut ChaCha20Rng| (gen * Scalar::random(rng)).to_affine();
        // a long walk of additions, subtractions and doublings
        let (mut acc, mut want) = (Jacobian::IDENTITY, G1::identity());
        for i in 0..300 {
            let p = point(&mut rng);
            let negate = i % 3 == 0;
            acc = acc.add_affine(&p, negate);
            want = if negate { want - p } else { want + p };
            if i % 7 == 0 {
                acc = acc.double();
                want = want.double();
            }
            assert_eq!(acc.to_projective(), want, "step {i}");
            assert!(bool::from(acc.to_projective().to_affine().is_on_curve()));
        }
        // the exceptional operands, with the accumulator normalised (Z = 1) and not
        let p = point(&mut rng);
        let fresh = Jacobian::IDENTITY.add_affine(&p, false);
        let worn = fresh.double().add_affine(&p, true); // p again, with Z ≠ 1
        assert!(!bool::from((worn.z - Fr::ONE).is_zero()));
        for q in [fresh, worn] {
            assert_eq!(q.to_projective(), G1::from(p));
            assert_eq!(
                q.add_affine(&p, false).to_projective(),
                G1::from(p).double()
            );
            assert!(q.add_affine(&p, true).is_identity());
            assert_eq!(
                q.add_affine(&-p, true).to_projective(),
                G1::from(p).double()
            );
        }
        assert!(Jacobian::IDENTITY.double().is_identity());
        assert_eq!(Jacobian::IDENTITY.to_projective(), G1::identity());
        assert_eq!(
            Jacobian::IDENTITY.add_affine(&p, true).to_projective(),
            -G1::from(p)
        );
    }

    /// `g·G + Σ kᵢ·Pᵢ` with halo2curves' constant-time products.
    fn reference(g: &Scalar, terms: &[(Scalar, G1Affine)]) -> G1 {
        terms
            .iter()
            .fold(G1::generator() * g, |acc, (k, p)| acc + *p * k)
    }

    #[test]
    fn multi_mul_matches_constant_time_products() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let gen = G1::generator();
        let edge = [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(2),
            Scalar::ZETA,
            Scalar::from_u128(u128::MAX),
            -Scalar::from_u128(1 << 127),
        ];
        let point = |rng: &mut ChaCha20Rng| (gen * Scalar::random(rng)).to_affine();
        for n in 0..6 {
            for round in 0..8 {
                let g = if round < edge.len() {
                    edge[round]
                } else {
                    Scalar::random(&mut rng)
                };
                let terms: Vec<(Scalar, G1Affine)> = (0..n)
                    .map(|i| {
                        let k = if round < 2 {
                            edge[(i + round) % edge.len()]
                        } else {
                            Scalar::random(&mut rng)
                        };
                        (k, point(&mut rng))
                    })
                    .collect();
                let want = reference(&g, &terms);
                assert_eq!(multi_mul_vartime(&g, &terms), want, "n {n} round {round}");
                // the whole-scalar path, taken if a split ever failed to reconstruct
                assert_eq!(multi_mul_with(&g, &terms, |_| None), want);
            }
        }
        // a base twice, a base and its negation, the generator itself as a base: still exact
        let p = point(&mut rng);
        let (a, b) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
        assert_eq!(
            multi_mul_vartime(&Scalar::ZERO, &[(a, p), (b, p)]),
            G1::from(p) * (a + b)
        );
        assert_eq!(
            multi_mul_vartime(&Scalar::ZERO, &[(a, p), (a, -p)]),
            G1::identity()
        );
        let g_affine = gen.to_affine();
        assert_eq!(multi_mul_vartime(&a, &[(-a, g_affine)]), G1::identity());
    }
}
