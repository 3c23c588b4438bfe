//! Keel's HTTP edge: the one server loop every Keel service runs (the sequencer, the standby,
//! the L1's JSON-RPC, the committer and the prover service), and the typed refusal every route
//! answers with.
//!
//! [`serve`] guards a [`Router`] against clients that hold a connection without finishing a
//! request:
//!
//! - **headers** must arrive within [`Limits::header_timeout`], counted from the moment the server
//!   waits for them, so an idle keep-alive connection is closed after the same time;
//! - **a body** must arrive whole within [`Limits::body_timeout`] and fit [`Limits::max_body`]
//!   (`408 timeout` or `413 too_large` otherwise); routes keep their own, smaller limits;
//! - **connections** are at most [`Limits::max_connections`]; past it the server stops
//!   accepting until one ends, so a flood waits in the kernel's backlog instead of exhausting
//!   file descriptors.
//!
//! And every refusal from any route is the JSON body [`ErrorBody`] `{"error": reason,
//! "message": text}`: a route's own refusals already are, and [`edge`] rewrites the rest (an
//! unknown path, a wrong method, a path or query that does not parse, a handler's plain text)
//! with a reason named after the status ([`reason_for`]).

mod ready;
mod reason;

pub use ready::{Ready, ReadyError};
pub use reason::Edge;

#[doc(hidden)]
pub use serde as __serde;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Json, Router,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// What a server tolerates from its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest a connection may take to send a request's headers, or stay idle between
    /// requests.
    pub header_timeout: Duration,
    /// The longest a request's body may take to arrive, once its headers have.
    pub body_timeout: Duration,
    /// The most connections served at once.
    pub max_connections: usize,
    /// The largest body any route reads (routes may refuse smaller ones).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_body: 64 << 20,
        }
    }
}

/// How long Keel's clients keep an idle pooled connection: well under the servers' default
/// header timeout, so a client never reuses a connection the server is closing as idle.
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(4);

/// A refusal's body, the same on every route of every Keel server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The stable reason code (`snake_case`).
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

/// The typed refusal: `status` with `{"error": reason, "message": message}`.
pub fn refusal(status: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: reason.into(),
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

/// The reason a refusal gets when its route gave none, from its status ([`Edge::for_status`]).
pub fn reason_for(status: StatusCode) -> &'static str {
    Edge::for_status(status).as_str()
}

/// The largest plain-text refusal carried over into a typed one's message.
const MAX_TEXT: usize = 4096;

/// `router` with the edge's behaviour: a typed `404 not_found` for unknown paths, the body read
/// within `limits`, and every refusal made typed.
pub fn edge(router: Router, limits: &Limits) -> Router {
    router
        .fallback(not_found)
        .layer(middleware::from_fn(typed_refusals))
        .layer(middleware::from_fn_with_state(Arc::new(*limits), read_body))
}

async fn not_found(method: Method, uri: Uri) -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        Edge::NotFound.as_str(),
        format!("no route for {method} {}", uri.path()),
    )
}

/// Reads the whole body within the time and size limits before the route sees the request.
async fn read_body(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return too_large(limits.max_body);
    }
    let read = tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body),
    )
    .await;
    let bytes = match read {
        Err(_) => {
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                Edge::Timeout.as_str(),
                format!(
                    "the request's body did not arrive within {:?}",
                    limits.body_timeout
                ),
            )
        }
        Ok(Err(e)) if is_length_limit(&e) => return too_large(limits.max_body),
        Ok(Err(e)) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                Edge::BadRequest.as_str(),
                format!("reading the request's body: {e}"),
            )
        }
        Ok(Ok(b)) => b,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn too_large(limit: usize) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        Edge::TooLarge.as_str(),
        format!("the request's body is over {limit} bytes"),
    )
}

/// Rewrites any refusal that is not JSON (axum's own rejections, an empty 404 or 405, a
/// handler's plain text) into the typed body, keeping its status and its text as the message.
async fn typed_refusals(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody {
        error: reason_for(status).into(),
        message,
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(Bytes::from(body)))
}

/// Serves `router` (through [`edge`]) on `listener` within `limits` until `shutdown` completes;
/// then stops accepting, closes idle connections and waits for the requests in flight.
///
/// An error accepting one connection (a full file table, a peer that reset) is logged and the
/// loop goes on, so this returns only at shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = edge(router, &limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(target: "keel::http", error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(target: "keel::http", error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// [`serve`] until the process's runtime drops the future: for servers that never stop
/// gracefully.
pub async fn serve_forever(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
) -> std::io::Result<()> {
    serve(listener, router, limits, std::future::pending::<()>()).await
}
