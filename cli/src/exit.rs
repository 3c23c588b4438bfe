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
    // or, with --evm.rpc: the rollup contract on an EVM chain (--evm.key-file pays the gas)
    #[command(flatten)]
    evm: crate::evm::EvmL1Args,
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
        .map(str::parse::<L1Address>)
        .transpose()?;
    if args.evm.evm_rpc.is_some() {
        return run_evm(&args, &owner, recipient);
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

/// `keel exit` against the rollup contract on an EVM chain, through the same seam as the embedded
/// L1: the state from the contract's events and calldata alone (checked against its root), the
/// Merkle proof and the owner's signature, credited to the recipient (the gas payer's address if
/// none is given), then claimed.
fn run_evm(
    args: &ExitArgs,
    owner: &keel_state::SecretKey,
    recipient: Option<L1Address>,
) -> anyhow::Result<()> {
    args.evm.require_key("an exit")?;
    let l1 = args.evm.connect()?.context("--evm.rpc")?;
    eprintln!("rebuilding the state from the rollup's events and calldata");
    let replayed = reconstruct::replay(l1.as_ref(), MemStore::new(), |n, of| {
        eprintln!("replayed batch {n} of {of}");
    })?;
    let x = reconstruct::exit(l1.as_ref(), l1.as_ref(), &replayed, owner, recipient)?;
    println!(
        "exited: account {}, {} units (gwei) credited to {}",
        x.account, x.amount, x.recipient
    );
    if x.recipient == keel_committer::Settler::address(l1.as_ref()) && x.amount > 0 {
        let client = l1.client().clone();
        l1.block_on(async move { client.claim().await })?;
        println!("claimed: paid to {}", x.recipient);
    }
    Ok(())
}
