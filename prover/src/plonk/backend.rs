//! The seam between the prover's steps and what runs them.
//!
//! [`Backend`] is every operation [`super::create_proof`] does on polynomials and points: the
//! transforms (NTT, inverse NTT, coset NTT on one part of the extended domain), the MSMs against
//! the SRS's two resident bases, and the CPU-side arithmetic (element-wise products, batch
//! inversion, evaluation at a point, division by `X − a`). The transforms and MSMs are required;
//! the arithmetic has CPU defaults (rayon), which an implementation may replace.
//!
//! [`Engines`] implements it over an [`Ntt`] and two [`Msm`] engines: [`Engines::cpu`] is the
//! reference (halo2-axiom's `best_fft` and `best_multiexp`), [`Engines::gpu`] runs the
//! transforms and every MSM on a wgpu device. A GPU operation that fails is either an error
//! (`required`) or redone on the CPU and counted, so a proof is never made from a wrong result
//! silently: [`Engines::fallbacks`] says how many were redone.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use halo2_proofs::{
    arithmetic::{eval_polynomial, kate_division},
    halo2curves::{
        bn256::{Fr, G1Affine, G1},
        ff::BatchInvert,
    },
};
use rayon::prelude::*;

use super::Opcodes;
use crate::gpu::{
    CpuMsm, CpuNtt, DevicePoly, GpuError, GpuPolys, GpuQuotient, KeyColumns, Msm, MsmError, Ntt,
    ResidentColumns, Vanishing,
};

/// Columns a backend keeps where it evaluates (a key's, on a device), opaque to the prover.
#[derive(Clone)]
pub struct Resident(Arc<dyn std::any::Any + Send + Sync>);

impl fmt::Debug for Resident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resident")
    }
}

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// An NTT failed on the device and the backend is required not to fall back.
    #[error("{engine}: NTT of 2^{log_n} failed and the GPU is required: {source}")]
    Ntt {
        /// The engine's description.
        engine: String,
        /// The transform's size.
        log_n: u32,
        /// The device's reason.
        #[source]
        source: Box<GpuError>,
    },
    /// An MSM failed on the device and the backend is required not to fall back.
    #[error("{engine}: MSM of {len} scalars failed and the GPU is required: {source}")]
    Msm {
        /// The engine's description.
        engine: String,
        /// The MSM's size.
        len: usize,
        /// The device's reason.
        #[source]
        source: Box<MsmError>,
    },
    /// The gates' quotient values failed on the device and the backend is required not to
    /// fall back.
    #[error("{engine}: the gates' quotient values failed and the GPU is required: {source}")]
    Quotient {
        /// The engine's description.
        engine: String,
        /// The device's reason.
        #[source]
        source: Box<GpuError>,
    },
    /// Polynomial work for the evaluations or the opening failed on the device (where it was
    /// required, or where the CPU could not redo it: coefficients kept only there, lost).
    #[error("{engine}: {what} failed on the device: {source}")]
    Polys {
        /// The engine's description.
        engine: String,
        /// What it was doing.
        what: &'static str,
        /// The device's reason.
        #[source]
        source: Box<GpuError>,
    },
    /// More scalars than the SRS has bases.
    #[error("a polynomial of {len} coefficients against an SRS of {bases} points")]
    TooLong {
        /// The polynomial's length.
        len: usize,
        /// The basis's length.
        bases: usize,
    },
}

/// Where each kind of a backend's work runs ([`Backend::placement`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    /// NTT, inverse and coset NTT.
    pub ntt: String,
    /// Every MSM (commitments and the opening's).
    pub msm: String,
    /// The quotient's numerator on each coset part.
    pub quotient: String,
    /// h's pieces, the evaluations at `x` and the multi-opening (combinations, divisions by
    /// `X − b`).
    pub opening: String,
    /// Batch inversion and the element-wise arithmetic of the products and lookups.
    pub arithmetic: String,
}

/// Which of the SRS's bases an MSM runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// `[τ^i]G`: commitments to coefficient vectors.
    Monomial,
    /// `[L_i(τ)]G`: commitments to evaluations on the domain.
    Lagrange,
}

/// Time spent in a backend's transforms and MSMs, and how many it redid on the CPU.
#[derive(Debug, Default)]
pub(super) struct BackendStats {
    ntt_ns: AtomicU64,
    ntts: AtomicU64,
    msm_ns: AtomicU64,
    msms: AtomicU64,
    quotient_ns: AtomicU64,
    quotients: AtomicU64,
    fallbacks: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
}

/// A snapshot of [`BackendStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendReport {
    /// Transforms run.
    pub ntts: u64,
    /// Their total time (summed over threads).
    pub ntt: Duration,
    /// MSMs run.
    pub msms: u64,
    /// Their total time (summed over threads).
    pub msm: Duration,
    /// Coset parts whose gates the device evaluated.
    pub quotients: u64,
    /// Their time.
    pub quotient: Duration,
    /// Operations the device failed and the CPU redid.
    pub fallbacks: u64,
    /// Bytes sent to the device: transforms' values, MSMs' scalars, the quotient's columns and
    /// program (resident tables and bases, sent once, not counted).
    pub bytes_up: u64,
    /// Bytes read back: transforms' values and the quotient's values (an MSM's few window sums
    /// not counted).
    pub bytes_down: u64,
    /// The time the device had work in flight (`None`: no device). Over a proof, its share of
    /// the proof's wall time is the GPU's utilisation.
    pub busy: Option<Duration>,
}

impl BackendReport {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &BackendReport) -> BackendReport {
        BackendReport {
            ntts: self.ntts - before.ntts,
            ntt: self.ntt.saturating_sub(before.ntt),
            msms: self.msms - before.msms,
            msm: self.msm.saturating_sub(before.msm),
            quotients: self.quotients - before.quotients,
            quotient: self.quotient.saturating_sub(before.quotient),
            bytes_up: self.bytes_up - before.bytes_up,
            bytes_down: self.bytes_down - before.bytes_down,
            fallbacks: self.fallbacks - before.fallbacks,
            busy: self
                .busy
                .map(|b| b.saturating_sub(before.busy.unwrap_or_default())),
        }
    }

    /// The device's busy time as a share of `wall` (`None`: no device).
    pub fn utilisation(&self, wall: Duration) -> Option<f64> {
        let busy = self.busy?;
        Some(if wall.is_zero() {
            0.0
        } else {
            (busy.as_secs_f64() / wall.as_secs_f64()).min(1.0)
        })
    }
}

impl BackendStats {
    /// The counters now.
    pub(super) fn report(&self) -> BackendReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BackendReport {
            ntts: g(&self.ntts),
            ntt: Duration::from_nanos(g(&self.ntt_ns)),
            msms: g(&self.msms),
            msm: Duration::from_nanos(g(&self.msm_ns)),
            quotients: g(&self.quotients),
            quotient: Duration::from_nanos(g(&self.quotient_ns)),
            fallbacks: g(&self.fallbacks),
            bytes_up: g(&self.up),
            bytes_down: g(&self.down),
            busy: None,
        }
    }
}

/// What a proof keeps and moves on a device, for sizing its memory
/// ([`Backend::device_memory`]).
#[derive(Clone, Copy, Debug)]
pub struct ProofShape<'a> {
    /// Rows.
    pub n: usize,
    /// Coset parts the quotient is evaluated on.
    pub parts: usize,
    /// The key's columns on each part (fixed, σ, the selectors and the points).
    pub key_columns: usize,
    /// The proof's own columns the quotient reads (advice, instance, products, lookups).
    pub proof_columns: usize,
    /// The key's polynomials the opening reads (fixed, σ), kept with the key's columns.
    pub key_polys: usize,
    /// The quotient's program.
    pub ops: &'a Opcodes,
    /// Whether the key's columns are kept on the device.
    pub keep_key: bool,
}

/// The device memory a proof needs, by what it is for: an upper bound (each buffer rounded up
/// to 256 bytes; one MSM, one quotient part and as many transforms as the CPU has threads at
/// once, where a proof runs them one after the other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceMemory {
    /// The SRS's bases, resident (both bases).
    pub bases: u64,
    /// The transforms' tables, resident.
    pub tables: u64,
    /// The key's columns on every coset part, resident (0 when each part sends them).
    pub key: u64,
    /// What a proof's operations allocate while they run.
    pub working: u64,
}

impl DeviceMemory {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.bases + self.tables + self.key + self.working
    }
}

/// Every operation the prover does on polynomials and points.
pub trait Backend: Send + Sync {
    /// What runs it, for reports.
    fn describe(&self) -> String;

    /// Forward transform in place: `a'_j = Σ a_i ω^(ij)`, `a.len() = 2^log_n`.
    fn ntt(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), BackendError>;

    /// Inverse transform in place, scaled by `n⁻¹`.
    fn intt(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), BackendError>;

    /// Evaluations on the coset `g·⟨ω⟩` of the coefficients `a`, in place.
    fn coset_ntt(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), BackendError>;

    /// `Σ scalars[i] · bases[i]` against the resident `basis`.
    fn msm(&self, basis: Basis, scalars: &[Fr]) -> Result<G1, BackendError>;

    /// Counters of the transforms and MSMs so far.
    fn stats(&self) -> BackendReport;

    /// Points in the resident `basis`.
    fn bases(&self, basis: Basis) -> usize;

    /// What runs each kind of work: the transforms, the MSMs, the quotient's numerator and the
    /// rest of the arithmetic (for reports).
    fn placement(&self) -> Placement {
        let me = self.describe();
        Placement {
            ntt: me.clone(),
            msm: me.clone(),
            quotient: me.clone(),
            opening: me.clone(),
            arithmetic: me,
        }
    }

    /// The device memory a proof of `shape` needs (`None`: no device).
    fn device_memory(&self, shape: &ProofShape<'_>) -> Option<DeviceMemory> {
        let _ = shape;
        None
    }

    /// Keeps `columns` (each `n` values: a key's, for one coset part) where the backend
    /// evaluates the quotient, for [`Backend::numerator`] to read in every later proof; `None`
    /// where it keeps nothing (the CPU reads the host's copy).
    fn keep(&self, columns: &[&[Fr]], n: usize) -> Option<Resident> {
        let _ = (columns, n);
        None
    }

    /// Commits `values` (a proof column, `2^log_n` of them) over the Lagrange basis and brings
    /// them to coefficients, as [`Backend::msm`] then [`Backend::to_coeff_keep`]; a device
    /// backend sends them once for both (the MSM reads the values where the transform runs).
    fn commit_to_coeff(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<Committed, BackendError> {
        commit_then_transform(self, values, omega_inv, log_n)
    }

    /// Where the backend keeps polynomials for the evaluations and the opening; `None`: the
    /// host (the prover's own vectors and this backend's arithmetic).
    fn device_polys(&self) -> Option<&dyn DevicePolys> {
        None
    }

    /// The coefficients of `values` (`2^log_n` of them, by [`Backend::intt`]) and where the
    /// backend keeps them for the quotient ([`Backend::keep_coefficients`]: they need not go
    /// up again); the host's copy is `None` where the backend left them only where it keeps
    /// them, as [`Backend::commit_to_coeff`] may.
    fn to_coeff_keep(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<(Option<Vec<Fr>>, Option<Resident>), BackendError> {
        let mut coefficients = values.to_vec();
        self.intt(&mut coefficients, omega_inv, log_n)?;
        Ok((Some(coefficients), None))
    }

    /// Column `index` of coefficients the backend keeps ([`Backend::keep_coefficients`],
    /// [`Backend::to_coeff_keep`]) back on the host; `None` where it keeps none.
    fn read_kept(&self, kept: &Resident, index: usize) -> Option<Result<Vec<Fr>, BackendError>> {
        let _ = (kept, index);
        None
    }

    /// Keeps the proof's coefficient columns (`polys`, each `n` coefficients) where the backend
    /// evaluates the quotient, for [`Backend::numerator_on_coset`] to put on every coset part
    /// without their values crossing again; a column `kept` there already
    /// ([`Backend::to_coeff_keep`]) is not sent again. `None` where it keeps nothing.
    fn keep_coefficients(
        &self,
        polys: &[&[Fr]],
        kept: &[Option<&Resident>],
        n: usize,
    ) -> Option<Resident> {
        let _ = (polys, kept, n);
        None
    }

    /// The quotient's numerator on the coset `g·⟨ω⟩` of `2^log_n` rows, its proof columns the
    /// coset values of the coefficients `kept` ([`Backend::keep_coefficients`]) and its key
    /// columns `key` (kept as `resident` if the backend kept them); with `vanishing`, what the
    /// division and the way back to coefficients make of it ([`Vanishing`]). `None` leaves it
    /// to the transforms and [`Backend::numerator`].
    #[allow(clippy::too_many_arguments)]
    fn numerator_on_coset(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        kept: &Resident,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Option<Vanishing>,
    ) -> Option<Result<Vec<Fr>, BackendError>> {
        let _ = (ops, key, resident, kept, omega, g, log_n, vanishing);
        None
    }

    /// [`Backend::numerator_on_coset`] with the vanishing step, the part's result kept where
    /// [`Backend::device_polys`] reads it instead of brought back; `None` leaves it to that
    /// method.
    #[allow(clippy::too_many_arguments)]
    fn part_on_device(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        kept: &Resident,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Vanishing,
    ) -> Option<Result<Resident, BackendError>> {
        let _ = (ops, key, resident, kept, omega, g, log_n, vanishing);
        None
    }

    /// The quotient's numerator (`ops` at every row of `n`: the interpreter's columns are
    /// `key`'s, kept as `resident` if the backend kept them, then `columns`) where the backend
    /// evaluates it; `None` leaves it to the CPU's evaluation of the same graph.
    fn numerator(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        columns: &[&[Fr]],
        n: usize,
    ) -> Option<Result<Vec<Fr>, BackendError>> {
        let _ = (ops, key, resident, columns, n);
        None
    }

    /// `a_i ← a_i⁻¹` for every non-zero `a_i` (zeros stay zero).
    fn batch_invert(&self, a: &mut [Fr]) {
        a.par_chunks_mut(1 << 12).for_each(|c| {
            c.iter_mut().batch_invert();
        });
    }

    /// `p(point)` for coefficients `p`.
    fn evaluate(&self, p: &[Fr], point: Fr) -> Fr {
        eval_polynomial(p, point)
    }

    /// The quotient of `p(X) − p(b)` by `X − b`.
    fn kate_division(&self, p: &[Fr], b: Fr) -> Vec<Fr> {
        kate_division(p, b)
    }

    /// `acc_i ← acc_i · s + b_i` (Horner steps of a random linear combination).
    fn scale_add(&self, acc: &mut [Fr], s: Fr, b: &[Fr]) {
        assert_eq!(acc.len(), b.len(), "scale_add over vectors of one length");
        acc.par_chunks_mut(1 << 12)
            .zip(b.par_chunks(1 << 12))
            .for_each(|(acc, b)| {
                for (a, b) in acc.iter_mut().zip(b) {
                    *a = *a * s + b;
                }
            });
    }

    /// `a_i ← a_i · s`.
    fn scale(&self, a: &mut [Fr], s: Fr) {
        a.par_chunks_mut(1 << 12).for_each(|c| {
            for x in c {
                *x *= s;
            }
        });
    }
}

/// Polynomials in coefficient form where a backend keeps them (a device), for the evaluations
/// at `x` and the multi-opening ([`Backend::device_polys`]): each handle is opaque to the
/// prover, and only scalars and commitments come back.
pub trait DevicePolys: Send + Sync {
    /// `p` sent to the device.
    fn upload(&self, p: &[Fr]) -> Result<Resident, BackendError>;
    /// Column `index` of coefficients kept there ([`Backend::keep_coefficients`],
    /// [`Backend::keep`]; a polynomial this device made is its own column 0), read in place;
    /// `None` if `kept` is not this device's or has no such column.
    fn column(&self, kept: &Resident, index: usize) -> Option<Resident>;
    /// `Σ c_j · p_j − head` over `n` coefficients.
    fn combine(
        &self,
        terms: &[(&Resident, Fr)],
        head: &[Fr],
        n: usize,
    ) -> Result<Resident, BackendError>;
    /// The quotient of `p − p(b)` by `X − b`, as many coefficients as `p` (the top one zero).
    fn divide(&self, p: &Resident, b: Fr) -> Result<Resident, BackendError>;
    /// `p(b)` for every `(p, b)`.
    fn evaluate(&self, at: &[(&Resident, Fr)]) -> Result<Vec<Fr>, BackendError>;
    /// The commitment to `p` over the monomial basis.
    fn commit(&self, p: &Resident) -> Result<G1, BackendError>;
    /// `p`'s coefficients back on the host (what a fallback to the CPU needs).
    fn read(&self, p: &Resident) -> Result<Vec<Fr>, BackendError>;
    /// Whether a failure must stop the proof (otherwise the CPU redoes the work).
    fn required(&self) -> bool;
    /// Counts one piece of work the CPU redid after a failure here.
    fn fell_back(&self);
}

/// A proof column committed over the Lagrange basis and brought to coefficients
/// ([`Backend::commit_to_coeff`]).
#[derive(Debug)]
pub struct Committed {
    /// The commitment.
    pub point: G1,
    /// The column's coefficients on the host; `None` where the backend left them only where
    /// it keeps them (a device that also evaluates and opens: [`Backend::read_kept`] brings
    /// them back if the host needs them after all).
    pub coefficients: Option<Vec<Fr>>,
    /// Where the backend keeps them for the quotient ([`Backend::to_coeff_keep`]).
    pub kept: Option<Resident>,
}

/// [`Backend::commit_to_coeff`] as two operations: the MSM over the values, then their kept
/// inverse transform.
fn commit_then_transform<B: Backend + ?Sized>(
    backend: &B,
    values: &[Fr],
    omega_inv: Fr,
    log_n: u32,
) -> Result<Committed, BackendError> {
    let point = backend.msm(Basis::Lagrange, values)?;
    let (coefficients, kept) = backend.to_coeff_keep(values, omega_inv, log_n)?;
    Ok(Committed {
        point,
        coefficients,
        kept,
    })
}

/// An MSM of `len` scalars refused before any work where `engine` holds fewer bases.
fn fits(engine: &dyn Msm, len: usize) -> Result<(), BackendError> {
    if len > engine.bases_len() {
        return Err(BackendError::TooLong {
            len,
            bases: engine.bases_len(),
        });
    }
    Ok(())
}

/// The CPU engines a device backend redoes a failed operation on: the transform, the MSMs over
/// the monomial and the Lagrange bases.
type Fallback = (CpuNtt, Arc<dyn Msm>, Arc<dyn Msm>);

/// A [`Backend`] over one NTT engine and one MSM engine per basis.
pub struct Engines {
    ntt: Arc<dyn Ntt>,
    g: Arc<dyn Msm>,
    g_lagrange: Arc<dyn Msm>,
    /// The CPU engines a failed device operation is redone on (`None`: a CPU backend).
    fallback: Option<Fallback>,
    /// The quotient's gates on the device, when it has the interpreter.
    quotient: Option<Arc<GpuQuotient>>,
    /// The evaluations' and the opening's polynomials on the device, when it has the kernels.
    polys: Option<Arc<GpuPolys>>,
    required: bool,
    stats: BackendStats,
}

impl fmt::Debug for Engines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Engines {
    /// The CPU reference: halo2-axiom's `best_fft` and `best_multiexp` over `g` and
    /// `g_lagrange`.
    pub fn cpu(g: &[G1Affine], g_lagrange: &[G1Affine]) -> Self {
        Self::cpu_with(Arc::new(CpuMsm::new(g)), Arc::new(CpuMsm::new(g_lagrange)))
    }

    /// The CPU transforms with MSM engines already built.
    pub fn cpu_with(g: Arc<dyn Msm>, g_lagrange: Arc<dyn Msm>) -> Self {
        Self {
            ntt: Arc::new(CpuNtt::new()),
            g,
            g_lagrange,
            fallback: None,
            quotient: None,
            polys: None,
            required: false,
            stats: BackendStats::default(),
        }
    }

    /// Device engines: `ntt`, and MSM engines over `g` and `g_lagrange` (whose points are the
    /// CPU's fallback bases, `cpu_g` and `cpu_g_lagrange`). With `required`, a device failure is
    /// an error; otherwise the CPU redoes the operation and [`Engines::fallbacks`] counts it.
    pub fn gpu(
        ntt: Arc<dyn Ntt>,
        g: Arc<dyn Msm>,
        g_lagrange: Arc<dyn Msm>,
        cpu_g: Arc<dyn Msm>,
        cpu_g_lagrange: Arc<dyn Msm>,
        required: bool,
    ) -> Self {
        Self {
            ntt,
            g,
            g_lagrange,
            fallback: Some((CpuNtt::new(), cpu_g, cpu_g_lagrange)),
            quotient: None,
            polys: None,
            required,
            stats: BackendStats::default(),
        }
    }

    /// The gates' quotient values on `quotient` (a device backend's).
    pub fn with_quotient(mut self, quotient: Arc<GpuQuotient>) -> Self {
        self.quotient = Some(quotient);
        self
    }

    /// The evaluations and the opening on `polys` (a device backend's): the proof's polynomials
    /// stay on the device from the quotient to the last commitment, where the monomial MSM runs
    /// on the same device.
    pub fn with_polys(mut self, polys: Arc<GpuPolys>) -> Self {
        self.polys = Some(polys);
        self
    }

    /// The polynomial kernels, where they and the monomial MSM share a device.
    fn polys(&self) -> Option<&GpuPolys> {
        let p = self.polys.as_deref()?;
        let same = self.g.device().is_some_and(|d| std::ptr::eq(d, p.device()));
        same.then_some(p)
    }

    /// The device its engines run on, if any (they share one in practice).
    pub fn device(&self) -> Option<&crate::gpu::GpuContext> {
        self.ntt
            .device()
            .or_else(|| self.g.device())
            .or_else(|| self.g_lagrange.device())
            .or_else(|| self.quotient.as_deref().map(|q| q.device()))
    }

    /// Runs `evaluate`, the device's numerator, with `key`'s columns kept as `resident` where
    /// they were (sent otherwise), counting what crosses: `sent` bytes of the proof's columns,
    /// the key's if sent, the program, and `back` values back. A device
    /// failure is an error where the device is required; otherwise `None` (the CPU evaluates
    /// the part) and counted.
    #[allow(clippy::too_many_arguments)]
    fn device_numerator<T>(
        &self,
        q: &GpuQuotient,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        sent: u64,
        back: usize,
        evaluate: impl FnOnce(KeyColumns<'_>) -> Result<T, GpuError>,
    ) -> Option<Result<T, BackendError>> {
        let key = match resident.and_then(|r| r.0.downcast_ref::<ResidentColumns>()) {
            Some(r) => KeyColumns::Resident(r),
            None => KeyColumns::Host(key),
        };
        let key_bytes = match key {
            KeyColumns::Host(k) => k.iter().map(|c| 32 * c.len() as u64).sum::<u64>(),
            KeyColumns::Resident(_) => 0,
        };
        let program_bytes = 4 * ops.words.len() as u64 + 32 * ops.constants.len() as u64;
        self.stats
            .up
            .fetch_add(sent + key_bytes + program_bytes, Ordering::Relaxed);
        self.stats
            .down
            .fetch_add(32 * back as u64, Ordering::Relaxed);
        let result = self.time(&self.stats.quotient_ns, &self.stats.quotients, || {
            evaluate(key)
        });
        match result {
            Ok(values) => Some(Ok(values)),
            Err(source) if self.required => Some(Err(BackendError::Quotient {
                engine: format!("{q:?}"),
                source: Box::new(source),
            })),
            Err(source) => {
                tracing::warn!(target: "keel::prover", error = %source, "GPU quotient failed; evaluated on the CPU");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// [`Backend::commit_to_coeff`] from one upload: the column staged on the quotient's
    /// device, the Lagrange MSM reading it there, then its inverse transform kept there. Each
    /// failure is typed by the operation that failed.
    fn commit_staged(
        &self,
        q: &GpuQuotient,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<Committed, BackendError> {
        let n = values.len();
        let bytes = 32 * n as u64;
        let ntt_error = |source: GpuError| BackendError::Ntt {
            engine: format!("{q:?}"),
            log_n,
            source: Box::new(source),
        };
        self.stats.up.fetch_add(bytes, Ordering::Relaxed);
        let staged = q.stage(values).map_err(ntt_error)?;
        let point = self.msm_from_device(&self.g_lagrange, staged.scalars(), n, || {
            Ok(std::borrow::Cow::Borrowed(values))
        })?;
        let back = self.brings_coefficients_back();
        if back {
            self.stats.down.fetch_add(bytes, Ordering::Relaxed);
        }
        let (coefficients, kept) = self
            .time(&self.stats.ntt_ns, &self.stats.ntts, || {
                q.inverse_staged(staged, back, omega_inv, log_n)
            })
            .map_err(ntt_error)?;
        Ok(Committed {
            point,
            coefficients,
            kept: Some(Resident(Arc::new(kept))),
        })
    }

    /// `engine`'s MSM over `n` canonical scalars in `scalars` on its device; an engine that
    /// reads only host memory gets `host`'s values sent up instead. Counts what crosses.
    fn msm_from_device<'v>(
        &self,
        engine: &Arc<dyn Msm>,
        scalars: &wgpu::Buffer,
        n: usize,
        host: impl FnOnce() -> Result<std::borrow::Cow<'v, [Fr]>, BackendError>,
    ) -> Result<G1, BackendError> {
        let msm_error = |source: MsmError| BackendError::Msm {
            engine: engine.describe(),
            len: n,
            source: Box::new(source),
        };
        self.stats
            .down
            .fetch_add(engine.readback_bytes(n), Ordering::Relaxed);
        self.time(&self.stats.msm_ns, &self.stats.msms, || {
            match engine.msm_on_device(scalars, n) {
                Some(point) => point.map_err(msm_error),
                None => {
                    let values = host()?;
                    self.stats.up.fetch_add(32 * n as u64, Ordering::Relaxed);
                    engine.msm(&values).map_err(msm_error)
                }
            }
        })
    }

    /// Whether proof columns' coefficients come back to the host: not where the evaluations
    /// and the opening run on the device too ([`Backend::device_polys`]).
    fn brings_coefficients_back(&self) -> bool {
        self.polys().is_none()
    }

    /// The quotient's interpreter, when it transforms on the device the Lagrange MSM engine
    /// runs on: a column then goes up once for its commitment and its coefficients.
    fn staging(&self) -> Option<&GpuQuotient> {
        let q = self.quotient.as_deref().filter(|q| q.transforms())?;
        let same = self
            .g_lagrange
            .device()
            .is_some_and(|d| std::ptr::eq(d, q.device()));
        same.then_some(q)
    }

    /// Device operations redone on the CPU so far.
    pub fn fallbacks(&self) -> u64 {
        self.stats.fallbacks.load(Ordering::Relaxed)
    }

    fn time<T>(&self, ns: &AtomicU64, count: &AtomicU64, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let r = f();
        ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// Runs `op` on the NTT engine; on a device failure, the CPU redoes it from `before`.
    fn transform(
        &self,
        a: &mut [Fr],
        log_n: u32,
        op: impl Fn(&dyn Ntt, &mut [Fr]) -> Result<(), GpuError>,
    ) -> Result<(), BackendError> {
        let keep = self.fallback.as_ref().map(|_| a.to_vec());
        if self.ntt.on_device() {
            let bytes = 32 * a.len() as u64;
            self.stats.up.fetch_add(bytes, Ordering::Relaxed);
            self.stats.down.fetch_add(bytes, Ordering::Relaxed);
        }
        let result = self.time(&self.stats.ntt_ns, &self.stats.ntts, || op(&*self.ntt, a));
        let Err(source) = result else { return Ok(()) };
        let (Some((cpu, _, _)), Some(before)) = (&self.fallback, keep) else {
            unreachable!("the CPU transforms do not fail: {source}")
        };
        if self.required {
            return Err(BackendError::Ntt {
                engine: self.ntt.describe(),
                log_n,
                source: Box::new(source),
            });
        }
        tracing::warn!(target: "keel::prover", error = %source, log_n, "GPU NTT failed; redone on the CPU");
        self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
        a.copy_from_slice(&before);
        op(cpu, a).map_err(|source| BackendError::Ntt {
            engine: cpu.describe(),
            log_n,
            source: Box::new(source),
        })
    }
}

impl Backend for Engines {
    fn describe(&self) -> String {
        if self.fallback.is_none() {
            return format!(
                "CPU (best_fft and best_multiexp, {} threads)",
                rayon::current_num_threads()
            );
        }
        format!("{}; NTT: {}", self.g.describe(), self.ntt.describe())
    }

    fn ntt(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), BackendError> {
        self.transform(a, log_n, |e, a| e.forward(a, omega, log_n))
    }

    fn intt(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), BackendError> {
        self.transform(a, log_n, |e, a| e.inverse(a, omega_inv, log_n))
    }

    fn coset_ntt(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), BackendError> {
        self.transform(a, log_n, |e, a| e.coset_forward(a, omega, g, log_n))
    }

    fn msm(&self, basis: Basis, scalars: &[Fr]) -> Result<G1, BackendError> {
        let engine = match basis {
            Basis::Monomial => &self.g,
            Basis::Lagrange => &self.g_lagrange,
        };
        fits(engine.as_ref(), scalars.len())?;
        if engine.on_device() {
            self.stats
                .up
                .fetch_add(32 * scalars.len() as u64, Ordering::Relaxed);
            self.stats
                .down
                .fetch_add(engine.readback_bytes(scalars.len()), Ordering::Relaxed);
        }
        let result = self.time(&self.stats.msm_ns, &self.stats.msms, || engine.msm(scalars));
        let source = match result {
            Ok(point) => return Ok(point),
            Err(e) => e,
        };
        let msm_error = |engine: &Arc<dyn Msm>, source| BackendError::Msm {
            engine: engine.describe(),
            len: scalars.len(),
            source: Box::new(source),
        };
        match &self.fallback {
            Some((_, cpu_g, cpu_l)) if !self.required => {
                tracing::warn!(target: "keel::prover", error = %source, "GPU MSM failed; redone on the CPU");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                let cpu = if basis == Basis::Monomial {
                    cpu_g
                } else {
                    cpu_l
                };
                cpu.msm(scalars).map_err(|e| msm_error(cpu, e))
            }
            _ => Err(msm_error(engine, source)),
        }
    }

    fn stats(&self) -> BackendReport {
        let mut report = self.stats.report();
        report.busy = self.device().map(|d| d.busy());
        report
    }

    fn bases(&self, basis: Basis) -> usize {
        match basis {
            Basis::Monomial => self.g.bases_len(),
            Basis::Lagrange => self.g_lagrange.bases_len(),
        }
    }

    fn placement(&self) -> Placement {
        let cpu = format!("CPU ({} threads)", rayon::current_num_threads());
        Placement {
            ntt: if self.ntt.on_device() {
                self.ntt.describe()
            } else {
                cpu.clone()
            },
            msm: if self.g.on_device() {
                self.g.describe()
            } else {
                cpu.clone()
            },
            quotient: match &self.quotient {
                Some(q) if q.transforms() => {
                    format!(
                        "{} (opcode interpreter, coset transforms)",
                        q.device().describe()
                    )
                }
                Some(q) => format!("{} (opcode interpreter)", q.device().describe()),
                None => cpu.clone(),
            },
            opening: match self.polys() {
                Some(p) => format!("{} (polynomial kernels)", p.device().describe()),
                None => cpu.clone(),
            },
            arithmetic: cpu,
        }
    }

    fn device_memory(&self, shape: &ProofShape<'_>) -> Option<DeviceMemory> {
        self.device()?;
        let n = shape.n;
        let keep = shape.keep_key && self.quotient.is_some();
        let threads = rayon::current_num_threads() as u64;
        let quotient = self.quotient.as_ref().map_or(0, |q| {
            let sent = if keep { 0 } else { shape.key_columns };
            q.working_bytes(shape.ops, n, shape.proof_columns, sent)
        });
        Some(DeviceMemory {
            bases: self.g.resident_bytes() + self.g_lagrange.resident_bytes(),
            // each part's generator's powers, and where the quotient transforms on the device,
            // its inverse's too (the coset shift undone there)
            tables: self.ntt.table_bytes(
                n,
                shape.parts
                    * if self.quotient.as_ref().is_some_and(|q| q.transforms()) {
                        2
                    } else {
                        1
                    },
            ),
            key: if keep {
                shape.parts as u64 * GpuQuotient::resident_bytes(shape.key_columns, n)
                    + if self.polys().is_some() {
                        GpuQuotient::resident_bytes(shape.key_polys, n)
                    } else {
                        0
                    }
            } else {
                0
            },
            working: self
                .g
                .working_bytes(n)
                .max(self.g_lagrange.working_bytes(n))
                + threads * self.ntt.working_bytes(n)
                + quotient
                + self.polys().map_or(0, |p| {
                    // the key's polynomials sent for the opening where they are not kept
                    let sent = if keep { 0 } else { shape.key_polys };
                    p.working_bytes(n, shape.parts) + GpuQuotient::resident_bytes(sent, n)
                }),
        })
    }

    fn keep(&self, columns: &[&[Fr]], n: usize) -> Option<Resident> {
        let q = self.quotient.as_ref()?;
        match q.upload(columns, n) {
            Ok(r) => {
                self.stats.up.fetch_add(r.bytes(), Ordering::Relaxed);
                Some(Resident(Arc::new(r)))
            }
            Err(e) => {
                tracing::warn!(target: "keel::prover", error = %e, "the key's columns stay on the host; sent with every proof");
                None
            }
        }
    }

    fn commit_to_coeff(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<Committed, BackendError> {
        let Some(q) = self.staging() else {
            return commit_then_transform(self, values, omega_inv, log_n);
        };
        fits(self.g_lagrange.as_ref(), values.len())?;
        match self.commit_staged(q, values, omega_inv, log_n) {
            Ok(c) => Ok(c),
            Err(e) if self.required => Err(e),
            Err(e) => {
                // the two operations apart, each with its own fallback to the CPU
                tracing::warn!(target: "keel::prover", error = %e, "a staged commitment failed; committed and transformed apart");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                commit_then_transform(self, values, omega_inv, log_n)
            }
        }
    }

    fn device_polys(&self) -> Option<&dyn DevicePolys> {
        self.polys().map(|_| self as &dyn DevicePolys)
    }

    fn to_coeff_keep(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<(Option<Vec<Fr>>, Option<Resident>), BackendError> {
        let host = |backend: &Self| {
            let mut coefficients = values.to_vec();
            backend.intt(&mut coefficients, omega_inv, log_n)?;
            Ok((Some(coefficients), None))
        };
        let Some(q) = self.quotient.as_ref().filter(|q| q.transforms()) else {
            return host(self);
        };
        let back = self.brings_coefficients_back();
        let bytes = 32 * values.len() as u64;
        self.stats.up.fetch_add(bytes, Ordering::Relaxed);
        if back {
            self.stats.down.fetch_add(bytes, Ordering::Relaxed);
        }
        let result = self.time(&self.stats.ntt_ns, &self.stats.ntts, || {
            q.inverse_kept(values, omega_inv, log_n, back)
        });
        match result {
            Ok((coefficients, kept)) => Ok((coefficients, Some(Resident(Arc::new(kept))))),
            Err(source) if self.required => Err(BackendError::Ntt {
                engine: format!("{q:?}"),
                log_n,
                source: Box::new(source),
            }),
            Err(source) => {
                // the transform as any other (its own fallback to the CPU), the column sent later
                tracing::warn!(target: "keel::prover", error = %source, "a kept inverse transform failed; transformed again without keeping it");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                host(self)
            }
        }
    }

    fn read_kept(&self, kept: &Resident, index: usize) -> Option<Result<Vec<Fr>, BackendError>> {
        let q = self.quotient.as_ref()?;
        let columns = kept.0.downcast_ref::<ResidentColumns>()?;
        self.stats.down.fetch_add(
            columns.bytes() / columns.count().max(1) as u64,
            Ordering::Relaxed,
        );
        Some(
            q.read_column(columns, index)
                .map_err(|source| BackendError::Polys {
                    engine: format!("{q:?}"),
                    what: "reading kept coefficients back",
                    source: Box::new(source),
                }),
        )
    }

    fn keep_coefficients(
        &self,
        polys: &[&[Fr]],
        kept: &[Option<&Resident>],
        n: usize,
    ) -> Option<Resident> {
        let q = self.quotient.as_ref().filter(|q| q.transforms())?;
        let kept: Vec<Option<&ResidentColumns>> = (0..polys.len())
            .map(|c| {
                kept.get(c)
                    .copied()
                    .flatten()
                    .and_then(|r| r.0.downcast_ref::<ResidentColumns>())
            })
            .collect();
        let sent: u64 = polys
            .iter()
            .zip(&kept)
            .filter(|(_, k)| k.is_none())
            .map(|(p, _)| 32 * p.len() as u64)
            .sum();
        match q.gather(polys, &kept, n) {
            Ok(r) => {
                self.stats.up.fetch_add(sent, Ordering::Relaxed);
                Some(Resident(Arc::new(r)))
            }
            Err(e) => {
                // each part's values are then made and sent as without a device path (where a
                // required device's failure is an error)
                tracing::warn!(target: "keel::prover", error = %e, "the proof's coefficients stay on the host; each part's values are sent");
                None
            }
        }
    }

    fn numerator_on_coset(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        kept: &Resident,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Option<Vanishing>,
    ) -> Option<Result<Vec<Fr>, BackendError>> {
        let q = self.quotient.as_ref()?;
        let coefficients = kept.0.downcast_ref::<ResidentColumns>()?;
        // the proof's columns are on the device already
        self.device_numerator(q, ops, key, resident, 0, 1 << log_n, |key| {
            q.evaluate_on_coset(ops, key, coefficients, omega, g, log_n, vanishing)
        })
    }

    fn part_on_device(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        kept: &Resident,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Vanishing,
    ) -> Option<Result<Resident, BackendError>> {
        self.polys()?;
        let q = self.quotient.as_ref()?;
        let coefficients = kept.0.downcast_ref::<ResidentColumns>()?;
        let part = self.device_numerator(q, ops, key, resident, 0, 0, |key| {
            q.evaluate_on_coset_kept(ops, key, coefficients, omega, g, log_n, Some(vanishing))
        })?;
        Some(part.map(|p| Resident(Arc::new(p))))
    }

    fn numerator(
        &self,
        ops: &Opcodes,
        key: &[&[Fr]],
        resident: Option<&Resident>,
        columns: &[&[Fr]],
        n: usize,
    ) -> Option<Result<Vec<Fr>, BackendError>> {
        let q = self.quotient.as_ref()?;
        let sent = columns.iter().map(|c| 32 * c.len() as u64).sum();
        self.device_numerator(q, ops, key, resident, sent, n, |key| {
            q.evaluate(ops, key, columns, n)
        })
    }
}

/// A device polynomial behind a [`Resident`] handle.
fn device_poly(r: &Resident) -> Option<&DevicePoly> {
    r.0.downcast_ref::<DevicePoly>()
}

impl Engines {
    fn poly_error(&self, what: &'static str) -> impl Fn(GpuError) -> BackendError + '_ {
        move |source| BackendError::Polys {
            engine: self
                .polys
                .as_deref()
                .map_or_else(String::new, |p| format!("{p:?}")),
            what,
            source: Box::new(source),
        }
    }

    /// The kernels and the handles as device polynomials, or why not.
    fn poly_args<'r>(
        &self,
        what: &'static str,
        handles: impl IntoIterator<Item = &'r Resident>,
    ) -> Result<(&GpuPolys, Vec<&'r DevicePoly>), BackendError> {
        let foreign = || {
            (self.poly_error(what))(GpuError::Device {
                stage: "polynomials",
                message: "a handle that is not this device's polynomial".into(),
            })
        };
        let polys = self.polys().ok_or_else(foreign)?;
        let handles = handles
            .into_iter()
            .map(|r| device_poly(r).ok_or_else(foreign))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((polys, handles))
    }
}

impl DevicePolys for Engines {
    fn upload(&self, p: &[Fr]) -> Result<Resident, BackendError> {
        let (polys, _) = self.poly_args("an upload", [])?;
        self.stats
            .up
            .fetch_add(32 * p.len() as u64, Ordering::Relaxed);
        let poly = polys.upload(p).map_err(self.poly_error("an upload"))?;
        Ok(Resident(Arc::new(poly)))
    }

    fn column(&self, kept: &Resident, index: usize) -> Option<Resident> {
        self.polys()?;
        if let Some(p) = device_poly(kept) {
            return (index == 0).then(|| Resident(Arc::new(p.clone())));
        }
        let columns = kept.0.downcast_ref::<ResidentColumns>()?;
        Some(Resident(Arc::new(columns.column(index)?)))
    }

    fn combine(
        &self,
        terms: &[(&Resident, Fr)],
        head: &[Fr],
        n: usize,
    ) -> Result<Resident, BackendError> {
        let (polys, handles) = self.poly_args("a combination", terms.iter().map(|(r, _)| *r))?;
        self.stats
            .up
            .fetch_add(32 * head.len() as u64, Ordering::Relaxed);
        let terms: Vec<(&DevicePoly, Fr)> = handles
            .into_iter()
            .zip(terms.iter().map(|(_, c)| *c))
            .collect();
        let poly = polys
            .combine(&terms, head, n)
            .map_err(self.poly_error("a combination"))?;
        Ok(Resident(Arc::new(poly)))
    }

    fn divide(&self, p: &Resident, b: Fr) -> Result<Resident, BackendError> {
        let (polys, handles) = self.poly_args("a division", [p])?;
        let poly = polys
            .divide(handles[0], b)
            .map_err(self.poly_error("a division"))?;
        Ok(Resident(Arc::new(poly)))
    }

    fn evaluate(&self, at: &[(&Resident, Fr)]) -> Result<Vec<Fr>, BackendError> {
        let (polys, handles) = self.poly_args("the evaluations", at.iter().map(|(r, _)| *r))?;
        self.stats
            .down
            .fetch_add(32 * at.len() as u64, Ordering::Relaxed);
        let at: Vec<(&DevicePoly, Fr)> = handles
            .into_iter()
            .zip(at.iter().map(|(_, x)| *x))
            .collect();
        polys
            .evaluate(&at)
            .map_err(self.poly_error("the evaluations"))
    }

    fn commit(&self, p: &Resident) -> Result<G1, BackendError> {
        let (polys, handles) = self.poly_args("a commitment", [p])?;
        let poly = handles[0];
        let n = poly.len();
        fits(self.g.as_ref(), n)?;
        let scalars = polys
            .scalars(poly)
            .map_err(self.poly_error("a commitment's scalars"))?;
        // an engine that reads only host memory: the coefficients come back for it
        self.msm_from_device(&self.g, &scalars, n, || {
            self.read(p).map(std::borrow::Cow::Owned)
        })
    }

    fn read(&self, p: &Resident) -> Result<Vec<Fr>, BackendError> {
        let (polys, handles) = self.poly_args("a read-back", [p])?;
        self.stats
            .down
            .fetch_add(32 * handles[0].len() as u64, Ordering::Relaxed);
        polys
            .read(handles[0])
            .map_err(self.poly_error("a read-back"))
    }

    fn required(&self) -> bool {
        self.required
    }

    fn fell_back(&self) {
        self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
    }
}
