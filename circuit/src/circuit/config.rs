//! The batch circuit's columns and custom gates.
//!
//! | columns | what |
//! |---|---|
//! | `a0..a6` | advice, all with equality (copy constraints) |
//! | `k0..k6` | per-row coefficients: round constants, the glue gate's coefficients, fixed-base weights, bits of the field modulus |
//! | `k7` | the lookup tag of a row (range width, or fixed-base window) |
//! | `constants` | constants that advice cells are copied from |
//! | `table` | the lookup table `(tag, value, x, y)` ([`super::table`]) |
//! | `instance` | the public inputs |
//!
//! Every gate has degree at most 6 (the Poseidon S-box `x⁵` times its selector), so the quotient
//! lives on an extended domain of `8n`; the constraint system's degree is pinned to 6 with
//! `set_minimum_degree`. The gates, by selector:
//!
//! | gate | rows | constrains |
//! |---|---|---|
//! | `perm_first` | a permutation's first row | two textbook full rounds from the raw input `x` (`x + RC₀` is folded in) |
//! | `full` | | two full rounds |
//! | `part5`, `part2` | | five (two) partial rounds: the S-box inputs of the rounds in between are cells |
//! | `absorb` | a permutation's output row | the next permutation starts from this output plus two inputs |
//! | `merkle`, `merkle_leaf` | a permutation's output row | the next permutation hashes `(node, sibling)` or `(sibling, node)` by a boolean bit |
//! | `glue` | | `f = k0·a·b + k1·c·d + k2·a + k3·b + k4·c + k5·d + k6·e` |
//! | `range` (lookup) | | the limb `z − 256·z_next` is in the table under tag `k7` (a width) |
//! | `fb_window` (lookup) | | `(k7, digit, x, y)` is a fixed-base table point; the digit running sum |
//! | `fb_first`, `fb_add` | | the fixed-base accumulator: the first point, then incomplete additions |
//! | `var_init`, `var`, `var_last` | | the variable-base double-and-add with incomplete additions, the scalar's running sum and its canonicity state |
//! | `cadd` | | a complete projective addition (Renes–Costello–Batina, `a = 0`) |

use halo2_base::halo2_proofs::{
    plonk::{
        Advice, Column, ConstraintSystem, Constraints, Expression, Fixed, Instance, Selector,
        TableColumn, VirtualCells,
    },
    poly::Rotation,
};
use keel_state::{poseidon, Fr};

use super::layout::{Sel, K, W};

/// The circuit's degree (see the module docs).
pub(crate) const DEGREE: usize = 6;

/// Every advice column at `rotation`.
fn advice_at(
    v: &mut VirtualCells<'_, Fr>,
    advice: &[Column<Advice>; W],
    rotation: Rotation,
) -> Vec<Expression<Fr>> {
    advice
        .iter()
        .map(|a| v.query_advice(*a, rotation))
        .collect()
}

/// Every coefficient column on the current row.
fn fixed_cur(v: &mut VirtualCells<'_, Fr>, k: &[Column<Fixed>; K]) -> Vec<Expression<Fr>> {
    k.iter()
        .map(|c| v.query_fixed(*c, Rotation::cur()))
        .collect()
}

/// Grumpkin's `3·b` (`b = −17`).
pub(crate) fn b3() -> Fr {
    -Fr::from(51)
}

/// The columns and selectors.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    pub(crate) advice: [Column<Advice>; W],
    pub(crate) k: [Column<Fixed>; K],
    pub(crate) constants: Column<Fixed>,
    pub(crate) table: [TableColumn; 4],
    pub(crate) instance: Column<Instance>,
    selectors: Vec<(Sel, Selector)>,
}

impl BatchConfig {
    /// The halo2 selector for `sel`.
    pub(crate) fn selector(&self, sel: Sel) -> Selector {
        self.selectors
            .iter()
            .find(|(s, _)| *s == sel)
            .map(|(_, q)| *q)
            .expect("every selector is configured")
    }

    /// Declares the columns and gates.
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        let advice = std::array::from_fn(|_| meta.advice_column());
        let k = std::array::from_fn(|_| meta.fixed_column());
        let constants = meta.fixed_column();
        let table = std::array::from_fn(|_| meta.lookup_table_column());
        let instance = meta.instance_column();
        for a in advice {
            meta.enable_equality(a);
        }
        meta.enable_equality(constants);
        meta.enable_equality(instance);

        let mut selectors = Vec::new();
        let mut simple = |meta: &mut ConstraintSystem<Fr>, sel: Sel| {
            let q = meta.selector();
            selectors.push((sel, q));
            q
        };
        let q_first = simple(meta, Sel::PermFirst);
        let q_full = simple(meta, Sel::Full);
        let q_part5 = simple(meta, Sel::Part5);
        let q_part2 = simple(meta, Sel::Part2);
        let q_absorb = simple(meta, Sel::Absorb);
        let q_merkle = simple(meta, Sel::Merkle);
        let q_merkle_leaf = simple(meta, Sel::MerkleLeaf);
        let q_glue = simple(meta, Sel::Glue);
        let q_fb_first = simple(meta, Sel::FbFirst);
        let q_fb_add = simple(meta, Sel::FbAdd);
        let q_var = simple(meta, Sel::Var);
        let q_var_last = simple(meta, Sel::VarLast);
        let q_var_init = simple(meta, Sel::VarInit);
        let q_cadd = simple(meta, Sel::Cadd);
        let q_range = meta.complex_selector();
        selectors.push((Sel::Range, q_range));
        let q_fb = meta.complex_selector();
        selectors.push((Sel::FbWindow, q_fb));

        let (rc, mds) = poseidon::textbook();
        let m = |i: usize, j: usize| Expression::Constant(mds[i][j]);
        let c = Expression::Constant;
        let pow5 = |x: Expression<Fr>| {
            let x2 = x.clone() * x.clone();
            x2.clone() * x2 * x
        };

        // ---- Poseidon ----
        // Two full rounds: b = M·x⁵ + k[0..3], next = M·b⁵ + k[3..6]. `first` adds RC₀ to the
        // raw input before the first S-box.
        let full_gate = |meta: &mut ConstraintSystem<Fr>, q: Selector, first: bool| {
            meta.create_gate(if first { "perm_first" } else { "full" }, |v| {
                let q = v.query_selector(q);
                let cur = advice_at(v, &advice, Rotation::cur());
                let next = advice_at(v, &advice, Rotation::next());
                let kk = fixed_cur(v, &k);
                let a: Vec<_> = (0..3)
                    .map(|i| {
                        if first {
                            cur[i].clone() + c(rc[0][i])
                        } else {
                            cur[i].clone()
                        }
                    })
                    .collect();
                let b: Vec<_> = cur[3..6].to_vec();
                let sa: Vec<_> = a.into_iter().map(pow5).collect();
                let sb: Vec<_> = b.iter().cloned().map(pow5).collect();
                let mut out = Vec::new();
                for i in 0..3 {
                    let mb = m(i, 0) * sa[0].clone()
                        + m(i, 1) * sa[1].clone()
                        + m(i, 2) * sa[2].clone()
                        + kk[i].clone();
                    out.push(q.clone() * (b[i].clone() - mb));
                    let mn = m(i, 0) * sb[0].clone()
                        + m(i, 1) * sb[1].clone()
                        + m(i, 2) * sb[2].clone()
                        + kk[3 + i].clone();
                    out.push(q.clone() * (next[i].clone() - mn));
                }
                out
            });
        };
        full_gate(meta, q_first, true);
        full_gate(meta, q_full, false);

        // `m` partial rounds: the S-box inputs of rounds 2..m are cells a[3..]; every other
        // state element is a linear form in the S-box outputs and a1, a2; the round constants
        // are folded into one per-row constant per constraint (`poseidon::part_constants`).
        let part_gate = |meta: &mut ConstraintSystem<Fr>, q: Selector, rounds: usize| {
            meta.create_gate(if rounds == 5 { "part5" } else { "part2" }, |v| {
                let q = v.query_selector(q);
                let cur = advice_at(v, &advice, Rotation::cur());
                let nx = advice_at(v, &advice, Rotation::next());
                let kf = fixed_cur(v, &k);
                let kk = |i: usize| kf[i].clone();
                let mut x = cur[0].clone();
                let (mut l1, mut l2) = (cur[1].clone(), cur[2].clone());
                let mut out = Vec::new();
                for j in 0..rounds {
                    let y = pow5(x.clone());
                    let x0 = m(0, 0) * y.clone() + m(0, 1) * l1.clone() + m(0, 2) * l2.clone();
                    let n1 = m(1, 0) * y.clone() + m(1, 1) * l1.clone() + m(1, 2) * l2.clone();
                    let n2 = m(2, 0) * y + m(2, 1) * l1 + m(2, 2) * l2;
                    if j + 1 < rounds {
                        let xn = cur[3 + j].clone();
                        out.push(q.clone() * (xn.clone() - x0 - kk(j)));
                        x = xn;
                    } else {
                        out.push(q.clone() * (nx[0].clone() - x0 - kk(j)));
                        out.push(q.clone() * (nx[1].clone() - n1.clone() - kk(j + 1)));
                        out.push(q.clone() * (nx[2].clone() - n2.clone() - kk(j + 2)));
                    }
                    l1 = n1;
                    l2 = n2;
                }
                out
            });
        };
        part_gate(meta, q_part5, 5);
        part_gate(meta, q_part2, 2);

        // A sponge goes on: the next permutation's input is this output plus (0, m1, m2).
        meta.create_gate("absorb", |v| {
            let q = v.query_selector(q_absorb);
            let cur_v = advice_at(v, &advice, Rotation::cur());
            let next_v = advice_at(v, &advice, Rotation::next());
            let cur = |i: usize| cur_v[i].clone();
            let next = |i: usize| next_v[i].clone();
            Constraints::with_selector(
                q,
                [
                    next(0) - cur(0),
                    next(1) - cur(1) - cur(3),
                    next(2) - cur(2) - cur(4),
                ],
            )
        });

        // A tree level: node = o1 (times `exists` on the leaf level), sibling a3, bit a4; the
        // next permutation's input is (capacity(Node, 2), left, right).
        let node_cap = poseidon::capacity(poseidon::Domain::Node, 2);
        let merkle_gate = |meta: &mut ConstraintSystem<Fr>, q: Selector, leaf: bool| {
            meta.create_gate(if leaf { "merkle_leaf" } else { "merkle" }, |v| {
                let q = v.query_selector(q);
                let cur_v = advice_at(v, &advice, Rotation::cur());
                let next_v = advice_at(v, &advice, Rotation::next());
                let cur = |i: usize| cur_v[i].clone();
                let next = |i: usize| next_v[i].clone();
                let node = if leaf { cur(1) * cur(5) } else { cur(1) };
                let (sib, bit) = (cur(3), cur(4));
                let one = c(Fr::one());
                Constraints::with_selector(
                    q,
                    [
                        bit.clone() * (one - bit.clone()),
                        next(0) - c(node_cap),
                        next(1) - node.clone() - bit.clone() * (sib.clone() - node.clone()),
                        next(2) - sib.clone() - bit * (node - sib),
                    ],
                )
            });
        };
        merkle_gate(meta, q_merkle, false);
        merkle_gate(meta, q_merkle_leaf, true);

        // ---- glue ----
        meta.create_gate("glue", |v| {
            let q = v.query_selector(q_glue);
            let cur_v = advice_at(v, &advice, Rotation::cur());
            let kf = fixed_cur(v, &k);
            let cur = |i: usize| cur_v[i].clone();
            let kk = |i: usize| kf[i].clone();
            let (a, b, cc, d, e, f) = (cur(1), cur(2), cur(3), cur(4), cur(5), cur(6));
            let sum = kk(0) * a.clone() * b.clone()
                + kk(1) * cc.clone() * d.clone()
                + kk(2) * a
                + kk(3) * b
                + kk(4) * cc
                + kk(5) * d
                + kk(6) * e;
            Constraints::with_selector(q, [f - sum])
        });

        // ---- the lookup: range limbs and fixed-base windows ----
        meta.lookup("range and fixed-base table", |v| {
            let qr = v.query_selector(q_range);
            let qf = v.query_selector(q_fb);
            let tag = v.query_fixed(k[7], Rotation::cur());
            let z = v.query_advice(advice[0], Rotation::cur());
            let z_next = v.query_advice(advice[0], Rotation::next());
            let limb = z.clone() - z_next * c(Fr::from(256));
            let (x, y) = (
                v.query_advice(advice[1], Rotation::cur()),
                v.query_advice(advice[2], Rotation::cur()),
            );
            vec![
                ((qr.clone() + qf.clone()) * tag, table[0]),
                (qr * limb + qf.clone() * z, table[1]),
                (qf.clone() * x, table[2]),
                (qf * y, table[3]),
            ]
        });

        // ---- fixed-base: row [d, xT, yT, λ, xA, yA, acc] ----
        meta.create_gate("fb_window", |v| {
            let q = v.query_selector(q_fb);
            let acc = v.query_advice(advice[6], Rotation::cur());
            let acc_next = v.query_advice(advice[6], Rotation::next());
            let d = v.query_advice(advice[0], Rotation::cur());
            let w = v.query_fixed(k[0], Rotation::cur());
            Constraints::with_selector(q, [acc_next - acc - d * w])
        });
        meta.create_gate("fb_first", |v| {
            let q = v.query_selector(q_fb_first);
            let cur_v = advice_at(v, &advice, Rotation::cur());
            let next_v = advice_at(v, &advice, Rotation::next());
            let cur = |i: usize| cur_v[i].clone();
            let next = |i: usize| next_v[i].clone();
            Constraints::with_selector(q, [next(4) - cur(1), next(5) - cur(2)])
        });
        meta.create_gate("fb_add", |v| {
            let q = v.query_selector(q_fb_add);
            let cur_v = advice_at(v, &advice, Rotation::cur());
            let next_v = advice_at(v, &advice, Rotation::next());
            let cur = |i: usize| cur_v[i].clone();
            let next = |i: usize| next_v[i].clone();
            let (xt, yt, l, xa, ya) = (cur(1), cur(2), cur(3), cur(4), cur(5));
            let (xn, yn) = (next(4), next(5));
            Constraints::with_selector(
                q,
                [
                    l.clone() * (xt.clone() - xa.clone()) - (yt - ya.clone()),
                    xn.clone() - (l.clone() * l.clone() - xa.clone() - xt),
                    yn - (l * (xa - xn) - ya),
                ],
            )
        });

        // ---- variable-base: row [z, xA, λ1, λ2, xP, yP, σ], k0 = the modulus bit ----
        // y_A is not a cell: y_A = (λ1 + λ2)(x_A − x_R)/2 with x_R = λ1² − x_A − x_P.
        let half = Fr::from(2).invert().expect("2 is invertible");
        let y_of =
            |l1: Expression<Fr>, l2: Expression<Fr>, xa: Expression<Fr>, xp: Expression<Fr>| {
                let xr = l1.clone() * l1.clone() - xa.clone() - xp;
                (l1 + l2) * (xa - xr) * c(half)
            };
        let var_gate = |meta: &mut ConstraintSystem<Fr>, q: Selector, last: bool| {
            meta.create_gate(if last { "var_last" } else { "var" }, |v| {
                let q = v.query_selector(q);
                let cur_v = advice_at(v, &advice, Rotation::cur());
                let next_v = advice_at(v, &advice, Rotation::next());
                let cur = |i: usize| cur_v[i].clone();
                let next = |i: usize| next_v[i].clone();
                let (z, xa, l1, l2, xp, yp, sigma) =
                    (cur(0), cur(1), cur(2), cur(3), cur(4), cur(5), cur(6));
                let rbit = v.query_fixed(k[0], Rotation::cur());
                let one = c(Fr::one());
                let bit = next(0) - z * c(Fr::from(2));
                let xr = l1.clone() * l1.clone() - xa.clone() - xp.clone();
                let ya = y_of(l1.clone(), l2.clone(), xa.clone(), xp.clone());
                let ya_next = if last {
                    next(2)
                } else {
                    y_of(next(2), next(3), next(1), next(4))
                };
                let sign = bit.clone() * c(Fr::from(2)) - one.clone();
                let same = bit.clone() * rbit.clone()
                    + (one.clone() - bit.clone()) * (one.clone() - rbit.clone());
                Constraints::with_selector(
                    q,
                    [
                        bit.clone() * (one.clone() - bit.clone()),
                        l1.clone() * (xa.clone() - xp.clone()) - ya.clone() + sign * yp.clone(),
                        l2.clone() * l2.clone() - next(1) - xr - xa.clone(),
                        l2 * (xa - next(1)) - ya - ya_next,
                        next(4) - xp,
                        next(5) - yp,
                        sigma.clone() * bit * (one - rbit),
                        next(6) - sigma * same,
                    ],
                )
            });
        };
        var_gate(meta, q_var, false);
        var_gate(meta, q_var_last, true);
        // [·, ·, λ, ·, xP, yP, ·]: the next row starts at A = [2]P
        meta.create_gate("var_init", |v| {
            let q = v.query_selector(q_var_init);
            let cur_v = advice_at(v, &advice, Rotation::cur());
            let next_v = advice_at(v, &advice, Rotation::next());
            let cur = |i: usize| cur_v[i].clone();
            let next = |i: usize| next_v[i].clone();
            let (l, xp, yp) = (cur(2), cur(4), cur(5));
            let xa = next(1);
            let ya = y_of(next(2), next(3), next(1), next(4));
            Constraints::with_selector(
                q,
                [
                    l.clone() * yp.clone() * c(Fr::from(2))
                        - xp.clone() * xp.clone() * c(Fr::from(3)),
                    xa.clone() - (l.clone() * l.clone() - xp.clone() * c(Fr::from(2))),
                    ya - (l * (xp.clone() - xa) - yp.clone()),
                    next(4) - xp,
                    next(5) - yp,
                ],
            )
        });

        // ---- complete addition: [X1 Y1 Z1 X2 Y2 Z2 ·] → next [X3 Y3 Z3] ----
        meta.create_gate("cadd", |v| {
            let q = v.query_selector(q_cadd);
            let cur_v = advice_at(v, &advice, Rotation::cur());
            let next_v = advice_at(v, &advice, Rotation::next());
            let cur = |i: usize| cur_v[i].clone();
            let next = |i: usize| next_v[i].clone();
            let [x1, y1, z1, x2, y2, z2] = [0, 1, 2, 3, 4, 5].map(cur);
            let [x3, y3, z3] = [0, 1, 2].map(next);
            let sum = cadd_formula(
                [x1, y1, z1],
                [x2, y2, z2],
                |a, b| a * b,
                |a, b| a + b,
                |a, b| a - b,
                |a, k| a * c(k),
            );
            Constraints::with_selector(
                q,
                [
                    x3 - sum[0].clone(),
                    y3 - sum[1].clone(),
                    z3 - sum[2].clone(),
                ],
            )
        });

        meta.set_minimum_degree(DEGREE);
        Self {
            advice,
            k,
            constants,
            table,
            instance,
            selectors,
        }
    }
}

/// `p + q` for projective points on Grumpkin (Renes–Costello–Batina 2016, Algorithm 7, `a = 0`),
/// over any arithmetic: the gate builds it from expressions, the witness from field elements.
pub(crate) fn cadd_formula<V: Clone>(
    p: [V; 3],
    q: [V; 3],
    mul: impl Fn(V, V) -> V,
    add: impl Fn(V, V) -> V,
    sub: impl Fn(V, V) -> V,
    scale: impl Fn(V, Fr) -> V,
) -> [V; 3] {
    let [x1, y1, z1] = p;
    let [x2, y2, z2] = q;
    let t0 = mul(x1.clone(), x2.clone());
    let t1 = mul(y1.clone(), y2.clone());
    let t2 = mul(z1.clone(), z2.clone());
    let t3 = add(mul(x1.clone(), y2.clone()), mul(x2.clone(), y1.clone()));
    let t4 = add(mul(y1, z2.clone()), mul(y2, z1.clone()));
    let t5 = add(mul(x1, z2), mul(x2, z1));
    let t0_3 = scale(t0, Fr::from(3));
    let t2_b3 = scale(t2, b3());
    let plus = add(t1.clone(), t2_b3.clone());
    let minus = sub(t1, t2_b3);
    let t5_b3 = scale(t5, b3());
    let x3 = sub(
        mul(t3.clone(), minus.clone()),
        mul(t4.clone(), t5_b3.clone()),
    );
    let y3 = add(mul(t5_b3, t0_3.clone()), mul(minus, plus.clone()));
    let z3 = add(mul(plus, t4), mul(t0_3, t3));
    [x3, y3, z3]
}
