//! Differential tests of every GPU kernel against its CPU reference, exact equality.

mod curve;
mod field;
mod msm;
mod ntt;
mod poly;
mod quotient;

use std::sync::{Arc, OnceLock};

use keel_prover::gpu::{GpuContext, GpuPolicy, Limbs};

/// The process's one device, opened once.
pub(crate) fn ctx() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = GpuContext::acquire(GpuPolicy::Software)
            .expect("opening a GPU adapter")
            .expect("`require` returns a device or an error");
        eprintln!("GPU tests on {}", ctx.describe());
        ctx
    })
    .clone()
}

/// The limb widths this device can run: both where it has SHADER_INT64.
pub(crate) fn limb_widths() -> Vec<Limbs> {
    if ctx().supports_int64() {
        vec![Limbs::U32, Limbs::U16]
    } else {
        vec![Limbs::U16]
    }
}

pub(crate) fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

#[test]
fn require_refuses_a_software_adapter_and_software_takes_it() {
    use keel_prover::gpu::{AdapterClass, GpuError};
    let best = ctx();
    match GpuContext::acquire(GpuPolicy::Require) {
        Err(GpuError::SoftwareOnly { adapter }) => {
            assert_eq!(best.class(), AdapterClass::Software, "{adapter}");
            assert!(adapter.contains(&best.info().name), "{adapter}");
        }
        Ok(Some(hw)) => assert_ne!(hw.class(), AdapterClass::Software),
        other => panic!("require: {other:?}"),
    }
    // and so do the prover's parameters
    if best.class() == AdapterClass::Software {
        let params = halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG::<
            halo2_base::halo2_proofs::halo2curves::bn256::Bn256,
        >::setup(4, rng(1));
        let err = keel_prover::kzg::params_for(params, GpuPolicy::Require).unwrap_err();
        assert!(err.to_string().contains("software"), "{err}");
    }
}
