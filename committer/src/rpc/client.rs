//! [`RpcL1`]: the embedded L1 in another process, as a [`SettlementLayer`] and an [`EmbeddedChain`].

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use keel_state::{AccountIndex, BatchNumber, Encode, L1Address, PublicKey};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

use super::{
    methods::{
        AccountParams, AddressParams, BatchParams, KeyParams, Method, QueueParams, SubmitParams,
    },
    server::RpcError,
    wire, CORRUPT, REJECTED, STORE,
};
use crate::{
    settlement::{
        EmbeddedChain, Head, L1Error, PostedBatch, QueuedEntry, Receipt, Rejection, RollupView,
        SettlementLayer,
    },
    tx::L1Tx,
};

/// How long a call may take before the client gives up (a submitted batch's proof is verified
/// before the answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of `keel l1`'s JSON-RPC API.
///
/// Calls block the calling thread: call it from plain threads (as the committer and the
/// follower do) or from `spawn_blocking`, never from inside an async task. A call that fails in
/// transport is [`L1Error::Unavailable`]; a transaction whose answer was lost may still have
/// executed, so callers read the L1 again before repeating it (the committer does).
#[derive(Debug)]
pub struct RpcL1 {
    url: String,
    http: reqwest::blocking::Client,
    chain_id: u64,
    next_id: AtomicU64,
}

#[derive(Deserialize)]
struct Response {
    /// `null` (or absent) for a method that found nothing.
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<RpcError>,
}

/// A method's named params, as JSON (the params types serialize infallibly: numbers and hex).
fn params(p: impl serde::Serialize) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

/// Unavailable while doing `what`, because of `source`.
fn failed(
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> L1Error {
    L1Error::Unavailable {
        what: what.into(),
        source: Some(Box::new(source)),
    }
}

impl RpcL1 {
    /// Connects to the API at `url` (`http://host:port`) with [`DEFAULT_TIMEOUT`], and reads the
    /// chain id.
    pub fn connect(url: &str) -> Result<Self, L1Error> {
        Self::connect_with(url, DEFAULT_TIMEOUT)
    }

    /// Connects with a per-call `timeout`.
    pub fn connect_with(url: &str, timeout: Duration) -> Result<Self, L1Error> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(keel_http::CLIENT_POOL_IDLE)
            .build()
            .map_err(|e| failed("building the HTTP client", e))?;
        let mut l1 = Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
            chain_id: 0,
            next_id: AtomicU64::new(1),
        };
        l1.chain_id = l1.call(Method::ChainId, Value::Null)?;
        Ok(l1)
    }

    /// The API's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn call<T: DeserializeOwned>(&self, method: Method, params: Value) -> Result<T, L1Error> {
        let method = method.name();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .map_err(|e| failed(method, e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().unwrap_or_default();
            return Err(L1Error::unavailable(format!(
                "{method}: HTTP {status}: {text}"
            )));
        }
        let r: Response = response
            .json()
            .map_err(|e| failed(format!("{method}: not a JSON-RPC response"), e))?;
        match (r.result, r.error) {
            (_, Some(e)) => Err(match e.code {
                REJECTED => match e.data.map(serde_json::from_value::<Rejection>) {
                    Some(Ok(rejection)) => L1Error::Rejected(rejection),
                    _ => L1Error::unavailable(format!(
                        "{method}: a rejection this client cannot read: {}",
                        e.message
                    )),
                },
                STORE => L1Error::Store(e.message),
                CORRUPT => L1Error::Corrupt(e.message),
                code => L1Error::unavailable(format!("{method}: error {code}: {}", e.message)),
            }),
            (v, None) => serde_json::from_value(v)
                .map_err(|e| failed(format!("{method}: unexpected result"), e)),
        }
    }
}

impl SettlementLayer for RpcL1 {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn head(&self) -> Result<Head, L1Error> {
        self.call(Method::Head, Value::Null)
    }

    fn rollup(&self) -> Result<RollupView, L1Error> {
        self.call(Method::Rollup, Value::Null)
    }

    fn queue(&self, position: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error> {
        self.call(Method::Queue, params(QueueParams { position, max }))
    }

    fn batch(&self, number: BatchNumber) -> Result<Option<PostedBatch>, L1Error> {
        self.call(Method::Batch, params(BatchParams { number }))
    }

    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error> {
        let index: Option<u32> = self.call(Method::AccountIndex, params(KeyParams { pk: *pk }))?;
        Ok(index.map(AccountIndex))
    }

    fn exited(&self, account: AccountIndex) -> Result<bool, L1Error> {
        self.call(Method::Exited, params(AccountParams { account }))
    }
}

impl EmbeddedChain for RpcL1 {
    fn nonce(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.call(Method::Nonce, params(AddressParams { address: *address }))
    }

    fn balance(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.call(Method::Balance, params(AddressParams { address: *address }))
    }

    fn submit(&self, tx: &L1Tx) -> Result<Receipt, L1Error> {
        let tx = wire::to_hex(&tx.encode());
        self.call(Method::Submit, params(SubmitParams { tx }))
    }
}
