//! The field Keel's rules live in, and its canonical byte encoding.
//!
//! `Fr` is the BN254 scalar field: the circuit's native field, the Poseidon field, and the base
//! field of Grumpkin (so Schnorr-over-Grumpkin verification is native in the circuit).

pub use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::PrimeField;

/// Length of the canonical encoding of an [`Fr`] element.
pub const FR_BYTES: usize = 32;

/// The canonical encoding of `x`: 32 bytes, little-endian, fully reduced.
pub fn fr_to_bytes(x: &Fr) -> [u8; FR_BYTES] {
    x.to_repr()
}

/// `x` as people read it: `0x` and the integer in big-endian hex (as the CLI and the APIs print
/// roots and hashes).
pub fn fr_to_hex(x: &Fr) -> String {
    let mut b = fr_to_bytes(x);
    b.reverse();
    format!("0x{}", hex_digits(&b))
}

fn hex_digits(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Decodes a canonical encoding; `None` when the integer is not below the modulus.
pub fn fr_from_bytes(bytes: &[u8; FR_BYTES]) -> Option<Fr> {
    Option::from(Fr::from_repr(*bytes))
}

/// Maps a 20-byte L1 address into the field (it always fits: 160 < 254 bits).
pub fn fr_from_address(addr: &[u8; 20]) -> Fr {
    let mut repr = [0u8; FR_BYTES];
    // little-endian field repr; the address is read big-endian as an integer
    for (i, b) in addr.iter().rev().enumerate() {
        repr[i] = *b;
    }
    Fr::from_repr(repr).expect("a 160-bit integer is below the modulus")
}

/// Splits a 256-bit little-endian integer into its low and high 128-bit halves, as field
/// elements. Used to commit to Grumpkin scalars (which may exceed `Fr`'s modulus).
pub fn split_u256(bytes: &[u8; 32]) -> (Fr, Fr) {
    let limb = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    (
        Fr::from_raw([limb(0), limb(1), 0, 0]),
        Fr::from_raw([limb(2), limb(3), 0, 0]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::ff::Field;

    #[test]
    fn fr_round_trip_and_rejects_modulus() {
        for x in [Fr::ZERO, Fr::ONE, -Fr::ONE, Fr::from(u64::MAX)] {
            assert_eq!(fr_from_bytes(&fr_to_bytes(&x)), Some(x));
        }
        // the modulus itself, little-endian, is not canonical
        let modulus = fr_to_bytes(&-Fr::ONE);
        let mut m = modulus;
        m[0] += 1; // r - 1 ends in ...00 + 1 = r (r is odd, r-1 even: no carry)
        assert_eq!(fr_from_bytes(&m), None);
        assert_eq!(fr_from_bytes(&[0xff; 32]), None);
    }

    #[test]
    fn address_maps_big_endian() {
        let mut a = [0u8; 20];
        a[19] = 7;
        assert_eq!(fr_from_address(&a), Fr::from(7));
        a[18] = 1;
        assert_eq!(fr_from_address(&a), Fr::from(256 + 7));
    }

    #[test]
    fn split_u256_halves() {
        let mut b = [0u8; 32];
        b[0] = 5;
        b[16] = 9;
        assert_eq!(split_u256(&b), (Fr::from(5), Fr::from(9)));
    }
}
