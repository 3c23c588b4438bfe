//! Nodes in one process over an embedded L1 that seals its blocks in real time, with a switch
//! that cuts one node off from the L1 (a partition).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, OnceLock,
    },
    thread,
    time::{Duration, Instant},
};

use keel_committer::{
    address_of, BlockProducer, Call, Deadlines, EmbeddedChain, EmbeddedL1, Genesis, Head, Keyed,
    L1Error, L1Tx, PostedBatch, QueuedEntry, Receipt, RollupView, SettlementLayer,
};
use keel_node::{NodeConfig, NodeHandle, Proving};
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, Srs},
    kzg::{cpu_factory, MsmParams},
    BatchProver, BatchVerifier, Shape,
};
use keel_sequencer::SequencerConfig;
use keel_state::{test_utils::key, AccountIndex, BatchNumber, L1Address, PublicKey, SecretKey};
use rand_core::OsRng;

/// One operation per batch at depth 3: the smallest batch circuit.
pub(crate) const SHAPE: Shape = Shape {
    capacity: 1,
    depth: 3,
    k: 11,
};
/// Short deadlines: a take-over is over in seconds.
pub(crate) const FAILOVER: Duration = Duration::from_millis(1_500);
pub(crate) const BACKOFF: Duration = Duration::from_millis(1_000);
const BLOCK_TIME: Duration = Duration::from_millis(100);

/// Sequencer `i`'s key.
pub(crate) fn sequencer(i: u8) -> SecretKey {
    SecretKey::from_seed(&[0xA0 + i; 32])
}

fn funder() -> SecretKey {
    SecretKey::from_seed(&[0xF0; 32])
}

/// The batch circuit's keys, made once per test binary (and cached in cargo's scratch space).
fn prover() -> &'static (MsmParams, BatchKeys) {
    static P: OnceLock<(MsmParams, BatchKeys)> = OnceLock::new();
    P.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keel-keys");
        let srs = kzg_params_cached(&Srs::Dev, SHAPE.k, &dir).unwrap();
        let params = MsmParams::new(srs.clone(), cpu_factory());
        let (keys, _) = BatchKeys::load_or_generate(&dir, &srs, &params, SHAPE).unwrap();
        (params, keys)
    })
}

fn verifier() -> BatchVerifier {
    let (params, keys) = prover();
    BatchProver::new(params.clone(), keys.clone()).verifier()
}

/// An embedded L1 with `n` registered sequencers (sequencer 0 holds the lease), sealing blocks.
pub(crate) struct L1 {
    pub(crate) l1: Arc<EmbeddedL1>,
    _blocks: BlockProducer,
    pub(crate) dir: tempfile::TempDir,
}

impl L1 {
    pub(crate) fn new(n: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = keel_committer::council::dkg(3, 2, OsRng).unwrap();
        let genesis = Genesis {
            chain_id: 7,
            time_ms: now_ms(),
            depth: SHAPE.depth,
            deadlines: Deadlines {
                block_time: BLOCK_TIME,
                failover_timeout: FAILOVER,
                forced_inclusion: Duration::from_secs(600),
                proof: Duration::from_secs(600),
            },
            sequencers: (0..n).map(|i| sequencer(i).public_key()).collect(),
            allocations: vec![(address_of(&funder().public_key()), 1_000_000)],
            council: keel_committer::CouncilKey::of(&public),
        };
        let l1 = Arc::new(EmbeddedL1::open(&dir.path().join("l1"), &genesis, verifier()).unwrap());
        let blocks = l1.produce_blocks(BLOCK_TIME);
        Self {
            l1,
            _blocks: blocks,
            dir,
        }
    }

    pub(crate) fn view(&self) -> RollupView {
        self.l1.rollup().unwrap()
    }

    /// Deposits `amount` for test account `i` through the L1's queue.
    pub(crate) fn deposit(&self, i: u32, amount: u64) {
        let pk = key(i).public_key();
        self.l1
            .send(&funder(), Call::Deposit { pk, amount })
            .unwrap();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An L1 as one node sees it: everything passes until [`Cut::cut`], then every call fails as an
/// unreachable L1 does, until [`Cut::heal`].
pub(crate) struct Cut {
    inner: Arc<EmbeddedL1>,
    off: AtomicBool,
}

impl Cut {
    pub(crate) fn new(inner: Arc<EmbeddedL1>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            off: AtomicBool::new(false),
        })
    }
    pub(crate) fn cut(&self) {
        self.off.store(true, Ordering::Release);
    }
    pub(crate) fn heal(&self) {
        self.off.store(false, Ordering::Release);
    }
    fn check(&self) -> Result<(), L1Error> {
        if self.off.load(Ordering::Acquire) {
            return Err(L1Error::unavailable("partitioned by the test"));
        }
        Ok(())
    }
}

impl SettlementLayer for Cut {
    fn chain_id(&self) -> u64 {
        self.inner.chain_id()
    }
    fn head(&self) -> Result<Head, L1Error> {
        self.check()?;
        self.inner.head()
    }
    fn rollup(&self) -> Result<RollupView, L1Error> {
        self.check()?;
        self.inner.rollup()
    }
    fn queue(&self, position: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error> {
        self.check()?;
        self.inner.queue(position, max)
    }
    fn batch(&self, number: BatchNumber) -> Result<Option<PostedBatch>, L1Error> {
        self.check()?;
        self.inner.batch(number)
    }
    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error> {
        self.check()?;
        self.inner.account_index(pk)
    }
    fn exited(&self, account: AccountIndex) -> Result<bool, L1Error> {
        self.check()?;
        self.inner.exited(account)
    }
}

impl EmbeddedChain for Cut {
    fn nonce(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.check()?;
        self.inner.nonce(address)
    }
    fn balance(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.check()?;
        self.inner.balance(address)
    }
    fn submit(&self, tx: &L1Tx) -> Result<Receipt, L1Error> {
        self.check()?;
        self.inner.submit(tx)
    }
}

/// A free listener per node, bound before any node starts so that each knows its peers' URLs.
pub(crate) fn listeners(n: usize) -> (Vec<TcpListener>, Vec<String>) {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let urls = ls
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    (ls, urls)
}

/// How a test node proves.
pub(crate) enum Proves {
    /// Not at all here (`keel prover run` would): take-over and fencing need no proofs.
    Elsewhere,
    /// In the node, with the shared keys.
    Here,
}

/// Starts sequencer `i` over `l1` in `dir`, following `peers`.
pub(crate) fn node(
    i: u8,
    dir: &Path,
    l1: Arc<dyn EmbeddedChain>,
    listener: TcpListener,
    peers: Vec<String>,
    proves: Proves,
) -> NodeHandle {
    let mut sequencer_config = SequencerConfig::new(dir.join(format!("sequencer-{i}")));
    sequencer_config.depth = SHAPE.depth;
    sequencer_config.batch_capacity = SHAPE.capacity;
    sequencer_config.batch_deadline = Duration::from_millis(50);
    let proving = match proves {
        Proves::Elsewhere => Proving::Remote,
        Proves::Here => Proving::Local(Box::new(|_| {
            let (params, keys) = prover();
            Ok(BatchProver::new(params.clone(), keys.clone()))
        })),
    };
    keel_node::start(
        NodeConfig {
            sequencer: sequencer_config,
            key: sequencer(i),
            peers,
            backoff: BACKOFF,
            standby_first: i != 0,
            proving,
        },
        l1.clone(),
        Arc::new(Keyed::new(l1, sequencer(i))),
        listener,
    )
    .unwrap()
}

/// A primary (sequencer 0, over `a_l1`, proving as `proves`) and a standby (sequencer 1) that
/// follow each other, once both hold their roles.
pub(crate) fn pair(
    l1: &L1,
    a_l1: Arc<dyn EmbeddedChain>,
    proves: Proves,
) -> (NodeHandle, NodeHandle) {
    let (mut ls, urls) = listeners(2);
    let dir = l1.dir.path();
    let b_listener = ls.pop().unwrap();
    let a_listener = ls.pop().unwrap();
    let a = node(0, dir, a_l1, a_listener, vec![urls[1].clone()], proves);
    let b = node(
        1,
        dir,
        l1.l1.clone(),
        b_listener,
        vec![urls[0].clone()],
        Proves::Elsewhere,
    );
    until("the roles", Duration::from_secs(20), || {
        a.role() == keel_node::Role::Primary && b.role() == keel_node::Role::Standby
    });
    (a, b)
}

/// Polls `done` every 50 ms for `timeout` at most.
pub(crate) fn until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A GET of `url` as JSON.
pub(crate) fn get<T: serde::de::DeserializeOwned>(url: &str) -> Option<T> {
    reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .ok()?
        .json()
        .ok()
}
