//! The L1 over JSON-RPC: every method answers as the L1 in process does, every refusal keeps its
//! rule across the wire, bad requests get JSON-RPC errors and change nothing, and the committer
//! rides out an outage of the network L1.

use std::{net::SocketAddr, sync::Arc, thread, time::Duration};

use keel_committer::{
    address_of,
    rpc::{RpcServer, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, REJECTED},
    Call, Committer, EmbeddedChain, EmbeddedL1, L1Error, L1Tx, Offered, Rejection, RpcL1,
    SettlementLayer,
};
use keel_state::{test_utils::key, AccountIndex, BatchNumber};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    fixture::*,
    service::{assert_settled_exactly, offer, quick, Sealer},
};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn serve(l1: &Arc<EmbeddedL1>) -> RpcServer {
    RpcServer::spawn(l1.clone(), loopback()).unwrap()
}

#[test]
fn every_method_answers_over_the_network_as_the_l1_in_process() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(dir.path()));
    let server = serve(&l1);
    let remote = RpcL1::connect(&server.url()).unwrap();
    assert_eq!(remote.chain_id(), CHAIN);

    // deposits and a batch submitted over the network execute on the L1
    for (i, amount) in DEPOSITS.into_iter().enumerate() {
        let pk = key(i as u32).public_key();
        let r = send(&remote, &funder(), Call::Deposit { pk, amount }).unwrap();
        assert_eq!(r.height, l1.head().unwrap().height + 1);
    }
    let r = send(&remote, &primary(), submit(1)).unwrap();
    assert_eq!(r.events.len(), 1, "{r:?}");
    l1.seal_block(T0 + 5_000).unwrap();

    assert_eq!(remote.head().unwrap(), l1.head().unwrap());
    assert_eq!(remote.rollup().unwrap(), l1.rollup().unwrap());
    assert_eq!(remote.rollup().unwrap().checkpoint.batch, BatchNumber(1));
    for who in [funder(), primary(), key(0)] {
        let a = address_of(&who.public_key());
        assert_eq!(remote.nonce(&a).unwrap(), l1.nonce(&a).unwrap());
        assert_eq!(remote.balance(&a).unwrap(), l1.balance(&a).unwrap());
    }
    assert_eq!(remote.queue(0, 10).unwrap(), l1.queue(0, 10).unwrap());
    assert_eq!(remote.queue(1, 10).unwrap().len(), 1);
    assert_eq!(remote.queue(5, 10).unwrap(), []);
    assert_eq!(
        remote.batch(BatchNumber(1)).unwrap(),
        l1.batch(BatchNumber(1)).unwrap()
    );
    assert_eq!(remote.batch(BatchNumber(2)).unwrap(), None);
    assert_eq!(
        remote.account_index(&key(1).public_key()).unwrap(),
        Some(AccountIndex(1))
    );
    assert_eq!(remote.account_index(&key(5).public_key()).unwrap(), None);
    assert!(!remote.exited(AccountIndex(0)).unwrap());
}

#[test]
fn a_refusal_keeps_its_rule_across_the_wire_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(dir.path()));
    queue_deposits(&l1);
    let server = serve(&l1);
    let remote = RpcL1::connect(&server.url()).unwrap();
    let before = l1.rollup().unwrap();
    let me = address_of(&primary().public_key());

    let stale = L1Tx::sign(&primary(), CHAIN, 5, submit(1));
    assert_eq!(
        refusal(remote.submit(&stale)),
        Rejection::BadNonce {
            expected: 0,
            got: 5
        }
    );
    let skipped = send(&remote, &primary(), submit(2));
    assert_eq!(
        refusal(skipped),
        Rejection::WrongBatchNumber {
            expected: BatchNumber(1),
            got: BatchNumber(2)
        }
    );
    assert_eq!(
        refusal(send(&remote, &key(3), Call::ActivateExitMode)),
        refusal(send(l1.as_ref(), &key(3), Call::ActivateExitMode))
    );
    let other_chain = L1Tx::sign(&primary(), CHAIN + 1, 0, submit(1));
    assert_eq!(
        refusal(remote.submit(&other_chain)),
        Rejection::BadSignature
    );

    assert_eq!(l1.rollup().unwrap(), before);
    assert_eq!(remote.nonce(&me).unwrap(), 0);
}

/// Posts `body` to the server and returns the JSON answer.
fn raw(url: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[test]
fn bad_requests_get_json_rpc_errors_and_change_nothing() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(dir.path()));
    queue_deposits(&l1);
    let server = serve(&l1);
    let url = server.url();
    let before = (l1.rollup().unwrap(), l1.queue(0, 10).unwrap());
    let req = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string()
    };

    let (status, a) = raw(&url, "{not json");
    assert_eq!((status, code(&a)), (200, PARSE_ERROR));
    let (_, a) = raw(&url, json!({"id": 1, "method": "keel_head"}).to_string());
    assert_eq!(code(&a), INVALID_REQUEST, "jsonrpc is required");
    let (_, a) = raw(
        &url,
        json!({"jsonrpc": "1.0", "id": 1, "method": "keel_head"}).to_string(),
    );
    assert_eq!(code(&a), INVALID_REQUEST);
    let (_, a) = raw(&url, req("keel_mint", json!({})));
    assert_eq!((code(&a), &a["id"]), (METHOD_NOT_FOUND, &json!(7)));
    for (method, params) in [
        ("keel_nonce", json!({"address": "0x12"})),
        ("keel_nonce", json!({"address": "zz"})),
        ("keel_balance", json!({})),
        ("keel_head", json!({"x": 1})),
        ("keel_queue", json!({"position": -1, "max": 3})),
        ("keel_batch", json!({"number": "one"})),
        (
            "keel_accountIndex",
            json!({"pk": format!("0x{}", "11".repeat(32))}),
        ),
        ("keel_exited", json!({"account": 1, "extra": true})),
        ("keel_submit", json!({"tx": "not hex"})),
    ] {
        let (_, a) = raw(&url, req(method, params.clone()));
        assert_eq!(code(&a), INVALID_PARAMS, "{method} {params}: {a}");
    }
    // bytes that are hex but not a transaction: the L1's own rule
    let (_, a) = raw(&url, req("keel_submit", json!({"tx": "0x0102"})));
    assert_eq!(code(&a), REJECTED);
    assert_eq!(a["error"]["data"]["rule"], json!("malformed"));
    // a body over the limit is refused before it is read
    let huge = vec![b' '; keel_committer::rpc::MAX_REQUEST_BYTES + 1];
    let (status, a) = raw(&url, huge);
    assert_eq!((status, &a["error"]), (413, &json!("too_large")), "{a}");
    // what is not JSON-RPC at all gets the typed refusal every Keel server gives
    let http = reqwest::blocking::Client::new();
    for (r, status, reason) in [
        (http.get(&url), 405, "method_not_allowed"),
        (http.post(format!("{url}/v1/nothing")), 404, "not_found"),
    ] {
        let r = r.send().unwrap();
        assert_eq!(r.status().as_u16(), status);
        let e: keel_http::ErrorBody = r.json().unwrap();
        assert_eq!(e.error, reason, "{}", e.message);
    }

    // a batch array is answered request by request, in order, each with its own id
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "keel_chainId"},
        {"jsonrpc": "2.0", "id": "two", "method": "keel_mint", "params": {}},
        {"jsonrpc": "2.0", "id": 3, "method": "keel_nonce", "params": {"address": "zz"}},
        "not a request",
    ]);
    let (status, a) = raw(&url, batch.to_string());
    let answers = a.as_array().unwrap_or_else(|| panic!("not an array: {a}"));
    assert_eq!((status, answers.len()), (200, 4));
    assert_eq!(answers[0]["id"], json!(1));
    assert_eq!(answers[0]["result"], json!(l1.chain_id()));
    assert_eq!(
        (code(&answers[1]), &answers[1]["id"]),
        (METHOD_NOT_FOUND, &json!("two"))
    );
    assert_eq!(
        (code(&answers[2]), &answers[2]["id"]),
        (INVALID_PARAMS, &json!(3))
    );
    assert_eq!(code(&answers[3]), INVALID_REQUEST);
    // an empty batch, and one over the limit, are one invalid request
    let over = Value::Array(vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "keel_head"});
        keel_committer::rpc::MAX_BATCH_REQUESTS + 1
    ]);
    for b in [json!([]), over] {
        let (_, a) = raw(&url, b.to_string());
        assert_eq!(code(&a), INVALID_REQUEST, "{a}");
    }

    // a good request still answers, and nothing changed
    let (_, a) = raw(&url, req("keel_queue", json!({"position": 0, "max": 10})));
    assert_eq!(a["result"].as_array().map(Vec::len), Some(2), "{a}");
    assert_eq!((l1.rollup().unwrap(), l1.queue(0, 10).unwrap()), before);
}

#[test]
fn the_committer_rides_out_an_outage_of_the_network_l1_and_posts_each_batch_once() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let _sealer = Sealer::start(l1.clone(), 1_000);
    let server = serve(&l1);
    let addr = server.addr();
    let remote = Arc::new(RpcL1::connect_with(&server.url(), Duration::from_secs(10)).unwrap());
    let mut c = Committer::open(
        quick(&dir.path().join("c")),
        remote.clone(),
        keyed(&remote, primary()),
        Box::new(|_| {}),
    )
    .unwrap();

    // the L1's API goes away; the offers are kept and the poster retries
    server.stop().unwrap();
    for n in [1, 2, 3] {
        assert_eq!(offer(&c, n), Offered::Held);
    }
    thread::sleep(Duration::from_millis(300));
    let s = c.status();
    assert!(
        s.retries > 0 && s.posted == 0 && s.halted.is_none(),
        "{s:?}"
    );
    assert!(matches!(remote.head(), Err(L1Error::Unavailable { .. })));

    // it comes back on the same address: everything is posted, in order, once
    let _server = RpcServer::spawn(l1.clone(), addr).unwrap();
    let s = c.wait_included(BatchNumber(3), Duration::from_secs(120));
    assert_eq!(
        (s.included, s.posted, &s.halted),
        (BatchNumber(3), 3, &None),
        "{s:?}"
    );
    assert_settled_exactly(&l1, 3);
    c.shutdown();
}

#[test]
fn a_client_refuses_an_address_with_nothing_listening() {
    // bind and drop, so the port is (very likely) closed
    let addr = std::net::TcpListener::bind(loopback())
        .unwrap()
        .local_addr()
        .unwrap();
    let e = RpcL1::connect_with(&format!("http://{addr}"), Duration::from_secs(2)).unwrap_err();
    assert!(matches!(e, L1Error::Unavailable { .. }), "{e:?}");
}
