//! Variable-time double-scalar multiplication on Grumpkin, for signature verification.
//!
//! halo2curves' `G1 * Scalar` is constant-time double-and-add: 256 doublings and 256 additions
//! per product, and verification needs two products. Verification handles only public values, so
//! it may branch on them: [`double_mul_vartime`] computes `a·P + b·Q` in one shared chain of
//! ~254 doublings, adding precomputed odd multiples at the non-zero digits of each scalar's
//! width-`w` NAF (about one digit in `w + 1`). The fixed generator's table is built once with a
//! wider window.
//!
//! Never use this with secret scalars: its timing depends on them.

use std::sync::LazyLock;

use halo2_proofs::halo2curves::{
    ff::PrimeField,
    group::{prime::PrimeCurveAffine, Curve, Group},
    grumpkin::{Fr as Scalar, G1Affine, G1},
};

/// Window of the variable base's NAF (8 precomputed points).
const W_VAR: u32 = 5;
/// Window of the generator's NAF (32 precomputed points, built once).
const W_GEN: u32 = 7;

/// `[1·P, 3·P, 5·P, …, (2^(w−1) − 1)·P]` in affine form.
fn odd_multiples(p: &G1, w: u32) -> Vec<G1Affine> {
    let n = 1usize << (w - 2);
    let twice = p.double();
    let mut proj = Vec::with_capacity(n);
    proj.push(*p);
    for i in 1..n {
        proj.push(proj[i - 1] + twice);
    }
    let mut out = vec![G1Affine::identity(); n];
    G1::batch_normalize(&proj, &mut out);
    out
}

static GENERATOR_TABLE: LazyLock<Vec<G1Affine>> =
    LazyLock::new(|| odd_multiples(&G1::generator(), W_GEN));

/// The width-`w` non-adjacent form of `k`, least significant digit first: every non-zero digit
/// is odd, below `2^(w−1)` in magnitude, and followed by at least `w − 1` zeros.
fn wnaf(k: &Scalar, w: u32) -> Vec<i8> {
    let repr = k.to_repr();
    // five limbs: the scalar (< 2^254) plus room for the carries of negative digits
    let mut limbs = [0u64; 5];
    for (i, chunk) in repr.chunks_exact(8).enumerate() {
        limbs[i] = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
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

fn add_digit(acc: &mut G1, table: &[G1Affine], digit: i8) {
    if digit == 0 {
        return;
    }
    let p = &table[usize::from(digit.unsigned_abs() / 2)];
    debug_assert!(
        !bool::from(p.is_identity()),
        "odd multiples of a prime-order point"
    );
    if digit > 0 {
        *acc += p;
    } else {
        *acc -= p;
    }
}

/// `a·G + b·Q` (with `G` Grumpkin's generator) in variable time. `Q` must not be the identity.
pub(crate) fn generator_double_mul_vartime(a: &Scalar, b: &Scalar, q: &G1) -> G1 {
    double_mul_with_tables(
        a,
        &GENERATOR_TABLE,
        W_GEN,
        b,
        &odd_multiples(q, W_VAR),
        W_VAR,
    )
}

/// `a·P + b·Q` in variable time. Neither point may be the identity.
#[cfg(test)]
pub(crate) fn double_mul_vartime(a: &Scalar, p: &G1, b: &Scalar, q: &G1) -> G1 {
    double_mul_with_tables(
        a,
        &odd_multiples(p, W_VAR),
        W_VAR,
        b,
        &odd_multiples(q, W_VAR),
        W_VAR,
    )
}

fn double_mul_with_tables(
    a: &Scalar,
    table_a: &[G1Affine],
    wa: u32,
    b: &Scalar,
    table_b: &[G1Affine],
    wb: u32,
) -> G1 {
    let (na, nb) = (wnaf(a, wa), wnaf(b, wb));
    let mut acc = G1::identity();
    for i in (0..na.len().max(nb.len())).rev() {
        acc = acc.double();
        add_digit(&mut acc, table_a, na.get(i).copied().unwrap_or(0));
        add_digit(&mut acc, table_b, nb.get(i).copied().unwrap_or(0));
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::ff::Field;
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
        ];
        let randoms: Vec<Scalar> = (0..200).map(|_| Scalar::random(&mut rng)).collect();
        for k in edge.iter().chain(&randoms) {
            for w in [W_VAR, W_GEN] {
                let d = wnaf(k, w);
                assert_eq!(naf_value(&d), *k);
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

    #[test]
    fn double_mul_matches_constant_time_products() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let g = G1::generator();
        let edge = [Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(2)];
        for i in 0..64 {
            let p = g * Scalar::random(&mut rng);
            let q = g * Scalar::random(&mut rng);
            let (a, b) = if i < 16 {
                (edge[i % 4], edge[i / 4])
            } else {
                (Scalar::random(&mut rng), Scalar::random(&mut rng))
            };
            assert_eq!(double_mul_vartime(&a, &p, &b, &q), p * a + q * b);
            assert_eq!(generator_double_mul_vartime(&a, &b, &q), g * a + q * b);
        }
        // P = Q and P = −Q: the tables then cancel or double, still exact
        let p = g * Scalar::from(77);
        let (a, b) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
        assert_eq!(double_mul_vartime(&a, &p, &b, &p), p * (a + b));
        assert_eq!(double_mul_vartime(&a, &p, &a, &-p), G1::identity());
    }
}
