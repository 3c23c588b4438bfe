//! The GPU NTT against halo2-axiom's `best_fft`, exact equality: forward and inverse at every
//! size from 2^1 to 2^16, cosets, and edge inputs (zero, one, r − 1, all equal, one spike), with
//! each limb width the device runs.

use halo2_proofs::halo2curves::{
    bn256::Fr,
    ff::{Field, PrimeField, WithSmallOrderMulGroup},
};
use keel_prover::gpu::{
    ntt::{omega, CpuNtt, GpuNtt, Ntt},
    Limbs,
};

use super::{ctx, limb_widths, rng};

fn random(log_n: u32, seed: u64) -> Vec<Fr> {
    let mut r = rng(seed);
    (0..1usize << log_n).map(|_| Fr::random(&mut r)).collect()
}

/// The largest size each limb width is checked at: 16-bit limbs cost lavapipe four times the
/// multiplications, and the arithmetic they share is checked at every size with 32-bit limbs.
fn largest(limbs: Limbs) -> u32 {
    if limbs == Limbs::U32 || !ctx().supports_int64() {
        16
    } else {
        12
    }
}

#[test]
fn forward_and_inverse_match_halo2_at_every_size() {
    let cpu = CpuNtt::new();
    for limbs in limb_widths() {
        let gpu = GpuNtt::new(ctx(), limbs).unwrap();
        for log_n in 1..=largest(limbs) {
            let a = random(log_n, u64::from(log_n));
            let (w, w_inv) = (omega(log_n), omega(log_n).invert().unwrap());
            let (mut want, mut got) = (a.clone(), a.clone());
            cpu.forward(&mut want, w, log_n).unwrap();
            gpu.forward(&mut got, w, log_n).unwrap();
            assert!(want == got, "{limbs:?}: forward 2^{log_n} differs");
            cpu.inverse(&mut want, w_inv, log_n).unwrap();
            gpu.inverse(&mut got, w_inv, log_n).unwrap();
            assert!(want == got, "{limbs:?}: inverse 2^{log_n} differs");
            assert!(got == a, "{limbs:?}: the inverse does not undo 2^{log_n}");
        }
    }
}

#[test]
fn cosets_match_halo2() {
    let cpu = CpuNtt::new();
    let generators = [Fr::MULTIPLICATIVE_GENERATOR, Fr::ZETA, Fr::from(7)];
    for limbs in limb_widths() {
        let gpu = GpuNtt::new(ctx(), limbs).unwrap();
        for log_n in [1, 2, 5, 10, 13] {
            for (k, g) in generators.iter().enumerate() {
                let a = random(log_n, 100 + k as u64);
                let w = omega(log_n);
                let (mut want, mut got) = (a.clone(), a);
                cpu.coset_forward(&mut want, w, *g, log_n).unwrap();
                gpu.coset_forward(&mut got, w, *g, log_n).unwrap();
                assert!(want == got, "{limbs:?}: coset {k} at 2^{log_n} differs");
            }
        }
    }
}

#[test]
fn edge_inputs_match_halo2() {
    let cpu = CpuNtt::new();
    let log_n = 8;
    let n = 1usize << log_n;
    let x = Fr::random(rng(7));
    let mut spike = vec![Fr::ZERO; n];
    spike[3] = -Fr::ONE;
    let inputs = [
        vec![Fr::ZERO; n],
        vec![Fr::ONE; n],
        vec![-Fr::ONE; n],
        vec![x; n],
        spike,
    ];
    let (w, w_inv) = (omega(log_n), omega(log_n).invert().unwrap());
    for limbs in limb_widths() {
        let gpu = GpuNtt::new(ctx(), limbs).unwrap();
        for (k, a) in inputs.iter().enumerate() {
            let (mut want, mut got) = (a.clone(), a.clone());
            cpu.forward(&mut want, w, log_n).unwrap();
            gpu.forward(&mut got, w, log_n).unwrap();
            assert!(want == got, "{limbs:?}: input {k} forward differs");
            let (mut want, mut got) = (a.clone(), a.clone());
            cpu.inverse(&mut want, w_inv, log_n).unwrap();
            gpu.inverse(&mut got, w_inv, log_n).unwrap();
            assert!(want == got, "{limbs:?}: input {k} inverse differs");
        }
        // one value: every transform is the identity
        let mut one = vec![x];
        gpu.forward(&mut one, Fr::ONE, 0).unwrap();
        gpu.inverse(&mut one, Fr::ONE, 0).unwrap();
        assert_eq!(one, vec![x]);
    }
}
