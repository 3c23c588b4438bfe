//! The chain's keys and values in RocksDB, and the metadata's encoding.

use super::*;

pub(super) const META_VERSION: u8 = 1;

impl Encode for Meta {
    fn encode_to(&self, out: &mut Vec<u8>) {
        let u64s = |out: &mut Vec<u8>, xs: &[u64]| {
            for x in xs {
                out.extend_from_slice(&x.to_be_bytes());
            }
        };
        out.push(META_VERSION);
        let c = &self.checkpoint;
        let l = &self.lease;
        u64s(out, &[self.head.height, self.head.time_ms, c.batch.0]);
        out.extend_from_slice(&fr_to_bytes(&c.root));
        out.extend_from_slice(&fr_to_bytes(&c.queue_hash));
        u64s(out, &[c.queue_consumed, c.proven_at_ms, l.epoch.0]);
        out.extend_from_slice(&l.sequencer.to_bytes());
        u64s(out, &[l.since_ms, l.last_batch_ms, self.queue_len]);
        out.extend_from_slice(&fr_to_bytes(&self.queue_tail));
        out.extend_from_slice(&self.next_index.to_be_bytes());
        u64s(out, &[self.escrow]);
        match self.exit_mode {
            None => out.push(0),
            Some(m) => {
                out.push(match m.reason {
                    ExitReason::ForcedInclusion => 1,
                    ExitReason::ProofDeadline => 2,
                    ExitReason::Council => 3,
                });
                u64s(out, &[m.since_ms]);
            }
        }
        u64s(out, &[self.council_sequence]);
        put_keys(out, &self.sequencers);
    }
}

impl Decode for Meta {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u8()?;
        if version != META_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let head = Head {
            height: r.u64()?,
            time_ms: r.u64()?,
        };
        let checkpoint = Checkpoint {
            batch: BatchNumber(r.u64()?),
            root: r.fr()?,
            queue_hash: r.fr()?,
            queue_consumed: r.u64()?,
            proven_at_ms: r.u64()?,
        };
        let lease = Lease {
            epoch: Epoch(r.u64()?),
            sequencer: PublicKey::decode_from(r)?,
            since_ms: r.u64()?,
            last_batch_ms: r.u64()?,
        };
        let queue_len = r.u64()?;
        let queue_tail = r.fr()?;
        let next_index = r.u32()?;
        let escrow = r.u64()?;
        let at = r.position();
        let exit_mode = match r.u8()? {
            0 => None,
            tag @ 1..=3 => Some(ExitMode {
                reason: match tag {
                    1 => ExitReason::ForcedInclusion,
                    2 => ExitReason::ProofDeadline,
                    _ => ExitReason::Council,
                },
                since_ms: r.u64()?,
            }),
            tag => return Err(DecodeError::UnknownTag { tag, at }),
        };
        let council_sequence = r.u64()?;
        let sequencers = keys(r)?;
        Ok(Self {
            head,
            checkpoint,
            lease,
            sequencers,
            queue_len,
            queue_tail,
            next_index,
            escrow,
            exit_mode,
            council_sequence,
        })
    }
}

pub(super) fn key(prefix: u8, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(prefix);
    k.extend_from_slice(id);
    k
}

pub(super) fn store_err(e: rocksdb::Error) -> L1Error {
    L1Error::Store(e.to_string())
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> L1Error {
    L1Error::Corrupt(format!("{what}: {e}"))
}

pub(super) fn u64_of(bytes: &[u8], what: &str) -> Result<u64, L1Error> {
    Ok(u64::from_be_bytes(
        bytes.try_into().map_err(|_| corrupt(what, "not 8 bytes"))?,
    ))
}

pub(super) fn write_synced(db: &DB, w: WriteBatch) -> Result<(), L1Error> {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(w, &opts).map_err(store_err)
}

#[cfg(test)]
mod tests {
    use keel_state::test_utils::key;

    use super::*;

    #[test]
    fn meta_round_trips_with_and_without_exit_mode() {
        let mut m = Meta {
            head: Head {
                height: 3,
                time_ms: 44,
            },
            checkpoint: Checkpoint {
                batch: BatchNumber(2),
                root: Fr::from(7),
                queue_hash: Fr::from(8),
                queue_consumed: 5,
                proven_at_ms: 40,
            },
            lease: Lease {
                epoch: Epoch(3),
                sequencer: key(1).public_key(),
                since_ms: 10,
                last_batch_ms: 40,
            },
            sequencers: vec![key(1).public_key(), key(2).public_key()],
            queue_len: 9,
            queue_tail: Fr::from(11),
            next_index: 4,
            escrow: 1234,
            exit_mode: None,
            council_sequence: 6,
        };
        for exit_mode in [
            None,
            Some(ExitMode {
                reason: ExitReason::ForcedInclusion,
                since_ms: 41,
            }),
            Some(ExitMode {
                reason: ExitReason::ProofDeadline,
                since_ms: 42,
            }),
            Some(ExitMode {
                reason: ExitReason::Council,
                since_ms: 43,
            }),
        ] {
            m.exit_mode = exit_mode;
            let back = Meta::decode(&m.encode()).unwrap();
            assert_eq!(back.encode(), m.encode());
            assert_eq!(back.exit_mode, exit_mode);
            assert_eq!(back.lease, m.lease);
            assert_eq!(back.checkpoint, m.checkpoint);
        }
    }
}
