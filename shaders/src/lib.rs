//! # keel-shaders
//!
//! The WGSL sources of Keel's GPU kernels and their composition into shader modules. Nothing
//! else: the Rust side only loads (`include_str!`) and composes; running the kernels belongs to
//! `keel-prover`'s GPU runtime.
//!
//! ```text
//!  field/limbs32.wgsl ─┐ (one of the two limb widths, chosen at run time)
//!  field/limbs16.wgsl ─┤
//!  field/montgomery.wgsl ── instantiated per field (fq, fr) with generated constants
//!  curve/g1.wgsl ───────── BN254 G1 in XYZZ coordinates, over fq
//!  msm/*.wgsl ──────────── Pippenger stages: decompose → scan → scatter → accumulate → reduce
//!  ntt/radix2.wgsl ─────── the NTT over fr: bit reversal, one butterfly stage per dispatch,
//!                          multiplications by factors (cosets) and by a scalar (the inverse)
//!  quotient/interpret.wgsl  a circuit's expressions as an opcode stream, one row per invocation
//!  poly/horner.wgsl ────── polynomials in coefficients: linear combinations, evaluation at a
//!                          point and division by X − b as one Horner scan split into runs
//! ```
//!
//! ## Limb widths
//!
//! A 256-bit element is held either as eight 32-bit limbs with 64-bit products ([`Limbs::U32`],
//! which needs wgpu's `SHADER_INT64`) or as sixteen 16-bit limbs in `u32`s with 32-bit products
//! ([`Limbs::U16`], core WGSL, so every adapter and browser runs it). Both use the same storage
//! layout — eight little-endian 32-bit words per element, in Montgomery form with `R = 2^256` —
//! so buffers do not depend on the choice. The field arithmetic is written once
//! (`field/montgomery.wgsl`); only the limb primitives (`mac`, `adc`) differ.
//!
//! ## Fields
//!
//! The arithmetic is generic over the prime; a field is its modulus ([`Field::modulus`]), from
//! which [`compose`] generates the constants (`P`, `-P^-1 mod 2^limb`, `R mod P`) in
//! the chosen limbs. So there is one WGSL file for Montgomery arithmetic rather than one per
//! field: the two would differ only in three constants. Storage access (`field/load.wgsl`,
//! `field/store.wgsl`, `curve/load.wgsl`, `curve/store.wgsl`) is also written once and
//! instantiated per buffer, so the storage layout lives in one place.

use std::fmt;

const LIMBS32: &str = include_str!("../field/limbs32.wgsl");
const LIMBS16: &str = include_str!("../field/limbs16.wgsl");
const MONTGOMERY: &str = include_str!("../field/montgomery.wgsl");
const FIELD_OPS: &str = include_str!("../field/ops_kernel.wgsl");
const G1: &str = include_str!("../curve/g1.wgsl");
const FIELD_LOAD: &str = include_str!("../field/load.wgsl");
const FIELD_STORE: &str = include_str!("../field/store.wgsl");
const G1_OPS: &str = include_str!("../curve/ops_kernel.wgsl");
const G1_LOAD: &str = include_str!("../curve/load.wgsl");
const G1_STORE: &str = include_str!("../curve/store.wgsl");
const MSM_DECOMPOSE: &str = include_str!("../msm/decompose.wgsl");
const MSM_SCAN: &str = include_str!("../msm/scan.wgsl");
const MSM_SCATTER: &str = include_str!("../msm/scatter.wgsl");
const MSM_ACCUMULATE: &str = include_str!("../msm/accumulate.wgsl");
const MSM_REDUCE: &str = include_str!("../msm/reduce.wgsl");
const NTT_RADIX2: &str = include_str!("../ntt/radix2.wgsl");
const QUOTIENT_INTERPRET: &str = include_str!("../quotient/interpret.wgsl");
const POLY_HORNER: &str = include_str!("../poly/horner.wgsl");

/// How a 256-bit field element is split into limbs inside a shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limbs {
    /// Eight 32-bit limbs with 64-bit products: needs the adapter's `SHADER_INT64`.
    U32,
    /// Sixteen 16-bit limbs held in `u32`s with 32-bit products: runs everywhere.
    U16,
}

impl Limbs {
    /// Both widths, widest first.
    pub const ALL: [Limbs; 2] = [Limbs::U32, Limbs::U16];

    /// Bits per limb.
    pub const fn bits(self) -> u32 {
        match self {
            Limbs::U32 => 32,
            Limbs::U16 => 16,
        }
    }

    /// Limbs per element.
    pub const fn count(self) -> usize {
        (256 / self.bits()) as usize
    }

    /// Whether modules composed with these limbs use 64-bit integers (`SHADER_INT64`).
    pub const fn needs_int64(self) -> bool {
        matches!(self, Limbs::U32)
    }

    fn source(self) -> &'static str {
        match self {
            Limbs::U32 => LIMBS32,
            Limbs::U16 => LIMBS16,
        }
    }
}

impl fmt::Display for Limbs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limbs::U32 => f.write_str("32-bit limbs (int64)"),
            Limbs::U16 => f.write_str("16-bit limbs"),
        }
    }
}

/// A prime field of BN254 with shader arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The base field `Fq`: coordinates of G1 points.
    Fq,
    /// The scalar field `Fr`: the circuit field, MSM scalars and NTT values.
    Fr,
}

impl Field {
    /// Both fields.
    pub const ALL: [Field; 2] = [Field::Fq, Field::Fr];

    /// The modulus as eight little-endian 32-bit words.
    pub const fn modulus(self) -> [u32; 8] {
        match self {
            // 0x30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47
            Field::Fq => [
                0xd87c_fd47,
                0x3c20_8c16,
                0x6871_ca8d,
                0x9781_6a91,
                0x8181_585d,
                0xb850_45b6,
                0xe131_a029,
                0x3064_4e72,
            ],
            // 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001
            Field::Fr => [
                0xf000_0001,
                0x43e1_f593,
                0x79b9_7091,
                0x2833_e848,
                0x8181_585d,
                0xb850_45b6,
                0xe131_a029,
                0x3064_4e72,
            ],
        }
    }

    /// The prefix of this field's WGSL functions (`fq_mul`) and constants (`FQ_P`).
    pub const fn name(self) -> &'static str {
        match self {
            Field::Fq => "fq",
            Field::Fr => "fr",
        }
    }
}

/// A kernel: one shader module with its entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Signed-digit window decomposition of the scalars, with per-bucket counts.
    MsmDecompose,
    /// Exclusive prefix sum of the bucket counts (three entry points).
    MsmScan,
    /// The counting sort's scatter of scalar indices into buckets.
    MsmScatter,
    /// Per-bucket accumulation of the sorted bases.
    MsmAccumulate,
    /// Bucket reduction: per-segment running sums, then per-window sums (two passes).
    MsmReduce,
    /// Differential-test kernel for one field's arithmetic.
    FieldOps(Field),
    /// Differential-test kernels for G1 mixed and full addition (and doubling through them).
    G1Ops,
    /// The NTT over `Fr` (four entry points: bit reversal, a butterfly stage, multiplication by
    /// per-element factors, multiplication by one scalar).
    Ntt,
    /// The quotient's expressions: one kernel interpreting a circuit's compiled opcode stream.
    Quotient,
    /// Polynomials in coefficient form (four entry points: `c·src` added, and the Horner scan's
    /// runs, carries and division by `X − b`).
    Poly,
}

impl Kernel {
    /// Every kernel, for validation.
    pub const ALL: [Kernel; 11] = [
        Kernel::MsmDecompose,
        Kernel::MsmScan,
        Kernel::MsmScatter,
        Kernel::MsmAccumulate,
        Kernel::MsmReduce,
        Kernel::FieldOps(Field::Fq),
        Kernel::FieldOps(Field::Fr),
        Kernel::G1Ops,
        Kernel::Ntt,
        Kernel::Quotient,
        Kernel::Poly,
    ];

    /// The module's entry points.
    pub const fn entry_points(self) -> &'static [&'static str] {
        match self {
            Kernel::MsmDecompose => &["decompose"],
            Kernel::MsmScan => &["scan_blocks", "scan_block_sums", "scan_add"],
            Kernel::MsmScatter => &["scatter"],
            Kernel::MsmAccumulate => &["accumulate"],
            Kernel::MsmReduce => &["reduce"],
            Kernel::FieldOps(Field::Fq) => &["fq_ops"],
            Kernel::FieldOps(Field::Fr) => &["fr_ops"],
            Kernel::G1Ops => &["g1_add_affine", "g1_add"],
            Kernel::Ntt => &[
                "ntt_bitreverse",
                "ntt_butterfly",
                "ntt_mul_factors",
                "ntt_mul_scalar",
            ],
            Kernel::Quotient => &["quotient_interpret"],
            Kernel::Poly => &[
                "poly_axpy",
                "poly_horner_chunks",
                "poly_horner_carry",
                "poly_horner_divide",
            ],
        }
    }

    /// The field the kernel computes in (none for the integer-only stages), whether it uses
    /// G1, and the storage buffers holding its field elements and points: `compose` generates
    /// each buffer's load functions (and store functions, where it is writable) from one
    /// template, so the storage layout is written once.
    fn parts(self) -> (Option<Field>, bool, &'static [(&'static str, Access)]) {
        use Access::{Read, ReadWrite};
        match self {
            Kernel::MsmDecompose | Kernel::MsmScan | Kernel::MsmScatter => (None, false, &[]),
            Kernel::MsmAccumulate => (
                Some(Field::Fq),
                true,
                &[("bases", Read), ("buckets", ReadWrite)],
            ),
            Kernel::MsmReduce => (
                Some(Field::Fq),
                true,
                &[
                    ("buckets", Read),
                    ("segment_sums", ReadWrite),
                    ("window_sums", ReadWrite),
                ],
            ),
            Kernel::FieldOps(field) => (
                Some(field),
                false,
                &[("inputs", Read), ("outputs", ReadWrite)],
            ),
            Kernel::G1Ops => (
                Some(Field::Fq),
                true,
                &[("inputs", Read), ("outputs", ReadWrite)],
            ),
            Kernel::Ntt => (
                Some(Field::Fr),
                false,
                &[("values", ReadWrite), ("twiddles", Read), ("factors", Read)],
            ),
            Kernel::Poly => (
                Some(Field::Fr),
                false,
                &[
                    ("src", Read),
                    ("dst", ReadWrite),
                    ("factors", Read),
                    ("partials", ReadWrite),
                ],
            ),
            Kernel::Quotient => (
                Some(Field::Fr),
                false,
                &[
                    ("constants", Read),
                    ("columns", Read),
                    ("key_columns", Read),
                    ("registers", ReadWrite),
                    ("out", ReadWrite),
                ],
            ),
        }
    }

    /// The kernel's own source (its bindings and entry points).
    fn body(self) -> String {
        match self {
            Kernel::MsmDecompose => MSM_DECOMPOSE.to_owned(),
            Kernel::MsmScan => MSM_SCAN.to_owned(),
            Kernel::MsmScatter => MSM_SCATTER.to_owned(),
            Kernel::MsmAccumulate => MSM_ACCUMULATE.to_owned(),
            Kernel::MsmReduce => MSM_REDUCE.to_owned(),
            Kernel::FieldOps(field) => instantiate(FIELD_OPS, field),
            Kernel::G1Ops => G1_OPS.to_owned(),
            Kernel::Ntt => NTT_RADIX2.to_owned(),
            Kernel::Quotient => QUOTIENT_INTERPRET.to_owned(),
            Kernel::Poly => POLY_HORNER.to_owned(),
        }
    }

    /// A label for pipelines and errors.
    pub fn label(self) -> String {
        format!("keel::{self:?}")
    }
}

/// How a kernel may use one of its storage buffers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    ReadWrite,
}

/// The WGSL source of `kernel` with `limbs`: the limb primitives, the field, G1 and the buffers'
/// load/store functions it uses, then the kernel.
pub fn compose(kernel: Kernel, limbs: Limbs) -> String {
    let (field, curve, buffers) = kernel.parts();
    let mut out = String::new();
    if let Some(field) = field {
        out.push_str(limbs.source());
        out.push_str(&field_module(field, limbs));
        if curve {
            out.push_str(G1);
        }
        for &(buffer, access) in buffers {
            let mut templates = vec![FIELD_LOAD];
            if curve {
                templates.push(G1_LOAD);
            }
            if access == Access::ReadWrite {
                templates.push(FIELD_STORE);
                if curve {
                    templates.push(G1_STORE);
                }
            }
            for template in templates {
                out.push_str(&template.replace("BUF", buffer));
            }
        }
    }
    out.push_str(&kernel.body());
    out
}

/// One field's constants and Montgomery arithmetic in `limbs`.
fn field_module(field: Field, limbs: Limbs) -> String {
    let p = field.modulus();
    let upper = field.name().to_uppercase();
    let mut out = format!("\n// ---- {} ({}) ----\n", field.name(), limbs);
    let mut constant = |name: &str, words: [u32; 8]| {
        let values: Vec<String> = to_limbs(words, limbs)
            .iter()
            .map(|v| format!("{v:#x}u"))
            .collect();
        out.push_str(&format!(
            "const {upper}_{name} = array<u32, {}>({});\n",
            limbs.count(),
            values.join(", ")
        ));
    };
    constant("P", p);
    constant("ONE", pow2_mod(256, p));
    out.push_str(&format!(
        "const {upper}_INV: u32 = {:#x}u;\n",
        neg_inv_limb(p[0], limbs)
    ));
    out.push_str(&instantiate(MONTGOMERY, field));
    out
}

/// Replaces the `FIELD` placeholder of a template: constants `FIELD_X` become `FQ_X`, functions
/// `FIELD_x` become `fq_x`.
fn instantiate(template: &str, field: Field) -> String {
    let upper = field.name().to_uppercase();
    let mut s = template.to_owned();
    for constant in ["P", "INV", "ONE"] {
        // Constants are the only FIELD_ names followed by an upper-case letter.
        s = s.replace(&format!("FIELD_{constant}"), &format!("{upper}_{constant}"));
    }
    s.replace("FIELD_", &format!("{}_", field.name()))
}

/// Splits eight 32-bit words into the limbs of `limbs`, least significant first.
fn to_limbs(words: [u32; 8], limbs: Limbs) -> Vec<u32> {
    match limbs {
        Limbs::U32 => words.to_vec(),
        Limbs::U16 => words.iter().flat_map(|w| [w & 0xffff, w >> 16]).collect(),
    }
}

/// `-p^-1 mod 2^bits` for the lowest word `p0` of an odd modulus.
fn neg_inv_limb(p0: u32, limbs: Limbs) -> u32 {
    // Newton's iteration doubles the correct low bits each step: 1 → 2 → … → 32.
    let mut inv: u32 = 1;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(p0.wrapping_mul(inv)));
    }
    let neg = inv.wrapping_neg();
    match limbs {
        Limbs::U32 => neg,
        Limbs::U16 => neg & 0xffff,
    }
}

/// `2^k mod p` as eight words, by doubling (k is at most a few hundred).
fn pow2_mod(k: u32, p: [u32; 8]) -> [u32; 8] {
    let mut x = [0u32; 8];
    x[0] = 1;
    for _ in 0..k {
        // x < p < 2^255, so 2x fits in 256 bits.
        let mut carry = 0u32;
        for w in x.iter_mut() {
            let t = (u64::from(*w) << 1) | u64::from(carry);
            *w = t as u32;
            carry = (t >> 32) as u32;
        }
        if !less_than(&x, &p) {
            let mut borrow = 0u64;
            for (w, &q) in x.iter_mut().zip(p.iter()) {
                let t = u64::from(*w)
                    .wrapping_sub(u64::from(q))
                    .wrapping_sub(borrow);
                *w = t as u32;
                borrow = (t >> 63) & 1;
            }
        }
    }
    x
}

fn less_than(a: &[u32; 8], b: &[u32; 8]) -> bool {
    for i in (0..8).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_inv_is_the_montgomery_constant() {
        for field in Field::ALL {
            let p0 = field.modulus()[0];
            for limbs in Limbs::ALL {
                let inv = neg_inv_limb(p0, limbs);
                let mask = if limbs.bits() == 32 { u32::MAX } else { 0xffff };
                assert_eq!(p0.wrapping_mul(inv) & mask, mask, "{field:?} {limbs:?}");
            }
        }
    }

    #[test]
    fn powers_of_two_reduce() {
        let p = Field::Fq.modulus();
        assert_eq!(pow2_mod(3, p), [8, 0, 0, 0, 0, 0, 0, 0]);
        // 2^256 = 5p + (2^256 mod p) for BN254's Fq: check the sum word by word.
        let one = pow2_mod(256, p);
        assert!(less_than(&one, &p));
        let mut sum = [0u64; 9];
        for i in 0..8 {
            sum[i] += u64::from(p[i]) * 5 + u64::from(one[i]);
            sum[i + 1] += sum[i] >> 32;
            sum[i] &= 0xffff_ffff;
        }
        assert_eq!(sum, [0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(to_limbs(one, Limbs::U16).len(), 16);
        assert!(less_than(&pow2_mod(512, p), &p));
    }

    #[test]
    fn instantiation_leaves_no_placeholder() {
        for kernel in Kernel::ALL {
            for limbs in Limbs::ALL {
                let src = compose(kernel, limbs);
                assert!(!src.contains("FIELD_"), "{kernel:?} {limbs:?}");
                assert!(!src.contains("BUF"), "{kernel:?} {limbs:?}");
                for entry in kernel.entry_points() {
                    assert!(src.contains(&format!("fn {entry}(")), "{kernel:?} {entry}");
                }
            }
        }
    }
}
