//! What a chain or any verifier needs of a batch proof: the proof and its public inputs, and
//! [`BatchVerifier`], halo2-axiom's standard SHPLONK verifier over a pinned verifying key.
//!
//! ```text
//!  BatchProof { public inputs, proof bytes } ──verify──▶ VerifierSHPLONK on ParamsKZG (standard)
//! ```

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

/// A batch proof and the public inputs it proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchProof {
    /// The public inputs.
    pub public: PublicInputs,
    /// halo2 proof bytes (Blake2b transcript, SHPLONK).
    pub proof: Vec<u8>,
}

/// Checks batch proofs with halo2-axiom's standard SHPLONK verifier.
#[derive(Debug, Clone)]
pub struct BatchVerifier {
    params: ParamsKZG<Bn256>,
    vk: VerifyingKey<G1Affine>,
}

impl BatchVerifier {
    /// A verifier for `vk` under `params`.
    pub fn new(params: ParamsKZG<Bn256>, vk: VerifyingKey<G1Affine>) -> Self {
        Self { params, vk }
    }

    /// A verifier from the bytes [`crate::keys::BatchKeys::verifier_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::keys::KeyError> {
        let (_, params, vk) = crate::keys::read_verifier(bytes)?;
        Ok(Self { params, vk })
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
        let mut transcript =
            Blake2bRead::<_, G1Affine, Challenge255<_>>::init(proof.proof.as_slice());
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            &self.params,
            &self.vk,
            SingleStrategy::new(&self.params),
            &[&[&instances]],
            &mut transcript,
        )
        .map_err(ProveError::Invalid)
    }
}
