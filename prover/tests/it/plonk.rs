//! Keel's own prover (`keel_prover::plonk`): its proofs verify with halo2-axiom's standard
//! verifier (SHPLONK, the same verifying key) on the CPU backend and on the GPU backend
//! (lavapipe here), on a small circuit with a lookup and on the batch circuit; a tampered
//! witness, a changed byte and a witness outside a lookup's table are refused.

use std::sync::{Arc, OnceLock};

use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
use halo2_base::halo2_proofs::{
    circuit::{Layouter, SimpleFloorPlanner, Value},
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{
        keygen_pk, keygen_vk, verify_proof, Advice, Circuit, Column, ConstraintSystem, Error,
        Fixed, Instance, ProvingKey, Selector, TableColumn,
    },
    poly::{
        kzg::{commitment::ParamsKZG, multiopen::VerifierSHPLONK, strategy::SingleStrategy},
        Rotation,
    },
    transcript::{
        Blake2bRead, Blake2bWrite, Challenge255, TranscriptReadBuffer, TranscriptWriterBuffer,
    },
};
use keel_prover::{
    gpu::MsmConfig,
    kzg::{cpu_factory, gpu_factory, MsmParams},
    plonk::{
        create_proof, device_memory, prove_synthesized, synthesize, Backend, BackendError, Basis,
        Engines, Opcodes, PlonkError, Prepared,
    },
    BatchProver, ProveError,
};
use rand_core::SeedableRng;

use crate::prove::{cpu_prover, srs, witness};
use keel_prover::circuit::{Tag, Tamper};

/// `c = a·b` where `q` is on (the gate), `a` in a 4-bit table (the lookup), the last `c` equal
/// to the instance (the permutation).
#[derive(Clone)]
struct Small {
    rows: Vec<(u64, u64, u64)>,
}

impl Default for Small {
    fn default() -> Self {
        Self {
            rows: vec![(0, 0, 0); 20],
        }
    }
}

#[derive(Clone, Debug)]
struct SmallConfig {
    a: Column<Advice>,
    b: Column<Advice>,
    c: Column<Advice>,
    k: Column<Fixed>,
    q: Selector,
    table: TableColumn,
    out: Column<Instance>,
}

impl Circuit<Fr> for Small {
    type Config = SmallConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        Self::default()
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SmallConfig {
        let (a, b, c) = (
            meta.advice_column(),
            meta.advice_column(),
            meta.advice_column(),
        );
        let k = meta.fixed_column();
        let out = meta.instance_column();
        meta.enable_equality(c);
        meta.enable_equality(out);
        let q = meta.complex_selector();
        let table = meta.lookup_table_column();
        meta.create_gate("c = a·b + k", |m| {
            let q = m.query_selector(q);
            let (a, b, c) = (
                m.query_advice(a, Rotation::cur()),
                m.query_advice(b, Rotation::cur()),
                m.query_advice(c, Rotation::cur()),
            );
            let k = m.query_fixed(k, Rotation::cur());
            vec![q * (a * b + k - c)]
        });
        lookup_four_bits(meta, q, a, table);
        SmallConfig {
            a,
            b,
            c,
            k,
            q,
            table,
            out,
        }
    }

    fn synthesize(
        &self,
        config: SmallConfig,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        four_bits(&mut layouter, config.table)?;
        let last = layouter.assign_region(
            || "rows",
            |mut region| {
                let mut last = None;
                for (i, &(a, b, c)) in self.rows.iter().enumerate() {
                    config.q.enable(&mut region, i)?;
                    region.assign_advice(config.a, i, Value::known(Fr::from(a)));
                    region.assign_advice(config.b, i, Value::known(Fr::from(b)));
                    region.assign_fixed(config.k, i, Fr::from(0));
                    last = Some(
                        region
                            .assign_advice(config.c, i, Value::known(Fr::from(c)))
                            .cell(),
                    );
                }
                Ok(last.expect("at least one row"))
            },
        )?;
        layouter.constrain_instance(last, config.out, 0);
        Ok(())
    }
}

const SMALL_K: u32 = 6;

/// The table 0..16 in `table`.
fn four_bits(layouter: &mut impl Layouter<Fr>, table: TableColumn) -> Result<(), Error> {
    layouter.assign_table(
        || "4 bits",
        |mut t| {
            for i in 0..16 {
                t.assign_cell(|| "v", table, i, || Value::known(Fr::from(i as u64)))?;
            }
            Ok(())
        },
    )
}

/// `a` is in the 4-bit `table` where `q` is on.
fn lookup_four_bits(
    meta: &mut ConstraintSystem<Fr>,
    q: Selector,
    a: Column<Advice>,
    table: TableColumn,
) {
    meta.lookup("a is 4 bits", |m| {
        let q = m.query_selector(q);
        vec![(q * m.query_advice(a, Rotation::cur()), table)]
    });
}

fn honest() -> Small {
    Small {
        rows: (0..20)
            .map(|i| (i % 16, i + 3, (i % 16) * (i + 3)))
            .collect(),
    }
}

fn small_public(c: &Small) -> Vec<Fr> {
    vec![Fr::from(c.rows.last().unwrap().2)]
}

pub(crate) struct SmallKeys {
    pub(crate) params: ParamsKZG<Bn256>,
    pub(crate) pk: ProvingKey<G1Affine>,
}

pub(crate) fn small_keys() -> &'static SmallKeys {
    static KEYS: OnceLock<SmallKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let params = ParamsKZG::<Bn256>::setup(SMALL_K, rand_chacha::ChaCha20Rng::seed_from_u64(7));
        let vk = keygen_vk(&params, &Small::default()).unwrap();
        let pk = keygen_pk(&params, vk, &Small::default()).unwrap();
        SmallKeys { params, pk }
    })
}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

fn prove<C: Circuit<Fr, Params = ()>>(
    backend: &dyn Backend,
    pk: &ProvingKey<G1Affine>,
    prepared: &Prepared,
    circuit: &C,
    public: &[Fr],
    seed: u64,
) -> Result<Vec<u8>, PlonkError> {
    let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
    create_proof(
        backend,
        pk,
        prepared,
        circuit,
        &[public],
        &mut rng(seed),
        &mut transcript,
    )?;
    Ok(transcript.finalize())
}

fn verifies(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    public: &[Fr],
    proof: &[u8],
) -> bool {
    verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
        params,
        pk.get_vk(),
        SingleStrategy::new(params),
        &[&[public]],
        &mut Blake2bRead::<_, G1Affine, Challenge255<_>>::init(proof),
    )
    .is_ok()
}

/// Parameters with every device kernel on `ctx` (lavapipe here), required.
fn gpu_params(params: ParamsKZG<Bn256>, ctx: &Arc<keel_prover::gpu::GpuContext>) -> MsmParams {
    MsmParams::new(params, gpu_factory(ctx.clone(), MsmConfig::default()))
        .with_device_kernels(ctx)
        .unwrap()
        .required(true)
}

fn small_backends() -> Vec<(&'static str, Engines)> {
    let keys = small_keys();
    let cpu = MsmParams::new(keys.params.clone(), cpu_factory());
    let ctx = crate::gpu::ctx();
    let gpu = gpu_params(keys.params.clone(), &ctx);
    vec![("cpu", cpu.backend()), ("gpu", gpu.backend())]
}

#[test]
fn small_circuit_proofs_with_a_lookup_verify_on_both_backends_and_tampering_fails() {
    let keys = small_keys();
    let circuit = honest();
    let public = small_public(&circuit);
    for (name, backend) in small_backends() {
        let prepared = Prepared::new(&backend, &keys.pk).unwrap();
        let proof = prove(&backend, &keys.pk, &prepared, &circuit, &public, 1).unwrap();
        assert!(
            verifies(&keys.params, &keys.pk, &public, &proof),
            "{name}: an honest proof"
        );
        assert_eq!(backend.stats().fallbacks, 0, "{name}");

        // one byte changed anywhere in the proof
        for at in [0, proof.len() / 2, proof.len() - 1] {
            let mut bad = proof.clone();
            bad[at] ^= 1;
            assert!(
                !verifies(&keys.params, &keys.pk, &public, &bad),
                "{name}: byte {at} changed"
            );
        }
        // another public input
        assert!(
            !verifies(&keys.params, &keys.pk, &[public[0] + Fr::ONE], &proof),
            "{name}"
        );

        // a witness breaking the gate: the prover makes a proof, the verifier refuses it
        let mut wrong = honest();
        wrong.rows[3].2 += 1;
        let proof = prove(
            &backend,
            &keys.pk,
            &prepared,
            &wrong,
            &small_public(&wrong),
            2,
        )
        .unwrap();
        assert!(
            !verifies(&keys.params, &keys.pk, &small_public(&wrong), &proof),
            "{name}: gate"
        );

        // a value outside the lookup's table: refused before anything is committed to it
        let mut outside = honest();
        outside.rows[5] = (16, 1, 16);
        let err = prove(
            &backend,
            &keys.pk,
            &prepared,
            &outside,
            &small_public(&outside),
            3,
        )
        .unwrap_err();
        assert!(
            matches!(err, PlonkError::LookupNotInTable { lookup: 0, .. }),
            "{name}: {err}"
        );

        // wrong instance columns
        let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        let err = create_proof(
            &backend,
            &keys.pk,
            &prepared,
            &circuit,
            &[],
            &mut rng(4),
            &mut transcript,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                PlonkError::InvalidInstances {
                    given: 0,
                    expected: 1
                }
            ),
            "{name}"
        );
    }
}

#[test]
fn batch_circuit_proofs_verify_with_the_standard_verifier_on_both_backends() {
    let prover = cpu_prover();
    let pk = &prover.keys().pk;
    let w = witness();
    let (circuit, public) = keel_circuit::proof::synthesize(prover.keys().shape, &w).unwrap();
    let public = public.to_vec();
    let cpu = prover.params().backend();
    let ctx = crate::gpu::ctx();
    let gpu = gpu_params(srs().clone(), &ctx).backend();
    let mut proofs = Vec::new();
    for (name, backend) in [("cpu", &cpu), ("gpu", &gpu)] {
        let prepared = Prepared::new(backend, pk).unwrap();
        let proof = prove(backend, pk, &prepared, &circuit, &public, 5).unwrap();
        assert!(verifies(srs(), pk, &public, &proof), "{name}");
        let mut bad = public.clone();
        bad[0] += Fr::ONE;
        assert!(
            !verifies(srs(), pk, &bad, &proof),
            "{name}: another previous root"
        );
        assert_eq!(backend.stats().fallbacks, 0, "{name}");
        proofs.push(proof);
    }
    // Under the same randomness every commitment, evaluation and opening is the same: the
    // proofs are equal byte for byte.
    assert_eq!(
        proofs[0], proofs[1],
        "the GPU backend's proof differs from the CPU's"
    );
    assert!(gpu.stats().ntts > 0 && gpu.stats().msms > 0);
    // the gates of every coset part ran on the device; the CPU backend moved nothing
    assert_eq!(gpu.stats().quotients, 5, "{:?}", gpu.stats());
    assert!(gpu.stats().bytes_up > 0 && gpu.stats().bytes_down > 0);
    assert_eq!((cpu.stats().bytes_up, cpu.stats().bytes_down), (0, 0));

    // The key's columns kept on the device (a Prepared made by the GPU backend) against sent
    // with every proof (one made by the CPU backend, which keeps nothing): the same proof, less
    // traffic.
    let traffic = |prepared: &Prepared| {
        let before = gpu.stats().bytes_up;
        let proof = prove(&gpu, pk, prepared, &circuit, &public, 5).unwrap();
        assert_eq!(proof, proofs[0]);
        gpu.stats().bytes_up - before
    };
    let sent = traffic(&Prepared::new(&cpu, pk).unwrap());
    let kept = traffic(&Prepared::new(&gpu, pk).unwrap());
    eprintln!("bytes to the device per proof: {kept} with the key kept, {sent} with it sent");
    assert!(kept < sent, "{kept} ≥ {sent}");

    // The proof's coefficients kept for the quotient (each part's values made on the device,
    // what with_device_kernels sets up) against each part's values made by the transforms,
    // brought back and sent again (an interpreter without transforms): the same proof, and
    // far less traffic both ways.
    let unfused = MsmParams::new(
        srs().clone(),
        gpu_factory(ctx.clone(), MsmConfig::default()),
    )
    .with_ntt(Arc::new(
        keel_prover::gpu::GpuNtt::new(ctx.clone(), ctx.preferred_limbs()).unwrap(),
    ))
    .with_quotient(Arc::new(
        keel_prover::gpu::GpuQuotient::new(ctx.clone(), ctx.preferred_limbs()).unwrap(),
    ))
    .required(true)
    .backend();
    let mut moved = Vec::new();
    for backend in [&gpu, &unfused] {
        let prepared = Prepared::new(backend, pk).unwrap();
        let before = backend.stats();
        let proof = prove(backend, pk, &prepared, &circuit, &public, 5).unwrap();
        assert_eq!(proof, proofs[0]);
        let after = backend.stats();
        moved.push((
            after.bytes_up - before.bytes_up,
            after.bytes_down - before.bytes_down,
        ));
    }
    eprintln!(
        "bytes up and down per proof: {:?} with the coefficients kept, {:?} without",
        moved[0], moved[1]
    );
    assert!(
        moved[0].0 < moved[1].0 && moved[0].1 * 2 < moved[1].1,
        "{moved:?}"
    );

    // A cheating prover's witness: one Poseidon round value changed. Keel's prover makes a
    // proof of it (it does not check the gates), and the verifier refuses it.
    let nth = 4;
    let honest = prover
        .keys()
        .shape
        .tagged_values(&w, Tag::PoseidonRound)
        .unwrap()[nth];
    let cheat = circuit.clone().tampered(&[Tamper {
        tag: Tag::PoseidonRound,
        nth,
        value: honest + Fr::ONE,
    }]);
    let prepared = Prepared::new(&cpu, pk).unwrap();
    let proof = prove(&cpu, pk, &prepared, &cheat, &public, 6).unwrap();
    assert!(
        !verifies(srs(), pk, &public, &proof),
        "a tampered witness's proof verified"
    );
}

#[test]
fn the_device_memory_plan_bounds_what_a_proof_uses_and_a_key_sent_needs_less() {
    let prover = cpu_prover();
    let pk = &prover.keys().pk;
    let w = witness();
    let (circuit, public) = keel_circuit::proof::synthesize(prover.keys().shape, &w).unwrap();
    let public = public.to_vec();
    // a device of its own, so that no other test's buffers count toward its memory
    let ctx = keel_prover::gpu::GpuContext::acquire(keel_prover::gpu::GpuPolicy::Software)
        .unwrap()
        .unwrap();
    let gpu = gpu_params(srs().clone(), &ctx).backend();
    assert!(device_memory(&prover.params().backend(), pk, true).is_none());
    let kept = device_memory(&gpu, pk, true).unwrap();
    let sent = device_memory(&gpu, pk, false).unwrap();
    assert!(kept.bases > 0 && kept.tables > 0 && kept.key > 0 && kept.working > 0);
    assert_eq!(sent.key, 0);
    assert!(sent.total() < kept.total() && sent.working > kept.working);
    // the bases are on the device already, as the plan says
    assert!(ctx.memory_in_use() >= kept.bases);
    // the plan with the key sent first: the peak only grows
    for (keep, plan) in [(false, sent), (true, kept)] {
        let prepared = Prepared::with_residency(&gpu, pk, keep).unwrap();
        let proof = prove(&gpu, pk, &prepared, &circuit, &public, 5).unwrap();
        assert!(verifies(srs(), pk, &public, &proof));
        let peak = ctx.memory_peak();
        eprintln!(
            "key kept: {keep}; planned {} bytes ({plan:?}), peak in use {peak}",
            plan.total()
        );
        assert!(peak <= plan.total(), "{peak} > {plan:?}");
        // and not a loose bound: within half again of what was used
        assert!(plan.total() <= peak / 2 * 3, "{plan:?} against {peak}");
        assert!(peak > plan.bases + plan.key);
    }

    // A prover's budget: the key's columns kept where a proof then fits, sent where only that
    // fits, and a proof that fits neither way refused before any work.
    let params = gpu_params(srs().clone(), &ctx);
    let keys = prover.keys().clone();
    let budget =
        |bytes| BatchProver::new(params.clone(), keys.clone()).with_device_budget(Some(bytes));
    let roomy = budget(kept.total());
    assert_eq!(roomy.device_memory().unwrap(), Some(kept));
    let tight = budget(kept.total() - 1);
    assert_eq!(tight.device_memory().unwrap(), Some(sent));
    let mut up = Vec::new();
    for p in [&roomy, &tight] {
        let (proof, t) = p.prove(&w, |_| {}).unwrap();
        p.verifier().verify(&proof).unwrap();
        up.push(t.stages.unwrap().backend.bytes_up);
    }
    assert!(up[0] < up[1], "the key kept moves less: {up:?}");
    let starved = budget(sent.total() - 1);
    for e in [
        starved.prepare().unwrap_err(),
        starved.prove(&w, |_| {}).unwrap_err(),
    ] {
        assert!(
            matches!(e, ProveError::DeviceMemory { needed, budget }
                if needed == sent.total() && budget == sent.total() - 1),
            "{e}"
        );
        assert!(e.to_string().contains("--prover.gpu-memory"), "{e}");
    }
}

/// A device transform that fails from its `after`-th call on, as a lost device would.
struct FailingNtt {
    inner: keel_prover::gpu::CpuNtt,
    calls: std::sync::atomic::AtomicUsize,
    after: usize,
}

impl FailingNtt {
    fn fail(&self) -> Result<(), keel_prover::gpu::GpuError> {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= self.after {
            return Err(keel_prover::gpu::GpuError::Readback {
                stage: "lost, for the test",
            });
        }
        Ok(())
    }
}

impl keel_prover::gpu::Ntt for FailingNtt {
    fn forward(
        &self,
        a: &mut [Fr],
        omega: Fr,
        log_n: u32,
    ) -> Result<(), keel_prover::gpu::GpuError> {
        self.fail()?;
        self.inner.forward(a, omega, log_n)
    }
    fn coset_forward(
        &self,
        a: &mut [Fr],
        omega: Fr,
        g: Fr,
        log_n: u32,
    ) -> Result<(), keel_prover::gpu::GpuError> {
        self.fail()?;
        // a device that fails after scribbling on its input: the fallback must start over
        a[0] += Fr::ONE;
        self.inner.coset_forward(a, omega, g, log_n)
    }
    fn inverse(
        &self,
        a: &mut [Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<(), keel_prover::gpu::GpuError> {
        self.fail()?;
        self.inner.inverse(a, omega_inv, log_n)
    }
    fn describe(&self) -> String {
        "GPU (failing, for the test)".into()
    }
}

#[test]
fn a_device_failing_mid_proof_is_a_typed_error_when_required_and_redone_on_the_cpu_otherwise() {
    let keys = small_keys();
    let circuit = honest();
    let public = small_public(&circuit);
    let cpu = MsmParams::new(keys.params.clone(), cpu_factory()).backend();
    let prepared = Prepared::new(&cpu, &keys.pk).unwrap();
    let reference = prove(&cpu, &keys.pk, &prepared, &circuit, &public, 9).unwrap();
    let failing = |required: bool| {
        let ntt = FailingNtt {
            inner: keel_prover::gpu::CpuNtt::new(),
            calls: Default::default(),
            after: 4,
        };
        MsmParams::new(keys.params.clone(), cpu_factory())
            .with_ntt(Arc::new(ntt))
            .required(required)
            .backend()
    };
    // required: the proof stops with the device's error
    let strict = failing(true);
    let err = prove(&strict, &keys.pk, &prepared, &circuit, &public, 9).unwrap_err();
    assert!(
        matches!(
            err,
            PlonkError::Backend(keel_prover::plonk::BackendError::Ntt { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("failing, for the test"), "{err}");
    // otherwise: every failed transform is redone on the CPU, counted, and the proof is the
    // CPU's own, byte for byte
    let lenient = failing(false);
    let proof = prove(&lenient, &keys.pk, &prepared, &circuit, &public, 9).unwrap();
    assert!(lenient.stats().fallbacks > 0);
    assert_eq!(proof, reference);
    assert!(verifies(&keys.params, &keys.pk, &public, &proof));
}

/// A backend whose device evaluates the gates from a program with one operation changed (an
/// addition made a subtraction), as a faulty compiler or a tampered kernel input would.
struct TamperedGates(Engines);

impl Backend for TamperedGates {
    fn describe(&self) -> String {
        format!("{} with one opcode changed", self.0.describe())
    }
    fn ntt(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), BackendError> {
        self.0.ntt(a, omega, log_n)
    }
    fn intt(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), BackendError> {
        self.0.intt(a, omega_inv, log_n)
    }
    fn coset_ntt(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), BackendError> {
        self.0.coset_ntt(a, omega, g, log_n)
    }
    fn msm(
        &self,
        basis: Basis,
        scalars: &[Fr],
    ) -> Result<halo2_base::halo2_proofs::halo2curves::bn256::G1, BackendError> {
        self.0.msm(basis, scalars)
    }
    fn stats(&self) -> keel_prover::plonk::BackendReport {
        self.0.stats()
    }
    fn bases(&self, basis: Basis) -> usize {
        self.0.bases(basis)
    }
    fn keep(&self, columns: &[&[Fr]], n: usize) -> Option<keel_prover::plonk::Resident> {
        self.0.keep(columns, n)
    }
    fn numerator(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&keel_prover::plonk::Resident>,
        columns: &[&[Fr]],
        n: usize,
    ) -> Option<Result<Vec<Fr>, BackendError>> {
        let mut ops = ops.clone();
        let at = (0..ops.words.len() / 4).find(|i| ops.words[4 * i] == 3)?;
        ops.words[4 * at] = 4;
        self.0.numerator(&ops, key, resident, columns, n)
    }
}

#[test]
fn a_proof_whose_gates_ran_from_a_tampered_program_is_refused() {
    let prover = cpu_prover();
    let pk = &prover.keys().pk;
    let w = witness();
    let (circuit, public) = keel_circuit::proof::synthesize(prover.keys().shape, &w).unwrap();
    let public = public.to_vec();
    let ctx = crate::gpu::ctx();
    let gpu = MsmParams::new(srs().clone(), cpu_factory())
        .with_device_kernels(&ctx)
        .unwrap()
        .required(true)
        .backend();
    let tampered = TamperedGates(gpu);
    let prepared = Prepared::new(&tampered, pk).unwrap();
    let proof = prove(&tampered, pk, &prepared, &circuit, &public, 7).unwrap();
    assert!(tampered.stats().quotients > 0);
    assert!(
        !verifies(srs(), pk, &public, &proof),
        "a tampered gate's proof verified"
    );
}

/// Two phases: `b = a·c` where `c` is a challenge squeezed after the first phase's advice, and
/// `a` in a 4-bit table.
#[derive(Clone)]
struct TwoPhase {
    a: Vec<u64>,
    /// Added to one `b` cell: a witness breaking the gate.
    skew: u64,
}

#[derive(Clone, Debug)]
struct TwoPhaseConfig {
    a: Column<Advice>,
    b: Column<Advice>,
    q: Selector,
    c: halo2_base::halo2_proofs::plonk::Challenge,
    table: TableColumn,
    out: Column<Instance>,
}

impl Circuit<Fr> for TwoPhase {
    type Config = TwoPhaseConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        Self {
            a: vec![0; self.a.len()],
            skew: 0,
        }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> TwoPhaseConfig {
        use halo2_base::halo2_proofs::plonk::{FirstPhase, SecondPhase};
        let a = meta.advice_column_in(FirstPhase);
        let b = meta.advice_column_in(SecondPhase);
        let c = meta.challenge_usable_after(FirstPhase);
        let q = meta.complex_selector();
        let table = meta.lookup_table_column();
        let out = meta.instance_column();
        meta.enable_equality(a);
        meta.enable_equality(out);
        meta.create_gate("b = a·c", |m| {
            let q = m.query_selector(q);
            let a = m.query_advice(a, Rotation::cur());
            let b = m.query_advice(b, Rotation::cur());
            let c = m.query_challenge(c);
            vec![q * (b - a * c)]
        });
        lookup_four_bits(meta, q, a, table);
        TwoPhaseConfig {
            a,
            b,
            q,
            c,
            table,
            out,
        }
    }

    fn synthesize(
        &self,
        config: TwoPhaseConfig,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        four_bits(&mut layouter, config.table)?;
        let c = layouter.get_challenge(config.c);
        let first = layouter.assign_region(
            || "rows",
            |mut region| {
                let mut first = None;
                for (i, &a) in self.a.iter().enumerate() {
                    config.q.enable(&mut region, i)?;
                    let cell = region.assign_advice(config.a, i, Value::known(Fr::from(a)));
                    first.get_or_insert(cell.cell());
                    let skew = if i == 2 { self.skew } else { 0 };
                    let b = c.map(|c| c * Fr::from(a) + Fr::from(skew));
                    region.assign_advice(config.b, i, b);
                }
                Ok(first.expect("at least one row"))
            },
        )?;
        layouter.constrain_instance(first, config.out, 0);
        Ok(())
    }
}

#[test]
fn a_two_phase_circuit_with_a_lookup_proves_on_both_backends_and_a_broken_gate_is_refused() {
    let params = ParamsKZG::<Bn256>::setup(6, rng(11));
    let circuit = TwoPhase {
        a: (0..24).map(|i| (i + 5) % 16).collect(),
        skew: 0,
    };
    let public = [Fr::from(5)];
    let vk = keygen_vk(&params, &circuit.without_witnesses()).unwrap();
    let pk = keygen_pk(&params, vk, &circuit.without_witnesses()).unwrap();
    assert_eq!(pk.get_vk().cs().challenge_phase(), vec![0]);
    let ctx = crate::gpu::ctx();
    let backends = [
        (
            "cpu",
            MsmParams::new(params.clone(), cpu_factory()).backend(),
        ),
        ("gpu", gpu_params(params.clone(), &ctx).backend()),
    ];
    let mut proofs = Vec::new();
    for (name, backend) in &backends {
        let prepared = Prepared::new(backend, &pk).unwrap();
        let proof = prove(backend, &pk, &prepared, &circuit, &public, 12).unwrap();
        assert!(verifies(&params, &pk, &public, &proof), "{name}");
        assert!(!verifies(&params, &pk, &[Fr::from(6)], &proof), "{name}");
        let broken = TwoPhase {
            skew: 1,
            ..circuit.clone()
        };
        let bad = prove(backend, &pk, &prepared, &broken, &public, 13).unwrap();
        assert!(
            !verifies(&params, &pk, &public, &bad),
            "{name}: a broken gate"
        );
        proofs.push(proof);
    }
    assert_eq!(proofs[0], proofs[1]);
}

#[test]
fn the_device_backend_reports_its_busy_time_and_the_cpu_none() {
    let keys = small_keys();
    let circuit = honest();
    let public = small_public(&circuit);
    for (name, backend) in small_backends() {
        let prepared = Prepared::new(&backend, &keys.pk).unwrap();
        let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        let stages = create_proof(
            &backend,
            &keys.pk,
            &prepared,
            &circuit,
            &[&public],
            &mut rng(5),
            &mut transcript,
        )
        .unwrap();
        let busy = stages.backend.busy;
        let utilisation = stages.utilisation();
        if name == "cpu" {
            assert_eq!((busy, utilisation), (None, None), "{name}");
            assert!(backend.device().is_none());
        } else {
            // every transform, MSM and quotient part of the proof went through the queue
            let busy = busy.unwrap();
            assert!(busy > std::time::Duration::ZERO, "{name}");
            assert!(
                busy <= stages.total,
                "{name}: {busy:?} of {:?}",
                stages.total
            );
            let u = utilisation.unwrap();
            assert!(u > 0.0 && u <= 1.0, "{name}: {u}");
            assert!(backend.device().unwrap().busy() >= busy);
        }
    }
}

#[test]
fn a_witness_synthesised_on_another_thread_proves_as_create_proof_does_and_mismatches_are_refused()
{
    let keys = small_keys();
    let circuit = honest();
    let public = small_public(&circuit);
    let (_, backend) = small_backends().remove(0);
    let prepared = Prepared::new(&backend, &keys.pk).unwrap();
    // laid out on one thread, proven on this one: what the pipelined worker does
    let synthesized = {
        let (circuit, public) = (circuit.clone(), public.clone());
        std::thread::spawn(move || synthesize(&small_keys().pk, &circuit, &[&public]).unwrap())
            .join()
            .unwrap()
    };
    let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
    let stages = prove_synthesized(
        &backend,
        &keys.pk,
        &prepared,
        synthesized,
        &mut rng(1),
        &mut transcript,
    )
    .unwrap();
    let apart = transcript.finalize();
    assert!(stages.witness > std::time::Duration::ZERO);
    assert!(verifies(&keys.params, &keys.pk, &public, &apart));
    let whole = prove(&backend, &keys.pk, &prepared, &circuit, &public, 1).unwrap();
    assert_eq!(
        apart, whole,
        "the same proof, byte for byte, with the same randomness"
    );

    // a tampered witness laid out apart is refused like any other
    let mut bad = circuit.clone();
    bad.rows[2].2 += 1;
    let synthesized = synthesize(&keys.pk, &bad, &[&public]).unwrap();
    let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
    prove_synthesized(
        &backend,
        &keys.pk,
        &prepared,
        synthesized,
        &mut rng(2),
        &mut transcript,
    )
    .unwrap();
    assert!(!verifies(
        &keys.params,
        &keys.pk,
        &public,
        &transcript.finalize()
    ));

    // wrong instances, a circuit of two phases and another key's witness: typed refusals
    assert!(matches!(
        synthesize(&keys.pk, &circuit, &[&public, &public]),
        Err(PlonkError::InvalidInstances {
            given: 2,
            expected: 1
        })
    ));
    let params = ParamsKZG::<Bn256>::setup(6, rng(11));
    let two = TwoPhase {
        a: (0..24).map(|i| (i + 5) % 16).collect(),
        skew: 0,
    };
    let vk = keygen_vk(&params, &two.without_witnesses()).unwrap();
    let pk = keygen_pk(&params, vk, &two.without_witnesses()).unwrap();
    let e = synthesize(&pk, &two, &[&[Fr::from(5)]]).unwrap_err();
    assert!(matches!(e, PlonkError::SeveralPhases { phases: 2 }), "{e}");
    let backend = MsmParams::new(params.clone(), cpu_factory()).backend();
    let prepared = Prepared::new(&backend, &pk).unwrap();
    let small = synthesize(&keys.pk, &circuit, &[&public]).unwrap();
    let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
    let e = prove_synthesized(
        &backend,
        &pk,
        &prepared,
        small,
        &mut rng(3),
        &mut transcript,
    )
    .unwrap_err();
    assert!(matches!(e, PlonkError::KeyMismatch), "{e}");
}

#[test]
fn a_device_quotient_failure_is_a_typed_error_when_required_and_left_to_the_cpu_otherwise() {
    let keys = small_keys();
    let cs = keys.pk.get_vk().cs();
    let ctx = crate::gpu::ctx();
    let ops = keel_prover::plonk::Gates::new(cs).opcodes(&[], Fr::from(3), 64);
    let polys: Vec<Vec<Fr>> = (0..cs.num_advice_columns())
        .map(|i| (0..64).map(|r| Fr::from((i * 64 + r) as u64)).collect())
        .collect();
    let refs: Vec<&[Fr]> = polys.iter().map(|p| p.as_slice()).collect();
    for required in [true, false] {
        let backend = MsmParams::new(
            keys.params.clone(),
            gpu_factory(ctx.clone(), MsmConfig::default()),
        )
        .with_device_kernels(&ctx)
        .unwrap()
        .required(required)
        .backend();
        let kept = backend
            .keep_coefficients(&refs, &[], 64)
            .expect("kept on the device");
        // a part of 128 rows from coefficients of 64: the device refuses it
        let w = keel_prover::gpu::ntt::omega(7);
        let got = backend.numerator_on_coset(&ops, &[], None, &kept, w, Fr::from(5), 7, None);
        if required {
            let e = got.expect("an answer").unwrap_err();
            assert!(matches!(e, BackendError::Quotient { .. }), "{e}");
            assert_eq!(backend.stats().fallbacks, 0);
        } else {
            // left to the CPU's transforms and evaluation, and counted in the proof's report
            assert!(got.is_none());
            assert_eq!(backend.stats().fallbacks, 1);
        }
    }
}

/// An MSM engine on the device that reads only host memory (`fails: false`: no
/// `msm_on_device`, so each proof column it commits to goes up a second time), or whose every
/// read of scalars on the device fails (`fails: true`).
struct HostScalarsOnly {
    inner: Arc<dyn keel_prover::gpu::Msm>,
    fails: bool,
}

fn host_scalars_only(
    ctx: &Arc<keel_prover::gpu::GpuContext>,
    fails: bool,
) -> keel_prover::kzg::EngineFactory {
    let inner = gpu_factory(ctx.clone(), MsmConfig::default());
    Arc::new(move |bases| {
        Arc::new(HostScalarsOnly {
            inner: inner(bases),
            fails,
        }) as Arc<dyn keel_prover::gpu::Msm>
    })
}

impl keel_prover::gpu::Msm for HostScalarsOnly {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn bases_len(&self) -> usize {
        self.inner.bases_len()
    }
    fn msm(
        &self,
        scalars: &[Fr],
    ) -> Result<halo2_base::halo2_proofs::halo2curves::bn256::G1, keel_prover::gpu::MsmError> {
        self.inner.msm(scalars)
    }
    fn on_device(&self) -> bool {
        self.inner.on_device()
    }
    fn device(&self) -> Option<&keel_prover::gpu::GpuContext> {
        self.inner.device()
    }
    fn readback_bytes(&self, n: usize) -> u64 {
        self.inner.readback_bytes(n)
    }
    fn msm_on_device(
        &self,
        _: &wgpu::Buffer,
        _: usize,
    ) -> Option<Result<halo2_base::halo2_proofs::halo2curves::bn256::G1, keel_prover::gpu::MsmError>>
    {
        self.fails.then(|| {
            Err(keel_prover::gpu::GpuError::Device {
                stage: "MSM",
                message: "failing, for the test".into(),
            }
            .into())
        })
    }
}

/// Each proof column (advice, the permutation's and the lookups' products, the permuted
/// columns) goes to the device once for its commitment and its coefficients: the Lagrange MSM
/// reads the values the inverse transform then runs on, and the evaluations and the opening
/// read the coefficients there, so only scalars come back. Against an engine that reads only
/// host memory, the same proof, byte for byte, and exactly one column's bytes less up per
/// committed column and per commitment of the opening.
#[test]
fn each_committed_column_goes_up_once_for_its_commitment_and_its_coefficients() {
    let prover = cpu_prover();
    let pk = &prover.keys().pk;
    let w = witness();
    let (circuit, public) = keel_circuit::proof::synthesize(prover.keys().shape, &w).unwrap();
    let public = public.to_vec();
    let ctx = crate::gpu::ctx();
    let staged = gpu_params(srs().clone(), &ctx).backend();
    let apart = MsmParams::new(srs().clone(), host_scalars_only(&ctx, false))
        .with_device_kernels(&ctx)
        .unwrap()
        .required(true)
        .backend();
    let mut moved = Vec::new();
    let mut proofs = Vec::new();
    for backend in [&staged, &apart] {
        let prepared = Prepared::new(backend, pk).unwrap();
        let before = backend.stats();
        proofs.push(prove(backend, pk, &prepared, &circuit, &public, 5).unwrap());
        let after = backend.stats();
        assert_eq!(after.fallbacks, 0);
        moved.push((
            after.bytes_up - before.bytes_up,
            after.bytes_down - before.bytes_down,
            after.msms - before.msms,
        ));
    }
    assert_eq!(proofs[0], proofs[1]);
    assert!(verifies(srs(), pk, &public, &proofs[0]));
    let cs = pk.get_vk().cs();
    let sets = cs
        .permutation()
        .get_columns()
        .chunks(cs.degree() - 2)
        .count();
    let committed = cs.num_advice_columns() + sets + 3 * cs.lookups().len();
    // and the opening's commitments from the device (h's pieces, the two SHPLONK
    // commitments): read back and sent up again for an engine that reads only the host
    let opening = (cs.degree() - 1 + 2) as u64;
    let column = 32 * pk.get_vk().get_domain().n;
    eprintln!("bytes up, down and MSMs per proof: {moved:?} (staged, apart)");
    assert_eq!(
        moved[1].0 - moved[0].0,
        (committed as u64 + opening) * column,
        "{moved:?}"
    );
    assert_eq!(moved[1].1 - moved[0].1, opening * column, "{moved:?}");
    // what comes back is what the transcript takes: each commitment (one point, and its MSM's
    // largest bucket size) and the evaluations, fewer bytes than one column
    let msm_readback = moved[0].2 * (4 + 128);
    let evaluations = moved[0].1 - msm_readback;
    eprintln!("bytes back: {msm_readback} of commitments, {evaluations} of evaluations");
    assert!(evaluations > 0 && evaluations < column, "{moved:?}");
    assert_eq!(evaluations % 32, 0);
    assert_eq!(moved[0].2, moved[1].2, "{moved:?}");
}

/// A staged commitment whose MSM fails on the device: a typed error naming the MSM when the
/// device is required; otherwise the column is committed and transformed apart (the CPU
/// redoing the MSM), counted, and the proof is the CPU's own, byte for byte.
#[test]
fn a_staged_commitment_failing_is_a_typed_error_when_required_and_redone_apart_otherwise() {
    let keys = small_keys();
    let circuit = honest();
    let public = small_public(&circuit);
    let cpu = MsmParams::new(keys.params.clone(), cpu_factory()).backend();
    let prepared = Prepared::new(&cpu, &keys.pk).unwrap();
    let reference = prove(&cpu, &keys.pk, &prepared, &circuit, &public, 9).unwrap();
    let ctx = crate::gpu::ctx();
    let failing = |required: bool| {
        MsmParams::new(keys.params.clone(), host_scalars_only(&ctx, true))
            .with_device_kernels(&ctx)
            .unwrap()
            .required(required)
            .backend()
    };
    let strict = failing(true);
    let err = prove(&strict, &keys.pk, &prepared, &circuit, &public, 9).unwrap_err();
    assert!(
        matches!(err, PlonkError::Backend(BackendError::Msm { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("failing, for the test"), "{err}");
    let lenient = failing(false);
    let proof = prove(&lenient, &keys.pk, &prepared, &circuit, &public, 9).unwrap();
    // one fallback per committed column (advice, the permutation's products and the lookup's),
    // and one for the opening, whose first commitment on the device fails and whose rest the
    // CPU does
    let cs = keys.pk.get_vk().cs();
    let sets = cs
        .permutation()
        .get_columns()
        .chunks(cs.degree() - 2)
        .count();
    let committed = cs.num_advice_columns() + sets + 3 * cs.lookups().len();
    assert_eq!(lenient.stats().fallbacks, committed as u64 + 1);
    assert_eq!(proof, reference);
    assert!(verifies(&keys.params, &keys.pk, &public, &proof));
}

/// A backend whose device fails one kind of the opening's polynomial work (the divisions by
/// `X − b`), after the parts and the pieces were made there.
struct FailingOpening(Engines);

impl keel_prover::plonk::DevicePolys for FailingOpening {
    fn upload(&self, p: &[Fr]) -> Result<keel_prover::plonk::Resident, BackendError> {
        self.0.device_polys().unwrap().upload(p)
    }
    fn column(
        &self,
        kept: &keel_prover::plonk::Resident,
        index: usize,
    ) -> Option<keel_prover::plonk::Resident> {
        self.0.device_polys().unwrap().column(kept, index)
    }
    fn combine(
        &self,
        terms: &[(&keel_prover::plonk::Resident, Fr)],
        head: &[Fr],
        n: usize,
    ) -> Result<keel_prover::plonk::Resident, BackendError> {
        self.0.device_polys().unwrap().combine(terms, head, n)
    }
    fn divide(
        &self,
        _: &keel_prover::plonk::Resident,
        _: Fr,
    ) -> Result<keel_prover::plonk::Resident, BackendError> {
        Err(BackendError::Polys {
            engine: "failing".into(),
            what: "a division",
            source: Box::new(keel_prover::gpu::GpuError::Device {
                stage: "polynomials",
                message: "failing, for the test".into(),
            }),
        })
    }
    fn evaluate(
        &self,
        at: &[(&keel_prover::plonk::Resident, Fr)],
    ) -> Result<Vec<Fr>, BackendError> {
        self.0.device_polys().unwrap().evaluate(at)
    }
    fn commit(
        &self,
        p: &keel_prover::plonk::Resident,
    ) -> Result<halo2_base::halo2_proofs::halo2curves::bn256::G1, BackendError> {
        self.0.device_polys().unwrap().commit(p)
    }
    fn read(&self, p: &keel_prover::plonk::Resident) -> Result<Vec<Fr>, BackendError> {
        self.0.device_polys().unwrap().read(p)
    }
    fn required(&self) -> bool {
        self.0.device_polys().unwrap().required()
    }
    fn fell_back(&self) {
        self.0.device_polys().unwrap().fell_back()
    }
}

impl Backend for FailingOpening {
    fn describe(&self) -> String {
        format!("{} failing its divisions", self.0.describe())
    }
    fn ntt(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), BackendError> {
        self.0.ntt(a, omega, log_n)
    }
    fn intt(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), BackendError> {
        self.0.intt(a, omega_inv, log_n)
    }
    fn coset_ntt(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), BackendError> {
        self.0.coset_ntt(a, omega, g, log_n)
    }
    fn msm(
        &self,
        basis: Basis,
        scalars: &[Fr],
    ) -> Result<halo2_base::halo2_proofs::halo2curves::bn256::G1, BackendError> {
        self.0.msm(basis, scalars)
    }
    fn stats(&self) -> keel_prover::plonk::BackendReport {
        self.0.stats()
    }
    fn bases(&self, basis: Basis) -> usize {
        self.0.bases(basis)
    }
    fn keep(&self, columns: &[&[Fr]], n: usize) -> Option<keel_prover::plonk::Resident> {
        self.0.keep(columns, n)
    }
    fn commit_to_coeff(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<keel_prover::plonk::Committed, BackendError> {
        self.0.commit_to_coeff(values, omega_inv, log_n)
    }
    fn to_coeff_keep(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<(Option<Vec<Fr>>, Option<keel_prover::plonk::Resident>), BackendError> {
        self.0.to_coeff_keep(values, omega_inv, log_n)
    }
    fn read_kept(
        &self,
        kept: &keel_prover::plonk::Resident,
        index: usize,
    ) -> Option<Result<Vec<Fr>, BackendError>> {
        self.0.read_kept(kept, index)
    }
    fn device_polys(&self) -> Option<&dyn keel_prover::plonk::DevicePolys> {
        Some(self)
    }
    fn keep_coefficients(
        &self,
        polys: &[&[Fr]],
        kept: &[Option<&keel_prover::plonk::Resident>],
        n: usize,
    ) -> Option<keel_prover::plonk::Resident> {
        self.0.keep_coefficients(polys, kept, n)
    }
    fn part_on_device(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&keel_prover::plonk::Resident>,
        kept: &keel_prover::plonk::Resident,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: keel_prover::gpu::Vanishing,
    ) -> Option<Result<keel_prover::plonk::Resident, BackendError>> {
        self.0
            .part_on_device(ops, key, resident, kept, omega, g, log_n, vanishing)
    }
}

/// The opening failing on the device part-way (its divisions), after the parts, the pieces and
/// the evaluations were made there and with the coefficients kept only there: a typed error
/// where the device is required; otherwise counted once, the rest made again on the host from
/// how each polynomial was made (the kept columns and parts read back), and the CPU's proof,
/// byte for byte.
#[test]
fn an_opening_failing_on_the_device_is_a_typed_error_when_required_and_redone_on_the_host_otherwise(
) {
    let keys = small_keys();
    let circuit = honest();
    let public = small_public(&circuit);
    let cpu = MsmParams::new(keys.params.clone(), cpu_factory()).backend();
    let prepared = Prepared::new(&cpu, &keys.pk).unwrap();
    let reference = prove(&cpu, &keys.pk, &prepared, &circuit, &public, 9).unwrap();
    let ctx = crate::gpu::ctx();
    let failing = |required: bool| {
        FailingOpening(
            gpu_params(keys.params.clone(), &ctx)
                .required(required)
                .backend(),
        )
    };
    let strict = failing(true);
    let prepared = Prepared::new(&strict, &keys.pk).unwrap();
    let err = prove(&strict, &keys.pk, &prepared, &circuit, &public, 9).unwrap_err();
    assert!(
        matches!(
            err,
            PlonkError::Backend(BackendError::Polys {
                what: "a division",
                ..
            })
        ),
        "{err}"
    );
    let lenient = failing(false);
    let prepared = Prepared::new(&lenient, &keys.pk).unwrap();
    let before = lenient.stats();
    let proof = prove(&lenient, &keys.pk, &prepared, &circuit, &public, 9).unwrap();
    let after = lenient.stats();
    assert_eq!(after.fallbacks - before.fallbacks, 1);
    // the parts and the kept coefficients came back for the host's opening
    assert!(after.bytes_down - before.bytes_down > 32 * (1 << SMALL_K) as u64);
    assert_eq!(proof, reference);
    assert!(verifies(&keys.params, &keys.pk, &public, &proof));
}
