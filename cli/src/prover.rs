//! `keel prover keygen`: the batch circuit's keys for a shape, and the verifier file an L1 pins
//! at genesis.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, KeySource, Srs},
    kzg::{cpu_factory, MsmParams},
    Shape,
};
use keel_state::DEFAULT_DEPTH;

/// Default key directory.
pub(crate) const DEFAULT_KEYS_DIR: &str = "keel-data/keys";
/// Default operations per batch.
pub(crate) const DEFAULT_CAPACITY: usize = 1;
/// Default log2 of the circuit's rows.
pub(crate) const DEFAULT_K: u32 = 16;

#[derive(Subcommand, Debug)]
pub(crate) enum ProverCommand {
    /// Generate (or load, if cached and matching) the batch circuit's keys, and write the
    /// verifier file (KZG parameters, layout and verifying key) that `keel l1` pins.
    Keygen(KeygenArgs),
}

/// The circuit's shape and where its keys go.
#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Directory of the keys (proving key, manifest, verifier file).
    #[arg(long = "prover.keys-dir", default_value = DEFAULT_KEYS_DIR)]
    dir: PathBuf,
    /// Operations per batch.
    #[arg(long = "prover.capacity", default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
    /// State tree depth.
    #[arg(long = "prover.depth", default_value_t = DEFAULT_DEPTH)]
    depth: u8,
    /// log2 of the circuit's rows.
    #[arg(long = "prover.k", default_value_t = DEFAULT_K)]
    k: u32,
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

/// Refuses a shape no circuit is made for, before anything is created.
pub(crate) fn check_shape(shape: Shape) -> anyhow::Result<()> {
    anyhow::ensure!(shape.capacity >= 1, "the capacity must be at least 1");
    anyhow::ensure!(
        (1..=keel_state::MAX_DEPTH).contains(&shape.depth),
        "the depth must be in 1..={}",
        keel_state::MAX_DEPTH
    );
    anyhow::ensure!((10..=26).contains(&shape.k), "k must be in 10..=26");
    Ok(())
}

/// Loads or generates the keys of `shape` in `dir` and writes the verifier file an L1 pins;
/// returns the file, where the keys came from, and the verifying key's digest.
pub(crate) fn keygen(
    dir: &Path,
    shape: Shape,
    srs: &Srs,
) -> anyhow::Result<(PathBuf, KeySource, String)> {
    check_shape(shape)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let params = kzg_params_cached(srs, shape.k, dir)?;
    let msm = MsmParams::new(params.clone(), cpu_factory());
    let (keys, source) = BatchKeys::load_or_generate(dir, &params, &msm, shape)?;
    let file = dir.join(format!(
        "batch-N{}-D{}-k{}.verifier",
        shape.capacity, shape.depth, shape.k
    ));
    std::fs::write(&file, keys.verifier_bytes(&params))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok((file, source, keel_prover::keys::vk_digest(keys.vk())))
}

pub(crate) fn run(cmd: ProverCommand) -> anyhow::Result<()> {
    let ProverCommand::Keygen(args) = cmd;
    let shape = Shape {
        capacity: args.capacity,
        depth: args.depth,
        k: args.k,
    };
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
