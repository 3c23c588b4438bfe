//! One transaction: its signature and nonce, the call's rules under one lock, and what it
//! writes (in one synced batch, with the chain's metadata), or nothing if it is refused.

use super::*;

impl Tx<'_> {
    pub(super) fn balance(&mut self, a: &L1Address) -> Result<u64, L1Error> {
        if let Some(b) = self.balances.get(a) {
            return Ok(*b);
        }
        let b = self.l1.read_u64(b'l', &a.0)?;
        self.balances.insert(*a, b);
        Ok(b)
    }

    pub(super) fn credit(&mut self, a: L1Address, amount: u64) -> Result<(), L1Error> {
        let b = self.balance(&a)?;
        let nb = b
            .checked_add(amount)
            .ok_or_else(|| corrupt("ledger", "a balance passed u64::MAX"))?;
        self.balances.insert(a, nb);
        Ok(())
    }

    /// Pays `amount` out of the rollup's escrow.
    pub(super) fn pay_out(&mut self, to: L1Address, amount: u64) -> Result<(), L1Error> {
        self.meta.escrow = self.meta.escrow.checked_sub(amount).ok_or_else(|| {
            corrupt(
                "escrow",
                "a proven payout exceeds the rollup's escrow (the proof system is unsound)",
            )
        })?;
        self.credit(to, amount)
    }

    /// Refuses every call that stops in exit mode.
    pub(super) fn running(&self) -> Result<(), L1Error> {
        match self.meta.exit_mode {
            Some(_) => Err(Rejection::ExitModeActive.into()),
            None => Ok(()),
        }
    }

    /// The lease passes to `to` in the next epoch, from now.
    pub(super) fn hand_lease(&mut self, to: PublicKey) {
        let now = self.meta.head.time_ms;
        let epoch = Epoch(self.meta.lease.epoch.0 + 1);
        self.meta.lease = Lease {
            epoch,
            sequencer: to,
            since_ms: now,
            last_batch_ms: now,
        };
        self.events.push(Event::LeaseClaimed {
            epoch,
            sequencer: address_of(&to),
        });
        tracing::warn!(target: "keel::l1", epoch = epoch.0, "sequencer lease handed over");
    }

    pub(super) fn enqueue(&mut self, entry: QueueEntry) -> u64 {
        let position = self.meta.queue_len;
        let hash_after = entry.chain(self.meta.queue_tail);
        let mut v = entry.encode();
        v.extend_from_slice(&self.meta.head.time_ms.to_be_bytes());
        v.extend_from_slice(&fr_to_bytes(&hash_after));
        self.writes.put(key(b'q', &position.to_be_bytes()), v);
        self.meta.queue_len += 1;
        self.meta.queue_tail = hash_after;
        position
    }
}

impl EmbeddedL1 {
    pub(super) fn execute(
        &self,
        meta: &Meta,
        tx: &L1Tx,
    ) -> Result<(Meta, WriteBatch, Vec<Event>), L1Error> {
        if !tx.verify(self.genesis.chain_id) {
            return Err(Rejection::BadSignature.into());
        }
        let sender = tx.sender();
        let expected = self.read_u64(b'n', &sender.0)?;
        if tx.nonce != expected {
            return Err(Rejection::BadNonce {
                expected,
                got: tx.nonce,
            }
            .into());
        }
        let mut t = Tx {
            l1: self,
            meta: meta.clone(),
            balances: HashMap::new(),
            writes: WriteBatch::default(),
            events: Vec::new(),
        };
        match &tx.call {
            Call::SubmitBatch { data, proof } => self.submit_batch(&mut t, tx, data, proof)?,
            Call::Deposit { pk, amount } => self.deposit(&mut t, sender, pk, *amount)?,
            Call::Force(op) => {
                t.running()?;
                if matches!(op, SignedOp::Withdraw(_)) {
                    return Err(Rejection::ForcedWithdrawal.into());
                }
                let position = t.enqueue(QueueEntry::Forced(*op));
                t.events.push(Event::Enqueued {
                    position,
                    account: None,
                });
            }
            Call::ActivateExitMode => self.activate_exit_mode(&mut t)?,
            Call::ClaimLease => self.claim_lease(&mut t, &tx.signer)?,
            Call::Heartbeat => self.heartbeat(&mut t, &tx.signer)?,
            Call::Council {
                action,
                sequence,
                signature,
            } => self.council(&mut t, action, *sequence, signature)?,
            Call::Exit {
                account,
                proof,
                recipient,
            } => self.exit(&mut t, &tx.signer, account, proof, *recipient)?,
            Call::Reclaim { position } => self.reclaim(&mut t, *position)?,
        }
        let Tx {
            meta,
            balances,
            mut writes,
            events,
            ..
        } = t;
        for (a, b) in balances {
            writes.put(key(b'l', &a.0), b.to_be_bytes());
        }
        writes.put(key(b'n', &sender.0), (expected + 1).to_be_bytes());
        writes.put(b"meta", meta.encode());
        Ok((meta, writes, events))
    }
}
