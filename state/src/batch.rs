//! Batches, their data commitment, and their encoding (what the committer posts to the L1).
//!
//! ```text
//! data_commitment = compress(Batch, d_n, n)   where d_0 = 0, d_{i+1} = compress(Data, d_i, entry_hash(op_i))
//! queue hash      q_{j+1} = compress(Queue, q_j, entry_hash(entry_j))   over L1 queue entries, q_0 = 0
//! ```
//!
//! Both are chains of one-permutation compressions ([`poseidon::compress`]), each in its own
//! domain, so the circuit can compute them op by op, and
//! padding no-ops simply leave them unchanged. The encoding is
//! `version(1) ‖ number(8) ‖ epoch(8) ‖ prev_root ‖ new_root ‖ queue_before ‖ queue_after ‖
//! data_commitment ‖ count(4) ‖ ops`; decoding checks that `data_commitment` matches the ops.

use crate::{
    encoding::{Decode, DecodeError, DecodeResult, Encode, Reader},
    field::{fr_to_bytes, Fr},
    ids::{BatchNumber, Epoch},
    ops::BatchOp,
    poseidon,
};

/// Encoding version of [`Batch`].
pub const BATCH_VERSION: u8 = 1;

/// The most operations a batch encoding may announce; a decoder refuses more.
pub const MAX_BATCH_OPS: u32 = 1 << 16;

/// The smallest encoded operation (a deposit: tag + index + key + amount), used to bound what a
/// length prefix may announce before any allocation.
const MIN_OP_BYTES: usize = 1 + 4 + 64 + 8;

/// An ordered, executed batch: the state transition it makes and the operations that make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Sequence number (the first batch is 1).
    pub number: BatchNumber,
    /// Sequencer epoch it was produced in.
    pub epoch: Epoch,
    /// State root before the batch.
    pub prev_root: Fr,
    /// State root after the batch.
    pub new_root: Fr,
    /// L1 queue running hash before the batch.
    pub queue_before: Fr,
    /// L1 queue running hash after the batch.
    pub queue_after: Fr,
    /// The operations, in order.
    pub ops: Vec<BatchOp>,
}

/// The data commitment of a sequence of operations.
pub fn data_commitment(ops: &[BatchOp]) -> Fr {
    use poseidon::{compress, Domain};
    let d = ops.iter().fold(Fr::zero(), |d, op| {
        compress(Domain::Data, d, op.entry_hash())
    });
    compress(Domain::Batch, d, Fr::from(ops.len() as u64))
}

impl Batch {
    /// [`data_commitment`] of the batch's operations.
    pub fn data_commitment(&self) -> Fr {
        data_commitment(&self.ops)
    }

    /// Number of L1 queue entries the batch consumes.
    pub fn queue_entries(&self) -> usize {
        self.ops.iter().filter(|op| op.is_queue_entry()).count()
    }
}

impl Encode for Batch {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(BATCH_VERSION);
        out.extend_from_slice(&self.number.0.to_be_bytes());
        out.extend_from_slice(&self.epoch.0.to_be_bytes());
        for x in [
            &self.prev_root,
            &self.new_root,
            &self.queue_before,
            &self.queue_after,
        ] {
            out.extend_from_slice(&fr_to_bytes(x));
        }
        out.extend_from_slice(&fr_to_bytes(&self.data_commitment()));
        let count =
            u32::try_from(self.ops.len()).expect("batch sizes are bounded by MAX_BATCH_OPS");
        out.extend_from_slice(&count.to_be_bytes());
        for op in &self.ops {
            op.encode_to(out);
        }
    }
}

impl Decode for Batch {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u8()?;
        if version != BATCH_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let number = BatchNumber(r.u64()?);
        let epoch = Epoch(r.u64()?);
        let prev_root = r.fr()?;
        let new_root = r.fr()?;
        let queue_before = r.fr()?;
        let queue_after = r.fr()?;
        let commitment = r.fr()?;
        let count = r.u32()?;
        if count > MAX_BATCH_OPS {
            return Err(DecodeError::TooLong {
                count: count.into(),
                max: MAX_BATCH_OPS.into(),
            });
        }
        // never trust the prefix for an allocation larger than the input could hold
        let mut ops = Vec::with_capacity((count as usize).min(r.remaining() / MIN_OP_BYTES));
        for _ in 0..count {
            ops.push(BatchOp::decode_from(r)?);
        }
        let batch = Self {
            number,
            epoch,
            prev_root,
            new_root,
            queue_before,
            queue_after,
            ops,
        };
        if batch.data_commitment() != commitment {
            return Err(DecodeError::DataCommitmentMismatch);
        }
        Ok(batch)
    }
}
