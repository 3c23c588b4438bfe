//! The native Poseidon permutation equals the one halo2-base's `PoseidonHasher` computes in a
//! circuit: an implementation written independently of Keel's, over the same spec.
//!
//! halo2-base's hasher is a padded sponge (`[2^64, 0, 0]`, a `1` after the input), not Keel's
//! domain sponges, so the test builds that sponge from [`poseidon::permute`] and compares. Each
//! case hashes in a MockProver circuit and *constrains* the circuit's output to equal the native
//! value loaded as a constant, so a disagreement fails the circuit (not just an assert).

use halo2_base::{
    halo2_proofs::halo2curves::ff::{Field, PrimeField},
    poseidon::hasher::PoseidonHasher,
    utils::testing::base_test,
};
use keel_state::{poseidon, Fr};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

fn inputs() -> Vec<Vec<Fr>> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut cases: Vec<Vec<Fr>> = vec![
        vec![],
        vec![Fr::ZERO],
        vec![Fr::ONE, Fr::from(2)],
        vec![-Fr::ONE; 3],
        (0..5).map(Fr::from).collect(), // the width of a transfer's Schnorr challenge
        (0..6).map(Fr::from).collect(), // the width of a withdrawal's challenge
    ];
    for len in [1usize, 2, 3, 4, 7, 8] {
        cases.push((0..len).map(|_| Fr::random(&mut rng)).collect());
    }
    cases
}

/// halo2-base's padded sponge, over Keel's permutation.
fn padded_sponge(inputs: &[Fr]) -> Fr {
    let mut state = [Fr::from_u128(1 << 64), Fr::ZERO, Fr::ZERO];
    let mut absorb = |chunk: &[Fr]| {
        for (i, x) in chunk.iter().enumerate() {
            state[i + 1] += x;
        }
        if chunk.len() < poseidon::RATE {
            state[chunk.len() + 1] += Fr::ONE;
        }
        poseidon::permute(&mut state);
    };
    for chunk in inputs.chunks(poseidon::RATE) {
        absorb(chunk);
    }
    if inputs.len().is_multiple_of(poseidon::RATE) {
        absorb(&[]);
    }
    state[1]
}

#[test]
fn native_permutation_matches_halo2_base_hasher_in_mock_prover() {
    let cases = inputs();
    let native: Vec<Fr> = cases.iter().map(|c| padded_sponge(c)).collect();
    let circuit_values = base_test().k(12).run(|ctx, range| {
        let gate = &range.gate;
        let mut hasher = PoseidonHasher::<Fr, { poseidon::T }, { poseidon::RATE }>::new(
            poseidon::spec().clone(),
        );
        hasher.initialize_consts(ctx, gate);
        let mut out = Vec::new();
        for (case, expected) in cases.iter().zip(&native) {
            let assigned = ctx.assign_witnesses(case.iter().copied());
            let h = hasher.hash_fix_len_array(ctx, gate, &assigned);
            let want = ctx.load_constant(*expected);
            ctx.constrain_equal(&h, &want);
            out.push(*h.value());
        }
        out
    });
    assert_eq!(circuit_values, native);
}

#[test]
fn a_wrong_native_value_fails_the_circuit() {
    // The same circuit with the expected value off by one must not be satisfied: shows the
    // agreement test above can fail.
    let case = vec![Fr::from(3), Fr::from(4)];
    let wrong = padded_sponge(&case) + Fr::ONE;
    base_test().k(12).expect_satisfied(false).run(|ctx, range| {
        let gate = &range.gate;
        let mut hasher = PoseidonHasher::<Fr, { poseidon::T }, { poseidon::RATE }>::new(
            poseidon::spec().clone(),
        );
        hasher.initialize_consts(ctx, gate);
        let assigned = ctx.assign_witnesses(case.iter().copied());
        let h = hasher.hash_fix_len_array(ctx, gate, &assigned);
        let want = ctx.load_constant(wrong);
        ctx.constrain_equal(&h, &want);
    });
}
