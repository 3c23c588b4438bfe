//! KZG parameters and the batch circuit's proving and verifying keys, cached on disk.
//!
//! Parameters come from a file (a production ceremony's output, halo2's raw format) or, for
//! development, from [`Srs::Dev`]: generated from a fixed public seed, so **anyone can forge
//! proofs against it**. It exists so tests and the devnet run anywhere; every use logs a warning.
//!
//! Keys are cached as `batch-N{capacity}-D{depth}-k{k}.pk` with a JSON manifest beside it. A
//! cached key is used only if the manifest names the same circuit version, shape, layout (the
//! halo2-base configuration the circuit gives today) and SRS, and the key's verifying-key digest
//! is the manifest's; otherwise it is regenerated.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
    },
    halo2_proofs::{
        halo2curves::{
            bn256::{Bn256, Fr, G1Affine},
            group::GroupEncoding,
        },
        plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey},
        poly::{
            commitment::{Params, ParamsProver},
            kzg::commitment::ParamsKZG,
        },
        SerdeFormat,
    },
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
use serde::{Deserialize, Serialize};

use crate::circuit::{CircuitInput, Shape, BLINDING_ROWS};

/// Bumped whenever the circuit's constraints change, so that cached keys are not reused.
pub const CIRCUIT_VERSION: u32 = 2;

/// The public seed of the development SRS.
const DEV_SEED: [u8; 32] = *b"keel/dev-srs/INSECURE/do-not-use";

/// Why parameters or keys could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The parameter file is for fewer rows than the circuit needs.
    #[error("{path} holds parameters for 2^{have} rows, the circuit needs 2^{need}; help: use a larger ceremony file")]
    ParamsTooSmall {
        /// The file.
        path: PathBuf,
        /// Its `k`.
        have: u32,
        /// The circuit's `k`.
        need: u32,
    },
    /// halo2 refused to generate keys.
    #[error("key generation failed: {0}")]
    Keygen(String),
    /// A verifier file does not decode.
    #[error("not a Keel verifier file: {0}")]
    BadVerifier(String),
}

/// Where KZG parameters come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Srs {
    /// Deterministic, publicly known toxic waste: for tests and devnets only.
    Dev,
    /// A parameter file in halo2's raw format (at least the circuit's `k`; larger is downsized).
    File(PathBuf),
}

/// The KZG parameters for `2^k` rows.
pub fn kzg_params(srs: &Srs, k: u32) -> Result<ParamsKZG<Bn256>, KeyError> {
    match srs {
        Srs::Dev => {
            tracing::warn!(target: "keel::prover", k, "using the INSECURE development SRS: anyone can forge proofs against it");
            Ok(ParamsKZG::setup(k, ChaCha20Rng::from_seed(DEV_SEED)))
        }
        Srs::File(path) => {
            let io = |source| KeyError::Io {
                path: path.clone(),
                source,
            };
            let mut r = io::BufReader::new(fs::File::open(path).map_err(io)?);
            let mut params =
                ParamsKZG::<Bn256>::read_custom(&mut r, SerdeFormat::RawBytes).map_err(io)?;
            if params.k() < k {
                return Err(KeyError::ParamsTooSmall {
                    path: path.clone(),
                    have: params.k(),
                    need: k,
                });
            }
            params.downsize(k);
            Ok(params)
        }
    }
}

/// The KZG parameters (an SRS) on BN254, as halo2-axiom holds them.
pub type KzgParams = ParamsKZG<Bn256>;

/// [`kzg_params`], keeping the development SRS in the directory `cache` so that it is computed
/// once per machine: setting it up at k = 16 takes over a minute on two cores, reading it back
/// well under a second. A cache file that does not check out (its checksum, its size) is
/// recomputed; a failure to write the cache only costs the next caller the setup. Parameter
/// files ([`Srs::File`]) are read as they are.
pub fn kzg_params_cached(srs: &Srs, k: u32, cache: &Path) -> Result<ParamsKZG<Bn256>, KeyError> {
    if *srs != Srs::Dev {
        return kzg_params(srs, k);
    }
    let path = cache.join(format!("dev-srs-k{k}.params"));
    if let Ok(bytes) = fs::read(&path) {
        if let Some(params) = read_summed(&bytes).filter(|p| p.k() == k) {
            tracing::warn!(target: "keel::prover", k, "using the INSECURE development SRS (cached): anyone can forge proofs against it");
            return Ok(params);
        }
        tracing::warn!(target: "keel::prover", path = %path.display(), "cached development SRS does not check out; recomputing");
    }
    let params = kzg_params(srs, k)?;
    let mut bytes = Vec::new();
    params
        .write_custom(&mut bytes, SerdeFormat::RawBytes)
        .expect("writing to a Vec cannot fail");
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    if let Err(e) = fs::create_dir_all(cache).and_then(|()| write_atomic(&path, &bytes)) {
        tracing::warn!(target: "keel::prover", path = %path.display(), error = %e, "could not cache the development SRS");
    }
    Ok(params)
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    let h = blake2b_simd::Params::new().hash_length(32).hash(bytes);
    h.as_bytes().try_into().expect("32 bytes")
}

/// Parameters followed by their checksum, as [`kzg_params_cached`] writes them.
fn read_summed(bytes: &[u8]) -> Option<ParamsKZG<Bn256>> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if checksum(body) != sum {
        return None;
    }
    ParamsKZG::<Bn256>::read_custom(&mut &body[..], SerdeFormat::RawBytes).ok()
}

/// A short digest identifying a parameter set (its first bases and `s·G2`).
pub fn srs_digest(params: &ParamsKZG<Bn256>) -> String {
    let mut h = blake2b_simd::Params::new().hash_length(16).to_state();
    for g in params.get_g().iter().take(4) {
        h.update(g.to_bytes().as_ref());
    }
    h.update(params.s_g2().to_bytes().as_ref());
    hex::encode(h.finalize().as_bytes())
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    version: u32,
    capacity: usize,
    depth: u8,
    k: u32,
    config: BaseCircuitParams,
    break_points: MultiPhaseThreadBreakPoints,
    srs: String,
    vk: String,
}

/// Where a key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Generated now (and cached, if a directory was given).
    Generated,
    /// Read from the cache.
    Cached,
}

/// The batch circuit's keys and its pinned layout.
#[derive(Clone, Debug)]
pub struct BatchKeys {
    /// The circuit shape.
    pub shape: Shape,
    /// halo2-base's configuration for the shape.
    pub config: BaseCircuitParams,
    /// Where halo2-base broke the layout into columns (the prover must reuse them).
    pub break_points: MultiPhaseThreadBreakPoints,
    /// The proving key (holds the verifying key).
    pub pk: ProvingKey<G1Affine>,
}

impl BatchKeys {
    /// Generates keys for `shape` with `params` (any commitment backend).
    pub fn generate<'p, P>(params: &P, shape: Shape) -> Result<Self, KeyError>
    where
        P: Params<'p, G1Affine> + Sync,
    {
        let mut b = shape.builder(CircuitBuilderStage::Keygen, &CircuitInput::blank(&shape));
        let config = b.calculate_params(Some(BLINDING_ROWS));
        let vk = keygen_vk(params, &b).map_err(|e| KeyError::Keygen(e.to_string()))?;
        let pk = keygen_pk(params, vk, &b).map_err(|e| KeyError::Keygen(e.to_string()))?;
        Ok(Self {
            shape,
            config,
            break_points: b.break_points(),
            pk,
        })
    }

    /// The verifying key.
    pub fn vk(&self) -> &VerifyingKey<G1Affine> {
        self.pk.get_vk()
    }

    /// Loads the cached keys for `shape` from `dir` if they match, or generates and caches them.
    pub fn load_or_generate<'p, P>(
        dir: &Path,
        srs: &ParamsKZG<Bn256>,
        params: &P,
        shape: Shape,
    ) -> Result<(Self, KeySource), KeyError>
    where
        P: Params<'p, G1Affine> + Sync,
    {
        let stem = format!("batch-N{}-D{}-k{}", shape.capacity, shape.depth, shape.k);
        let pk_path = dir.join(format!("{stem}.pk"));
        let manifest_path = dir.join(format!("{stem}.json"));
        match Self::load(&pk_path, &manifest_path, srs, shape) {
            Ok(Some(keys)) => return Ok((keys, KeySource::Cached)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "keel::prover", error = %e, "cached key unreadable; regenerating")
            }
        }
        let keys = Self::generate(params, shape)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let manifest = Manifest {
            version: CIRCUIT_VERSION,
            capacity: shape.capacity,
            depth: shape.depth,
            k: shape.k,
            config: keys.config.clone(),
            break_points: keys.break_points.clone(),
            srs: srs_digest(srs),
            vk: vk_digest(keys.vk()),
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
        // the key first, the manifest last: a manifest always names a complete key
        write_atomic(&pk_path, &keys.pk.to_bytes(SerdeFormat::RawBytes)).map_err(io(&pk_path))?;
        write_atomic(&manifest_path, &json).map_err(io(&manifest_path))?;
        Ok((keys, KeySource::Generated))
    }

    fn load(
        pk_path: &Path,
        manifest_path: &Path,
        srs: &ParamsKZG<Bn256>,
        shape: Shape,
    ) -> Result<Option<Self>, KeyError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io { path, source }
        };
        let Ok(json) = fs::read(manifest_path) else {
            return Ok(None);
        };
        let Ok(m) = serde_json::from_slice::<Manifest>(&json) else {
            tracing::warn!(target: "keel::prover", path = %manifest_path.display(), "unreadable key manifest; regenerating");
            return Ok(None);
        };
        let today = shape.statistics().params;
        let same_layout = serde_json::to_value(&m.config).ok() == serde_json::to_value(&today).ok();
        if m.version != CIRCUIT_VERSION
            || (m.capacity, m.depth, m.k) != (shape.capacity, shape.depth, shape.k)
            || !same_layout
            || m.srs != srs_digest(srs)
        {
            tracing::info!(target: "keel::prover", path = %manifest_path.display(), "cached key is for another circuit, layout or SRS; regenerating");
            return Ok(None);
        }
        let bytes = fs::read(pk_path).map_err(io(pk_path))?;
        let pk = ProvingKey::<G1Affine>::from_bytes::<BaseCircuitBuilder<Fr>>(
            &bytes,
            SerdeFormat::RawBytes,
            m.config.clone(),
        )
        .map_err(io(pk_path))?;
        if vk_digest(pk.get_vk()) != m.vk {
            tracing::warn!(target: "keel::prover", path = %pk_path.display(), "cached key does not match its manifest; regenerating");
            return Ok(None);
        }
        Ok(Some(Self {
            shape,
            config: m.config,
            break_points: m.break_points,
            pk,
        }))
    }
}

/// First bytes of a verifier file.
const VERIFIER_MAGIC: &[u8; 8] = b"keel-vf1";

impl BatchKeys {
    /// The verifier as bytes: what a node that only checks proofs (an L1) needs, without the
    /// proving key. `magic ‖ len ‖ layout (JSON) ‖ len ‖ KZG parameters ‖ verifying key`, the
    /// points in halo2's raw format. [`crate::BatchVerifier::from_bytes`] reads it back.
    pub fn verifier_bytes(&self, srs: &ParamsKZG<Bn256>) -> Vec<u8> {
        let config = serde_json::to_vec(&self.config).expect("the layout serialises");
        let mut params = Vec::new();
        srs.write_custom(&mut params, SerdeFormat::RawBytes)
            .expect("writing to a Vec cannot fail");
        let mut out = VERIFIER_MAGIC.to_vec();
        for part in [&config, &params] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.vk().to_bytes(SerdeFormat::RawBytes));
        out
    }
}

/// Reads what [`BatchKeys::verifier_bytes`] wrote.
pub(crate) fn read_verifier(
    bytes: &[u8],
) -> Result<(ParamsKZG<Bn256>, VerifyingKey<G1Affine>), KeyError> {
    let bad = |what: &str| KeyError::BadVerifier(what.to_string());
    let rest = bytes
        .strip_prefix(VERIFIER_MAGIC)
        .ok_or_else(|| bad("wrong magic"))?;
    let part = |rest: &mut &[u8]| -> Result<Vec<u8>, KeyError> {
        let (len, tail) = rest.split_at_checked(8).ok_or_else(|| bad("cut short"))?;
        let len = u64::from_be_bytes(len.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| bad("length overflows"))?;
        let (p, tail) = tail.split_at_checked(len).ok_or_else(|| bad("cut short"))?;
        *rest = tail;
        Ok(p.to_vec())
    };
    let mut rest = rest;
    let config: BaseCircuitParams = serde_json::from_slice(&part(&mut rest)?)
        .map_err(|e| KeyError::BadVerifier(format!("layout: {e}")))?;
    let params = part(&mut rest)?;
    let params = ParamsKZG::<Bn256>::read_custom(&mut params.as_slice(), SerdeFormat::RawBytes)
        .map_err(|e| KeyError::BadVerifier(format!("KZG parameters: {e}")))?;
    let vk = VerifyingKey::<G1Affine>::from_bytes::<BaseCircuitBuilder<Fr>>(
        rest,
        SerdeFormat::RawBytes,
        config,
    )
    .map_err(|e| KeyError::BadVerifier(format!("verifying key: {e}")))?;
    Ok((params, vk))
}

/// The verifying key's transcript digest, hex.
pub fn vk_digest(vk: &VerifyingKey<G1Affine>) -> String {
    hex::encode(vk.transcript_repr().to_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // one scratch name per process, so two processes filling the same cache never interleave
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(tmp, path)
}
