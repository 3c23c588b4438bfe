//! Hot standby and failover with real processes over loopback: `keel l1`, and two
//! `keel sequencer --l1.rpc` nodes (a primary and a standby), with real halo2 proofs.
//!
//! - Failover, in the split deployment: each node runs with `--sequencer.proving remote` beside
//!   its own `keel committer`, and a farm of two `keel prover run` shards knows both nodes and
//!   both committers. Under steady load the primary is killed with SIGKILL; the standby claims
//!   the lease and carries on; the provers follow it, and its committer posts in epoch 2 (the
//!   proofs the dead primary's committer took are offered again). The test measures the time
//!   from the kill to the first operation the new primary accepts and to the first batch proven
//!   after the kill, and asserts only correctness: no `replicated` operation lost, none twice,
//!   no money created or lost, every root equal to a replay of the batches, both shards proving.
//!   (Take-over with a node's own prover and committer runs in the devnet's end-to-end test.)
//! - Partition: the primary is cut off from the L1 and from the standby (TCP proxies that the
//!   test cuts); the standby takes over; the batch the old primary proved meanwhile is refused by
//!   the L1 once it can reach it again; and the old primary rejoins as a standby.

use std::{
    collections::{BTreeMap, HashSet},
    net::{Shutdown, TcpListener, TcpStream},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use keel_committer::{Call, RpcL1, SettlementLayer};
use keel_sequencer::{Client, ClientError, Level};
use keel_state::{
    test_utils::{key, signed_transfer},
    Batch, BatchNumber, BatchOp, Decode, Encode, Epoch, MemStore, SecretKey, SignedOp, State,
};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    l1::{funder, hex, keys_dir, send, until, verifier_file, L1Process, SHAPE},
    Keel,
};

const CHAIN: u64 = 11;
/// Long enough for heartbeats on a loaded 2-core machine, short enough to wait out.
const FAILOVER_MS: u64 = 6_000;
const FUNDS: u64 = 1_000;

fn sequencer_key(i: u8) -> SecretKey {
    SecretKey::from_seed(&[0xB0 + i; 32])
}

/// A free loopback port and its URL (a node keeps its address across role changes, so its
/// peers are told it before it starts).
fn port() -> (u16, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (port, format!("http://127.0.0.1:{port}"))
}

fn write_genesis(path: &Path) {
    let council = keel_committer::CouncilKey::of(
        &keel_committer::council::dkg(3, 2, rand_core::OsRng)
            .unwrap()
            .1,
    );
    let sequencers: Vec<String> = (0..2)
        .map(|i| hex(&sequencer_key(i).public_key().encode()))
        .collect();
    let g = json!({
        "chain_id": CHAIN,
        "depth": SHAPE.depth,
        "deadlines": {"block_time_ms": 100, "failover_timeout_ms": FAILOVER_MS},
        "sequencers": sequencers,
        "allocations": [{"address": hex(&keel_committer::address_of(&funder().public_key()).0), "amount": 1_000_000}],
        "council": hex(&council.encode()),
    });
    std::fs::write(path, g.to_string()).unwrap();
}

/// A running `keel` process under the devnet's supervisor ([`keel_devnet::Proc`]): started with
/// a ready file, its output in a log file the test can read.
struct Node {
    proc: keel_devnet::Proc,
    url: String,
    _dir: TempDir,
}

/// A path as an argument.
fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Node {
    fn start(dir: &Path, i: u8, port: u16, l1: &str, peer: &str, role: &str) -> Self {
        Self::start_with(dir, i, port, l1, peer, role, "local")
    }

    fn start_with(
        dir: &Path,
        i: u8,
        port: u16,
        l1: &str,
        peer: &str,
        role: &str,
        proving: &str,
    ) -> Self {
        let args = vec![
            "sequencer".into(),
            "--role".into(),
            role.into(),
            "--l1.rpc".into(),
            l1.into(),
            "--sequencer.key-file".into(),
            arg(&key_file(dir, i)),
            "--sequencer.dir".into(),
            arg(&dir.join(format!("sequencer-{i}"))),
            "--sequencer.listen".into(),
            format!("127.0.0.1:{port}"),
            "--sequencer.depth".into(),
            SHAPE.depth.to_string(),
            "--sequencer.batch-capacity".into(),
            SHAPE.capacity.to_string(),
            "--sequencer.batch-deadline-ms".into(),
            "50".into(),
            "--sequencer.peers".into(),
            peer.into(),
            "--sequencer.takeover-backoff-ms".into(),
            "1000".into(),
            "--sequencer.proving".into(),
            proving.into(),
            "--prover.keys-dir".into(),
            arg(&keys_dir()),
            "--prover.k".into(),
            SHAPE.k.to_string(),
        ];
        Self::spawn(&format!("sequencer-{i}"), args, vec![], port)
    }

    /// `keel committer` for sequencer `i` (its key), serving on `port`.
    fn committer(dir: &Path, i: u8, port: u16, l1: &str, sequencer: &str) -> Self {
        let args = vec![
            "committer".into(),
            "--l1.rpc".into(),
            l1.into(),
            "--committer.sequencer".into(),
            sequencer.into(),
            "--l1.verifier".into(),
            arg(&verifier_file()),
            "--committer.key-file".into(),
            arg(&key_file(dir, i)),
            "--committer.dir".into(),
            arg(&dir.join(format!("committer-{i}"))),
            "--committer.listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        Self::spawn(&format!("committer-{i}"), args, vec![], port)
    }

    /// `keel prover run` as shard `shard`, on one core (two shards share this machine's two).
    fn prover(shard: &str, port: u16, l1: &str, sequencers: &str, committers: &str) -> Self {
        let args = vec![
            "prover".into(),
            "run".into(),
            "--l1.rpc".into(),
            l1.into(),
            "--prover.shard".into(),
            shard.into(),
            "--prover.sequencers".into(),
            sequencers.into(),
            "--prover.committers".into(),
            committers.into(),
            "--prover.listen".into(),
            format!("127.0.0.1:{port}"),
            "--prover.keys-dir".into(),
            arg(&keys_dir()),
            "--prover.k".into(),
            SHAPE.k.to_string(),
            "--prover.capacity".into(),
            SHAPE.capacity.to_string(),
        ];
        let env = vec![("RAYON_NUM_THREADS".into(), "1".into())];
        Self::spawn(
            &format!("prover-{}", shard.replace('/', "of")),
            args,
            env,
            port,
        )
    }

    /// Starts `keel ARGS` and waits for its ready file, which must name `port`.
    fn spawn(name: &str, args: Vec<String>, env: Vec<(String, String)>, port: u16) -> Self {
        let dir = TempDir::new().unwrap();
        let spec = keel_devnet::Spec {
            name: name.into(),
            args,
            log: dir.path().join(format!("{name}.log")),
            ready: dir.path().join(format!("{name}.ready")),
            env,
        };
        let mut proc =
            keel_devnet::Proc::spawn(Path::new(env!("CARGO_BIN_EXE_keel")), spec).unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let never = AtomicBool::new(false);
        match proc.wait_ready(Duration::from_secs(120), &never) {
            Ok(announced) => assert_eq!(announced.api, url),
            Err(e) => panic!("{name} was not ready: {e}"),
        }
        Self {
            proc,
            url,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.proc.log()).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<Value> {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .ok()?
            .json()
            .ok()
    }

    fn kill(&mut self) {
        self.proc.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // on failure, or when asked (KEEL_TEST_LOGS=1), every process's log
        if thread::panicking() || std::env::var_os("KEEL_TEST_LOGS").is_some() {
            eprintln!("--- {} log:\n{}", self.url, self.log());
        }
        self.proc.kill();
    }
}

/// Sequencer `i`'s key, in a file.
fn key_file(dir: &Path, i: u8) -> std::path::PathBuf {
    let f = dir.join(format!("sequencer-{i}.key"));
    std::fs::write(&f, ::hex::encode(sequencer_key(i).to_bytes())).unwrap();
    f
}

fn setup(dir: &TempDir) -> (L1Process, Arc<RpcL1>) {
    let verifier = verifier_file();
    let genesis = dir.path().join("genesis.json");
    write_genesis(&genesis);
    let l1 = L1Process::start(&dir.path().join("l1"), &verifier, Some(&genesis)).unwrap();
    let rpc = Arc::new(RpcL1::connect(&l1.url).unwrap());
    (l1, rpc)
}

fn deposit(l1: &RpcL1, i: u32) {
    let pk = key(i).public_key();
    send(l1, &funder(), Call::Deposit { pk, amount: FUNDS }).unwrap();
}

fn last_batch(node: &Node) -> u64 {
    node.get("/v1/status")
        .and_then(|s| s["last_batch"].as_u64())
        .unwrap_or(0)
}

/// Every batch the node streams, from batch 1 to its last.
fn batches(rt: &tokio::runtime::Runtime, node: &Node) -> Vec<Batch> {
    let last = last_batch(node);
    rt.block_on(async {
        let mut stream = Client::new(&node.url).stream(1).await.unwrap();
        let mut out = Vec::new();
        while (out.len() as u64) < last {
            out.push(stream.next().await.unwrap().unwrap());
        }
        out
    })
}

/// Re-executes `batches` from genesis; each must be exactly what its operations give.
fn replay(batches: &[Batch]) -> State<MemStore> {
    let mut state = State::open(MemStore::new(), SHAPE.depth).unwrap();
    for b in batches {
        state
            .apply_batch(b)
            .unwrap_or_else(|e| panic!("batch {}: {e}", b.number));
    }
    state
}

fn l2_ops(batches: &[Batch]) -> Vec<SignedOp> {
    batches
        .iter()
        .flat_map(|b| &b.ops)
        .filter_map(|op| match op {
            BatchOp::L2(s) => Some(*s),
            BatchOp::L1(_) => None,
        })
        .collect()
}

/// What the load saw of each operation.
#[derive(Default)]
struct Seen {
    /// Acknowledged `replicated`.
    replicated: Vec<SignedOp>,
    /// Accepted, not known to be replicated.
    accepted: Vec<SignedOp>,
    /// Accepted by the standby after the kill (the first one marks the failover).
    first_after_kill: Option<Instant>,
    /// Operations the new primary accepted.
    after_kill: usize,
}

#[test]
fn a_split_deployment_survives_a_killed_primary_and_loses_no_replicated_operation() {
    let _heavy = crate::heavy();
    let dir = TempDir::new().unwrap();
    let (l1_process, l1) = setup(&dir);
    let ((pa, url_a), (pb, url_b)) = (port(), port());
    let ((pca, url_ca), (pcb, url_cb)) = (port(), port());
    let (l1_url, d) = (&l1_process.url, dir.path());
    let mut a = Node::start_with(d, 0, pa, l1_url, &url_b, "primary", "remote");
    let b = Node::start_with(d, 1, pb, l1_url, &url_a, "standby", "remote");
    let ca = Node::committer(d, 0, pca, l1_url, &url_a);
    let cb = Node::committer(d, 1, pcb, l1_url, &url_b);
    let (sequencers, committers) = (format!("{url_a},{url_b}"), format!("{url_ca},{url_cb}"));
    let provers: Vec<Node> = ["0/2", "1/2"]
        .iter()
        .map(|shard| Node::prover(shard, port().0, l1_url, &sequencers, &committers))
        .collect();
    for i in 0..2 {
        deposit(&l1, i);
    }
    until(
        "the standby to replicate the deposits",
        Duration::from_secs(60),
        || last_batch(&b) >= 2,
    );
    until("batch 1 proven", Duration::from_secs(300), || {
        l1.rollup().unwrap().checkpoint.batch >= BatchNumber(1)
    });

    // steady load through a client that knows both endpoints
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let killed: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (seen, killed, stop) = (seen.clone(), killed.clone(), stop.clone());
        let client = Client::with_endpoints([url_a.clone(), url_b.clone()]);
        let url_b = url_b.clone();
        rt.spawn(async move {
            let mut nonce = [0u64; 2];
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let from = (k % 2) as u32;
                let op = signed_transfer(from, 1 - from, 1, nonce[from as usize]);
                let r = client
                    .submit_wait(&op, Level::Replicated, Some(Duration::from_millis(1500)))
                    .await;
                let accepted = match r {
                    Ok(_) => {
                        seen.lock().unwrap().replicated.push(op);
                        true
                    }
                    Err(ClientError::Refused { reason, .. }) if reason == "wait_timeout" => {
                        seen.lock().unwrap().accepted.push(op);
                        true
                    }
                    // sequenced before its answer was lost: the nonce is used
                    Err(ClientError::Refused { reason, .. }) if reason == "stale_nonce" => {
                        nonce[from as usize] += 1;
                        false
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        false
                    }
                };
                if accepted {
                    nonce[from as usize] += 1;
                    k += 1;
                    let after_kill = killed.lock().unwrap().is_some();
                    if after_kill && client.base() == url_b {
                        let mut s = seen.lock().unwrap();
                        s.first_after_kill.get_or_insert_with(Instant::now);
                        s.after_kill += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    until("replicated load", Duration::from_secs(60), || {
        seen.lock().unwrap().replicated.len() >= 4
    });

    let proven_at_kill = l1.rollup().unwrap().checkpoint.batch;
    let t_kill = Instant::now();
    a.kill();
    *killed.lock().unwrap() = Some(t_kill);

    until("the new primary to accept", Duration::from_secs(60), || {
        seen.lock().unwrap().first_after_kill.is_some()
    });
    let mut t_proven = None;
    until(
        "a batch proven after the kill",
        Duration::from_secs(300),
        || {
            let done = l1.rollup().unwrap().checkpoint.batch > proven_at_kill;
            if done {
                t_proven = Some(Instant::now());
            }
            done
        },
    );
    until(
        "a few operations on the new primary",
        Duration::from_secs(60),
        || seen.lock().unwrap().after_kill >= 3,
    );
    stop.store(true, Ordering::Relaxed);
    rt.block_on(load).unwrap();

    let seen = seen.lock().unwrap();
    let to_accept = seen.first_after_kill.unwrap() - t_kill;
    let to_proven = t_proven.unwrap() - t_kill;
    eprintln!(
        "FAILOVER kill -> first operation accepted by the new primary: {} ms; kill -> first batch proven after the kill: {} ms (failover timeout {FAILOVER_MS} ms, block time 100 ms)",
        to_accept.as_millis(),
        to_proven.as_millis()
    );
    assert!(
        b.log().contains("claimed the lease (epoch 2)"),
        "{}",
        b.log()
    );
    let node: Value = b.get("/v1/node").unwrap();
    assert_eq!(
        (node["role"].as_str(), node["epoch"].as_u64()),
        (Some("primary"), Some(2))
    );
    // the farm: both shards proved; the new holder's committer posts in epoch 2, the old one's
    // term is over
    for p in &provers {
        let st = p.get("/v1/prover").unwrap();
        assert!(st["proofs"].as_u64().unwrap() >= 1, "{st}");
        // its uptime, and the GPU's utilisation over it: none on the CPU
        assert!(st["uptime_ms"].as_u64().unwrap() > 0, "{st}");
        if st["backend"].as_str().unwrap().starts_with("CPU") {
            assert_eq!(st["gpu_busy_ms_total"], 0, "{st}");
            assert!(st["gpu_utilisation"].is_null(), "{st}");
        } else {
            let u = st["gpu_utilisation"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&u), "{st}");
        }
    }
    let st = cb.get("/v1/status").unwrap();
    assert_eq!(
        (st["term"].as_u64(), st["lease_holder"].as_bool()),
        (Some(2), Some(true)),
        "{st}"
    );
    assert!(st["posted"].as_u64().unwrap() >= 1, "{st}");
    let st = ca.get("/v1/status").unwrap();
    assert_eq!(
        (st["term"].as_u64(), st["lease_holder"].as_bool()),
        (None, Some(false)),
        "{st}"
    );

    // correctness: settle, then read the chain of record and replay it
    until("the new primary to settle", Duration::from_secs(30), || {
        b.get("/v1/status").is_some_and(|s| s["waiting"] == 0)
    });
    let chain = batches(&rt, &b);
    let state = replay(&chain);
    let status = b.get("/v1/status").unwrap();
    assert_eq!(
        status["root"].as_str().unwrap(),
        keel_state::field::fr_to_hex(&state.root().unwrap()),
        "the new primary's root is a replay of its batches"
    );
    let view = l1.rollup().unwrap();
    let mut epochs = Vec::new();
    for n in 1..=view.checkpoint.batch.0 {
        let posted = l1.batch(BatchNumber(n)).unwrap().unwrap();
        let posted = Batch::decode(&posted.data).unwrap();
        assert_eq!(
            posted.new_root,
            chain[n as usize - 1].new_root,
            "L1 batch {n}"
        );
        epochs.push(posted.epoch);
    }
    // the dead primary's committer may post what it held until the claim; then epoch 2 only
    assert!(epochs.windows(2).all(|w| w[0] <= w[1]), "{epochs:?}");
    assert_eq!(epochs.last(), Some(&Epoch(2)), "{epochs:?}");
    let ops = l2_ops(&chain);
    let unique: HashSet<(u32, u64)> = ops.iter().map(|o| (o.from().0, o.nonce())).collect();
    assert_eq!(unique.len(), ops.len(), "no operation twice");
    for op in &seen.replicated {
        assert_eq!(
            ops.iter().filter(|o| *o == op).count(),
            1,
            "replicated {op:?} is in the chain once"
        );
    }
    // no money created or lost: balances follow from the deposits and the transfers
    let mut expected: BTreeMap<u32, i64> = (0..2).map(|i| (i, FUNDS as i64)).collect();
    for op in &ops {
        let SignedOp::Transfer(t) = op else {
            panic!("{op:?}")
        };
        *expected.get_mut(&t.from.0).unwrap() -= t.amount as i64;
        *expected.get_mut(&t.to.0).unwrap() += t.amount as i64;
    }
    for (i, balance) in expected {
        let a = state.account(keel_state::AccountIndex(i)).unwrap().unwrap();
        assert_eq!(a.balance as i64, balance, "account {i}");
    }
    eprintln!(
        "FAILOVER {} operations replicated and {} accepted only, {} batches, {} proven on the L1",
        seen.replicated.len(),
        seen.accepted.len(),
        chain.len(),
        view.checkpoint.batch
    );
    drop(provers);
    drop((b, ca, cb));
    drop(l1);
    l1_process.stop();
}

/// A TCP proxy the test can cut (every connection closed, new ones refused) and heal.
struct Proxy {
    url: String,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if !o.load(Ordering::Acquire) {
                    continue; // dropped: the connection is closed at once
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut guard = c.lock().unwrap();
                guard.push(inbound.try_clone().unwrap());
                guard.push(outbound.try_clone().unwrap());
                drop(guard);
                for (mut from, mut to) in [
                    (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                    (outbound, inbound),
                ] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { url, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::Release);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.open.store(true, Ordering::Release);
    }
}

#[test]
fn a_partitioned_primary_is_fenced_its_batch_refused_and_it_rejoins_as_a_standby() {
    let _heavy = crate::heavy();
    let dir = TempDir::new().unwrap();
    let (l1_process, l1) = setup(&dir);
    let ((pa, url_a), (pb, url_b)) = (port(), port());
    // the primary reaches the L1 only through one proxy; the standby reaches the primary only
    // through another
    let a_to_l1 = Proxy::start(l1_process.url.trim_start_matches("http://").to_owned());
    let b_to_a = Proxy::start(format!("127.0.0.1:{pa}"));
    let a = Node::start(dir.path(), 0, pa, &a_to_l1.url, &url_b, "primary");
    let b = Node::start(dir.path(), 1, pb, &l1_process.url, &b_to_a.url, "standby");
    deposit(&l1, 0);
    until("batch 1 proven", Duration::from_secs(300), || {
        l1.rollup().unwrap().checkpoint.batch >= BatchNumber(1)
    });
    until(
        "the standby to replicate batch 1",
        Duration::from_secs(30),
        || last_batch(&b) >= 1,
    );

    a_to_l1.cut();
    b_to_a.cut();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // the cut-off primary still accepts, cuts and proves batch 2 in epoch 1; it cannot post it
    let BatchOp::L2(withdraw) = keel_state::test_utils::withdraw(0, 10, 0) else {
        unreachable!()
    };
    let st = rt.block_on(Client::new(&url_a).submit(&withdraw)).unwrap();
    assert_eq!(st.level, Level::Accepted);
    until("the standby to take over", Duration::from_secs(60), || {
        b.get("/v1/node")
            .is_some_and(|n| n["role"] == "primary" && n["epoch"] == 2)
    });
    until(
        "the old primary to prove batch 2",
        Duration::from_secs(300),
        || {
            a.get("/v1/node")
                .is_some_and(|n| n["committer"]["held"] == json!([2]))
        },
    );
    assert_eq!(l1.rollup().unwrap().checkpoint.batch, BatchNumber(1));

    // reconnected, the old primary's batch is refused by the L1, and it rejoins as a standby
    a_to_l1.heal();
    b_to_a.heal();
    until("the fence", Duration::from_secs(60), || {
        a.get("/v1/node")
            .is_some_and(|n| n["fenced"].as_array().is_some_and(|f| !f.is_empty()))
    });
    // the node's API is down while it turns from primary into standby
    let mut node = None;
    until("the node's API", Duration::from_secs(60), || {
        node = a.get("/v1/node");
        node.is_some()
    });
    let fenced = node.unwrap()["fenced"][0].as_str().unwrap().to_owned();
    assert!(
        fenced.contains("the L1 refused batch 2")
            && fenced.contains("epoch 1 is not the current epoch 2"),
        "{fenced}\n{}",
        a.log()
    );
    assert_eq!(l1.rollup().unwrap().checkpoint.batch, BatchNumber(1));
    until(
        "the old primary to be a standby",
        Duration::from_secs(60),
        || a.get("/v1/status").is_some_and(|s| s["role"] == "standby"),
    );
    // it follows the new primary: the withdrawal the old primary accepted but never replicated,
    // sent again, is sequenced by the new primary and reaches `replicated` through the old one
    let client = Client::with_endpoints([url_a.clone(), url_b.clone()]);
    let st = rt
        .block_on(client.submit_wait(&withdraw, Level::Replicated, Some(Duration::from_secs(30))))
        .unwrap();
    assert!(st.level >= Level::Replicated, "{st:?}");
    assert_eq!(client.base(), url_b);
    let (sa, sb) = (a.get("/v1/status").unwrap(), b.get("/v1/status").unwrap());
    assert_eq!(
        (&sa["last_batch"], &sa["root"], &sa["following"]),
        (&sb["last_batch"], &sb["root"], &json!(url_b)),
        "the rejoined standby holds the new primary's state"
    );
    assert!(sa["last_batch"].as_u64().unwrap() >= 2);
    drop(a);
    drop(b);
    drop(l1);
    l1_process.stop();
}

/// A citizen's session against two nodes on the embedded L1, all through `keel`: two new keys,
/// their deposits through the L1, then `keel transfer --wait proven` with the primary killed
/// (SIGKILL) as soon as the transfer is accepted. The client finds the new primary, carries on
/// there (resubmitting the same signed transfer if the new primary never got it), and ends with
/// the transfer proven, reported once, executed once.
#[test]
fn a_citizens_transfer_waiting_for_proven_survives_a_killed_primary() {
    let _heavy = crate::heavy();
    let dir = TempDir::new().unwrap();
    let (l1_process, l1) = setup(&dir);
    let ((pa, url_a), (pb, url_b)) = (port(), port());
    let (l1_url, d) = (&l1_process.url, dir.path());
    let mut a = Node::start(d, 0, pa, l1_url, &url_b, "primary");
    let b = Node::start(d, 1, pb, l1_url, &url_a, "standby");
    let funder_file = d.join("funder.key");
    std::fs::write(&funder_file, ::hex::encode(funder().to_bytes())).unwrap();
    let (me, other) = (d.join("me.key"), d.join("other.key"));
    let endpoints = format!("{url_a},{url_b}");
    let at = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--client.sequencer".into(),
            endpoints.clone(),
            "--l1.rpc".into(),
            l1_url.clone(),
            "--l1.key-file".into(),
            arg(&funder_file),
            "--json".into(),
        ]);
        v
    };
    let run = |args: Vec<String>| -> Value {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, v, text) = Keel::spawn(&refs).finish();
        assert!(ok, "keel {args:?}: {text}");
        v
    };
    for k in [&me, &other] {
        let v = run(vec![
            "key".into(),
            "new".into(),
            "--key-file".into(),
            arg(k),
            "--json".into(),
        ]);
        assert_eq!(v["public_key"].as_str().unwrap().len(), 128, "{v}");
    }
    let mine = run(at(&["deposit", "--key-file", &arg(&me), "--amount", "500"]));
    let theirs = run(at(&[
        "deposit",
        "--key-file",
        &arg(&other),
        "--amount",
        "10",
    ]));
    assert_eq!(mine["balance"], 500, "{mine}");
    assert_eq!(theirs["balance"], 10, "{theirs}");
    let (i_me, i_other) = (
        mine["account"].as_u64().unwrap(),
        theirs["account"].as_u64().unwrap(),
    );
    until(
        "the standby to hold the deposits",
        Duration::from_secs(60),
        || last_batch(&b) >= last_batch(&a) && last_batch(&b) > 0,
    );

    let args = at(&[
        "transfer",
        "--key-file",
        &arg(&me),
        "--to",
        &arg(&other),
        "--amount",
        "7",
        "--wait",
        "proven",
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let transfer = Keel::spawn(&refs);
    transfer.until_line("accepted as operation", Duration::from_secs(60));
    a.kill();
    let (ok, v, text) = transfer.finish();
    assert!(ok, "{text}");
    assert_eq!(v["level"], "proven", "{text}");
    assert_eq!(v["failovers"], 1, "{text}");
    assert_eq!(v["endpoint"], url_b, "{text}");
    // each level once, the failover once, and one result
    let err = text.split("stderr: ").nth(1).unwrap();
    assert_eq!(err.matches("] proven").count(), 1, "{text}");
    assert_eq!(err.matches("failover:").count(), 1, "{text}");
    assert!(
        err.contains("never got it") || err.contains("has it in batch"),
        "{text}"
    );
    // executed once: one nonce used, 7 moved
    let view = |i: u64| b.get(&format!("/v1/accounts/{i}")).unwrap();
    assert_eq!(
        (view(i_me)["balance"].as_u64(), view(i_me)["nonce"].as_u64()),
        (Some(493), Some(1))
    );
    assert_eq!(view(i_other)["balance"].as_u64(), Some(17));
    // and the proven state on the L1 agrees
    let v = run(at(&["account", &i_me.to_string(), "--proof"]));
    assert_eq!(
        (
            v["proven"]["balance"].as_u64(),
            v["proven"]["nonce"].as_u64()
        ),
        (Some(493), Some(1)),
        "{v}"
    );
    assert_eq!(
        v["proven"]["siblings"].as_array().unwrap().len(),
        SHAPE.depth as usize
    );
    let _ = l1;
}
