//! `keel sequencer --l1.rpc URL`: a sequencer node ([`keel_node`]) over the L1's JSON-RPC, until
//! a signal or exit mode stops it.

use std::{
    net::TcpListener,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anyhow::Context;
use keel_committer::RpcL1;
use keel_prover::{gpu::GpuPolicy, keys::Srs};
use keel_sequencer::SequencerConfig;
use keel_state::SecretKey;

/// The L1 client's timeout: a partitioned L1 must not stall the node (nor a committer).
pub(crate) const L1_TIMEOUT: Duration = Duration::from_secs(5);

/// What the node needs besides the sequencer's own settings.
pub(crate) struct NodeOptions {
    pub(crate) config: SequencerConfig,
    pub(crate) listen: std::net::SocketAddr,
    pub(crate) l1: L1,
    pub(crate) key: SecretKey,
    pub(crate) peers: Vec<String>,
    pub(crate) backoff: Duration,
    pub(crate) standby_first: bool,
    pub(crate) keys_dir: PathBuf,
    /// The HTTP edge's flags (the ready file among them).
    pub(crate) http: crate::http::HttpArgs,
    pub(crate) srs: Srs,
    pub(crate) k: Option<u32>,
    pub(crate) gpu: GpuPolicy,
    /// The prover's device memory budget.
    pub(crate) gpu_memory: Option<u64>,
    pub(crate) proving: Proving,
}

/// The L1 a node settles on.
#[derive(Clone, Debug)]
pub(crate) enum L1 {
    /// `keel l1` at this JSON-RPC URL.
    Rpc(String),
    /// A rollup contract on an EVM chain.
    Evm(crate::evm::EvmL1Args),
}

/// Where a primary's batches are proven and posted.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Proving {
    /// In this process: a prover thread and a committer.
    #[default]
    Local,
    /// By `keel prover run` and `keel committer` processes: the node only sequences, streams,
    /// heartbeats and reads the proven checkpoint from the L1.
    Remote,
}

pub(crate) fn run(opts: NodeOptions) -> anyhow::Result<()> {
    // the L1's reads, the node's writes (as the L1 names it), the proofs' transcript
    let (l1, settler, transcript, l1_name): (
        Arc<dyn keel_committer::SettlementLayer>,
        Arc<dyn keel_committer::Settler>,
        keel_prover::Transcript,
        String,
    ) = match &opts.l1 {
        L1::Rpc(url) => {
            let rpc = Arc::new(
                RpcL1::connect_with(url, L1_TIMEOUT)
                    .with_context(|| format!("connecting to the L1 at {url}"))?,
            );
            let settler = Arc::new(keel_committer::Keyed::new(rpc.clone(), opts.key.clone()));
            (rpc, settler, keel_prover::Transcript::Blake2b, url.clone())
        }
        L1::Evm(args) => {
            let evm = args.connect()?.context("--evm.rpc")?;
            let name = format!(
                "rollup {} on {} ({} confirmations)",
                evm.client().rollup().address(),
                args.evm_rpc.as_deref().unwrap_or_default(),
                args.evm_confirmations
            );
            (evm.clone(), evm, keel_prover::Transcript::Keccak, name)
        }
    };
    let listener =
        TcpListener::bind(opts.listen).with_context(|| format!("binding {}", opts.listen))?;
    let proving = match opts.proving {
        Proving::Remote => keel_node::Proving::Remote,
        Proving::Local => {
            let (dir, srs, gpu, gpu_memory, k, capacity) = (
                opts.keys_dir.clone(),
                opts.srs.clone(),
                opts.gpu,
                opts.gpu_memory,
                opts.k,
                opts.config.batch_capacity,
            );
            keel_node::Proving::Local(Box::new(move |depth| {
                let open = || {
                    let shape = crate::prover::shape(capacity, depth, k)?;
                    crate::prover::open_prover(&dir, shape, &srs, gpu, gpu_memory)
                        .map(|p| p.with_transcript(transcript))
                };
                open().map_err(|e| format!("{e:#}").into())
            }))
        }
    };
    let node = keel_node::start(
        keel_node::NodeConfig {
            sequencer: opts.config,
            key: opts.key.clone(),
            peers: opts.peers,
            backoff: opts.backoff,
            standby_first: opts.standby_first,
            proving,
        },
        l1,
        settler,
        listener,
    )?;
    tracing::info!("L1 {l1_name}");
    opts.http.ready("node", node.addr())?;
    let stop = node.stop_flag();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        let _ = rt.block_on(crate::stop_signal());
        stop.store(true, Ordering::Release);
    });
    Ok(node.join()?)
}
