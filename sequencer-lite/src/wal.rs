//! The write-ahead log: every acknowledged operation, and every batch before its state is
//! committed, in RocksDB.
//!
//! Records (keys are a one-byte tag and a big-endian number, so they sort in order):
//!
//! | key | value | written |
//! |---|---|---|
//! | `a` seq | the operation's canonical encoding ([`BatchOp`]) | by the group-commit writer, before the acknowledgement |
//! | `b` n | last seq covered (8 bytes) ‖ the batch's canonical encoding | before the batch's state is committed; the same write deletes the `a` records it covers |
//! | `q` | the next L1 queue index (8 bytes) | with each L1 entry's `a` record |
//!
//! So the log always holds each accepted operation exactly once: as an `a` record until its batch
//! is logged, then inside that `b` record. Recovery re-executes logged batches the state lacks and
//! re-admits the `a` records in sequence order.

use std::path::Path;

use keel_state::{Batch, BatchNumber, BatchOp, Decode, Encode};
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::{config::FsyncPolicy, error::WalError};

const OP: u8 = b'a';
const BATCH: u8 = b'b';
const QUEUE: &[u8] = b"q";

fn key(tag: u8, n: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag;
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

fn number(k: &[u8]) -> Result<u64, WalError> {
    let b: [u8; 8] = k
        .get(1..9)
        .and_then(|s| s.try_into().ok())
        .ok_or(WalError::Corrupt("key"))?;
    Ok(u64::from_be_bytes(b))
}

/// One operation to log: its sequence number, the operation, and (for an L1 entry) its queue
/// index.
#[derive(Clone, Debug)]
pub(crate) struct LogOp {
    pub(crate) seq: u64,
    pub(crate) op: BatchOp,
    pub(crate) l1_index: Option<u64>,
}

/// A logged batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedBatch {
    /// The last operation sequence number the batch covers.
    pub last_seq: u64,
    /// The batch.
    pub batch: Batch,
}

/// What recovery finds in the log.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// `(last_seq, number)` of every logged batch, in order.
    pub(crate) batches: Vec<(u64, BatchNumber)>,
    /// Accepted operations not yet in a logged batch, in sequence order.
    pub(crate) ops: Vec<(u64, BatchOp)>,
    /// The next L1 queue index.
    pub(crate) next_l1: u64,
}

/// The log.
pub struct Wal {
    db: DB,
    fsync: FsyncPolicy,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("fsync", &self.fsync).finish()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<Self, WalError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir).map_err(WalError::backend)?;
        Ok(Self { db, fsync })
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), WalError> {
        let mut w = WriteOptions::default();
        w.set_sync(sync);
        self.db.write_opt(batch, &w).map_err(WalError::backend)
    }

    /// Logs a group of operations as one atomic write, fsync'd per the policy: the group commit.
    pub(crate) fn append(&self, ops: &[LogOp]) -> Result<(), WalError> {
        let mut wb = WriteBatch::default();
        for o in ops {
            wb.put(key(OP, o.seq), o.op.encode());
            if let Some(i) = o.l1_index {
                wb.put(QUEUE, (i + 1).to_be_bytes());
            }
        }
        self.write(wb, self.fsync == FsyncPolicy::Always)
    }

    /// Logs a batch covering operations `first_seq..=last_seq` and drops their `a` records, in
    /// one write that is always fsync'd: the state is committed only after it. A replica, which
    /// logs no `a` records, passes the next L1 queue index after the batch as `next_l1`.
    pub(crate) fn log_batch(
        &self,
        first_seq: u64,
        last_seq: u64,
        batch: &Batch,
        next_l1: Option<u64>,
    ) -> Result<(), WalError> {
        let mut value = last_seq.to_be_bytes().to_vec();
        batch.encode_to(&mut value);
        let mut wb = WriteBatch::default();
        wb.put(key(BATCH, batch.number.0), value);
        wb.delete_range(key(OP, first_seq), key(OP, last_seq + 1));
        if let Some(i) = next_l1 {
            wb.put(QUEUE, i.to_be_bytes());
        }
        self.write(wb, true)
    }

    /// The logged batch `n`.
    pub fn batch(&self, n: BatchNumber) -> Result<Option<LoggedBatch>, WalError> {
        let Some(v) = self.db.get(key(BATCH, n.0)).map_err(WalError::backend)? else {
            return Ok(None);
        };
        decode_batch(&v).map(Some)
    }

    /// Calls `f(number, value)` for every record with `tag`, in key order.
    fn scan(
        &self,
        tag: u8,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), WalError>,
    ) -> Result<(), WalError> {
        for item in self
            .db
            .iterator(IteratorMode::From(&[tag], Direction::Forward))
        {
            let (k, v) = item.map_err(WalError::backend)?;
            if k.first() != Some(&tag) {
                break;
            }
            f(number(&k)?, &v)?;
        }
        Ok(())
    }

    /// Reads everything recovery needs.
    pub(crate) fn recover(&self) -> Result<Recovered, WalError> {
        let mut r = Recovered::default();
        self.scan(BATCH, |n, v| {
            let last_seq = u64::from_be_bytes(
                v.get(..8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(WalError::Corrupt("batch record"))?,
            );
            r.batches.push((last_seq, BatchNumber(n)));
            Ok(())
        })?;
        self.scan(OP, |seq, v| {
            let op = BatchOp::decode(v).map_err(|_| WalError::Corrupt("operation record"))?;
            r.ops.push((seq, op));
            Ok(())
        })?;
        if let Some(v) = self.db.get(QUEUE).map_err(WalError::backend)? {
            let b: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| WalError::Corrupt("queue index"))?;
            r.next_l1 = u64::from_be_bytes(b);
        }
        Ok(r)
    }
}

fn decode_batch(v: &[u8]) -> Result<LoggedBatch, WalError> {
    let (head, rest) = v
        .split_at_checked(8)
        .ok_or(WalError::Corrupt("batch record"))?;
    let last_seq = u64::from_be_bytes(head.try_into().expect("8 bytes"));
    let batch = Batch::decode(rest).map_err(|_| WalError::Corrupt("batch record"))?;
    Ok(LoggedBatch { last_seq, batch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_state::test_utils::{deposit, funded_state, transfer};
    use keel_state::Epoch;

    #[test]
    fn ops_and_batches_round_trip_and_a_logged_batch_drops_the_ops_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
        let ops: Vec<LogOp> = (0..5)
            .map(|i| LogOp {
                seq: i + 1,
                op: if i == 0 {
                    deposit(9, 5)
                } else {
                    transfer(0, 1, 1, i - 1)
                },
                l1_index: (i == 0).then_some(0),
            })
            .collect();
        wal.append(&ops).unwrap();
        let r = wal.recover().unwrap();
        assert_eq!(r.ops.len(), 5);
        assert_eq!(r.next_l1, 1);
        assert!(r
            .ops
            .iter()
            .zip(&ops)
            .all(|(a, b)| a.0 == b.seq && a.1 == b.op));

        let mut s = funded_state(4, 2, 100);
        let w = s
            .execute_batch(Epoch(1), ops[..3].iter().map(|o| o.op).collect())
            .unwrap();
        wal.log_batch(1, 3, &w.batch, None).unwrap();
        drop(wal);
        let wal = Wal::open(dir.path(), FsyncPolicy::Always).unwrap();
        let r = wal.recover().unwrap();
        assert_eq!(r.batches, vec![(3, w.batch.number)]);
        assert_eq!(r.ops.iter().map(|o| o.0).collect::<Vec<_>>(), [4, 5]);
        let logged = wal.batch(w.batch.number).unwrap().unwrap();
        assert_eq!(logged.batch, w.batch);
        assert_eq!(logged.last_seq, 3);
        assert!(wal.batch(BatchNumber(7)).unwrap().is_none());
    }
}
