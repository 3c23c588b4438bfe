use std::path::Path;

use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use super::{ChangeSet, Meta, NodeKey, StateStore, StoreError, StoreResult};
use crate::{
    account::Account,
    encoding::{Decode, Encode},
    field::{fr_from_bytes, fr_to_bytes, Fr},
    ids::{AccountIndex, BatchNumber},
};

const PREFIX_NODE: u8 = b'n';
const PREFIX_ACCOUNT: u8 = b'a';
const KEY_META: &[u8] = b"m/meta";

/// How a [`RocksStore`] is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RocksStoreOptions {
    /// `fsync` every commit (the default). Off only for throwaway data.
    pub sync: bool,
}

impl Default for RocksStoreOptions {
    fn default() -> Self {
        Self { sync: true }
    }
}

/// The persistent store: one RocksDB database, one key space with a prefix per record kind.
///
/// Keys: `n ‖ level ‖ index(u64 BE)` → node (32 bytes), `a ‖ index(u32 BE)` → account,
/// `m/meta` → `depth ‖ batch(u64 BE) ‖ queue hash`. A commit is one `WriteBatch`.
pub struct RocksStore {
    db: DB,
    opts: RocksStoreOptions,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.db.path())
            .field("opts", &self.opts)
            .finish()
    }
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e)
}

fn node_key((level, index): NodeKey) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = PREFIX_NODE;
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

fn account_key(index: AccountIndex) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = PREFIX_ACCOUNT;
    k[1..].copy_from_slice(&index.0.to_be_bytes());
    k
}

fn encode_meta(m: &Meta) -> [u8; 41] {
    let mut out = [0u8; 41];
    out[0] = m.depth;
    out[1..9].copy_from_slice(&m.batch.0.to_be_bytes());
    out[9..].copy_from_slice(&fr_to_bytes(&m.queue));
    out
}

fn decode_meta(b: &[u8]) -> StoreResult<Meta> {
    let corrupt = StoreError::Corrupt { what: "metadata" };
    if b.len() != 41 {
        return Err(corrupt);
    }
    let batch = BatchNumber(u64::from_be_bytes(b[1..9].try_into().expect("8 bytes")));
    let queue = fr_from_bytes(b[9..].try_into().expect("32 bytes")).ok_or(corrupt)?;
    Ok(Meta {
        depth: b[0],
        batch,
        queue,
    })
}

impl RocksStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>, opts: RocksStoreOptions) -> StoreResult<Self> {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = DB::open(&o, path).map_err(backend)?;
        Ok(Self { db, opts })
    }
}

impl StateStore for RocksStore {
    fn node(&self, key: NodeKey) -> StoreResult<Option<Fr>> {
        match self.db.get_pinned(node_key(key)).map_err(backend)? {
            None => Ok(None),
            Some(v) => {
                let b: &[u8; 32] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt { what: "tree node" })?;
                fr_from_bytes(b)
                    .map(Some)
                    .ok_or(StoreError::Corrupt { what: "tree node" })
            }
        }
    }

    fn account(&self, index: AccountIndex) -> StoreResult<Option<Account>> {
        match self.db.get_pinned(account_key(index)).map_err(backend)? {
            None => Ok(None),
            Some(v) => Account::decode(&v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt { what: "account" }),
        }
    }

    fn meta(&self) -> StoreResult<Option<Meta>> {
        self.db
            .get_pinned(KEY_META)
            .map_err(backend)?
            .map(|v| decode_meta(&v))
            .transpose()
    }

    fn commit(&mut self, changes: ChangeSet) -> StoreResult<()> {
        let mut wb = WriteBatch::default();
        for (k, v) in &changes.nodes {
            wb.put(node_key(*k), fr_to_bytes(v));
        }
        for (i, a) in &changes.accounts {
            wb.put(account_key(*i), a.encode());
        }
        if let Some(m) = &changes.meta {
            wb.put(KEY_META, encode_meta(m));
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.opts.sync);
        self.db.write_opt(wb, &wo).map_err(backend)
    }
}
