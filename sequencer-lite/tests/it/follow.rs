//! `Client::follow` across a failover, with two sequencers that hold the same funded accounts:
//! the one that accepted the operation stops answering before anyone replicated it, so the
//! client finds the other, sends it the same signed operation again, and follows it there to
//! `proven`, reporting each step once. A dead endpoint ahead of a live one costs only a retry.

use std::time::Duration;

use keel_sequencer::{api, Client, Event, FollowError, Level, Sequencer};
use keel_state::{AccountIndex, BatchNumber};

use crate::common::{config, fund, transfer, FUNDS};

/// Serves `seq` until `stop` fires; then closes every connection.
async fn serve_until(seq: Sequencer) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let limits = seq.config().http;
    tokio::spawn(keel_http::serve(
        listener,
        api::router(seq),
        limits,
        async {
            let _ = rx.await;
        },
    ));
    (url, tx)
}

async fn funded(dir: &std::path::Path) -> Sequencer {
    let seq = Sequencer::open(config(dir)).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 2))
        .await
        .unwrap();
    seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_lost_with_its_primary_is_sent_again_and_followed_to_proven() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (funded(da.path()).await, funded(db.path()).await);
    let (url_a, stop_a) = serve_until(a.clone()).await;
    let (url_b, _stop_b) = serve_until(b.clone()).await;
    let client = Client::with_endpoints([url_a.clone(), url_b.clone()]);
    let op = transfer(0, 1, 5, 0);
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let follow = {
        let (client, events) = (client.clone(), events.clone());
        tokio::spawn(async move {
            client
                .follow(&op, Level::Proven, Duration::from_secs(60), |e| {
                    events.lock().unwrap().push(e.clone())
                })
                .await
        })
    };
    // A accepted it; then A goes away before anything is replicated
    for _ in 0..200 {
        if a.account(AccountIndex(0)).unwrap().unwrap().nonce == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_a.send(()).unwrap();
    a.shutdown();
    // B takes it again and cuts its batch; the L1 proves it
    let batch = loop {
        if b.account(AccountIndex(0)).unwrap().unwrap().nonce == 1 {
            let st = b.status().unwrap();
            if st.waiting == 0 {
                break st.last_batch;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    b.mark_proven(BatchNumber(batch));
    let followed = follow.await.unwrap().unwrap();
    assert_eq!(followed.level, Level::Proven);
    assert_eq!(followed.endpoint, url_b);
    assert_eq!(followed.failovers, 1);
    assert_eq!(followed.batch, Some(batch));
    let events = events.lock().unwrap().clone();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            Event::Accepted { .. } => "accepted",
            Event::Reached { .. } => "reached",
            Event::FailedOver { .. } => "failover",
            Event::Resubmitted { .. } => "resubmitted",
            Event::Found { .. } => "found",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["accepted", "reached", "failover", "resubmitted", "reached"],
        "{events:?}"
    );
    assert!(
        matches!(&events[2], Event::FailedOver { from, to, .. } if *from == url_a && *to == url_b)
    );
    assert!(matches!(
        events[4],
        Event::Reached {
            level: Level::Proven,
            ..
        }
    ));
    // executed once, on B
    let acct = b.account(AccountIndex(0)).unwrap().unwrap();
    assert_eq!((acct.balance, acct.nonce), (FUNDS - 5, 1));
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_first_costs_a_retry_and_a_refusal_ends_it_at_once() {
    let db = tempfile::tempdir().unwrap();
    let b = funded(db.path()).await;
    let (url_b, _stop) = serve_until(b.clone()).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let client = Client::with_endpoints([dead, url_b.clone()]);
    let followed = client
        .follow(
            &transfer(0, 1, 5, 0),
            Level::Accepted,
            Duration::from_secs(20),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        (followed.endpoint.as_str(), followed.failovers),
        (url_b.as_str(), 0)
    );
    // the same nonce again: refused, typed, at once, and nothing changed
    let before = b.account(AccountIndex(0)).unwrap();
    let e = client
        .follow(
            &transfer(0, 1, 5, 0),
            Level::Proven,
            Duration::from_secs(20),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            FollowError::Refused(keel_sequencer::ClientError::Refused { status: 409, .. })
        ),
        "{e}"
    );
    assert_eq!(b.account(AccountIndex(0)).unwrap(), before);
    // no sequencer at all: unreachable, once the deadline passes
    let nobody = Client::new("http://127.0.0.1:9");
    let e = nobody
        .follow(
            &transfer(0, 1, 5, 1),
            Level::Accepted,
            Duration::from_secs(1),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(e, FollowError::Unreachable { .. }), "{e}");
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_signs_with_the_next_nonce_reads_it_again_after_a_refusal_and_refuses_another_key()
{
    use keel_sequencer::{Wallet, WalletError};
    use keel_state::test_utils::key;
    let db = tempfile::tempdir().unwrap();
    let b = funded(db.path()).await;
    let (url, _stop) = serve_until(b.clone()).await;
    let client = Client::new(url);
    let mut w = Wallet::new(client.clone(), key(0), AccountIndex(0));
    for n in 0..3 {
        let op = w.transfer(AccountIndex(1), 1).await.unwrap();
        assert_eq!(op.nonce(), n);
        w.submit(&op).await.unwrap();
    }
    // a nonce set by hand that is stale: refused, then read again from the primary
    w.set_nonce(1);
    let stale = w.transfer(AccountIndex(1), 1).await.unwrap();
    assert!(w.submit(&stale).await.is_err());
    assert_eq!(w.nonce().await.unwrap(), 3);
    let followed = {
        let op = w.transfer(AccountIndex(1), 1).await.unwrap();
        w.send(&op, Level::Accepted, Duration::from_secs(10), |_| {})
            .await
            .unwrap()
    };
    assert_eq!(followed.level, Level::Accepted);
    assert_eq!(w.nonce().await.unwrap(), 4);
    // another account's key cannot sign for account 0
    let mut other = Wallet::new(client, key(1), AccountIndex(0));
    assert!(matches!(
        other.transfer(AccountIndex(1), 1).await,
        Err(WalletError::KeyMismatch { account: 0, .. })
    ));
    b.shutdown();
}
