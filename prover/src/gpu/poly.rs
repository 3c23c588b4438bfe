//! Polynomials in coefficient form on a wgpu device (`shaders/poly/horner.wgsl`): what the
//! evaluations at `x` and the SHPLONK multi-opening do to the proof's polynomials, so those
//! stay where the quotient left them and only scalars and commitments come back.
//!
//! ```text
//!  combine   Σ c_j · p_j − head            one axpy dispatch per term
//!  evaluate  p(b)                          runs' Horner sums ─▶ one carry scan ─▶ the value
//!  divide    (p − p(b)) / (X − b)          runs' sums ─▶ carries ─▶ each run's quotient
//!  scalars   canonical words of p          what the MSM reads (Msm::msm_on_device)
//! ```
//!
//! Each is exact field arithmetic, so the results equal halo2's `eval_polynomial` and
//! `kate_division` on the host, element for element.

use std::sync::Arc;

use halo2_proofs::halo2curves::{bn256::Fr, ff::Field};
use keel_shaders::{Kernel, Limbs};

use super::{
    convert::Montgomery,
    device::GpuContext,
    dispatch::{encoder, read_range, read_words, storage, storage_init, uniform, Pipelines},
    error::GpuError,
    ntt::GpuNtt,
};

/// Bytes of one field element on the device.
const ELEMENT_BYTES: u64 = 32;
/// Runs of the Horner scan at most: the carry pass walks them one after another.
const MAX_RUNS: usize = 1 << 11;

/// A polynomial's `n` coefficients on the device: a column of a buffer that may hold several.
#[derive(Clone)]
pub struct DevicePoly {
    buffer: Arc<wgpu::Buffer>,
    /// The first coefficient's index in the buffer, in elements.
    at: usize,
    n: usize,
}

impl std::fmt::Debug for DevicePoly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePoly")
            .field("at", &self.at)
            .field("n", &self.n)
            .finish()
    }
}

impl DevicePoly {
    /// Column `index` of a buffer of columns of `n` elements each.
    pub(crate) fn column(buffer: Arc<wgpu::Buffer>, index: usize, n: usize) -> Self {
        Self {
            buffer,
            at: index * n,
            n,
        }
    }

    /// Its number of coefficients.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it has none (never: a proof's polynomials have `2^k`).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The polynomial kernels on one device.
pub struct GpuPolys {
    ctx: Arc<GpuContext>,
    pipelines: Pipelines,
    m: Montgomery<Fr>,
    /// For the canonical words the MSM reads.
    ntt: Arc<GpuNtt>,
}

impl std::fmt::Debug for GpuPolys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPolys")
            .field("device", &self.ctx.describe())
            .finish()
    }
}

/// Runs of the Horner scan over `n` elements: `(chunk, chunks)` with `chunk · chunks = n`.
fn runs(n: usize) -> (usize, usize) {
    let chunks = n.min(MAX_RUNS);
    (n / chunks, chunks)
}

impl GpuPolys {
    /// The kernels on `ctx` with `limbs`, with `ntt` (on the same device) for the MSM's words.
    pub fn new(ctx: Arc<GpuContext>, limbs: Limbs, ntt: Arc<GpuNtt>) -> Result<Self, GpuError> {
        let pipelines = Pipelines::build(&ctx, &[Kernel::Poly], limbs)?;
        Ok(Self {
            ctx,
            pipelines,
            m: Montgomery::new(),
            ntt,
        })
    }

    /// The most device memory the evaluations and the opening of a proof of `n` rows whose
    /// quotient has `parts` parts allocate at once: the parts' results kept and the pieces made
    /// from them, then the opening's polynomials (a numerator and its quotient per CPU thread,
    /// the combinations, the commitment's canonical copy), and what wgpu frees only once the
    /// work that read it is done.
    pub fn working_bytes(&self, n: usize, parts: usize) -> u64 {
        let threads = rayon::current_num_threads() as u64;
        let column = super::dispatch::allocation(n as u64 * ELEMENT_BYTES);
        (2 * parts as u64 + 2 * threads + 4) * column
    }

    /// The device it runs on.
    pub fn device(&self) -> &GpuContext {
        &self.ctx
    }

    fn encode(&self, values: &[Fr]) -> Vec<u32> {
        values.iter().flat_map(|x| self.m.encode(x)).collect()
    }

    fn check(&self, n: usize) -> Result<(), GpuError> {
        assert!(n.is_power_of_two(), "a polynomial of 2^k coefficients");
        let bytes = n as u64 * ELEMENT_BYTES;
        if bytes > self.ctx.max_binding() {
            return Err(GpuError::TooLarge {
                what: "a polynomial",
                needed: bytes,
                allowed: self.ctx.max_binding(),
            });
        }
        Ok(())
    }

    /// `values` sent to the device as one polynomial.
    pub fn upload(&self, values: &[Fr]) -> Result<DevicePoly, GpuError> {
        self.check(values.len())?;
        let words = self.encode(values);
        let ctx = &self.ctx;
        let buffer = ctx.scoped("polynomial", || storage_init(ctx, "polynomial", &words))?;
        Ok(DevicePoly::column(Arc::new(buffer), 0, values.len()))
    }

    /// The coefficients of `p` back on the host.
    pub fn read(&self, p: &DevicePoly) -> Result<Vec<Fr>, GpuError> {
        let (at, bytes) = (p.at as u64 * ELEMENT_BYTES, p.n as u64 * ELEMENT_BYTES);
        let words = read_range(&self.ctx, &p.buffer, at, bytes, "polynomial readback")?;
        self.m.decode_all(&words, "polynomial coefficient")
    }

    /// `Σ c_j · p_j − head` over `n` coefficients (`head` subtracted from the lowest ones), as a
    /// new polynomial.
    pub fn combine(
        &self,
        terms: &[(&DevicePoly, Fr)],
        head: &[Fr],
        n: usize,
    ) -> Result<DevicePoly, GpuError> {
        self.check(n)?;
        assert!(head.len() <= n, "a head within the polynomial");
        let ctx = &self.ctx;
        let head_buffer = (!head.is_empty()).then(|| storage_init(ctx, "head", &self.encode(head)));
        let out = ctx.scoped("combination", || {
            let out = storage(ctx, "combination", n as u64 * ELEMENT_BYTES);
            let mut enc = encoder(ctx, "combination");
            let mut kept = Vec::new();
            let mut axpy = |src: &wgpu::Buffer, at: usize, len: usize, c: Fr| {
                let params = uniform(
                    ctx,
                    "poly params",
                    &[len as u32, at as u32, 0, 0, 0, 0, 0, 0],
                );
                let factor = storage_init(ctx, "poly factor", &self.m.encode(&c));
                let b = [(0, src), (1, &out), (2, &params), (3, &factor)];
                self.pipelines
                    .dispatch(ctx, &mut enc, "poly_axpy", &b, len as u64, 64);
                kept.push((params, factor));
            };
            for (p, c) in terms {
                assert_eq!(p.n, n, "terms of n coefficients");
                axpy(&p.buffer, p.at, n, *c);
            }
            if let Some(h) = &head_buffer {
                axpy(h, 0, head.len(), -Fr::ONE);
            }
            ctx.submit(enc.finish());
            drop(kept);
            out
        })?;
        Ok(DevicePoly::column(Arc::new(out), 0, n))
    }

    /// Records the runs' sums and the carry scan of `p` at `b` into `enc`, the value `p(b)` into
    /// element `slot` of `values`. Returns the buffers the work reads, to keep until it is
    /// submitted: the parameters, the factors and the runs' partials.
    fn record_scan(
        &self,
        enc: &mut wgpu::CommandEncoder,
        p: &DevicePoly,
        b: Fr,
        values: &wgpu::Buffer,
        slot: usize,
    ) -> Vec<wgpu::Buffer> {
        let ctx = &self.ctx;
        let (chunk, chunks) = runs(p.n);
        let params = [
            p.n as u32,
            p.at as u32,
            0,
            chunk as u32,
            chunks as u32,
            slot as u32,
            0,
            0,
        ];
        let uniforms = uniform(ctx, "poly params", &params);
        let mut words = self.m.encode(&b).to_vec();
        words.extend(self.m.encode(&b.pow_vartime([chunk as u64])));
        let factors = storage_init(ctx, "poly factors", &words);
        let partials = storage(ctx, "poly partials", 2 * chunks as u64 * ELEMENT_BYTES);
        let runs = [
            (0, p.buffer.as_ref()),
            (2, &uniforms),
            (3, &factors),
            (4, &partials),
        ];
        self.pipelines
            .dispatch(ctx, enc, "poly_horner_chunks", &runs, chunks as u64, 64);
        let carry = [(1, values), (2, &uniforms), (3, &factors), (4, &partials)];
        self.pipelines
            .dispatch(ctx, enc, "poly_horner_carry", &carry, 1, 64);
        vec![uniforms, factors, partials]
    }

    /// `p(b)` for every `(p, b)` of `at`, in one submission and one read-back.
    pub fn evaluate(&self, at: &[(&DevicePoly, Fr)]) -> Result<Vec<Fr>, GpuError> {
        if at.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = &self.ctx;
        let values = ctx.scoped("evaluations", || {
            let values = storage(ctx, "evaluations", at.len() as u64 * ELEMENT_BYTES);
            let mut enc = encoder(ctx, "evaluations");
            let mut kept = Vec::new();
            for (slot, (p, b)) in at.iter().enumerate() {
                kept.push(self.record_scan(&mut enc, p, *b, &values, slot));
            }
            ctx.submit(enc.finish());
            drop(kept);
            values
        })?;
        let words = read_words(ctx, &values, "evaluations readback")?;
        self.m.decode_all(&words, "evaluation")
    }

    /// The quotient of `p − p(b)` by `X − b`, `n` coefficients (the top one zero), as a new
    /// polynomial: halo2's `kate_division`, padded.
    pub fn divide(&self, p: &DevicePoly, b: Fr) -> Result<DevicePoly, GpuError> {
        self.check(p.n)?;
        let ctx = &self.ctx;
        let out = ctx.scoped("division", || {
            let out = storage(ctx, "quotient by X − b", p.n as u64 * ELEMENT_BYTES);
            let remainder = storage(ctx, "remainder", ELEMENT_BYTES);
            let mut enc = encoder(ctx, "division");
            let kept = self.record_scan(&mut enc, p, b, &remainder, 0);
            let [uniforms, factors, partials] = &kept[..] else {
                unreachable!("three buffers per scan")
            };
            let divide = [
                (0, p.buffer.as_ref()),
                (1, &out),
                (2, uniforms),
                (3, factors),
                (4, partials),
            ];
            let (_, chunks) = runs(p.n);
            self.pipelines.dispatch(
                ctx,
                &mut enc,
                "poly_horner_divide",
                &divide,
                chunks as u64,
                64,
            );
            ctx.submit(enc.finish());
            drop(kept);
            out
        })?;
        Ok(DevicePoly::column(Arc::new(out), 0, p.n))
    }

    /// `p`'s coefficients as the MSM reads them (canonical words), in a new device buffer.
    pub fn scalars(&self, p: &DevicePoly) -> Result<wgpu::Buffer, GpuError> {
        self.ntt.canonical_copy(&p.buffer, p.at, p.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_the_polynomial_and_are_bounded() {
        for log_n in 0..20 {
            let n = 1usize << log_n;
            let (chunk, chunks) = runs(n);
            assert_eq!(chunk * chunks, n);
            assert!(chunks <= MAX_RUNS);
        }
    }
}
