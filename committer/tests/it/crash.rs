//! Crash safety: a process running the embedded L1 and the committer is killed (SIGKILL) again
//! and again while it deposits and posts; restarted each time, it ends with every batch settled
//! exactly once, every deposit queued exactly once, and every withdrawal paid exactly once.
//!
//! The process is this test binary re-run with `--ignored --exact
//! crash::child_l1_and_committer_process`, its data in `KEEL_CRASH_DIR` and the verifier file in
//! `KEEL_VERIFIER`.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use keel_committer::{
    address_of, Call, Committer, CommitterConfig, EmbeddedChain, EmbeddedL1, SettlementLayer,
};
use keel_state::{test_utils::key, BatchNumber, L1Address};

use crate::{
    fixture::*,
    service::{assert_settled_exactly, Sealer},
};

/// Not a test: the child process's entry point (see the module docs).
#[test]
#[ignore = "entry point of the crash test's child process"]
fn child_l1_and_committer_process() {
    let (Ok(dir), Ok(keys)) = (
        std::env::var("KEEL_CRASH_DIR"),
        std::env::var("KEEL_VERIFIER"),
    ) else {
        return;
    };
    let dir = Path::new(&dir);
    let l1 = Arc::new(
        EmbeddedL1::open(&dir.join("l1"), &genesis(), load_verifier(Path::new(&keys))).unwrap(),
    );
    let _sealer = Sealer::start(l1.clone(), 1_000);
    let committer = Committer::open(
        CommitterConfig::new(dir.join("committer")),
        l1.clone(),
        keyed(&l1, primary()),
        Box::new(|_| {}),
    )
    .unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    // the deposits not yet queued, each once: the L1's queue says how many are
    let queued = l1.rollup().unwrap().queue_len as usize;
    for (i, amount) in DEPOSITS.into_iter().enumerate().skip(queued) {
        let pk = key(i as u32).public_key();
        send(l1.as_ref(), &funder(), Call::Deposit { pk, amount }).unwrap();
    }
    for n in 1..=3 {
        let data = std::fs::read(dir.join(format!("{n}.data"))).unwrap();
        let proof = std::fs::read(dir.join(format!("{n}.proof"))).unwrap();
        committer.offer(data, proof).unwrap();
    }
    let s = committer.wait_included(BatchNumber(3), Duration::from_secs(120));
    assert_eq!(s.included, BatchNumber(3), "{s:?}");
    std::fs::write(dir.join("done"), b"").unwrap();
}

fn run_child(dir: &Path, kill_after: Option<Duration>) -> bool {
    for f in ["ready", "done"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash::child_l1_and_committer_process",
            "--nocapture",
        ])
        .env("KEEL_CRASH_DIR", dir)
        .env("KEEL_VERIFIER", &fixture().verifier_file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !dir.join("ready").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the child did not start"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended before it was ready: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match kill_after {
        Some(after) => {
            std::thread::sleep(after);
            child.kill().unwrap();
            child.wait().unwrap();
            false
        }
        None => {
            let status = child.wait().unwrap();
            assert!(status.success(), "the last run failed: {status}");
            dir.join("done").exists()
        }
    }
}

#[test]
fn the_l1_and_the_committer_killed_mid_run_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (n, p) in fixture().batches.iter().enumerate() {
        std::fs::write(dir.join(format!("{}.data", n + 1)), &p.data).unwrap();
        std::fs::write(dir.join(format!("{}.proof", n + 1)), &p.proof).unwrap();
    }
    // kills spread over the window in which the child deposits and posts
    let mut seen = Vec::new();
    for ms in [0, 10, 20, 30, 40, 50, 60, 80] {
        run_child(dir, Some(Duration::from_millis(ms)));
        let l1 = open(&dir.join("l1"));
        let v = l1.rollup().unwrap();
        seen.push((ms, v.queue_len, v.checkpoint.batch.0));
        assert!(v.queue_len <= 2 && v.checkpoint.batch.0 <= 3, "{seen:?}");
    }
    eprintln!("(kill after ms, deposits queued, batches settled): {seen:?}");
    assert!(run_child(dir, None), "the last run completes");

    let l1: EmbeddedL1 = open(&dir.join("l1"));
    assert_settled_exactly(&l1, 3);
    let v = l1.rollup().unwrap();
    assert_eq!(v.queue_len, 2, "each deposit queued once");
    assert_eq!(v.checkpoint.queue_consumed, 2);
    let funder = address_of(&funder().public_key());
    assert_eq!(
        l1.balance(&funder).unwrap(),
        1_000_000 - DEPOSITS.iter().sum::<u64>(),
        "each deposit paid once"
    );
    assert_eq!(
        l1.balance(&L1Address([7; 20])).unwrap(),
        WITHDRAWN,
        "the withdrawal paid once"
    );
    let l1: Arc<EmbeddedL1> = Arc::new(l1);
    let c = Committer::open(
        CommitterConfig::new(dir.join("committer")),
        l1.clone(),
        keyed(&l1, primary()),
        Box::new(|_| {}),
    )
    .unwrap();
    assert!(c.status().held.is_empty(), "nothing left held");
}
