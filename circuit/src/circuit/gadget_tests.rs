//! The gadgets alone, under MockProver: agreement with `keel_state` (native against circuit) for
//! the permutation, the sponges and a whole Merkle path, and the Schnorr check on hostile keys
//! and signatures. Each test *constrains* the circuit's output to the native value, so a
//! disagreement fails the circuit, and shows that a wrong expected value fails it too.

use std::sync::Arc;

use halo2_base::halo2_proofs::{
    circuit::{Layouter, SimpleFloorPlanner},
    dev::MockProver,
    halo2curves::{
        ff::{Field, PrimeField},
        group::Curve,
        grumpkin::{Fr as Scalar, G1Affine, G1},
        CurveAffine,
    },
    plonk::{Circuit, ConstraintSystem, Error},
};
use keel_state::{
    poseidon::{self, Domain},
    signature::{challenge_hash, challenge_scalar},
    tree, AccountIndex, Fr,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

use super::{
    ecc::{self, SchnorrInput},
    layout::{Layout, Tamper},
    merkle::{self, LeafCells},
    poseidon as chip, synthesize_layout, BatchConfig,
};

#[derive(Clone)]
struct GadgetCircuit {
    layout: Arc<Layout>,
    tamper: Vec<Tamper>,
}

impl Circuit<Fr> for GadgetCircuit {
    type Config = BatchConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        self.clone()
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> BatchConfig {
        BatchConfig::configure(meta)
    }

    fn synthesize(&self, config: BatchConfig, layouter: impl Layouter<Fr>) -> Result<(), Error> {
        synthesize_layout(&config, layouter, &self.layout, &self.tamper)
    }
}

/// MockProver on the gadget `build` lays out: the failures, as text.
fn run(k: u32, build: impl FnOnce(&mut Layout)) -> Result<(), Vec<String>> {
    run_tampered(k, build, &[])
}

fn run_tampered(
    k: u32,
    build: impl FnOnce(&mut Layout),
    tamper: &[Tamper],
) -> Result<(), Vec<String>> {
    let mut l = Layout::default();
    build(&mut l);
    let circuit = GadgetCircuit {
        layout: Arc::new(l),
        tamper: tamper.to_vec(),
    };
    let prover = MockProver::run(k, &circuit, vec![vec![]]).expect("the gadget fits");
    prover
        .verify()
        .map_err(|f| f.iter().map(|e| e.to_string()).collect())
}

fn random(rng: &mut ChaCha20Rng) -> Fr {
    Fr::random(rng)
}

#[test]
fn the_permutation_chip_agrees_with_the_native_permutation() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut cases = vec![[Fr::ZERO; 3], [-Fr::ONE; 3]];
    cases.extend((0..6).map(|_| [random(&mut rng), random(&mut rng), random(&mut rng)]));
    for x in cases {
        let mut native = x;
        poseidon::permute(&mut native);
        let build = |expected: [Fr; 3]| {
            move |l: &mut Layout| {
                let inputs = x.map(|v| l.load(v));
                let (perm, row0) = chip::permutation(l, x, [super::Tag::Plain; 3]);
                for (a, b) in row0.iter().zip(inputs) {
                    l.eq(*a, b);
                }
                for (c, v) in perm.out.iter().zip(expected) {
                    l.eq_const(*c, v);
                }
            }
        };
        run(11, build(native)).unwrap();
        let mut wrong = native;
        wrong[2] += Fr::ONE;
        assert!(run(11, build(wrong)).is_err(), "a wrong output must fail");
    }
}

#[test]
fn the_sponges_and_the_compression_agree_with_keel_state() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for (domain, len) in [
        (Domain::Node, 2),
        (Domain::Leaf, 4),
        (Domain::Challenge, 5),
        (Domain::Challenge, 6),
        (Domain::Entry, 8),
    ] {
        let inputs: Vec<Fr> = (0..len).map(|_| random(&mut rng)).collect();
        let native = poseidon::sponge(domain, &inputs);
        let build = |expected: Fr| {
            let inputs = inputs.clone();
            move |l: &mut Layout| {
                let cells: Vec<_> = inputs.iter().map(|v| l.load(*v)).collect();
                let out = chip::hash(l, domain, &cells);
                l.eq_const(out, expected);
            }
        };
        run(11, build(native)).unwrap();
        assert!(run(11, build(native + Fr::ONE)).is_err());
    }
    // the tree node is the compression
    let (a, b) = (random(&mut rng), random(&mut rng));
    run(11, |l| {
        let (ca, cb) = (l.load(a), l.load(b));
        let out = chip::hash(l, Domain::Node, &[ca, cb]);
        l.eq_const(out, tree::node(a, b));
    })
    .unwrap();
}

#[test]
fn a_merkle_path_agrees_with_the_native_tree_before_and_after() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let depth = 6u8;
    for index in [0u32, 1, 37, 63] {
        let siblings: Vec<Fr> = (0..depth).map(|_| random(&mut rng)).collect();
        let key = keel_state::test_utils::key(index + 1).public_key();
        let old = keel_state::Account {
            pk: key,
            balance: 500,
            nonce: 3,
        };
        let new = keel_state::Account {
            balance: 499,
            nonce: 4,
            ..old
        };
        let idx = AccountIndex(index);
        let native_before = tree::root_from_path(idx, old.leaf(), &siblings);
        let native_after = tree::root_from_path(idx, new.leaf(), &siblings);
        // and an empty leaf: `exists` = 0 makes the node 0
        let native_empty = tree::root_from_path(idx, Fr::ZERO, &siblings);
        let build = |expected: (Fr, Fr), exists: bool| {
            let siblings = siblings.clone();
            move |l: &mut Layout| {
                let leaf = |l: &mut Layout, a: &keel_state::Account, exists: bool| {
                    let (x, y) = a.pk.xy();
                    LeafCells {
                        exists: l.load(Fr::from(u64::from(exists))),
                        pk: (l.load(x), l.load(y)),
                        balance: l.load(Fr::from(a.balance)),
                        nonce: l.load(Fr::from(a.nonce)),
                    }
                };
                let o = leaf(l, &old, exists);
                let n = leaf(l, &new, true);
                let bits: Vec<_> = (0..depth)
                    .map(|i| l.load(Fr::from(u64::from(index >> i & 1))))
                    .collect();
                let (before, after) = merkle::update(l, &o, &n, &bits, &siblings);
                l.eq_const(before, expected.0);
                l.eq_const(after, expected.1);
            }
        };
        run(12, build((native_before, native_after), true)).unwrap();
        run(12, build((native_empty, native_after), false)).unwrap();
        assert!(run(12, build((native_after, native_after), true)).is_err());
    }
}

/// A named case: key, commitment `R`, response `s`, challenge hash `h`.
type SchnorrCase = (&'static str, (Fr, Fr), (Fr, Fr), Scalar, Fr);

/// What the Schnorr gadget must output: both points on the curve and `s·G = R + e·pk`.
fn native_ok(pk: (Fr, Fr), r: (Fr, Fr), s: Scalar, h: Fr) -> bool {
    let point = |(x, y): (Fr, Fr)| Option::<G1Affine>::from(G1Affine::from_xy(x, y));
    let (Some(p), Some(rr)) = (point(pk), point(r)) else {
        return false;
    };
    let e = challenge_scalar(h);
    G1::generator() * s == G1::from(rr) + G1::from(p) * e
}

fn xy(p: G1) -> (Fr, Fr) {
    let a = p.to_affine();
    let c = a.coordinates().expect("not the identity");
    (*c.x(), *c.y())
}

fn schnorr_case(pk: (Fr, Fr), r: (Fr, Fr), s: Scalar, h: Fr) -> Result<(), Vec<String>> {
    schnorr_claim(pk, r, s, h, native_ok(pk, r, s, h))
}

/// The Schnorr gadget on `(pk, R, s, h)` with its output constrained to `claimed`.
fn schnorr_claim(
    pk: (Fr, Fr),
    r: (Fr, Fr),
    s: Scalar,
    h: Fr,
    claimed: bool,
) -> Result<(), Vec<String>> {
    let (s_lo, s_hi) = keel_state::field::split_u256(&s.to_repr());
    run(12, move |l| {
        let input = SchnorrInput {
            pk: (l.load(pk.0), l.load(pk.1)),
            r: (l.load(r.0), l.load(r.1)),
            s_lo: l.load(s_lo),
            s_hi: l.load(s_hi),
            h: l.load(h),
        };
        let ok = ecc::schnorr_ok(l, &input);
        l.eq_const(ok, Fr::from(u64::from(claimed)));
    })
}

/// A signature by `sk` with nonce `k` on a one-element message: `(R, s, h)`.
fn sign(sk: Scalar, k: Scalar, msg: Fr) -> ((Fr, Fr), Scalar, Fr) {
    let pk = xy(G1::generator() * sk);
    let r = xy(G1::generator() * k);
    let h = challenge_hash(r, pk, &[msg]);
    (r, k + challenge_scalar(h) * sk, h)
}

#[test]
fn the_schnorr_check_is_a_bit_for_any_key_and_signature() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let msg = Fr::from(99);
    let sk = Scalar::random(&mut rng);
    let pk = xy(G1::generator() * sk);
    let (r, s, h) = sign(sk, Scalar::random(&mut rng), msg);
    let g = xy(G1::generator());
    let off = (Fr::ONE, Fr::from(2));
    let identity = (Fr::ZERO, Fr::ZERO);
    let mut cases: Vec<SchnorrCase> = vec![
        ("valid", pk, r, s, h),
        ("forged s", pk, r, s + Scalar::ONE, h),
        ("another key", g, r, s, h),
        ("the identity as key", identity, r, s, h),
        ("a key off the curve", off, r, s, h),
        ("the identity as R", pk, identity, s, h),
        ("R off the curve", pk, off, s, h),
        ("s = 0", pk, r, Scalar::ZERO, h),
        ("s = q − 1", pk, r, -Scalar::ONE, h),
        ("h = r − 1 (the largest hash)", pk, r, s, -Fr::ONE),
        (
            "h with the top bit set",
            pk,
            r,
            s,
            Fr::from(2).pow_vartime([253]) + Fr::from(5),
        ),
    ];
    // the generator as key (sk = 1), validly signed
    let (r1, s1, h1) = sign(Scalar::ONE, Scalar::random(&mut rng), msg);
    cases.push(("the generator as key", g, r1, s1, h1));
    // a key equal to R (nonce = sk) and to −R (nonce = −sk): valid signatures
    let (r2, s2, h2) = sign(sk, sk, msg);
    assert_eq!(r2, pk);
    cases.push(("a key equal to R", pk, r2, s2, h2));
    let (r3, s3, h3) = sign(sk, -sk, msg);
    cases.push(("a key equal to −R", pk, r3, s3, h3));
    // s = 0 that verifies: R = −e·pk
    let e = challenge_scalar(h);
    cases.push((
        "a valid s = 0",
        pk,
        xy(-(G1::generator() * sk) * e),
        Scalar::ZERO,
        h,
    ));
    let mut valid = 0;
    for (name, pk, r, s, h) in cases {
        valid += usize::from(native_ok(pk, r, s, h));
        schnorr_case(pk, r, s, h).unwrap_or_else(|f| panic!("{name}: {f:?}"));
    }
    assert_eq!(valid, 5, "the valid cases are valid natively");
    // the output is constrained: claiming the opposite bit fails
    let claim_wrong = schnorr_claim(pk, r, s, h, false);
    assert!(claim_wrong.is_err());
}

/// Decomposing `h + r` instead of `h` (the same field element, another integer, so another
/// challenge) is refused by the canonicity state, whatever the signature.
#[test]
fn a_non_canonical_challenge_decomposition_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = Scalar::random(&mut rng);
    let pk = xy(G1::generator() * sk);
    // a hash small enough that h + r < 2^254 (so the top bit of h + r is a bit)
    let (r, s, h) = (0..)
        .map(|i| sign(sk, Scalar::from(1000 + i), Fr::from(i)))
        .find(|(_, _, h)| h.to_repr().as_ref()[31] < 0x0f)
        .expect("one in 16 hashes is small");
    schnorr_case(pk, r, s, h).unwrap();
    ecc::NON_CANONICAL.with(|f| f.set(true));
    let refused = schnorr_case(pk, r, s, h);
    ecc::NON_CANONICAL.with(|f| f.set(false));
    let failures = refused.expect_err("h + r must not decompose");
    assert!(
        failures.iter().any(|f| f.contains("var")),
        "refused by the chain's canonicity state: {failures:?}"
    );
}
