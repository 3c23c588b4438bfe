//! Expressions compiled for evaluation over many rows at once.
//!
//! A [`Program`] is the constraint system's expressions (gates, lookup inputs and tables) as one
//! graph without repeated subexpressions: `a − b` is one node, and a node two gates share is
//! computed once. [`Program::run`] evaluates every node over a run of rows, one node at a time
//! across the rows (a tight loop per node instead of an interpreter per cell), and hands the
//! outputs over as slices. Rotations are index shifts modulo `n`, which is right both on the
//! domain (Lagrange values) and on one coset part of the extended domain.

use std::collections::HashMap;

use halo2_proofs::{
    halo2curves::{bn256::Fr, ff::PrimeField},
    plonk::{ConstraintSystem, Expression},
};

/// Which values a column leaf reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Fixed,
    Advice,
    Instance,
    /// The prover's own columns beside the circuit's (the quotient's products, σ, the Lagrange
    /// selectors, the points of the domain).
    Extra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Node {
    Const([u8; 32]),
    Column(Kind, usize, i32),
    Challenge(usize),
    Neg(u32),
    Add(u32, u32),
    Sub(u32, u32),
    Mul(u32, u32),
    Scale(u32, [u8; 32]),
}

/// The columns a program reads, as slices of `n` values each.
pub(super) struct Columns<'a> {
    pub fixed: &'a [&'a [Fr]],
    pub advice: &'a [&'a [Fr]],
    pub instance: &'a [&'a [Fr]],
    pub extra: &'a [&'a [Fr]],
    pub challenges: &'a [Fr],
}

impl Columns<'_> {
    fn get(&self, kind: Kind, column: usize) -> &[Fr] {
        match kind {
            Kind::Fixed => self.fixed[column],
            Kind::Advice => self.advice[column],
            Kind::Instance => self.instance[column],
            Kind::Extra => self.extra[column],
        }
    }
}

/// A compiled set of expressions.
#[derive(Debug, Default)]
pub(super) struct Program {
    nodes: Vec<Node>,
    /// Constants by node, so a run reads them without decoding.
    constants: Vec<Fr>,
    seen: HashMap<Node, u32>,
}

fn repr(f: &Fr) -> [u8; 32] {
    f.to_repr()
}

impl Program {
    fn node(&mut self, node: Node, constant: Fr) -> u32 {
        if let Some(&i) = self.seen.get(&node) {
            return i;
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(node);
        self.constants.push(constant);
        self.seen.insert(node, i);
        i
    }

    /// Adds `e`; the node that holds its value.
    pub(super) fn add(&mut self, e: &Expression<Fr>) -> u32 {
        use halo2_proofs::halo2curves::ff::Field;
        match e {
            Expression::Constant(c) => self.node(Node::Const(repr(c)), *c),
            Expression::Selector(_) => {
                panic!(
                    "selectors are compiled into fixed columns by keygen; a proving key has none"
                )
            }
            Expression::Fixed(q) => self.node(
                Node::Column(Kind::Fixed, q.column_index(), q.rotation().0),
                Fr::ZERO,
            ),
            Expression::Advice(q) => self.node(
                Node::Column(Kind::Advice, q.column_index(), q.rotation().0),
                Fr::ZERO,
            ),
            Expression::Instance(q) => self.node(
                Node::Column(Kind::Instance, q.column_index(), q.rotation().0),
                Fr::ZERO,
            ),
            Expression::Challenge(c) => self.node(Node::Challenge(c.index()), Fr::ZERO),
            Expression::Negated(a) => {
                let a = self.add(a);
                self.node(Node::Neg(a), Fr::ZERO)
            }
            Expression::Sum(a, b) => {
                if let Expression::Negated(b) = &**b {
                    let (a, b) = (self.add(a), self.add(b));
                    return self.node(Node::Sub(a, b), Fr::ZERO);
                }
                let (a, b) = (self.add(a), self.add(b));
                let (a, b) = (a.min(b), a.max(b));
                self.node(Node::Add(a, b), Fr::ZERO)
            }
            Expression::Product(a, b) => {
                let (a, b) = (self.add(a), self.add(b));
                let (a, b) = (a.min(b), a.max(b));
                self.node(Node::Mul(a, b), Fr::ZERO)
            }
            Expression::Scaled(a, s) => {
                let a = self.add(a);
                self.node(Node::Scale(a, repr(s)), *s)
            }
        }
    }

    /// A constant.
    pub(super) fn constant(&mut self, c: Fr) -> u32 {
        self.node(Node::Const(repr(&c)), c)
    }

    /// A column of `kind` at `rotation`.
    pub(super) fn column(&mut self, kind: Kind, column: usize, rotation: i32) -> u32 {
        use halo2_proofs::halo2curves::ff::Field;
        self.node(Node::Column(kind, column, rotation), Fr::ZERO)
    }

    /// `a + b`.
    pub(super) fn add_nodes(&mut self, a: u32, b: u32) -> u32 {
        use halo2_proofs::halo2curves::ff::Field;
        self.node(Node::Add(a.min(b), a.max(b)), Fr::ZERO)
    }

    /// `a − b`.
    pub(super) fn sub(&mut self, a: u32, b: u32) -> u32 {
        use halo2_proofs::halo2curves::ff::Field;
        self.node(Node::Sub(a, b), Fr::ZERO)
    }

    /// `a · b`.
    pub(super) fn mul(&mut self, a: u32, b: u32) -> u32 {
        use halo2_proofs::halo2curves::ff::Field;
        self.node(Node::Mul(a.min(b), a.max(b)), Fr::ZERO)
    }

    /// `a · s`.
    pub(super) fn scale(&mut self, a: u32, s: Fr) -> u32 {
        self.node(Node::Scale(a, repr(&s)), s)
    }

    /// Adds every lookup's input and table expressions: their nodes, lookup by lookup.
    pub(super) fn add_lookups(&mut self, cs: &ConstraintSystem<Fr>) -> Vec<(Vec<u32>, Vec<u32>)> {
        cs.lookups()
            .iter()
            .map(|l| {
                let inputs = l.input_expressions().iter().map(|e| self.add(e)).collect();
                let tables = l.table_expressions().iter().map(|e| self.add(e)).collect();
                (inputs, tables)
            })
            .collect()
    }

    /// Nodes in the program.
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Scratch space for [`Program::run`] over `rows` rows.
    pub(super) fn scratch(&self, rows: usize) -> Vec<Fr> {
        vec![Fr::default(); self.nodes.len() * rows]
    }

    /// Evaluates every node at rows `start..start + rows` (of `n`, rotations wrapping) into
    /// `scratch`; node `i`'s values are `scratch[i * rows..][..rows]`.
    pub(super) fn run(
        &self,
        cols: &Columns<'_>,
        n: usize,
        start: usize,
        rows: usize,
        scratch: &mut [Fr],
    ) {
        debug_assert_eq!(scratch.len(), self.nodes.len() * rows);
        for (i, node) in self.nodes.iter().enumerate() {
            let (done, rest) = scratch.split_at_mut(i * rows);
            let out = &mut rest[..rows];
            let reg = |j: u32| &done[j as usize * rows..][..rows];
            match *node {
                Node::Const(_) => out.fill(self.constants[i]),
                Node::Challenge(c) => out.fill(cols.challenges[c]),
                Node::Column(kind, column, rot) => {
                    let values = cols.get(kind, column);
                    let from = (start as i64 + rot as i64).rem_euclid(n as i64) as usize;
                    if from + rows <= n {
                        out.copy_from_slice(&values[from..from + rows]);
                    } else {
                        for (k, o) in out.iter_mut().enumerate() {
                            *o = values[(from + k) % n];
                        }
                    }
                }
                Node::Neg(a) => {
                    for (o, a) in out.iter_mut().zip(reg(a)) {
                        *o = -*a;
                    }
                }
                Node::Add(a, b) => {
                    for ((o, a), b) in out.iter_mut().zip(reg(a)).zip(reg(b)) {
                        *o = *a + b;
                    }
                }
                Node::Sub(a, b) => {
                    for ((o, a), b) in out.iter_mut().zip(reg(a)).zip(reg(b)) {
                        *o = *a - b;
                    }
                }
                Node::Mul(a, b) => {
                    for ((o, a), b) in out.iter_mut().zip(reg(a)).zip(reg(b)) {
                        *o = *a * b;
                    }
                }
                Node::Scale(a, _) => {
                    let s = self.constants[i];
                    for (o, a) in out.iter_mut().zip(reg(a)) {
                        *o = *a * s;
                    }
                }
            }
        }
    }
}

/// The values of node `i` after [`Program::run`] over `rows` rows.
pub(super) fn output(scratch: &[Fr], i: u32, rows: usize) -> &[Fr] {
    &scratch[i as usize * rows..][..rows]
}

/// A program as an opcode stream for one GPU kernel to interpret, row by row (issue 28's
/// quotient on the device): four words per operation `[op, dst, a, b]`, registers reused once
/// their value is dead, challenges and constants in one table, and the outputs folded at the end
/// by Horner's rule in `y` (`acc ← acc·y + output`), in the order given.
///
/// | op | meaning |
/// |---|---|
/// | 0 | `r[dst] ← constants[a]` |
/// | 1 | `r[dst] ← columns[a][(row + b) mod n]` (fixed, then advice, then instance columns) |
/// | 2 | `r[dst] ← −r[a]` |
/// | 3, 4, 5 | `r[dst] ← r[a] + r[b]`, `r[a] − r[b]`, `r[a] · r[b]` |
/// | 6 | `r[dst] ← r[a] · constants[b]` |
/// | 7 | `acc ← acc · constants[b] + r[a]` |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opcodes {
    /// Four words per operation.
    pub words: Vec<u32>,
    /// The constants the operations name.
    pub constants: Vec<Fr>,
    /// Registers the stream needs per row.
    pub registers: u32,
}

/// Opcode numbers (see [`Opcodes`]).
pub(super) mod op {
    pub(in crate::plonk) const CONST: u32 = 0;
    pub(in crate::plonk) const COLUMN: u32 = 1;
    pub(in crate::plonk) const NEG: u32 = 2;
    pub(in crate::plonk) const ADD: u32 = 3;
    pub(in crate::plonk) const SUB: u32 = 4;
    pub(in crate::plonk) const MUL: u32 = 5;
    pub(in crate::plonk) const SCALE: u32 = 6;
    pub(in crate::plonk) const HORNER: u32 = 7;
}

impl Program {
    /// The opcode stream computing `outputs` folded by Horner's rule in `y`, over `n` rows,
    /// column `(kind, i)` being the interpreter's column `index(kind, i)`.
    pub(super) fn opcodes(
        &self,
        outputs: &[u32],
        challenges: &[Fr],
        y: Fr,
        n: usize,
        index: &dyn Fn(Kind, usize) -> u32,
    ) -> Opcodes {
        let m = self.nodes.len();
        // the last operation reading each node; outputs live to the end
        let mut last = vec![0usize; m];
        for (i, node) in self.nodes.iter().enumerate() {
            match *node {
                Node::Neg(a) | Node::Scale(a, _) => last[a as usize] = i,
                Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) => {
                    last[a as usize] = i;
                    last[b as usize] = i;
                }
                _ => {}
            }
        }
        for &o in outputs {
            last[o as usize] = usize::MAX;
        }
        let mut constants = vec![y];
        let constant = |c: Fr, constants: &mut Vec<Fr>| -> u32 {
            if let Some(i) = constants.iter().position(|x| *x == c) {
                return i as u32;
            }
            constants.push(c);
            (constants.len() - 1) as u32
        };
        let mut reg = vec![u32::MAX; m];
        let mut free: Vec<u32> = Vec::new();
        let mut registers = 0u32;
        let mut words = Vec::with_capacity(4 * m + 4 * outputs.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let dst = free.pop().unwrap_or_else(|| {
                registers += 1;
                registers - 1
            });
            reg[i] = dst;
            let r = |j: u32| reg[j as usize];
            let (code, a, b) = match *node {
                Node::Const(_) => (op::CONST, constant(self.constants[i], &mut constants), 0),
                Node::Challenge(c) => (op::CONST, constant(challenges[c], &mut constants), 0),
                Node::Column(kind, column, rot) => {
                    let rot = (rot as i64).rem_euclid(n as i64) as u32;
                    (op::COLUMN, index(kind, column), rot)
                }
                Node::Neg(a) => (op::NEG, r(a), 0),
                Node::Add(a, b) => (op::ADD, r(a), r(b)),
                Node::Sub(a, b) => (op::SUB, r(a), r(b)),
                Node::Mul(a, b) => (op::MUL, r(a), r(b)),
                Node::Scale(a, _) => (op::SCALE, r(a), constant(self.constants[i], &mut constants)),
            };
            words.extend_from_slice(&[code, dst, a, b]);
            // operands read for the last time free their registers (after dst is taken, so an
            // operation never writes a register it is still to read in the same step)
            let operands: &[u32] = match *node {
                Node::Neg(a) | Node::Scale(a, _) => &[a],
                Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) => &[a, b],
                _ => &[],
            };
            let mut freed: Vec<u32> = Vec::new();
            for &o in operands {
                if last[o as usize] == i && !freed.contains(&reg[o as usize]) {
                    freed.push(reg[o as usize]);
                }
            }
            // a node nothing reads (not an output) frees its register at once
            if last[i] == 0 {
                freed.push(dst);
            }
            free.extend(freed);
        }
        for &o in outputs {
            words.extend_from_slice(&[op::HORNER, 0, reg[o as usize], 0]);
        }
        Opcodes {
            words,
            constants,
            registers: registers.max(1),
        }
    }

    /// The CPU reference of [`Program::opcodes`]: `outputs` folded by Horner's rule in `y` at
    /// every row.
    pub(super) fn horner(&self, cols: &Columns<'_>, n: usize, outputs: &[u32], y: Fr) -> Vec<Fr> {
        use halo2_proofs::halo2curves::ff::Field;
        use rayon::prelude::*;
        const ROWS: usize = 128;
        let mut out = vec![Fr::ZERO; n];
        out.par_chunks_mut(ROWS).enumerate().for_each_init(
            || self.scratch(ROWS),
            |scratch, (c, out)| {
                let rows = out.len();
                let scratch = &mut scratch[..self.len() * rows];
                self.run(cols, n, c * ROWS, rows, scratch);
                for &o in outputs {
                    for (acc, v) in out.iter_mut().zip(output(scratch, o, rows)) {
                        *acc = *acc * y + v;
                    }
                }
            },
        );
        out
    }
}
