//! One test per rule of the embedded L1, each showing the refusal, and that a refused
//! transaction changes nothing.

use keel_committer::{
    address_of, Call, EmbeddedChain, Event, ExitReason, L1Tx, Rejection, SettlementLayer,
};
use keel_state::{
    test_utils::{deposit_entry, key, signed_transfer},
    AccountIndex, BatchNumber, BatchOp, Epoch, Fr, L1Address, MemStore, SecretKey, SignedOp, State,
    Withdraw,
};
use tempfile::TempDir;

use crate::fixture::*;

/// A chain with the fixture's deposits queued and batches `1..=proven` settled.
fn chain(proven: usize) -> (TempDir, keel_committer::EmbeddedL1) {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    queue_deposits(&l1);
    for n in 1..=proven {
        send(&l1, &primary(), submit(n)).unwrap();
    }
    (dir, l1)
}

#[test]
fn valid_batches_are_proven_recorded_and_their_withdrawals_paid() {
    let (_d, l1) = chain(0);
    let r = send(&l1, &primary(), submit(1)).unwrap();
    let b1 = &fixture().batches[0].batch;
    assert_eq!(
        r.events,
        [Event::BatchProven {
            number: BatchNumber(1),
            root: b1.new_root
        }]
    );
    send(&l1, &primary(), submit(2)).unwrap();
    let r = send(&l1, &primary(), submit(3)).unwrap();
    assert!(r.events.contains(&Event::WithdrawalPaid {
        recipient: L1Address([7; 20]),
        amount: WITHDRAWN
    }));
    assert_eq!(l1.balance(&L1Address([7; 20])).unwrap(), WITHDRAWN);
    let view = l1.rollup().unwrap();
    assert_eq!(view.checkpoint.batch, BatchNumber(3));
    assert_eq!(view.checkpoint.root, fixture().batches[2].batch.new_root);
    assert_eq!(view.checkpoint.queue_consumed, 2);
    let posted = l1.batch(BatchNumber(2)).unwrap().unwrap();
    assert_eq!(posted.data, fixture().batches[1].data);
    assert_eq!(posted.proof, fixture().batches[1].proof);
    assert!(l1.batch(BatchNumber(4)).unwrap().is_none());
}

#[test]
fn an_invalid_proof_is_refused() {
    let (_d, l1) = chain(0);
    // another batch's proof
    let mut call = submit(1);
    if let Call::SubmitBatch { proof, .. } = &mut call {
        *proof = fixture().batches[1].proof.clone();
    }
    let why = refusal(send(&l1, &primary(), call));
    assert!(matches!(why, Rejection::InvalidProof(_)), "{why:?}");
    // one flipped byte
    let mut call = submit(1);
    if let Call::SubmitBatch { proof, .. } = &mut call {
        proof[100] ^= 1;
    }
    let why = refusal(send(&l1, &primary(), call));
    assert!(matches!(why, Rejection::InvalidProof(_)), "{why:?}");
    // a truncated proof
    let mut call = submit(1);
    if let Call::SubmitBatch { proof, .. } = &mut call {
        proof.truncate(64);
    }
    assert!(matches!(
        refusal(send(&l1, &primary(), call)),
        Rejection::InvalidProof(_)
    ));
    assert_eq!(l1.rollup().unwrap().checkpoint.batch, BatchNumber(0));
}

#[test]
fn a_wrong_prev_root_is_refused() {
    let (_d, l1) = chain(1);
    let call = submit_edited(2, |b| b.prev_root += Fr::one());
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::WrongPrevRoot
    );
}

#[test]
fn a_gap_in_batch_numbers_is_refused() {
    let (_d, l1) = chain(1);
    assert_eq!(
        refusal(send(&l1, &primary(), submit(3))),
        Rejection::WrongBatchNumber {
            expected: BatchNumber(2),
            got: BatchNumber(3)
        }
    );
    // and a replay of a settled batch
    assert_eq!(
        refusal(send(&l1, &primary(), submit(1))),
        Rejection::WrongBatchNumber {
            expected: BatchNumber(2),
            got: BatchNumber(1)
        }
    );
}

#[test]
fn data_not_matching_the_commitment_is_refused() {
    let (_d, l1) = chain(0);
    let mut call = submit(1);
    if let Call::SubmitBatch { data, .. } = &mut call {
        // the last byte of the deposit's amount: header (181 bytes), tag, index, key, amount
        data[181 + 1 + 4 + 64 + 7] ^= 1;
    }
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::DataMismatch
    );
    let mut call = submit(1);
    if let Call::SubmitBatch { data, .. } = &mut call {
        data.truncate(data.len() - 1);
    }
    assert!(matches!(
        refusal(send(&l1, &primary(), call)),
        Rejection::BadData(_)
    ));
}

#[test]
fn a_skipped_queue_entry_is_refused() {
    let (_d, l1) = chain(0);
    // a batch that serves the second entry before the first
    let mut l2 = State::open(MemStore::new(), SHAPE.depth).unwrap();
    let w = l2
        .execute_batch(Epoch(1), vec![BatchOp::L1(deposit_entry(1, DEPOSITS[1]))])
        .unwrap();
    let call = Call::SubmitBatch {
        data: keel_state::Encode::encode(&w.batch),
        proof: fixture().batches[0].proof.clone(),
    };
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::QueueOrder { position: 0 }
    );
    // a batch that serves an entry nobody queued
    let w = State::open(MemStore::new(), SHAPE.depth)
        .unwrap()
        .execute_batch(Epoch(1), vec![BatchOp::L1(deposit_entry(0, 5))])
        .unwrap();
    let call = Call::SubmitBatch {
        data: keel_state::Encode::encode(&w.batch),
        proof: fixture().batches[0].proof.clone(),
    };
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::QueueOrder { position: 0 }
    );
    // a batch that claims to start elsewhere in the queue
    let call = submit_edited(1, |b| b.queue_before += Fr::one());
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::WrongQueueStart
    );
    let call = submit_edited(1, |b| b.queue_after += Fr::one());
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::WrongQueueEnd
    );
}

#[test]
fn a_stale_epoch_and_a_fenced_sequencer_are_refused() {
    let (_d, l1) = chain(1);
    let claim = send(&l1, &standby(), Call::ClaimLease);
    let Rejection::LeaseNotExpired { claimable_at_ms } = refusal(claim) else {
        panic!("the lease was claimable at once")
    };
    wait(&l1, DEADLINES.failover_timeout);
    assert!(l1.head().unwrap().time_ms >= claimable_at_ms);
    let r = send(&l1, &standby(), Call::ClaimLease).unwrap();
    assert_eq!(
        r.events,
        [Event::LeaseClaimed {
            epoch: Epoch(2),
            sequencer: address_of(&standby().public_key())
        }]
    );
    // the old primary's epoch-1 batch, and the same batch from the new holder
    for who in [primary(), standby()] {
        assert_eq!(
            refusal(send(&l1, &who, submit(2))),
            Rejection::StaleEpoch {
                current: Epoch(2),
                got: Epoch(1)
            }
        );
    }
    // the old primary stamping the new epoch is not the holder
    let call = submit_edited(2, |b| b.epoch = Epoch(2));
    assert_eq!(
        refusal(send(&l1, &primary(), call)),
        Rejection::NotLeaseHolder
    );
}

#[test]
fn the_lease_is_claimed_only_by_a_registered_sequencer_after_the_timeout() {
    let (_d, l1) = chain(0);
    wait(&l1, DEADLINES.failover_timeout);
    assert_eq!(
        refusal(send(&l1, &funder(), Call::ClaimLease)),
        Rejection::NotRegistered
    );
    assert_eq!(
        refusal(send(&l1, &primary(), Call::ClaimLease)),
        Rejection::AlreadyLeaseHolder
    );
    // a batch restarts the holder's clock
    send(&l1, &primary(), submit(1)).unwrap();
    assert!(matches!(
        refusal(send(&l1, &standby(), Call::ClaimLease)),
        Rejection::LeaseNotExpired { .. }
    ));
    // so does a heartbeat, which only the holder may send
    wait(&l1, DEADLINES.failover_timeout);
    assert_eq!(
        refusal(send(&l1, &standby(), Call::Heartbeat)),
        Rejection::NotLeaseHolder
    );
    send(&l1, &primary(), Call::Heartbeat).unwrap();
    assert!(matches!(
        refusal(send(&l1, &standby(), Call::ClaimLease)),
        Rejection::LeaseNotExpired { .. }
    ));
    wait(&l1, DEADLINES.failover_timeout);
    send(&l1, &standby(), Call::ClaimLease).unwrap();
    assert_eq!(l1.rollup().unwrap().lease.epoch, Epoch(2));
    // the old holder's heartbeat no longer counts
    assert_eq!(
        refusal(send(&l1, &primary(), Call::Heartbeat)),
        Rejection::NotLeaseHolder
    );
}

#[test]
fn exit_mode_needs_a_passed_deadline() {
    let (_d, l1) = chain(0);
    let Rejection::ExitModeNotDue {
        queue_due_ms,
        proof_due_ms,
    } = refusal(send(&l1, &funder(), Call::ActivateExitMode))
    else {
        panic!("exit mode was due at once")
    };
    assert_eq!(queue_due_ms, Some(T0 + 60_000));
    assert_eq!(proof_due_ms, T0 + 600_000);
    // serving the queue moves the forced-inclusion deadline to the next unserved entry
    send(&l1, &primary(), submit(1)).unwrap();
    send(&l1, &primary(), submit(2)).unwrap();
    wait(&l1, DEADLINES.forced_inclusion);
    assert!(matches!(
        refusal(send(&l1, &funder(), Call::ActivateExitMode)),
        Rejection::ExitModeNotDue {
            queue_due_ms: None,
            ..
        }
    ));
}

#[test]
fn an_unserved_forced_entry_lets_anyone_activate_exit_mode_and_batches_stop() {
    // batch 1 serves entry 0; entry 1 (account 1's deposit) is left unserved
    let (_d, l1) = chain(1);
    let citizen = key(9);
    let r = send(&l1, &citizen, Call::Force(signed_transfer(0, 1, 5, 0))).unwrap();
    assert_eq!(
        r.events,
        [Event::Enqueued {
            position: 2,
            account: None
        }]
    );
    wait(&l1, DEADLINES.forced_inclusion);
    let r = send(&l1, &citizen, Call::ActivateExitMode).unwrap();
    assert_eq!(
        r.events,
        [Event::ExitModeActivated(ExitReason::ForcedInclusion)]
    );
    assert_eq!(
        refusal(send(&l1, &primary(), submit(2))),
        Rejection::ExitModeActive
    );
    assert_eq!(
        refusal(send(&l1, &citizen, Call::ActivateExitMode)),
        Rejection::ExitModeActive
    );
    let pk = key(3).public_key();
    assert_eq!(
        refusal(send(&l1, &funder(), Call::Deposit { pk, amount: 1 })),
        Rejection::ExitModeActive
    );
    wait(&l1, DEADLINES.failover_timeout);
    assert_eq!(
        refusal(send(&l1, &standby(), Call::ClaimLease)),
        Rejection::ExitModeActive
    );
}

#[test]
fn no_proof_for_the_proof_deadline_lets_anyone_activate_exit_mode() {
    let (_d, l1) = chain(2);
    send(&l1, &primary(), submit(3)).unwrap();
    // the queue is fully served; only the proof deadline can pass
    wait(&l1, DEADLINES.proof - std::time::Duration::from_millis(1));
    assert!(matches!(
        refusal(send(&l1, &funder(), Call::ActivateExitMode)),
        Rejection::ExitModeNotDue { .. }
    ));
    wait(&l1, std::time::Duration::from_millis(1));
    let r = send(&l1, &funder(), Call::ActivateExitMode).unwrap();
    assert_eq!(
        r.events,
        [Event::ExitModeActivated(ExitReason::ProofDeadline)]
    );
}

/// A chain with all three batches settled and exit mode active.
fn exit_mode() -> (TempDir, keel_committer::EmbeddedL1) {
    let (d, l1) = chain(3);
    wait(&l1, DEADLINES.proof);
    send(&l1, &funder(), Call::ActivateExitMode).unwrap();
    (d, l1)
}

fn exit_call(i: usize, recipient: L1Address) -> Call {
    let (account, proof) = fixture().accounts[i].clone();
    Call::Exit {
        account,
        proof,
        recipient,
    }
}

#[test]
fn an_exit_outside_exit_mode_is_refused() {
    let (_d, l1) = chain(3);
    assert_eq!(
        refusal(send(&l1, &key(0), exit_call(0, L1Address([1; 20])))),
        Rejection::NotInExitMode
    );
}

#[test]
fn every_account_exits_once_and_the_payouts_equal_the_deposits() {
    let (_d, l1) = exit_mode();
    let to = [L1Address([1; 20]), L1Address([2; 20])];
    let r = send(&l1, &key(0), exit_call(0, to[0])).unwrap();
    assert_eq!(
        r.events,
        [Event::Exited {
            account: AccountIndex(0),
            recipient: to[0],
            amount: DEPOSITS[0] - WITHDRAWN
        }]
    );
    assert_eq!(
        refusal(send(&l1, &key(0), exit_call(0, to[0]))),
        Rejection::AlreadyExited(AccountIndex(0))
    );
    send(&l1, &key(1), exit_call(1, to[1])).unwrap();
    let paid: u64 = [to[0], to[1], L1Address([7; 20])]
        .iter()
        .map(|a| l1.balance(a).unwrap())
        .sum();
    assert_eq!(paid, DEPOSITS.iter().sum::<u64>());
    assert!(l1.exited(AccountIndex(1)).unwrap());
}

#[test]
fn a_wrong_merkle_proof_or_someone_elses_exit_is_refused() {
    let (_d, l1) = exit_mode();
    let to = L1Address([1; 20]);
    // an inflated balance
    let (mut account, proof) = fixture().accounts[0].clone();
    account.balance += 1;
    let call = Call::Exit {
        account,
        proof: proof.clone(),
        recipient: to,
    };
    assert_eq!(
        refusal(send(&l1, &key(0), call)),
        Rejection::WrongMerkleProof
    );
    // a proof for another position
    let (account, mut p) = fixture().accounts[0].clone();
    p.index = AccountIndex(5);
    let call = Call::Exit {
        account,
        proof: p,
        recipient: to,
    };
    assert_eq!(
        refusal(send(&l1, &key(0), call)),
        Rejection::WrongMerkleProof
    );
    // a proof of the wrong depth
    let (account, mut p) = fixture().accounts[0].clone();
    p.siblings.pop();
    let call = Call::Exit {
        account,
        proof: p,
        recipient: to,
    };
    assert_eq!(
        refusal(send(&l1, &key(0), call)),
        Rejection::WrongMerkleProof
    );
    // a state that was never proven: account 0 before its withdrawal
    let mut l2 = State::open(MemStore::new(), SHAPE.depth).unwrap();
    l2.apply(&BatchOp::L1(deposit_entry(0, DEPOSITS[0])))
        .unwrap();
    let call = Call::Exit {
        account: l2.account(AccountIndex(0)).unwrap().unwrap(),
        proof: l2.proof(AccountIndex(0)).unwrap(),
        recipient: to,
    };
    assert_eq!(
        refusal(send(&l1, &key(0), call)),
        Rejection::WrongMerkleProof
    );
    // account 1's exit signed by account 0's owner
    assert_eq!(
        refusal(send(&l1, &key(0), exit_call(1, to))),
        Rejection::NotAccountOwner
    );
    assert_eq!(l1.balance(&to).unwrap(), 0);
    assert!(!l1.exited(AccountIndex(0)).unwrap());
}

#[test]
fn a_forged_or_replayed_transaction_is_refused_and_changes_nothing() {
    let (_d, l1) = chain(0);
    let before = l1.rollup().unwrap();
    let f = funder();
    let pk = key(4).public_key();
    let call = Call::Deposit { pk, amount: 10 };
    let tx = L1Tx::sign(&f, CHAIN, 2, call.clone());
    // a forged signature: another key signs in the funder's name
    let mut forged = L1Tx::sign(&key(4), CHAIN, 2, call.clone());
    forged.signer = f.public_key();
    assert_eq!(refusal(l1.submit(&forged)), Rejection::BadSignature);
    // another chain's transaction
    let other = L1Tx::sign(&f, CHAIN + 1, 2, call.clone());
    assert_eq!(refusal(l1.submit(&other)), Rejection::BadSignature);
    // a changed call under the old signature
    let mut edited = tx.clone();
    edited.call = Call::Deposit { pk, amount: 10_000 };
    assert_eq!(refusal(l1.submit(&edited)), Rejection::BadSignature);
    // a stale nonce and a future one
    let stale = L1Tx::sign(&f, CHAIN, 1, call.clone());
    assert_eq!(
        refusal(l1.submit(&stale)),
        Rejection::BadNonce {
            expected: 2,
            got: 1
        }
    );
    let ahead = L1Tx::sign(&f, CHAIN, 3, call.clone());
    assert!(matches!(
        refusal(l1.submit(&ahead)),
        Rejection::BadNonce { .. }
    ));
    assert_eq!(l1.rollup().unwrap(), before);
    assert_eq!(l1.nonce(&address_of(&f.public_key())).unwrap(), 2);

    l1.submit(&tx).unwrap();
    assert_eq!(
        refusal(l1.submit(&tx)),
        Rejection::BadNonce {
            expected: 3,
            got: 2
        }
    );
    assert_eq!(l1.rollup().unwrap().queue_len, before.queue_len + 1);
}

#[test]
fn deposits_need_funds_and_forced_withdrawals_are_refused() {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    let pk = key(0).public_key();
    let funds = l1.balance(&address_of(&funder().public_key())).unwrap();
    assert_eq!(
        refusal(send(&l1, &funder(), Call::Deposit { pk, amount: 0 })),
        Rejection::ZeroAmount
    );
    assert_eq!(
        refusal(send(
            &l1,
            &funder(),
            Call::Deposit {
                pk,
                amount: funds + 1
            }
        )),
        Rejection::InsufficientBalance {
            balance: funds,
            needed: funds + 1
        }
    );
    assert_eq!(
        refusal(send(&l1, &key(9), Call::Deposit { pk, amount: 1 })),
        Rejection::InsufficientBalance {
            balance: 0,
            needed: 1
        }
    );
    let w = Withdraw::sign(&key(0), AccountIndex(0), L1Address([7; 20]), 1, 0);
    assert_eq!(
        refusal(send(&l1, &key(0), Call::Force(SignedOp::Withdraw(w)))),
        Rejection::ForcedWithdrawal
    );
    assert_eq!(l1.rollup().unwrap().queue_len, 0);
    // a key keeps its index; new keys get the next ones until the tree is full
    let idx = |r: keel_committer::Receipt| match r.events[..] {
        [Event::Enqueued { account, .. }] => account.unwrap().0,
        _ => panic!("{r:?}"),
    };
    assert_eq!(
        idx(send(&l1, &funder(), Call::Deposit { pk, amount: 1 }).unwrap()),
        0
    );
    assert_eq!(
        idx(send(&l1, &funder(), Call::Deposit { pk, amount: 1 }).unwrap()),
        0
    );
    let leaves = 1u32 << SHAPE.depth;
    for i in 1..leaves {
        let pk = key(i).public_key();
        assert_eq!(
            idx(send(&l1, &funder(), Call::Deposit { pk, amount: 1 }).unwrap()),
            i
        );
    }
    let pk = key(leaves).public_key();
    assert_eq!(
        refusal(send(&l1, &funder(), Call::Deposit { pk, amount: 1 })),
        Rejection::TreeFull
    );
    assert_eq!(
        l1.balance(&address_of(&funder().public_key())).unwrap(),
        funds - 1 - u64::from(leaves)
    );
}

#[test]
fn a_deposit_no_proven_batch_consumed_is_refunded_to_its_depositor_once_in_exit_mode() {
    // batches 1 and 2 consume the fixture's two deposits; a third deposit waits in the queue
    let (_d, l1) = chain(2);
    // whoever asks for the refund (here an address with no funds), it goes to the depositor
    let late = SecretKey::from_seed(&[0xF1; 32]);
    let late_address = address_of(&late.public_key());
    let before = l1.balance(&address_of(&funder().public_key())).unwrap();
    let r = send(
        &l1,
        &funder(),
        Call::Deposit {
            pk: key(2).public_key(),
            amount: 40,
        },
    )
    .unwrap();
    assert_eq!(
        r.events,
        [Event::Enqueued {
            position: 2,
            account: Some(AccountIndex(2))
        }]
    );

    // not outside exit mode
    let reclaim = |position| Call::Reclaim { position };
    assert_eq!(
        refusal(send(&l1, &late, reclaim(2))),
        Rejection::NotInExitMode
    );
    wait(&l1, DEADLINES.forced_inclusion);
    send(&l1, &late, Call::ActivateExitMode).unwrap();

    // a consumed deposit (its funds leave by the account's exit) and an empty position are not
    // refundable
    assert_eq!(
        refusal(send(&l1, &late, reclaim(0))),
        Rejection::NotReclaimable { position: 0 }
    );
    assert_eq!(
        refusal(send(&l1, &late, reclaim(3))),
        Rejection::NotReclaimable { position: 3 }
    );
    let r = send(&l1, &late, reclaim(2)).unwrap();
    let funder_address = address_of(&funder().public_key());
    assert_eq!(
        r.events,
        [Event::Reclaimed {
            position: 2,
            recipient: funder_address,
            amount: 40
        }]
    );
    assert_eq!(l1.balance(&funder_address).unwrap(), before);
    assert_eq!(l1.balance(&late_address).unwrap(), 0);
    assert_eq!(
        refusal(send(&l1, &late, reclaim(2))),
        Rejection::AlreadyReclaimed { position: 2 }
    );
    assert_eq!(l1.balance(&funder_address).unwrap(), before);
}

#[test]
fn a_forced_operation_is_not_refundable() {
    let (_d, l1) = chain(2);
    send(&l1, &key(1), Call::Force(signed_transfer(1, 0, 5, 0))).unwrap();
    wait(&l1, DEADLINES.forced_inclusion);
    send(&l1, &key(1), Call::ActivateExitMode).unwrap();
    assert_eq!(
        refusal(send(&l1, &key(1), Call::Reclaim { position: 2 })),
        Rejection::NotReclaimable { position: 2 }
    );
}
