//! Opening: the state brought up to the log (batches logged but not committed re-executed and
//! checked), the log's operations re-admitted in order, the threads started.

use super::*;

/// Opens the state and the log in `config.dir` and brings the state up to the log: batches
/// logged but not committed (a crash between the two writes) are re-executed and checked against
/// their logged headers. Shared by the primary and the standby's replica, which keep the same
/// layout.
pub(crate) fn recover(
    config: &SequencerConfig,
) -> Result<(State<RocksStore>, Wal, crate::wal::Recovered), SequencerError> {
    std::fs::create_dir_all(&config.dir)?;
    let store = RocksStore::open(config.dir.join("state"), RocksStoreOptions::default())?;
    let mut state = State::open(store, config.depth)?;
    let wal = Wal::open(&config.dir.join("wal"), config.fsync)?;
    let rec = wal.recover()?;

    let logged_last = rec.batches.last().map_or(BatchNumber(0), |b| b.1);
    for (i, (_, n)) in rec.batches.iter().enumerate() {
        if n.0 != i as u64 + 1 {
            return Err(SequencerError::Recovery(format!(
                "logged batches jump to {n} after {i}"
            )));
        }
    }
    if state.last_batch() > logged_last {
        return Err(SequencerError::Recovery(format!(
            "the state is at batch {} but the log ends at batch {logged_last}",
            state.last_batch()
        )));
    }
    let committed_last = state.last_batch();
    for (_, n) in rec.batches.iter().filter(|b| b.1 > committed_last) {
        let logged = wal
            .batch(*n)?
            .ok_or_else(|| SequencerError::Recovery(format!("batch {n} vanished")))?;
        let planned = state.plan_batch(logged.batch.epoch, logged.batch.ops.clone())?;
        if planned.witness().batch != logged.batch {
            return Err(SequencerError::Recovery(format!(
                "re-executing logged batch {n} gives another header"
            )));
        }
        state.commit_batch(planned)?;
        tracing::info!(target: "keel::sequencer", batch = %n, "recovered a logged batch");
    }
    Ok((state, wal, rec))
}

impl Sequencer {
    /// Opens the sequencer in `config.dir`, recovering from its log, and starts the writer and
    /// batcher threads.
    pub fn open(config: SequencerConfig) -> Result<Self, SequencerError> {
        let (state, wal, rec) = recover(&config)?;

        let mut adm = Admission {
            next_seq: rec
                .ops
                .last()
                .map(|o| o.0)
                .max(rec.batches.last().map(|b| b.0))
                .unwrap_or(0)
                + 1,
            next_l1: rec.next_l1,
            batches: rec.batches.clone(),
            ..Default::default()
        };
        let depth = state.depth();
        let committed = |i| state.account(i);
        let recovered_ops = rec.ops.len();
        for (seq, op) in rec.ops {
            let writes = adm.check(&op, depth, &committed, None).map_err(|e| {
                SequencerError::Recovery(format!("logged operation {seq} no longer applies: {e}"))
            })?;
            adm.next_seq = seq;
            adm.record(op, writes);
        }
        let durable = adm.next_seq - 1;
        let last_batch = state.last_batch();
        tracing::info!(target: "keel::sequencer", batch = %last_batch, waiting = recovered_ops, next_seq = adm.next_seq, "sequencer opened");

        let (wal_tx, wal_rx) = crossbeam_channel::unbounded();
        let (verify_tx, verify_rx) = crossbeam_channel::unbounded();
        let (progress, _) = watch::channel(Progress {
            durable_seq: durable,
            last_batch,
            ..Default::default()
        });
        let inner = Arc::new(Inner {
            config,
            state: RwLock::new(state),
            wal,
            adm: Mutex::new(adm),
            wake: Condvar::new(),
            wal_tx: Mutex::new(Some(wal_tx)),
            verify_tx: Mutex::new(Some(verify_tx)),
            durable_seq: AtomicU64::new(durable),
            progress,
            witnesses: Mutex::new(VecDeque::new()),
            metrics: Metrics::default(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            standbys: RwLock::new(Vec::new()),
        });
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("keel-wal".into())
                .spawn(move || inner.write_loop(wal_rx))?
        };
        let verifiers = (0..inner.config.verify_threads.max(1))
            .map(|_| {
                let (inner, rx) = (inner.clone(), verify_rx.clone());
                std::thread::Builder::new()
                    .name("keel-verify".into())
                    .spawn(move || inner.verify_loop(rx))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batcher = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("keel-batcher".into())
                .spawn(move || inner.batch_loop())?
        };
        lock(&inner.threads).extend([writer, batcher].into_iter().chain(verifiers));
        Ok(Self { inner })
    }
}
