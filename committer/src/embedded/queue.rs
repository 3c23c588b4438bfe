//! The L1 queue: deposits escrowed, forced transactions, reclaims of what was never included,
//! the running hash.

use super::*;

impl EmbeddedL1 {
    pub(super) fn deposit(
        &self,
        t: &mut Tx<'_>,
        sender: L1Address,
        pk: &PublicKey,
        amount: u64,
    ) -> Result<(), L1Error> {
        t.running()?;
        if amount == 0 {
            return Err(Rejection::ZeroAmount.into());
        }
        let balance = t.balance(&sender)?;
        if balance < amount {
            return Err(Rejection::InsufficientBalance {
                balance,
                needed: amount,
            }
            .into());
        }
        let to = match self.account_index(pk)? {
            Some(i) => i,
            None => {
                let i = AccountIndex(t.meta.next_index);
                if !index_fits(i, self.genesis.depth) {
                    return Err(Rejection::TreeFull.into());
                }
                t.meta.next_index += 1;
                t.writes.put(key(b'r', &pk.to_bytes()), i.0.to_be_bytes());
                i
            }
        };
        t.balances.insert(sender, balance - amount);
        t.meta.escrow = t
            .meta
            .escrow
            .checked_add(amount)
            .ok_or_else(|| corrupt("escrow", "passed u64::MAX"))?;
        let position = t.enqueue(QueueEntry::Deposit(keel_state::Deposit {
            to,
            pk: *pk,
            amount,
        }));
        // who paid, so the deposit can be refunded if exit mode comes before a batch consumes it
        t.writes.put(key(b'f', &position.to_be_bytes()), sender.0);
        t.events.push(Event::Enqueued {
            position,
            account: Some(to),
        });
        Ok(())
    }

    /// Refunds an unconsumed deposit in exit mode: its funds are in the escrow but in no proven
    /// state, so no exit can pay them.
    pub(super) fn reclaim(&self, t: &mut Tx<'_>, position: u64) -> Result<(), L1Error> {
        if t.meta.exit_mode.is_none() {
            return Err(Rejection::NotInExitMode.into());
        }
        let not = || L1Error::from(Rejection::NotReclaimable { position });
        if position < t.meta.checkpoint.queue_consumed {
            return Err(not());
        }
        let Some(QueuedEntry {
            entry: QueueEntry::Deposit(deposit),
            ..
        }) = self.queued(position)?
        else {
            return Err(not());
        };
        let id = position.to_be_bytes();
        let depositor = match self.db.get(key(b'f', &id)).map_err(store_err)? {
            Some(v) => L1Address(
                v.as_slice()
                    .try_into()
                    .map_err(|_| corrupt("depositor", "not 20 bytes"))?,
            ),
            None => return Err(not()),
        };
        if self.db.get(key(b'c', &id)).map_err(store_err)?.is_some() {
            return Err(Rejection::AlreadyReclaimed { position }.into());
        }
        t.pay_out(depositor, deposit.amount)?;
        t.writes.put(key(b'c', &id), []);
        t.events.push(Event::Reclaimed {
            position,
            recipient: depositor,
            amount: deposit.amount,
        });
        Ok(())
    }

    pub(super) fn queued(&self, position: u64) -> Result<Option<QueuedEntry>, L1Error> {
        let Some(v) = self
            .db
            .get(key(b'q', &position.to_be_bytes()))
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let mut r = Reader::new(&v);
        let q = (|| -> DecodeResult<QueuedEntry> {
            Ok(QueuedEntry {
                position,
                entry: QueueEntry::decode_from(&mut r)?,
                enqueued_at_ms: r.u64()?,
                hash_after: r.fr()?,
            })
        })()
        .map_err(|e| corrupt("queue entry", e))?;
        Ok(Some(q))
    }
}
