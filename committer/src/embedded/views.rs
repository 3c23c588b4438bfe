//! What the [`SettlementLayer`] reads, and the [`EmbeddedChain`]'s one write (a transaction).

use super::*;

impl SettlementLayer for EmbeddedL1 {
    fn chain_id(&self) -> u64 {
        self.genesis.chain_id
    }

    fn head(&self) -> Result<Head, L1Error> {
        Ok(self.lock().head)
    }

    fn rollup(&self) -> Result<RollupView, L1Error> {
        let m = self.lock();
        Ok(RollupView {
            head: m.head,
            deadlines: self.genesis.deadlines,
            depth: self.genesis.depth,
            checkpoint: m.checkpoint,
            lease: m.lease.map(|pk| address_of(&pk)),
            sequencers: m.sequencers.iter().copied().map(Sequencer::keyed).collect(),
            queue_len: m.queue_len,
            exit_mode: m.exit_mode,
            council_sequence: m.council_sequence,
        })
    }

    fn queue(&self, position: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error> {
        let mut out = Vec::new();
        let mut p = position;
        while out.len() < max {
            match self.queued(p)? {
                Some(q) => out.push(q),
                None => break,
            }
            p += 1;
        }
        Ok(out)
    }

    fn batch(&self, number: BatchNumber) -> Result<Option<PostedBatch>, L1Error> {
        let Some(v) = self
            .db
            .get(key(b'd', &number.0.to_be_bytes()))
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let mut r = Reader::new(&v);
        let (height, data, proof) = (|| -> DecodeResult<_> {
            let height = r.u64()?;
            let len = r.u64()?;
            let data = r
                .bytes(usize::try_from(len).unwrap_or(usize::MAX))?
                .to_vec();
            let proof = r.bytes(r.remaining())?.to_vec();
            Ok((height, data, proof))
        })()
        .map_err(|e| corrupt("batch record", e))?;
        Ok(Some(PostedBatch {
            number,
            data,
            proof,
            height,
        }))
    }

    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error> {
        match self.db.get(key(b'r', &pk.to_bytes())).map_err(store_err)? {
            Some(v) => {
                let b: [u8; 4] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("registry", "not 4 bytes"))?;
                Ok(Some(AccountIndex(u32::from_be_bytes(b))))
            }
            None => Ok(None),
        }
    }

    fn exited(&self, account: AccountIndex) -> Result<bool, L1Error> {
        Ok(self
            .db
            .get(key(b'x', &account.0.to_be_bytes()))
            .map_err(store_err)?
            .is_some())
    }
}

impl EmbeddedChain for EmbeddedL1 {
    fn nonce(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.read_u64(b'n', &address.0)
    }

    fn balance(&self, address: &L1Address) -> Result<u64, L1Error> {
        self.read_u64(b'l', &address.0)
    }

    fn submit(&self, tx: &L1Tx) -> Result<Receipt, L1Error> {
        let mut meta = self.lock();
        let (next, writes, events) = self.execute(&meta, tx).inspect_err(|e| {
            tracing::debug!(target: "keel::l1", call = tx.call.name(), error = %e, "transaction refused");
        })?;
        write_synced(&self.db, writes)?;
        *meta = next;
        Ok(Receipt {
            height: meta.head.height + 1,
            events,
        })
    }
}
