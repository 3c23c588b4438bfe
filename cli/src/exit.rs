//! `keel exit`: leave the rollup from L1 data alone, with no sequencer and no trusted party.
//!
//! Rebuilds the state by re-executing every proven batch the L1 holds, checks that it reaches
//! the L1's proven root, builds the account's Merkle proof, and submits the exit signed by the
//! account's owner. The L1 refuses it outside exit mode and a second time.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use keel_committer::{reconstruct, EmbeddedChain, EmbeddedL1, Keyed, RpcL1};
use keel_prover::BatchVerifier;
use keel_state::{L1Address, MemStore};

/// Which chain, whose account, paid to whom.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("chain").required(true).args(["l1_rpc", "l1_dir", "evm_rpc"])))]
pub(crate) struct ExitArgs {
    /// The L1's JSON-RPC API (`keel l1`), e.g. http://127.0.0.1:8545.
    #[arg(long = "l1.rpc")]
    l1_rpc: Option<String>,
    /// Or: the embedded L1's data directory, opened here (the chain must not be open in
    /// another process).
    #[arg(long = "l1.dir", requires = "verifier")]
    l1_dir: Option<PathBuf>,
    /// With --l1.dir: the verifier file the chain pinned at genesis.
    #[arg(long = "l1.verifier")]
    verifier: Option<PathBuf>,
    /// Or: an EVM chain's JSON-RPC URL, where the rollup contract is at --evm.rollup.
    #[arg(long = "evm.rpc", requires_all = ["evm_rollup", "evm_chain_id", "evm_key_file"])]
    evm_rpc: Option<String>,
    /// With --evm.rpc: the rollup contract's address.
    #[arg(long = "evm.rollup")]
    evm_rollup: Option<String>,
    /// With --evm.rpc: the EVM chain id the deployment names (refused if the node's differs).
    #[arg(long = "evm.chain-id")]
    evm_chain_id: Option<u64>,
    /// With --evm.rpc: a file holding the EVM key that pays the exit's gas (64 hex digits).
    #[arg(long = "evm.key-file")]
    evm_key_file: Option<PathBuf>,
    /// With --evm.rpc: blocks a batch must be under to count (1: the head).
    #[arg(long = "evm.confirmations", default_value_t = 1)]
    evm_confirmations: u64,
    /// A file holding the account owner's secret key (64 hex digits).
    #[arg(long = "key-file")]
    key_file: PathBuf,
    /// Pay this L1 address (40 hex digits) instead of the owner's own.
    #[arg(long)]
    recipient: Option<String>,
}

pub(crate) fn run(args: ExitArgs) -> anyhow::Result<()> {
    let owner = crate::read_key(&args.key_file)?;
    let recipient = args
        .recipient
        .as_deref()
        .map(|r| {
            hex::decode(r.trim_start_matches("0x"))
                .ok()
                .and_then(|b| b.try_into().ok())
                .map(L1Address)
                .context("the recipient must be 40 hex digits")
        })
        .transpose()?;
    if let Some(url) = &args.evm_rpc {
        return run_evm(&args, url, &owner, recipient);
    }
    let l1: Box<dyn EmbeddedChain> = match (&args.l1_rpc, &args.l1_dir, &args.verifier) {
        (Some(url), _, _) => {
            Box::new(RpcL1::connect(url).with_context(|| format!("connecting to the L1 at {url}"))?)
        }
        (None, Some(dir), Some(verifier)) => {
            let verifier = std::fs::read(verifier)
                .with_context(|| format!("reading {}", verifier.display()))?;
            let verifier = BatchVerifier::from_bytes(&verifier)?;
            anyhow::ensure!(dir.is_dir(), "no chain at {}", dir.display());
            Box::new(EmbeddedL1::open_existing(dir, verifier).with_context(|| {
                format!(
                    "opening the chain at {} (is it open in another process? then use --l1.rpc)",
                    dir.display()
                )
            })?)
        }
        _ => anyhow::bail!("pass --l1.rpc URL, or --l1.dir DIR with --l1.verifier FILE"),
    };
    let l1 = l1.as_ref();
    let replayed = reconstruct::replay(l1, MemStore::new(), |n, of| {
        eprintln!("replayed batch {n} of {of}");
    })?;
    eprintln!(
        "state rebuilt from L1 data: batch {}, root {}",
        replayed.checkpoint.batch,
        keel_state::field::fr_to_hex(&replayed.checkpoint.root)
    );
    let signer = Keyed::new(l1, owner.clone());
    let x = reconstruct::exit(l1, &signer, &replayed, &owner, recipient)?;
    println!(
        "account {} exited: {} paid to 0x{} (block {})",
        x.account,
        x.amount,
        hex::encode(x.recipient.0),
        x.receipt.height
    );
    Ok(())
}

/// `keel exit` against the rollup contract on an EVM chain: the state from the contract's
/// events and calldata alone, the Merkle proof and the owner's signature, paid to the recipient
/// (the gas payer's address if none is given), then claimed.
fn run_evm(
    args: &ExitArgs,
    url: &str,
    owner: &keel_state::SecretKey,
    recipient: Option<L1Address>,
) -> anyhow::Result<()> {
    use keel_evm::l1::{exit_from_l1, EvmConfig, EvmL1};
    let rollup: alloy::primitives::Address = args
        .evm_rollup
        .as_deref()
        .unwrap_or_default()
        .parse()
        .context("--evm.rollup must be a 40-hex-digit address")?;
    let key_file = args.evm_key_file.as_ref().context("--evm.key-file")?;
    let key_hex = std::fs::read_to_string(key_file)
        .with_context(|| format!("reading {}", key_file.display()))?;
    let signer: alloy::signers::local::PrivateKeySigner =
        key_hex.trim().parse().with_context(|| {
            format!(
                "{} does not hold a 64-hex-digit EVM key",
                key_file.display()
            )
        })?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let config = EvmConfig {
            url: url.to_string(),
            evm_chain_id: args.evm_chain_id.context("--evm.chain-id")?,
            rollup,
            // the contract's own (connect() refuses an address that is not a rollup)
            chain_id: None,
            confirmations: args.evm_confirmations,
        };
        let l1 = EvmL1::connect(&config, signer).await?;
        let to = recipient
            .map(|r| alloy::primitives::Address::from(r.0))
            .unwrap_or_else(|| l1.sender());
        eprintln!("rebuilding the state from the rollup's events and calldata");
        let amount = exit_from_l1(&l1, owner, to).await?;
        println!("exited: {amount} units (gwei) credited to {to}");
        if to == l1.sender() && amount > 0 {
            l1.claim().await?;
            println!("claimed: paid to {to}");
        }
        anyhow::Ok(())
    })
}
