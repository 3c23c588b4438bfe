//! The batch circuit's layout: one slot per operation, chained through the running state root,
//! queue hash and data commitment.
//!
//! Per slot (every slot has the same shape, whatever it holds):
//!
//! ```text
//! kind bits dep, tr, wd (at most one; none = padding) · from_queue bit
//! word   = kind + 2^8·a + 2^40·b + 2^72·amount + 2^136·nonce        (amount, nonce: 64-bit lookups)
//! a      = Σ bitsᵢ·2^i + 2^D·a_high   (bits: the x path's; a_high < 2^(32−D) by lookup)   fits_a = a_high = 0
//! e₁, e₂ = dep ? (pk.x, pk.y) : wd ? (recipient, 0) : (0, 0)
//! entry  = sponge(Entry, from_queue, word, e₁, e₂, R.x, R.y, s_lo, s_hi)
//! h      = sponge(Challenge, R.x, R.y, pk.x, pk.y, word, wd·recipient)   (capacity by length: 5 or 6)
//! ok     = deposit:  fits_a ∧ (¬x.exists ∨ (x.pk = pk ∧ x.balance + amount < 2^64))
//!          signed:   fits_a ∧ x.exists ∧ schnorr(x.pk, h) ∧ nonce = x.nonce ∧ x.nonce ≠ 2^64−1
//!                    ∧ x.balance ≥ amount ∧ (transfer ⇒ fits_b ∧ y.exists ∧ (a = b ∨ y.balance + amount < 2^64))
//! L2 operation ⇒ ok              (an L2 operation that breaks a rule makes the batch unprovable)
//! x path ⊢ root → root₁          (authenticated when the slot is used and fits_a; updated when ok)
//! y path ⊢ root₁ → root₂         (the same for a transfer's recipient, after the sender's write)
//! data   ← compress(Data, data, entry) for every operation;  count += 1
//! queue  ← compress(Queue, queue, entry) for every queue entry, applied or not
//! ```
//!
//! These are the rules of `keel_state::stf`, evaluated as bits rather than in order: the circuit
//! proves whether an operation applies, not which rule a rejected one broke first. Leaf balances
//! and nonces are not range-checked: every leaf the tree ever held was written by a proven batch
//! (or is empty), whose writes are each below 2^64 (a debit is covered, a credit or top-up is
//! checked below 2^64, a nonce is never bumped past 2^64 − 1), and a leaf only counts when its
//! path authenticates it against the running root.

use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use keel_state::{ops, poseidon, Fr};

use super::{
    ecc::{schnorr_ok, SchnorrInput},
    input::{CircuitInput, Kind, LeafInput, OpInput},
    layout::Layout,
    merkle::{self, LeafCells},
    poseidon as chip,
};
use crate::circuit::layout::Cell;

/// Where the batch stands between two slots.
#[derive(Clone, Copy)]
struct Running {
    root: Cell,
    queue: Cell,
    data: Cell,
    count: Cell,
}

/// Lays out the whole batch and exposes the public inputs.
pub(crate) fn synthesize(l: &mut Layout, depth: u8, input: &CircuitInput) {
    let p = &input.public;
    let prev_root = l.load(p.prev_root);
    let number = l.load(Fr::from(p.batch_number));
    let queue_before = l.load(p.queue_before);
    let zero = l.constant(Fr::ZERO);
    let mut run = Running {
        root: prev_root,
        queue: queue_before,
        data: zero,
        count: zero,
    };
    for op in &input.ops {
        run = slot(l, depth, op, run);
    }
    let data_commitment = compress(l, poseidon::Domain::Batch, run.data, run.count);
    for (i, c) in [
        prev_root,
        run.root,
        number,
        data_commitment,
        queue_before,
        run.queue,
    ]
    .into_iter()
    .enumerate()
    {
        l.expose(c, i);
    }
}

fn compress(l: &mut Layout, domain: poseidon::Domain, a: Cell, b: Cell) -> Cell {
    chip::hash(l, domain, &[a, b])
}

fn bit(l: &mut Layout, b: bool) -> Cell {
    let c = l.load(Fr::from(u64::from(b)));
    l.assert_bit(c);
    c
}

fn load_leaf(l: &mut Layout, leaf: &LeafInput) -> LeafCells {
    LeafCells {
        exists: bit(l, leaf.exists),
        pk: (l.load(leaf.pk.0), l.load(leaf.pk.1)),
        balance: l.load(Fr::from(leaf.balance)),
        nonce: l.load(Fr::from(leaf.nonce)),
    }
}

/// The index `index`'s low `depth` bits as loaded cells, and whether the index fits the tree:
/// `index = Σ bitsᵢ·2^i + 2^depth·high` with `high < 2^(32 − depth)` by lookup, `fits = high = 0`.
/// The bits are constrained boolean where the Merkle gadget uses them.
fn index_bits(l: &mut Layout, index: Cell, depth: u8) -> (Vec<Cell>, Cell) {
    let d = u32::from(depth);
    let v = l.v(index).to_repr();
    let value = u64::from_le_bytes(v.as_ref()[..8].try_into().expect("8 bytes"));
    let bits: Vec<Cell> = (0..d).map(|i| l.load(Fr::from(value >> i & 1))).collect();
    let mut terms: Vec<(Fr, Cell)> = bits
        .iter()
        .enumerate()
        .map(|(i, b)| (-Layout::two_pow(i as u32), *b))
        .collect();
    terms.push((Fr::ONE, index));
    let scale = Layout::two_pow(d)
        .invert()
        .expect("a power of two is invertible");
    let rest = l.lin(&terms, Fr::ZERO);
    let high = l.lin(&[(scale, rest)], Fr::ZERO);
    l.range(high, 32 - d);
    let fits = l.is_zero(high);
    (bits, fits)
}

fn slot(l: &mut Layout, depth: u8, op: &OpInput, run: Running) -> Running {
    let one = l.constant(Fr::ONE);

    // what the slot holds
    let dep = bit(l, op.kind == Kind::Deposit);
    let tr = bit(l, op.kind == Kind::Transfer);
    let wd = bit(l, op.kind == Kind::Withdraw);
    let used = l.lin(&[(Fr::ONE, dep), (Fr::ONE, tr), (Fr::ONE, wd)], Fr::ZERO);
    l.assert_bit(used);
    let src = bit(l, op.from_queue);
    // a deposit only comes from the queue (dep·(1 − src) = 0); padding never does
    let deposit_off_queue = {
        let g = super::arith::Glue {
            ab: -Fr::ONE,
            lin: [Fr::ONE, Fr::ZERO, Fr::ZERO, Fr::ZERO, Fr::ZERO],
            ..Default::default()
        };
        l.glue(g, [Some(dep), Some(src), None, None, None])
    };
    l.assert_zero(deposit_off_queue);
    let src_used = l.mul(src, used);
    let padding_on_queue = l.sub(src, src_used);
    l.assert_zero(padding_on_queue);

    let a = l.load(Fr::from(op.a));
    let b = l.load(Fr::from(op.b));
    let amount = l.load(Fr::from(op.amount));
    let nonce = l.load(Fr::from(op.nonce));
    l.range(amount, 64);
    l.range(nonce, 64);
    let recipient = l.load(op.recipient);
    let dpk = (l.load(op.deposit_pk.0), l.load(op.deposit_pk.1));
    let r = (l.load(op.r.0), l.load(op.r.1));
    let (s_lo, s_hi) = (l.load(op.s.0), l.load(op.s.1));
    let x = load_leaf(l, &op.x);
    let y = load_leaf(l, &op.y);
    let (a_bits, fits_a) = index_bits(l, a, depth);
    let (b_bits, fits_b) = index_bits(l, b, depth);

    // the word, the message's second element, the entry
    let [sa, sb, sm, sn] = ops::WORD_SHIFTS.map(Layout::two_pow);
    let kind_a = l.lin(
        &[
            (Fr::ONE, dep),
            (Fr::from(2), tr),
            (Fr::from(3), wd),
            (sa, a),
        ],
        Fr::ZERO,
    );
    let word = l.lin(
        &[(Fr::ONE, kind_a), (sb, b), (sm, amount), (sn, nonce)],
        Fr::ZERO,
    );
    let e1 = {
        let g = super::arith::Glue {
            ab: Fr::ONE,
            cd: Fr::ONE,
            ..Default::default()
        };
        l.glue(g, [Some(dep), Some(dpk.0), Some(wd), Some(recipient), None])
    };
    let e2 = l.mul(dep, dpk.1);
    let entry = chip::hash(
        l,
        poseidon::Domain::Entry,
        &[src, word, e1, e2, r.0, r.1, s_lo, s_hi],
    );

    // the signature: one challenge sponge whose capacity names the message's length
    let cap5 = poseidon::capacity(poseidon::Domain::Challenge, 5);
    let cap6 = poseidon::capacity(poseidon::Domain::Challenge, 6);
    let cap = l.lin(&[(cap5 - cap6, tr)], cap6);
    let m2 = l.mul(wd, recipient);
    let h = chip::sponge(l, cap, &[r.0, r.1, x.pk.0, x.pk.1, word, m2]).out[1];
    let sig = schnorr_ok(
        l,
        &SchnorrInput {
            pk: x.pk,
            r,
            s_lo,
            s_hi,
            h,
        },
    );

    // the rules
    let nonce_ok = l.is_equal(nonce, x.nonce);
    let nonce_max = l.is_equal_const(x.nonce, Fr::from(u64::MAX));
    let nonce_fits = l.not(nonce_max);
    let two_64 = Layout::two_pow(64);
    let diff = l.lin(&[(Fr::ONE, x.balance), (-Fr::ONE, amount)], two_64);
    let covered = l.bit64(diff);
    let target = l.select(tr, y.balance, x.balance);
    let sum = l.add(target, amount);
    let sum_high = l.bit64(sum);
    let sum_fits = l.not(sum_high);
    let self_transfer = l.is_equal(a, b);
    let credit_ok = l.or(self_transfer, sum_fits);
    let recipient_ok = l.and_all(&[fits_b, y.exists, credit_ok]);
    // tr ? recipient_ok : 1
    let transfer_ok = {
        let g = super::arith::Glue {
            ab: Fr::ONE,
            lin: [-Fr::ONE, Fr::ZERO, Fr::ZERO, Fr::ZERO, Fr::ONE],
            ..Default::default()
        };
        l.glue(g, [Some(tr), Some(recipient_ok), None, None, Some(one)])
    };
    let signed_ok = l.and_all(&[
        fits_a,
        x.exists,
        sig,
        nonce_ok,
        nonce_fits,
        covered,
        transfer_ok,
    ]);
    let same_x = l.is_equal(x.pk.0, dpk.0);
    let same_y = l.is_equal(x.pk.1, dpk.1);
    let topup_ok = l.and_all(&[same_x, same_y, sum_fits]);
    let fresh = l.not(x.exists);
    let target_ok = l.or(fresh, topup_ok);
    let deposit_ok = l.and(fits_a, target_ok);
    let ok = l.select(dep, deposit_ok, signed_ok);
    let apply = l.and(used, ok);
    // an L2 operation that breaks a rule has no valid batch: used·(1 − src)·(1 − ok) = 0
    let l2 = l.sub(used, src_used);
    let l2_ok = l.mul(l2, ok);
    let l2_refused = l.sub(l2, l2_ok);
    l.assert_zero(l2_refused);

    // the accounts after
    let signed = l.add(tr, wd);
    let signed_apply = l.mul(apply, signed);
    let deposit_apply = l.mul(apply, dep);
    let debited = l.sub(x.balance, amount);
    let deposited = l.select(x.exists, sum, amount);
    let kept = l.select(deposit_apply, deposited, x.balance);
    let x_balance = l.select(signed_apply, debited, kept);
    let bumped = l.lin(&[(Fr::ONE, x.nonce)], Fr::ONE);
    let deposit_nonce = l.mul(x.nonce, x.exists);
    let kept = l.select(deposit_apply, deposit_nonce, x.nonce);
    let x_nonce = l.select(signed_apply, bumped, kept);
    let x_pk = (
        l.select(deposit_apply, dpk.0, x.pk.0),
        l.select(deposit_apply, dpk.1, x.pk.1),
    );
    let x_exists = l.or(x.exists, deposit_apply);
    let credit = l.mul(apply, tr);
    let y_balance = l.select(credit, sum, y.balance);

    // the tree: x's path from the running root, then y's from the root after x's write
    let active_x = l.and(used, fits_a);
    let active_y = l.and(tr, fits_b);
    let x_after = LeafCells {
        exists: x_exists,
        pk: x_pk,
        balance: x_balance,
        nonce: x_nonce,
    };
    let (before, after) = merkle::update(l, &x, &x_after, &a_bits, &op.x.siblings);
    let root = authenticate(l, active_x, before, after, run.root);
    let y_after = LeafCells {
        balance: y_balance,
        ..y
    };
    let (before, after) = merkle::update(l, &y, &y_after, &b_bits, &op.y.siblings);
    let root = authenticate(l, active_y, before, after, root);

    // the data commitment and the queue hash
    let data = compress(l, poseidon::Domain::Data, run.data, entry);
    let queue = compress(l, poseidon::Domain::Queue, run.queue, entry);
    Running {
        root,
        queue: l.select(src, queue, run.queue),
        data: l.select(used, data, run.data),
        count: l.add(run.count, used),
    }
}

/// When `active`, the path's root before must be the running root; returns the root after the
/// slot's write (or the running root, unchanged, when not active).
fn authenticate(l: &mut Layout, active: Cell, before: Cell, after: Cell, root: Cell) -> Cell {
    let g = super::arith::Glue {
        ab: Fr::ONE,
        cd: -Fr::ONE,
        ..Default::default()
    };
    let off = l.glue(
        g,
        [Some(active), Some(before), Some(active), Some(root), None],
    );
    l.assert_zero(off);
    l.select(active, after, root)
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
            k: 13,
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
        shape.mock_prove_input(&honest, &public, &[]).unwrap();

        let refused = |alter: &dyn Fn(&mut CircuitInput)| {
            let mut input = honest.clone();
            alter(&mut input);
            match shape.mock_prove_input(&input, &public, &[]) {
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
        shape.mock_prove_input(&input, &public, &[]).unwrap();
    }
}
