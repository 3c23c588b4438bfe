//! The committer's own HTTP API: where provers in other processes hand in proven batches, and
//! [`CommitterClient`], what they hand them in with.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/batches` | `{"data": hex, "proof": hex}`: a proven batch (its canonical encoding and its halo2 proof); `200 {"batch", "result": "held" \| "already_settled", "epoch"}` once it is durably held for posting |
//! | `GET /v1/status` | what the committer holds, posted and settled, and whether its key holds the lease |
//!
//! An offered batch is checked before it is held, cheapest check first; a refusal is
//! `{"error": reason, "message": text}` and changes nothing:
//!
//! ```text
//!  body ── JSON? hex? a batch? ──────────────────── 400 bad_request | 400 bad_hex | 422 bad_data | 413
//!  L1   ── this key holds the lease? ───────────── 503 not_lease_holder (a prover tries the next committer)
//!       ── exit mode? settled already? ─────────── 409 exit_mode | 200 already_settled
//!  the paired sequencer logged this very batch? ── 409 not_sequenced | 503 sequencer_unavailable
//!  the proof verifies (the L1's own check)? ────── 422 bad_proof
//!  stamped with the lease's epoch, held (synced) ─ 200 held | 409 conflict | 503 halted
//! ```
//!
//! **Why the sequencer check.** A prover proves whatever the sequencer it follows streamed. After
//! a failover, it may hold a proof of a batch that the old primary cut and the new one never
//! had. Posting it would settle a history that the new primary's acknowledged operations are not
//! in. A committer therefore posts only the batches its own sequencer logged.
//!
//! **Why the epoch is stamped here.** The epoch is not a public input, so one proof serves any
//! epoch. Only the committer knows the epoch it posts in: a new primary re-posts the batches it
//! replicated from the old one under its own epoch.
//!
//! **Terms.** The API posts through a [`Committer`] only while its key holds the lease: one
//! *term* per epoch, with its own store (`epoch-N` under the configured directory), opened when
//! the L1 shows the key holding the lease in a new epoch and closed when the lease moves on. What
//! a closed term still held can never be posted (the L1 refuses a stale epoch); the provers'
//! [`Courier`] offers those proofs again to the new holder. A restart within an epoch reopens
//! that epoch's store and posts what it held, each batch once.
//!
//! Calls to the L1 and the proof check block, so each offer runs on a blocking thread.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | the wire types and the typed refusals ([`OfferError`]) both sides share |
//! | [`server`] | [`CommitterApi`] (the checks and the terms) and its [`router`] |
//! | [`client`] | [`CommitterClient`], with fail-over along committers, and the [`Courier`] |

use std::time::Duration;

use keel_state::{Batch, BatchNumber};
use serde::{Deserialize, Serialize};

pub mod client;
pub mod server;

pub use client::{ClientError, CommitterClient, Courier, COURIER_CHECK};
pub use server::{router, CommitterApi};

/// The largest body `POST /v1/batches` reads (a batch and its proof, hex-encoded, fit many
/// times over).
pub const MAX_BODY: usize = 8 << 20;
/// How long a [`CommitterClient`] call may take (the committer verifies the proof first).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a [`CommitterClient`] waits for a connection before it tries the next endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The sequencer a committer posts for, as far as the committer needs it: the batches it logged.
pub trait SequencedBatches: Send + Sync {
    /// Batch `n` as the sequencer logged it; `Ok(None)` if it logged none; `Err` if it could not
    /// be asked.
    fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, String>;
}

/// `POST /v1/batches` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferBody {
    /// The batch's canonical encoding, hex (`0x` optional).
    pub data: String,
    /// Its halo2 proof, hex (`0x` optional).
    pub proof: String,
}

/// What happened to an offered batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferResult {
    /// Held durably until it is posted (or held already).
    Held,
    /// The L1 has settled this number already; nothing was kept.
    AlreadySettled,
}

/// `POST /v1/batches` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferAnswer {
    /// The batch's number.
    pub batch: u64,
    /// What happened to it.
    pub result: OfferResult,
    /// The epoch it will be posted in.
    pub epoch: u64,
}

/// `GET /v1/status` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The address the committer posts as.
    pub address: keel_state::L1Address,
    /// Whether that key held the lease when the L1 was last read (`None`: the L1 did not answer).
    pub lease_holder: Option<bool>,
    /// The lease's epoch then.
    pub epoch: Option<u64>,
    /// The epoch of the open term (`None`: the key does not hold the lease, nothing is posted).
    pub term: Option<u64>,
    /// The L1's last proven batch, as the committer last read it.
    pub settled: u64,
    /// The last batch whose block is sealed.
    pub included: u64,
    /// Batches held, not yet settled.
    pub held: Vec<u64>,
    /// Batches posted in this term.
    pub posted: u64,
    /// Failed L1 calls retried since it opened.
    pub retries: u64,
    /// Why it stopped posting, if it did.
    pub halted: Option<String>,
}

/// A refusal's body: the same on every Keel server.
pub use keel_http::ErrorBody;

keel_http::reasons! {
    /// Every reason the committer's API gives for a refusal: the `error` of its JSON body, for
    /// the server that writes it and the [`CommitterClient`] that reads it.
    pub enum Reason {
        /// The body is not the expected JSON.
        BadRequest = "bad_request",
        /// The body is over the limit.
        TooLarge = "too_large",
        /// A field is not hex.
        BadHex = "bad_hex",
        /// The batch data does not decode.
        BadData = "bad_data",
        /// This committer's key does not hold the lease.
        NotLeaseHolder = "not_lease_holder",
        /// The L1 is in exit mode.
        ExitMode = "exit_mode",
        /// The batch is not the one its sequencer logged.
        NotSequenced = "not_sequenced",
        /// The committer's sequencer cannot be reached.
        SequencerUnavailable = "sequencer_unavailable",
        /// The proof does not verify.
        BadProof = "bad_proof",
        /// Another batch holds that number.
        Conflict = "conflict",
        /// The committer stopped.
        Halted = "halted",
        /// The L1 cannot be reached.
        L1Unavailable = "l1_unavailable",
        /// The committer's storage failed.
        Store = "store",
    }
}

/// Why an offer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The body is not the JSON the route takes.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body is larger than [`MAX_BODY`].
    #[error("the body is over {MAX_BODY} bytes")]
    TooLarge,
    /// A field is not hex.
    #[error("{field} is not hex: {error}")]
    BadHex {
        /// `data` or `proof`.
        field: &'static str,
        /// Why.
        error: String,
    },
    /// The data is not a batch.
    #[error("the data is not a batch: {0}")]
    BadData(String),
    /// This committer's key does not hold the lease: another committer posts now.
    #[error("this committer's key does not hold the lease (epoch {epoch}): it cannot post batch {batch}")]
    NotLeaseHolder {
        /// The batch offered.
        batch: BatchNumber,
        /// The lease's epoch.
        epoch: u64,
    },
    /// The L1 is in exit mode: no batch is posted any more.
    #[error("the L1 is in exit mode ({0}): no batch can be posted")]
    ExitMode(String),
    /// The paired sequencer logged no such batch, or another one with this number.
    #[error("batch {batch} is not the one this committer's sequencer logged: {why}")]
    NotSequenced {
        /// The batch offered.
        batch: BatchNumber,
        /// What the sequencer holds instead.
        why: String,
    },
    /// The paired sequencer could not be asked.
    #[error("the sequencer could not be asked for batch {batch}: {why}")]
    SequencerUnavailable {
        /// The batch offered.
        batch: BatchNumber,
        /// Why.
        why: String,
    },
    /// The proof does not verify for the batch's public inputs.
    #[error("the proof of batch {batch} does not verify: {why}")]
    BadProof {
        /// The batch offered.
        batch: BatchNumber,
        /// The verifier's words.
        why: String,
    },
    /// Another batch with this number is held already.
    #[error("a different batch {0} is held already")]
    Conflict(BatchNumber),
    /// The committer stopped posting.
    #[error("the committer halted: {0}")]
    Halted(String),
    /// The L1 could not be read.
    #[error("the L1: {0}")]
    L1(String),
    /// The committer's store failed.
    #[error("the committer's store: {0}")]
    Store(String),
}

impl OfferError {
    /// The stable reason code.
    pub fn reason(&self) -> Reason {
        match self {
            Self::BadRequest(_) => Reason::BadRequest,
            Self::TooLarge => Reason::TooLarge,
            Self::BadHex { .. } => Reason::BadHex,
            Self::BadData(_) => Reason::BadData,
            Self::NotLeaseHolder { .. } => Reason::NotLeaseHolder,
            Self::ExitMode(_) => Reason::ExitMode,
            Self::NotSequenced { .. } => Reason::NotSequenced,
            Self::SequencerUnavailable { .. } => Reason::SequencerUnavailable,
            Self::BadProof { .. } => Reason::BadProof,
            Self::Conflict(_) => Reason::Conflict,
            Self::Halted(_) => Reason::Halted,
            Self::L1(_) => Reason::L1Unavailable,
            Self::Store(_) => Reason::Store,
        }
    }

    /// The HTTP status: 4xx for the sender's fault, 503 where another committer (or a later
    /// try) may succeed.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::BadHex { .. } => 400,
            Self::TooLarge => 413,
            Self::BadData(_) | Self::BadProof { .. } => 422,
            Self::ExitMode(_) | Self::NotSequenced { .. } | Self::Conflict(_) => 409,
            Self::NotLeaseHolder { .. }
            | Self::SequencerUnavailable { .. }
            | Self::Halted(_)
            | Self::L1(_) => 503,
            Self::Store(_) => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_reason_and_a_status_in_its_class() {
        let n = BatchNumber(3);
        let all = [
            OfferError::BadRequest("x".into()),
            OfferError::TooLarge,
            OfferError::BadHex {
                field: "data",
                error: "x".into(),
            },
            OfferError::BadData("x".into()),
            OfferError::NotLeaseHolder { batch: n, epoch: 2 },
            OfferError::ExitMode("x".into()),
            OfferError::NotSequenced {
                batch: n,
                why: "x".into(),
            },
            OfferError::SequencerUnavailable {
                batch: n,
                why: "x".into(),
            },
            OfferError::BadProof {
                batch: n,
                why: "x".into(),
            },
            OfferError::Conflict(n),
            OfferError::Halted("x".into()),
            OfferError::L1("x".into()),
            OfferError::Store("x".into()),
        ];
        let mut reasons = std::collections::HashSet::new();
        for e in &all {
            assert!(reasons.insert(e.reason()), "{} twice", e.reason());
            assert_eq!(Reason::from_code(e.reason().as_str()), Some(e.reason()));
            let s = e.status();
            // a prover moves on to the next committer on 503 only: a fault of the offer itself
            // must not look like one
            let retry_elsewhere = matches!(
                e,
                OfferError::NotLeaseHolder { .. }
                    | OfferError::SequencerUnavailable { .. }
                    | OfferError::Halted(_)
                    | OfferError::L1(_)
            );
            assert_eq!(s == 503, retry_elsewhere, "{e}");
            assert!((400..600).contains(&s), "{e}");
        }
    }
}
