//! The NTT over BN254's `Fr`: [`GpuNtt`] on wgpu (`shaders/ntt/radix2.wgsl`) and [`CpuNtt`],
//! halo2-axiom's own `best_fft`, behind one [`Ntt`] trait, so a test compares them with exact
//! equality and a prover picks either.
//!
//! ```text
//!  forward   a ─▶ bit reversal ─▶ log n butterfly stages (twiddles ω^0 … ω^(n/2−1))
//!  coset     a ─▶ a_i·g^i ─▶ forward                  (the powers of g resident beside the twiddles)
//!  inverse   a ─▶ forward with ω⁻¹ ─▶ a_i·n⁻¹
//! ```
//!
//! The transforms are halo2's: `forward(a, ω)` gives `a'_j = Σ_i a_i ω^(ij)` in natural order,
//! exactly what `halo2_proofs::arithmetic::best_fft(a, ω, log n)` computes. Values go up and come
//! back in the shaders' Montgomery form; every stage of one transform is recorded in one command
//! buffer, each stage one bounded dispatch. Twiddle and coset-power tables are computed once per
//! (ω, n) and (g, n) and stay on the device.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use halo2_proofs::{
    arithmetic::best_fft,
    fft::recursive::FFTData,
    halo2curves::{
        bn256::Fr,
        ff::{Field, PrimeField},
    },
};
use keel_shaders::{Kernel, Limbs};

use super::{
    convert::Montgomery,
    device::GpuContext,
    dispatch::{
        allocation, allocation_uploaded, encoder, read_words, storage, storage_init, uniform,
        Pipelines,
    },
    error::GpuError,
};

/// Tables kept between transforms, by (the element they are powers of, their length).
type Tables<T> = Mutex<HashMap<([u8; 32], u32), Arc<T>>>;

/// Bytes of one field element on the device.
const ELEMENT_BYTES: u64 = 32;

/// The largest transform this module takes: 2^28 is `Fr`'s two-adicity.
pub const MAX_LOG_N: u32 = Fr::S;

/// A transform over `Fr`.
pub trait Ntt: Send + Sync {
    /// `a'_j = Σ_i a_i ω^(ij)` in place, `a.len() = 2^log_n`, `ω` a primitive 2^log_n-th root
    /// of unity.
    fn forward(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), GpuError>;

    /// The forward transform of `a_i · g^i`: the evaluations on the coset `g·⟨ω⟩`.
    fn coset_forward(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), GpuError>;

    /// The inverse transform: `forward(a, ω⁻¹)` scaled by `n⁻¹`.
    fn inverse(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), GpuError>;

    /// What runs it, for reports.
    fn describe(&self) -> String;

    /// Whether it runs on a device (its values travel there and back).
    fn on_device(&self) -> bool {
        false
    }

    /// The device it runs on, if any: whose busy time reports carry.
    fn device(&self) -> Option<&GpuContext> {
        None
    }

    /// The device memory its resident tables take for transforms of size `n` on `cosets`
    /// cosets (the twiddles of ω and ω⁻¹, each coset generator's powers), in bytes.
    fn table_bytes(&self, n: usize, cosets: usize) -> u64 {
        let _ = (n, cosets);
        0
    }

    /// The most device memory one transform of size `n` allocates for itself, in bytes.
    fn working_bytes(&self, n: usize) -> u64 {
        let _ = n;
        0
    }
}

/// The primitive 2^log_n-th root of unity halo2 uses: `ROOT_OF_UNITY^(2^(S − log_n))`.
pub fn omega(log_n: u32) -> Fr {
    assert!(log_n <= MAX_LOG_N, "Fr has no 2^{log_n}-th root of unity");
    let mut w = Fr::ROOT_OF_UNITY;
    for _ in log_n..Fr::S {
        w = w.square();
    }
    w
}

fn check_len(a: &[Fr], log_n: u32) {
    assert!(log_n <= MAX_LOG_N, "2^{log_n} is past Fr's two-adicity");
    assert_eq!(a.len(), 1usize << log_n, "a transform of 2^{log_n} values");
}

/// halo2-axiom's CPU transform (`best_fft`, rayon over the machine's cores): the reference. Its
/// twiddle tables (`FFTData`) are made once per (ω, n) and kept, as halo2's `EvaluationDomain`
/// keeps them.
#[derive(Default)]
pub struct CpuNtt {
    data: Tables<FFTData<Fr>>,
}

impl std::fmt::Debug for CpuNtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CpuNtt")
    }
}

impl CpuNtt {
    /// A CPU transform with no tables yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `best_fft` with `omega`: forward, or (`inverse`) with `omega` the inverse of the
    /// transform's root. The tables are made once per (ω, n, direction), the only time an
    /// inversion is needed.
    fn fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, inverse: bool) {
        check_len(a, log_n);
        let mut key = omega.to_repr();
        key[31] ^= u8::from(inverse) << 7; // reprs are below 2^254: the top bit is free
        let data = {
            let mut tables = self.data.lock().unwrap_or_else(|p| p.into_inner());
            tables
                .entry((key, log_n))
                .or_insert_with(|| {
                    let other = omega.invert().expect("a root of unity is invertible");
                    let (forward, backward) = if inverse {
                        (other, omega)
                    } else {
                        (omega, other)
                    };
                    Arc::new(FFTData::new(a.len(), forward, backward))
                })
                .clone()
        };
        best_fft(a, omega, log_n, &data, inverse);
    }
}

impl Ntt for CpuNtt {
    fn forward(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), GpuError> {
        self.fft(a, omega, log_n, false);
        Ok(())
    }

    fn coset_forward(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), GpuError> {
        check_len(a, log_n);
        let mut power = Fr::ONE;
        for x in a.iter_mut() {
            *x *= power;
            power *= g;
        }
        self.fft(a, omega, log_n, false);
        Ok(())
    }

    fn inverse(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), GpuError> {
        self.fft(a, omega_inv, log_n, true);
        let n_inv = n_inverse(log_n);
        for x in a.iter_mut() {
            *x *= n_inv;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "CPU (halo2 best_fft, {} threads)",
            rayon::current_num_threads()
        )
    }
}

fn n_inverse(log_n: u32) -> Fr {
    Fr::from(2)
        .pow_vartime([u64::from(log_n)])
        .invert()
        .expect("a power of two is invertible")
}

/// The NTT on a wgpu device.
pub struct GpuNtt {
    ctx: Arc<GpuContext>,
    limbs: Limbs,
    pipelines: Pipelines,
    /// Resident tables: the twiddles of each (ω, n), the powers of each coset generator.
    tables: Tables<wgpu::Buffer>,
    m: Montgomery<Fr>,
}

impl std::fmt::Debug for GpuNtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuNtt")
            .field("device", &self.ctx.describe())
            .field("limbs", &self.limbs)
            .finish()
    }
}

/// How a transform's values are treated around the stages.
#[derive(Clone, Copy)]
pub(crate) enum Around {
    Plain,
    /// `a_i · g^i` first.
    Coset(Fr),
    /// `· n⁻¹` after.
    Inverse,
}

impl GpuNtt {
    /// An NTT engine on `ctx` with `limbs` (`ctx.preferred_limbs()` unless a test picks).
    pub fn new(ctx: Arc<GpuContext>, limbs: Limbs) -> Result<Self, GpuError> {
        let pipelines = Pipelines::build(&ctx, &[Kernel::Ntt], limbs)?;
        Ok(Self {
            ctx,
            limbs,
            pipelines,
            tables: Mutex::new(HashMap::new()),
            m: Montgomery::new(),
        })
    }

    /// The limb width the kernels run with.
    pub fn limbs(&self) -> Limbs {
        self.limbs
    }

    /// The resident table `x^0 … x^(len−1)`, made on first use.
    fn table(&self, x: Fr, len: usize, what: &'static str) -> Result<Arc<wgpu::Buffer>, GpuError> {
        let key = (x.to_repr(), len as u32);
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tables.get(&key) {
            return Ok(t.clone());
        }
        let mut words = Vec::with_capacity(8 * len);
        let mut power = Fr::ONE;
        for _ in 0..len {
            words.extend_from_slice(&self.m.encode(&power));
            power *= x;
        }
        let buffer = Arc::new(
            self.ctx
                .scoped(what, || storage_init(&self.ctx, what, &words))?,
        );
        tables.insert(key, buffer.clone());
        Ok(buffer)
    }

    fn run(&self, a: &mut [Fr], omega: Fr, log_n: u32, around: Around) -> Result<(), GpuError> {
        check_len(a, log_n);
        if log_n == 0 {
            // one value: every transform is the identity (g^0 = 1, and n⁻¹ = 1)
            return Ok(());
        }
        // too large for a binding: refused before the upload
        self.check_size(log_n)?;
        let input: Vec<u32> = a.iter().flat_map(|x| self.m.encode(x)).collect();
        let ctx = &self.ctx;
        let values = ctx.scoped("NTT", || storage_init(ctx, "NTT values", &input))?;
        let mut enc = encoder(ctx, "NTT");
        let kept = self.record(&mut enc, &values, omega, log_n, around)?;
        ctx.scoped("NTT", || ctx.submit(enc.finish()))?;
        drop(kept);
        let words = read_words(ctx, &values, "NTT readback")?;
        a.copy_from_slice(&self.m.decode_all(&words, "NTT value")?);
        Ok(())
    }

    /// A transform of `2^log_n` values refused before any work if one binding cannot hold them.
    fn check_size(&self, log_n: u32) -> Result<(), GpuError> {
        let bytes = (1u64 << log_n) * ELEMENT_BYTES;
        if bytes > self.ctx.max_binding() {
            return Err(GpuError::TooLarge {
                what: "NTT values",
                needed: bytes,
                allowed: self.ctx.max_binding(),
            });
        }
        Ok(())
    }

    /// Records, on the `2^log_n` values in `values` (a device buffer in this engine's encoding),
    /// in place: `· v.scale`, the inverse transform in `v.omega_inv`, then `· v.g_inv^i`.
    /// Returns the buffers the recorded work reads, to be kept until it is submitted.
    pub(crate) fn record_vanishing(
        &self,
        enc: &mut wgpu::CommandEncoder,
        values: &wgpu::Buffer,
        v: super::quotient::Vanishing,
        log_n: u32,
    ) -> Result<Vec<Arc<wgpu::Buffer>>, GpuError> {
        self.check_size(log_n)?;
        let n = 1usize << log_n;
        let ctx = &self.ctx;
        let scale = Arc::new(storage_init(ctx, "NTT scale", &self.m.encode(&v.scale)));
        let whole = Arc::new(uniform(ctx, "NTT params", &[log_n, 0, n as u32, 0]));
        ctx.scoped("NTT", || {
            let b = [(0, values), (2, whole.as_ref()), (3, scale.as_ref())];
            self.pipelines
                .dispatch(ctx, enc, "ntt_mul_scalar", &b, n as u64, 64);
        })?;
        let mut kept = self.record(enc, values, v.omega_inv, log_n, Around::Inverse)?;
        let powers = self.table(v.g_inv, n, "NTT coset powers")?;
        ctx.scoped("NTT", || {
            let b = [(0, values), (2, whole.as_ref()), (3, powers.as_ref())];
            self.pipelines
                .dispatch(ctx, enc, "ntt_mul_factors", &b, n as u64, 64);
        })?;
        kept.extend([scale, whole, powers]);
        Ok(kept)
    }

    /// The `n` elements of `src` from element `at` (this engine's Montgomery encoding) as the
    /// MSM reads them, canonical words, in a new device buffer: copied there and converted.
    pub(crate) fn canonical_copy(
        &self,
        src: &wgpu::Buffer,
        at: usize,
        n: usize,
    ) -> Result<wgpu::Buffer, GpuError> {
        let ctx = &self.ctx;
        let bytes = n as u64 * ELEMENT_BYTES;
        let out = ctx.scoped("canonical scalars", || {
            storage(ctx, "canonical scalars", bytes)
        })?;
        let mut enc = encoder(ctx, "canonical scalars");
        enc.copy_buffer_to_buffer(src, at as u64 * ELEMENT_BYTES, &out, 0, bytes);
        let kept = self.record_canonical(&mut enc, &out, n)?;
        ctx.scoped("canonical scalars", || ctx.submit(enc.finish()))?;
        drop(kept);
        Ok(out)
    }

    /// Records, on the `n` values in `values` (this engine's Montgomery encoding), in place:
    /// each turned into its canonical words, what the MSM reads. A Montgomery product with the
    /// plain integer 1 (not 1's Montgomery form) divides by `R`, which is the conversion.
    /// Returns the buffers the recorded work reads, to be kept until it is submitted.
    fn record_canonical(
        &self,
        enc: &mut wgpu::CommandEncoder,
        values: &wgpu::Buffer,
        n: usize,
    ) -> Result<Vec<Arc<wgpu::Buffer>>, GpuError> {
        let ctx = &self.ctx;
        let one = Arc::new(storage_init(
            ctx,
            "NTT plain one",
            &[1, 0, 0, 0, 0, 0, 0, 0],
        ));
        let whole = Arc::new(uniform(ctx, "NTT params", &[0, 0, n as u32, 0]));
        ctx.scoped("NTT", || {
            let b = [(0, values), (2, whole.as_ref()), (3, one.as_ref())];
            self.pipelines
                .dispatch(ctx, enc, "ntt_mul_scalar", &b, n as u64, 64);
        })?;
        Ok(vec![one, whole])
    }

    /// Records the transform `around` asks for of the `2^log_n` values in `values` (a device
    /// buffer of exactly that many elements, in this engine's encoding), in place, into `enc`:
    /// nothing crosses to or from the host. Returns the buffers the recorded work reads, to be
    /// kept until it is submitted.
    pub(crate) fn record(
        &self,
        enc: &mut wgpu::CommandEncoder,
        values: &wgpu::Buffer,
        omega: Fr,
        log_n: u32,
        around: Around,
    ) -> Result<Vec<Arc<wgpu::Buffer>>, GpuError> {
        self.check_size(log_n)?;
        let n = 1usize << log_n;
        let twiddles = self.table(omega, n / 2, "NTT twiddles")?;
        let factors = match around {
            Around::Plain => None,
            Around::Coset(g) => Some(self.table(g, n, "NTT coset powers")?),
            Around::Inverse => {
                let words = self.m.encode(&n_inverse(log_n));
                Some(Arc::new(storage_init(&self.ctx, "NTT 1/n", &words)))
            }
        };
        let ctx = &self.ctx;
        ctx.scoped("NTT", || {
            let params = |stage: u32| uniform(ctx, "NTT params", &[log_n, stage, n as u32, 0]);
            let whole = params(0);
            let items = n as u64;
            if let (Around::Coset(_), Some(f)) = (around, &factors) {
                let b = [(0, values), (2, &whole), (3, f.as_ref())];
                self.pipelines
                    .dispatch(ctx, enc, "ntt_mul_factors", &b, items, 64);
            }
            self.pipelines.dispatch(
                ctx,
                enc,
                "ntt_bitreverse",
                &[(0, values), (2, &whole)],
                items,
                64,
            );
            let stages: Vec<wgpu::Buffer> = (0..log_n).map(params).collect();
            for p in &stages {
                let b = [(0, values), (1, twiddles.as_ref()), (2, p)];
                self.pipelines
                    .dispatch(ctx, enc, "ntt_butterfly", &b, items / 2, 64);
            }
            if let (Around::Inverse, Some(f)) = (around, &factors) {
                let b = [(0, values), (2, &whole), (3, f.as_ref())];
                self.pipelines
                    .dispatch(ctx, enc, "ntt_mul_scalar", &b, items, 64);
            }
            let mut kept: Vec<Arc<wgpu::Buffer>> = stages.into_iter().map(Arc::new).collect();
            kept.push(Arc::new(whole));
            kept.push(twiddles);
            kept.extend(factors);
            kept
        })
    }
}

impl Ntt for GpuNtt {
    fn forward(&self, a: &mut [Fr], omega: Fr, log_n: u32) -> Result<(), GpuError> {
        self.run(a, omega, log_n, Around::Plain)
    }

    fn coset_forward(&self, a: &mut [Fr], omega: Fr, g: Fr, log_n: u32) -> Result<(), GpuError> {
        self.run(a, omega, log_n, Around::Coset(g))
    }

    fn inverse(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32) -> Result<(), GpuError> {
        self.run(a, omega_inv, log_n, Around::Inverse)
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.ctx.describe(), self.limbs)
    }

    fn on_device(&self) -> bool {
        true
    }

    fn device(&self) -> Option<&GpuContext> {
        Some(&self.ctx)
    }

    fn table_bytes(&self, n: usize, cosets: usize) -> u64 {
        let n = n as u64;
        2 * allocation(n / 2 * ELEMENT_BYTES) + cosets as u64 * allocation(n * ELEMENT_BYTES)
    }

    fn working_bytes(&self, n: usize) -> u64 {
        let log_n = u64::from(n.max(1).trailing_zeros());
        // the values uploaded, their read-back, n⁻¹, and a uniform per stage and one for the
        // whole
        let values = n as u64 * ELEMENT_BYTES;
        allocation_uploaded(values)
            + allocation(values)
            + allocation_uploaded(32)
            + (log_n + 1) * allocation_uploaded(16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omega_has_the_order_asked() {
        for log_n in [1, 4, 10] {
            let w = omega(log_n);
            assert_eq!(w.pow_vartime([1u64 << log_n]), Fr::ONE);
            assert_ne!(w.pow_vartime([1u64 << (log_n - 1)]), Fr::ONE);
        }
    }

    #[test]
    fn the_cpu_inverse_undoes_the_forward_transform_and_the_coset_is_a_shift() {
        let log_n = 5;
        let a: Vec<Fr> = (0..32u64).map(|i| Fr::from(i * i + 7)).collect();
        let (w, w_inv) = (omega(log_n), omega(log_n).invert().unwrap());
        let mut b = a.clone();
        let cpu = CpuNtt::new();
        cpu.forward(&mut b, w, log_n).unwrap();
        // a'_1 = Σ a_i ω^i
        let direct: Fr = a
            .iter()
            .enumerate()
            .map(|(i, x)| *x * w.pow_vartime([i as u64]))
            .sum();
        assert_eq!(b[1], direct);
        cpu.inverse(&mut b, w_inv, log_n).unwrap();
        assert_eq!(a, b);
        let g = Fr::MULTIPLICATIVE_GENERATOR;
        let mut c = a.clone();
        cpu.coset_forward(&mut c, w, g, log_n).unwrap();
        let at_g: Fr = a
            .iter()
            .enumerate()
            .map(|(i, x)| *x * g.pow_vartime([i as u64]))
            .sum();
        assert_eq!(c[0], at_g, "the coset's first point is g");
    }
}
