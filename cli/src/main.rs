//! `keel`: Keel's one binary. Thin: it parses arguments (and a settings file, [`config`]) and
//! calls the libraries. `keel devnet` runs the whole system on one machine; the other
//! subcommands run its processes one by one (`l1`, `sequencer`, `prover run`, `committer`), make
//! the prover's keys, print
//! the SLA, run the council's signing rounds, rebuild the state and exit an account from L1
//! data, and inspect a state database.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use keel_state::{AccountIndex, RocksStore, RocksStoreOptions, State, DEFAULT_DEPTH};

mod committer;
mod config;
mod council;
mod devnet;
mod exit;
mod http;
mod l1;
mod node;
mod prover;
mod reconstruct;
mod sequencer;
mod sla;

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
    /// The council's threshold key: deal it, and sign an action in two rounds.
    #[command(subcommand)]
    Council(council::CouncilCommand),
    /// Inspect an existing state database.
    #[command(subcommand)]
    State(StateCommand),
    /// Settings: show what a command runs with, and where each value comes from.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

#[derive(Subcommand, Debug)]
enum StateCommand {
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
struct StateArgs {
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

/// Reads a secret key file: 64 hex digits.
pub(crate) fn read_key(path: &std::path::Path) -> anyhow::Result<keel_state::SecretKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the key file must hold 64 hex digits")?;
    keel_state::SecretKey::from_bytes(&seed).map_err(|e| anyhow::anyhow!("the key: {e}"))
}

/// Completes on ctrl-c (SIGINT) or SIGTERM.
pub(crate) async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("listening for ctrl-c"),
        _ = term.recv() => Ok(()),
    }
}

/// Logs to stderr through `tracing`, filtered by `filter`.
fn init_logs(filter: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).map_err(|e| anyhow::anyhow!("--log {filter}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .init();
    Ok(())
}

/// A process the devnet started stops (SIGTERM) when the devnet ends, however it ends.
fn die_with_parent() -> anyhow::Result<()> {
    let Some(parent) = std::env::var_os(devnet::PARENT_ENV) else {
        return Ok(());
    };
    use rustix::process::{getppid, set_parent_process_death_signal, Pid, Signal};
    set_parent_process_death_signal(Some(Signal::TERM))?;
    // the devnet may have ended before the line above: then this process has a new parent
    let parent = parent.to_string_lossy().parse::<i32>().ok();
    if getppid().map(Pid::as_raw_nonzero).map(|p| p.get()) != parent {
        anyhow::bail!("the devnet that started this process has ended");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    die_with_parent()?;
    let root = command();
    let (argv, file) = config::expand(&root, std::env::args_os().collect())?;
    let matches = root.clone().get_matches_from(argv);
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logs(&cli.log)?;
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
        Command::Exit(args) => exit::run(args)?,
        Command::Reconstruct(args) => reconstruct::run(args)?,
        Command::State(StateCommand::Info(args)) => {
            let s = open(&args)?;
            println!("depth       {}", s.depth());
            println!("root        {}", keel_state::field::fr_to_hex(&s.root()?));
            println!("last batch  {}", s.last_batch());
            println!(
                "queue hash  {}",
                keel_state::field::fr_to_hex(&s.queue_hash())
            );
        }
        Command::State(StateCommand::Account { state, index }) => {
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
