//! Canonical encodings: exact round trips and every class of malformed input.

use keel_state::{
    encoding::{Decode, DecodeError, Encode},
    test_utils::{deposit, funded_state, key},
    AccountIndex, Batch, BatchOp, Epoch, L1Address, MerkleProof, QueueEntry, SignedOp, Transfer,
    Withdraw,
};

fn sample_ops() -> Vec<BatchOp> {
    let t = Transfer::sign(&key(0), AccountIndex(0), AccountIndex(1), 5, 0);
    let w = Withdraw::sign(&key(1), AccountIndex(1), L1Address([9; 20]), 3, 0);
    vec![
        deposit(3, 1_000),
        BatchOp::L2(SignedOp::Transfer(t)),
        BatchOp::L2(SignedOp::Withdraw(w)),
        BatchOp::L1(QueueEntry::Forced(SignedOp::Transfer(t))),
        BatchOp::L1(QueueEntry::Forced(SignedOp::Withdraw(w))),
    ]
}

#[test]
fn ops_round_trip_with_fixed_sizes() {
    let sizes = [77, 121, 137, 121, 137];
    for (op, size) in sample_ops().into_iter().zip(sizes) {
        let b = op.encode();
        assert_eq!(b.len(), size, "{op:?}");
        assert_eq!(BatchOp::decode(&b), Ok(op));
    }
}

#[test]
fn typed_decoders_refuse_the_other_origin() {
    let ops = sample_ops();
    // a user submission may not claim to come from the L1 queue, and vice versa
    assert!(matches!(
        SignedOp::decode(&ops[0].encode()),
        Err(DecodeError::UnknownTag { tag: 0x01, .. })
    ));
    assert!(matches!(
        SignedOp::decode(&ops[3].encode()),
        Err(DecodeError::UnknownTag { tag: 0x12, .. })
    ));
    assert!(matches!(
        QueueEntry::decode(&ops[1].encode()),
        Err(DecodeError::UnknownTag { tag: 0x02, .. })
    ));
    assert!(SignedOp::decode(&ops[1].encode()).is_ok());
    assert!(QueueEntry::decode(&ops[4].encode()).is_ok());
}

#[test]
fn every_truncation_and_extension_is_refused() {
    for op in sample_ops() {
        let b = op.encode();
        for cut in 0..b.len() {
            assert!(
                matches!(
                    BatchOp::decode(&b[..cut]),
                    Err(DecodeError::UnexpectedEnd { .. })
                ),
                "cut {cut}"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(
            BatchOp::decode(&longer),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}

#[test]
fn unknown_tags_are_refused() {
    let mut b = sample_ops()[1].encode();
    for tag in [0x00, 0x04, 0x11, 0x14, 0xff] {
        b[0] = tag;
        assert_eq!(
            BatchOp::decode(&b),
            Err(DecodeError::UnknownTag { tag, at: 0 })
        );
    }
}

#[test]
fn bad_points_inside_ops_are_refused() {
    let mut b = sample_ops()[0].encode();
    b[5 + 32] ^= 1; // deposit key's y
    assert!(matches!(
        BatchOp::decode(&b),
        Err(DecodeError::BadPoint { at: 5, .. })
    ));
    let mut b = sample_ops()[1].encode();
    b[25] ^= 1; // transfer signature's R.x
    assert!(matches!(
        BatchOp::decode(&b),
        Err(DecodeError::BadPoint { at: 25, .. })
    ));
}

fn sample_batch() -> Batch {
    let mut s = funded_state(5, 2, 100);
    s.execute_batch(Epoch(3), sample_ops()[..3].to_vec())
        .unwrap()
        .batch
}

#[test]
fn batch_round_trip() {
    let b = sample_batch();
    let bytes = b.encode();
    assert_eq!(Batch::decode(&bytes), Ok(b));
}

#[test]
fn batch_commitment_mismatch_is_refused() {
    let b = sample_batch();
    let mut bytes = b.encode();
    // the commitment sits after version, number, epoch and four field elements
    bytes[1 + 8 + 8 + 4 * 32] ^= 1;
    assert!(matches!(
        Batch::decode(&bytes),
        Err(DecodeError::DataCommitmentMismatch | DecodeError::NonCanonicalField { .. })
    ));
    // dropping an op (and fixing the count) breaks the commitment
    let mut fewer = b.clone();
    fewer.ops.pop();
    let mut bytes = fewer.encode();
    let at = 1 + 8 + 8 + 4 * 32;
    bytes[at..at + 32].copy_from_slice(&keel_state::field::fr_to_bytes(&b.data_commitment()));
    assert_eq!(
        Batch::decode(&bytes),
        Err(DecodeError::DataCommitmentMismatch)
    );
}

#[test]
fn batch_version_count_and_field_errors() {
    let b = sample_batch();
    let mut bytes = b.encode();
    bytes[0] = 9;
    assert_eq!(Batch::decode(&bytes), Err(DecodeError::UnknownVersion(9)));

    let mut bytes = b.encode();
    let count_at = 1 + 8 + 8 + 5 * 32;
    bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Batch::decode(&bytes),
        Err(DecodeError::TooLong { .. })
    ));
    bytes[count_at..count_at + 4].copy_from_slice(&60_000u32.to_be_bytes());
    assert!(matches!(
        Batch::decode(&bytes),
        Err(DecodeError::UnexpectedEnd { .. })
    ));

    let mut bytes = b.encode();
    bytes[17..49].copy_from_slice(&[0xff; 32]); // prev_root ≥ modulus
    assert_eq!(
        Batch::decode(&bytes),
        Err(DecodeError::NonCanonicalField { at: 17 })
    );
}

#[test]
fn merkle_proof_round_trip() {
    let s = funded_state(7, 3, 1);
    let p = s.proof(AccountIndex(2)).unwrap();
    assert_eq!(MerkleProof::decode(&p.encode()), Ok(p));
    assert!(matches!(
        MerkleProof::decode(&[0, 0, 0, 0, 200]),
        Err(DecodeError::TooLong { .. })
    ));
}
