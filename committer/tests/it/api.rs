//! The committer's HTTP API over loopback, with the fixture's real proofs: every bad offer is
//! refused with its reason and nothing is held; a proof goes to the committer whose key holds
//! the lease; after a take-over, a prover's courier offers the proofs stranded at the old
//! holder's committer to the new one, which posts them under its own epoch.
//!
//! The paired sequencer is a log of batches behind [`SequencedBatches`] (the seam the CLI fills
//! with the sequencer's HTTP API; `keel committer` end to end is in the CLI's tests).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use keel_committer::{
    address_of,
    api::{router, ClientError, CommitterApi, OfferResult, MAX_BODY},
    Call, CommitterClient, Courier, EmbeddedL1, L1Error, Rejection, SequencedBatches,
    SettlementLayer,
};
use keel_state::{Batch, BatchNumber, Decode, Encode, Epoch, SecretKey};
use tempfile::TempDir;

use crate::{
    fixture::*,
    service::{quick, Sealer},
};

/// The paired sequencer's log; it can be made unreachable.
#[derive(Default)]
struct Log {
    batches: Mutex<BTreeMap<u64, Batch>>,
    down: AtomicBool,
}

impl Log {
    fn with(ns: &[usize]) -> Arc<Self> {
        let log = Arc::new(Self::default());
        for &n in ns {
            let b = fixture().batches[n - 1].batch.clone();
            log.batches.lock().unwrap().insert(b.number.0, b);
        }
        log
    }
}

/// The committer's handle on the log.
struct Sequenced(Arc<Log>);

impl SequencedBatches for Sequenced {
    fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, String> {
        let log = &self.0;
        if log.down.load(Ordering::Relaxed) {
            return Err("connection refused".into());
        }
        Ok(log.batches.lock().unwrap().get(&n.0).cloned())
    }
}

/// A committer's API served on a loopback port until dropped.
struct Served {
    url: String,
    api: Arc<CommitterApi>,
    _rt: tokio::runtime::Runtime,
}

fn serve(dir: &std::path::Path, l1: Arc<EmbeddedL1>, key: SecretKey, log: Arc<Log>) -> Served {
    let api = Arc::new(CommitterApi::new(
        quick(dir),
        l1.clone(),
        keyed(&l1, key),
        fixture().verifier.clone(),
        Box::new(Sequenced(log)),
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(keel_http::serve_forever(
        listener,
        router(api.clone()),
        keel_http::Limits::default(),
    ));
    Served { url, api, _rt: rt }
}

fn client(urls: &[&str]) -> CommitterClient {
    CommitterClient::new(urls.iter().map(|u| u.to_string())).unwrap()
}

/// Posts `body` as it is; returns the status and the refusal's reason.
fn raw(url: &str, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/batches"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().unwrap_or_default();
    (status, v["error"].as_str().unwrap_or("").to_owned())
}

fn reason(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Refused { status, reason, .. }) => (status, reason.as_str().to_owned()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn offer_n(c: &CommitterClient, n: usize) -> Result<keel_committer::api::OfferAnswer, ClientError> {
    let p = &fixture().batches[n - 1];
    c.offer(&p.data, &p.proof)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_bad_offer_is_refused_with_its_reason_and_nothing_is_held() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let log = Log::with(&[1, 2]);
    let s = serve(&dir.path().join("c"), l1.clone(), primary(), log.clone());
    let c = client(&[&s.url]);
    let b = &fixture().batches;

    assert_eq!(
        raw(&s.url, b"not json".to_vec()),
        (400, "bad_request".into())
    );
    assert_eq!(
        raw(&s.url, br#"{"data":"01","proof":"02","more":1}"#.to_vec()),
        (400, "bad_request".into())
    );
    assert_eq!(
        raw(&s.url, br#"{"data":"zz","proof":"02"}"#.to_vec()),
        (400, "bad_hex".into())
    );
    assert_eq!(
        raw(&s.url, vec![b' '; MAX_BODY + 1]),
        (413, "too_large".into())
    );
    // every other hostile request gets the typed refusal too
    let http = reqwest::blocking::Client::new();
    for (r, status, why) in [
        (
            http.get(format!("{}/v1/batches", s.url)),
            405,
            "method_not_allowed",
        ),
        (
            http.post(format!("{}/v1/status", s.url)),
            405,
            "method_not_allowed",
        ),
        (
            http.get(format!("{}/v1/batches/1", s.url)),
            404,
            "not_found",
        ),
        (
            http.get(format!("{}/metrics?x=%zz", s.url)),
            404,
            "not_found",
        ),
    ] {
        let r = r.send().unwrap();
        assert_eq!(r.status().as_u16(), status, "{why}");
        let e: keel_committer::api::ErrorBody = r.json().unwrap();
        assert_eq!(e.error, why, "{}", e.message);
    }
    assert_eq!(
        reason(c.offer(&[1, 2, 3], &b[0].proof)),
        (422, "bad_data".into())
    );
    // batch 1 with batch 2's proof: the L1 would refuse it, so the committer does first
    assert_eq!(
        reason(c.offer(&b[0].data, &b[1].proof)),
        (422, "bad_proof".into())
    );
    // batch 3 is proven but its sequencer never logged it (another history)
    assert_eq!(reason(offer_n(&c, 3)), (409, "not_sequenced".into()));
    // batch 2 as the sequencer logged it, but claiming another root
    let mut edited = b[1].batch.clone();
    edited.new_root = edited.prev_root;
    assert_eq!(
        reason(c.offer(&edited.encode(), &b[1].proof)),
        (409, "not_sequenced".into())
    );
    log.down.store(true, Ordering::Relaxed);
    assert_eq!(
        reason(offer_n(&c, 1)),
        (503, "sequencer_unavailable".into())
    );
    log.down.store(false, Ordering::Relaxed);

    let st = c.status().unwrap();
    assert_eq!(
        (st.held.len(), st.posted, st.halted),
        (0, 0, None),
        "nothing held"
    );
    assert_eq!((st.lease_holder, st.term), (Some(true), Some(1)));
    assert!(s.api.status().held.is_empty());
    assert_eq!(l1.rollup().unwrap().checkpoint.batch, BatchNumber(0));

    // the good offer, out of order: held (the L1 has no block producer here, so it stays)
    let a = offer_n(&c, 2).unwrap();
    assert_eq!((a.batch, a.result, a.epoch), (2, OfferResult::Held, 1));
    // offered again: harmless
    assert_eq!(offer_n(&c, 2).unwrap().result, OfferResult::Held);
    assert_eq!(c.status().unwrap().held, [2]);
}

#[test]
fn proofs_go_to_the_lease_holder_and_a_courier_moves_stranded_ones_to_the_next_holder() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let _sealer = Sealer::start(l1.clone(), 1_000);
    let log = Log::with(&[1, 2, 3]);
    let a = serve(&dir.path().join("a"), l1.clone(), primary(), log.clone());
    let b = serve(&dir.path().join("b"), l1.clone(), standby(), log.clone());
    // a prover that knows both committers, the standby's first
    let mut courier = Courier::new(client(&[&b.url, &a.url]), l1.clone());
    let offer = |courier: &mut Courier, n: usize| {
        let p = &fixture().batches[n - 1];
        courier.offer(&p.data, &p.proof)
    };

    assert_eq!(
        reason(offer_n(&client(&[&b.url]), 1)),
        (503, "not_lease_holder".into())
    );
    let got = offer(&mut courier, 1).unwrap();
    assert_eq!((got.result, got.epoch), (OfferResult::Held, 1));
    assert_eq!(
        courier.client().base(),
        a.url,
        "the lease holder's committer took it"
    );
    wait_for("batch 1 settled", || {
        l1.rollup().unwrap().checkpoint.batch == BatchNumber(1)
    });
    // batch 3 is proven before batch 2: the primary's committer holds it, unposted
    assert_eq!(offer(&mut courier, 3).unwrap().epoch, 1);
    assert_eq!(a.api.status().held, [3]);

    // the primary falls silent; the standby takes the lease over (epoch 2)
    wait_for("the standby's claim", || {
        match send(l1.as_ref(), &standby(), Call::ClaimLease) {
            Ok(_) => true,
            Err(L1Error::Rejected(Rejection::LeaseNotExpired { .. })) => false,
            Err(e) => panic!("{e}"),
        }
    });
    let lease = l1.rollup().unwrap().lease;
    assert_eq!(lease.epoch, Epoch(2));
    assert_eq!(lease.sequencer, address_of(&standby().public_key()));

    // batch 3 is stranded at a committer that can no longer post it: the courier sees the new
    // epoch, forgets settled batch 1 and offers batch 3 to the new holder's committer
    assert_eq!(courier.pending(), [1, 3]);
    assert_eq!(courier.check(), Ok(1));
    assert_eq!(courier.pending(), [3]);
    assert_eq!(b.api.status().held, [3]);
    assert_eq!(
        reason(offer_n(&client(&[&a.url]), 2)),
        (503, "not_lease_holder".into())
    );
    // batch 2, cut (and proven) in epoch 1: the new holder stamps epoch 2 and posts 2, then 3
    let got = offer(&mut courier, 2).unwrap();
    assert_eq!((got.result, got.epoch), (OfferResult::Held, 2));
    assert_eq!(courier.client().base(), b.url);
    wait_for("batches 2 and 3 settled", || {
        l1.rollup().unwrap().checkpoint.batch == BatchNumber(3)
    });
    for n in [2, 3] {
        let posted = Batch::decode(&l1.batch(BatchNumber(n)).unwrap().unwrap().data).unwrap();
        let mut want = fixture().batches[n as usize - 1].batch.clone();
        assert_eq!(want.epoch, Epoch(1));
        want.epoch = Epoch(2);
        assert_eq!(posted, want, "batch {n} is the sequenced one, in epoch 2");
    }
    // the committer learns that its posts settled on its next look at the L1, after the L1 has
    // sealed them: wait for that, then check what it reports
    wait_for(
        "the new holder's committer reports both batches posted",
        || {
            let st = b.api.status();
            st.posted == 2 && st.held.is_empty()
        },
    );
    let st = b.api.status();
    assert_eq!((st.term, st.posted, st.held.len()), (Some(2), 2, 0));
    // the old holder's term is over: it posts nothing, and says so
    let st = client(&[&a.url]).status().unwrap();
    assert_eq!(
        (st.lease_holder, st.epoch, st.term),
        (Some(false), Some(2), None)
    );
    // a settled batch is acknowledged, not held again; the courier forgets what settled
    assert_eq!(
        offer_n(&client(&[&b.url]), 1).unwrap().result,
        OfferResult::AlreadySettled
    );
    thread::sleep(keel_committer::api::COURIER_CHECK);
    assert_eq!(courier.check(), Ok(0));
    assert!(courier.pending().is_empty());
}
