//! `keel evm deploy`: a Keel rollup on any EVM chain: the batch verifier's contracts (from
//! `keel prover keygen --evm`), the Poseidon contract and the rollup with its genesis.

use std::path::PathBuf;

use anyhow::{ensure, Context};
use clap::{Args, Subcommand};
use keel_evm::{
    deploy::{deploy, EvmGenesis},
    verifier::VerifierContracts,
};

/// The EVM commands.
#[derive(Subcommand, Debug)]
pub(crate) enum EvmCommand {
    /// Deploy a rollup: the verifier's contracts, Poseidon, and the rollup with its genesis;
    /// writes where they are.
    Deploy(DeployArgs),
}

/// Where, with what, from whom.
#[derive(Args, Debug)]
pub(crate) struct DeployArgs {
    /// The chain's JSON-RPC URL.
    #[arg(long = "evm.rpc")]
    rpc: String,
    /// The EVM chain id expected there (refused if the node's differs).
    #[arg(long = "evm.chain-id")]
    chain_id: u64,
    /// A file holding the deployer's EVM key (64 hex digits); it pays the gas.
    #[arg(long = "evm.key-file")]
    key_file: PathBuf,
    /// The genesis (JSON: chain_id, depth, failover_timeout_s, forced_inclusion_s, proof_s,
    /// sequencers, council_x, council_y).
    #[arg(long)]
    genesis: PathBuf,
    /// The verifier's contracts (`keel prover keygen --evm` writes `*.evm-verifier.json`).
    #[arg(long)]
    verifier: PathBuf,
    /// Where to write the deployment (JSON; must not exist).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(cmd: EvmCommand) -> anyhow::Result<()> {
    match cmd {
        EvmCommand::Deploy(args) => run_deploy(args),
    }
}

fn run_deploy(args: DeployArgs) -> anyhow::Result<()> {
    ensure!(
        !args.out.exists(),
        "{} exists already: refusing to overwrite it",
        args.out.display()
    );
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let genesis: EvmGenesis = serde_json::from_slice(&read(&args.genesis)?)
        .with_context(|| format!("{} is not an EVM genesis", args.genesis.display()))?;
    genesis
        .check()
        .map_err(|e| anyhow::anyhow!("the genesis: {e}"))?;
    let verifier: VerifierContracts = serde_json::from_slice(&read(&args.verifier)?)
        .with_context(|| format!("{} is not an EVM verifier file", args.verifier.display()))?;
    let key = String::from_utf8_lossy(&read(&args.key_file)?)
        .trim()
        .to_string();
    let signer: alloy::signers::local::PrivateKeySigner = key.parse().with_context(|| {
        format!(
            "{} does not hold a 64-hex-digit EVM key",
            args.key_file.display()
        )
    })?;
    let url = args
        .rpc
        .parse()
        .with_context(|| format!("{:?} is not an RPC URL", args.rpc))?;
    let deployer = signer.address();
    let provider = keel_evm::signing_provider(url, signer);
    let runtime = tokio::runtime::Runtime::new()?;
    let deployment = runtime.block_on(async {
        use alloy::providers::Provider;
        let got = provider
            .get_chain_id()
            .await
            .with_context(|| format!("the L1 at {} is unreachable", args.rpc))?;
        ensure!(
            got == args.chain_id,
            "the L1's chain id is {got}, not the expected {}",
            args.chain_id
        );
        let balance = provider.get_balance(deployer).await?;
        ensure!(
            !balance.is_zero(),
            "the deployer {deployer} has no funds on the L1"
        );
        Ok(deploy(&provider, &genesis, &verifier).await?)
    })?;
    std::fs::write(&args.out, serde_json::to_vec_pretty(&deployment)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "rollup {} (Poseidon {}, verifier {}) on chain {} at block {}",
        deployment.rollup,
        deployment.poseidon,
        deployment.verifier,
        deployment.evm_chain_id,
        deployment.block
    );
    println!("{}", args.out.display());
    Ok(())
}
