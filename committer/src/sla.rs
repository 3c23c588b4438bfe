//! The deployment's published deadlines: what the L1 enforces and what `keel sla` prints.
//!
//! | constant | default | what it bounds |
//! |---|---|---|
//! | [`BLOCK_TIME`] | 2 s | how often the embedded L1 seals a block (its clock ticks per block) |
//! | [`FAILOVER_TIMEOUT`] | 30 s | a lease holder silent this long may be replaced by a registered standby |
//! | [`FORCED_INCLUSION_DEADLINE`] | 30 min | an L1 queue entry unserved this long lets anyone activate exit mode |
//! | [`PROOF_DEADLINE`] | 2 h | no batch proven for this long lets anyone activate exit mode |
//! | [`COUNCIL_THRESHOLD`] of [`COUNCIL_MEMBERS`] | 6 of 8 | council signatures that may rotate the sequencers or activate exit mode at once |
//!
//! The L1 measures every deadline on its own clock: the timestamp of its last sealed block.

use std::time::Duration;

use keel_state::encoding::{DecodeResult, Reader};

/// Default block time of the embedded L1.
pub const BLOCK_TIME: Duration = Duration::from_secs(2);
/// Default silence after which a standby may claim the sequencer lease.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default age of the oldest unserved queue entry after which anyone may activate exit mode.
pub const FORCED_INCLUSION_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Default time without a proven batch after which anyone may activate exit mode.
pub const PROOF_DEADLINE: Duration = Duration::from_secs(2 * 60 * 60);

/// Default council threshold `t` (signatures needed).
pub const COUNCIL_THRESHOLD: u16 = 6;
/// Default council size `n`.
pub const COUNCIL_MEMBERS: u16 = 8;

/// The deadlines of one deployment, fixed at genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deadlines {
    /// See [`BLOCK_TIME`].
    #[serde(rename = "block_time_ms", with = "crate::rpc::wire::millis")]
    pub block_time: Duration,
    /// See [`FAILOVER_TIMEOUT`].
    #[serde(rename = "failover_timeout_ms", with = "crate::rpc::wire::millis")]
    pub failover_timeout: Duration,
    /// See [`FORCED_INCLUSION_DEADLINE`].
    #[serde(rename = "forced_inclusion_ms", with = "crate::rpc::wire::millis")]
    pub forced_inclusion: Duration,
    /// See [`PROOF_DEADLINE`].
    #[serde(rename = "proof_ms", with = "crate::rpc::wire::millis")]
    pub proof: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            block_time: BLOCK_TIME,
            failover_timeout: FAILOVER_TIMEOUT,
            forced_inclusion: FORCED_INCLUSION_DEADLINE,
            proof: PROOF_DEADLINE,
        }
    }
}

impl Deadlines {
    /// The four deadlines in milliseconds, in declaration order.
    fn millis(&self) -> [u64; 4] {
        [
            self.block_time,
            self.failover_timeout,
            self.forced_inclusion,
            self.proof,
        ]
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn encode_to(&self, out: &mut Vec<u8>) {
        for ms in self.millis() {
            out.extend_from_slice(&ms.to_be_bytes());
        }
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut ms = || r.u64().map(Duration::from_millis);
        Ok(Self {
            block_time: ms()?,
            failover_timeout: ms()?,
            forced_inclusion: ms()?,
            proof: ms()?,
        })
    }
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
