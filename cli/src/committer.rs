//! `keel committer`: the committer as its own process, paired with one sequencer (it posts with
//! that sequencer's key): provers hand it proven batches over HTTP ([`keel_committer::api`]), it
//! checks them against the L1, its sequencer's log and the pinned verifier, and posts them in
//! order, each once ([`keel_committer::Committer`]), in a term per epoch its key holds the lease.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use keel_committer::{
    api::{router, CommitterApi, SequencedBatches},
    CommitterConfig, Keyed, RpcL1, SettlementLayer, Settler,
};
use keel_prover::BatchVerifier;
use keel_state::{Batch, BatchNumber};

/// Default store directory.
pub(crate) const DEFAULT_DIR: &str = "keel-data/committer";
/// Default API address (loopback: expose it deliberately).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7645";
/// How often the committer reads the lease to open or close its term.
const SYNC_EVERY: Duration = Duration::from_millis(250);

/// The committer's flags.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("l1").required(true).args(["l1_rpc", "evm_rpc"])))]
pub(crate) struct CommitterArgs {
    /// The L1's JSON-RPC API (`keel l1`); or --evm.rpc, a rollup contract, posted to with
    /// --evm.key-file (the sequencer's registered address).
    #[arg(long = "l1.rpc")]
    l1_rpc: Option<String>,
    #[command(flatten)]
    evm: crate::evm::EvmL1Args,
    /// The verifier file the L1 pins (`keel prover keygen` writes it): offered proofs are
    /// checked with it before they are held.
    #[arg(long = "l1.verifier")]
    verifier: PathBuf,
    /// With --l1.rpc: a file holding the L1 key of the sequencer this committer posts for (64
    /// hex digits).
    #[arg(long = "committer.key-file", requires = "l1_rpc")]
    key_file: Option<PathBuf>,
    /// That sequencer's API: only batches it logged are posted.
    #[arg(long = "committer.sequencer")]
    sequencer: String,
    /// Store directory (batches held until they are posted).
    #[arg(long = "committer.dir", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Address of the API (`POST /v1/batches`, `GET /v1/status`).
    #[arg(long = "committer.listen", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[command(flatten)]
    http: crate::http::HttpArgs,
}

/// The paired sequencer, asked over HTTP from the API's blocking threads.
struct Sequencer {
    client: keel_sequencer::Client,
    rt: tokio::runtime::Handle,
}

impl SequencedBatches for Sequencer {
    fn batch(&self, n: BatchNumber) -> Result<Option<Batch>, String> {
        self.rt
            .block_on(self.client.batch(n.0))
            .map_err(|e| format!("{}: {e}", self.client.base()))
    }
}

pub(crate) fn run(args: CommitterArgs) -> anyhow::Result<()> {
    let verifier = BatchVerifier::from_bytes(
        &std::fs::read(&args.verifier)
            .with_context(|| format!("reading {}", args.verifier.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.verifier.display()))?;
    args.evm.require_key("a committer")?;
    let (l1, signer, verifier): (Arc<dyn SettlementLayer>, Arc<dyn Settler>, _) =
        match (&args.l1_rpc, args.evm.connect()?) {
            (Some(url), _) => {
                let key_file = args
                    .key_file
                    .as_ref()
                    .context("--l1.rpc needs --committer.key-file (the sequencer's L1 key)")?;
                let key = crate::read_key(key_file)?;
                let rpc = Arc::new(
                    RpcL1::connect_with(url, crate::node::L1_TIMEOUT)
                        .with_context(|| format!("connecting to the L1 at {url}"))?,
                );
                (rpc.clone(), Arc::new(Keyed::new(rpc, key)), verifier)
            }
            // the rollup's verifier reads proofs in the Keccak transcript
            (None, Some(evm)) => (
                evm.clone(),
                evm,
                verifier.with_transcript(keel_prover::Transcript::Keccak),
            ),
            (None, None) => anyhow::bail!("pass --l1.rpc or --evm.rpc"),
        };
    let view = l1.rollup()?;
    anyhow::ensure!(
        view.registered(&signer.address()),
        "this key is not a registered sequencer of the rollup: the L1 would refuse its batches"
    );
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    let mut config = CommitterConfig::new(&args.dir);
    config.retry_max = Duration::from_secs(2);
    let rt = tokio::runtime::Runtime::new()?;
    let api = Arc::new(CommitterApi::new(
        config,
        l1,
        signer,
        verifier,
        Box::new(Sequencer {
            client: keel_sequencer::Client::new(args.sequencer.clone()),
            rt: rt.handle().clone(),
        }),
    ));
    let addr = listener.local_addr()?;
    tracing::info!(
        "committer for {} in {}, API on http://{addr}",
        args.sequencer,
        args.dir.display(),
    );
    args.http.ready("committer", addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    // terms follow the lease: opened when this key holds it, closed when it moves on
    let supervisor = {
        let (api, stop) = (api.clone(), stop.clone());
        std::thread::Builder::new()
            .name("keel-committer-terms".into())
            .spawn(move || {
                let mut said = None;
                while !stop.load(Ordering::Acquire) {
                    let r = api.sync().err().map(|e| e.to_string());
                    if r.is_some() && r != said {
                        tracing::warn!("{}", r.as_deref().unwrap_or_default());
                    }
                    said = r;
                    std::thread::sleep(SYNC_EVERY);
                }
            })?
    };
    let served = rt.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        keel_http::serve(listener, router(api.clone()), args.http.limits(), async {
            if let Err(e) = crate::stop_signal().await {
                tracing::warn!("waiting for a stop signal: {e}");
            }
        })
        .await
        .context("serving the API")
    });
    stop.store(true, Ordering::Release);
    let _ = supervisor.join();
    drop(rt);
    // the last handle stops the term's poster; what it held stays in its store
    drop(api);
    tracing::info!("stopped");
    served
}
