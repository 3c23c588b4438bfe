//! The batch stream in process: subscribers get every batch from a number on, with its
//! witness while it is recent; logged batches by number.

use super::*;

impl Sequencer {
    /// Subscribes in process from batch `from` (1 for everything): batches arrive in order, with
    /// no gap and no repeat, over a channel of `buffer` items. A subscriber that lags holds up
    /// only its own feeder thread (which reads old batches back from the log), never the
    /// sequencer. Dropping the receiver ends the subscription.
    ///
    /// The feeder thread ends with the subscription or at [`Sequencer::shutdown`], which waits
    /// for it; after shutdown, subscribing is refused ([`SequencerError::ShutDown`]).
    pub fn subscribe(
        &self,
        from: BatchNumber,
        buffer: usize,
    ) -> Result<Receiver<StreamItem>, SequencerError> {
        let mut threads = lock(&self.inner.threads);
        if self.is_shut_down() {
            return Err(SequencerError::ShutDown);
        }
        let (tx, rx) = crossbeam_channel::bounded(buffer.max(1));
        let inner = self.inner.clone();
        let feeder = std::thread::Builder::new()
            .name("keel-subscriber".into())
            .spawn(move || inner.feed(from.0.max(1), tx))?;
        threads.retain(|t| !t.is_finished());
        threads.push(feeder);
        Ok(rx)
    }

    /// The logged batch `n`, if it exists.
    pub fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, SequencerError> {
        Ok(self.inner.wal.batch(n)?.map(|l| l.batch))
    }
}

impl Inner {
    /// Feeds an in-process subscriber from batch `next` on.
    pub(super) fn feed(&self, mut next: u64, tx: Sender<StreamItem>) {
        let mut rx = self.progress.subscribe();
        loop {
            let last = rx.borrow_and_update().last_batch.0;
            while next <= last {
                let batch = match self.wal.batch(BatchNumber(next)) {
                    Ok(Some(l)) => l.batch,
                    Ok(None) | Err(_) => return,
                };
                let witness = lock(&self.witnesses)
                    .iter()
                    .find(|w| w.batch.number.0 == next)
                    .cloned();
                // a subscriber that stops reading holds up only this thread, until shutdown
                let mut item = StreamItem { batch, witness };
                loop {
                    match tx.send_timeout(item, Duration::from_millis(100)) {
                        Ok(()) => break,
                        Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                            if self.shutdown.load(Ordering::Acquire) {
                                return;
                            }
                            item = back;
                        }
                        Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return,
                    }
                }
                next += 1;
            }
            // wait for the next batch, checking now and then whether the receiver left
            loop {
                if self.shutdown.load(Ordering::Acquire) {
                    return;
                }
                if rx.has_changed().unwrap_or(false) {
                    break;
                }
                // (a receiver dropped while no batch comes is noticed at the next batch)
                let adm = lock(&self.adm);
                let _ = self.wake.wait_timeout(adm, Duration::from_millis(100));
            }
        }
    }
}
