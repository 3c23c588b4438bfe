//! Sequencer ingest: accepted operations per second and acknowledgement latency, with the
//! durable WAL (group commit, fsync) and signature checks, on this machine's cores.
//!
//! A load benchmark (not criterion: each run consumes signed operations and grows the state).
//! Measured in one run, each on a fresh sequencer at depth 24 with `ACCOUNTS` funded accounts
//! (the funding deposits are committed before the clock starts, so a run's batcher works only on
//! its own backlog):
//!
//! 1. `keel/inproc/fsync`: `Sequencer::submit_blocking` from `THREADS` threads (the figure).
//! 2. `keel/http/fsync`: the same through `POST /v1/ops` over loopback, `CONNS` concurrent
//!    clients in this process (the client's CPU is on the same two cores).
//! 3. peer `keel/inproc/no-fsync`: (1) with the log not fsync'd: the price of durability.
//! 4. peer `keel/inproc/fsync/one-by-one`: (1) with `verify_group_max = 1`, each signature's
//!    curve check on its own (what the sequencer did before the verifier stage batched them).
//! 5. peer `keel/inproc/fsync/batcher-nice-0`: (1) with the batcher thread at the same
//!    priority as the rest (`batcher_nice = 0`; the default is 10), and
//!    `keel/inproc/fsync/batcher-nice-19` (the lowest).
//! 6. peer `keel/inproc/fsync/one-verifier`: (1) with one verifier thread (`verify_threads = 1`).
//! 7. peer `stf-on-ack-path`: each operation through `State::execute_batch` on RocksDB before
//!    its acknowledgement (what a sequencer without a separate admission path would do).
//!
//! After each run: how the log's group commits and the signature groups formed, and the
//! process's CPU time per operation with the shares of the batcher, the verifier threads, the
//! log writer and the rest (the submitting threads). On a VM whose speed drifts the shares are
//! steadier than the rates.
//!
//! Then the batcher's sustained rate: how fast the backlog left by (1) is cut, executed (tree,
//! witness) and committed. `KEEL_INGEST_OPS` sets the operations per run (default 30,000);
//! `KEEL_INGEST_ONLY=keel/inproc,stf` runs only the runs whose names start so;
//! `KEEL_INGEST_ROUNDS=3` repeats runs 1–6 round-robin and reports each one's median.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use keel_sequencer::{api, Client, FsyncPolicy, Sequencer, SequencerConfig};
use keel_state::{test_utils, BatchOp, Epoch, RocksStore, RocksStoreOptions, SignedOp, State};

const ACCOUNTS: u32 = 2048;
/// The tree depth of the sequencer's state: 24, as every ingest figure in BENCHMARKS.md was
/// measured (the production default is now 26).
const DEPTH: u8 = 24;
/// Default submitting threads (`KEEL_INGEST_THREADS`).
const THREADS: usize = 64;
const CONNS: usize = 32;

/// The number in environment variable `name`, or `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn threads() -> usize {
    env_or("KEEL_INGEST_THREADS", THREADS)
}

fn ops_count() -> usize {
    env_or("KEEL_INGEST_OPS", 30_000)
}

/// `n` signed transfers: account `i` sends to `i + 1`, nonces in order, accounts interleaved.
fn signed(n: usize) -> Vec<SignedOp> {
    let per = n.div_ceil(ACCOUNTS as usize);
    let work: Vec<(u32, u64)> = (0..per as u64)
        .flat_map(|nonce| (0..ACCOUNTS).map(move |a| (a, nonce)))
        .take(n)
        .collect();
    let chunks: Vec<Vec<(u32, u64)>> = work
        .chunks(n.div_ceil(2).max(1))
        .map(<[_]>::to_vec)
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                c.into_iter()
                    .map(|(a, nonce)| test_utils::signed_transfer(a, (a + 1) % ACCOUNTS, 1, nonce))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// A fresh sequencer with default settings, changed by `tweak`, and `ACCOUNTS` funded accounts.
fn open(tweak: impl FnOnce(&mut SequencerConfig)) -> (tempfile::TempDir, Sequencer) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SequencerConfig::new(dir.path());
    c.max_pending = 1_000_000;
    tweak(&mut c);
    let seq = Sequencer::open(c).unwrap();
    for i in 0..ACCOUNTS {
        seq.submit_l1_blocking(u64::from(i), test_utils::deposit_entry(i, 1 << 40))
            .unwrap();
    }
    // the deposits are set-up: their batches are committed before the run starts, so the run's
    // batcher works only on the run's own backlog
    let start = Instant::now();
    while seq.status().unwrap().waiting > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "set-up deposits not committed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (dir, seq)
}

struct Run {
    ops: usize,
    took: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn report(&mut self, name: &str) -> f64 {
        self.latencies.sort();
        let q = |p: f64| self.latencies[((self.latencies.len() - 1) as f64 * p) as usize];
        let rate = self.ops as f64 / self.took.as_secs_f64();
        println!(
            "{name:<24} {:>7} ops in {:>6.2} s: {:>8.0} op/s, ack latency p50 {:>7.2} ms, p99 {:>7.2} ms",
            self.ops,
            self.took.as_secs_f64(),
            rate,
            q(0.5).as_secs_f64() * 1e3,
            q(0.99).as_secs_f64() * 1e3
        );
        rate
    }
}

/// `(name, utime + stime)` from a `/proc/.../stat` file.
fn ticks(path: &std::path::Path) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    let t = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((stat[open + 1..close].to_string(), t))
}

/// CPU ticks by thread name (see [`cpu_by_thread`]).
type Ticks = std::collections::BTreeMap<String, u64>;

/// CPU ticks of this process's live threads, summed by thread name, and of the whole process
/// (threads that have exited included) under `"total"`.
fn cpu_by_thread() -> Ticks {
    let mut out = Ticks::new();
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some((name, t)) = ticks(&t.path().join("stat")) {
            *out.entry(name).or_default() += t;
        }
    }
    if let Some((_, t)) = ticks(std::path::Path::new("/proc/self/stat")) {
        out.insert("total".into(), t);
    }
    out
}

fn inproc(seq: &Sequencer, ops: &[SignedOp]) -> Run {
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(ops.len()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads() {
            let submitter = std::thread::Builder::new().name("submitter".into());
            submitter
                .spawn_scoped(s, || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(op) = ops.get(i) else { break };
                        let t = Instant::now();
                        seq.submit_blocking(*op).expect("accepted");
                        mine.push(t.elapsed());
                    }
                    latencies.lock().unwrap().extend(mine);
                })
                .unwrap();
        }
    });
    Run {
        ops: ops.len(),
        took: start.elapsed(),
        latencies: latencies.into_inner().unwrap(),
    }
}

fn http(seq: &Sequencer, ops: &[SignedOp]) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(api::serve(seq.clone(), listener));
        let client = Client::new(format!("http://{addr}"));
        let ops = Arc::new(ops.to_vec());
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONNS)
            .map(|_| {
                let (client, ops, next) = (client.clone(), ops.clone(), next.clone());
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(op) = ops.get(i) else { break };
                        let t = Instant::now();
                        client.submit(op).await.expect("accepted");
                        mine.push(t.elapsed());
                    }
                    mine
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        Run {
            ops: ops.len(),
            took: start.elapsed(),
            latencies,
        }
    })
}

/// The peer: every operation executed by the STF (tree, witness) and committed to RocksDB
/// before it is acknowledged, one batch per operation.
fn stf_on_ack_path(ops: &[SignedOp]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), RocksStoreOptions::default()).unwrap();
    let mut state = State::open(store, DEPTH).unwrap();
    test_utils::fund(&mut state, ACCOUNTS, 1 << 40);
    let mut latencies = Vec::with_capacity(ops.len());
    let start = Instant::now();
    for op in ops {
        let t = Instant::now();
        state
            .execute_batch(Epoch(1), vec![BatchOp::L2(*op)])
            .expect("valid");
        latencies.push(t.elapsed());
    }
    Run {
        ops: ops.len(),
        took: start.elapsed(),
        latencies,
    }
}

/// Waits for the backlog to be cut and committed; returns the batcher's rate.
fn drain(seq: &Sequencer, name: &str) {
    let start = Instant::now();
    let first = seq.status().unwrap();
    let mut last = first.clone();
    while last.waiting > 0 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
        last = seq.status().unwrap();
    }
    let done = first.waiting - last.waiting;
    println!(
        "{name:<24} batcher: {done} of {} waiting ops cut and committed in {:.1} s: {:.0} op/s ({} left)",
        first.waiting,
        start.elapsed().as_secs_f64(),
        done as f64 / start.elapsed().as_secs_f64(),
        last.waiting
    );
}

/// How the run's work grouped: mean group-commit size and write time, mean signature group.
fn stages(seq: &Sequencer) {
    let text = seq.metrics_text();
    let get = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let groups = get("keel_sequencer_wal_groups_total");
    let vgroups = get("keel_sequencer_verify_groups_total");
    println!(
        "{:<24} log: {groups:.0} group commits of {:.1} ops, {:.2} ms each; signatures: {vgroups:.0} groups of {:.1}, {:.0} µs a signature",
        "",
        get("keel_sequencer_wal_ops_total") / groups,
        get("keel_sequencer_wal_write_seconds_total") / groups * 1e3,
        get("keel_sequencer_verify_signatures_total") / vgroups,
        get("keel_sequencer_verify_seconds_total") / get("keel_sequencer_verify_signatures_total")
            * 1e6,
    );
}

/// `KEEL_INGEST_ROUNDS`: how many times each run is repeated, round-robin, each round rotated by
/// one (default 1). On a VM whose speed drifts, interleaved rounds and their median compare runs
/// more fairly.
fn rounds() -> usize {
    env_or("KEEL_INGEST_ROUNDS", 1).max(1)
}

/// `KEEL_INGEST_ONLY=a,b`: run only the runs whose names start with one of these.
fn wanted(name: &str) -> bool {
    std::env::var("KEEL_INGEST_ONLY").map_or(true, |only| {
        only.split(',').any(|p| name.starts_with(p.trim()))
    })
}

/// One configuration the bench runs.
struct Case {
    name: &'static str,
    tweak: fn(&mut SequencerConfig),
    http: bool,
}

impl Case {
    /// A run through `Sequencer::submit_blocking` with the defaults changed by `tweak`.
    const fn inproc(name: &'static str, tweak: fn(&mut SequencerConfig)) -> Self {
        Self {
            name,
            tweak,
            http: false,
        }
    }
}

/// Prints the process's CPU time per operation between two [`cpu_by_thread`] snapshots, with
/// the shares of the sequencer's named threads and of the rest (the submitting threads, and the
/// HTTP client in the HTTP run).
fn report_cpu(before: &Ticks, after: &Ticks, ops: usize) {
    // ticks are Linux's USER_HZ, 100 a second on every architecture it exposes to /proc
    let delta = |k: &str| {
        let at = |m: &Ticks| m.get(k).copied().unwrap_or(0);
        at(after).saturating_sub(at(before))
    };
    let total = delta("total");
    let named = ["keel-batcher", "keel-verify", "keel-wal"];
    let rest = total.saturating_sub(named.iter().map(|k| delta(k)).sum());
    let share = |d: u64| d as f64 * 100.0 / total.max(1) as f64;
    println!(
        "{:<24} cpu: {:.2} s, {:.0} µs an op: batcher {:.0}%, verifiers {:.0}%, log {:.0}%, submitters and rest {:.0}%",
        "",
        total as f64 / 100.0,
        total as f64 / 100.0 / ops as f64 * 1e6,
        share(delta(named[0])),
        share(delta(named[1])),
        share(delta(named[2])),
        share(rest),
    );
}

/// Runs `case` on a fresh sequencer; its rate. The batcher's backlog is drained (and its rate
/// reported) after the first round of the headline run.
fn run(case: &Case, ops: &[SignedOp], drain_after: bool) -> f64 {
    let (_dir, seq) = open(case.tweak);
    let before = cpu_by_thread();
    let mut r = if case.http {
        http(&seq, ops)
    } else {
        inproc(&seq, ops)
    };
    let rate = r.report(case.name);
    report_cpu(&before, &cpu_by_thread(), r.ops);
    stages(&seq);
    if drain_after {
        drain(&seq, case.name);
    }
    seq.shutdown();
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() {
    // criterion passes its own flags; a plain `cargo bench` runs everything
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = ops_count();
    let rounds = rounds();
    println!(
        "ingest: {n} signed transfers per run, {ACCOUNTS} accounts, depth {DEPTH}, {} submitting threads, {} cores, {rounds} round(s)",
        threads(),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    let ops = signed(n);
    let ops = &ops[..];

    const HEADLINE: &str = "keel/inproc/fsync";
    let cases = [
        Case::inproc(HEADLINE, |_| ()),
        Case {
            name: "keel/http/fsync",
            tweak: |_| (),
            http: true,
        },
        Case::inproc("keel/inproc/no-fsync", |c| c.fsync = FsyncPolicy::Never),
        // signatures checked one at a time, as before the verifier stage
        Case::inproc("keel/inproc/fsync/one-by-one", |c| c.verify_group_max = 1),
        // the batcher at the same priority as the acknowledgement path, and at the lowest
        Case::inproc("keel/inproc/fsync/batcher-nice-0", |c| c.batcher_nice = 0),
        Case::inproc("keel/inproc/fsync/batcher-nice-19", |c| c.batcher_nice = 19),
        // one verifier thread, as before
        Case::inproc("keel/inproc/fsync/one-verifier", |c| c.verify_threads = 1),
    ];
    let cases: Vec<&Case> = cases.iter().filter(|c| wanted(c.name)).collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        if rounds > 1 {
            println!("-- round {}", round + 1);
        }
        // each round starts one case later, so no case always runs right after the same one
        for i in 0..cases.len() {
            let at = (i + round) % cases.len();
            let case = cases[at];
            rates[at].push(run(case, ops, round == 0 && case.name == HEADLINE));
        }
    }
    let stf = wanted("stf-on-ack-path")
        .then(|| stf_on_ack_path(&ops[..n.min(2_000)]).report("stf-on-ack-path"));

    let medians: Vec<(&str, f64)> = cases
        .iter()
        .zip(rates)
        .map(|(c, r)| (c.name, median(r)))
        .collect();
    if rounds > 1 {
        for (name, m) in &medians {
            println!("median {name:<32} {m:>8.0} op/s");
        }
    }
    let Some(&(_, keel)) = medians.iter().find(|(name, _)| *name == HEADLINE) else {
        return;
    };
    let peers = medians
        .iter()
        .filter(|(name, _)| *name != HEADLINE)
        .copied()
        .chain(stf.map(|r| ("stf-on-ack-path", r)));
    for (name, p) in peers {
        println!("ratio: {HEADLINE} vs {name}: {:.2}x", keel / p);
    }
}
