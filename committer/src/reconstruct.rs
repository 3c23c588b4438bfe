//! The rollup's state rebuilt from L1 data alone, and the exit a citizen builds from it.
//!
//! ```text
//!  SettlementLayer::rollup ──▶ checkpoint (batch n, root)
//!  SettlementLayer::batch(1..=n) ──▶ Batch::decode ──▶ State::apply_batch (the STF, re-executed)
//!                                                       └─▶ root == checkpoint.root, or refuse
//!  account_index(pk) ──▶ State::account + State::proof ──▶ Settler::exit, authorised by the owner
//! ```
//!
//! No sequencer, prover or trusted party is involved: the posted batch data is the whole input,
//! and the L1's proven root is the check. A replay that does not reach that root is an error,
//! never an exit built from a state the L1 would refuse.

use keel_state::{
    Account, AccountIndex, Batch, BatchError, BatchNumber, Decode, Fr, L1Address, MerkleProof,
    SecretKey, State, StateStore, StfError,
};

use crate::settlement::{Checkpoint, L1Error, Receipt, SettlementLayer, Settler};

/// Why the state could not be rebuilt, or the exit not built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconstructError {
    /// The L1 failed or refused.
    #[error(transparent)]
    L1(#[from] L1Error),
    /// A proven batch has no data on the L1.
    #[error("batch {0} is proven on the L1 but its data is missing")]
    MissingBatch(BatchNumber),
    /// A posted batch does not decode.
    #[error("batch {number}'s posted data does not decode: {error}")]
    BadData {
        /// The batch.
        number: BatchNumber,
        /// Why.
        error: String,
    },
    /// A posted batch does not re-execute to its own header.
    #[error("batch {number} does not replay: {error}")]
    Replay {
        /// The batch.
        number: BatchNumber,
        /// What the STF found.
        error: BatchError,
    },
    /// The replay ended at another root than the L1's proven one.
    #[error("the replayed root {computed:?} is not the L1's proven root {proven:?}")]
    RootMismatch {
        /// The L1's.
        proven: Fr,
        /// The replay's.
        computed: Fr,
    },
    /// The local state failed.
    #[error("local state: {0}")]
    State(String),
    /// The key owns no account on this rollup.
    #[error("no account on this rollup belongs to this key")]
    NoAccount,
    /// The L1 assigned the key an index, but no proven batch has created the account yet (its
    /// deposit is still queued).
    #[error("account {0} is not in the last proven state (its deposit was not yet included)")]
    NotProven(AccountIndex),
    /// The account has exited already.
    #[error("account {0} has already exited")]
    AlreadyExited(AccountIndex),
}

/// A state rebuilt from L1 data, at the L1's checkpoint.
pub struct Replayed<S: StateStore> {
    /// The state after the checkpoint's batch.
    pub state: State<S>,
    /// The checkpoint it reached.
    pub checkpoint: Checkpoint,
}

/// Rebuilds the state in `store` (empty, or holding a prefix of this rollup's history) from the
/// batches the L1 has proven, calling `progress(done, total)` after each batch.
pub fn replay<S: StateStore>(
    l1: &dyn SettlementLayer,
    store: S,
    mut progress: impl FnMut(BatchNumber, BatchNumber),
) -> Result<Replayed<S>, ReconstructError> {
    let view = l1.rollup()?;
    let checkpoint = view.checkpoint;
    let mut state =
        State::open(store, view.depth).map_err(|e| ReconstructError::State(e.to_string()))?;
    for n in state.last_batch().0 + 1..=checkpoint.batch.0 {
        let number = BatchNumber(n);
        let posted = l1
            .batch(number)?
            .ok_or(ReconstructError::MissingBatch(number))?;
        let batch = Batch::decode(&posted.data).map_err(|e| ReconstructError::BadData {
            number,
            error: e.to_string(),
        })?;
        state
            .apply_batch(&batch)
            .map_err(|error| ReconstructError::Replay { number, error })?;
        progress(number, checkpoint.batch);
    }
    let computed = state
        .root()
        .map_err(|e| ReconstructError::State(e.to_string()))?;
    if state.last_batch() != checkpoint.batch || computed != checkpoint.root {
        return Err(ReconstructError::RootMismatch {
            proven: checkpoint.root,
            computed,
        });
    }
    Ok(Replayed { state, checkpoint })
}

/// An account and its Merkle proof against the replayed root: what an exit carries.
pub fn account_with_proof<S: StateStore>(
    state: &State<S>,
    index: AccountIndex,
) -> Result<(Account, MerkleProof), ReconstructError> {
    let local = |e: StfError| ReconstructError::State(e.to_string());
    let account = state
        .account(index)
        .map_err(local)?
        .ok_or(ReconstructError::NotProven(index))?;
    Ok((account, state.proof(index).map_err(local)?))
}

/// An exit that the L1 executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exited {
    /// The account.
    pub account: AccountIndex,
    /// What was paid.
    pub amount: u64,
    /// To whom.
    pub recipient: L1Address,
    /// The L1's receipt.
    pub receipt: Receipt,
}

/// Exits `owner`'s account from the replayed state through `settler`, paying `recipient` (the
/// settler's own address when `None`). The L1 refuses it outside exit mode, and a second time.
pub fn exit<S: StateStore>(
    l1: &dyn SettlementLayer,
    settler: &dyn Settler,
    replayed: &Replayed<S>,
    owner: &SecretKey,
    recipient: Option<L1Address>,
) -> Result<Exited, ReconstructError> {
    let pk = owner.public_key();
    let index = l1.account_index(&pk)?.ok_or(ReconstructError::NoAccount)?;
    if l1.exited(index)? {
        return Err(ReconstructError::AlreadyExited(index));
    }
    let (account, proof) = account_with_proof(&replayed.state, index)?;
    let recipient = recipient.unwrap_or_else(|| settler.address());
    let amount = account.balance;
    let receipt = settler.exit(owner, &account, &proof, recipient)?;
    Ok(Exited {
        account: index,
        amount,
        recipient,
        receipt,
    })
}
