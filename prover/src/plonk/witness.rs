//! Witness collection: the circuit's own synthesis, run against an [`Assignment`] that keeps
//! only the advice values, and the phase steps between (commit the phase's advice columns,
//! squeeze its challenges) that a multi-phase circuit needs.

use std::collections::HashMap;

use halo2_proofs::{
    circuit::Value,
    halo2curves::{
        bn256::{Fr, G1Affine},
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
    backend::{Backend, Basis},
    PlonkError,
};

/// What a phase step needs: the backend, the transcript and the randomness.
pub(super) struct PhaseCtx<'a, T> {
    pub backend: &'a dyn Backend,
    pub transcript: &'a mut T,
    pub rng: &'a mut (dyn RngCore + Send + Sync),
}

/// The advice of one circuit as synthesis leaves it.
pub(super) struct Witness<'a, T> {
    k: u32,
    usable_rows: usize,
    n: usize,
    advice: Vec<Vec<Assigned<Fr>>>,
    /// Advice columns already committed, by phase, as field elements (blinding rows filled).
    pub committed: Vec<Option<Vec<Fr>>>,
    instances: &'a [&'a [Fr]],
    pub challenges: HashMap<usize, Fr>,
    pub phase: u8,
    column_phase: Vec<u8>,
    challenge_phase: Vec<u8>,
    ctx: PhaseCtx<'a, T>,
    /// The first failure of a phase step (the trait's `next_phase` cannot return one).
    pub error: Option<PlonkError>,
    _encoding: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T> Witness<'a, T> {
    pub(super) fn new(
        cs: &ConstraintSystem<Fr>,
        k: u32,
        instances: &'a [&'a [Fr]],
        ctx: PhaseCtx<'a, T>,
    ) -> Self {
        let n = 1usize << k;
        Self {
            k,
            usable_rows: n - (cs.blinding_factors() + 1),
            n,
            advice: vec![vec![Assigned::Zero; n]; cs.num_advice_columns()],
            committed: vec![None; cs.num_advice_columns()],
            instances,
            challenges: HashMap::new(),
            phase: 0,
            column_phase: cs.advice_column_phase(),
            challenge_phase: cs.challenge_phase(),
            ctx,
            error: None,
            _encoding: std::marker::PhantomData,
        }
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

impl<T> Witness<'_, T> {
    /// The phase step: the current phase's advice columns to field elements, their blinding
    /// rows random, committed (Lagrange basis) into the transcript; then the phase's
    /// challenges squeezed.
    pub(super) fn finish_phase<E>(&mut self) -> Result<(), PlonkError>
    where
        E: EncodedChallenge<G1Affine>,
        T: TranscriptWrite<G1Affine, E>,
    {
        let phase = self.phase;
        let columns: Vec<usize> = (0..self.advice.len())
            .filter(|&c| self.column_phase[c] == phase)
            .collect();
        let mut values: Vec<Vec<Fr>> = columns
            .iter()
            .map(|&c| invert_assigned(&self.advice[c]))
            .collect();
        for v in &mut values {
            for cell in &mut v[self.usable_rows..] {
                *cell = Fr::random(&mut self.ctx.rng);
            }
        }
        let points = values
            .iter()
            .map(|v| self.ctx.backend.msm(Basis::Lagrange, v))
            .collect::<Result<Vec<_>, _>>()?;
        for p in to_affine(&points) {
            self.ctx.transcript.write_point(p)?;
        }
        for (c, v) in columns.into_iter().zip(values) {
            self.committed[c] = Some(v);
        }
        for (index, &p) in self.challenge_phase.iter().enumerate() {
            if p == phase {
                let c = *self.ctx.transcript.squeeze_challenge_scalar::<()>();
                self.challenges.insert(index, c);
            }
        }
        self.phase += 1;
        Ok(())
    }

    /// Column values of phase-complete columns, in column order.
    pub(super) fn into_advice(self) -> Result<Vec<Vec<Fr>>, PlonkError> {
        self.committed
            .into_iter()
            .map(|c| c.ok_or(PlonkError::Synthesis(Error::Synthesis)))
            .collect()
    }

    pub(super) fn n(&self) -> usize {
        self.n
    }
}

/// The instance values the circuit reads, and the phase steps, go through this.
impl<T, E> Assignment<Fr> for WitnessAssignment<'_, '_, T, E>
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
        let w = &self.0;
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
        let w = &mut *self.0;
        let usable = w.usable_rows;
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
            // A later phase's column is unknown until its challenges are squeezed: synthesis
            // runs again then. The current phase's must be known.
            if column.column_type().phase() <= w.phase && w.error.is_none() {
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
        self.0
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
        if self.0.error.is_some() {
            return;
        }
        if let Err(e) = self.0.finish_phase::<E>() {
            self.0.error = Some(e);
        }
    }
}

/// [`Witness`] as an [`Assignment`] for transcripts of encoding `E`.
pub(super) struct WitnessAssignment<'w, 'a, T, E>(
    pub &'w mut Witness<'a, T>,
    pub std::marker::PhantomData<fn() -> E>,
);

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
