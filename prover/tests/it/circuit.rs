//! The batch circuit under halo2's MockProver: valid batches pass; each broken rule fails.
//!
//! A broken batch cannot come out of the STF (it refuses them), so each negative test takes an
//! honest witness and changes one thing, exactly as a cheating prover would: the operation (then
//! the data commitment is recomputed to match it, so only the rule can fail) or a public input.

use keel_prover::circuit::{CircuitError, PublicInputs, Shape, Tag, Tamper};
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
        k: 12,
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

/// What a cheating prover gets when it alters assigned cells: the circuit's message names what
/// refused it. `gate` must be among the refusals.
fn refused_by(w: &BatchWitness, tamper: &[Tamper], gate: &str) {
    refusals(w, tamper, gate, None)
}

/// [`refused_by`] naming the constraint of the gate that must refuse.
fn refused_by_constraint(w: &BatchWitness, tamper: &[Tamper], gate: &str, index: usize) {
    refusals(w, tamper, gate, Some(index))
}

fn refusals(w: &BatchWitness, tamper: &[Tamper], gate: &str, index: Option<usize>) {
    match shape().mock_prove_tampered(w, &PublicInputs::of(&w.batch), tamper) {
        Err(CircuitError::Unsatisfied(msg)) => {
            let found = msg.split("; ").any(|f| {
                f.contains(gate)
                    && index.is_none_or(|i| f.contains(&format!("Constraint {i} in gate")))
            });
            assert!(found, "expected a refusal by {gate} {index:?}, got: {msg}")
        }
        other => panic!("expected an unsatisfied circuit, got {other:?}"),
    }
}

fn honest() -> BatchWitness {
    let mut s = funded_state(DEPTH, 3, FUNDS);
    execute(&mut s, vec![transfer(0, 1, 100, 0), withdraw(2, 50, 0)])
}

fn cell(tag: Tag, nth: usize, value: Fr) -> Tamper {
    Tamper { tag, nth, value }
}

fn value(w: &BatchWitness, tag: Tag, nth: usize) -> Fr {
    shape().tagged_values(w, tag).unwrap()[nth]
}

#[test]
fn the_honest_witness_passes_and_an_untouched_tamper_list_changes_nothing() {
    let w = honest();
    shape()
        .mock_prove_tampered(&w, &PublicInputs::of(&w.batch), &[])
        .unwrap();
    // writing a cell's own value back is no change
    let v = value(&w, Tag::PoseidonRound, 40);
    shape()
        .mock_prove_tampered(
            &w,
            &PublicInputs::of(&w.batch),
            &[cell(Tag::PoseidonRound, 40, v)],
        )
        .unwrap();
}

#[test]
fn a_poseidon_round_value_is_refused_by_its_round_gate() {
    let w = honest();
    // a cell of a partial-round row (row 2 of the first permutation: cells 7.. of the block)
    let nth = 6 * 2 + 3;
    let v = value(&w, Tag::PoseidonRound, nth);
    refused_by(
        &w,
        &[cell(Tag::PoseidonRound, nth, v + Fr::one())],
        "'part5'",
    );
    // a full-round cell
    let v = value(&w, Tag::PoseidonRound, 4);
    refused_by(
        &w,
        &[cell(Tag::PoseidonRound, 4, v + Fr::one())],
        "'perm_first'",
    );
}

#[test]
fn a_non_boolean_index_bit_is_refused_even_with_consistent_hash_inputs() {
    let w = honest();
    // the first Merkle level of the first path: node = leaf hash (exists = 1), bit 0 of index 0
    let sib = value(&w, Tag::MerkleSibling, 0);
    let left = value(&w, Tag::MerkleLeft, 0);
    assert_eq!(value(&w, Tag::MerkleBit, 0), Fr::zero());
    let node = left; // bit 0: the node is on the left
                     // bit = 2 and the inputs the mixing formula gives for it
    let two = Fr::from(2);
    let l2 = node + two * (sib - node);
    let r2 = sib + two * (node - sib);
    // refused by the bit's booleanity (constraint 0), the mixing constraints holding
    refused_by_constraint(
        &w,
        &[
            cell(Tag::MerkleBit, 0, two),
            cell(Tag::MerkleLeft, 0, l2),
            cell(Tag::MerkleRight, 0, r2),
        ],
        "('merkle_leaf')",
        0,
    );
}

#[test]
fn a_swapped_sibling_is_refused_by_the_merkle_gate() {
    let w = honest();
    let (left, right) = (
        value(&w, Tag::MerkleLeft, 3),
        value(&w, Tag::MerkleRight, 3),
    );
    refused_by(
        &w,
        &[
            cell(Tag::MerkleLeft, 3, right),
            cell(Tag::MerkleRight, 3, left),
        ],
        "('merkle')",
    );
}

#[test]
fn a_scalar_decomposition_bit_is_refused_by_the_double_and_add_gate() {
    let w = honest();
    // z_{i+1} = 2·z_i + bit: make one bit 2 (z + 1 one row on)
    let nth = 100;
    let z = value(&w, Tag::VarZ, nth);
    refused_by(&w, &[cell(Tag::VarZ, nth, z + Fr::one())], "('var')");
    // flip a bit consistently from there on would need the whole chain redone: the booleanity
    // constraint alone refuses a non-bit
    let z_prev = value(&w, Tag::VarZ, nth - 1);
    refused_by_constraint(
        &w,
        &[cell(Tag::VarZ, nth, z_prev * Fr::from(2) + Fr::from(2))],
        "('var')",
        0,
    );
}

#[test]
fn the_running_sum_of_the_scalar_multiplication_is_bound_to_the_challenge() {
    let w = honest();
    // the last running-sum cell (the tail row) feeds h = 2·z + bit + 2^253·top
    let zs = shape().tagged_values(&w, Tag::VarZ).unwrap();
    let per_slot = zs.len() / shape().capacity;
    let last = per_slot - 1;
    refused_by(
        &w,
        &[cell(Tag::VarZ, last, zs[last] + Fr::one())],
        "('var_last')",
    );
    // the canonicity state cannot start "less" when the hash's top bit says "equal"
    let sigma = value(&w, Tag::VarSigma, 0);
    refused_by(
        &w,
        &[cell(Tag::VarSigma, 0, Fr::one() - sigma)],
        "a copy constraint",
    );
}

#[test]
fn an_exceptional_addition_case_is_refused() {
    let w = honest();
    // x_A = x_P in a double-and-add row: the step's slope would be unconstrained; the gate
    // that produced x_A refuses it
    let xp = shape().tagged_values(&w, Tag::VarXA).unwrap();
    let nth = 50;
    // the key's x is the fixed x_P of the chain: take it from the Schnorr input (x.pk of slot 0)
    let key = keel_state::test_utils::key(0).public_key().xy().0;
    assert_ne!(xp[nth], key);
    refused_by(&w, &[cell(Tag::VarXA, nth, key)], "('var')");
    // and in the fixed-base chain: the accumulator's x made the window point's
    let fb = shape().tagged_values(&w, Tag::FbXA).unwrap();
    assert!(fb.len() > 10);
    refused_by(&w, &[cell(Tag::FbXA, 10, fb[9])], "('fb_add')");
}

#[test]
fn a_fixed_base_digit_or_a_range_limb_outside_the_table_is_refused_by_the_lookup() {
    let w = honest();
    let d = value(&w, Tag::FbDigit, 5);
    refused_by(&w, &[cell(Tag::FbDigit, 5, d + Fr::one())], "lookup");
    let z = value(&w, Tag::RangeZ, 1);
    refused_by(&w, &[cell(Tag::RangeZ, 1, z + Fr::from(1 << 20))], "lookup");
}

#[test]
fn a_complete_addition_or_a_glue_output_is_refused_by_its_gate() {
    let w = honest();
    let c = value(&w, Tag::CaddOut, 0);
    refused_by(&w, &[cell(Tag::CaddOut, 0, c + Fr::one())], "('cadd')");
    let g = value(&w, Tag::GlueOut, 30);
    refused_by(&w, &[cell(Tag::GlueOut, 30, g + Fr::one())], "('glue')");
}

#[test]
fn an_l2_operation_on_an_index_outside_the_tree_is_refused() {
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    satisfied(&w).unwrap();
    // the same transfer to an account past the tree (the STF refuses it: a prover tries)
    let mut w = tamper(w, 0, transfer(0, 1 << DEPTH, 5, 0));
    w.ops[0].leaves.truncate(1);
    assert_refused(&w, &PublicInputs::of(&w.batch));
    // and from one
    let mut s = funded_state(DEPTH, 2, FUNDS);
    let w = execute(&mut s, vec![transfer(0, 1, 5, 0)]);
    let mut w = tamper(w, 0, transfer(1 << DEPTH, 1, 5, 0));
    w.ops[0].leaves.remove(0);
    assert_refused(&w, &PublicInputs::of(&w.batch));
}

/// A transfer carrying the signature `(R, s)` given, whatever it is.
fn transfer_signed_with(
    from: u32,
    to: u32,
    amount: u64,
    nonce: u64,
    r: halo2_base::halo2_proofs::halo2curves::grumpkin::G1Affine,
    s: halo2_base::halo2_proofs::halo2curves::grumpkin::Fr,
) -> BatchOp {
    use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
    let mut bytes = [0u8; 96];
    bytes[..32].copy_from_slice(&r.x.to_repr());
    bytes[32..64].copy_from_slice(&r.y.to_repr());
    bytes[64..].copy_from_slice(&s.to_repr());
    let signature = keel_state::Signature::from_bytes(&bytes).expect("a well-formed signature");
    BatchOp::L1(QueueEntry::Forced(SignedOp::Transfer(Transfer {
        from: AccountIndex(from),
        to: AccountIndex(to),
        amount,
        nonce,
        signature,
    })))
}

/// Forced entries whose keys and signatures a hostile user chose: the generator as key, a
/// commitment `R` equal to the key or to its negation (valid signatures, nonce ±sk), `s = 0`,
/// `s = q − 1`, a forged `(R, s)`. Each is proven applied or rejected as the STF decides; none
/// leaves the prover without a witness. (Grumpkin has prime order: no key of small order exists,
/// and the identity cannot be encoded as a key or a commitment; the gadget tests give the
/// circuit `(0, 0)` and points off the curve directly.)
#[test]
fn hostile_keys_and_signatures_in_forced_entries_are_proven_never_stuck() {
    use halo2_base::halo2_proofs::halo2curves::{
        ff::{Field, PrimeField},
        group::Curve,
        grumpkin::{Fr as Scalar, G1},
    };
    use keel_state::signature::{challenge_hash, challenge_scalar};
    let g = G1::generator();
    let mut one = [0u8; 32];
    one[0] = 1;
    let generator_key = keel_state::SecretKey::from_bytes(&one).unwrap();
    assert_eq!(generator_key.public_key().point(), g.to_affine());
    let mut s = funded_state(DEPTH, 3, FUNDS);
    s.apply(&BatchOp::L1(QueueEntry::Deposit(Deposit {
        to: AccountIndex(3),
        pk: generator_key.public_key(),
        amount: FUNDS,
    })))
    .unwrap();
    // a valid signature by `sk` with nonce scalar `k`, on the transfer's message
    let sign_with = |sk: Scalar, k: Scalar, from: u32, to: u32, nonce: u64| {
        let pk = (g * sk).to_affine();
        let r = (g * k).to_affine();
        let msg = Transfer::message(AccountIndex(from), AccountIndex(to), 5, nonce);
        let h = challenge_hash((r.x, r.y), (pk.x, pk.y), &msg);
        transfer_signed_with(from, to, 5, nonce, r, k + challenge_scalar(h) * sk)
    };
    let sk0 = Scalar::from_repr_vartime(key(0).to_bytes()).unwrap();
    let batches = [
        vec![
            // the generator as key, R = pk (nonce scalar 1): valid
            sign_with(Scalar::ONE, Scalar::ONE, 3, 0, 0),
            // forged: R = 2G, s = 7
            transfer_signed_with(3, 0, 5, 1, (g + g).to_affine(), Scalar::from(7)),
            // R = −pk: valid
            sign_with(Scalar::ONE, -Scalar::ONE, 3, 0, 1),
        ],
        vec![
            // s = q − 1, and s = 0, with R = G
            transfer_signed_with(3, 1, 5, 2, g.to_affine(), -Scalar::ONE),
            transfer_signed_with(3, 1, 5, 2, g.to_affine(), Scalar::ZERO),
            // an ordinary account whose commitment is its own key (nonce = sk): valid
            sign_with(sk0, sk0, 0, 1, 0),
        ],
    ];
    let mut outcomes = Vec::new();
    for ops in batches {
        let w = execute(&mut s, ops);
        outcomes.extend(
            w.ops
                .iter()
                .map(|o| o.outcome == keel_state::Outcome::Applied),
        );
        satisfied(&w).unwrap();
    }
    assert_eq!(outcomes, [true, false, true, false, false, true]);
}
