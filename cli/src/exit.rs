//! `keel exit`: leave the rollup from L1 data alone, with no sequencer and no trusted party.
//!
//! Rebuilds the state by re-executing every proven batch the L1 holds, checks that it reaches
//! the L1's proven root, builds the account's Merkle proof, and submits the exit signed by the
//! account's owner. The L1 refuses it outside exit mode and a second time.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use keel_committer::{reconstruct, EmbeddedL1};
use keel_prover::BatchVerifier;
use keel_state::{L1Address, MemStore, SecretKey};

/// Which chain, whose account, paid to whom.
#[derive(Args, Debug)]
pub(crate) struct ExitArgs {
    /// The embedded L1's data directory (the chain must not be open in another process).
    #[arg(long = "l1.dir")]
    l1_dir: PathBuf,
    /// The verifier file the chain pinned at genesis.
    #[arg(long = "l1.verifier")]
    verifier: PathBuf,
    /// A file holding the account owner's secret key (64 hex digits).
    #[arg(long = "key-file")]
    key_file: PathBuf,
    /// Pay this L1 address (40 hex digits) instead of the owner's own.
    #[arg(long)]
    recipient: Option<String>,
}

pub(crate) fn run(args: ExitArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.key_file)
        .with_context(|| format!("reading {}", args.key_file.display()))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the key file must hold 64 hex digits")?;
    let owner = SecretKey::from_bytes(&seed).map_err(|e| anyhow::anyhow!("the key: {e}"))?;
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
    let verifier = std::fs::read(&args.verifier)
        .with_context(|| format!("reading {}", args.verifier.display()))?;
    let verifier = BatchVerifier::from_bytes(&verifier)?;
    anyhow::ensure!(
        args.l1_dir.is_dir(),
        "no chain at {}",
        args.l1_dir.display()
    );
    let l1 = EmbeddedL1::open_existing(&args.l1_dir, verifier).with_context(|| {
        format!(
            "opening the chain at {} (is it open in another process?)",
            args.l1_dir.display()
        )
    })?;
    let replayed = reconstruct::replay(&l1, MemStore::new(), |n, of| {
        eprintln!("replayed batch {n} of {of}");
    })?;
    eprintln!(
        "state rebuilt from L1 data: batch {}, root {}",
        replayed.checkpoint.batch,
        keel_state::field::fr_to_hex(&replayed.checkpoint.root)
    );
    let x = reconstruct::exit(&l1, &replayed, &owner, recipient)?;
    println!(
        "account {} exited: {} paid to 0x{} (block {})",
        x.account,
        x.amount,
        hex::encode(x.recipient.0),
        x.receipt.height
    );
    Ok(())
}
