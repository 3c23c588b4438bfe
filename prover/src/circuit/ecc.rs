//! Grumpkin arithmetic in the circuit: complete projective addition and the Schnorr check.
//!
//! Grumpkin (`y² = x³ − 17`) is defined over BN254 `Fr`, the circuit's own field, so every
//! coordinate is one native cell. Points are projective `(X : Y : Z)` and added with the complete
//! formula of Renes–Costello–Batina 2016 (Algorithm 7, `a = 0`): it has no division and no special
//! case, so it is correct for doubling, for the identity `(0 : 1 : 0)` and for opposite points.
//! That matters because a forced L1 operation may carry any key and signature: an adversary who
//! could steer an incomplete formula into its exceptional case would make an honest prover fail
//! and stall the queue. With complete formulas, every input has a witness.
//!
//! The formula is written once over [`Arith`]: [`Native`] runs it on plain field elements (the unit
//! tests compare it with halo2curves' Grumpkin), [`Cells`] lays it out as halo2-base gates.

use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    poseidon::hasher::PoseidonHasher,
    utils::{biguint_to_fe, fe_to_biguint},
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use keel_state::{poseidon, Fr};

/// `3·b` for Grumpkin's `b = −17`.
fn b3() -> Fr {
    -Fr::from(51)
}

/// The field operations the addition formula needs.
pub(crate) trait Arith {
    /// A field value (a plain element, or an assigned cell).
    type V: Copy;
    /// `a·b`
    fn mul(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `a + b`
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`
    fn sub(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `a·c` for a constant `c`
    fn scale(&mut self, a: Self::V, c: Fr) -> Self::V;
}

/// `p + q` for projective points on Grumpkin (RCB 2016, Algorithm 7 with `a = 0`).
pub(crate) fn add<A: Arith>(o: &mut A, p: [A::V; 3], q: [A::V; 3]) -> [A::V; 3] {
    let [x1, y1, z1] = p;
    let [x2, y2, z2] = q;
    let t0 = o.mul(x1, x2);
    let t1 = o.mul(y1, y2);
    let t2 = o.mul(z1, z2);
    // t3 = x1·y2 + x2·y1
    let (a, b) = (o.add(x1, y1), o.add(x2, y2));
    let t3 = o.mul(a, b);
    let t01 = o.add(t0, t1);
    let t3 = o.sub(t3, t01);
    // t4 = y1·z2 + y2·z1
    let (a, b) = (o.add(y1, z1), o.add(y2, z2));
    let t4 = o.mul(a, b);
    let t12 = o.add(t1, t2);
    let t4 = o.sub(t4, t12);
    // y3 = x1·z2 + x2·z1
    let (a, b) = (o.add(x1, z1), o.add(x2, z2));
    let x3 = o.mul(a, b);
    let t02 = o.add(t0, t2);
    let y3 = o.sub(x3, t02);
    let t0 = o.scale(t0, Fr::from(3));
    let t2 = o.scale(t2, b3());
    let z3 = o.add(t1, t2);
    let t1 = o.sub(t1, t2);
    let y3 = o.scale(y3, b3());
    let (m1, m2) = (o.mul(t3, t1), o.mul(t4, y3));
    let x3 = o.sub(m1, m2);
    let (m1, m2) = (o.mul(y3, t0), o.mul(t1, z3));
    let y3 = o.add(m1, m2);
    let (m1, m2) = (o.mul(z3, t4), o.mul(t0, t3));
    let z3 = o.add(m1, m2);
    [x3, y3, z3]
}

/// Plain field arithmetic (the reference the circuit layout is tested against).
#[cfg(test)]
pub(crate) struct Native;

#[cfg(test)]
impl Arith for Native {
    type V = Fr;
    fn mul(&mut self, a: Fr, b: Fr) -> Fr {
        a * b
    }
    fn add(&mut self, a: Fr, b: Fr) -> Fr {
        a + b
    }
    fn sub(&mut self, a: Fr, b: Fr) -> Fr {
        a - b
    }
    fn scale(&mut self, a: Fr, c: Fr) -> Fr {
        a * c
    }
}

/// The same operations as halo2-base gates.
pub(crate) struct Cells<'a, G> {
    pub(crate) ctx: &'a mut Context<Fr>,
    pub(crate) gate: &'a G,
}

impl<G: GateInstructions<Fr>> Arith for Cells<'_, G> {
    type V = AssignedValue<Fr>;
    fn mul(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.gate.mul(self.ctx, a, b)
    }
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.gate.add(self.ctx, a, b)
    }
    fn sub(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.gate.sub(self.ctx, a, b)
    }
    fn scale(&mut self, a: Self::V, c: Fr) -> Self::V {
        self.gate.mul(self.ctx, a, Constant(c))
    }
}

/// Grumpkin's generator `(1, √−16)`, as halo2curves defines it.
fn generator() -> (Fr, Fr) {
    use halo2_base::halo2_proofs::halo2curves::{grumpkin::G1Affine, CurveAffine};
    let g = G1Affine::generator();
    let c = g.coordinates().expect("the generator is not the identity");
    (*c.x(), *c.y())
}

/// Whether `(x, y)` is on Grumpkin: `y² − x³ + 17 = 0` (never true of the identity's encoding).
fn on_curve(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    x: AssignedValue<Fr>,
    y: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let x2 = gate.mul(ctx, x, x);
    let x3 = gate.mul(ctx, x2, x);
    let y2_17 = gate.mul_add(ctx, y, y, Constant(Fr::from(17)));
    let diff = gate.sub(ctx, y2_17, x3);
    gate.is_zero(ctx, diff)
}

/// `e` as 254 little-endian bits, constrained to be the canonical representation (`e < r` as an
/// integer). Without the canonical check a prover could use `e + r`, which is another Grumpkin
/// scalar, and so turn a valid forced signature into a rejected one.
fn canonical_bits(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    e: AssignedValue<Fr>,
) -> Vec<AssignedValue<Fr>> {
    let gate = &range.gate;
    let big = fe_to_biguint(e.value());
    let mask = (num_bigint::BigUint::from(1u8) << 128) - 1u8;
    let lo = ctx.load_witness(biguint_to_fe(&(&big & &mask)));
    let hi = ctx.load_witness(biguint_to_fe(&(&big >> 128)));
    let recomposed = gate.mul_add(ctx, hi, Constant(two_pow_128()), lo);
    ctx.constrain_equal(&recomposed, &e);
    let mut bits = gate.num_to_bits(ctx, lo, 128);
    bits.extend(gate.num_to_bits(ctx, hi, 126));
    // (hi, lo) < (r_hi, r_lo) lexicographically
    let r = fe_to_biguint(&-Fr::one()) + 1u8;
    let (r_lo, r_hi): (Fr, Fr) = (biguint_to_fe(&(&r & &mask)), biguint_to_fe(&(&r >> 128)));
    let hi_lt = range.is_less_than(ctx, hi, Constant(r_hi), 126);
    let hi_eq = gate.is_equal(ctx, hi, Constant(r_hi));
    let lo_lt = range.is_less_than(ctx, lo, Constant(r_lo), 128);
    let canonical = gate.or_and(ctx, hi_lt, hi_eq, lo_lt);
    gate.assert_is_const(ctx, &canonical, &Fr::one());
    bits
}

pub(crate) fn two_pow_128() -> Fr {
    Fr::from_raw([0, 0, 1, 0])
}

/// The inputs of one Schnorr check, all assigned cells.
pub(crate) struct SchnorrInput {
    /// The signer's key.
    pub(crate) pk: (AssignedValue<Fr>, AssignedValue<Fr>),
    /// The commitment `R`.
    pub(crate) r: (AssignedValue<Fr>, AssignedValue<Fr>),
    /// The response `s` as two 128-bit halves (as the entry hash absorbs it).
    pub(crate) s_lo: AssignedValue<Fr>,
    /// High half of `s`.
    pub(crate) s_hi: AssignedValue<Fr>,
    /// The signed message, `[m₁]` or `[m₁, m₂]` as `one_word` says.
    pub(crate) msg: [AssignedValue<Fr>; 2],
    /// A bit: 1 if the message is `m₁` alone.
    pub(crate) one_word: AssignedValue<Fr>,
}

/// Whether `s·G = R + e·pk` with `e = Poseidon(R.x, R.y, pk.x, pk.y, m₁[, m₂])` and `pk`, `R` on
/// the curve: 1 or 0, never unsatisfiable. Both challenges are hashed and one is selected, so the
/// layout is the same for either length. `s` is used as the 256-bit integer `s_hi·2^128 + s_lo`,
/// whose multiple of `G` is that of `s mod q` (the encoding already refuses `s ≥ q`).
///
/// One joint double-and-add over 256 bit pairs computes `s·G − e·pk`; the table of the four
/// addends `{O, G, −pk, G − pk}` is built once. Two complete additions per bit.
pub(crate) fn schnorr_ok(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
    input: &SchnorrInput,
) -> AssignedValue<Fr> {
    let gate = &range.gate;
    let (pkx, pky) = input.pk;
    let (rx, ry) = input.r;
    let [m1, m2] = input.msg;
    let e1 = hasher.hash_fix_len_array(ctx, gate, &[rx, ry, pkx, pky, m1]);
    let e2 = hasher.hash_fix_len_array(ctx, gate, &[rx, ry, pkx, pky, m1, m2]);
    let e = gate.select(ctx, e1, e2, input.one_word);
    let mut e_bits = canonical_bits(ctx, range, e);
    let zero = ctx.load_zero();
    e_bits.resize(256, zero);
    let mut s_bits = gate.num_to_bits(ctx, input.s_lo, 128);
    s_bits.extend(gate.num_to_bits(ctx, input.s_hi, 128));

    let pk_ok = on_curve(ctx, gate, pkx, pky);
    let r_ok = on_curve(ctx, gate, rx, ry);

    let (gx, gy) = generator();
    let one = ctx.load_constant(Fr::one());
    let g = [ctx.load_constant(gx), ctx.load_constant(gy), one];
    let neg_pk = [pkx, gate.neg(ctx, pky), one];
    let g_minus_pk = add(&mut Cells { ctx, gate }, g, neg_pk);
    let identity = [zero, one, zero];

    let mut acc = identity;
    for (sb, eb) in s_bits.iter().zip(&e_bits).rev() {
        acc = add(&mut Cells { ctx, gate }, acc, acc);
        let mut addend = identity;
        for (c, out) in addend.iter_mut().enumerate() {
            let with_g = gate.select(ctx, Existing(g_minus_pk[c]), Existing(neg_pk[c]), *sb);
            let without_g = gate.select(ctx, Existing(g[c]), Existing(identity[c]), *sb);
            *out = gate.select(ctx, with_g, without_g, *eb);
        }
        acc = add(&mut Cells { ctx, gate }, acc, addend);
    }
    // s·G − e·pk − R is the identity exactly when Z = 0 (for points on the curve)
    let neg_r = [rx, gate.neg(ctx, ry), one];
    let diff = add(&mut Cells { ctx, gate }, acc, neg_r);
    let is_identity = gate.is_zero(ctx, diff[2]);
    let points_ok = gate.and(ctx, pk_ok, r_ok);
    gate.and(ctx, points_ok, is_identity)
}

#[cfg(test)]
mod tests {
    use halo2_base::halo2_proofs::halo2curves::{
        ff::Field,
        group::{Curve, Group},
        grumpkin::{G1Affine, G1},
        CurveAffine,
    };
    use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

    use super::*;

    fn proj(p: G1) -> [Fr; 3] {
        let a = p.to_affine();
        if bool::from(p.is_identity()) {
            return [Fr::ZERO, Fr::ONE, Fr::ZERO];
        }
        let c = a.coordinates().unwrap();
        [*c.x(), *c.y(), Fr::ONE]
    }

    fn same(a: [Fr; 3], b: [Fr; 3]) -> bool {
        // projective equality: X1·Z2 = X2·Z1 and Y1·Z2 = Y2·Z1, never (0:0:0)
        a[0] * b[2] == b[0] * a[2] && a[1] * b[2] == b[1] * a[2] && a != [Fr::ZERO; 3]
    }

    #[test]
    fn complete_addition_matches_halo2curves_on_every_case() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let p = G1::random(&mut rng);
        let q = G1::random(&mut rng);
        let o = G1::identity();
        let cases = [(p, q), (p, p), (p, -p), (p, o), (o, p), (o, o), (p + q, -q)];
        for (a, b) in cases {
            let got = add(&mut Native, proj(a), proj(b));
            assert!(same(got, proj(a + b)), "{a:?} + {b:?}");
        }
        // inputs in another projective scaling
        let k = Fr::random(&mut rng);
        let [x, y, z] = proj(p);
        let got = add(&mut Native, [x * k, y * k, z * k], proj(q));
        assert!(same(got, proj(p + q)));
        let _ = G1Affine::generator();
    }
}
