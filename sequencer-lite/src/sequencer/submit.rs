//! Submission: the limits that need no signature, the signature checked outside any lock, the
//! rules against the admitted view, a sequence number, the log; and waiting for a level.

use super::*;

impl Sequencer {
    /// Admits a signed operation and returns once it is in the log (per the fsync policy).
    pub async fn submit(&self, op: SignedOp) -> Result<u64, SubmitError> {
        let verified = match self.prepare(&op)? {
            Some((pk, sig)) => {
                let group = match self.queue_check(sig) {
                    Some(rx) => rx.await.ok().flatten(),
                    None => None,
                };
                checked(pk, &sig, group)
            }
            None => None,
        };
        let (seq, done) = self.admit(BatchOp::L2(op), None, verified)?;
        self.inner.durable(seq, done.await)
    }

    /// [`Sequencer::submit`] for callers outside an async runtime.
    pub fn submit_blocking(&self, op: SignedOp) -> Result<u64, SubmitError> {
        let verified = self.prepare(&op)?.and_then(|(pk, sig)| {
            let group = self
                .queue_check(sig)
                .and_then(|rx| rx.blocking_recv().ok().flatten());
            checked(pk, &sig, group)
        });
        let (seq, done) = self.admit(BatchOp::L2(op), None, verified)?;
        self.inner.durable(seq, done.blocking_recv())
    }

    /// Sequences L1 queue entry `index` (from the L1 follower). Entries must come in queue
    /// order; one already sequenced is ignored (`Ok(None)`), so a follower may resend after a
    /// restart.
    pub fn submit_l1_blocking(
        &self,
        index: u64,
        entry: QueueEntry,
    ) -> Result<Option<u64>, SubmitError> {
        let next = lock(&self.inner.adm).next_l1;
        if index < next {
            return Ok(None);
        }
        let (seq, done) = self.admit(BatchOp::L1(entry), Some(index), None)?;
        self.inner.durable(seq, done.blocking_recv()).map(Some)
    }

    /// Waits until operation `seq` reaches `level`, for at most `timeout`.
    pub async fn wait_for(
        &self,
        seq: u64,
        level: Level,
        timeout: Duration,
    ) -> Result<OpStatus, SubmitError> {
        let mut rx = self.inner.progress.subscribe();
        let wait = async {
            loop {
                if let Some(s) = self.op_status(seq) {
                    if s.level >= level {
                        return Ok(s);
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(SubmitError::Halted("shut down".into()));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(SubmitError::WaitTimeout {
                seq,
                level: level.name(),
            }))
    }

    pub(super) fn admit(
        &self,
        op: BatchOp,
        l1_index: Option<u64>,
        verified: Option<PublicKey>,
    ) -> Result<(u64, oneshot::Receiver<Result<(), String>>), SubmitError> {
        let inner = &self.inner;
        let result = (|| {
            let mut adm = lock(&inner.adm);
            inner.limits(&adm, admission::sender(&op))?;
            if let Some(i) = l1_index {
                if i != adm.next_l1 {
                    return Err(SubmitError::QueueOrder {
                        expected: adm.next_l1,
                        got: i,
                    });
                }
            }
            let writes = {
                let state = inner.state.read().unwrap_or_else(|p| p.into_inner());
                let committed = |i| state.account(i);
                adm.check(&op, inner.config.depth, &committed, verified.as_ref())?
            };
            let seq = adm.record(op, writes);
            if l1_index.is_some() {
                adm.next_l1 += 1;
            }
            let (done, rx) = oneshot::channel();
            let msg = WalMsg {
                op: LogOp { seq, op, l1_index },
                done,
            };
            // sent under the lock, so the log receives operations in sequence order
            let sent = lock(&inner.wal_tx)
                .as_ref()
                .is_some_and(|tx| tx.send(msg).is_ok());
            if !sent {
                adm.halted = Some("shutting down".into());
                return Err(SubmitError::Halted("shutting down".into()));
            }
            Ok((seq, rx))
        })();
        match &result {
            Ok(_) => {
                inner.metrics.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => inner.metrics.reject(e.reason().as_str()),
        }
        result
    }
}
