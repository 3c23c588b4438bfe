//! The quotient's expressions on a wgpu device: one kernel (`shaders/quotient/interpret.wgsl`)
//! interprets a circuit's compiled opcode stream ([`crate::plonk::Opcodes`]) row by row, so any
//! circuit runs with no kernel written for its gates.
//!
//! ```text
//!  the key's columns (fixed, σ, selectors, points) ──up once──▶ ResidentColumns (kept across proofs)
//!  the proof's columns (advice, instance, products…) ──up──▶ one binding
//!  opcodes, constants ──up──▶            registers: rows × registers, reused per dispatch
//!  dispatch per run of rows (as many as the registers' binding holds) ─▶ out (n values) ──back──▶
//! ```

use halo2_proofs::halo2curves::bn256::Fr;
use keel_shaders::{Kernel, Limbs};

use super::{
    convert::Montgomery,
    device::GpuContext,
    dispatch::{
        allocation, allocation_uploaded, encoder, read_range, read_words, storage, storage_init,
        uniform, Pipelines,
    },
    error::GpuError,
    ntt::{Around, GpuNtt, Ntt},
};
use crate::plonk::Opcodes;

/// Bytes of one field element on the device.
const ELEMENT_BYTES: u64 = 32;
/// Rows one dispatch evaluates at most.
const MAX_ROWS: usize = 1 << 15;

/// Columns kept on the device across evaluations (a key's, per coset part).
pub struct ResidentColumns {
    buffer: std::sync::Arc<wgpu::Buffer>,
    count: usize,
    n: usize,
}

impl std::fmt::Debug for ResidentColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentColumns")
            .field("count", &self.count)
            .field("n", &self.n)
            .finish()
    }
}

impl ResidentColumns {
    /// Column `index` as a polynomial for [`crate::gpu::GpuPolys`] (which reads it in place);
    /// `None` past the last column.
    pub fn column(&self, index: usize) -> Option<super::DevicePoly> {
        (index < self.count).then(|| super::DevicePoly::column(self.buffer.clone(), index, self.n))
    }

    /// How many columns it holds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Bytes held on the device.
    pub fn bytes(&self) -> u64 {
        self.count as u64 * self.n as u64 * ELEMENT_BYTES
    }
}

/// The columns a stream reads first: kept on the device, or sent with this evaluation.
#[derive(Clone, Copy, Debug)]
pub enum KeyColumns<'a> {
    /// Already on the device ([`GpuQuotient::upload`]).
    Resident(&'a ResidentColumns),
    /// Sent now (none at all is `Host(&[])`).
    Host(&'a [&'a [Fr]]),
}

/// What the device does with a coset part's numerator before it comes back
/// ([`GpuQuotient::evaluate_on_coset`]): the vanishing division (`· scale`, the inverse of
/// `X^n − 1` on the part), the inverse transform (`ω⁻¹`, with `n⁻¹`), then the coset shift
/// undone (`· g⁻ⁱ`), as the CPU does them.
#[derive(Clone, Copy, Debug)]
pub struct Vanishing {
    /// The inverse of the vanishing polynomial on the part.
    pub scale: Fr,
    /// The inverse root of unity.
    pub omega_inv: Fr,
    /// The inverse of the part's generator.
    pub g_inv: Fr,
}

/// A column on the device for its commitment and its coefficients ([`GpuQuotient::stage`]):
/// sent once, in the transforms' encoding, with the canonical scalars the MSM reads made from
/// it there.
pub struct Staged {
    values: wgpu::Buffer,
    scalars: wgpu::Buffer,
    n: usize,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").field("n", &self.n).finish()
    }
}

impl Staged {
    /// The column as the MSM reads it: canonical words, on the device.
    pub fn scalars(&self) -> &wgpu::Buffer {
        &self.scalars
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it is empty (never: a column has `2^k` values).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The opcode interpreter on one device.
pub struct GpuQuotient {
    ctx: std::sync::Arc<GpuContext>,
    limbs: Limbs,
    pipelines: Pipelines,
    m: Montgomery<Fr>,
    max_rows: usize,
    /// The transforms that put kept coefficients on each coset part on the device, if given.
    ntt: Option<std::sync::Arc<GpuNtt>>,
}

impl std::fmt::Debug for GpuQuotient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuQuotient")
            .field("device", &self.ctx.describe())
            .field("limbs", &self.limbs)
            .field("coset_transforms", &self.ntt.is_some())
            .finish()
    }
}

impl GpuQuotient {
    /// This interpreter transforming kept coefficients onto each coset part with `ntt` (on the
    /// same device, with the same limbs), so the proof's columns go up once a proof
    /// ([`GpuQuotient::evaluate_on_coset`]).
    pub fn with_transforms(mut self, ntt: std::sync::Arc<GpuNtt>) -> Self {
        self.ntt = Some(ntt);
        self
    }

    /// Whether it transforms kept coefficients itself.
    pub fn transforms(&self) -> bool {
        self.ntt.is_some()
    }

    /// The device it runs on.
    pub fn device(&self) -> &GpuContext {
        &self.ctx
    }

    /// The device memory `key` columns of `n` rows take when kept ([`GpuQuotient::upload`]).
    pub fn resident_bytes(key: usize, n: usize) -> u64 {
        allocation(key as u64 * n as u64 * ELEMENT_BYTES)
    }

    /// The most device memory one [`GpuQuotient::evaluate`] of `ops` over `n` rows allocates
    /// for itself, with `columns` of the proof's and `key` columns sent with them (0 where the
    /// key's are kept).
    pub fn working_bytes(&self, ops: &Opcodes, n: usize, columns: usize, key: usize) -> u64 {
        let n64 = n as u64;
        let per_row = u64::from(ops.registers.max(1)) * ELEMENT_BYTES;
        let rows = self.rows_per_dispatch(per_row, n).max(1);
        let dispatches = n64.div_ceil(rows as u64);
        let column_bytes = columns as u64 * n64 * ELEMENT_BYTES;
        let proof_columns = match &self.ntt {
            // the coefficients kept (uploaded once), the part's values made on the device in a
            // buffer of their own through a scratch column, with each transform's uniforms
            Some(ntt) => {
                allocation_uploaded(column_bytes)
                    + allocation(column_bytes)
                    + ntt.working_bytes(n)
                    + columns as u64
                        * (u64::from(n.max(1).trailing_zeros()) + 1)
                        * allocation_uploaded(16)
            }
            None => allocation_uploaded(column_bytes),
        };
        proof_columns
            + allocation_uploaded(ops.words.len() as u64 * 4)
            + allocation_uploaded(ops.constants.len() as u64 * ELEMENT_BYTES)
            + allocation(per_row * rows as u64)
            // the values, and their read-back
            + 2 * allocation(n64 * ELEMENT_BYTES)
            + if key > 0 { allocation_uploaded(key as u64 * n64 * ELEMENT_BYTES) } else { 0 }
            + dispatches * allocation_uploaded(32)
    }

    /// The interpreter on `ctx` with `limbs`.
    pub fn new(ctx: std::sync::Arc<GpuContext>, limbs: Limbs) -> Result<Self, GpuError> {
        let pipelines = Pipelines::build(&ctx, &[Kernel::Quotient], limbs)?;
        Ok(Self {
            ctx,
            limbs,
            pipelines,
            m: Montgomery::new(),
            max_rows: MAX_ROWS,
            ntt: None,
        })
    }

    /// At most `rows` rows per dispatch (the default bounds the registers' memory; tests use
    /// fewer to run several dispatches on small inputs).
    pub fn with_max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows.max(1);
        self
    }

    fn encode(&self, values: impl Iterator<Item = Fr>) -> Vec<u32> {
        values.flat_map(|x| self.m.encode(&x)).collect()
    }

    /// `columns` (each `n` values) in one device buffer, kept for later evaluations.
    pub fn upload(&self, columns: &[&[Fr]], n: usize) -> Result<ResidentColumns, GpuError> {
        let buffer = self.columns(columns, n, "quotient key columns")?;
        Ok(ResidentColumns {
            buffer: std::sync::Arc::new(buffer),
            count: columns.len(),
            n,
        })
    }

    fn columns(
        &self,
        columns: &[&[Fr]],
        n: usize,
        what: &'static str,
    ) -> Result<wgpu::Buffer, GpuError> {
        let max = self.ctx.max_binding();
        let bytes = columns.len() as u64 * n as u64 * ELEMENT_BYTES;
        if bytes > max {
            return Err(GpuError::TooLarge {
                what,
                needed: bytes,
                allowed: max,
            });
        }
        let mut words = self.encode(columns.iter().flat_map(|c| {
            assert_eq!(c.len(), n, "every column has n values");
            c.iter().copied()
        }));
        if words.is_empty() {
            // a binding is never empty
            words = vec![0; 8];
        }
        self.ctx
            .scoped(what, || storage_init(&self.ctx, what, &words))
    }

    /// `ops` at every row of `n`: column `a` of the stream is `key`'s column `a` while `a` is
    /// below their count, and `columns`' column `a − count` after.
    pub fn evaluate(
        &self,
        ops: &Opcodes,
        key: KeyColumns<'_>,
        columns: &[&[Fr]],
        n: usize,
    ) -> Result<Vec<Fr>, GpuError> {
        let mut sent = None;
        let (key_buffer, key_count) = self.key_buffer(key, n, &mut sent)?;
        let proof_columns = self.columns(columns, n, "quotient columns")?;
        let out = self.interpret(ops, key_buffer, key_count, &proof_columns, n)?;
        self.read(&out)
    }

    /// `ops` at every row of the coset part `g·⟨ω⟩` of `2^log_n` rows, from `coefficients`
    /// kept on the device ([`GpuQuotient::upload`]): each column transformed onto the part on
    /// the device (its values never cross), then interpreted after `key`'s columns, then, with
    /// `vanishing`, divided and brought back to coefficients there too. Only the part's result
    /// comes back.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_on_coset(
        &self,
        ops: &Opcodes,
        key: KeyColumns<'_>,
        coefficients: &ResidentColumns,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Option<Vanishing>,
    ) -> Result<Vec<Fr>, GpuError> {
        let out = self.on_coset(ops, key, coefficients, omega, g, log_n, vanishing)?;
        self.read(&out)
    }

    /// [`GpuQuotient::evaluate_on_coset`] with its result kept on the device, as a polynomial
    /// for [`crate::gpu::GpuPolys`]: nothing comes back.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_on_coset_kept(
        &self,
        ops: &Opcodes,
        key: KeyColumns<'_>,
        coefficients: &ResidentColumns,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Option<Vanishing>,
    ) -> Result<super::DevicePoly, GpuError> {
        let out = self.on_coset(ops, key, coefficients, omega, g, log_n, vanishing)?;
        Ok(super::DevicePoly::column(
            std::sync::Arc::new(out),
            0,
            1 << log_n,
        ))
    }

    /// The work of [`GpuQuotient::evaluate_on_coset`], its result in a device buffer.
    #[allow(clippy::too_many_arguments)]
    fn on_coset(
        &self,
        ops: &Opcodes,
        key: KeyColumns<'_>,
        coefficients: &ResidentColumns,
        omega: Fr,
        g: Fr,
        log_n: u32,
        vanishing: Option<Vanishing>,
    ) -> Result<wgpu::Buffer, GpuError> {
        let ntt = self.ntt()?;
        let n = 1usize << log_n;
        if coefficients.n != n {
            return Err(GpuError::Device {
                stage: "quotient",
                message: format!("kept coefficients of {} rows for {n} rows", coefficients.n),
            });
        }
        let mut sent = None;
        let (key_buffer, key_count) = self.key_buffer(key, n, &mut sent)?;
        let column = n as u64 * ELEMENT_BYTES;
        let count = coefficients.count as u64;
        let ctx = &self.ctx;
        let max = ctx.max_binding();
        if count * column > max {
            return Err(GpuError::TooLarge {
                what: "quotient columns",
                needed: count * column,
                allowed: max,
            });
        }
        let (values, scratch) = ctx.scoped("quotient coset columns", || {
            (
                storage(ctx, "quotient coset columns", count * column),
                storage(ctx, "quotient coset scratch", column),
            )
        })?;
        // one column at a time through the scratch buffer: copied from the coefficients,
        // transformed in place, copied into the part's columns
        let mut enc = encoder(ctx, "quotient coset transforms");
        let mut kept = Vec::new();
        for c in 0..count {
            enc.copy_buffer_to_buffer(&coefficients.buffer, c * column, &scratch, 0, column);
            kept.extend(ntt.record(&mut enc, &scratch, omega, log_n, Around::Coset(g))?);
            enc.copy_buffer_to_buffer(&scratch, 0, &values, c * column, column);
        }
        ctx.scoped("quotient coset transforms", || ctx.submit(enc.finish()))?;
        drop(kept);
        let out = self.interpret(ops, key_buffer, key_count, &values, n)?;
        if let Some(v) = vanishing {
            let mut enc = encoder(ctx, "quotient vanishing");
            let kept = ntt.record_vanishing(&mut enc, &out, v, log_n)?;
            ctx.scoped("quotient vanishing", || ctx.submit(enc.finish()))?;
            drop(kept);
        }
        Ok(out)
    }

    /// The inverse transform of `values` (`2^log_n` of them) made on the device and kept there
    /// as one column for [`GpuQuotient::gather`], so the coefficients need not go up again;
    /// with `back`, they also come back to the host.
    pub fn inverse_kept(
        &self,
        values: &[Fr],
        omega_inv: Fr,
        log_n: u32,
        back: bool,
    ) -> Result<(Option<Vec<Fr>>, ResidentColumns), GpuError> {
        self.ntt()?;
        let n = 1usize << log_n;
        assert_eq!(values.len(), n, "2^log_n values");
        let buffer = self.columns(&[values], n, "kept coefficients")?;
        self.inverse_in_place(buffer, back, omega_inv, log_n)
    }

    /// Column `index` of `kept` back on the host.
    pub fn read_column(&self, kept: &ResidentColumns, index: usize) -> Result<Vec<Fr>, GpuError> {
        if index >= kept.count {
            return Err(GpuError::Device {
                stage: "quotient",
                message: format!("column {index} of {} kept", kept.count),
            });
        }
        let column = kept.n as u64 * ELEMENT_BYTES;
        let at = index as u64 * column;
        let words = read_range(&self.ctx, &kept.buffer, at, column, "kept column readback")?;
        self.m.decode_all(&words, "kept coefficient")
    }

    /// Sends `values` (a column of a power-of-two length) to the device once, for both its
    /// commitment and its coefficients: [`Staged::scalars`] holds them as the MSM reads them
    /// ([`crate::gpu::Msm::msm_on_device`]), and [`GpuQuotient::inverse_staged`] transforms
    /// them there without sending them again.
    pub fn stage(&self, values: &[Fr]) -> Result<Staged, GpuError> {
        let ntt = self.ntt()?;
        let n = values.len();
        assert!(n.is_power_of_two(), "a column of 2^k values");
        let buffer = self.columns(&[values], n, "staged column")?;
        let scalars = ntt.canonical_copy(&buffer, 0, n)?;
        Ok(Staged {
            values: buffer,
            scalars,
            n,
        })
    }

    /// The inverse transform of a staged column ([`GpuQuotient::stage`]) on the device, kept
    /// there as [`GpuQuotient::inverse_kept`] keeps it; with `back`, the coefficients also come
    /// back (`2^log_n` of them, the staged column's length). Its scalars are freed first.
    pub fn inverse_staged(
        &self,
        staged: Staged,
        back: bool,
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<(Option<Vec<Fr>>, ResidentColumns), GpuError> {
        self.ntt()?;
        let n = 1usize << log_n;
        assert_eq!(staged.n, n, "a staged column of 2^log_n values");
        let Staged {
            values, scalars, ..
        } = staged;
        drop(scalars);
        self.inverse_in_place(values, back, omega_inv, log_n)
    }

    /// The inverse transform of the `2^log_n` values in `buffer` on the device, kept there as
    /// one column, and read back with `back`.
    fn inverse_in_place(
        &self,
        buffer: wgpu::Buffer,
        back: bool,
        omega_inv: Fr,
        log_n: u32,
    ) -> Result<(Option<Vec<Fr>>, ResidentColumns), GpuError> {
        let ntt = self.ntt()?;
        let n = 1usize << log_n;
        let ctx = &self.ctx;
        let mut enc = encoder(ctx, "kept inverse transform");
        let kept = ntt.record(&mut enc, &buffer, omega_inv, log_n, Around::Inverse)?;
        ctx.scoped("kept inverse transform", || ctx.submit(enc.finish()))?;
        drop(kept);
        let host = if back {
            Some(self.read(&buffer)?)
        } else {
            None
        };
        let kept = ResidentColumns {
            buffer: std::sync::Arc::new(buffer),
            count: 1,
            n,
        };
        Ok((host, kept))
    }

    /// `columns` (each `n` values) in one device buffer, as [`GpuQuotient::upload`] makes it,
    /// where a column kept on the device already (a one-column [`ResidentColumns`] of `n`
    /// rows, from [`GpuQuotient::inverse_kept`]) is copied there on the device instead of sent.
    pub fn gather(
        &self,
        columns: &[&[Fr]],
        kept: &[Option<&ResidentColumns>],
        n: usize,
    ) -> Result<ResidentColumns, GpuError> {
        let column = n as u64 * ELEMENT_BYTES;
        let bytes = columns.len() as u64 * column;
        let max = self.ctx.max_binding();
        if bytes > max {
            return Err(GpuError::TooLarge {
                what: "kept coefficients",
                needed: bytes,
                allowed: max,
            });
        }
        let ctx = &self.ctx;
        let buffer = ctx.scoped("kept coefficients", || {
            let buffer = storage(ctx, "kept coefficients", bytes);
            let mut enc = encoder(ctx, "kept coefficients");
            for (c, values) in columns.iter().enumerate() {
                let at = c as u64 * column;
                match kept.get(c).copied().flatten() {
                    Some(k) if k.n == n && k.count == 1 => {
                        enc.copy_buffer_to_buffer(&k.buffer, 0, &buffer, at, column);
                    }
                    _ => {
                        assert_eq!(values.len(), n, "every column has n values");
                        let words = self.encode(values.iter().copied());
                        ctx.queue()
                            .write_buffer(&buffer, at, bytemuck::cast_slice(&words));
                    }
                }
            }
            ctx.submit(enc.finish());
            buffer
        })?;
        Ok(ResidentColumns {
            buffer: std::sync::Arc::new(buffer),
            count: columns.len(),
            n,
        })
    }

    /// The transforms it runs on the device, or why it cannot.
    fn ntt(&self) -> Result<&GpuNtt, GpuError> {
        self.ntt.as_deref().ok_or_else(|| GpuError::Device {
            stage: "quotient",
            message: "no transforms on this interpreter (with_transforms)".into(),
        })
    }

    /// The key's columns as the interpreter binds them, and their count: the kept buffer, or
    /// `key`'s values sent now into `sent`.
    fn key_buffer<'k>(
        &self,
        key: KeyColumns<'k>,
        n: usize,
        sent: &'k mut Option<wgpu::Buffer>,
    ) -> Result<(&'k wgpu::Buffer, usize), GpuError> {
        match key {
            KeyColumns::Resident(r) if r.n != n => Err(GpuError::Device {
                stage: "quotient",
                message: format!("resident columns of {} rows for {n} rows", r.n),
            }),
            KeyColumns::Resident(r) => Ok((&r.buffer, r.count)),
            KeyColumns::Host(c) => {
                let buffer = sent.insert(self.columns(c, n, "quotient key columns")?);
                Ok((buffer, c.len()))
            }
        }
    }

    /// Rows per dispatch for `per_row` bytes of registers a row: as many as the registers'
    /// binding holds, at most `max_rows` (which bounds the registers' memory and each
    /// dispatch's time) and `n`, a multiple of 64 when above it; 0 if not one row fits.
    fn rows_per_dispatch(&self, per_row: u64, n: usize) -> usize {
        let fit = ((self.ctx.max_binding() / per_row) as usize)
            .min(n)
            .min(self.max_rows);
        if fit >= 64 {
            fit / 64 * 64
        } else {
            fit
        }
    }

    /// The values of `out` back on the host.
    fn read(&self, out: &wgpu::Buffer) -> Result<Vec<Fr>, GpuError> {
        let words = read_words(&self.ctx, out, "quotient readback")?;
        self.m.decode_all(&words, "quotient value")
    }

    /// `ops` at every row of `n`, over `key_count` key columns in `key_buffer` and the proof's
    /// columns in `proof_columns`, into a device buffer of `n` values.
    fn interpret(
        &self,
        ops: &Opcodes,
        key_buffer: &wgpu::Buffer,
        key_count: usize,
        proof_columns: &wgpu::Buffer,
        n: usize,
    ) -> Result<wgpu::Buffer, GpuError> {
        let max = self.ctx.max_binding();
        let per_row = u64::from(ops.registers) * ELEMENT_BYTES;
        let rows = self.rows_per_dispatch(per_row, n);
        if rows == 0 {
            return Err(GpuError::TooLarge {
                what: "quotient registers",
                needed: per_row * 64,
                allowed: max,
            });
        }
        let ctx = &self.ctx;
        let out = ctx.scoped("quotient", || {
            let program = storage_init(ctx, "quotient opcodes", &ops.words);
            let constants = storage_init(
                ctx,
                "quotient constants",
                &self.encode(ops.constants.iter().copied()),
            );
            let registers = storage(ctx, "quotient registers", per_row * rows as u64);
            let out = storage(ctx, "quotient values", n as u64 * ELEMENT_BYTES);
            let mut enc = encoder(ctx, "quotient");
            let ops_len = (ops.words.len() / 4) as u32;
            let params: Vec<wgpu::Buffer> = (0..n)
                .step_by(rows)
                .map(|start| {
                    let these = rows.min(n - start) as u32;
                    let key = key_count as u32;
                    uniform(
                        ctx,
                        "quotient params",
                        &[n as u32, these, start as u32, ops_len, key, 0, 0, 0],
                    )
                })
                .collect();
            for (p, start) in params.iter().zip((0..n).step_by(rows)) {
                let these = rows.min(n - start) as u64;
                let b = [
                    (0, &program),
                    (1, &constants),
                    (2, proof_columns),
                    (3, &registers),
                    (4, &out),
                    (5, p),
                    (6, key_buffer),
                ];
                self.pipelines
                    .dispatch(ctx, &mut enc, "quotient_interpret", &b, these, 64);
            }
            ctx.submit(enc.finish());
            out
        })?;
        Ok(out)
    }
}
