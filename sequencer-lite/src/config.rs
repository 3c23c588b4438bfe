//! The sequencer's settings, with defaults that run on a small machine.

use std::{path::PathBuf, time::Duration};

use keel_state::{Epoch, DEFAULT_DEPTH};

/// Default operations per batch: as many as the batch circuit holds in 2^17 rows at the default
/// depth (26): 51 (`keel prover layout` prints the layout; a test of the `keel` binary checks
/// that they agree).
pub const DEFAULT_BATCH_CAPACITY: usize = 51;
/// Default longest wait before a partly full batch is cut.
pub const DEFAULT_BATCH_DEADLINE: Duration = Duration::from_millis(500);
/// Default most accepted operations waiting for a batch.
pub const DEFAULT_MAX_PENDING: usize = 100_000;
/// Default most operations one account may have waiting for a batch.
pub const DEFAULT_MAX_PER_ACCOUNT: usize = 64;
/// Default most operations in one group commit.
pub const DEFAULT_GROUP_MAX: usize = 1024;
/// Default most signatures checked together by the verifier stage.
pub const DEFAULT_VERIFY_GROUP_MAX: usize = 256;
/// Default largest request body, in bytes (an operation is under 300 bytes in hex).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024;
/// Default threads checking signature groups.
pub const DEFAULT_VERIFY_THREADS: usize = 2;
/// Default niceness of the batcher thread (0 to 19; 0: the same priority as the rest).
pub const DEFAULT_BATCHER_NICE: i32 = 10;
/// Default batches a network subscriber may have in flight before the stream waits for it.
pub const DEFAULT_STREAM_BUFFER: usize = 16;

/// When the write-ahead log is fsync'd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every group commit is fsync'd before its operations are acknowledged: an acknowledged
    /// operation survives a power loss.
    #[default]
    Always,
    /// Group commits reach the OS but are not fsync'd: an acknowledged operation survives a
    /// process crash, not a power loss. Batches are always fsync'd.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => Err(format!("fsync policy {s:?}: expected always or never")),
        }
    }
}

/// Everything a sequencer needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencerConfig {
    /// Data directory: `state/` (the committed state) and `wal/` (the log) go under it.
    pub dir: PathBuf,
    /// Tree depth, fixed at genesis.
    pub depth: u8,
    /// The sequencer epoch stamped on batches.
    pub epoch: Epoch,
    /// Operations per batch (the circuit's capacity).
    pub batch_capacity: usize,
    /// Longest wait before a partly full batch is cut.
    pub batch_deadline: Duration,
    /// When the log is fsync'd.
    pub fsync: FsyncPolicy,
    /// Most accepted operations waiting for a batch; beyond it submissions get `mempool_full`.
    pub max_pending: usize,
    /// Most operations one account may have waiting; beyond it, `account_limit`.
    pub max_per_account: usize,
    /// Most operations in one group commit.
    pub group_max: usize,
    /// Most signatures the verifier stage checks as one batch (1: each on its own).
    pub verify_group_max: usize,
    /// Largest request body.
    pub max_body: usize,
    /// Batches in flight to one network subscriber.
    pub stream_buffer: usize,
    /// Threads checking signature groups, each taking whatever has queued when it is free.
    pub verify_threads: usize,
    /// Niceness of the batcher thread, 0 to 19. Above 0, acknowledging operations (hashing,
    /// signature checks, the log) takes the CPU before executing batches (the tree, the
    /// witness): a burst is acknowledged at full speed and executed once it passes, while the
    /// batcher still gets a share of a busy machine (Linux gives a thread at niceness 10 about
    /// a tenth of the share of one at 0). Ignored where threads have no niceness of their own.
    ///
    /// 19 was measured (2026-12-02). With six permutations per acknowledgement it took the
    /// batcher's median share of a two-core burst from 10% to 8% with no rate gain the VM could
    /// resolve; with three (operations signed as packed words) the batcher's share at 10 is
    /// 13–17%, and 19 acknowledged 1.20× and 1.23× faster in two invocations. The default stays
    /// at 10 all the same: 19 would leave the batcher about a seventieth of each core that
    /// requests keep busy (cheaply refused ones included), which starves batch production under
    /// a request flood. Behind a rate-limiting proxy, 19 is the faster choice.
    pub batcher_nice: i32,
    /// What the HTTP API tolerates from clients: header and body timeouts, the connection
    /// limit.
    pub http: keel_http::Limits,
}

impl SequencerConfig {
    /// Defaults, with data under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            depth: DEFAULT_DEPTH,
            epoch: Epoch(1),
            batch_capacity: DEFAULT_BATCH_CAPACITY,
            batch_deadline: DEFAULT_BATCH_DEADLINE,
            fsync: FsyncPolicy::Always,
            max_pending: DEFAULT_MAX_PENDING,
            max_per_account: DEFAULT_MAX_PER_ACCOUNT,
            group_max: DEFAULT_GROUP_MAX,
            verify_group_max: DEFAULT_VERIFY_GROUP_MAX,
            max_body: DEFAULT_MAX_BODY,
            stream_buffer: DEFAULT_STREAM_BUFFER,
            verify_threads: DEFAULT_VERIFY_THREADS,
            batcher_nice: DEFAULT_BATCHER_NICE,
            http: keel_http::Limits::default(),
        }
    }
}
