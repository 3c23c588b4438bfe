//! The rollup contract's rules on anvil: each has a passing case and a refused case with its
//! named error, and a refusal changes nothing.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::Provider,
};
use keel_evm::contracts::KeelRollup::KeelRollupErrors as E;
use keel_state::{
    test_utils::{deposit, deposit_entry, key, signed_transfer, transfer, withdraw},
    AccountIndex, Encode, Fr, L1Address, QueueEntry,
};

use crate::{harness::*, ok, refused};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_queue_with_keel_states_running_hash() {
    let net = Net::start().await;
    net.deposit(0, 5).await;
    net.deposit(1, 7).await;
    net.deposit(0, 1).await; // a top-up keeps the index
    let r = &net.citizen;
    let mut q = Fr::zero();
    for (n, (i, amount)) in [(0, 5), (1, 7), (0, 1)].into_iter().enumerate() {
        q = deposit_entry(i, amount).chain(q);
        assert_eq!(r.queueHashAt(n as u64 + 1).call().await.unwrap(), u(&q));
    }
    assert_eq!(r.queueLength().call().await.unwrap(), 3);
    assert_eq!(r.nextIndex().call().await.unwrap(), 2);
    assert_eq!(r.escrow().call().await.unwrap(), 13);

    // refusals, each changing nothing
    let (x, y) = key(2).public_key().xy();
    assert!(matches!(
        refused!(r.deposit(u(&x), u(&y))),
        E::ZeroAmount(_)
    ));
    assert!(matches!(
        refused!(r.deposit(u(&x), u(&y)).value(U256::from(GWEI + 1))),
        E::NotWholeUnits(_)
    ));
    assert!(matches!(
        refused!(r.deposit(U256::from(1), U256::from(1)).value(wei(1))),
        E::BadKey(_)
    ));
    assert_eq!(r.queueLength().call().await.unwrap(), 3);
    assert_eq!(r.escrow().call().await.unwrap(), 13);

    // a forced transfer joins the same queue, with the same running hash
    let forced = signed_transfer(0, 1, 2, 0);
    ok!(r.force(Bytes::from(forced.encode())));
    q = QueueEntry::Forced(forced).chain(q);
    assert_eq!(r.queueHashAt(4).call().await.unwrap(), u(&q));
    let w = keel_state::SignedOp::Withdraw(keel_state::Withdraw::sign(
        &key(0),
        AccountIndex(0),
        L1Address([7; 20]),
        1,
        0,
    ));
    assert!(matches!(
        refused!(r.force(Bytes::from(w.encode()))),
        E::ForcedWithdrawal(_)
    ));
}

#[tokio::test]
async fn batches_are_posted_in_order_against_the_contracts_own_state() {
    let mut net = Net::start().await;
    net.deposit(0, 100).await;
    net.deposit(1, 50).await;
    let ops = vec![
        deposit(0, 100),
        deposit(1, 50),
        transfer(0, 1, 30, 0),
        withdraw(1, 20, 0),
    ];
    let mirror_before = net.state.root().unwrap();
    let batch = net.build(1, ops);
    let (data, proof) = (data(&batch), digest_proof(&batch));
    let r = &net.primary;
    assert_eq!(
        r.stateRoot().call().await.unwrap(),
        u(&mirror_before),
        "genesis root"
    );

    // a bad proof
    let mut bad = proof.to_vec();
    bad[0] ^= 1;
    assert!(matches!(
        refused!(r.postBatch(data.clone(), Bytes::from(bad))),
        E::InvalidProof(_)
    ));
    // a wrong previous root
    let mut wrong = batch.clone();
    wrong.prev_root += Fr::one();
    assert!(matches!(
        refused!(r.postBatch(self::data(&wrong), digest_proof(&wrong))),
        E::WrongPrevRoot(_)
    ));
    // out of order
    let mut later = batch.clone();
    later.number.0 = 2;
    assert!(matches!(
        refused!(r.postBatch(self::data(&later), digest_proof(&later))),
        E::WrongBatchNumber(_)
    ));
    // not the lease holder
    assert!(matches!(
        refused!(net.standby.postBatch(data.clone(), proof.clone())),
        E::NotLeaseHolder(_)
    ));
    // data that is not what the commitment commits to (an amount changed)
    let mut tampered = data.to_vec();
    let at = tampered.len() - 137 - 121 + 9 + 7; // the transfer's amount's last byte
    tampered[at] ^= 1;
    assert!(matches!(
        refused!(r.postBatch(Bytes::from(tampered), proof.clone())),
        E::DataMismatch(_)
    ));
    // a queue entry that was never queued
    let mut other = keel_state::State::open(keel_state::MemStore::new(), DEPTH).unwrap();
    let ghost = other
        .execute_batch(
            keel_state::Epoch(1),
            vec![deposit(0, 100), deposit(1, 50), deposit(2, 9)],
        )
        .unwrap()
        .batch;
    assert!(matches!(
        refused!(r.postBatch(self::data(&ghost), digest_proof(&ghost))),
        E::QueueOrder(_)
    ));
    assert_eq!(r.batchNumber().call().await.unwrap(), 0, "nothing changed");
    // the batch's withdrawal is not credited before the batch is proven
    let recipient = Address::from([7; 20]);
    assert_eq!(r.claimable(recipient).call().await.unwrap(), U256::ZERO);

    // the batch itself
    let receipt = ok!(r.postBatch(data.clone(), proof.clone()));
    eprintln!("postBatch of 4 ops: {} gas", receipt.gas_used);
    assert_eq!(r.batchNumber().call().await.unwrap(), 1);
    assert_eq!(r.stateRoot().call().await.unwrap(), u(&batch.new_root));
    assert_eq!(r.queueConsumed().call().await.unwrap(), 2);
    // the withdrawal is credited once proven, and claimable
    assert_eq!(r.claimable(recipient).call().await.unwrap(), wei(20));
    assert_eq!(r.escrow().call().await.unwrap(), 130);
    // the same batch again is out of order
    assert!(matches!(
        refused!(r.postBatch(data, proof)),
        E::WrongBatchNumber(_)
    ));
}

#[tokio::test]
async fn the_lease_passes_only_after_the_failover_timeout_and_fences_the_old_epoch() {
    let mut net = Net::start().await;
    net.deposit(0, 10).await;
    let batch = net.build(1, vec![deposit(0, 10)]);
    // a claim before the timeout, by an unregistered key, by the holder
    assert!(matches!(
        refused!(net.standby.claimLease()),
        E::LeaseNotExpired(_)
    ));
    assert!(matches!(
        refused!(net.stranger.claimLease()),
        E::NotRegistered(_)
    ));
    assert!(matches!(
        refused!(net.primary.claimLease()),
        E::AlreadyLeaseHolder(_)
    ));
    assert!(matches!(
        refused!(net.standby.heartbeat()),
        E::NotLeaseHolder(_)
    ));
    // the holder's heartbeat restarts the clock
    net.advance(FAILOVER - 5).await;
    ok!(net.primary.heartbeat());
    net.advance(10).await;
    assert!(matches!(
        refused!(net.standby.claimLease()),
        E::LeaseNotExpired(_)
    ));
    net.advance(FAILOVER).await;
    ok!(net.standby.claimLease());
    assert_eq!(net.primary.epoch().call().await.unwrap(), 2);
    assert_eq!(
        net.primary.leaseHolder().call().await.unwrap(),
        net.addresses[1]
    );
    // the old primary's batch, of the stale epoch, is refused; so is a batch in the new epoch
    // from a key that does not hold the lease
    assert!(matches!(
        refused!(net.primary.postBatch(data(&batch), digest_proof(&batch))),
        E::StaleEpoch(_)
    ));
    let mut fresh = batch.clone();
    fresh.epoch.0 = 2;
    assert!(matches!(
        refused!(net.primary.postBatch(data(&fresh), digest_proof(&fresh))),
        E::NotLeaseHolder(_)
    ));
    ok!(net.standby.postBatch(data(&fresh), digest_proof(&fresh)));
    assert_eq!(net.primary.batchNumber().call().await.unwrap(), 1);
}

/// The exit authorisation `(R.x, R.y, s)` of demo account `i` for `recipient`.
fn exit_signature(i: u32, recipient: Address) -> [U256; 3] {
    keel_evm::l1::exit_signature(&key(i), CHAIN_ID, AccountIndex(i), recipient)
}

#[tokio::test]
async fn exit_mode_comes_at_a_deadline_and_each_account_exits_once() {
    let mut net = Net::start().await;
    net.deposit(0, 100).await;
    net.deposit(1, 50).await;
    let batch = net.build(
        1,
        vec![deposit(0, 100), deposit(1, 50), transfer(0, 1, 30, 0)],
    );
    ok!(net.primary.postBatch(data(&batch), digest_proof(&batch)));
    let r = &net.citizen;
    // before any deadline
    assert!(matches!(
        refused!(r.activateExitMode()),
        E::ExitModeNotDue(_)
    ));
    let recipient = net.addresses[3];
    let a0 = account_of(&net.state, 0);
    let p0 = net.state.proof(AccountIndex(0)).unwrap();
    let (x0, y0) = a0.pk.xy();
    let siblings = |p: &keel_state::MerkleProof| p.siblings.iter().map(u).collect::<Vec<_>>();
    let exit0 = || {
        r.exit(
            0,
            u(&x0),
            u(&y0),
            a0.balance,
            a0.nonce,
            siblings(&p0),
            recipient,
            exit_signature(0, recipient),
        )
    };
    assert!(matches!(refused!(exit0()), E::NotInExitMode(_)));
    // a deposit nobody includes: past the forced-inclusion deadline anyone activates exit mode
    net.deposit(2, 9).await;
    net.advance(FORCED - 10).await;
    assert!(matches!(
        refused!(r.activateExitMode()),
        E::ExitModeNotDue(_)
    ));
    net.advance(20).await;
    ok!(r.activateExitMode());
    assert_eq!(r.exitReason().call().await.unwrap(), 1);
    assert!(matches!(
        refused!(net.primary.postBatch(data(&batch), digest_proof(&batch))),
        E::ExitModeActive(_)
    ));

    // account 0 exits once
    let receipt = ok!(exit0());
    eprintln!("exit at depth {DEPTH}: {} gas", receipt.gas_used);
    assert_eq!(r.claimable(recipient).call().await.unwrap(), wei(70));
    assert!(matches!(refused!(exit0()), E::AlreadyExited(_)));
    // account 1: a wrong Merkle proof, then a signature by another key
    let a1 = account_of(&net.state, 1);
    let (x1, y1) = a1.pk.xy();
    let mut p1 = net.state.proof(AccountIndex(1)).unwrap();
    let good = siblings(&p1);
    p1.siblings[0] += Fr::one();
    let exit1 = |sibs: Vec<U256>, sig: [U256; 3], balance: u64| {
        r.exit(1, u(&x1), u(&y1), balance, a1.nonce, sibs, recipient, sig)
    };
    assert!(matches!(
        refused!(exit1(
            siblings(&p1),
            exit_signature(1, recipient),
            a1.balance
        )),
        E::WrongMerkleProof(_)
    ));
    assert!(matches!(
        refused!(exit1(
            good.clone(),
            exit_signature(1, recipient),
            a1.balance + 1
        )),
        E::WrongMerkleProof(_)
    ));
    assert!(matches!(
        refused!(exit1(
            good.clone(),
            exit_signature(0, recipient),
            a1.balance
        )),
        E::NotAccountOwner(_)
    ));
    assert!(matches!(
        refused!(exit1(
            good.clone(),
            exit_signature(1, net.addresses[2]),
            a1.balance
        )),
        E::NotAccountOwner(_)
    ));
    ok!(exit1(good, exit_signature(1, recipient), a1.balance));
    // the unconsumed deposit goes back to its payer, once
    ok!(r.reclaim(2));
    assert!(matches!(refused!(r.reclaim(2)), E::AlreadyReclaimed(_)));
    assert!(matches!(refused!(r.reclaim(0)), E::NotReclaimable(_)));
    // everything escrowed is now claimable, nothing more
    assert_eq!(r.escrow().call().await.unwrap(), 0);
    assert_eq!(r.claimable(recipient).call().await.unwrap(), wei(150));
    assert_eq!(r.claimable(net.addresses[2]).call().await.unwrap(), wei(9));
    let held = || r.provider().get_balance(*r.address());
    let before = held().await.unwrap();
    ok!(r.claim());
    assert_eq!(
        held().await.unwrap(),
        before - wei(9),
        "the claim paid out exactly its credit"
    );
    assert!(matches!(refused!(r.claim()), E::NothingToClaim(_)));
}

/// Mangled batch data (a flipped bit anywhere, a truncation, trailing bytes) with the intact
/// batch's proof is refused with a named error and changes nothing; the intact batch then posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mangled_batch_data_is_refused_and_changes_nothing() {
    let mut net = Net::start().await;
    net.deposit(0, 100).await;
    net.deposit(1, 50).await;
    let batch = net.build(
        1,
        vec![
            deposit(0, 100),
            deposit(1, 50),
            transfer(0, 1, 30, 0),
            withdraw(1, 20, 0),
        ],
    );
    let good = batch.encode();
    let r = &net.primary;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for _ in 0..48 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut d = good.clone();
        let at = (x % d.len() as u64) as usize;
        d[at] ^= 1 << (x >> 60 & 7);
        cases.push(d);
    }
    cases.push(good[..good.len() - 1].to_vec());
    cases.push(good[..180].to_vec());
    cases.push([good.clone(), vec![0]].concat());
    for d in cases {
        match keel_evm::transact(r.postBatch(Bytes::from(d), digest_proof(&batch))).await {
            Ok(_) => panic!("mangled data was accepted"),
            Err(e) => assert!(
                e.as_decoded_interface_error::<E>().is_some(),
                "refused without a named error: {e}"
            ),
        }
    }
    assert_eq!(r.batchNumber().call().await.unwrap(), 0, "nothing changed");
    ok!(r.postBatch(Bytes::from(good), digest_proof(&batch)));
    assert_eq!(r.batchNumber().call().await.unwrap(), 1);
}
