//! FROST threshold signing: any `t` of `n` members make a signature that the ordinary Schnorr
//! check accepts under the group key; `t − 1` cannot; a cheating member is named.

use keel_state::{
    frost::{self, Commitment, FrostError, GroupKey, KeyShare, SignatureShare},
    Decode, Encode, Fr,
};
use proptest::prelude::*;
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Both rounds for the members `ids` (1-based) of `shares`, then the aggregation.
fn sign_with(
    group: &GroupKey,
    shares: &[KeyShare],
    ids: &[u16],
    msg: Fr,
    seed: u64,
) -> Result<keel_state::Signature, FrostError> {
    let mut r = rng(seed);
    let (nonces, commitments): (Vec<_>, Vec<Commitment>) = ids
        .iter()
        .map(|&i| frost::commit(&shares[usize::from(i) - 1], &mut r))
        .unzip();
    let sig_shares = ids
        .iter()
        .zip(nonces)
        .map(|(&i, n)| frost::sign(&shares[usize::from(i) - 1], n, &commitments, msg))
        .collect::<Result<Vec<_>, _>>()?;
    frost::aggregate(group, &commitments, &sig_shares, msg)
}

fn subsets(n: u16, k: usize) -> Vec<Vec<u16>> {
    (0u32..1 << n)
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| (1..=n).filter(|i| m & (1 << (i - 1)) != 0).collect())
        .collect()
}

#[test]
fn any_six_of_eight_sign_and_the_signature_verifies_as_ordinary_schnorr() {
    let (group, shares) = frost::keygen(6, 8, rng(1)).unwrap();
    let msg = Fr::from(42);
    let mut sets = subsets(8, 6);
    sets.extend(subsets(8, 7));
    sets.push((1..=8).collect());
    assert_eq!(sets.len(), 28 + 8 + 1);
    for (k, ids) in sets.iter().enumerate() {
        let sig = sign_with(&group, &shares, ids, msg, k as u64).unwrap();
        group.key.verify(&[msg], &sig).unwrap();
        assert!(group.key.verify(&[msg + Fr::one()], &sig).is_err());
    }
}

#[test]
fn five_of_eight_cannot_sign() {
    let (group, shares) = frost::keygen(6, 8, rng(2)).unwrap();
    let msg = Fr::from(7);
    assert_eq!(
        sign_with(&group, &shares, &[1, 2, 3, 4, 5], msg, 0).unwrap_err(),
        FrostError::TooFewSigners {
            got: 5,
            threshold: 6
        }
    );
    // an aggregator that lies about the threshold gets a signature, but not under the group key
    let mut lying = group.clone();
    lying.threshold = 5;
    let lying_shares: Vec<KeyShare> = shares
        .iter()
        .map(|s| {
            let mut b = s.encode();
            // the share's own copy of the group carries the lie too: re-encode it
            let g = lying.encode();
            b.truncate(2 + 32);
            b.extend_from_slice(&g);
            KeyShare::decode(&b).unwrap()
        })
        .collect();
    let sig = sign_with(&lying, &lying_shares, &[1, 2, 3, 4, 5], msg, 0).unwrap();
    assert!(group.key.verify(&[msg], &sig).is_err());
}

#[test]
fn a_cheating_member_is_named_and_bad_signing_sets_are_refused() {
    let (group, shares) = frost::keygen(3, 5, rng(3)).unwrap();
    let msg = Fr::from(9);
    let mut r = rng(4);
    let ids = [1u16, 3, 4];
    let (nonces, commitments): (Vec<_>, Vec<Commitment>) = ids
        .iter()
        .map(|&i| frost::commit(&shares[usize::from(i) - 1], &mut r))
        .unzip();
    // members 1 and 4 answer honestly; member 3 answers for another message
    let sig_shares: Vec<SignatureShare> = ids
        .iter()
        .zip(nonces)
        .map(|(&i, n)| {
            let m = if i == 3 { msg + Fr::one() } else { msg };
            frost::sign(&shares[usize::from(i) - 1], n, &commitments, m).unwrap()
        })
        .collect();
    assert_eq!(
        frost::aggregate(&group, &commitments, &sig_shares, msg).unwrap_err(),
        FrostError::BadShare(3)
    );
    // a member asked to sign for a set without its commitment
    let (n2, _) = frost::commit(&shares[1], &mut r);
    assert_eq!(
        frost::sign(&shares[1], n2, &commitments, msg).unwrap_err(),
        FrostError::NotInSigningSet(2)
    );
    // a repeated member and an unknown one
    let mut twice = commitments.clone();
    twice.push(commitments[0]);
    let (n1, _) = frost::commit(&shares[0], &mut r);
    assert!(matches!(
        frost::sign(&shares[0], n1, &twice, msg),
        Err(FrostError::UnknownMember(1))
    ));
    let mut unknown = commitments.clone();
    unknown[2].id = 9;
    assert!(matches!(
        frost::aggregate(&group, &unknown, &sig_shares, msg),
        Err(FrostError::UnknownMember(9))
    ));
    // a share missing for a listed member
    let honest = [sig_shares[0], sig_shares[2]];
    assert_eq!(
        frost::aggregate(&group, &commitments, &honest, msg).unwrap_err(),
        FrostError::Mismatched(3)
    );
    assert!(matches!(
        frost::keygen(0, 3, rng(0)),
        Err(FrostError::BadThreshold { t: 0, n: 3 })
    ));
    assert!(matches!(
        frost::keygen(4, 3, rng(0)),
        Err(FrostError::BadThreshold { t: 4, n: 3 })
    ));
}

#[test]
fn shares_commitments_and_responses_round_trip_and_a_tampered_share_is_refused() {
    let (group, shares) = frost::keygen(2, 3, rng(5)).unwrap();
    assert_eq!(GroupKey::decode(&group.encode()).unwrap(), group);
    for s in &shares {
        assert_eq!(&KeyShare::decode(&s.encode()).unwrap(), s);
    }
    let mut bytes = shares[0].encode();
    bytes[5] ^= 1;
    assert!(KeyShare::decode(&bytes).is_err());
    let mut r = rng(6);
    let (n, c) = frost::commit(&shares[0], &mut r);
    assert_eq!(Commitment::decode(&c.encode()).unwrap(), c);
    let n = frost::SigningNonces::decode(&n.encode()).unwrap();
    let (n2, c2) = frost::commit(&shares[1], &mut r);
    let set = [c, c2];
    let z = frost::sign(&shares[0], n, &set, Fr::one()).unwrap();
    assert_eq!(SignatureShare::decode(&z.encode()).unwrap(), z);
    let z2 = frost::sign(&shares[1], n2, &set, Fr::one()).unwrap();
    let sig = frost::aggregate(&group, &set, &[z2, z], Fr::one()).unwrap();
    group.key.verify(&[Fr::one()], &sig).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn any_threshold_subset_signs(n in 1u16..=7, t_off in 0u16..7, pick in any::<u32>(), seed in any::<u64>()) {
        let t = 1 + t_off % n;
        let (group, shares) = frost::keygen(t, n, rng(seed)).unwrap();
        let mut ids: Vec<u16> = (1..=n).filter(|i| pick & (1 << (i - 1)) != 0).collect();
        for i in 1..=n {
            if ids.len() >= usize::from(t) { break; }
            if !ids.contains(&i) { ids.push(i); }
        }
        let msg = Fr::from(seed);
        let sig = sign_with(&group, &shares, &ids, msg, seed).unwrap();
        prop_assert!(group.key.verify(&[msg], &sig).is_ok());
    }
}
