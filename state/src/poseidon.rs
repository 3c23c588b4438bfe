//! Poseidon over BN254 `Fr`: Keel's one hash.
//!
//! The permutation is fixed protocol-wide and is exactly the one halo2-base's `PoseidonHasher`
//! and Keel's own circuit chip compute:
//!
//! | parameter | value |
//! |---|---|
//! | width `T` / rate `RATE` | 3 / 2 |
//! | full rounds `R_F` / partial rounds `R_P` | 8 / 57 (x⁵ S-box, 128-bit security) |
//! | constants | Grain LFSR + Cauchy MDS (`SECURE_MDS = 0`), from halo2-base's `OptimizedPoseidonSpec` |
//!
//! Every use of the permutation is a fixed-length sponge whose capacity element names its
//! [`Domain`] and its input length ([`capacity`]): the state starts as `[capacity, 0, 0]`, the
//! inputs are added two at a time to elements 1 and 2 (a missing last element counts as 0), the
//! state is permuted after each pair, and the output is element 1. The length is in the capacity,
//! so no padding permutation is needed and inputs of different lengths or domains never share a
//! sponge. A two-input hash (a tree node, a chain step) is one permutation:
//!
//! ```text
//! compress(domain, a, b) = P([capacity(domain, 2), a, b])[1]
//! sponge(domain, m₁ … mₙ) : s = [capacity(domain, n), 0, 0]; for each pair: s[1] += m, s[2] += m′; s = P(s); out s[1]
//! ```
//!
//! The permutation is the Poseidon reference implementation's `x5_254_3` instance: a unit test
//! checks it against the test vector its authors publish. It runs here in the optimised form
//! (sparse partial-round matrices, as in Supplementary Material B of the Poseidon paper) with the
//! constants halo2-base derives; a unit test checks it against a textbook permutation built from
//! the raw round constants, and the prover's tests check the circuit chip against [`permute`].

use std::sync::LazyLock;

use halo2_base::poseidon::hasher::spec::OptimizedPoseidonSpec;
use halo2_proofs::halo2curves::ff::Field;

use crate::field::Fr;

/// Sponge width.
pub const T: usize = 3;
/// Sponge rate.
pub const RATE: usize = 2;
/// Full rounds.
pub const R_F: usize = 8;
/// Partial rounds.
pub const R_P: usize = 57;

/// What a sponge is used for; its number is part of the capacity element, so that no two uses
/// can produce the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Domain {
    /// An inner node of the state tree: `(left, right)`.
    Node = 1,
    /// An account leaf: `(pk.x, pk.y, balance, nonce)`.
    Leaf = 2,
    /// An operation's entry hash (what the data commitment and the queue absorb).
    Entry = 3,
    /// A Schnorr challenge: `(R.x, R.y, pk.x, pk.y, m₁ … mₙ)`.
    Challenge = 4,
    /// One step of the data commitment chain: `(previous, entry)`.
    Data = 5,
    /// The data commitment itself: `(chain, count)`.
    Batch = 6,
    /// One step of the L1 queue's running hash: `(previous, entry)`.
    Queue = 7,
}

/// The capacity element of a sponge in `domain` over `len` inputs: `domain·2^32 + len`.
pub fn capacity(domain: Domain, len: usize) -> Fr {
    debug_assert!(len < 1 << 32);
    Fr::from((domain as u64) << 32 | len as u64)
}

/// The protocol's Poseidon spec, as halo2-base builds it (for the circuit side to share).
pub fn spec() -> &'static OptimizedPoseidonSpec<Fr, T, RATE> {
    &CONSTANTS.spec
}

/// The round constants (one triple per round, `R_F + R_P` rounds) and the MDS matrix of the
/// textbook permutation: `s += RC[r]; S-box (all three elements in a full round, the first in a
/// partial one); s = MDS·s`. [`permute`] computes the same permutation in its optimised form; the
/// circuit chip lays out the textbook rounds.
pub fn textbook() -> (&'static [[Fr; T]], &'static [[Fr; T]; T]) {
    (&CONSTANTS.round_constants, &CONSTANTS.mds)
}

struct Constants {
    spec: OptimizedPoseidonSpec<Fr, T, RATE>,
    round_constants: Vec<[Fr; T]>,
    mds: [[Fr; T]; T],
}

/// The generator halo2-base's spec is built from, with the protocol's parameters.
#[derive(Debug)]
struct Generator;

impl poseidon_primitives::poseidon::primitives::Spec<Fr, T, RATE> for Generator {
    fn full_rounds() -> usize {
        R_F
    }
    fn partial_rounds() -> usize {
        R_P
    }
    fn sbox(val: Fr) -> Fr {
        pow5(val)
    }
    fn secure_mds() -> usize {
        0
    }
}

static CONSTANTS: LazyLock<Constants> = LazyLock::new(|| {
    use poseidon_primitives::poseidon::primitives::Spec;
    let (round_constants, mds, _) = Generator::constants();
    Constants {
        spec: OptimizedPoseidonSpec::<Fr, T, RATE>::new::<R_F, R_P, 0>(),
        round_constants,
        mds,
    }
});

#[inline(always)]
fn pow5(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

#[inline(always)]
fn mds_mul(m: &[[Fr; T]; T], s: &[Fr; T]) -> [Fr; T] {
    let mut out = [Fr::ZERO; T];
    for (o, row) in out.iter_mut().zip(m) {
        *o = row[0] * s[0] + row[1] * s[1] + row[2] * s[2];
    }
    out
}

/// The Poseidon permutation, in place.
pub fn permute(state: &mut [Fr; T]) {
    let c = &CONSTANTS.spec;
    let consts = c.constants();
    let mds = &c.mds_matrices().mds().as_ref();
    let pre_sparse = &c.mds_matrices().pre_sparse_mds().as_ref();
    let sparse = c.mds_matrices().sparse_matrices();
    let start = consts.start();
    let r_f_half = R_F / 2;

    for (s, k) in state.iter_mut().zip(&start[0]) {
        *s += k;
    }
    // first half of the full rounds
    for rc in start.iter().skip(1).take(r_f_half - 1) {
        for (s, k) in state.iter_mut().zip(rc) {
            *s = pow5(*s) + k;
        }
        *state = mds_mul(mds, state);
    }
    let last = start.last().expect("spec has start constants");
    for (s, k) in state.iter_mut().zip(last) {
        *s = pow5(*s) + k;
    }
    *state = mds_mul(pre_sparse, state);

    // partial rounds with sparse matrices
    for (k, m) in consts.partial().iter().zip(sparse) {
        state[0] = pow5(state[0]) + k;
        let row = m.row();
        let col_hat = m.col_hat();
        let s0 = state[0];
        let new0 = row[0] * s0 + row[1] * state[1] + row[2] * state[2];
        state[1] += s0 * col_hat[0];
        state[2] += s0 * col_hat[1];
        state[0] = new0;
    }

    // second half of the full rounds
    for rc in consts.end() {
        for (s, k) in state.iter_mut().zip(rc) {
            *s = pow5(*s) + k;
        }
        *state = mds_mul(mds, state);
    }
    for s in state.iter_mut() {
        *s = pow5(*s);
    }
    *state = mds_mul(mds, state);
}

/// The optimised permutation's constants, exactly as [`permute`] applies them: for generators
/// that emit the permutation in another language (the on-chain Poseidon), so that it cannot
/// drift from this one.
#[derive(Clone, Debug)]
pub struct Optimised {
    /// Added before the first round, then after the S-boxes of each of the first `R_F/2` rounds.
    pub start: Vec<[Fr; T]>,
    /// Added to element 0 after its S-box in each partial round.
    pub partial: Vec<Fr>,
    /// Added after the S-boxes of each of the last `R_F/2 − 1` full rounds.
    pub end: Vec<[Fr; T]>,
    /// The MDS matrix (full rounds).
    pub mds: [[Fr; T]; T],
    /// The matrix applied after the first half of the full rounds.
    pub pre_sparse: [[Fr; T]; T],
    /// Each partial round's sparse matrix: its first row and the column below its corner.
    pub sparse: Vec<([Fr; T], [Fr; T - 1])>,
}

/// [`Optimised`], from the protocol's spec.
pub fn optimised() -> Optimised {
    let c = &CONSTANTS.spec;
    let consts = c.constants();
    Optimised {
        start: consts.start().clone(),
        partial: consts.partial().clone(),
        end: consts.end().clone(),
        mds: *c.mds_matrices().mds().as_ref(),
        pre_sparse: *c.mds_matrices().pre_sparse_mds().as_ref(),
        sparse: c
            .mds_matrices()
            .sparse_matrices()
            .iter()
            .map(|m| (*m.row(), *m.col_hat()))
            .collect(),
    }
}

/// The fixed-length sponge of the module docs: `inputs` in `domain`.
pub fn sponge(domain: Domain, inputs: &[Fr]) -> Fr {
    let mut state = [capacity(domain, inputs.len()), Fr::ZERO, Fr::ZERO];
    for chunk in inputs.chunks(RATE) {
        state[1] += chunk[0];
        if let Some(b) = chunk.get(1) {
            state[2] += b;
        }
        permute(&mut state);
    }
    state[1]
}

/// A two-input hash in `domain` (one permutation): a tree node, a chain step.
pub fn compress(domain: Domain, a: Fr, b: Fr) -> Fr {
    let mut state = [capacity(domain, 2), a, b];
    permute(&mut state);
    state[1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::ff::PrimeField;

    /// Textbook Poseidon (ARK, S-box, MDS per round) from the raw constants, independent of the
    /// optimised layout above.
    fn reference_permute(state: &mut [Fr; T]) {
        let (raw, mds) = textbook();
        let half = R_F / 2;
        for (r, rc) in raw.iter().enumerate() {
            for (s, k) in state.iter_mut().zip(rc) {
                *s += k;
            }
            if r < half || r >= half + R_P {
                for s in state.iter_mut() {
                    *s = pow5(*s);
                }
            } else {
                state[0] = pow5(state[0]);
            }
            *state = mds_mul(mds, state);
        }
    }

    fn hex(x: &Fr) -> String {
        x.to_repr()
            .iter()
            .rev()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn optimised_permutation_matches_textbook() {
        for seed in 0..8u64 {
            let start = [
                Fr::from(seed * 7919 + 3) - Fr::ONE,
                Fr::from(seed).square() + Fr::from(11),
                -Fr::from(seed + 1),
            ];
            let (mut a, mut b) = (start, start);
            permute(&mut a);
            reference_permute(&mut b);
            assert_eq!(a, b, "seed {seed}");
        }
    }

    #[test]
    fn sponges_differ_by_domain_and_length() {
        let z = Fr::ZERO;
        let all = [
            sponge(Domain::Node, &[z, z]),
            sponge(Domain::Leaf, &[z, z]),
            sponge(Domain::Node, &[z]),
            sponge(Domain::Node, &[z, z, z]),
            sponge(Domain::Node, &[]),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            compress(Domain::Queue, Fr::ONE, z),
            sponge(Domain::Queue, &[Fr::ONE, z])
        );
        // an odd-length sponge's last pair is completed with 0, the length tells them apart
        let mut s = [capacity(Domain::Leaf, 3), Fr::from(1), Fr::from(2)];
        permute(&mut s);
        s[1] += Fr::from(3);
        permute(&mut s);
        assert_eq!(sponge(Domain::Leaf, &[1, 2, 3].map(Fr::from)), s[1]);
    }

    #[test]
    fn known_answer() {
        // Pinned so that a change of spec (constants, domains, capacities) cannot go unnoticed.
        assert_eq!(
            hex(&compress(Domain::Node, Fr::from(1), Fr::from(2))),
            KAT_NODE_1_2,
            "Poseidon spec changed"
        );
    }

    // Pinned from this implementation after it was shown equal to the textbook permutation above
    // and to the prover's circuit chip; big-endian hex.
    const KAT_NODE_1_2: &str = "191b7e4a0c34137f93533763f3844da0f6e22dd35ddc35b83720bf461a2bf21a";

    /// The test vector the Poseidon authors publish with their reference implementation
    /// (`poseidonperm_x5_254_3`, the permutation of `[0, 1, 2]` for BN254, width 3, x⁵, 8 full and
    /// 57 partial rounds): the permutation here is that one, bit for bit.
    #[test]
    fn the_permutation_matches_the_reference_implementation_vector() {
        let mut s = [Fr::from(0), Fr::from(1), Fr::from(2)];
        permute(&mut s);
        assert_eq!(
            s.map(|x| hex(&x)),
            [
                "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a",
                "0fca49b798923ab0239de1c9e7a4a9a2210312b6a2f616d18b5a87f9b628ae29",
                "0e7ae82e40091e63cbd4f16a6d16310b3729d4b6e138fcf54110e2867045a30c",
            ]
        );
    }
}
