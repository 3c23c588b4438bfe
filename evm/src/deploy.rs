//! Deploying a Keel rollup on an EVM chain: the Poseidon contract, the batch verifier's parts
//! (from `keel prover keygen --evm`) and the rollup with its genesis. What `keel evm deploy`
//! runs, and what a devnet on anvil will.

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    sol_types::SolValue,
};
use serde::{Deserialize, Serialize};

use crate::{
    contracts::{deploy_code, deploy_rollup, DeployError, KeelRollup},
    verifier::VerifierContracts,
};

/// A deployment's genesis on an EVM chain (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmGenesis {
    /// The rollup's chain id (signed into exits and the council's messages).
    pub chain_id: u64,
    /// The state tree's depth (the verifier's keys must be for it).
    pub depth: u8,
    /// Seconds of silence before a standby may claim the lease.
    pub failover_timeout_s: u64,
    /// Seconds a queue entry may wait before anyone may activate exit mode.
    pub forced_inclusion_s: u64,
    /// Seconds without a proven batch before anyone may activate exit mode.
    pub proof_s: u64,
    /// The registered sequencers' addresses, in take-over order.
    pub sequencers: Vec<Address>,
    /// Their acknowledgement keys (Grumpkin, as `keel` writes public keys), in the same order.
    pub sequencer_keys: Vec<keel_state::PublicKey>,
    /// The council's group key (`keel council dkg3` prints it).
    pub council_x: U256,
    /// Its y coordinate.
    pub council_y: U256,
}

/// Where a deployment's contracts are (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The EVM chain id.
    pub evm_chain_id: u64,
    /// The rollup contract.
    pub rollup: Address,
    /// The Poseidon contract.
    pub poseidon: Address,
    /// The batch verifier the rollup calls (the last part).
    pub verifier: Address,
    /// The block of the rollup's creation (where readers of its events start).
    pub block: u64,
}

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum EvmDeployError {
    /// The genesis cannot start a rollup.
    #[error("the genesis: {0}")]
    Genesis(String),
    /// A contract's creation failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The node failed.
    #[error("the L1 node")]
    Rpc(#[source] alloy::transports::TransportError),
}

impl EvmGenesis {
    /// Why this genesis cannot start a rollup, if it cannot (the contract refuses the same).
    pub fn check(&self) -> Result<(), String> {
        if self.depth == 0 || self.depth > 32 {
            return Err(format!("depth {} is outside 1..=32", self.depth));
        }
        if self.sequencers.is_empty() {
            return Err("at least one sequencer must be registered".into());
        }
        if self.sequencers.contains(&Address::ZERO) {
            return Err("the zero address cannot be a sequencer".into());
        }
        if self.sequencer_keys.len() != self.sequencers.len() {
            return Err(format!(
                "{} sequencers need as many acknowledgement keys, not {}",
                self.sequencers.len(),
                self.sequencer_keys.len()
            ));
        }
        Ok(())
    }
}

/// Deploys the verifier's parts in order (each after the first naming the one before), the
/// Poseidon contract and the rollup.
pub async fn deploy(
    provider: &DynProvider,
    genesis: &EvmGenesis,
    verifier: &VerifierContracts,
) -> Result<Deployment, EvmDeployError> {
    genesis.check().map_err(EvmDeployError::Genesis)?;
    if verifier.parts.is_empty() {
        return Err(EvmDeployError::Genesis(
            "the verifier has no contracts".into(),
        ));
    }
    let verifier_at = deploy_verifier(provider, verifier).await?;
    let (rollup, poseidon) = deploy_rollup(
        provider,
        KeelRollup::Genesis {
            chainId: genesis.chain_id,
            depth: genesis.depth,
            failoverTimeout: genesis.failover_timeout_s,
            forcedInclusionDeadline: genesis.forced_inclusion_s,
            proofDeadline: genesis.proof_s,
            sequencers: genesis.sequencers.clone(),
            ackKeys: crate::council::ack_key_words(&genesis.sequencer_keys),
            poseidon: Address::ZERO,
            verifier: verifier_at,
            councilX: genesis.council_x,
            councilY: genesis.council_y,
        },
    )
    .await?;
    let evm_chain_id = provider.get_chain_id().await.map_err(EvmDeployError::Rpc)?;
    let block = provider
        .get_block_number()
        .await
        .map_err(EvmDeployError::Rpc)?;
    Ok(Deployment {
        evm_chain_id,
        rollup,
        poseidon,
        verifier: verifier_at,
        block,
    })
}

/// Deploys a verifier's parts in order, each after the first naming the one before; returns
/// the last, the one the rollup calls.
pub async fn deploy_verifier<P: Provider>(
    provider: &P,
    verifier: &VerifierContracts,
) -> Result<Address, DeployError> {
    let mut previous: Option<Address> = None;
    for (i, part) in verifier.parts.iter().enumerate() {
        let mut code = part.bytecode.to_vec();
        if let Some(a) = previous {
            code.extend_from_slice(&a.abi_encode());
        }
        let name = format!("batch verifier part {}", i + 1);
        previous = Some(deploy_code(provider, &name, code).await?);
    }
    previous.ok_or_else(|| DeployError::Artifact {
        name: "batch verifier".into(),
        reason: "it has no contracts".into(),
    })
}
