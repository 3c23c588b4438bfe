//! The council's threshold key on an EVM L1: ZF's FROST over secp256k1 (RFC 9591, the crate
//! `frost-secp256k1`), with its distributed key generation, checked on chain by
//! `contracts/src/FrostSecp256k1.sol` through ecrecover.
//!
//! [`message`] builds the bytes the rollup's `councilMessage` builds; [`signature_words`] turns
//! an aggregated signature into the contract's `(R.x, R.y, z)`; [`dkg`] runs the three DKG rounds
//! for `n` members in one process (the member-by-member rounds are the same calls, one member
//! at a time).

use alloy::primitives::{Address, U256};
pub use frost_secp256k1 as frost;
use frost_secp256k1::keys::PublicKeyPackage;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};

/// The council's actions, as the contract numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    /// Exit mode at once.
    ExitMode = 1,
    /// A new registered sequencer set.
    Rotate = 2,
}

/// Why a council key or signature could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CouncilError {
    /// FROST refused (a round's input, too few shares, a bad share).
    #[error("FROST: {0}")]
    Frost(#[from] frost::Error),
    /// A point's encoding is not a point of secp256k1.
    #[error("not a point of secp256k1")]
    NotAPoint,
}

/// What the council signs for `action` with `payload` as its `sequence`-th act on the rollup at
/// `rollup` on the EVM chain `evm_chain_id`, for the rollup chain `chain_id`.
pub fn message(
    evm_chain_id: u64,
    rollup: Address,
    chain_id: u64,
    sequence: u64,
    action: Action,
    payload: [u8; 32],
) -> Vec<u8> {
    let mut m = b"keel/council/v1".to_vec();
    m.extend_from_slice(&U256::from(evm_chain_id).to_be_bytes::<32>());
    m.extend_from_slice(rollup.as_slice());
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(&sequence.to_be_bytes());
    m.push(action as u8);
    m.extend_from_slice(&payload);
    m
}

/// The payload of a rotation: `keccak256(abi.encodePacked(set, keys))`, in which each address
/// and each key word of the arrays takes a 32-byte word.
pub fn rotation_payload(set: &[Address], keys: &[U256]) -> [u8; 32] {
    let mut packed: Vec<u8> = set
        .iter()
        .flat_map(|a| {
            let mut word = [0u8; 32];
            word[12..].copy_from_slice(a.as_slice());
            word
        })
        .collect();
    for k in keys {
        packed.extend_from_slice(&k.to_be_bytes::<32>());
    }
    alloy::primitives::keccak256(packed).0
}

/// Acknowledgement keys as the rollup takes them: x and y of each.
pub fn ack_key_words(keys: &[keel_state::PublicKey]) -> Vec<U256> {
    keys.iter()
        .flat_map(|pk| {
            let (x, y) = pk.xy();
            [crate::word(&x), crate::word(&y)]
        })
        .collect()
}

fn xy(compressed: &[u8]) -> Result<(U256, U256), CouncilError> {
    let ep = k256::EncodedPoint::from_bytes(compressed).map_err(|_| CouncilError::NotAPoint)?;
    let p: Option<k256::AffinePoint> = k256::AffinePoint::from_encoded_point(&ep).into();
    let p = p.ok_or(CouncilError::NotAPoint)?.to_encoded_point(false);
    let (x, y) = (
        p.x().ok_or(CouncilError::NotAPoint)?,
        p.y().ok_or(CouncilError::NotAPoint)?,
    );
    Ok((U256::from_be_slice(x), U256::from_be_slice(y)))
}

/// The group key's coordinates, as the rollup's genesis takes them.
pub fn group_key(public: &PublicKeyPackage) -> Result<(U256, U256), CouncilError> {
    xy(&public.verifying_key().serialize()?)
}

/// An aggregated signature as the contract's `(R.x, R.y, z)`.
pub fn signature_words(sig: &frost::Signature) -> Result<[U256; 3], CouncilError> {
    let bytes = sig.serialize()?;
    let (rx, ry) = xy(&bytes[..33])?;
    Ok([rx, ry, U256::from_be_slice(&bytes[33..])])
}

pub use keel_committer::council::{dkg, sign};
