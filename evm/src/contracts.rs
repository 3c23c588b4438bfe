//! Bindings to Keel's contracts, from the artifacts that `contracts/build.mjs` writes (and
//! `node contracts/build.mjs --check` keeps equal to the sources), and their deployment.

#![allow(missing_docs, clippy::too_many_arguments)] // the bindings' items are the contracts' own, documented in Solidity

use alloy::{
    network::{ReceiptResponse, TransactionBuilder},
    primitives::{Address, Bytes},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolValue,
};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    KeelRollup,
    "../contracts/out/KeelRollup.json"
);
alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    KeelPoseidon,
    "../contracts/out/KeelPoseidon.json"
);

/// A compiled contract's artifact, as `contracts/build.mjs` writes it.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct Artifact {
    /// The creation code.
    pub bytecode: Bytes,
    /// The runtime code (what EIP-170 limits).
    #[serde(rename = "deployedBytecode")]
    pub deployed_bytecode: Bytes,
}

/// Why a contract could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The artifact is missing or unreadable.
    #[error("artifact {name}: {reason}")]
    Artifact {
        /// The contract.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The node refused or failed the transaction.
    #[error("deploying {name}")]
    Rpc {
        /// The contract.
        name: String,
        /// The transport's or node's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The creation transaction reverted.
    #[error("deploying {name}: the creation transaction reverted")]
    Reverted {
        /// The contract.
        name: String,
    },
}

/// Reads `contracts/out/<name>.json`.
pub fn artifact(name: &str) -> Result<Artifact, DeployError> {
    let path = crate::repo_root().join(format!("contracts/out/{name}.json"));
    let err = |reason: String| DeployError::Artifact {
        name: name.into(),
        reason,
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}

/// Deploys `name` with ABI-encoded constructor arguments `args`; returns its address.
pub async fn deploy<P: Provider>(
    provider: &P,
    name: &str,
    args: &[u8],
) -> Result<Address, DeployError> {
    let mut code = artifact(name)?.bytecode.to_vec();
    code.extend_from_slice(args);
    deploy_code(provider, name, code).await
}

/// Deploys creation code `code` (constructor arguments appended), called `name` in errors.
pub async fn deploy_code<P: Provider>(
    provider: &P,
    name: &str,
    code: Vec<u8>,
) -> Result<Address, DeployError> {
    let rpc = |e: Box<dyn std::error::Error + Send + Sync>| DeployError::Rpc {
        name: name.into(),
        source: e,
    };
    let tx = TransactionRequest::default().with_deploy_code(code);
    let pending = provider
        .send_transaction(tx)
        .await
        .map_err(|e| rpc(Box::new(e)))?;
    let receipt = pending.get_receipt().await.map_err(|e| rpc(Box::new(e)))?;
    if !receipt.status() {
        return Err(DeployError::Reverted { name: name.into() });
    }
    receipt
        .contract_address()
        .ok_or_else(|| DeployError::Reverted { name: name.into() })
}

/// Deploys the Poseidon contract, then the rollup with `genesis` (whose `poseidon` field is
/// filled in here). Returns `(rollup, poseidon)`.
pub async fn deploy_rollup<P: Provider>(
    provider: &P,
    mut genesis: KeelRollup::Genesis,
) -> Result<(Address, Address), DeployError> {
    let poseidon = deploy(provider, "KeelPoseidon", &[]).await?;
    genesis.poseidon = poseidon;
    let rollup = deploy(provider, "KeelRollup", &(genesis,).abi_encode_params()).await?;
    Ok((rollup, poseidon))
}
