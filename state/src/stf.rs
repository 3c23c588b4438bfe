//! The state-transition function.
//!
//! [`State`] is the committed state over a [`StateStore`]. Changes are made in a [`Pending`]
//! overlay: it reads through to the state, keeps every write to itself, and reaches the store
//! only through [`State::commit`] as one atomic [`ChangeSet`]. An operation is fully validated
//! before its first write, so a rejected operation leaves the overlay exactly as it was.
//!
//! Rules, checked in this order (the first failure is the one reported; the circuit follows the
//! same order):
//!
//! ```text
//! Transfer  from, to < 2^D · from exists · signature by from.pk · nonce = from.nonce ·
//!           from.nonce + 1 fits · to exists · from.balance ≥ amount · to.balance + amount fits
//! Withdraw  from < 2^D · from exists · signature · nonce · nonce + 1 fits · balance ≥ amount
//! Deposit   to < 2^D · if to exists: same key, balance + amount fits; else create (pk, amount, 0)
//! ```
//!
//! An L2 operation that breaks a rule is refused (and invalidates a batch). A queue entry that
//! breaks one is consumed with no effect ([`Outcome::Rejected`]) and still advances the queue
//! hash, so nobody can stall the L1 queue with an invalid entry.

use std::collections::HashMap;

use crate::{
    account::{leaf_of, Account},
    batch::{Batch, MAX_BATCH_OPS},
    encoding::{Decode, DecodeError},
    field::Fr,
    ids::{AccountIndex, BatchNumber, Epoch},
    ops::{BatchOp, Deposit, QueueEntry, SignedOp},
    rules::{self, check_index, SigCheck},
    signature::SignatureError,
    store::{ChangeSet, Meta, NodeKey, StateStore, StoreError, StoreResult},
    tree::{self, MerkleProof, NodeSource, MAX_DEPTH},
    witness::{BatchWitness, LeafUpdate, OpWitness, Outcome},
};

/// Why an operation was refused. Every variant but [`StfError::Store`] is a rule violation.
///
/// Exhaustive on purpose: the services map each variant to a reason code of their API, and a
/// new rule must not compile until it has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StfError {
    /// The bytes are not a valid operation.
    #[error("malformed operation: {0}")]
    Malformed(#[from] DecodeError),
    /// An account index beyond the tree.
    #[error("account {index} is outside a tree of depth {depth}")]
    IndexOutOfRange {
        /// The index.
        index: AccountIndex,
        /// The tree depth.
        depth: u8,
    },
    /// No account at that index.
    #[error("account {0} does not exist")]
    UnknownAccount(AccountIndex),
    /// The signature does not verify under the account's key.
    #[error("bad signature for account {account}: {source}")]
    BadSignature {
        /// The signing account.
        account: AccountIndex,
        /// Why.
        source: SignatureError,
    },
    /// The operation's nonce is not the account's next nonce.
    #[error("bad nonce for account {account}: expected {expected}, got {got}")]
    BadNonce {
        /// The signing account.
        account: AccountIndex,
        /// The account's nonce.
        expected: u64,
        /// The operation's nonce.
        got: u64,
    },
    /// Balance below the amount.
    #[error("account {account} has {balance}, needs {amount}")]
    InsufficientBalance {
        /// The debited account.
        account: AccountIndex,
        /// Its balance.
        balance: u64,
        /// The amount.
        amount: u64,
    },
    /// A balance or nonce would exceed `u64::MAX`.
    #[error("balance or nonce of account {0} would overflow")]
    Overflow(AccountIndex),
    /// A deposit names an existing account with another key.
    #[error("deposit to account {0} carries a different key than the account's")]
    KeyMismatch(AccountIndex),
    /// The store failed; not a rule violation (nothing is consumed).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StfError {
    /// Whether this is a rule violation (as opposed to a storage failure).
    pub fn is_rule(&self) -> bool {
        !matches!(self, Self::Store(_))
    }
}

/// Why a batch was refused. Nothing is changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// An L2 operation broke a rule.
    #[error("batch operation {index}: {source}")]
    Op {
        /// Its position in the batch.
        index: usize,
        /// The rule.
        source: StfError,
    },
    /// Not the next batch number.
    #[error("batch {got} does not follow batch {last}")]
    Number {
        /// The last applied batch.
        last: BatchNumber,
        /// The batch's number.
        got: BatchNumber,
    },
    /// The batch claims another starting root.
    #[error("batch starts from root {claimed:?}, the state is at {actual:?}")]
    PrevRoot {
        /// `prev_root` of the batch.
        claimed: Fr,
        /// The state's root.
        actual: Fr,
    },
    /// The batch claims another starting queue hash.
    #[error("batch starts from queue hash {claimed:?}, the state is at {actual:?}")]
    QueueBefore {
        /// `queue_before` of the batch.
        claimed: Fr,
        /// The state's queue hash.
        actual: Fr,
    },
    /// Re-execution reaches another root than the batch claims.
    #[error("batch claims new root {claimed:?}, re-execution gives {computed:?}")]
    NewRoot {
        /// `new_root` of the batch.
        claimed: Fr,
        /// What the operations give.
        computed: Fr,
    },
    /// Re-execution reaches another queue hash than the batch claims.
    #[error("batch claims queue hash {claimed:?}, re-execution gives {computed:?}")]
    QueueAfter {
        /// `queue_after` of the batch.
        claimed: Fr,
        /// What the operations give.
        computed: Fr,
    },
    /// More operations than a batch may hold.
    #[error("batch has {count} operations, the limit is {max}")]
    TooManyOps {
        /// Operations given.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the state could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Depth outside `1..=32`.
    #[error("tree depth {0} is outside 1..={MAX_DEPTH}")]
    BadDepth(u8),
    /// The store was created with another depth.
    #[error("the store holds a tree of depth {stored}, {requested} was requested")]
    DepthMismatch {
        /// Depth in the store.
        stored: u8,
        /// Depth asked for.
        requested: u8,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A batch executed but not yet committed ([`State::plan_batch`]).
#[derive(Debug)]
pub struct PlannedBatch {
    witness: BatchWitness,
    changes: ChangeSet,
}

impl PlannedBatch {
    /// The batch and its witness, as they will be committed.
    pub fn witness(&self) -> &BatchWitness {
        &self.witness
    }
}

/// The committed rollup state.
#[derive(Debug)]
pub struct State<S> {
    store: S,
    meta: Meta,
}

impl<S: StateStore> State<S> {
    /// Opens the state in `store`, writing the genesis (empty tree of `depth`) if the store is
    /// new. A store that already holds a state must have been created with the same depth.
    pub fn open(mut store: S, depth: u8) -> Result<Self, OpenError> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(OpenError::BadDepth(depth));
        }
        let meta = match store.meta()? {
            Some(m) if m.depth != depth => {
                return Err(OpenError::DepthMismatch {
                    stored: m.depth,
                    requested: depth,
                })
            }
            Some(m) => m,
            None => {
                let m = Meta {
                    depth,
                    batch: BatchNumber(0),
                    queue: Fr::zero(),
                };
                store.commit(ChangeSet {
                    meta: Some(m),
                    ..Default::default()
                })?;
                m
            }
        };
        tracing::debug!(target: "keel::state", depth, batch = %meta.batch, "state opened");
        Ok(Self { store, meta })
    }

    /// Tree depth.
    pub fn depth(&self) -> u8 {
        self.meta.depth
    }

    /// The last applied batch (0 at genesis).
    pub fn last_batch(&self) -> BatchNumber {
        self.meta.batch
    }

    /// Running hash of the L1 queue entries consumed so far.
    pub fn queue_hash(&self) -> Fr {
        self.meta.queue
    }

    /// The state root.
    pub fn root(&self) -> StoreResult<Fr> {
        tree::root(self, self.meta.depth)
    }

    /// The account at `index`.
    pub fn account(&self, index: AccountIndex) -> Result<Option<Account>, StfError> {
        check_index(index, self.meta.depth)?;
        Ok(self.store.account(index)?)
    }

    /// A Merkle proof for the leaf at `index` (of the empty leaf, if there is no account).
    pub fn proof(&self, index: AccountIndex) -> Result<MerkleProof, StfError> {
        check_index(index, self.meta.depth)?;
        Ok(MerkleProof {
            index,
            siblings: tree::siblings(self, self.meta.depth, index)?,
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// A fresh overlay on the current state.
    pub fn pending(&self) -> Pending<'_, S> {
        Pending {
            base: self,
            nodes: HashMap::new(),
            accounts: HashMap::new(),
            queue: self.meta.queue,
        }
    }

    /// Applies one operation and commits it.
    pub fn apply(&mut self, op: &BatchOp) -> Result<OpWitness, StfError> {
        let mut p = self.pending();
        let w = p.apply(op)?;
        let changes = p.into_changes(None);
        self.commit(changes)?;
        Ok(w)
    }

    /// Decodes one operation and applies it; bad bytes give [`StfError::Malformed`].
    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Result<OpWitness, StfError> {
        let op = BatchOp::decode(bytes)?;
        self.apply(&op)
    }

    /// Executes `ops` as batch `last_batch + 1` and commits it, returning the batch (with its
    /// roots and queue hashes) and its witness. Any L2 rule violation refuses the whole batch.
    pub fn execute_batch(
        &mut self,
        epoch: Epoch,
        ops: Vec<BatchOp>,
    ) -> Result<BatchWitness, BatchError> {
        let planned = self.plan_batch(epoch, ops)?;
        self.commit_batch(planned)
    }

    /// Executes `ops` as batch `last_batch + 1` without committing: the slow part (tree paths,
    /// witness) needs only `&self`, so readers of the state are not held up while it runs.
    /// [`State::commit_batch`] then writes it.
    pub fn plan_batch(&self, epoch: Epoch, ops: Vec<BatchOp>) -> Result<PlannedBatch, BatchError> {
        let number = self
            .meta
            .batch
            .next()
            .expect("batch numbers do not reach u64::MAX");
        let prev_root = self.root()?;
        let queue_before = self.meta.queue;
        let (witnesses, changes, new_root, queue_after) = self.run(number, &ops)?;
        let batch = Batch {
            number,
            epoch,
            prev_root,
            new_root,
            queue_before,
            queue_after,
            ops,
        };
        Ok(PlannedBatch {
            witness: BatchWitness {
                depth: self.meta.depth,
                batch,
                ops: witnesses,
            },
            changes,
        })
    }

    /// Commits a batch planned on this state. Refused (nothing written) if the state moved since
    /// it was planned.
    pub fn commit_batch(&mut self, planned: PlannedBatch) -> Result<BatchWitness, BatchError> {
        let batch = &planned.witness.batch;
        self.check_start(batch)?;
        self.commit(planned.changes)?;
        tracing::debug!(target: "keel::state", batch = %batch.number, ops = batch.ops.len(), "batch committed");
        Ok(planned.witness)
    }

    /// Checks that `batch` starts where this state is: the next number, the current root and
    /// queue hash.
    fn check_start(&self, batch: &Batch) -> Result<(), BatchError> {
        let last = self.meta.batch;
        if last.next() != Some(batch.number) {
            return Err(BatchError::Number {
                last,
                got: batch.number,
            });
        }
        let actual = self.root()?;
        if batch.prev_root != actual {
            return Err(BatchError::PrevRoot {
                claimed: batch.prev_root,
                actual,
            });
        }
        if batch.queue_before != self.meta.queue {
            return Err(BatchError::QueueBefore {
                claimed: batch.queue_before,
                actual: self.meta.queue,
            });
        }
        Ok(())
    }

    /// Re-executes a batch produced elsewhere (a posted or streamed batch) and commits it only if
    /// its header is exactly what its operations give from this state.
    pub fn apply_batch(&mut self, batch: &Batch) -> Result<BatchWitness, BatchError> {
        self.check_start(batch)?;
        let (witnesses, changes, computed_root, computed_queue) =
            self.run(batch.number, &batch.ops)?;
        if computed_root != batch.new_root {
            return Err(BatchError::NewRoot {
                claimed: batch.new_root,
                computed: computed_root,
            });
        }
        if computed_queue != batch.queue_after {
            return Err(BatchError::QueueAfter {
                claimed: batch.queue_after,
                computed: computed_queue,
            });
        }
        self.commit(changes)?;
        Ok(BatchWitness {
            depth: self.meta.depth,
            batch: batch.clone(),
            ops: witnesses,
        })
    }

    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        number: BatchNumber,
        ops: &[BatchOp],
    ) -> Result<(Vec<OpWitness>, ChangeSet, Fr, Fr), BatchError> {
        if ops.len() > MAX_BATCH_OPS as usize {
            return Err(BatchError::TooManyOps {
                count: ops.len(),
                max: MAX_BATCH_OPS,
            });
        }
        let mut p = self.pending();
        let mut witnesses = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match p.apply(op) {
                Ok(w) => witnesses.push(w),
                Err(StfError::Store(e)) => return Err(BatchError::Store(e)),
                Err(source) => return Err(BatchError::Op { index, source }),
            }
        }
        let root = p.root()?;
        let queue = p.queue;
        Ok((witnesses, p.into_changes(Some(number)), root, queue))
    }

    /// Writes an overlay's changes to the store atomically. Private: changes reach the store only
    /// through the rules above.
    fn commit(&mut self, changes: ChangeSet) -> StoreResult<()> {
        let meta = changes.meta;
        self.store.commit(changes)?;
        if let Some(m) = meta {
            self.meta = m;
        }
        Ok(())
    }
}

impl<S: StateStore> NodeSource for State<S> {
    fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>> {
        self.store.node(key)
    }
}

/// Uncommitted changes on top of a [`State`]: what the sequencer validates against, and where a
/// batch is built before it is committed.
#[derive(Debug)]
pub struct Pending<'s, S> {
    base: &'s State<S>,
    nodes: HashMap<NodeKey, Fr>,
    accounts: HashMap<AccountIndex, Account>,
    queue: Fr,
}

impl<S: StateStore> NodeSource for Pending<'_, S> {
    fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>> {
        match self.nodes.get(&key) {
            Some(n) => Ok(Some(*n)),
            None => self.base.store.node(key),
        }
    }
}

impl<S: StateStore> Pending<'_, S> {
    /// The root with the pending changes.
    pub fn root(&self) -> StoreResult<Fr> {
        tree::root(self, self.base.meta.depth)
    }

    /// The queue hash with the pending changes.
    pub fn queue_hash(&self) -> Fr {
        self.queue
    }

    /// The account at `index` with the pending changes.
    pub fn account(&self, index: AccountIndex) -> Result<Option<Account>, StfError> {
        check_index(index, self.base.meta.depth)?;
        match self.accounts.get(&index) {
            Some(a) => Ok(Some(*a)),
            None => Ok(self.base.store.account(index)?),
        }
    }

    /// Applies one operation to the overlay. An L2 operation that breaks a rule returns the
    /// error and changes nothing; a queue entry that breaks one is consumed as
    /// [`Outcome::Rejected`].
    pub fn apply(&mut self, op: &BatchOp) -> Result<OpWitness, StfError> {
        let root_before = self.root()?;
        let queue_before = self.queue;
        let (outcome, leaves) = match op {
            BatchOp::L2(s) => (Outcome::Applied, self.apply_signed(s)?),
            BatchOp::L1(entry) => {
                let result = match entry {
                    QueueEntry::Deposit(d) => self.apply_deposit(d),
                    QueueEntry::Forced(s) => self.apply_signed(s),
                };
                let (outcome, leaves) = match result {
                    Ok(leaves) => (Outcome::Applied, leaves),
                    Err(e) if e.is_rule() => {
                        let reads = self.reads(entry)?;
                        (Outcome::Rejected(e), reads)
                    }
                    Err(e) => return Err(e),
                };
                self.queue = entry.chain(self.queue);
                (outcome, leaves)
            }
        };
        Ok(OpWitness {
            op: *op,
            outcome,
            root_before,
            root_after: self.root()?,
            queue_before,
            queue_after: self.queue,
            leaves,
        })
    }

    /// The changes, with metadata advanced to `batch` if given.
    fn into_changes(self, batch: Option<BatchNumber>) -> ChangeSet {
        let mut meta = self.base.meta;
        meta.queue = self.queue;
        if let Some(b) = batch {
            meta.batch = b;
        }
        ChangeSet {
            nodes: self.nodes.into_iter().collect(),
            accounts: self.accounts.into_iter().collect(),
            meta: Some(meta),
        }
    }

    fn apply_signed(&mut self, op: &SignedOp) -> Result<Vec<LeafUpdate>, StfError> {
        let writes = rules::signed(
            op,
            self.base.meta.depth,
            &|i| self.account(i),
            SigCheck::Verify,
        )?;
        self.write_all(writes)
    }

    fn apply_deposit(&mut self, d: &Deposit) -> Result<Vec<LeafUpdate>, StfError> {
        let w = rules::deposit(d, self.base.meta.depth, &|i| self.account(i))?;
        self.write_all(vec![w])
    }

    /// Performs validated writes, in order.
    fn write_all(&mut self, writes: Vec<rules::Write>) -> Result<Vec<LeafUpdate>, StfError> {
        writes
            .into_iter()
            .map(|w| self.write(w.index, w.before, w.after))
            .collect()
    }

    /// Leaf reads proving a rejected entry's accounts (those inside the tree).
    fn reads(&self, entry: &QueueEntry) -> Result<Vec<LeafUpdate>, StfError> {
        let indices: Vec<AccountIndex> = match entry {
            QueueEntry::Deposit(d) => vec![d.to],
            QueueEntry::Forced(SignedOp::Transfer(t)) => vec![t.from, t.to],
            QueueEntry::Forced(SignedOp::Withdraw(w)) => vec![w.from],
        };
        let depth = self.base.meta.depth;
        let mut out = Vec::new();
        for index in indices {
            if check_index(index, depth).is_err() {
                continue;
            }
            let account = self.account(index)?;
            let siblings = tree::siblings(self, depth, index)?;
            out.push(LeafUpdate {
                index,
                before: account,
                after: account,
                siblings,
            });
        }
        Ok(out)
    }

    /// Writes `account` at `index`, whose current content the caller has read as `before`.
    fn write(
        &mut self,
        index: AccountIndex,
        before: Option<Account>,
        account: Account,
    ) -> Result<LeafUpdate, StfError> {
        debug_assert_eq!(self.account(index).ok().flatten(), before, "stale `before`");
        let siblings = tree::siblings(self, self.base.meta.depth, index)?;
        let path = tree::updated_path(index, leaf_of(Some(&account)), &siblings);
        self.nodes.extend(path);
        self.accounts.insert(index, account);
        Ok(LeafUpdate {
            index,
            before,
            after: Some(account),
            siblings,
        })
    }
}
