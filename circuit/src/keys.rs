//! KZG parameters and the batch circuit's proving and verifying keys, cached on disk.
//!
//! Parameters come from a file (a production ceremony's output, halo2's raw format) or, for
//! development, from [`Srs::Dev`]: generated from a fixed public seed, so **anyone can forge
//! proofs against it**. It exists so tests and the devnet run anywhere; every use logs a warning.
//!
//! Keys are cached as `batch-N{capacity}-D{depth}-k{k}.pk` with a JSON manifest beside it. A
//! cached key is used only if the manifest names the same circuit version, shape and SRS, the
//! same *wiring digest* as the circuit computes today (its gates, lookup table, fixed values,
//! selectors and copy constraints: [`BatchCircuit::wiring_digest`], so a change that forgets to
//! bump the version is still caught), and the key's verifying-key digest is the manifest's;
//! otherwise it is regenerated.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use halo2_base::halo2_proofs::{
    halo2curves::{
        bn256::{Bn256, G1Affine},
        group::GroupEncoding,
    },
    plonk::{keygen_pk, keygen_vk_custom, ProvingKey, VerifyingKey},
    poly::{
        commitment::{Params, ParamsProver},
        kzg::commitment::ParamsKZG,
    },
    SerdeFormat,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
use serde::{Deserialize, Serialize};

use crate::circuit::{BatchCircuit, CircuitError, Shape};

/// Bumped whenever the circuit's constraints change. Version 3 is the custom-gate circuit
/// (Poseidon chip, Merkle gadget, Schnorr on incomplete additions, lookups); versions 1 and 2
/// were halo2-base layouts. The key cache also compares the circuit's wiring digest, so a
/// forgotten bump cannot make it reuse keys of another wiring.
pub const CIRCUIT_VERSION: u32 = 3;

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
    Keygen(#[source] halo2_proofs::plonk::Error),
    /// A cached key does not match its manifest or the SRS.
    #[error("{}: the key does not match its manifest or SRS", .0.display())]
    Mismatch(PathBuf),
    /// The shape does not fit its `k`.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// A verifier file does not decode.
    #[error("not a Keel verifier file: {0}")]
    BadVerifier(String),
    /// A verifier file of another circuit version.
    #[error("the verifier file is for circuit version {found}, this build proves and verifies version {expected}; help: regenerate it with `keel prover keygen` and start a chain with it")]
    VerifierVersion {
        /// The file's version.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// A verifier file made from other keys.
    #[error("the verifier file pins verifying key {verifier}, these keys' is {keys}; help: prove with the keys the verifier file was made from (`keel prover keygen` writes both), or start the chain with this verifier")]
    VerifierMismatch {
        /// The verifier file's verifying-key digest.
        verifier: String,
        /// The keys'.
        keys: String,
    },
    /// A key file that is not this build's circuit.
    #[error("{path}: the key is for circuit version {found} ({shape}); this build's circuit is version {expected}; help: delete it, or run `keel prover keygen`, to make keys for this circuit")]
    KeyVersion {
        /// The key file.
        path: PathBuf,
        /// The version its manifest names.
        found: u32,
        /// This build's.
        expected: u32,
        /// The shape it names.
        shape: String,
    },
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
    #[serde(default)]
    wiring: String,
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

/// The batch circuit's keys.
#[derive(Clone, Debug)]
pub struct BatchKeys {
    /// The circuit shape.
    pub shape: Shape,
    /// The proving key (holds the verifying key).
    pub pk: ProvingKey<G1Affine>,
}

impl BatchKeys {
    /// Generates keys for `shape` with `params` (any commitment backend).
    pub fn generate<'p, P>(params: &P, shape: Shape) -> Result<Self, KeyError>
    where
        P: Params<'p, G1Affine> + Sync,
    {
        let circuit = BatchCircuit::blank(shape)?;
        let vk = keygen_vk_custom(params, &circuit, true).map_err(KeyError::Keygen)?;
        let pk = keygen_pk(params, vk, &circuit).map_err(KeyError::Keygen)?;
        Ok(Self { shape, pk })
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
        let wiring = BatchCircuit::wiring_digest(shape)?;
        match Self::load(&pk_path, &manifest_path, srs, shape, &wiring) {
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
            wiring,
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
        wiring: &str,
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
        if m.version != CIRCUIT_VERSION {
            tracing::info!(target: "keel::prover", path = %manifest_path.display(), found = m.version, expected = CIRCUIT_VERSION, "cached key is for another circuit version; regenerating");
            return Ok(None);
        }
        if (m.capacity, m.depth, m.k) != (shape.capacity, shape.depth, shape.k)
            || m.srs != srs_digest(srs)
        {
            tracing::info!(target: "keel::prover", path = %manifest_path.display(), "cached key is for another shape or SRS; regenerating");
            return Ok(None);
        }
        if m.wiring != wiring {
            tracing::warn!(target: "keel::prover", path = %manifest_path.display(), "cached key is for another wiring of this circuit version; regenerating");
            return Ok(None);
        }
        let bytes = fs::read(pk_path).map_err(io(pk_path))?;
        let pk =
            ProvingKey::<G1Affine>::from_bytes::<BatchCircuit>(&bytes, SerdeFormat::RawBytes, ())
                .map_err(io(pk_path))?;
        if vk_digest(pk.get_vk()) != m.vk {
            tracing::warn!(target: "keel::prover", path = %pk_path.display(), "cached key does not match its manifest; regenerating");
            return Ok(None);
        }
        Ok(Some(Self { shape, pk }))
    }

    /// Reads the keys cached in `dir` for `shape`, refusing (rather than regenerating) keys of
    /// another circuit version or wiring: for an operator who pinned a key file.
    pub fn load_pinned(dir: &Path, srs: &ParamsKZG<Bn256>, shape: Shape) -> Result<Self, KeyError> {
        let stem = format!("batch-N{}-D{}-k{}", shape.capacity, shape.depth, shape.k);
        let pk_path = dir.join(format!("{stem}.pk"));
        let manifest_path = dir.join(format!("{stem}.json"));
        let json = fs::read(&manifest_path).map_err(|source| KeyError::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let m: Manifest = serde_json::from_slice(&json)
            .map_err(|e| KeyError::BadVerifier(format!("{}: {e}", manifest_path.display())))?;
        let wiring = BatchCircuit::wiring_digest(shape)?;
        if m.version != CIRCUIT_VERSION || m.wiring != wiring {
            return Err(KeyError::KeyVersion {
                path: pk_path,
                found: m.version,
                expected: CIRCUIT_VERSION,
                shape: format!("N{} D{} k{}", m.capacity, m.depth, m.k),
            });
        }
        Self::load(&pk_path, &manifest_path, srs, shape, &wiring)?
            .ok_or_else(|| KeyError::Mismatch(pk_path.clone()))
    }
}

/// First bytes of a verifier file: `keel-vf` and the file format, which follows the circuit
/// version (format 1 held a halo2-base layout; 2 is the custom-gate circuit, version 3).
const VERIFIER_MAGIC: &[u8; 8] = b"keel-vf2";
const VERIFIER_PREFIX: &[u8; 7] = b"keel-vf";

/// What a verifier file says about its circuit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierHeader {
    /// The circuit version ([`CIRCUIT_VERSION`]).
    pub version: u32,
    /// The shape.
    pub shape: Shape,
    /// The wiring digest ([`BatchCircuit::wiring_digest`]).
    pub wiring: String,
}

impl BatchKeys {
    /// The verifier as bytes: what a node that only checks proofs (an L1) needs, without the
    /// proving key. `magic ‖ len ‖ header (JSON) ‖ len ‖ KZG parameters ‖ verifying key`, the
    /// points in halo2's raw format. [`crate::BatchVerifier::from_bytes`] reads it back.
    pub fn verifier_bytes(&self, srs: &ParamsKZG<Bn256>) -> Vec<u8> {
        let header = VerifierHeader {
            version: CIRCUIT_VERSION,
            shape: self.shape,
            wiring: BatchCircuit::wiring_digest(self.shape)
                .expect("keys exist only for shapes that fit"),
        };
        let config = serde_json::to_vec(&header).expect("the header serialises");
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
) -> Result<(VerifierHeader, ParamsKZG<Bn256>, VerifyingKey<G1Affine>), KeyError> {
    let bad = |what: &str| KeyError::BadVerifier(what.to_string());
    let rest = match bytes.strip_prefix(VERIFIER_MAGIC) {
        Some(rest) => rest,
        None => {
            // an older format: say which circuit it is for
            return Err(match bytes.strip_prefix(VERIFIER_PREFIX) {
                Some([b'1', ..]) => KeyError::VerifierVersion {
                    found: 2,
                    expected: CIRCUIT_VERSION,
                },
                _ => bad("wrong magic"),
            });
        }
    };
    let part = |rest: &mut &[u8]| -> Result<Vec<u8>, KeyError> {
        let (len, tail) = rest.split_at_checked(8).ok_or_else(|| bad("cut short"))?;
        let len = u64::from_be_bytes(len.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| bad("length overflows"))?;
        let (p, tail) = tail.split_at_checked(len).ok_or_else(|| bad("cut short"))?;
        *rest = tail;
        Ok(p.to_vec())
    };
    let mut rest = rest;
    let header: VerifierHeader = serde_json::from_slice(&part(&mut rest)?)
        .map_err(|e| KeyError::BadVerifier(format!("header: {e}")))?;
    if header.version != CIRCUIT_VERSION {
        return Err(KeyError::VerifierVersion {
            found: header.version,
            expected: CIRCUIT_VERSION,
        });
    }
    let params = part(&mut rest)?;
    let params = ParamsKZG::<Bn256>::read_custom(&mut params.as_slice(), SerdeFormat::RawBytes)
        .map_err(|e| KeyError::BadVerifier(format!("KZG parameters: {e}")))?;
    let vk = VerifyingKey::<G1Affine>::from_bytes::<BatchCircuit>(rest, SerdeFormat::RawBytes, ())
        .map_err(|e| KeyError::BadVerifier(format!("verifying key: {e}")))?;
    Ok((header, params, vk))
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
