//! Diagnostic kernels: the shaders' field and curve arithmetic run on given inputs, so the tests
//! can compare every operation with halo2curves, apart from the MSM that composes them.

use halo2_proofs::halo2curves::{
    bn256::{Fq, Fr, G1Affine, G1},
    ff::PrimeField,
};
use keel_shaders::{Field as ShaderField, Kernel, Limbs};

use super::{
    convert::Montgomery,
    device::GpuContext,
    dispatch::{encoder, read_words, storage, storage_init, Pipelines},
    error::GpuError,
};

/// `[a * b, a + b, a - b, -a]` for each pair, computed by the Fq kernel.
pub fn fq_ops(
    ctx: &GpuContext,
    limbs: Limbs,
    pairs: &[(Fq, Fq)],
) -> Result<Vec<[Fq; 4]>, GpuError> {
    field_ops(ctx, limbs, ShaderField::Fq, pairs)
}

/// `[a * b, a + b, a - b, -a]` for each pair, computed by the Fr kernel.
pub fn fr_ops(
    ctx: &GpuContext,
    limbs: Limbs,
    pairs: &[(Fr, Fr)],
) -> Result<Vec<[Fr; 4]>, GpuError> {
    field_ops(ctx, limbs, ShaderField::Fr, pairs)
}

fn field_ops<F: PrimeField<Repr = [u8; 32]>>(
    ctx: &GpuContext,
    limbs: Limbs,
    field: ShaderField,
    pairs: &[(F, F)],
) -> Result<Vec<[F; 4]>, GpuError> {
    let kernel = Kernel::FieldOps(field);
    let pipelines = Pipelines::build(ctx, &[kernel], limbs)?;
    let m = Montgomery::<F>::new();
    let input: Vec<u32> = pairs
        .iter()
        .flat_map(|(a, b)| [m.encode(a), m.encode(b)])
        .flatten()
        .collect();
    let entry = kernel.entry_points()[0];
    let output = run_kernel(ctx, &pipelines, entry, &input, pairs.len() as u64, 32)?;
    output
        .chunks_exact(32)
        .enumerate()
        .map(|(i, chunk)| {
            let mut out = [F::ZERO; 4];
            for (j, o) in out.iter_mut().enumerate() {
                let words = chunk[8 * j..8 * j + 8].try_into().expect("8 words");
                *o = m.decode(&words).ok_or(GpuError::BadResult {
                    what: "field element",
                    at: i,
                })?;
            }
            Ok(out)
        })
        .collect()
}

/// For each `(p, q)`: `[p + q, p + q]`, computed by the G1 kernels with mixed addition (`p` in
/// XYZZ scaled by `z`, `q` affine) and full addition (`q` scaled by another `z`). The scalings
/// come from `zs`, two per case (`ZZ = z², ZZZ = z³`), so equal points reach the kernels in
/// different representations.
pub fn g1_ops(
    ctx: &GpuContext,
    limbs: Limbs,
    cases: &[(G1Affine, G1Affine)],
    zs: &[(Fq, Fq)],
) -> Result<Vec<[G1; 2]>, GpuError> {
    assert_eq!(cases.len(), zs.len(), "one pair of scalings per case");
    let pipelines = Pipelines::build(ctx, &[Kernel::G1Ops], limbs)?;
    let m = Montgomery::<Fq>::new();
    let mut input = vec![0u32; 88 * cases.len()];
    for ((rec, (p, q)), (zp, zq)) in input.chunks_exact_mut(88).zip(cases).zip(zs) {
        m.xyzz_words(p, zp, &mut rec[..32]);
        m.affine_words(q, &mut rec[32..48]);
        m.xyzz_words(q, zq, &mut rec[48..80]);
    }
    let mut out = vec![[G1::default(); 2]; cases.len()];
    for (j, entry) in Kernel::G1Ops.entry_points().iter().enumerate() {
        let words = run_kernel(ctx, &pipelines, entry, &input, cases.len() as u64, 32)?;
        for (i, chunk) in words.chunks_exact(32).enumerate() {
            out[i][j] = m.xyzz_point(chunk).ok_or(GpuError::BadResult {
                what: "point",
                at: i,
            })?;
        }
    }
    Ok(out)
}

fn run_kernel(
    ctx: &GpuContext,
    pipelines: &Pipelines,
    entry: &str,
    input: &[u32],
    records: u64,
    words_per_record: u64,
) -> Result<Vec<u32>, GpuError> {
    let output_words = records * words_per_record;
    let output = ctx.scoped("diagnostic kernel", || {
        let input = storage_init(ctx, "diag input", input);
        let output = storage(ctx, "diag output", output_words * 4);
        let mut enc = encoder(ctx, entry);
        pipelines.dispatch(
            ctx,
            &mut enc,
            entry,
            &[(0, &input), (1, &output)],
            records,
            64,
        );
        ctx.submit(enc.finish());
        output
    })?;
    let words = read_words(ctx, &output, "diagnostic readback")?;
    Ok(words[..output_words as usize].to_vec())
}
