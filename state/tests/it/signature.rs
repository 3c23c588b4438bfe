//! Schnorr over Grumpkin: known answers, round trips, and every refusal.

use halo2_base::halo2_proofs::halo2curves::ff::Field;
use keel_state::{
    signature::{PUBLIC_KEY_BYTES, SIGNATURE_BYTES},
    Fr, PublicKey, SecretKey, Signature, SignatureError,
};

fn sk(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32])
}

#[test]
fn sign_verify_round_trip() {
    for n in 0..8u8 {
        let k = sk(n);
        let pk = k.public_key();
        let msg = Fr::from(u64::from(n) * 1_000_003);
        let sig = k.sign(&[msg]);
        assert_eq!(pk.verify(&[msg], &sig), Ok(()));
        let pk2 = PublicKey::from_bytes(&pk.to_bytes()).unwrap();
        let sig2 = Signature::from_bytes(&sig.to_bytes()).unwrap();
        assert_eq!((pk2, sig2), (pk, sig));
        assert_eq!(pk2.verify(&[msg], &sig2), Ok(()));
        let k2 = SecretKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(k2.public_key(), pk);
    }
}

#[test]
fn signing_is_deterministic_and_message_bound() {
    let k = sk(1);
    assert_eq!(k.sign(&[Fr::from(5)]), k.sign(&[Fr::from(5)]));
    assert_ne!(
        k.sign(&[Fr::from(5)]).r(),
        k.sign(&[Fr::from(6)]).r(),
        "nonce must depend on the message"
    );
}

/// Pinned encodings: a change to key derivation, nonce derivation, the challenge hash or the
/// encodings shows up here.
#[test]
fn known_answers() {
    let k = sk(42);
    let pk = hex::encode(k.public_key().to_bytes());
    let sig = hex::encode(k.sign(&[Fr::from(1234567)]).to_bytes());
    assert_eq!(pk, KAT_PK);
    assert_eq!(sig, KAT_SIG);
    // the pinned pair is itself valid: decodes, and verifies for its message only
    let pk = PublicKey::from_bytes(&hex::decode(KAT_PK).unwrap().try_into().unwrap()).unwrap();
    let sig = Signature::from_bytes(&hex::decode(KAT_SIG).unwrap().try_into().unwrap()).unwrap();
    assert_eq!(pk.verify(&[Fr::from(1234567)], &sig), Ok(()));
    assert!(pk.verify(&[Fr::from(1234568)], &sig).is_err());
}

const KAT_PK: &str = "0cf1ca590c527bb9e62beafa33d7600661f220c9bbb31ba907206cbfc82b6f2b0643938729f85a73e74f99e3f62c53c67f0ce8da7cabbffead336beedef48011";
const KAT_SIG: &str = "724817f888a2df2f32cc518b38cbb91b79ac84c1a38411c8a6dd7dfef2c9911f0ec3894128591b22d6dfc60cdede1d26c705f49e754bed68d75b80440ab1d000c84105446939277ad4bbdd936dc6d589aa54e739a0738223248cff274768df0a";

/// The challenge is `2^253 + 2·(h mod 2^253) + 1`: odd, in `[2^253, 2^254)` as an integer, and the
/// hash's top bit does not change it.
#[test]
fn the_challenge_is_the_odd_integer_made_from_the_hash_low_253_bits() {
    use halo2_base::halo2_proofs::halo2curves::grumpkin::Fr as Scalar;
    use keel_state::signature::challenge_scalar;
    let two = Scalar::from(2);
    let top = two.pow_vartime([253]);
    assert_eq!(challenge_scalar(Fr::ZERO), top + Scalar::ONE);
    assert_eq!(challenge_scalar(Fr::from(5)), top + Scalar::from(11));
    // 2^253 − 1, the largest value below the top bit
    let max = Fr::from(2).pow_vartime([253]) - Fr::ONE;
    assert_eq!(challenge_scalar(max), top + top + top - Scalar::ONE);
    // h and h + 2^253 (both below the field modulus) give the same challenge
    let h = Fr::from(123_456_789);
    assert_eq!(
        challenge_scalar(h),
        challenge_scalar(h + Fr::from(2).pow_vartime([253]))
    );
    // a signature's equation holds with that challenge (s·G = R + e·pk)
    use halo2_base::halo2_proofs::halo2curves::grumpkin::G1;
    use keel_state::signature::challenge_hash;
    let k = sk(9);
    let pk = k.public_key();
    let msg = [Fr::from(77), Fr::from(78)];
    let sig = k.sign(&msg);
    let (rx, ry) = (sig.r().x, sig.r().y);
    let e = challenge_scalar(challenge_hash((rx, ry), pk.xy(), &msg));
    let s = <Scalar as halo2_base::halo2_proofs::halo2curves::ff::PrimeField>::from_repr_vartime(
        sig.s_bytes(),
    )
    .unwrap();
    assert_eq!(
        G1::generator() * s,
        G1::from(sig.r()) + G1::from(pk.point()) * e
    );
}

/// A message is its elements in order, whatever their number: a signature on `[m]` is not one on
/// `[m, 0]` (the sponge pads them differently), nor on `[m₂, m₁]`, nor on either element alone.
#[test]
fn a_message_is_bound_to_its_length_and_order() {
    let k = sk(4);
    let pk = k.public_key();
    let (m1, m2) = (Fr::from(11), Fr::from(12));
    let one = k.sign(&[m1]);
    assert_eq!(
        pk.verify(&[m1, Fr::zero()], &one),
        Err(SignatureError::Invalid)
    );
    assert_eq!(pk.verify(&[], &one), Err(SignatureError::Invalid));
    let two = k.sign(&[m1, m2]);
    assert_eq!(pk.verify(&[m1, m2], &two), Ok(()));
    for other in [&[m2, m1][..], &[m1], &[m2], &[m1, m2, Fr::zero()]] {
        assert_eq!(pk.verify(other, &two), Err(SignatureError::Invalid));
    }
    // the nonce depends on every element too
    assert_ne!(two.r(), k.sign(&[m1, m2 + Fr::one()]).r());
    assert_ne!(one.r(), k.sign(&[m1, Fr::zero()]).r());
}

#[test]
fn wrong_key_is_refused() {
    let msg = Fr::from(9);
    let sig = sk(1).sign(&[msg]);
    assert_eq!(
        sk(2).public_key().verify(&[msg], &sig),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn wrong_message_is_refused() {
    let k = sk(1);
    let sig = k.sign(&[Fr::from(9)]);
    assert_eq!(
        k.public_key().verify(&[Fr::from(10)], &sig),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn mangled_s_is_refused() {
    let k = sk(3);
    let msg = Fr::from(77);
    let mut bytes = k.sign(&[msg]).to_bytes();
    bytes[64] ^= 1; // s + or − 1: still canonical, no longer valid
    let sig = Signature::from_bytes(&bytes).unwrap();
    assert_eq!(
        k.public_key().verify(&[msg], &sig),
        Err(SignatureError::Invalid)
    );
    // an s at or above the Grumpkin scalar modulus is not even decodable
    let mut bytes = k.sign(&[msg]).to_bytes();
    bytes[64..].copy_from_slice(&[0xff; 32]);
    assert_eq!(
        Signature::from_bytes(&bytes),
        Err(SignatureError::NonCanonicalScalar)
    );
}

#[test]
fn mangled_r_is_refused() {
    let k = sk(3);
    let msg = Fr::from(77);
    let good = k.sign(&[msg]);
    // R replaced by another valid point: decodes, does not verify
    let other = sk(4).sign(&[msg]);
    let mut bytes = good.to_bytes();
    bytes[..64].copy_from_slice(&other.to_bytes()[..64]);
    let sig = Signature::from_bytes(&bytes).unwrap();
    assert_eq!(
        k.public_key().verify(&[msg], &sig),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn point_not_on_curve_is_refused() {
    let k = sk(5);
    let mut pk = k.public_key().to_bytes();
    pk[32] ^= 1; // y changed: off the curve
    assert_eq!(PublicKey::from_bytes(&pk), Err(SignatureError::NotOnCurve));
    let mut sig = k.sign(&[Fr::ONE]).to_bytes();
    sig[0] ^= 1; // R.x changed
    assert_eq!(Signature::from_bytes(&sig), Err(SignatureError::NotOnCurve));
    let (x, y) = k.public_key().xy();
    assert_eq!(
        PublicKey::from_xy(x, y + Fr::ONE),
        Err(SignatureError::NotOnCurve)
    );
}

#[test]
fn identity_is_refused() {
    let zero = [0u8; PUBLIC_KEY_BYTES];
    assert_eq!(PublicKey::from_bytes(&zero), Err(SignatureError::Identity));
    let mut sig = [0u8; SIGNATURE_BYTES];
    sig[64] = 1;
    assert_eq!(Signature::from_bytes(&sig), Err(SignatureError::Identity));
    assert_eq!(
        PublicKey::from_xy(Fr::ZERO, Fr::ZERO),
        Err(SignatureError::Identity)
    );
}

#[test]
fn non_canonical_coordinates_are_refused() {
    let mut pk = sk(6).public_key().to_bytes();
    pk[..32].copy_from_slice(&[0xff; 32]);
    assert_eq!(
        PublicKey::from_bytes(&pk),
        Err(SignatureError::NonCanonicalCoordinate)
    );
}

#[test]
fn zero_or_non_canonical_secret_key_is_refused() {
    assert!(SecretKey::from_bytes(&[0u8; 32]).is_err());
    assert!(SecretKey::from_bytes(&[0xff; 32]).is_err());
}

mod batch {
    use super::*;
    use halo2_base::halo2_proofs::halo2curves::{ff::PrimeField, grumpkin::Fr as Scalar};
    use keel_state::{signature::verify_batch, PreparedSignature};
    use proptest::prelude::*;

    /// `n` valid signatures; keys repeat (every third uses key 0) and one message is signed
    /// twice by the same key, so equal points meet in the sum's buckets.
    fn valid(n: usize) -> Vec<(PublicKey, Fr, Signature)> {
        (0..n)
            .map(|i| {
                let k = if i % 3 == 0 { sk(0) } else { sk(i as u8) };
                let msg = Fr::from(if i == 1 { 0 } else { i as u64 });
                let sig = k.sign(&[msg]);
                (k.public_key(), msg, sig)
            })
            .collect()
    }

    fn prepared(items: &[(PublicKey, Fr, Signature)]) -> Vec<PreparedSignature> {
        items
            .iter()
            .map(|(pk, msg, sig)| pk.prepare(&[*msg], sig))
            .collect()
    }

    fn with_s(sig: &Signature, f: impl Fn(Scalar) -> Scalar) -> Signature {
        let mut bytes = sig.to_bytes();
        let s = Scalar::from_repr(sig.s_bytes()).unwrap();
        bytes[64..].copy_from_slice(&f(s).to_repr());
        Signature::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn a_batch_of_valid_signatures_verifies_at_every_size() {
        for n in [0, 1, 2, 3, 17, 64] {
            assert!(verify_batch(&prepared(&valid(n))), "n = {n}");
        }
    }

    /// Each kind of forgery, at each position of a batch of 16, makes the batch fail, and the
    /// one-by-one check then names exactly that signature.
    #[test]
    fn one_forgery_anywhere_fails_the_batch() {
        let good = valid(16);
        let other = sk(200);
        for i in 0..good.len() {
            let (pk, msg, sig) = good[i];
            let forgeries: [(&str, (PublicKey, Fr, Signature)); 4] = [
                ("other message", (pk, msg + Fr::ONE, sig)),
                ("other key", (other.public_key(), msg, sig)),
                ("s + 1", (pk, msg, with_s(&sig, |s| s + Scalar::ONE))),
                ("R of another signature", {
                    let mut b = sig.to_bytes();
                    b[..64].copy_from_slice(&other.sign(&[msg]).to_bytes()[..64]);
                    (pk, msg, Signature::from_bytes(&b).unwrap())
                }),
            ];
            for (what, forged) in forgeries {
                let mut items = good.clone();
                items[i] = forged;
                let p = prepared(&items);
                assert!(!verify_batch(&p), "{what} at {i} passed the batch");
                let bad: Vec<usize> = (0..p.len()).filter(|&j| p[j].verify().is_err()).collect();
                assert_eq!(bad, vec![i], "{what}");
            }
        }
    }

    /// Two forgeries whose errors cancel (`s + 1` in one, `s − 1` in the other) pass an
    /// unweighted sum; the random weights catch them.
    #[test]
    fn forgeries_that_cancel_in_a_plain_sum_fail_the_batch() {
        let mut items = valid(8);
        items[2].2 = with_s(&items[2].2, |s| s + Scalar::ONE);
        items[5].2 = with_s(&items[5].2, |s| s - Scalar::ONE);
        assert!(!verify_batch(&prepared(&items)));
        // the same two, alone: still caught
        assert!(!verify_batch(&prepared(&[items[2], items[5]])));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The batch check agrees with checking each signature: valid iff all are.
        #[test]
        fn batch_agrees_with_one_by_one(
            spec in proptest::collection::vec((0u8..6, 0u64..4, prop::bool::weighted(0.15)), 0..24)
        ) {
            let items: Vec<_> = spec
                .iter()
                .map(|&(k, m, forge)| {
                    let key = sk(k);
                    let sig = key.sign(&[Fr::from(m)]);
                    let msg = if forge { Fr::from(m + 100) } else { Fr::from(m) };
                    (key.public_key(), msg, sig)
                })
                .collect();
            let p = prepared(&items);
            let one_by_one = p.iter().all(|s| s.verify().is_ok());
            prop_assert_eq!(verify_batch(&p), one_by_one);
            prop_assert_eq!(one_by_one, spec.iter().all(|s| !s.2));
        }
    }
}
