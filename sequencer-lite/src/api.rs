//! The HTTP JSON API over the sequencer core.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/ops` | `{"op": hex}`, or the same operation by its named fields, `{"transfer": {"from", "to", "amount", "nonce", "signature"}}` or `{"withdraw": {"from", "recipient", "amount", "nonce", "signature"}}`; with `"wait"?: level, "timeout_ms"?: n`: submit a signed operation; `202` with `{"seq", "level", "batch"}` once it reaches `wait` (default `accepted`: in the log) |
//! | `GET /v1/ops/{seq}` | an operation's level and batch |
//! | `GET /v1/accounts/{index}` | an account as admitted so far |
//! | `GET /v1/status` | epoch, depth, sequence numbers, waiting operations, last batch, root |
//! | `GET /v1/batches/{n}` | batch `n` as this sequencer logged it: its canonical encoding (`application/octet-stream`); `404 unknown_batch` if it has none |
//! | `GET /v1/stream?from=n` | the batch stream from batch `n`: frames of a 4-byte big-endian length and a batch's canonical encoding, live after the backlog; backpressure by TCP; the `keel-epoch` header names this primary's epoch |
//! | `POST /v1/replicated` | `{"batch", "root", "epoch", "standby", "signature"}`: a registered standby's signed acknowledgement that it holds batch `n` with that post-state root ([`crate::ack`]); its operations reach `replicated` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /v1/openapi.json` | this API's OpenAPI 3.1 description, generated from these routes and their types ([`openapi`]) |
//!
//! An operation's named fields carry exactly what its canonical encoding carries, so either form
//! submits the same operation: `signature` is the 96-byte `R.x ‖ R.y ‖ s` (hex), and it signs the
//! operation's message, which the fields determine (`keel_state::ops`; docs/api.md shows how
//! an app computes both, and `docs/op-vectors.json` gives test vectors).
//!
//! Every refusal is `{"error": reason, "message": text}` with a 4xx status for the client's fault
//! ([`SubmitError::status`]), and changes nothing.

use std::time::Duration;

use std::sync::OnceLock;

use axum::{
    body::{Body, Bytes},
    extract::{rejection::BytesRejection, DefaultBodyLimit, Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use keel_state::{
    AccountIndex, BatchNumber, Decode, Encode, L1Address, Signature, SignedOp, StfError, Transfer,
    Withdraw,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    ack::{Ack, AckError},
    error::{Reason, SubmitError},
    sequencer::{Level, OpStatus, Sequencer},
};

/// Default wait for a level above `accepted`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /v1/ops` body: one signed operation, as its canonical encoding (`op`) or by its named
/// fields (`transfer` or `withdraw`), and the level to wait for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The signed operation's canonical encoding, hex (`0x` optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Or: a signed transfer by its fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferBody>,
    /// Or: a signed withdrawal by its fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraw: Option<WithdrawBody>,
    /// The level to wait for before answering.
    #[serde(default)]
    pub wait: Level,
    /// How long to wait for it beyond acceptance, in milliseconds (default 30 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A signed transfer by its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The debited account's index; its key signs.
    pub from: u32,
    /// The credited account's index (it must exist).
    pub to: u32,
    /// The amount moved.
    pub amount: u64,
    /// The debited account's next nonce.
    pub nonce: u64,
    /// The signature: hex of the 96 bytes `R.x ‖ R.y ‖ s` (each 32 bytes, little-endian).
    pub signature: String,
}

/// A signed withdrawal by its fields: burnt on L2, paid to `recipient` on the L1 once proven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    /// The debited account's index; its key signs.
    pub from: u32,
    /// The L1 address paid: 20 bytes, hex (`0x` optional).
    pub recipient: String,
    /// The amount burnt here and paid on the L1.
    pub amount: u64,
    /// The debited account's next nonce.
    pub nonce: u64,
    /// The signature: hex of the 96 bytes `R.x ‖ R.y ‖ s` (each 32 bytes, little-endian).
    pub signature: String,
}

/// A signature's 96 bytes in hex (`0x` optional): not hex or not 96 bytes is `bad_hex`, not a
/// signature (a point off the curve) `bad_encoding`.
fn signature(text: &str) -> Result<Signature, SubmitError> {
    let bytes = keel_state::wire::from_hex(text)
        .map_err(|e| SubmitError::BadHex(format!("signature: {e}")))?;
    let len = bytes.len();
    let bytes: [u8; keel_state::signature::SIGNATURE_BYTES] = bytes.try_into().map_err(|_| {
        SubmitError::BadHex(format!(
            "signature: {len} bytes, not {}",
            keel_state::signature::SIGNATURE_BYTES
        ))
    })?;
    Signature::from_bytes(&bytes).map_err(|e| SubmitError::BadEncoding(format!("signature: {e}")))
}

impl TransferBody {
    /// The transfer's fields and signature as the API names them.
    pub fn of(t: &Transfer) -> Self {
        Self {
            from: t.from.0,
            to: t.to.0,
            amount: t.amount,
            nonce: t.nonce,
            signature: keel_state::wire::to_hex(&t.signature.to_bytes()),
        }
    }

    /// The operation these fields name (its signature is checked at admission, as for hex).
    pub fn to_op(&self) -> Result<SignedOp, SubmitError> {
        Ok(SignedOp::Transfer(Transfer {
            from: AccountIndex(self.from),
            to: AccountIndex(self.to),
            amount: self.amount,
            nonce: self.nonce,
            signature: signature(&self.signature)?,
        }))
    }
}

impl WithdrawBody {
    /// The withdrawal's fields and signature as the API names them.
    pub fn of(w: &Withdraw) -> Self {
        Self {
            from: w.from.0,
            recipient: w.recipient.to_string(),
            amount: w.amount,
            nonce: w.nonce,
            signature: keel_state::wire::to_hex(&w.signature.to_bytes()),
        }
    }

    /// The operation these fields name (its signature is checked at admission, as for hex).
    pub fn to_op(&self) -> Result<SignedOp, SubmitError> {
        Ok(SignedOp::Withdraw(Withdraw {
            from: AccountIndex(self.from),
            recipient: self
                .recipient
                .parse::<L1Address>()
                .map_err(|e| SubmitError::BadHex(format!("recipient: {e}")))?,
            amount: self.amount,
            nonce: self.nonce,
            signature: signature(&self.signature)?,
        }))
    }
}

impl SubmitBody {
    /// `op` by its named fields, waiting for `wait`.
    pub fn fields(op: &SignedOp, wait: Level) -> Self {
        let (transfer, withdraw) = match op {
            SignedOp::Transfer(t) => (Some(TransferBody::of(t)), None),
            SignedOp::Withdraw(w) => (None, Some(WithdrawBody::of(w))),
        };
        Self {
            transfer,
            withdraw,
            wait,
            ..Self::default()
        }
    }

    /// `op` as its canonical encoding in hex, waiting for `wait`.
    pub fn encoded(op: &SignedOp, wait: Level) -> Self {
        Self {
            op: Some(hex::encode(op.encode())),
            wait,
            ..Self::default()
        }
    }

    /// The one operation the body carries.
    pub fn signed_op(&self) -> Result<SignedOp, SubmitError> {
        match (&self.op, &self.transfer, &self.withdraw) {
            (Some(hex), None, None) => {
                let bytes = hex::decode(hex.trim_start_matches("0x"))
                    .map_err(|e| SubmitError::BadHex(e.to_string()))?;
                SignedOp::decode(&bytes).map_err(|e| SubmitError::BadEncoding(e.to_string()))
            }
            (None, Some(t), None) => t.to_op(),
            (None, None, Some(w)) => w.to_op(),
            _ => Err(SubmitError::BadRequest(
                "give exactly one of `op` (the encoding in hex), `transfer` and `withdraw`".into(),
            )),
        }
    }
}

/// An account as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keel sequencer API",
        description = "Submit signed operations to a Keel rollup's sequencer and follow them to the L1. \
                       Every refusal is `{\"error\": reason, \"message\": text}` with a 4xx status for the \
                       client's fault and 503/504 for the sequencer's state; a standby answers `503 not_primary`."
    ),
    tags(
        (name = "operations", description = "Submitting signed operations and following them"),
        (name = "state", description = "Accounts and the sequencer's summary"),
        (name = "replication", description = "Batches, the batch stream and standbys' acknowledgements"),
    )
)]
struct ApiDoc;

/// The routes with their OpenAPI description: each route is added with its description, so
/// neither can exist without the other.
fn routes() -> OpenApiRouter<Sequencer> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(submit))
        .routes(routes!(op_status))
        .routes(routes!(account))
        .routes(routes!(status))
        .routes(routes!(batch))
        .routes(routes!(stream))
        .routes(routes!(replicated))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// The API's OpenAPI 3.1 description, as `GET /v1/openapi.json` serves it.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| routes().split_for_parts().1)
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "state",
    responses((status = 200, description = "This API's OpenAPI 3.1 description", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> Response {
    Json(openapi()).into_response()
}

/// The router.
pub fn router(seq: Sequencer) -> Router {
    let limit = seq.config().max_body;
    let (router, _) = routes().split_for_parts();
    router.layer(DefaultBodyLimit::max(limit)).with_state(seq)
}

/// Serves the API on `listener` until the future is dropped, within the configured
/// [`keel_http::Limits`].
pub async fn serve(seq: Sequencer, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let limits = seq.config().http;
    keel_http::serve_forever(listener, router(seq), limits).await
}

/// `POST /v1/ops`.
#[utoipa::path(post, path = "/v1/ops", tag = "operations",
    request_body(content = SubmitBody, description = "One signed operation: `op`, `transfer` or `withdraw`"),
    responses(
        (status = 202, description = "Accepted, and at `wait` or beyond", body = OpStatus),
        (status = 400, description = "Not the body described here (`bad_request`, `bad_hex`, `bad_encoding`)", body = ErrorBody),
        (status = 409, description = "A nonce already used (`stale_nonce`)", body = ErrorBody),
        (status = 413, description = "Over the body limit (`too_large`)", body = ErrorBody),
        (status = 422, description = "Breaks a rule: `unknown_account`, `bad_signature`, `insufficient_balance`, `nonce_gap`, ...", body = ErrorBody),
        (status = 429, description = "The account has its limit of operations waiting (`account_limit`)", body = ErrorBody),
        (status = 503, description = "`not_primary` (a standby), `halted`, `mempool_full`", body = ErrorBody),
        (status = 504, description = "Accepted, but `wait` not reached within `timeout_ms` (`wait_timeout`)", body = ErrorBody),
    ))]
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
    let op = req.signed_op()?;
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

/// `GET /v1/ops/{seq}`.
#[utoipa::path(get, path = "/v1/ops/{seq}", tag = "operations",
    params(("seq" = u64, Path, description = "The sequence number `POST /v1/ops` answered")),
    responses(
        (status = 200, description = "Where the operation stands", body = OpStatus),
        (status = 404, description = "No such operation was accepted here (`unknown_op`)", body = ErrorBody),
    ))]
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

/// `GET /v1/accounts/{index}`.
#[utoipa::path(get, path = "/v1/accounts/{index}", tag = "state",
    params(("index" = u32, Path, description = "The account's index (the L1 assigns it at its first deposit)")),
    responses(
        (status = 200, description = "The account as admitted so far (operations not yet in a batch included)", body = AccountView),
        (status = 404, description = "No such account (`unknown_account`)", body = ErrorBody),
        (status = 422, description = "Outside the tree (`index_out_of_range`)", body = ErrorBody),
    ))]
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

/// `GET /v1/status`.
#[utoipa::path(get, path = "/v1/status", tag = "state",
    responses(
        (status = 200, description = "The sequencer's summary", body = crate::sequencer::Status),
        (status = 503, description = "Its storage failed (`store`)", body = ErrorBody),
    ))]
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

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "state",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
async fn metrics(State(s): State<Sequencer>) -> Response {
    let text = s.metrics_text();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Batch `n` as logged here: what a committer checks a proven batch against before posting it.
#[utoipa::path(get, path = "/v1/batches/{number}", tag = "replication",
    params(("number" = u64, Path, description = "The batch number")),
    responses(
        (status = 200, description = "The batch's canonical encoding", body = [u8], content_type = "application/octet-stream"),
        (status = 404, description = "No such batch was logged here (`unknown_batch`)", body = ErrorBody),
        (status = 503, description = "Its storage failed (`store`)", body = ErrorBody),
    ))]
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
#[utoipa::path(post, path = "/v1/replicated", tag = "replication",
    request_body = ReplicatedBody,
    responses(
        (status = 204, description = "Counted: the batch and every one before it are `replicated`"),
        (status = 400, description = "Not the body described here", body = ErrorBody),
        (status = 403, description = "`unknown_standby` or `bad_signature`", body = ErrorBody),
        (status = 404, description = "No such batch was logged here (`unknown_batch`)", body = ErrorBody),
        (status = 409, description = "`stale_epoch` or `root_mismatch`", body = ErrorBody),
        (status = 503, description = "Its storage failed (`store`)", body = ErrorBody),
    ))]
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
#[derive(Clone, Copy, Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// The first batch to send (default 1).
    #[serde(default)]
    from: Option<u64>,
}

/// `GET /v1/stream`.
#[utoipa::path(get, path = "/v1/stream", tag = "replication",
    params(StreamQuery),
    responses((status = 200, description = "Frames of a 4-byte big-endian length and a batch's canonical encoding, \
        live after the backlog; the `keel-epoch` header names the primary's epoch", body = [u8], content_type = "application/octet-stream")))]
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
