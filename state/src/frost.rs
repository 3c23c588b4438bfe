//! FROST threshold signatures over Grumpkin: `t` of `n` members sign together, and the result is
//! an ordinary Keel Schnorr [`Signature`] that [`PublicKey::verify`] accepts under the group key.
//!
//! The protocol is FROST's two rounds (Komlo & Goldberg 2020; the flow of RFC 9591) over Keel's
//! own Schnorr scheme, so its challenge is Keel's (`signature.rs`: made from
//! `sponge(Challenge, R.x, R.y, Y.x, Y.y, msg)`):
//!
//! ```text
//! keygen (trusted dealer)  f(x) = a₀ + a₁x + … + a_{t−1}x^{t−1};  sᵢ = f(i);  Y = a₀·G;  Yᵢ = sᵢ·G
//! round 1 (each signer)    random dᵢ, eᵢ;  publish Dᵢ = dᵢ·G, Eᵢ = eᵢ·G
//! binding factor           ρᵢ = H("keel/frost/rho"; Y ‖ msg ‖ every (j, Dⱼ, Eⱼ) ‖ i)
//! group commitment         R = Σ Dⱼ + ρⱼ·Eⱼ
//! round 2 (each signer)    zᵢ = dᵢ + eᵢ·ρᵢ + λᵢ·sᵢ·c      c = e(R, Y, msg), λᵢ Lagrange at 0
//! aggregate                check zᵢ·G = Dᵢ + ρᵢ·Eᵢ + λᵢ·c·Yᵢ for each (names a cheater), then
//!                          signature (R, Σ zᵢ):  (Σ zᵢ)·G = R + c·Y
//! ```
//!
//! Nonces are random and single-use: [`SigningNonces`] is consumed by [`sign`]. Fewer than `t`
//! shares cannot make a signature under `Y`: their Lagrange combination interpolates another
//! polynomial's constant term. Key generation is by a trusted dealer (RFC 9591, appendix C);
//! the dealer must erase the polynomial, which [`keygen`] never returns.

use std::collections::BTreeSet;

use halo2_proofs::halo2curves::{
    ff::{Field, PrimeField},
    group::{Curve, Group},
    grumpkin::{Fr as Scalar, G1Affine, G1},
};
use rand_core::{CryptoRng, RngCore};

use crate::{
    encoding::{Decode, DecodeError, DecodeResult, Encode, Reader},
    field::{fr_to_bytes, Fr},
    signature::{
        challenge, hash_to_scalar, point_from_bytes, point_to_bytes, PublicKey, Signature,
        SignatureError,
    },
};

const RHO_PERSONAL: &[u8] = b"keel/frost/rho";

/// Why a threshold operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrostError {
    /// `t` must satisfy `1 ≤ t ≤ n`.
    #[error("threshold {t} of {n} is not 1 ≤ t ≤ n")]
    BadThreshold {
        /// The threshold.
        t: u16,
        /// The members.
        n: u16,
    },
    /// Fewer signers than the threshold.
    #[error("{got} signers, the threshold is {threshold}")]
    TooFewSigners {
        /// Signers present.
        got: usize,
        /// Needed.
        threshold: u16,
    },
    /// A member id outside `1..=n`, repeated, or without a verifying share.
    #[error("member {0} is unknown or listed twice")]
    UnknownMember(u16),
    /// The signer's own commitment is not in the list it is asked to sign for.
    #[error("member {0}'s commitment is missing from the signing set")]
    NotInSigningSet(u16),
    /// A signature share does not verify: that member cheated or is faulty.
    #[error("member {0}'s signature share is invalid")]
    BadShare(u16),
    /// A signature share or commitment is missing for a listed member.
    #[error("member {0} has a commitment but no share, or a share but no commitment")]
    Mismatched(u16),
    /// A commitment is the identity.
    #[error(transparent)]
    Point(#[from] SignatureError),
}

/// The group's public side: the key, the threshold, and each member's verifying share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupKey {
    /// `Y`: signatures verify under it.
    pub key: PublicKey,
    /// `t`.
    pub threshold: u16,
    /// `Yᵢ = sᵢ·G` for members `1..=n`, in order.
    pub verifying_shares: Vec<PublicKey>,
}

impl GroupKey {
    /// `n`.
    pub fn members(&self) -> u16 {
        self.verifying_shares.len() as u16
    }

    fn verifying_share(&self, id: u16) -> Result<&PublicKey, FrostError> {
        usize::from(id)
            .checked_sub(1)
            .and_then(|i| self.verifying_shares.get(i))
            .ok_or(FrostError::UnknownMember(id))
    }
}

/// One member's secret share. Its `Debug` does not print the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    /// The member's id, `1..=n`.
    pub id: u16,
    secret: Scalar,
    /// The group's public side.
    pub group: GroupKey,
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("group", &self.group.key)
            .finish_non_exhaustive()
    }
}

/// Deals a `t`-of-`n` key: the group's public side and one secret share per member.
pub fn keygen(
    t: u16,
    n: u16,
    mut rng: impl RngCore + CryptoRng,
) -> Result<(GroupKey, Vec<KeyShare>), FrostError> {
    if t == 0 || t > n {
        return Err(FrostError::BadThreshold { t, n });
    }
    let coefficients: Vec<Scalar> = (0..t).map(|_| nonzero(&mut rng)).collect();
    let f = |x: Scalar| {
        coefficients
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, a| acc * x + a)
    };
    let g = G1::generator();
    let key = PublicKey::from_point((g * coefficients[0]).to_affine())?;
    let secrets: Vec<Scalar> = (1..=n).map(|i| f(Scalar::from(u64::from(i)))).collect();
    let verifying_shares = secrets
        .iter()
        .map(|s| PublicKey::from_point((g * s).to_affine()))
        .collect::<Result<_, _>>()?;
    let group = GroupKey {
        key,
        threshold: t,
        verifying_shares,
    };
    let shares = secrets
        .into_iter()
        .zip(1..=n)
        .map(|(secret, id)| KeyShare {
            id,
            secret,
            group: group.clone(),
        })
        .collect();
    Ok((group, shares))
}

fn nonzero(rng: &mut (impl RngCore + CryptoRng)) -> Scalar {
    loop {
        let s = Scalar::random(&mut *rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

/// A member's round-one secret: use it for one signature only ([`sign`] consumes it).
pub struct SigningNonces {
    hiding: Scalar,
    binding: Scalar,
}

/// A member's round-one commitment `(Dᵢ, Eᵢ)`, published to the other signers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commitment {
    /// The member.
    pub id: u16,
    /// `Dᵢ`.
    pub hiding: G1Affine,
    /// `Eᵢ`.
    pub binding: G1Affine,
}

/// A member's round-two response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureShare {
    /// The member.
    pub id: u16,
    z: Scalar,
}

/// Round one: fresh nonces and their commitment.
pub fn commit(share: &KeyShare, mut rng: impl RngCore + CryptoRng) -> (SigningNonces, Commitment) {
    let nonces = SigningNonces {
        hiding: nonzero(&mut rng),
        binding: nonzero(&mut rng),
    };
    let g = G1::generator();
    let c = Commitment {
        id: share.id,
        hiding: (g * nonces.hiding).to_affine(),
        binding: (g * nonces.binding).to_affine(),
    };
    (nonces, c)
}

/// The signing set's commitments, checked: sorted by id, ids known and distinct, at least `t`,
/// no identity point.
fn signing_set(
    group: &GroupKey,
    commitments: &[Commitment],
) -> Result<Vec<Commitment>, FrostError> {
    let mut set = commitments.to_vec();
    set.sort_by_key(|c| c.id);
    let mut seen = BTreeSet::new();
    for c in &set {
        group.verifying_share(c.id)?;
        if !seen.insert(c.id) {
            return Err(FrostError::UnknownMember(c.id));
        }
        for p in [c.hiding, c.binding] {
            PublicKey::from_point(p)?;
        }
    }
    if set.len() < usize::from(group.threshold) {
        return Err(FrostError::TooFewSigners {
            got: set.len(),
            threshold: group.threshold,
        });
    }
    Ok(set)
}

/// `ρᵢ` for each member of the (sorted) signing set.
fn binding_factors(group: &GroupKey, set: &[Commitment], msg: Fr) -> Vec<Scalar> {
    let mut transcript = Vec::with_capacity(64 + 32 + set.len() * 130);
    transcript.extend_from_slice(&point_to_bytes(&group.key.point()));
    transcript.extend_from_slice(&fr_to_bytes(&msg));
    for c in set {
        transcript.extend_from_slice(&c.id.to_be_bytes());
        transcript.extend_from_slice(&point_to_bytes(&c.hiding));
        transcript.extend_from_slice(&point_to_bytes(&c.binding));
    }
    set.iter()
        .map(|c| hash_to_scalar(RHO_PERSONAL, &[&transcript, &c.id.to_be_bytes()]))
        .collect()
}

/// `λᵢ = Π_{j ≠ i} j / (j − i)` over the signing set's ids.
fn lagrange(id: u16, set: &[Commitment]) -> Scalar {
    let x = Scalar::from(u64::from(id));
    let (num, den) =
        set.iter()
            .filter(|c| c.id != id)
            .fold((Scalar::ONE, Scalar::ONE), |(num, den), c| {
                let j = Scalar::from(u64::from(c.id));
                (num * j, den * (j - x))
            });
    num * den
        .invert()
        .expect("distinct ids give a non-zero denominator")
}

/// The group commitment `R` and the challenge `c`.
fn group_commitment(
    group: &GroupKey,
    set: &[Commitment],
    rho: &[Scalar],
    msg: Fr,
) -> Result<(G1Affine, Scalar), FrostError> {
    let r = set
        .iter()
        .zip(rho)
        .fold(G1::identity(), |acc, (c, p)| acc + c.hiding + c.binding * p)
        .to_affine();
    PublicKey::from_point(r)?;
    Ok((r, challenge(&r, &group.key, &[msg])))
}

/// Round two: this member's share of the signature on `msg` for the signing set `commitments`
/// (which must include its own commitment).
pub fn sign(
    share: &KeyShare,
    nonces: SigningNonces,
    commitments: &[Commitment],
    msg: Fr,
) -> Result<SignatureShare, FrostError> {
    let set = signing_set(&share.group, commitments)?;
    let me = set
        .iter()
        .position(|c| c.id == share.id)
        .ok_or(FrostError::NotInSigningSet(share.id))?;
    let g = G1::generator();
    if set[me].hiding != (g * nonces.hiding).to_affine()
        || set[me].binding != (g * nonces.binding).to_affine()
    {
        return Err(FrostError::NotInSigningSet(share.id));
    }
    let rho = binding_factors(&share.group, &set, msg);
    let (_, c) = group_commitment(&share.group, &set, &rho, msg)?;
    let z = nonces.hiding + nonces.binding * rho[me] + lagrange(share.id, &set) * share.secret * c;
    Ok(SignatureShare { id: share.id, z })
}

/// Checks every share and combines them into a signature under the group key. A share that does
/// not verify is named, so the council can exclude that member and sign again.
pub fn aggregate(
    group: &GroupKey,
    commitments: &[Commitment],
    shares: &[SignatureShare],
    msg: Fr,
) -> Result<Signature, FrostError> {
    let set = signing_set(group, commitments)?;
    let rho = binding_factors(group, &set, msg);
    let (r, c) = group_commitment(group, &set, &rho, msg)?;
    let g = G1::generator();
    let mut z = Scalar::ZERO;
    for (commitment, p) in set.iter().zip(&rho) {
        let id = commitment.id;
        let mut mine = shares.iter().filter(|s| s.id == id);
        let (Some(s), None) = (mine.next(), mine.next()) else {
            return Err(FrostError::Mismatched(id));
        };
        let y = group.verifying_share(id)?.point();
        let expected =
            G1::from(commitment.hiding) + commitment.binding * p + y * (lagrange(id, &set) * c);
        if g * s.z != expected {
            return Err(FrostError::BadShare(id));
        }
        z += s.z;
    }
    if let Some(extra) = shares.iter().find(|s| !set.iter().any(|c| c.id == s.id)) {
        return Err(FrostError::Mismatched(extra.id));
    }
    Ok(Signature::from_parts(r, z))
}

fn decode_point(r: &mut Reader<'_>) -> DecodeResult<G1Affine> {
    let at = r.position();
    point_from_bytes(&r.array()?).map_err(|source| DecodeError::BadPoint { at, source })
}

fn decode_scalar(r: &mut Reader<'_>) -> DecodeResult<Scalar> {
    let at = r.position();
    let s: Option<Scalar> = Scalar::from_repr(r.array()?).into();
    s.ok_or(DecodeError::BadPoint {
        at,
        source: SignatureError::NonCanonicalScalar,
    })
}

impl Encode for GroupKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&self.members().to_be_bytes());
        out.extend_from_slice(&self.key.to_bytes());
        for y in &self.verifying_shares {
            out.extend_from_slice(&y.to_bytes());
        }
    }
}

impl Decode for GroupKey {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let threshold = r.u16()?;
        let n = r.u16()?;
        if threshold == 0 || threshold > n {
            return Err(DecodeError::TooLong {
                count: threshold.into(),
                max: n.into(),
            });
        }
        let key = PublicKey::decode_from(r)?;
        let verifying_shares = (0..n)
            .map(|_| PublicKey::decode_from(r))
            .collect::<DecodeResult<_>>()?;
        Ok(Self {
            key,
            threshold,
            verifying_shares,
        })
    }
}

impl Encode for KeyShare {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.secret.to_repr());
        self.group.encode_to(out);
    }
}

impl Decode for KeyShare {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let id = r.u16()?;
        let secret = decode_scalar(r)?;
        let group = GroupKey::decode_from(r)?;
        let at = r.position();
        // the share must be the one its group published for this id
        match group.verifying_share(id) {
            Ok(y) if y.point() == (G1::generator() * secret).to_affine() => {}
            _ => {
                return Err(DecodeError::BadPoint {
                    at,
                    source: SignatureError::Invalid,
                })
            }
        }
        Ok(Self { id, secret, group })
    }
}

impl Encode for Commitment {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&point_to_bytes(&self.hiding));
        out.extend_from_slice(&point_to_bytes(&self.binding));
    }
}

impl Decode for Commitment {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Self {
            id: r.u16()?,
            hiding: decode_point(r)?,
            binding: decode_point(r)?,
        })
    }
}

impl Encode for SignatureShare {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.z.to_repr());
    }
}

impl Decode for SignatureShare {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Self {
            id: r.u16()?,
            z: decode_scalar(r)?,
        })
    }
}

impl Encode for SigningNonces {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hiding.to_repr());
        out.extend_from_slice(&self.binding.to_repr());
    }
}

impl Decode for SigningNonces {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Self {
            hiding: decode_scalar(r)?,
            binding: decode_scalar(r)?,
        })
    }
}
