//! The committer service, the queue follower and the replay from L1 data, over the fixture's
//! real proofs.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

use keel_committer::{
    address_of,
    reconstruct::{self, ReconstructError},
    Call, Committer, CommitterConfig, EmbeddedChain, EmbeddedL1, Head, Keyed, L1Error, L1Tx,
    Offered, PostedBatch, QueueFollower, QueuedEntry, Receipt, RollupView, SettlementLayer,
};
use keel_state::{
    test_utils::{deposit_entry, key},
    AccountIndex, BatchNumber, Encode, Epoch, L1Address, MemStore, PublicKey, QueueEntry,
};
use tempfile::TempDir;

use crate::fixture::*;

/// An L1 behind a link that can be cut: every call fails while it is down.
pub(crate) struct Link {
    pub l1: Arc<EmbeddedL1>,
    pub down: AtomicBool,
}

impl Link {
    pub(crate) fn new(l1: Arc<EmbeddedL1>) -> Arc<Self> {
        Arc::new(Self {
            l1,
            down: AtomicBool::new(false),
        })
    }

    fn up(&self) -> Result<&EmbeddedL1, L1Error> {
        if self.down.load(Ordering::Relaxed) {
            Err(L1Error::Store("link down".into()))
        } else {
            Ok(&self.l1)
        }
    }
}

impl SettlementLayer for Link {
    fn chain_id(&self) -> u64 {
        self.l1.chain_id()
    }
    fn head(&self) -> Result<Head, L1Error> {
        self.up()?.head()
    }
    fn rollup(&self) -> Result<RollupView, L1Error> {
        self.up()?.rollup()
    }
    fn queue(&self, p: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error> {
        self.up()?.queue(p, max)
    }
    fn batch(&self, n: BatchNumber) -> Result<Option<PostedBatch>, L1Error> {
        self.up()?.batch(n)
    }
    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error> {
        self.up()?.account_index(pk)
    }
    fn exited(&self, a: AccountIndex) -> Result<bool, L1Error> {
        self.up()?.exited(a)
    }
}

impl EmbeddedChain for Link {
    fn nonce(&self, a: &L1Address) -> Result<u64, L1Error> {
        self.up()?.nonce(a)
    }
    fn balance(&self, a: &L1Address) -> Result<u64, L1Error> {
        self.up()?.balance(a)
    }
    fn submit(&self, tx: &L1Tx) -> Result<Receipt, L1Error> {
        self.up()?.submit(tx)
    }
}

/// Seals a block every 20 ms, `step_ms` later on the L1's clock, until dropped.
pub(crate) struct Sealer {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Sealer {
    pub(crate) fn start(l1: Arc<EmbeddedL1>, step_ms: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(20));
                let now = l1.head().unwrap().time_ms;
                l1.seal_block(now + step_ms).unwrap();
            }
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub(crate) fn quick(dir: &std::path::Path) -> CommitterConfig {
    let mut c = CommitterConfig::new(dir);
    c.retry_min = Duration::from_millis(10);
    c.retry_max = Duration::from_millis(50);
    c.poll = Duration::from_millis(20);
    c
}

/// A committer for the primary with its store under `dir`, hearing nothing.
fn start<L: EmbeddedChain + 'static>(
    dir: &std::path::Path,
    l1: Arc<L>,
) -> Result<Committer, keel_committer::CommitterError> {
    let signer = keyed(&l1, primary());
    Committer::open(quick(&dir.join("c")), l1, signer, Box::new(|_| {}))
}

pub(crate) fn offer(c: &Committer, n: usize) -> Offered {
    let p = &fixture().batches[n - 1];
    c.offer(p.data.clone(), p.proof.clone()).unwrap()
}

/// Every batch the L1 holds is the fixture's, 1..=n.
pub(crate) fn assert_settled_exactly(l1: &EmbeddedL1, n: u64) {
    assert_eq!(l1.rollup().unwrap().checkpoint.batch, BatchNumber(n));
    for i in 1..=n {
        let p = l1.batch(BatchNumber(i)).unwrap().unwrap();
        assert_eq!(p.data, fixture().batches[i as usize - 1].data, "batch {i}");
    }
    assert!(l1.batch(BatchNumber(n + 1)).unwrap().is_none());
}

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn proofs_offered_out_of_order_are_posted_in_order_once_and_reported_when_included() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let _sealer = Sealer::start(l1.clone(), 1_000);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    let c = Committer::open(
        quick(&dir.path().join("committer")),
        l1.clone(),
        keyed(&l1, primary()),
        Box::new(move |n| h.lock().unwrap().push(n.0)),
    )
    .unwrap();
    assert_eq!(offer(&c, 3), Offered::Held);
    assert_eq!(offer(&c, 2), Offered::Held);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        l1.rollup().unwrap().checkpoint.batch,
        BatchNumber(0),
        "nothing is posted while batch 1 is missing"
    );
    assert_eq!(offer(&c, 1), Offered::Held);
    let s = c.wait_included(BatchNumber(3), WAIT);
    assert_eq!(s.included, BatchNumber(3), "{s:?}");
    assert_eq!((s.posted, s.held.len(), &s.halted), (3, 0, &None));
    assert_settled_exactly(&l1, 3);
    let heard = heard.lock().unwrap().clone();
    assert!(heard.windows(2).all(|w| w[0] < w[1]) && heard.last() == Some(&3));
    // an offer of a settled batch is not kept
    assert_eq!(offer(&c, 2), Offered::AlreadySettled);
}

#[test]
fn a_committer_restarted_after_its_post_landed_neither_skips_nor_double_posts() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let _sealer = Sealer::start(l1.clone(), 1_000);
    let link = Link::new(l1.clone());
    link.down.store(true, Ordering::Relaxed);
    // the L1 is unreachable: the committer cannot even open
    assert!(start(dir.path(), link.clone()).is_err());
    link.down.store(false, Ordering::Relaxed);
    let c = start(dir.path(), link.clone()).unwrap();
    link.down.store(true, Ordering::Relaxed);
    for n in [1, 2, 3] {
        assert_eq!(offer(&c, n), Offered::Held);
    }
    thread::sleep(Duration::from_millis(200));
    let s = c.status();
    assert!(s.retries > 0, "it retries while the link is down: {s:?}");
    assert_eq!((s.posted, s.held.len()), (0, 3));
    drop(c);

    // batch 1 reaches the L1 (as if the last post landed just before the crash)
    send(l1.as_ref(), &primary(), submit(1)).unwrap();
    link.down.store(false, Ordering::Relaxed);
    let c = start(dir.path(), link).unwrap();
    assert_eq!(c.status().held.len(), 3, "held batches survive a restart");
    let s = c.wait_included(BatchNumber(3), WAIT);
    assert_eq!(s.included, BatchNumber(3), "{s:?}");
    assert_eq!(s.posted, 2, "batch 1 is not posted again");
    assert!(s.held.is_empty());
    assert_settled_exactly(&l1, 3);
}

#[test]
fn a_committer_whose_batch_number_was_settled_by_another_halts() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let link = Link::new(l1.clone());
    let c = start(dir.path(), link.clone()).unwrap();
    link.down.store(true, Ordering::Relaxed);
    // a batch 1 of its own: same number, other epoch
    let mut mine = fixture().batches[0].batch.clone();
    mine.epoch = Epoch(9);
    c.offer(mine.encode(), fixture().batches[0].proof.clone())
        .unwrap();
    // the L1 settles another batch 1
    send(l1.as_ref(), &primary(), submit(1)).unwrap();
    offer(&c, 2);
    link.down.store(false, Ordering::Relaxed);
    let s = c.wait_included(BatchNumber(2), WAIT);
    let why = s.halted.clone().expect("halted");
    assert!(why.contains("fenced"), "{why}");
    assert_eq!(s.posted, 0);
    assert_eq!(s.held, [BatchNumber(2)], "what it has not posted, it keeps");
    assert_settled_exactly(&l1, 1);
}

#[test]
fn a_batch_the_l1_refuses_halts_the_committer_and_stays_held() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(&dir.path().join("l1")));
    queue_deposits(&l1);
    let c = start(dir.path(), l1.clone()).unwrap();
    // batch 1's data with batch 2's proof
    c.offer(
        fixture().batches[0].data.clone(),
        fixture().batches[1].proof.clone(),
    )
    .unwrap();
    let s = c.wait_included(BatchNumber(1), WAIT);
    let why = s.halted.expect("halted");
    assert!(why.contains("invalid proof"), "{why}");
    assert_eq!(s.held, [BatchNumber(1)]);
    assert_settled_exactly(&l1, 0);
    // the same number with other bytes is refused at the door
    assert!(matches!(
        c.offer(
            fixture().batches[0].data.clone(),
            fixture().batches[0].proof.clone()
        ),
        Err(keel_committer::CommitterError::Conflict(BatchNumber(1)))
    ));
    assert!(matches!(
        c.offer(vec![1, 2, 3], vec![]),
        Err(keel_committer::CommitterError::BadData(_))
    ));
}

#[test]
fn the_follower_hands_over_every_queue_entry_in_order_and_retries_a_refused_one() {
    let dir = TempDir::new().unwrap();
    let l1 = Arc::new(open(dir.path()));
    queue_deposits(&l1);
    let got: Arc<Mutex<Vec<(u64, QueueEntry)>>> = Arc::default();
    let (g, mut refuse_once) = (got.clone(), true);
    let f = QueueFollower::spawn(l1.clone(), 0, Duration::from_millis(10), move |pos, e| {
        if pos == 1 && std::mem::take(&mut refuse_once) {
            return Err("busy".into());
        }
        g.lock().unwrap().push((pos, e));
        Ok(())
    })
    .unwrap();
    for _ in 0..500 {
        if f.next() == 2 {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    drop(f);
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            (0, deposit_entry(0, DEPOSITS[0])),
            (1, deposit_entry(1, DEPOSITS[1]))
        ]
    );
    // a follower started where the sequencer stands skips what it holds
    let got: Arc<Mutex<Vec<u64>>> = Arc::default();
    let g = got.clone();
    let f = QueueFollower::spawn(l1, 1, Duration::from_millis(10), move |pos, _| {
        g.lock().unwrap().push(pos);
        Ok(())
    })
    .unwrap();
    while f.next() < 2 {
        thread::sleep(Duration::from_millis(10));
    }
    drop(f);
    assert_eq!(*got.lock().unwrap(), [1]);
}

#[test]
fn the_state_rebuilt_from_l1_data_reaches_the_proven_root_and_exits_every_account() {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    queue_deposits(&l1);
    for n in 1..=3 {
        send(&l1, &primary(), submit(n)).unwrap();
    }
    let mut seen = Vec::new();
    let replayed =
        reconstruct::replay(&l1, MemStore::new(), |n, of| seen.push((n.0, of.0))).unwrap();
    assert_eq!(seen, [(1, 3), (2, 3), (3, 3)]);
    assert_eq!(
        replayed.checkpoint.root,
        fixture().batches[2].batch.new_root
    );
    assert_eq!(replayed.state.root().unwrap(), replayed.checkpoint.root);

    // outside exit mode the L1 refuses the exit the replay builds
    let e = reconstruct::exit(&l1, &Keyed::new(&l1, key(0)), &replayed, &key(0), None).unwrap_err();
    assert!(
        matches!(&e, ReconstructError::L1(l) if l.rejection() == Some(&keel_committer::Rejection::NotInExitMode)),
        "{e}"
    );
    wait(&l1, DEADLINES.proof);
    send(&l1, &funder(), Call::ActivateExitMode).unwrap();
    let mut paid = 0;
    for i in 0..2 {
        let x = reconstruct::exit(&l1, &Keyed::new(&l1, key(i)), &replayed, &key(i), None).unwrap();
        assert_eq!(x.account, AccountIndex(i));
        assert_eq!(x.recipient, address_of(&key(i).public_key()));
        assert_eq!(l1.balance(&x.recipient).unwrap(), x.amount);
        paid += x.amount;
    }
    assert_eq!(paid, DEPOSITS.iter().sum::<u64>() - WITHDRAWN);
    assert!(matches!(
        reconstruct::exit(&l1, &Keyed::new(&l1, key(0)), &replayed, &key(0), None),
        Err(ReconstructError::AlreadyExited(AccountIndex(0)))
    ));
    assert!(matches!(
        reconstruct::exit(&l1, &Keyed::new(&l1, key(5)), &replayed, &key(5), None),
        Err(ReconstructError::NoAccount)
    ));
}

#[test]
fn an_account_whose_deposit_is_not_yet_proven_cannot_build_an_exit() {
    let dir = TempDir::new().unwrap();
    let l1 = open(dir.path());
    queue_deposits(&l1);
    send(&l1, &primary(), submit(1)).unwrap();
    let replayed = reconstruct::replay(&l1, MemStore::new(), |_, _| {}).unwrap();
    assert!(matches!(
        reconstruct::exit(&l1, &Keyed::new(&l1, key(1)), &replayed, &key(1), None),
        Err(ReconstructError::NotProven(AccountIndex(1)))
    ));
}
