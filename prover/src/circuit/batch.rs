//! The batch circuit's layout: one slot per operation, chained through the running state root,
//! queue hash and data commitment.
//!
//! Per slot (every slot has the same shape, whatever it holds):
//!
//! ```text
//! kind bits dep, tr, wd (at most one; none = padding) · from_queue bit
//! word   = kind + 2^8·a + 2^40·b + 2^72·amount + 2^136·nonce        (each part range-checked)
//! e₁, e₂ = dep ? (pk.x, pk.y) : wd ? (recipient, 0) : (0, 0)
//! msg    = tr ? [word] : [word, recipient]                            (what a signature covers)
//! entry  = Poseidon(from_queue, word, e₁, e₂, R.x, R.y, s_lo, s_hi)   (R, s = 0 for deposits)
//! ok     = deposit:  a < 2^D ∧ (¬x.exists ∨ (x.pk = pk ∧ x.balance + amount < 2^64))
//!          signed:   a < 2^D ∧ x.exists ∧ schnorr(x.pk) ∧ nonce = x.nonce ∧ x.nonce ≠ 2^64−1
//!                    ∧ x.balance ≥ amount ∧ (transfer ⇒ b < 2^D ∧ y.exists ∧ (a = b ∨ y.balance + amount < 2^64))
//! L2 operation ⇒ ok              (an L2 operation that breaks a rule makes the batch unprovable)
//! x path ⊢ root → root₁          (authenticated when the slot is used and a < 2^D; updated when ok)
//! y path ⊢ root₁ → root₂         (the same for a transfer's recipient, after the sender's write)
//! data   ← Poseidon(data, entry) for every operation;  count += 1
//! queue  ← Poseidon(queue, entry) for every queue entry, applied or not
//! ```
//!
//! These are the rules of `keel_state::stf`, evaluated as bits rather than in order: the circuit
//! proves whether an operation applies, not which rule a rejected one broke first.

use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::{
    gates::{circuit::builder::BaseCircuitBuilder, GateInstructions, RangeChip, RangeInstructions},
    poseidon::hasher::PoseidonHasher,
    AssignedValue, Context,
    QuantumCell::Constant,
};
use keel_state::{ops, poseidon, Fr};

use super::{
    ecc::{schnorr_ok, SchnorrInput},
    input::{CircuitInput, Kind, LeafInput, OpInput},
};

type Hasher = PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>;
type Cell = AssignedValue<Fr>;

/// Where the batch stands between two slots.
#[derive(Clone, Copy)]
struct Running {
    root: Cell,
    queue: Cell,
    data: Cell,
    count: Cell,
}

struct Leaf {
    exists: Cell,
    pk: (Cell, Cell),
    balance: Cell,
    nonce: Cell,
    siblings: Vec<Cell>,
}

/// Lays out the whole batch in `builder` and exposes the public inputs.
pub(crate) fn synthesize(builder: &mut BaseCircuitBuilder<Fr>, depth: u8, input: &CircuitInput) {
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let gate = &range.gate;
    let mut hasher = Hasher::new(poseidon::spec().clone());
    hasher.initialize_consts(ctx, gate);

    let p = &input.public;
    let prev_root = ctx.load_witness(p.prev_root);
    let number = ctx.load_witness(Fr::from(p.batch_number));
    let queue_before = ctx.load_witness(p.queue_before);
    let mut run = Running {
        root: prev_root,
        queue: queue_before,
        data: ctx.load_zero(),
        count: ctx.load_zero(),
    };
    for op in &input.ops {
        run = slot(ctx, &range, &hasher, depth, op, run);
    }
    let data_commitment = hasher.hash_fix_len_array(ctx, gate, &[run.data, run.count]);
    builder.assigned_instances[0] = vec![
        prev_root,
        run.root,
        number,
        data_commitment,
        queue_before,
        run.queue,
    ];
}

fn bit(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, b: bool) -> Cell {
    let c = ctx.load_witness(Fr::from(u64::from(b)));
    gate.assert_bit(ctx, c);
    c
}

fn assert_zero(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, c: Cell) {
    gate.assert_is_const(ctx, &c, &Fr::zero());
}

fn load_leaf(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, l: &LeafInput) -> Leaf {
    let exists = bit(ctx, &range.gate, l.exists);
    let balance = ctx.load_witness(Fr::from(l.balance));
    let nonce = ctx.load_witness(Fr::from(l.nonce));
    range.range_check(ctx, balance, 64);
    range.range_check(ctx, nonce, 64);
    Leaf {
        exists,
        pk: (ctx.load_witness(l.pk.0), ctx.load_witness(l.pk.1)),
        balance,
        nonce,
        siblings: ctx.assign_witnesses(l.siblings.iter().copied()),
    }
}

/// `exists · Poseidon(pk.x, pk.y, balance, nonce)`: the empty leaf is 0.
#[allow(clippy::too_many_arguments)]
fn leaf_hash(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    hasher: &Hasher,
    exists: Cell,
    pk: (Cell, Cell),
    balance: Cell,
    nonce: Cell,
) -> Cell {
    let h = hasher.hash_fix_len_array(ctx, gate, &[pk.0, pk.1, balance, nonce]);
    gate.mul(ctx, exists, h)
}

/// The root `leaf` gives at the position `bits` (leaf level first) with `siblings`.
fn fold(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    hasher: &Hasher,
    leaf: Cell,
    bits: &[Cell],
    siblings: &[Cell],
) -> Cell {
    let mut cur = leaf;
    for (b, s) in bits.iter().zip(siblings) {
        // bit 1: the node is a right child
        let left = gate.select(ctx, *s, cur, *b);
        let right = gate.select(ctx, cur, *s, *b);
        cur = hasher.hash_fix_len_array(ctx, gate, &[left, right]);
    }
    cur
}

/// Whether the 32-bit index `bits` addresses a leaf of a depth-`depth` tree.
fn fits(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, bits: &[Cell], depth: u8) -> Cell {
    if depth >= 32 {
        return ctx.load_constant(Fr::one());
    }
    let high = gate.sum(ctx, bits[usize::from(depth)..].iter().copied());
    gate.is_zero(ctx, high)
}

fn and_all(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, bits: &[Cell]) -> Cell {
    let mut acc = bits[0];
    for b in &bits[1..] {
        acc = gate.and(ctx, acc, *b);
    }
    acc
}

fn slot(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    hasher: &Hasher,
    depth: u8,
    op: &OpInput,
    run: Running,
) -> Running {
    let gate = &range.gate;
    let d = usize::from(depth);
    let one = ctx.load_constant(Fr::one());
    let two_64 = Constant(Fr::from_raw([0, 1, 0, 0]));

    // what the slot holds
    let dep = bit(ctx, gate, op.kind == Kind::Deposit);
    let tr = bit(ctx, gate, op.kind == Kind::Transfer);
    let wd = bit(ctx, gate, op.kind == Kind::Withdraw);
    let used = gate.sum(ctx, [dep, tr, wd]);
    gate.assert_bit(ctx, used);
    let src = bit(ctx, gate, op.from_queue);
    let deposit_off_queue = gate.mul_not(ctx, src, dep);
    assert_zero(ctx, gate, deposit_off_queue);
    let padding_on_queue = gate.mul_not(ctx, used, src);
    assert_zero(ctx, gate, padding_on_queue);

    let [a, b, amount, nonce] =
        [op.a, op.b, op.amount, op.nonce].map(|v| ctx.load_witness(Fr::from(v)));
    range.range_check(ctx, amount, 64);
    range.range_check(ctx, nonce, 64);
    let a_bits = gate.num_to_bits(ctx, a, 32);
    let b_bits = gate.num_to_bits(ctx, b, 32);
    let recipient = ctx.load_witness(op.recipient);
    let dpk = (
        ctx.load_witness(op.deposit_pk.0),
        ctx.load_witness(op.deposit_pk.1),
    );
    let r = (ctx.load_witness(op.r.0), ctx.load_witness(op.r.1));
    let (s_lo, s_hi) = (ctx.load_witness(op.s.0), ctx.load_witness(op.s.1));
    for c in [r.0, r.1, s_lo, s_hi] {
        let on_deposit = gate.mul(ctx, dep, c);
        assert_zero(ctx, gate, on_deposit);
    }
    let x = load_leaf(ctx, range, &op.x);
    let y = load_leaf(ctx, range, &op.y);

    // the signed message and the entry hash, as keel_state::ops defines them
    let k = gate.mul_add(ctx, tr, Constant(Fr::from(2)), dep);
    let kind = gate.mul_add(ctx, wd, Constant(Fr::from(3)), k);
    // the word: kind < 4, a and b < 2^32 (bit-decomposed above), amount and nonce < 2^64
    let word =
        ops::WORD_SHIFTS
            .iter()
            .zip([a, b, amount, nonce])
            .fold(kind, |acc, (shift, part)| {
                let scale = Constant(Fr::from(2).pow_vartime([u64::from(*shift)]));
                gate.mul_add(ctx, part, scale, acc)
            });
    let wd_recipient = gate.mul(ctx, wd, recipient);
    let e1 = gate.mul_add(ctx, dep, dpk.0, wd_recipient);
    let e2 = gate.mul(ctx, dep, dpk.1);
    let entry = hasher.hash_fix_len_array(ctx, gate, &[src, word, e1, e2, r.0, r.1, s_lo, s_hi]);

    // the rules
    let fits_a = fits(ctx, gate, &a_bits, depth);
    let fits_b = fits(ctx, gate, &b_bits, depth);
    let sig = schnorr_ok(
        ctx,
        range,
        hasher,
        &SchnorrInput {
            pk: x.pk,
            r,
            s_lo,
            s_hi,
            msg: [word, recipient],
            one_word: tr,
        },
    );
    let nonce_ok = gate.is_equal(ctx, nonce, x.nonce);
    let nonce_max = gate.is_equal(ctx, x.nonce, Constant(Fr::from(u64::MAX)));
    let nonce_fits = gate.not(ctx, nonce_max);
    let overdraft = range.is_less_than(ctx, x.balance, amount, 64);
    let covered = gate.not(ctx, overdraft);
    let y_sum = gate.add(ctx, y.balance, amount);
    let credit_fits = range.is_less_than(ctx, y_sum, two_64, 65);
    let self_transfer = gate.is_equal(ctx, a, b);
    let credit_ok = gate.or(ctx, self_transfer, credit_fits);
    let recipient_ok = and_all(ctx, gate, &[fits_b, y.exists, credit_ok]);
    let transfer_ok = gate.select(ctx, recipient_ok, one, tr);
    let signed_ok = and_all(
        ctx,
        gate,
        &[
            fits_a,
            x.exists,
            sig,
            nonce_ok,
            nonce_fits,
            covered,
            transfer_ok,
        ],
    );
    let same_x = gate.is_equal(ctx, x.pk.0, dpk.0);
    let same_y = gate.is_equal(ctx, x.pk.1, dpk.1);
    let x_sum = gate.add(ctx, x.balance, amount);
    let topup_fits = range.is_less_than(ctx, x_sum, two_64, 65);
    let topup_ok = and_all(ctx, gate, &[same_x, same_y, topup_fits]);
    let fresh = gate.not(ctx, x.exists);
    let target_ok = gate.or(ctx, fresh, topup_ok);
    let deposit_ok = gate.and(ctx, fits_a, target_ok);
    let ok = gate.select(ctx, deposit_ok, signed_ok, dep);
    let apply = gate.and(ctx, used, ok);
    // an L2 operation that breaks a rule has no valid batch
    let l2 = gate.mul_not(ctx, src, used);
    let l2_refused = gate.mul_not(ctx, ok, l2);
    assert_zero(ctx, gate, l2_refused);

    // the accounts after
    let signed = gate.add(ctx, tr, wd);
    let signed_apply = gate.mul(ctx, apply, signed);
    let deposit_apply = gate.mul(ctx, apply, dep);
    let debited = gate.sub(ctx, x.balance, amount);
    let deposited = gate.select(ctx, x_sum, amount, x.exists);
    let kept = gate.select(ctx, deposited, x.balance, deposit_apply);
    let x_balance = gate.select(ctx, debited, kept, signed_apply);
    let bumped = gate.add(ctx, x.nonce, one);
    let deposit_nonce = gate.mul(ctx, x.nonce, x.exists);
    let kept = gate.select(ctx, deposit_nonce, x.nonce, deposit_apply);
    let x_nonce = gate.select(ctx, bumped, kept, signed_apply);
    let x_pk = (
        gate.select(ctx, dpk.0, x.pk.0, deposit_apply),
        gate.select(ctx, dpk.1, x.pk.1, deposit_apply),
    );
    let x_exists = gate.or(ctx, x.exists, deposit_apply);
    let credit = gate.mul(ctx, apply, tr);
    let y_balance = gate.select(ctx, y_sum, y.balance, credit);

    // the tree: x's path from the running root, then y's from the root after x's write
    let active_x = gate.and(ctx, used, fits_a);
    let active_y = gate.and(ctx, tr, fits_b);
    let leaf = leaf_hash(ctx, gate, hasher, x.exists, x.pk, x.balance, x.nonce);
    let before = fold(ctx, gate, hasher, leaf, &a_bits[..d], &x.siblings);
    let diff = gate.sub(ctx, before, run.root);
    let off = gate.mul(ctx, diff, active_x);
    assert_zero(ctx, gate, off);
    let leaf = leaf_hash(ctx, gate, hasher, x_exists, x_pk, x_balance, x_nonce);
    let after = fold(ctx, gate, hasher, leaf, &a_bits[..d], &x.siblings);
    let root = gate.select(ctx, after, run.root, active_x);

    let leaf = leaf_hash(ctx, gate, hasher, y.exists, y.pk, y.balance, y.nonce);
    let before = fold(ctx, gate, hasher, leaf, &b_bits[..d], &y.siblings);
    let diff = gate.sub(ctx, before, root);
    let off = gate.mul(ctx, diff, active_y);
    assert_zero(ctx, gate, off);
    let leaf = leaf_hash(ctx, gate, hasher, y.exists, y.pk, y_balance, y.nonce);
    let after = fold(ctx, gate, hasher, leaf, &b_bits[..d], &y.siblings);
    let root = gate.select(ctx, after, root, active_y);

    // the data commitment and the queue hash
    let data = hasher.hash_fix_len_array(ctx, gate, &[run.data, entry]);
    let queue = hasher.hash_fix_len_array(ctx, gate, &[run.queue, entry]);
    Running {
        root,
        queue: gate.select(ctx, queue, run.queue, src),
        data: gate.select(ctx, data, run.data, used),
        count: gate.add(ctx, run.count, used),
    }
}

#[cfg(test)]
mod tests {
    use keel_state::{
        test_utils::{deposit, funded_state, transfer, withdraw},
        Epoch,
    };

    use super::super::{CircuitError, PublicInputs, Shape};
    use super::*;

    /// A field that an operation's kind leaves out of its word is 0 in the slot; a prover that puts
    /// anything else there changes the word, so the slot no longer matches what was signed (or,
    /// for a deposit, what the L1 queue absorbed).
    #[test]
    fn a_field_its_kind_leaves_out_of_the_word_is_bound_to_zero() {
        let shape = Shape {
            capacity: 3,
            depth: 4,
            k: 17,
        };
        let mut s = funded_state(4, 3, 1_000);
        let w = s
            .execute_batch(
                Epoch(1),
                vec![deposit(5, 7), transfer(0, 1, 10, 0), withdraw(2, 9, 0)],
            )
            .expect("a valid batch");
        let public = PublicInputs::of(&w.batch);
        let honest = CircuitInput::from_witness(&shape, &w).unwrap();
        shape.mock_prove_input(&honest, &public).unwrap();

        let refused = |alter: &dyn Fn(&mut CircuitInput)| {
            let mut input = honest.clone();
            alter(&mut input);
            match shape.mock_prove_input(&input, &public) {
                Err(CircuitError::Unsatisfied(_)) => {}
                other => panic!("expected an unsatisfied circuit, got {other:?}"),
            }
        };
        // a deposit with a nonce, a withdrawal with a recipient account
        refused(&|i| i.ops[0].nonce = 1);
        refused(&|i| i.ops[2].b = 1);
        // the elements beside the word: a withdrawal's recipient, a deposit's key
        refused(&|i| i.ops[2].recipient += Fr::one());
        refused(&|i| i.ops[0].deposit_pk.1 = -i.ops[0].deposit_pk.1);
        // a transfer's recipient element is not part of it: whatever the slot holds there
        // changes neither its message nor its entry
        let mut input = honest.clone();
        input.ops[1].recipient = Fr::from(7);
        shape.mock_prove_input(&input, &public).unwrap();
    }
}
