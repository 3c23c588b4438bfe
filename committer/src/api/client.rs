//! The provers' side of the committer's API: [`CommitterClient`] offers a proof to whichever
//! committer posts now; the [`Courier`] keeps each proof until the L1 settles it.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{
    ErrorBody, OfferAnswer, OfferBody, OfferResult, Reason, StatusView, CLIENT_TIMEOUT,
    CONNECT_TIMEOUT,
};
use crate::settlement::SettlementLayer;

/// Why a [`CommitterClient`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No endpoint was given.
    #[error("no committer endpoint was given")]
    NoEndpoint,
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// An endpoint could not be reached (connection refused, reset, timeout).
    #[error("request to {endpoint} failed: {source}")]
    Http {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A committer refused, with its reason.
    #[error("refused ({status}, {reason}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The reason ([`Reason`], shared with the server).
        reason: Reason,
        /// The committer's message.
        message: String,
    },
    /// A committer answered with a body the API does not promise.
    #[error("unexpected answer ({status}): {source}")]
    BadAnswer {
        /// HTTP status.
        status: u16,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// Whether trying again later (or another committer) may succeed: no committer could be
    /// reached, or one answered 5xx (not the lease holder, its sequencer unreachable, halted,
    /// its store failing). Otherwise the committer judged the offer itself.
    pub fn transient(&self) -> bool {
        match self {
            Self::Http { .. } => true,
            Self::Refused { status, .. } => *status >= 500,
            Self::NoEndpoint | Self::Client(_) | Self::BadAnswer { .. } => false,
        }
    }

    /// Whether the committer found the proof invalid for the verifier the L1 pins.
    pub fn bad_proof(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                reason: Reason::BadProof,
                ..
            }
        )
    }
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
            return Err(ClientError::NoEndpoint);
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CLIENT_TIMEOUT)
            .pool_idle_timeout(keel_http::CLIENT_POOL_IDLE)
            .build()
            .map_err(ClientError::Client)?;
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
            let endpoint = &self.endpoints[at];
            let result = make(endpoint).send().and_then(read);
            let result = match result {
                Ok(r) => r,
                Err(source) => Err(ClientError::Http {
                    endpoint: endpoint.clone(),
                    source,
                }),
            };
            match result {
                Err(e @ (ClientError::Http { .. } | ClientError::Refused { status: 503, .. })) => {
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
                Err(e) if e.transient() => return Err(e.to_string()),
                Err(e) => {
                    tracing::warn!(target: "keel::prover", batch = n, error = %e, "a kept proof was refused in the new epoch; dropped");
                    self.pending.remove(&n);
                }
            }
        }
        Ok(again)
    }
}

/// An answer read: the transport's failure outside, the API's inside.
fn read<T: serde::de::DeserializeOwned>(
    r: reqwest::blocking::Response,
) -> Result<Result<T, ClientError>, reqwest::Error> {
    let status = r.status();
    let text = r.text()?;
    if status.is_success() {
        return Ok(
            serde_json::from_str(&text).map_err(|source| ClientError::BadAnswer {
                status: status.as_u16(),
                source,
            }),
        );
    }
    let (reason, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => match Reason::from_code(&b.error) {
            Some(r) => (r, b.message),
            None => (Reason::Unrecognized, format!("{}: {}", b.error, b.message)),
        },
        Err(_) => (Reason::Edge(keel_http::Edge::for_status(status)), text),
    };
    Ok(Err(ClientError::Refused {
        status: status.as_u16(),
        reason,
        message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, reason: &str) -> ClientError {
        ClientError::Refused {
            status,
            reason: Reason::from_code(reason).expect("a committer's reason"),
            message: String::new(),
        }
    }

    /// A real transport failure: a connection refused by a port nothing listens on.
    fn unreachable() -> ClientError {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let source = reqwest::blocking::get(&endpoint).unwrap_err();
        ClientError::Http { endpoint, source }
    }

    #[test]
    fn only_an_unreachable_or_failing_committer_is_worth_retrying() {
        // a courier keeps its proof and a prover retries for these ...
        for e in [
            unreachable(),
            refused(503, "not_lease_holder"),
            refused(503, "sequencer_unavailable"),
            refused(500, "store"),
        ] {
            assert!(e.transient(), "{e}");
            assert!(!e.bad_proof(), "{e}");
        }
        // ... and takes these as the committer's verdict on the offer
        for e in [
            refused(409, "not_sequenced"),
            refused(409, "conflict"),
            refused(422, "bad_data"),
            refused(400, "bad_hex"),
        ] {
            assert!(!e.transient(), "{e}");
            assert!(!e.bad_proof(), "{e}");
        }
        let e = refused(422, "bad_proof");
        assert!(!e.transient() && e.bad_proof(), "{e}");
    }
}
