//! `keel prover keygen`: the batch circuit's keys for a shape, and the verifier file an L1 pins
//! at genesis. `keel prover run`: a prover service ([`keel_prover::worker`] over HTTP) that
//! follows the primary's batch stream, rebuilds its state from the L1, proves its shard of the
//! batches and hands the proofs to whichever committer holds the lease.
//!
//! ```text
//!  keel l1 ──L1 data──▶ shadow state ◀── GET /v1/stream (first of --prover.sequencers that streams)
//!                          │ witness
//!                          ▼
//!  --prover.shard i/P ──▶ prove (GPU or CPU) ──POST /v1/batches──▶ first of --prover.committers
//!                                                                    that holds the lease
//!  GET /v1/prover (--prover.listen): backend, shard, batches applied and proven, proof times
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, KeySource, KzgParams, Srs},
    kzg::{cpu_factory, MsmParams},
    BatchProver, Shape,
};
use keel_sequencer::node::ProverStatus;
use keel_state::DEFAULT_DEPTH;

/// Default key directory.
pub(crate) const DEFAULT_KEYS_DIR: &str = "keel-data/keys";
/// Default operations per batch: the sequencer's, a batch that fills the production circuit.
pub(crate) const DEFAULT_CAPACITY: usize = keel_sequencer::config::DEFAULT_BATCH_CAPACITY;

/// Default address of a prover service's status API.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7745";

#[derive(Subcommand, Debug)]
pub(crate) enum ProverCommand {
    /// Generate (or load, if cached and matching) the batch circuit's keys, and write the
    /// verifier file (KZG parameters, layout and verifying key) that `keel l1` pins.
    Keygen(KeygenArgs),
    /// Run a prover service: follow the primary's batch stream, rebuild the state from L1
    /// data, prove this prover's shard of the batches and hand each proof to the committer
    /// that holds the lease (`keel committer`). Runs until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Print the batch circuit's size for a shape, from the circuit itself: advice cells, rows
    /// and columns per transfer, the fixed and lookup columns, the degree (operators and
    /// researchers size their machines with it). Makes no keys.
    Layout(LayoutArgs),
}

/// A circuit shape's flags.
#[derive(Args, Debug)]
pub(crate) struct ShapeArgs {
    /// Operations per batch.
    #[arg(long = "prover.capacity", default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
    /// State tree depth.
    #[arg(long = "prover.depth", default_value_t = DEFAULT_DEPTH)]
    depth: u8,
    /// log2 of the circuit's rows (default: the smallest that holds the layout).
    #[arg(long = "prover.k")]
    k: Option<u32>,
}

impl ShapeArgs {
    fn shape(&self) -> anyhow::Result<Shape> {
        shape(self.capacity, self.depth, self.k)
    }
}

/// The shape whose layout is printed.
#[derive(Args, Debug)]
pub(crate) struct LayoutArgs {
    #[command(flatten)]
    shape: ShapeArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// A prover service's flags.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The L1's JSON-RPC API (`keel l1`): the state is rebuilt from its data.
    #[arg(long = "l1.rpc")]
    l1_rpc: String,
    /// The sequencers' APIs (comma-separated): batches are streamed from the first that
    /// streams (the primary; a standby refuses with 503).
    #[arg(long = "prover.sequencers", value_delimiter = ',', required = true)]
    sequencers: Vec<String>,
    /// The committers' APIs (`keel committer`, comma-separated): each proof goes to the first
    /// that takes it (the one whose key holds the lease).
    #[arg(long = "prover.committers", value_delimiter = ',', required = true)]
    committers: Vec<String>,
    /// This prover's share of a farm of P provers: `i/P` proves the batches n with
    /// (n - 1) mod P = i.
    #[arg(long = "prover.shard", default_value = "0/1")]
    shard: keel_prover::worker::Shard,
    /// Address of the status API (`GET /v1/prover`).
    #[arg(long = "prover.listen", default_value = DEFAULT_LISTEN)]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    http: crate::http::HttpArgs,
    /// Directory of the keys (generated there if missing: minutes).
    #[arg(long = "prover.keys-dir", default_value = DEFAULT_KEYS_DIR)]
    dir: PathBuf,
    /// Operations per batch: the sequencers' batch capacity.
    #[arg(long = "prover.capacity", default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
    /// log2 of the circuit's rows (default: the smallest that holds the layout).
    #[arg(long = "prover.k")]
    k: Option<u32>,
    /// KZG parameters: `dev` (INSECURE: devnets and tests only) or a file in halo2's raw format.
    #[arg(long = "prover.srs", default_value = "dev")]
    srs: String,
    /// The GPU: `auto` (a hardware GPU if there is one, else the CPU), `require` (any adapter,
    /// software included, or fail), `off`.
    #[arg(long = "prover.gpu", default_value = "auto")]
    gpu: keel_prover::gpu::GpuPolicy,
    /// The verifier file the L1 pins (optional): the keys are checked against it at start, so
    /// a prover whose proofs the chain would refuse stops with the reason.
    #[arg(long = "prover.verifier")]
    verifier: Option<PathBuf>,
}

/// The circuit's shape and where its keys go.
#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Directory of the keys (proving key, manifest, verifier file).
    #[arg(long = "prover.keys-dir", default_value = DEFAULT_KEYS_DIR)]
    dir: PathBuf,
    #[command(flatten)]
    shape: ShapeArgs,
    /// KZG parameters: `dev` (INSECURE, publicly known toxic waste: devnets and tests only) or
    /// a file in halo2's raw format.
    #[arg(long = "prover.srs", default_value = "dev")]
    srs: String,
}

/// `--prover.srs`: `dev` or a file.
pub(crate) fn srs(arg: &str) -> Srs {
    match arg {
        "dev" => Srs::Dev,
        file => Srs::File(file.into()),
    }
}

/// The largest circuit a shape may ask for: 2^26 rows.
const MAX_K: u32 = 26;

/// The shape of `capacity` operations at `depth`: `2^k` rows, or the fewest that hold it.
/// Refuses, before laying anything out, a capacity no `2^26` rows could hold.
pub(crate) fn shape(capacity: usize, depth: u8, k: Option<u32>) -> anyhow::Result<Shape> {
    anyhow::ensure!(capacity >= 1, "the capacity must be at least 1");
    anyhow::ensure!(
        (1..=keel_state::MAX_DEPTH).contains(&depth),
        "the depth must be in 1..={}",
        keel_state::MAX_DEPTH
    );
    let per = Shape::per_operation(depth).rows;
    anyhow::ensure!(
        capacity.saturating_mul(per) < 1 << MAX_K,
        "{capacity} operations at depth {depth} need about {} rows, more than 2^{MAX_K}: use a \
         smaller --prover.capacity (2^{MAX_K} rows hold {})",
        capacity.saturating_mul(per),
        (1usize << MAX_K) / per
    );
    Ok(match k {
        Some(k) => Shape { capacity, depth, k },
        None => Shape::fit(capacity, depth),
    })
}

/// Refuses a shape no circuit is made for, before anything is created.
pub(crate) fn check_shape(shape: Shape) -> anyhow::Result<()> {
    anyhow::ensure!(shape.capacity >= 1, "the capacity must be at least 1");
    anyhow::ensure!(
        (1..=keel_state::MAX_DEPTH).contains(&shape.depth),
        "the depth must be in 1..={}",
        keel_state::MAX_DEPTH
    );
    anyhow::ensure!((10..=MAX_K).contains(&shape.k), "k must be in 10..={MAX_K}");
    let need = shape.statistics().rows_needed;
    anyhow::ensure!(
        need <= 1usize << shape.k,
        "{} operations at depth {} need {need} rows, 2^{} has {}: pass --prover.k {} (or leave \
         --prover.k out for the smallest that fits)",
        shape.capacity,
        shape.depth,
        shape.k,
        1usize << shape.k,
        Shape::fit(shape.capacity, shape.depth).k
    );
    Ok(())
}

/// The KZG parameters and the keys of `shape` in `dir`, loaded or generated there (keys are
/// made on the CPU path: they are the same whatever proves with them).
fn load_keys(
    dir: &Path,
    shape: Shape,
    srs: &Srs,
) -> anyhow::Result<(KzgParams, BatchKeys, KeySource)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let params = kzg_params_cached(srs, shape.k, dir)?;
    let cpu = MsmParams::new(params.clone(), cpu_factory());
    let (keys, source) = BatchKeys::load_or_generate(dir, &params, &cpu, shape)?;
    Ok((params, keys, source))
}

/// A prover for `shape` with the keys in `dir` and the engine `gpu` picks.
pub(crate) fn open_prover(
    dir: &Path,
    shape: Shape,
    srs: &Srs,
    gpu: keel_prover::gpu::GpuPolicy,
) -> anyhow::Result<BatchProver> {
    let (params, keys, _) = load_keys(dir, shape, srs)?;
    let params = keel_prover::kzg::params_for(params, gpu).context("opening the GPU")?;
    Ok(BatchProver::new(params, keys))
}

/// Loads or generates the keys of `shape` in `dir` and writes the verifier file an L1 pins;
/// returns the file, where the keys came from, and the verifying key's digest.
pub(crate) fn keygen(
    dir: &Path,
    shape: Shape,
    srs: &Srs,
) -> anyhow::Result<(PathBuf, KeySource, String)> {
    check_shape(shape)?;
    let (params, keys, source) = load_keys(dir, shape, srs)?;
    let file = dir.join(format!(
        "batch-N{}-D{}-k{}.verifier",
        shape.capacity, shape.depth, shape.k
    ));
    std::fs::write(&file, keys.verifier_bytes(&params))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok((file, source, keel_prover::keys::vk_digest(keys.vk())))
}

pub(crate) fn run(cmd: ProverCommand) -> anyhow::Result<()> {
    match cmd {
        ProverCommand::Keygen(args) => run_keygen(args),
        ProverCommand::Run(args) => serve(args),
        ProverCommand::Layout(args) => print_layout(args),
    }
}

/// What `keel prover layout --json` prints.
#[derive(serde::Serialize)]
struct LayoutReport {
    circuit_version: u32,
    shape: Shape,
    /// Rows `2^k` offers after halo2's reserved rows.
    usable_rows: usize,
    /// log2 of the extended domain the quotient is computed on.
    extended_k: u32,
    per_operation: keel_prover::Statistics,
    circuit: keel_prover::Statistics,
}

fn print_layout(args: LayoutArgs) -> anyhow::Result<()> {
    let shape = args.shape.shape()?;
    check_shape(shape)?;
    let circuit = shape.statistics();
    let per = Shape::per_operation(shape.depth);
    // the quotient's domain: the next power of two above (degree − 1)·2^k
    let extended_k = shape.k
        + (circuit.degree as u32 - 1)
            .next_power_of_two()
            .trailing_zeros();
    let report = LayoutReport {
        circuit_version: keel_prover::keys::CIRCUIT_VERSION,
        shape,
        usable_rows: shape.usable_rows(),
        extended_k,
        per_operation: per,
        circuit,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let (p, c) = (&report.per_operation, &report.circuit);
    println!(
        "batch circuit v{}: capacity {}, depth {}, k {}",
        report.circuit_version, shape.capacity, shape.depth, shape.k
    );
    println!(
        "per transfer:  {} advice cells = {} rows × {} advice columns",
        p.advice_cells, p.rows, p.advice_columns
    );
    let by: Vec<String> = p.rows_by.iter().map(|(g, r)| format!("{g} {r}")).collect();
    println!(
        "               rows: {}, glue {}",
        by.join(", "),
        p.glue_rows
    );
    println!(
        "whole circuit: {} of {} usable rows ({:.1}%), {} advice cells",
        c.rows,
        report.usable_rows,
        100.0 * c.rows as f64 / report.usable_rows as f64,
        c.advice_cells
    );
    println!(
        "columns:       {} advice, {} fixed (coefficients, constants, the table's 4, selectors), 1 instance",
        c.advice_columns, c.fixed_columns
    );
    println!(
        "lookups:       {} argument(s) over a {}-row table (range limbs, fixed-base windows)",
        c.lookups, c.table_rows
    );
    println!(
        "degree:        {} (the quotient on 2^{} points, {}× the rows)",
        c.degree,
        report.extended_k,
        1u32 << (report.extended_k - shape.k)
    );
    Ok(())
}

fn run_keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let shape = args.shape.shape()?;
    eprintln!(
        "keel prover keygen: capacity {}, depth {}, k {} in {} (generating takes minutes)",
        shape.capacity,
        shape.depth,
        shape.k,
        args.dir.display()
    );
    let (file, source, digest) = keygen(&args.dir, shape, &srs(&args.srs))?;
    eprintln!(
        "keys {} ({digest})",
        match source {
            KeySource::Generated => "generated",
            KeySource::Cached => "loaded from the cache",
        },
    );
    println!("{}", file.display());
    Ok(())
}

/// `keel prover run`.
fn serve(args: RunArgs) -> anyhow::Result<()> {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    };

    use keel_prover::worker::{self, Event, WorkerConfig};

    let l1 = Arc::new(
        keel_committer::RpcL1::connect(&args.l1_rpc)
            .with_context(|| format!("connecting to the L1 at {}", args.l1_rpc))?,
    );
    let view = keel_committer::SettlementLayer::rollup(l1.as_ref())?;
    let shape = shape(args.capacity, view.depth, args.k)?;
    check_shape(shape)?;
    let committers = keel_committer::CommitterClient::new(args.committers.clone())?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "prover {} (capacity {}, depth {}, k {}): loading keys from {}",
        args.shard,
        shape.capacity,
        shape.depth,
        shape.k,
        args.dir.display()
    );
    let prover = open_prover(&args.dir, shape, &srs(&args.srs), args.gpu)?;
    if let Some(file) = &args.verifier {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        keel_prover::BatchVerifier::from_bytes(&bytes)
            .and_then(|v| v.check_keys(prover.keys()))
            .with_context(|| format!("{}", file.display()))?;
    }

    let status = Arc::new(Mutex::new(ProverStatus {
        backend: prover.backend(),
        shard: args.shard.to_string(),
        ..Default::default()
    }));
    let rt = tokio::runtime::Runtime::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    let addr = listener.local_addr()?;
    {
        let (stop, status) = (stop.clone(), status.clone());
        listener.set_nonblocking(true)?;
        let listener = {
            let _enter = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let app = axum::Router::new().route(
            "/v1/prover",
            axum::routing::get(move || {
                let s = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                async move { axum::Json(s) }
            }),
        );
        let limits = args.http.limits();
        rt.spawn(async move {
            let served = keel_http::serve(listener, app, limits, async {
                let _ = crate::stop_signal().await;
            });
            if let Err(e) = served.await {
                tracing::error!("serving the status API: {e}");
            }
            stop.store(true, Ordering::Release);
        });
    }
    tracing::info!(
        "prover {} ready ({}): sequencers {:?}, committers {:?}, status on http://{addr}",
        args.shard,
        prover.backend(),
        args.sequencers,
        args.committers,
    );
    args.http.ready("prover", addr)?;
    let mut upstream = keel_node::proving::Remote {
        l1: l1.clone(),
        sequencers: args.sequencers.clone(),
        rt: rt.handle().clone(),
    };
    let mut sink =
        keel_node::proving::ToCommitters(keel_committer::Courier::new(committers, l1.clone()));
    let config = WorkerConfig {
        shard: args.shard,
        ..WorkerConfig::default()
    };
    let edit = |f: &mut dyn FnMut(&mut ProverStatus)| {
        f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
    };
    worker::run(
        |w| prover.prove(w, |_| {}),
        &mut upstream,
        &mut sink,
        config,
        &stop,
        |e| match e {
            Event::Synced(n) => {
                tracing::info!("state rebuilt from the L1 at batch {n}");
                edit(&mut |s| s.synced_at = n.0);
            }
            Event::Following(n) => tracing::debug!("following from batch {n}"),
            Event::Applied(n, mine) => {
                tracing::debug!("batch {n} applied{}", if mine { ", proving" } else { "" });
                edit(&mut |s| s.applied = n.0);
            }
            Event::Proved(n, t) => edit(&mut |s| s.proofs.record(n.0, t.total.as_millis() as u64)),
            Event::Delivered(n) => edit(&mut |s| s.delivered = n.0),
            Event::Trouble(why) => {
                tracing::warn!("{why}");
                edit(&mut |s| s.trouble = Some(why.to_owned()));
            }
        },
    )?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The production defaults agree: the sequencer's batch capacity, the prover's capacity
    /// and the default depth make a circuit that fills 2^17 rows (a batch that holds one more
    /// operation would not fit).
    #[test]
    fn the_default_batch_fills_the_production_circuit() {
        let s = shape(DEFAULT_CAPACITY, DEFAULT_DEPTH, None).unwrap();
        assert_eq!((s.depth, s.k), (26, 17), "{s:?}");
        assert_eq!(Shape::fill(DEFAULT_DEPTH, 17).capacity, DEFAULT_CAPACITY);
        check_shape(s).unwrap();
    }

    /// The devnet's batch fills 2^14 rows at its depth.
    #[test]
    fn the_devnet_batch_fills_its_circuit() {
        use crate::devnet::{DEFAULT_CAPACITY, DEFAULT_DEPTH};
        let s = shape(DEFAULT_CAPACITY, DEFAULT_DEPTH, None).unwrap();
        assert_eq!(s.k, 14, "{s:?}");
        assert_eq!(Shape::fill(DEFAULT_DEPTH, 14).capacity, DEFAULT_CAPACITY);
    }

    #[test]
    fn a_k_too_small_for_the_shape_is_refused_with_the_k_that_fits() {
        let err = check_shape(Shape {
            capacity: 8,
            depth: 24,
            k: 12,
        })
        .unwrap_err()
        .to_string();
        let fit = Shape::fit(8, 24).k;
        assert!(err.contains(&format!("--prover.k {fit}")), "{err}");
        check_shape(Shape::fit(8, 24)).unwrap();
        // a capacity no circuit holds is refused before anything is laid out
        let err = shape(10_000_000, 24, None).unwrap_err().to_string();
        assert!(err.contains("more than 2^26"), "{err}");
    }
}
