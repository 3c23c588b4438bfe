//! `keel sequencer`: flags → [`SequencerConfig`], then the library runs it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use keel_sequencer::{
    config::{
        DEFAULT_BATCH_CAPACITY, DEFAULT_BATCH_DEADLINE, DEFAULT_MAX_BODY, DEFAULT_MAX_PENDING,
        DEFAULT_MAX_PER_ACCOUNT, DEFAULT_VERIFY_GROUP_MAX,
    },
    FsyncPolicy, Sequencer, SequencerConfig,
};
use keel_state::{Epoch, DEFAULT_DEPTH};

/// Default data directory.
pub(crate) const DEFAULT_DIR: &str = "keel-data/sequencer";
/// Default API address (loopback: expose it deliberately).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7545";

/// The sequencer's flags.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SequencerArgs {
    /// Data directory (the state and the write-ahead log).
    #[arg(long = "sequencer.dir", default_value = DEFAULT_DIR)]
    pub(crate) dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long = "sequencer.listen", default_value = DEFAULT_LISTEN)]
    pub(crate) listen: SocketAddr,
    /// Tree depth (fixed at genesis).
    #[arg(long = "sequencer.depth", default_value_t = DEFAULT_DEPTH)]
    pub(crate) depth: u8,
    /// The sequencer epoch stamped on batches.
    #[arg(long = "sequencer.epoch", default_value_t = 1)]
    pub(crate) epoch: u64,
    /// Operations per batch (the circuit's capacity).
    #[arg(long = "sequencer.batch-capacity", default_value_t = DEFAULT_BATCH_CAPACITY)]
    pub(crate) batch_capacity: usize,
    /// Longest wait before a partly full batch is cut, in milliseconds.
    #[arg(long = "sequencer.batch-deadline-ms", default_value_t = DEFAULT_BATCH_DEADLINE.as_millis() as u64)]
    pub(crate) batch_deadline_ms: u64,
    /// When the log is fsync'd: `always` (before each acknowledgement) or `never`.
    #[arg(long = "sequencer.fsync", default_value = "always")]
    pub(crate) fsync: FsyncPolicy,
    /// Most accepted operations waiting for a batch.
    #[arg(long = "sequencer.max-pending", default_value_t = DEFAULT_MAX_PENDING)]
    pub(crate) max_pending: usize,
    /// Most operations one account may have waiting.
    #[arg(long = "sequencer.max-per-account", default_value_t = DEFAULT_MAX_PER_ACCOUNT)]
    pub(crate) max_per_account: usize,
    /// Largest request body, in bytes.
    #[arg(long = "sequencer.max-body", default_value_t = DEFAULT_MAX_BODY)]
    pub(crate) max_body: usize,
    /// Most signatures checked together in one multi-scalar sum (1: each on its own).
    #[arg(long = "sequencer.verify-group-max", default_value_t = DEFAULT_VERIFY_GROUP_MAX)]
    pub(crate) verify_group_max: usize,
}

impl SequencerArgs {
    pub(crate) fn config(&self) -> SequencerConfig {
        let mut c = SequencerConfig::new(&self.dir);
        c.depth = self.depth;
        c.epoch = Epoch(self.epoch);
        c.batch_capacity = self.batch_capacity;
        c.batch_deadline = Duration::from_millis(self.batch_deadline_ms);
        c.fsync = self.fsync;
        c.max_pending = self.max_pending;
        c.max_per_account = self.max_per_account;
        c.max_body = self.max_body;
        c.verify_group_max = self.verify_group_max;
        c
    }
}

pub(crate) fn run(args: SequencerArgs) -> anyhow::Result<()> {
    let config = args.config();
    let seq = Sequencer::open(config.clone())
        .with_context(|| format!("opening the sequencer in {}", config.dir.display()))?;
    let status = seq.status()?;
    eprintln!(
        "keel sequencer: {} (depth {}, epoch {}, batch {}, {} operations waiting), API on http://{}",
        config.dir.display(),
        status.depth,
        status.epoch,
        status.last_batch,
        status.waiting,
        args.listen
    );
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        tokio::select! {
            r = keel_sequencer::api::serve(seq.clone(), listener) => r.context("serving the API"),
            r = tokio::signal::ctrl_c() => {
                eprintln!("keel sequencer: interrupted, stopping");
                r.context("waiting for ctrl-c")
            }
        }
    });
    seq.shutdown();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn no_flags_give_the_library_defaults() {
        let cli = Cli::try_parse_from(["keel", "sequencer"]).unwrap();
        let Command::Sequencer(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.config(), SequencerConfig::new(DEFAULT_DIR));
        assert_eq!(args.listen, DEFAULT_LISTEN.parse().unwrap());
    }

    #[test]
    fn a_bad_fsync_policy_is_refused() {
        let err = Cli::try_parse_from(["keel", "sequencer", "--sequencer.fsync", "sometimes"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected always or never"), "{err}");
    }
}
