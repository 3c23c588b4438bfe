//! Keel's L1 on any EVM chain.
//!
//! - [`generate`]: the Solidity that is generated from `keel-state` (the Poseidon permutation,
//!   Grumpkin's generator), so that the chain hashes exactly as the rollup does.
//! - [`contracts`]: bindings to the contracts compiled by `contracts/build.mjs` (the ABI and
//!   bytecode in `contracts/out/`), and their deployment.
//! - [`verifier`]: the batch verifier contract, generated from the verifying key by
//!   snark-verifier and compiled with the pinned solc-js.
//! - [`council`]: the council's FROST(secp256k1) key with DKG, and its messages and signatures
//!   as the rollup checks them.
//! - [`deploy`]: a deployment on any EVM chain (the verifier's parts, Poseidon, the rollup with
//!   its genesis), as `keel evm deploy` runs it.
//! - [`l1`]: `EvmL1`, the typed client of a deployment (connection checks, settled reads,
//!   role-level writes, batches rebuilt from calldata, exits from L1 data alone).
//! - [`settlement`]: [`settlement::EvmSettlement`], the rollup behind Keel's seam (the
//!   committer's `SettlementLayer` and `Settler`), so every service runs on an EVM L1.
//! - [`anvil`]: a local anvil (from the npm package `@foundry-rs/anvil` that `contracts/` pins),
//!   for the contract tests and the devnet.
//!
//! The contracts and their rules are described in `contracts/README.md`.

pub mod anvil;
pub mod contracts;
pub mod council;
pub mod deploy;
pub mod generate;
pub mod l1;
pub mod settlement;
pub mod verifier;

/// The repository's root (this crate lives one level below it).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("keel-evm lives in the repository")
        .to_path_buf()
}

/// A provider that signs with `signer` and asks the node for the account's nonce before every
/// transaction. (alloy's default caches nonces, and a call refused at gas estimation still uses
/// up its cached nonce, so the next transaction would wait forever behind the gap.)
pub fn signing_provider(
    url: alloy::transports::http::reqwest::Url,
    signer: alloy::signers::local::PrivateKeySigner,
) -> alloy::providers::DynProvider {
    use alloy::providers::{Provider, ProviderBuilder};
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(alloy::network::EthereumWallet::from(signer))
        .connect_http(url)
        .erased()
}

/// Sends a contract call and waits for its receipt, with a gas limit of the node's estimate plus
/// a fifth and 10,000. The headroom is needed: an estimate is made at the pending block's
/// timestamp, and a rule that writes the time (a batch, a heartbeat) costs 2,800 gas more when
/// the transaction lands in a later second than the last write. A refusal comes back as the
/// estimate's error, whose revert data names the contract's custom error.
pub async fn transact<P, D>(
    call: alloy::contract::CallBuilder<P, D>,
) -> Result<alloy::rpc::types::TransactionReceipt, alloy::contract::Error>
where
    P: alloy::providers::Provider,
    D: alloy::contract::CallDecoder,
{
    let estimate = call.estimate_gas().await?;
    let receipt = call
        .gas(estimate + estimate / 5 + 10_000)
        .send()
        .await?
        .get_receipt()
        .await?;
    Ok(receipt)
}

/// A field element as the contracts take it: the integer, in a 256-bit word.
pub fn word(x: &keel_state::Fr) -> alloy::primitives::U256 {
    alloy::primitives::U256::from_le_bytes(keel_state::field::fr_to_bytes(x))
}
