//! The proving worker: batches in order from a sequencer, each re-executed on a shadow state for
//! its witness, the worker's share of them proven, each proof handed to a sink.
//!
//! ```text
//!  Upstream::shadow ── the L1's proven state, rebuilt from L1 data ──▶ shadow (State<MemStore>)
//!  Upstream::subscribe(next) ──▶ batch n ──▶ shadow.apply_batch (the STF) ──▶ witness
//!        shard owns n? ──▶ prove ──▶ ProofSink::deliver ── accepted ──▶ next batch
//!                                                        ├─ retry ─────▶ again after a wait
//!                                                        ├─ refused ───▶ rebuild the shadow
//!                                                        └─ invalid ───▶ stop: wrong keys
//!  stream lost ──▶ resubscribe from the shadow's last batch, which must come back unchanged
//!  a batch that does not apply (another history: a failover) ──▶ rebuild the shadow
//! ```
//!
//! The worker trusts no sequencer's witness: it computes its own from L1 data and the streamed
//! operations, so a prover needs only the L1 and a batch stream. It is the same loop whether the
//! batches come from a sequencer in the same process (`keel sequencer`) or over HTTP
//! (`keel prover run`), and whether the proofs go to a committer in process or over HTTP.
//!
//! **Shards.** A farm of `P` provers each takes the batches `n` with `(n - 1) mod P = i`
//! ([`Shard`]); every prover still applies every batch (the STF costs far less than a proof),
//! and the committer posts the proofs in order whichever prover made them.

use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use keel_state::{Batch, BatchNumber, BatchWitness, MemStore, State};

use crate::{BatchProof, ProveError, Timings};

/// What the worker proves with. A batch is laid out on the worker's thread and proven on a
/// proving thread, so that with [`WorkerConfig::pipeline`] the next batches are applied and laid
/// out while a proof runs: with the proof on a GPU, the CPU's part of the next batch (the STF,
/// the circuit, its synthesis) no longer waits for it.
pub trait Prover: Sync {
    /// A batch laid out for its proof.
    type Work: Send;
    /// Lays out the batch of `witness`: the CPU's part, before the proof.
    fn lay_out(&self, witness: &BatchWitness) -> Result<Self::Work, ProveError>;
    /// Proves a laid-out batch.
    fn prove(&self, work: Self::Work) -> Result<(BatchProof, Timings), ProveError>;
}

impl Prover for crate::BatchProver {
    type Work = crate::prove::LaidOut;

    fn lay_out(&self, witness: &BatchWitness) -> Result<Self::Work, ProveError> {
        crate::BatchProver::lay_out(self, witness)
    }

    fn prove(&self, work: Self::Work) -> Result<(BatchProof, Timings), ProveError> {
        self.prove_laid_out(work, |_| {})
    }
}

/// A function from a witness to its proof: a prover that lays out nothing apart.
impl<F> Prover for F
where
    F: Fn(&BatchWitness) -> Result<(BatchProof, Timings), ProveError> + Sync,
{
    type Work = BatchWitness;

    fn lay_out(&self, witness: &BatchWitness) -> Result<BatchWitness, ProveError> {
        Ok(witness.clone())
    }

    fn prove(&self, witness: BatchWitness) -> Result<(BatchProof, Timings), ProveError> {
        self(&witness)
    }
}

/// How long the worker waits for a batch before it looks at its stop flag again.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);
/// First wait after a failure (the upstream unreachable, a proof not delivered); it doubles up
/// to [`DEFAULT_RETRY_MAX`].
pub const DEFAULT_RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest wait between retries: after a failover, a proof waiting for a committer that may
/// post it is handed over at most this long after the new primary's claim.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(2);

/// Which batches a prover of a farm proves: `n` with `(n - 1) mod count = index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This prover's place, `0..count`.
    pub index: u32,
    /// Provers in the farm.
    pub count: u32,
}

impl Shard {
    /// Every batch: a prover alone.
    pub const ALL: Self = Self { index: 0, count: 1 };

    /// Whether batch `n` is this shard's.
    pub fn owns(&self, n: BatchNumber) -> bool {
        n.0 >= 1 && (n.0 - 1) % u64::from(self.count) == u64::from(self.index)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `i/P`: the `i`-th (from 0) of `P` provers.
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, p) = s
            .split_once('/')
            .ok_or_else(|| format!("a shard is i/P (the i-th of P provers, from 0), not {s:?}"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|e| format!("shard index {i:?}: {e}"))?;
        let count: u32 = p
            .trim()
            .parse()
            .map_err(|e| format!("shard count {p:?}: {e}"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count"
            ));
        }
        Ok(Self { index, count })
    }
}

/// An upstream implementation's own error, kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the upstream failed the worker; it recovers from each (rebuilds, subscribes again).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The state could not be rebuilt from L1 data.
    #[error("{0}")]
    Shadow(#[source] BoxError),
    /// No sequencer would stream: each one tried, and why it did not.
    #[error("no sequencer streams ({})", tried(.0))]
    NoStream(Vec<(String, BoxError)>),
    /// The feed's source ended it.
    #[error("{0} ended the stream")]
    Ended(String),
    /// The feed failed.
    #[error("{from}: {source}")]
    Feed {
        /// Where it came from.
        from: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

fn tried(t: &[(String, BoxError)]) -> String {
    t.iter()
        .map(|(from, e)| format!("{from}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Batches from a sequencer, in order.
pub trait BatchFeed {
    /// The next batch; `Ok(None)` if none came within `wait`; `Err` once the feed is lost (the
    /// worker subscribes again).
    fn next(&mut self, wait: Duration) -> Result<Option<Batch>, UpstreamError>;
}

/// Where the worker's state and batches come from.
pub trait Upstream {
    /// Its batch feed.
    type Feed: BatchFeed;
    /// The state at the L1's proven checkpoint, rebuilt from L1 data.
    fn shadow(&mut self) -> Result<State<MemStore>, UpstreamError>;
    /// Batches from `from` on, in order, from the sequencer that sequences now.
    fn subscribe(&mut self, from: BatchNumber) -> Result<Self::Feed, UpstreamError>;
}

/// What a sink did with a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Taken (held for posting, or settled already): on to the next batch.
    Accepted,
    /// Not taken now (no committer reachable, none holding the lease): try again.
    Retry(String),
    /// Refused for good: the batch is not what the committer's sequencer logged (the stream came
    /// from another history). The worker rebuilds its shadow state.
    Refused(String),
    /// The proof does not verify with the verifier the L1 pins: this prover's keys are not the
    /// deployment's (another capacity, k or SRS). Proving again cannot help; the worker stops.
    Invalid(String),
}

/// Where proofs go.
pub trait ProofSink {
    /// Hands over `batch` (as streamed) and its proof.
    fn deliver(&mut self, batch: &Batch, proof: &BatchProof) -> Delivery;

    /// Called while no batch arrives: a sink that keeps delivered proofs until they settle (and
    /// hands them over again when the committer that took them can no longer post) does that
    /// here.
    fn idle(&mut self) {}
}

/// What the worker reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The shadow state was rebuilt at the L1's proven batch.
    Synced(BatchNumber),
    /// Following the upstream's batches from this number.
    Following(BatchNumber),
    /// A batch was applied to the shadow; the bool: this shard proves it.
    Applied(BatchNumber, bool),
    /// A batch was proven.
    Proved(BatchNumber, &'a Timings),
    /// A proof was delivered.
    Delivered(BatchNumber),
    /// Something went wrong and the worker recovers: lost, diverged, refused, unreachable.
    Trouble(&'a str),
}

/// The worker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Which batches it proves.
    pub shard: Shard,
    /// How often it looks at its stop flag while waiting for a batch.
    pub poll: Duration,
    /// First retry wait.
    pub retry_min: Duration,
    /// Longest retry wait.
    pub retry_max: Duration,
    /// Whether the next batches are applied and laid out while a proof runs (on a proving
    /// thread); otherwise each batch is laid out, proven and delivered before the next is read.
    pub pipeline: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            shard: Shard::ALL,
            poll: DEFAULT_POLL,
            retry_min: DEFAULT_RETRY_MIN,
            retry_max: DEFAULT_RETRY_MAX,
            pipeline: true,
        }
    }
}

/// Why the worker stopped on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A proof failed: the prover is broken (a witness from the STF always proves).
    #[error("proving batch {batch} failed: {error}")]
    Prove {
        /// The batch.
        batch: BatchNumber,
        /// Why.
        error: ProveError,
    },
    /// A proof was refused as invalid.
    #[error("the proof of batch {batch} was refused as invalid: {why}\nHelp: this prover's keys are not the ones the L1 pins; prove with the deployment's capacity, k and SRS (the verifier file `keel prover keygen` wrote for `keel l1`)")]
    Invalid {
        /// The batch.
        batch: BatchNumber,
        /// The sink's words.
        why: String,
    },
}

/// What one pass of the inner loop ended with.
enum Pass {
    Stopped,
    /// Subscribe again from the shadow as it is.
    Resubscribe,
    /// Rebuild the shadow from the L1, then subscribe.
    Resync,
}

/// The worker's loop state: the shadow and the back-off.
struct Worker<'a, U, S, E> {
    upstream: &'a mut U,
    sink: &'a mut S,
    config: WorkerConfig,
    stop: &'a AtomicBool,
    on: E,
    backoff: Duration,
}

/// Runs the worker until `stop` turns true (`Ok`) or a proof fails (`Err`). `prover` lays out
/// and proves (normally a [`crate::BatchProver`]); `on` hears what happens.
pub fn run<P, U, S, E>(
    prover: &P,
    upstream: &mut U,
    sink: &mut S,
    config: WorkerConfig,
    stop: &AtomicBool,
    on: E,
) -> Result<(), WorkerError>
where
    P: Prover,
    U: Upstream,
    S: ProofSink,
    E: FnMut(Event<'_>),
{
    Worker {
        upstream,
        sink,
        config,
        stop,
        on,
        backoff: config.retry_min,
    }
    .run(prover)
}

/// A proof running on its proving thread, and its batch.
struct Pending<'s> {
    batch: Batch,
    proof: thread::ScopedJoinHandle<'s, Result<(BatchProof, Timings), ProveError>>,
}

impl<U, S, E> Worker<'_, U, S, E>
where
    U: Upstream,
    S: ProofSink,
    E: FnMut(Event<'_>),
{
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Reports `why` and waits the current back-off (doubling it); false if stopped meanwhile.
    fn trouble(&mut self, why: &str) -> bool {
        (self.on)(Event::Trouble(why));
        let until = std::time::Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.retry_max);
        while std::time::Instant::now() < until {
            if self.stopping() {
                return false;
            }
            thread::sleep(self.config.poll.min(until - std::time::Instant::now()));
        }
        !self.stopping()
    }

    fn run<P: Prover>(mut self, prover: &P) -> Result<(), WorkerError> {
        'sync: loop {
            if self.stopping() {
                return Ok(());
            }
            let mut shadow = match self.upstream.shadow() {
                Ok(s) => s,
                Err(e) => {
                    if !self.trouble(&format!("rebuilding the state from the L1: {e}")) {
                        return Ok(());
                    }
                    continue;
                }
            };
            (self.on)(Event::Synced(shadow.last_batch()));
            loop {
                match self.follow(prover, &mut shadow)? {
                    Pass::Stopped => return Ok(()),
                    Pass::Resubscribe => continue,
                    Pass::Resync => continue 'sync,
                }
            }
        }
    }

    /// Subscribes from the shadow's last batch (which must come back as the shadow has it, or
    /// the upstream follows another history) and works through the feed until it is lost.
    fn follow<P: Prover>(
        &mut self,
        prover: &P,
        shadow: &mut State<MemStore>,
    ) -> Result<Pass, WorkerError> {
        let last = shadow.last_batch();
        let from = if last.0 == 0 { BatchNumber(1) } else { last };
        let mut feed = match self.upstream.subscribe(from) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("subscribing from batch {from}: {e}");
                return Ok(self.then(&why, Pass::Resubscribe));
            }
        };
        (self.on)(Event::Following(from));
        // Every batch this shard owns and the shadow applied is delivered, or its proof is
        // pending, before the feed is subscribed again (which resumes after the shadow's last
        // batch). A proof still running when the worker stops or rebuilds its shadow is
        // waited for at the end of this scope and dropped.
        thread::scope(|scope| {
            let mut pending: Option<Pending<'_>> = None;
            loop {
                if self.stopping() {
                    return Ok(Pass::Stopped);
                }
                // while a proof runs, look at it often: it is delivered as soon as it ends
                let wait = match pending {
                    Some(_) => self.config.poll.min(Duration::from_millis(10)),
                    None => self.config.poll,
                };
                let batch = match feed.next(wait) {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        match &pending {
                            Some(p) if p.proof.is_finished() => {
                                if let Some(pass) = self.finish(pending.take())? {
                                    return Ok(pass);
                                }
                            }
                            Some(_) => {}
                            None => self.sink.idle(),
                        }
                        continue;
                    }
                    Err(e) => {
                        if let Some(pass) = self.finish(pending.take())? {
                            return Ok(pass);
                        }
                        let why = format!("the batch stream: {e}");
                        return Ok(self.then(&why, Pass::Resubscribe));
                    }
                };
                let last = shadow.last_batch();
                if batch.number <= last {
                    // the overlap of a new subscription: the upstream must hold what the
                    // shadow holds
                    let same = batch.number < last
                        || shadow.root().is_ok_and(|root| root == batch.new_root);
                    if same {
                        continue;
                    }
                    let why = format!(
                        "the upstream's batch {} is not the one applied here: another history",
                        batch.number
                    );
                    return Ok(self.then(&why, Pass::Resync));
                }
                let witness = match shadow.apply_batch(&batch) {
                    Ok(w) => w,
                    Err(e) => {
                        let why = format!("batch {} does not apply: {e}", batch.number);
                        return Ok(self.then(&why, Pass::Resync));
                    }
                };
                self.backoff = self.config.retry_min;
                let mine = self.config.shard.owns(batch.number);
                (self.on)(Event::Applied(batch.number, mine));
                if !mine {
                    continue;
                }
                let work = prover
                    .lay_out(&witness)
                    .map_err(|error| WorkerError::Prove {
                        batch: batch.number,
                        error,
                    })?;
                // the previous proof ran while this batch was applied and laid out
                if let Some(pass) = self.finish(pending.take())? {
                    return Ok(pass);
                }
                if self.config.pipeline {
                    pending = Some(Pending {
                        batch,
                        proof: scope.spawn(move || prover.prove(work)),
                    });
                } else {
                    let proven = prover.prove(work);
                    if let Some(pass) = self.delivered(&batch, proven)? {
                        return Ok(pass);
                    }
                }
            }
        })
    }

    /// Waits for the pending proof, if any, and delivers it. `Ok(None)`: nothing pending, or
    /// delivered.
    fn finish(&mut self, pending: Option<Pending<'_>>) -> Result<Option<Pass>, WorkerError> {
        let Some(Pending { batch, proof }) = pending else {
            return Ok(None);
        };
        let proven = proof.join().unwrap_or_else(|_| {
            Err(ProveError::Backend(
                "the proving thread panicked".to_owned(),
            ))
        });
        self.delivered(&batch, proven)
    }

    /// Reports a proof made and delivers it; a failed proof stops the worker.
    fn delivered(
        &mut self,
        batch: &Batch,
        proven: Result<(BatchProof, Timings), ProveError>,
    ) -> Result<Option<Pass>, WorkerError> {
        let (proof, timings) = proven.map_err(|error| WorkerError::Prove {
            batch: batch.number,
            error,
        })?;
        (self.on)(Event::Proved(batch.number, &timings));
        self.deliver(batch, &proof)
    }

    /// Hands the proof over, retrying while the sink says so. `Ok(None)`: delivered.
    fn deliver(&mut self, batch: &Batch, proof: &BatchProof) -> Result<Option<Pass>, WorkerError> {
        loop {
            match self.sink.deliver(batch, proof) {
                Delivery::Accepted => {
                    self.backoff = self.config.retry_min;
                    (self.on)(Event::Delivered(batch.number));
                    return Ok(None);
                }
                Delivery::Retry(why) => {
                    let why = format!("delivering batch {}: {why}", batch.number);
                    if !self.trouble(&why) {
                        return Ok(Some(Pass::Stopped));
                    }
                }
                Delivery::Refused(why) => {
                    let why = format!("batch {} was refused: {why}", batch.number);
                    return Ok(Some(self.then(&why, Pass::Resync)));
                }
                Delivery::Invalid(why) => {
                    return Err(WorkerError::Invalid {
                        batch: batch.number,
                        why,
                    })
                }
            }
        }
    }

    /// Reports `why`, waits the back-off, then goes on with `next` (or stops, if told to
    /// meanwhile).
    fn then(&mut self, why: &str, next: Pass) -> Pass {
        if self.trouble(why) {
            next
        } else {
            Pass::Stopped
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        cell::RefCell,
        collections::VecDeque,
        rc::Rc,
        sync::atomic::{AtomicBool, Ordering},
    };

    use keel_state::{
        test_utils::{deposit, transfer},
        BatchOp, Epoch,
    };

    use super::*;
    use crate::PublicInputs;

    const DEPTH: u8 = 3;

    /// Batches of one operation each: deposits into accounts 0..3, then `tail` transfers from
    /// account 0 to account `to` (so two histories that differ in `to` share their first three
    /// batches).
    fn history(tail: u32, to: u32) -> Vec<Batch> {
        let mut s = State::open(MemStore::new(), DEPTH).unwrap();
        let mut ops: Vec<BatchOp> = (0..3).map(|i| deposit(i, 100)).collect();
        ops.extend((0..tail).map(|nonce| transfer(0, to, 1, u64::from(nonce))));
        ops.into_iter()
            .map(|op| s.execute_batch(Epoch(1), vec![op]).unwrap().batch)
            .collect()
    }

    /// A fake upstream over real batches: the shadow is the given history replayed to the
    /// checkpoint; each subscription serves the next scripted history, cut after `cut` batches
    /// (the stream is then lost).
    struct Script {
        checkpoint: u64,
        proven: Vec<Batch>,
        subscriptions: VecDeque<(Vec<Batch>, Option<usize>)>,
        log: Rc<RefCell<Vec<String>>>,
    }

    struct Feed {
        batches: VecDeque<Batch>,
        cut: bool,
    }

    impl BatchFeed for Feed {
        fn next(&mut self, _: Duration) -> Result<Option<Batch>, UpstreamError> {
            match self.batches.pop_front() {
                Some(b) => Ok(Some(b)),
                None if self.cut => Err(UpstreamError::Ended("the script".into())),
                None => Ok(None),
            }
        }
    }

    impl Upstream for Script {
        type Feed = Feed;
        fn shadow(&mut self) -> Result<State<MemStore>, UpstreamError> {
            self.log
                .borrow_mut()
                .push(format!("shadow@{}", self.checkpoint));
            let mut s = State::open(MemStore::new(), DEPTH).unwrap();
            for b in &self.proven[..self.checkpoint as usize] {
                s.apply_batch(b).unwrap();
            }
            Ok(s)
        }
        fn subscribe(&mut self, from: BatchNumber) -> Result<Feed, UpstreamError> {
            self.log.borrow_mut().push(format!("subscribe@{from}"));
            let (history, cut) = self
                .subscriptions
                .pop_front()
                .ok_or(UpstreamError::NoStream(Vec::new()))?;
            let mut batches: VecDeque<Batch> =
                history.into_iter().filter(|b| b.number >= from).collect();
            if let Some(c) = cut {
                batches.truncate(c);
            }
            Ok(Feed {
                batches,
                cut: cut.is_some(),
            })
        }
    }

    /// Records deliveries; answers from a script (then accepts), and stops the worker once
    /// `until` is delivered.
    struct Sink<'a> {
        delivered: Vec<Batch>,
        answers: VecDeque<Delivery>,
        until: BatchNumber,
        stop: &'a AtomicBool,
    }

    impl ProofSink for Sink<'_> {
        fn deliver(&mut self, batch: &Batch, proof: &BatchProof) -> Delivery {
            assert_eq!(
                proof.public,
                PublicInputs::of(batch),
                "the proof is of this batch"
            );
            let answer = self.answers.pop_front().unwrap_or(Delivery::Accepted);
            if answer == Delivery::Accepted {
                self.delivered.push(batch.clone());
                if batch.number >= self.until {
                    self.stop.store(true, Ordering::Release);
                }
            }
            answer
        }
    }

    impl Script {
        /// An upstream with nothing proven that streams all of `h` once.
        fn serving(h: &[Batch]) -> Self {
            Script {
                checkpoint: 0,
                proven: h.to_vec(),
                subscriptions: vec![(h.to_vec(), None)].into(),
                log: Rc::default(),
            }
        }
    }

    fn fast(shard: Shard) -> WorkerConfig {
        WorkerConfig {
            shard,
            poll: Duration::from_millis(1),
            retry_min: Duration::from_millis(1),
            retry_max: Duration::from_millis(2),
            pipeline: true,
        }
    }

    /// A proof of the witness's batch (the witness is the one the STF gives for the streamed
    /// batch).
    fn fake_proof(w: &BatchWitness) -> Result<(BatchProof, Timings), ProveError> {
        let public = PublicInputs::of(&w.batch);
        Ok((
            BatchProof {
                public,
                proof: vec![],
            },
            Timings::default(),
        ))
    }

    /// Runs a worker, pipelined and then not; both must deliver the same batches after the
    /// same upstream calls. Returns the delivered batches and the upstream's log.
    fn work(
        checkpoint: u64,
        proven: Vec<Batch>,
        subscriptions: Vec<(Vec<Batch>, Option<usize>)>,
        answers: Vec<Delivery>,
        until: u64,
        shard: Shard,
    ) -> (Vec<Batch>, Vec<String>) {
        let mut runs = [true, false].map(|pipeline| {
            let stop = AtomicBool::new(false);
            let log = Rc::new(RefCell::new(Vec::new()));
            let mut up = Script {
                checkpoint,
                proven: proven.clone(),
                subscriptions: subscriptions.clone().into(),
                log: log.clone(),
            };
            let mut sink = Sink {
                delivered: Vec::new(),
                answers: answers.clone().into(),
                until: BatchNumber(until),
                stop: &stop,
            };
            let config = WorkerConfig {
                pipeline,
                ..fast(shard)
            };
            let mut troubles = 0;
            run(&fake_proof, &mut up, &mut sink, config, &stop, |e| {
                if let Event::Trouble(_) = e {
                    troubles += 1;
                    assert!(troubles < 50, "the worker is stuck");
                }
            })
            .unwrap();
            let log = log.borrow().clone();
            (sink.delivered, log)
        });
        assert_eq!(runs[0], runs[1], "pipelined and not");
        std::mem::take(&mut runs[0])
    }

    /// A prover whose proof of batch `n` (but the last) waits for batch `n + 1` to be laid out.
    struct Overlap {
        laid_out: std::sync::Mutex<u64>,
        next: std::sync::Condvar,
        last: u64,
        wait: Duration,
        overlapped: std::sync::Mutex<Vec<u64>>,
    }

    impl Prover for Overlap {
        type Work = BatchWitness;

        fn lay_out(&self, witness: &BatchWitness) -> Result<BatchWitness, ProveError> {
            *self.laid_out.lock().unwrap() = witness.batch.number.0;
            self.next.notify_all();
            Ok(witness.clone())
        }

        fn prove(&self, witness: BatchWitness) -> Result<(BatchProof, Timings), ProveError> {
            let n = witness.batch.number.0;
            if n < self.last {
                let laid_out = self.laid_out.lock().unwrap();
                let (laid_out, waited) = self
                    .next
                    .wait_timeout_while(laid_out, self.wait, |l| *l <= n)
                    .unwrap();
                drop(laid_out);
                if !waited.timed_out() {
                    self.overlapped.lock().unwrap().push(n);
                }
            }
            fake_proof(&witness)
        }
    }

    #[test]
    fn pipelined_the_next_batch_is_laid_out_while_a_proof_runs() {
        let h = history(3, 1);
        for (pipeline, wait) in [(true, Duration::from_secs(20)), (false, Duration::ZERO)] {
            let stop = AtomicBool::new(false);
            let mut up = Script::serving(&h);
            let mut sink = Sink {
                delivered: Vec::new(),
                answers: VecDeque::new(),
                until: BatchNumber(6),
                stop: &stop,
            };
            let prover = Overlap {
                laid_out: Default::default(),
                next: Default::default(),
                last: 6,
                wait,
                overlapped: Default::default(),
            };
            let config = WorkerConfig {
                pipeline,
                ..fast(Shard::ALL)
            };
            let mut order = Vec::new();
            run(&prover, &mut up, &mut sink, config, &stop, |e| match e {
                Event::Applied(n, _) => order.push(format!("applied {n}")),
                Event::Delivered(n) => order.push(format!("delivered {n}")),
                _ => {}
            })
            .unwrap();
            assert_eq!(numbers(&sink.delivered), [1, 2, 3, 4, 5, 6]);
            let overlapped = prover.overlapped.into_inner().unwrap();
            if pipeline {
                // each proof but the last ended after the next batch was laid out
                assert_eq!(overlapped, [1, 2, 3, 4, 5]);
                assert_eq!(order[..3], ["applied 1", "applied 2", "delivered 1"]);
            } else {
                assert!(overlapped.is_empty());
                assert_eq!(order[..3], ["applied 1", "delivered 1", "applied 2"]);
            }
        }
    }

    fn numbers(b: &[Batch]) -> Vec<u64> {
        b.iter().map(|b| b.number.0).collect()
    }

    #[test]
    fn every_batch_after_the_checkpoint_is_proven_once_in_order() {
        let h = history(3, 1);
        let (got, log) = work(2, h.clone(), vec![(h.clone(), None)], vec![], 6, Shard::ALL);
        assert_eq!(got, h[2..].to_vec());
        assert_eq!(log, ["shadow@2", "subscribe@2"]);
        let (got, _) = work(0, h.clone(), vec![(h.clone(), None)], vec![], 6, Shard::ALL);
        assert_eq!(got, h);
    }

    #[test]
    fn a_lost_stream_is_resumed_without_gap_or_repeat() {
        let h = history(4, 1);
        let subs = vec![
            (h.clone(), Some(3)),
            (h.clone(), Some(2)),
            (h.clone(), None),
        ];
        let (got, log) = work(1, h.clone(), subs, vec![], 7, Shard::ALL);
        assert_eq!(numbers(&got), [2, 3, 4, 5, 6, 7]);
        assert_eq!(got, h[1..].to_vec());
        // the shadow is kept: each subscription starts at the last batch applied
        assert_eq!(
            log,
            ["shadow@1", "subscribe@1", "subscribe@3", "subscribe@4"]
        );
    }

    #[test]
    fn another_history_after_a_failover_rebuilds_the_shadow_from_the_l1() {
        let old = history(3, 1);
        let new = history(3, 2);
        assert_eq!(old[..3], new[..3]);
        assert_ne!(old[3], new[3]);
        // the L1 proved batch 3; the old primary streamed 4..=5 and died; the new one cut
        // other batches 4..=6
        let subs = vec![
            (old.clone(), Some(3)),
            (new.clone(), None),
            (new.clone(), None),
        ];
        let (got, log) = work(3, new.clone(), subs, vec![], 6, Shard::ALL);
        assert_eq!(numbers(&got), [4, 5, 4, 5, 6]);
        assert_eq!(got[..2], old[3..5]);
        assert_eq!(got[2..], new[3..]);
        assert_eq!(
            log,
            [
                "shadow@3",
                "subscribe@3",
                "subscribe@5",
                "shadow@3",
                "subscribe@3"
            ]
        );
    }

    #[test]
    fn shards_split_the_batches_and_together_prove_each_once() {
        let h = history(5, 1);
        let mut all = Vec::new();
        for (i, want) in [(0, vec![1, 4, 7]), (1, vec![2, 5, 8]), (2, vec![3, 6])] {
            let shard = Shard { index: i, count: 3 };
            let until = *want.last().unwrap();
            let (got, _) = work(0, h.clone(), vec![(h.clone(), None)], vec![], until, shard);
            assert_eq!(numbers(&got), want, "shard {shard}");
            all.extend(got);
        }
        all.sort_by_key(|b| b.number);
        assert_eq!(all, h);
    }

    #[test]
    fn a_retried_delivery_waits_and_a_refused_one_rebuilds_the_shadow() {
        let h = history(2, 1);
        let answers = vec![
            Delivery::Retry("no committer holds the lease".into()),
            Delivery::Retry("still none".into()),
            Delivery::Accepted,
            Delivery::Refused("not the sequencer's batch".into()),
        ];
        let subs = vec![(h.clone(), None), (h.clone(), None)];
        let (got, log) = work(2, h.clone(), subs, answers, 5, Shard::ALL);
        // batch 3 after two retries; batch 4 refused, then proven again from a new shadow
        assert_eq!(numbers(&got), [3, 3, 4, 5]);
        assert_eq!(log, ["shadow@2", "subscribe@2", "shadow@2", "subscribe@2"]);
    }

    #[test]
    fn a_proof_refused_as_invalid_stops_the_worker_with_help() {
        let h = history(1, 1);
        let stop = AtomicBool::new(false);
        let mut up = Script::serving(&h);
        let mut sink = Sink {
            delivered: Vec::new(),
            answers: vec![
                Delivery::Accepted,
                Delivery::Invalid("422 bad_proof".into()),
            ]
            .into(),
            until: BatchNumber(99),
            stop: &stop,
        };
        let e = run(
            &fake_proof,
            &mut up,
            &mut sink,
            fast(Shard::ALL),
            &stop,
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(&e, WorkerError::Invalid { batch, .. } if *batch == BatchNumber(2)),
            "{e}"
        );
        assert!(e.to_string().contains("Help:"), "{e}");
        assert_eq!(numbers(&sink.delivered), [1]);
    }

    #[test]
    fn a_shard_reads_as_i_of_p_and_refuses_the_impossible() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard { index: 1, count: 3 }.to_string(), "1/3");
        for bad in ["3/3", "0/0", "1", "a/2", "1/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let s = Shard { index: 0, count: 2 };
        assert!(s.owns(BatchNumber(1)) && !s.owns(BatchNumber(2)) && s.owns(BatchNumber(3)));
        assert!(!s.owns(BatchNumber(0)));
        assert!((1..10).all(|n| Shard::ALL.owns(BatchNumber(n))));
    }
}
