//! What a chain or any verifier needs of a batch proof: the proof and its public inputs, and
//! [`BatchVerifier`], halo2-axiom's standard SHPLONK verifier over a pinned verifying key.
//!
//! ```text
//!  BatchProof { public inputs, proof bytes } ──verify──▶ VerifierSHPLONK on ParamsKZG (standard)
//! ```
//!
//! The Fiat–Shamir transcript is a deployment's choice ([`Transcript`]): Blake2b (halo2's own,
//! the default) or Keccak in the encoding of snark-verifier's `EvmTranscript`, which the EVM
//! verifier that snark-verifier generates reads (challenges are Keccak-256 of the 32-byte
//! big-endian words absorbed, as the EVM computes them cheaply).

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, G1Affine},
    plonk::{verify_proof, VerifyingKey},
    poly::kzg::{
        commitment::{KZGCommitmentScheme, ParamsKZG},
        multiopen::VerifierSHPLONK,
        strategy::SingleStrategy,
    },
    transcript::{Blake2bRead, Challenge255, TranscriptReadBuffer},
};
use keel_state::{BatchWitness, Fr};
use snark_verifier::{loader::native::NativeLoader, system::halo2::transcript::evm::EvmTranscript};

use crate::circuit::{BatchCircuit, CircuitError, CircuitInput, PublicInputs, Shape};

/// Why a proof could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The witness does not fit the circuit.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The circuit computes another public input than the batch header claims.
    #[error("the batch header's {which} differs from what its operations give")]
    HeaderMismatch {
        /// Which public input.
        which: &'static str,
    },
    /// halo2 failed to prove.
    #[error("proving failed: {0}")]
    Prove(#[source] halo2_proofs::plonk::Error),
    /// The proof does not verify.
    #[error("the proof does not verify: {0}")]
    Invalid(#[source] halo2_proofs::plonk::Error),
    /// The backend the prover was required to use failed (the proof is not used).
    #[error("the required proving backend failed: {0}")]
    Backend(String),
    /// Keel's prover refused the witness or its inputs (a lookup value outside its table, the
    /// wrong instance columns, parameters of another size).
    #[error("proving failed: {0}")]
    Refused(String),
    /// A proof needs more device memory than the prover may use, even with the key's columns
    /// sent with each coset part rather than kept on the device.
    #[error(
        "a proof needs {needed} bytes of device memory (with the key's columns sent, not kept); \
         the budget is {budget} bytes. Help: raise --prover.gpu-memory, or prove on the CPU \
         (--prover.gpu off)"
    )]
    DeviceMemory {
        /// Bytes a proof needs at least.
        needed: u64,
        /// The budget.
        budget: u64,
    },
}

const NAMES: [&str; PublicInputs::LEN] = [
    "prev_root",
    "new_root",
    "batch_number",
    "data_commitment",
    "queue_before",
    "queue_after",
];

/// The circuit of `witness` in `shape`, and its public inputs, refused before any proving work
/// when the witness does not fit or when the circuit computes other public inputs than the
/// batch header claims.
pub fn synthesize(
    shape: Shape,
    witness: &BatchWitness,
) -> Result<(BatchCircuit, PublicInputs), ProveError> {
    let input = CircuitInput::from_witness(&shape, witness)?;
    let public = input.public;
    let circuit = BatchCircuit::new(shape, input)?;
    for ((computed, claimed), which) in circuit
        .computed_public()
        .iter()
        .zip(&public.to_vec())
        .zip(NAMES)
    {
        if computed != claimed {
            return Err(ProveError::HeaderMismatch { which });
        }
    }
    Ok((circuit, public))
}

/// The Fiat–Shamir transcript of a deployment's batch proofs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Transcript {
    /// halo2's Blake2b transcript.
    #[default]
    Blake2b,
    /// Keccak-256 as snark-verifier's `EvmTranscript` encodes it: what an EVM verifier reads.
    Keccak,
}

/// The Keccak transcript's reader over proof bytes.
pub type KeccakRead<'a> = EvmTranscript<G1Affine, NativeLoader, &'a [u8], Vec<u8>>;
/// The Keccak transcript's writer.
pub type KeccakWrite = EvmTranscript<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>;

/// A batch proof and the public inputs it proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchProof {
    /// The public inputs.
    pub public: PublicInputs,
    /// halo2 proof bytes (SHPLONK, in the deployment's [`Transcript`]).
    pub proof: Vec<u8>,
}

/// Checks batch proofs with halo2-axiom's standard SHPLONK verifier.
#[derive(Debug, Clone)]
pub struct BatchVerifier {
    params: ParamsKZG<Bn256>,
    vk: VerifyingKey<G1Affine>,
    transcript: Transcript,
}

impl BatchVerifier {
    /// A verifier for `vk` under `params`.
    pub fn new(params: ParamsKZG<Bn256>, vk: VerifyingKey<G1Affine>) -> Self {
        Self {
            params,
            vk,
            transcript: Transcript::default(),
        }
    }

    /// This verifier reading proofs in `transcript`.
    pub fn with_transcript(mut self, transcript: Transcript) -> Self {
        self.transcript = transcript;
        self
    }

    /// The transcript it reads.
    pub fn transcript(&self) -> Transcript {
        self.transcript
    }

    /// The KZG parameters (what an EVM verifier is generated from, with the key).
    pub fn params(&self) -> &ParamsKZG<Bn256> {
        &self.params
    }

    /// The verifying key.
    pub fn vk(&self) -> &VerifyingKey<G1Affine> {
        &self.vk
    }

    /// A verifier from the bytes [`crate::keys::BatchKeys::verifier_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::keys::KeyError> {
        let (_, params, vk) = crate::keys::read_verifier(bytes)?;
        Ok(Self::new(params, vk))
    }

    /// The verifying key's transcript digest ([`crate::keys::vk_digest`]): what a chain pins at
    /// genesis.
    pub fn vk_digest(&self) -> String {
        crate::keys::vk_digest(&self.vk)
    }

    /// Refuses `keys` whose verifying key is not this verifier's: proofs made with them would
    /// never verify here.
    pub fn check_keys(&self, keys: &crate::keys::BatchKeys) -> Result<(), crate::keys::KeyError> {
        let (verifier, keys) = (self.vk_digest(), crate::keys::vk_digest(keys.vk()));
        if verifier != keys {
            return Err(crate::keys::KeyError::VerifierMismatch { verifier, keys });
        }
        Ok(())
    }

    /// Whether `proof` proves its public inputs.
    pub fn verify(&self, proof: &BatchProof) -> Result<(), ProveError> {
        let instances: Vec<Fr> = proof.public.to_vec();
        let strategy = SingleStrategy::new(&self.params);
        let instances: &[&[&[Fr]]] = &[&[&instances]];
        match self.transcript {
            Transcript::Blake2b => {
                verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
                    &self.params,
                    &self.vk,
                    strategy,
                    instances,
                    &mut Blake2bRead::<_, G1Affine, Challenge255<_>>::init(proof.proof.as_slice()),
                )
            }
            Transcript::Keccak => {
                verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
                    &self.params,
                    &self.vk,
                    strategy,
                    instances,
                    &mut KeccakRead::init(proof.proof.as_slice()),
                )
            }
        }
        .map_err(ProveError::Invalid)
    }
}
