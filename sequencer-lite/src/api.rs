//! The HTTP JSON API over the sequencer core.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/ops` | `{"op": hex, "wait"?: level, "timeout_ms"?: n}`: submit a signed operation (its canonical encoding in hex); `202` with `{"seq", "level", "batch"}` once it reaches `wait` (default `accepted`: in the log) |
//! | `GET /v1/ops/{seq}` | an operation's level and batch |
//! | `GET /v1/accounts/{index}` | an account as admitted so far |
//! | `GET /v1/status` | epoch, depth, sequence numbers, waiting operations, last batch, root |
//! | `GET /v1/batches/{n}` | batch `n` as this sequencer logged it: its canonical encoding (`application/octet-stream`); `404 unknown_batch` if it has none |
//! | `GET /v1/stream?from=n` | the batch stream from batch `n`: frames of a 4-byte big-endian length and a batch's canonical encoding, live after the backlog; backpressure by TCP; the `keel-epoch` header names this primary's epoch |
//! | `POST /v1/replicated` | `{"batch", "root", "epoch", "standby", "signature"}`: a registered standby's signed acknowledgement that it holds batch `n` with that post-state root ([`crate::ack`]); its operations reach `replicated` |
//! | `GET /metrics` | Prometheus text |
//!
//! Every refusal is `{"error": reason, "message": text}` with a 4xx status for the client's fault
//! ([`SubmitError::status`]), and changes nothing.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{rejection::BytesRejection, DefaultBodyLimit, Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use keel_state::{AccountIndex, BatchNumber, Decode, Encode, SignedOp, StfError};
use serde::{Deserialize, Serialize};

use crate::{
    ack::{Ack, AckError},
    error::{Reason, SubmitError},
    sequencer::{Level, OpStatus, Sequencer},
};

/// Default wait for a level above `accepted`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /v1/ops` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The signed operation's canonical encoding, hex.
    pub op: String,
    /// The level to wait for before answering.
    #[serde(default)]
    pub wait: Level,
    /// How long to wait for it, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// An account as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Index.
    pub index: u32,
    /// Public key, hex.
    pub pk: String,
    /// Balance.
    pub balance: u64,
    /// Next nonce.
    pub nonce: u64,
}

/// A refusal's body: the same on every Keel server.
pub use keel_http::ErrorBody;

pub(crate) fn refuse(e: &SubmitError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, e.reason(), e.to_string())
}

/// The router.
pub fn router(seq: Sequencer) -> Router {
    let limit = seq.config().max_body;
    Router::new()
        .route("/v1/ops", post(submit))
        .route("/v1/ops/{seq}", get(op_status))
        .route("/v1/accounts/{index}", get(account))
        .route("/v1/status", get(status))
        .route("/v1/batches/{number}", get(batch))
        .route("/v1/stream", get(stream))
        .route("/v1/replicated", post(replicated))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(seq)
}

/// Serves the API on `listener` until the future is dropped, within the configured
/// [`keel_http::Limits`].
pub async fn serve(seq: Sequencer, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let limits = seq.config().http;
    keel_http::serve_forever(listener, router(seq), limits).await
}

async fn submit(State(s): State<Sequencer>, body: Result<Bytes, BytesRejection>) -> Response {
    let (op, req) = match parse(s.config().max_body, body) {
        Ok(p) => p,
        Err(e) => {
            // refused before admission, which counts everything it sees
            s.inner.metrics.reject(e.reason().as_str());
            return refuse(&e);
        }
    };
    match wait(&s, op, &req).await {
        Ok(st) => (StatusCode::ACCEPTED, Json(st)).into_response(),
        Err(e) => refuse(&e),
    }
}

fn parse(
    limit: usize,
    body: Result<Bytes, BytesRejection>,
) -> Result<(SignedOp, SubmitBody), SubmitError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SubmitError::TooLarge { limit }
        } else {
            SubmitError::BadRequest(r.body_text())
        }
    })?;
    let req: SubmitBody =
        serde_json::from_slice(&body).map_err(|e| SubmitError::BadRequest(e.to_string()))?;
    let bytes = hex::decode(req.op.trim_start_matches("0x"))
        .map_err(|e| SubmitError::BadHex(e.to_string()))?;
    let op = SignedOp::decode(&bytes).map_err(|e| SubmitError::BadEncoding(e.to_string()))?;
    Ok((op, req))
}

async fn wait(s: &Sequencer, op: SignedOp, req: &SubmitBody) -> Result<OpStatus, SubmitError> {
    let seq = s.submit(op).await?;
    if req.wait == Level::Accepted {
        return Ok(s.op_status(seq).unwrap_or(OpStatus {
            seq,
            level: Level::Accepted,
            batch: None,
        }));
    }
    let timeout = req
        .timeout_ms
        .map_or(DEFAULT_WAIT_TIMEOUT, Duration::from_millis);
    s.wait_for(seq, req.wait, timeout).await
}

async fn op_status(State(s): State<Sequencer>, Path(seq): Path<u64>) -> Response {
    match s.op_status(seq) {
        Some(st) => Json(st).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            Reason::UnknownOp,
            format!("no operation {seq} was accepted"),
        ),
    }
}

async fn account(State(s): State<Sequencer>, Path(index): Path<u32>) -> Response {
    match s.account(AccountIndex(index)) {
        Ok(Some(a)) => Json(AccountView {
            index,
            pk: hex::encode(a.pk.to_bytes()),
            balance: a.balance,
            nonce: a.nonce,
        })
        .into_response(),
        Ok(None) => {
            let mut r = refuse(&SubmitError::Rule(StfError::UnknownAccount(AccountIndex(
                index,
            ))));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
        Err(e) => refuse(&SubmitError::Rule(e)),
    }
}

async fn status(State(s): State<Sequencer>) -> Response {
    match s.status() {
        Ok(st) => Json(st).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::Store,
            e.to_string(),
        ),
    }
}

async fn metrics(State(s): State<Sequencer>) -> Response {
    let text = s.metrics_text();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Batch `n` as logged here: what a committer checks a proven batch against before posting it.
async fn batch(State(s): State<Sequencer>, Path(number): Path<u64>) -> Response {
    match s.batch(BatchNumber(number)) {
        Ok(Some(b)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            b.encode(),
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            Reason::UnknownBatch,
            format!("no batch {number} was logged here"),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::Store,
            e.to_string(),
        ),
    }
}

pub use crate::ack::ReplicatedBody;

fn error(status: StatusCode, reason: Reason, message: String) -> Response {
    keel_http::refusal(status, reason.as_str(), message)
}

/// A standby's acknowledgement counts only when a registered standby signed it, in this
/// primary's epoch, for a batch this sequencer logged with the root it logged
/// ([`Sequencer::acknowledge`]): anyone can read a batch's root, so the root alone proves nothing.
async fn replicated(State(s): State<Sequencer>, body: Result<Bytes, BytesRejection>) -> Response {
    let checked = body
        .map_err(|r| AckError::BadRequest(r.body_text()))
        .and_then(|b| {
            serde_json::from_slice::<ReplicatedBody>(&b)
                .map_err(|e| AckError::BadRequest(e.to_string()))
        })
        .and_then(|b| Ack::from_body(&b));
    let ack = match checked {
        Ok(a) => a,
        Err(e) => return refuse_ack(&e),
    };
    // a signature check and a read of the log: off the async workers
    match tokio::task::spawn_blocking(move || s.acknowledge(&ack)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => refuse_ack(&e),
        Err(e) => refuse_ack(&AckError::Store(format!("the check failed: {e}"))),
    }
}

fn refuse_ack(e: &AckError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if e.status() == 403 {
        tracing::warn!(target: "keel::sequencer", reason = e.reason().as_str(), "acknowledgement refused: {e}");
    }
    error(status, e.reason(), e.to_string())
}

/// `GET /v1/stream` query.
#[derive(Clone, Copy, Debug, Deserialize)]
struct StreamQuery {
    #[serde(default)]
    from: Option<u64>,
}

async fn stream(State(s): State<Sequencer>, Query(q): Query<StreamQuery>) -> Response {
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(s.config().stream_buffer);
    let mut next = q.from.unwrap_or(1).max(1);
    let epoch = s.config().epoch.0;
    tokio::spawn(async move {
        let mut progress = s.progress();
        loop {
            // a shut-down sequencer's streams end (shutdown wakes them through the watch), so
            // that nothing keeps its store open
            if s.is_shut_down() {
                return;
            }
            let last = progress.borrow_and_update().last_batch.0;
            while next <= last {
                let batch = match s.batch(BatchNumber(next)) {
                    Ok(Some(b)) => b,
                    _ => return,
                };
                let enc = batch.encode();
                let mut frame = Vec::with_capacity(4 + enc.len());
                frame.extend_from_slice(&(enc.len() as u32).to_be_bytes());
                frame.extend_from_slice(&enc);
                // waits while the subscriber's buffer is full: backpressure on this task only
                if tx.send(Ok(Bytes::from(frame))).await.is_err() {
                    return;
                }
                next += 1;
            }
            tokio::select! {
                r = progress.changed() => if r.is_err() { return },
                () = tx.closed() => return,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::HeaderName::from_static(crate::ack::EPOCH_HEADER),
                epoch.to_string(),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
