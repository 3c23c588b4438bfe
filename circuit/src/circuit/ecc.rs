//! Grumpkin arithmetic in the circuit and the Schnorr check.
//!
//! Grumpkin (`y² = x³ − 17`, prime order `q`) is defined over the circuit's field, so every
//! coordinate is one cell. A signature `(R, s)` by `pk` on a message with challenge hash `h`
//! verifies when `s·G = R + e·pk`, with `e = 2^253 + 2k + 1` and `h = k + 2^253·top`
//! (`keel_state::signature`). The check, and why no input can make it unprovable:
//!
//! * **Variable base, `[e]P`** (`var_*` gates, 253 + 2 rows): `P = pk` if `pk` is on the curve,
//!   else `G` (the result is then masked). `A = [2]P`, then for each bit `kᵢ` of `k`, most
//!   significant first, `A ← (A + Q) + A` with `Q = ±P` by the bit, in incomplete affine
//!   additions (Orchard's double-and-add, one row per bit, `y_A` recovered from the slopes).
//!   After `t` steps `A = [m]P` with `2^t < m < 3·2^t`; an addition is exceptional only if
//!   `m ≡ ±1` or `2m ± 1 ≡ 0 (mod q)`, and `6·2^t < q` for every `t ≤ 251`, so the first 252
//!   steps never are, for any bits and any `P` of order `q`. The last step uses complete
//!   additions. The scalar's running sum `z` gives `k`; its *canonicity* (that `k + 2^253·top`
//!   is `h` as an integer below the field modulus `r`, not `h + r`) is a comparison with `r`'s
//!   bits carried along the chain in one cell per row (`σ`: equal so far), so a prover cannot
//!   turn a valid signature into a refused one by decomposing `h + r`.
//! * **Fixed base, `[s]G`** (`fb_*` gates, 64 rows): `s` in 64 windows of 4 bits, each window's
//!   point looked up in the table (`table.rs`, with offsets); windows 1–62 are added with
//!   incomplete additions, which the offsets keep away from their exceptional cases (the running
//!   multiple is positive, smaller than the next window's, and their sum is below `q`), the last
//!   window with a complete addition. The digits' running sum equals `s_lo` after window 31 and
//!   `s_lo + 2^128·s_hi` at the end.
//! * **Complete additions** (`cadd`, Renes–Costello–Batina) for the tails and the comparison
//!   `[s]G = [e]P + R`, which is made projectively (`X₁Z₂ = X₂Z₁`, `Y₁Z₂ = Y₂Z₁`).
//!
//! The result is a bit: `pk` and `R` on the curve and the equation holding. A hostile forced
//! entry (any key, any signature) therefore always has a witness, and is proven *rejected*.

use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use keel_state::{signature::CHALLENGE_BITS, Fr};

use super::{
    config::cadd_formula,
    layout::{Cell, Layout, Sel, Tag},
    table::{self, FB_TAG, POINTS, WINDOWS},
};

/// A projective point as cells.
pub(crate) type Proj = [Cell; 3];

#[cfg(test)]
thread_local! {
    /// Test hook: decompose `h + r` instead of `h`, as a cheating prover would.
    pub(crate) static NON_CANONICAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Incomplete (affine) steps of the variable-base chain.
pub(crate) const VAR_STEPS: usize = CHALLENGE_BITS as usize - 1;

fn native_add(p: [Fr; 3], q: [Fr; 3]) -> [Fr; 3] {
    cadd_formula(p, q, |a, b| a * b, |a, b| a + b, |a, b| a - b, |a, k| a * k)
}

/// `p + q` with the complete formula, on the main stream: `[p | q]` then `[p + q]`.
pub(crate) fn cadd(l: &mut Layout, p: Proj, q: Proj) -> Proj {
    let row = l.rows(2, "complete additions");
    cadd_at(l, row, p, q)
}

/// [`cadd`] on rows `row` and `row + 1`, already reserved.
fn cadd_at(l: &mut Layout, row: usize, p: Proj, q: Proj) -> Proj {
    l.enable(Sel::Cadd, row);
    for (i, c) in p.iter().chain(&q).enumerate() {
        l.put_copy(row, i, *c, Tag::Plain);
    }
    let r = native_add(p.map(|c| l.v(c)), q.map(|c| l.v(c)));
    std::array::from_fn(|i| l.put(row + 1, i, r[i], Tag::CaddOut))
}

/// `(x, y)` as the projective `(x : y : 1)`.
pub(crate) fn proj(l: &mut Layout, x: Cell, y: Cell) -> Proj {
    [x, y, l.constant(Fr::ONE)]
}

/// `1` if `(x, y)` is on Grumpkin (`y² − x³ − (−17) = 0`); never true of `(0, 0)`, the only
/// stand-in for the identity an encoding could give.
pub(crate) fn on_curve(l: &mut Layout, x: Cell, y: Cell) -> Cell {
    let x2 = l.mul(x, x);
    let seventeen = l.constant(Fr::from(17));
    let mut g = super::arith::Glue {
        ab: Fr::ONE,
        cd: -Fr::ONE,
        ..Default::default()
    };
    g.lin[4] = Fr::ONE;
    let lhs = l.glue(g, [Some(y), Some(y), Some(x2), Some(x), Some(seventeen)]);
    l.is_zero(lhs)
}

/// `[s]G` for `s = s_lo + 2^128·s_hi` (the halves below 2^128), projective.
pub(crate) fn fixed_base(l: &mut Layout, s_lo: Cell, s_hi: Cell) -> Proj {
    let digits = table::digits(l.v(s_lo), l.v(s_hi));
    // 64 window rows, then the last window's complete addition (whose input row also ends the
    // digit sum in column 6)
    let start = l.rows(WINDOWS + 2, "fixed-base multiplication");
    // 16^w mod r: windows 32.. carry 2^128·16^(w − 32), so the sum is s_lo + 2^128·s_hi
    let weight = |w: usize| Fr::from(16).pow_vartime([w as u64]);
    // running values: the accumulator A (affine), the digit sum
    let (mut xa, mut ya) = (Fr::ZERO, Fr::ZERO);
    let mut acc = Fr::ZERO;
    let mut acc_cells = Vec::with_capacity(WINDOWS + 1);
    let mut last = None;
    for (w, d) in digits.iter().enumerate() {
        let row = start + w;
        let (xt, yt) = POINTS[w][*d as usize];
        l.enable(Sel::FbWindow, row);
        l.coefficient(7, row, Fr::from(FB_TAG + w as u64));
        l.coefficient(0, row, weight(w));
        l.put(row, 0, Fr::from(*d), Tag::FbDigit);
        let cxt = l.put(row, 1, xt, Tag::Plain);
        let cyt = l.put(row, 2, yt, Tag::Plain);
        let lambda = if w == 0 || w + 1 == WINDOWS {
            Fr::ZERO
        } else {
            (yt - ya)
                * (xt - xa)
                    .invert()
                    .expect("window additions are never exceptional")
        };
        l.put(row, 3, lambda, Tag::Plain);
        let cxa = l.put(row, 4, xa, Tag::FbXA);
        let cya = l.put(row, 5, ya, Tag::Plain);
        acc_cells.push(l.put(row, 6, acc, Tag::Plain));
        acc += Fr::from(*d) * weight(w);
        if w == 0 {
            l.enable(Sel::FbFirst, row);
            (xa, ya) = (xt, yt);
        } else if w + 1 < WINDOWS {
            l.enable(Sel::FbAdd, row);
            let xn = lambda.square() - xa - xt;
            ya = lambda * (xa - xn) - ya;
            xa = xn;
        } else {
            last = Some(((cxa, cya), (cxt, cyt)));
        }
    }
    // row 64: the last window's complete addition; its column 6 ends the digit sum
    let row = start + WINDOWS;
    acc_cells.push(l.put(row, 6, acc, Tag::Plain));
    l.assert_zero(acc_cells[0]);
    l.eq(acc_cells[32], s_lo);
    let total = l.lin(&[(Fr::ONE, s_lo), (Layout::two_pow(128), s_hi)], Fr::ZERO);
    l.eq(acc_cells[WINDOWS], total);
    let ((cxa, cya), (cxt, cyt)) = last.expect("the last window");
    let a = proj(l, cxa, cya);
    let t = proj(l, cxt, cyt);
    cadd_at(l, row, a, t)
}

/// The scalar multiplication `[e]P` for the challenge hash `h`: returns the projective result.
/// `p` must be on the curve (the caller substitutes `G` otherwise).
pub(crate) fn var_base(l: &mut Layout, p: (Cell, Cell), h: Cell) -> Proj {
    let (xp, yp) = (l.v(p.0), l.v(p.1));
    let hv = l.v(h);
    #[allow(unused_mut)]
    let mut repr: [u8; 32] = hv.to_repr();
    #[cfg(test)]
    if NON_CANONICAL.with(|f| f.get()) {
        // a cheating prover's decomposition of the integer h + r
        use num_bigint::BigUint;
        let r = BigUint::from_bytes_le(&(-Fr::ONE).to_repr()) + 1u8;
        let bytes = (BigUint::from_bytes_le(&repr) + r).to_bytes_le();
        repr = [0; 32];
        repr[..bytes.len()].copy_from_slice(&bytes);
    }
    let bit_of = |i: usize| repr[i / 8] >> (i % 8) & 1 == 1;
    let bits: Vec<bool> = (0..CHALLENGE_BITS as usize).rev().map(bit_of).collect();
    let top = bit_of(CHALLENGE_BITS as usize);
    let r_bits = modulus_bits();

    // the init row, the incomplete steps, the tail row
    let start = l.rows(VAR_STEPS + 2, "variable-base multiplication");
    let init = start;
    let lambda_d = (xp.square() * Fr::from(3)) * (yp.double()).invert().expect("y ≠ 0 on Grumpkin");
    let x2 = lambda_d.square() - xp.double();
    let y2 = lambda_d * (xp - x2) - yp;
    l.enable(Sel::VarInit, init);
    l.put(init, 2, lambda_d, Tag::Plain);
    l.put_copy(init, 4, p.0, Tag::Plain);
    l.put_copy(init, 5, p.1, Tag::Plain);

    let (mut xa, mut ya) = (x2, y2);
    let mut z = Fr::ZERO;
    let mut sigma = Fr::from(u64::from(top));
    let mut z_cells = Vec::new();
    let mut sigma0 = None;
    for (i, bit) in bits.iter().take(VAR_STEPS).enumerate() {
        let row = start + 1 + i;
        let yq = if *bit { yp } else { -yp };
        let l1 = (ya - yq)
            * (xa - xp)
                .invert()
                .expect("incomplete additions are never exceptional");
        let xr = l1.square() - xa - xp;
        let l2 = ya.double() * (xa - xr).invert().expect("never exceptional") - l1;
        let xn = l2.square() - xa - xr;
        let yn = l2 * (xa - xn) - ya;
        l.enable(
            if i + 1 == VAR_STEPS {
                Sel::VarLast
            } else {
                Sel::Var
            },
            row,
        );
        let rbit = r_bits[CHALLENGE_BITS as usize - 1 - i];
        if rbit {
            l.coefficient(0, row, Fr::ONE);
        }
        z_cells.push(l.put(row, 0, z, Tag::VarZ));
        l.put(row, 1, xa, Tag::VarXA);
        l.put(row, 2, l1, Tag::VarLambda1);
        l.put(row, 3, l2, Tag::Plain);
        l.put(row, 4, xp, Tag::Plain);
        l.put(row, 5, yp, Tag::Plain);
        let s = l.put(row, 6, sigma, Tag::VarSigma);
        if i == 0 {
            sigma0 = Some(s);
        }
        z = z.double() + Fr::from(u64::from(*bit));
        if sigma == Fr::ONE && *bit != rbit {
            sigma = Fr::ZERO;
        }
        (xa, ya) = (xn, yn);
    }
    // the tail row: [z, xA, yA, ·, xP, yP, σ]
    let tail = start + 1 + VAR_STEPS;
    let z_tail = l.put(tail, 0, z, Tag::VarZ);
    let cxa = l.put(tail, 1, xa, Tag::VarXA);
    let cya = l.put(tail, 2, ya, Tag::Plain);
    l.put(tail, 4, xp, Tag::Plain);
    l.put(tail, 5, yp, Tag::Plain);
    let sigma_tail = l.put(tail, 6, sigma, Tag::VarSigma);
    l.assert_zero(z_cells[0]);

    // the last bit, the decomposition of h and its canonicity (r is odd: the last bit of r is 1)
    let last = bits[VAR_STEPS];
    let b = l.load(Fr::from(u64::from(last)));
    l.assert_bit(b);
    let top_cell = l.load(Fr::from(u64::from(top)));
    l.assert_bit(top_cell);
    l.eq(sigma0.expect("at least one step"), top_cell);
    let h_again = l.lin(
        &[
            (Fr::from(2), z_tail),
            (Fr::ONE, b),
            (Layout::two_pow(CHALLENGE_BITS), top_cell),
        ],
        Fr::ZERO,
    );
    l.eq(h_again, h);
    // σ after the last bit: still equal only if that bit is 1 (r's); it must end unequal (less)
    let sigma_end = l.mul(sigma_tail, b);
    l.assert_zero(sigma_end);

    // the last step with complete additions: A ← (A + Q) + A, Q = (xP, ±yP)
    let sign = l.lin(&[(Fr::from(2), b)], -Fr::ONE);
    let yq = l.mul(sign, p.1);
    let a = proj(l, cxa, cya);
    let q = proj(l, p.0, yq);
    let t = cadd(l, a, q);
    cadd(l, t, a)
}

fn repr_bit(x: &Fr, i: usize) -> bool {
    x.to_repr().as_ref()[i / 8] >> (i % 8) & 1 == 1
}

/// The bits of the field modulus `r`, little-endian.
fn modulus_bits() -> Vec<bool> {
    // r = (−1) + 1: the bits of −1 are those of r − 1, which differs from r only in bit 0
    let minus_one = -Fr::ONE;
    let mut bits: Vec<bool> = (0..256).map(|i| repr_bit(&minus_one, i)).collect();
    bits[0] = true;
    bits
}

/// The inputs of one Schnorr check.
pub(crate) struct SchnorrInput {
    /// The signer's key.
    pub(crate) pk: (Cell, Cell),
    /// The commitment `R`.
    pub(crate) r: (Cell, Cell),
    /// The response `s` as two 128-bit halves.
    pub(crate) s_lo: Cell,
    /// The high half.
    pub(crate) s_hi: Cell,
    /// The challenge hash `h`.
    pub(crate) h: Cell,
}

/// `1` if the signature verifies (see the module docs), else `0`; never unsatisfiable.
pub(crate) fn schnorr_ok(l: &mut Layout, input: &SchnorrInput) -> Cell {
    let pk_ok = on_curve(l, input.pk.0, input.pk.1);
    let r_ok = on_curve(l, input.r.0, input.r.1);
    let (gx, gy) = table::generator();
    let (gx, gy) = (l.constant(gx), l.constant(gy));
    let px = l.select(pk_ok, input.pk.0, gx);
    let py = l.select(pk_ok, input.pk.1, gy);
    let v = var_base(l, (px, py), input.h);
    let f = fixed_base(l, input.s_lo, input.s_hi);
    let r = proj(l, input.r.0, input.r.1);
    let d = cadd(l, v, r);
    // F = D projectively
    let cross = |l: &mut Layout, i: usize| {
        let g = super::arith::Glue {
            ab: Fr::ONE,
            cd: -Fr::ONE,
            ..Default::default()
        };
        l.glue(g, [Some(f[i]), Some(d[2]), Some(d[i]), Some(f[2]), None])
    };
    let ex = cross(l, 0);
    let ey = cross(l, 1);
    let eq_x = l.is_zero(ex);
    let eq_y = l.is_zero(ey);
    l.and_all(&[pk_ok, r_ok, eq_x, eq_y])
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_base::halo2_proofs::halo2curves::{
        group::{Curve, Group},
        grumpkin::{Fr as Scalar, G1},
        CurveAffine,
    };
    use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

    fn proj_of(p: G1) -> [Fr; 3] {
        if bool::from(p.is_identity()) {
            return [Fr::ZERO, Fr::ONE, Fr::ZERO];
        }
        let a = p.to_affine();
        let c = a.coordinates().unwrap();
        [*c.x(), *c.y(), Fr::ONE]
    }

    fn same(a: [Fr; 3], b: [Fr; 3]) -> bool {
        a[0] * b[2] == b[0] * a[2] && a[1] * b[2] == b[1] * a[2] && a != [Fr::ZERO; 3]
    }

    #[test]
    fn complete_addition_matches_halo2curves_on_every_case() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let p = G1::random(&mut rng);
        let q = G1::random(&mut rng);
        let o = G1::identity();
        for (a, b) in [(p, q), (p, p), (p, -p), (p, o), (o, p), (o, o), (p + q, -q)] {
            assert!(same(native_add(proj_of(a), proj_of(b)), proj_of(a + b)));
        }
    }

    /// The bound the module docs rely on: every incomplete step's multiples stay below q.
    #[test]
    fn the_incomplete_steps_never_reach_an_exceptional_multiple() {
        use num_bigint::BigUint;
        let q = BigUint::from_bytes_le(&(-Scalar::ONE).to_repr()) + 1u8;
        for t in 0..VAR_STEPS {
            // the largest multiple after t steps is 3·2^t − 1 (2 at t = 0)
            let m_max = if t == 0 {
                BigUint::from(2u8)
            } else {
                (BigUint::from(3u8) << t) - 1u8
            };
            assert!(&m_max * 2u8 + 1u8 < q, "step {t}");
        }
        let t = VAR_STEPS;
        let m_max = (BigUint::from(3u8) << t) - 1u8;
        assert!(
            m_max * 2u8 + 1u8 >= q,
            "the last step needs the complete formula"
        );
        // the fixed-base windows: S < T and S + T < q for windows 1..=62
        let sixteen = BigUint::from(16u8);
        for w in 1..WINDOWS - 1 {
            let s_max: BigUint = (0..w)
                .map(|i| BigUint::from(17u8) * sixteen.pow(i as u32))
                .sum();
            let t_min = BigUint::from(2u8) * sixteen.pow(w as u32);
            let t_max = BigUint::from(17u8) * sixteen.pow(w as u32);
            assert!(s_max < t_min && s_max + t_max < q, "window {w}");
        }
    }
}
