//! Poseidon over BN254 `Fr`: Keel's one hash.
//!
//! The spec is fixed protocol-wide and is exactly the one halo2-base's `PoseidonHasher`
//! reproduces in the circuit:
//!
//! | parameter | value |
//! |---|---|
//! | width `T` / rate `RATE` | 3 / 2 |
//! | full rounds `R_F` / partial rounds `R_P` | 8 / 57 (x⁵ S-box, 128-bit security) |
//! | constants | Grain LFSR + Cauchy MDS (`SECURE_MDS = 0`), from halo2-base's `OptimizedPoseidonSpec` |
//! | initial state | `[2^64, 0, 0]` (capacity = 2^64 + output length − 1) |
//! | padding | inputs absorbed `RATE` at a time; after the last input a single `1`; when the input length is a multiple of `RATE` (zero included) one more permutation absorbs just that `1` |
//! | output | state element 1 after the last permutation |
//!
//! The permutation here is the optimised form (sparse partial-round matrices, as in Supplementary
//! Material B of the Poseidon paper) with the constants halo2-base derives; a unit test checks it
//! against a textbook permutation built from the raw round constants, and the crate's integration
//! tests check [`hash`] against halo2-base's `PoseidonHasher` inside a MockProver circuit.

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

/// The protocol's Poseidon spec, as halo2-base builds it (for the circuit side to share).
pub fn spec() -> &'static OptimizedPoseidonSpec<Fr, T, RATE> {
    &CONSTANTS.spec
}

struct Constants {
    spec: OptimizedPoseidonSpec<Fr, T, RATE>,
    /// `[2^64, 0, 0]`
    init: [Fr; T],
}

static CONSTANTS: LazyLock<Constants> = LazyLock::new(|| {
    let spec = OptimizedPoseidonSpec::<Fr, T, RATE>::new::<R_F, R_P, 0>();
    Constants {
        spec,
        init: [Fr::from_raw([0, 1, 0, 0]), Fr::ZERO, Fr::ZERO],
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

/// The Poseidon permutation after `absorb` has been added to the state (with the first round
/// constants folded in, as the optimised spec lays them out).
fn permute(state: &mut [Fr; T], absorb: &[Fr]) {
    debug_assert!(absorb.len() <= RATE);
    let c = &CONSTANTS.spec;
    let consts = c.constants();
    let mds = &c.mds_matrices().mds().as_ref();
    let pre_sparse = &c.mds_matrices().pre_sparse_mds().as_ref();
    let sparse = c.mds_matrices().sparse_matrices();
    let start = consts.start();
    let r_f_half = R_F / 2;

    // absorption with the first round constants and the `1` pad
    for (i, s) in state.iter_mut().enumerate() {
        *s += start[0][i];
    }
    for (i, a) in absorb.iter().enumerate() {
        state[i + 1] += a;
    }
    if absorb.len() < RATE {
        state[absorb.len() + 1] += Fr::ONE;
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

/// Hashes a fixed-length sequence of field elements (see the module docs for the padding).
pub fn hash(inputs: &[Fr]) -> Fr {
    let mut state = CONSTANTS.init;
    for chunk in inputs.chunks(RATE) {
        permute(&mut state, chunk);
    }
    if inputs.len().is_multiple_of(RATE) {
        permute(&mut state, &[]);
    }
    state[1]
}

/// Hash of two elements: a Merkle node, a running-hash step.
pub fn hash2(a: Fr, b: Fr) -> Fr {
    hash(&[a, b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::ff::PrimeField;

    /// Textbook Poseidon (ARK, S-box, MDS per round) from the raw constants, independent of the
    /// optimised layout above.
    fn reference_permute(state: &mut [Fr; T], raw: &[[Fr; T]], mds: &[[Fr; T]; T]) {
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

    /// The sponge of the module docs over [`reference_permute`], with the raw round constants and
    /// MDS generated by poseidon-primitives (the generator halo2-base optimises from).
    fn reference_hash(inputs: &[Fr]) -> Fr {
        use poseidon_primitives::poseidon::primitives::Spec;
        #[derive(Debug)]
        struct Gen;
        impl Spec<Fr, T, RATE> for Gen {
            fn full_rounds() -> usize {
                R_F
            }
            fn partial_rounds() -> usize {
                R_P
            }
            fn sbox(val: Fr) -> Fr {
                val.pow_vartime([5])
            }
            fn secure_mds() -> usize {
                0
            }
        }
        let (raw, mds, _) = Gen::constants();
        let mut state = [Fr::from_raw([0, 1, 0, 0]), Fr::ZERO, Fr::ZERO];
        let absorb = |state: &mut [Fr; T], chunk: &[Fr]| {
            for (i, a) in chunk.iter().enumerate() {
                state[i + 1] += a;
            }
            if chunk.len() < RATE {
                state[chunk.len() + 1] += Fr::ONE;
            }
            reference_permute(state, &raw, &mds);
        };
        for chunk in inputs.chunks(RATE) {
            absorb(&mut state, chunk);
        }
        if inputs.len().is_multiple_of(RATE) {
            absorb(&mut state, &[]);
        }
        state[1]
    }

    #[test]
    fn optimised_permutation_matches_textbook() {
        for len in 0..8u64 {
            let inputs: Vec<Fr> = (0..len).map(|i| Fr::from(i * 7919 + 3) - Fr::ONE).collect();
            assert_eq!(hash(&inputs), reference_hash(&inputs), "len {len}");
        }
    }

    #[test]
    fn padding_distinguishes_lengths() {
        // [] vs [0] vs [0, 0] must all differ: the `1` pad separates them
        let a = hash(&[]);
        let b = hash(&[Fr::ZERO]);
        let c = hash(&[Fr::ZERO, Fr::ZERO]);
        assert!(a != b && b != c && a != c);
    }

    #[test]
    fn known_answer() {
        // Pinned so that a change of spec (constants, padding, rounds) cannot go unnoticed.
        let h = hash(&[Fr::from(1), Fr::from(2)]);
        let hex: String = h
            .to_repr()
            .iter()
            .rev()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, KAT_HASH_1_2, "Poseidon spec changed");
    }

    // Pinned from this implementation after it was shown equal to the textbook permutation above and
    // to halo2-base's circuit hasher (tests/it/poseidon_circuit.rs); big-endian hex.
    const KAT_HASH_1_2: &str = "305df2f9f9f1c0b591427aa9fd8ff8b8b8ad8a16953065fca066cb6a69deff53";
}
