//! The proving worker's two wirings ([`keel_prover::worker`]): batches from the sequencer in this
//! process or from sequencers over HTTP, the shadow state from the L1, and proofs to the
//! committer in this process or to committers over HTTP.

use std::{sync::Arc, time::Duration};

use keel_committer::{reconstruct, Courier, SettlementLayer};
use keel_prover::{
    worker::{BatchFeed, Delivery, ProofSink, Upstream, UpstreamError},
    BatchProof,
};
use keel_sequencer::{Client, Sequencer, StreamItem};
use keel_state::{Batch, BatchNumber, Encode, Epoch, MemStore, State};

/// The state at the L1's proven checkpoint, replayed from the L1's data.
fn shadow(l1: &dyn SettlementLayer) -> Result<State<MemStore>, UpstreamError> {
    reconstruct::replay(l1, MemStore::new(), |_, _| {})
        .map(|r| r.state)
        .map_err(|e| UpstreamError::Shadow(e.into()))
}

/// Batches from the sequencer in this process.
pub struct InProcess {
    /// The L1 the shadow state is rebuilt from.
    pub l1: Arc<dyn SettlementLayer>,
    /// The sequencer whose batches are proven.
    pub seq: Sequencer,
}

/// An in-process subscription.
pub struct LocalFeed(crossbeam_channel::Receiver<StreamItem>);

impl BatchFeed for LocalFeed {
    fn next(&mut self, wait: Duration) -> Result<Option<Batch>, UpstreamError> {
        match self.0.recv_timeout(wait) {
            Ok(item) => Ok(Some(item.batch)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(UpstreamError::Ended("the sequencer in this process".into()))
            }
        }
    }
}

impl Upstream for InProcess {
    type Feed = LocalFeed;
    fn shadow(&mut self) -> Result<State<MemStore>, UpstreamError> {
        shadow(self.l1.as_ref())
    }
    fn subscribe(&mut self, from: BatchNumber) -> Result<LocalFeed, UpstreamError> {
        self.seq
            .subscribe(from, 4)
            .map(LocalFeed)
            .map_err(|e| UpstreamError::Feed {
                from: "the sequencer in this process".into(),
                source: e.into(),
            })
    }
}

/// Batches from sequencers over HTTP: the first of them that streams (a standby answers
/// `503 not_primary`, so the stream comes from the primary).
pub struct Remote {
    /// The L1 the shadow state is rebuilt from.
    pub l1: Arc<dyn SettlementLayer>,
    /// The sequencers' API URLs, tried in order.
    pub sequencers: Vec<String>,
    /// The runtime the HTTP stream runs on.
    pub rt: tokio::runtime::Handle,
}

/// A stream over HTTP, read from a plain thread.
pub struct RemoteFeed {
    stream: keel_sequencer::BatchStream,
    from: String,
    rt: tokio::runtime::Handle,
}

impl BatchFeed for RemoteFeed {
    fn next(&mut self, wait: Duration) -> Result<Option<Batch>, UpstreamError> {
        // cancel-safe: a batch half read stays in the stream's buffer
        let stream = &mut self.stream;
        // the timer is made inside the runtime, which drives it
        match self
            .rt
            .block_on(async { tokio::time::timeout(wait, stream.next()).await })
        {
            Err(_) => Ok(None),
            Ok(Ok(Some(b))) => Ok(Some(b)),
            Ok(Ok(None)) => Err(UpstreamError::Ended(self.from.clone())),
            Ok(Err(e)) => Err(UpstreamError::Feed {
                from: self.from.clone(),
                source: e.into(),
            }),
        }
    }
}

impl Upstream for Remote {
    type Feed = RemoteFeed;
    fn shadow(&mut self) -> Result<State<MemStore>, UpstreamError> {
        shadow(self.l1.as_ref())
    }
    fn subscribe(&mut self, from: BatchNumber) -> Result<RemoteFeed, UpstreamError> {
        let mut why = Vec::new();
        for url in &self.sequencers {
            match self.rt.block_on(Client::new(url.clone()).stream(from.0)) {
                Ok(stream) => {
                    tracing::info!("following {url} from batch {from}");
                    return Ok(RemoteFeed {
                        stream,
                        from: url.clone(),
                        rt: self.rt.clone(),
                    });
                }
                Err(e) => why.push((url.clone(), e.into())),
            }
        }
        Err(UpstreamError::NoStream(why))
    }
}

/// Proofs to the committer in this process, over a channel to the node's loop, stamped with the
/// node's epoch (the epoch is not a public input: the proof holds for any).
pub struct ToNode {
    /// Where the batch's encoding and its proof go.
    pub out: crossbeam_channel::Sender<(Vec<u8>, Vec<u8>)>,
    /// The node's epoch, stamped on each batch.
    pub epoch: Epoch,
}

impl ProofSink for ToNode {
    fn deliver(&mut self, batch: &Batch, proof: &BatchProof) -> Delivery {
        let mut batch = batch.clone();
        batch.epoch = self.epoch;
        match self.out.send((batch.encode(), proof.proof.clone())) {
            Ok(()) => Delivery::Accepted,
            Err(_) => Delivery::Retry("the node is stopping".into()),
        }
    }
}

/// Proofs to committers over HTTP: whichever of them holds the lease takes each, and the
/// courier keeps it until the L1 settles it (offering it again after a failover).
pub struct ToCommitters(pub Courier);

impl ToCommitters {
    fn check(&mut self) {
        if let Err(e) = self.0.check() {
            tracing::warn!("re-offering kept proofs: {e}");
        }
    }
}

impl ProofSink for ToCommitters {
    fn deliver(&mut self, batch: &Batch, proof: &BatchProof) -> Delivery {
        self.check();
        match self.0.offer(&batch.encode(), &proof.proof) {
            Ok(a) => {
                tracing::info!(
                    "batch {} handed to {} ({:?}, epoch {})",
                    a.batch,
                    self.0.client().base(),
                    a.result,
                    a.epoch
                );
                Delivery::Accepted
            }
            Err(e) if e.transient() => Delivery::Retry(e.to_string()),
            Err(e) if e.bad_proof() => Delivery::Invalid(e.to_string()),
            Err(e) => Delivery::Refused(e.to_string()),
        }
    }

    fn idle(&mut self) {
        self.check();
    }
}
