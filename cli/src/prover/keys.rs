//! The batch circuit's shape and keys, as the commands ask for them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, KeySource, KzgParams, Srs},
    kzg::{cpu_factory, MsmParams},
    BatchProver, Shape,
};

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
pub(crate) fn load_keys(
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

/// A prover for `shape` with the keys in `dir`, the engine `gpu` picks and at most
/// `gpu_memory` bytes of device memory a proof.
pub(crate) fn open_prover(
    dir: &Path,
    shape: Shape,
    srs: &Srs,
    gpu: keel_prover::gpu::GpuPolicy,
    gpu_memory: Option<u64>,
) -> anyhow::Result<BatchProver> {
    let (params, keys, _) = load_keys(dir, shape, srs)?;
    let params = keel_prover::kzg::params_for(params, gpu).context("opening the GPU")?;
    let prover = BatchProver::new(params, keys).with_device_budget(gpu_memory);
    if let Some(plan) = prover.device_memory()? {
        tracing::info!(
            target: "keel::prover",
            mib = plan.total() >> 20,
            bases_mib = plan.bases >> 20,
            tables_mib = plan.tables >> 20,
            key_mib = plan.key >> 20,
            working_mib = plan.working >> 20,
            "device memory a proof needs"
        );
    }
    // the key's coset values, once, before the first batch waits for them
    let started = std::time::Instant::now();
    let bytes = prover
        .prepare()
        .context("transforming the key onto the extended domain")?;
    tracing::info!(
        target: "keel::prover",
        backend = %prover.backend(),
        mib = bytes >> 20,
        ms = started.elapsed().as_millis() as u64,
        "prover ready"
    );
    Ok(prover)
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

/// Writes the EVM batch verifier for the keys of `shape` in `dir` (generating them if needed):
/// snark-verifier's SHPLONK verifier for proofs in the Keccak transcript, compiled with the
/// pinned solc-js, in as many parts as EIP-170 requires. Returns the file.
pub(crate) fn evm_verifier(dir: &Path, shape: Shape, srs: &Srs) -> anyhow::Result<PathBuf> {
    let (params, keys, _) = load_keys(dir, shape, srs)?;
    let contracts =
        keel_evm::verifier::generate(&params, keys.vk()).context("generating the EVM verifier")?;
    let file = dir.join(format!(
        "batch-N{}-D{}-k{}.evm-verifier.json",
        shape.capacity, shape.depth, shape.k
    ));
    let json = serde_json::to_vec_pretty(&contracts)?;
    std::fs::write(&file, json).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}
