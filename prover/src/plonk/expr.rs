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
    pub challenges: &'a [Fr],
}

impl Columns<'_> {
    fn get(&self, kind: Kind, column: usize) -> &[Fr] {
        match kind {
            Kind::Fixed => self.fixed[column],
            Kind::Advice => self.advice[column],
            Kind::Instance => self.instance[column],
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
