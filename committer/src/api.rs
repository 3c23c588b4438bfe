//! The committer's own HTTP API: where provers in other processes hand in proven batches, and
//! [`CommitterClient`], what they hand them in with.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/batches` | `{"data": hex, "proof": hex}`: a proven batch (its canonical encoding and its halo2 proof); `200 {"batch", "result": "held" \| "already_settled", "epoch"}` once it is durably held for posting |
//! | `GET /v1/status` | what the committer holds, posted and settled, and whether its key holds the lease |
//!
//! An offered batch is checked before it is held, cheapest check first; a refusal is
//! `{"error": reason, "message": text}` and changes nothing:
//!
//! ```text
//!  body ── JSON? hex? a batch? ──────────────────── 400 bad_request | 400 bad_hex | 422 bad_data | 413
//!  L1   ── this key holds the lease? ───────────── 503 not_lease_holder (a prover tries the next committer)
//!       ── exit mode? settled already? ─────────── 409 exit_mode | 200 already_settled
//!  the paired sequencer logged this very batch? ── 409 not_sequenced | 503 sequencer_unavailable
//!  the proof verifies (the L1's own check)? ────── 422 bad_proof
//!  stamped with the lease's epoch, held (synced) ─ 200 held | 409 conflict | 503 halted
//! ```
//!
//! **Why the sequencer check.** A prover proves whatever the sequencer it follows streamed. After
//! a failover, it may hold a proof of a batch that the old primary cut and the new one never
//! had. Posting it would settle a history that the new primary's acknowledged operations are not
//! in. A committer therefore posts only the batches its own sequencer logged.
//!
//! **Why the epoch is stamped here.** The epoch is not a public input, so one proof serves any
//! epoch. Only the committer knows the epoch it posts in: a new primary re-posts the batches it
//! replicated from the old one under its own epoch.
//!
//! **Terms.** The API posts through a [`Committer`] only while its key holds the lease: one
//! *term* per epoch, with its own store (`epoch-N` under the configured directory), opened when
//! the L1 shows the key holding the lease in a new epoch and closed when the lease moves on. What
//! a closed term still held can never be posted (the L1 refuses a stale epoch); the provers'
//! [`Courier`] offers those proofs again to the new holder. A restart within an epoch reopens
//! that epoch's store and posts what it held, each batch once.
//!
//! Calls to the L1 and the proof check block, so each offer runs on a blocking thread.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, DefaultBodyLimit, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use keel_prover::{BatchProof, BatchVerifier, PublicInputs};
use keel_state::{Batch, BatchNumber, Decode, Encode, Epoch, SecretKey};
use serde::{Deserialize, Serialize};

use crate::{
    committer::{Committer, CommitterConfig, CommitterError, CommitterStatus, Offered},
    settlement::{RollupView, SettlementLayer},
};

/// The largest body `POST /v1/batches` reads (a batch and its proof, hex-encoded, fit many
/// times over).
pub const MAX_BODY: usize = 8 << 20;
/// How long a [`CommitterClient`] call may take (the committer verifies the proof first).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a [`CommitterClient`] waits for a connection before it tries the next endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The sequencer a committer posts for, as far as the committer needs it: the batches it logged.
pub trait SequencedBatches: Send + Sync {
    /// Batch `n` as the sequencer logged it; `Ok(None)` if it logged none; `Err` if it could not
    /// be asked.
    fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, String>;
}

/// `POST /v1/batches` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferBody {
    /// The batch's canonical encoding, hex (`0x` optional).
    pub data: String,
    /// Its halo2 proof, hex (`0x` optional).
    pub proof: String,
}

/// What happened to an offered batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferResult {
    /// Held durably until it is posted (or held already).
    Held,
    /// The L1 has settled this number already; nothing was kept.
    AlreadySettled,
}

/// `POST /v1/batches` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferAnswer {
    /// The batch's number.
    pub batch: u64,
    /// What happened to it.
    pub result: OfferResult,
    /// The epoch it will be posted in.
    pub epoch: u64,
}

/// `GET /v1/status` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The key the committer posts with, hex.
    pub key: String,
    /// Whether that key held the lease when the L1 was last read (`None`: the L1 did not answer).
    pub lease_holder: Option<bool>,
    /// The lease's epoch then.
    pub epoch: Option<u64>,
    /// The epoch of the open term (`None`: the key does not hold the lease, nothing is posted).
    pub term: Option<u64>,
    /// The L1's last proven batch, as the committer last read it.
    pub settled: u64,
    /// The last batch whose block is sealed.
    pub included: u64,
    /// Batches held, not yet settled.
    pub held: Vec<u64>,
    /// Batches posted in this term.
    pub posted: u64,
    /// Failed L1 calls retried since it opened.
    pub retries: u64,
    /// Why it stopped posting, if it did.
    pub halted: Option<String>,
}

/// A refusal's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable reason code.
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

/// Why an offer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The body is not the JSON the route takes.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is larger than [`MAX_BODY`].
    #[error("the body is over {MAX_BODY} bytes")]
    TooLarge,
    /// A field is not hex.
    #[error("{field} is not hex: {error}")]
    BadHex {
        /// `data` or `proof`.
        field: &'static str,
        /// Why.
        error: String,
    },
    /// The data is not a batch.
    #[error("the data is not a batch: {0}")]
    BadData(String),
    /// This committer's key does not hold the lease: another committer posts now.
    #[error("this committer's key does not hold the lease (epoch {epoch}): it cannot post batch {batch}")]
    NotLeaseHolder {
        /// The batch offered.
        batch: BatchNumber,
        /// The lease's epoch.
        epoch: u64,
    },
    /// The L1 is in exit mode: no batch is posted any more.
    #[error("the L1 is in exit mode ({0}): no batch can be posted")]
    ExitMode(String),
    /// The paired sequencer logged no such batch, or another one with this number.
    #[error("batch {batch} is not the one this committer's sequencer logged: {why}")]
    NotSequenced {
        /// The batch offered.
        batch: BatchNumber,
        /// What the sequencer holds instead.
        why: String,
    },
    /// The paired sequencer could not be asked.
    #[error("the sequencer could not be asked for batch {batch}: {why}")]
    SequencerUnavailable {
        /// The batch offered.
        batch: BatchNumber,
        /// Why.
        why: String,
    },
    /// The proof does not verify for the batch's public inputs.
    #[error("the proof of batch {batch} does not verify: {why}")]
    BadProof {
        /// The batch offered.
        batch: BatchNumber,
        /// The verifier's words.
        why: String,
    },
    /// Another batch with this number is held already.
    #[error("a different batch {0} is held already")]
    Conflict(BatchNumber),
    /// The committer stopped posting.
    #[error("the committer halted: {0}")]
    Halted(String),
    /// The L1 could not be read.
    #[error("the L1: {0}")]
    L1(String),
    /// The committer's store failed.
    #[error("the committer's store: {0}")]
    Store(String),
}

impl OfferError {
    /// The stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge => "too_large",
            Self::BadHex { .. } => "bad_hex",
            Self::BadData(_) => "bad_data",
            Self::NotLeaseHolder { .. } => "not_lease_holder",
            Self::ExitMode(_) => "exit_mode",
            Self::NotSequenced { .. } => "not_sequenced",
            Self::SequencerUnavailable { .. } => "sequencer_unavailable",
            Self::BadProof { .. } => "bad_proof",
            Self::Conflict(_) => "conflict",
            Self::Halted(_) => "halted",
            Self::L1(_) => "l1_unavailable",
            Self::Store(_) => "store",
        }
    }

    /// The HTTP status: 4xx for the sender's fault, 503 where another committer (or a later
    /// try) may succeed.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::BadHex { .. } => 400,
            Self::TooLarge => 413,
            Self::BadData(_) | Self::BadProof { .. } => 422,
            Self::ExitMode(_) | Self::NotSequenced { .. } | Self::Conflict(_) => 409,
            Self::NotLeaseHolder { .. }
            | Self::SequencerUnavailable { .. }
            | Self::Halted(_)
            | Self::L1(_) => 503,
            Self::Store(_) => 500,
        }
    }
}

fn refuse(e: &OfferError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = ErrorBody {
        error: e.reason().into(),
        message: e.to_string(),
    };
    (status, Json(body)).into_response()
}

/// A term: the committer of one epoch in which this key holds the lease.
struct Term {
    epoch: Epoch,
    committer: Committer,
}

/// What the API serves: the terms of a committer posting to `l1` with one sequencer's key, the
/// verifier the L1 pins, and that sequencer's log.
pub struct CommitterApi {
    config: CommitterConfig,
    l1: Arc<dyn SettlementLayer>,
    key: SecretKey,
    verifier: BatchVerifier,
    sequencer: Box<dyn SequencedBatches>,
    term: Mutex<Option<Term>>,
}

impl std::fmt::Debug for CommitterApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitterApi")
            .field("dir", &self.config.dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CommitterApi {
    /// The API of a committer that posts to `l1` with `key` (a registered sequencer's), for
    /// `sequencer`, checking proofs with `verifier` (the one the L1 pins). `config.dir` holds
    /// one store per term. Nothing is opened until [`CommitterApi::sync`] (or an offer) finds the
    /// key holding the lease.
    pub fn new(
        config: CommitterConfig,
        l1: Arc<dyn SettlementLayer>,
        key: SecretKey,
        verifier: BatchVerifier,
        sequencer: Box<dyn SequencedBatches>,
    ) -> Self {
        Self {
            config,
            l1,
            key,
            verifier,
            sequencer,
            term: Mutex::new(None),
        }
    }

    /// Opens a term when the L1 shows this key holding the lease in a new epoch, and closes the
    /// term when the lease has moved on. Call it periodically (`keel committer` does, every
    /// poll); offers call it too.
    pub fn sync(&self) -> Result<(), OfferError> {
        let view = self
            .l1
            .rollup()
            .map_err(|e| OfferError::L1(e.to_string()))?;
        self.sync_with(&view)
    }

    fn sync_with(&self, view: &RollupView) -> Result<(), OfferError> {
        let mine = view.lease.sequencer == self.key.public_key() && view.exit_mode.is_none();
        let mut term = lock(&self.term);
        match term.as_ref() {
            Some(t) if mine && t.epoch == view.lease.epoch => return Ok(()),
            Some(t) => {
                tracing::info!(target: "keel::committer", epoch = t.epoch.0, "term over: the lease moved on");
                // dropping it stops its poster; what it held stays in its store
                *term = None;
            }
            None => {}
        }
        if !mine {
            return Ok(());
        }
        let epoch = view.lease.epoch;
        let mut config = self.config.clone();
        config.dir = self.config.dir.join(format!("epoch-{}", epoch.0));
        let committer = Committer::open(
            config,
            self.l1.clone(),
            self.key.clone(),
            Box::new(|n| tracing::info!(target: "keel::committer", batch = n.0, "batch proven on the L1")),
        )
        .map_err(|e| OfferError::Store(e.to_string()))?;
        tracing::info!(target: "keel::committer", epoch = epoch.0, "term opened: this key holds the lease");
        *term = Some(Term { epoch, committer });
        Ok(())
    }

    /// Checks an offered batch and holds it for posting (blocking: it reads the L1, asks the
    /// sequencer and verifies the proof). Refused offers change nothing.
    pub fn offer(&self, data: &[u8], proof: Vec<u8>) -> Result<OfferAnswer, OfferError> {
        let mut batch = Batch::decode(data).map_err(|e| OfferError::BadData(e.to_string()))?;
        let n = batch.number;
        let view = self
            .l1
            .rollup()
            .map_err(|e| OfferError::L1(e.to_string()))?;
        let epoch = view.lease.epoch;
        self.sync_with(&view)?;
        if let Some(x) = &view.exit_mode {
            return Err(OfferError::ExitMode(x.reason.to_string()));
        }
        if view.lease.sequencer != self.key.public_key() {
            return Err(OfferError::NotLeaseHolder {
                batch: n,
                epoch: epoch.0,
            });
        }
        let answer = |result| OfferAnswer {
            batch: n.0,
            result,
            epoch: epoch.0,
        };
        if n <= view.checkpoint.batch {
            return Ok(answer(OfferResult::AlreadySettled));
        }
        batch.epoch = epoch;
        match self.sequencer.batch(n) {
            Ok(Some(mut logged)) => {
                logged.epoch = epoch;
                if logged != batch {
                    return Err(OfferError::NotSequenced {
                        batch: n,
                        why: format!(
                            "it logged a batch {n} with root {}",
                            keel_state::field::fr_to_hex(&logged.new_root)
                        ),
                    });
                }
            }
            Ok(None) => {
                return Err(OfferError::NotSequenced {
                    batch: n,
                    why: "it logged no such batch".into(),
                })
            }
            Err(why) => return Err(OfferError::SequencerUnavailable { batch: n, why }),
        }
        let data = batch.encode();
        let term = lock(&self.term);
        let Some(term) = term.as_ref().filter(|t| t.epoch == epoch) else {
            return Err(OfferError::NotLeaseHolder {
                batch: n,
                epoch: epoch.0,
            });
        };
        if let Some(why) = term.committer.status().halted {
            return Err(OfferError::Halted(why));
        }
        if term.committer.held(n).as_deref() == Some(&data[..]) {
            // a proof of this very batch is held (and was checked): a re-proof changes nothing
            return Ok(answer(OfferResult::Held));
        }
        self.verifier
            .verify(&BatchProof {
                public: PublicInputs::of(&batch),
                proof: proof.clone(),
            })
            .map_err(|e| OfferError::BadProof {
                batch: n,
                why: e.to_string(),
            })?;
        match term.committer.offer(data, proof) {
            Ok(Offered::Held) => Ok(answer(OfferResult::Held)),
            Ok(Offered::AlreadySettled) => Ok(answer(OfferResult::AlreadySettled)),
            Err(CommitterError::Conflict(n)) => Err(OfferError::Conflict(n)),
            Err(CommitterError::BadData(e)) => Err(OfferError::BadData(e)),
            Err(CommitterError::L1(e)) => Err(OfferError::L1(e.to_string())),
            Err(e) => Err(OfferError::Store(e.to_string())),
        }
    }

    /// The open term's status, and the lease as the L1 says now.
    pub fn status(&self) -> StatusView {
        let lease = self.l1.rollup().map(|v| v.lease).ok();
        let me = self.key.public_key();
        let term = lock(&self.term);
        let (epoch, st) = match term.as_ref() {
            Some(t) => (Some(t.epoch.0), t.committer.status()),
            None => (None, CommitterStatus::default()),
        };
        let CommitterStatus {
            settled,
            included,
            held,
            posted,
            retries,
            halted,
        } = st;
        StatusView {
            key: hex::encode(me.encode()),
            lease_holder: lease.as_ref().map(|l| l.sequencer == me),
            epoch: lease.map(|l| l.epoch.0),
            term: epoch,
            settled: settled.0,
            included: included.0,
            held: held.iter().map(|n| n.0).collect(),
            posted,
            retries,
            halted,
        }
    }
}

fn parse(body: Result<Bytes, BytesRejection>) -> Result<(Vec<u8>, Vec<u8>), OfferError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OfferError::TooLarge
        } else {
            OfferError::BadRequest(r.body_text())
        }
    })?;
    let req: OfferBody =
        serde_json::from_slice(&body).map_err(|e| OfferError::BadRequest(e.to_string()))?;
    let unhex = |field, s: &str| {
        hex::decode(s.trim_start_matches("0x")).map_err(|e| OfferError::BadHex {
            field,
            error: e.to_string(),
        })
    };
    Ok((unhex("data", &req.data)?, unhex("proof", &req.proof)?))
}

/// The router.
pub fn router(api: Arc<CommitterApi>) -> Router {
    Router::new()
        .route("/v1/batches", post(offer))
        .route("/v1/status", get(status))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

async fn offer(
    State(api): State<Arc<CommitterApi>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (data, proof) = match parse(body) {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    let answer = tokio::task::spawn_blocking(move || api.offer(&data, proof)).await;
    match answer {
        Ok(Ok(a)) => {
            tracing::info!(target: "keel::committer", batch = a.batch, result = ?a.result, "proven batch offered");
            Json(a).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "keel::committer", reason = e.reason(), "offer refused: {e}");
            refuse(&e)
        }
        Err(e) => refuse(&OfferError::Store(format!(
            "the offer's thread failed: {e}"
        ))),
    }
}

async fn status(State(api): State<Arc<CommitterApi>>) -> Response {
    match tokio::task::spawn_blocking(move || api.status()).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => refuse(&OfferError::Store(e.to_string())),
    }
}

/// Why a [`CommitterClient`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No endpoint could be reached (connection refused, reset, timeout).
    #[error("request failed: {0}")]
    Http(String),
    /// A committer refused, with its reason.
    #[error("refused ({status}, {reason}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The stable reason code ([`OfferError::reason`]).
        reason: String,
        /// The committer's message.
        message: String,
    },
}

/// A blocking client of committers' APIs. Given several endpoints, an offer goes to each in turn
/// from the one that last took one, until one answers with anything but a transport failure or
/// a `503` (not the lease holder, its sequencer unreachable, halted): so a prover that serves a
/// primary and its standbys hands each proof to whichever of their committers posts now.
///
/// Call it from plain threads or `spawn_blocking`, never from inside an async task.
#[derive(Clone, Debug)]
pub struct CommitterClient {
    endpoints: Arc<[String]>,
    current: Arc<AtomicUsize>,
    http: reqwest::blocking::Client,
}

impl CommitterClient {
    /// A client of the committers at `endpoints` (`http://host:port`, at least one).
    pub fn new(endpoints: impl IntoIterator<Item = String>) -> Result<Self, ClientError> {
        let endpoints: Arc<[String]> = endpoints
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_owned())
            .collect();
        if endpoints.is_empty() {
            return Err(ClientError::Http("no committer endpoint was given".into()));
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CLIENT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Self {
            endpoints,
            current: Arc::new(AtomicUsize::new(0)),
            http,
        })
    }

    /// The endpoint that last answered.
    pub fn base(&self) -> &str {
        &self.endpoints[self.current.load(Ordering::Relaxed) % self.endpoints.len()]
    }

    fn call<T: serde::de::DeserializeOwned>(
        &self,
        make: impl Fn(&str) -> reqwest::blocking::RequestBuilder,
    ) -> Result<T, ClientError> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let at = (start + i) % n;
            let result = make(&self.endpoints[at])
                .send()
                .map_err(|e| ClientError::Http(format!("{}: {e}", self.endpoints[at])))
                .and_then(read);
            match result {
                Err(e @ (ClientError::Http(_) | ClientError::Refused { status: 503, .. })) => {
                    last = Some(e);
                }
                r => {
                    self.current.store(at, Ordering::Relaxed);
                    return r;
                }
            }
        }
        Err(last.expect("at least one endpoint was tried"))
    }

    /// Offers a proven batch (its encoding and proof) to the committer that posts now.
    pub fn offer(&self, data: &[u8], proof: &[u8]) -> Result<OfferAnswer, ClientError> {
        let body = OfferBody {
            data: hex::encode(data),
            proof: hex::encode(proof),
        };
        self.call(|base| self.http.post(format!("{base}/v1/batches")).json(&body))
    }

    /// The status of the committer at the current endpoint (or the next that answers).
    pub fn status(&self) -> Result<StatusView, ClientError> {
        self.call(|base| self.http.get(format!("{base}/v1/status")))
    }
}

/// How often a [`Courier`] reads the L1 to forget settled proofs and re-offer stranded ones.
pub const COURIER_CHECK: Duration = Duration::from_secs(1);

/// A proof a committer took, kept until the L1 settles its batch.
struct Pending {
    data: Vec<u8>,
    proof: Vec<u8>,
    epoch: u64,
}

/// A prover's side of the hand-over: proofs to whichever committer posts now, each kept until
/// the L1 settles its batch. A committer whose term ends (the lease moved on) can never post
/// what it took; so when the L1's lease is in a newer epoch than the one a kept proof was taken
/// in, the courier offers that proof again, and the new holder's committer checks it against its
/// own sequencer's log and stamps its epoch. A proof the new holder refuses for good (its
/// sequencer logged another batch) is dropped: the prover re-proves the new history itself.
pub struct Courier {
    client: CommitterClient,
    l1: Arc<dyn SettlementLayer>,
    pending: BTreeMap<u64, Pending>,
    checked: Option<Instant>,
}

impl std::fmt::Debug for Courier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier")
            .field("client", &self.client)
            .field("pending", &self.pending.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Courier {
    /// A courier over `client`, reading the lease and checkpoint from `l1`.
    pub fn new(client: CommitterClient, l1: Arc<dyn SettlementLayer>) -> Self {
        Self {
            client,
            l1,
            pending: BTreeMap::new(),
            checked: None,
        }
    }

    /// The client (for its current endpoint).
    pub fn client(&self) -> &CommitterClient {
        &self.client
    }

    /// Batches taken by a committer and not yet settled, as far as the courier knows.
    pub fn pending(&self) -> Vec<u64> {
        self.pending.keys().copied().collect()
    }

    /// Offers a proven batch; a batch a committer holds is kept until it is settled.
    pub fn offer(&mut self, data: &[u8], proof: &[u8]) -> Result<OfferAnswer, ClientError> {
        let a = self.client.offer(data, proof)?;
        if a.result == OfferResult::Held {
            self.pending.insert(
                a.batch,
                Pending {
                    data: data.to_vec(),
                    proof: proof.to_vec(),
                    epoch: a.epoch,
                },
            );
        }
        Ok(a)
    }

    /// At most once per [`COURIER_CHECK`]: reads the L1, forgets settled batches, and offers
    /// again every kept proof taken in an epoch that has ended. Returns how many were taken
    /// again; `Err` if the L1 or every committer was unreachable (the proofs stay kept).
    pub fn check(&mut self) -> Result<usize, String> {
        if self.pending.is_empty() || self.checked.is_some_and(|t| t.elapsed() < COURIER_CHECK) {
            return Ok(0);
        }
        self.checked = Some(Instant::now());
        let view = self.l1.rollup().map_err(|e| e.to_string())?;
        let settled = view.checkpoint.batch.0;
        self.pending.retain(|&n, _| n > settled);
        let stale: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.epoch != view.lease.epoch.0)
            .map(|(&n, _)| n)
            .collect();
        let mut again = 0;
        for n in stale {
            let p = &self.pending[&n];
            match self.client.offer(&p.data, &p.proof) {
                Ok(a) if a.result == OfferResult::Held => {
                    tracing::info!(target: "keel::prover", batch = n, epoch = a.epoch, to = self.client.base(), "proof offered again in a new epoch");
                    if let Some(p) = self.pending.get_mut(&n) {
                        p.epoch = a.epoch;
                    }
                    again += 1;
                }
                Ok(_) => {
                    self.pending.remove(&n);
                }
                Err(e @ (ClientError::Http(_) | ClientError::Refused { status: 503, .. })) => {
                    return Err(e.to_string());
                }
                Err(e) => {
                    tracing::warn!(target: "keel::prover", batch = n, error = %e, "a kept proof was refused in the new epoch; dropped");
                    self.pending.remove(&n);
                }
            }
        }
        Ok(again)
    }
}

fn read<T: serde::de::DeserializeOwned>(r: reqwest::blocking::Response) -> Result<T, ClientError> {
    let status = r.status();
    let text = r.text().map_err(|e| ClientError::Http(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| ClientError::Refused {
            status: status.as_u16(),
            reason: "bad_answer".into(),
            message: format!("{e}: {text}"),
        });
    }
    let (reason, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => (b.error, b.message),
        Err(_) => ("http".into(), text),
    };
    Err(ClientError::Refused {
        status: status.as_u16(),
        reason,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_reason_and_a_status_in_its_class() {
        let n = BatchNumber(3);
        let all = [
            OfferError::BadRequest("x".into()),
            OfferError::TooLarge,
            OfferError::BadHex {
                field: "data",
                error: "x".into(),
            },
            OfferError::BadData("x".into()),
            OfferError::NotLeaseHolder { batch: n, epoch: 2 },
            OfferError::ExitMode("x".into()),
            OfferError::NotSequenced {
                batch: n,
                why: "x".into(),
            },
            OfferError::SequencerUnavailable {
                batch: n,
                why: "x".into(),
            },
            OfferError::BadProof {
                batch: n,
                why: "x".into(),
            },
            OfferError::Conflict(n),
            OfferError::Halted("x".into()),
            OfferError::L1("x".into()),
            OfferError::Store("x".into()),
        ];
        let mut reasons = std::collections::HashSet::new();
        for e in &all {
            assert!(reasons.insert(e.reason()), "{} twice", e.reason());
            let s = e.status();
            // a prover moves on to the next committer on 503 only: a fault of the offer itself
            // must not look like one
            let retry_elsewhere = matches!(
                e,
                OfferError::NotLeaseHolder { .. }
                    | OfferError::SequencerUnavailable { .. }
                    | OfferError::Halted(_)
                    | OfferError::L1(_)
            );
            assert_eq!(s == 503, retry_elsewhere, "{e}");
            assert!((400..600).contains(&s), "{e}");
        }
    }

    #[test]
    fn an_offer_body_reads_hex_with_or_without_0x_and_refuses_the_rest() {
        let ok = Ok(Bytes::from_static(br#"{"data":"0x0102","proof":"ff"}"#));
        assert_eq!(parse(ok).unwrap(), (vec![1, 2], vec![0xff]));
        for (body, reason) in [
            (&br#"{"data":"0102"}"#[..], "bad_request"),
            (br#"{"data":"01","proof":"02","x":1}"#, "bad_request"),
            (br#"not json"#, "bad_request"),
            (br#"{"data":"zz","proof":"02"}"#, "bad_hex"),
            (br#"{"data":"01","proof":"0"}"#, "bad_hex"),
        ] {
            let e = parse(Ok(Bytes::from_static(body))).unwrap_err();
            assert_eq!(e.reason(), reason, "{}", String::from_utf8_lossy(body));
        }
    }
}
