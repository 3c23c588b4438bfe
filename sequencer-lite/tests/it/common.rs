//! Shared set-up: a small sequencer, funded accounts, an HTTP server on a loopback port.

use std::{path::Path, time::Duration};

use keel_sequencer::{api, Client, Sequencer, SequencerConfig};
use keel_state::test_utils;

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
        seq.submit_l1_blocking(u64::from(i), test_utils::deposit_entry(i, FUNDS))
            .unwrap();
    }
}

pub(crate) use test_utils::signed_transfer as transfer;

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
