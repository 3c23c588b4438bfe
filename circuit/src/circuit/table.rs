//! The lookup table: range limbs and the fixed-base windows of Grumpkin's generator.
//!
//! ```text
//!  tag 0              (0, 0, 0, 0)                   what an inactive row looks up
//!  tag s (1..=8)      (s, v, 0, 0)    v < 2^s        a range limb of s bits
//!  tag 16 + w         (16 + w, d, x, y)  d < 16      (x, y) = T_w(d), window w of [s]G
//! ```
//!
//! The generator's multiples are split into 64 windows of 4 bits, `s = Σ d_w·16^w`. The point of
//! window `w < 63` is `T_w(d) = [(d + 2)·16^w]G`: never the identity, and the offsets keep every
//! incomplete addition of the running sum away from its exceptional cases (see `ecc.rs`). The
//! last window cancels the offsets, `T_63(d) = [d·16^63 − Σ_{w<63} 2·16^w]G`, so the windows sum
//! to `[s]G`; it is added with a complete addition.

use std::sync::LazyLock;

use halo2_base::halo2_proofs::halo2curves::{
    ff::{Field, PrimeField},
    group::Curve,
    grumpkin::{Fr as Scalar, G1Affine, G1},
    CurveAffine,
};
use keel_state::Fr;

/// Fixed-base windows.
pub(crate) const WINDOWS: usize = 64;
/// The tag of window 0.
pub(crate) const FB_TAG: u64 = 16;
/// The widest range limb.
pub(crate) const LIMB_BITS: u32 = 8;

fn affine(p: G1) -> (Fr, Fr) {
    let a = p.to_affine();
    let c = a
        .coordinates()
        .expect("a table point is never the identity (checked by a test)");
    (*c.x(), *c.y())
}

/// `16^w` as a Grumpkin scalar.
fn window_base(w: usize) -> Scalar {
    Scalar::from(16).pow_vartime([w as u64])
}

/// `Σ_{w<63} 2·16^w`: the offsets the last window cancels.
pub(crate) fn offset() -> Scalar {
    (0..WINDOWS - 1).fold(Scalar::ZERO, |acc, w| acc + window_base(w).double())
}

/// The scalar whose multiple of `G` is `T_w(d)`.
pub(crate) fn window_scalar(w: usize, d: u64) -> Scalar {
    if w + 1 < WINDOWS {
        Scalar::from(d + 2) * window_base(w)
    } else {
        Scalar::from(d) * window_base(w) - offset()
    }
}

/// `T_w(d)` for every window and digit.
pub(crate) static POINTS: LazyLock<Vec<[(Fr, Fr); 16]>> = LazyLock::new(|| {
    let g = G1::generator();
    (0..WINDOWS)
        .map(|w| std::array::from_fn(|d| affine(g * window_scalar(w, d as u64))))
        .collect()
});

/// Grumpkin's generator.
pub(crate) fn generator() -> (Fr, Fr) {
    let g = G1Affine::generator();
    let c = g.coordinates().expect("the generator is not the identity");
    (*c.x(), *c.y())
}

/// The table's rows `(tag, value, x, y)`.
pub(crate) fn rows() -> Vec<[Fr; 4]> {
    let mut out = vec![[Fr::ZERO; 4]];
    for s in 1..=LIMB_BITS {
        for v in 0..1u64 << s {
            out.push([Fr::from(u64::from(s)), Fr::from(v), Fr::ZERO, Fr::ZERO]);
        }
    }
    for (w, points) in POINTS.iter().enumerate() {
        for (d, (x, y)) in points.iter().enumerate() {
            out.push([Fr::from(FB_TAG + w as u64), Fr::from(d as u64), *x, *y]);
        }
    }
    out
}

/// The integer `s` as 64 little-endian 4-bit digits.
pub(crate) fn digits(s_lo: Fr, s_hi: Fr) -> [u64; WINDOWS] {
    let mut out = [0u64; WINDOWS];
    for (half, v) in [s_lo, s_hi].iter().enumerate() {
        let bytes = v.to_repr();
        for i in 0..32 {
            let byte = bytes.as_ref()[i / 2];
            out[half * 32 + i] = u64::from(if i % 2 == 0 { byte & 0xf } else { byte >> 4 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_sum_to_the_scalar_and_no_point_is_the_identity() {
        let s = Scalar::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788) * Scalar::from(977);
        let bytes = s.to_repr();
        let (lo, hi) = keel_state::field::split_u256(&bytes);
        let d = digits(lo, hi);
        let sum = (0..WINDOWS).fold(Scalar::ZERO, |acc, w| acc + window_scalar(w, d[w]));
        assert_eq!(sum, s);
        for w in 0..WINDOWS {
            for d in 0..16 {
                assert!(!bool::from(window_scalar(w, d).is_zero()), "T_{w}({d})");
            }
        }
        assert_eq!(POINTS.len(), WINDOWS);
    }
}
