//! The standby role: follow the primary's stream into a replica (checked with our own STF,
//! acknowledged with this node's signature), serve typed refusals on the primary's routes, and
//! claim the lease in this node's take-over slot.

use std::{thread, time::Duration};

use keel_committer::{L1Error, Rejection, RollupView};
use keel_sequencer::{node::Role, replica};

use crate::{
    edit,
    server::{node_router, Server},
    Node, NodeError, State, POLL,
};

impl Node {
    pub(crate) fn standby(&self, view: &RollupView) -> Result<State, NodeError> {
        let replica = self.open_replica(view, "diverged")?;
        edit(&self.status, |s| {
            s.role = Role::Standby;
            s.committer = None;
        });
        let server = Server::start(
            &self.rt,
            &self.listener,
            replica::router(replica.watch()).merge(node_router(self.status.clone())),
            self.config.sequencer.http,
        )?;
        let (stop_follow, stop_rx) = tokio::sync::watch::channel(false);
        let following = self.rt.spawn(replica::follow(
            replica.clone(),
            self.config.peers.clone(),
            self.config.key.clone(),
            stop_rx,
            Duration::from_millis(500),
        ));
        tracing::info!(
            "standby at batch {}, following {:?}",
            replica.last_batch(),
            self.config.peers
        );
        let mut refused = None;
        let claimed = loop {
            if self.stopping() {
                break false;
            }
            let st = replica.status();
            if st.refused.is_some() && st.refused != refused {
                tracing::warn!("refused {}", st.refused.as_deref().unwrap_or(""));
                refused = st.refused;
            }
            thread::sleep(POLL);
            let view = match self.l1.rollup() {
                Ok(v) => v,
                Err(_) => continue,
            };
            if view.exit_mode.is_some() {
                break false;
            }
            if view.lease.sequencer == self.me {
                break true;
            }
            if view.head.time_ms < self.claimable_at(&view) {
                continue;
            }
            match self.settler.claim_lease() {
                Ok(_) => {
                    tracing::info!(
                        "claimed the lease (epoch {}) at batch {}",
                        view.lease.epoch.0 + 1,
                        replica.last_batch()
                    );
                    break true;
                }
                // not yet; or claimed already, on an L1 whose settled view has not caught up
                Err(L1Error::Rejected(
                    Rejection::LeaseNotExpired { .. }
                    | Rejection::BadNonce { .. }
                    | Rejection::AlreadyLeaseHolder,
                )) => {}
                Err(e) => tracing::warn!("claiming the lease: {e}"),
            }
        };
        let _ = stop_follow.send(true);
        self.rt.block_on(following).ok();
        drop(server);
        // the primary role resumes from the proven checkpoint plus every replicated batch
        Ok(if claimed {
            State::Deciding
        } else {
            State::Stopped
        })
    }

    /// When this node may claim: the lease's claimable time plus its rank's back-off.
    pub(crate) fn claimable_at(&self, view: &RollupView) -> u64 {
        let set = &view.sequencers;
        let n = set.len().max(1);
        let holder = set.iter().position(|s| s.address == view.lease.sequencer);
        let mine = set.iter().position(|s| s.address == self.me).unwrap_or(0);
        let rank = match holder {
            Some(h) => (mine + n - h - 1) % n,
            None => mine,
        };
        view.lease
            .claimable_at_ms(view.deadlines.failover_timeout)
            .saturating_add(rank as u64 * self.config.backoff.as_millis() as u64)
    }
}
