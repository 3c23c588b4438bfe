//! The council's actions: a threshold signature over the action and its sequence number.

use super::*;

impl EmbeddedL1 {
    pub(super) fn council(
        &self,
        t: &mut Tx<'_>,
        action: &CouncilAction,
        sequence: u64,
        signature: &CouncilSignature,
    ) -> Result<(), L1Error> {
        let expected = t.meta.council_sequence;
        if sequence != expected {
            return Err(Rejection::CouncilReplay {
                expected,
                got: sequence,
            }
            .into());
        }
        let msg = action.message(self.genesis.chain_id, sequence);
        if !self.genesis.council.verify(&msg, signature) {
            return Err(Rejection::BadCouncilSignature.into());
        }
        t.running()?;
        let now = t.meta.head.time_ms;
        match action {
            CouncilAction::ActivateExitMode => {
                t.meta.exit_mode = Some(ExitMode {
                    reason: ExitReason::Council,
                    since_ms: now,
                });
                t.events.push(Event::ExitModeActivated(ExitReason::Council));
                tracing::warn!(target: "keel::l1", "exit mode activated by the council");
            }
            CouncilAction::RotateSequencers(set) => {
                let Some(first) = set.first() else {
                    return Err(Rejection::EmptySequencerSet.into());
                };
                t.meta.sequencers = set.clone();
                t.events.push(Event::SequencersRotated { count: set.len() });
                if !set.contains(&t.meta.lease.sequencer) {
                    t.hand_lease(*first);
                }
                tracing::warn!(target: "keel::l1", sequencers = set.len(), "sequencer set rotated by the council");
            }
        }
        t.meta.council_sequence += 1;
        Ok(())
    }
}
