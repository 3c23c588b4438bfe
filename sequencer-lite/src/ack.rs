//! Replication acknowledgements: a standby's signed word that it holds a batch.
//!
//! An operation is `replicated` once a standby holds its batch, which is what a client waits on
//! to survive the primary's failure. So the acknowledgement that raises that level must come from
//! a standby the rollup registered, and from nobody else: it is a Schnorr signature by a
//! registered sequencer's key over
//!
//! `[ACK_TAG, batch, root, epoch]`
//!
//! where `root` is the batch's post-state root as the standby computed it and `epoch` the
//! primary's epoch as its stream announced it ([`EPOCH_HEADER`]). Four elements, a length no
//! operation or L1 transaction signs, and the tag, keep it apart from every other signature a
//! sequencer's key makes. The primary checks, cheapest first: the key is a registered standby
//! ([`crate::Sequencer::set_standbys`]), the epoch is its own, the signature verifies, and the
//! batch is logged here with that root.

use keel_state::{
    field::{fr_from_bytes, fr_to_hex},
    BatchNumber, Epoch, Fr, PublicKey, SecretKey, Signature,
};
use serde::{Deserialize, Serialize};

/// The first element of every acknowledgement's signed message: `"keel-ack"` as an integer.
pub const ACK_TAG: u64 = u64::from_be_bytes(*b"keel-ack");

/// The response header of `GET /v1/stream` that names the primary's epoch.
pub const EPOCH_HEADER: &str = "keel-epoch";

/// `POST /v1/replicated` body: a standby's signed acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicatedBody {
    /// The batch the standby holds (and every batch before it).
    pub batch: u64,
    /// Its post-state root as the standby computed it (`0x`, big-endian hex).
    pub root: String,
    /// The primary's epoch the standby acknowledges in.
    pub epoch: u64,
    /// The standby's public key (hex of its 64-byte encoding).
    pub standby: String,
    /// Its signature over [`Ack::message`] (hex of the 96-byte encoding).
    pub signature: String,
}

/// A decoded acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The batch held.
    pub batch: BatchNumber,
    /// Its post-state root.
    pub root: Fr,
    /// The primary's epoch.
    pub epoch: Epoch,
    /// The standby's key.
    pub standby: PublicKey,
    /// The standby's signature.
    pub signature: Signature,
}

/// Why an acknowledgement was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Not a well-formed acknowledgement (an unsigned one among them).
    #[error("not an acknowledgement: {0}")]
    BadRequest(String),
    /// The key is not a standby this primary knows from the rollup's registry.
    #[error("{0} is not a registered standby of this sequencer")]
    UnknownStandby(String),
    /// The signature does not verify for the acknowledgement's fields.
    #[error("the acknowledgement's signature does not verify")]
    BadSignature,
    /// The acknowledgement names another epoch than this primary's.
    #[error("the acknowledgement is for epoch {got}; this primary sequences epoch {current}")]
    StaleEpoch {
        /// The epoch signed.
        got: u64,
        /// This primary's.
        current: u64,
    },
    /// No such batch was logged here.
    #[error("no batch {0} was logged here")]
    UnknownBatch(u64),
    /// The standby computed another root: it has not replicated this batch.
    #[error("batch {batch} has root {logged}, not {got}")]
    RootMismatch {
        /// The batch.
        batch: u64,
        /// Its root as logged here.
        logged: String,
        /// The root acknowledged.
        got: String,
    },
    /// The log could not be read.
    #[error("the store: {0}")]
    Store(String),
}

impl AckError {
    /// The stable reason code of the refusal's body.
    pub fn reason(&self) -> crate::error::Reason {
        use crate::error::Reason;
        match self {
            Self::BadRequest(_) => Reason::BadRequest,
            Self::UnknownStandby(_) => Reason::UnknownStandby,
            Self::BadSignature => Reason::BadSignature,
            Self::StaleEpoch { .. } => Reason::StaleEpoch,
            Self::UnknownBatch(_) => Reason::UnknownBatch,
            Self::RootMismatch { .. } => Reason::RootMismatch,
            Self::Store(_) => Reason::Store,
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::UnknownStandby(_) | Self::BadSignature => 403,
            Self::StaleEpoch { .. } | Self::RootMismatch { .. } => 409,
            Self::UnknownBatch(_) => 404,
            Self::Store(_) => 503,
        }
    }
}

impl Ack {
    /// What a standby signs: `[ACK_TAG, batch, root, epoch]`.
    pub fn message(batch: BatchNumber, root: Fr, epoch: Epoch) -> [Fr; 4] {
        [
            Fr::from(ACK_TAG),
            Fr::from(batch.0),
            root,
            Fr::from(epoch.0),
        ]
    }

    /// The acknowledgement of `batch` with `root` in `epoch`, signed with `key`.
    pub fn sign(key: &SecretKey, batch: BatchNumber, root: Fr, epoch: Epoch) -> Self {
        Self {
            batch,
            root,
            epoch,
            standby: key.public_key(),
            signature: key.sign(&Self::message(batch, root, epoch)),
        }
    }

    /// Whether the signature is the standby's, over these fields.
    pub fn verify(&self) -> Result<(), AckError> {
        self.standby
            .verify(
                &Self::message(self.batch, self.root, self.epoch),
                &self.signature,
            )
            .map_err(|_| AckError::BadSignature)
    }

    /// The wire body.
    pub fn to_body(&self) -> ReplicatedBody {
        ReplicatedBody {
            batch: self.batch.0,
            root: fr_to_hex(&self.root),
            epoch: self.epoch.0,
            standby: hex::encode(self.standby.to_bytes()),
            signature: hex::encode(self.signature.to_bytes()),
        }
    }

    /// Decodes a wire body (the signature is not checked here: [`Self::verify`]).
    pub fn from_body(b: &ReplicatedBody) -> Result<Self, AckError> {
        let bad = |what: &str, e: String| AckError::BadRequest(format!("{what}: {e}"));
        let standby = unhex::<64>(&b.standby)
            .map_err(|e| bad("standby", e))
            .and_then(|k| PublicKey::from_bytes(&k).map_err(|e| bad("standby", e.to_string())))?;
        let signature = unhex::<96>(&b.signature)
            .map_err(|e| bad("signature", e))
            .and_then(|s| Signature::from_bytes(&s).map_err(|e| bad("signature", e.to_string())))?;
        let root = parse_root(&b.root).map_err(|e| bad("root", e))?;
        Ok(Self {
            batch: BatchNumber(b.batch),
            root,
            epoch: Epoch(b.epoch),
            standby,
            signature,
        })
    }
}

/// A root as the APIs print it (`0x` and big-endian hex) back to a field element.
pub fn parse_root(s: &str) -> Result<Fr, String> {
    let mut b = unhex::<32>(s)?;
    b.reverse();
    fr_from_bytes(&b).ok_or_else(|| "not below the field's modulus".to_owned())
}

fn unhex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let v = hex::decode(s.trim_start_matches("0x")).map_err(|e| e.to_string())?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| format!("{} bytes, expected {N}", v.len()))
}

#[cfg(test)]
mod tests {
    use keel_state::test_utils::key;

    use super::*;

    fn ack() -> Ack {
        Ack::sign(&key(7), BatchNumber(3), Fr::from(99), Epoch(2))
    }

    #[test]
    fn an_acknowledgement_round_trips_and_verifies() {
        let a = ack();
        a.verify().unwrap();
        let back = Ack::from_body(&a.to_body()).unwrap();
        assert_eq!(back, a);
        back.verify().unwrap();
    }

    #[test]
    fn every_field_is_bound_by_the_signature() {
        let a = ack();
        let altered = [
            Ack {
                batch: BatchNumber(4),
                ..a.clone()
            },
            Ack {
                root: Fr::from(100),
                ..a.clone()
            },
            Ack {
                epoch: Epoch(3),
                ..a.clone()
            },
            Ack {
                standby: key(8).public_key(),
                ..a.clone()
            },
        ];
        for x in altered {
            assert_eq!(x.verify(), Err(AckError::BadSignature), "{x:?}");
        }
        // a signature on the same words without the tag is not an acknowledgement
        let untagged = key(7).sign(&[Fr::from(3), Fr::from(99), Fr::from(2)]);
        let forged = Ack {
            signature: untagged,
            ..a
        };
        assert_eq!(forged.verify(), Err(AckError::BadSignature));
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let good = ack().to_body();
        let cases = [
            ReplicatedBody {
                signature: String::new(),
                ..good.clone()
            },
            ReplicatedBody {
                standby: "zz".into(),
                ..good.clone()
            },
            ReplicatedBody {
                standby: "00".repeat(64),
                ..good.clone()
            },
            ReplicatedBody {
                root: format!("0x{}", "ff".repeat(32)),
                ..good.clone()
            },
            ReplicatedBody {
                signature: "00".repeat(95),
                ..good
            },
        ];
        for b in cases {
            let e = Ack::from_body(&b).unwrap_err();
            assert_eq!(e.reason(), crate::error::Reason::BadRequest, "{e}");
        }
    }
}
