//! The embedded L1's store: a reopened chain is the chain that was closed, and a store is never
//! opened under another genesis.

use std::sync::Arc;

use keel_committer::{EmbeddedChain, EmbeddedL1, OpenError, SettlementLayer};
use keel_state::{test_utils::key, BatchNumber};
use tempfile::TempDir;

use crate::fixture::*;

#[test]
fn a_reopened_chain_resumes_exactly_where_it_stopped() {
    let dir = TempDir::new().unwrap();
    let (view, funder_nonce) = {
        let l1 = open(dir.path());
        queue_deposits(&l1);
        send(&l1, &primary(), submit(1)).unwrap();
        wait(&l1, DEADLINES.block_time);
        let nonce = l1
            .nonce(&keel_committer::address_of(&funder().public_key()))
            .unwrap();
        (l1.rollup().unwrap(), nonce)
    };
    let l1 = open(dir.path());
    assert_eq!(l1.rollup().unwrap(), view);
    assert_eq!(view.head.height, 1);
    assert_eq!(view.checkpoint.batch, BatchNumber(1));
    assert_eq!(view.queue_len, 2);
    let q = l1.queue(0, 10).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q[1].hash_after, fixture().batches[1].batch.queue_after);
    // nothing is applied twice: the settled batch and the funder's nonces stay used
    assert!(send(&l1, &primary(), submit(1)).is_err());
    assert_eq!(
        l1.nonce(&keel_committer::address_of(&funder().public_key()))
            .unwrap(),
        funder_nonce
    );
    send(&l1, &primary(), submit(2)).unwrap();
    assert_eq!(
        l1.account_index(&key(1).public_key()).unwrap().unwrap().0,
        1
    );
}

#[test]
fn a_store_is_not_opened_under_another_genesis() {
    let dir = TempDir::new().unwrap();
    drop(open(dir.path()));
    let mut other = genesis();
    other.chain_id += 1;
    let err = EmbeddedL1::open(dir.path(), &other, fixture().verifier.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::OtherChain {
                what: "genesis",
                ..
            }
        ),
        "{err}"
    );
    let mut bad = genesis();
    bad.sequencers.clear();
    let dir = TempDir::new().unwrap();
    let err = EmbeddedL1::open(dir.path(), &bad, fixture().verifier.clone()).unwrap_err();
    assert!(matches!(err, OpenError::BadGenesis(_)), "{err}");
}

#[test]
fn the_block_producer_advances_the_clock() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(dir.path()));
    let before = l1.head().unwrap();
    {
        let _blocks = l1.produce_blocks(std::time::Duration::from_millis(20));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while l1.head().unwrap().height < 3 {
            assert!(std::time::Instant::now() < deadline, "no blocks sealed");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let after = l1.head().unwrap();
    assert!(after.time_ms > before.time_ms);
    // stopped with its handle
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(l1.head().unwrap(), after);
}
