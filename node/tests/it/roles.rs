use std::{thread, time::Duration};

use keel_committer::address_of;
use keel_sequencer::{node::Role, ReplicaStatus, Status};
use keel_state::{BatchNumber, Epoch};

use crate::harness::{
    get, listeners, node, pair, sequencer, until, Cut, Proves, BACKOFF, FAILOVER, L1,
};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_primary_that_stops_heartbeating_is_taken_over_by_the_standby() {
    let l1 = L1::new(2);
    let (a, b) = pair(&l1, l1.l1.clone(), Proves::Elsewhere);
    // the primary keeps the lease while it runs: well past the failover timeout, no take-over
    thread::sleep(FAILOVER * 2);
    assert_eq!(l1.view().lease.epoch, Epoch(1));
    assert_eq!(b.role(), Role::Standby);

    a.stop().unwrap();
    until("the standby to take over", WAIT, || {
        b.role() == Role::Primary
    });
    let view = l1.view();
    assert_eq!(view.lease.sequencer, address_of(&sequencer(1).public_key()));
    assert_eq!(view.lease.epoch, Epoch(2));
    assert_eq!(b.status().epoch, 2);
    // it serves the primary's API now
    let st: Status = get(&format!("{}/v1/status", b.url())).expect("the primary's status");
    assert_eq!(st.epoch, 2);
    b.stop().unwrap();
}

#[test]
fn a_partitioned_primary_that_returns_is_fenced_and_rejoins_as_a_standby() {
    let l1 = L1::new(2);
    let cut = Cut::new(l1.l1.clone());
    let (a, b) = pair(&l1, cut.clone(), Proves::Elsewhere);
    let dir = l1.dir.path();

    // the primary loses the L1: it cannot heartbeat, and the standby takes over
    cut.cut();
    until("the standby to take over", WAIT, || {
        b.role() == Role::Primary
    });
    assert_eq!(l1.view().lease.epoch, Epoch(2));
    // the old primary does not know yet: it still thinks it is the primary of epoch 1
    assert_eq!((a.role(), a.status().epoch), (Role::Primary, 1));
    assert!(a.status().fenced.is_empty());

    // back on the L1, it sees the lease moved on: fenced, its directory moved aside, a standby
    cut.heal();
    until("the old primary to be fenced", WAIT, || {
        a.role() == Role::Standby && !a.status().fenced.is_empty()
    });
    let fenced = a.status().fenced;
    assert_eq!(fenced.len(), 1, "{fenced:?}");
    assert!(
        fenced[0].contains("fenced in epoch 1: the L1's lease is in epoch 2"),
        "{fenced:?}"
    );
    let aside = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sequencer-0.fenced-epoch1-"))
        .count();
    assert_eq!(aside, 1);
    assert_eq!(
        l1.view().lease.sequencer,
        address_of(&sequencer(1).public_key())
    );
    assert_eq!(b.role(), Role::Primary);
    a.stop().unwrap();
    b.stop().unwrap();
}

#[test]
fn two_standbys_compete_by_rank_and_exactly_one_takes_over() {
    let l1 = L1::new(3);
    let (ls, urls) = listeners(3);
    let dir = l1.dir.path();
    let mut ls = ls.into_iter();
    let peers = |i: usize| -> Vec<String> {
        (0..3)
            .filter(|&j| j != i)
            .map(|j| urls[j].clone())
            .collect()
    };
    let a = node(
        0,
        dir,
        l1.l1.clone(),
        ls.next().unwrap(),
        peers(0),
        Proves::Elsewhere,
    );
    let b = node(
        1,
        dir,
        l1.l1.clone(),
        ls.next().unwrap(),
        peers(1),
        Proves::Elsewhere,
    );
    let c = node(
        2,
        dir,
        l1.l1.clone(),
        ls.next().unwrap(),
        peers(2),
        Proves::Elsewhere,
    );
    until("the roles", WAIT, || {
        a.role() == Role::Primary && b.role() == Role::Standby && c.role() == Role::Standby
    });
    a.stop().unwrap();
    // sequencer 1 comes right after the holder in the registry: its slot is first
    until("a take-over", WAIT, || {
        b.role() == Role::Primary || c.role() == Role::Primary
    });
    assert_eq!(b.role(), Role::Primary);
    // well past sequencer 2's slot: the lease is fresh (the winner heartbeats), no second claim
    thread::sleep(FAILOVER + BACKOFF * 2);
    let view = l1.view();
    assert_eq!(view.lease.sequencer, address_of(&sequencer(1).public_key()));
    assert_eq!(view.lease.epoch, Epoch(2));
    assert_eq!(c.role(), Role::Standby);
    b.stop().unwrap();
    c.stop().unwrap();
}

#[test]
fn a_standby_with_nothing_to_follow_catches_up_from_l1_data_and_takes_over_from_there() {
    let l1 = L1::new(2);
    let (mut ls, urls) = listeners(2);
    let dir = l1.dir.path();
    let b_listener = ls.pop().unwrap();
    // the primary proves and posts: two deposits, two batches
    let a = node(
        0,
        dir,
        l1.l1.clone(),
        ls.pop().unwrap(),
        vec![urls[1].clone()],
        Proves::Here,
    );
    until("the primary", WAIT, || a.role() == Role::Primary);
    l1.deposit(0, 1_000);
    l1.deposit(1, 500);
    until(
        "two batches proven on the L1",
        Duration::from_secs(120),
        || l1.view().checkpoint.batch >= BatchNumber(2),
    );
    let proven = l1.view().checkpoint;

    // a standby that cannot reach the primary (no peers): what it holds is the L1's data
    let b = node(1, dir, l1.l1.clone(), b_listener, vec![], Proves::Elsewhere);
    until("the standby", WAIT, || b.role() == Role::Standby);
    let st: ReplicaStatus = get(&format!("{}/v1/status", b.url())).expect("a standby's status");
    assert!(st.following.is_none(), "{st:?}");
    assert_eq!(st.last_batch, proven.batch.0, "{st:?}");
    assert_eq!(st.root, proven.root, "{st:?}");

    // the primary goes; the standby takes over from the proven state it rebuilt
    a.stop().unwrap();
    until("the take-over", WAIT, || b.role() == Role::Primary);
    let st: Status = get(&format!("{}/v1/status", b.url())).expect("the new primary's status");
    assert!(st.last_batch >= proven.batch.0, "{st:?}");
    assert_eq!(st.epoch, 2);
    let balance = |i: u32| -> u64 {
        let v: serde_json::Value =
            get(&format!("{}/v1/accounts/{i}", b.url())).expect("an account");
        v["balance"].as_u64().unwrap()
    };
    assert_eq!((balance(0), balance(1)), (1_000, 500));
    b.stop().unwrap();
}

/// A hostile request to every route of both roles gets the typed JSON refusal.
#[test]
fn every_route_of_both_roles_refuses_hostile_requests_with_a_typed_body() {
    let l1 = L1::new(2);
    let (a, b) = pair(&l1, l1.l1.clone(), Proves::Elsewhere);
    let http = reqwest::blocking::Client::new();
    let refused = |method: &str, url: String, status: u16, reason: &str| {
        let r = http
            .request(method.parse().unwrap(), &url)
            .timeout(Duration::from_secs(5))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {url}");
        let body: serde_json::Value = r.json().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        assert_eq!(body["error"], reason, "{method} {url}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    let (pa, sb) = (a.url(), b.url());
    // the primary: its node route, and the sequencer's routes with unparsable paths and queries
    for (method, path, status, reason) in [
        ("POST", "/v1/node", 405, "method_not_allowed"),
        ("GET", "/v1/node/x", 404, "not_found"),
        ("GET", "/v1/accounts/-1", 400, "bad_request"),
        ("GET", "/v1/ops/abc", 400, "bad_request"),
        ("GET", "/v1/stream?from=garbage", 400, "bad_request"),
        ("POST", "/v1/ops", 400, "bad_request"),
        ("POST", "/v1/replicated", 400, "bad_request"),
        ("GET", "/nothing", 404, "not_found"),
    ] {
        refused(method, format!("{pa}{path}"), status, reason);
    }
    // the standby: every primary route refused as not_primary, its own routes typed too
    for (method, path, status, reason) in [
        ("POST", "/v1/ops", 503, "not_primary"),
        ("GET", "/v1/ops/1", 503, "not_primary"),
        ("GET", "/v1/accounts/-1", 503, "not_primary"),
        ("GET", "/v1/batches/1", 503, "not_primary"),
        ("GET", "/v1/stream?from=garbage", 503, "not_primary"),
        ("POST", "/v1/replicated", 503, "not_primary"),
        ("POST", "/v1/node", 405, "method_not_allowed"),
        ("POST", "/metrics", 405, "method_not_allowed"),
        ("GET", "/nothing", 404, "not_found"),
    ] {
        refused(method, format!("{sb}{path}"), status, reason);
    }
    // and both still serve
    let node: keel_sequencer::node::NodeStatus =
        get(&format!("{sb}/v1/node")).expect("the standby's node view");
    assert_eq!(node.role, Role::Standby);
    assert_eq!(l1.view().lease.epoch, Epoch(1));
    a.stop().unwrap();
    b.stop().unwrap();
}
