//! A small rollup history proven once per test binary: three batches over two deposits and a
//! withdrawal, with what an exit needs afterwards.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::Duration,
};

use keel_committer::{
    address_of, council, Call, CouncilKey, CouncilSignature, Deadlines, EmbeddedChain, EmbeddedL1,
    Genesis, Keyed, L1Error, Receipt, SettlementLayer, Settler,
};
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, Srs},
    kzg::{cpu_factory, MsmParams},
    BatchProver, BatchVerifier, Shape,
};
use keel_state::{
    test_utils::{deposit_entry, key, withdraw},
    Account, AccountIndex, Batch, BatchOp, Encode, Epoch, MemStore, MerkleProof, SecretKey, State,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

/// One operation per batch at depth 3: the smallest batch circuit.
pub(crate) const SHAPE: Shape = Shape {
    capacity: 1,
    depth: 3,
    k: 11,
};
pub(crate) const CHAIN: u64 = 7;
pub(crate) const T0: u64 = 1_700_000_000_000;
pub(crate) const DEADLINES: Deadlines = Deadlines {
    block_time: Duration::from_secs(1),
    failover_timeout: Duration::from_secs(10),
    forced_inclusion: Duration::from_secs(60),
    proof: Duration::from_secs(600),
};
/// Deposited into accounts 0 and 1.
pub(crate) const DEPOSITS: [u64; 2] = [1_000, 500];
/// Withdrawn from account 0 in batch 3.
pub(crate) const WITHDRAWN: u64 = 100;

pub(crate) fn funder() -> SecretKey {
    SecretKey::from_seed(&[0xF0; 32])
}
pub(crate) fn primary() -> SecretKey {
    SecretKey::from_seed(&[0xA0; 32])
}
pub(crate) fn standby() -> SecretKey {
    SecretKey::from_seed(&[0xB0; 32])
}

/// The council: a 6-of-8 FROST(secp256k1) key from a DKG, once per test binary.
pub(crate) type Council = (
    BTreeMap<council::frost::Identifier, council::frost::keys::KeyPackage>,
    council::frost::keys::PublicKeyPackage,
);

pub(crate) fn council() -> &'static Council {
    static C: OnceLock<Council> = OnceLock::new();
    C.get_or_init(|| council::dkg(8, 6, ChaCha20Rng::seed_from_u64(68)).unwrap())
}

/// The members `ids` of `c` sign `msg` (FROST refuses fewer than the threshold).
pub(crate) fn council_sign(c: &Council, ids: &[u16], msg: &[u8]) -> CouncilSignature {
    let signers: Vec<_> = ids
        .iter()
        .map(|&i| council::frost::Identifier::try_from(i).unwrap())
        .collect();
    council::sign(
        &c.0,
        &c.1,
        &signers,
        msg,
        ChaCha20Rng::seed_from_u64(msg.len() as u64),
    )
    .unwrap()
}

pub(crate) fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN,
        time_ms: T0,
        depth: SHAPE.depth,
        deadlines: DEADLINES,
        sequencers: vec![primary().public_key(), standby().public_key()],
        allocations: vec![(address_of(&funder().public_key()), 1_000_000)],
        council: CouncilKey::of(&council().1),
    }
}

/// A posted batch: its data and its proof.
pub(crate) struct Posted {
    pub batch: Batch,
    pub data: Vec<u8>,
    pub proof: Vec<u8>,
}

pub(crate) struct Fixture {
    pub verifier: BatchVerifier,
    /// The verifier file (a child process loads the verifier from it).
    pub verifier_file: PathBuf,
    /// Batch 1: deposit to account 0; batch 2: deposit to account 1; batch 3: account 0
    /// withdraws [`WITHDRAWN`].
    pub batches: Vec<Posted>,
    /// Accounts 0 and 1 after batch 3, with their proofs against its root.
    pub accounts: Vec<(Account, MerkleProof)>,
}

/// The CPU prover of [`SHAPE`], its keys shared through cargo's scratch space: child processes
/// load them from it, and a later run reuses them (they are checked against the SRS and shape
/// on load).
pub(crate) fn prover() -> &'static BatchProver {
    static P: OnceLock<BatchProver> = OnceLock::new();
    P.get_or_init(|| {
        let srs = kzg_params_cached(&Srs::Dev, SHAPE.k, &keys_dir()).unwrap();
        let params = MsmParams::new(srs.clone(), cpu_factory());
        let (keys, _) = BatchKeys::load_or_generate(&keys_dir(), &srs, &params, SHAPE).unwrap();
        BatchProver::new(params, keys)
    })
}

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keel-keys")
}

pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let prover = prover();
        let verifier_file = keys_dir().join("batch-N1-D3-k16.verifier");
        std::fs::write(
            &verifier_file,
            prover.keys().verifier_bytes(prover.params().inner()),
        )
        .unwrap();
        let mut state = State::open(MemStore::new(), SHAPE.depth).unwrap();
        let ops = [
            BatchOp::L1(deposit_entry(0, DEPOSITS[0])),
            BatchOp::L1(deposit_entry(1, DEPOSITS[1])),
            withdraw(0, WITHDRAWN, 0),
        ];
        let batches = ops
            .into_iter()
            .map(|op| {
                let w = state.execute_batch(Epoch(1), vec![op]).unwrap();
                let (proof, _) = prover.prove(&w, |_| {}).unwrap();
                Posted {
                    data: w.batch.encode(),
                    batch: w.batch,
                    proof: proof.proof,
                }
            })
            .collect();
        let accounts = (0..2)
            .map(|i| {
                let a = state.account(AccountIndex(i)).unwrap().unwrap();
                (a, state.proof(AccountIndex(i)).unwrap())
            })
            .collect();
        Fixture {
            verifier: prover.verifier(),
            verifier_file,
            batches,
            accounts,
        }
    })
}

/// The verifier, loaded from its file as a separate process does.
pub(crate) fn load_verifier(file: &Path) -> BatchVerifier {
    BatchVerifier::from_bytes(&std::fs::read(file).unwrap()).unwrap()
}

pub(crate) fn open(dir: &Path) -> EmbeddedL1 {
    EmbeddedL1::open(dir, &genesis(), fixture().verifier.clone()).unwrap()
}

/// Signs `call` with `sk`'s next nonce, read from `l1`, and submits it there (in process or
/// over JSON-RPC).
pub(crate) fn send(l1: &dyn EmbeddedChain, sk: &SecretKey, call: Call) -> Result<Receipt, L1Error> {
    l1.send(sk, call)
}

/// `l1`'s calls signed by `key`, as a service takes them.
pub(crate) fn keyed<L: EmbeddedChain + 'static>(l1: &Arc<L>, key: SecretKey) -> Arc<dyn Settler> {
    Arc::new(Keyed::new(l1.clone(), key))
}

/// The two deposits of the fixture, queued by the funder.
pub(crate) fn queue_deposits(l1: &EmbeddedL1) {
    for (i, amount) in DEPOSITS.into_iter().enumerate() {
        let pk = key(i as u32).public_key();
        send(l1, &funder(), Call::Deposit { pk, amount }).unwrap();
    }
}

/// Batch `n` (1-based) of the fixture, as its call.
pub(crate) fn submit(n: usize) -> Call {
    let p = &fixture().batches[n - 1];
    Call::SubmitBatch {
        data: p.data.clone(),
        proof: p.proof.clone(),
    }
}

/// A batch call whose data is `batch` re-encoded, with batch `n`'s proof.
pub(crate) fn submit_edited(n: usize, edit: impl FnOnce(&mut Batch)) -> Call {
    let p = &fixture().batches[n - 1];
    let mut b = p.batch.clone();
    edit(&mut b);
    Call::SubmitBatch {
        data: b.encode(),
        proof: p.proof.clone(),
    }
}

/// The rule that refused `r`.
pub(crate) fn refusal<T: std::fmt::Debug>(r: Result<T, L1Error>) -> keel_committer::Rejection {
    match r {
        Err(e) if e.rejection().is_some() => e.rejection().cloned().expect("checked"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Seals a block `after` past the current head.
pub(crate) fn wait(l1: &EmbeddedL1, after: Duration) {
    let now = l1.head().unwrap().time_ms;
    l1.seal_block(now + after.as_millis() as u64).unwrap();
}
