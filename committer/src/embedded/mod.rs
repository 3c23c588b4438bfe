//! The embedded L1: a single-node chain in RocksDB that enforces the rollup's rules.
//!
//! ```text
//!  L1Tx ──signature, nonce──▶ rules (one call, under one lock) ──▶ WriteBatch (fsync) ──▶ Receipt
//!                              │ reads: meta, queue, ledger, registry, exits
//!  seal_block(t) ──▶ height + 1, clock = t           (BlockProducer: every block_time)
//! ```
//!
//! Transactions execute one at a time as they arrive, into the open block; sealing a block
//! advances the chain's clock, and every deadline is measured on that clock. A transaction is
//! written in one synced RocksDB batch together with the chain's metadata, so a crash leaves the
//! chain exactly before or exactly after it. A refused transaction writes nothing.
//!
//! | key | value |
//! |---|---|
//! | `genesis` | [`Genesis`] encoding, then the verifying key's digest |
//! | `meta` | head, checkpoint, lease, queue tail, escrow, exit mode |
//! | `h` ‖ height | block timestamp |
//! | `n` ‖ address, `l` ‖ address | L1 nonce, L1 balance |
//! | `r` ‖ key | the account index assigned to an L2 key |
//! | `q` ‖ position | queue entry, enqueue time, running hash after it |
//! | `d` ‖ batch | inclusion height, batch data, proof |
//! | `x` ‖ account | exit: recipient, amount |
//!
//! | module | owns |
//! |---|---|
//! | this one | the chain's handle: opening, its genesis |
//! | `schema` | the keys and values above, the metadata's encoding |
//! | `chain` | blocks: sealing, and the producer that seals on the wall clock |
//! | `rules` | one transaction: signature, nonce, the call's rules, one synced write |
//! | `batches` | `SubmitBatch`: order, epoch, data, the proof against the public inputs it computes |
//! | `queue` | `Deposit`, forced transactions, `Reclaim`: the L1 queue and its running hash |
//! | `lease` | `ClaimLease` and `Heartbeat`: the lease and its epochs |
//! | `exits` | exit mode and `Exit`: Merkle proofs against the last proven root, once per account |
//! | `council` | the council's threshold-signed actions |
//! | `views` | what the [`SettlementLayer`] reads |

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use keel_circuit::{BatchProof, BatchVerifier, PublicInputs};
use keel_state::{
    encoding::{DecodeResult, Reader},
    field::fr_to_bytes,
    tree::{self, index_fits},
    Account, AccountIndex, Batch, BatchNumber, BatchOp, Decode, DecodeError, Encode, Epoch, Fr,
    L1Address, MerkleProof, PublicKey, QueueEntry, SignedOp,
};
use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::{
    council::CouncilSignature,
    genesis::Genesis,
    settlement::{
        Checkpoint, EmbeddedChain, Event, ExitMode, ExitReason, Head, L1Error, Lease, PostedBatch,
        QueuedEntry, Receipt, Rejection, RollupView, Sequencer, SettlementLayer,
    },
    sla::ms,
    tx::{address_of, keys, put_keys, Call, CouncilAction, L1Tx},
};

mod batches;
mod chain;
mod council;
mod exits;
mod lease;
mod queue;
mod rules;
mod schema;
mod views;

pub use chain::BlockProducer;
use schema::{corrupt, key, store_err, u64_of, write_synced};

/// Why an embedded L1 could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The genesis cannot start a chain.
    #[error("invalid genesis: {0}")]
    BadGenesis(String),
    /// The store holds a chain with another genesis or verifying key.
    #[error("{path} holds another chain: its {what} differs from the one given")]
    OtherChain {
        /// The store.
        path: String,
        /// `genesis` or `verifying key`.
        what: &'static str,
    },
    /// The store failed or is corrupt.
    #[error(transparent)]
    L1(#[from] L1Error),
}

/// The chain's mutable summary, rewritten with every transaction.
#[derive(Clone, Debug)]
struct Meta {
    head: Head,
    checkpoint: Checkpoint,
    lease: Lease<PublicKey>,
    sequencers: Vec<PublicKey>,
    queue_len: u64,
    queue_tail: Fr,
    next_index: u32,
    /// Funds held by the rollup contract: deposits in, withdrawals and exits out.
    escrow: u64,
    exit_mode: Option<ExitMode>,
    council_sequence: u64,
}

/// One transaction's reads and writes: reads see its own writes; nothing reaches the store
/// unless the whole transaction succeeds.
struct Tx<'a> {
    l1: &'a EmbeddedL1,
    meta: Meta,
    balances: HashMap<L1Address, u64>,
    writes: WriteBatch,
    events: Vec<Event>,
}

/// The embedded L1. Cheap to share behind an [`Arc`].
pub struct EmbeddedL1 {
    db: DB,
    genesis: Genesis,
    verifier: BatchVerifier,
    meta: Mutex<Meta>,
}

impl std::fmt::Debug for EmbeddedL1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedL1")
            .field("path", &self.db.path())
            .field("chain_id", &self.genesis.chain_id)
            .finish_non_exhaustive()
    }
}

impl EmbeddedL1 {
    /// Opens the chain in `path`, creating it from `genesis` if the store is empty. A store that
    /// holds another genesis or another verifying key is refused.
    pub fn open(
        path: &Path,
        genesis: &Genesis,
        verifier: BatchVerifier,
    ) -> Result<Self, OpenError> {
        genesis.check().map_err(OpenError::BadGenesis)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, path).map_err(store_err)?;
        let vk = verifier.vk_digest();
        let mut pinned = genesis.encode();
        pinned.extend_from_slice(vk.as_bytes());
        let other = |what| OpenError::OtherChain {
            path: path.display().to_string(),
            what,
        };
        let meta = match db.get(b"genesis").map_err(store_err)? {
            Some(stored) => {
                let mut r = Reader::new(&stored);
                let g = Genesis::decode_from(&mut r).map_err(|e| corrupt("genesis", e))?;
                if &g != genesis {
                    return Err(other("genesis"));
                }
                if &stored[r.position()..] != vk.as_bytes() {
                    return Err(other("verifying key"));
                }
                let bytes = db
                    .get(b"meta")
                    .map_err(store_err)?
                    .ok_or_else(|| corrupt("meta", "missing"))?;
                Meta::decode(&bytes).map_err(|e| corrupt("meta", e))?
            }
            None => {
                let meta = Meta {
                    head: Head {
                        height: 0,
                        time_ms: genesis.time_ms,
                    },
                    checkpoint: Checkpoint {
                        batch: BatchNumber(0),
                        root: tree::empty_hash(genesis.depth),
                        queue_hash: Fr::zero(),
                        queue_consumed: 0,
                        proven_at_ms: genesis.time_ms,
                    },
                    lease: Lease {
                        epoch: Epoch(1),
                        sequencer: genesis.sequencers[0],
                        since_ms: genesis.time_ms,
                        last_batch_ms: genesis.time_ms,
                    },
                    sequencers: genesis.sequencers.clone(),
                    queue_len: 0,
                    queue_tail: Fr::zero(),
                    next_index: 0,
                    escrow: 0,
                    exit_mode: None,
                    council_sequence: 0,
                };
                let mut w = WriteBatch::default();
                let mut alloc: HashMap<L1Address, u64> = HashMap::new();
                for (a, amount) in &genesis.allocations {
                    *alloc.entry(*a).or_default() += amount;
                }
                for (a, amount) in alloc {
                    w.put(key(b'l', &a.0), amount.to_be_bytes());
                }
                w.put(
                    key(b'h', &0u64.to_be_bytes()),
                    genesis.time_ms.to_be_bytes(),
                );
                w.put(b"meta", meta.encode());
                w.put(b"genesis", pinned);
                write_synced(&db, w)?;
                tracing::info!(target: "keel::l1", chain_id = genesis.chain_id, depth = genesis.depth, "embedded L1 created");
                meta
            }
        };
        Ok(Self {
            db,
            genesis: genesis.clone(),
            verifier,
            meta: Mutex::new(meta),
        })
    }

    /// Opens the chain already in `path` with the genesis it stores; the verifier must still be
    /// the one pinned at genesis. A directory without a chain is refused, never created.
    pub fn open_existing(path: &Path, verifier: BatchVerifier) -> Result<Self, OpenError> {
        let genesis = Self::stored_genesis(path)?
            .ok_or_else(|| OpenError::BadGenesis(format!("{} holds no chain", path.display())))?;
        Self::open(path, &genesis, verifier)
    }

    /// The genesis of the chain in `path`, or `None` if there is no chain there. Reads only: it
    /// creates nothing, and works while the chain is open elsewhere.
    pub fn stored_genesis(path: &Path) -> Result<Option<Genesis>, OpenError> {
        if !path.join("CURRENT").is_file() {
            return Ok(None);
        }
        let db = DB::open_for_read_only(&Options::default(), path, false).map_err(store_err)?;
        let Some(stored) = db.get(b"genesis").map_err(store_err)? else {
            return Ok(None);
        };
        let g =
            Genesis::decode_from(&mut Reader::new(&stored)).map_err(|e| corrupt("genesis", e))?;
        Ok(Some(g))
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    fn lock(&self) -> MutexGuard<'_, Meta> {
        // a panic inside a transaction leaves the previous, committed meta in place
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_u64(&self, prefix: u8, id: &[u8]) -> Result<u64, L1Error> {
        match self.db.get(key(prefix, id)).map_err(store_err)? {
            Some(v) => u64_of(&v, if prefix == b'n' { "nonce" } else { "balance" }),
            None => Ok(0),
        }
    }
}
