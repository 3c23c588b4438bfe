//! The verifier threads: the signatures queued since a thread's last check verified as one
//! group; a failed group's submitters each check their own.

use super::*;

/// A signature for the verifier thread. The answer: `Some(valid)` when it is known, `None`
/// when the group failed and the submitter must check its own signature.
pub(super) struct VerifyJob {
    pub(super) sig: PreparedSignature,
    pub(super) done: oneshot::Sender<Option<bool>>,
}

/// `pk` if the signature is valid: the verifier's answer when it has one, else checked here.
pub(super) fn checked(
    pk: PublicKey,
    sig: &PreparedSignature,
    group: Option<bool>,
) -> Option<PublicKey> {
    group.unwrap_or_else(|| sig.verify().is_ok()).then_some(pk)
}

impl Sequencer {
    /// The sender's key and the signature with its challenge hashed, outside any lock (keys
    /// never change once an account exists). `None` if the account is unknown: the rules then
    /// report it.
    ///
    /// The limits that need no signature (halted, mempool full, the sender's share) are checked
    /// first, under the same lock: a refused operation, a flood from one account say, costs no
    /// hashing and no curve work. [`Sequencer::admit`] checks them again, authoritatively.
    pub(super) fn prepare(
        &self,
        op: &SignedOp,
    ) -> Result<Option<(PublicKey, PreparedSignature)>, SubmitError> {
        let account = {
            let adm = lock(&self.inner.adm);
            if let Err(e) = self.inner.limits(&adm, Some(op.from())) {
                self.inner.metrics.reject(e.reason().as_str());
                return Err(e);
            }
            self.inner.account(&adm, op.from())
        };
        Ok(account
            .ok()
            .flatten()
            .map(|a| (a.pk, a.pk.prepare(&op.message(), op.signature()))))
    }

    /// Queues the curve check for the verifier thread (`None` once it has stopped).
    pub(super) fn queue_check(
        &self,
        sig: PreparedSignature,
    ) -> Option<oneshot::Receiver<Option<bool>>> {
        let (done, rx) = oneshot::channel();
        lock(&self.inner.verify_tx)
            .as_ref()
            .and_then(|tx| tx.send(VerifyJob { sig, done }).ok())
            .map(|()| rx)
    }
}

impl Inner {
    /// Checks every signature queued since the last check as one batch and answers each
    /// submitter: valid, invalid (a group of one), or "check your own" (a failed group).
    pub(super) fn verify_loop(&self, rx: Receiver<VerifyJob>) {
        let max = self.config.verify_group_max.max(1);
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            group.extend(rx.try_iter().take(max - 1));
            let sigs: Vec<PreparedSignature> = group.iter().map(|j| j.sig).collect();
            let start = Instant::now();
            let valid = verify_batch(&sigs);
            self.metrics
                .verify_group(sigs.len(), valid, start.elapsed());
            let answer = (valid || sigs.len() == 1).then_some(valid);
            for j in group {
                let _ = j.done.send(answer);
            }
        }
    }
}
