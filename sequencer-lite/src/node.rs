//! What a node's services show of themselves: `GET /v1/node` (the role the L1's lease gives it,
//! its prover's proofs, its committer) and a prover service's `GET /v1/prover`. One definition
//! for the process that serves it and for whoever reads it (the devnet, operators' scripts,
//! tests).

use serde::{Deserialize, Serialize};

/// Which role a node holds: the L1's lease decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Not yet decided: the node is still reading the L1.
    #[default]
    Starting,
    /// It holds the lease and sequences.
    Primary,
    /// It follows the primary and may take over.
    Standby,
    /// It was the primary, and the L1's lease moved on: it has stopped accepting and rejoins
    /// as a standby.
    Fenced,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Starting => "starting",
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Fenced => "fenced",
        })
    }
}

/// The proofs a prover made, as `/v1/node` and `/v1/prover` show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStats {
    /// Batches proven since the start.
    pub proofs: u64,
    /// The last batch proven.
    pub proved: u64,
    /// How long the last proof took, in milliseconds.
    pub proof_ms_last: u64,
    /// All proofs together, in milliseconds.
    pub proof_ms_total: u64,
    /// The time the prover's GPU had work in flight during the proofs, in milliseconds (0
    /// without a GPU).
    #[serde(default)]
    pub gpu_busy_ms_total: u64,
}

impl ProofStats {
    /// Counts the proof of batch `batch`, which took `ms` milliseconds, `gpu_busy_ms` of them
    /// with work in flight on the GPU.
    pub fn record(&mut self, batch: u64, ms: u64, gpu_busy_ms: u64) {
        self.proofs += 1;
        self.proved = batch;
        self.proof_ms_last = ms;
        self.proof_ms_total += ms;
        self.gpu_busy_ms_total += gpu_busy_ms;
    }
}

/// A primary's committer, as `/v1/node` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitterView {
    /// The last batch whose proof is settled on the L1.
    pub settled: u64,
    /// The last batch whose data is included on the L1.
    pub included: u64,
    /// Proven batches held until their predecessors are posted.
    pub held: Vec<u64>,
    /// Posts made.
    pub posted: u64,
    /// Why the committer stopped, if it did.
    pub halted: Option<String>,
}

/// What `GET /v1/node` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The role the lease gives it.
    pub role: Role,
    /// The epoch this node sequences in (as primary).
    pub epoch: u64,
    /// The prover: loading (empty), or its backend.
    pub prover: String,
    /// The proofs this node made since it started.
    #[serde(flatten)]
    pub proofs: ProofStats,
    /// The committer, while primary.
    pub committer: Option<CommitterView>,
    /// Each time this node was fenced, and what the L1 said.
    pub fenced: Vec<String>,
}

/// What a prover service (`keel prover run`) shows at `GET /v1/prover`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProverStatus {
    /// What makes the commitments.
    pub backend: String,
    /// This prover's shard, `i/P`.
    pub shard: String,
    /// The L1's proven batch when the state was last rebuilt.
    pub synced_at: u64,
    /// The last batch applied to the state.
    pub applied: u64,
    /// The last batch a committer took.
    pub delivered: u64,
    /// Proofs made since the start.
    #[serde(flatten)]
    pub proofs: ProofStats,
    /// The last trouble the prover recovered from (a lost stream, a refused proof).
    pub trouble: Option<String>,
    /// Milliseconds since the prover started proving (its keys loaded).
    #[serde(default)]
    pub uptime_ms: u64,
    /// The share of that time the GPU had work in flight (`gpu_busy_ms_total / uptime_ms`;
    /// null without a GPU): how busy the pipeline keeps it.
    #[serde(default)]
    pub gpu_utilisation: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_view_round_trips_with_its_role_in_snake_case() {
        let mut s = NodeStatus {
            role: Role::Primary,
            epoch: 2,
            prover: "CPU".into(),
            ..Default::default()
        };
        s.proofs.record(7, 1_500, 0);
        s.proofs.record(8, 500, 0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["role"], "primary");
        assert_eq!(json["proofs"], 2);
        assert_eq!(json["proved"], 8);
        assert_eq!(json["proof_ms_total"], 2_000);
        assert_eq!(serde_json::from_value::<NodeStatus>(json).unwrap(), s);
        let starting: NodeStatus = serde_json::from_str(
            r#"{"role":"starting","epoch":0,"prover":"","proofs":0,"proved":0,
                "proof_ms_last":0,"proof_ms_total":0,"committer":null,"fenced":[]}"#,
        )
        .unwrap();
        assert_eq!(starting.role, Role::Starting);
        assert!(serde_json::from_str::<Role>(r#""leader""#).is_err());
    }
}
