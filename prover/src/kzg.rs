//! KZG commitments through an [`Msm`] engine, plugged into halo2-axiom's unmodified prover.
//!
//! halo2-axiom commits through its parameter type: `create_proof` calls
//! [`ParamsProver::commit`] and [`Params::commit_lagrange`] for every advice, lookup,
//! permutation and quotient polynomial. [`MsmParams`] wraps a `ParamsKZG<Bn256>` and sends
//! those two calls to an engine held once per basis (the bases stay resident on the GPU). The
//! rest — FFTs, the quotient, the SHPLONK opening — is halo2-axiom's own code: [`MsmKzg`] is a
//! commitment scheme whose verifier side is plain `ParamsKZG`, and [`Shplonk`] is
//! `ProverSHPLONK` on the inner parameters. A proof made this way verifies with
//! `VerifierSHPLONK` and `KZGCommitmentScheme<Bn256>`, unchanged.
//!
//! ```text
//!  create_proof::<MsmKzg, Shplonk, ..>(&MsmParams, ..)
//!      ├─ commit / commit_lagrange ──▶ Msm engine (GpuMsm or CpuMsm)    timed, optionally audited
//!      └─ multiopen ──▶ Shplonk ──▶ ProverSHPLONK(&ParamsKZG)            timed
//! ```
//!
//! A GPU failure inside a proof cannot be returned through halo2's trait (it returns a point):
//! the wrapper then commits on the CPU, counts the failure, and the prover reports it.

use std::{
    fmt, io,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Instant,
};

use halo2_base::halo2_proofs::{
    arithmetic::g_to_lagrange,
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine, G1},
        group::prime::PrimeCurveAffine,
    },
    poly::{
        commitment::{Blind, CommitmentScheme, Params, ParamsProver, Prover},
        kzg::{
            commitment::{KZGCommitmentScheme, ParamsKZG},
            msm::MSMKZG,
            multiopen::ProverSHPLONK,
        },
        Coeff, LagrangeCoeff, Polynomial, ProverQuery,
    },
    transcript::{EncodedChallenge, TranscriptWrite},
    SerdeCurveAffine, SerdeFormat,
};
use rand_core::RngCore;

use crate::{
    gpu::{
        AdapterClass, CpuMsm, GpuContext, GpuError, GpuMsm, GpuNtt, GpuPolicy, GpuPolys,
        GpuQuotient, Msm, MsmConfig, Ntt,
    },
    plonk::Engines,
};

/// Builds an engine over a basis (the CPU one, or a GPU one on a context).
pub type EngineFactory = Arc<dyn Fn(&[G1Affine]) -> Arc<dyn Msm> + Send + Sync>;

/// What the commitments of a run cost, shared by clones of the parameters.
#[derive(Debug, Default)]
pub struct CommitStats {
    commits: AtomicU64,
    commit_ns: AtomicU64,
    /// Commitments running now, and since when at least one has been.
    busy: Mutex<(usize, Option<Instant>)>,
    opening_ns: AtomicU64,
    fallbacks: AtomicU64,
    audited: AtomicU64,
    mismatches: AtomicU64,
}

/// A snapshot of [`CommitStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Commitments made (`commit` and `commit_lagrange`).
    pub commits: u64,
    /// Wall-clock time during which at least one commitment was running, in nanoseconds
    /// (halo2 commits several columns at once: overlapping commitments count once).
    pub commit_ns: u64,
    /// Time spent in the SHPLONK opening (its own MSMs included), in nanoseconds.
    pub opening_ns: u64,
    /// Commitments the engine failed and the CPU made instead.
    pub fallbacks: u64,
    /// Commitments compared with the CPU (audit mode).
    pub audited: u64,
    /// Audited commitments that differed from the CPU's.
    pub mismatches: u64,
}

impl CommitStats {
    fn enter(&self) {
        let mut b = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if b.0 == 0 {
            b.1 = Some(Instant::now());
        }
        b.0 += 1;
    }

    fn leave(&self) {
        let mut b = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        b.0 -= 1;
        if b.0 == 0 {
            if let Some(since) = b.1.take() {
                self.commit_ns
                    .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }
    }

    /// The counters now.
    pub fn report(&self) -> CommitReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CommitReport {
            commits: g(&self.commits),
            commit_ns: g(&self.commit_ns),
            opening_ns: g(&self.opening_ns),
            fallbacks: g(&self.fallbacks),
            audited: g(&self.audited),
            mismatches: g(&self.mismatches),
        }
    }

    /// Sets every counter to zero.
    pub fn reset(&self) {
        for a in [
            &self.commits,
            &self.commit_ns,
            &self.opening_ns,
            &self.fallbacks,
            &self.audited,
            &self.mismatches,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// CPU engines over the monomial and the Lagrange bases.
type CpuEngines = (Arc<dyn Msm>, Arc<dyn Msm>);

/// `ParamsKZG<Bn256>` whose commitments run on an [`Msm`] engine.
#[derive(Clone)]
pub struct MsmParams {
    inner: ParamsKZG<Bn256>,
    factory: EngineFactory,
    g: Arc<dyn Msm>,
    g_lagrange: Arc<dyn Msm>,
    audit: bool,
    /// The engine was required (`--prover.gpu require`): a commitment it fails makes the proof
    /// fail ([`crate::BatchProver::prove`]) instead of passing quietly on the CPU.
    required: bool,
    stats: Arc<CommitStats>,
    /// The device's NTT, when the engines are on a device ([`MsmParams::with_ntt`]).
    ntt: Option<Arc<dyn Ntt>>,
    /// The device's quotient interpreter ([`MsmParams::with_quotient`]).
    quotient: Option<Arc<GpuQuotient>>,
    /// The device's polynomial kernels ([`MsmParams::with_polys`]).
    polys: Option<Arc<GpuPolys>>,
    /// CPU engines over both bases, made when a device backend first needs its fallback.
    cpu: Arc<OnceLock<CpuEngines>>,
}

impl fmt::Debug for MsmParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsmParams")
            .field("k", &self.inner.k())
            .field("engine", &self.g.describe())
            .field("audit", &self.audit)
            .finish()
    }
}

/// The CPU engine factory (halo2curves' Pippenger, as `ParamsKZG` itself uses).
pub fn cpu_factory() -> EngineFactory {
    Arc::new(|bases: &[G1Affine]| Arc::new(CpuMsm::new(bases)) as Arc<dyn Msm>)
}

/// A GPU engine factory on `ctx`. Kernels are compiled and bases uploaded when
/// [`MsmParams::new`] calls it; that is where a device failure surfaces.
pub fn gpu_factory(ctx: Arc<GpuContext>, config: MsmConfig) -> EngineFactory {
    Arc::new(
        move |bases: &[G1Affine]| match GpuMsm::new(ctx.clone(), bases, config) {
            Ok(engine) => Arc::new(engine) as Arc<dyn Msm>,
            Err(e) => gpu_unavailable(e, bases),
        },
    )
}

/// Parameters whose transforms and MSMs run where `policy` says. Under `auto` a hardware GPU
/// takes them if there is one (the CPU redoes what it fails); under `require` (a hardware
/// adapter) and `software` (any adapter, lavapipe included) the GPU must take both of the SRS's
/// bases and the transforms (an error otherwise, never a quiet CPU fallback), and the
/// parameters are marked [`MsmParams::required`], so that an operation the GPU fails during a
/// proof fails the proof.
pub fn params_for(params: ParamsKZG<Bn256>, policy: GpuPolicy) -> Result<MsmParams, GpuError> {
    if !matches!(policy, GpuPolicy::Require | GpuPolicy::Software) {
        return Ok(match GpuContext::acquire(policy)? {
            Some(ctx) if policy == GpuPolicy::Auto && ctx.class() != AdapterClass::Software => {
                let p = MsmParams::new(params, gpu_factory(ctx.clone(), MsmConfig::default()));
                match p.clone().with_device_kernels(&ctx) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(target: "keel::prover", error = %e, "GPU NTT and quotient unavailable; on the CPU");
                        p
                    }
                }
            }
            Some(ctx) => {
                tracing::info!(
                    target: "keel::prover",
                    adapter = %ctx.info().name,
                    "only a software GPU adapter: proving on the CPU (the `software` policy uses it)"
                );
                MsmParams::new(params, cpu_factory())
            }
            None => MsmParams::new(params, cpu_factory()),
        });
    }
    let ctx = GpuContext::acquire(policy)?.ok_or(GpuError::NoAdapter)?;
    let config = MsmConfig::default();
    let g = GpuMsm::new(ctx.clone(), params.get_g(), config)?;
    let g_lagrange = GpuMsm::new(ctx.clone(), &lagrange_basis(&params), config)?;
    Ok(MsmParams::with_engines(
        params,
        gpu_factory(ctx.clone(), config),
        Arc::new(g),
        Arc::new(g_lagrange),
    )
    .with_device_kernels(&ctx)?
    .required(true))
}

/// A basis the GPU could not take is committed on the CPU, and said so.
fn gpu_unavailable(e: GpuError, bases: &[G1Affine]) -> Arc<dyn Msm> {
    tracing::warn!(target: "keel::prover", error = %e, "GPU MSM unavailable for this basis; committing on the CPU");
    Arc::new(CpuMsm::new(bases))
}

impl MsmParams {
    /// Wraps `params`, building one engine for the monomial basis and one for the Lagrange
    /// basis with `factory`.
    pub fn new(params: ParamsKZG<Bn256>, factory: EngineFactory) -> Self {
        let g = factory(params.get_g());
        let lagrange = lagrange_basis(&params);
        let g_lagrange = factory(&lagrange);
        Self::with_engines(params, factory, g, g_lagrange)
    }

    /// Wraps `params` with engines already built for its monomial (`g`) and Lagrange
    /// (`g_lagrange`) bases; `factory` rebuilds them if the parameters are downsized.
    pub fn with_engines(
        params: ParamsKZG<Bn256>,
        factory: EngineFactory,
        g: Arc<dyn Msm>,
        g_lagrange: Arc<dyn Msm>,
    ) -> Self {
        Self {
            inner: params,
            factory,
            g,
            g_lagrange,
            audit: false,
            required: false,
            stats: Arc::default(),
            ntt: None,
            quotient: None,
            polys: None,
            cpu: Arc::default(),
        }
    }

    /// The transforms of Keel's prover run on `ntt` (a [`GpuNtt`] on the engines' device).
    pub fn with_ntt(mut self, ntt: Arc<dyn Ntt>) -> Self {
        self.ntt = Some(ntt);
        self
    }

    /// The gates' quotient values of Keel's prover run on `quotient`.
    pub fn with_quotient(mut self, quotient: Arc<GpuQuotient>) -> Self {
        self.quotient = Some(quotient);
        self
    }

    /// The evaluations and the opening of Keel's prover on `polys` (on the engines' device).
    pub fn with_polys(mut self, polys: Arc<GpuPolys>) -> Self {
        self.polys = Some(polys);
        self
    }

    /// The NTT, the quotient's interpreter and the polynomial kernels on `ctx` (its preferred
    /// limbs) beside the MSM engines: every device kernel Keel's prover has.
    pub fn with_device_kernels(self, ctx: &Arc<GpuContext>) -> Result<Self, GpuError> {
        let limbs = ctx.preferred_limbs();
        let ntt = Arc::new(GpuNtt::new(ctx.clone(), limbs)?);
        // the quotient transforms the proof's kept coefficients onto each part itself
        let quotient = GpuQuotient::new(ctx.clone(), limbs)?.with_transforms(ntt.clone());
        let polys = GpuPolys::new(ctx.clone(), limbs, ntt.clone())?;
        Ok(self
            .with_ntt(ntt)
            .with_quotient(Arc::new(quotient))
            .with_polys(Arc::new(polys)))
    }

    /// The [`crate::plonk::Backend`] of Keel's prover over these parameters: the CPU reference
    /// where both MSM engines are the CPU's and there is no device NTT; otherwise the device's
    /// engines, with the CPU's redoing what the device fails (unless [`MsmParams::required`]).
    pub fn backend(&self) -> Engines {
        let on_device = self.g.on_device()
            || self.g_lagrange.on_device()
            || self.ntt.is_some()
            || self.quotient.is_some();
        if !on_device {
            return Engines::cpu_with(self.g.clone(), self.g_lagrange.clone());
        }
        let (cpu_g, cpu_lagrange) = self
            .cpu
            .get_or_init(|| {
                (
                    Arc::new(CpuMsm::new(self.inner.get_g())) as Arc<dyn Msm>,
                    Arc::new(CpuMsm::new(&lagrange_basis(&self.inner))) as Arc<dyn Msm>,
                )
            })
            .clone();
        let ntt = self
            .ntt
            .clone()
            .unwrap_or_else(|| Arc::new(crate::gpu::CpuNtt::new()));
        let engines = Engines::gpu(
            ntt,
            self.g.clone(),
            self.g_lagrange.clone(),
            cpu_g,
            cpu_lagrange,
            self.required,
        );
        let engines = match &self.quotient {
            Some(q) => engines.with_quotient(q.clone()),
            None => engines,
        };
        match &self.polys {
            Some(p) => engines.with_polys(p.clone()),
            None => engines,
        }
    }

    /// Marks the engine as required: a proof during which it failed a commitment is refused.
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Whether the engine is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Compares every commitment with the CPU's (`ParamsKZG`'s own) and counts mismatches.
    pub fn with_audit(mut self, audit: bool) -> Self {
        self.audit = audit;
        self
    }

    /// The wrapped parameters (what a verifier uses).
    pub fn inner(&self) -> &ParamsKZG<Bn256> {
        &self.inner
    }

    /// The engine's description.
    pub fn engine(&self) -> String {
        self.g.describe()
    }

    /// The counters of commitments made through these parameters (and their clones).
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    fn run(&self, engine: &dyn Msm, scalars: &[Fr], cpu: impl FnOnce() -> G1) -> G1 {
        self.stats.enter();
        let result = engine.msm(scalars);
        self.stats.leave();
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(point) => {
                if self.audit {
                    self.stats.audited.fetch_add(1, Ordering::Relaxed);
                    if point != cpu() {
                        self.stats.mismatches.fetch_add(1, Ordering::Relaxed);
                    }
                }
                point
            }
            Err(e) => {
                tracing::warn!(target: "keel::prover", error = %e, "MSM engine failed; committing on the CPU");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                cpu()
            }
        }
    }
}

/// The Lagrange basis of `params` (the same inverse FFT `ParamsKZG` runs at setup).
/// The SRS's Lagrange basis. `ParamsKZG` holds it but has no getter, and recomputing it is a
/// group FFT (about 30 s at k = 16 on one small core, paid by every process that loads a
/// prover), so it is read back from the parameters' own raw serialisation, which is
/// `k ‖ g ‖ g_lagrange ‖ g2 ‖ s_g2`. Should that layout ever change, the size check sends it to
/// the FFT instead.
fn lagrange_basis(params: &ParamsKZG<Bn256>) -> Vec<G1Affine> {
    let n = params.n() as usize;
    let mut one = Vec::new();
    let mut bytes = Vec::new();
    let raw = SerdeFormat::RawBytes;
    if params.get_g()[0].write(&mut one, raw).is_ok()
        && params.write_custom(&mut bytes, raw).is_ok()
    {
        let point = one.len();
        let start = 4 + n * point;
        if let Some(mut r) = bytes.get(start..start + n * point) {
            let read: io::Result<Vec<G1Affine>> = (0..n)
                .map(|_| G1Affine::read(&mut r, SerdeFormat::RawBytesUnchecked))
                .collect();
            if let Ok(points) = read {
                return points;
            }
        }
    }
    lagrange_by_fft(params)
}

/// The Lagrange basis computed from the monomial one.
fn lagrange_by_fft(params: &ParamsKZG<Bn256>) -> Vec<G1Affine> {
    let g: Vec<G1> = params
        .get_g()
        .iter()
        .map(PrimeCurveAffine::to_curve)
        .collect();
    g_to_lagrange(g, params.k())
}

impl<'params> Params<'params, G1Affine> for MsmParams {
    type MSM = MSMKZG<Bn256>;

    fn k(&self) -> u32 {
        self.inner.k()
    }

    fn n(&self) -> u64 {
        self.inner.n()
    }

    fn downsize(&mut self, k: u32) {
        self.inner.downsize(k);
        self.g = (self.factory)(self.inner.get_g());
        self.g_lagrange = (self.factory)(&lagrange_basis(&self.inner));
    }

    fn empty_msm(&'params self) -> MSMKZG<Bn256> {
        MSMKZG::new()
    }

    fn commit_lagrange(&self, poly: &Polynomial<Fr, LagrangeCoeff>, r: Blind<Fr>) -> G1 {
        self.run(&*self.g_lagrange, poly, || {
            self.inner.commit_lagrange(poly, r)
        })
    }

    fn write<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.inner.write(writer)
    }

    /// Reads `ParamsKZG` and commits on the CPU.
    fn read<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        Ok(Self::new(ParamsKZG::read(reader)?, cpu_factory()))
    }
}

impl<'params> ParamsProver<'params, G1Affine> for MsmParams {
    type ParamsVerifier = ParamsKZG<Bn256>;

    /// Fresh random parameters (halo2's contract for `new`), committing on the CPU.
    fn new(k: u32) -> Self {
        Self::new(
            <ParamsKZG<Bn256> as ParamsProver<G1Affine>>::new(k),
            cpu_factory(),
        )
    }

    fn commit(&self, poly: &Polynomial<Fr, Coeff>, r: Blind<Fr>) -> G1 {
        self.run(&*self.g, poly, || self.inner.commit(poly, r))
    }

    fn get_g(&self) -> &[G1Affine] {
        self.inner.get_g()
    }

    fn verifier_params(&'params self) -> &'params ParamsKZG<Bn256> {
        &self.inner
    }
}

/// KZG on BN254 with commitments through [`MsmParams`]; verifies as `KZGCommitmentScheme`.
#[derive(Debug)]
pub struct MsmKzg;

impl CommitmentScheme for MsmKzg {
    type Scalar = Fr;
    type Curve = G1Affine;
    type ParamsProver = MsmParams;
    type ParamsVerifier = ParamsKZG<Bn256>;

    fn new_params(k: u32) -> MsmParams {
        <MsmParams as ParamsProver<G1Affine>>::new(k)
    }

    fn read_params<R: io::Read>(reader: &mut R) -> io::Result<MsmParams> {
        <MsmParams as Params<G1Affine>>::read(reader)
    }
}

/// halo2-axiom's SHPLONK prover on the inner parameters, timed.
#[derive(Debug)]
pub struct Shplonk<'params> {
    inner: ProverSHPLONK<'params, Bn256>,
    stats: &'params CommitStats,
}

impl<'params> Prover<'params, MsmKzg> for Shplonk<'params> {
    const QUERY_INSTANCE: bool = <ProverSHPLONK<'params, Bn256> as Prover<
        'params,
        KZGCommitmentScheme<Bn256>,
    >>::QUERY_INSTANCE;

    fn new(params: &'params MsmParams) -> Self {
        Self {
            inner: ProverSHPLONK::new(&params.inner),
            stats: &params.stats,
        }
    }

    fn create_proof<'com, E, T, R, I>(
        &self,
        rng: R,
        transcript: &mut T,
        queries: I,
    ) -> io::Result<()>
    where
        E: EncodedChallenge<G1Affine>,
        T: TranscriptWrite<G1Affine, E>,
        I: IntoIterator<Item = ProverQuery<'com, G1Affine>> + Clone,
        R: RngCore,
    {
        let start = Instant::now();
        let result = self.inner.create_proof(rng, transcript, queries);
        self.stats
            .opening_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        result
    }
}

#[cfg(test)]
mod lagrange_tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn the_lagrange_basis_read_back_equals_the_one_computed_by_the_fft() {
        for k in [4, 9] {
            let params =
                ParamsKZG::<Bn256>::setup(k, rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(k)));
            let read = lagrange_basis(&params);
            assert_eq!(read.len(), 1 << k);
            assert_eq!(read, lagrange_by_fft(&params), "k = {k}");
        }
    }
}
