//! Witness collection: the circuit's own synthesis, run against an [`Assignment`] that keeps
//! only the advice values, and the phase steps between (commit the phase's advice columns,
//! squeeze its challenges) that a multi-phase circuit needs.

use std::collections::HashMap;

use halo2_proofs::{
    circuit::Value,
    halo2curves::{
        bn256::{Fr, G1Affine, G1},
        ff::{BatchInvert, Field},
        group::Curve,
    },
    plonk::{
        Advice, Any, Assigned, Assignment, Challenge, Column, ConstraintSystem, Error, Fixed,
        Instance, Selector,
    },
    transcript::{EncodedChallenge, TranscriptWrite},
};
use rand_core::RngCore;

use super::{
    backend::{Backend, Committed},
    PlonkError, ProofColumn,
};

/// What a phase step needs: the backend, the domain's inverse root of unity (each committed
/// column is brought to coefficients with its commitment), the transcript and the randomness.
pub(super) struct PhaseCtx<'a, T> {
    pub backend: &'a dyn Backend,
    pub omega_inv: Fr,
    pub transcript: &'a mut T,
    pub rng: &'a mut (dyn RngCore + Send + Sync),
}

/// The advice of a proof, every phase committed: each column's values (blinding rows filled)
/// and its coefficients.
pub(super) struct ProofAdvice {
    pub values: Vec<Vec<Fr>>,
    pub columns: Vec<ProofColumn>,
}

/// The advice of one circuit as synthesis leaves it. It owns everything it holds, so a witness
/// synthesised on one thread is proven on another.
pub(super) struct Witness {
    k: u32,
    usable_rows: usize,
    n: usize,
    /// The current phase's cells as assigned; a settled column's are freed.
    advice: Vec<Vec<Assigned<Fr>>>,
    /// The current phase's columns as field elements, blinding rows not yet drawn.
    settled: Vec<Option<Vec<Fr>>>,
    /// Advice columns already committed, by phase, as field elements (blinding rows filled),
    /// with their coefficients and where the backend keeps those.
    committed: Vec<Option<(Vec<Fr>, Committed)>>,
    pub instances: Vec<Vec<Fr>>,
    pub challenges: HashMap<usize, Fr>,
    pub phase: u8,
    column_phase: Vec<u8>,
    challenge_phase: Vec<u8>,
    /// The first failure of a phase step (the trait's `next_phase` cannot return one).
    pub error: Option<PlonkError>,
}

impl Witness {
    pub(super) fn new(cs: &ConstraintSystem<Fr>, k: u32, instances: &[&[Fr]]) -> Self {
        let n = 1usize << k;
        let column_phase = cs.advice_column_phase();
        Self {
            k,
            usable_rows: n - (cs.blinding_factors() + 1),
            n,
            advice: column_phase
                .iter()
                .map(|&p| {
                    if p == 0 {
                        vec![Assigned::Zero; n]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            settled: vec![None; cs.num_advice_columns()],
            committed: (0..cs.num_advice_columns()).map(|_| None).collect(),
            instances: instances.iter().map(|v| v.to_vec()).collect(),
            challenges: HashMap::new(),
            phase: 0,
            column_phase,
            challenge_phase: cs.challenge_phase(),
            error: None,
        }
    }

    /// The advice columns the witness has room for.
    pub(super) fn columns(&self) -> usize {
        self.column_phase.len()
    }
}

/// `Assigned` values to field elements with one batch inversion of all the denominators.
fn invert_assigned(values: &[Assigned<Fr>]) -> Vec<Fr> {
    let mut denominators: Vec<Fr> = values
        .iter()
        .map(|v| v.denominator().unwrap_or(Fr::ONE))
        .collect();
    denominators.iter_mut().batch_invert();
    values
        .iter()
        .zip(denominators)
        .map(|(v, d)| match v.denominator() {
            Some(_) => v.numerator() * d,
            None => v.numerator(),
        })
        .collect()
}

impl Witness {
    /// The current phase's advice columns to field elements (one batch inversion each), their
    /// cells as assigned freed: what needs neither transcript nor backend, so it is done with
    /// the synthesis.
    pub(super) fn settle(&mut self) {
        let phase = self.phase;
        for c in 0..self.advice.len() {
            if self.column_phase[c] == phase && self.settled[c].is_none() {
                let cells = std::mem::take(&mut self.advice[c]);
                self.settled[c] = Some(invert_assigned(&cells));
            }
        }
    }

    /// The phase step: the current phase's advice columns settled, their blinding rows random,
    /// committed (Lagrange basis) into the transcript; then the phase's challenges squeezed and
    /// the next phase's columns made room for.
    pub(super) fn finish_phase<T, E>(&mut self, ctx: &mut PhaseCtx<'_, T>) -> Result<(), PlonkError>
    where
        E: EncodedChallenge<G1Affine>,
        T: TranscriptWrite<G1Affine, E>,
    {
        self.settle();
        let phase = self.phase;
        let columns: Vec<usize> = (0..self.advice.len())
            .filter(|&c| self.column_phase[c] == phase)
            .collect();
        let mut values: Vec<Vec<Fr>> = columns
            .iter()
            .map(|&c| self.settled[c].take().unwrap_or_default())
            .collect();
        for v in &mut values {
            for cell in &mut v[self.usable_rows..] {
                *cell = Fr::random(&mut ctx.rng);
            }
        }
        // each column goes up once for its commitment and its coefficients
        let committed = values
            .iter()
            .map(|v| ctx.backend.commit_to_coeff(v, ctx.omega_inv, self.k))
            .collect::<Result<Vec<_>, _>>()?;
        let points: Vec<G1> = committed.iter().map(|c| c.point).collect();
        for p in to_affine(&points) {
            ctx.transcript.write_point(p)?;
        }
        for ((c, v), committed) in columns.into_iter().zip(values).zip(committed) {
            self.committed[c] = Some((v, committed));
        }
        for (index, &p) in self.challenge_phase.iter().enumerate() {
            if p == phase {
                let c = *ctx.transcript.squeeze_challenge_scalar::<()>();
                self.challenges.insert(index, c);
            }
        }
        self.phase += 1;
        for c in 0..self.advice.len() {
            if self.column_phase[c] == self.phase {
                self.advice[c] = vec![Assigned::Zero; self.n];
            }
        }
        Ok(())
    }

    /// The committed columns' values, coefficients and kept coefficients, in column order.
    pub(super) fn into_advice(self) -> Result<ProofAdvice, PlonkError> {
        let mut advice = ProofAdvice {
            values: Vec::with_capacity(self.committed.len()),
            columns: Vec::with_capacity(self.committed.len()),
        };
        for c in self.committed {
            let (values, committed) = c.ok_or(PlonkError::Synthesis(Error::Synthesis))?;
            advice.values.push(values);
            advice.columns.push(committed.into());
        }
        Ok(advice)
    }

    pub(super) fn n(&self) -> usize {
        self.n
    }
}

/// The instance values the circuit reads, and the phase steps, go through this.
impl<T, E> Assignment<Fr> for WitnessAssignment<'_, '_, '_, T, E>
where
    E: EncodedChallenge<G1Affine>,
    T: TranscriptWrite<G1Affine, E>,
{
    fn enter_region<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn exit_region(&mut self) {}

    fn enable_selector<A, AR>(&mut self, _: A, _: &Selector, _: usize) -> Result<(), Error>
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        Ok(())
    }

    fn annotate_column<A, AR>(&mut self, _: A, _: Column<Any>)
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
    }

    fn query_instance(&self, column: Column<Instance>, row: usize) -> Result<Value<Fr>, Error> {
        let w = &*self.witness;
        if row >= w.usable_rows {
            return Err(Error::NotEnoughRowsAvailable { current_k: w.k });
        }
        w.instances
            .get(column.index())
            .and_then(|c| c.get(row))
            .map(|v| Value::known(*v))
            .ok_or(Error::BoundsFailure)
    }

    fn assign_advice<'v>(
        &mut self,
        column: Column<Advice>,
        row: usize,
        to: Value<Assigned<Fr>>,
    ) -> Value<&'v Assigned<Fr>> {
        let w = &mut *self.witness;
        let usable = w.usable_rows;
        let phase = w.column_phase.get(column.index()).copied();
        if phase.is_some_and(|p| p != w.phase) && row < usable {
            // Another phase's column: an earlier one is settled already, a later one's values
            // are unknown until its challenges are squeezed (synthesis runs again then).
            return Value::unknown();
        }
        let Some(cell) = w
            .advice
            .get_mut(column.index())
            .and_then(|c| c.get_mut(row))
            .filter(|_| row < usable)
        else {
            // Past the usable rows: the trait cannot fail here, so the proof does (a row the
            // circuit should not have used) after synthesis.
            if w.error.is_none() {
                w.error = Some(PlonkError::Synthesis(Error::NotEnoughRowsAvailable {
                    current_k: w.k,
                }));
            }
            return Value::unknown();
        };
        let mut known = None;
        let _ = to.map(|v| known = Some(v));
        let Some(value) = known else {
            // The current phase's values must be known.
            if w.error.is_none() {
                w.error = Some(PlonkError::Synthesis(Error::Synthesis));
            }
            return Value::unknown();
        };
        *cell = value;
        // The trait hands back a reference that outlives this borrow (`'v`); halo2-axiom's own
        // collection makes one with `unsafe`, which this workspace forbids. The value is handed
        // back unknown instead: a circuit that derives witness values from assigned cells
        // rather than from its own inputs then assigns an unknown value, which is refused above
        // with a typed error, never proven wrong. Keel's circuits and halo2-base's builder lay
        // out values they computed beforehand.
        Value::unknown()
    }

    fn assign_fixed(&mut self, _: Column<Fixed>, _: usize, _: Assigned<Fr>) {}

    fn copy(&mut self, _: Column<Any>, _: usize, _: Column<Any>, _: usize) {}

    fn fill_from_row(
        &mut self,
        _: Column<Fixed>,
        _: usize,
        _: Value<Assigned<Fr>>,
    ) -> Result<(), Error> {
        Ok(())
    }

    fn get_challenge(&self, challenge: Challenge) -> Value<Fr> {
        self.witness
            .challenges
            .get(&challenge.index())
            .copied()
            .map(Value::known)
            .unwrap_or_else(Value::unknown)
    }

    fn push_namespace<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn pop_namespace(&mut self, _: Option<String>) {}

    fn next_phase(&mut self) {
        if self.witness.error.is_some() {
            return;
        }
        let stepped = match self.ctx.as_deref_mut() {
            Some(ctx) => self.witness.finish_phase::<T, E>(ctx),
            // Synthesis apart from the proof is for one-phase circuits only.
            None => Err(PlonkError::SeveralPhases {
                phases: self.witness.phase + 2,
            }),
        };
        if let Err(e) = stepped {
            self.witness.error = Some(e);
        }
    }
}

/// [`Witness`] as an [`Assignment`] for transcripts of encoding `E`: with the proof's context,
/// a phase step commits the phase and squeezes its challenges; without one (synthesis apart
/// from the proof), the first phase is all there is.
pub(super) struct WitnessAssignment<'w, 'c, 'a, T, E> {
    pub witness: &'w mut Witness,
    pub ctx: Option<&'c mut PhaseCtx<'a, T>>,
    pub encoding: std::marker::PhantomData<fn() -> E>,
}

/// The number of phases the constraint system uses.
pub(super) fn phases(cs: &ConstraintSystem<Fr>) -> u8 {
    cs.advice_column_phase()
        .iter()
        .chain(cs.challenge_phase().iter())
        .copied()
        .max()
        .map_or(1, |p| p + 1)
}

/// Curve points to affine, in one batch.
pub(super) fn to_affine(points: &[halo2_proofs::halo2curves::bn256::G1]) -> Vec<G1Affine> {
    let mut affine = vec![G1Affine::default(); points.len()];
    halo2_proofs::halo2curves::bn256::G1::batch_normalize(points, &mut affine);
    affine
}
