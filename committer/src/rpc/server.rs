//! The JSON-RPC server: one route, each call run on a blocking thread (the L1 fsyncs and verifies
//! proofs).

use std::{future::Future, sync::Arc};

use axum::{
    extract::{DefaultBodyLimit, State},
    routing::post,
    Json, Router,
};
use bytes::Bytes;
use keel_state::Decode;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    methods::{
        AccountParams, AddressParams, BatchParams, KeyParams, Method, QueueParams, SubmitParams,
    },
    wire, CORRUPT, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    REJECTED, STORE,
};
use crate::{
    settlement::{EmbeddedChain, L1Error, Rejection},
    tx::L1Tx,
};

/// The largest request body the server reads (a batch's data and proof, hex-encoded, fit many
/// times over); a larger one is refused with `413`.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;
/// The most queue entries one `keel_queue` call returns.
pub const MAX_QUEUE_PAGE: usize = 1024;

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The code (see the module docs).
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
    /// For [`REJECTED`], the rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

impl From<L1Error> for RpcError {
    fn from(e: L1Error) -> Self {
        let message = e.to_string();
        match e {
            L1Error::Rejected(r) => Self {
                code: REJECTED,
                message,
                data: serde_json::to_value(&r).ok(),
            },
            L1Error::Store(_) => Self::new(STORE, message),
            L1Error::Corrupt(_) => Self::new(CORRUPT, message),
            // a server relaying another L1 that is down
            L1Error::Unavailable { .. } => Self::new(INTERNAL_ERROR, message),
        }
    }
}

fn params<T: DeserializeOwned>(p: Value) -> Result<T, RpcError> {
    serde_json::from_value(p).map_err(|e| RpcError::new(INVALID_PARAMS, e.to_string()))
}

fn no_params(p: &Value) -> Result<(), RpcError> {
    match p {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        Value::Array(a) if a.is_empty() => Ok(()),
        _ => Err(RpcError::new(INVALID_PARAMS, "this method takes no params")),
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

/// Runs one method against `l1`: what the server does for each request, without the transport.
pub fn call(l1: &dyn EmbeddedChain, method: &str, p: Value) -> Result<Value, RpcError> {
    let Some(method) = Method::from_name(method) else {
        return Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("no method {method:?}"),
        ));
    };
    match method {
        Method::ChainId => {
            no_params(&p)?;
            to_value(l1.chain_id())
        }
        Method::Head => {
            no_params(&p)?;
            to_value(l1.head()?)
        }
        Method::Rollup => {
            no_params(&p)?;
            to_value(l1.rollup()?)
        }
        Method::Nonce => to_value(l1.nonce(&params::<AddressParams>(p)?.address)?),
        Method::Balance => to_value(l1.balance(&params::<AddressParams>(p)?.address)?),
        Method::Submit => {
            let bytes = wire::from_hex(&params::<SubmitParams>(p)?.tx)
                .map_err(|e| RpcError::new(INVALID_PARAMS, format!("tx: {e}")))?;
            let tx = L1Tx::decode(&bytes)
                .map_err(|e| L1Error::Rejected(Rejection::Malformed(e.to_string())))?;
            to_value(l1.submit(&tx)?)
        }
        Method::Queue => {
            let q: QueueParams = params(p)?;
            to_value(l1.queue(q.position, q.max.min(MAX_QUEUE_PAGE))?)
        }
        Method::Batch => to_value(l1.batch(params::<BatchParams>(p)?.number)?),
        Method::AccountIndex => {
            let index = l1.account_index(&params::<KeyParams>(p)?.pk)?;
            to_value(index.map(|a| a.0))
        }
        Method::Exited => to_value(l1.exited(params::<AccountParams>(p)?.account)?),
    }
}

#[derive(Deserialize)]
struct Request {
    jsonrpc: String,
    method: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    id: Value,
}

fn reply(id: Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
    }
}

/// The most requests one JSON-RPC batch array may hold.
pub const MAX_BATCH_REQUESTS: usize = 64;

async fn handle(State(l1): State<Arc<dyn EmbeddedChain>>, body: Bytes) -> Json<Value> {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Json(reply(
                Value::Null,
                Err(RpcError::new(PARSE_ERROR, e.to_string())),
            ))
        }
    };
    // a batch (JSON-RPC 2.0 §6): each request answered in order, in one array
    let Value::Array(requests) = value else {
        return Json(one(&l1, value).await);
    };
    if requests.is_empty() || requests.len() > MAX_BATCH_REQUESTS {
        let why = format!(
            "a batch holds 1 to {MAX_BATCH_REQUESTS} requests, not {}",
            requests.len()
        );
        return Json(reply(Value::Null, Err(RpcError::new(INVALID_REQUEST, why))));
    }
    let mut replies = Vec::with_capacity(requests.len());
    for r in requests {
        replies.push(one(&l1, r).await);
    }
    Json(Value::Array(replies))
}

/// One request of a call or of a batch, answered.
async fn one(l1: &Arc<dyn EmbeddedChain>, value: Value) -> Value {
    let l1 = l1.clone();
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let req = match serde_json::from_value::<Request>(value) {
        Ok(r) if r.jsonrpc == "2.0" => r,
        Ok(_) => {
            return reply(
                id,
                Err(RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")),
            );
        }
        Err(e) => return reply(id, Err(RpcError::new(INVALID_REQUEST, e.to_string()))),
    };
    let method = req.method.clone();
    let outcome = tokio::task::spawn_blocking(move || call(l1.as_ref(), &req.method, req.params))
        .await
        .unwrap_or_else(|e| {
            Err(RpcError::new(
                INTERNAL_ERROR,
                format!("the call failed: {e}"),
            ))
        });
    if let Err(e) = &outcome {
        tracing::debug!(target: "keel::l1::rpc", %method, code = e.code, error = %e.message, "call refused");
    }
    reply(req.id, outcome)
}

/// The API's routes over `l1`.
pub fn router(l1: Arc<dyn EmbeddedChain>) -> Router {
    Router::new()
        .route("/", post(handle))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(l1)
}

/// Serves the API on `listener` within `limits` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    l1: Arc<dyn EmbeddedChain>,
    limits: keel_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    keel_http::serve(listener, router(l1), limits, shutdown).await
}

/// A server running on its own thread and runtime; dropping it stops it (in-flight calls finish
/// first).
#[derive(Debug)]
pub struct RpcServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RpcServer {
    /// Binds `addr` (port 0 picks a free one) and serves `l1` there, with the default
    /// [`keel_http::Limits`].
    pub fn spawn(l1: Arc<dyn EmbeddedChain>, addr: std::net::SocketAddr) -> std::io::Result<Self> {
        Self::spawn_with(l1, addr, keel_http::Limits::default())
    }

    /// [`Self::spawn`] within `limits`.
    pub fn spawn_with(
        l1: Arc<dyn EmbeddedChain>,
        addr: std::net::SocketAddr,
        limits: keel_http::Limits,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("keel-l1-rpc")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("keel-l1-rpc".into())
            .spawn(move || {
                runtime.block_on(serve(listener, l1, limits, async {
                    let _ = stopped.await;
                }))
            })?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Its URL, for [`super::RpcL1::connect`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits until it has.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the RPC server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(target: "keel::l1::rpc", error = %e, "the RPC server stopped with an error");
        }
    }
}
