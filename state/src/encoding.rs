//! The canonical binary encoding: a cursor that never panics, typed errors, and the
//! [`Encode`]/[`Decode`] traits every wire type implements.
//!
//! Integers are big-endian; field elements are 32-byte little-endian and must be canonical; a
//! decode must consume its whole input. Decoders never allocate from an untrusted length before
//! checking it against the bytes that remain.

use crate::{
    field::{fr_from_bytes, Fr, FR_BYTES},
    signature::SignatureError,
};

/// Why an encoding was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended `needed` bytes short of a field that starts at byte `at`.
    #[error("input ends early: {needed} more bytes needed at offset {at}")]
    UnexpectedEnd {
        /// Offset of the field being read.
        at: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// A complete value was read but bytes remain.
    #[error("{count} trailing bytes after a complete value")]
    TrailingBytes {
        /// Number of unread bytes.
        count: usize,
    },
    /// An unknown format version.
    #[error("unknown encoding version {0}")]
    UnknownVersion(u8),
    /// An unknown operation tag.
    #[error("unknown operation tag {tag:#04x} at offset {at}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Its offset.
        at: usize,
    },
    /// A field element encoding that is not below the modulus.
    #[error("non-canonical field element at offset {at}")]
    NonCanonicalField {
        /// Its offset.
        at: usize,
    },
    /// A value of another scheme (the council's secp256k1 key or signature) that does not parse.
    #[error("malformed {what} at offset {at}")]
    Invalid {
        /// What it should have been.
        what: &'static str,
        /// Its offset.
        at: usize,
    },
    /// A public key or signature that is malformed.
    #[error("bad key or signature encoding at offset {at}: {source}")]
    BadPoint {
        /// Its offset.
        at: usize,
        /// What is wrong with it.
        source: SignatureError,
    },
    /// A length prefix above what the format allows.
    #[error("length {count} exceeds the limit of {max}")]
    TooLong {
        /// The announced length.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A batch whose `data_commitment` does not commit to its operations.
    #[error("data commitment does not match the batch's operations")]
    DataCommitmentMismatch,
}

/// Result alias for decoding.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// A value with a canonical binary encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The encoding as a new vector.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// A value that can be decoded from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from the cursor.
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self>;

    /// Decodes exactly one value from `bytes`, refusing trailing bytes.
    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// A bounds-checked cursor over an input.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless the input is used up.
    pub fn finish(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                at: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        Ok(self.bytes(N)?.try_into().expect("length checked"))
    }

    /// One byte.
    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> DecodeResult<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> DecodeResult<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A canonical field element.
    pub fn fr(&mut self) -> DecodeResult<Fr> {
        let at = self.pos;
        let b = self.array::<FR_BYTES>()?;
        fr_from_bytes(&b).ok_or(DecodeError::NonCanonicalField { at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_short_input_without_panicking() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(
            r.u32(),
            Err(DecodeError::UnexpectedEnd { at: 1, needed: 2 })
        );
        // a failed read consumes nothing
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 2 }));
    }

    #[test]
    fn reader_rejects_non_canonical_fr() {
        let mut r = Reader::new(&[0xff; 32]);
        assert_eq!(r.fr(), Err(DecodeError::NonCanonicalField { at: 0 }));
    }
}
