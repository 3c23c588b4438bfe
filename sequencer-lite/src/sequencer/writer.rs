//! The group-commit writer: operations become durable in groups, one fsync each.

use super::*;

pub(super) struct WalMsg {
    pub(super) op: LogOp,
    pub(super) done: oneshot::Sender<Result<(), String>>,
}

impl Inner {
    pub(super) fn durable(
        &self,
        seq: u64,
        done: Result<Result<(), String>, oneshot::error::RecvError>,
    ) -> Result<u64, SubmitError> {
        match done {
            Ok(Ok(())) => Ok(seq),
            Ok(Err(e)) => Err(SubmitError::Halted(e)),
            Err(_) => Err(SubmitError::Halted("the log writer stopped".into())),
        }
    }

    pub(super) fn halt(&self, why: String) {
        tracing::error!(target: "keel::sequencer", "halting: {why}");
        lock(&self.adm).halted.get_or_insert(why);
        self.wake.notify_all();
    }

    /// The group-commit writer: takes every operation queued since its last write, logs them
    /// in one write, then acknowledges them all.
    pub(super) fn write_loop(&self, rx: Receiver<WalMsg>) {
        let max = self.config.group_max.max(1);
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            group.extend(rx.try_iter().take(max - 1));
            let ops: Vec<LogOp> = group.iter().map(|m| m.op.clone()).collect();
            let start = Instant::now();
            let result = self.wal.append(&ops);
            self.metrics.wal_group(ops.len(), start.elapsed());
            match result {
                Ok(()) => {
                    let last = ops.last().map_or(0, |o| o.seq);
                    self.durable_seq.store(last, Ordering::Release);
                    self.progress.send_modify(|p| p.durable_seq = last);
                    // take the lock so the batcher cannot miss the wake-up
                    drop(lock(&self.adm));
                    self.wake.notify_all();
                    for m in group {
                        let _ = m.done.send(Ok(()));
                    }
                }
                Err(e) => {
                    let why = format!("write-ahead log write failed: {e}");
                    self.halt(why.clone());
                    for m in group {
                        let _ = m.done.send(Err(why.clone()));
                    }
                }
            }
        }
    }
}
