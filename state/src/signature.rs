//! Schnorr signatures over Grumpkin.
//!
//! Grumpkin's base field is BN254 `Fr`, so a public key's coordinates and the challenge are native
//! circuit values. The scheme (DESIGN.md §3):
//!
//! ```text
//! secret key   sk ∈ Grumpkin scalar field (= BN254 Fq), sk ≠ 0
//! public key   pk = sk·G                       (G = Grumpkin's generator (1, √-16))
//! message      msg = m₁ … mₙ, field elements (an operation's words: ops.rs)
//! nonce        k  = wide_reduce(BLAKE2b-512("keel/schnorr/k", sk ‖ m₁ ‖ … ‖ mₙ ‖ ctr))   deterministic
//! commitment   R  = k·G
//! hash         h  = sponge(Challenge, R.x, R.y, pk.x, pk.y, m₁, …, mₙ) ∈ Fr          (poseidon.rs)
//! challenge    e  = 2^253 + 2·(h mod 2^253) + 1   (an integer below 2^254, taken mod q)
//! response     s  = k + e·sk  (mod q)
//! verify       s·G == R + e·pk, with pk and R on the curve and not the identity
//! ```
//!
//! The challenge is an odd integer in `[2^253, 2^254)` made from the hash's 253 low bits: that is
//! the form a double-and-add chain with incomplete additions computes without a correction
//! (`Acc = [2]P`, then `Acc ← (Acc ± P) + Acc` for each of the 253 bits, most significant first,
//! gives `[2^253 + 2k + 1]P`), so the circuit's variable-base multiplication needs no modular
//! arithmetic in `q`. The map from `h` to `e` loses at most the hash's top bit: the challenge
//! space has 2^253 values.
//!
//! The message is absorbed into the challenge as it is, not hashed first: a one- or two-word
//! message costs the challenge's three permutations and nothing more. Messages of different
//! lengths cannot give the same challenge, because the sponge's capacity names the input length
//! (and the domain). Messages of the same length are told apart by their content: an operation's first
//! element carries its kind (ops.rs), and the one-element messages signed elsewhere (an L1
//! transaction's or a council action's Poseidon digest) could equal a transfer's word only if the
//! digest fell below 2^200 and also named the signer's own account with its current nonce.
//!
//! Encodings are uncompressed and canonical: a point is `x ‖ y` (32-byte little-endian field
//! elements), a signature is `R ‖ s`. Decoding rejects non-canonical integers, points off the
//! curve and the identity, so a decoded [`PublicKey`] or [`Signature`] is always well formed.

use std::fmt;

use halo2_proofs::halo2curves::{
    ff::{Field, FromUniformBytes, PrimeField},
    group::{prime::PrimeCurveAffine, Curve, Group},
    grumpkin::{Fr as Scalar, G1Affine, G1},
    CurveAffine,
};
use rand_core::{CryptoRng, RngCore};

use crate::{
    curve,
    encoding::{Decode, DecodeError, DecodeResult, Encode, Reader},
    field::{fr_from_bytes, fr_to_bytes, Fr},
    poseidon,
};

/// Length of an encoded [`PublicKey`].
pub const PUBLIC_KEY_BYTES: usize = 64;
/// Length of an encoded [`Signature`].
pub const SIGNATURE_BYTES: usize = 96;

const NONCE_PERSONAL: &[u8] = b"keel/schnorr/k";
const SEED_PERSONAL: &[u8] = b"keel/seed/sk";

/// Why a key or signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A coordinate is not a canonical `Fr` encoding (an integer ≥ the modulus).
    #[error("point coordinate is not a canonical field element")]
    NonCanonicalCoordinate,
    /// `(x, y)` does not satisfy Grumpkin's equation `y² = x³ − 17`.
    #[error("point is not on the Grumpkin curve")]
    NotOnCurve,
    /// The point at infinity is not a valid key or commitment.
    #[error("point is the identity")]
    Identity,
    /// The response `s` is not a canonical Grumpkin scalar.
    #[error("signature scalar is not canonical")]
    NonCanonicalScalar,
    /// The verification equation `s·G = R + e·pk` does not hold.
    #[error("signature does not verify")]
    Invalid,
}

/// A Grumpkin secret key. Its `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Scalar);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A fresh key from a cryptographic RNG.
    pub fn random(mut rng: impl RngCore + CryptoRng) -> Self {
        loop {
            let s = Scalar::random(&mut rng);
            if !bool::from(s.is_zero()) {
                return Self(s);
            }
        }
    }

    /// A key derived deterministically from a 32-byte seed (demo accounts, tests).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(hash_to_scalar(SEED_PERSONAL, &[seed]))
    }

    /// The canonical 32-byte little-endian encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_repr()
    }

    /// Decodes a secret key; rejects non-canonical encodings and zero.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
        let s: Option<Scalar> = Scalar::from_repr(*bytes).into();
        match s {
            Some(s) if !bool::from(s.is_zero()) => Ok(Self(s)),
            _ => Err(SignatureError::NonCanonicalScalar),
        }
    }

    /// `sk·G`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey((G1::generator() * self.0).to_affine())
    }

    /// Signs `msg` (field elements: an operation's words, or one digest), deterministically.
    pub fn sign(&self, msg: &[Fr]) -> Signature {
        let pk = self.public_key();
        let k = self.nonce(msg);
        let r = (G1::generator() * k).to_affine();
        let e = challenge(&r, &pk, msg);
        Signature {
            r,
            s: k + e * self.0,
        }
    }

    fn nonce(&self, msg: &[Fr]) -> Scalar {
        let sk = self.0.to_repr();
        let words: Vec<[u8; 32]> = msg.iter().map(fr_to_bytes).collect();
        let parts: Vec<&[u8]> = std::iter::once(sk.as_ref())
            .chain(words.iter().map(|w| w.as_slice()))
            .collect();
        hash_to_scalar(NONCE_PERSONAL, &parts)
    }
}

/// A non-zero scalar from `BLAKE2b-512(personal; parts ‖ ctr)` reduced mod q, with `ctr` counting
/// up from 0 in the (2^-254) case that the reduction gives zero.
pub(crate) fn hash_to_scalar(personal: &[u8], parts: &[&[u8]]) -> Scalar {
    for ctr in 0u8..=u8::MAX {
        let mut state = blake2b_simd::Params::new()
            .hash_length(64)
            .personal(personal)
            .to_state();
        for part in parts {
            state.update(part);
        }
        let s = Scalar::from_uniform_bytes(state.update(&[ctr]).finalize().as_array());
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
    unreachable!("256 independent hashes all reduced to zero")
}

/// A Grumpkin public key: on the curve and not the identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(G1Affine);

/// `Name(0123456789abcdef..)`: the first 8 bytes of the encoding, enough to tell values apart.
fn debug_prefix(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    write!(f, "{name}(")?;
    for x in &bytes[..8] {
        write!(f, "{x:02x}")?;
    }
    write!(f, "..)")
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_prefix(f, "PublicKey", &self.to_bytes())
    }
}

impl PublicKey {
    /// The affine point.
    pub fn point(&self) -> G1Affine {
        self.0
    }

    /// `(x, y)`, the values a leaf hash and the circuit take.
    pub fn xy(&self) -> (Fr, Fr) {
        (self.0.x, self.0.y)
    }

    /// Builds a key from coordinates, checking curve membership and identity.
    pub fn from_xy(x: Fr, y: Fr) -> Result<Self, SignatureError> {
        checked_point(x, y).map(Self)
    }

    /// `x ‖ y`, 32-byte little-endian each.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        point_to_bytes(&self.0)
    }

    /// Decodes and validates a key.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_BYTES]) -> Result<Self, SignatureError> {
        point_from_bytes(bytes).map(Self)
    }

    /// Checks `sig` on `msg` under this key.
    pub fn verify(&self, msg: &[Fr], sig: &Signature) -> Result<(), SignatureError> {
        self.prepare(msg, sig).verify()
    }

    /// The hashing half of verification (the challenge, a Poseidon hash), leaving the curve
    /// check to [`PreparedSignature::verify`] or, for many signatures at once, [`verify_batch`].
    pub fn prepare(&self, msg: &[Fr], sig: &Signature) -> PreparedSignature {
        PreparedSignature {
            pk: self.0,
            r: sig.r,
            s: sig.s,
            e: challenge(&sig.r, self, msg),
        }
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Decode for PublicKey {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        Self::from_bytes(&r.array()?).map_err(|source| DecodeError::BadPoint { at, source })
    }
}

impl Encode for Signature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let at = r.position();
        Self::from_bytes(&r.array()?).map_err(|source| DecodeError::BadPoint { at, source })
    }
}

/// A signature with its challenge computed: what the curve check `s·G = R + e·pk` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreparedSignature {
    pk: G1Affine,
    r: G1Affine,
    s: Scalar,
    e: Scalar,
}

impl PreparedSignature {
    /// The curve check for this one signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        // s·G − e·pk == R, in one variable-time chain (all values here are public)
        let lhs = curve::multi_mul_vartime(&self.s, &[(-self.e, self.pk)]);
        if lhs == G1::from(self.r) {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

const BATCH_PERSONAL: &[u8] = b"keel/schnorr/zb";

/// Checks many prepared signatures with one multi-scalar multiplication: `true` if every one
/// verifies; `false` if at least one does not (then check them one by one to find which).
///
/// The check is `(Σ zᵢsᵢ)·G − Σ zᵢ·Rᵢ − Σ (zᵢeᵢ)·pkᵢ = 0` with 128-bit weights `zᵢ` drawn
/// from BLAKE2b over every input. Grumpkin has prime order, so if some signature is invalid
/// (its term `sᵢ·G − Rᵢ − eᵢ·pkᵢ ≠ 0`), the weighted sum vanishes for at most one value of
/// that `zᵢ` given the others: a forger must find a 2^-128 event by grinding the hash. The
/// empty batch is valid. The sum is one Straus chain over every term ([`curve`]'s
/// `multi_mul_vartime`): the ~128 doublings are shared, so per signature this costs its
/// additions alone (see `stf/verify` in BENCHMARKS.md).
pub fn verify_batch(items: &[PreparedSignature]) -> bool {
    match items {
        [] => return true,
        [one] => return one.verify().is_ok(),
        _ => {}
    }
    let mut seed = blake2b_simd::Params::new()
        .hash_length(64)
        .personal(BATCH_PERSONAL)
        .to_state();
    for it in items {
        seed.update(&point_to_bytes(&it.pk));
        seed.update(&point_to_bytes(&it.r));
        seed.update(&it.s.to_repr());
        seed.update(&it.e.to_repr());
    }
    let seed = seed.finalize();
    let mut terms = Vec::with_capacity(2 * items.len());
    let mut s_sum = Scalar::ZERO;
    for (i, it) in items.iter().enumerate() {
        let h = blake2b_simd::Params::new()
            .hash_length(16)
            .personal(BATCH_PERSONAL)
            .to_state()
            .update(seed.as_bytes())
            .update(&(i as u64).to_le_bytes())
            .finalize();
        let mut wide = [0u8; 32];
        wide[..16].copy_from_slice(h.as_bytes());
        let z = Scalar::from_repr(wide).expect("a 128-bit integer is a canonical scalar");
        s_sum += z * it.s;
        terms.push((-z, it.r));
        terms.push((-(z * it.e), it.pk));
    }
    bool::from(curve::multi_mul_vartime(&s_sum, &terms).is_identity())
}

/// A Schnorr signature `(R, s)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    r: G1Affine,
    s: Scalar,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_prefix(f, "Signature", &self.to_bytes())
    }
}

impl Signature {
    /// The commitment `R`.
    pub fn r(&self) -> G1Affine {
        self.r
    }

    /// The response `s` as its canonical 32-byte little-endian encoding (it lives in BN254 `Fq`,
    /// which is larger than `Fr`, so it is not handed out as an `Fr`).
    pub fn s_bytes(&self) -> [u8; 32] {
        self.s.to_repr()
    }

    /// `R.x ‖ R.y ‖ s`.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        let mut out = [0u8; SIGNATURE_BYTES];
        out[..64].copy_from_slice(&point_to_bytes(&self.r));
        out[64..].copy_from_slice(&self.s.to_repr());
        out
    }

    /// Decodes and validates the encoding (not the signature itself: see [`PublicKey::verify`]).
    pub fn from_bytes(bytes: &[u8; SIGNATURE_BYTES]) -> Result<Self, SignatureError> {
        let r = point_from_bytes(bytes[..64].try_into().expect("64 bytes"))?;
        let s: Option<Scalar> = Scalar::from_repr(bytes[64..].try_into().expect("32 bytes")).into();
        let s = s.ok_or(SignatureError::NonCanonicalScalar)?;
        Ok(Self { r, s })
    }
}

/// The bits of the challenge hash that the challenge takes.
pub const CHALLENGE_BITS: u32 = 253;

/// `h = sponge(Challenge, R.x, R.y, pk.x, pk.y, m₁, …, mₙ)`: the hash a challenge is made from.
pub fn challenge_hash(r: (Fr, Fr), pk: (Fr, Fr), msg: &[Fr]) -> Fr {
    let mut inputs = Vec::with_capacity(4 + msg.len());
    inputs.extend_from_slice(&[r.0, r.1, pk.0, pk.1]);
    inputs.extend_from_slice(msg);
    poseidon::sponge(poseidon::Domain::Challenge, &inputs)
}

/// `e = 2^253 + 2·(h mod 2^253) + 1` as a Grumpkin scalar (see the module docs).
pub fn challenge_scalar(h: Fr) -> Scalar {
    let mut bytes = h.to_repr();
    // h mod 2^253: clear bits 253..255 (byte 31 holds bits 248..255)
    bytes[31] &= 0x1f;
    let k = Scalar::from_repr(bytes).expect("an integer below 2^253 is a canonical scalar");
    let top = Scalar::from(2).pow_vartime([u64::from(CHALLENGE_BITS)]);
    top + k.double() + Scalar::ONE
}

/// The challenge of a signature with commitment `r` by `pk` on `msg`.
pub(crate) fn challenge(r: &G1Affine, pk: &PublicKey, msg: &[Fr]) -> Scalar {
    challenge_scalar(challenge_hash((r.x, r.y), pk.xy(), msg))
}

fn checked_point(x: Fr, y: Fr) -> Result<G1Affine, SignatureError> {
    let p: Option<G1Affine> = G1Affine::from_xy(x, y).into();
    let p = p.ok_or(SignatureError::NotOnCurve)?;
    if bool::from(p.is_identity()) {
        return Err(SignatureError::Identity);
    }
    Ok(p)
}

pub(crate) fn point_to_bytes(p: &G1Affine) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&fr_to_bytes(&p.x));
    out[32..].copy_from_slice(&fr_to_bytes(&p.y));
    out
}

pub(crate) fn point_from_bytes(bytes: &[u8; 64]) -> Result<G1Affine, SignatureError> {
    let x = fr_from_bytes(bytes[..32].try_into().expect("32 bytes"))
        .ok_or(SignatureError::NonCanonicalCoordinate)?;
    let y = fr_from_bytes(bytes[32..].try_into().expect("32 bytes"))
        .ok_or(SignatureError::NonCanonicalCoordinate)?;
    checked_point(x, y)
}
