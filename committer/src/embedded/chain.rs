//! Blocks: sealing one advances the chain's clock; the producer seals them on the wall clock.

use super::*;

impl EmbeddedL1 {
    /// Seals the open block at `time_ms` (the clock never goes back) and returns the new head.
    pub fn seal_block(&self, time_ms: u64) -> Result<Head, L1Error> {
        let mut meta = self.lock();
        let mut next = meta.clone();
        next.head = Head {
            height: meta.head.height + 1,
            time_ms: time_ms.max(meta.head.time_ms),
        };
        let mut w = WriteBatch::default();
        w.put(
            key(b'h', &next.head.height.to_be_bytes()),
            next.head.time_ms.to_be_bytes(),
        );
        w.put(b"meta", next.encode());
        write_synced(&self.db, w)?;
        *meta = next;
        Ok(meta.head)
    }

    /// Seals blocks every `block_time` on the wall clock until the handle is dropped.
    pub fn produce_blocks(self: &Arc<Self>, block_time: Duration) -> BlockProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let (l1, flag) = (Arc::clone(self), Arc::clone(&stop));
        let handle = thread::Builder::new()
            .name("keel-l1-blocks".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(block_time);
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, ms);
                    if let Err(e) = l1.seal_block(now) {
                        tracing::error!(target: "keel::l1", error = %e, "sealing a block failed; retrying");
                    }
                }
            })
            .expect("spawning the block producer");
        BlockProducer {
            stop,
            handle: Some(handle),
        }
    }
}

/// Seals the embedded L1's blocks on a thread; stops when dropped.
#[derive(Debug)]
pub struct BlockProducer {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Drop for BlockProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
