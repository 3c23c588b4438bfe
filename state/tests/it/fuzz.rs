//! Random bytes into every decoder: each returns an error or a value that re-encodes to the same
//! bytes; none panics.

use keel_state::{
    encoding::{Decode, Encode},
    test_utils::deposit,
    Account, Batch, BatchOp, MerkleProof, PublicKey, QueueEntry, SecretKey, Signature, SignedOp,
};
use proptest::prelude::*;

fn roundtrip_or_error<T: Decode + Encode>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(v) = T::decode(bytes) {
        prop_assert_eq!(
            v.encode(),
            bytes,
            "decode accepted a non-canonical encoding"
        );
    }
    Ok(())
}

/// Bytes that are mostly a valid encoding with a few bytes changed, which reaches deeper into a
/// decoder than uniform noise.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    (
        prop::collection::vec((0..len.max(1), any::<u8>()), 0..4),
        0..=len + 2,
    )
        .prop_map(move |(edits, cut)| {
            let mut b = seed.clone();
            for (i, v) in edits {
                if i < b.len() {
                    b[i] = v;
                }
            }
            b.truncate(cut);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        roundtrip_or_error::<BatchOp>(&bytes)?;
        roundtrip_or_error::<SignedOp>(&bytes)?;
        roundtrip_or_error::<QueueEntry>(&bytes)?;
        roundtrip_or_error::<Batch>(&bytes)?;
        roundtrip_or_error::<Account>(&bytes)?;
        roundtrip_or_error::<MerkleProof>(&bytes)?;
        if let Ok(a) = <[u8; 64]>::try_from(&bytes[..bytes.len().min(64)]) {
            let _ = PublicKey::from_bytes(&a);
        }
        if let Ok(a) = <[u8; 96]>::try_from(&bytes[..bytes.len().min(96)]) {
            let _ = Signature::from_bytes(&a);
        }
        if let Ok(a) = <[u8; 32]>::try_from(&bytes[..bytes.len().min(32)]) {
            let _ = SecretKey::from_bytes(&a);
        }
    }

    #[test]
    fn mutated_ops_never_panic(bytes in mutated(deposit(3, 9).encode())) {
        roundtrip_or_error::<BatchOp>(&bytes)?;
        roundtrip_or_error::<QueueEntry>(&bytes)?;
    }

    #[test]
    fn mutated_batches_never_panic(bytes in mutated(sample_batch_bytes())) {
        roundtrip_or_error::<Batch>(&bytes)?;
    }
}

fn sample_batch_bytes() -> Vec<u8> {
    let mut s = keel_state::test_utils::funded_state(4, 2, 10);
    s.execute_batch(keel_state::Epoch(1), vec![deposit(2, 5), deposit(3, 1)])
        .unwrap()
        .batch
        .encode()
}
