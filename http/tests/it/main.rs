//! The edge against hostile clients: slow headers, bodies that never come, idle connections, a
//! connection flood, and requests that no route parses.

use std::time::{Duration, Instant};

use axum::{
    extract::{Path, Query},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
    Router,
};
use keel_http::{refusal, serve, ErrorBody, Limits};
use serde::Deserialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};

#[derive(Deserialize)]
struct From {
    #[allow(dead_code)]
    from: u64,
}

fn app() -> Router {
    Router::new()
        .route("/v1/ok", get(|| async { "ok" }))
        .route(
            "/v1/accounts/{i}",
            get(|Path(i): Path<u32>| async move { i.to_string() }),
        )
        .route(
            "/v1/stream",
            get(|Query(_): Query<From>| async { "stream" }),
        )
        .route(
            "/v1/echo",
            post(|body: axum::body::Bytes| async move { body }),
        )
        .route(
            "/v1/plain",
            get(|| async {
                (StatusCode::SERVICE_UNAVAILABLE, "the store is closed").into_response()
            }),
        )
        .route(
            "/v1/typed",
            get(|| async {
                refusal(
                    StatusCode::CONFLICT,
                    "root_mismatch",
                    "batch 3 has another root",
                )
            }),
        )
}

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app(), limits, async {
        let _ = rx.await;
    }));
    Server {
        base: format!("http://{addr}"),
        addr,
        stop: Some(tx),
        task,
    }
}

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        max_connections: 64,
        max_body: 1024,
    }
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent and
/// how long it took.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    (out, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_while_other_clients_are_served() {
    let srv = start(limits()).await;
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        // one header byte every 100 ms: the headers would take ~6 s
        for b in b"GET /v1/ok HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
            if slow.write_all(&[*b]).await.is_err() {
                return (slow, true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (slow, false)
    });
    // meanwhile another client is served at once
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = http
            .get(format!("{}/v1/ok", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    let (mut slow, write_failed) = trickle.await.unwrap();
    let (answer, _) = read_to_close(&mut slow, Duration::from_secs(5)).await;
    let closed_after = started.elapsed();
    assert!(
        write_failed || closed_after < Duration::from_secs(6),
        "the slow connection lived {closed_after:?}"
    );
    // hyper answers a header timeout with 408 or closes: either way no request was served
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains("\r\n\r\nok"), "{text}");
    assert!(
        closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let srv = start(limits()).await;
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    let (_, took) = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(700), "closed after {took:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_comes_is_a_typed_408() {
    let srv = start(limits()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        .await
        .unwrap();
    let (answer, took) = read_to_close(&mut s, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""error":"timeout""#), "{text}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_clients_wait_for_a_free_slot() {
    let srv = start(Limits {
        header_timeout: Duration::from_secs(30),
        max_connections: 2,
        ..limits()
    })
    .await;
    let a = TcpStream::connect(srv.addr).await.unwrap();
    let b = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/ok", srv.base);
    let waited = http
        .get(&url)
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    assert!(waited.is_err(), "a third connection was served: {waited:?}");
    drop(a);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    drop(b);
}

async fn refused(http: &reqwest::Client, req: reqwest::RequestBuilder, status: u16, reason: &str) {
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), status, "{reason}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{reason}: {ct}");
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error, reason, "{}", body.message);
    assert!(!body.message.is_empty(), "{reason}");
    let _ = http;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_the_typed_json_body() {
    let srv = start(limits()).await;
    let http = reqwest::Client::new();
    let u = |p: &str| format!("{}{p}", srv.base);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http.get(u("/nowhere")), 404, "not_found"),
        (http.get(u("/")), 404, "not_found"),
        (http.delete(u("/v1/ok")), 405, "method_not_allowed"),
        (http.get(u("/v1/echo")), 405, "method_not_allowed"),
        (http.get(u("/v1/accounts/-1")), 400, "bad_request"),
        (http.get(u("/v1/accounts/abc")), 400, "bad_request"),
        (http.get(u("/v1/accounts/99999999999")), 400, "bad_request"),
        (http.get(u("/v1/stream?from=garbage")), 400, "bad_request"),
        (http.get(u("/v1/stream")), 400, "bad_request"),
        (
            http.post(u("/v1/echo")).body(vec![0u8; 2048]),
            413,
            "too_large",
        ),
        (http.get(u("/v1/plain")), 503, "unavailable"),
        (http.get(u("/v1/typed")), 409, "root_mismatch"),
    ];
    for (req, status, reason) in cases {
        refused(&http, req, status, reason).await;
    }
    // a route's plain-text refusal keeps its text as the message
    let r = http.get(u("/v1/plain")).send().await.unwrap();
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.message, "the store is closed");
    // and what succeeds is untouched
    let r = http.post(u("/v1/echo")).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = http.get(u("/v1/accounts/7")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_returns() {
    let mut srv = start(limits()).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v1/ok", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(http);
    srv.stop.take().unwrap().send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut srv.task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    assert!(TcpStream::connect(srv.addr).await.is_err());
}
