//! The quotient's expressions on a wgpu device: one kernel (`shaders/quotient/interpret.wgsl`)
//! interprets a circuit's compiled opcode stream ([`crate::plonk::Opcodes`]) row by row, so any
//! circuit runs with no kernel written for its gates.
//!
//! ```text
//!  columns (fixed ‖ advice ‖ instance, n values each) ──up──▶ one binding
//!  opcodes, constants ──up──▶            registers: rows × registers, reused per dispatch
//!  dispatch per run of rows (as many as the registers' binding holds) ─▶ out (n values) ──back──▶
//! ```

use halo2_proofs::halo2curves::bn256::Fr;
use keel_shaders::{Kernel, Limbs};

use super::{
    convert::Montgomery,
    device::GpuContext,
    dispatch::{encoder, read_words, storage, storage_init, uniform, Pipelines},
    error::GpuError,
};
use crate::plonk::Opcodes;

/// Bytes of one field element on the device.
const ELEMENT_BYTES: u64 = 32;
/// Rows one dispatch evaluates at most.
const MAX_ROWS: usize = 1 << 15;

/// The opcode interpreter on one device.
pub struct GpuQuotient {
    ctx: std::sync::Arc<GpuContext>,
    limbs: Limbs,
    pipelines: Pipelines,
    m: Montgomery<Fr>,
    max_rows: usize,
}

impl std::fmt::Debug for GpuQuotient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuQuotient")
            .field("device", &self.ctx.describe())
            .field("limbs", &self.limbs)
            .finish()
    }
}

impl GpuQuotient {
    /// The interpreter on `ctx` with `limbs`.
    pub fn new(ctx: std::sync::Arc<GpuContext>, limbs: Limbs) -> Result<Self, GpuError> {
        if limbs.needs_int64() && !ctx.supports_int64() {
            return Err(GpuError::NoInt64 {
                adapter: ctx.info().name.clone(),
            });
        }
        let pipelines = Pipelines::build(&ctx, &[Kernel::Quotient], limbs)?;
        Ok(Self {
            ctx,
            limbs,
            pipelines,
            m: Montgomery::new(),
            max_rows: MAX_ROWS,
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

    /// `ops` at every row of `columns` (each `n` values: the fixed, then the advice, then the
    /// instance columns the stream was compiled for).
    pub fn evaluate(
        &self,
        ops: &Opcodes,
        columns: &[&[Fr]],
        n: usize,
    ) -> Result<Vec<Fr>, GpuError> {
        let max = self.ctx.max_binding();
        let column_bytes = columns.len() as u64 * n as u64 * ELEMENT_BYTES;
        if column_bytes > max {
            return Err(GpuError::TooLarge {
                what: "quotient columns",
                needed: column_bytes,
                allowed: max,
            });
        }
        // rows per dispatch: as many as the registers' binding holds, at most MAX_ROWS (which
        // bounds the registers' memory and each dispatch's time), a multiple of 64 when above
        let per_row = u64::from(ops.registers) * ELEMENT_BYTES;
        let fit = ((max / per_row) as usize).min(n).min(self.max_rows);
        let rows = if fit >= 64 { fit / 64 * 64 } else { fit };
        if rows == 0 {
            return Err(GpuError::TooLarge {
                what: "quotient registers",
                needed: per_row * 64,
                allowed: max,
            });
        }
        let ctx = &self.ctx;
        let words = self.encode(columns.iter().flat_map(|c| {
            assert_eq!(c.len(), n, "every column has n values");
            c.iter().copied()
        }));
        let out = ctx.scoped("quotient", || {
            let program = storage_init(ctx, "quotient opcodes", &ops.words);
            let constants = storage_init(
                ctx,
                "quotient constants",
                &self.encode(ops.constants.iter().copied()),
            );
            let columns = storage_init(ctx, "quotient columns", &words);
            let registers = storage(ctx, "quotient registers", per_row * rows as u64);
            let out = storage(ctx, "quotient values", n as u64 * ELEMENT_BYTES);
            let mut enc = encoder(ctx, "quotient");
            let ops_len = (ops.words.len() / 4) as u32;
            let params: Vec<wgpu::Buffer> = (0..n)
                .step_by(rows)
                .map(|start| {
                    let these = rows.min(n - start) as u32;
                    uniform(
                        ctx,
                        "quotient params",
                        &[n as u32, these, start as u32, ops_len],
                    )
                })
                .collect();
            for (p, start) in params.iter().zip((0..n).step_by(rows)) {
                let these = rows.min(n - start) as u64;
                let b = [
                    (0, &program),
                    (1, &constants),
                    (2, &columns),
                    (3, &registers),
                    (4, &out),
                    (5, p),
                ];
                self.pipelines
                    .dispatch(ctx, &mut enc, "quotient_interpret", &b, these, 64);
            }
            ctx.queue().submit([enc.finish()]);
            out
        })?;
        let words = read_words(ctx, &out, "quotient readback")?;
        words
            .chunks_exact(8)
            .enumerate()
            .map(|(i, w)| {
                let w: [u32; 8] = w.try_into().expect("8 words");
                self.m.decode(&w).ok_or(GpuError::BadResult {
                    what: "quotient value",
                    at: i,
                })
            })
            .collect()
    }
}
