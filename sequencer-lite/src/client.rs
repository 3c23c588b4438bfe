//! A client for the sequencer's HTTP API: what wallets, load generators, remote provers and
//! standby sequencers use.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use keel_state::{Batch, Decode, Encode, SignedOp};

use crate::{
    api::{AccountView, ErrorBody, SubmitBody},
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
        /// The stable reason code.
        reason: String,
        /// The sequencer's message.
        message: String,
    },
    /// The stream carried bytes that are not a batch.
    #[error("bad stream frame: {0}")]
    Frame(String),
}

/// A sequencer API client.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

async fn json<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> Result<T, ClientError> {
    let status = r.status();
    if status.is_success() {
        return Ok(r.json().await?);
    }
    let text = r.text().await?;
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

impl Client {
    /// A client for the API at `base` (`http://host:port`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        json(self.http.get(format!("{}{path}", self.base)).send().await?).await
    }

    /// The API's base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Submits `op` and waits for `level` (at most `timeout` beyond acceptance).
    pub async fn submit_wait(
        &self,
        op: &SignedOp,
        level: Level,
        timeout: Option<Duration>,
    ) -> Result<OpStatus, ClientError> {
        let body = SubmitBody {
            op: hex::encode(op.encode()),
            wait: level,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
        };
        let r = self
            .http
            .post(format!("{}/v1/ops", self.base))
            .json(&body)
            .send()
            .await?;
        json(r).await
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

    /// The batch stream from batch `from`.
    pub async fn stream(&self, from: u64) -> Result<BatchStream, ClientError> {
        let r = self
            .http
            .get(format!("{}/v1/stream?from={from}", self.base))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(json::<()>(r).await.expect_err("a failed status"));
        }
        Ok(BatchStream {
            response: r,
            buf: BytesMut::new(),
        })
    }
}

/// Batches as the sequencer streams them.
#[derive(Debug)]
pub struct BatchStream {
    response: reqwest::Response,
    buf: BytesMut,
}

impl BatchStream {
    /// The next batch; `None` when the sequencer closed the stream.
    pub async fn next(&mut self) -> Result<Option<Batch>, ClientError> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
                if self.buf.len() >= 4 + len {
                    self.buf.advance(4);
                    let frame = self.buf.split_to(len);
                    return Batch::decode(&frame)
                        .map(Some)
                        .map_err(|e| ClientError::Frame(e.to_string()));
                }
            }
            match self.response.chunk().await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(ClientError::Frame("stream ended inside a frame".into())),
            }
        }
    }
}
