//! The L1 follower: the forced-inclusion queue, read in order and handed to the sequencer.
//!
//! ```text
//!  SettlementLayer::queue(next, 256) ──▶ sink(position, entry)  (Sequencer::submit_l1_blocking)
//!        ▲ poll                              │ Ok: next = position + 1
//!        └───────────────────────────────────┘ Err: logged, the same entry again next poll
//! ```
//!
//! The follower starts from the sequencer's own `next_l1` (what its log says it has
//! sequenced), so after a restart nothing is skipped; the sequencer ignores an entry it already
//! holds, so nothing is sequenced twice.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use keel_state::QueueEntry;

use crate::settlement::SettlementLayer;

/// Entries read per L1 call.
const PAGE: usize = 256;

/// A running follower. Dropping it stops the thread.
#[derive(Debug)]
pub struct QueueFollower {
    stop: Arc<AtomicBool>,
    next: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl QueueFollower {
    /// Follows the queue from position `from`, every `poll`, handing each entry to `sink` in
    /// order. An entry the sink refuses is offered again at the next poll.
    pub fn spawn<F>(
        l1: Arc<dyn SettlementLayer>,
        from: u64,
        poll: Duration,
        mut sink: F,
    ) -> std::io::Result<Self>
    where
        F: FnMut(u64, QueueEntry) -> Result<(), String> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(from));
        let (flag, cursor) = (Arc::clone(&stop), Arc::clone(&next));
        let handle = thread::Builder::new()
            .name("keel-l1-follower".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let at = cursor.load(Ordering::Acquire);
                    let page = match l1.queue(at, PAGE) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(target: "keel::follower", error = %e, "reading the L1 queue failed");
                            Vec::new()
                        }
                    };
                    let full = page.len() == PAGE;
                    for q in page {
                        if let Err(e) = sink(q.position, q.entry) {
                            tracing::warn!(target: "keel::follower", position = q.position, error = %e, "queue entry not taken; retrying");
                            break;
                        }
                        cursor.store(q.position + 1, Ordering::Release);
                    }
                    if !full {
                        thread::sleep(poll);
                    }
                }
            })?;
        Ok(Self {
            stop,
            next,
            handle: Some(handle),
        })
    }

    /// The next queue position the follower will hand over.
    pub fn next(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }
}

impl Drop for QueueFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
