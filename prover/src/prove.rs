//! The proving pipeline: a batch witness in, a verified-format halo2 proof out, with progress
//! and the time each phase took.
//!
//! ```text
//!  BatchWitness ──witness──▶ circuit (custom gates; its layout computes the public inputs)
//!               ──prove────▶ Keel's prover (plonk::create_proof) on the parameters' backend:
//!                              NTTs and MSMs on the GPU engines or the CPU's
//!                            or halo2-axiom's create_proof::<MsmKzg, Shplonk> (the peer)
//!  BatchProof { public inputs, proof bytes } ──verify──▶ BatchVerifier (keel-circuit)
//! ```

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Fr, G1Affine},
    plonk::create_proof,
    transcript::{Blake2bWrite, Challenge255, EncodedChallenge, TranscriptWriterBuffer},
};
use keel_state::BatchWitness;
use rand_core::OsRng;

use keel_circuit::proof::KeccakWrite;
pub use keel_circuit::proof::{BatchProof, BatchVerifier, ProveError, Transcript};

use crate::{
    keys::BatchKeys,
    kzg::{MsmKzg, MsmParams, Shplonk},
    plonk::{self, Backend, DeviceMemory, Engines, Prepared, Stages},
};

/// Which prover makes the proofs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// Keel's own ([`plonk::create_proof`]): every transform and MSM on the parameters'
    /// backend.
    #[default]
    Keel,
    /// halo2-axiom's `create_proof`, with only the commitments on the parameters' engine: the
    /// peer of benchmarks and the reference of tests.
    Halo2,
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
    /// Keel's prover: the time of each stage and the backend's counters.
    pub stages: Option<Stages>,
}

impl Timings {
    /// The time the device had work in flight during the proof (`None`: no device, or
    /// halo2-axiom's prover).
    pub fn gpu_busy(&self) -> Option<Duration> {
        self.stages.and_then(|s| s.backend.busy)
    }
}

/// Proves batches for one circuit shape with one commitment backend.
#[derive(Debug)]
pub struct BatchProver {
    params: MsmParams,
    keys: BatchKeys,
    transcript: Transcript,
    engine: Engine,
    backend: Engines,
    /// The key's coset values, made by the first proof (or [`BatchProver::prepare`]).
    prepared: OnceLock<Arc<Prepared>>,
    /// The most device memory a proof may use (`None`: no limit but the device's own).
    budget: Option<u64>,
}

impl BatchProver {
    /// A prover over `params` (whose engines run the transforms and MSMs) with `keys`.
    pub fn new(params: MsmParams, keys: BatchKeys) -> Self {
        let backend = params.backend();
        Self {
            params,
            keys,
            transcript: Transcript::default(),
            engine: Engine::default(),
            backend,
            prepared: OnceLock::new(),
            budget: None,
        }
    }

    /// This prover proving with `engine`.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// The prover that makes the proofs.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// This prover keeping its proofs within `bytes` of device memory: the key's columns are
    /// kept on the device only if a proof then fits, and a proof that does not fit even with
    /// them sent is refused before any work ([`ProveError::DeviceMemory`]).
    pub fn with_device_budget(mut self, bytes: Option<u64>) -> Self {
        self.budget = bytes;
        self
    }

    /// The device memory a proof needs, as this prover keeps the key (`None`: no device, or
    /// halo2-axiom's prover); a typed error if it exceeds the budget however the key is kept.
    pub fn device_memory(&self) -> Result<Option<DeviceMemory>, ProveError> {
        if self.engine != Engine::Keel {
            return Ok(None);
        }
        let keep = self.keep_key()?;
        Ok(plonk::device_memory(&self.backend, &self.keys.pk, keep))
    }

    /// Whether the key's columns are kept on the device: unless that breaks the budget.
    fn keep_key(&self) -> Result<bool, ProveError> {
        let pk = &self.keys.pk;
        let (Some(budget), Some(kept)) =
            (self.budget, plonk::device_memory(&self.backend, pk, true))
        else {
            return Ok(true);
        };
        if kept.total() <= budget {
            return Ok(true);
        }
        let sent = plonk::device_memory(&self.backend, pk, false).unwrap_or_default();
        if sent.total() <= budget {
            tracing::warn!(
                target: "keel::prover",
                budget,
                kept = kept.total(),
                sent = sent.total(),
                "the key's columns do not fit the device memory budget: each proof sends them"
            );
            return Ok(false);
        }
        Err(ProveError::DeviceMemory {
            needed: sent.total(),
            budget,
        })
    }

    /// Makes the key's coset values now (the first proof does otherwise): bytes held.
    pub fn prepare(&self) -> Result<usize, ProveError> {
        Ok(self.prepared()?.bytes)
    }

    fn prepared(&self) -> Result<Arc<Prepared>, ProveError> {
        if let Some(p) = self.prepared.get() {
            return Ok(p.clone());
        }
        let keep = self.keep_key()?;
        let p = Arc::new(
            Prepared::with_residency(&self.backend, &self.keys.pk, keep)
                .map_err(|e| ProveError::Backend(e.to_string()))?,
        );
        Ok(self.prepared.get_or_init(|| p).clone())
    }

    /// This prover writing its proofs in `transcript` (Keccak for an EVM verifier).
    pub fn with_transcript(mut self, transcript: Transcript) -> Self {
        self.transcript = transcript;
        self
    }

    /// The keys.
    pub fn keys(&self) -> &BatchKeys {
        &self.keys
    }

    /// The commitment parameters.
    pub fn params(&self) -> &MsmParams {
        &self.params
    }

    /// Whether the prover's work runs on a device (whose busy time the proofs report).
    pub fn on_device(&self) -> bool {
        self.engine == Engine::Keel && self.backend.device().is_some()
    }

    /// Where each kind of Keel's prover's work runs (`None` for halo2-axiom's prover).
    pub fn placement(&self) -> Option<plonk::Placement> {
        (self.engine == Engine::Keel).then(|| self.backend.placement())
    }

    /// What runs the prover's transforms and MSMs.
    pub fn backend(&self) -> String {
        match self.engine {
            Engine::Keel => self.backend.describe(),
            Engine::Halo2 => format!("halo2-axiom; commitments: {}", self.params.engine()),
        }
    }

    /// Proves the batch of `witness`, reporting progress: [`BatchProver::lay_out`], then
    /// [`BatchProver::prove_laid_out`].
    pub fn prove(
        &self,
        witness: &BatchWitness,
        mut progress: impl FnMut(Progress),
    ) -> Result<(BatchProof, Timings), ProveError> {
        progress(Progress::Witness);
        let laid_out = self.lay_out(witness)?;
        self.prove_laid_out(laid_out, progress)
    }

    /// Lays out the batch of `witness` for its proof: the circuit from the witness and, for
    /// Keel's prover, the circuit's synthesis. All of it on the CPU and apart from the proof,
    /// so a pipeline lays out the next batch while a proof runs.
    pub fn lay_out(&self, witness: &BatchWitness) -> Result<LaidOut, ProveError> {
        let start = Instant::now();
        let (circuit, public) = keel_circuit::proof::synthesize(self.keys.shape, witness)?;
        let layout = start.elapsed();
        let work = match self.engine {
            Engine::Keel => Work::Keel(Box::new(
                plonk::synthesize(&self.keys.pk, &circuit, &[&public.to_vec()])
                    .map_err(keel_error)?,
            )),
            Engine::Halo2 => Work::Halo2(Box::new(circuit)),
        };
        Ok(LaidOut {
            public,
            work,
            layout,
        })
    }

    /// Proves a batch [`BatchProver::lay_out`] laid out, reporting progress.
    pub fn prove_laid_out(
        &self,
        laid_out: LaidOut,
        mut progress: impl FnMut(Progress),
    ) -> Result<(BatchProof, Timings), ProveError> {
        let LaidOut {
            public,
            work,
            layout,
        } = laid_out;
        progress(Progress::Proving);
        let (proof, timings) = match work {
            Work::Keel(synthesized) => self.prove_keel(*synthesized, layout)?,
            Work::Halo2(circuit) => self.prove_halo2(*circuit, &public.to_vec(), layout)?,
        };
        progress(Progress::Done);
        tracing::info!(target: "keel::prover", batch = public.batch_number, backend = %self.backend(), total_ms = timings.total.as_millis() as u64, "batch proven");
        Ok((BatchProof { public, proof }, timings))
    }

    /// Keel's proof of a synthesised witness whose circuit took `layout` to build.
    fn prove_keel(
        &self,
        synthesized: plonk::Synthesized,
        layout: Duration,
    ) -> Result<(Vec<u8>, Timings), ProveError> {
        let start = Instant::now();
        let prepared = self.prepared()?;
        let synthesis = synthesized.time;
        let mut rng = OsRng;
        let (proof, stages) = match self.transcript {
            Transcript::Blake2b => self.keel(
                &prepared,
                synthesized,
                &mut rng,
                Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]),
            )?,
            Transcript::Keccak => {
                self.keel(&prepared, synthesized, &mut rng, KeccakWrite::init(vec![]))?
            }
        };
        let timings = Timings {
            witness: layout + stages.witness,
            commitments: stages.backend.msm,
            opening: stages.opening,
            fft_quotient: stages.total.saturating_sub(stages.witness + stages.opening),
            total: layout + synthesis + start.elapsed(),
            commits: stages.backend.msms,
            fallbacks: stages.backend.fallbacks,
            stages: Some(stages),
        };
        Ok((proof, timings))
    }

    /// halo2-axiom's proof of `circuit` with public `instances`, whose circuit took `layout` to
    /// build.
    fn prove_halo2(
        &self,
        circuit: keel_circuit::BatchCircuit,
        instances: &[Fr],
        layout: Duration,
    ) -> Result<(Vec<u8>, Timings), ProveError> {
        let start = Instant::now();
        let before = self.params.stats().report();
        let instances: &[&[&[Fr]]] = &[&[instances]];
        let proof = match self.transcript {
            Transcript::Blake2b => self.create(
                circuit,
                instances,
                Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]),
            )?,
            Transcript::Keccak => self.create(circuit, instances, KeccakWrite::init(vec![]))?,
        };
        let proving_time = start.elapsed();
        let after = self.params.stats().report();
        let failed = after.fallbacks - before.fallbacks;
        if failed > 0 && self.params.is_required() {
            return Err(ProveError::Backend(format!(
                "{} failed {failed} commitments, which the CPU made (`require` refuses such a proof)",
                self.backend()
            )));
        }
        let commitments = Duration::from_nanos(after.commit_ns - before.commit_ns);
        let opening = Duration::from_nanos(after.opening_ns - before.opening_ns);
        let timings = Timings {
            witness: layout,
            commitments,
            opening,
            fft_quotient: proving_time.saturating_sub(commitments + opening),
            total: layout + start.elapsed(),
            commits: after.commits - before.commits,
            fallbacks: failed,
            stages: None,
        };
        Ok((proof, timings))
    }

    /// Proves the batches of `witnesses` in order as a prover service does: each batch is laid
    /// out on this thread while the previous one is proven on a proving thread. Reports the
    /// wall time and how busy the device was over it.
    pub fn prove_pipelined(&self, witnesses: &[BatchWitness]) -> Result<Pipelined, ProveError> {
        let start = Instant::now();
        let before = self.backend.stats();
        let mut proofs = Vec::with_capacity(witnesses.len());
        let mut timings = Vec::with_capacity(witnesses.len());
        std::thread::scope(|scope| {
            let mut pending: Option<std::thread::ScopedJoinHandle<'_, _>> = None;
            let mut take = |pending: Option<std::thread::ScopedJoinHandle<'_, _>>| {
                if let Some(p) = pending {
                    let (proof, t) = p.join().unwrap_or_else(|_| {
                        Err(ProveError::Backend(
                            "the proving thread panicked".to_owned(),
                        ))
                    })?;
                    proofs.push(proof);
                    timings.push(t);
                }
                Ok::<_, ProveError>(())
            };
            for witness in witnesses {
                let laid_out = self.lay_out(witness)?;
                take(pending.take())?;
                pending = Some(scope.spawn(move || self.prove_laid_out(laid_out, |_| {})));
            }
            take(pending.take())
        })?;
        let wall = start.elapsed();
        let busy = match self.engine {
            Engine::Keel => self.backend.stats().since(&before).busy,
            Engine::Halo2 => None,
        };
        Ok(Pipelined {
            proofs,
            timings,
            wall,
            busy,
        })
    }

    /// Keel's prover over this prover's backend and keys, writing `transcript`.
    fn keel<E, T>(
        &self,
        prepared: &Prepared,
        synthesized: plonk::Synthesized,
        rng: &mut OsRng,
        mut transcript: T,
    ) -> Result<(Vec<u8>, Stages), ProveError>
    where
        E: EncodedChallenge<G1Affine>,
        T: TranscriptWriterBuffer<Vec<u8>, G1Affine, E>,
    {
        let stages = plonk::prove_synthesized(
            &self.backend,
            &self.keys.pk,
            prepared,
            synthesized,
            rng,
            &mut transcript,
        )
        .map_err(keel_error)?;
        Ok((transcript.finalize(), stages))
    }

    /// halo2-axiom's `create_proof` over this prover's parameters and keys, writing `transcript`.
    fn create<E, T>(
        &self,
        circuit: keel_circuit::BatchCircuit,
        instances: &[&[&[Fr]]],
        mut transcript: T,
    ) -> Result<Vec<u8>, ProveError>
    where
        E: EncodedChallenge<G1Affine>,
        T: TranscriptWriterBuffer<Vec<u8>, G1Affine, E>,
    {
        create_proof::<MsmKzg, Shplonk<'_>, _, _, _, _>(
            &self.params,
            &self.keys.pk,
            &[circuit],
            instances,
            OsRng,
            &mut transcript,
        )
        .map_err(ProveError::Prove)?;
        Ok(transcript.finalize())
    }

    /// A verifier for this prover's proofs.
    pub fn verifier(&self) -> BatchVerifier {
        BatchVerifier::new(self.params.inner().clone(), self.keys.vk().clone())
            .with_transcript(self.transcript)
    }
}

/// Keel's prover's error as a [`ProveError`].
fn keel_error(e: plonk::PlonkError) -> ProveError {
    match e {
        plonk::PlonkError::Synthesis(e) => ProveError::Prove(e),
        plonk::PlonkError::Backend(e) => ProveError::Backend(e.to_string()),
        e => ProveError::Refused(e.to_string()),
    }
}

/// Batches proven in a pipeline ([`BatchProver::prove_pipelined`]).
#[derive(Debug)]
pub struct Pipelined {
    /// The proofs, in the batches' order.
    pub proofs: Vec<BatchProof>,
    /// Each proof's timings.
    pub timings: Vec<Timings>,
    /// Wall time of the whole pipeline.
    pub wall: Duration,
    /// The time the device had work in flight (`None`: no device).
    pub busy: Option<Duration>,
}

impl Pipelined {
    /// The device's busy time as a share of the wall time (`None`: no device).
    pub fn utilisation(&self) -> Option<f64> {
        let busy = self.busy?;
        Some((busy.as_secs_f64() / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)).min(1.0))
    }
}

/// A batch laid out for its proof ([`BatchProver::lay_out`]): its public inputs and its circuit,
/// synthesised already for Keel's prover. It owns what it holds, so it is laid out on one thread
/// and proven on another.
pub struct LaidOut {
    /// The batch's public inputs.
    pub public: keel_circuit::PublicInputs,
    work: Work,
    /// How long making the circuit from the witness took (the synthesis is in the proof's
    /// stages).
    pub layout: Duration,
}

impl std::fmt::Debug for LaidOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaidOut")
            .field("batch", &self.public.batch_number)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

enum Work {
    Keel(Box<plonk::Synthesized>),
    Halo2(Box<keel_circuit::BatchCircuit>),
}

/// Why [`sample_witness`] could not build its batch (a depth outside the tree's range).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// The state could not be opened at the shape's depth.
    #[error(transparent)]
    Open(#[from] keel_state::OpenError),
    /// A funding deposit was refused.
    #[error(transparent)]
    Stf(#[from] keel_state::StfError),
    /// The batch was refused.
    #[error(transparent)]
    Batch(#[from] keel_state::BatchError),
}

/// A full batch for `shape`: `capacity` signed transfers round robin among (at most) 16
/// accounts funded in the same state. What benchmarks and `keel bench` prove.
pub fn sample_witness(shape: &crate::Shape) -> Result<BatchWitness, SampleError> {
    use keel_state::{
        AccountIndex, BatchOp, Deposit, Epoch, MemStore, QueueEntry, SecretKey, SignedOp, State,
        Transfer,
    };
    let accounts = 16u32.min(1 << shape.depth.min(31));
    let keys: Vec<SecretKey> = (0..accounts)
        .map(|i| SecretKey::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let mut s = State::open(MemStore::new(), shape.depth)?;
    for (i, k) in keys.iter().enumerate() {
        let deposit = Deposit {
            to: AccountIndex(i as u32),
            pk: k.public_key(),
            amount: 1 << 40,
        };
        s.apply(&BatchOp::L1(QueueEntry::Deposit(deposit)))?;
    }
    let ops = (0..shape.capacity as u64)
        .map(|n| {
            let from = (n % u64::from(accounts)) as u32;
            let t = Transfer::sign(
                &keys[from as usize],
                AccountIndex(from),
                AccountIndex((from + 1) % accounts),
                7,
                n / u64::from(accounts),
            );
            BatchOp::L2(SignedOp::Transfer(t))
        })
        .collect();
    Ok(s.execute_batch(Epoch(1), ops)?)
}
