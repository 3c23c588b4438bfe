//! One suite, two L1s: the same rule scenarios run against the embedded L1 and against the
//! rollup contract on anvil, both through the seam the services use (`SettlementLayer` to read,
//! `Settler` to write), with the same real proofs (Keccak transcript). Each expectation is
//! written once, so the two implementations cannot drift apart without a test failing.

use std::{any::Any, sync::Arc, time::Duration};

use keel_committer::{
    address_of, Deadlines, EmbeddedL1, Event, ExitReason, Genesis, Keyed, L1Error, Rejection,
    SettlementLayer, Settler,
};
use keel_evm::{anvil::DEV_KEYS, l1::EvmConfig, settlement::EvmSettlement};
use keel_state::{
    test_utils::{deposit_entry, key, signed_transfer},
    AccountIndex, Batch, BatchNumber, BatchOp, Encode, Epoch, Fr, L1Address, MemStore, SecretKey,
    SignedOp, State, Withdraw,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

use crate::{
    harness::{Net, ACK_KEYS, CHAIN_ID, FAILOVER, FORCED, PROOF},
    verifier::{contracts, prover, SHAPE},
};

/// An L1 as the services see it, with the roles the scenarios play.
struct Rig {
    name: &'static str,
    l1: Arc<dyn SettlementLayer>,
    /// The first registered sequencer (holds the lease in epoch 1).
    primary: Arc<dyn Settler>,
    /// The second registered sequencer.
    standby: Arc<dyn Settler>,
    /// A funded citizen: deposits, forces, exits for others, activates exit mode.
    citizen: Arc<dyn Settler>,
    /// Registered nowhere.
    outsider: Arc<dyn Settler>,
    /// Moves the L1's clock forward by this many seconds and makes a block.
    advance: Box<dyn Fn(u64)>,
    _keep: Box<dyn Any>,
}

fn embedded() -> Rig {
    let dir = tempfile::TempDir::new().unwrap();
    let (a, b, citizen) = (key(ACK_KEYS[0]), key(ACK_KEYS[1]), key(1002));
    let (_, council) = keel_committer::council::dkg(3, 2, ChaCha20Rng::seed_from_u64(3)).unwrap();
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        time_ms: 1_700_000_000_000,
        depth: SHAPE.depth,
        deadlines: Deadlines {
            block_time: Duration::from_secs(1),
            failover_timeout: Duration::from_secs(FAILOVER),
            forced_inclusion: Duration::from_secs(FORCED),
            proof: Duration::from_secs(PROOF),
        },
        sequencers: vec![a.public_key(), b.public_key()],
        allocations: vec![(address_of(&citizen.public_key()), 1_000_000)],
        council: keel_committer::CouncilKey::of(&council),
    };
    let l1 =
        Arc::new(EmbeddedL1::open(dir.path(), &genesis, prover().verifier()).expect("the chain"));
    let keyed = |k: SecretKey| -> Arc<dyn Settler> { Arc::new(Keyed::new(l1.clone(), k)) };
    let chain = l1.clone();
    Rig {
        name: "embedded",
        primary: keyed(a),
        standby: keyed(b),
        citizen: keyed(citizen),
        outsider: keyed(key(1003)),
        l1: l1.clone(),
        advance: Box::new(move |s| {
            let now = chain.head().unwrap().time_ms;
            chain.seal_block(now + s * 1000).unwrap();
        }),
        _keep: Box::new(dir),
    }
}

fn evm() -> Rig {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (net, rollup) = rt.block_on(async {
        let mut net = Net::start_with_depth(SHAPE.depth).await;
        let verifier = keel_evm::deploy::deploy_verifier(net.primary.provider(), contracts())
            .await
            .unwrap();
        let rollup = *net.redeploy_with_verifier(verifier).await.address();
        (net, rollup)
    });
    let config = EvmConfig {
        url: net.url(),
        evm_chain_id: 31337,
        rollup,
        chain_id: Some(CHAIN_ID),
        confirmations: 1,
    };
    let client = |i: usize| {
        Arc::new(EvmSettlement::connect(&config, DEV_KEYS[i].parse().unwrap()).expect("connects"))
    };
    let primary = client(0);
    let keep = Arc::new((net, rt));
    let chain = keep.clone();
    Rig {
        name: "evm",
        l1: primary.clone(),
        primary,
        standby: client(1),
        citizen: client(2),
        outsider: client(3),
        advance: Box::new(move |s| chain.1.block_on(chain.0.advance(s))),
        _keep: Box::new(keep),
    }
}

fn both(scenario: impl Fn(&Rig)) {
    for rig in [embedded(), evm()] {
        eprintln!("conformance: {}", rig.name);
        scenario(&rig);
    }
}

/// The rule that refused `r`, which must be a refusal.
#[track_caller]
fn refusal<T: std::fmt::Debug>(rig: &Rig, r: Result<T, L1Error>) -> Rejection {
    match r {
        Err(L1Error::Rejected(rule)) => rule,
        other => panic!("{}: expected a refusal, got {other:?}", rig.name),
    }
}

#[test]
fn the_lease_rules_are_the_same_on_both_l1s() {
    both(|rig| {
        let view = rig.l1.rollup().unwrap();
        assert_eq!(view.lease.epoch, Epoch(1));
        assert_eq!(view.lease.sequencer, rig.primary.address(), "{}", rig.name);
        assert!(view.registered(&rig.standby.address()));
        // the keys the standbys' acknowledgements verify under are registered on both
        let ack_keys: Vec<_> = view.sequencers.iter().map(|s| s.ack_key).collect();
        assert_eq!(
            ack_keys,
            ACK_KEYS.map(|i| Some(key(i).public_key())),
            "{}",
            rig.name
        );
        assert!(!view.registered(&rig.outsider.address()));
        assert!(matches!(
            refusal(rig, rig.standby.claim_lease()),
            Rejection::LeaseNotExpired { .. }
        ));
        assert_eq!(
            refusal(rig, rig.outsider.claim_lease()),
            Rejection::NotRegistered
        );
        assert_eq!(
            refusal(rig, rig.primary.claim_lease()),
            Rejection::AlreadyLeaseHolder
        );
        assert_eq!(
            refusal(rig, rig.standby.heartbeat()),
            Rejection::NotLeaseHolder
        );
        // a heartbeat restarts the failover clock
        (rig.advance)(FAILOVER - 5);
        rig.primary.heartbeat().unwrap();
        (rig.advance)(10);
        assert!(matches!(
            refusal(rig, rig.standby.claim_lease()),
            Rejection::LeaseNotExpired { .. }
        ));
        (rig.advance)(FAILOVER);
        let r = rig.standby.claim_lease().unwrap();
        assert!(r.events.contains(&Event::LeaseClaimed {
            epoch: Epoch(2),
            sequencer: rig.standby.address(),
        }));
        let view = rig.l1.rollup().unwrap();
        assert_eq!(view.lease.epoch, Epoch(2));
        assert_eq!(view.lease.sequencer, rig.standby.address());
        assert_eq!(
            refusal(rig, rig.primary.heartbeat()),
            Rejection::NotLeaseHolder
        );
    });
}

/// A proof of `batch` from the shared prover, built on `state`.
fn prove(state: &mut State<MemStore>, epoch: u64, ops: Vec<BatchOp>) -> (Batch, Vec<u8>) {
    let witness = state.execute_batch(Epoch(epoch), ops).unwrap();
    let (proof, _) = prover().prove(&witness, |_| {}).unwrap();
    (witness.batch, proof.proof)
}

#[test]
fn queue_batches_exit_mode_and_exits_follow_the_same_rules_on_both_l1s() {
    let recipient = L1Address([0x5e; 20]);
    both(|rig| {
        let (c, l1) = (&rig.citizen, &rig.l1);
        // the queue: deposits create accounts in order; its running hash is keel-state's
        assert_eq!(
            refusal(rig, c.deposit(&key(0).public_key(), 0)),
            Rejection::ZeroAmount
        );
        let r = c.deposit(&key(0).public_key(), 100).unwrap();
        assert!(r.events.contains(&Event::Enqueued {
            position: 0,
            account: Some(AccountIndex(0)),
        }));
        c.deposit(&key(1).public_key(), 50).unwrap();
        let withdrawal =
            SignedOp::Withdraw(Withdraw::sign(&key(0), AccountIndex(0), recipient, 1, 0));
        assert_eq!(
            refusal(rig, c.force(&withdrawal)),
            Rejection::ForcedWithdrawal
        );
        let r = c.force(&signed_transfer(0, 1, 5, 0)).unwrap();
        assert!(r.events.contains(&Event::Enqueued {
            position: 2,
            account: None,
        }));
        let queue = l1.queue(0, 10).unwrap();
        assert_eq!(queue.len(), 3, "{}", rig.name);
        assert_eq!(queue[0].entry, deposit_entry(0, 100));
        assert_eq!(queue[1].entry, deposit_entry(1, 50));
        assert_eq!(
            queue[2].entry,
            keel_state::QueueEntry::Forced(signed_transfer(0, 1, 5, 0))
        );
        assert_eq!(l1.queue(1, 1).unwrap(), queue[1..2]);
        assert!(l1.queue(3, 10).unwrap().is_empty());
        assert_eq!(
            l1.account_index(&key(1).public_key()).unwrap(),
            Some(AccountIndex(1))
        );
        assert_eq!(l1.account_index(&key(9).public_key()).unwrap(), None);

        // batches: in order, from the lease holder, in its epoch, from the proven root, proven
        let mut state = State::open(MemStore::new(), SHAPE.depth).unwrap();
        let (batch, proof) = prove(&mut state, 1, vec![BatchOp::L1(deposit_entry(0, 100))]);
        assert_eq!(
            batch.queue_after, queue[0].hash_after,
            "{}: queue hash",
            rig.name
        );
        let post = |who: &Arc<dyn Settler>, b: &Batch, p: &[u8]| who.post_batch(&b.encode(), p);
        let mut stale = batch.clone();
        stale.epoch = Epoch(2);
        assert_eq!(
            refusal(rig, post(&rig.primary, &stale, &proof)),
            Rejection::StaleEpoch {
                current: Epoch(1),
                got: Epoch(2)
            }
        );
        assert_eq!(
            refusal(rig, post(&rig.standby, &batch, &proof)),
            Rejection::NotLeaseHolder
        );
        let mut skipped = batch.clone();
        skipped.number = BatchNumber(2);
        assert_eq!(
            refusal(rig, post(&rig.primary, &skipped, &proof)),
            Rejection::WrongBatchNumber {
                expected: BatchNumber(1),
                got: BatchNumber(2)
            }
        );
        let mut elsewhere = batch.clone();
        elsewhere.prev_root = Fr::from(7);
        assert_eq!(
            refusal(rig, post(&rig.primary, &elsewhere, &proof)),
            Rejection::WrongPrevRoot
        );
        let mut tampered = proof.clone();
        tampered[40] ^= 1;
        assert!(matches!(
            refusal(rig, post(&rig.primary, &batch, &tampered)),
            Rejection::InvalidProof(_)
        ));
        let r = post(&rig.primary, &batch, &proof).unwrap();
        assert!(r.events.contains(&Event::BatchProven {
            number: BatchNumber(1),
            root: batch.new_root,
        }));
        assert_eq!(
            refusal(rig, post(&rig.primary, &batch, &proof)),
            Rejection::WrongBatchNumber {
                expected: BatchNumber(2),
                got: BatchNumber(1)
            }
        );
        let view = l1.rollup().unwrap();
        assert_eq!(view.checkpoint.batch, BatchNumber(1));
        assert_eq!(view.checkpoint.root, batch.new_root);
        assert_eq!(view.checkpoint.queue_consumed, 1);
        assert_eq!(view.checkpoint.queue_hash, queue[0].hash_after);
        assert_eq!(view.queue_len, 3);
        let posted = l1
            .batch(BatchNumber(1))
            .unwrap()
            .expect("batch 1 is posted");
        assert_eq!((posted.data, posted.proof), (batch.encode(), proof.clone()));
        assert!(l1.batch(BatchNumber(2)).unwrap().is_none());

        // exit mode: not before a deadline; then anyone may activate it, and everything stops
        let (account, merkle) = (
            state.account(AccountIndex(0)).unwrap().unwrap(),
            state.proof(AccountIndex(0)).unwrap(),
        );
        assert_eq!(
            refusal(rig, c.exit(&key(0), &account, &merkle, recipient)),
            Rejection::NotInExitMode
        );
        assert!(matches!(
            refusal(rig, c.activate_exit_mode()),
            Rejection::ExitModeNotDue { .. }
        ));
        assert_eq!(refusal(rig, c.reclaim(1)), Rejection::NotInExitMode);
        (rig.advance)(FORCED + 1);
        let r = c.activate_exit_mode().unwrap();
        assert!(r
            .events
            .contains(&Event::ExitModeActivated(ExitReason::ForcedInclusion)));
        assert_eq!(
            l1.rollup().unwrap().exit_mode.map(|x| x.reason),
            Some(ExitReason::ForcedInclusion)
        );
        assert_eq!(
            refusal(rig, c.deposit(&key(2).public_key(), 1)),
            Rejection::ExitModeActive
        );
        assert_eq!(
            refusal(rig, post(&rig.primary, &batch, &proof)),
            Rejection::ExitModeActive
        );

        // exits: the owner's, with a proof against the last proven root, once
        let mut wrong = merkle.clone();
        wrong.siblings[0] += Fr::one();
        assert_eq!(
            refusal(rig, c.exit(&key(0), &account, &wrong, recipient)),
            Rejection::WrongMerkleProof
        );
        let mut richer = account;
        richer.balance += 1;
        assert_eq!(
            refusal(rig, c.exit(&key(0), &richer, &merkle, recipient)),
            Rejection::WrongMerkleProof
        );
        assert!(!l1.exited(AccountIndex(0)).unwrap());
        let r = c.exit(&key(0), &account, &merkle, recipient).unwrap();
        assert!(r.events.contains(&Event::Exited {
            account: AccountIndex(0),
            recipient,
            amount: 100,
        }));
        assert!(l1.exited(AccountIndex(0)).unwrap());
        assert_eq!(
            refusal(rig, c.exit(&key(0), &account, &merkle, recipient)),
            Rejection::AlreadyExited(AccountIndex(0))
        );

        // reclaims: only a deposit no proven batch consumed, once, to whoever paid it
        let r = c.reclaim(1).unwrap();
        assert!(r.events.contains(&Event::Reclaimed {
            position: 1,
            recipient: c.address(),
            amount: 50,
        }));
        assert_eq!(
            refusal(rig, c.reclaim(1)),
            Rejection::AlreadyReclaimed { position: 1 }
        );
        for position in [0, 2, 3] {
            assert_eq!(
                refusal(rig, c.reclaim(position)),
                Rejection::NotReclaimable { position }
            );
        }
    });
}
