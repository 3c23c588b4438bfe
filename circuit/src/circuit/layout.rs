//! Where every cell of the batch circuit goes: a small layouter of our own.
//!
//! The circuit has [`W`] advice columns. Gadgets place their cells as *virtual* cells (a value and
//! a place) in one of two streams of rows:
//!
//! ```text
//!  rows 0 ..            main stream: fixed-shape blocks (Poseidon permutations, the scalar
//!                       multiplications, complete additions), each a run of consecutive rows
//!  rows main_rows ..    glue stream: one generic arithmetic gate per row in columns 1..6, range
//!                       checks' running sums in column 0, loaded witness values
//! ```
//!
//! The glue stream's first row is known only once every block is placed, so glue cells are bound
//! to absolute rows at [`Layout::emit`], which hands every value, fixed value, selector and copy
//! constraint to a [`Sink`]: halo2's region, or a digest of the wiring. The same pass counts
//! rows and cells, so statistics come from the circuit itself.

use std::collections::HashMap;

use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use keel_state::Fr;

/// Advice columns.
pub(crate) const W: usize = 7;
/// Fixed coefficient columns `k0..k7` (`k7` is the lookup tag).
pub(crate) const K: usize = 8;

/// A virtual advice cell: an index into the layout's cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Cell(u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Main,
    Glue,
}

#[derive(Clone, Copy, Debug)]
struct Place {
    stream: Stream,
    col: u8,
    row: u32,
}

/// The selectors (one per gate), as the layout enables them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Sel {
    /// A permutation's first row: two full rounds from the raw input.
    PermFirst,
    /// Two full rounds.
    Full,
    /// Five partial rounds.
    Part5,
    /// Two partial rounds.
    Part2,
    /// A sponge absorbs two more inputs into the next permutation.
    Absorb,
    /// A tree level: the next permutation hashes the node with its sibling, ordered by the bit.
    Merkle,
    /// The first tree level: the node is the leaf hash times its `exists` bit.
    MerkleLeaf,
    /// The generic arithmetic gate.
    Glue,
    /// A range-check limb (lookup).
    Range,
    /// A fixed-base window's table point (lookup) and the digit running sum.
    FbWindow,
    /// The first fixed-base window: the accumulator starts at its point.
    FbFirst,
    /// A fixed-base window added with an incomplete addition.
    FbAdd,
    /// A double-and-add step of the variable-base multiplication.
    Var,
    /// The last incomplete step (its successor holds `y` explicitly).
    VarLast,
    /// The doubling that starts the variable-base chain.
    VarInit,
    /// A complete projective addition.
    Cadd,
}

/// What a cell holds, for tests that alter one cell as a cheating prover would, and for the
/// counts in the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Tag {
    /// Anything not named below.
    Plain,
    /// A Poseidon round's state or S-box input.
    PoseidonRound,
    /// A permutation's output.
    PoseidonOut,
    /// A Merkle level's sibling.
    MerkleSibling,
    /// A Merkle level's index bit.
    MerkleBit,
    /// The left input of a Merkle level's hash.
    MerkleLeft,
    /// The right input of a Merkle level's hash.
    MerkleRight,
    /// The variable-base multiplication's scalar running sum.
    VarZ,
    /// The variable-base accumulator's x.
    VarXA,
    /// The first slope of a double-and-add step.
    VarLambda1,
    /// The canonicity state of the challenge's decomposition.
    VarSigma,
    /// A fixed-base window digit.
    FbDigit,
    /// The fixed-base accumulator's x.
    FbXA,
    /// A complete addition's output.
    CaddOut,
    /// A range check's running sum.
    RangeZ,
    /// A glue gate's output.
    GlueOut,
}

/// A cheating prover's change to one cell: the `nth` cell (from 0, in layout order) tagged `tag`
/// gets `value`.
#[derive(Clone, Copy, Debug)]
pub struct Tamper {
    /// What kind of cell.
    pub tag: Tag,
    /// Which one of them.
    pub nth: usize,
    /// Its new value.
    pub value: Fr,
}

/// Where a copy constraint's end is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pos {
    /// An advice cell.
    Advice { col: usize, row: usize },
    /// The constants column.
    Constant { row: usize },
    /// The instance column.
    Instance { row: usize },
}

/// Receives the laid-out circuit.
pub(crate) trait Sink {
    /// An advice value.
    fn advice(&mut self, col: usize, row: usize, value: Fr);
    /// A value of fixed column `k{col}`.
    fn coefficient(&mut self, col: usize, row: usize, value: Fr);
    /// A value of the constants column.
    fn constant(&mut self, row: usize, value: Fr);
    /// A selector.
    fn enable(&mut self, sel: Sel, row: usize);
    /// A copy constraint.
    fn copy(&mut self, a: Pos, b: Pos);
}

/// The layout of a whole circuit, before it is handed to a sink.
#[derive(Default)]
pub(crate) struct Layout {
    values: Vec<Fr>,
    places: Vec<Place>,
    tags: Vec<Tag>,
    main_rows: usize,
    glue_rows: usize,
    z_rows: usize,
    selectors: Vec<(Sel, Stream, u32)>,
    fixed: Vec<(u8, Stream, u32, Fr)>,
    copies: Vec<(Cell, Cell)>,
    const_copies: Vec<(Cell, u32)>,
    constants: Vec<Fr>,
    const_index: HashMap<[u8; 32], u32>,
    const_cells: HashMap<[u8; 32], Cell>,
    instances: Vec<(Cell, u32)>,
    /// Loaded values waiting in a glue row: (row, next free column).
    load_row: Option<(u32, u8)>,
    /// Rows per gadget, for the statistics.
    pub(crate) rows_by: HashMap<&'static str, usize>,
}

impl Layout {
    /// The value of `c`.
    pub(crate) fn v(&self, c: Cell) -> Fr {
        self.values[c.0 as usize]
    }

    fn cell(&mut self, stream: Stream, col: usize, row: usize, value: Fr, tag: Tag) -> Cell {
        debug_assert!(col < W);
        let id = Cell(self.values.len() as u32);
        self.values.push(value);
        self.places.push(Place {
            stream,
            col: col as u8,
            row: row as u32,
        });
        self.tags.push(tag);
        id
    }

    // ---- the main stream ----

    /// Reserves `n` consecutive main rows for `gadget`; returns the first.
    pub(crate) fn rows(&mut self, n: usize, gadget: &'static str) -> usize {
        let start = self.main_rows;
        self.main_rows += n;
        *self.rows_by.entry(gadget).or_default() += n;
        start
    }

    /// A main-stream cell.
    pub(crate) fn put(&mut self, row: usize, col: usize, value: Fr, tag: Tag) -> Cell {
        self.cell(Stream::Main, col, row, value, tag)
    }

    /// A main-stream cell that copies `from`.
    pub(crate) fn put_copy(&mut self, row: usize, col: usize, from: Cell, tag: Tag) -> Cell {
        let c = self.put(row, col, self.v(from), tag);
        self.eq(c, from);
        c
    }

    /// Enables `sel` on main row `row`.
    pub(crate) fn enable(&mut self, sel: Sel, row: usize) {
        self.selectors.push((sel, Stream::Main, row as u32));
    }

    /// Sets `k{col}` on main row `row`.
    pub(crate) fn coefficient(&mut self, col: usize, row: usize, value: Fr) {
        self.fixed
            .push((col as u8, Stream::Main, row as u32, value));
    }

    // ---- the glue stream ----

    /// A new glue row (its gate enabled); returns its index in the glue stream.
    pub(crate) fn glue_row(&mut self) -> usize {
        let row = self.glue_rows;
        self.glue_rows += 1;
        self.selectors.push((Sel::Glue, Stream::Glue, row as u32));
        row
    }

    /// A glue-stream cell.
    pub(crate) fn gput(&mut self, row: usize, col: usize, value: Fr, tag: Tag) -> Cell {
        self.cell(Stream::Glue, col, row, value, tag)
    }

    /// Sets `k{col}` on glue row `row`.
    pub(crate) fn gcoefficient(&mut self, col: usize, row: usize, value: Fr) {
        self.fixed
            .push((col as u8, Stream::Glue, row as u32, value));
    }

    /// Enables `sel` on glue row `row`.
    pub(crate) fn genable(&mut self, sel: Sel, row: usize) {
        self.selectors.push((sel, Stream::Glue, row as u32));
    }

    /// `n` consecutive rows of column 0 in the glue stream (range checks' running sums).
    pub(crate) fn z_rows(&mut self, n: usize) -> usize {
        let start = self.z_rows;
        self.z_rows += n;
        start
    }

    /// A witness value in a free glue cell (no gate reads it where it is).
    pub(crate) fn load(&mut self, value: Fr) -> Cell {
        let (row, col) = match self.load_row {
            Some((row, col)) if (col as usize) < W => (row, col),
            _ => {
                // a row with no glue gate: columns 1..6 hold loaded values
                let row = self.glue_rows as u32;
                self.glue_rows += 1;
                (row, 1)
            }
        };
        self.load_row = Some((row, col + 1));
        self.gput(row as usize, col as usize, value, Tag::Plain)
    }

    // ---- constants, copies, public inputs ----

    /// Constrains `a = b`.
    pub(crate) fn eq(&mut self, a: Cell, b: Cell) {
        if a != b {
            self.copies.push((a, b));
        }
    }

    fn constant_row(&mut self, value: Fr) -> u32 {
        let key = value.to_repr();
        if let Some(row) = self.const_index.get(&key) {
            return *row;
        }
        let row = self.constants.len() as u32;
        self.constants.push(value);
        self.const_index.insert(key, row);
        row
    }

    /// Constrains `a` to the constant `value`.
    pub(crate) fn eq_const(&mut self, a: Cell, value: Fr) {
        let row = self.constant_row(value);
        self.const_copies.push((a, row));
    }

    /// A cell holding the constant `value` (one per value, shared).
    pub(crate) fn constant(&mut self, value: Fr) -> Cell {
        let key = value.to_repr();
        if let Some(c) = self.const_cells.get(&key) {
            return *c;
        }
        let c = self.load(value);
        self.eq_const(c, value);
        self.const_cells.insert(key, c);
        c
    }

    /// Exposes `a` as public input `row`.
    pub(crate) fn expose(&mut self, a: Cell, row: usize) {
        self.instances.push((a, row as u32));
    }

    // ---- output ----

    /// Rows used: the main stream, then the glue stream.
    pub(crate) fn total_rows(&self) -> usize {
        self.main_rows + self.glue_rows.max(self.z_rows)
    }

    /// Rows of the constants column.
    pub(crate) fn constant_rows(&self) -> usize {
        self.constants.len()
    }

    /// Rows of the glue stream.
    pub(crate) fn glue_stream_rows(&self) -> usize {
        self.glue_rows.max(self.z_rows)
    }

    /// Copy constraints.
    pub(crate) fn copy_count(&self) -> usize {
        self.copies.len() + self.const_copies.len() + self.instances.len()
    }

    /// Hands everything to `sink`, with `tamper` applied to the values.
    pub(crate) fn emit(&self, sink: &mut impl Sink, tamper: &[Tamper]) {
        let glue_base = self.main_rows as u32;
        let abs = |p: &Place| -> usize {
            (match p.stream {
                Stream::Main => p.row,
                Stream::Glue => glue_base + p.row,
            }) as usize
        };
        let mut seen: HashMap<Tag, usize> = HashMap::new();
        for (i, (value, place)) in self.values.iter().zip(&self.places).enumerate() {
            let mut value = *value;
            if !tamper.is_empty() {
                let tag = self.tags[i];
                let n = seen.entry(tag).or_default();
                if let Some(t) = tamper.iter().find(|t| t.tag == tag && t.nth == *n) {
                    value = t.value;
                }
                *n += 1;
            }
            sink.advice(place.col as usize, abs(place), value);
        }
        for (col, stream, row, value) in &self.fixed {
            let p = Place {
                stream: *stream,
                col: 0,
                row: *row,
            };
            sink.coefficient(*col as usize, abs(&p), *value);
        }
        for (sel, stream, row) in &self.selectors {
            let p = Place {
                stream: *stream,
                col: 0,
                row: *row,
            };
            sink.enable(*sel, abs(&p));
        }
        for (row, value) in self.constants.iter().enumerate() {
            sink.constant(row, *value);
        }
        let pos = |c: &Cell| {
            let p = &self.places[c.0 as usize];
            Pos::Advice {
                col: p.col as usize,
                row: abs(p),
            }
        };
        for (a, b) in &self.copies {
            sink.copy(pos(a), pos(b));
        }
        for (a, row) in &self.const_copies {
            sink.copy(pos(a), Pos::Constant { row: *row as usize });
        }
        for (a, row) in &self.instances {
            sink.copy(pos(a), Pos::Instance { row: *row as usize });
        }
    }

    /// The exposed values, in public-input order.
    pub(crate) fn exposed(&self) -> Vec<Fr> {
        let mut v: Vec<(u32, Fr)> = self
            .instances
            .iter()
            .map(|(c, row)| (*row, self.v(*c)))
            .collect();
        v.sort_by_key(|(row, _)| *row);
        v.into_iter().map(|(_, x)| x).collect()
    }

    /// The values of the cells tagged `tag`, in layout order (tests read them to build a
    /// consistent tampering).
    pub(crate) fn tagged(&self, tag: Tag) -> Vec<Fr> {
        self.tags
            .iter()
            .zip(&self.values)
            .filter(|(t, _)| **t == tag)
            .map(|(_, v)| *v)
            .collect()
    }
}
