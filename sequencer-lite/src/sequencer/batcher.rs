//! The batcher: durable operations cut into batches (capacity or deadline), planned, logged,
//! committed, and handed to subscribers; it runs at a lower priority than acknowledging.

use super::*;

/// Lowers the calling thread's priority to niceness `nice` (capped at 19) where threads have
/// their own (Linux). It never raises it: a thread already at `nice` or above (say, a node
/// started under `nice -n 15`) is left alone. A failure is logged and changes nothing else.
pub(super) fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread: `None` (0) names the calling thread.
        use rustix::process::{getpriority_process, setpriority_process};
        let nice = nice.min(19);
        let result = getpriority_process(None).and_then(|current| {
            if current < nice {
                setpriority_process(None, nice)
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            tracing::warn!(target: "keel::sequencer", nice, error = %e, "could not lower the batcher's priority");
        }
    }
}

impl Inner {
    /// Cuts a batch when `capacity` durable operations wait or the oldest has waited
    /// `deadline`; returns once the sequencer halts (a batch being cut is finished first).
    pub(super) fn batch_loop(&self) {
        lower_priority(self.config.batcher_nice);
        let cap = self.config.batch_capacity.max(1);
        let deadline = self.config.batch_deadline;
        loop {
            let cut: Vec<Waiting> = {
                let mut adm = lock(&self.adm);
                loop {
                    if adm.halted.is_some() {
                        // shut down, or a failed log write: cut nothing more (what waits is in
                        // the log, and the next start re-admits it)
                        return;
                    }
                    let durable = self.durable_seq.load(Ordering::Acquire);
                    let ready = adm.waiting.iter().take_while(|w| w.seq <= durable).count();
                    let age = adm.waiting.front().map(|w| w.since.elapsed());
                    if ready >= cap || (ready > 0 && age >= Some(deadline)) {
                        adm.in_flight = ready.min(cap);
                        break adm.waiting.drain(..ready.min(cap)).collect();
                    }
                    let wait = match age {
                        Some(a) if ready > 0 => deadline.saturating_sub(a),
                        _ => deadline,
                    };
                    adm = self
                        .wake
                        .wait_timeout(adm, wait.max(Duration::from_millis(1)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            };
            if let Err(e) = self.cut(cut) {
                self.halt(format!("batch failed: {e}"));
                return;
            }
        }
    }

    pub(super) fn cut(&self, cut: Vec<Waiting>) -> Result<(), SequencerError> {
        let start = Instant::now();
        let first = cut.first().map_or(0, |w| w.seq);
        let last = cut.last().map_or(0, |w| w.seq);
        let ops: Vec<BatchOp> = cut.into_iter().map(|w| w.op).collect();
        let planned = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state.plan_batch(self.config.epoch, ops)?
        };
        let batch = &planned.witness().batch;
        self.wal.log_batch(first, last, batch, None)?;
        let witness = self
            .state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .commit_batch(planned)?;
        let number = witness.batch.number;
        lock(&self.adm).committed(number, last, &witness.batch.ops);
        self.metrics.batch(witness.batch.ops.len(), start.elapsed());
        tracing::debug!(target: "keel::sequencer", batch = %number, ops = witness.batch.ops.len(), "batch committed");
        {
            let mut ring = lock(&self.witnesses);
            if ring.len() == WITNESS_RING {
                ring.pop_front();
            }
            ring.push_back(witness);
        }
        self.progress.send_modify(|p| p.last_batch = number);
        self.wake.notify_all();
        Ok(())
    }
}
