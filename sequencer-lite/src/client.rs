//! A client for the sequencer's HTTP API: what wallets, load generators, remote provers and
//! standby sequencers use.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::{Buf, BytesMut};
use keel_state::{Batch, Decode, DecodeError, Epoch, SignedOp};

use crate::{
    ack::{Ack, EPOCH_HEADER},
    api::{AccountView, ErrorBody, SubmitBody},
    error::Reason,
    sequencer::{Level, OpStatus, Status},
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request did not complete (connection refused, reset, timeout).
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The sequencer refused, with its reason.
    #[error("refused ({status}, {reason}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The reason ([`Reason`], shared with the server).
        reason: Reason,
        /// The sequencer's message.
        message: String,
    },
    /// The stream carried bytes that are not a batch.
    #[error("bad stream frame: {0}")]
    Frame(#[source] DecodeError),
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// An answer whose JSON body is not what the API promises.
    #[error("unexpected answer: {0}")]
    Body(#[source] serde_json::Error),
    /// A batch whose bytes do not decode.
    #[error("batch {number} does not decode: {source}")]
    BadBatch {
        /// The batch asked for.
        number: u64,
        /// Why.
        #[source]
        source: DecodeError,
    },
}

/// How long a connection attempt may take before the client moves on.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request may take (beyond any wait it asks for) before the client moves on.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A sequencer API client. Given a list of endpoints ([`Client::with_endpoints`]), it fails
/// over: a request that cannot reach an endpoint, or that an endpoint refuses with `503` (a
/// standby's `not_primary`, a halted sequencer), goes to the next one, and the client stays with
/// the endpoint that answered.
#[derive(Clone, Debug)]
pub struct Client {
    endpoints: Arc<[String]>,
    current: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// The body of a successful answer; a refusal's typed reason otherwise.
async fn read_body(r: reqwest::Response) -> Result<bytes::Bytes, ClientError> {
    let status = r.status();
    if status.is_success() {
        return Ok(r.bytes().await?);
    }
    let text = r.text().await?;
    let (reason, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => match Reason::from_code(&b.error) {
            Some(r) => (r, b.message),
            None => (Reason::Unrecognized, format!("{}: {}", b.error, b.message)),
        },
        // not the API's body (a proxy's page, say): the status says what it can
        Err(_) => (Reason::Edge(keel_http::Edge::for_status(status)), text),
    };
    Err(ClientError::Refused {
        status: status.as_u16(),
        reason,
        message,
    })
}

impl Client {
    /// A client for the API at `base` (`http://host:port`).
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_endpoints([base.into()])
    }

    /// A client that fails over along `endpoints` (at least one), starting with the first.
    pub fn with_endpoints(endpoints: impl IntoIterator<Item = String>) -> Self {
        let endpoints: Arc<[String]> = endpoints
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_owned())
            .collect();
        assert!(!endpoints.is_empty(), "a client needs an endpoint");
        Self {
            endpoints,
            current: Arc::new(AtomicUsize::new(0)),
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_idle_timeout(keel_http::CLIENT_POOL_IDLE)
                .build()
                .expect("a TLS-less HTTP client builds"),
        }
    }

    /// Sends the request `make` builds for each endpoint in turn, from the current one, until
    /// one answers with anything but a transport failure or a `503`; returns the answer's body.
    async fn call_raw(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, ClientError> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let at = (start + i) % n;
            let result = match make(&self.endpoints[at]).send().await {
                Ok(r) => read_body(r).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Err(e @ (ClientError::Http(_) | ClientError::Refused { status: 503, .. })) => {
                    last = Some(e);
                }
                // this endpoint answered (a refusal that is the caller's fault included)
                r => {
                    self.current.store(at, Ordering::Relaxed);
                    return r;
                }
            }
        }
        Err(last.expect("at least one endpoint was tried"))
    }

    /// [`Client::call_raw`], with the answer read as JSON.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let b = self.call_raw(make).await?;
        serde_json::from_slice(&b).map_err(ClientError::Body)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(|base| {
            self.http
                .get(format!("{base}{path}"))
                .timeout(REQUEST_TIMEOUT)
        })
        .await
    }

    /// A GET of `path` at `endpoint` alone (no fail-over), read as JSON.
    pub(crate) async fn get_at<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        let b = self.raw_at(endpoint, path).await?;
        serde_json::from_slice(&b).map_err(ClientError::Body)
    }

    /// A GET of `path` at `endpoint` alone (no fail-over): the body's bytes.
    pub(crate) async fn raw_at(
        &self,
        endpoint: &str,
        path: &str,
    ) -> Result<bytes::Bytes, ClientError> {
        let r = self
            .http
            .get(format!("{endpoint}{path}"))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await?;
        read_body(r).await
    }

    /// Every endpoint the client knows, in order.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Makes `endpoint` (one of [`Client::endpoints`]) the current one.
    pub(crate) fn use_endpoint(&self, endpoint: &str) {
        if let Some(at) = self.endpoints.iter().position(|e| e == endpoint) {
            self.current.store(at, Ordering::Relaxed);
        }
    }

    /// The endpoint the client is using.
    pub fn base(&self) -> &str {
        &self.endpoints[self.current.load(Ordering::Relaxed) % self.endpoints.len()]
    }

    /// A standby's signed acknowledgement ([`crate::ack`]).
    pub async fn replicated(&self, ack: &Ack) -> Result<(), ClientError> {
        let body = ack.to_body();
        let r = self
            .http
            .post(format!("{}/v1/replicated", self.base()))
            .json(&body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await?;
        if r.status().is_success() {
            return Ok(());
        }
        Err(read_body(r).await.expect_err("a failed status"))
    }

    /// Submits `op` and waits for `level` (at most `timeout` beyond acceptance).
    pub async fn submit_wait(
        &self,
        op: &SignedOp,
        level: Level,
        timeout: Option<Duration>,
    ) -> Result<OpStatus, ClientError> {
        let body = SubmitBody {
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
            ..SubmitBody::encoded(op, level)
        };
        let limit = REQUEST_TIMEOUT + timeout.unwrap_or(crate::api::DEFAULT_WAIT_TIMEOUT);
        self.call(|base| {
            self.http
                .post(format!("{base}/v1/ops"))
                .json(&body)
                .timeout(limit)
        })
        .await
    }

    /// Submits `op`; returns once it is in the sequencer's log.
    pub async fn submit(&self, op: &SignedOp) -> Result<OpStatus, ClientError> {
        self.submit_wait(op, Level::Accepted, None).await
    }

    /// Where operation `seq` stands.
    pub async fn op(&self, seq: u64) -> Result<OpStatus, ClientError> {
        self.get(&format!("/v1/ops/{seq}")).await
    }

    /// An account as admitted so far.
    pub async fn account(&self, index: u32) -> Result<AccountView, ClientError> {
        self.get(&format!("/v1/accounts/{index}")).await
    }

    /// The sequencer's summary.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/v1/status").await
    }

    /// Batch `n` as the sequencer logged it; `None` if it has none. Fails over like every call,
    /// so it reads the first endpoint that answers (the primary, or a standby's `503`s skipped).
    pub async fn batch(&self, n: u64) -> Result<Option<Batch>, ClientError> {
        let result = self
            .call_raw(|base| {
                self.http
                    .get(format!("{base}/v1/batches/{n}"))
                    .timeout(REQUEST_TIMEOUT)
            })
            .await;
        match result {
            Ok(bytes) => Batch::decode(&bytes)
                .map(Some)
                .map_err(|source| ClientError::BadBatch { number: n, source }),
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The batch stream from batch `from`.
    pub async fn stream(&self, from: u64) -> Result<BatchStream, ClientError> {
        let r = self
            .http
            .get(format!("{}/v1/stream?from={from}", self.base()))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(read_body(r).await.expect_err("a failed status"));
        }
        let epoch = r
            .headers()
            .get(EPOCH_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Epoch);
        Ok(BatchStream {
            response: r,
            buf: BytesMut::new(),
            epoch,
        })
    }
}

/// Batches as the sequencer streams them.
#[derive(Debug)]
pub struct BatchStream {
    response: reqwest::Response,
    buf: BytesMut,
    epoch: Option<Epoch>,
}

impl BatchStream {
    /// The epoch the streaming primary announced, if it did.
    pub fn epoch(&self) -> Option<Epoch> {
        self.epoch
    }

    /// The next batch; `None` when the sequencer closed the stream.
    pub async fn next(&mut self) -> Result<Option<Batch>, ClientError> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
                if self.buf.len() >= 4 + len {
                    self.buf.advance(4);
                    let frame = self.buf.split_to(len);
                    return Batch::decode(&frame).map(Some).map_err(ClientError::Frame);
                }
            }
            match self.response.chunk().await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(ClientError::Truncated),
            }
        }
    }
}
