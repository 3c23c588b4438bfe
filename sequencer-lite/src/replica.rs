//! A standby's live replica of the primary: the batch stream, checked with this sequencer's own
//! STF, kept durable in the same layout as a primary's data directory, so that taking over is
//! opening a [`Sequencer`](crate::Sequencer) on the same directory.
//!
//! ```text
//!  primary GET /v1/stream?from=n ─▶ follow(): frame ─▶ Replica::apply
//!       ▲                                   plan the batch's ops from our state (every rule,
//!       │                                   every signature) ─▶ header must be exactly the
//!       │                                   streamed one ─▶ log it (fsync) ─▶ commit state
//!       └── POST /v1/replicated {batch, root} ◀──┘   (the primary's ops reach `replicated`)
//! ```
//!
//! A batch that fails any check is **refused, not followed**: nothing is logged or committed,
//! no acknowledgement is sent, the reason is in [`ReplicaStatus::refused`] and the log, and the
//! follower leaves that primary (and comes back to it later, refusing again).
//!
//! When the follower (re)connects with batches already held, it asks for the stream from its
//! own last batch and checks that the primary's batch there is the one it holds: a primary whose
//! history differs (a fenced primary that kept sequencing, say) is [`ReplicaError::Diverged`].
//!
//! The replica logs each batch with the sequence numbers it would have had here and the next L1
//! queue index after it, so that a [`Sequencer`](crate::Sequencer) opened on the directory
//! continues numbering operations and serving the L1 queue where the replica stopped.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State as AxState,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use keel_state::{Batch, BatchError, BatchNumber, Fr, RocksStore, SecretKey, State};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{
    ack::Ack,
    client::{Client, ClientError},
    config::SequencerConfig,
    error::{SequencerError, SubmitError, WalError},
    sequencer::{lock, recover},
    wal::Wal,
};

/// What [`Replica::apply`] did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The next batch: checked, logged and committed.
    New,
    /// A batch held already, identical to the one held: nothing to do.
    Known,
}

/// Why a streamed batch was not applied. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The batch breaks a rule or claims a header its operations do not give: the primary is
    /// faulty or forged, and is not followed.
    #[error("invalid batch {number}: {reason}")]
    Invalid {
        /// The batch.
        number: BatchNumber,
        /// What is wrong with it.
        reason: String,
    },
    /// The primary's batch differs from the batch held here under the same number.
    #[error(
        "batch {0} from the primary differs from the batch {0} held here: the histories diverged"
    )]
    Diverged(BatchNumber),
    /// The stream skipped ahead.
    #[error("batch {got} does not follow the replica's last batch {last}")]
    Gap {
        /// The replica's last batch.
        last: BatchNumber,
        /// The streamed batch.
        got: BatchNumber,
    },
    /// The data directory holds operations accepted as a primary: it is not a replica's.
    #[error("{0} holds {1} operations accepted as a primary and not in a batch; it cannot be a standby's replica (move it aside)")]
    NotAReplica(String, usize),
    /// The replica's own storage failed.
    #[error(transparent)]
    Sequencer(#[from] SequencerError),
}

impl From<WalError> for ReplicaError {
    fn from(e: WalError) -> Self {
        Self::Sequencer(e.into())
    }
}

/// A standby's summary, as its `GET /v1/status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// Always `standby`.
    pub role: String,
    /// The last batch held.
    pub last_batch: u64,
    /// The state root after it (`0x`, big-endian hex).
    #[serde(with = "keel_state::wire::fr")]
    pub root: keel_state::Fr,
    /// The primary being followed, while connected.
    pub following: Option<String>,
    /// The last streamed batch refused, and why.
    pub refused: Option<String>,
}

struct Core {
    state: State<RocksStore>,
    /// The last operation sequence number logged.
    last_seq: u64,
    /// The next L1 queue index (entries consumed so far).
    next_l1: u64,
}

struct Inner {
    config: SequencerConfig,
    wal: Wal,
    core: Mutex<Core>,
    status: watch::Sender<ReplicaStatus>,
}

/// A standby's replica. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Replica {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("dir", &self.inner.config.dir)
            .finish()
    }
}

impl Replica {
    /// Opens (or creates) a replica in `config.dir`, recovering as a primary does. A directory
    /// holding operations accepted as a primary is refused ([`ReplicaError::NotAReplica`]).
    pub fn open(config: SequencerConfig) -> Result<Self, ReplicaError> {
        let (state, wal, rec) = recover(&config)?;
        if !rec.ops.is_empty() {
            return Err(ReplicaError::NotAReplica(
                config.dir.display().to_string(),
                rec.ops.len(),
            ));
        }
        let core = Core {
            last_seq: rec.batches.last().map_or(0, |b| b.0),
            next_l1: rec.next_l1,
            state,
        };
        let (status, _) = watch::channel(ReplicaStatus {
            role: "standby".into(),
            last_batch: core.state.last_batch().0,
            root: core.state.root().map_err(SequencerError::from)?,
            ..Default::default()
        });
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                wal,
                core: Mutex::new(core),
                status,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SequencerConfig {
        &self.inner.config
    }

    /// The last batch held.
    pub fn last_batch(&self) -> BatchNumber {
        lock(&self.inner.core).state.last_batch()
    }

    /// The state root after the last batch held.
    pub fn root(&self) -> Result<Fr, SequencerError> {
        Ok(lock(&self.inner.core).state.root()?)
    }

    /// The next L1 queue index: the entries the held batches consumed.
    pub fn next_l1(&self) -> u64 {
        lock(&self.inner.core).next_l1
    }

    /// The summary.
    pub fn status(&self) -> ReplicaStatus {
        self.inner.status.borrow().clone()
    }

    /// Watches the summary.
    pub fn watch(&self) -> watch::Receiver<ReplicaStatus> {
        self.inner.status.subscribe()
    }

    /// The held batch `n`.
    pub fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, SequencerError> {
        Ok(self.inner.wal.batch(n)?.map(|l| l.batch))
    }

    /// Checks `batch` with this replica's STF and, if it is exactly what its operations give
    /// from the replica's state, logs it (fsync'd) and commits it. Blocking (RocksDB writes).
    pub fn apply(&self, batch: &Batch) -> Result<Applied, ReplicaError> {
        let mut core = lock(&self.inner.core);
        let last = core.state.last_batch();
        if batch.number <= last {
            return match self.inner.wal.batch(batch.number)? {
                Some(held) if held.batch == *batch => Ok(Applied::Known),
                _ => Err(ReplicaError::Diverged(batch.number)),
            };
        }
        if last.next() != Some(batch.number) {
            return Err(ReplicaError::Gap {
                last,
                got: batch.number,
            });
        }
        let invalid = |reason: String| ReplicaError::Invalid {
            number: batch.number,
            reason,
        };
        let capacity = self.inner.config.batch_capacity;
        if batch.ops.len() > capacity {
            return Err(invalid(format!(
                "{} operations, over the circuit's capacity {capacity}",
                batch.ops.len()
            )));
        }
        let planned = match core.state.plan_batch(batch.epoch, batch.ops.clone()) {
            Ok(p) => p,
            Err(BatchError::Store(e)) => return Err(SequencerError::from(e).into()),
            Err(e) => return Err(invalid(e.to_string())),
        };
        let computed = &planned.witness().batch;
        if computed != batch {
            return Err(invalid(header_difference(computed, batch)));
        }
        let first = core.last_seq + 1;
        let last_seq = core.last_seq + batch.ops.len() as u64;
        let next_l1 = core.next_l1 + batch.queue_entries() as u64;
        self.inner
            .wal
            .log_batch(first, last_seq, batch, Some(next_l1))?;
        core.state
            .commit_batch(planned)
            .map_err(|e| SequencerError::Recovery(format!("committing a checked batch: {e}")))?;
        core.last_seq = last_seq;
        core.next_l1 = next_l1;
        let root = batch.new_root;
        self.inner.status.send_modify(|s| {
            s.last_batch = batch.number.0;
            s.root = root;
        });
        tracing::debug!(target: "keel::standby", batch = %batch.number, "replicated");
        Ok(Applied::New)
    }

    fn set_following(&self, peer: Option<&str>) {
        self.inner
            .status
            .send_modify(|s| s.following = peer.map(str::to_owned));
    }

    fn set_refused(&self, why: String) {
        self.inner.status.send_modify(|s| s.refused = Some(why));
    }
}

/// Which header field a streamed batch claims wrongly (the operations were valid).
fn header_difference(computed: &Batch, streamed: &Batch) -> String {
    let hex = keel_state::field::fr_to_hex;
    if computed.prev_root != streamed.prev_root {
        format!(
            "it starts from root {}, the replica is at {}",
            hex(&streamed.prev_root),
            hex(&computed.prev_root)
        )
    } else if computed.queue_before != streamed.queue_before {
        "it starts from another L1 queue hash".into()
    } else if computed.new_root != streamed.new_root {
        format!(
            "it claims new root {}, its operations give {}",
            hex(&streamed.new_root),
            hex(&computed.new_root)
        )
    } else if computed.queue_after != streamed.queue_after {
        "it claims another L1 queue hash after it".into()
    } else {
        "its header is not what its operations give".into()
    }
}

/// How one connection to a primary ended.
enum End {
    /// Stopped from outside.
    Stopped,
    /// The connection failed or the stream ended: try again (perhaps another peer).
    Lost(String),
    /// The primary sent something this replica refuses: leave it.
    Refused(ReplicaError),
}

/// Follows the first peer that streams, in order, until `stop` turns true: applies every batch
/// and acknowledges it to the peer it came from, signed with `key` (this standby's registered
/// sequencer key: [`crate::ack`]). A peer that fails or streams an invalid batch is left for the
/// next one after `retry`.
pub async fn follow(
    replica: Replica,
    peers: Vec<String>,
    key: SecretKey,
    mut stop: watch::Receiver<bool>,
    retry: Duration,
) {
    if peers.is_empty() {
        return;
    }
    let mut i = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let peer = &peers[i % peers.len()];
        let end = tokio::select! {
            end = follow_one(&replica, peer, &key) => end,
            _ = stop.wait_for(|s| *s) => End::Stopped,
        };
        replica.set_following(None);
        match end {
            End::Stopped => return,
            End::Lost(why) => {
                tracing::debug!(target: "keel::standby", %peer, %why, "not following");
            }
            End::Refused(e) => {
                let why = format!("from {peer}: {e}");
                tracing::error!(target: "keel::standby", "refused a streamed batch {why}");
                replica.set_refused(why);
            }
        }
        i += 1;
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn follow_one(replica: &Replica, peer: &str, key: &SecretKey) -> End {
    let client = Client::new(peer);
    let last = replica.last_batch();
    // from the last batch held, to check that the peer's history contains it
    let mut stream = match client.stream(last.0.max(1)).await {
        Ok(s) => s,
        Err(e) => return End::Lost(e.to_string()),
    };
    replica.set_following(Some(peer));
    tracing::info!(target: "keel::standby", %peer, from = last.0, "following");
    loop {
        let batch = match stream.next().await {
            Ok(Some(b)) => b,
            Ok(None) => return End::Lost("the stream ended".into()),
            Err(e @ (ClientError::Frame(_) | ClientError::Truncated)) => {
                return End::Refused(ReplicaError::Invalid {
                    number: replica.last_batch().next().unwrap_or(BatchNumber(0)),
                    reason: format!("not a batch: {e}"),
                })
            }
            Err(e) => return End::Lost(e.to_string()),
        };
        let r = replica.clone();
        let b = batch.clone();
        let applied = match tokio::task::spawn_blocking(move || r.apply(&b)).await {
            Ok(a) => a,
            Err(e) => return End::Lost(format!("the replica's writer failed: {e}")),
        };
        match applied {
            Ok(Applied::New) => {
                // in the epoch the primary announced (a batch it carried over from an earlier
                // epoch is acknowledged in its current one)
                let epoch = stream.epoch().unwrap_or(batch.epoch);
                let (k, number, root) = (key.clone(), batch.number, batch.new_root);
                let ack =
                    match tokio::task::spawn_blocking(move || Ack::sign(&k, number, root, epoch))
                        .await
                    {
                        Ok(a) => a,
                        Err(e) => return End::Lost(format!("signing an acknowledgement: {e}")),
                    };
                if let Err(e) = client.replicated(&ack).await {
                    tracing::warn!(target: "keel::standby", %peer, batch = batch.number.0, error = %e, "acknowledgement failed");
                }
            }
            Ok(Applied::Known) => {}
            Err(e @ ReplicaError::Sequencer(_)) => return End::Lost(e.to_string()),
            Err(e) => return End::Refused(e),
        }
    }
}

/// The standby's API: its status and `/metrics`, and on every route of the primary's API a
/// typed refusal (`503 not_primary`, naming the primary it follows), so that a client with an
/// endpoint list moves on to the primary. It reads the replica's summary only
/// ([`Replica::watch`]), so open connections never keep the replica's store open.
pub fn router(status: watch::Receiver<ReplicaStatus>) -> Router {
    Router::new()
        .route("/v1/status", get(standby_status))
        .route("/metrics", get(standby_metrics))
        .route("/v1/ops", post(not_primary))
        .route("/v1/ops/{seq}", get(not_primary))
        .route("/v1/accounts/{index}", get(not_primary))
        .route("/v1/batches/{number}", get(not_primary))
        .route("/v1/stream", get(not_primary))
        .route("/v1/replicated", post(not_primary))
        .route("/v1/openapi.json", get(crate::api::openapi_json))
        .with_state(status)
}

/// The standby's Prometheus text: what it holds, whether it follows a primary, whether it
/// refused one.
async fn standby_metrics(AxState(s): AxState<watch::Receiver<ReplicaStatus>>) -> Response {
    let st = s.borrow().clone();
    let gauges = [
        (
            "keel_standby_last_batch",
            "The last batch this standby holds.",
            st.last_batch,
        ),
        (
            "keel_standby_following",
            "1 while a primary's stream is followed.",
            u64::from(st.following.is_some()),
        ),
        (
            "keel_standby_refused",
            "1 once a streamed batch was refused (the primary is not followed).",
            u64::from(st.refused.is_some()),
        ),
    ];
    let mut out = String::new();
    for (name, help, v) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

async fn standby_status(
    AxState(s): AxState<watch::Receiver<ReplicaStatus>>,
) -> Json<ReplicaStatus> {
    Json(s.borrow().clone())
}

async fn not_primary(AxState(s): AxState<watch::Receiver<ReplicaStatus>>) -> Response {
    let following = s
        .borrow()
        .following
        .clone()
        .unwrap_or_else(|| "no one".into());
    crate::api::refuse(&SubmitError::NotPrimary(following)).into_response()
}
