//! The committer on an EVM L1 through a reorg: a posted batch that the reorg drops is posted
//! again, and every batch lands once, in order.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{primitives::U256, providers::Provider};
use keel_committer::{Committer, CommitterConfig, Offered, SettlementLayer};
use keel_evm::{anvil::DEV_KEYS, l1::EvmConfig, settlement::EvmSettlement};
use keel_state::{
    test_utils::{deposit, transfer},
    BatchNumber, Encode,
};

use crate::harness::*;

/// Polls `done`, calling `tick` (a new block) between polls.
fn until(what: &str, mut tick: impl FnMut(), mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        tick();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_reorg_that_drops_a_posted_batch_gets_it_posted_again_by_the_committer_once() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut net = rt.block_on(async {
        let net = Net::start().await;
        net.deposit(0, 100).await;
        net.deposit(1, 100).await;
        net
    });
    let batches = [
        net.build(1, vec![deposit(0, 100), deposit(1, 100)]),
        net.build(1, vec![transfer(0, 1, 10, 0)]),
        net.build(1, vec![transfer(1, 0, 5, 0)]),
    ];
    let config = EvmConfig {
        url: net.url(),
        evm_chain_id: 31337,
        rollup: *net.primary.address(),
        chain_id: Some(CHAIN_ID),
        confirmations: 3,
    };
    let l1 = Arc::new(EvmSettlement::connect(&config, DEV_KEYS[0].parse().unwrap()).unwrap());
    let dir = tempfile::TempDir::new().unwrap();
    let mut c = CommitterConfig::new(dir.path());
    c.poll = Duration::from_millis(50);
    c.retry_max = Duration::from_millis(200);
    let committer = Committer::open(c, l1.clone(), l1.clone(), Box::new(|_| {})).unwrap();
    let head = || {
        rt.block_on(async { net.primary.batchNumber().call().await })
            .unwrap()
    };
    let offer = |i: usize| {
        let b = &batches[i];
        committer
            .offer(b.encode(), digest_proof(b).to_vec())
            .unwrap()
    };
    let mine = |n: u64| {
        for _ in 0..n {
            rt.block_on(net.advance(1));
        }
    };

    assert_eq!(offer(0), Offered::Held);
    until("batch 1 on the chain", || {}, || head() == 1);
    mine(3);
    until(
        "batch 1 settled",
        || {},
        || {
            // the status names the settled batch before the held one is dropped
            let s = committer.status();
            s.settled == BatchNumber(1) && s.held.is_empty()
        },
    );
    assert!(committer.status().held.is_empty());

    let p = net.primary.provider();
    let snapshot: U256 = rt
        .block_on(p.raw_request("evm_snapshot".into(), ()))
        .unwrap();
    assert_eq!(offer(1), Offered::Held);
    until("batch 2 on the chain", || {}, || head() == 2);
    // posted but not settled: still held, and not posted a second time meanwhile
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(committer.status().settled, BatchNumber(1));
    assert_eq!(committer.status().held, [BatchNumber(2)]);
    assert_eq!(committer.status().posted, 2);

    // the reorg drops batch 2
    let reverted: bool = rt
        .block_on(p.raw_request("evm_revert".into(), (snapshot,)))
        .unwrap();
    assert!(reverted);
    assert_eq!(head(), 1);
    // the committer sees it gone and posts it again; then 3
    assert_eq!(offer(2), Offered::Held);
    until(
        "batches 2 and 3 on the chain again",
        || mine(1),
        || head() == 3,
    );
    mine(3);
    until(
        "batch 3 settled",
        || mine(1),
        || {
            let s = committer.status();
            s.settled == BatchNumber(3) && s.held.is_empty()
        },
    );
    let status = committer.status();
    assert!(status.held.is_empty());
    assert_eq!(status.halted, None);
    assert_eq!(
        status.posted, 4,
        "batch 2 twice (the reorg dropped one), 1 and 3 once"
    );
    // on the chain: every batch once, in order, as the committer was given it
    let on_chain = rt.block_on(l1.client().batches(1)).unwrap();
    assert_eq!(on_chain, batches);
    for b in &batches {
        let posted = l1.batch(b.number).unwrap().unwrap();
        assert_eq!(posted.data, b.encode());
    }
}
