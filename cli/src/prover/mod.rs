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

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_prover::{keys::KeySource, Shape};
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
    Run(Box<RunArgs>),
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
#[command(group(clap::ArgGroup::new("l1").required(true).args(["l1_rpc", "evm_rpc"])))]
pub(crate) struct RunArgs {
    /// The L1's JSON-RPC API (`keel l1`): the state is rebuilt from its data (or --evm.rpc: a
    /// rollup contract, read only; proofs then use the Keccak transcript its verifier reads).
    #[arg(long = "l1.rpc")]
    l1_rpc: Option<String>,
    #[command(flatten)]
    evm: crate::evm::EvmL1Args,
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
    /// The prover's GPU: `auto` (a hardware GPU if there is one, else the CPU), `require` (a
    /// hardware GPU or fail; a device failure fails the proof), `software` (any adapter,
    /// lavapipe included: a correctness run), `off`.
    #[arg(long = "prover.gpu", default_value = "auto")]
    gpu: keel_prover::gpu::GpuPolicy,
    /// The most device memory a proof may use, as bytes or with a unit (`40GiB`, `512MiB`): the
    /// key's columns stay on the device only if a proof then fits, and the prover stops at
    /// start if a proof cannot fit (default: no limit but the device's own).
    #[arg(long = "prover.gpu-memory", value_parser = crate::prover::parse_bytes)]
    gpu_memory: Option<u64>,
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
    /// Also write the EVM batch verifier (`*.evm-verifier.json`: its contracts in deployment
    /// order, each after the first naming the one before; proofs in the Keccak transcript).
    /// Needs Node.js and `npm ci` in contracts/.
    #[arg(long)]
    evm: bool,
}

pub(crate) fn run(cmd: ProverCommand) -> anyhow::Result<()> {
    match cmd {
        ProverCommand::Keygen(args) => run_keygen(args),
        ProverCommand::Run(args) => serve(*args),
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
    if args.evm {
        let evm = keys::evm_verifier(&args.dir, shape, &srs(&args.srs))?;
        println!("{}", evm.display());
    }
    Ok(())
}

pub(crate) mod keys;
mod serve;
#[cfg(test)]
mod tests;

pub(crate) use keys::{check_shape, evm_verifier, keygen, open_prover, shape, srs};
use serve::serve;

/// A number of bytes: digits, optionally with a unit (`K`, `M`, `G`, `T`, each with `B`, `iB`
/// or nothing after it: powers of 1024 with `i` or nothing, of 1000 with `B`).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?}: a number of bytes, such as 40GiB or 536870912"))?;
    let unit = unit.trim();
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (K, M, G or T, with iB or B)"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{s:?}: more bytes than 2^64"))
}

#[cfg(test)]
mod bytes_tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_their_units_and_nonsense_is_refused() {
        assert_eq!(parse_bytes("536870912"), Ok(1 << 29));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("40GiB"), Ok(40 << 30));
        assert_eq!(parse_bytes("40G"), Ok(40 << 30));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes(" 7 KiB "), Ok(7 << 10));
        for bad in ["", "GiB", "12XB", "-1", "1.5GiB", "99999999999TiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }
}
