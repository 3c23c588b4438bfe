//! `SubmitBatch`: in order, in the lease holder's epoch, the proof verified against the public
//! inputs computed from the chain's own state and the posted data; withdrawals credited.

use super::*;

impl EmbeddedL1 {
    pub(super) fn submit_batch(
        &self,
        t: &mut Tx<'_>,
        tx: &L1Tx,
        data: &[u8],
        proof: &[u8],
    ) -> Result<(), L1Error> {
        t.running()?;
        let m = &t.meta;
        let batch = match Batch::decode(data) {
            Ok(b) => b,
            Err(DecodeError::DataCommitmentMismatch) => return Err(Rejection::DataMismatch.into()),
            Err(e) => return Err(Rejection::BadData(e.to_string()).into()),
        };
        if batch.epoch != m.lease.epoch {
            return Err(Rejection::StaleEpoch {
                current: m.lease.epoch,
                got: batch.epoch,
            }
            .into());
        }
        if tx.signer != m.lease.sequencer {
            return Err(Rejection::NotLeaseHolder.into());
        }
        let expected = BatchNumber(m.checkpoint.batch.0 + 1);
        if batch.number != expected {
            return Err(Rejection::WrongBatchNumber {
                expected,
                got: batch.number,
            }
            .into());
        }
        if batch.prev_root != m.checkpoint.root {
            return Err(Rejection::WrongPrevRoot.into());
        }
        if batch.queue_before != m.checkpoint.queue_hash {
            return Err(Rejection::WrongQueueStart.into());
        }
        // the batch's L1 operations must be exactly the next unconsumed entries, in order
        let mut queue_hash = m.checkpoint.queue_hash;
        let mut position = m.checkpoint.queue_consumed;
        for op in &batch.ops {
            let BatchOp::L1(entry) = op else { continue };
            match self.queued(position)? {
                Some(q) if q.entry == *entry => queue_hash = q.hash_after,
                _ => return Err(Rejection::QueueOrder { position }.into()),
            }
            position += 1;
        }
        if batch.queue_after != queue_hash {
            return Err(Rejection::WrongQueueEnd.into());
        }
        let public = PublicInputs::of(&batch);
        self.verifier
            .verify(&BatchProof {
                public,
                proof: proof.to_vec(),
            })
            .map_err(|e| Rejection::InvalidProof(e.to_string()))?;

        // accepted: record the checkpoint and the data, pay the batch's withdrawals
        let now = t.meta.head.time_ms;
        t.meta.checkpoint = Checkpoint {
            batch: batch.number,
            root: batch.new_root,
            queue_hash,
            queue_consumed: position,
            proven_at_ms: now,
        };
        t.meta.lease.last_batch_ms = now;
        let height = t.meta.head.height + 1;
        let mut v = height.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u64).to_be_bytes());
        v.extend_from_slice(data);
        v.extend_from_slice(proof);
        t.writes.put(key(b'd', &batch.number.0.to_be_bytes()), v);
        t.events.push(Event::BatchProven {
            number: batch.number,
            root: batch.new_root,
        });
        // An L2 withdrawal in a proven batch was valid (the circuit refuses a batch with an
        // invalid L2 operation), so it is paid.
        for op in &batch.ops {
            if let BatchOp::L2(SignedOp::Withdraw(w)) = op {
                t.pay_out(w.recipient, w.amount)?;
                t.events.push(Event::WithdrawalPaid {
                    recipient: w.recipient,
                    amount: w.amount,
                });
            }
        }
        tracing::info!(target: "keel::l1", batch = batch.number.0, ops = batch.ops.len(), "batch proven");
        Ok(())
    }
}
