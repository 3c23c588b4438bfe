//! The glue: one generic arithmetic gate per row, and range checks by lookup.
//!
//! A glue row holds `[z | a b c d e | f]` with `f = k0·a·b + k1·c·d + k2·a + k3·b + k4·c + k5·d +
//! k6·e`; its inputs are copies of cells elsewhere. Column 0 of the glue rows holds range checks'
//! running sums, `z_{i+1} = (z_i − limb_i)/256` with every limb looked up in the table under its
//! width (8 bits, or fewer for the top limb), and the last `z` constrained to 0. Every operation
//! here computes its output's value as it lays the row out.

use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use keel_state::Fr;

use super::{
    layout::{Cell, Layout, Sel, Tag},
    table::LIMB_BITS,
};

fn two_pow(n: u32) -> Fr {
    Fr::from(2).pow_vartime([u64::from(n)])
}

/// The coefficients of one glue row, `f = k0·a·b + k1·c·d + k2·a + k3·b + k4·c + k5·d + k6·e`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Glue {
    pub(crate) ab: Fr,
    pub(crate) cd: Fr,
    pub(crate) lin: [Fr; 5],
}

impl Layout {
    /// One glue row on inputs `[a, b, c, d, e]` (absent inputs are 0); returns `f`.
    pub(crate) fn glue(&mut self, g: Glue, ins: [Option<Cell>; 5]) -> Cell {
        let v = ins.map(|c| c.map_or(Fr::ZERO, |c| self.v(c)));
        let f = g.ab * v[0] * v[1]
            + g.cd * v[2] * v[3]
            + g.lin.iter().zip(&v).map(|(k, x)| *k * x).sum::<Fr>();
        let row = self.glue_row();
        for (i, (c, value)) in ins.iter().zip(v).enumerate() {
            let cell = self.gput(row, 1 + i, value, Tag::Plain);
            if let Some(src) = c {
                self.eq(cell, *src);
            }
        }
        let coefficients = [g.ab, g.cd, g.lin[0], g.lin[1], g.lin[2], g.lin[3], g.lin[4]];
        for (col, k) in coefficients.iter().enumerate() {
            if !k.is_zero_vartime() {
                self.gcoefficient(col, row, *k);
            }
        }
        self.gput(row, 6, f, Tag::GlueOut)
    }

    /// `Σ kᵢ·xᵢ + constant` (any number of terms; four per row).
    pub(crate) fn lin(&mut self, terms: &[(Fr, Cell)], constant: Fr) -> Cell {
        let one = self.constant(Fr::ONE);
        let mut acc: Option<Cell> = None;
        let mut rest = terms;
        let mut constant = Some(constant);
        loop {
            let mut ins = [None; 5];
            let mut g = Glue::default();
            let mut slot = 0;
            if let Some(a) = acc {
                ins[0] = Some(a);
                g.lin[0] = Fr::ONE;
                slot = 1;
            }
            if let Some(k) = constant.take() {
                if !k.is_zero_vartime() {
                    ins[4] = Some(one);
                    g.lin[4] = k;
                }
            }
            while slot < 4 && !rest.is_empty() {
                ins[slot] = Some(rest[0].1);
                g.lin[slot] = rest[0].0;
                rest = &rest[1..];
                slot += 1;
            }
            let out = self.glue(g, ins);
            if rest.is_empty() {
                return out;
            }
            acc = Some(out);
        }
    }

    /// `a + b`
    pub(crate) fn add(&mut self, a: Cell, b: Cell) -> Cell {
        self.lin(&[(Fr::ONE, a), (Fr::ONE, b)], Fr::ZERO)
    }

    /// `a − b`
    pub(crate) fn sub(&mut self, a: Cell, b: Cell) -> Cell {
        self.lin(&[(Fr::ONE, a), (-Fr::ONE, b)], Fr::ZERO)
    }

    /// `a·b`
    pub(crate) fn mul(&mut self, a: Cell, b: Cell) -> Cell {
        let g = Glue {
            ab: Fr::ONE,
            ..Glue::default()
        };
        self.glue(g, [Some(a), Some(b), None, None, None])
    }

    /// `s ? x : y` as `s·x − s·y + y` (`s` a bit).
    pub(crate) fn select(&mut self, s: Cell, x: Cell, y: Cell) -> Cell {
        let mut g = Glue {
            ab: Fr::ONE,
            cd: -Fr::ONE,
            ..Glue::default()
        };
        g.lin[4] = Fr::ONE;
        self.glue(g, [Some(s), Some(x), Some(s), Some(y), Some(y)])
    }

    /// `1 − a`
    pub(crate) fn not(&mut self, a: Cell) -> Cell {
        self.lin(&[(-Fr::ONE, a)], Fr::ONE)
    }

    /// `a·b` for bits.
    pub(crate) fn and(&mut self, a: Cell, b: Cell) -> Cell {
        self.mul(a, b)
    }

    /// The conjunction of bits.
    pub(crate) fn and_all(&mut self, bits: &[Cell]) -> Cell {
        let mut acc = bits[0];
        for b in &bits[1..] {
            acc = self.and(acc, *b);
        }
        acc
    }

    /// `a + b − a·b` for bits.
    pub(crate) fn or(&mut self, a: Cell, b: Cell) -> Cell {
        let mut g = Glue {
            ab: -Fr::ONE,
            ..Glue::default()
        };
        g.lin[0] = Fr::ONE;
        g.lin[1] = Fr::ONE;
        self.glue(g, [Some(a), Some(b), None, None, None])
    }

    /// Constrains `a = 0`.
    pub(crate) fn assert_zero(&mut self, a: Cell) {
        self.eq_const(a, Fr::ZERO);
    }

    /// Constrains `a ∈ {0, 1}`.
    pub(crate) fn assert_bit(&mut self, a: Cell) {
        let mut g = Glue {
            ab: Fr::ONE,
            ..Glue::default()
        };
        g.lin[0] = -Fr::ONE;
        let f = self.glue(g, [Some(a), Some(a), None, None, None]);
        self.assert_zero(f);
    }

    /// `1` if `a = c`, else `0` (`c` a constant): `out = 1 − (a − c)·inv`, `(a − c)·out = 0`.
    pub(crate) fn is_equal_const(&mut self, a: Cell, c: Fr) -> Cell {
        let d = self.v(a) - c;
        let inv = self.load(d.invert().unwrap_or(Fr::ZERO));
        let one = self.constant(Fr::ONE);
        let mut g = Glue {
            ab: -Fr::ONE,
            ..Glue::default()
        };
        g.lin[1] = c;
        g.lin[4] = Fr::ONE;
        let out = self.glue(g, [Some(a), Some(inv), None, None, Some(one)]);
        let mut g = Glue {
            ab: Fr::ONE,
            ..Glue::default()
        };
        g.lin[1] = -c;
        let zero = self.glue(g, [Some(a), Some(out), None, None, None]);
        self.assert_zero(zero);
        out
    }

    /// `1` if `a = 0`, else `0`.
    pub(crate) fn is_zero(&mut self, a: Cell) -> Cell {
        self.is_equal_const(a, Fr::ZERO)
    }

    /// `1` if `a = b`, else `0`: `out = 1 − (a − b)·inv`, `(a − b)·out = 0`.
    pub(crate) fn is_equal(&mut self, a: Cell, b: Cell) -> Cell {
        let d = self.v(a) - self.v(b);
        let inv = self.load(d.invert().unwrap_or(Fr::ZERO));
        let one = self.constant(Fr::ONE);
        let mut g = Glue {
            ab: -Fr::ONE,
            cd: Fr::ONE,
            ..Glue::default()
        };
        g.lin[4] = Fr::ONE;
        let out = self.glue(g, [Some(a), Some(inv), Some(b), Some(inv), Some(one)]);
        let g = Glue {
            ab: Fr::ONE,
            cd: -Fr::ONE,
            ..Glue::default()
        };
        let zero = self.glue(g, [Some(a), Some(out), Some(b), Some(out), None]);
        self.assert_zero(zero);
        out
    }

    /// Constrains `a < 2^bits` by lookup; returns the running sum (`z[i] = a >> 8i`, `z[0]` a
    /// copy of `a`, the last 0).
    pub(crate) fn range(&mut self, a: Cell, bits: u32) -> Vec<Cell> {
        if bits == 0 {
            self.assert_zero(a);
            return vec![a];
        }
        let limbs = bits.div_ceil(LIMB_BITS);
        let top = bits - LIMB_BITS * (limbs - 1);
        let start = self.z_rows(limbs as usize + 1);
        let mut z = Vec::with_capacity(limbs as usize + 1);
        let mut value = self.v(a);
        let shift = Fr::from(256).invert().expect("256 is invertible");
        for i in 0..=limbs {
            let row = start + i as usize;
            let c = self.gput(row, 0, value, Tag::RangeZ);
            if i < limbs {
                self.genable(Sel::Range, row);
                let width = if i + 1 == limbs { top } else { LIMB_BITS };
                self.gcoefficient(7, row, Fr::from(u64::from(width)));
                let limb = Fr::from(u64::from(value.to_repr().as_ref()[0]));
                value = (value - limb) * shift;
            }
            z.push(c);
        }
        self.eq(z[0], a);
        self.assert_zero(z[limbs as usize]);
        z
    }

    /// `a` for `a < 2^65`: the bit `a ≥ 2^64` (the running sum's last limb is one bit wide).
    pub(crate) fn bit64(&mut self, a: Cell) -> Cell {
        let z = self.range(a, 65);
        z[8]
    }

    /// `2^n` as a field element.
    pub(crate) fn two_pow(n: u32) -> Fr {
        two_pow(n)
    }
}
