//! The committer's API server: [`CommitterApi`] checks an offered batch and holds it in the
//! current term's [`Committer`]; [`router`] serves it over HTTP.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, DefaultBodyLimit, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use keel_circuit::{BatchProof, BatchVerifier, PublicInputs};
use keel_state::{Batch, Decode, Encode, Epoch, L1Address};

use super::{
    ErrorBody, OfferAnswer, OfferBody, OfferError, OfferResult, SequencedBatches, StatusView,
    MAX_BODY,
};
use crate::{
    committer::{Committer, CommitterConfig, CommitterError, CommitterStatus, Offered},
    settlement::{RollupView, SettlementLayer, Settler},
};

fn refuse(e: &OfferError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = ErrorBody {
        error: e.reason().as_str().into(),
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
    signer: Arc<dyn Settler>,
    /// The signer's address, as the lease names its holder.
    me: L1Address,
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
    /// The API of a committer that posts to `l1` through `signer` (a registered sequencer's), for
    /// `sequencer`, checking proofs with `verifier` (the one the L1 pins). `config.dir` holds
    /// one store per term. Nothing is opened until [`CommitterApi::sync`] (or an offer) finds the
    /// key holding the lease.
    pub fn new(
        config: CommitterConfig,
        l1: Arc<dyn SettlementLayer>,
        signer: Arc<dyn Settler>,
        verifier: BatchVerifier,
        sequencer: Box<dyn SequencedBatches>,
    ) -> Self {
        Self {
            config,
            l1,
            me: signer.address(),
            signer,
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
        let mine = view.lease.sequencer == self.me && view.exit_mode.is_none();
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
            self.signer.clone(),
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
        if view.lease.sequencer != self.me {
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
            Err(CommitterError::BadData(e)) => Err(OfferError::BadData(e.to_string())),
            Err(CommitterError::L1(e)) => Err(OfferError::L1(e.to_string())),
            Err(e) => Err(OfferError::Store(e.to_string())),
        }
    }

    /// The open term's status, and the lease as the L1 says now.
    pub fn status(&self) -> StatusView {
        let lease = self.l1.rollup().map(|v| v.lease).ok();
        let me = self.me;
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
            address: me,
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
            tracing::warn!(target: "keel::committer", reason = e.reason().as_str(), "offer refused: {e}");
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

#[cfg(test)]
mod tests {
    use super::*;

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
