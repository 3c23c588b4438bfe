//! What the circuit needs to prove a batch: for each operation, every leaf it touched with the
//! leaf's siblings, before and after.
//!
//! Shape per operation (the circuit relies on it):
//!
//! | operation | outcome | `leaves` |
//! |---|---|---|
//! | transfer | applied | `[from update, to update]` (the second path is taken after the first write) |
//! | withdraw | applied | `[from update]` |
//! | deposit | applied | `[to update]` |
//! | queue entry | rejected | reads (`before == after`) of the in-range accounts it names, in the order above |
//!
//! [`BatchWitness::check`] recomputes every root from the paths; the STF's tests run it on every
//! witness they produce.

use crate::{
    account::{leaf_of, Account},
    batch::Batch,
    field::Fr,
    ids::AccountIndex,
    ops::BatchOp,
    stf::StfError,
    tree,
};

/// One leaf touched by an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafUpdate {
    /// Its position.
    pub index: AccountIndex,
    /// The account before (`None`: empty leaf).
    pub before: Option<Account>,
    /// The account after (equal to `before` for a read).
    pub after: Option<Account>,
    /// Siblings from the leaf level up; unchanged by the update.
    pub siblings: Vec<Fr>,
}

impl LeafUpdate {
    /// The root with the leaf as it was.
    pub fn root_before(&self) -> Fr {
        tree::root_from_path(self.index, leaf_of(self.before.as_ref()), &self.siblings)
    }

    /// The root with the leaf as it is after.
    pub fn root_after(&self) -> Fr {
        tree::root_from_path(self.index, leaf_of(self.after.as_ref()), &self.siblings)
    }
}

/// Whether an operation took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The operation changed the state.
    Applied,
    /// A queue entry that broke a rule: consumed with no effect.
    Rejected(StfError),
}

/// One operation's part of the witness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpWitness {
    /// The operation.
    pub op: BatchOp,
    /// Applied, or rejected (queue entries only).
    pub outcome: Outcome,
    /// State root before.
    pub root_before: Fr,
    /// State root after.
    pub root_after: Fr,
    /// Queue hash before.
    pub queue_before: Fr,
    /// Queue hash after (changes for queue entries only).
    pub queue_after: Fr,
    /// Touched leaves; see the module docs for the shape.
    pub leaves: Vec<LeafUpdate>,
}

/// The witness of a whole batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchWitness {
    /// Tree depth.
    pub depth: u8,
    /// The batch (header, operations).
    pub batch: Batch,
    /// One entry per operation, in order.
    pub ops: Vec<OpWitness>,
}

/// An inconsistency in a witness.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("witness of operation {op} is inconsistent: {what}")]
pub struct WitnessError {
    /// Operation position (`usize::MAX` for the batch header).
    pub op: usize,
    /// What does not add up.
    pub what: &'static str,
}

impl OpWitness {
    /// Checks that the leaf paths chain `root_before` to `root_after` and that the queue hash
    /// moved exactly for queue entries.
    pub fn check(&self, depth: u8) -> Result<(), &'static str> {
        let mut root = self.root_before;
        for leaf in &self.leaves {
            if leaf.siblings.len() != usize::from(depth) {
                return Err("path length differs from the depth");
            }
            if leaf.root_before() != root {
                return Err("leaf path does not match the running root");
            }
            root = leaf.root_after();
        }
        if root != self.root_after {
            return Err("paths do not end at root_after");
        }
        let expected_queue = match &self.op {
            BatchOp::L1(e) => e.chain(self.queue_before),
            BatchOp::L2(_) => self.queue_before,
        };
        if expected_queue != self.queue_after {
            return Err("queue hash does not follow the operation");
        }
        match (&self.outcome, &self.op) {
            (Outcome::Rejected(_), BatchOp::L2(_)) => {
                Err("an L2 operation cannot be rejected inside a batch")
            }
            (Outcome::Rejected(_), _) if self.root_before != self.root_after => {
                Err("a rejected entry changed the root")
            }
            _ => Ok(()),
        }
    }
}

impl BatchWitness {
    /// Checks every operation and that they chain from the batch's `prev_root`/`queue_before` to
    /// its `new_root`/`queue_after`.
    pub fn check(&self) -> Result<(), WitnessError> {
        let b = &self.batch;
        if self.ops.len() != b.ops.len() {
            return Err(WitnessError {
                op: usize::MAX,
                what: "operation count differs from the batch",
            });
        }
        let (mut root, mut queue) = (b.prev_root, b.queue_before);
        for (i, (w, op)) in self.ops.iter().zip(&b.ops).enumerate() {
            let err = |what| WitnessError { op: i, what };
            if &w.op != op {
                return Err(err("operation differs from the batch"));
            }
            if w.root_before != root || w.queue_before != queue {
                return Err(err("does not start where the previous operation ended"));
            }
            w.check(self.depth).map_err(err)?;
            root = w.root_after;
            queue = w.queue_after;
        }
        if root != b.new_root || queue != b.queue_after {
            return Err(WitnessError {
                op: usize::MAX,
                what: "operations do not end at the batch's new root and queue hash",
            });
        }
        Ok(())
    }
}
