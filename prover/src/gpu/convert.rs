//! Between halo2curves values and the shaders' storage layout: eight little-endian 32-bit words
//! per field element, Montgomery form (`x·2^256 mod p`) for curve coordinates, canonical form
//! for scalars.

use halo2_proofs::{
    arithmetic::CurveAffine,
    halo2curves::{
        bn256::{Fq, Fr, G1Affine, G1},
        ff::{Field, PrimeField},
        group::{prime::PrimeCurveAffine, Group},
        Coordinates,
    },
};

/// A field element's storage words.
pub(crate) type Words = [u32; 8];

/// `R = 2^256 mod p` of a field and its inverse, for moving in and out of the shaders'
/// Montgomery form (`Fq` for curve points, `Fr` for the field kernels).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Montgomery<F> {
    r: F,
    r_inv: F,
}

impl<F: PrimeField<Repr = [u8; 32]>> Montgomery<F> {
    pub(crate) fn new() -> Self {
        let r = F::from(2).pow_vartime([256]);
        let r_inv = r.invert().expect("2^256 is invertible mod an odd prime");
        Montgomery { r, r_inv }
    }

    /// The storage words of `x` in Montgomery form.
    pub(crate) fn encode(&self, x: &F) -> Words {
        bytes_to_words((*x * self.r).to_repr())
    }

    /// The element whose Montgomery form is `w`; `None` if `w` is not below the modulus.
    pub(crate) fn decode(&self, w: &Words) -> Option<F> {
        Option::from(F::from_repr(words_to_bytes(w))).map(|m: F| m * self.r_inv)
    }
}

impl Montgomery<Fr> {
    /// The elements whose Montgomery forms `words` hold (eight words each); a value that is
    /// not below the modulus is a kernel bug, reported as which `what` it was.
    pub(crate) fn decode_all(
        &self,
        words: &[u32],
        what: &'static str,
    ) -> Result<Vec<Fr>, super::GpuError> {
        words
            .chunks_exact(8)
            .enumerate()
            .map(|(i, w)| {
                let w: Words = w.try_into().expect("8 words");
                self.decode(&w)
                    .ok_or(super::GpuError::BadResult { what, at: i })
            })
            .collect()
    }
}

impl Montgomery<Fq> {
    /// An affine point's 16 words (x then y); the identity is all zeros, as in halo2curves.
    pub(crate) fn affine_words(&self, p: &G1Affine, out: &mut [u32]) {
        let coords = coordinates(p);
        match coords {
            Some(c) => {
                out[..8].copy_from_slice(&self.encode(c.x()));
                out[8..16].copy_from_slice(&self.encode(c.y()));
            }
            None => out[..16].fill(0),
        }
    }

    /// An XYZZ record (32 words) of `p` scaled by `z`: `(x·z², y·z³, z², z³)`; the identity is
    /// all zeros.
    pub(crate) fn xyzz_words(&self, p: &G1Affine, z: &Fq, out: &mut [u32]) {
        let coords = coordinates(p);
        match coords {
            Some(c) => {
                let zz = z.square();
                let zzz = zz * z;
                out[..8].copy_from_slice(&self.encode(&(*c.x() * zz)));
                out[8..16].copy_from_slice(&self.encode(&(*c.y() * zzz)));
                out[16..24].copy_from_slice(&self.encode(&zz));
                out[24..32].copy_from_slice(&self.encode(&zzz));
            }
            None => out[..32].fill(0),
        }
    }

    /// The point an XYZZ record (x, y, zz, zzz: 32 words) stands for; `None` if a coordinate is
    /// not a field element or the point is not on the curve.
    pub(crate) fn xyzz_point(&self, w: &[u32]) -> Option<G1> {
        let coord = |i: usize| -> Option<Fq> {
            let words: Words = w[8 * i..8 * i + 8].try_into().expect("8 words");
            self.decode(&words)
        };
        let (x, y, zz, zzz) = (coord(0)?, coord(1)?, coord(2)?, coord(3)?);
        if bool::from(zz.is_zero()) {
            return Some(G1::identity());
        }
        // A consistent record has ZZ^3 = ZZZ^2; check it so a kernel bug cannot pass silently.
        if zz.square() * zz != zzz.square() {
            return None;
        }
        let zz_inv = zz.invert().into_option()?;
        let zzz_inv = zzz.invert().into_option()?;
        let affine: Option<G1Affine> = G1Affine::from_xy(x * zz_inv, y * zzz_inv).into();
        affine.map(|a| a.to_curve())
    }
}

/// A point's coordinates, `None` for the identity. (halo2curves' `coordinates()` returns
/// `(0, 0)` for the identity rather than nothing, so the identity is checked here.)
fn coordinates(p: &G1Affine) -> Option<Coordinates<G1Affine>> {
    if bool::from(p.is_identity()) {
        return None;
    }
    p.coordinates().into()
}

/// A scalar's canonical storage words.
pub(crate) fn scalar_words(s: &Fr) -> Words {
    bytes_to_words(s.to_repr())
}

pub(crate) fn bytes_to_words(b: [u8; 32]) -> Words {
    let mut w = [0u32; 8];
    for (i, chunk) in b.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
    }
    w
}

pub(crate) fn words_to_bytes(w: &Words) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, word) in w.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::group::Curve;
    use rand_core::OsRng;

    #[test]
    fn montgomery_words_round_trip() {
        let m = Montgomery::<Fq>::new();
        for x in [Fq::ZERO, Fq::ONE, -Fq::ONE, Fq::random(OsRng)] {
            assert_eq!(m.decode(&m.encode(&x)), Some(x));
        }
        // The Montgomery form of one is R mod q, which is not one.
        assert_ne!(m.encode(&Fq::ONE), [1, 0, 0, 0, 0, 0, 0, 0]);
        // Words at or above q are refused, not reduced.
        assert_eq!(m.decode(&[u32::MAX; 8]), None);
    }

    #[test]
    fn xyzz_of_an_affine_point_is_that_point() {
        let m = Montgomery::<Fq>::new();
        let p = G1::random(OsRng).to_affine();
        let mut w = [0u32; 32];
        m.affine_words(&p, &mut w[..16]);
        w[16..24].copy_from_slice(&m.encode(&Fq::ONE));
        w[24..32].copy_from_slice(&m.encode(&Fq::ONE));
        assert_eq!(m.xyzz_point(&w), Some(p.to_curve()));
        // An inconsistent ZZ/ZZZ pair is refused.
        w[24..32].copy_from_slice(&m.encode(&Fq::from(2)));
        assert_eq!(m.xyzz_point(&w), None);
        // ZZ = 0 is the identity.
        assert_eq!(m.xyzz_point(&[0u32; 32]), Some(G1::identity()));
    }
}
