//! The batch circuit under halo2's MockProver: valid batches pass; each broken rule fails.
//!
//! A broken batch cannot come out of the STF (it refuses them), so each negative test takes an
//! honest witness and changes one thing, exactly as a cheating prover would: the operation (then
//! the data commitment is recomputed to match it, so only the rule can fail) or a public input.

use keel_prover::circuit::{CircuitError, PublicInputs, Shape};
use keel_state::{
    test_utils::{deposit, funded_state, key, transfer, withdraw},
    AccountIndex, BatchOp, BatchWitness, Deposit, Epoch, Fr, MemStore, QueueEntry, SignedOp, State,
    Transfer,
};

const DEPTH: u8 = 4;
const FUNDS: u64 = 1_000;

/// Capacity 3 at depth 4 (the `k` is pinned so the tests do not search for it).
fn shape() -> Shape {
    Shape {
        capacity: 3,
        depth: DEPTH,
        k: 17,
    }
}

fn forced(op: BatchOp) -> BatchOp {
    match op {
        BatchOp::L2(s) => BatchOp::L1(QueueEntry::Forced(s)),
        op => op,
    }
}

fn execute(state: &mut State<MemStore>, ops: Vec<BatchOp>) -> BatchWitness {
    let w = state.execute_batch(Epoch(1), ops).expect("a valid batch");
    w.check().expect("the STF's witness checks");
    w
}

fn satisfied(w: &BatchWitness) -> Result<(), CircuitError> {
    shape().mock_prove(w, &PublicInputs::of(&w.batch))
}

/// Replaces operation `i` of an honest witness (what a cheating prover would try).
fn tamper(mut w: BatchWitness, i: usize, op: BatchOp) -> BatchWitness {
    w.batch.ops[i] = op;
    w.ops[i].op = op;
    w
}

fn assert_refused(w: &BatchWitness, public: &PublicInputs) {
    match shape().mock_prove(w, public) {
        Err(CircuitError::Unsatisfied(_)) => {}
        other => panic!("expected an unsatisfied circuit, got {other:?}"),
    }
}

#[test]
fn deposits_transfers_and_withdrawals_are_proven() {
    let mut s = funded_state(DEPTH, 3, FUNDS);
    let w = execute(
        &mut s,
        vec![deposit(5, 77), transfer(0, 1, 100, 0), withdraw(2, 50, 0)],
    );
    satisfied(&w).unwrap();
    // a second batch on the new state: a top-up, a self-transfer and a transfer to the new account
    let w = execute(
        &mut s,
        vec![deposit(5, 3), transfer(1, 1, 10, 0), transfer(0, 5, 1, 1)],
    );
    satisfied(&w).unwrap();
}

#[test]
fn padding_fills_a_short_batch_and_an_empty_one() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    satisfied(&w).unwrap();
    let w = execute(&mut s, vec![]);
    satisfied(&w).unwrap();
}

#[test]
fn rejected_queue_entries_are_consumed_without_effect() {
    let mut s = funded_state(DEPTH, 3, FUNDS);
    let other_key = Deposit {
        to: AccountIndex(1),
        pk: key(9).public_key(),
        amount: 5,
    };
    let w = execute(
        &mut s,
        vec![
            // overdraft through the queue
            forced(transfer(0, 1, FUNDS + 1, 0)),
            // a deposit carrying another key than the account's
            BatchOp::L1(QueueEntry::Deposit(other_key)),
            // a valid forced withdrawal
            forced(withdraw(2, 9, 0)),
        ],
    );
    assert!(matches!(w.ops[0].outcome, keel_state::Outcome::Rejected(_)));
    assert!(matches!(w.ops[1].outcome, keel_state::Outcome::Rejected(_)));
    satisfied(&w).unwrap();
}

#[test]
fn a_forced_entry_with_a_forged_signature_or_an_unknown_sender_is_rejected_not_stuck() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let forged = Transfer::sign(&key(7), AccountIndex(0), AccountIndex(1), 5, 0);
    let w = execute(
        &mut s,
        vec![
            BatchOp::L1(QueueEntry::Forced(SignedOp::Transfer(forged))),
            forced(transfer(9, 0, 5, 0)),
            // recipient outside the tree
            forced(transfer(0, 1 << DEPTH, 5, 0)),
        ],
    );
    assert!(w
        .ops
        .iter()
        .all(|o| matches!(o.outcome, keel_state::Outcome::Rejected(_))));
    satisfied(&w).unwrap();
}

#[test]
fn a_forged_signature_is_refused() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    let forged = Transfer::sign(&key(1), AccountIndex(0), AccountIndex(1), 5, 0);
    let w = tamper(w, 0, BatchOp::L2(SignedOp::Transfer(forged)));
    assert_refused(&w, &PublicInputs::of(&w.batch));
}

#[test]
fn a_replayed_nonce_is_refused() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 1)]);
    // the first transfer again, validly signed, with its spent nonce
    let w = tamper(w, 0, transfer(0, 1, 5, 0));
    assert_refused(&w, &PublicInputs::of(&w.batch));
}

#[test]
fn an_overdraft_is_refused() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, FUNDS, 0)]);
    satisfied(&w).unwrap();
    let w = tamper(w, 0, transfer(0, 1, FUNDS + 1, 0));
    assert_refused(&w, &PublicInputs::of(&w.batch));
}

#[test]
fn an_overflow_is_refused() {
    let mut s = funded_state(DEPTH, 1, FUNDS);
    s.apply(&deposit(1, u64::MAX - 10)).unwrap();
    let w = execute(&mut s, vec![transfer(0, 1, 10, 0)]);
    satisfied(&w).unwrap();
    let w = tamper(w, 0, transfer(0, 1, 11, 0));
    assert_refused(&w, &PublicInputs::of(&w.batch));
}

#[test]
fn a_wrong_new_root_is_refused() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    let mut public = PublicInputs::of(&w.batch);
    public.new_root += Fr::one();
    assert_refused(&w, &public);
}

#[test]
fn a_wrong_data_commitment_is_refused() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    let mut public = PublicInputs::of(&w.batch);
    public.data_commitment = keel_state::data_commitment(&[transfer(0, 1, 6, 0)]);
    assert_refused(&w, &public);
}

#[test]
fn a_skipped_queue_entry_is_refused() {
    // the L1 queue holds two deposits; the batch serves only the second
    let (first, second) = (deposit(4, 10), deposit(5, 20));
    let queue_hash = |start: Fr, entries: &[BatchOp]| {
        entries.iter().fold(start, |q, op| match op {
            BatchOp::L1(e) => e.chain(q),
            BatchOp::L2(_) => q,
        })
    };
    let mut s = funded_state(DEPTH, 1, FUNDS);
    let q0 = s.queue_hash();
    let w = execute(&mut s, vec![second]);
    let mut public = PublicInputs::of(&w.batch);
    assert_eq!(public.queue_before, q0);
    // what the L1 requires after consuming its first two entries
    let mut l1 = funded_state(DEPTH, 1, FUNDS);
    let expected = execute(&mut l1, vec![first, second]).batch.queue_after;
    assert_ne!(expected, public.queue_after);
    assert_eq!(expected, queue_hash(q0, &[first, second]));
    public.queue_after = expected;
    assert_refused(&w, &public);
}

#[test]
fn witnesses_that_do_not_fit_the_circuit_are_refused_with_a_reason() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, (0..4).map(|n| transfer(0, 1, 1, n)).collect());
    assert_eq!(
        shape().mock_prove(&w, &PublicInputs::of(&w.batch)),
        Err(CircuitError::Capacity {
            capacity: 3,
            ops: 4
        })
    );
    let mut deep = funded_state(DEPTH + 1, 2, FUNDS);
    let w = execute(&mut deep, vec![transfer(0, 1, 1, 0)]);
    assert_eq!(
        shape().mock_prove(&w, &PublicInputs::of(&w.batch)),
        Err(CircuitError::Depth {
            circuit: DEPTH,
            witness: DEPTH + 1
        })
    );
}
