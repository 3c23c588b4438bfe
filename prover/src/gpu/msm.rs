//! Multi-scalar multiplication over BN254 G1: the [`Msm`] seam, the CPU reference and the wgpu
//! engine.
//!
//! ## The GPU pipeline (Pippenger with signed digits)
//!
//! For an MSM of `n` scalars with `c`-bit windows (`W = ⌊254/c⌋ + 1` windows, `2^(c-1)` buckets
//! each), per chunk of at most `chunk_len` scalars:
//!
//! 1. `decompose` — one invocation per scalar writes its `W` signed digits as bucket keys and
//!    counts each bucket's members with atomics;
//! 2. `scan_*` — an exclusive prefix sum turns the counts into each bucket's start (CSR);
//! 3. `scatter` — one invocation per key writes the scalar's index into its bucket's next slot
//!    (the counting sort's transpose: scalars by bucket);
//! 4. `accumulate` — one invocation per bucket adds its bases (negated for negative digits)
//!    into the bucket's XYZZ sum, which persists across chunks; at most 128 bases per bucket per
//!    dispatch, in as many passes as the largest bucket needs (its size is read back).
//!
//! Then once, the passes of `reduce`: per window, segments of buckets summed as running sums in
//! parallel; then the segments of each window added; then the windows combined by Horner's rule
//! in `2^c`, one dispatch per window from the top (`c` doublings and one addition each, so no
//! invocation runs a long chain). The CPU reads back that one point.
//!
//! Bases are converted to Montgomery form and uploaded once by [`GpuMsm::new`], one buffer per
//! chunk so each fits one binding, and stay resident for every later MSM (the KZG SRS).

use std::sync::Arc;

use halo2_proofs::{
    arithmetic::best_multiexp,
    halo2curves::{
        bn256::{Fq, Fr, G1Affine, G1},
        group::Group,
    },
};
use keel_shaders::{Kernel, Limbs};
use rayon::prelude::*;
use tracing::debug;

use super::{
    convert::{scalar_words, Montgomery},
    device::GpuContext,
    dispatch::{
        allocation, allocation_uploaded, encoder, read_range, read_words, storage, storage_init,
        uniform, Bindings, Pipelines,
    },
    error::{GpuError, MsmError},
};

const TARGET: &str = "keel::prover::gpu";

/// Smallest and largest window width the kernels take.
const MIN_WINDOW_BITS: u32 = 4;
const MAX_WINDOW_BITS: u32 = 16;
/// The most windows any plan has (at the smallest width).
const MAX_WINDOWS: u64 = 254 / MIN_WINDOW_BITS as u64 + 1;
/// Scalars per chunk unless the device or the caller sets fewer: bounds each dispatch's work.
pub const DEFAULT_MAX_CHUNK: usize = 1 << 22;
/// Bases one accumulation pass adds per bucket (see `msm/accumulate.wgsl`).
const PER_PASS: u32 = 128;
/// Bytes per affine base and per XYZZ point in storage.
const AFFINE_BYTES: u64 = 64;
const XYZZ_BYTES: u64 = 128;

/// A multi-scalar multiplication engine over resident bases.
pub trait Msm: Send + Sync {
    /// What runs it, for logs and reports.
    fn describe(&self) -> String;

    /// How many bases the engine holds.
    fn bases_len(&self) -> usize;

    /// `sum scalars[i] * bases[i]` over the first `scalars.len()` bases.
    fn msm(&self, scalars: &[Fr]) -> Result<G1, MsmError>;

    /// Whether it runs on a device (whose failures the CPU may redo).
    fn on_device(&self) -> bool {
        false
    }

    /// Device memory it holds between calls (its bases), in bytes.
    fn resident_bytes(&self) -> u64 {
        0
    }

    /// The most device memory one call over `n` scalars allocates for itself, in bytes.
    fn working_bytes(&self, n: usize) -> u64 {
        let _ = n;
        0
    }

    /// The device it runs on, if any: whose busy time reports carry.
    fn device(&self) -> Option<&GpuContext> {
        None
    }

    /// Bytes one call over `n` scalars reads back from its device (0 on the host).
    fn readback_bytes(&self, n: usize) -> u64 {
        let _ = n;
        0
    }

    /// `sum s[i] * bases[i]` over `n` scalars that are on the engine's device already
    /// ([`Msm::device`]), in `scalars` as canonical words (eight little-endian 32-bit words
    /// each), so they need not go up again; `None` where the engine reads only host memory.
    fn msm_on_device(&self, scalars: &wgpu::Buffer, n: usize) -> Option<Result<G1, MsmError>> {
        let _ = (scalars, n);
        None
    }
}

/// Where an MSM's scalars come from.
#[derive(Clone, Copy)]
enum Scalars<'a> {
    /// Host values, sent chunk by chunk.
    Host(&'a [Fr]),
    /// `n` canonical scalars in a buffer on the device, copied chunk by chunk there.
    Device(&'a wgpu::Buffer, usize),
}

impl Scalars<'_> {
    fn len(&self) -> usize {
        match self {
            Scalars::Host(s) => s.len(),
            Scalars::Device(_, n) => *n,
        }
    }
}

/// The CPU reference: halo2-axiom's `best_multiexp` (halo2curves' multi-threaded Pippenger).
/// The GPU engine is tested against it for exact equality.
#[derive(Clone, Debug)]
pub struct CpuMsm {
    bases: Arc<[G1Affine]>,
}

impl CpuMsm {
    /// Holds `bases`.
    pub fn new(bases: &[G1Affine]) -> CpuMsm {
        CpuMsm {
            bases: bases.into(),
        }
    }
}

impl Msm for CpuMsm {
    fn describe(&self) -> String {
        format!(
            "CPU (halo2curves, {} threads)",
            rayon::current_num_threads()
        )
    }

    fn bases_len(&self) -> usize {
        self.bases.len()
    }

    fn msm(&self, scalars: &[Fr]) -> Result<G1, MsmError> {
        check_len(scalars.len(), self.bases.len())?;
        Ok(best_multiexp(scalars, &self.bases[..scalars.len()]))
    }
}

fn check_len(scalars: usize, bases: usize) -> Result<(), MsmError> {
    if scalars > bases {
        return Err(MsmError::TooManyScalars { scalars, bases });
    }
    Ok(())
}

/// Choices for a [`GpuMsm`]; `Default` picks everything from the device and the input size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsmConfig {
    /// Limb width; `None` picks 32-bit limbs where the device has `SHADER_INT64`.
    pub limbs: Option<Limbs>,
    /// Window width in bits (4..=16); `None` picks [`default_window_bits`].
    pub window_bits: Option<u32>,
    /// Most scalars per chunk; `None` means [`DEFAULT_MAX_CHUNK`] or what one binding holds.
    pub max_chunk: Option<usize>,
}

/// The window width for `n` scalars: about `log2(n) - 3`, within 4..=16. Wider windows mean
/// fewer bucket additions per scalar but more buckets to reduce; this keeps the reduction a small
/// share of the accumulation.
///
/// The top window holds only the bits above the last full window (`254 mod c`, and the carry):
/// when they are few, every scalar's top digit lands in a few buckets, whose bases are added
/// [`PER_PASS`] per pass. At `c = 14` (2^17 scalars) that is 2 bits, and an H200 took 2.3 s for
/// what 2^18 scalars at `c = 15` do in 54 ms. So a width whose largest expected bucket needs more
/// than four passes gives way to the nearest one that needs at most four.
pub fn default_window_bits(n: usize) -> u32 {
    let log = n.max(1).ilog2();
    let base = log
        .saturating_sub(3)
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    let passes = |c: u32| (n as u64 >> top_window_bits(c)).div_ceil(u64::from(PER_PASS));
    if passes(base) <= 4 {
        return base;
    }
    [
        base + 1,
        base.wrapping_sub(1),
        base + 2,
        base.wrapping_sub(2),
        base + 3,
    ]
    .into_iter()
    .filter(|c| (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(c))
    .find(|&c| passes(c) <= 4)
    .unwrap_or(base)
}

/// Bits of a scalar below 2^254 left to the top window by `c`-bit windows.
fn top_window_bits(c: u32) -> u32 {
    254 - c * (254 / c)
}

/// How an MSM is cut into windows, buckets and reduction segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsmPlan {
    /// Window width `c` in bits.
    pub window_bits: u32,
    /// Windows: `⌊254/c⌋ + 1`, enough for a scalar below 2^254 plus the top carry.
    pub windows: u32,
    /// Buckets per window: `2^(c-1)` (digit magnitudes 1..=2^(c-1)).
    pub buckets: u32,
    /// Reduction segments per window.
    pub segments: u32,
}

impl MsmPlan {
    /// The plan for `c`-bit windows.
    pub fn new(window_bits: u32) -> MsmPlan {
        let c = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        let buckets = 1u32 << (c - 1);
        MsmPlan {
            window_bits: c,
            windows: 254 / c + 1,
            buckets,
            segments: buckets.min(256),
        }
    }

    fn total_buckets(&self) -> u64 {
        u64::from(self.windows) * u64::from(self.buckets)
    }
}

/// The bytes of an MSM call's buffers for `plan` over chunks of `chunk` scalars, in the order
/// [`GpuMsm`] allocates them: scalars, keys, sorted keys, counts, the largest bucket, offsets,
/// cursors, block sums, buckets, segment sums, window sums (and the result after them).
fn buffer_sizes(plan: MsmPlan, chunk: u64) -> [u64; 11] {
    let windows = u64::from(plan.windows);
    let total_buckets = plan.total_buckets();
    [
        chunk * 32,
        windows * chunk * 4,
        windows * chunk * 4,
        total_buckets * 4,
        4,
        total_buckets * 4,
        total_buckets * 4,
        total_buckets.div_ceil(256) * 4,
        total_buckets * XYZZ_BYTES,
        windows * u64::from(plan.segments) * XYZZ_BYTES,
        (windows + 1) * XYZZ_BYTES,
    ]
}

/// The wgpu MSM engine: bases resident on the device, one pipeline set per limb width.
pub struct GpuMsm {
    ctx: Arc<GpuContext>,
    limbs: Limbs,
    pipelines: Pipelines,
    base_chunks: Vec<wgpu::Buffer>,
    chunk_len: usize,
    n_bases: usize,
    window_bits: Option<u32>,
    montgomery: Montgomery<Fq>,
}

impl std::fmt::Debug for GpuMsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMsm")
            .field("device", &self.ctx.describe())
            .field("limbs", &self.limbs)
            .field("bases", &self.n_bases)
            .field("chunk_len", &self.chunk_len)
            .finish()
    }
}

impl GpuMsm {
    /// Compiles the kernels and uploads `bases` (converted to Montgomery form), to be reused by
    /// every [`Msm::msm`] call.
    pub fn new(
        ctx: Arc<GpuContext>,
        bases: &[G1Affine],
        config: MsmConfig,
    ) -> Result<GpuMsm, GpuError> {
        let limbs = match config.limbs {
            Some(Limbs::U32) if !ctx.supports_int64() => {
                return Err(GpuError::NoInt64 {
                    adapter: ctx.info().name.clone(),
                })
            }
            Some(limbs) => limbs,
            None => ctx.preferred_limbs(),
        };
        let max_binding = ctx.max_binding();
        let per_binding = (max_binding / (4 * MAX_WINDOWS)).min(max_binding / AFFINE_BYTES);
        let chunk_len = config
            .max_chunk
            .unwrap_or(DEFAULT_MAX_CHUNK)
            .min(usize::try_from(per_binding).unwrap_or(usize::MAX))
            .max(1);
        let pipelines = Pipelines::build(
            &ctx,
            &[
                Kernel::MsmDecompose,
                Kernel::MsmScan,
                Kernel::MsmScatter,
                Kernel::MsmAccumulate,
                Kernel::MsmReduce,
            ],
            limbs,
        )?;
        let montgomery = Montgomery::new();
        let base_chunks = ctx.scoped("uploading bases", || {
            bases
                .chunks(chunk_len)
                .map(|chunk| {
                    let mut words = vec![0u32; 16 * chunk.len()];
                    words
                        .par_chunks_mut(16)
                        .zip(chunk.par_iter())
                        .for_each(|(w, p)| montgomery.affine_words(p, w));
                    storage_init(&ctx, "msm bases", &words)
                })
                .collect::<Vec<_>>()
        })?;
        debug!(target: TARGET, bases = bases.len(), chunk_len, %limbs, "MSM bases resident");
        Ok(GpuMsm {
            ctx,
            limbs,
            pipelines,
            base_chunks,
            chunk_len,
            n_bases: bases.len(),
            window_bits: config.window_bits,
            montgomery,
        })
    }

    /// The limb width the kernels were compiled with.
    pub fn limbs(&self) -> Limbs {
        self.limbs
    }

    /// Scalars per chunk.
    pub fn chunk_len(&self) -> usize {
        self.chunk_len
    }

    /// The plan an MSM of `n` scalars runs with: the configured or default width, narrowed
    /// until the buckets fit one binding.
    pub fn plan(&self, n: usize) -> MsmPlan {
        let mut plan = MsmPlan::new(self.window_bits.unwrap_or_else(|| default_window_bits(n)));
        while plan.window_bits > MIN_WINDOW_BITS
            && plan.total_buckets() * XYZZ_BYTES > self.ctx.max_binding()
        {
            plan = MsmPlan::new(plan.window_bits - 1);
        }
        plan
    }

    fn run(&self, scalars: Scalars<'_>, plan: MsmPlan) -> Result<G1, GpuError> {
        let ctx = &*self.ctx;
        let p = &self.pipelines;
        let n = scalars.len();
        let chunk = self.chunk_len.min(n) as u64;
        let windows = u64::from(plan.windows);
        let total_buckets = plan.total_buckets();
        let blocks = total_buckets.div_ceil(256);
        let max_binding = ctx.max_binding();
        for (what, needed) in [
            ("the bucket sums", total_buckets * XYZZ_BYTES),
            ("the sorted scalar keys", windows * chunk * 4),
            ("the chunk's scalars", chunk * 32),
        ] {
            if needed > max_binding {
                return Err(GpuError::TooLarge {
                    what,
                    needed,
                    allowed: max_binding,
                });
            }
        }

        let sizes = buffer_sizes(plan, chunk);
        #[rustfmt::skip]
        let (scalar_buf, keys, sorted, counts, max_count, offsets, cursor, block_sums, buckets, segs, wins) =
            ctx.scoped("allocating MSM buffers", || {
                (
                    storage(ctx, "msm scalars", sizes[0]),
                    storage(ctx, "msm keys", sizes[1]),
                    storage(ctx, "msm sorted", sizes[2]),
                    storage(ctx, "msm counts", sizes[3]),
                    storage(ctx, "msm max bucket", sizes[4]),
                    storage(ctx, "msm offsets", sizes[5]),
                    storage(ctx, "msm cursor", sizes[6]),
                    storage(ctx, "msm block sums", sizes[7]),
                    storage(ctx, "msm buckets", sizes[8]),
                    storage(ctx, "msm segment sums", sizes[9]),
                    storage(ctx, "msm window sums", sizes[10]),
                )
            })?;
        let scan_params = uniform(ctx, "scan params", &[total_buckets as u32, blocks as u32]);

        for k in 0..n.div_ceil(self.chunk_len) {
            let first = k * self.chunk_len;
            let len = self.chunk_len.min(n - first) as u32;
            ctx.scoped("MSM chunk", || {
                let mut enc = encoder(ctx, "msm chunk");
                match scalars {
                    Scalars::Host(s) => {
                        let part = &s[first..first + len as usize];
                        let words: Vec<u32> = part.par_iter().flat_map_iter(scalar_words).collect();
                        ctx.queue()
                            .write_buffer(&scalar_buf, 0, bytemuck::cast_slice(&words));
                    }
                    Scalars::Device(buffer, _) => {
                        let at = first as u64 * 32;
                        enc.copy_buffer_to_buffer(buffer, at, &scalar_buf, 0, u64::from(len) * 32);
                    }
                }
                let d_params = uniform(
                    ctx,
                    "decompose params",
                    &[len, plan.window_bits, plan.windows, plan.buckets],
                );
                let s_params = uniform(ctx, "scatter params", &[len, len * plan.windows]);
                enc.clear_buffer(&counts, 0, None);
                enc.clear_buffer(&max_count, 0, None);
                let items = u64::from(len);
                #[rustfmt::skip]
                let steps: [(&str, Bindings<'_>, u64, u32); 5] = [
                    ("decompose", &[(0, &d_params), (1, &scalar_buf), (2, &keys), (3, &counts), (4, &max_count)], items, 64),
                    ("scan_blocks", &[(0, &scan_params), (1, &counts), (2, &offsets), (3, &block_sums)], total_buckets, 256),
                    ("scan_block_sums", &[(0, &scan_params), (3, &block_sums)], 256, 256),
                    ("scan_add", &[(0, &scan_params), (2, &offsets), (3, &block_sums), (4, &cursor)], total_buckets, 256),
                    ("scatter", &[(0, &s_params), (1, &keys), (2, &cursor), (3, &sorted)], items * windows, 256),
                ];
                for (entry, buffers, items, workgroup) in steps {
                    p.dispatch(ctx, &mut enc, entry, buffers, items, workgroup);
                }
                ctx.submit(enc.finish());
            })?;
            // The largest bucket sets how many bounded accumulation passes this chunk needs.
            let largest = read_words(ctx, &max_count, "MSM bucket sizes")?[0];
            ctx.scoped("MSM accumulation", || {
                let mut enc = encoder(ctx, "msm accumulation");
                for first in (0..largest).step_by(PER_PASS as usize) {
                    let params = uniform(
                        ctx,
                        "accumulate params",
                        &[total_buckets as u32, first, PER_PASS],
                    );
                    let buffers = [
                        (0, &params),
                        (1, &self.base_chunks[k]),
                        (2, &sorted),
                        (3, &offsets),
                        (4, &cursor),
                        (5, &buckets),
                    ];
                    p.dispatch(ctx, &mut enc, "accumulate", &buffers, total_buckets, 64);
                }
                ctx.submit(enc.finish());
            })?;
        }

        ctx.scoped("MSM reduction", || {
            let mut enc = encoder(ctx, "msm reduction");
            // passes 0 and 1, then pass 2 once per window from the top down (each dispatch c
            // doublings and one addition: no invocation runs a long chain)
            let horner = (0..plan.windows).rev().map(|w| (2u32, 1u64, w));
            let passes = [
                (0u32, windows * u64::from(plan.segments), 0),
                (1, windows, 0),
            ];
            for (pass, items, window) in passes.into_iter().chain(horner) {
                let params = uniform(
                    ctx,
                    "reduce params",
                    &[
                        plan.windows,
                        plan.buckets,
                        plan.segments,
                        plan.buckets / plan.segments,
                        pass,
                        plan.window_bits,
                        window,
                    ],
                );
                let buffers = [(0, &params), (1, &buckets), (2, &segs), (3, &wins)];
                p.dispatch(ctx, &mut enc, "reduce", &buffers, items, 64);
            }
            ctx.submit(enc.finish());
        })?;
        // the windows combined on the device: one point comes back
        let at = u64::from(plan.windows) * XYZZ_BYTES;
        let out = read_range(ctx, &wins, at, XYZZ_BYTES, "MSM readback")?;
        self.montgomery.xyzz_point(&out).ok_or(GpuError::BadResult {
            what: "MSM result",
            at: 0,
        })
    }
}

impl Msm for GpuMsm {
    fn describe(&self) -> String {
        format!("GPU {} with {}", self.ctx.describe(), self.limbs)
    }

    fn on_device(&self) -> bool {
        true
    }

    fn device(&self) -> Option<&GpuContext> {
        Some(&self.ctx)
    }

    fn resident_bytes(&self) -> u64 {
        self.base_chunks.iter().map(|b| allocation(b.size())).sum()
    }

    fn readback_bytes(&self, n: usize) -> u64 {
        // each chunk's largest bucket, then the result
        let chunks = n.max(1).div_ceil(self.chunk_len) as u64;
        4 * chunks + XYZZ_BYTES
    }

    fn working_bytes(&self, n: usize) -> u64 {
        let plan = self.plan(n);
        let chunk = self.chunk_len.min(n.max(1)) as u64;
        let chunks = (n.max(1) as u64).div_ceil(chunk);
        let sizes = buffer_sizes(plan, chunk);
        let buffers: u64 = sizes.iter().map(|&b| allocation(b)).sum();
        // the scalars' upload staged, the read-backs (a chunk's largest bucket, the window
        // sums), and the uniforms: the scan's, two per chunk, at most one per 128 points of its
        // largest bucket, the reduction's
        let staged = allocation(sizes[0]);
        let readback = allocation(4) + allocation(XYZZ_BYTES);
        let uniforms =
            1 + chunks * (2 + chunk.div_ceil(u64::from(PER_PASS))) + 2 + u64::from(plan.windows);
        buffers + staged + readback + uniforms * allocation_uploaded(32)
    }

    fn bases_len(&self) -> usize {
        self.n_bases
    }

    fn msm(&self, scalars: &[Fr]) -> Result<G1, MsmError> {
        check_len(scalars.len(), self.n_bases)?;
        if scalars.is_empty() {
            return Ok(G1::identity());
        }
        let plan = self.plan(scalars.len());
        Ok(self.run(Scalars::Host(scalars), plan)?)
    }

    fn msm_on_device(&self, scalars: &wgpu::Buffer, n: usize) -> Option<Result<G1, MsmError>> {
        if let Err(e) = check_len(n, self.n_bases) {
            return Some(Err(e));
        }
        if scalars.size() < n as u64 * 32 {
            return Some(Err(MsmError::Gpu(GpuError::Device {
                stage: "MSM",
                message: format!("{n} scalars asked of a buffer of {} bytes", scalars.size()),
            })));
        }
        if n == 0 {
            return Some(Ok(G1::identity()));
        }
        let plan = self.plan(n);
        Some(
            self.run(Scalars::Device(scalars, n), plan)
                .map_err(MsmError::from),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bits_grow_with_size_within_bounds() {
        assert_eq!(default_window_bits(0), 4);
        assert_eq!(default_window_bits(1), 4);
        assert_eq!(default_window_bits(1 << 12), 10);
        assert_eq!(default_window_bits(1 << 17), 15);
        assert_eq!(default_window_bits(1 << 20), 16);
        assert_eq!(default_window_bits(1 << 30), 16);
        // no default leaves the top window's expected largest bucket more than four passes (up
        // to a chunk's worth of scalars: buckets are filled chunk by chunk)
        for log in 4..=DEFAULT_MAX_CHUNK.ilog2() {
            let n = 1usize << log;
            let c = default_window_bits(n);
            let top = 254 - c * (254 / c);
            assert!(
                (n as u64 >> top).div_ceil(u64::from(PER_PASS)) <= 4,
                "2^{log} scalars at {c} bits"
            );
        }
    }

    #[test]
    fn plans_cover_every_scalar_bit_and_the_top_carry() {
        for c in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
            let plan = MsmPlan::new(c);
            // Bits below 254 are the scalar's; at least one more window bit takes the carry.
            assert!(plan.windows * c > 254, "c = {c}");
            assert_eq!(plan.buckets % plan.segments, 0);
            // Bucket keys keep one bit for the sign.
            assert!(plan.total_buckets() < 1 << 31);
        }
    }

    #[test]
    fn cpu_reference_refuses_more_scalars_than_bases() {
        let cpu = CpuMsm::new(&[G1Affine::generator()]);
        let err = cpu.msm(&[Fr::one(), Fr::one()]).unwrap_err();
        assert!(matches!(
            err,
            MsmError::TooManyScalars {
                scalars: 2,
                bases: 1
            }
        ));
    }
}
