//! Keel's own halo2 prover: halo2-axiom's keys, circuit API, transcript and verifier, with every
//! operation on polynomials and points behind a [`Backend`].
//!
//! ```text
//!  synthesis ─▶ advice (Lagrange) ─MSM─▶ transcript          phase by phase, challenges between
//!  θ ─▶ lookups: compress (θ), permute, commit A', S'
//!  β, γ ─▶ permutation products Z_i ─MSM─▶   lookup products Z ─MSM─▶   random r(X) ─MSM─▶
//!  y ─▶ quotient, one coset part at a time, degree − 1 parts (5 at degree 6, not halo2's 8):
//!        iNTT (advice, instance, Z's, A', S') ─▶ coset NTT ─▶ gates, permutation, lookups (Horner in y)
//!        fixed, σ, l_0, l_last, l_active: coset values prepared once per key ([`Prepared`])
//!      ─▶ ÷ (X^n − 1) ─▶ iNTT per part ─▶ h pieces (a Vandermonde solve in X^n) ─MSM─▶
//!  x ─▶ evaluations ─▶ SHPLONK (y', v, u; two MSMs)
//! ```
//!
//! The transcript is written in exactly the order halo2-axiom's `create_proof` writes it, so a
//! proof verifies with `verify_proof::<_, VerifierSHPLONK<_>, ..>` under the same verifying key,
//! and the transcript is generic (Blake2b, or Keccak for an EVM verifier).
//!
//! The prover does less work than halo2-axiom's, on any backend:
//! - the quotient h has degree below `(d − 1)·n`, so `d − 1` cosets of the domain determine it:
//!   it is evaluated on 5 parts at degree 6 where halo2-axiom evaluates the whole power-of-two
//!   extended domain (8 parts), and h's pieces come from the parts by a small Vandermonde solve
//!   (on part j, `X^n` is a constant) instead of an inverse transform of size 8n;
//! - the coset values of the fixed columns, the permutation's σ polynomials and the three
//!   Lagrange selectors depend only on the key, so they are transformed once per key instead of
//!   once per proof and part.

mod backend;
mod expr;
mod polys;
mod shplonk;
mod witness;

use std::{
    io,
    time::{Duration, Instant},
};

use halo2_proofs::{
    halo2curves::{
        bn256::{Fr, G1Affine, G1},
        ff::{Field, PrimeField},
    },
    plonk::{Any, Circuit, ConstraintSystem, Error, FloorPlanner, ProvingKey},
    poly::{EvaluationDomain, Rotation},
    transcript::{EncodedChallenge, TranscriptWrite},
};
use rand_core::RngCore;
use rayon::prelude::*;

pub use backend::{
    Backend, BackendError, BackendReport, Basis, Committed, DeviceMemory, DevicePolys, Engines,
    Placement, ProofShape, Resident,
};
pub use expr::Opcodes;
use expr::{Columns, Program};

/// A constraint system's custom gates, compiled once: the quotient's first part, `Σ y^i·g_i`
/// over the gates' polynomials in order, evaluated on the CPU ([`Gates::cpu`]) or as the opcode
/// stream one GPU kernel interprets ([`Gates::opcodes`], [`crate::gpu::GpuQuotient`]).
#[derive(Debug)]
pub struct Gates {
    program: Program,
    outputs: Vec<u32>,
    fixed: usize,
    advice: usize,
}

impl Gates {
    /// The gates of `cs` (a proving key's: selectors already fixed columns).
    pub fn new(cs: &ConstraintSystem<Fr>) -> Self {
        let mut program = Program::default();
        let outputs = cs
            .gates()
            .iter()
            .flat_map(|g| g.polynomials().iter())
            .map(|p| program.add(p))
            .collect();
        Self {
            program,
            outputs,
            fixed: cs.num_fixed_columns(),
            advice: cs.num_advice_columns(),
        }
    }

    /// Nodes of the deduplicated graph, and the gates' polynomials.
    pub fn size(&self) -> (usize, usize) {
        (self.program.len(), self.outputs.len())
    }

    /// The opcode stream for `n`-row columns, with the challenges and `y` as constants.
    pub fn opcodes(&self, challenges: &[Fr], y: Fr, n: usize) -> Opcodes {
        let (f, a) = (self.fixed, self.advice);
        let index = move |kind: expr::Kind, i: usize| -> u32 {
            (match kind {
                expr::Kind::Fixed => i,
                expr::Kind::Advice => f + i,
                expr::Kind::Instance | expr::Kind::Extra => f + a + i,
            }) as u32
        };
        self.program
            .opcodes(&self.outputs, challenges, y, n, &index)
    }

    /// `Σ y^(m−1−i)·g_i` at every row of the columns, on the CPU.
    pub fn cpu(
        &self,
        fixed: &[&[Fr]],
        advice: &[&[Fr]],
        instance: &[&[Fr]],
        challenges: &[Fr],
        y: Fr,
    ) -> Vec<Fr> {
        let n = fixed.first().or(advice.first()).map_or(0, |c| c.len());
        let cols = Columns {
            fixed,
            advice,
            instance,
            extra: &[],
            challenges,
        };
        self.program.horner(&cols, n, &self.outputs, y)
    }
}
use witness::{PhaseCtx, Witness, WitnessAssignment};

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlonkError {
    /// The instance columns do not match the constraint system.
    #[error("{given} instance columns for a circuit of {expected}")]
    InvalidInstances {
        /// Columns given.
        given: usize,
        /// Columns the circuit has.
        expected: usize,
    },
    /// An instance column is longer than the usable rows.
    #[error("instance column {column} has {len} values; the circuit has {usable} usable rows")]
    InstanceTooLong {
        /// The column.
        column: usize,
        /// Its length.
        len: usize,
        /// Usable rows.
        usable: usize,
    },
    /// The circuit's synthesis failed.
    #[error("synthesis failed: {0}")]
    Synthesis(Error),
    /// A lookup's input has a value its table does not hold: the witness does not satisfy the
    /// circuit.
    #[error("lookup {lookup} ({name}): row {row}'s input is not in the table")]
    LookupNotInTable {
        /// The lookup's index.
        lookup: usize,
        /// Its name.
        name: String,
        /// The first row (in sorted order) whose value is missing.
        row: usize,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The backend's Lagrange basis is not the key's domain.
    #[error("the backend's Lagrange basis has {bases} points; the key's domain has {n} rows")]
    SrsMismatch {
        /// The basis's points.
        bases: usize,
        /// The domain's rows.
        n: usize,
    },
    /// The prepared coset values, or a witness synthesised apart, are not this key's.
    #[error("the prepared key values or the synthesised witness were made for another key")]
    KeyMismatch,
    /// Synthesis apart from the proof was asked of a circuit with several phases, whose later
    /// phases need the transcript's challenges.
    #[error(
        "the circuit has {phases} phases; only a one-phase circuit is synthesised apart from \
         its proof (create_proof synthesises the others phase by phase)"
    )]
    SeveralPhases {
        /// The circuit's phases.
        phases: u8,
    },
    /// Writing the transcript failed.
    #[error("transcript: {0}")]
    Transcript(#[from] io::Error),
}

impl From<Error> for PlonkError {
    fn from(e: Error) -> Self {
        PlonkError::Synthesis(e)
    }
}

/// Time per stage of one proof.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stages {
    /// Synthesis and the advice commitments (phase by phase).
    pub witness: Duration,
    /// Of which the synthesis done apart from the proof ([`synthesize`]): the CPU's part that a
    /// pipeline overlaps with the previous proof (zero for a circuit synthesised inside).
    pub synthesis: Duration,
    /// Lookups' compression, permutation and commitments.
    pub lookups: Duration,
    /// Permutation and lookup products and their commitments; the random polynomial.
    pub products: Duration,
    /// The quotient's coset transforms and evaluation.
    pub quotient: Duration,
    /// The parts' inverse transforms, the pieces of h and their commitments.
    pub vanishing: Duration,
    /// Every evaluation at x.
    pub evaluations: Duration,
    /// The SHPLONK opening.
    pub opening: Duration,
    /// The whole proof.
    pub total: Duration,
    /// The backend's transforms and MSMs over the proof.
    pub backend: BackendReport,
}

impl Stages {
    /// The device's busy time as a share of the proof's wall time (`None`: no device).
    pub fn utilisation(&self) -> Option<f64> {
        self.backend.utilisation(self.total)
    }
}

/// A key's coset values on every part of the extended domain, made once per key.
pub struct Prepared {
    n: usize,
    fixed_len: usize,
    parts: Vec<PartValues>,
    /// The key's fixed and σ polynomials (coefficients, in that order) where the backend keeps
    /// polynomials for the evaluations and the opening.
    key_polys: Option<Resident>,
    /// Bytes held.
    pub bytes: usize,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("n", &self.n)
            .field("parts", &self.parts.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

struct PartValues {
    fixed: Vec<Vec<Fr>>,
    sigma: Vec<Vec<Fr>>,
    l0: Vec<Fr>,
    l_last: Vec<Fr>,
    l_active: Vec<Fr>,
    /// The part's points, `g·ω^i`.
    points: Vec<Fr>,
    /// All of the above where the backend evaluates the quotient (a device), if it keeps them.
    resident: Option<Resident>,
}

impl PartValues {
    /// The quotient interpreter's key columns, in its order: fixed, l_0, l_last, l_active,
    /// points, then σ.
    fn key_columns(&self) -> Vec<&[Fr]> {
        self.fixed
            .iter()
            .chain([&self.l0, &self.l_last, &self.l_active, &self.points])
            .chain(&self.sigma)
            .map(|v| v.as_slice())
            .collect()
    }
}

/// The generator of coset part `j`: `ζ · ω_ext^j`.
fn part_generator(domain: &EvaluationDomain<Fr>, j: usize) -> Fr {
    domain.g_coset * domain.extended_omega.pow_vartime([j as u64])
}

/// Coset parts the quotient is evaluated on: as many as its pieces, `degree − 1` (halo2-axiom
/// uses every part of the power-of-two extended domain, 8 at degree 6, where 5 determine h).
fn parts(domain: &EvaluationDomain<Fr>) -> usize {
    domain.quotient_poly_degree as usize
}

/// `a_i ← a_i · g^i`.
fn distribute_powers(a: &mut [Fr], g: Fr) {
    a.par_chunks_mut(1 << 12).enumerate().for_each(|(c, a)| {
        let mut power = g.pow_vartime([(c << 12) as u64]);
        for x in a {
            *x *= power;
            power *= g;
        }
    });
}

/// The inverse of the Vandermonde matrix `V[j][i] = t_j^i` (Gauss–Jordan; the `t_j` distinct).
fn vandermonde_inverse(t: &[Fr]) -> Vec<Vec<Fr>> {
    let m = t.len();
    let mut a: Vec<Vec<Fr>> = t
        .iter()
        .map(|tj| {
            let mut row: Vec<Fr> = std::iter::successors(Some(Fr::ONE), |p| Some(*p * tj))
                .take(m)
                .collect();
            row.extend((0..m).map(|_| Fr::ZERO));
            row
        })
        .collect();
    for (i, row) in a.iter_mut().enumerate() {
        row[m + i] = Fr::ONE;
    }
    for col in 0..m {
        let pivot = (col..m)
            .find(|&r| !bool::from(a[r][col].is_zero()))
            .expect("distinct points: the Vandermonde matrix is invertible");
        a.swap(col, pivot);
        let inv = a[col][col].invert().expect("a pivot is not zero");
        for x in a[col].iter_mut() {
            *x *= inv;
        }
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col && !bool::from(row[col].is_zero()) {
                let f = row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row) {
                    *x -= f * p;
                }
            }
        }
    }
    a.into_iter().map(|row| row[m..].to_vec()).collect()
}

/// The coset values of `coeffs` on part `j`.
fn coset(
    backend: &dyn Backend,
    domain: &EvaluationDomain<Fr>,
    coeffs: &[Fr],
    j: usize,
) -> Result<Vec<Fr>, BackendError> {
    let mut v = coeffs.to_vec();
    backend.coset_ntt(&mut v, domain.omega, part_generator(domain, j), domain.k)?;
    Ok(v)
}

fn cosets(
    backend: &dyn Backend,
    domain: &EvaluationDomain<Fr>,
    polys: &[&[Fr]],
    j: usize,
) -> Result<Vec<Vec<Fr>>, BackendError> {
    polys
        .par_iter()
        .map(|p| coset(backend, domain, p, j))
        .collect()
}

/// The device memory a proof under `pk` needs on `backend` (`None`: the backend has no device),
/// with the key's columns kept there or sent with each coset part.
pub fn device_memory(
    backend: &dyn Backend,
    pk: &ProvingKey<G1Affine>,
    keep_key: bool,
) -> Option<DeviceMemory> {
    let vk = pk.get_vk();
    let cs = vk.cs();
    let domain = vk.get_domain();
    let n = domain.n as usize;
    let sets = cs
        .permutation()
        .get_columns()
        .chunks(cs.degree() - 2)
        .count();
    let sigmas = pk.permutation().polys().len();
    // the program's size does not depend on the challenges' values
    let challenges: Vec<Fr> = (0..cs.num_challenges() as u64)
        .map(|i| Fr::from(11 + i))
        .collect();
    let quotient = Quotient::new(
        cs,
        n,
        cs.blinding_factors(),
        sets,
        &challenges,
        [Fr::from(2), Fr::from(3), Fr::from(5), Fr::from(7)],
    );
    backend.device_memory(&ProofShape {
        n,
        parts: parts(domain),
        key_columns: cs.num_fixed_columns() + Quotient::EXTRA + sigmas,
        proof_columns: cs.num_advice_columns()
            + cs.num_instance_columns()
            + sets
            + 3 * cs.lookups().len(),
        ops: &quotient.ops,
        key_polys: cs.num_fixed_columns() + sigmas,
        keep_key,
    })
}

impl Prepared {
    /// Transforms `pk`'s fixed columns, σ polynomials and Lagrange selectors onto every part of
    /// the extended domain with `backend`, keeping them on its device where it has one.
    pub fn new(backend: &dyn Backend, pk: &ProvingKey<G1Affine>) -> Result<Self, BackendError> {
        Self::with_residency(backend, pk, true)
    }

    /// [`Prepared::new`], the key's columns kept on the backend's device only with `keep`
    /// (otherwise each coset part sends them: less device memory, more traffic).
    pub fn with_residency(
        backend: &dyn Backend,
        pk: &ProvingKey<G1Affine>,
        keep: bool,
    ) -> Result<Self, BackendError> {
        let domain = pk.get_vk().get_domain();
        let fixed: Vec<&[Fr]> = pk.fixed_polys().iter().map(|p| p.values()).collect();
        let sigma: Vec<&[Fr]> = pk
            .permutation()
            .polys()
            .iter()
            .map(|p| p.values())
            .collect();
        let parts = (0..parts(domain))
            .map(|j| {
                let l = cosets(
                    backend,
                    domain,
                    &[
                        pk.l0().values(),
                        pk.l_last().values(),
                        pk.l_active_row().values(),
                    ],
                    j,
                )?;
                let [l0, l_last, l_active]: [Vec<Fr>; 3] = l.try_into().expect("three selectors");
                let mut points = vec![part_generator(domain, j); domain.n as usize];
                distribute_powers(&mut points, domain.omega);
                let mut part = PartValues {
                    fixed: cosets(backend, domain, &fixed, j)?,
                    sigma: cosets(backend, domain, &sigma, j)?,
                    l0,
                    l_last,
                    l_active,
                    points,
                    resident: None,
                };
                if keep {
                    part.resident = backend.keep(&part.key_columns(), domain.n as usize);
                }
                Ok(part)
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        let n = domain.n as usize;
        let columns = parts.len() * (fixed.len() + sigma.len() + 4);
        let key_polys = if keep && backend.device_polys().is_some() {
            let polys: Vec<&[Fr]> = pk
                .fixed_polys()
                .iter()
                .chain(pk.permutation().polys())
                .map(|p| p.values())
                .collect();
            backend.keep(&polys, n)
        } else {
            None
        };
        Ok(Self {
            n,
            fixed_len: fixed.len(),
            parts,
            key_polys,
            bytes: columns * n * 32,
        })
    }

    fn check(&self, pk: &ProvingKey<G1Affine>) -> Result<(), PlonkError> {
        let domain = pk.get_vk().get_domain();
        if self.n != domain.n as usize
            || self.fixed_len != pk.fixed_polys().len()
            || self.parts.len() != parts(domain)
        {
            return Err(PlonkError::KeyMismatch);
        }
        Ok(())
    }
}

/// A polynomial query for the opening: `poly` at `point` (polynomials compared by identity,
/// their place in the table, as halo2's multi-open compares them by address).
#[derive(Clone, Copy)]
pub(crate) struct Query {
    point: Fr,
    poly: polys::PolyId,
}

/// One lookup through the proof.
struct Lookup {
    compressed_input: Vec<Fr>,
    compressed_table: Vec<Fr>,
    permuted_input: Vec<Fr>,
    permuted_table: Vec<Fr>,
    /// The product's, the permuted input's and the permuted table's coefficients.
    columns: [ProofColumn; 3],
}

fn commit<E, T>(
    backend: &dyn Backend,
    basis: Basis,
    transcript: &mut T,
    values: &[&[Fr]],
) -> Result<(), PlonkError>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    let points = values
        .iter()
        .map(|v| backend.msm(basis, v))
        .collect::<Result<Vec<G1>, _>>()?;
    write_points(transcript, &points)
}

/// `points` into the transcript, in order.
fn write_points<E, T>(transcript: &mut T, points: &[G1]) -> Result<(), PlonkError>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    for p in witness::to_affine(points) {
        transcript.write_point(p)?;
    }
    Ok(())
}

/// A proof column's coefficients: on the host where they came back, and where the backend
/// keeps them.
#[derive(Default)]
struct ProofColumn {
    host: Option<Vec<Fr>>,
    kept: Option<Resident>,
}

impl From<Committed> for ProofColumn {
    fn from(c: Committed) -> Self {
        Self {
            host: c.coefficients,
            kept: c.kept,
        }
    }
}

/// Brings back to the host each proof column the backend left only where it keeps it: from
/// `gathered` (every column, in order: [`Backend::keep_coefficients`]) or the column's own.
fn bring_back(
    backend: &dyn Backend,
    columns: &mut [ProofColumn],
    gathered: Option<&Resident>,
) -> Result<(), PlonkError> {
    for (i, c) in columns.iter_mut().enumerate() {
        if c.host.is_some() {
            continue;
        }
        let source = gathered
            .map(|g| (g, i))
            .or_else(|| c.kept.as_ref().map(|k| (k, 0)));
        let read = source.and_then(|(r, i)| backend.read_kept(r, i));
        let values = read.ok_or_else(|| BackendError::Polys {
            engine: backend.describe(),
            what: "reading a proof column back",
            source: Box::new(crate::gpu::GpuError::Device {
                stage: "polynomials",
                message: "the column is kept only where the backend cannot read it".into(),
            }),
        })??;
        c.host = Some(values);
    }
    Ok(())
}

/// A one-phase circuit's witness, synthesised apart from its proof ([`synthesize`]): the advice
/// as field elements, blinding rows not yet drawn, with the instances it was laid out for. It
/// owns what it holds, so the next batch's witness is built on one thread while a proof runs on
/// another ([`prove_synthesized`]).
pub struct Synthesized {
    witness: Witness,
    /// How long the synthesis took.
    pub time: Duration,
}

impl std::fmt::Debug for Synthesized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synthesized")
            .field("n", &self.witness.n())
            .field("advice_columns", &self.witness.columns())
            .field("time", &self.time)
            .finish()
    }
}

/// The transcript type a synthesis apart from the proof is compiled with: never written, since
/// without the proof's context no phase step runs.
type NoTranscript = halo2_proofs::transcript::Blake2bWrite<
    Vec<u8>,
    G1Affine,
    halo2_proofs::transcript::Challenge255<G1Affine>,
>;

/// A phase's synthesis inside the proof, with the proof's context for the phase steps.
type Synthesis<'s, T> =
    &'s mut dyn for<'c> FnMut(&mut Witness, &mut PhaseCtx<'c, T>) -> Result<(), PlonkError>;

fn check_instances(
    cs: &ConstraintSystem<Fr>,
    usable: usize,
    instances: &[impl AsRef<[Fr]>],
) -> Result<(), PlonkError> {
    if instances.len() != cs.num_instance_columns() {
        return Err(PlonkError::InvalidInstances {
            given: instances.len(),
            expected: cs.num_instance_columns(),
        });
    }
    for (column, values) in instances.iter().enumerate() {
        let len = values.as_ref().len();
        if len > usable {
            return Err(PlonkError::InstanceTooLong {
                column,
                len,
                usable,
            });
        }
    }
    Ok(())
}

/// Runs `circuit`'s synthesis into `w`, with the proof's context for its phase steps or none.
fn run_synthesis<C, T, E>(
    w: &mut Witness,
    ctx: Option<&mut PhaseCtx<'_, T>>,
    circuit: &C,
    cs: &ConstraintSystem<Fr>,
) -> Result<(), PlonkError>
where
    C: Circuit<Fr, Params = ()>,
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    let mut cs_config = ConstraintSystem::default();
    let config = C::configure_with_params(&mut cs_config, ());
    C::FloorPlanner::synthesize(
        &mut WitnessAssignment::<T, E> {
            witness: w,
            ctx,
            encoding: std::marker::PhantomData,
        },
        circuit,
        config,
        cs.constants().clone(),
    )?;
    match w.error.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Lays out `circuit`'s witness for `pk` with public `instances`, apart from the proof: what
/// needs neither transcript nor backend (the circuit's synthesis, the cells to field
/// elements). A circuit of several phases is refused (`SeveralPhases`): its later phases need
/// the transcript's challenges, so [`create_proof`] synthesises it inside the proof.
pub fn synthesize<C>(
    pk: &ProvingKey<G1Affine>,
    circuit: &C,
    instances: &[&[Fr]],
) -> Result<Synthesized, PlonkError>
where
    C: Circuit<Fr, Params = ()>,
{
    let start = Instant::now();
    let vk = pk.get_vk();
    let cs = vk.cs();
    let phases = witness::phases(cs);
    if phases != 1 {
        return Err(PlonkError::SeveralPhases { phases });
    }
    let domain = vk.get_domain();
    let usable = domain.n as usize - (cs.blinding_factors() + 1);
    check_instances(cs, usable, instances)?;
    let mut w = Witness::new(cs, domain.k, instances);
    run_synthesis::<C, NoTranscript, _>(&mut w, None, circuit, cs)?;
    w.settle();
    Ok(Synthesized {
        witness: w,
        time: start.elapsed(),
    })
}

/// Proves `circuit` with public `instances` under `pk`, writing the proof into `transcript`.
/// `prepared` holds `pk`'s coset values ([`Prepared::new`]); `backend` runs every transform and
/// MSM, its Lagrange basis that of `pk`'s domain. A one-phase circuit is [`synthesize`]d, then
/// [`prove_synthesized`]; one of several phases is synthesised phase by phase inside the proof.
#[allow(clippy::too_many_arguments)]
pub fn create_proof<C, E, T>(
    backend: &dyn Backend,
    pk: &ProvingKey<G1Affine>,
    prepared: &Prepared,
    circuit: &C,
    instances: &[&[Fr]],
    rng: &mut (dyn RngCore + Send + Sync),
    transcript: &mut T,
) -> Result<Stages, PlonkError>
where
    C: Circuit<Fr, Params = ()>,
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    let cs = pk.get_vk().cs();
    if witness::phases(cs) == 1 {
        let synthesized = synthesize(pk, circuit, instances)?;
        return prove_synthesized(backend, pk, prepared, synthesized, rng, transcript);
    }
    let domain = pk.get_vk().get_domain();
    let usable = domain.n as usize - (cs.blinding_factors() + 1);
    check_instances(cs, usable, instances)?;
    let w = Witness::new(cs, domain.k, instances);
    let mut synthesis =
        |w: &mut Witness, ctx: &mut PhaseCtx<'_, T>| run_synthesis(w, Some(ctx), circuit, cs);
    prove(
        backend,
        pk,
        prepared,
        w,
        Some(&mut synthesis),
        Duration::ZERO,
        rng,
        transcript,
    )
}

/// Proves a witness laid out by [`synthesize`] under the same `pk`, writing the proof into
/// `transcript`: the proof [`create_proof`] makes of the same circuit and instances.
pub fn prove_synthesized<E, T>(
    backend: &dyn Backend,
    pk: &ProvingKey<G1Affine>,
    prepared: &Prepared,
    synthesized: Synthesized,
    rng: &mut (dyn RngCore + Send + Sync),
    transcript: &mut T,
) -> Result<Stages, PlonkError>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    prove(
        backend,
        pk,
        prepared,
        synthesized.witness,
        None,
        synthesized.time,
        rng,
        transcript,
    )
}

/// The proof from a witness: `synthesis` runs each phase's synthesis (none: the witness holds
/// its one phase already, which took `synthesized`).
#[allow(clippy::too_many_arguments)]
fn prove<E, T>(
    backend: &dyn Backend,
    pk: &ProvingKey<G1Affine>,
    prepared: &Prepared,
    mut w: Witness,
    mut synthesis: Option<Synthesis<'_, T>>,
    synthesized: Duration,
    rng: &mut (dyn RngCore + Send + Sync),
    transcript: &mut T,
) -> Result<Stages, PlonkError>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    let start = Instant::now();
    let before = backend.stats();
    let mut stages = Stages::default();
    let vk = pk.get_vk();
    let cs = vk.cs();
    let domain = vk.get_domain();
    let n = domain.n as usize;
    let k = domain.k;
    let blinding = cs.blinding_factors();
    let usable = n - (blinding + 1);
    prepared.check(pk)?;
    if w.n() != n || w.columns() != cs.num_advice_columns() {
        return Err(PlonkError::KeyMismatch);
    }
    let lagrange_len = backend.bases(Basis::Lagrange);
    if lagrange_len != n {
        return Err(PlonkError::SrsMismatch {
            bases: lagrange_len,
            n,
        });
    }
    let instances = w.instances.clone();
    check_instances(cs, usable, &instances)?;

    // The verifying key, then the instances (SHPLONK reads them as scalars, not commitments).
    vk.hash_into(transcript)?;
    for values in &instances {
        for v in values.iter() {
            transcript.common_scalar(*v)?;
        }
    }
    let instance_values: Vec<Vec<Fr>> = instances
        .iter()
        .map(|v| {
            let mut c = vec![Fr::ZERO; n];
            c[..v.len()].copy_from_slice(v);
            c
        })
        .collect();

    // Synthesis (unless done already), committing each phase's advice and squeezing its
    // challenges.
    let (advice, challenges) = {
        let phases = witness::phases(cs);
        let mut ctx = PhaseCtx {
            backend,
            omega_inv: domain.omega_inv,
            transcript: &mut *transcript,
            rng: &mut *rng,
        };
        debug_assert_eq!(w.n(), 1 << k);
        while w.phase < phases {
            match synthesis.as_mut() {
                Some(synthesis) => synthesis(&mut w, &mut ctx)?,
                None if w.phase > 0 => return Err(PlonkError::SeveralPhases { phases }),
                None => {}
            }
            if w.phase < phases {
                w.finish_phase::<T, E>(&mut ctx)?;
            }
        }
        let challenges = (0..cs.num_challenges())
            .map(|i| {
                w.challenges
                    .get(&i)
                    .copied()
                    .ok_or(PlonkError::Synthesis(Error::Synthesis))
            })
            .collect::<Result<Vec<_>, _>>()?;
        (w.into_advice()?, challenges)
    };
    stages.synthesis = synthesized;
    stages.witness = synthesized + start.elapsed();
    let witness::ProofAdvice {
        values: advice_values,
        columns: advice_columns,
    } = advice;

    let fixed_values: Vec<&[Fr]> = pk.fixed_values().iter().map(|p| p.values()).collect();
    let advice_refs: Vec<&[Fr]> = advice_values.iter().map(|v| v.as_slice()).collect();
    let instance_refs: Vec<&[Fr]> = instance_values.iter().map(|v| v.as_slice()).collect();

    // Lookups: compress with θ, permute, commit.
    let t = Instant::now();
    let theta = *transcript.squeeze_challenge_scalar::<()>();
    let mut lookup_program = Program::default();
    let lookup_nodes = lookup_program.add_lookups(cs);
    let lagrange_columns = Columns {
        fixed: &fixed_values,
        advice: &advice_refs,
        instance: &instance_refs,
        extra: &[],
        challenges: &challenges,
    };
    let mut lookups = Vec::with_capacity(lookup_nodes.len());
    for (index, (inputs, tables)) in lookup_nodes.iter().enumerate() {
        // `Σ θ^(m−1−i) · e_i` at every row: Horner's rule in θ over the expressions
        let compressed_input = lookup_program.horner(&lagrange_columns, n, inputs, theta);
        let compressed_table = lookup_program.horner(&lagrange_columns, n, tables, theta);
        let (permuted_input, permuted_table) =
            permute(&compressed_input, &compressed_table, usable, rng).map_err(|row| {
                PlonkError::LookupNotInTable {
                    lookup: index,
                    name: cs.lookups()[index].name().to_string(),
                    row,
                }
            })?;
        let input = backend.commit_to_coeff(&permuted_input, domain.omega_inv, k)?;
        let table = backend.commit_to_coeff(&permuted_table, domain.omega_inv, k)?;
        write_points(transcript, &[input.point, table.point])?;
        lookups.push(Lookup {
            compressed_input,
            compressed_table,
            permuted_input,
            permuted_table,
            columns: [ProofColumn::default(), input.into(), table.into()],
        });
    }
    stages.lookups = t.elapsed();

    // The permutation's products, the lookups' products, the random polynomial.
    let t = Instant::now();
    let beta = *transcript.squeeze_challenge_scalar::<()>();
    let gamma = *transcript.squeeze_challenge_scalar::<()>();
    let columns = cs.permutation().get_columns();
    let chunk_len = cs.degree() - 2;
    let column_values = |c: &halo2_proofs::plonk::Column<Any>| -> &[Fr] {
        match c.column_type() {
            Any::Advice(_) => &advice_values[c.index()],
            Any::Fixed => fixed_values[c.index()],
            Any::Instance => &instance_values[c.index()],
        }
    };
    let mut z_columns: Vec<ProofColumn> = Vec::new();
    {
        let sigmas = pk.permutation().permutations();
        let mut delta_omega = Fr::ONE;
        let mut last_z = Fr::ONE;
        for (set, sigma) in columns.chunks(chunk_len).zip(sigmas.chunks(chunk_len)) {
            let mut modified = vec![Fr::ONE; n];
            for (column, sigma) in set.iter().zip(sigma) {
                let values = column_values(column);
                modified
                    .par_chunks_mut(1 << 12)
                    .zip(values.par_chunks(1 << 12))
                    .zip(sigma.values().par_chunks(1 << 12))
                    .for_each(|((m, v), s)| {
                        for ((m, v), s) in m.iter_mut().zip(v).zip(s) {
                            *m *= beta * s + gamma + v;
                        }
                    });
            }
            backend.batch_invert(&mut modified);
            for column in set {
                let values = column_values(column);
                let omega = domain.omega;
                modified
                    .par_chunks_mut(1 << 12)
                    .enumerate()
                    .for_each(|(c, m)| {
                        let start = c << 12;
                        let mut d = delta_omega * omega.pow_vartime([start as u64]);
                        for (m, v) in m.iter_mut().zip(&values[start..]) {
                            *m *= d * beta + gamma + v;
                            d *= omega;
                        }
                    });
                delta_omega *= Fr::DELTA;
            }
            let mut z = Vec::with_capacity(n);
            z.push(last_z);
            for row in 1..n {
                z.push(z[row - 1] * modified[row - 1]);
            }
            for cell in &mut z[n - blinding..] {
                *cell = Fr::random(&mut *rng);
            }
            last_z = z[usable];
            let committed = backend.commit_to_coeff(&z, domain.omega_inv, k)?;
            write_points(transcript, &[committed.point])?;
            z_columns.push(committed.into());
        }
    }
    for lookup in &mut lookups {
        let mut product: Vec<Fr> = lookup
            .permuted_input
            .par_iter()
            .zip(lookup.permuted_table.par_iter())
            .map(|(a, s)| (beta + a) * (gamma + s))
            .collect();
        backend.batch_invert(&mut product);
        product
            .par_iter_mut()
            .zip(lookup.compressed_input.par_iter())
            .zip(lookup.compressed_table.par_iter())
            .for_each(|((p, a), s)| *p *= (*a + beta) * (*s + gamma));
        let mut z = Vec::with_capacity(n);
        let mut state = Fr::ONE;
        z.push(state);
        for p in &product[..n - blinding - 1] {
            state *= p;
            z.push(state);
        }
        while z.len() < n {
            z.push(Fr::random(&mut *rng));
        }
        let committed = backend.commit_to_coeff(&z, domain.omega_inv, k)?;
        write_points(transcript, &[committed.point])?;
        lookup.columns[0] = committed.into();
    }
    let random_poly: Vec<Fr> = (0..n).map(|_| Fr::random(&mut *rng)).collect();
    commit(backend, Basis::Monomial, transcript, &[&random_poly])?;
    let y = *transcript.squeeze_challenge_scalar::<()>();
    stages.products = t.elapsed();

    // The quotient.
    let t = Instant::now();
    let instance_coefficients = instance_values
        .par_iter()
        .map(|v| backend.to_coeff_keep(v, domain.omega_inv, k))
        .collect::<Result<Vec<_>, _>>()?;
    let (advice_count, instance_count, z_count) = (
        advice_columns.len(),
        instance_coefficients.len(),
        z_columns.len(),
    );
    let quotient = Quotient::new(
        cs,
        n,
        blinding,
        z_count,
        &challenges,
        [beta, gamma, theta, y],
    );
    let num_parts = parts(domain);
    // each part's result: on the host, or kept on the device for the evaluations and the opening
    let mut part_values: Vec<Vec<Fr>> = Vec::with_capacity(num_parts);
    let mut part_kept: Vec<Resident> = Vec::with_capacity(num_parts);
    // the proof's columns, in the interpreter's order after the key's: the coefficients on the
    // host where they came back, and where the backend keeps them
    let mut columns: Vec<ProofColumn> = advice_columns
        .into_iter()
        .chain(
            instance_coefficients
                .into_iter()
                .map(|(host, kept)| ProofColumn { host, kept }),
        )
        .chain(z_columns)
        .chain(
            lookups
                .iter_mut()
                .flat_map(|l| std::mem::take(&mut l.columns)),
        )
        .collect();
    // where the backend can, their coefficients go to the device once and every part's values
    // are made there
    let kept = {
        let polys: Vec<&[Fr]> = columns
            .iter()
            .map(|c| c.host.as_deref().unwrap_or(&[]))
            .collect();
        let kept_columns: Vec<Option<&Resident>> =
            columns.iter().map(|c| c.kept.as_ref()).collect();
        backend.keep_coefficients(&polys, &kept_columns, n)
    };
    match &kept {
        // the columns are in the gathered buffer now: their own buffers go
        Some(_) => columns.iter_mut().for_each(|c| c.kept = None),
        // the host evaluates every part: a column left only on the device comes back
        None => bring_back(backend, &mut columns, None)?,
    }
    // Each part's values divided by the vanishing polynomial and brought back to coefficients
    // with the coset shift undone (v_j below): on the device where it made the part, on the
    // host otherwise (timed with the next stage).
    let mut vanishing = Duration::ZERO;
    for (j, part) in prepared.parts.iter().enumerate() {
        let g = part_generator(domain, j);
        let g_inv = g.invert().expect("a coset generator is not zero");
        let v = crate::gpu::Vanishing {
            scale: domain.t_evaluations[j],
            omega_inv: domain.omega_inv,
            g_inv,
        };
        // kept on the device while every earlier part was
        if part_values.is_empty() {
            let kept_part = kept.as_ref().and_then(|kept| {
                let key = part.key_columns();
                let r = part.resident.as_ref();
                backend.part_on_device(&quotient.ops, &key, r, kept, domain.omega, g, k, v)
            });
            if let Some(r) = kept_part {
                part_kept.push(r?);
                continue;
            }
        }
        let on_device = kept.as_ref().and_then(|kept| {
            backend.numerator_on_coset(
                &quotient.ops,
                &part.key_columns(),
                part.resident.as_ref(),
                kept,
                domain.omega,
                g,
                k,
                Some(v),
            )
        });
        if let Some(v) = on_device {
            part_values.push(v?);
            continue;
        }
        bring_back(backend, &mut columns, kept.as_ref())?;
        let polys: Vec<&[Fr]> = columns
            .iter()
            .map(|c| c.host.as_deref().expect("brought back"))
            .collect();
        let mut values = cosets(backend, domain, &polys, j)?.into_iter();
        let advice: Vec<Vec<Fr>> = values.by_ref().take(advice_count).collect();
        let instance: Vec<Vec<Fr>> = values.by_ref().take(instance_count).collect();
        let z: Vec<Vec<Fr>> = values.by_ref().take(z_count).collect();
        let lookup_cosets: Vec<Vec<Fr>> = values.collect();
        let mut h = quotient.part(
            part,
            &advice,
            &instance,
            &z,
            &lookup_cosets,
            domain,
            &challenges,
            backend,
        )?;
        backend.scale(&mut h, domain.t_evaluations[j]);
        let back = Instant::now();
        backend.intt(&mut h, domain.omega_inv, k)?;
        distribute_powers(&mut h, g_inv);
        vanishing += back.elapsed();
        part_values.push(h);
    }
    stages.quotient = t.elapsed().saturating_sub(vanishing);

    // h(X) = Σ_i X^(i·n) h_i(X) with deg h_i < n, the pieces committed. On part j (the coset
    // g_j·⟨ω⟩) X^n is the constant t_j = g_j^n, so the part's values are those of
    // v_j(X) = Σ_i t_j^i h_i(X): an inverse transform with the coset shift undone gives v_j, and
    // the Vandermonde system in the t_j gives the pieces.
    let t = Instant::now();
    let ts: Vec<Fr> = (0..num_parts)
        .map(|j| part_generator(domain, j).pow_vartime([n as u64]))
        .collect();
    let w = vandermonde_inverse(&ts);
    let table = polys::PolyTable::new(backend, n);
    // the parts kept on the device, then those on the host
    let mut parts = Vec::with_capacity(num_parts);
    for r in &part_kept {
        parts.push(table.add(None, Some((r, 0)))?);
    }
    for v in &part_values {
        parts.push(table.add(Some(v), None)?);
    }
    let pieces = w
        .iter()
        .map(|row| {
            let terms: Vec<(polys::PolyId, Fr)> =
                parts.iter().copied().zip(row.iter().copied()).collect();
            table.combine(&terms, &[])
        })
        .collect::<Result<Vec<_>, _>>()?;
    for p in parts {
        table.free(p);
    }
    drop(part_kept);
    let points = pieces
        .iter()
        .map(|&p| table.commit(p))
        .collect::<Result<Vec<_>, _>>()?;
    write_points(transcript, &points)?;
    stages.vanishing = vanishing + t.elapsed();

    // Evaluations at x. Each polynomial is the table's once: the proof's columns where the
    // backend kept them (in the order `keep_coefficients` gathered them), the key's where it
    // keeps them, the random polynomial from the host.
    let t = Instant::now();
    let x = *transcript.squeeze_challenge_scalar::<()>();
    let xn = x.pow_vartime([n as u64]);
    let at = |r: Rotation| domain.rotate_omega(x, r);
    let x_next = at(Rotation::next());
    let x_prev = at(Rotation::prev());
    let x_last = at(Rotation(-((blinding + 1) as i32)));
    let proof = kept.as_ref();
    let key = prepared.key_polys.as_ref();
    let column = |i: usize| table.add(columns[i].host.as_deref(), proof.map(|r| (r, i)));
    let advice_ids = (0..advice_count)
        .map(column)
        .collect::<Result<Vec<_>, _>>()?;
    let first_z = advice_count + instance_count;
    let z_ids = (first_z..first_z + z_count)
        .map(column)
        .collect::<Result<Vec<_>, _>>()?;
    let first_lookup = first_z + z_count;
    let lookup_ids = (0..lookups.len())
        .map(|i| {
            let at = first_lookup + 3 * i;
            Ok([column(at)?, column(at + 1)?, column(at + 2)?])
        })
        .collect::<Result<Vec<_>, PlonkError>>()?;
    let fixed_ids = pk
        .fixed_polys()
        .iter()
        .enumerate()
        .map(|(c, p)| table.add(Some(p.values()), key.map(|r| (r, c))))
        .collect::<Result<Vec<_>, _>>()?;
    let sigma_ids = pk
        .permutation()
        .polys()
        .iter()
        .enumerate()
        .map(|(i, p)| table.add(Some(p.values()), key.map(|r| (r, fixed_ids.len() + i))))
        .collect::<Result<Vec<_>, _>>()?;
    let random_id = table.add(Some(&random_poly), None)?;

    let mut evals: Vec<(polys::PolyId, Fr)> = Vec::new();
    for (column, rot) in cs.advice_queries() {
        evals.push((advice_ids[column.index()], at(*rot)));
    }
    for (column, rot) in cs.fixed_queries() {
        evals.push((fixed_ids[column.index()], at(*rot)));
    }
    evals.push((random_id, x));
    for &p in &sigma_ids {
        evals.push((p, x));
    }
    for (i, &z) in z_ids.iter().enumerate() {
        evals.push((z, x));
        evals.push((z, x_next));
        if i + 1 < z_ids.len() {
            evals.push((z, x_last));
        }
    }
    for &[product, input, table_poly] in &lookup_ids {
        evals.push((product, x));
        evals.push((product, x_next));
        evals.push((input, x));
        evals.push((input, x_prev));
        evals.push((table_poly, x));
    }
    for v in table.evaluate(&evals)? {
        transcript.write_scalar(v)?;
    }
    // The quotient at x, as one polynomial: Σ piece_i · x^(n·i).
    let h_x = table.combine(&polys::powers(pieces.iter().copied(), xn), &[])?;
    for p in pieces {
        table.free(p);
    }
    stages.evaluations = t.elapsed();

    // The multi-opening, with the queries in halo2's order.
    let t = Instant::now();
    let mut queries: Vec<Query> = Vec::new();
    let query = |poly, point| Query { point, poly };
    for (column, rot) in cs.advice_queries() {
        queries.push(query(advice_ids[column.index()], at(*rot)));
    }
    for &z in &z_ids {
        queries.push(query(z, x));
        queries.push(query(z, x_next));
    }
    for &z in z_ids.iter().rev().skip(1) {
        queries.push(query(z, x_last));
    }
    for &[product, input, table_poly] in &lookup_ids {
        queries.push(query(product, x));
        queries.push(query(input, x));
        queries.push(query(table_poly, x));
        queries.push(query(input, x_prev));
        queries.push(query(product, x_next));
    }
    for (column, rot) in cs.fixed_queries() {
        queries.push(query(fixed_ids[column.index()], at(*rot)));
    }
    for &p in &sigma_ids {
        queries.push(query(p, x));
    }
    queries.push(query(h_x, x));
    queries.push(query(random_id, x));
    shplonk::open(&table, &queries, transcript)?;
    stages.opening = t.elapsed();
    stages.total = synthesized + start.elapsed();
    stages.backend = backend.stats().since(&before);
    Ok(stages)
}

/// The lookup's permuted columns: the usable rows of the input sorted, and the table arranged
/// so that each first occurrence of an input value faces the same value; random past the usable
/// rows. `Err(row)` if a value of the input is not in the table.
fn permute(
    input: &[Fr],
    table: &[Fr],
    usable: usize,
    rng: &mut (dyn RngCore + Send + Sync),
) -> Result<(Vec<Fr>, Vec<Fr>), usize> {
    use std::collections::HashMap;
    let n = input.len();
    let mut sorted: Vec<([u8; 32], Fr)> = input[..usable]
        .par_iter()
        .map(|v| (v.to_repr(), *v))
        .collect();
    sorted.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut left: HashMap<[u8; 32], usize> = HashMap::with_capacity(usable);
    for v in &table[..usable] {
        *left.entry(v.to_repr()).or_default() += 1;
    }
    let mut permuted_table: Vec<Option<Fr>> = vec![None; usable];
    for (i, (key, v)) in sorted.iter().enumerate() {
        if i == 0 || sorted[i - 1].0 != *key {
            match left.get_mut(key) {
                Some(count) if *count > 0 => *count -= 1,
                _ => return Err(i),
            }
            permuted_table[i] = Some(*v);
        }
    }
    let mut spare = table[..usable]
        .iter()
        .filter(|v| match left.get_mut(&v.to_repr()) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        });
    let mut permuted_table: Vec<Fr> = permuted_table
        .into_iter()
        .map(|v| v.unwrap_or_else(|| *spare.next().expect("as many table rows as input rows")))
        .collect();
    let mut permuted_input: Vec<Fr> = sorted.into_iter().map(|(_, v)| v).collect();
    permuted_input.resize_with(n, || Fr::random(&mut *rng));
    permuted_table.resize_with(n, || Fr::random(&mut *rng));
    Ok((permuted_input, permuted_table))
}

/// The quotient's numerator as one program: the gates, the permutation's and the lookups'
/// constraints, folded in halo2's order by Horner's rule in y. The permutation and lookup terms
/// read the prover's own columns (`Kind::Extra`), laid out as [`Quotient::EXTRA`] says, so the
/// whole numerator is one graph that the CPU evaluates or one GPU kernel interprets.
struct Quotient {
    program: Program,
    outputs: Vec<u32>,
    ops: Opcodes,
    y: Fr,
}

impl Quotient {
    /// The extra columns, in order: l_0, l_last, l_active, the points of the part (X), the
    /// permutation's products z_0 … z_(s−1), its σ polynomials, then per lookup its product,
    /// permuted input and permuted table.
    const EXTRA: usize = 4;

    #[allow(clippy::too_many_arguments)]
    fn new(
        cs: &ConstraintSystem<Fr>,
        n: usize,
        blinding: usize,
        sets: usize,
        challenges: &[Fr],
        [beta, gamma, theta, y]: [Fr; 4],
    ) -> Self {
        let mut p = Program::default();
        let mut outputs: Vec<u32> = cs
            .gates()
            .iter()
            .flat_map(|g| g.polynomials().iter())
            .map(|e| p.add(e))
            .collect();
        let extra = |p: &mut Program, i: usize, rot: i32| p.column(expr::Kind::Extra, i, rot);
        let (l0, l_last, l_active, x) = (
            extra(&mut p, 0, 0),
            extra(&mut p, 1, 0),
            extra(&mut p, 2, 0),
            extra(&mut p, 3, 0),
        );
        let one = p.constant(Fr::ONE);
        let beta_c = p.constant(beta);
        let gamma_c = p.constant(gamma);
        let z = |p: &mut Program, set: usize, rot: i32| extra(p, Self::EXTRA + set, rot);
        let columns = cs.permutation().get_columns();
        if sets > 0 {
            let z0 = z(&mut p, 0, 0);
            let t = p.sub(one, z0);
            outputs.push(p.mul(t, l0));
            let zl = z(&mut p, sets - 1, 0);
            let sq = p.mul(zl, zl);
            let t = p.sub(sq, zl);
            outputs.push(p.mul(t, l_last));
            for set in 1..sets {
                let cur = z(&mut p, set, 0);
                let prev = z(&mut p, set - 1, -((blinding + 1) as i32));
                let t = p.sub(cur, prev);
                outputs.push(p.mul(t, l0));
            }
            let chunk_len = cs.degree() - 2;
            let mut k = 0usize;
            let mut delta = beta;
            for (set, chunk) in columns.chunks(chunk_len).enumerate() {
                let mut left = z(&mut p, set, 1);
                let mut right = z(&mut p, set, 0);
                for column in chunk {
                    let kind = match column.column_type() {
                        Any::Advice(_) => expr::Kind::Advice,
                        Any::Fixed => expr::Kind::Fixed,
                        Any::Instance => expr::Kind::Instance,
                    };
                    let v = p.column(kind, column.index(), 0);
                    let sigma = extra(&mut p, Self::EXTRA + sets + k, 0);
                    let bs = p.scale(sigma, beta);
                    let t = p.add_nodes(v, bs);
                    let t = p.add_nodes(t, gamma_c);
                    left = p.mul(left, t);
                    let dx = p.scale(x, delta);
                    let t = p.add_nodes(v, dx);
                    let t = p.add_nodes(t, gamma_c);
                    right = p.mul(right, t);
                    delta *= Fr::DELTA;
                    k += 1;
                }
                let t = p.sub(left, right);
                outputs.push(p.mul(t, l_active));
            }
        }
        let base = Self::EXTRA + sets + if sets > 0 { columns.len() } else { 0 };
        let compress = |p: &mut Program, expressions: &[halo2_proofs::plonk::Expression<Fr>]| {
            let mut acc: Option<u32> = None;
            for e in expressions {
                let e = p.add(e);
                acc = Some(match acc {
                    None => e,
                    Some(a) => {
                        let a = p.scale(a, theta);
                        p.add_nodes(a, e)
                    }
                });
            }
            acc.unwrap_or_else(|| p.constant(Fr::ZERO))
        };
        for (l, lookup) in cs.lookups().iter().enumerate() {
            let input = compress(&mut p, lookup.input_expressions());
            let table = compress(&mut p, lookup.table_expressions());
            let product = extra(&mut p, base + 3 * l, 0);
            let product_next = extra(&mut p, base + 3 * l, 1);
            let a = extra(&mut p, base + 3 * l + 1, 0);
            let a_prev = extra(&mut p, base + 3 * l + 1, -1);
            let s = extra(&mut p, base + 3 * l + 2, 0);
            let t = p.sub(one, product);
            outputs.push(p.mul(t, l0));
            let sq = p.mul(product, product);
            let t = p.sub(sq, product);
            outputs.push(p.mul(t, l_last));
            let a_beta = p.add_nodes(a, beta_c);
            let s_gamma = p.add_nodes(s, gamma_c);
            let left = p.mul(product_next, a_beta);
            let left = p.mul(left, s_gamma);
            let in_beta = p.add_nodes(input, beta_c);
            let table_gamma = p.add_nodes(table, gamma_c);
            let right = p.mul(product, in_beta);
            let right = p.mul(right, table_gamma);
            let t = p.sub(left, right);
            outputs.push(p.mul(t, l_active));
            let a_minus_s = p.sub(a, s);
            outputs.push(p.mul(a_minus_s, l0));
            let step = p.sub(a, a_prev);
            let t = p.mul(a_minus_s, step);
            outputs.push(p.mul(t, l_active));
        }
        // The interpreter's columns: the key's first (resident on a device), then the proof's.
        //   key:   fixed (f) | l_0, l_last, l_active, points | σ (sigmas)
        //   proof: advice (a) | instance (i) | z (sets) | per lookup: product, A', S'
        let (f, a, i) = (
            cs.num_fixed_columns(),
            cs.num_advice_columns(),
            cs.num_instance_columns(),
        );
        let sigmas = if sets > 0 { columns.len() } else { 0 };
        let key = f + Self::EXTRA + sigmas;
        let index = move |kind: expr::Kind, c: usize| -> u32 {
            (match kind {
                expr::Kind::Fixed => c,
                expr::Kind::Advice => key + c,
                expr::Kind::Instance => key + a + c,
                expr::Kind::Extra if c < Self::EXTRA => f + c,
                expr::Kind::Extra if c < Self::EXTRA + sets => key + a + i + (c - Self::EXTRA),
                expr::Kind::Extra if c < Self::EXTRA + sets + sigmas => {
                    f + Self::EXTRA + (c - Self::EXTRA - sets)
                }
                expr::Kind::Extra => key + a + i + sets + (c - Self::EXTRA - sets - sigmas),
            }) as u32
        };
        let ops = p.opcodes(&outputs, challenges, y, n, &index);
        Self {
            program: p,
            outputs,
            ops,
            y,
        }
    }

    /// The numerator at every point of the coset part `generator·⟨ω⟩`, on the backend if it
    /// evaluates programs, on the CPU otherwise.
    #[allow(clippy::too_many_arguments)]
    fn part(
        &self,
        key: &PartValues,
        advice: &[Vec<Fr>],
        instance: &[Vec<Fr>],
        z: &[Vec<Fr>],
        lookups: &[Vec<Fr>],
        domain: &EvaluationDomain<Fr>,
        challenges: &[Fr],
        backend: &dyn Backend,
    ) -> Result<Vec<Fr>, BackendError> {
        let n = domain.n as usize;
        let fixed: Vec<&[Fr]> = key.fixed.iter().map(|v| v.as_slice()).collect();
        let advice: Vec<&[Fr]> = advice.iter().map(|v| v.as_slice()).collect();
        let instance: Vec<&[Fr]> = instance.iter().map(|v| v.as_slice()).collect();
        let sigma: &[Vec<Fr>] = if z.is_empty() { &[] } else { &key.sigma };
        let extra: Vec<&[Fr]> = [&key.l0, &key.l_last, &key.l_active, &key.points]
            .into_iter()
            .chain(z)
            .chain(sigma)
            .chain(lookups)
            .map(|v| v.as_slice())
            .collect();
        // the interpreter's order: the key's columns (kept on a device), then the proof's
        let key_columns = key.key_columns();
        let proof: Vec<&[Fr]> = advice
            .iter()
            .chain(&instance)
            .copied()
            .chain(z.iter().chain(lookups).map(|v| v.as_slice()))
            .collect();
        if let Some(values) =
            backend.numerator(&self.ops, &key_columns, key.resident.as_ref(), &proof, n)
        {
            return values;
        }
        let cols = Columns {
            fixed: &fixed,
            advice: &advice,
            instance: &instance,
            extra: &extra,
            challenges,
        };
        Ok(self.program.horner(&cols, n, &self.outputs, self.y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vandermonde_inverse_inverts() {
        for m in 1..7u64 {
            let t: Vec<Fr> = (0..m).map(|j| Fr::from(3 + j * j)).collect();
            let w = vandermonde_inverse(&t);
            for (j, tj) in t.iter().enumerate() {
                for (c, _) in t.iter().enumerate() {
                    // (V · W)[j][c] = Σ_i t_j^i W[i][c]
                    let mut sum = Fr::ZERO;
                    let mut power = Fr::ONE;
                    for row in &w {
                        sum += power * row[c];
                        power *= tj;
                    }
                    assert_eq!(sum, if j == c { Fr::ONE } else { Fr::ZERO }, "m {m}");
                }
            }
        }
    }

    #[test]
    fn distributing_powers_in_chunks_equals_one_pass() {
        let g = Fr::from(5);
        let mut a = vec![Fr::ONE; (1 << 13) + 7];
        distribute_powers(&mut a, g);
        let mut p = Fr::ONE;
        for x in &a {
            assert_eq!(*x, p);
            p *= g;
        }
    }
}
