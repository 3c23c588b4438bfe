//! Native STF benchmarks, each beside a named peer measured in the same run.
//!
//! | id | what | peer |
//! |---|---|---|
//! | `stf/transfers/{mem,rocks}/d24` | signed transfers applied as one batch (signature check, nonce, two leaf updates at depth 24, witness), committed | — (throughput figure; the sequencer issue's target is 10,000 op/s) |
//! | `stf/poseidon2/{keel,poseidon-primitives}` | one tree node (a one-permutation compression), the tree's unit of work | poseidon-primitives (Scroll's native Poseidon, same permutation) |
//! | `stf/verify/{schnorr-grumpkin,ecdsa-secp256k1}` | one signature check | k256 ECDSA verify, what an EVM-style chain checks per transaction |
//! | `stf/verify/schnorr-grumpkin-batch{24,64}` | 24 or 64 signature checks as one batch (per signature): challenges, then one Straus/GLV chain | `stf/verify/pippenger-batch{24,64}`: the same weighted check with halo2curves' Pippenger `msm_serial`; and `stf/verify/schnorr-grumpkin`, one at a time |
//! | `tree/update/d{16,24,32}` | one leaf update: read siblings, rehash the path | — |
//!
//! Run: `cargo bench -p keel-benches -- stf` (or `-- tree`).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use keel_state::{
    test_utils::{fund, funded_state, key},
    tree, AccountIndex, BatchOp, Epoch, Fr, MemStore, RocksStore, RocksStoreOptions, SignedOp,
    State, Transfer,
};

const ACCOUNTS: u32 = 256;
const BATCH: u32 = 128;
const DEPTH: u8 = 24;

fn transfers(n: u32) -> Vec<BatchOp> {
    (0..n)
        .map(|i| {
            let from = i % ACCOUNTS;
            let to = (i * 7 + 1) % ACCOUNTS;
            let nonce = u64::from(i / ACCOUNTS);
            BatchOp::L2(SignedOp::Transfer(Transfer::sign(
                &key(from),
                AccountIndex(from),
                AccountIndex(to),
                1,
                nonce,
            )))
        })
        .collect()
}

fn bench_stf(c: &mut Criterion) {
    let ops = transfers(BATCH);
    let mut g = c.benchmark_group("stf/transfers");
    g.throughput(Throughput::Elements(u64::from(BATCH)));
    g.sample_size(20);

    let genesis = funded_state(DEPTH, ACCOUNTS, 1_000_000);
    g.bench_function(BenchmarkId::new("mem", format!("d{DEPTH}")), |b| {
        b.iter_batched(
            || {
                (
                    State::open(genesis.store().clone(), DEPTH).unwrap(),
                    ops.clone(),
                )
            },
            |(mut s, ops)| s.execute_batch(Epoch(1), ops).unwrap(),
            BatchSize::LargeInput,
        )
    });

    // RocksDB with an fsync per batch: each iteration continues the chain with fresh nonces;
    // only execution and commit are timed, not signing.
    let dir = tempfile_dir();
    let store = RocksStore::open(&dir, RocksStoreOptions::default()).unwrap();
    let mut rocks = State::open(store, DEPTH).unwrap();
    fund(&mut rocks, ACCOUNTS, u64::MAX / 4);
    g.bench_function(BenchmarkId::new("rocks", format!("d{DEPTH}")), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let nonce =
                    |s: &State<RocksStore>, i| s.account(AccountIndex(i)).unwrap().unwrap().nonce;
                let ops: Vec<BatchOp> = (0..BATCH)
                    .map(|i| {
                        let (from, to) = (i % ACCOUNTS, (i * 7 + 1) % ACCOUNTS);
                        let n = nonce(&rocks, from) + u64::from(i / ACCOUNTS);
                        let t =
                            Transfer::sign(&key(from), AccountIndex(from), AccountIndex(to), 1, n);
                        BatchOp::L2(SignedOp::Transfer(t))
                    })
                    .collect();
                let start = std::time::Instant::now();
                rocks.execute_batch(Epoch(1), ops).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    drop(rocks);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("keel-bench-stf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// poseidon-primitives' textbook permutation with the same generated constants, in the same
/// compression as `keel_state::tree::node` (one permutation, the domain in the capacity).
mod peer {
    use keel_state::{poseidon, Fr};
    use poseidon_primitives::poseidon::primitives::{ConstantLength, Hash, Spec};

    #[derive(Debug)]
    pub(crate) struct P128;
    impl Spec<Fr, 3, 2> for P128 {
        fn full_rounds() -> usize {
            poseidon::R_F
        }
        fn partial_rounds() -> usize {
            poseidon::R_P
        }
        fn sbox(x: Fr) -> Fr {
            let x2 = x.square();
            x2.square() * x
        }
        fn secure_mds() -> usize {
            0
        }
    }

    pub(crate) type Hasher = Hash<Fr, P128, ConstantLength<2>, 3, 2>;

    pub(crate) fn hash2(h: &Hasher, a: Fr, b: Fr) -> Fr {
        let mut st = [poseidon::capacity(poseidon::Domain::Node, 2), a, b];
        h.permute(&mut st);
        st[1]
    }
}

fn bench_poseidon(c: &mut Criterion) {
    let (a, b) = (Fr::from(12345), Fr::from(67890));
    let peer = peer::Hasher::init();
    assert_eq!(
        peer::hash2(&peer, a, b),
        tree::node(a, b),
        "peer computes another function"
    );
    let mut g = c.benchmark_group("stf/poseidon2");
    g.throughput(Throughput::Elements(1));
    g.bench_function("keel", |bn| {
        bn.iter(|| tree::node(std::hint::black_box(a), b))
    });
    g.bench_function("poseidon-primitives", |bn| {
        bn.iter(|| peer::hash2(&peer, std::hint::black_box(a), b))
    });
    g.finish();
}

fn bench_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("stf/verify");
    g.throughput(Throughput::Elements(1));
    let sk = key(1);
    let pk = sk.public_key();
    let msg = Fr::from(42);
    let sig = sk.sign(&[msg]);
    g.bench_function("schnorr-grumpkin", |b| {
        b.iter(|| pk.verify(std::hint::black_box(&[msg]), &sig).unwrap())
    });
    g.finish();

    // n signatures checked together (challenges hashed, then one weighted sum), per signature:
    // what the sequencer's verifier stage does with a group; 24 is about the group 64
    // closed-loop clients form, 64 a full one. The peer checks the same weighted sum with
    // halo2curves' Pippenger `msm_serial` (the verifier before the Straus/GLV chain).
    for n in [24u64, 64] {
        let mut g = c.benchmark_group("stf/verify");
        g.throughput(Throughput::Elements(n));
        let items: Vec<_> = (0..n)
            .map(|i| {
                let sk = key(i as u32 + 1);
                let msg = Fr::from(i);
                (sk.public_key(), msg, sk.sign(&[msg]))
            })
            .collect();
        g.bench_function(format!("schnorr-grumpkin-batch{n}"), |b| {
            b.iter(|| {
                let p: Vec<_> = items
                    .iter()
                    .map(|(pk, msg, sig)| pk.prepare(std::hint::black_box(&[*msg]), sig))
                    .collect();
                assert!(keel_state::signature::verify_batch(&p));
            })
        });
        g.bench_function(format!("pippenger-batch{n}"), |b| {
            b.iter(|| assert!(pippenger::verify_batch(std::hint::black_box(&items))))
        });
        g.finish();
    }

    let mut g = c.benchmark_group("stf/verify");
    g.throughput(Throughput::Elements(1));

    use k256::ecdsa::{signature::Verifier, Signature as EcdsaSig, SigningKey};
    let ek = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let evk = *ek.verifying_key();
    let m = [42u8; 32];
    let es: EcdsaSig = k256::ecdsa::signature::Signer::sign(&ek, &m);
    g.bench_function("ecdsa-secp256k1", |b| {
        b.iter(|| evk.verify(std::hint::black_box(&m), &es).unwrap())
    });
    g.finish();
}

fn bench_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree/update");
    g.throughput(Throughput::Elements(1));
    for depth in [16u8, 24, 32] {
        let s = State::open(MemStore::new(), depth).unwrap();
        let mut i = 0u32;
        g.bench_function(BenchmarkId::from_parameter(format!("d{depth}")), |b| {
            b.iter(|| {
                i = i.wrapping_add(2_654_435_761) & ((1u64 << depth.min(31)) - 1) as u32;
                let idx = AccountIndex(i);
                let sib = tree::siblings(&s, depth, idx).unwrap();
                tree::updated_path(idx, Fr::from(u64::from(i)), &sib)
            })
        });
    }
    g.finish();
}

/// The peer of the batch rows: the same weighted check `(Σ zᵢsᵢ)·G − Σ zᵢ·Rᵢ − Σ (zᵢeᵢ)·pkᵢ = 0`
/// (same challenges, BLAKE2b-derived 128-bit weights) with halo2curves' Pippenger sum, the
/// 128-bit weights of the `Rᵢ` kept short so that sum has half the windows.
mod pippenger {
    use halo2_proofs::halo2curves::{
        ff::{Field, PrimeField},
        group::Group,
        grumpkin::{Fr as Scalar, G1Affine, G1},
        msm::msm_serial,
    };
    use keel_state::{Fr, PublicKey, Signature};

    pub(super) fn verify_batch(items: &[(PublicKey, Fr, Signature)]) -> bool {
        let seed = {
            let mut st = blake2b_simd::Params::new().hash_length(64).to_state();
            for (pk, _, sig) in items {
                st.update(&pk.to_bytes());
                st.update(&sig.to_bytes());
            }
            st.finalize()
        };
        let (mut z_r, mut r_bases, mut z_pk, mut pk_bases) = (vec![], vec![], vec![], vec![]);
        let mut s_sum = Scalar::ZERO;
        for (i, (pk, msg, sig)) in items.iter().enumerate() {
            let r = sig.r();
            let (px, py) = pk.xy();
            let h = keel_state::signature::challenge_hash((r.x, r.y), (px, py), &[*msg]);
            let e = keel_state::signature::challenge_scalar(h);
            let s = Scalar::from_repr(sig.s_bytes()).expect("a decoded signature's s");
            let h = blake2b_simd::Params::new()
                .hash_length(16)
                .to_state()
                .update(seed.as_bytes())
                .update(&(i as u64).to_le_bytes())
                .finalize();
            let mut wide = [0u8; 32];
            wide[..16].copy_from_slice(h.as_bytes());
            let z = Scalar::from_repr(wide).expect("128-bit");
            s_sum += z * s;
            z_r.push(z);
            r_bases.push(r);
            z_pk.push(-(z * e));
            pk_bases.push(pk.point());
        }
        z_pk.push(s_sum);
        pk_bases.push(G1Affine::generator());
        let mut acc_r = G1::identity();
        msm_serial(&z_r, &r_bases, &mut acc_r);
        let mut acc = G1::identity();
        msm_serial(&z_pk, &pk_bases, &mut acc);
        bool::from((acc - acc_r).is_identity())
    }
}

criterion_group!(benches, bench_stf, bench_poseidon, bench_verify, bench_tree);
criterion_main!(benches);
