//! The STF, rule by rule: each refusal is typed and changes nothing; witnesses check out.

use keel_state::{
    test_utils::{deposit, funded_state, key, transfer, withdraw},
    AccountIndex, Batch, BatchError, BatchOp, Deposit, Epoch, Fr, MemStore, Outcome, QueueEntry,
    SignedOp, State, StfError, Transfer,
};

const D: u8 = 6;

fn snapshot(s: &State<MemStore>, n: u32) -> (Fr, Fr, Vec<Option<keel_state::Account>>) {
    let accounts = (0..n)
        .map(|i| s.account(AccountIndex(i)).unwrap())
        .collect();
    (s.root().unwrap(), s.queue_hash(), accounts)
}

/// Applies `op`, expects `want`, and checks that nothing changed.
fn refused(s: &mut State<MemStore>, op: BatchOp, want: StfError) {
    let before = snapshot(s, 8);
    assert_eq!(s.apply(&op).unwrap_err(), want);
    assert_eq!(
        snapshot(s, 8),
        before,
        "a refused operation changed the state"
    );
}

#[test]
fn transfer_moves_balance_and_bumps_nonce() {
    let mut s = funded_state(D, 3, 100);
    let w = s.apply(&transfer(0, 1, 30, 0)).unwrap();
    assert_eq!(w.outcome, Outcome::Applied);
    assert_eq!(w.leaves.len(), 2);
    w.check(D).unwrap();
    let a0 = s.account(AccountIndex(0)).unwrap().unwrap();
    let a1 = s.account(AccountIndex(1)).unwrap().unwrap();
    assert_eq!(
        (a0.balance, a0.nonce, a1.balance, a1.nonce),
        (70, 1, 130, 0)
    );
    assert_eq!(w.root_after, s.root().unwrap());
}

#[test]
fn self_transfer_only_bumps_nonce() {
    let mut s = funded_state(D, 2, 100);
    s.apply(&transfer(1, 1, 100, 0)).unwrap().check(D).unwrap();
    let a = s.account(AccountIndex(1)).unwrap().unwrap();
    assert_eq!((a.balance, a.nonce), (100, 1));
}

#[test]
fn withdraw_burns() {
    let mut s = funded_state(D, 2, 100);
    s.apply(&withdraw(0, 100, 0)).unwrap().check(D).unwrap();
    assert_eq!(s.account(AccountIndex(0)).unwrap().unwrap().balance, 0);
}

#[test]
fn deposit_creates_then_tops_up() {
    let mut s = funded_state(D, 0, 0);
    assert_eq!(s.account(AccountIndex(5)).unwrap(), None);
    s.apply(&deposit(5, 10)).unwrap().check(D).unwrap();
    s.apply(&deposit(5, 15)).unwrap().check(D).unwrap();
    let a = s.account(AccountIndex(5)).unwrap().unwrap();
    assert_eq!((a.balance, a.nonce, a.pk), (25, 0, key(5).public_key()));
}

#[test]
fn forged_signature_is_refused() {
    let mut s = funded_state(D, 3, 100);
    // signed by account 2's key, claiming to be from account 0
    let forged = BatchOp::L2(SignedOp::Transfer(Transfer::sign(
        &key(2),
        AccountIndex(0),
        AccountIndex(2),
        50,
        0,
    )));
    refused(
        &mut s,
        forged,
        StfError::BadSignature {
            account: AccountIndex(0),
            source: keel_state::SignatureError::Invalid,
        },
    );
    // a valid signature on different fields (amount changed after signing)
    let BatchOp::L2(SignedOp::Transfer(mut t)) = transfer(0, 1, 5, 0) else {
        unreachable!()
    };
    t.amount = 50;
    refused(
        &mut s,
        BatchOp::L2(SignedOp::Transfer(t)),
        StfError::BadSignature {
            account: AccountIndex(0),
            source: keel_state::SignatureError::Invalid,
        },
    );
}

#[test]
fn replayed_and_future_nonces_are_refused() {
    let mut s = funded_state(D, 2, 100);
    let op = transfer(0, 1, 1, 0);
    s.apply(&op).unwrap();
    refused(
        &mut s,
        op,
        StfError::BadNonce {
            account: AccountIndex(0),
            expected: 1,
            got: 0,
        },
    );
    refused(
        &mut s,
        transfer(0, 1, 1, 5),
        StfError::BadNonce {
            account: AccountIndex(0),
            expected: 1,
            got: 5,
        },
    );
}

#[test]
fn unknown_accounts_are_refused() {
    let mut s = funded_state(D, 2, 100);
    refused(
        &mut s,
        transfer(4, 1, 1, 0),
        StfError::UnknownAccount(AccountIndex(4)),
    );
    refused(
        &mut s,
        transfer(0, 4, 1, 0),
        StfError::UnknownAccount(AccountIndex(4)),
    );
    refused(
        &mut s,
        withdraw(6, 1, 0),
        StfError::UnknownAccount(AccountIndex(6)),
    );
}

#[test]
fn index_beyond_the_tree_is_refused() {
    let mut s = funded_state(D, 2, 100);
    refused(
        &mut s,
        transfer(0, 64, 1, 0),
        StfError::IndexOutOfRange {
            index: AccountIndex(64),
            depth: D,
        },
    );
    // a queue entry is consumed instead, with no effect and no leaf to read
    let root = s.root().unwrap();
    let w = s.apply(&deposit(1 << 20, 1)).unwrap();
    assert_eq!(
        w.outcome,
        Outcome::Rejected(StfError::IndexOutOfRange {
            index: AccountIndex(1 << 20),
            depth: D
        })
    );
    assert!(w.leaves.is_empty());
    assert_eq!(s.root().unwrap(), root);
}

#[test]
fn insufficient_balance_is_refused() {
    let mut s = funded_state(D, 2, 100);
    refused(
        &mut s,
        transfer(0, 1, 101, 0),
        StfError::InsufficientBalance {
            account: AccountIndex(0),
            balance: 100,
            amount: 101,
        },
    );
    refused(
        &mut s,
        withdraw(1, u64::MAX, 0),
        StfError::InsufficientBalance {
            account: AccountIndex(1),
            balance: 100,
            amount: u64::MAX,
        },
    );
}

#[test]
fn overflow_is_refused() {
    let mut s = funded_state(D, 2, 100);
    s.apply(&deposit(1, u64::MAX - 100)).unwrap();
    refused(
        &mut s,
        transfer(0, 1, 1, 0),
        StfError::Overflow(AccountIndex(1)),
    );
    // the deposit path has the same check, and as a queue entry it is consumed, not applied
    let before = snapshot(&s, 8);
    let w = s.apply(&deposit(1, 1)).unwrap();
    assert_eq!(
        w.outcome,
        Outcome::Rejected(StfError::Overflow(AccountIndex(1)))
    );
    assert_eq!(snapshot(&s, 8).2, before.2);
    assert_eq!(s.root().unwrap(), before.0);
    assert_ne!(
        s.queue_hash(),
        before.1,
        "a rejected queue entry is still consumed"
    );
    w.check(D).unwrap();
}

#[test]
fn deposit_with_another_key_is_rejected_but_consumed() {
    let mut s = funded_state(D, 2, 100);
    let op = BatchOp::L1(QueueEntry::Deposit(Deposit {
        to: AccountIndex(1),
        pk: key(9).public_key(),
        amount: 5,
    }));
    let root = s.root().unwrap();
    let w = s.apply(&op).unwrap();
    assert_eq!(
        w.outcome,
        Outcome::Rejected(StfError::KeyMismatch(AccountIndex(1)))
    );
    assert_eq!(s.root().unwrap(), root);
    assert_eq!(
        w.leaves.len(),
        1,
        "a rejected entry carries a read of its account"
    );
    w.check(D).unwrap();
}

#[test]
fn forced_transfer_with_bad_signature_is_consumed_without_effect() {
    let mut s = funded_state(D, 2, 100);
    let forced = BatchOp::L1(QueueEntry::Forced(SignedOp::Transfer(Transfer::sign(
        &key(1),
        AccountIndex(0),
        AccountIndex(1),
        5,
        0,
    ))));
    let root = s.root().unwrap();
    let w = s.apply(&forced).unwrap();
    assert!(matches!(
        w.outcome,
        Outcome::Rejected(StfError::BadSignature { .. })
    ));
    assert_eq!(w.leaves.len(), 2);
    assert_eq!(s.root().unwrap(), root);
    w.check(D).unwrap();
}

#[test]
fn malformed_bytes_are_refused() {
    let mut s = funded_state(D, 2, 100);
    let root = s.root().unwrap();
    assert!(matches!(
        s.apply_bytes(&[0x7f, 1, 2]),
        Err(StfError::Malformed(_))
    ));
    assert!(matches!(s.apply_bytes(&[]), Err(StfError::Malformed(_))));
    let mut ok = keel_state::Encode::encode(&transfer(0, 1, 1, 0));
    ok.push(0);
    assert!(matches!(s.apply_bytes(&ok), Err(StfError::Malformed(_))));
    assert_eq!(s.root().unwrap(), root);
    ok.pop();
    s.apply_bytes(&ok).unwrap();
}

#[test]
fn batch_executes_commits_and_replays() {
    let mut s = funded_state(D, 4, 100);
    let ops = vec![
        transfer(0, 1, 10, 0),
        deposit(5, 7),
        withdraw(2, 3, 0),
        transfer(1, 3, 50, 0),
    ];
    let w = s.execute_batch(Epoch(1), ops).unwrap();
    w.check().unwrap();
    assert_eq!(w.batch.number.0, 1);
    assert_eq!(s.last_batch().0, 1);
    assert_eq!(w.batch.new_root, s.root().unwrap());

    // a replica that saw the same genesis replays the batch to the same state
    let mut replica = funded_state(D, 4, 100);
    let w2 = replica.apply_batch(&w.batch).unwrap();
    assert_eq!(w2, w);
    assert_eq!(replica.root().unwrap(), s.root().unwrap());
}

#[test]
fn batch_with_a_bad_l2_op_is_refused_whole() {
    let mut s = funded_state(D, 3, 100);
    let root = s.root().unwrap();
    let ops = vec![transfer(0, 1, 10, 0), transfer(1, 2, 1_000, 0)];
    let err = s.execute_batch(Epoch(1), ops).unwrap_err();
    assert!(matches!(
        err,
        BatchError::Op {
            index: 1,
            source: StfError::InsufficientBalance { .. }
        }
    ));
    assert_eq!(s.root().unwrap(), root);
    assert_eq!(s.last_batch().0, 0);
}

#[test]
fn posted_batch_must_match_re_execution() {
    let mut primary = funded_state(D, 3, 100);
    let good = primary
        .execute_batch(Epoch(1), vec![transfer(0, 1, 10, 0)])
        .unwrap()
        .batch;

    let check = |b: Batch, want: fn(&BatchError) -> bool| {
        let mut replica = funded_state(D, 3, 100);
        let root = replica.root().unwrap();
        let err = replica.apply_batch(&b).unwrap_err();
        assert!(want(&err), "unexpected {err:?}");
        assert_eq!(replica.root().unwrap(), root);
        assert_eq!(replica.last_batch().0, 0);
    };
    check(
        Batch {
            new_root: good.new_root + Fr::one(),
            ..good.clone()
        },
        |e| matches!(e, BatchError::NewRoot { .. }),
    );
    check(
        Batch {
            prev_root: Fr::one(),
            ..good.clone()
        },
        |e| matches!(e, BatchError::PrevRoot { .. }),
    );
    check(
        Batch {
            queue_after: Fr::one(),
            ..good.clone()
        },
        |e| matches!(e, BatchError::QueueAfter { .. }),
    );
    check(
        Batch {
            queue_before: Fr::one(),
            ..good.clone()
        },
        |e| matches!(e, BatchError::QueueBefore { .. }),
    );
    check(
        Batch {
            number: keel_state::BatchNumber(2),
            ..good.clone()
        },
        |e| matches!(e, BatchError::Number { .. }),
    );
    check(
        Batch {
            ops: vec![transfer(0, 1, 11, 0)],
            ..good.clone()
        },
        |e| matches!(e, BatchError::NewRoot { .. }),
    );
}

#[test]
fn proofs_verify_against_the_root() {
    let s = funded_state(D, 5, 100);
    let root = s.root().unwrap();
    for i in 0..8u32 {
        let p = s.proof(AccountIndex(i)).unwrap();
        let leaf = keel_state::account::leaf_of(s.account(AccountIndex(i)).unwrap().as_ref());
        assert!(p.verify(leaf, root), "account {i}");
        assert!(!p.verify(leaf + Fr::one(), root));
    }
    assert!(s.proof(AccountIndex(64)).is_err());
}

#[test]
fn a_planned_batch_commits_only_on_the_state_it_was_planned_on() {
    let mut s = funded_state(4, 2, 100);
    let a = s.plan_batch(Epoch(1), vec![transfer(0, 1, 5, 0)]).unwrap();
    let b = s.plan_batch(Epoch(1), vec![transfer(1, 0, 5, 0)]).unwrap();
    // planning changed nothing
    assert_eq!(s.last_batch(), keel_state::BatchNumber(0));
    let w = s.commit_batch(a).unwrap();
    assert_eq!(s.root().unwrap(), w.batch.new_root);
    let before = snapshot(&s, 2);
    // `b` was planned on the state `a` moved on from: refused, nothing written
    assert!(matches!(s.commit_batch(b), Err(BatchError::Number { .. })));
    assert_eq!(snapshot(&s, 2), before);
}
