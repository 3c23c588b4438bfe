//! `keel l1`: the embedded L1 as its own process: the chain in RocksDB, a block sealed every
//! block time, and the JSON-RPC API (`keel_committer::rpc`) that committers, followers,
//! standbys and `keel exit --l1.rpc` call.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::SystemTime};

use anyhow::Context;
use clap::Args;
use keel_committer::{rpc::RpcServer, EmbeddedL1, Genesis, SettlementLayer};
use keel_prover::BatchVerifier;

/// Default data directory.
pub(crate) const DEFAULT_DIR: &str = "keel-data/l1";
/// Default API address (loopback: expose it deliberately).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8545";

/// The embedded L1's flags.
#[derive(Args, Debug, Clone)]
pub(crate) struct L1Args {
    /// Data directory of the chain.
    #[arg(long = "l1.dir", default_value = DEFAULT_DIR)]
    pub(crate) dir: PathBuf,
    /// The verifier file the chain pins at genesis (`keel prover keygen` writes it).
    #[arg(long = "l1.verifier")]
    pub(crate) verifier: PathBuf,
    /// A genesis file (JSON) to create the chain from; with an existing chain it must be that
    /// chain's genesis. Fields: chain_id, depth, sequencers ["0x" keys], allocations
    /// [{address, amount}], council ("0x" group key from `keel council keygen`), and optionally
    /// time_ms (default: now) and deadlines {block_time_ms, failover_timeout_ms,
    /// forced_inclusion_ms, proof_ms} (each defaults to `keel sla`'s).
    #[arg(long = "l1.genesis")]
    pub(crate) genesis: Option<PathBuf>,
    /// Address of the JSON-RPC API.
    #[arg(long = "l1.listen", default_value = DEFAULT_LISTEN)]
    pub(crate) listen: SocketAddr,
    #[command(flatten)]
    pub(crate) http: crate::http::HttpArgs,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads a genesis file; a missing `time_ms` is `default_time_ms`.
pub(crate) fn read_genesis(file: &PathBuf, default_time_ms: u64) -> anyhow::Result<Genesis> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("time_ms").or_insert(default_time_ms.into());
    }
    let genesis: Genesis = serde_json::from_value(value)
        .with_context(|| format!("{} is not a genesis", file.display()))?;
    genesis
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(genesis)
}

/// Opens the chain in `args.dir`, creating it from the genesis file if there is none.
pub(crate) fn open(args: &L1Args) -> anyhow::Result<EmbeddedL1> {
    let bytes = std::fs::read(&args.verifier)
        .with_context(|| format!("reading {}", args.verifier.display()))?;
    let verifier = BatchVerifier::from_bytes(&bytes)
        .with_context(|| format!("{} is not a verifier file", args.verifier.display()))?;
    let stored = EmbeddedL1::stored_genesis(&args.dir)
        .with_context(|| format!("reading the chain in {}", args.dir.display()))?;
    let l1 = match (&args.genesis, stored) {
        (None, None) => anyhow::bail!(
            "no chain in {}: pass --l1.genesis FILE to create one",
            args.dir.display()
        ),
        (None, Some(_)) => EmbeddedL1::open_existing(&args.dir, verifier)?,
        (Some(file), stored) => {
            // a genesis file without a time is the stored chain's, or now for a new chain
            let genesis = read_genesis(file, stored.map_or_else(now_ms, |g| g.time_ms))?;
            std::fs::create_dir_all(&args.dir)
                .with_context(|| format!("creating {}", args.dir.display()))?;
            EmbeddedL1::open(&args.dir, &genesis, verifier)?
        }
    };
    Ok(l1)
}

pub(crate) fn run(args: L1Args) -> anyhow::Result<()> {
    let l1 = Arc::new(open(&args)?);
    let genesis = l1.genesis().clone();
    let view = l1.rollup()?;
    let _blocks = l1.produce_blocks(genesis.deadlines.block_time);
    let server = RpcServer::spawn_with(l1.clone(), args.listen, args.http.limits())
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "chain {} in {} (height {}, batch {}, block time {} ms{}), API on {}",
        genesis.chain_id,
        args.dir.display(),
        view.head.height,
        view.checkpoint.batch,
        genesis.deadlines.block_time.as_millis(),
        if view.exit_mode.is_some() {
            ", exit mode"
        } else {
            ""
        },
        server.url()
    );
    args.http.ready("l1", server.addr())?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(crate::stop_signal())?;
    tracing::info!("stopping");
    server.stop()?;
    Ok(())
}
