//! Property tests: encodings round-trip; incremental application equals a rebuild from scratch;
//! a refused operation changes nothing; every witness checks out.

use std::collections::BTreeMap;

use keel_state::{
    account::Account,
    encoding::{Decode, Encode},
    test_utils::{arb_op_spec, funded_state, OpSpec},
    AccountIndex, Batch, BatchOp, Epoch, MemStore, Outcome, State,
};
use proptest::prelude::*;

const D: u8 = 4;
const ACCOUNTS: u32 = 6;

fn nonce_of(s: &State<MemStore>) -> impl Fn(u32) -> u64 + '_ {
    move |i| {
        s.account(AccountIndex(i))
            .ok()
            .flatten()
            .map_or(0, |a| a.nonce)
    }
}

/// All accounts of a state, read back through its public API.
fn accounts(s: &State<MemStore>) -> BTreeMap<u32, Account> {
    (0..1u32 << D)
        .filter_map(|i| s.account(AccountIndex(i)).unwrap().map(|a| (i, a)))
        .collect()
}

/// The root of a tree rebuilt from scratch out of `accounts` alone: every leaf hashed, then every
/// level hashed pairwise, with none of the stored nodes or the incremental update code.
fn root_from_scratch(accounts: &BTreeMap<u32, Account>) -> keel_state::Fr {
    let mut level: Vec<keel_state::Fr> = (0..1u32 << D)
        .map(|i| keel_state::account::leaf_of(accounts.get(&i)))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|c| keel_state::tree::node(c[0], c[1]))
            .collect();
    }
    level[0]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn incremental_root_equals_rebuilt_root(specs in prop::collection::vec(arb_op_spec(ACCOUNTS), 1..24)) {
        let mut s = funded_state(D, ACCOUNTS - 2, 1_000);
        for spec in &specs {
            let op = spec.build(nonce_of(&s));
            let before = (s.root().unwrap(), s.queue_hash(), accounts(&s));
            match s.apply(&op) {
                Ok(w) => {
                    w.check(D).unwrap();
                    if let Outcome::Rejected(_) = w.outcome {
                        prop_assert_eq!(s.root().unwrap(), before.0);
                        prop_assert_eq!(accounts(&s), before.2);
                    }
                }
                Err(e) => {
                    prop_assert!(e.is_rule());
                    prop_assert!(matches!(op, BatchOp::L2(_)), "only L2 ops are refused outright");
                    prop_assert_eq!((s.root().unwrap(), s.queue_hash(), accounts(&s)), before);
                }
            }
            prop_assert_eq!(s.root().unwrap(), root_from_scratch(&accounts(&s)));
        }
        // every leaf, occupied or empty, proves against the final root
        let root = s.root().unwrap();
        for i in 0..1u32 << D {
            let leaf = keel_state::account::leaf_of(s.account(AccountIndex(i)).unwrap().as_ref());
            prop_assert!(s.proof(AccountIndex(i)).unwrap().verify(leaf, root));
        }
    }

    #[test]
    fn batch_witness_checks_and_replays(specs in prop::collection::vec(arb_op_spec(ACCOUNTS), 1..16)) {
        let mut s = funded_state(D, ACCOUNTS - 2, 1_000);
        // keep only ops the current pending state accepts, as a sequencer would
        let mut ops = Vec::new();
        {
            let mut p = s.pending();
            for spec in &specs {
                let op = spec.build(|i| p.account(AccountIndex(i)).ok().flatten().map_or(0, |a| a.nonce));
                if p.apply(&op).is_ok() {
                    ops.push(op);
                }
            }
        }
        let genesis = funded_state(D, ACCOUNTS - 2, 1_000);
        let w = s.execute_batch(Epoch(1), ops).unwrap();
        w.check().unwrap();
        prop_assert_eq!(w.batch.new_root, root_from_scratch(&accounts(&s)));
        let mut replica = genesis;
        prop_assert_eq!(replica.apply_batch(&w.batch).unwrap(), w.clone());
        let bytes = w.batch.encode();
        prop_assert_eq!(Batch::decode(&bytes).unwrap(), w.batch);
    }

    #[test]
    fn op_encoding_round_trips(spec in arb_op_spec(ACCOUNTS), nonce in any::<u64>()) {
        let op = spec.build(|_| nonce);
        prop_assert_eq!(BatchOp::decode(&op.encode()).unwrap(), op);
    }

    #[test]
    fn account_encoding_round_trips(i in 0u32..100, balance in any::<u64>(), nonce in any::<u64>()) {
        let a = Account { pk: keel_state::test_utils::key(i).public_key(), balance, nonce };
        prop_assert_eq!(Account::decode(&a.encode()).unwrap(), a);
    }
}

#[test]
fn spec_helpers_cover_every_kind() {
    // the strategies above are only as good as what they build: one of each, signed correctly
    let s = funded_state(D, 2, 10);
    for spec in [
        OpSpec::Deposit {
            to: 1,
            key_of: 1,
            amount: 1,
        },
        OpSpec::Transfer {
            from: 0,
            to: 1,
            amount: 1,
            nonce_skew: 0,
            signer: 0,
            forced: false,
        },
        OpSpec::Withdraw {
            from: 0,
            amount: 1,
            nonce_skew: 0,
            signer: 0,
            forced: true,
        },
    ] {
        let op = spec.build(nonce_of(&s));
        let mut p = s.pending();
        assert_eq!(p.apply(&op).unwrap().outcome, Outcome::Applied, "{spec:?}");
    }
}
