//! Where the state lives: the [`StateStore`] seam, an in-memory store for tests and a RocksDB
//! store that survives restarts.
//!
//! A store holds three things: tree nodes (only those that differ from the empty subtree of their
//! level are ever written), accounts, and [`Meta`] (depth, last applied batch, L1 queue hash).
//! Every change reaches a store as one [`ChangeSet`] that [`StateStore::commit`] applies
//! atomically, so a crash leaves the state at a batch boundary, never halfway.

mod memory;
mod rocks;

pub use memory::MemStore;
pub use rocks::{RocksStore, RocksStoreOptions};

use crate::{
    account::Account,
    field::Fr,
    ids::{AccountIndex, BatchNumber},
};

/// A storage failure (I/O, or bytes on disk that do not decode).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed.
    #[error("storage backend: {0}")]
    Backend(#[source] rocksdb::Error),
    /// Stored bytes are not what Keel wrote.
    #[error("corrupt {what} in the state store")]
    Corrupt {
        /// Which record.
        what: &'static str,
    },
}

/// Result alias for storage.
pub type StoreResult<T> = Result<T, StoreError>;

/// What the state knows about itself besides accounts and nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Tree depth, fixed at genesis.
    pub depth: u8,
    /// The last batch applied (0 at genesis).
    pub batch: BatchNumber,
    /// Running hash of the L1 queue entries consumed so far (0 at genesis).
    pub queue: Fr,
}

/// A node position: `(level, index)`, level 0 being the leaves.
pub type NodeKey = (u8, u64);

/// Changes to apply atomically.
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    /// Tree nodes written.
    pub nodes: Vec<(NodeKey, Fr)>,
    /// Accounts written.
    pub accounts: Vec<(AccountIndex, Account)>,
    /// New metadata, if it changed.
    pub meta: Option<Meta>,
}

/// Storage for the state.
pub trait StateStore {
    /// A stored node, `None` if it was never written (then it is the empty subtree's hash).
    fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>>;
    /// A stored account.
    fn account(&self, index: AccountIndex) -> StoreResult<Option<Account>>;
    /// The metadata, `None` for a store that was never initialised.
    fn meta(&self) -> StoreResult<Option<Meta>>;
    /// Applies `changes` atomically (and durably, for a persistent store).
    fn commit(&mut self, changes: ChangeSet) -> StoreResult<()>;
}
