//! `keel sequencer`: flags → [`SequencerConfig`], then the library runs it. Without `--l1.rpc`
//! it is a bare sequencer (the API, the log, batching, the stream); with it, a node that is the
//! primary while it holds the L1's lease and a hot standby otherwise ([`crate::node`]).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use keel_sequencer::{
    config::{
        DEFAULT_BATCHER_NICE, DEFAULT_BATCH_CAPACITY, DEFAULT_BATCH_DEADLINE, DEFAULT_MAX_BODY,
        DEFAULT_MAX_PENDING, DEFAULT_MAX_PER_ACCOUNT, DEFAULT_VERIFY_GROUP_MAX,
        DEFAULT_VERIFY_THREADS,
    },
    FsyncPolicy, Sequencer, SequencerConfig,
};
use keel_state::{Epoch, DEFAULT_DEPTH};

/// Default data directory.
pub(crate) const DEFAULT_DIR: &str = "keel-data/sequencer";
/// Default API address (loopback: expose it deliberately).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7545";

/// Default wait between standbys' take-over slots, in milliseconds.
pub(crate) const DEFAULT_TAKEOVER_BACKOFF_MS: u64 = 2_000;

/// The role a node starts in; the L1's lease decides the role it keeps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Sequence: expected to hold the L1's lease.
    Primary,
    /// Follow a primary's batch stream, and take over when its lease lapses.
    Standby,
}

/// The sequencer's flags.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(group(clap::ArgGroup::new("l1").args(["l1_rpc", "evm_rpc"])))]
pub(crate) struct SequencerArgs {
    /// The role to start in (`standby` needs --l1.rpc). With an L1, the lease decides: a primary
    /// that lost it rejoins as a standby, a standby that claimed it becomes the primary.
    #[arg(long, value_enum, default_value = "primary")]
    pub(crate) role: Role,
    /// The L1's JSON-RPC API (`keel l1`). With it (or with --evm.rpc) the node posts proven
    /// batches, serves the L1 queue, heartbeats, follows and takes over; without an L1, it only
    /// sequences.
    #[arg(long = "l1.rpc")]
    pub(crate) l1_rpc: Option<String>,
    #[command(flatten)]
    pub(crate) evm: crate::evm::EvmL1Args,
    /// With an L1: a file holding this sequencer's key (64 hex digits). On `keel l1` it is the
    /// registered L1 key; on an EVM L1 it signs the standby's acknowledgements.
    #[arg(long = "sequencer.key-file", requires = "l1")]
    pub(crate) key_file: Option<PathBuf>,
    /// The other sequencers' APIs, in the order a standby tries to follow them (comma-separated).
    #[arg(long = "sequencer.peers", value_delimiter = ',')]
    pub(crate) peers: Vec<String>,
    /// Wait between standbys' take-over slots, in milliseconds (the second in line waits this
    /// much longer than the first).
    #[arg(long = "sequencer.takeover-backoff-ms", default_value_t = DEFAULT_TAKEOVER_BACKOFF_MS)]
    pub(crate) takeover_backoff_ms: u64,
    /// With --l1.rpc: the prover's key directory (keys for this batch capacity and the
    /// rollup's depth are generated there if missing: minutes).
    #[arg(long = "prover.keys-dir", default_value = crate::prover::DEFAULT_KEYS_DIR)]
    pub(crate) keys_dir: PathBuf,
    /// log2 of the batch circuit's rows (default: the smallest that holds the layout).
    #[arg(long = "prover.k")]
    pub(crate) k: Option<u32>,
    /// KZG parameters: `dev` (INSECURE: devnets and tests only) or a file in halo2's raw format.
    #[arg(long = "prover.srs", default_value = "dev")]
    pub(crate) srs: String,
    /// The prover's GPU: `auto` (a hardware GPU if there is one, else the CPU), `require` (a
    /// hardware GPU or fail; a device failure fails the proof), `software` (any adapter,
    /// lavapipe included: a correctness run), `off`.
    #[arg(long = "prover.gpu", default_value = "auto")]
    pub(crate) gpu: keel_prover::gpu::GpuPolicy,
    /// The most device memory a proof may use, as bytes or with a unit (`40GiB`, `512MiB`): the
    /// key's columns stay on the device only if a proof then fits, and the prover stops at
    /// start if a proof cannot fit (default: no limit but the device's own).
    #[arg(long = "prover.gpu-memory", value_parser = crate::prover::parse_bytes)]
    pub(crate) gpu_memory: Option<u64>,
    /// With --l1.rpc: where the primary's batches are proven and posted. `local`: a prover
    /// thread and a committer in this process. `remote`: by `keel prover run` and
    /// `keel committer` processes (the node reads the proven checkpoint from the L1).
    #[arg(long = "sequencer.proving", value_enum, default_value = "local")]
    pub(crate) proving: crate::node::Proving,
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
    /// Threads checking signature groups.
    #[arg(long = "sequencer.verify-threads", default_value_t = DEFAULT_VERIFY_THREADS as u16,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) verify_threads: u16,
    /// Niceness of the batcher thread, 0 to 19 (above 0: acknowledging operations comes before
    /// executing batches when the CPU is short).
    #[arg(long = "sequencer.batcher-nice", default_value_t = DEFAULT_BATCHER_NICE,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub(crate) batcher_nice: i32,
    #[command(flatten)]
    pub(crate) http: crate::http::HttpArgs,
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
        c.verify_threads = usize::from(self.verify_threads);
        c.batcher_nice = self.batcher_nice;
        c.http = self.http.limits();
        c
    }
}

pub(crate) fn run(args: SequencerArgs) -> anyhow::Result<()> {
    let config = args.config();
    args.evm.require_key("a sequencer")?;
    let l1 = match (&args.l1_rpc, &args.evm.evm_rpc) {
        (Some(url), _) => Some(crate::node::L1::Rpc(url.clone())),
        (None, Some(_)) => Some(crate::node::L1::Evm(args.evm.clone())),
        (None, None) => None,
    };
    if let Some(l1) = l1 {
        let key_file = args
            .key_file
            .as_ref()
            .context("an L1 needs --sequencer.key-file (the sequencer's key)")?;
        return crate::node::run(crate::node::NodeOptions {
            config,
            listen: args.listen,
            l1,
            key: crate::read_key(key_file)?,
            peers: args.peers.clone(),
            backoff: Duration::from_millis(args.takeover_backoff_ms),
            standby_first: args.role == Role::Standby,
            keys_dir: args.keys_dir.clone(),
            srs: crate::prover::srs(&args.srs),
            k: args.k,
            gpu: args.gpu,
            gpu_memory: args.gpu_memory,
            proving: args.proving,
            http: args.http.clone(),
        });
    }
    anyhow::ensure!(
        args.role == Role::Primary,
        "--role standby follows a primary and the L1: pass --l1.rpc or --evm.rpc"
    );
    let seq = Sequencer::open(config.clone())
        .with_context(|| format!("opening the sequencer in {}", config.dir.display()))?;
    let status = seq.status()?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            "{} (depth {}, epoch {}, batch {}, {} operations waiting), API on http://{addr}",
            config.dir.display(),
            status.depth,
            status.epoch,
            status.last_batch,
            status.waiting,
        );
        args.http.ready("sequencer", addr)?;
        tokio::select! {
            r = keel_sequencer::api::serve(seq.clone(), listener) => r.context("serving the API"),
            r = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted, stopping");
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
    fn a_standby_needs_an_l1_and_a_node_needs_its_key_before_anything_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("seq");
        let run_with = |extra: &[&str]| {
            let mut argv = vec![
                "keel",
                "sequencer",
                "--sequencer.dir",
                data.to_str().unwrap(),
            ];
            argv.extend(extra);
            let Command::Sequencer(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!()
            };
            run(args).unwrap_err().to_string()
        };
        let err = run_with(&["--role", "standby"]);
        assert!(err.contains("pass --l1.rpc"), "{err}");
        let err = run_with(&["--l1.rpc", "http://127.0.0.1:1"]);
        assert!(err.contains("--sequencer.key-file"), "{err}");
        assert!(!data.exists(), "nothing was created");
        let err = Cli::try_parse_from(["keel", "sequencer", "--sequencer.key-file", "k"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--l1.rpc"), "{err}");
    }

    #[test]
    fn a_bad_fsync_policy_is_refused() {
        let err = Cli::try_parse_from(["keel", "sequencer", "--sequencer.fsync", "sometimes"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected always or never"), "{err}");
    }
}
