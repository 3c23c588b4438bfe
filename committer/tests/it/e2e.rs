//! End to end, in one process, with every real component: the embedded L1, the sequencer fed by
//! the queue follower, a prover proving the streamed witnesses, and the committer posting the
//! proofs. Then the sequencer stops serving the queue, a forced entry passes its deadline, an
//! ordinary account activates exit mode, and every account exits from a state rebuilt from L1
//! data alone; the payouts equal the L2 total supply.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use keel_committer::{
    reconstruct, Call, Committer, CommitterConfig, Event, ExitReason, QueueFollower, Rejection,
    SettlementLayer,
};
use keel_sequencer::{Sequencer, SequencerConfig};
use keel_state::{
    test_utils::{key, signed_transfer},
    AccountIndex, BatchNumber, Encode, MemStore, SecretKey,
};
use tempfile::TempDir;

use crate::{fixture::*, service::Sealer};

/// Deposits into accounts 0, 1, 2.
const FUNDED: [u64; 3] = [1_000, 500, 250];

#[test]
fn batches_are_committed_then_an_unserved_forced_entry_lets_every_account_exit_from_l1_data() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    // the L1's clock runs at wall-clock pace until the deadline is skipped to below
    let _sealer = Sealer::start(l1.clone(), 20);

    let mut config = SequencerConfig::new(dir.path().join("sequencer"));
    config.depth = SHAPE.depth;
    config.batch_capacity = SHAPE.capacity;
    config.batch_deadline = Duration::from_millis(50);
    let seq = Sequencer::open(config).unwrap();

    let s = seq.clone();
    let committer = Arc::new(
        Committer::open(
            CommitterConfig::new(dir.path().join("committer")),
            l1.clone(),
            primary(),
            Box::new(move |n| {
                s.mark_posted(n);
                s.mark_proven(n);
            }),
        )
        .unwrap(),
    );

    // the local prover: witnesses from the stream, proofs to the committer
    let stop = Arc::new(AtomicBool::new(false));
    let stream = seq.subscribe(BatchNumber(1), 8).unwrap();
    let prover = {
        let (committer, stop) = (committer.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(item) = stream.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let w = item.witness.expect("a recent batch carries its witness");
                let (proof, _) = fixture().prover.prove(&w, |_| {}).unwrap();
                committer.offer(item.batch.encode(), proof.proof).unwrap();
            }
        })
    };

    let s = seq.clone();
    let follower = QueueFollower::spawn(
        l1.clone(),
        seq.status().unwrap().next_l1,
        Duration::from_millis(20),
        move |position, entry| {
            s.submit_l1_blocking(position, entry)
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
    .unwrap();

    // citizens deposit on the L1; one of them pays another on L2
    for (i, amount) in FUNDED.into_iter().enumerate() {
        let pk = key(i as u32).public_key();
        send(&l1, &funder(), Call::Deposit { pk, amount }).unwrap();
    }
    for _ in 0..1_000 {
        if seq.status().unwrap().last_batch >= 3 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    seq.submit_blocking(signed_transfer(0, 2, 300, 0)).unwrap();

    let s = committer.wait_included(BatchNumber(4), Duration::from_secs(600));
    assert_eq!((s.included, &s.halted), (BatchNumber(4), &None), "{s:?}");
    assert_eq!(seq.progress().borrow().proven, BatchNumber(4));
    let view = l1.rollup().unwrap();
    assert_eq!(view.checkpoint.batch, BatchNumber(4));
    assert_eq!(view.checkpoint.root, seq.root().unwrap());

    // the sequencer stops serving the queue; account 1 forces a transfer that is never served
    drop(follower);
    send(&l1, &key(1), Call::Force(signed_transfer(1, 0, 100, 0))).unwrap();

    // an ordinary account, with no L1 funds, activates exit mode once the deadline has passed
    let citizen = SecretKey::from_seed(&[0xC1; 32]);
    assert!(matches!(
        refusal(send(&l1, &citizen, Call::ActivateExitMode)),
        Rejection::ExitModeNotDue { .. }
    ));
    wait(&l1, DEADLINES.forced_inclusion);
    let activated = send(&l1, &citizen, Call::ActivateExitMode).unwrap();
    assert_eq!(
        activated.events,
        [Event::ExitModeActivated(ExitReason::ForcedInclusion)]
    );

    // every account exits from the state rebuilt from L1 data alone
    let replayed = reconstruct::replay(l1.as_ref(), MemStore::new(), |_, _| {}).unwrap();
    let supply: u64 = (0..3)
        .map(|i| {
            let (account, _) =
                reconstruct::account_with_proof(&replayed.state, AccountIndex(i)).unwrap();
            account.balance
        })
        .sum();
    assert_eq!(supply, FUNDED.iter().sum::<u64>());
    let mut paid = 0;
    for i in 0..3 {
        let x = reconstruct::exit(l1.as_ref(), &replayed, &key(i), None).unwrap();
        assert_eq!(l1.balance(&x.recipient).unwrap(), x.amount);
        paid += x.amount;
    }
    assert_eq!(paid, supply, "the L1 payouts sum to the L2 total supply");

    stop.store(true, Ordering::Relaxed);
    prover.join().unwrap();
    seq.shutdown();
}
