//! The batch validity circuit: custom gates on halo2-axiom.
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
//! | module | what |
//! |---|---|
//! | `config` | columns and gates (degree 6) |
//! | `layout` | where cells go: the main stream of fixed-shape blocks, the glue stream |
//! | `poseidon` | the permutation chip (17 rows × 7 cells) and sponges |
//! | `merkle` | the update gadget: old and new root from one set of siblings and bits |
//! | `ecc` | the Schnorr check: variable-base and fixed-base multiplications, complete additions |
//! | `arith` | the generic gate's operations and range checks by lookup |
//! | `table` | the lookup table (range limbs, fixed-base windows) |
//! | `batch` | the slot: the rules of the STF as bits |
//! | `input` | the witness read into slots |

mod arith;
mod batch;
mod config;
mod ecc;
mod input;
mod layout;
mod merkle;
mod poseidon;
mod table;

use halo2_base::halo2_proofs::{
    circuit::{Cell as HaloCell, Layouter, Region, SimpleFloorPlanner, Value},
    dev::{MockProver, VerifyFailure},
    plonk::{Any, Circuit, Column, ConstraintSystem, Error},
};
use keel_state::{BatchWitness, Fr};
use serde::{Deserialize, Serialize};

pub use config::BatchConfig;
pub(crate) use input::CircuitInput;
pub use input::PublicInputs;
use layout::{Layout, Pos, Sel, Sink, W};
pub use layout::{Tag, Tamper};

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
    #[error("the circuit needs {rows} rows, 2^{k} holds {usable}; help: use a larger k (`Shape::fit` finds the smallest)")]
    TooSmall {
        /// The `k` asked for.
        k: u32,
        /// Rows the layout needs.
        rows: usize,
        /// Rows `2^k` offers after halo2's blinding rows.
        usable: usize,
    },
    /// MockProver found unsatisfied constraints.
    #[error("the circuit is not satisfied: {0}")]
    Unsatisfied(String),
}

/// The fixed shape of a batch circuit, chosen at key generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Operations per batch (shorter batches are padded).
    pub capacity: usize,
    /// State tree depth.
    pub depth: u8,
    /// log2 of the number of rows.
    pub k: u32,
}

/// The constraint system, as configured (for counts and the wiring digest).
pub(crate) fn constraint_system() -> (ConstraintSystem<Fr>, BatchConfig) {
    let mut cs = ConstraintSystem::default();
    let config = BatchConfig::configure(&mut cs);
    (cs, config)
}

/// Rows halo2 keeps out of reach at the end of the domain (blinding factors and `l_last`).
pub fn reserved_rows() -> usize {
    constraint_system().0.blinding_factors() + 1
}

/// Why text is not a [`Shape`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a shape: fill-D@k (as many operations at depth D as 2^k rows hold), NxD@k or NxD (the smallest k that holds them)")]
pub struct BadShape(pub String);

impl std::str::FromStr for Shape {
    type Err = BadShape;

    /// `fill-D@k`, `NxD@k` or `NxD`: how benchmarks and `keel bench` name a circuit. The text
    /// is read, not checked against what a circuit can hold.
    fn from_str(s: &str) -> Result<Self, BadShape> {
        let bad = || BadShape(s.to_owned());
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("fill-") {
            let (d, k) = rest.split_once('@').ok_or_else(bad)?;
            return Ok(Shape::fill(
                d.parse().map_err(|_| bad())?,
                k.parse().map_err(|_| bad())?,
            ));
        }
        let (nd, k) = match s.split_once('@') {
            Some((nd, k)) => (nd, Some(k.parse().map_err(|_| bad())?)),
            None => (s, None),
        };
        let (n, d) = nd.split_once('x').ok_or_else(bad)?;
        let (capacity, depth) = (n.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        Ok(match k {
            Some(k) => Shape { capacity, depth, k },
            None => Shape::fit(capacity, depth),
        })
    }
}

impl Shape {
    /// The smallest `k` whose rows hold the layout (and the lookup table).
    pub fn fit(capacity: usize, depth: u8) -> Self {
        let mut shape = Self {
            capacity,
            depth,
            k: 1,
        };
        let need = shape.statistics().rows_needed;
        while (1usize << shape.k) < need {
            shape.k += 1;
        }
        shape
    }

    /// The largest capacity whose layout fits `2^k` rows at `depth` (at least 1, whatever `k`).
    pub fn fill(depth: u8, k: u32) -> Self {
        let fits = |capacity: usize| {
            let s = Self { capacity, depth, k };
            s.statistics().rows_needed <= 1usize << k
        };
        // every slot has the same rows: estimate from one, then settle by trying
        let per = Self::per_operation(depth).rows.max(1);
        let mut capacity = ((1usize << k) / per).max(1);
        while capacity > 1 && !fits(capacity) {
            capacity -= 1;
        }
        while fits(capacity + 1) {
            capacity += 1;
        }
        Self { capacity, depth, k }
    }

    /// Rows `2^k` offers a layout.
    pub fn usable_rows(&self) -> usize {
        (1usize << self.k).saturating_sub(reserved_rows())
    }

    /// The layout for `input`.
    pub(crate) fn layout(&self, input: &CircuitInput) -> Layout {
        let mut l = Layout::default();
        batch::synthesize(&mut l, self.depth, input);
        l
    }

    /// Lays out the blank circuit and reports its size.
    pub fn statistics(&self) -> Statistics {
        let layout = self.layout(&CircuitInput::blank(self));
        let rows = layout.total_rows();
        let table = table::rows().len();
        let (cs, config) = constraint_system();
        let reserved = cs.blinding_factors() + 1;
        let rows_needed = rows.max(table).max(layout.constant_rows()) + reserved;
        // the fixed columns keygen makes: halo2 combines selectors that are never on together
        let n = rows_needed.next_power_of_two();
        let mut sink = SelectorSink {
            config: &config,
            on: vec![vec![false; n]; cs.num_selectors()],
        };
        layout.emit(&mut sink, &[]);
        let fixed_columns = cs.clone().compress_selectors(sink.on).0.num_fixed_columns();
        Statistics {
            rows,
            fixed_columns,
            advice_columns: cs.num_advice_columns(),
            advice_cells: rows * W,
            glue_rows: layout.glue_stream_rows(),
            constants: layout.constant_rows(),
            copies: layout.copy_count(),
            table_rows: table,
            lookups: cs.lookups().len(),
            degree: cs.degree(),
            rows_needed,
            rows_by: {
                let mut v: Vec<_> = layout.rows_by.iter().map(|(k, v)| (*k, *v)).collect();
                v.sort();
                v
            },
        }
    }

    /// The layout of one operation: what a slot adds to the circuit (the difference between
    /// capacity 2 and capacity 1 of this depth, so shared constants are not counted).
    pub fn per_operation(depth: u8) -> Statistics {
        let one = Self {
            capacity: 1,
            depth,
            k: 1,
        }
        .statistics();
        let two = Self {
            capacity: 2,
            depth,
            k: 1,
        }
        .statistics();
        let mut rows_by = two.rows_by.clone();
        for (k, v) in &mut rows_by {
            let before = one
                .rows_by
                .iter()
                .find(|(n, _)| n == k)
                .map_or(0, |(_, r)| *r);
            *v -= before;
        }
        Statistics {
            rows: two.rows - one.rows,
            advice_cells: (two.rows - one.rows) * W,
            glue_rows: two.glue_rows - one.glue_rows,
            constants: two.constants - one.constants,
            copies: two.copies - one.copies,
            rows_by,
            ..two
        }
    }

    /// Runs halo2's MockProver on `witness` against `public` (normally
    /// `PublicInputs::of(&witness.batch)`; tests pass altered ones).
    pub fn mock_prove(
        &self,
        witness: &BatchWitness,
        public: &PublicInputs,
    ) -> Result<(), CircuitError> {
        let input = CircuitInput::from_witness(self, witness)?;
        self.mock_prove_input(&input, public, &[])
    }

    /// [`Self::mock_prove`] with cells altered as a cheating prover would.
    pub fn mock_prove_tampered(
        &self,
        witness: &BatchWitness,
        public: &PublicInputs,
        tamper: &[Tamper],
    ) -> Result<(), CircuitError> {
        let input = CircuitInput::from_witness(self, witness)?;
        self.mock_prove_input(&input, public, tamper)
    }

    /// The values of the cells tagged `tag` in the honest layout of `witness`, in layout order.
    pub fn tagged_values(&self, witness: &BatchWitness, tag: Tag) -> Result<Vec<Fr>, CircuitError> {
        let input = CircuitInput::from_witness(self, witness)?;
        Ok(self.layout(&input).tagged(tag))
    }

    /// [`Self::mock_prove`] on slots already read (tests alter them as a cheating prover would).
    pub(crate) fn mock_prove_input(
        &self,
        input: &CircuitInput,
        public: &PublicInputs,
        tamper: &[Tamper],
    ) -> Result<(), CircuitError> {
        let circuit = BatchCircuit::new(*self, input.clone())?.tampered(tamper);
        let prover = MockProver::run(self.k, &circuit, vec![public.to_vec()]).map_err(|_| {
            CircuitError::TooSmall {
                k: self.k,
                rows: circuit.layout.total_rows(),
                usable: self.usable_rows(),
            }
        })?;
        prover.verify().map_err(|failures| {
            // what failed, without where: one line per gate constraint, lookup or copy
            let mut what: Vec<String> = Vec::new();
            for f in &failures {
                let s = match f {
                    VerifyFailure::ConstraintNotSatisfied { constraint, .. } => {
                        constraint.to_string()
                    }
                    VerifyFailure::Lookup { name, .. } => format!("lookup '{name}'"),
                    VerifyFailure::Permutation { .. } => "a copy constraint".to_string(),
                    other => other.to_string(),
                };
                if !what.contains(&s) {
                    what.push(s);
                }
            }
            CircuitError::Unsatisfied(format!(
                "{} failure(s): {}",
                failures.len(),
                what.join("; ")
            ))
        })
    }
}

/// The size of a circuit's layout.
#[derive(Clone, Debug, Serialize)]
pub struct Statistics {
    /// Rows the layout uses.
    pub rows: usize,
    /// Advice columns.
    pub advice_columns: usize,
    /// Fixed columns, after halo2 combines the selectors (coefficients, constants, the lookup
    /// table's four, selectors).
    pub fixed_columns: usize,
    /// Advice cells: rows × advice columns (the area, used or not).
    pub advice_cells: usize,
    /// Rows of the glue stream (generic gate, range checks, loaded values).
    pub glue_rows: usize,
    /// Constants copied from the constants column.
    pub constants: usize,
    /// Copy constraints.
    pub copies: usize,
    /// Rows of the lookup table.
    pub table_rows: usize,
    /// Lookup arguments.
    pub lookups: usize,
    /// The constraint system's degree (the extended domain is the next power of two above
    /// `(degree − 1)·2^k`).
    pub degree: usize,
    /// Rows `2^k` must hold: the layout, the table, halo2's reserved rows.
    pub rows_needed: usize,
    /// Rows per gadget.
    pub rows_by: Vec<(&'static str, usize)>,
}

/// The batch circuit for halo2: a shape, the slots' input, and (in tests) cells to alter.
#[derive(Clone)]
pub struct BatchCircuit {
    shape: Shape,
    layout: std::sync::Arc<Layout>,
    tamper: Vec<Tamper>,
}

impl std::fmt::Debug for BatchCircuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchCircuit")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl BatchCircuit {
    /// The circuit of `input` in `shape`; refuses a layout that does not fit `2^k`.
    pub(crate) fn new(shape: Shape, input: CircuitInput) -> Result<Self, CircuitError> {
        let layout = shape.layout(&input);
        let rows = layout
            .total_rows()
            .max(layout.constant_rows())
            .max(table::rows().len());
        if rows > shape.usable_rows() {
            return Err(CircuitError::TooSmall {
                k: shape.k,
                rows,
                usable: shape.usable_rows(),
            });
        }
        Ok(Self {
            shape,
            layout: std::sync::Arc::new(layout),
            tamper: Vec::new(),
        })
    }

    /// The blank circuit (all padding) for key generation.
    pub fn blank(shape: Shape) -> Result<Self, CircuitError> {
        Self::new(shape, CircuitInput::blank(&shape))
    }

    /// This circuit with cells altered as a cheating prover would: what a prover's tests prove
    /// to show that such a proof is refused.
    pub fn tampered(mut self, tamper: &[Tamper]) -> Self {
        self.tamper = tamper.to_vec();
        self
    }

    /// The public inputs the layout computes, in instance order.
    pub(crate) fn computed_public(&self) -> Vec<Fr> {
        self.layout.exposed()
    }

    /// A digest of everything the circuit fixes: its gates and columns, the lookup table, and the
    /// blank layout's fixed values, selectors and copy constraints. Keys made for another
    /// wiring never match it.
    pub fn wiring_digest(shape: Shape) -> Result<String, CircuitError> {
        let blank = Self::blank(shape)?;
        let (cs, _) = constraint_system();
        let mut sink = DigestSink::new();
        sink.h.update(format!("{:?}", cs.pinned()).as_bytes());
        sink.h.update(&(shape.k as u64).to_le_bytes());
        for row in table::rows() {
            for v in row {
                sink.h.update(&ff_bytes(&v));
            }
        }
        blank.layout.emit(&mut sink, &[]);
        Ok(hex::encode(sink.h.finalize().as_bytes()))
    }
}

fn ff_bytes(v: &Fr) -> [u8; 32] {
    use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
    v.to_repr()
}

impl Circuit<Fr> for BatchCircuit {
    type Config = BatchConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        Self::blank(self.shape).expect("the blank circuit of a shape that fits fits")
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> BatchConfig {
        BatchConfig::configure(meta)
    }

    fn synthesize(&self, config: BatchConfig, layouter: impl Layouter<Fr>) -> Result<(), Error> {
        synthesize_layout(&config, layouter, &self.layout, &self.tamper)
    }
}

/// Assigns the lookup table and `layout` (with `tamper` applied) through halo2's layouter.
pub(crate) fn synthesize_layout(
    config: &BatchConfig,
    mut layouter: impl Layouter<Fr>,
    layout: &Layout,
    tamper: &[Tamper],
) -> Result<(), Error> {
    {
        layouter.assign_table(
            || "lookup table",
            |mut t| {
                for (i, row) in table::rows().iter().enumerate() {
                    for (c, v) in row.iter().enumerate() {
                        t.assign_cell(|| "table", config.table[c], i, || Value::known(*v))?;
                    }
                }
                Ok(())
            },
        )?;
        layouter.assign_region(
            || "batch",
            |region| {
                let mut sink = RegionSink { region, config };
                layout.emit(&mut sink, tamper);
                Ok(())
            },
        )
    }
}

struct RegionSink<'a, 'r> {
    region: Region<'r, Fr>,
    config: &'a BatchConfig,
}

impl RegionSink<'_, '_> {
    fn cell(&self, p: Pos) -> HaloCell {
        let (column, row_offset): (Column<Any>, usize) = match p {
            Pos::Advice { col, row } => (self.config.advice[col].into(), row),
            Pos::Constant { row } => (self.config.constants.into(), row),
            Pos::Instance { row } => (self.config.instance.into(), row),
        };
        HaloCell { row_offset, column }
    }
}

impl Sink for RegionSink<'_, '_> {
    fn advice(&mut self, col: usize, row: usize, value: Fr) {
        self.region
            .assign_advice(self.config.advice[col], row, Value::known(value));
    }
    fn coefficient(&mut self, col: usize, row: usize, value: Fr) {
        self.region.assign_fixed(self.config.k[col], row, value);
    }
    fn constant(&mut self, row: usize, value: Fr) {
        self.region.assign_fixed(self.config.constants, row, value);
    }
    fn enable(&mut self, sel: Sel, row: usize) {
        self.config
            .selector(sel)
            .enable(&mut self.region, row)
            .expect("a selector row within the circuit");
    }
    fn copy(&mut self, a: Pos, b: Pos) {
        let (a, b) = (self.cell(a), self.cell(b));
        self.region.constrain_equal(a, b);
    }
}

/// Records which selectors are on where.
struct SelectorSink<'a> {
    config: &'a BatchConfig,
    on: Vec<Vec<bool>>,
}

impl Sink for SelectorSink<'_> {
    fn advice(&mut self, _: usize, _: usize, _: Fr) {}
    fn coefficient(&mut self, _: usize, _: usize, _: Fr) {}
    fn constant(&mut self, _: usize, _: Fr) {}
    fn enable(&mut self, sel: Sel, row: usize) {
        self.on[self.config.selector(sel).index()][row] = true;
    }
    fn copy(&mut self, _: Pos, _: Pos) {}
}

/// Hashes everything but the advice values.
struct DigestSink {
    h: blake2b_simd::State,
}

impl DigestSink {
    fn new() -> Self {
        Self {
            h: blake2b_simd::Params::new()
                .hash_length(32)
                .personal(b"keel/wiring")
                .to_state(),
        }
    }
}

impl Sink for DigestSink {
    fn advice(&mut self, _: usize, _: usize, _: Fr) {}
    fn coefficient(&mut self, col: usize, row: usize, value: Fr) {
        self.h.update(&[b'k', col as u8]);
        self.h.update(&(row as u64).to_le_bytes());
        self.h.update(&ff_bytes(&value));
    }
    fn constant(&mut self, row: usize, value: Fr) {
        self.h.update(b"c");
        self.h.update(&(row as u64).to_le_bytes());
        self.h.update(&ff_bytes(&value));
    }
    fn enable(&mut self, sel: Sel, row: usize) {
        self.h.update(format!("s{sel:?}").as_bytes());
        self.h.update(&(row as u64).to_le_bytes());
    }
    fn copy(&mut self, a: Pos, b: Pos) {
        self.h.update(format!("{a:?}={b:?}").as_bytes());
    }
}

#[cfg(test)]
mod gadget_tests;

#[cfg(test)]
mod shape_text {
    use super::*;

    #[test]
    fn shapes_read_from_text_and_anything_else_is_refused() {
        let exact: Shape = "12x8@14".parse().unwrap();
        assert_eq!(
            exact,
            Shape {
                capacity: 12,
                depth: 8,
                k: 14
            }
        );
        assert_eq!("3x8".parse::<Shape>().unwrap(), Shape::fit(3, 8));
        assert_eq!("fill-8@14".parse::<Shape>().unwrap(), Shape::fill(8, 14));
        for bad in [
            "",
            "12",
            "x8@14",
            "12x@14",
            "fill-8",
            "fill-x@14",
            "12x8@",
            "12y8@14",
        ] {
            assert!(bad.parse::<Shape>().is_err(), "{bad:?}");
        }
    }
}
