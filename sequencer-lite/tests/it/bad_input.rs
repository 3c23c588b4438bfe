//! Every kind of bad input gets its typed 4xx and changes nothing.

use std::time::Duration;

use keel_sequencer::{api::ErrorBody, Client, Sequencer, SequencerConfig};
use keel_state::{test_utils::key, AccountIndex, Encode, SignedOp, Transfer};
use serde_json::json;

use crate::common::{config, fund, serve, transfer, FUNDS};

struct Fixture {
    _dir: tempfile::TempDir,
    seq: Sequencer,
    client: Client,
    base: String,
    http: reqwest::Client,
}

async fn fixture(max_per_account: usize) -> Fixture {
    fixture_with(|c| c.max_per_account = max_per_account).await
}

async fn fixture_with(tweak: impl FnOnce(&mut SequencerConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    // nothing is cut during the test: every refusal is checked against a still state
    c.batch_deadline = Duration::from_secs(3600);
    c.batch_capacity = 64;
    c.max_body = 1024;
    tweak(&mut c);
    let seq = Sequencer::open(c).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 3))
        .await
        .unwrap();
    let client = serve(seq.clone()).await;
    let base = client.base().to_owned();
    Fixture {
        _dir: dir,
        seq,
        client,
        base,
        http: reqwest::Client::new(),
    }
}

impl Fixture {
    /// Posts `body` raw and checks the refusal's status and reason, and that nothing changed.
    async fn refused(&self, body: Vec<u8>, status: u16, reason: &str) {
        let before = self.client.status().await.unwrap();
        let accounts: Vec<_> = (0..3)
            .map(|i| self.seq.account(AccountIndex(i)).unwrap())
            .collect();
        let r = self
            .http
            .post(format!("{}/v1/ops", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{reason}");
        let b: ErrorBody = r.json().await.unwrap();
        assert_eq!(b.error, reason, "{}", b.message);
        assert!(!b.message.is_empty());
        let after = self.client.status().await.unwrap();
        assert_eq!(before, after, "a refused {reason} changed the sequencer");
        for i in 0..3 {
            assert_eq!(
                accounts[i as usize],
                self.seq.account(AccountIndex(i)).unwrap()
            );
        }
    }

    async fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.base)).send();
        r.await.unwrap().text().await.unwrap()
    }

    async fn refused_op(&self, op: &SignedOp, status: u16, reason: &str) {
        let body = json!({ "op": hex::encode(op.encode()) }).to_string();
        self.refused(body.into_bytes(), status, reason).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_unknown_fields_are_400() {
    let f = fixture(8).await;
    f.refused(b"{\"op\": ".to_vec(), 400, "bad_request").await;
    f.refused(b"[1, 2]".to_vec(), 400, "bad_request").await;
    let op = hex::encode(transfer(0, 1, 1, 0).encode());
    let extra = json!({ "op": op, "fee": 1 }).to_string();
    f.refused(extra.into_bytes(), 400, "bad_request").await;
    // the same operation in a well-formed body is accepted
    f.client.submit(&transfer(0, 1, 1, 0)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413() {
    let f = fixture(8).await;
    let body = json!({ "op": "00".repeat(1024) }).to_string();
    f.refused(body.into_bytes(), 413, "too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hex_and_bad_encodings_are_400() {
    let f = fixture(8).await;
    f.refused(
        json!({ "op": "zz" }).to_string().into_bytes(),
        400,
        "bad_hex",
    )
    .await;
    let mut bytes = transfer(0, 1, 1, 0).encode();
    bytes.truncate(bytes.len() - 1);
    let truncated = json!({ "op": hex::encode(&bytes) }).to_string();
    f.refused(truncated.into_bytes(), 400, "bad_encoding").await;
    let mut tag = transfer(0, 1, 1, 0).encode();
    tag[0] = 0xee;
    let unknown = json!({ "op": hex::encode(&tag) }).to_string();
    f.refused(unknown.into_bytes(), 400, "bad_encoding").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_422() {
    let f = fixture(8).await;
    // account 0's transfer signed with account 2's key
    let forged = SignedOp::Transfer(Transfer::sign(
        &key(2),
        AccountIndex(0),
        AccountIndex(1),
        5,
        0,
    ));
    f.refused_op(&forged, 422, "bad_signature").await;
    f.client.submit(&transfer(0, 1, 5, 0)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_409_and_a_gap_422() {
    let f = fixture(8).await;
    let op = transfer(0, 1, 5, 0);
    let first = f.client.submit(&op).await.unwrap();
    assert_eq!(first.seq, 4);
    f.refused_op(&op, 409, "stale_nonce").await;
    f.refused_op(&transfer(0, 1, 5, 3), 422, "nonce_gap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdrafts_unknown_accounts_and_outside_indices_are_422() {
    let f = fixture(8).await;
    f.refused_op(&transfer(0, 1, FUNDS + 1, 0), 422, "insufficient_balance")
        .await;
    f.refused_op(&transfer(0, 7, 1, 0), 422, "unknown_account")
        .await;
    f.refused_op(&transfer(0, 1 << 8, 1, 0), 422, "index_out_of_range")
        .await;
    // spending everything admitted so far counts: two transfers of the whole balance
    f.client.submit(&transfer(0, 1, FUNDS, 0)).await.unwrap();
    f.refused_op(&transfer(0, 1, 1, 1), 422, "insufficient_balance")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_account_is_429_and_others_still_get_in() {
    let f = fixture(4).await;
    for n in 0..4 {
        f.client.submit(&transfer(1, 2, 1, n)).await.unwrap();
    }
    f.refused_op(&transfer(1, 2, 1, 4), 429, "account_limit")
        .await;
    f.client.submit(&transfer(2, 1, 1, 0)).await.unwrap();
    let metrics = f.metrics().await;
    assert!(metrics.contains("keel_sequencer_rejected_total{reason=\"account_limit\"} 1"));
    assert!(
        metrics.contains("keel_sequencer_accepted_total 8"),
        "{metrics}"
    );
    // the refused one was turned away before its signature was hashed or checked
    assert!(
        metrics.contains("keel_sequencer_verify_signatures_total 5"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_is_503_before_any_signature_work() {
    // the three funding deposits wait uncommitted (nothing is cut): room for two more
    let f = fixture_with(|c| c.max_pending = 5).await;
    f.client.submit(&transfer(0, 1, 1, 0)).await.unwrap();
    f.client.submit(&transfer(1, 2, 1, 0)).await.unwrap();
    f.refused_op(&transfer(2, 0, 1, 0), 503, "mempool_full")
        .await;
    let metrics = f.metrics().await;
    assert!(metrics.contains("keel_sequencer_rejected_total{reason=\"mempool_full\"} 1"));
    assert!(
        metrics.contains("keel_sequencer_verify_signatures_total 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_with_bad_fields_are_refused_and_the_same_fields_are_accepted() {
    let f = fixture(8).await;
    let op = transfer(0, 1, 5, 0);
    let SignedOp::Transfer(t) = op else {
        unreachable!()
    };
    let fields = json!({
        "from": 0, "to": 1, "amount": 5, "nonce": 0,
        "signature": hex::encode(t.signature.to_bytes()),
    });
    let with = |k: &str, v: serde_json::Value| {
        let mut b = fields.clone();
        b[k] = v;
        json!({ "transfer": b }).to_string().into_bytes()
    };
    // a field missing, of the wrong type, negative, or unknown
    let mut missing = fields.clone();
    missing.as_object_mut().unwrap().remove("nonce");
    let missing = json!({ "transfer": missing }).to_string().into_bytes();
    f.refused(missing, 400, "bad_request").await;
    f.refused(with("amount", json!("5")), 400, "bad_request")
        .await;
    f.refused(with("amount", json!(-5)), 400, "bad_request")
        .await;
    f.refused(with("fee", json!(1)), 400, "bad_request").await;
    // a signature that is not hex, too short, or not a curve point
    f.refused(with("signature", json!("xyz")), 400, "bad_hex")
        .await;
    f.refused(with("signature", json!("00".repeat(95))), 400, "bad_hex")
        .await;
    f.refused(
        with("signature", json!("11".repeat(96))),
        400,
        "bad_encoding",
    )
    .await;
    // the fields signed for another amount
    f.refused(with("amount", json!(6)), 422, "bad_signature")
        .await;
    // none, or two, of the operation's forms
    f.refused(
        json!({ "wait": "accepted" }).to_string().into_bytes(),
        400,
        "bad_request",
    )
    .await;
    let both = json!({ "op": hex::encode(op.encode()), "transfer": fields }).to_string();
    f.refused(both.into_bytes(), 400, "bad_request").await;
    // a withdrawal's recipient of the wrong length
    let w = json!({ "withdraw": {
        "from": 0, "recipient": "0x1234", "amount": 1, "nonce": 0,
        "signature": hex::encode(t.signature.to_bytes()),
    }});
    f.refused(w.to_string().into_bytes(), 400, "bad_hex").await;
    // the well-formed fields are the same operation as its encoding: accepted once, then stale
    let r = f
        .http
        .post(format!("{}/v1/ops", f.base))
        .json(&json!({ "transfer": fields }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    f.refused_op(&op, 409, "stale_nonce").await;
}
