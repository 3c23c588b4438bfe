//! Exit mode (past a deadline, or by the council) and exits: a Merkle proof against the last
//! proven root, once per account, never more than the escrow.

use super::*;

impl EmbeddedL1 {
    pub(super) fn activate_exit_mode(&self, t: &mut Tx<'_>) -> Result<(), L1Error> {
        t.running()?;
        let m = &t.meta;
        let d = &self.genesis.deadlines;
        let now = m.head.time_ms;
        let queue_due_ms = self
            .queued(m.checkpoint.queue_consumed)?
            .map(|q| q.enqueued_at_ms.saturating_add(ms(d.forced_inclusion)));
        let proof_due_ms = m.checkpoint.proven_at_ms.saturating_add(ms(d.proof));
        let reason = if queue_due_ms.is_some_and(|due| now >= due) {
            ExitReason::ForcedInclusion
        } else if now >= proof_due_ms {
            ExitReason::ProofDeadline
        } else {
            return Err(Rejection::ExitModeNotDue {
                queue_due_ms,
                proof_due_ms,
            }
            .into());
        };
        t.meta.exit_mode = Some(ExitMode {
            reason,
            since_ms: now,
        });
        t.events.push(Event::ExitModeActivated(reason));
        tracing::warn!(target: "keel::l1", %reason, "exit mode activated");
        Ok(())
    }

    pub(super) fn exit(
        &self,
        t: &mut Tx<'_>,
        signer: &PublicKey,
        account: &Account,
        proof: &MerkleProof,
        recipient: L1Address,
    ) -> Result<(), L1Error> {
        if t.meta.exit_mode.is_none() {
            return Err(Rejection::NotInExitMode.into());
        }
        if account.pk != *signer {
            return Err(Rejection::NotAccountOwner.into());
        }
        let index = proof.index;
        if self.exited(index)? {
            return Err(Rejection::AlreadyExited(index).into());
        }
        if proof.siblings.len() != usize::from(self.genesis.depth)
            || !proof.verify(account.leaf(), t.meta.checkpoint.root)
        {
            return Err(Rejection::WrongMerkleProof.into());
        }
        t.pay_out(recipient, account.balance)?;
        let mut v = recipient.0.to_vec();
        v.extend_from_slice(&account.balance.to_be_bytes());
        t.writes.put(key(b'x', &index.0.to_be_bytes()), v);
        t.events.push(Event::Exited {
            account: index,
            recipient,
            amount: account.balance,
        });
        Ok(())
    }
}
