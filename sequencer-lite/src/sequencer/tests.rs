//! The core's own tests: recovery at open, and the batcher's priority.

use super::{batcher::lower_priority, *};
use keel_state::test_utils;

#[cfg(target_os = "linux")]
#[test]
fn lower_priority_changes_only_the_calling_thread() {
    let own = rustix::process::getpriority_process(None).unwrap();
    let lowered = std::thread::spawn(|| {
        lower_priority(7);
        rustix::process::getpriority_process(None).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(lowered, 7.max(own));
    // this thread keeps its niceness
    assert_eq!(rustix::process::getpriority_process(None).unwrap(), own);
    // 0 leaves the thread alone; above 19 is capped
    let capped = std::thread::spawn(|| {
        lower_priority(0);
        let before = rustix::process::getpriority_process(None).unwrap();
        lower_priority(40);
        (before, rustix::process::getpriority_process(None).unwrap())
    })
    .join()
    .unwrap();
    assert_eq!(capped, (own, 19.max(own)));
    // a thread already lower than asked keeps its niceness (it is never raised)
    let kept = std::thread::spawn(|| {
        lower_priority(12);
        lower_priority(5);
        rustix::process::getpriority_process(None).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(kept, 12.max(own));
}

fn config(dir: &std::path::Path) -> SequencerConfig {
    let mut c = SequencerConfig::new(dir);
    c.depth = 6;
    c.batch_deadline = Duration::from_millis(20);
    c
}

fn settle(seq: &Sequencer) -> Status {
    for _ in 0..500 {
        let s = seq.status().unwrap();
        if s.waiting == 0 {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("did not settle")
}

fn funded(dir: &std::path::Path) -> Status {
    let seq = Sequencer::open(config(dir)).unwrap();
    for i in 0..2 {
        seq.submit_l1_blocking(u64::from(i), test_utils::deposit_entry(i, 100))
            .unwrap();
    }
    seq.submit_blocking(test_utils::signed_transfer(0, 1, 10, 0))
        .unwrap();
    let st = settle(&seq);
    seq.shutdown();
    st
}

#[test]
fn a_batch_logged_but_not_committed_is_re_executed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let before = funded(dir.path());
    // the crash window: the batch is in the log, the state was not committed
    {
        let c = config(dir.path());
        let store = RocksStore::open(c.dir.join("state"), RocksStoreOptions::default()).unwrap();
        let state = State::open(store, c.depth).unwrap();
        let wal = Wal::open(&c.dir.join("wal"), c.fsync).unwrap();
        let planned = state
            .plan_batch(c.epoch, vec![test_utils::transfer(1, 0, 5, 0)])
            .unwrap();
        let s = before.next_seq;
        wal.log_batch(s, s, &planned.witness().batch, None).unwrap();
    }
    let seq = Sequencer::open(config(dir.path())).unwrap();
    let st = seq.status().unwrap();
    assert_eq!(st.last_batch, before.last_batch + 1);
    assert_eq!(st.next_seq, before.next_seq + 1);
    let a1 = seq.committed_account(AccountIndex(1)).unwrap().unwrap();
    assert_eq!((a1.balance, a1.nonce), (105, 1));
    // and the next operation of that account follows it
    let seq_no = seq
        .submit_blocking(test_utils::signed_transfer(1, 0, 5, 1))
        .unwrap();
    assert_eq!(seq_no, before.next_seq + 1);
    seq.shutdown();
}

#[test]
fn a_state_ahead_of_its_log_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    funded(dir.path());
    {
        let c = config(dir.path());
        let store = RocksStore::open(c.dir.join("state"), RocksStoreOptions::default()).unwrap();
        let mut state = State::open(store, c.depth).unwrap();
        state
            .execute_batch(c.epoch, vec![test_utils::transfer(1, 0, 5, 0)])
            .unwrap();
    }
    let err = Sequencer::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, SequencerError::Recovery(_)), "{err}");
}
