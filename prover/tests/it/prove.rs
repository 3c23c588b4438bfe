//! Real proofs at test size: keys, proving on the CPU and through the GPU MSM engine (lavapipe
//! here), verification with halo2-axiom's standard verifier, and the key cache.

use std::sync::OnceLock;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use keel_prover::{
    gpu::MsmConfig,
    keys::{kzg_params, kzg_params_cached, BatchKeys, KeySource, Srs},
    kzg::{cpu_factory, gpu_factory, MsmParams},
    BatchProver, BatchVerifier, Engine, KeyError, Progress, ProveError, PublicInputs, Shape,
};
use keel_state::{
    test_utils::{deposit, funded_state, transfer},
    BatchWitness, Epoch,
};

/// One operation at depth 3: the smallest batch circuit (2^11 rows: the layout's ~1,000 and the
/// lookup table's 1,535).
const SHAPE: Shape = Shape {
    capacity: 1,
    depth: 3,
    k: 11,
};

pub(crate) fn srs() -> &'static ParamsKZG<Bn256> {
    static SRS: OnceLock<ParamsKZG<Bn256>> = OnceLock::new();
    // set up once per machine and shared with the other crates' tests
    SRS.get_or_init(|| kzg_params_cached(&Srs::Dev, SHAPE.k, &shared_keys()).unwrap())
}

fn cpu_params() -> &'static MsmParams {
    static PARAMS: OnceLock<MsmParams> = OnceLock::new();
    PARAMS.get_or_init(|| MsmParams::new(srs().clone(), cpu_factory()))
}

/// Where every crate's tests share the development SRS and the keys of this shape.
fn shared_keys() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keel-keys")
}

/// One CPU prover shared by the tests that need it (its keys from the shared cache, generated
/// there by whichever test binary needs them first).
pub(crate) fn cpu_prover() -> &'static BatchProver {
    static PROVER: OnceLock<BatchProver> = OnceLock::new();
    PROVER.get_or_init(|| {
        let (keys, _) =
            BatchKeys::load_or_generate(&shared_keys(), srs(), cpu_params(), SHAPE).unwrap();
        BatchProver::new(cpu_params().clone(), keys)
    })
}

pub(crate) fn witness() -> BatchWitness {
    let mut s = funded_state(SHAPE.depth, 2, 1_000);
    s.apply(&deposit(2, 1)).unwrap();
    s.execute_batch(Epoch(1), vec![transfer(0, 1, 250, 0)])
        .unwrap()
}

#[test]
fn a_cpu_proof_verifies_and_any_flipped_public_input_fails() {
    let prover = cpu_prover();
    let w = witness();
    let mut seen = Vec::new();
    let (proof, timings) = prover.prove(&w, |p| seen.push(p)).unwrap();
    assert_eq!(seen, [Progress::Witness, Progress::Proving, Progress::Done]);
    assert!(timings.commits > 0 && timings.fallbacks == 0);
    assert_eq!(proof.public, PublicInputs::of(&w.batch));
    let verifier = prover.verifier();
    verifier.verify(&proof).unwrap();

    for i in 0..PublicInputs::LEN {
        let mut bad = proof.clone();
        let p = &mut bad.public;
        match i {
            0 => p.prev_root += Fr::one(),
            1 => p.new_root += Fr::one(),
            2 => p.batch_number += 1,
            3 => p.data_commitment += Fr::one(),
            4 => p.queue_before += Fr::one(),
            _ => p.queue_after += Fr::one(),
        }
        assert!(
            matches!(verifier.verify(&bad), Err(ProveError::Invalid(_))),
            "public input {i} flipped still verifies"
        );
    }
    let mut cut = proof.clone();
    cut.proof.truncate(cut.proof.len() / 2);
    assert!(verifier.verify(&cut).is_err());

    // the verifier file: a node that only checks proofs loads it without the proving key
    let file = prover.keys().verifier_bytes(srs());
    let loaded = BatchVerifier::from_bytes(&file).unwrap();
    assert_eq!(loaded.vk_digest(), verifier.vk_digest());
    loaded.verify(&proof).unwrap();
    assert!(loaded.verify(&cut).is_err());
    for bad in [&file[..file.len() / 2], &file[1..], &[][..]] {
        assert!(matches!(
            BatchVerifier::from_bytes(bad),
            Err(KeyError::BadVerifier(_))
        ));
    }
    loaded.check_keys(prover.keys()).unwrap();
    // keys of another shape do not match it: a typed refusal, before any proof is made
    let other = Shape {
        capacity: 2,
        ..SHAPE
    };
    let other = Shape::fit(other.capacity, other.depth);
    let other_keys = BatchKeys::generate(
        &MsmParams::new(
            kzg_params_cached(&Srs::Dev, other.k, &shared_keys()).unwrap(),
            cpu_factory(),
        ),
        other,
    )
    .unwrap();
    match loaded.check_keys(&other_keys) {
        Err(KeyError::VerifierMismatch { verifier, keys }) => {
            assert_eq!(verifier, loaded.vk_digest());
            assert_ne!(verifier, keys);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // the verifier file of the previous circuit (format 1), and a header of another version
    let mut old = b"keel-vf1".to_vec();
    old.extend_from_slice(&file[8..]);
    let err = BatchVerifier::from_bytes(&old).unwrap_err();
    assert!(matches!(err, KeyError::VerifierVersion { .. }), "{err}");
    let header_len = u64::from_be_bytes(file[8..16].try_into().unwrap()) as usize;
    let header = String::from_utf8(file[16..16 + header_len].to_vec()).unwrap();
    let current = format!("\"version\":{}", keel_prover::keys::CIRCUIT_VERSION);
    assert!(header.contains(&current), "{header}");
    let mut other = file.clone();
    let at = 16 + header.find(&current).unwrap() + current.len() - 1;
    other[at] = b'9';
    assert!(matches!(
        BatchVerifier::from_bytes(&other),
        Err(KeyError::VerifierVersion { found: 9, .. })
    ));
}

#[test]
fn a_gpu_path_proof_verifies_and_every_commitment_equals_the_cpu_one() {
    let ctx = crate::gpu::ctx();
    let params =
        MsmParams::new(srs().clone(), gpu_factory(ctx, MsmConfig::default())).with_audit(true);
    assert!(params.engine().starts_with("GPU"), "{}", params.engine());
    // the keys do not depend on the commitment backend: reuse the CPU prover's. halo2-axiom's
    // prover, whose commitments the parameters audit (Keel's prover is compared with the CPU
    // byte for byte in `plonk`).
    let prover = BatchProver::new(params, cpu_prover().keys().clone()).with_engine(Engine::Halo2);
    let (proof, timings) = prover.prove(&witness(), |_| {}).unwrap();
    let report = prover.params().stats().report();
    assert_eq!(report.fallbacks, 0, "the engine failed a commitment");
    assert_eq!(
        report.mismatches, 0,
        "a GPU commitment differs from the CPU's"
    );
    assert_eq!(report.audited, timings.commits);
    assert!(
        report.audited > 5,
        "only {} commitments audited",
        report.audited
    );
    // the standard verifier, on plain ParamsKZG
    prover.verifier().verify(&proof).unwrap();
}

#[test]
fn a_header_that_its_operations_do_not_give_is_refused_before_proving() {
    let prover = cpu_prover();
    let mut w = witness();
    w.batch.new_root += Fr::one();
    assert!(matches!(
        prover.prove(&w, |_| {}),
        Err(ProveError::HeaderMismatch { which: "new_root" })
    ));
}

#[test]
fn keys_are_cached_and_reloaded_and_a_stale_cache_is_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let params = cpu_params().clone();
    let first = cpu_prover().keys();
    // a copy of the shared cache (one key generation is enough for this test binary)
    for ext in ["pk", "json"] {
        let name = format!("batch-N1-D3-k11.{ext}");
        std::fs::copy(shared_keys().join(&name), dir.path().join(&name)).unwrap();
    }
    let (again, src) = BatchKeys::load_or_generate(dir.path(), srs(), &params, SHAPE).unwrap();
    assert_eq!(src, KeySource::Cached);
    assert_eq!(
        keel_prover::keys::vk_digest(first.vk()),
        keel_prover::keys::vk_digest(again.vk())
    );
    // a proof made with the reloaded key verifies with the original verifying key
    let prover = BatchProver::new(params.clone(), again);
    let (proof, _) = prover.prove(&witness(), |_| {}).unwrap();
    keel_prover::BatchVerifier::new(srs().clone(), first.vk().clone())
        .verify(&proof)
        .unwrap();
    // a manifest that no longer matches (another layout) makes the cache regenerate, and the
    // regenerated key is cached again
    let manifest = dir.path().join("batch-N1-D3-k11.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let current = format!("\"version\": {}", keel_prover::keys::CIRCUIT_VERSION);
    assert!(
        text.contains(&current),
        "the manifest names the circuit version"
    );
    std::fs::write(&manifest, text.replacen(&current, "\"version\": 0", 1)).unwrap();
    let (regenerated, src) =
        BatchKeys::load_or_generate(dir.path(), srs(), &params, SHAPE).unwrap();
    assert_eq!(src, KeySource::Generated);
    assert_eq!(
        keel_prover::keys::vk_digest(regenerated.vk()),
        keel_prover::keys::vk_digest(first.vk()),
        "key generation is deterministic"
    );
    let (_, src) = BatchKeys::load_or_generate(dir.path(), srs(), &params, SHAPE).unwrap();
    assert_eq!(src, KeySource::Cached);

    // a wiring change that keeps the version (a forgotten bump) is caught by the digest
    let text = std::fs::read_to_string(&manifest).unwrap();
    let wiring = keel_prover::BatchCircuit::wiring_digest(SHAPE).unwrap();
    assert!(
        text.contains(&wiring),
        "the manifest names the wiring digest"
    );
    std::fs::write(
        &manifest,
        text.replacen(&wiring, &"0".repeat(wiring.len()), 1),
    )
    .unwrap();
    assert!(matches!(
        BatchKeys::load_pinned(dir.path(), srs(), SHAPE),
        Err(KeyError::KeyVersion { .. })
    ));
    let (_, src) = BatchKeys::load_or_generate(dir.path(), srs(), &params, SHAPE).unwrap();
    assert_eq!(src, KeySource::Generated);
    BatchKeys::load_pinned(dir.path(), srs(), SHAPE).unwrap();

    // keys of an older circuit version are refused, with a reason, where they are pinned
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen(&current, "\"version\": 2", 1)).unwrap();
    let err = BatchKeys::load_pinned(dir.path(), srs(), SHAPE).unwrap_err();
    assert!(
        matches!(err, KeyError::KeyVersion { found: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("circuit version 2"), "{err}");
}

#[test]
fn a_shape_too_small_for_its_layout_is_a_typed_error() {
    let tight = Shape { k: 10, ..SHAPE };
    match BatchKeys::generate(cpu_params(), tight) {
        Err(KeyError::Circuit(keel_prover::CircuitError::TooSmall {
            k: 10,
            rows,
            usable,
        })) => {
            assert!(rows > usable)
        }
        other => panic!("expected a typed refusal, got {other:?}"),
    }
    // a prover whose keys are for depth 3 refuses a witness of depth 4 before any work
    let mut s = funded_state(4, 2, 1_000);
    let w = s
        .execute_batch(Epoch(1), vec![transfer(0, 1, 1, 0)])
        .unwrap();
    assert!(matches!(
        cpu_prover().prove(&w, |_| {}),
        Err(ProveError::Circuit(keel_prover::CircuitError::Depth { .. }))
    ));
}

#[test]
fn the_cached_dev_srs_is_the_dev_srs_and_a_damaged_cache_is_recomputed() {
    use halo2_base::halo2_proofs::SerdeFormat;
    let raw = |p: &ParamsKZG<Bn256>| {
        let mut b = Vec::new();
        p.write_custom(&mut b, SerdeFormat::RawBytes).unwrap();
        b
    };
    let k = 6;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev-srs-k6.params");
    let fresh = raw(&kzg_params(&Srs::Dev, k).unwrap());
    assert_eq!(
        raw(&kzg_params_cached(&Srs::Dev, k, dir.path()).unwrap()),
        fresh
    );
    let written = std::fs::read(&file).unwrap();
    assert_eq!(
        raw(&kzg_params_cached(&Srs::Dev, k, dir.path()).unwrap()),
        fresh
    );
    // one flipped bit, a cut file, a file for another k: each is recomputed and rewritten
    let mut flipped = written.clone();
    flipped[written.len() / 2] ^= 1;
    kzg_params_cached(&Srs::Dev, k - 1, dir.path()).unwrap();
    let other_k = std::fs::read(dir.path().join("dev-srs-k5.params")).unwrap();
    for bad in [flipped, written[..100].to_vec(), other_k] {
        std::fs::write(&file, bad).unwrap();
        assert_eq!(
            raw(&kzg_params_cached(&Srs::Dev, k, dir.path()).unwrap()),
            fresh
        );
        assert_eq!(std::fs::read(&file).unwrap(), written);
    }
    // a directory that cannot be written only costs the cache
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, b"x").unwrap();
    assert_eq!(
        raw(&kzg_params_cached(&Srs::Dev, k, &blocked).unwrap()),
        fresh
    );
}

/// An engine that fails every commitment, as a GPU that lost its device would.
struct Broken(usize);

impl keel_prover::gpu::Msm for Broken {
    fn describe(&self) -> String {
        "GPU (broken, for the test)".into()
    }
    fn bases_len(&self) -> usize {
        self.0
    }
    fn on_device(&self) -> bool {
        true
    }
    fn msm(
        &self,
        scalars: &[Fr],
    ) -> Result<halo2_base::halo2_proofs::halo2curves::bn256::G1, keel_prover::gpu::MsmError> {
        Err(keel_prover::gpu::MsmError::TooManyScalars {
            scalars: scalars.len(),
            bases: 0,
        })
    }
}

#[test]
fn a_required_engine_that_fails_a_commitment_fails_the_proof_and_auto_falls_back() {
    use std::sync::Arc;

    use halo2_base::halo2_proofs::poly::commitment::Params;
    let n = srs().n() as usize;
    let broken = || {
        MsmParams::with_engines(
            srs().clone(),
            cpu_factory(),
            Arc::new(Broken(n)),
            Arc::new(Broken(n)),
        )
    };
    let keys = cpu_prover().keys().clone();
    // `auto`: the CPU makes every commitment the engine failed, counted, and the proof is good
    let lenient = BatchProver::new(broken(), keys.clone());
    let (proof, timings) = lenient.prove(&witness(), |_| {}).unwrap();
    assert!(timings.fallbacks > 0 && timings.fallbacks == timings.commits);
    lenient.verifier().verify(&proof).unwrap();
    // `require`: the same failures refuse the proof
    let strict = BatchProver::new(broken().required(true), keys);
    match strict.prove(&witness(), |_| {}) {
        Err(ProveError::Backend(why)) => assert!(why.contains("broken"), "{why}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn pipelined_proofs_verify_in_the_batches_order() {
    let prover = cpu_prover();
    let first = witness();
    let mut s = funded_state(SHAPE.depth, 2, 1_000);
    s.apply(&deposit(2, 1)).unwrap();
    let second = s
        .execute_batch(Epoch(1), vec![transfer(0, 1, 3, 0)])
        .unwrap();
    let third = s
        .execute_batch(Epoch(1), vec![transfer(1, 0, 5, 0)])
        .unwrap();
    let witnesses = [first, second, third];
    let p = prover.prove_pipelined(&witnesses).unwrap();
    assert_eq!(p.proofs.len(), 3);
    assert_eq!(p.timings.len(), 3);
    for (proof, w) in p.proofs.iter().zip(&witnesses) {
        assert_eq!(proof.public, PublicInputs::of(&w.batch));
        prover.verifier().verify(proof).unwrap();
    }
    // the CPU backend has no device: no busy time to report
    assert_eq!((p.busy, p.utilisation()), (None, None));
    assert!(p.wall > std::time::Duration::ZERO);
}
