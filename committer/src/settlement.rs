//! What a rollup contract offers, as two traits: the seam between Keel's services and whichever
//! L1 settles the rollup.
//!
//! - [`SettlementLayer`] **reads**: the head, the rollup's state, the queue, the posted batches,
//!   the exits. Every service reads.
//! - [`Settler`] **writes, role by role**: post a batch, heartbeat, claim the lease, deposit,
//!   force, activate exit mode, exit, reclaim. An implementation owns its signer and its nonces,
//!   so a caller never sees a chain's transaction format.
//!
//! Two L1s sit behind them: [`crate::EmbeddedL1`] (and [`crate::RpcL1`], its client), whose own
//! signed transactions ([`EmbeddedChain`]) a [`Keyed`] settler makes, and `keel_evm`'s rollup
//! contract on any EVM chain. Identities on the seam are [`L1Address`]es: the embedded chain's
//! are derived from Grumpkin keys ([`address_of`]), an EVM chain's are its accounts.
//!
//! The traits are synchronous: the embedded L1 answers in-process, and a networked L1 blocks its
//! caller (async callers use `spawn_blocking`).

use std::fmt;

use serde::{Deserialize, Serialize};

use keel_state::{
    Account, AccountIndex, BatchNumber, Epoch, Fr, L1Address, MerkleProof, PublicKey, QueueEntry,
    SecretKey, SignedOp,
};

use crate::{
    sla::Deadlines,
    tx::{address_of, Call, L1Tx},
};

/// The L1 chain's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Height of the last sealed block (genesis is 0).
    pub height: u64,
    /// Its timestamp, milliseconds since the Unix epoch: the L1's clock.
    pub time_ms: u64,
}

/// The last proven state of the rollup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last proven batch (0 before the first).
    pub batch: BatchNumber,
    /// Its post-state root (the genesis root before the first batch).
    #[serde(with = "keel_state::wire::fr")]
    pub root: Fr,
    /// Running hash of the queue entries consumed so far.
    #[serde(with = "keel_state::wire::fr")]
    pub queue_hash: Fr,
    /// Queue entries consumed so far.
    pub queue_consumed: u64,
    /// When it was proven (the genesis time before the first batch).
    pub proven_at_ms: u64,
}

/// Who may sequence, since when. `Id` is how the holder is named: an [`L1Address`] on the seam
/// (the embedded L1 keeps the holder's Grumpkin key inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease<Id = L1Address> {
    /// The current epoch; batches must carry it.
    pub epoch: Epoch,
    /// The lease holder.
    pub sequencer: Id,
    /// When the lease began.
    pub since_ms: u64,
    /// When the holder last settled a batch or sent a heartbeat in this epoch (`since_ms`
    /// before the first): the failover clock starts here.
    pub last_batch_ms: u64,
}

impl<Id> Lease<Id> {
    /// The same lease, its holder named another way.
    pub fn map<To>(self, f: impl FnOnce(Id) -> To) -> Lease<To> {
        Lease {
            epoch: self.epoch,
            sequencer: f(self.sequencer),
            since_ms: self.since_ms,
            last_batch_ms: self.last_batch_ms,
        }
    }

    /// When a registered standby may claim this lease: `failover_timeout` after the holder's
    /// lease began, its last batch or its last heartbeat, whichever is latest.
    pub fn claimable_at_ms(&self, failover_timeout: std::time::Duration) -> u64 {
        self.since_ms
            .max(self.last_batch_ms)
            .saturating_add(failover_timeout.as_millis() as u64)
    }
}

/// Why exit mode was activated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The oldest queue entry was unserved past the forced-inclusion deadline.
    ForcedInclusion,
    /// No batch was proven within the proof deadline.
    ProofDeadline,
    /// The council decided it.
    Council,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ForcedInclusion => "forced-inclusion deadline passed",
            Self::ProofDeadline => "proof deadline passed",
            Self::Council => "the council decided",
        })
    }
}

/// Exit mode, once active (it never ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitMode {
    /// Why.
    pub reason: ExitReason,
    /// When.
    pub since_ms: u64,
}

/// The rollup contract's state at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupView {
    /// The chain head.
    pub head: Head,
    /// The deployment's deadlines.
    pub deadlines: Deadlines,
    /// The state tree's depth.
    pub depth: u8,
    /// The last proven state.
    pub checkpoint: Checkpoint,
    /// The sequencer lease.
    pub lease: Lease,
    /// Registered sequencers, in take-over order.
    pub sequencers: Vec<Sequencer>,
    /// Queue entries ever enqueued (consumed ones included).
    pub queue_len: u64,
    /// Exit mode, if active.
    pub exit_mode: Option<ExitMode>,
    /// The council's next action number.
    pub council_sequence: u64,
}

/// A registered sequencer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequencer {
    /// The address it signs L1 calls as (a lease holder is named by it).
    pub address: L1Address,
    /// The Grumpkin key its signed acknowledgements verify under, where the L1 registers one
    /// (the embedded L1 does: a sequencer *is* its key there).
    pub ack_key: Option<PublicKey>,
}

impl Sequencer {
    /// A sequencer of the embedded L1, known by its key.
    pub fn keyed(pk: PublicKey) -> Self {
        Self {
            address: address_of(&pk),
            ack_key: Some(pk),
        }
    }
}

impl RollupView {
    /// Whether `address` is a registered sequencer.
    pub fn registered(&self, address: &L1Address) -> bool {
        self.sequencers.iter().any(|s| s.address == *address)
    }
}

/// An entry of the forced-inclusion queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEntry {
    /// Position in the queue (the first entry is 0).
    pub position: u64,
    /// The entry.
    pub entry: QueueEntry,
    /// When it was enqueued.
    pub enqueued_at_ms: u64,
    /// The queue's running hash after it.
    #[serde(with = "keel_state::wire::fr")]
    pub hash_after: Fr,
}

/// A settled batch: its data and proof as posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedBatch {
    /// Its number.
    pub number: BatchNumber,
    /// `keel_state::Batch` encoding.
    #[serde(with = "keel_state::wire::bytes")]
    pub data: Vec<u8>,
    /// The proof.
    #[serde(with = "keel_state::wire::bytes")]
    pub proof: Vec<u8>,
    /// The block that included it.
    pub height: u64,
}

/// What an executed transaction did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "detail", rename_all = "snake_case")]
pub enum Event {
    /// A batch was proven and recorded.
    BatchProven {
        /// Its number.
        number: BatchNumber,
        /// Its post-state root.
        #[serde(with = "keel_state::wire::fr")]
        root: Fr,
    },
    /// A withdrawal of a proven batch was paid.
    WithdrawalPaid {
        /// Paid to.
        recipient: L1Address,
        /// Amount.
        amount: u64,
    },
    /// An entry joined the forced-inclusion queue.
    Enqueued {
        /// Its position.
        position: u64,
        /// For a deposit, the account index the L1 assigned.
        account: Option<AccountIndex>,
    },
    /// Exit mode is active.
    ExitModeActivated(ExitReason),
    /// The lease passed to a new holder.
    LeaseClaimed {
        /// The new epoch.
        epoch: Epoch,
        /// The new holder.
        sequencer: L1Address,
    },
    /// The council replaced the registered sequencers.
    SequencersRotated {
        /// How many are registered now.
        count: usize,
    },
    /// In exit mode, a deposit no proven batch consumed was refunded to its depositor.
    Reclaimed {
        /// The deposit's queue position.
        position: u64,
        /// The depositor, paid.
        recipient: L1Address,
        /// Amount.
        amount: u64,
    },
    /// An account exited.
    Exited {
        /// The account.
        account: AccountIndex,
        /// Paid to.
        recipient: L1Address,
        /// Amount.
        amount: u64,
    },
}

/// An executed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The block that includes it (sealed at the next block time).
    pub height: u64,
    /// What it did.
    pub events: Vec<Event>,
}

/// Why the L1 refused a transaction: one variant per rule. A refused transaction changes nothing
/// (not even the signer's nonce).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "rule", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rejection {
    /// The transaction bytes do not decode.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The signature is not the signer's over this transaction on this chain.
    #[error("bad signature")]
    BadSignature,
    /// The nonce is not the signer's next one.
    #[error("nonce {got} is not the signer's next nonce {expected}")]
    BadNonce {
        /// The next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// Exit mode is active: batches, deposits, forced entries and lease claims have stopped.
    #[error("exit mode is active")]
    ExitModeActive,
    /// The batch data does not decode.
    #[error("batch data does not decode: {0}")]
    BadData(String),
    /// The batch's operations do not match its data commitment.
    #[error("batch data does not match its data commitment")]
    DataMismatch,
    /// The batch carries another epoch than the current one.
    #[error("batch epoch {got} is not the current epoch {current}")]
    StaleEpoch {
        /// The current epoch.
        current: Epoch,
        /// The batch's.
        got: Epoch,
    },
    /// The signer does not hold the sequencer lease.
    #[error("the signer does not hold the sequencer lease")]
    NotLeaseHolder,
    /// The batch is not the next one.
    #[error("batch {got} is not the next batch {expected}")]
    WrongBatchNumber {
        /// The next batch number.
        expected: BatchNumber,
        /// The batch's.
        got: BatchNumber,
    },
    /// The batch does not start from the last proven root.
    #[error("the batch's prev_root is not the last proven root")]
    WrongPrevRoot,
    /// The batch's queue hash before is not the L1's consumed-queue hash.
    #[error("the batch's queue_before is not the L1's consumed-queue hash")]
    WrongQueueStart,
    /// The batch consumes a queue entry out of order (or one that was never queued).
    #[error("queue entry at position {position} is not the next unconsumed entry")]
    QueueOrder {
        /// The first position that differs.
        position: u64,
    },
    /// The batch's queue hash after does not follow from the entries it consumed.
    #[error("the batch's queue_after does not follow from the entries it consumes")]
    WrongQueueEnd,
    /// The proof does not verify for the public inputs the data implies.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// A deposit or payout of zero.
    #[error("amount must be positive")]
    ZeroAmount,
    /// The signer's L1 balance is too small.
    #[error("L1 balance {balance} is below {needed}")]
    InsufficientBalance {
        /// The balance.
        balance: u64,
        /// What the call needs.
        needed: u64,
    },
    /// The state tree has no free index for a new account.
    #[error("the state tree is full")]
    TreeFull,
    /// Forced withdrawals cannot be paid yet (see the crate docs); queuing one would burn funds.
    #[error("forced withdrawals are not supported; withdraw through the sequencer or exit")]
    ForcedWithdrawal,
    /// No deadline has passed, so exit mode cannot be activated.
    #[error("no deadline has passed: the forced-inclusion deadline ends at {queue_due_ms:?} ms, the proof deadline at {proof_due_ms} ms")]
    ExitModeNotDue {
        /// When the oldest unserved entry becomes overdue, if any is queued.
        queue_due_ms: Option<u64>,
        /// When the proof deadline passes.
        proof_due_ms: u64,
    },
    /// Exits and reclaims are allowed only in exit mode.
    #[error("exits and reclaims are allowed only in exit mode")]
    NotInExitMode,
    /// This account has already exited.
    #[error("account {0} has already exited")]
    AlreadyExited(AccountIndex),
    /// The queue position holds no deposit that can be refunded: none is there, it is a forced
    /// operation, or a proven batch consumed it (its funds leave by the account's exit).
    #[error("queue position {position} holds no unconsumed deposit to reclaim")]
    NotReclaimable {
        /// The position.
        position: u64,
    },
    /// The deposit was already refunded.
    #[error("the deposit at queue position {position} was already reclaimed")]
    AlreadyReclaimed {
        /// The position.
        position: u64,
    },
    /// Only the account's owner may exit it.
    #[error("only the account's owner may exit it")]
    NotAccountOwner,
    /// The Merkle proof does not show the account at the last proven root.
    #[error("the Merkle proof does not match the last proven root")]
    WrongMerkleProof,
    /// The council signature does not verify under the council's key (for example, fewer than
    /// the threshold signed).
    #[error("the council signature does not verify under the council key")]
    BadCouncilSignature,
    /// The council action's sequence number is not the next one: a replay, or one skipped.
    #[error("council action {got} is not the next one, {expected}")]
    CouncilReplay {
        /// The next sequence number.
        expected: u64,
        /// The action's.
        got: u64,
    },
    /// A sequencer set must not be empty.
    #[error("the sequencer set must not be empty")]
    EmptySequencerSet,
    /// The signer is not a registered sequencer.
    #[error("the signer is not a registered sequencer")]
    NotRegistered,
    /// A deposit that is not a whole number of L2 units (an EVM L1 escrows one gwei per unit).
    #[error("the deposit is not a whole number of units")]
    NotWholeUnits,
    /// An amount the escrow cannot hold.
    #[error("the amount is too large for the escrow")]
    AmountTooLarge,
    /// An account key that is not a point of the curve.
    #[error("the key is not a curve point")]
    BadKey,
    /// Nothing is credited to the caller to claim.
    #[error("nothing is credited to this address")]
    NothingToClaim,
    /// The L1 could not pay the recipient (an EVM recipient that refuses ether).
    #[error("the payment to the recipient failed")]
    PaymentFailed,
    /// The signer already holds the lease.
    #[error("the signer already holds the lease")]
    AlreadyLeaseHolder,
    /// The lease holder is not yet silent for the failover timeout.
    #[error("the lease holder is live; the lease can be claimed from {claimable_at_ms} ms")]
    LeaseNotExpired {
        /// When it can be claimed if the holder stays silent.
        claimable_at_ms: u64,
    },
}

/// An L1 call's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L1Error {
    /// The L1 executed the rules and refused.
    #[error("refused by the L1: {0}")]
    Rejected(#[from] Rejection),
    /// The L1's store failed; nothing was applied.
    #[error("L1 store: {0}")]
    Store(String),
    /// The L1's stored state does not decode or is inconsistent.
    #[error("L1 store is corrupt: {0}")]
    Corrupt(String),
    /// The L1 could not be reached, or its answer was not one this client understands; the call
    /// may or may not have been executed (read the L1 again before repeating a transaction).
    #[error("L1 unavailable: {what}{}", source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Unavailable {
        /// What was asked, and what came back.
        what: String,
        /// The transport's or the decoder's error, when there was one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl L1Error {
    /// Unavailable: `what` went wrong, for no deeper cause.
    pub fn unavailable(what: impl Into<String>) -> Self {
        Self::Unavailable {
            what: what.into(),
            source: None,
        }
    }

    /// The rule that refused, if it was a refusal.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Self::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// What every service reads of a rollup contract.
pub trait SettlementLayer: Send + Sync {
    /// The rollup's chain id (what L2 operations and exits sign).
    fn chain_id(&self) -> u64;
    /// The chain head, as far as it counts as settled (an EVM L1 reads `confirmations` deep).
    fn head(&self) -> Result<Head, L1Error>;
    /// The rollup contract's settled state.
    fn rollup(&self) -> Result<RollupView, L1Error>;
    /// Up to `max` queue entries from `position` on.
    fn queue(&self, position: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error>;
    /// A settled batch's data and proof.
    fn batch(&self, number: BatchNumber) -> Result<Option<PostedBatch>, L1Error>;
    /// The account index the L1 assigned to a key, if any.
    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error>;
    /// Whether an account has exited.
    fn exited(&self, account: AccountIndex) -> Result<bool, L1Error>;
}

/// The calls each role makes on the L1. The implementation signs them with its own key at its
/// own nonces; a refusal is the rule's [`Rejection`] and changes nothing.
pub trait Settler: Send + Sync {
    /// The address these calls come from: a sequencer's identity on the lease, a depositor's
    /// refund address.
    fn address(&self) -> L1Address;
    /// The lease holder posts the next batch (`keel_state::Batch` encoding) with its proof.
    fn post_batch(&self, data: &[u8], proof: &[u8]) -> Result<Receipt, L1Error>;
    /// The lease holder restarts the failover clock.
    fn heartbeat(&self) -> Result<Receipt, L1Error>;
    /// A registered standby claims the silent holder's lease.
    fn claim_lease(&self) -> Result<Receipt, L1Error>;
    /// Escrows `amount` for the account of `owner` (created at the next index if it has none) and
    /// queues the deposit.
    fn deposit(&self, owner: &PublicKey, amount: u64) -> Result<Receipt, L1Error>;
    /// Queues a signed operation for forced inclusion.
    fn force(&self, op: &SignedOp) -> Result<Receipt, L1Error>;
    /// Activates exit mode past a deadline.
    fn activate_exit_mode(&self) -> Result<Receipt, L1Error>;
    /// Exits `account` (as of the last proven root, shown by `proof`) to `recipient`, authorised
    /// by its `owner`.
    fn exit(
        &self,
        owner: &SecretKey,
        account: &Account,
        proof: &MerkleProof,
        recipient: L1Address,
    ) -> Result<Receipt, L1Error>;
    /// In exit mode, refunds the deposit at `position` that no proven batch consumed.
    fn reclaim(&self, position: u64) -> Result<Receipt, L1Error>;
}

/// The embedded chain's own transactions ([`L1Tx`]): what [`crate::EmbeddedL1`] executes and
/// [`crate::RpcL1`] sends. Services go through [`Keyed`] instead.
pub trait EmbeddedChain: SettlementLayer {
    /// The next nonce of an L1 address.
    fn nonce(&self, address: &L1Address) -> Result<u64, L1Error>;
    /// The L1 balance of an address.
    fn balance(&self, address: &L1Address) -> Result<u64, L1Error>;
    /// Executes a transaction, or refuses it and changes nothing.
    fn submit(&self, tx: &L1Tx) -> Result<Receipt, L1Error>;

    /// Signs `call` with `key` at the signer's next nonce on this L1, and submits it.
    fn send(&self, key: &SecretKey, call: Call) -> Result<Receipt, L1Error> {
        let nonce = self.nonce(&address_of(&key.public_key()))?;
        self.submit(&L1Tx::sign(key, self.chain_id(), nonce, call))
    }
}

/// A [`Settler`] on an [`EmbeddedChain`] (`L` is a reference to one: `&EmbeddedL1`,
/// `Arc<RpcL1>`, `Arc<dyn EmbeddedChain>`): every call an [`L1Tx`] signed by `key` (an exit by
/// its owner's key, as the embedded chain requires).
pub struct Keyed<L> {
    l1: L,
    key: SecretKey,
}

impl<L> Keyed<L> {
    /// Calls on `l1` signed by `key`.
    pub fn new(l1: L, key: SecretKey) -> Self {
        Self { l1, key }
    }
}

impl<L> fmt::Debug for Keyed<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("address", &address_of(&self.key.public_key()))
            .finish_non_exhaustive()
    }
}

impl<L> Settler for Keyed<L>
where
    L: std::ops::Deref + Send + Sync,
    L::Target: EmbeddedChain,
{
    fn address(&self) -> L1Address {
        address_of(&self.key.public_key())
    }

    fn post_batch(&self, data: &[u8], proof: &[u8]) -> Result<Receipt, L1Error> {
        self.l1.send(
            &self.key,
            Call::SubmitBatch {
                data: data.to_vec(),
                proof: proof.to_vec(),
            },
        )
    }

    fn heartbeat(&self) -> Result<Receipt, L1Error> {
        self.l1.send(&self.key, Call::Heartbeat)
    }

    fn claim_lease(&self) -> Result<Receipt, L1Error> {
        self.l1.send(&self.key, Call::ClaimLease)
    }

    fn deposit(&self, owner: &PublicKey, amount: u64) -> Result<Receipt, L1Error> {
        self.l1
            .send(&self.key, Call::Deposit { pk: *owner, amount })
    }

    fn force(&self, op: &SignedOp) -> Result<Receipt, L1Error> {
        self.l1.send(&self.key, Call::Force(*op))
    }

    fn activate_exit_mode(&self) -> Result<Receipt, L1Error> {
        self.l1.send(&self.key, Call::ActivateExitMode)
    }

    fn exit(
        &self,
        owner: &SecretKey,
        account: &Account,
        proof: &MerkleProof,
        recipient: L1Address,
    ) -> Result<Receipt, L1Error> {
        self.l1.send(
            owner,
            Call::Exit {
                account: *account,
                proof: proof.clone(),
                recipient,
            },
        )
    }

    fn reclaim(&self, position: u64) -> Result<Receipt, L1Error> {
        self.l1.send(&self.key, Call::Reclaim { position })
    }
}
