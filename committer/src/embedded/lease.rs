//! The lease: a claim by a registered standby once the holder is silent past the failover
//! timeout opens a new epoch.

use super::*;

impl EmbeddedL1 {
    pub(super) fn claim_lease(&self, t: &mut Tx<'_>, signer: &PublicKey) -> Result<(), L1Error> {
        t.running()?;
        let m = &t.meta;
        if !m.sequencers.contains(signer) {
            return Err(Rejection::NotRegistered.into());
        }
        if *signer == m.lease.sequencer {
            return Err(Rejection::AlreadyLeaseHolder.into());
        }
        let claimable_at_ms = m
            .lease
            .claimable_at_ms(self.genesis.deadlines.failover_timeout);
        let now = m.head.time_ms;
        if now < claimable_at_ms {
            return Err(Rejection::LeaseNotExpired { claimable_at_ms }.into());
        }
        t.hand_lease(*signer);
        Ok(())
    }

    /// The holder's heartbeat: it restarts the failover clock as a batch would.
    pub(super) fn heartbeat(&self, t: &mut Tx<'_>, signer: &PublicKey) -> Result<(), L1Error> {
        t.running()?;
        if *signer != t.meta.lease.sequencer {
            return Err(Rejection::NotLeaseHolder.into());
        }
        t.meta.lease.last_batch_ms = t.meta.head.time_ms;
        Ok(())
    }
}
