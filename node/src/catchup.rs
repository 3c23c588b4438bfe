//! A replica checked against the L1 and caught up to its proven checkpoint from the posted
//! data; a directory whose history disagrees is moved aside (kept, never deleted).

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use keel_committer::{RollupView, SettlementLayer};
use keel_sequencer::{Replica, ReplicaError};
use keel_state::{Batch, BatchNumber, Decode};

use crate::{io, Node, NodeError};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Moves a data directory aside (kept for inspection, never deleted) and returns where.
pub(crate) fn move_aside(dir: &Path, why: &str) -> Result<PathBuf, NodeError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sequencer".into());
    let to = dir.with_file_name(format!("{name}.{why}-{}", now_ms()));
    std::fs::rename(dir, &to).map_err(io(format!(
        "moving {} aside to {}",
        dir.display(),
        to.display()
    )))?;
    tracing::info!("moved {} aside to {}", dir.display(), to.display());
    Ok(to)
}

/// Brings `replica` up to the L1's proven checkpoint with the posted data, after checking that
/// what it holds agrees with the L1. `Ok(false)`: it disagrees (its history diverged).
pub(crate) fn catch_up(
    l1: &dyn SettlementLayer,
    replica: &Replica,
    view: &RollupView,
) -> Result<bool, NodeError> {
    let c = view.checkpoint;
    let last = replica.last_batch();
    if last >= c.batch && c.batch.0 > 0 {
        let held = replica
            .batch(c.batch)?
            .ok_or(NodeError::MissingBatch(c.batch))?;
        return Ok(held.new_root == c.root);
    }
    for n in last.0 + 1..=c.batch.0 {
        let number = BatchNumber(n);
        let posted = l1.batch(number)?.ok_or(NodeError::NoL1Batch(number))?;
        let batch = Batch::decode(&posted.data)
            .map_err(|source| NodeError::BadL1Batch { number, source })?;
        match replica.apply(&batch) {
            Ok(_) => {}
            Err(ReplicaError::Diverged(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(replica.root()? == c.root)
}

impl Node {
    /// Opens the replica, moving the directory aside if it holds a primary's unbatched
    /// operations, then [`Node::checked`].
    pub(crate) fn open_replica(&self, view: &RollupView, why: &str) -> Result<Replica, NodeError> {
        let replica = match Replica::open(self.config.sequencer.clone()) {
            Ok(r) => r,
            Err(e @ ReplicaError::NotAReplica(..)) => {
                tracing::warn!("{e}");
                move_aside(&self.dir(), why)?;
                Replica::open(self.config.sequencer.clone())?
            }
            Err(e) => return Err(e.into()),
        };
        self.checked(replica, view, why)
    }

    /// Catches `replica` up to the L1's checkpoint; if what it holds disagrees with the L1, its
    /// directory is moved aside and a fresh replica is caught up instead.
    pub(crate) fn checked(
        &self,
        replica: Replica,
        view: &RollupView,
        why: &str,
    ) -> Result<Replica, NodeError> {
        if catch_up(self.l1.as_ref(), &replica, view)? {
            return Ok(replica);
        }
        let dir = self.dir();
        tracing::warn!(
            "the data in {} disagrees with the L1's proven batch {}",
            dir.display(),
            view.checkpoint.batch
        );
        drop(replica);
        move_aside(&dir, why)?;
        let replica = Replica::open(self.config.sequencer.clone())?;
        if !catch_up(self.l1.as_ref(), &replica, view)? {
            return Err(NodeError::L1Diverged);
        }
        Ok(replica)
    }
}
