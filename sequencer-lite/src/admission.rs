//! Admission: an operation is checked against the accounts as every operation accepted before it
//! leaves them, with `keel-state`'s own rules ([`keel_state::rules`]), without touching the tree.
//!
//! The view holds the latest admitted value of each account touched by an operation whose batch
//! is not committed yet; any other account is read from the committed state. When a batch
//! commits, entries last written by its operations are dropped (the state now holds the same
//! values). The tree, the roots and the witness are computed later, when a batch is cut.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use keel_state::{
    rules::{self, SigCheck, Write},
    Account, AccountIndex, BatchNumber, BatchOp, PublicKey, QueueEntry, StfError,
};

use crate::error::SubmitError;

/// An accepted operation waiting for a batch.
#[derive(Clone, Debug)]
pub(crate) struct Waiting {
    pub(crate) seq: u64,
    pub(crate) op: BatchOp,
    pub(crate) since: Instant,
}

/// The admission state, behind the sequencer's one lock.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Latest admitted account values not yet committed, with the seq that last wrote them.
    pub(crate) view: HashMap<AccountIndex, (Account, u64)>,
    /// Accepted operations not yet cut into a batch, in sequence order.
    pub(crate) waiting: VecDeque<Waiting>,
    /// Operations cut into the batch being executed (out of `waiting`, not yet committed).
    pub(crate) in_flight: usize,
    /// Operations per sending account not yet committed in a batch.
    pub(crate) per_account: HashMap<AccountIndex, usize>,
    /// The next sequence number.
    pub(crate) next_seq: u64,
    /// The next L1 queue index expected.
    pub(crate) next_l1: u64,
    /// `(last_seq, number)` of every committed batch, in order.
    pub(crate) batches: Vec<(u64, BatchNumber)>,
    /// Why the sequencer stopped accepting, if it did.
    pub(crate) halted: Option<String>,
}

/// The sender whose waiting count an operation uses (L2 operations only: L1 entries are not the
/// account holder's flood).
pub(crate) fn sender(op: &BatchOp) -> Option<AccountIndex> {
    match op {
        BatchOp::L2(s) => Some(s.from()),
        BatchOp::L1(_) => None,
    }
}

impl Admission {
    /// The account as admitted so far.
    pub(crate) fn account(
        &self,
        index: AccountIndex,
        committed: &impl Fn(AccountIndex) -> Result<Option<Account>, StfError>,
    ) -> Result<Option<Account>, StfError> {
        match self.view.get(&index) {
            Some((a, _)) => Ok(Some(*a)),
            None => committed(index),
        }
    }

    /// The writes `op` makes on top of everything admitted, or why it is refused. A rejected L1
    /// entry is not refused: it is consumed with no writes, as the STF does.
    pub(crate) fn check(
        &self,
        op: &BatchOp,
        depth: u8,
        committed: &impl Fn(AccountIndex) -> Result<Option<Account>, StfError>,
        verified: Option<&PublicKey>,
    ) -> Result<Vec<Write>, SubmitError> {
        let read = |i| self.account(i, committed);
        let sig = verified.map_or(SigCheck::Verify, SigCheck::VerifiedWith);
        match op {
            BatchOp::L2(s) => rules::signed(s, depth, &read, sig).map_err(SubmitError::Rule),
            BatchOp::L1(entry) => {
                let result = match entry {
                    QueueEntry::Deposit(d) => rules::deposit(d, depth, &read).map(|w| vec![w]),
                    QueueEntry::Forced(s) => rules::signed(s, depth, &read, SigCheck::Verify),
                };
                match result {
                    Ok(w) => Ok(w),
                    Err(e) if e.is_rule() => Ok(Vec::new()),
                    Err(e) => Err(SubmitError::Rule(e)),
                }
            }
        }
    }

    /// Records an admitted operation and its writes; returns its sequence number.
    pub(crate) fn record(&mut self, op: BatchOp, writes: Vec<Write>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        for w in writes {
            self.view.insert(w.index, (w.after, seq));
        }
        if let Some(from) = sender(&op) {
            *self.per_account.entry(from).or_default() += 1;
        }
        self.waiting.push_back(Waiting {
            seq,
            op,
            since: Instant::now(),
        });
        seq
    }

    /// Forgets what a committed batch covered: view entries last written at or before
    /// `last_seq`, and its operations' waiting counts.
    pub(crate) fn committed(&mut self, number: BatchNumber, last_seq: u64, ops: &[BatchOp]) {
        self.view.retain(|_, (_, s)| *s > last_seq);
        self.in_flight = 0;
        for from in ops.iter().filter_map(sender) {
            if let Some(n) = self.per_account.get_mut(&from) {
                *n -= 1;
                if *n == 0 {
                    self.per_account.remove(&from);
                }
            }
        }
        self.batches.push((last_seq, number));
    }

    /// Accepted operations not yet in a committed batch.
    pub(crate) fn uncommitted(&self) -> usize {
        self.waiting.len() + self.in_flight
    }

    /// The batch that holds operation `seq`, if it is in a committed batch.
    pub(crate) fn batch_of(&self, seq: u64) -> Option<BatchNumber> {
        let i = self.batches.partition_point(|(last, _)| *last < seq);
        self.batches.get(i).map(|(_, n)| *n)
    }
}
