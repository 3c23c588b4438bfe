//! `keel`: Keel's one binary. Thin: it parses arguments (and a settings file, [`config`]) and
//! calls the libraries. `keel devnet` runs the whole system on one machine; the other
//! subcommands run its processes one by one (`l1`, `sequencer`, `prover run`, `committer`), make
//! the prover's keys, print
//! the SLA, run the council's signing rounds, rebuild the state and exit an account from L1
//! data, and inspect a state database.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod bench;
mod citizen;
mod committer;
mod config;
mod council;
mod devnet;
mod evm;
mod exit;
mod http;
mod l1;
mod node;
mod process;
mod prover;
mod reconstruct;
mod sequencer;
mod sla;
mod state;

pub(crate) use process::{read_key, stop_signal};

#[derive(Parser, Debug)]
#[command(
    name = "keel",
    version,
    about = "Keel: a sovereign rollup without a single point of failure"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A settings file (TOML): `[section] key = value` sets `--section.key` for every command
    /// that has it; flags given here win. Default: $KEEL_CONFIG, else ./keel.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter: a level (error, warn, info, debug, trace) or directives such as
    /// `info,keel_prover=debug`.
    #[arg(long, global = true, default_value = DEFAULT_LOG)]
    log: String,
}

/// The default log filter: Keel at `info`, the GPU stack's chatter at `warn`.
pub(crate) const DEFAULT_LOG: &str = "info,wgpu_core=warn,wgpu_hal=warn,naga=warn";

/// The command line's grammar.
pub(crate) fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole system on this machine: the embedded L1, a primary and a standby
    /// sequencer (each with its prover and committer), demo accounts and a steady load, with
    /// live progress and a summary. A rerun resumes from --devnet.dir; Ctrl-C stops cleanly.
    Devnet(devnet::DevnetArgs),
    /// Run a sequencer: the HTTP API, the write-ahead log, batching, the batch stream; with
    /// --l1.rpc, a node that proves and posts as the primary and follows and takes over as a
    /// standby.
    Sequencer(sequencer::SequencerArgs),
    /// Run the embedded L1 as its own process: the chain, its blocks, and its JSON-RPC API.
    L1(l1::L1Args),
    /// The batch prover: generate its keys (and the verifier file an L1 pins), or run it as a
    /// service that proves a sequencer's batches for a committer.
    #[command(subcommand)]
    Prover(prover::ProverCommand),
    /// Run a committer for one sequencer: take proven batches from provers over HTTP, check
    /// them, and post them to the L1 in order, each once.
    Committer(committer::CommitterArgs),
    /// Print the deployment's recovery window: failover, forced inclusion, exit mode.
    Sla(sla::SlaArgs),
    /// Exit an account from L1 data alone (in exit mode): rebuild the state, prove, submit.
    Exit(exit::ExitArgs),
    /// Rebuild the state from genesis with L1 data alone and check it reaches the proven root.
    Reconstruct(reconstruct::ReconstructArgs),
    /// The council's threshold key (FROST over secp256k1, for either L1): its distributed key
    /// generation and its signing rounds, member by member.
    #[command(subcommand)]
    Council(council::CouncilCommand),
    /// A Keel rollup on an EVM chain: deploy its contracts.
    #[command(subcommand)]
    Evm(evm::EvmCommand),
    /// Inspect an existing state database.
    #[command(subcommand)]
    State(state::StateCommand),
    /// The prover's stages (MSM, NTT, a batch proof) on this machine's adapter against its CPU,
    /// in one run: a table of times and ratios (--json), every GPU result checked and every
    /// proof verified.
    Bench(bench::BenchArgs),
    /// A citizen's key: make one (a file only its owner can read).
    #[command(subcommand)]
    Key(citizen::KeyCommand),
    /// An account as the sequencer has admitted it; --proof: its last proven balance and Merkle
    /// proof, from L1 data alone.
    Account(citizen::AccountArgs),
    /// Deposit on the L1 for an account (made at the next index if the key has none), and wait
    /// until the sequencer credits it.
    Deposit(citizen::DepositArgs),
    /// Sign and submit a transfer, and follow it (--wait) across a failover.
    Transfer(citizen::TransferArgs),
    /// Sign and submit a withdrawal to an L1 address, and follow it (--wait proven: until the L1
    /// credits it).
    Withdraw(citizen::WithdrawArgs),
    /// Where an operation stands: its level and its batch.
    Op(citizen::OpArgs),
    /// Settings: show what a command runs with, and where each value comes from.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

fn main() -> anyhow::Result<()> {
    process::die_with_parent()?;
    let root = command();
    let (argv, file) = config::expand(&root, std::env::args_os().collect())?;
    let matches = root.clone().get_matches_from(argv);
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    process::init_logs(&cli.log)?;
    if let Some(file) = file {
        tracing::debug!("settings from {}", file.display());
    }
    keel_state::cpu::check().map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Devnet(args) => devnet::run(args)?,
        Command::Config(cmd) => config::run(&root, cmd)?,
        Command::Sequencer(args) => sequencer::run(args)?,
        Command::L1(args) => l1::run(args)?,
        Command::Prover(cmd) => prover::run(cmd)?,
        Command::Committer(args) => committer::run(args)?,
        Command::Sla(args) => sla::run(args)?,
        Command::Council(cmd) => council::run(cmd)?,
        Command::Evm(cmd) => evm::run(cmd)?,
        Command::Exit(args) => exit::run(args)?,
        Command::Reconstruct(args) => reconstruct::run(args)?,
        Command::State(cmd) => state::run(cmd)?,
        Command::Key(cmd) => citizen::run_key(cmd)?,
        Command::Bench(args) => bench::run(args)?,
        Command::Account(args) => citizen::run_account(args)?,
        Command::Deposit(args) => citizen::run_deposit(args)?,
        Command::Transfer(args) => citizen::run_transfer(args)?,
        Command::Withdraw(args) => citizen::run_withdraw(args)?,
        Command::Op(args) => citizen::run_op(args)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_flag_says_what_it_does_and_help_shows_defaults() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                assert!(sub.get_about().is_some(), "`{p}` has no description");
                for a in sub.get_arguments() {
                    assert!(a.get_help().is_some(), "`{p}` {:?} has no help", a.get_id());
                }
                walk(sub, &p);
            }
        }
        walk(&command(), "keel");
        let mut root = command();
        let help = root
            .find_subcommand_mut("devnet")
            .unwrap()
            .render_long_help()
            .to_string();
        for want in [
            "[default: keel-data/devnet]",
            "--batches",
            "--kill-primary-at",
            "--exit",
            "[default: 8000]",
        ] {
            assert!(help.contains(want), "{want}: {help}");
        }
    }
}
