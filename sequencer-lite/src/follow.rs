//! Submitting a signed operation and following it to a durability level, across a failover:
//! what a wallet does for a citizen.
//!
//! ```text
//!  submit ─▶ the first endpoint that takes it (a standby's 503 not_primary, a dead one: next)
//!     │  accepted: operation `seq` on endpoint E
//!     ▼
//!  poll E: GET /v1/ops/{seq} (or, once relocated, GET /v1/status against the op's batch)
//!     │  a lost answer, a 503, an unknown operation: E is no longer the primary
//!     ▼
//!  find the primary: the first endpoint that answers GET /v1/accounts/{from}
//!     ├─ its account's nonce ≤ the op's: it never got the op (accepted, not replicated) ─▶ resubmit
//!     └─ its nonce > the op's: the op is in one of its batches ─▶ find it, follow that batch
//! ```
//!
//! Resubmitting is safe: it is the same signed operation, and its nonce lets it execute once.
//! Each level is reported once, when first reached.

use std::time::{Duration, Instant};

use keel_state::{BatchOp, Decode, Encode, SignedOp};

use crate::{
    api::AccountView,
    client::{Client, ClientError},
    error::Reason,
    sequencer::{Level, OpStatus, Status},
};

/// How often an operation's level is polled.
pub const POLL: Duration = Duration::from_millis(250);

/// What happened while following an operation, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `endpoint` accepted the operation as its operation `seq`.
    Accepted {
        /// The primary that took it.
        endpoint: String,
        /// Its sequence number there.
        seq: u64,
    },
    /// The operation reached `level` (each level is reported once).
    Reached {
        /// The level.
        level: Level,
        /// Its batch, once cut.
        batch: Option<u64>,
    },
    /// `from` stopped answering as the primary and `to` answers as one.
    FailedOver {
        /// The endpoint that was followed.
        from: String,
        /// The endpoint that is the primary now.
        to: String,
        /// What `from` answered, or why it did not.
        why: String,
    },
    /// The new primary never got the operation (it was accepted but not replicated): it was
    /// submitted again, the same signed bytes.
    Resubmitted {
        /// The new primary.
        endpoint: String,
        /// Its sequence number there.
        seq: u64,
    },
    /// The new primary has the operation, in batch `batch`.
    Found {
        /// The new primary.
        endpoint: String,
        /// The batch that holds it.
        batch: u64,
    },
}

/// Where a followed operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    /// The level reached (at least the one asked for).
    pub level: Level,
    /// Its batch, once cut.
    pub batch: Option<u64>,
    /// The primary that holds it.
    pub endpoint: String,
    /// Failovers seen meanwhile.
    pub failovers: u32,
}

/// Why following an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The sequencer refused the operation (a rule, a malformed operation): nothing changed.
    #[error("{0}")]
    Refused(#[source] ClientError),
    /// No endpoint answered as the primary before the deadline.
    #[error("no sequencer answered as the primary within {waited:?} (tried {endpoints}): {last}")]
    Unreachable {
        /// How long the client tried.
        waited: Duration,
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        last: ClientError,
    },
    /// The deadline passed before the level was reached; the operation stands where it is.
    #[error("{target} not reached within {waited:?}: the operation is {level}{}", batch.map(|b| format!(" in batch {b}")).unwrap_or_default())]
    Timeout {
        /// The level waited for.
        target: &'static str,
        /// The level reached.
        level: &'static str,
        /// Its batch, if known.
        batch: Option<u64>,
        /// How long the client waited.
        waited: Duration,
    },
    /// Another operation of the same account took this operation's nonce (one signed
    /// elsewhere with the same key): this one can never execute.
    #[error("account {account}'s nonce {nonce} was taken by another operation (batch {batch}); this one will not execute")]
    Replaced {
        /// The account.
        account: u32,
        /// The nonce.
        nonce: u64,
        /// The batch holding the other operation.
        batch: u64,
    },
}

/// Where the operation is being followed.
#[derive(Clone, Copy, Debug)]
enum Track {
    /// Operation `seq` of the endpoint.
    Seq(u64),
    /// In batch `b` of the endpoint; its level from the endpoint's watermarks.
    Batch(u64),
}

/// A level from a sequencer's watermarks for batch `b`.
fn level_of(st: &Status, b: u64) -> Level {
    if st.proven >= b {
        Level::Proven
    } else if st.posted >= b {
        Level::Posted
    } else if st.replicated >= b {
        Level::Replicated
    } else {
        Level::Accepted
    }
}

/// An answer that says the endpoint is not (or no longer) a primary that has the operation.
fn lost(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Http(_)
            | ClientError::Refused { status: 503, .. }
            | ClientError::Refused {
                reason: Reason::UnknownOp,
                ..
            }
    )
}

impl Client {
    /// Submits `op` and follows it until it reaches `target`, for at most `timeout`, calling
    /// `on_event` as it goes. If the primary fails meanwhile, the client finds the new one among
    /// its endpoints and carries on there: it resubmits the operation if the new primary never got
    /// it, and follows the batch that holds it otherwise.
    pub async fn follow(
        &self,
        op: &SignedOp,
        target: Level,
        timeout: Duration,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Followed, FollowError> {
        let started = Instant::now();
        let deadline = started + timeout;
        // the op's batch comes after every batch cut before it is submitted
        let floor = match self.status().await {
            Ok(st) => st.last_batch,
            Err(_) => 0,
        };
        let (mut ep, mut track) = match self.submit_until(op, deadline).await? {
            Ok(st) => {
                let ep = self.base().to_owned();
                on_event(&Event::Accepted {
                    endpoint: ep.clone(),
                    seq: st.seq,
                });
                (ep, Track::Seq(st.seq))
            }
            // an earlier try's answer was lost and it did land: find it
            Err(()) => {
                let (ep, track) = self
                    .relocate(op, floor, None, None, deadline, &mut on_event)
                    .await?;
                (ep, track)
            }
        };
        let mut level = Level::Accepted;
        let mut batch = None;
        let mut failovers = 0;
        if let Track::Seq(_) = track {
            on_event(&Event::Reached { level, batch });
        }
        loop {
            if level >= target {
                return Ok(Followed {
                    level,
                    batch,
                    endpoint: ep,
                    failovers,
                });
            }
            if Instant::now() >= deadline {
                return Err(FollowError::Timeout {
                    target: target.name(),
                    level: level.name(),
                    batch,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(POLL).await;
            let polled = match track {
                Track::Seq(seq) => self
                    .get_at::<OpStatus>(&ep, &format!("/v1/ops/{seq}"))
                    .await
                    .map(|st| (st.level, st.batch)),
                Track::Batch(b) => self
                    .get_at::<Status>(&ep, "/v1/status")
                    .await
                    .map(|st| (level_of(&st, b), Some(b))),
            };
            match polled {
                Ok((now, b)) => {
                    batch = b.or(batch);
                    if now > level {
                        level = now;
                        on_event(&Event::Reached { level, batch });
                    }
                }
                Err(e) if lost(&e) => {
                    let left = Some((ep.as_str(), &e));
                    let (to, t) = self
                        .relocate(op, floor, batch, left, deadline, &mut on_event)
                        .await?;
                    failovers += u32::from(to != ep);
                    (ep, track) = (to, t);
                    if let Track::Batch(b) = track {
                        batch = Some(b);
                    }
                }
                Err(e) => return Err(FollowError::Refused(e)),
            }
        }
    }

    /// Submits until an endpoint answers: `Ok(Ok(status))` when accepted, `Ok(Err(()))` when a
    /// retry after a lost answer finds the nonce used (the earlier try landed).
    async fn submit_until(
        &self,
        op: &SignedOp,
        deadline: Instant,
    ) -> Result<Result<OpStatus, ()>, FollowError> {
        let started = Instant::now();
        let mut retried = false;
        loop {
            match self.submit(op).await {
                Ok(st) => return Ok(Ok(st)),
                Err(ClientError::Refused {
                    reason: Reason::StaleNonce,
                    ..
                }) if retried => return Ok(Err(())),
                Err(e) if lost(&e) => {
                    if Instant::now() >= deadline {
                        return Err(self.unreachable(started, e));
                    }
                    retried = true;
                    tokio::time::sleep(POLL * 2).await;
                }
                Err(e) => return Err(FollowError::Refused(e)),
            }
        }
    }

    fn unreachable(&self, started: Instant, last: ClientError) -> FollowError {
        FollowError::Unreachable {
            waited: started.elapsed(),
            endpoints: self.endpoints().join(", "),
            last,
        }
    }

    /// Finds the primary and the operation on it: resubmitted if the primary never got it,
    /// found in its batches if it did. `left` is the endpoint that stopped answering, and why:
    /// a failover is reported once the primary found is another.
    async fn relocate(
        &self,
        op: &SignedOp,
        floor: u64,
        known: Option<u64>,
        mut left: Option<(&str, &ClientError)>,
        deadline: Instant,
        on_event: &mut impl FnMut(&Event),
    ) -> Result<(String, Track), FollowError> {
        let started = Instant::now();
        loop {
            let (ep, account) = self.primary(op.from().0, deadline).await?;
            if let Some((from, why)) = left.take_if(|(from, _)| *from != ep) {
                on_event(&Event::FailedOver {
                    from: from.to_owned(),
                    to: ep.clone(),
                    why: why.to_string(),
                });
            }
            if account.nonce <= op.nonce() {
                match self.submit(op).await {
                    Ok(st) => {
                        let ep = self.base().to_owned();
                        on_event(&Event::Resubmitted {
                            endpoint: ep.clone(),
                            seq: st.seq,
                        });
                        return Ok((ep, Track::Seq(st.seq)));
                    }
                    // it landed meanwhile, or the primary moved again: look again
                    Err(ClientError::Refused {
                        reason: Reason::StaleNonce,
                        ..
                    }) => {}
                    Err(e) if lost(&e) => {}
                    Err(e) => return Err(FollowError::Refused(e)),
                }
            } else {
                match self.find(&ep, op, floor, known).await {
                    Ok(Some(Ok(b))) => {
                        on_event(&Event::Found {
                            endpoint: ep.clone(),
                            batch: b,
                        });
                        return Ok((ep, Track::Batch(b)));
                    }
                    Ok(Some(Err(b))) => {
                        return Err(FollowError::Replaced {
                            account: op.from().0,
                            nonce: op.nonce(),
                            batch: b,
                        })
                    }
                    // admitted there but not yet in a batch: wait for its batch
                    Ok(None) => {}
                    Err(e) if lost(&e) => {}
                    Err(e) => return Err(FollowError::Refused(e)),
                }
            }
            if Instant::now() >= deadline {
                return Err(FollowError::Timeout {
                    target: "found on the new primary",
                    level: "unknown",
                    batch: known,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(POLL * 2).await;
        }
    }

    /// The first endpoint that answers as a primary, with the account as it admits it.
    async fn primary(
        &self,
        account: u32,
        deadline: Instant,
    ) -> Result<(String, AccountView), FollowError> {
        let started = Instant::now();
        loop {
            let mut last = None;
            for ep in self.endpoints().to_vec() {
                match self
                    .get_at::<AccountView>(&ep, &format!("/v1/accounts/{account}"))
                    .await
                {
                    Ok(view) => {
                        self.use_endpoint(&ep);
                        return Ok((ep, view));
                    }
                    Err(e) if lost(&e) => last = Some(e),
                    Err(e) => return Err(FollowError::Refused(e)),
                }
            }
            let last = last.expect("a client has an endpoint");
            if Instant::now() >= deadline {
                return Err(self.unreachable(started, last));
            }
            tokio::time::sleep(POLL * 2).await;
        }
    }

    /// Looks for `op` in `ep`'s batches after `floor` (`known` first): `Some(Ok(b))` if batch `b`
    /// holds it, `Some(Err(b))` if batch `b` holds another operation with its account and nonce,
    /// `None` if neither is in a batch yet.
    async fn find(
        &self,
        ep: &str,
        op: &SignedOp,
        floor: u64,
        known: Option<u64>,
    ) -> Result<Option<Result<u64, u64>>, ClientError> {
        let st: Status = self.get_at(ep, "/v1/status").await?;
        let want = op.encode();
        let candidates = known
            .into_iter()
            .chain((floor + 1).max(1)..=st.last_batch)
            .filter(|&b| b <= st.last_batch);
        for b in candidates {
            let bytes = self.raw_at(ep, &format!("/v1/batches/{b}")).await?;
            let batch = keel_state::Batch::decode(&bytes)
                .map_err(|source| ClientError::BadBatch { number: b, source })?;
            for o in &batch.ops {
                if let BatchOp::L2(other) | BatchOp::L1(keel_state::QueueEntry::Forced(other)) = o {
                    if other.from() == op.from() && other.nonce() == op.nonce() {
                        return Ok(Some(if other.encode() == want {
                            Ok(b)
                        } else {
                            Err(b)
                        }));
                    }
                }
            }
        }
        Ok(None)
    }
}
