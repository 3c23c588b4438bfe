//! The proving pipeline: a batch witness in, a verified-format halo2 proof out, with progress
//! and the time each phase took.
//!
//! ```text
//!  BatchWitness ──witness──▶ circuit (custom gates; its layout computes the public inputs)
//!               ──prove────▶ create_proof::<MsmKzg, Shplonk>   commitments: Msm engine (GPU or CPU)
//!                                                               FFT + quotient: halo2-axiom
//!                                                               opening: SHPLONK
//!  BatchProof { public inputs, proof bytes } ──verify──▶ VerifierSHPLONK on ParamsKZG (standard)
//! ```

use std::time::{Duration, Instant};

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, G1Affine},
    plonk::{create_proof, verify_proof, VerifyingKey},
    poly::kzg::{
        commitment::{KZGCommitmentScheme, ParamsKZG},
        multiopen::VerifierSHPLONK,
        strategy::SingleStrategy,
    },
    transcript::{
        Blake2bRead, Blake2bWrite, Challenge255, TranscriptReadBuffer, TranscriptWriterBuffer,
    },
};
use keel_state::{BatchWitness, Fr};
use rand_core::OsRng;

use crate::{
    circuit::{BatchCircuit, CircuitError, CircuitInput, PublicInputs},
    keys::BatchKeys,
    kzg::{MsmKzg, MsmParams, Shplonk},
};

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
    Prove(String),
    /// The proof does not verify.
    #[error("the proof does not verify: {0}")]
    Invalid(String),
}

/// A batch proof and the public inputs it proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchProof {
    /// The public inputs.
    pub public: PublicInputs,
    /// halo2 proof bytes (Blake2b transcript, SHPLONK).
    pub proof: Vec<u8>,
}

/// Where a proof is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Laying out the circuit from the witness.
    Witness,
    /// halo2 is proving (commitments, FFTs, quotient, opening).
    Proving,
    /// Finished.
    Done,
}

/// Time per phase of one proof.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Reading the witness and laying out the circuit.
    pub witness: Duration,
    /// Every `commit`/`commit_lagrange` (advice, lookups, permutation, quotient pieces).
    pub commitments: Duration,
    /// FFTs, quotient evaluation and transcript work: `create_proof` minus the other two.
    pub fft_quotient: Duration,
    /// The SHPLONK multi-opening.
    pub opening: Duration,
    /// Wall clock of the whole proof.
    pub total: Duration,
    /// Commitments made.
    pub commits: u64,
    /// Commitments the engine failed and the CPU made.
    pub fallbacks: u64,
}

const NAMES: [&str; PublicInputs::LEN] = [
    "prev_root",
    "new_root",
    "batch_number",
    "data_commitment",
    "queue_before",
    "queue_after",
];

/// Proves batches for one circuit shape with one commitment backend.
#[derive(Debug)]
pub struct BatchProver {
    params: MsmParams,
    keys: BatchKeys,
}

impl BatchProver {
    /// A prover over `params` (whose engine makes the commitments) with `keys`.
    pub fn new(params: MsmParams, keys: BatchKeys) -> Self {
        Self { params, keys }
    }

    /// The keys.
    pub fn keys(&self) -> &BatchKeys {
        &self.keys
    }

    /// The commitment parameters.
    pub fn params(&self) -> &MsmParams {
        &self.params
    }

    /// What makes the commitments.
    pub fn backend(&self) -> String {
        self.params.engine()
    }

    /// Proves the batch of `witness`, reporting progress.
    pub fn prove(
        &self,
        witness: &BatchWitness,
        mut progress: impl FnMut(Progress),
    ) -> Result<(BatchProof, Timings), ProveError> {
        let start = Instant::now();
        progress(Progress::Witness);
        let shape = &self.keys.shape;
        let input = CircuitInput::from_witness(shape, witness)?;
        let public = input.public;
        let circuit = BatchCircuit::new(*shape, input)?;
        let instances = public.to_vec();
        for ((computed, claimed), which) in
            circuit.computed_public().iter().zip(&instances).zip(NAMES)
        {
            if computed != claimed {
                return Err(ProveError::HeaderMismatch { which });
            }
        }
        let witness_time = start.elapsed();

        progress(Progress::Proving);
        let before = self.params.stats().report();
        let proving = Instant::now();
        let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        create_proof::<MsmKzg, Shplonk<'_>, _, _, _, _>(
            &self.params,
            &self.keys.pk,
            &[circuit],
            &[&[&instances]],
            OsRng,
            &mut transcript,
        )
        .map_err(|e| ProveError::Prove(e.to_string()))?;
        let proof = transcript.finalize();
        let proving_time = proving.elapsed();
        let after = self.params.stats().report();
        progress(Progress::Done);

        let commitments = Duration::from_nanos(after.commit_ns - before.commit_ns);
        let opening = Duration::from_nanos(after.opening_ns - before.opening_ns);
        let timings = Timings {
            witness: witness_time,
            commitments,
            opening,
            fft_quotient: proving_time.saturating_sub(commitments + opening),
            total: start.elapsed(),
            commits: after.commits - before.commits,
            fallbacks: after.fallbacks - before.fallbacks,
        };
        tracing::info!(target: "keel::prover", batch = public.batch_number, backend = %self.backend(), total_ms = timings.total.as_millis() as u64, "batch proven");
        Ok((BatchProof { public, proof }, timings))
    }

    /// A verifier for this prover's proofs.
    pub fn verifier(&self) -> BatchVerifier {
        BatchVerifier {
            params: self.params.inner().clone(),
            vk: self.keys.vk().clone(),
        }
    }
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

    /// A verifier from the bytes [`crate::BatchKeys::verifier_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::KeyError> {
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
    pub fn check_keys(&self, keys: &BatchKeys) -> Result<(), crate::KeyError> {
        let (verifier, keys) = (self.vk_digest(), crate::keys::vk_digest(keys.vk()));
        if verifier != keys {
            return Err(crate::KeyError::VerifierMismatch { verifier, keys });
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
        .map_err(|e| ProveError::Invalid(e.to_string()))
    }
}
