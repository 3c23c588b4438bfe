//! Shared set-up: a small sequencer, funded accounts, an HTTP server on a loopback port.

use std::{path::Path, time::Duration};

use keel_sequencer::{api, Client, Sequencer, SequencerConfig};
use keel_state::{test_utils, BatchOp, QueueEntry, SignedOp};

pub(crate) const DEPTH: u8 = 8;
pub(crate) const FUNDS: u64 = 1_000_000;

/// A sequencer configuration for tests: depth 8, batches of 8, cut after 50 ms.
pub(crate) fn config(dir: &Path) -> SequencerConfig {
    let mut c = SequencerConfig::new(dir);
    c.depth = DEPTH;
    c.batch_capacity = 8;
    c.batch_deadline = Duration::from_millis(50);
    c
}

/// Sequences deposits funding accounts `0..n` (already-sequenced ones are skipped).
pub(crate) fn fund(seq: &Sequencer, n: u32) {
    for i in 0..n {
        let BatchOp::L1(entry) = test_utils::deposit(i, FUNDS) else {
            unreachable!()
        };
        seq.submit_l1_blocking(u64::from(i), entry).unwrap();
    }
}

/// A transfer as a signed operation.
pub(crate) fn transfer(from: u32, to: u32, amount: u64, nonce: u64) -> SignedOp {
    match test_utils::transfer(from, to, amount, nonce) {
        BatchOp::L2(s) => s,
        BatchOp::L1(_) => unreachable!(),
    }
}

/// A deposit entry for account `i`.
#[allow(dead_code)]
pub(crate) fn deposit(i: u32, amount: u64) -> QueueEntry {
    match test_utils::deposit(i, amount) {
        BatchOp::L1(e) => e,
        BatchOp::L2(_) => unreachable!(),
    }
}

/// Serves `seq` on a loopback port; returns the client.
pub(crate) async fn serve(seq: Sequencer) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(api::serve(seq, listener));
    Client::new(format!("http://{addr}"))
}

/// Waits until every accepted operation is in a committed batch.
pub(crate) async fn settle(client: &Client) -> keel_sequencer::Status {
    for _ in 0..400 {
        let s = client.status().await.unwrap();
        if s.waiting == 0 && s.durable_seq + 1 == s.next_seq {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the sequencer did not settle");
}
