//! The durability levels past `accepted`: `replicated` on a registered standby's signed
//! acknowledgement for this epoch, `posted` and `proven` as the L1 reports them.

use super::*;

impl Sequencer {
    /// The standbys whose acknowledgements count: the rollup's other registered sequencers, as
    /// the node reads them from the L1. None by default, so a bare sequencer counts no
    /// acknowledgement and nothing it acknowledges reaches `replicated` by anyone's word.
    pub fn set_standbys(&self, keys: impl IntoIterator<Item = PublicKey>) {
        let keys: Vec<PublicKey> = keys.into_iter().collect();
        let mut s = self
            .inner
            .standbys
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if *s != keys {
            tracing::info!(target: "keel::sequencer", standbys = keys.len(), "registered standbys");
            *s = keys;
        }
    }

    /// Takes a standby's acknowledgement ([`crate::ack`]): a registered standby, this
    /// primary's epoch, a signature that verifies, and a batch logged here with that root;
    /// then the batch and every one before it are `replicated`. A refused one changes nothing.
    pub fn acknowledge(&self, ack: &Ack) -> Result<(), AckError> {
        let registered = self
            .inner
            .standbys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&ack.standby);
        if !registered {
            return Err(AckError::UnknownStandby(hex::encode(
                ack.standby.to_bytes(),
            )));
        }
        let current = self.inner.config.epoch;
        if ack.epoch != current {
            return Err(AckError::StaleEpoch {
                got: ack.epoch.0,
                current: current.0,
            });
        }
        ack.verify()?;
        match self.batch(ack.batch) {
            Ok(Some(b)) if b.new_root == ack.root => {
                self.mark_replicated(b.number);
                Ok(())
            }
            Ok(Some(b)) => Err(AckError::RootMismatch {
                batch: ack.batch.0,
                logged: keel_state::field::fr_to_hex(&b.new_root),
                got: keel_state::field::fr_to_hex(&ack.root),
            }),
            Ok(None) => Err(AckError::UnknownBatch(ack.batch.0)),
            Err(e) => Err(AckError::Store(e.to_string())),
        }
    }

    /// A standby holds batches up to `n` (called by the replication path).
    pub fn mark_replicated(&self, n: BatchNumber) {
        self.inner
            .progress
            .send_modify(|p| p.replicated = p.replicated.max(n));
    }

    /// Batches up to `n` are in L1 data (called by the committer).
    pub fn mark_posted(&self, n: BatchNumber) {
        self.inner
            .progress
            .send_modify(|p| p.posted = p.posted.max(n));
    }

    /// Batches up to `n` are proven on the L1 (called by the committer).
    pub fn mark_proven(&self, n: BatchNumber) {
        self.inner
            .progress
            .send_modify(|p| p.proven = p.proven.max(n));
    }
}
