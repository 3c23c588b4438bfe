//! The service's edges from outside: a forged, unsigned, foreign or stale `replicated`
//! acknowledgement changes no durability level; every route of the primary and of the standby
//! answers a hostile request with the typed JSON refusal.

use keel_sequencer::{ack::Ack, api::ErrorBody, replica, Level, Replica, Sequencer};
use keel_state::{test_utils::key, BatchNumber, Epoch, Fr};
use serde_json::json;

use crate::common::{config, fund, serve, settle, transfer};

fn standby() -> keel_state::SecretKey {
    key(20)
}

struct Primary {
    _dir: tempfile::TempDir,
    seq: Sequencer,
    base: String,
    http: reqwest::Client,
    /// The operation whose level is watched, and the batch that holds it.
    op: u64,
    batch: BatchNumber,
    root: Fr,
}

async fn primary(standbys: &[keel_state::PublicKey]) -> Primary {
    let dir = tempfile::tempdir().unwrap();
    let seq = Sequencer::open(config(dir.path())).unwrap();
    seq.set_standbys(standbys.iter().copied());
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 2))
        .await
        .unwrap();
    let client = serve(seq.clone()).await;
    let op = client.submit(&transfer(0, 1, 5, 0)).await.unwrap().seq;
    let st = settle(&client).await;
    let batch = BatchNumber(st.last_batch);
    let root = seq.batch(batch).unwrap().unwrap().new_root;
    Primary {
        _dir: dir,
        seq,
        base: client.base().to_owned(),
        http: reqwest::Client::new(),
        op,
        batch,
        root,
    }
}

impl Primary {
    fn level(&self) -> Level {
        self.seq.op_status(self.op).unwrap().level
    }

    /// Posts `body` to `/v1/replicated`; returns the status and the refusal's reason, if any.
    async fn post(&self, body: serde_json::Value) -> (u16, Option<String>) {
        let r = self
            .http
            .post(format!("{}/v1/replicated", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 204 {
            return (status, None);
        }
        let e: ErrorBody = r.json().await.unwrap();
        (status, Some(e.error))
    }

    async fn refused(&self, what: &str, body: serde_json::Value, status: u16, reason: &str) {
        assert_eq!(
            self.post(body).await,
            (status, Some(reason.to_owned())),
            "{what}"
        );
        assert_eq!(self.level(), Level::Accepted, "{what} changed the level");
        assert_eq!(
            self.seq.progress().borrow().replicated,
            BatchNumber(0),
            "{what} changed the replicated mark"
        );
    }
}

fn body(a: &Ack) -> serde_json::Value {
    serde_json::to_value(a.to_body()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_unsigned_acknowledgement_is_refused_and_changes_no_level() {
    let p = primary(&[standby().public_key()]).await;
    assert_eq!(p.level(), Level::Accepted);
    let (n, root, epoch) = (p.batch, p.root, Epoch(1));
    let root_hex = keel_state::field::fr_to_hex(&root);

    // what the old API took, and anyone can build from /v1/status: the batch and its root
    p.refused(
        "an unsigned acknowledgement",
        json!({ "batch": n.0, "root": root_hex }),
        400,
        "bad_request",
    )
    .await;
    p.refused("an empty body", json!({}), 400, "bad_request")
        .await;
    // a key the rollup never registered, signing correctly
    let foreign = Ack::sign(&key(9), n, root, epoch);
    p.refused("a foreign key", body(&foreign), 403, "unknown_standby")
        .await;
    // the registered standby's key, with someone else's signature
    let forged = Ack {
        standby: standby().public_key(),
        ..foreign.clone()
    };
    p.refused("a forged signature", body(&forged), 403, "bad_signature")
        .await;
    // a valid acknowledgement of another root, with the root swapped in: the signature breaks
    let other = Ack::sign(&standby(), n, Fr::from(7), epoch);
    let swapped = Ack {
        root,
        ..other.clone()
    };
    p.refused("a swapped root", body(&swapped), 403, "bad_signature")
        .await;
    // validly signed, but of a root this primary did not log
    p.refused("another root", body(&other), 409, "root_mismatch")
        .await;
    // validly signed in an earlier and in a later epoch
    for e in [Epoch(0), Epoch(2)] {
        let stale = Ack::sign(&standby(), n, root, e);
        p.refused("another epoch", body(&stale), 409, "stale_epoch")
            .await;
    }
    // validly signed, of a batch this primary never logged
    let unknown = Ack::sign(&standby(), BatchNumber(n.0 + 5), root, epoch);
    p.refused("an unknown batch", body(&unknown), 404, "unknown_batch")
        .await;
    // a field too many
    let mut extra = body(&Ack::sign(&standby(), n, root, epoch));
    extra["weight"] = json!(10);
    p.refused("an unknown field", extra, 400, "bad_request")
        .await;

    // the registered standby's own acknowledgement counts
    let good = Ack::sign(&standby(), n, root, epoch);
    assert_eq!(p.post(body(&good)).await, (204, None));
    assert_eq!(p.level(), Level::Replicated);
    assert_eq!(p.seq.progress().borrow().replicated, n);
    p.seq.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequencer_without_registered_standbys_counts_no_acknowledgement() {
    let p = primary(&[]).await;
    let a = Ack::sign(&standby(), p.batch, p.root, Epoch(1));
    p.refused("any acknowledgement", body(&a), 403, "unknown_standby")
        .await;
    // registering the key later makes the same acknowledgement count
    p.seq.set_standbys([standby().public_key()]);
    assert_eq!(p.post(body(&a)).await, (204, None));
    assert_eq!(p.level(), Level::Replicated);
    p.seq.shutdown();
}

async fn typed(http: &reqwest::Client, method: &str, url: &str, status: u16, reason: &str) {
    let req = match method {
        "GET" => http.get(url),
        "POST" => http.post(url).body("{not json"),
        "DELETE" => http.delete(url),
        m => panic!("{m}"),
    };
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), status, "{method} {url}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{method} {url}: {ct}");
    let e: ErrorBody = r.json().await.unwrap();
    assert_eq!(e.error, reason, "{method} {url}: {}", e.message);
    assert!(!e.message.is_empty(), "{method} {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_primary_answers_hostile_requests_with_a_typed_refusal() {
    let p = primary(&[standby().public_key()]).await;
    let u = |path: &str| format!("{}{path}", p.base);
    let cases = [
        ("GET", "/v1/accounts/-1", 400, "bad_request"),
        ("GET", "/v1/accounts/abc", 400, "bad_request"),
        ("GET", "/v1/accounts/4294967296", 400, "bad_request"),
        ("GET", "/v1/accounts/200", 404, "unknown_account"),
        ("GET", "/v1/ops/abc", 400, "bad_request"),
        ("GET", "/v1/ops/-3", 400, "bad_request"),
        ("GET", "/v1/ops/999", 404, "unknown_op"),
        ("GET", "/v1/batches/x", 400, "bad_request"),
        ("GET", "/v1/batches/999", 404, "unknown_batch"),
        ("GET", "/v1/stream?from=garbage", 400, "bad_request"),
        ("GET", "/v1/stream?from=-1", 400, "bad_request"),
        ("POST", "/v1/ops", 400, "bad_request"),
        ("POST", "/v1/replicated", 400, "bad_request"),
        ("GET", "/v1/replicated", 405, "method_not_allowed"),
        ("DELETE", "/v1/ops", 405, "method_not_allowed"),
        ("POST", "/v1/status", 405, "method_not_allowed"),
        ("POST", "/metrics", 405, "method_not_allowed"),
        ("GET", "/v1/nothing", 404, "not_found"),
        ("GET", "/", 404, "not_found"),
    ];
    for (method, path, status, reason) in cases {
        typed(&p.http, method, &u(path), status, reason).await;
    }
    // and nothing moved
    assert_eq!(p.level(), Level::Accepted);
    p.seq.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_every_primary_route_with_its_own_typed_refusal_and_serves_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::open(config(dir.path())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(keel_http::serve_forever(
        listener,
        replica::router(replica.watch()),
        keel_http::Limits::default(),
    ));
    let http = reqwest::Client::new();
    let u = |path: &str| format!("{base}{path}");
    for (method, path) in [
        ("POST", "/v1/ops"),
        ("GET", "/v1/ops/1"),
        ("GET", "/v1/ops/abc"),
        ("GET", "/v1/accounts/0"),
        ("GET", "/v1/accounts/-1"),
        ("GET", "/v1/batches/1"),
        ("GET", "/v1/stream?from=1"),
        ("GET", "/v1/stream?from=garbage"),
        ("POST", "/v1/replicated"),
    ] {
        typed(&http, method, &u(path), 503, "not_primary").await;
    }
    typed(&http, "GET", &u("/v1/nothing"), 404, "not_found").await;
    typed(&http, "DELETE", &u("/v1/status"), 405, "method_not_allowed").await;
    let m = http.get(u("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    let text = m.text().await.unwrap();
    for g in [
        "keel_standby_last_batch 0",
        "keel_standby_following 0",
        "keel_standby_refused 0",
    ] {
        assert!(text.contains(g), "{g} in {text}");
    }
    drop(replica);
}
