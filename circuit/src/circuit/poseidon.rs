//! The Poseidon permutation chip: 17 rows of 7 cells per permutation, for `keel_state::poseidon`'s
//! exact spec (width 3, 8 full and 57 partial rounds).
//!
//! The chip lays out the textbook rounds (`s += RC[r]`, S-box, `s = MDS·s`), keeping the state
//! "pre-ARKed" (round constants already added) between rows:
//!
//! ```text
//!  row 0      perm_first  [x0 x1 x2 | b0 b1 b2 | ·]   x raw input; rounds 0, 1
//!  row 1      full        [a | b | ·]                  rounds 2, 3
//!  rows 2–12  part5       [a0 a1 a2 | x2 x3 x4 x5]     rounds 4–58, five per row (xᵢ: S-box inputs)
//!  row 13     part2       [a0 a1 a2 | x2 · · ·]        rounds 59, 60 (57 = 11·5 + 2)
//!  rows 14–15 full        [a | b | ·]                  rounds 61–64 (the last adds no constant)
//!  row 16     output      [o0 o1 o2 | · · · ·]         free columns carry the next gate's inputs
//! ```
//!
//! The output row is where a sponge goes on: `absorb` (two more inputs) or `merkle` (the next
//! tree level) constrains the next permutation's row 0 from it, so chained permutations cost 17
//! rows each, with no row in between.

use std::sync::LazyLock;

use halo2_base::halo2_proofs::halo2curves::ff::Field;
use keel_state::{poseidon, Fr};

use super::layout::{Cell, Layout, Sel, Tag};

/// Rows per permutation.
pub(crate) const ROWS: usize = 17;
const PART5_ROWS: usize = 11;

fn pow5(x: Fr) -> Fr {
    x.square().square() * x
}

fn mds_mul(s: [Fr; 3]) -> [Fr; 3] {
    let (_, m) = poseidon::textbook();
    std::array::from_fn(|i| m[i][0] * s[0] + m[i][1] * s[1] + m[i][2] * s[2])
}

/// Per-row constants `k0..k6` of a permutation block (the same for every permutation).
static COEFFICIENTS: LazyLock<Vec<[Fr; 7]>> = LazyLock::new(|| {
    let (rc, m) = poseidon::textbook();
    let zero = [Fr::ZERO; 3];
    let rc_at = |r: usize| if r < rc.len() { rc[r] } else { zero };
    let full = |r: usize| {
        let (b, n) = (rc_at(r + 1), rc_at(r + 2));
        [b[0], b[1], b[2], n[0], n[1], n[2], Fr::ZERO]
    };
    // the constants folded into each constraint of `rounds` partial rounds from round `r`
    let part = |r: usize, rounds: usize| {
        let mut out = [Fr::ZERO; 7];
        let (mut c1, mut c2) = (Fr::ZERO, Fr::ZERO);
        for j in 0..rounds {
            let next = rc_at(r + j + 1);
            let c0 = m[0][1] * c1 + m[0][2] * c2 + next[0];
            let n1 = m[1][1] * c1 + m[1][2] * c2 + next[1];
            let n2 = m[2][1] * c1 + m[2][2] * c2 + next[2];
            out[j] = c0;
            if j + 1 == rounds {
                out[j + 1] = n1;
                out[j + 2] = n2;
            }
            (c1, c2) = (n1, n2);
        }
        out
    };
    let mut rows = vec![full(0), full(2)];
    for i in 0..PART5_ROWS {
        rows.push(part(4 + 5 * i, 5));
    }
    rows.push(part(4 + 5 * PART5_ROWS, 2));
    rows.push(full(61));
    rows.push(full(63));
    rows
});

/// The 17 rows of cells of a permutation of raw input `x` (unused cells 0).
pub(crate) fn trace(x: [Fr; 3]) -> Vec<[Fr; 7]> {
    let (rc, _) = poseidon::textbook();
    let rounds = rc.len();
    let zero = [Fr::ZERO; 3];
    let rc_at = |r: usize| if r < rounds { rc[r] } else { zero };
    // one textbook round on a pre-ARKed state, returning the next pre-ARKed state
    let round = |s: [Fr; 3], r: usize, full: bool| {
        let boxed = if full {
            s.map(pow5)
        } else {
            [pow5(s[0]), s[1], s[2]]
        };
        let mut n = mds_mul(boxed);
        for (v, c) in n.iter_mut().zip(rc_at(r + 1)) {
            *v += c;
        }
        n
    };
    let mut rows = Vec::with_capacity(ROWS);
    let mut a = [x[0] + rc[0][0], x[1] + rc[0][1], x[2] + rc[0][2]];
    let mut r = 0;
    let full_pair = |a: &mut [Fr; 3], r: &mut usize, first: Option<[Fr; 3]>| {
        let b = round(*a, *r, true);
        let shown = first.unwrap_or(*a);
        let row = [shown[0], shown[1], shown[2], b[0], b[1], b[2], Fr::ZERO];
        *a = round(b, *r + 1, true);
        *r += 2;
        row
    };
    rows.push(full_pair(&mut a, &mut r, Some(x)));
    rows.push(full_pair(&mut a, &mut r, None));
    for rounds in std::iter::repeat_n(5, PART5_ROWS).chain([2]) {
        let mut row = [a[0], a[1], a[2], Fr::ZERO, Fr::ZERO, Fr::ZERO, Fr::ZERO];
        for j in 0..rounds {
            a = round(a, r, false);
            r += 1;
            if j + 1 < rounds {
                row[3 + j] = a[0];
            }
        }
        rows.push(row);
    }
    rows.push(full_pair(&mut a, &mut r, None));
    rows.push(full_pair(&mut a, &mut r, None));
    debug_assert_eq!(r, rounds);
    rows.push([a[0], a[1], a[2], Fr::ZERO, Fr::ZERO, Fr::ZERO, Fr::ZERO]);
    rows
}

/// A laid-out permutation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Perm {
    /// Its output row (where a chaining gate may go).
    pub(crate) out_row: usize,
    /// The output state.
    pub(crate) out: [Cell; 3],
}

/// Lays out one permutation whose raw input is `x`. Row 0's cells are returned too, so the
/// caller can tie them to where the input comes from (copies, or the previous block's gate).
pub(crate) fn permutation(l: &mut Layout, x: [Fr; 3], x_tags: [Tag; 3]) -> (Perm, [Cell; 3]) {
    let rows = trace(x);
    let start = l.rows(ROWS, "poseidon");
    let coefficients = &*COEFFICIENTS;
    let mut input = [None; 3];
    let mut out = [None; 3];
    for (i, row) in rows.iter().enumerate() {
        let at = start + i;
        let sel = match i {
            0 => Some(Sel::PermFirst),
            1 | 14 | 15 => Some(Sel::Full),
            13 => Some(Sel::Part2),
            ROWS_LAST => None,
            _ => Some(Sel::Part5),
        };
        let used = match i {
            13 => 4,
            ROWS_LAST => 3,
            2..=12 => 7,
            _ => 6,
        };
        for (col, v) in row.iter().enumerate().take(used) {
            let tag = match i {
                0 if col < 3 => x_tags[col],
                ROWS_LAST => Tag::PoseidonOut,
                _ => Tag::PoseidonRound,
            };
            let c = l.put(at, col, *v, tag);
            if i == 0 && col < 3 {
                input[col] = Some(c);
            }
            if i == ROWS_LAST {
                out[col] = Some(c);
            }
        }
        if let Some(sel) = sel {
            l.enable(sel, at);
            for (col, k) in coefficients[i].iter().enumerate() {
                if !k.is_zero_vartime() {
                    l.coefficient(col, at, *k);
                }
            }
        }
    }
    let perm = Perm {
        out_row: start + ROWS_LAST,
        out: out.map(|c| c.expect("the output row is assigned")),
    };
    (perm, input.map(|c| c.expect("row 0 is assigned")))
}

const ROWS_LAST: usize = ROWS - 1;

/// `sponge(domain, inputs)` with the capacity given as a cell (`cap`), as `keel_state::poseidon`
/// defines it: the first permutation's row 0 copies `(cap, m₁, m₂)`, every further pair is
/// absorbed by the previous output row's `absorb` gate. Returns the last permutation (its
/// element 1 is the hash).
pub(crate) fn sponge(l: &mut Layout, cap: Cell, inputs: &[Cell]) -> Perm {
    assert!(!inputs.is_empty(), "a sponge absorbs at least one input");
    let zero = l.constant(Fr::ZERO);
    let pair = |i: usize| {
        (
            inputs[2 * i],
            inputs.get(2 * i + 1).copied().unwrap_or(zero),
        )
    };
    let (m1, m2) = pair(0);
    let x = [l.v(cap), l.v(m1), l.v(m2)];
    let (mut perm, row0) = permutation(l, x, [Tag::Plain; 3]);
    for (c, src) in row0.iter().zip([cap, m1, m2]) {
        l.eq(*c, src);
    }
    for i in 1..inputs.len().div_ceil(2) {
        let (m1, m2) = pair(i);
        let at = perm.out_row;
        l.enable(Sel::Absorb, at);
        l.put_copy(at, 3, m1, Tag::Plain);
        l.put_copy(at, 4, m2, Tag::Plain);
        let o = perm.out.map(|c| l.v(c));
        let x = [o[0], o[1] + l.v(m1), o[2] + l.v(m2)];
        perm = permutation(l, x, [Tag::Plain; 3]).0;
    }
    perm
}

/// [`sponge`] with the capacity of `domain` over `inputs.len()` inputs.
pub(crate) fn hash(l: &mut Layout, domain: poseidon::Domain, inputs: &[Cell]) -> Cell {
    let cap = l.constant(poseidon::capacity(domain, inputs.len()));
    sponge(l, cap, inputs).out[1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_ends_in_the_native_permutation() {
        for seed in 0..4u64 {
            let x = [Fr::from(seed), Fr::from(seed * 31 + 7), -Fr::from(seed + 2)];
            let mut native = x;
            poseidon::permute(&mut native);
            let rows = trace(x);
            assert_eq!(rows.len(), ROWS);
            assert_eq!(rows[ROWS - 1][..3], native);
        }
        assert_eq!(COEFFICIENTS.len(), ROWS - 1);
    }
}
