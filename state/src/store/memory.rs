use std::collections::HashMap;

use super::{ChangeSet, Meta, NodeKey, StateStore, StoreResult};
use crate::{account::Account, field::Fr, ids::AccountIndex};

/// An in-memory store, for tests and for throwaway replicas.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    nodes: HashMap<NodeKey, Fr>,
    accounts: HashMap<AccountIndex, Account>,
    meta: Option<Meta>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateStore for MemStore {
    fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>> {
        Ok(self.nodes.get(&key).copied())
    }

    fn account(&self, index: AccountIndex) -> StoreResult<Option<Account>> {
        Ok(self.accounts.get(&index).copied())
    }

    fn meta(&self) -> StoreResult<Option<Meta>> {
        Ok(self.meta)
    }

    fn commit(&mut self, changes: ChangeSet) -> StoreResult<()> {
        self.nodes.extend(changes.nodes);
        self.accounts.extend(changes.accounts);
        if let Some(m) = changes.meta {
            self.meta = Some(m);
        }
        Ok(())
    }
}
