//! `keel reconstruct`: the full state rebuilt from genesis with L1 data alone, checked against the
//! L1's last proven root. With a state directory it is kept, and a later run resumes from it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use keel_committer::{reconstruct, RpcL1, SettlementLayer};
use keel_state::{field::fr_to_hex, MemStore, RocksStore, RocksStoreOptions, StateStore};

/// Where the L1 is, and where the state goes.
#[derive(Args, Debug)]
pub(crate) struct ReconstructArgs {
    /// The L1's JSON-RPC API (`keel l1`).
    #[arg(long = "l1.rpc", default_value = "http://127.0.0.1:8545")]
    l1_rpc: String,
    /// Keep the state in this directory (a later run resumes from it); without it the state is
    /// rebuilt in memory and only checked.
    #[arg(long = "state.dir")]
    dir: Option<PathBuf>,
}

fn rebuild<S: StateStore>(l1: &dyn SettlementLayer, store: S) -> anyhow::Result<()> {
    let replayed = reconstruct::replay(l1, store, |n, of| {
        eprintln!("replayed batch {n} of {of}");
    })?;
    let c = replayed.checkpoint;
    println!(
        "reached the L1's proven root {} at batch {} ({} queue entries consumed)",
        fr_to_hex(&c.root),
        c.batch,
        c.queue_consumed
    );
    Ok(())
}

pub(crate) fn run(args: ReconstructArgs) -> anyhow::Result<()> {
    let l1 = RpcL1::connect(&args.l1_rpc)
        .with_context(|| format!("connecting to the L1 at {}", args.l1_rpc))?;
    match &args.dir {
        None => rebuild(&l1, MemStore::new()),
        Some(dir) => {
            let store = RocksStore::open(dir, RocksStoreOptions::default())
                .with_context(|| format!("opening {}", dir.display()))?;
            rebuild(&l1, store).with_context(|| format!("the state in {}", dir.display()))
        }
    }
}
