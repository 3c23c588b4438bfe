//! The batch stream: in order, resumable from any batch, live after the backlog.

use std::time::Duration;

use keel_sequencer::{Client, Sequencer};
use keel_state::{BatchNumber, MemStore, State};

use crate::common::{config, fund, serve, settle, transfer, DEPTH};

/// Submits `n` transfers round-robin among accounts `0..4`, starting at `nonce0`.
async fn load(client: &Client, n: u64, nonce0: u64) {
    for k in 0..n {
        let from = (k % 4) as u32;
        let nonce = nonce0 + k / 4;
        client
            .submit(&transfer(from, (from + 1) % 4, 1, nonce))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_disconnects_resumes_from_batch_n_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.batch_capacity = 4;
    let seq = Sequencer::open(c).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 4))
        .await
        .unwrap();
    let client = serve(seq.clone()).await;
    load(&client, 24, 0).await;
    let st = settle(&client).await;
    assert!(st.last_batch >= 7, "{st:?}");

    // read three batches, hang up, resume from the fourth
    let mut got = Vec::new();
    let mut stream = client.stream(1).await.unwrap();
    for _ in 0..3 {
        got.push(stream.next().await.unwrap().unwrap());
    }
    drop(stream);
    let mut stream = client.stream(got.len() as u64 + 1).await.unwrap();
    while (got.len() as u64) < st.last_batch {
        got.push(stream.next().await.unwrap().unwrap());
    }
    // live: batches cut after the subscription arrive on the same stream
    load(&client, 8, 6).await;
    let st = settle(&client).await;
    while (got.len() as u64) < st.last_batch {
        let b = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a live batch")
            .unwrap()
            .unwrap();
        got.push(b);
    }
    for (i, b) in got.iter().enumerate() {
        assert_eq!(b.number, BatchNumber(i as u64 + 1), "gap or repeat");
        assert_eq!(Some(b), seq.batch(b.number).unwrap().as_ref());
        // one batch by number, as a committer checks a proven batch against the log
        assert_eq!(Some(b), client.batch(b.number.0).await.unwrap().as_ref());
    }
    assert_eq!(client.batch(st.last_batch + 1).await.unwrap(), None);
    let r = reqwest::get(format!("{}/v1/batches/x", client.base()))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a number is required");
    // what the stream carries is enough to rebuild the state
    let mut replica = State::open(MemStore::new(), DEPTH).unwrap();
    for b in &got {
        replica.apply_batch(b).unwrap();
    }
    assert_eq!(replica.root().unwrap(), seq.root().unwrap());
}

#[test]
fn an_in_process_subscriber_gets_batches_in_order_with_their_witnesses() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.batch_capacity = 2;
    let seq = Sequencer::open(c).unwrap();
    fund(&seq, 2);
    let rx = seq.subscribe(BatchNumber(1), 1).unwrap();
    for n in 0..6 {
        seq.submit_blocking(transfer((n % 2) as u32, ((n + 1) % 2) as u32, 3, n / 2))
            .unwrap();
    }
    let mut replica = State::open(MemStore::new(), DEPTH).unwrap();
    let mut ops = 0;
    let mut next = 1;
    while ops < 8 {
        let item = rx.recv_timeout(Duration::from_secs(10)).expect("a batch");
        assert_eq!(item.batch.number, BatchNumber(next));
        next += 1;
        let w = item.witness.expect("a recent batch carries its witness");
        assert_eq!(w.batch, item.batch);
        w.check().unwrap();
        assert_eq!(replica.apply_batch(&item.batch).unwrap(), w);
        ops += item.batch.ops.len();
    }
    seq.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_stream_even_a_stalled_one_and_refuses_new_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.batch_capacity = 1;
    let seq = Sequencer::open(c).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 3))
        .await
        .unwrap();
    let client = serve(seq.clone()).await;
    let st = settle(&client).await;
    assert!(st.last_batch >= 3, "{st:?}");
    let mut http = client.stream(1).await.unwrap();
    http.next().await.unwrap().expect("a batch");
    // an in-process subscriber that never reads: its feeder is stuck on a full channel
    let stalled = seq.subscribe(BatchNumber(1), 1).unwrap();
    let s = seq.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || s.shutdown()),
    )
    .await
    .expect("shutdown does not wait on a subscriber that stopped reading")
    .unwrap();
    assert!(seq.is_shut_down());
    assert!(matches!(
        seq.subscribe(BatchNumber(1), 1),
        Err(keel_sequencer::SequencerError::ShutDown)
    ));
    // the network stream delivers what it had, then ends: it no longer holds the sequencer
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = http.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream of a shut-down sequencer ends");
    // the stalled subscriber's channel is closed once what it buffered is read
    let mut left = 0;
    while stalled.recv_timeout(Duration::from_secs(5)).is_ok() {
        left += 1;
    }
    assert!(left <= 1, "{left}");
}
