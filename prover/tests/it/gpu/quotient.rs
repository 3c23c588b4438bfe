//! The quotient's expressions on the device (`GpuQuotient` interpreting `Gates::opcodes`) against
//! the CPU's evaluation of the same graph, exact equality, for every gate of the batch circuit
//! and of a small circuit; a changed opcode changes the values.

use halo2_base::halo2_proofs::{
    halo2curves::{bn256::Fr, ff::Field},
    plonk::ConstraintSystem,
};
use keel_prover::{
    gpu::{GpuQuotient, KeyColumns},
    plonk::Gates,
};

use super::{ctx, limb_widths, rng};

/// Random values for every column of `cs`, `n` rows each.
fn columns(cs: &ConstraintSystem<Fr>, n: usize, seed: u64) -> Vec<Vec<Fr>> {
    let mut r = rng(seed);
    let count = cs.num_fixed_columns() + cs.num_advice_columns() + cs.num_instance_columns();
    (0..count)
        .map(|_| (0..n).map(|_| Fr::random(&mut r)).collect())
        .collect()
}

fn check(cs: &ConstraintSystem<Fr>, n: usize, what: &str) {
    let gates = Gates::new(cs);
    let cols = columns(cs, n, 3);
    let (f, a) = (cs.num_fixed_columns(), cs.num_advice_columns());
    let refs: Vec<&[Fr]> = cols.iter().map(|c| c.as_slice()).collect();
    let mut r = rng(4);
    let challenges: Vec<Fr> = (0..cs.num_challenges())
        .map(|_| Fr::random(&mut r))
        .collect();
    let y = Fr::random(&mut r);
    let cpu = gates.cpu(&refs[..f], &refs[f..f + a], &refs[f + a..], &challenges, y);
    let ops = gates.opcodes(&challenges, y, n);
    let (nodes, polys) = gates.size();
    eprintln!(
        "{what}: {nodes} nodes, {polys} gate polynomials, {} operations, {} registers",
        ops.words.len() / 4,
        ops.registers
    );
    assert!(ops.registers as usize <= nodes);
    for limbs in limb_widths() {
        let gpu = GpuQuotient::new(ctx(), limbs).unwrap();
        let values = gpu.evaluate(&ops, KeyColumns::Host(&[]), &refs, n).unwrap();
        assert_eq!(values, cpu, "{what} with {limbs}");
        // the fixed columns kept on the device, the rest sent: the same values, twice over
        let kept = gpu.upload(&refs[..f], n).unwrap();
        for _ in 0..2 {
            let split = gpu
                .evaluate(&ops, KeyColumns::Resident(&kept), &refs[f..], n)
                .unwrap();
            assert_eq!(split, cpu, "{what}: fixed columns resident");
        }
        let split = gpu
            .evaluate(&ops, KeyColumns::Host(&refs[..f]), &refs[f..], n)
            .unwrap();
        assert_eq!(split, cpu, "{what}: fixed columns sent apart");
        // in several dispatches of 64 rows (and one of 40: the rows need not divide evenly)
        for rows in [64, 40] {
            let chunked = GpuQuotient::new(ctx(), limbs).unwrap().with_max_rows(rows);
            assert_eq!(
                chunked
                    .evaluate(&ops, KeyColumns::Host(&[]), &refs, n)
                    .unwrap(),
                cpu,
                "{what}: {rows} rows"
            );
        }
        assert!(values.iter().any(|v| !bool::from(v.is_zero())));

        // one operation changed (the first addition made a subtraction): other values
        let mut tampered = ops.clone();
        let at = (0..tampered.words.len() / 4)
            .find(|i| tampered.words[4 * i] == 3)
            .expect("an addition");
        tampered.words[4 * at] = 4;
        let values = gpu.evaluate(&tampered, KeyColumns::Host(&[]), &refs, n);
        assert_ne!(values.unwrap(), cpu, "{what}");
    }
}

#[test]
fn the_batch_circuits_gates_on_the_device_equal_the_cpu() {
    let keys = crate::prove::cpu_prover().keys();
    check(keys.pk.get_vk().cs(), 1 << 8, "batch circuit");
}

#[test]
fn a_small_circuits_gates_on_the_device_equal_the_cpu() {
    let keys = crate::plonk::small_keys();
    check(keys.pk.get_vk().cs(), 1 << 6, "small circuit");
}

/// The gates on a coset part from coefficients kept on the device (each column transformed
/// there), and with the vanishing step after, against the CPU: its coset transforms, the same
/// graph, then `· scale`, the inverse transform and `· g⁻ⁱ`. Exact equality; a mismatched size
/// and an interpreter without transforms are typed errors.
#[test]
fn the_gates_on_a_coset_from_kept_coefficients_equal_the_cpu_and_so_does_the_vanishing_step() {
    use keel_prover::gpu::{
        ntt::{omega, CpuNtt, GpuNtt, Ntt},
        GpuError, Vanishing,
    };
    let keys = crate::plonk::small_keys();
    let cs = keys.pk.get_vk().cs();
    let log_n = 6;
    let n = 1usize << log_n;
    let gates = Gates::new(cs);
    let cols = columns(cs, n, 5);
    let f = cs.num_fixed_columns();
    let a = cs.num_advice_columns();
    let refs: Vec<&[Fr]> = cols.iter().map(|c| c.as_slice()).collect();
    let mut r = rng(6);
    let challenges: Vec<Fr> = (0..cs.num_challenges())
        .map(|_| Fr::random(&mut r))
        .collect();
    let y = Fr::random(&mut r);
    let g = Fr::random(&mut r);
    let scale = Fr::random(&mut r);
    let (w, w_inv) = (omega(log_n), omega(log_n).invert().unwrap());
    let g_inv = g.invert().unwrap();

    // the CPU: the proof's columns onto the coset, the graph, then the vanishing step
    let cpu_ntt = CpuNtt::new();
    let cosets: Vec<Vec<Fr>> = refs[f..]
        .iter()
        .map(|c| {
            let mut v = c.to_vec();
            cpu_ntt.coset_forward(&mut v, w, g, log_n).unwrap();
            v
        })
        .collect();
    let coset_refs: Vec<&[Fr]> = cosets.iter().map(|c| c.as_slice()).collect();
    let numerator = gates.cpu(
        &refs[..f],
        &coset_refs[..a],
        &coset_refs[a..],
        &challenges,
        y,
    );
    let mut vanished: Vec<Fr> = numerator.iter().map(|v| *v * scale).collect();
    cpu_ntt.inverse(&mut vanished, w_inv, log_n).unwrap();
    let mut power = Fr::ONE;
    for v in &mut vanished {
        *v *= power;
        power *= g_inv;
    }

    let ops = gates.opcodes(&challenges, y, n);
    for limbs in limb_widths() {
        let ntt = std::sync::Arc::new(GpuNtt::new(ctx(), limbs).unwrap());
        let gpu = GpuQuotient::new(ctx(), limbs).unwrap().with_transforms(ntt);
        let kept = gpu.upload(&refs[f..], n).unwrap();
        let key = KeyColumns::Host(&refs[..f]);
        let on_coset = gpu
            .evaluate_on_coset(&ops, key, &kept, w, g, log_n, None)
            .unwrap();
        assert_eq!(on_coset, numerator, "{limbs}: the numerator");
        let v = Vanishing {
            scale,
            omega_inv: w_inv,
            g_inv,
        };
        let after = gpu
            .evaluate_on_coset(&ops, key, &kept, w, g, log_n, Some(v))
            .unwrap();
        assert_eq!(after, vanished, "{limbs}: after the vanishing step");

        // kept coefficients of another size, and an interpreter that cannot transform
        let e = gpu
            .evaluate_on_coset(&ops, key, &kept, w, g, log_n + 1, None)
            .unwrap_err();
        assert!(matches!(e, GpuError::Device { .. }), "{e}");
        let plain = GpuQuotient::new(ctx(), limbs).unwrap();
        let e = plain
            .evaluate_on_coset(&ops, key, &kept, w, g, log_n, None)
            .unwrap_err();
        assert!(e.to_string().contains("with_transforms"), "{e}");
    }
}

/// A column staged once for its commitment and its coefficients (`GpuQuotient::stage`): the
/// MSM reading its canonical scalars on the device (in several chunks, copied there) equals the
/// CPU's commitment, and its kept inverse transform the CPU's coefficients, exact equality;
/// more scalars than bases, or than the buffer holds, are typed errors.
#[test]
fn a_staged_column_commits_and_transforms_as_the_cpu_does() {
    use halo2_proofs::halo2curves::{
        bn256::{G1Affine, G1},
        group::{Curve, Group},
    };
    use keel_prover::gpu::{
        ntt::{omega, CpuNtt, GpuNtt, Ntt},
        CpuMsm, GpuMsm, Msm, MsmConfig, MsmError,
    };
    let log_n = 9;
    let n = 1usize << log_n;
    let mut r = rng(21);
    let projective: Vec<G1> = (0..n).map(|_| G1::random(&mut r)).collect();
    let mut bases = vec![G1Affine::default(); n];
    G1::batch_normalize(&projective, &mut bases);
    // the edges of the encodings (0, 1, p − 1) among random values
    let mut values: Vec<Fr> = (0..n).map(|_| Fr::random(&mut r)).collect();
    values[0] = Fr::ZERO;
    values[1] = Fr::ONE;
    values[2] = -Fr::ONE;
    let expected = CpuMsm::new(&bases).msm(&values).unwrap();
    let w_inv = omega(log_n).invert().unwrap();
    let mut coefficients = values.clone();
    CpuNtt::new()
        .inverse(&mut coefficients, w_inv, log_n)
        .unwrap();
    for limbs in limb_widths() {
        let ntt = std::sync::Arc::new(GpuNtt::new(ctx(), limbs).unwrap());
        let q = GpuQuotient::new(ctx(), limbs).unwrap().with_transforms(ntt);
        let config = MsmConfig {
            limbs: Some(limbs),
            max_chunk: Some(200),
            ..MsmConfig::default()
        };
        let msm = GpuMsm::new(ctx(), &bases, config).unwrap();
        let staged = q.stage(&values).unwrap();
        assert_eq!(staged.len(), n);
        let point = msm.msm_on_device(staged.scalars(), n).unwrap().unwrap();
        assert_eq!(
            point.to_affine(),
            expected.to_affine(),
            "{limbs}: commitment"
        );
        // a prefix of the scalars, as the host path takes it
        let prefix = msm.msm_on_device(staged.scalars(), 300).unwrap().unwrap();
        assert_eq!(prefix, msm.msm(&values[..300]).unwrap(), "{limbs}: prefix");
        let e = msm
            .msm_on_device(staged.scalars(), n + 1)
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, MsmError::TooManyScalars { .. }), "{e}");
        let short = ctx().device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("too short"),
            size: 32 * 10,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let e = msm.msm_on_device(&short, 11).unwrap().unwrap_err();
        assert!(e.to_string().contains("320 bytes"), "{e}");
        let (out, kept) = q.inverse_staged(staged, true, w_inv, log_n).unwrap();
        assert_eq!(out.unwrap(), coefficients, "{limbs}: coefficients");
        assert_eq!(kept.bytes(), 32 * n as u64);
        // the engine on the CPU reads no device buffer
        let other = q.stage(&values).unwrap();
        assert!(CpuMsm::new(&bases)
            .msm_on_device(other.scalars(), n)
            .is_none());
        let e = msm.msm_on_device(other.scalars(), 0).unwrap().unwrap();
        assert_eq!(e, G1::identity());
    }
}
