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
    L1Address, MerkleProof, PublicKey, QueueEntry, Signature, SignedOp,
};
use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::{
    genesis::Genesis,
    settlement::{
        Checkpoint, Event, ExitMode, ExitReason, Head, L1Error, Lease, PostedBatch, QueuedEntry,
        Receipt, Rejection, RollupView, SettlementLayer,
    },
    sla::ms,
    tx::{keys, put_keys, Call, CouncilAction, L1Tx},
};

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
    lease: Lease,
    sequencers: Vec<PublicKey>,
    queue_len: u64,
    queue_tail: Fr,
    next_index: u32,
    /// Funds held by the rollup contract: deposits in, withdrawals and exits out.
    escrow: u64,
    exit_mode: Option<ExitMode>,
    council_sequence: u64,
}

const META_VERSION: u8 = 1;

impl Encode for Meta {
    fn encode_to(&self, out: &mut Vec<u8>) {
        let u64s = |out: &mut Vec<u8>, xs: &[u64]| {
            for x in xs {
                out.extend_from_slice(&x.to_be_bytes());
            }
        };
        out.push(META_VERSION);
        let c = &self.checkpoint;
        let l = &self.lease;
        u64s(out, &[self.head.height, self.head.time_ms, c.batch.0]);
        out.extend_from_slice(&fr_to_bytes(&c.root));
        out.extend_from_slice(&fr_to_bytes(&c.queue_hash));
        u64s(out, &[c.queue_consumed, c.proven_at_ms, l.epoch.0]);
        out.extend_from_slice(&l.sequencer.to_bytes());
        u64s(out, &[l.since_ms, l.last_batch_ms, self.queue_len]);
        out.extend_from_slice(&fr_to_bytes(&self.queue_tail));
        out.extend_from_slice(&self.next_index.to_be_bytes());
        u64s(out, &[self.escrow]);
        match self.exit_mode {
            None => out.push(0),
            Some(m) => {
                out.push(match m.reason {
                    ExitReason::ForcedInclusion => 1,
                    ExitReason::ProofDeadline => 2,
                    ExitReason::Council => 3,
                });
                u64s(out, &[m.since_ms]);
            }
        }
        u64s(out, &[self.council_sequence]);
        put_keys(out, &self.sequencers);
    }
}

impl Decode for Meta {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u8()?;
        if version != META_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let head = Head {
            height: r.u64()?,
            time_ms: r.u64()?,
        };
        let checkpoint = Checkpoint {
            batch: BatchNumber(r.u64()?),
            root: r.fr()?,
            queue_hash: r.fr()?,
            queue_consumed: r.u64()?,
            proven_at_ms: r.u64()?,
        };
        let lease = Lease {
            epoch: Epoch(r.u64()?),
            sequencer: PublicKey::decode_from(r)?,
            since_ms: r.u64()?,
            last_batch_ms: r.u64()?,
        };
        let queue_len = r.u64()?;
        let queue_tail = r.fr()?;
        let next_index = r.u32()?;
        let escrow = r.u64()?;
        let at = r.position();
        let exit_mode = match r.u8()? {
            0 => None,
            tag @ 1..=3 => Some(ExitMode {
                reason: match tag {
                    1 => ExitReason::ForcedInclusion,
                    2 => ExitReason::ProofDeadline,
                    _ => ExitReason::Council,
                },
                since_ms: r.u64()?,
            }),
            tag => return Err(DecodeError::UnknownTag { tag, at }),
        };
        let council_sequence = r.u64()?;
        let sequencers = keys(r)?;
        Ok(Self {
            head,
            checkpoint,
            lease,
            sequencers,
            queue_len,
            queue_tail,
            next_index,
            escrow,
            exit_mode,
            council_sequence,
        })
    }
}

fn key(prefix: u8, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(prefix);
    k.extend_from_slice(id);
    k
}

fn store_err(e: rocksdb::Error) -> L1Error {
    L1Error::Store(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> L1Error {
    L1Error::Corrupt(format!("{what}: {e}"))
}

fn u64_of(bytes: &[u8], what: &str) -> Result<u64, L1Error> {
    Ok(u64::from_be_bytes(
        bytes.try_into().map_err(|_| corrupt(what, "not 8 bytes"))?,
    ))
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

impl Tx<'_> {
    fn balance(&mut self, a: &L1Address) -> Result<u64, L1Error> {
        if let Some(b) = self.balances.get(a) {
            return Ok(*b);
        }
        let b = self.l1.read_u64(b'l', &a.0)?;
        self.balances.insert(*a, b);
        Ok(b)
    }

    fn credit(&mut self, a: L1Address, amount: u64) -> Result<(), L1Error> {
        let b = self.balance(&a)?;
        let nb = b
            .checked_add(amount)
            .ok_or_else(|| corrupt("ledger", "a balance passed u64::MAX"))?;
        self.balances.insert(a, nb);
        Ok(())
    }

    /// Pays `amount` out of the rollup's escrow.
    fn pay_out(&mut self, to: L1Address, amount: u64) -> Result<(), L1Error> {
        self.meta.escrow = self.meta.escrow.checked_sub(amount).ok_or_else(|| {
            corrupt(
                "escrow",
                "a proven payout exceeds the rollup's escrow (the proof system is unsound)",
            )
        })?;
        self.credit(to, amount)
    }

    /// Refuses every call that stops in exit mode.
    fn running(&self) -> Result<(), L1Error> {
        match self.meta.exit_mode {
            Some(_) => Err(Rejection::ExitModeActive.into()),
            None => Ok(()),
        }
    }

    /// The lease passes to `to` in the next epoch, from now.
    fn hand_lease(&mut self, to: PublicKey) {
        let now = self.meta.head.time_ms;
        let epoch = Epoch(self.meta.lease.epoch.0 + 1);
        self.meta.lease = Lease {
            epoch,
            sequencer: to,
            since_ms: now,
            last_batch_ms: now,
        };
        self.events.push(Event::LeaseClaimed {
            epoch,
            sequencer: to,
        });
        tracing::warn!(target: "keel::l1", epoch = epoch.0, "sequencer lease handed over");
    }

    fn enqueue(&mut self, entry: QueueEntry) -> u64 {
        let position = self.meta.queue_len;
        let hash_after = entry.chain(self.meta.queue_tail);
        let mut v = entry.encode();
        v.extend_from_slice(&self.meta.head.time_ms.to_be_bytes());
        v.extend_from_slice(&fr_to_bytes(&hash_after));
        self.writes.put(key(b'q', &position.to_be_bytes()), v);
        self.meta.queue_len += 1;
        self.meta.queue_tail = hash_after;
        position
    }
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

    /// Seals the open block at `time_ms` (the clock never goes back) and returns the new head.
    pub fn seal_block(&self, time_ms: u64) -> Result<Head, L1Error> {
        let mut meta = self.lock();
        let mut next = meta.clone();
        next.head = Head {
            height: meta.head.height + 1,
            time_ms: time_ms.max(meta.head.time_ms),
        };
        let mut w = WriteBatch::default();
        w.put(
            key(b'h', &next.head.height.to_be_bytes()),
            next.head.time_ms.to_be_bytes(),
        );
        w.put(b"meta", next.encode());
        write_synced(&self.db, w)?;
        *meta = next;
        Ok(meta.head)
    }

    /// Seals blocks every `block_time` on the wall clock until the handle is dropped.
    pub fn produce_blocks(self: &Arc<Self>, block_time: Duration) -> BlockProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let (l1, flag) = (Arc::clone(self), Arc::clone(&stop));
        let handle = thread::Builder::new()
            .name("keel-l1-blocks".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(block_time);
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, ms);
                    if let Err(e) = l1.seal_block(now) {
                        tracing::error!(target: "keel::l1", error = %e, "sealing a block failed; retrying");
                    }
                }
            })
            .expect("spawning the block producer");
        BlockProducer {
            stop,
            handle: Some(handle),
        }
    }

    fn execute(&self, meta: &Meta, tx: &L1Tx) -> Result<(Meta, WriteBatch, Vec<Event>), L1Error> {
        if !tx.verify(self.genesis.chain_id) {
            return Err(Rejection::BadSignature.into());
        }
        let sender = tx.sender();
        let expected = self.read_u64(b'n', &sender.0)?;
        if tx.nonce != expected {
            return Err(Rejection::BadNonce {
                expected,
                got: tx.nonce,
            }
            .into());
        }
        let mut t = Tx {
            l1: self,
            meta: meta.clone(),
            balances: HashMap::new(),
            writes: WriteBatch::default(),
            events: Vec::new(),
        };
        match &tx.call {
            Call::SubmitBatch { data, proof } => self.submit_batch(&mut t, tx, data, proof)?,
            Call::Deposit { pk, amount } => self.deposit(&mut t, sender, pk, *amount)?,
            Call::Force(op) => {
                t.running()?;
                if matches!(op, SignedOp::Withdraw(_)) {
                    return Err(Rejection::ForcedWithdrawal.into());
                }
                let position = t.enqueue(QueueEntry::Forced(*op));
                t.events.push(Event::Enqueued {
                    position,
                    account: None,
                });
            }
            Call::ActivateExitMode => self.activate_exit_mode(&mut t)?,
            Call::ClaimLease => self.claim_lease(&mut t, &tx.signer)?,
            Call::Heartbeat => {
                t.running()?;
                if tx.signer != t.meta.lease.sequencer {
                    return Err(Rejection::NotLeaseHolder.into());
                }
                t.meta.lease.last_batch_ms = t.meta.head.time_ms;
            }
            Call::Council {
                action,
                sequence,
                signature,
            } => self.council(&mut t, action, *sequence, signature)?,
            Call::Exit {
                account,
                proof,
                recipient,
            } => self.exit(&mut t, &tx.signer, account, proof, *recipient)?,
            Call::Reclaim { position } => self.reclaim(&mut t, *position)?,
        }
        let Tx {
            meta,
            balances,
            mut writes,
            events,
            ..
        } = t;
        for (a, b) in balances {
            writes.put(key(b'l', &a.0), b.to_be_bytes());
        }
        writes.put(key(b'n', &sender.0), (expected + 1).to_be_bytes());
        writes.put(b"meta", meta.encode());
        Ok((meta, writes, events))
    }

    fn submit_batch(
        &self,
        t: &mut Tx<'_>,
        tx: &L1Tx,
        data: &[u8],
        proof: &[u8],
    ) -> Result<(), L1Error> {
        t.running()?;
        let m = &t.meta;
        let batch = match Batch::decode(data) {
            Ok(b) => b,
            Err(DecodeError::DataCommitmentMismatch) => return Err(Rejection::DataMismatch.into()),
            Err(e) => return Err(Rejection::BadData(e.to_string()).into()),
        };
        if batch.epoch != m.lease.epoch {
            return Err(Rejection::StaleEpoch {
                current: m.lease.epoch,
                got: batch.epoch,
            }
            .into());
        }
        if tx.signer != m.lease.sequencer {
            return Err(Rejection::NotLeaseHolder.into());
        }
        let expected = BatchNumber(m.checkpoint.batch.0 + 1);
        if batch.number != expected {
            return Err(Rejection::WrongBatchNumber {
                expected,
                got: batch.number,
            }
            .into());
        }
        if batch.prev_root != m.checkpoint.root {
            return Err(Rejection::WrongPrevRoot.into());
        }
        if batch.queue_before != m.checkpoint.queue_hash {
            return Err(Rejection::WrongQueueStart.into());
        }
        // the batch's L1 operations must be exactly the next unconsumed entries, in order
        let mut queue_hash = m.checkpoint.queue_hash;
        let mut position = m.checkpoint.queue_consumed;
        for op in &batch.ops {
            let BatchOp::L1(entry) = op else { continue };
            match self.queued(position)? {
                Some(q) if q.entry == *entry => queue_hash = q.hash_after,
                _ => return Err(Rejection::QueueOrder { position }.into()),
            }
            position += 1;
        }
        if batch.queue_after != queue_hash {
            return Err(Rejection::WrongQueueEnd.into());
        }
        let public = PublicInputs::of(&batch);
        self.verifier
            .verify(&BatchProof {
                public,
                proof: proof.to_vec(),
            })
            .map_err(|e| Rejection::InvalidProof(e.to_string()))?;

        // accepted: record the checkpoint and the data, pay the batch's withdrawals
        let now = t.meta.head.time_ms;
        t.meta.checkpoint = Checkpoint {
            batch: batch.number,
            root: batch.new_root,
            queue_hash,
            queue_consumed: position,
            proven_at_ms: now,
        };
        t.meta.lease.last_batch_ms = now;
        let height = t.meta.head.height + 1;
        let mut v = height.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u64).to_be_bytes());
        v.extend_from_slice(data);
        v.extend_from_slice(proof);
        t.writes.put(key(b'd', &batch.number.0.to_be_bytes()), v);
        t.events.push(Event::BatchProven {
            number: batch.number,
            root: batch.new_root,
        });
        // An L2 withdrawal in a proven batch was valid (the circuit refuses a batch with an
        // invalid L2 operation), so it is paid.
        for op in &batch.ops {
            if let BatchOp::L2(SignedOp::Withdraw(w)) = op {
                t.pay_out(w.recipient, w.amount)?;
                t.events.push(Event::WithdrawalPaid {
                    recipient: w.recipient,
                    amount: w.amount,
                });
            }
        }
        tracing::info!(target: "keel::l1", batch = batch.number.0, ops = batch.ops.len(), "batch proven");
        Ok(())
    }

    fn deposit(
        &self,
        t: &mut Tx<'_>,
        sender: L1Address,
        pk: &PublicKey,
        amount: u64,
    ) -> Result<(), L1Error> {
        t.running()?;
        if amount == 0 {
            return Err(Rejection::ZeroAmount.into());
        }
        let balance = t.balance(&sender)?;
        if balance < amount {
            return Err(Rejection::InsufficientBalance {
                balance,
                needed: amount,
            }
            .into());
        }
        let to = match self.account_index(pk)? {
            Some(i) => i,
            None => {
                let i = AccountIndex(t.meta.next_index);
                if !index_fits(i, self.genesis.depth) {
                    return Err(Rejection::TreeFull.into());
                }
                t.meta.next_index += 1;
                t.writes.put(key(b'r', &pk.to_bytes()), i.0.to_be_bytes());
                i
            }
        };
        t.balances.insert(sender, balance - amount);
        t.meta.escrow = t
            .meta
            .escrow
            .checked_add(amount)
            .ok_or_else(|| corrupt("escrow", "passed u64::MAX"))?;
        let position = t.enqueue(QueueEntry::Deposit(keel_state::Deposit {
            to,
            pk: *pk,
            amount,
        }));
        // who paid, so the deposit can be refunded if exit mode comes before a batch consumes it
        t.writes.put(key(b'f', &position.to_be_bytes()), sender.0);
        t.events.push(Event::Enqueued {
            position,
            account: Some(to),
        });
        Ok(())
    }

    /// Refunds an unconsumed deposit in exit mode: its funds are in the escrow but in no proven
    /// state, so no exit can pay them.
    fn reclaim(&self, t: &mut Tx<'_>, position: u64) -> Result<(), L1Error> {
        if t.meta.exit_mode.is_none() {
            return Err(Rejection::NotInExitMode.into());
        }
        let not = || L1Error::from(Rejection::NotReclaimable { position });
        if position < t.meta.checkpoint.queue_consumed {
            return Err(not());
        }
        let Some(QueuedEntry {
            entry: QueueEntry::Deposit(deposit),
            ..
        }) = self.queued(position)?
        else {
            return Err(not());
        };
        let id = position.to_be_bytes();
        let depositor = match self.db.get(key(b'f', &id)).map_err(store_err)? {
            Some(v) => L1Address(
                v.as_slice()
                    .try_into()
                    .map_err(|_| corrupt("depositor", "not 20 bytes"))?,
            ),
            None => return Err(not()),
        };
        if self.db.get(key(b'c', &id)).map_err(store_err)?.is_some() {
            return Err(Rejection::AlreadyReclaimed { position }.into());
        }
        t.pay_out(depositor, deposit.amount)?;
        t.writes.put(key(b'c', &id), []);
        t.events.push(Event::Reclaimed {
            position,
            recipient: depositor,
            amount: deposit.amount,
        });
        Ok(())
    }

    fn exit(
        &self,
        t: &mut Tx<'_>,
        signer: &PublicKey,
        account: &Account,
        proof: &MerkleProof,
        recipient: L1Address,
    ) -> Result<(), L1Error> {
        if t.meta.exit_mode.is_none() {
            return Err(Rejection::NotInExitMode.into());
        }
        if account.pk != *signer {
            return Err(Rejection::NotAccountOwner.into());
        }
        let index = proof.index;
        if self.exited(index)? {
            return Err(Rejection::AlreadyExited(index).into());
        }
        if proof.siblings.len() != usize::from(self.genesis.depth)
            || !proof.verify(account.leaf(), t.meta.checkpoint.root)
        {
            return Err(Rejection::WrongMerkleProof.into());
        }
        t.pay_out(recipient, account.balance)?;
        let mut v = recipient.0.to_vec();
        v.extend_from_slice(&account.balance.to_be_bytes());
        t.writes.put(key(b'x', &index.0.to_be_bytes()), v);
        t.events.push(Event::Exited {
            account: index,
            recipient,
            amount: account.balance,
        });
        Ok(())
    }

    fn activate_exit_mode(&self, t: &mut Tx<'_>) -> Result<(), L1Error> {
        t.running()?;
        let m = &t.meta;
        let d = &self.genesis.deadlines;
        let now = m.head.time_ms;
        let queue_due_ms = self
            .queued(m.checkpoint.queue_consumed)?
            .map(|q| q.enqueued_at_ms.saturating_add(ms(d.forced_inclusion)));
        let proof_due_ms = m.checkpoint.proven_at_ms.saturating_add(ms(d.proof));
        let reason = if queue_due_ms.is_some_and(|due| now >= due) {
            ExitReason::ForcedInclusion
        } else if now >= proof_due_ms {
            ExitReason::ProofDeadline
        } else {
            return Err(Rejection::ExitModeNotDue {
                queue_due_ms,
                proof_due_ms,
            }
            .into());
        };
        t.meta.exit_mode = Some(ExitMode {
            reason,
            since_ms: now,
        });
        t.events.push(Event::ExitModeActivated(reason));
        tracing::warn!(target: "keel::l1", %reason, "exit mode activated");
        Ok(())
    }

    fn claim_lease(&self, t: &mut Tx<'_>, signer: &PublicKey) -> Result<(), L1Error> {
        t.running()?;
        let m = &t.meta;
        if !m.sequencers.contains(signer) {
            return Err(Rejection::NotRegistered.into());
        }
        if *signer == m.lease.sequencer {
            return Err(Rejection::AlreadyLeaseHolder.into());
        }
        let claimable_at_ms = m
            .lease
            .claimable_at_ms(self.genesis.deadlines.failover_timeout);
        let now = m.head.time_ms;
        if now < claimable_at_ms {
            return Err(Rejection::LeaseNotExpired { claimable_at_ms }.into());
        }
        t.hand_lease(*signer);
        Ok(())
    }

    fn council(
        &self,
        t: &mut Tx<'_>,
        action: &CouncilAction,
        sequence: u64,
        signature: &Signature,
    ) -> Result<(), L1Error> {
        let expected = t.meta.council_sequence;
        if sequence != expected {
            return Err(Rejection::CouncilReplay {
                expected,
                got: sequence,
            }
            .into());
        }
        let msg = action.message(self.genesis.chain_id, sequence);
        if self.genesis.council.key.verify(&[msg], signature).is_err() {
            return Err(Rejection::BadCouncilSignature.into());
        }
        t.running()?;
        let now = t.meta.head.time_ms;
        match action {
            CouncilAction::ActivateExitMode => {
                t.meta.exit_mode = Some(ExitMode {
                    reason: ExitReason::Council,
                    since_ms: now,
                });
                t.events.push(Event::ExitModeActivated(ExitReason::Council));
                tracing::warn!(target: "keel::l1", "exit mode activated by the council");
            }
            CouncilAction::RotateSequencers(set) => {
                let Some(first) = set.first() else {
                    return Err(Rejection::EmptySequencerSet.into());
                };
                t.meta.sequencers = set.clone();
                t.events.push(Event::SequencersRotated { count: set.len() });
                if !set.contains(&t.meta.lease.sequencer) {
                    t.hand_lease(*first);
                }
                tracing::warn!(target: "keel::l1", sequencers = set.len(), "sequencer set rotated by the council");
            }
        }
        t.meta.council_sequence += 1;
        Ok(())
    }

    fn queued(&self, position: u64) -> Result<Option<QueuedEntry>, L1Error> {
        let Some(v) = self
            .db
            .get(key(b'q', &position.to_be_bytes()))
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let mut r = Reader::new(&v);
        let q = (|| -> DecodeResult<QueuedEntry> {
            Ok(QueuedEntry {
                position,
                entry: QueueEntry::decode_from(&mut r)?,
                enqueued_at_ms: r.u64()?,
                hash_after: r.fr()?,
            })
        })()
        .map_err(|e| corrupt("queue entry", e))?;
        Ok(Some(q))
    }
}

fn write_synced(db: &DB, w: WriteBatch) -> Result<(), L1Error> {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(w, &opts).map_err(store_err)
}

impl SettlementLayer for EmbeddedL1 {
    fn chain_id(&self) -> u64 {
        self.genesis.chain_id
    }

    fn head(&self) -> Result<Head, L1Error> {
        Ok(self.lock().head)
    }

    fn rollup(&self) -> Result<RollupView, L1Error> {
        let m = self.lock();
        Ok(RollupView {
            head: m.head,
            deadlines: self.genesis.deadlines,
            depth: self.genesis.depth,
            checkpoint: m.checkpoint,
            lease: m.lease,
            sequencers: m.sequencers.clone(),
            queue_len: m.queue_len,
            exit_mode: m.exit_mode,
            council_sequence: m.council_sequence,
        })
    }

    fn nonce(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.read_u64(b'n', &address.0)
    }

    fn balance(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.read_u64(b'l', &address.0)
    }

    fn submit(&self, tx: &L1Tx) -> Result<Receipt, L1Error> {
        let mut meta = self.lock();
        let (next, writes, events) = self.execute(&meta, tx).inspect_err(|e| {
            tracing::debug!(target: "keel::l1", call = tx.call.name(), error = %e, "transaction refused");
        })?;
        write_synced(&self.db, writes)?;
        *meta = next;
        Ok(Receipt {
            height: meta.head.height + 1,
            events,
        })
    }

    fn queue(&self, position: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error> {
        let mut out = Vec::new();
        let mut p = position;
        while out.len() < max {
            match self.queued(p)? {
                Some(q) => out.push(q),
                None => break,
            }
            p += 1;
        }
        Ok(out)
    }

    fn batch(&self, number: BatchNumber) -> Result<Option<PostedBatch>, L1Error> {
        let Some(v) = self
            .db
            .get(key(b'd', &number.0.to_be_bytes()))
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let mut r = Reader::new(&v);
        let (height, data, proof) = (|| -> DecodeResult<_> {
            let height = r.u64()?;
            let len = r.u64()?;
            let data = r
                .bytes(usize::try_from(len).unwrap_or(usize::MAX))?
                .to_vec();
            let proof = r.bytes(r.remaining())?.to_vec();
            Ok((height, data, proof))
        })()
        .map_err(|e| corrupt("batch record", e))?;
        Ok(Some(PostedBatch {
            number,
            data,
            proof,
            height,
        }))
    }

    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error> {
        match self.db.get(key(b'r', &pk.to_bytes())).map_err(store_err)? {
            Some(v) => {
                let b: [u8; 4] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("registry", "not 4 bytes"))?;
                Ok(Some(AccountIndex(u32::from_be_bytes(b))))
            }
            None => Ok(None),
        }
    }

    fn exited(&self, account: AccountIndex) -> Result<bool, L1Error> {
        Ok(self
            .db
            .get(key(b'x', &account.0.to_be_bytes()))
            .map_err(store_err)?
            .is_some())
    }
}

/// Seals the embedded L1's blocks on a thread; stops when dropped.
#[derive(Debug)]
pub struct BlockProducer {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Drop for BlockProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use keel_state::test_utils::key;

    use super::*;

    #[test]
    fn meta_round_trips_with_and_without_exit_mode() {
        let mut m = Meta {
            head: Head {
                height: 3,
                time_ms: 44,
            },
            checkpoint: Checkpoint {
                batch: BatchNumber(2),
                root: Fr::from(7),
                queue_hash: Fr::from(8),
                queue_consumed: 5,
                proven_at_ms: 40,
            },
            lease: Lease {
                epoch: Epoch(3),
                sequencer: key(1).public_key(),
                since_ms: 10,
                last_batch_ms: 40,
            },
            sequencers: vec![key(1).public_key(), key(2).public_key()],
            queue_len: 9,
            queue_tail: Fr::from(11),
            next_index: 4,
            escrow: 1234,
            exit_mode: None,
            council_sequence: 6,
        };
        for exit_mode in [
            None,
            Some(ExitMode {
                reason: ExitReason::ForcedInclusion,
                since_ms: 41,
            }),
            Some(ExitMode {
                reason: ExitReason::ProofDeadline,
                since_ms: 42,
            }),
            Some(ExitMode {
                reason: ExitReason::Council,
                since_ms: 43,
            }),
        ] {
            m.exit_mode = exit_mode;
            let back = Meta::decode(&m.encode()).unwrap();
            assert_eq!(back.encode(), m.encode());
            assert_eq!(back.exit_mode, exit_mode);
            assert_eq!(back.lease, m.lease);
            assert_eq!(back.checkpoint, m.checkpoint);
        }
    }
}
