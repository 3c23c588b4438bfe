//! The council on chain: a FROST(secp256k1) key from a DKG, 3 of 5; its numbered signatures
//! activate exit mode or rotate the sequencers, and nothing less than the threshold, no replay,
//! no other action's signature, passes.

use alloy::primitives::U256;
use keel_evm::{
    contracts::KeelRollup::KeelRollupErrors as E,
    council::{self, frost, Action},
};
use keel_state::test_utils::key;
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

use crate::{harness::*, ok, refused};

/// The contract's words for the council's signature by `signers` on its next `action`.
async fn signed(net: &Net, signers: &[u16], action: Action, payload: [u8; 32]) -> [U256; 3] {
    let r = &net.citizen;
    let sequence = r.councilSequence().call().await.unwrap();
    let evm_chain = alloy::providers::Provider::get_chain_id(r.provider())
        .await
        .unwrap();
    let msg = council::message(evm_chain, *r.address(), CHAIN_ID, sequence, action, payload);
    assert_eq!(
        r.councilMessage(action as u8, payload.into())
            .call()
            .await
            .unwrap()
            .to_vec(),
        msg,
        "the contract and the library build the same message"
    );
    let (keys, public) = &net.council;
    let sig = council::sign(
        keys,
        public,
        &members(signers),
        &msg,
        ChaCha20Rng::seed_from_u64(7),
    )
    .expect("a threshold of members signs");
    council::signature_words(sig.inner()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_council_rotates_and_activates_exit_mode_with_a_threshold_only() {
    let net = Net::start().await;
    let r = &net.stranger; // anyone may submit the council's signature

    // a rotation signed by 3 of 5; the holder leaves the set, so the lease moves on
    let set = vec![net.addresses[1], net.addresses[2]];
    let keys = council::ack_key_words(&[key(7).public_key(), key(8).public_key()]);
    let payload = council::rotation_payload(&set, &keys);
    let [rx, ry, z] = signed(&net, &[1, 3, 5], Action::Rotate, payload).await;
    // the same signature for another set, or for the other action, is refused
    assert!(matches!(
        refused!(r.councilRotateSequencers(vec![net.addresses[3]], keys[..2].to_vec(), rx, ry, z)),
        E::BadCouncilSignature(_)
    ));
    // ... or for other keys
    let other = council::ack_key_words(&[key(9).public_key(), key(8).public_key()]);
    assert!(matches!(
        refused!(r.councilRotateSequencers(set.clone(), other, rx, ry, z)),
        E::BadCouncilSignature(_)
    ));
    assert!(matches!(
        refused!(r.councilActivateExitMode(rx, ry, z)),
        E::BadCouncilSignature(_)
    ));
    // keys that are not curve points, or not one per sequencer, are refused before the signature
    let mut off_curve = keys.clone();
    off_curve[1] += alloy::primitives::U256::from(1);
    assert!(matches!(
        refused!(r.councilRotateSequencers(set.clone(), off_curve, rx, ry, z)),
        E::BadKey(_)
    ));
    assert!(matches!(
        refused!(r.councilRotateSequencers(set.clone(), keys[..2].to_vec(), rx, ry, z)),
        E::BadKey(_)
    ));
    let receipt = ok!(r.councilRotateSequencers(set.clone(), keys.clone(), rx, ry, z));
    eprintln!("council rotation: {} gas", receipt.gas_used);
    assert_eq!(r.sequencers().call().await.unwrap(), set);
    assert_eq!(r.ackKeys().call().await.unwrap(), keys);
    assert_eq!(r.epoch().call().await.unwrap(), 2);
    assert_eq!(r.leaseHolder().call().await.unwrap(), net.addresses[1]);
    assert_eq!(r.councilSequence().call().await.unwrap(), 1);
    // replayed: the sequence has moved on
    assert!(matches!(
        refused!(r.councilRotateSequencers(set, keys, rx, ry, z)),
        E::BadCouncilSignature(_)
    ));

    // t − 1 = 2 members: FROST's aggregation refuses them...
    let (keys, public) = &net.council;
    let evm_chain = alloy::providers::Provider::get_chain_id(r.provider())
        .await
        .unwrap();
    let msg = council::message(
        evm_chain,
        *r.address(),
        CHAIN_ID,
        1,
        Action::ExitMode,
        [0; 32],
    );
    assert!(council::sign(
        keys,
        public,
        &members(&[2, 4]),
        &msg,
        ChaCha20Rng::seed_from_u64(8)
    )
    .is_err());
    // ...and the best two colluding members can do, interpolating their shares as if the
    // threshold were 2 (s' = 2·s₂ − s₄, the Lagrange coefficients at 0 of ids 2 and 4) and
    // signing with that key, is refused on chain: it is not the council's key
    let share = |id: u16| keys[&members(&[id])[0]].signing_share().to_scalar();
    let interpolated = share(2) + share(2) - share(4);
    let forged = frost::SigningKey::from_scalar(interpolated).unwrap();
    let two = forged.sign(ChaCha20Rng::seed_from_u64(9), &msg);
    let [rx2, ry2, z2] = council::signature_words(&two).unwrap();
    assert!(matches!(
        refused!(r.councilActivateExitMode(rx2, ry2, z2)),
        E::BadCouncilSignature(_)
    ));
    assert_eq!(r.exitReason().call().await.unwrap(), 0);

    // 3 of 5 activate exit mode at once, before any deadline
    let [rx, ry, z] = signed(&net, &[2, 3, 4], Action::ExitMode, [0; 32]).await;
    let receipt = ok!(r.councilActivateExitMode(rx, ry, z));
    eprintln!("council exit mode activation: {} gas", receipt.gas_used);
    assert_eq!(r.exitReason().call().await.unwrap(), 3);
}

alloy::sol!(
    #[sol(rpc)]
    FrostCheck,
    "../contracts/out/FrostCheck.json"
);

/// The on-chain challenge is RFC 9591's H2 as the frost crate computes it, and a signature the
/// crate aggregates verifies on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_chain_frost_check_is_the_crates() {
    use frost::Ciphersuite;
    let net = Net::start().await;
    let p = alloy::providers::Provider::erased(net.citizen.provider().clone());
    let at = keel_evm::contracts::deploy(&p, "FrostCheck", &[])
        .await
        .unwrap();
    let check = FrostCheck::new(at, p);
    for m in [&b""[..], b"keel", &[7u8; 200]] {
        let want = frost::Secp256K1Sha256::H2(m).to_bytes();
        let got = check.challenge(m.to_vec().into()).call().await.unwrap();
        assert_eq!(got, U256::from_be_slice(&want), "H2 of {} bytes", m.len());
    }
    let (keys, public) = &net.council;
    let msg = b"a message".to_vec();
    let sig = council::sign(
        keys,
        public,
        &members(&[1, 2, 3]),
        &msg,
        ChaCha20Rng::seed_from_u64(3),
    )
    .unwrap();
    let [rx, ry, z] = council::signature_words(sig.inner()).unwrap();
    let (x, y) = council::group_key(public).unwrap();
    assert!(check
        .verify(x, y, rx, ry, z, msg.clone().into())
        .call()
        .await
        .unwrap());
    assert!(!check
        .verify(x, y, rx, ry, z + U256::from(1), msg.into())
        .call()
        .await
        .unwrap());
}
