//! `keel state`: inspect an existing state database.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_state::{AccountIndex, RocksStore, RocksStoreOptions, State, DEFAULT_DEPTH};

#[derive(Subcommand, Debug)]
pub(crate) enum StateCommand {
    /// Print the depth, root, last batch and L1 queue hash.
    Info(StateArgs),
    /// Print one account and its Merkle proof against the root.
    Account {
        #[command(flatten)]
        state: StateArgs,
        /// Account index.
        index: u32,
    },
}

/// Where the state database is.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateArgs {
    /// State database directory (must already exist).
    #[arg(long = "state.dir")]
    dir: PathBuf,
    /// Tree depth the database was created with.
    #[arg(long = "state.depth", default_value_t = DEFAULT_DEPTH)]
    depth: u8,
}

fn open(args: &StateArgs) -> anyhow::Result<State<RocksStore>> {
    anyhow::ensure!(
        args.dir.is_dir(),
        "no state database at {}",
        args.dir.display()
    );
    let store = RocksStore::open(&args.dir, RocksStoreOptions::default())
        .with_context(|| format!("opening {}", args.dir.display()))?;
    // State::open writes a genesis into an empty store: an inspection must not
    anyhow::ensure!(
        keel_state::StateStore::meta(&store)?.is_some(),
        "{} is not a Keel state database",
        args.dir.display()
    );
    Ok(State::open(store, args.depth)?)
}

pub(crate) fn run(cmd: StateCommand) -> anyhow::Result<()> {
    match cmd {
        StateCommand::Info(args) => {
            let s = open(&args)?;
            println!("depth       {}", s.depth());
            println!("root        {}", keel_state::field::fr_to_hex(&s.root()?));
            println!("last batch  {}", s.last_batch());
            println!(
                "queue hash  {}",
                keel_state::field::fr_to_hex(&s.queue_hash())
            );
        }
        StateCommand::Account { state, index } => {
            let s = open(&state)?;
            let index = AccountIndex(index);
            match s.account(index)? {
                None => println!("account {index}: empty"),
                Some(a) => {
                    println!("account {index}");
                    println!("  key      {}", hex::encode(a.pk.to_bytes()));
                    println!("  balance  {}", a.balance);
                    println!("  nonce    {}", a.nonce);
                }
            }
            let proof = s.proof(index)?;
            println!(
                "  proof    {}",
                hex::encode(keel_state::Encode::encode(&proof))
            );
            println!("  root     {}", keel_state::field::fr_to_hex(&s.root()?));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    #[test]
    fn state_depth_defaults_to_the_library_default() {
        let cli = Cli::try_parse_from(["keel", "state", "info", "--state.dir", "/x"]).unwrap();
        let Command::State(StateCommand::Info(args)) = cli.command else {
            panic!()
        };
        assert_eq!(
            args,
            StateArgs {
                dir: "/x".into(),
                depth: DEFAULT_DEPTH
            }
        );
    }
}
