//! The batch validity circuit (halo2-axiom + halo2-base).
//!
//! A circuit of [`Shape`] `(capacity N, depth D, k)` proves that a batch of at most `N`
//! operations over a depth-`D` state tree takes `prev_root` to `new_root` by exactly the rules of
//! `keel_state::stf`, consuming the L1 queue from `queue_before` to `queue_after`, and that its
//! operations are the ones `data_commitment` commits to. The public inputs are
//! [`PublicInputs`], in DESIGN.md's order.
//!
//! ```text
//!  BatchWitness (keel-state) ──CircuitInput::from_witness──▶ N slots (ops, then padding)
//!        │                                                    │ batch.rs: one slot per op
//!        ▼                                                    ▼
//!  PublicInputs::of(batch)  ═══ instance column ═══  prev_root … queue_after (computed)
//! ```
//!
//! `ecc` holds the in-circuit Grumpkin arithmetic and the Schnorr check; `input` reads the
//! witness; `batch` lays out the slots.

mod batch;
mod ecc;
mod input;

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
    },
    halo2_proofs::dev::MockProver,
};
use keel_state::{BatchWitness, Fr};

pub(crate) use input::CircuitInput;
pub use input::PublicInputs;

/// Rows that halo2 keeps for blinding factors; halo2-base leaves them free.
pub const BLINDING_ROWS: usize = 9;

/// Why a circuit could not be built for a witness.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    /// The witness is for another tree depth.
    #[error("the circuit is for a tree of depth {circuit}, the witness has depth {witness}")]
    Depth {
        /// The circuit's depth.
        circuit: u8,
        /// The witness's depth.
        witness: u8,
    },
    /// More operations than the circuit's capacity.
    #[error("the batch has {ops} operations, the circuit holds {capacity}")]
    Capacity {
        /// The circuit's capacity.
        capacity: usize,
        /// Operations in the batch.
        ops: usize,
    },
    /// The witness does not have the shape `keel_state::witness` documents.
    #[error("witness of operation {op} is malformed: {what}")]
    Witness {
        /// Operation position.
        op: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The layout does not fit `2^k` rows.
    #[error("the circuit needs more than 2^{k} rows; help: use a larger k")]
    TooSmall {
        /// The `k` asked for.
        k: u32,
    },
    /// MockProver found unsatisfied constraints.
    #[error("the circuit is not satisfied: {0}")]
    Unsatisfied(String),
}

/// The fixed shape of a batch circuit, chosen at key generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Operations per batch (shorter batches are padded).
    pub capacity: usize,
    /// State tree depth.
    pub depth: u8,
    /// log2 of the number of rows.
    pub k: u32,
}

impl Shape {
    /// Range-check lookup table size: `2^(k−1)` rows.
    pub fn lookup_bits(&self) -> usize {
        self.k as usize - 1
    }

    /// The smallest `k` (at least 10) whose layout uses at most `max_columns` advice columns.
    pub fn fit(capacity: usize, depth: u8, max_columns: usize) -> Self {
        let mut shape = Self {
            capacity,
            depth,
            k: 10,
        };
        loop {
            let stats = shape.statistics();
            if stats.params.num_advice_per_phase[0] <= max_columns {
                return shape;
            }
            shape.k += 1;
        }
    }

    /// Lays out the blank circuit and reports its size.
    pub fn statistics(&self) -> Statistics {
        let mut b = self.builder(CircuitBuilderStage::Keygen, &CircuitInput::blank(self));
        let stats = b.statistics();
        let params = b.calculate_params(Some(BLINDING_ROWS));
        Statistics {
            advice_cells: stats.gate.total_advice_per_phase[0],
            lookup_cells: stats.total_lookup_advice_per_phase[0],
            fixed_cells: stats.gate.total_fixed,
            params,
        }
    }

    /// A builder at `stage` with the circuit laid out for `input` (auto-configured).
    pub(crate) fn builder(
        &self,
        stage: CircuitBuilderStage,
        input: &CircuitInput,
    ) -> BaseCircuitBuilder<Fr> {
        let mut b = BaseCircuitBuilder::from_stage(stage)
            .use_k(self.k as usize)
            .use_lookup_bits(self.lookup_bits())
            .use_instance_columns(1);
        batch::synthesize(&mut b, self.depth, input);
        b
    }

    /// A builder for the real prover with a pinned configuration.
    pub(crate) fn prover_builder(
        &self,
        params: BaseCircuitParams,
        break_points: MultiPhaseThreadBreakPoints,
        input: &CircuitInput,
    ) -> BaseCircuitBuilder<Fr> {
        let mut b = BaseCircuitBuilder::prover(params, break_points);
        batch::synthesize(&mut b, self.depth, input);
        b
    }

    /// Runs halo2's MockProver on `witness` against `public` (normally
    /// `PublicInputs::of(&witness.batch)`; tests pass altered ones).
    pub fn mock_prove(
        &self,
        witness: &BatchWitness,
        public: &PublicInputs,
    ) -> Result<(), CircuitError> {
        let input = CircuitInput::from_witness(self, witness)?;
        self.mock_prove_input(&input, public)
    }

    /// [`Self::mock_prove`] on slots already read (tests alter them as a cheating prover would).
    pub(crate) fn mock_prove_input(
        &self,
        input: &CircuitInput,
        public: &PublicInputs,
    ) -> Result<(), CircuitError> {
        let mut b = self.builder(CircuitBuilderStage::Mock, input);
        b.calculate_params(Some(BLINDING_ROWS));
        let prover = MockProver::run(self.k, &b, vec![public.to_vec()])
            .map_err(|_| CircuitError::TooSmall { k: self.k })?;
        prover.verify().map_err(|failures| {
            let n = failures.len();
            let first = failures.first().map(|f| f.to_string()).unwrap_or_default();
            CircuitError::Unsatisfied(format!("{n} failure(s), first: {first}"))
        })
    }
}

/// The size of a circuit's layout.
#[derive(Clone, Debug)]
pub struct Statistics {
    /// Advice cells in the gate columns.
    pub advice_cells: usize,
    /// Cells copied to lookup columns for range checks.
    pub lookup_cells: usize,
    /// Fixed (constant) cells.
    pub fixed_cells: usize,
    /// The configuration halo2-base derives for `k`.
    pub params: BaseCircuitParams,
}
