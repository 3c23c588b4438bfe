//! The standby's replica over loopback: it follows a real primary's stream and its
//! acknowledgements make operations `replicated`; a sequencer opened on its directory carries
//! on where the primary stopped; and a primary that streams an invalid batch is refused, not
//! followed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Query, State as AxState},
    routing::{get, post},
    Json, Router,
};
use keel_sequencer::{
    api::ReplicatedBody, replica, Client, ClientError, Level, Replica, Sequencer,
};
use keel_state::{
    test_utils::{deposit, key, transfer},
    AccountIndex, Batch, BatchOp, Encode, Epoch, MemStore, SignedOp, State, Transfer,
};
use tokio::sync::watch;

use crate::common::{config, fund, serve, settle, transfer as signed, DEPTH};

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The standby's registered key in these tests.
fn standby_key() -> keel_state::SecretKey {
    key(20)
}

/// Starts following `peers`; the sender stops it, and the handle ends once it has.
fn follow(
    replica: &Replica,
    peers: Vec<String>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(replica::follow(
        replica.clone(),
        peers,
        standby_key(),
        rx,
        Duration::from_millis(50),
    ));
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replicates_acknowledges_and_takes_over_where_the_primary_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let seq = Sequencer::open(config(&dir.path().join("primary"))).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 4))
        .await
        .unwrap();
    let primary = serve(seq.clone()).await;
    seq.set_standbys([standby_key().public_key()]);

    let replica = Replica::open(config(&dir.path().join("standby"))).unwrap();
    let (stop, following) = follow(&replica, vec![primary.base().to_owned()]);

    // `replicated` is answered once the standby holds the operation's batch
    let st = primary
        .submit_wait(
            &signed(0, 1, 10, 0),
            Level::Replicated,
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert!(st.level >= Level::Replicated, "{st:?}");
    let last = settle(&primary).await;
    until("the replica to catch up", || {
        replica.last_batch().0 == last.last_batch
    })
    .await;
    assert_eq!(replica.root().unwrap(), seq.root().unwrap());
    assert_eq!(replica.next_l1(), 4, "the four deposits are consumed");
    assert_eq!(
        replica.status().following.as_deref(),
        Some(primary.base()),
        "{:?}",
        replica.status()
    );

    // the primary stops; a sequencer opened on the replica's directory carries on from it
    stop.send(true).unwrap();
    following.await.unwrap();
    seq.shutdown();
    drop(replica);
    let mut c = config(&dir.path().join("standby"));
    c.epoch = Epoch(2);
    let next = Sequencer::open(c).unwrap();
    let st = next.status().unwrap();
    assert_eq!(
        (st.last_batch, st.next_l1, st.waiting),
        (last.last_batch, 4, 0)
    );
    assert_eq!(st.root, last.root);
    let took_over = serve(next.clone()).await;
    // an operation the old primary sequenced is not sequenced twice; the next one follows it
    let again = took_over.submit(&signed(0, 1, 10, 0)).await.unwrap_err();
    assert!(
        matches!(&again, ClientError::Refused { reason, .. } if reason == "stale_nonce"),
        "{again}"
    );
    took_over.submit(&signed(0, 1, 10, 1)).await.unwrap();
    let st = settle(&took_over).await;
    assert_eq!(st.last_batch, last.last_batch + 1);
    let b = next
        .batch(keel_state::BatchNumber(st.last_batch))
        .unwrap()
        .unwrap();
    assert_eq!(b.epoch, Epoch(2));
    next.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_submissions_and_a_client_with_both_endpoints_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let seq = Sequencer::open(config(&dir.path().join("primary"))).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 2))
        .await
        .unwrap();
    let primary = serve(seq.clone()).await;
    let replica = Replica::open(config(&dir.path().join("standby"))).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let standby = format!("http://{}", listener.local_addr().unwrap());
    let app = replica::router(replica.watch());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let err = Client::new(&standby)
        .submit(&signed(1, 0, 1, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 503, reason, .. } if reason == "not_primary"),
        "{err}"
    );
    let status: keel_sequencer::ReplicaStatus = reqwest::get(format!("{standby}/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((status.role.as_str(), status.last_batch), ("standby", 0));

    // a closed port first, the standby next, the primary last
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = Client::with_endpoints([closed_url, standby, primary.base().to_owned()]);
    let st = client.submit(&signed(1, 0, 1, 0)).await.unwrap();
    assert_eq!(st.seq, 3);
    assert_eq!(
        client.base(),
        primary.base(),
        "it stays with the one that answered"
    );
    // a refusal that is the client's fault is not retried elsewhere
    let again = client.submit(&signed(1, 0, 1, 0)).await.unwrap_err();
    assert!(
        matches!(&again, ClientError::Refused { status: 409, .. }),
        "{again}"
    );
    seq.shutdown();
}

/// A fake primary: streams `batches` (from the requested number) and records acknowledgements.
#[derive(Clone)]
struct Fake {
    batches: Arc<Vec<Batch>>,
    acks: Arc<Mutex<Vec<u64>>>,
}

#[derive(serde::Deserialize)]
struct From {
    from: u64,
}

async fn fake_stream(AxState(f): AxState<Fake>, Query(q): Query<From>) -> Body {
    let mut out = Vec::new();
    for b in f.batches.iter().filter(|b| b.number.0 >= q.from) {
        let enc = b.encode();
        out.extend_from_slice(&(enc.len() as u32).to_be_bytes());
        out.extend_from_slice(&enc);
    }
    Body::from(Bytes::from(out))
}

async fn fake_ack(AxState(f): AxState<Fake>, Json(b): Json<ReplicatedBody>) {
    f.acks.lock().unwrap().push(b.batch);
}

async fn fake_primary(batches: Vec<Batch>) -> (String, Arc<Mutex<Vec<u64>>>) {
    let fake = Fake {
        batches: Arc::new(batches),
        acks: Arc::default(),
    };
    let acks = fake.acks.clone();
    let app = Router::new()
        .route("/v1/stream", get(fake_stream))
        .route("/v1/replicated", post(fake_ack))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, acks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_an_invalid_streamed_batch_and_does_not_follow_it() {
    // an honest first batch, and the honest second batch it is forged from
    let mut honest = State::open(MemStore::new(), DEPTH).unwrap();
    let first = honest
        .execute_batch(Epoch(1), vec![deposit(0, 100), deposit(1, 100)])
        .unwrap()
        .batch;
    let second = honest
        .execute_batch(Epoch(1), vec![transfer(0, 1, 10, 0)])
        .unwrap()
        .batch;

    let mut minted = second.clone();
    minted.new_root = first.new_root;
    let forged_op = BatchOp::L2(SignedOp::Transfer(Transfer::sign(
        &key(9),
        AccountIndex(0),
        AccountIndex(1),
        10,
        0,
    )));
    let mut forged = second.clone();
    forged.ops = vec![forged_op];
    let mut overfull = second.clone();
    overfull.ops = vec![transfer(0, 1, 1, 0); 9];

    for (bad, why) in [
        (minted, "claims new root"),
        (forged, "signature"),
        (overfull, "over the circuit's capacity 8"),
    ] {
        let (url, acks) = fake_primary(vec![first.clone(), bad]).await;
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(config(dir.path())).unwrap();
        let (stop, following) = follow(&replica, vec![url]);
        until("the refusal", || replica.status().refused.is_some()).await;
        stop.send(true).unwrap();
        following.await.unwrap();
        let refused = replica.status().refused.unwrap();
        assert!(
            refused.contains("invalid batch 2") && refused.contains(why),
            "{refused}"
        );
        // batch 1 was followed and acknowledged; batch 2 changed nothing and was not
        assert_eq!(replica.last_batch().0, 1);
        assert_eq!(replica.root().unwrap(), first.new_root);
        assert!(acks.lock().unwrap().iter().all(|&n| n == 1), "{acks:?}");
        drop(replica);
        let reopened = Replica::open(config(dir.path())).unwrap();
        assert_eq!(reopened.last_batch().0, 1, "nothing of batch 2 was logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_whose_history_differs_from_the_replica_is_refused() {
    let mut a = State::open(MemStore::new(), DEPTH).unwrap();
    let mut b = State::open(MemStore::new(), DEPTH).unwrap();
    let first = a
        .execute_batch(Epoch(1), vec![deposit(0, 100)])
        .unwrap()
        .batch;
    b.execute_batch(Epoch(1), vec![deposit(0, 100)]).unwrap();
    let ours = a
        .execute_batch(Epoch(1), vec![deposit(1, 5)])
        .unwrap()
        .batch;
    let theirs = b
        .execute_batch(Epoch(2), vec![deposit(2, 7)])
        .unwrap()
        .batch;

    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::open(config(dir.path())).unwrap();
    replica.apply(&first).unwrap();
    replica.apply(&ours).unwrap();
    let (url, acks) = fake_primary(vec![first, theirs]).await;
    let (stop, following) = follow(&replica, vec![url]);
    until("the refusal", || replica.status().refused.is_some()).await;
    stop.send(true).unwrap();
    following.await.unwrap();
    let refused = replica.status().refused.unwrap();
    assert!(refused.contains("diverged"), "{refused}");
    assert_eq!(replica.root().unwrap(), ours.new_root);
    assert!(acks.lock().unwrap().is_empty());
}
