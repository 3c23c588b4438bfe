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

/// How a service reaches a rollup on an EVM chain (instead of `--l1.rpc`).
///
/// What a service built on it needs: its reads, its writes, and the transcript the rollup's
/// verifier reads proofs in.
#[derive(Args, Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct EvmL1Args {
    /// An EVM chain's JSON-RPC URL where the rollup contract runs (instead of --l1.rpc).
    #[arg(long = "evm.rpc", requires_all = ["evm_rollup", "evm_chain_id"])]
    pub(crate) evm_rpc: Option<String>,
    /// With --evm.rpc: the rollup contract's address.
    #[arg(long = "evm.rollup")]
    pub(crate) evm_rollup: Option<String>,
    /// With --evm.rpc: the EVM chain id the deployment names (refused if the node's differs).
    #[arg(long = "evm.chain-id")]
    pub(crate) evm_chain_id: Option<u64>,
    /// With --evm.rpc: a file holding this service's EVM key (64 hex digits): a sequencer's
    /// registered address, and the account that pays the gas (a prover, which only reads, needs
    /// none).
    #[arg(long = "evm.key-file")]
    pub(crate) evm_key_file: Option<PathBuf>,
    /// With --evm.rpc: blocks a batch must be under before it counts as settled (1: the head).
    #[arg(long = "evm.confirmations", default_value_t = 2)]
    pub(crate) evm_confirmations: u64,
}

impl EvmL1Args {
    /// Connects to the rollup (every check of `EvmL1::connect`), if `--evm.rpc` is given: with
    /// `--evm.key-file`, to write; without, to read only.
    pub(crate) fn connect(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<keel_evm::settlement::EvmSettlement>>> {
        let Some(url) = &self.evm_rpc else {
            return Ok(None);
        };
        let rollup: alloy::primitives::Address = self
            .evm_rollup
            .as_deref()
            .unwrap_or_default()
            .parse()
            .context("--evm.rollup must be a 40-hex-digit address")?;
        let signer = match &self.evm_key_file {
            Some(key_file) => {
                let key = std::fs::read_to_string(key_file)
                    .with_context(|| format!("reading {}", key_file.display()))?;
                let signer: alloy::signers::local::PrivateKeySigner =
                    key.trim().parse().with_context(|| {
                        format!(
                            "{} does not hold a 64-hex-digit EVM key",
                            key_file.display()
                        )
                    })?;
                Some(signer)
            }
            None => None,
        };
        let config = keel_evm::l1::EvmConfig {
            url: url.clone(),
            evm_chain_id: self.evm_chain_id.context("--evm.chain-id")?,
            rollup,
            chain_id: None,
            confirmations: self.evm_confirmations,
        };
        let l1 = match signer {
            Some(signer) => keel_evm::settlement::EvmSettlement::connect(&config, signer),
            None => keel_evm::settlement::EvmSettlement::connect_reader(&config),
        }
        .with_context(|| format!("connecting to the rollup {rollup} at {url}"))?;
        Ok(Some(std::sync::Arc::new(l1)))
    }
}

impl EvmL1Args {
    /// Connects to the rollup to read only, whatever `--evm.key-file` says (reading needs no
    /// funds), if `--evm.rpc` is given.
    pub(crate) fn connect_reader(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<keel_evm::settlement::EvmSettlement>>> {
        Self {
            evm_key_file: None,
            ..self.clone()
        }
        .connect()
    }

    /// The EVM key is required (a service that writes: a sequencer, a committer).
    pub(crate) fn require_key(&self, who: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.evm_rpc.is_none() || self.evm_key_file.is_some(),
            "{who} on an EVM L1 needs --evm.key-file (its registered address, which pays the gas)"
        );
        Ok(())
    }
}
