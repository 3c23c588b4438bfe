//! The generated batch verifier on anvil: a real proof (Keccak transcript) of a real batch is
//! accepted through the rollup, a tampered one is refused with `InvalidProof`.

use std::sync::OnceLock;

use alloy::primitives::Bytes;
use halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG};
use keel_evm::{contracts::KeelRollup::KeelRollupErrors as E, verifier};
use keel_prover::{
    keys::{kzg_params_cached, BatchKeys, Srs},
    kzg::{cpu_factory, MsmParams},
    BatchProver, Shape, Transcript,
};
use keel_state::{test_utils::deposit, Encode, Epoch, MemStore, State};

use crate::{harness::*, ok, refused};

/// The smallest batch circuit (one operation at depth 3), as the prover's tests use.
pub(crate) const SHAPE: Shape = Shape {
    capacity: 1,
    depth: 3,
    k: 11,
};

fn shared_keys() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keel-keys")
}

pub(crate) fn srs() -> &'static ParamsKZG<Bn256> {
    static SRS: OnceLock<ParamsKZG<Bn256>> = OnceLock::new();
    SRS.get_or_init(|| kzg_params_cached(&Srs::Dev, SHAPE.k, &shared_keys()).unwrap())
}

/// The batch prover with the EVM's transcript, keys shared by the test binary.
pub(crate) fn prover() -> &'static BatchProver {
    static PROVER: OnceLock<BatchProver> = OnceLock::new();
    PROVER.get_or_init(|| {
        let params = MsmParams::new(srs().clone(), cpu_factory());
        let (keys, _) = BatchKeys::load_or_generate(&shared_keys(), srs(), &params, SHAPE).unwrap();
        BatchProver::new(params, keys).with_transcript(Transcript::Keccak)
    })
}

/// The verifier contracts generated from [`prover`]'s key, once per test binary.
pub(crate) fn contracts() -> &'static verifier::VerifierContracts {
    static CONTRACTS: OnceLock<verifier::VerifierContracts> = OnceLock::new();
    CONTRACTS.get_or_init(|| {
        verifier::generate(srs(), prover().keys().vk()).expect("the verifier compiles")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_proof_verifies_on_chain_and_a_tampered_one_is_refused() {
    let prover = prover();
    let contracts = contracts();
    for part in &contracts.parts {
        eprintln!(
            "batch verifier part: {} bytes of runtime code",
            part.deployed_bytecode.len()
        );
    }

    let mut net = Net::start_with_depth(SHAPE.depth).await;
    let verifier_at = deploy_verifier(net.primary.provider(), contracts)
        .await
        .unwrap();
    let r = net.redeploy_with_verifier(verifier_at).await;
    net.deposit_to(&r, 0, 100).await;

    let mut state = State::open(MemStore::new(), SHAPE.depth).unwrap();
    let witness = state
        .execute_batch(Epoch(1), vec![deposit(0, 100)])
        .unwrap();
    let (proof, _) = prover.prove(&witness, |_| {}).unwrap();
    // the native verifier reads the same transcript; halo2's Blake2b reading refuses it
    prover.verifier().verify(&proof).unwrap();
    assert!(prover
        .verifier()
        .with_transcript(Transcript::Blake2b)
        .verify(&proof)
        .is_err());

    let data = Bytes::from(witness.batch.encode());
    let mut tampered = proof.proof.clone();
    tampered[40] ^= 1;
    assert!(matches!(
        refused!(r.postBatch(data.clone(), Bytes::from(tampered))),
        E::InvalidProof(_)
    ));
    // a proof of the right batch with a public input the contract does not compute: another
    // batch number in the header changes the public inputs, not the proof
    let mut renumbered = witness.batch.clone();
    renumbered.number.0 = 1;
    renumbered.new_root = renumbered.prev_root;
    assert!(matches!(
        refused!(r.postBatch(
            Bytes::from(renumbered.encode()),
            Bytes::from(proof.proof.clone())
        )),
        E::InvalidProof(_)
    ));
    let receipt = ok!(r.postBatch(data, Bytes::from(proof.proof.clone())));
    eprintln!(
        "postBatch of 1 op with the halo2 verifier: {} gas ({} proof bytes)",
        receipt.gas_used,
        proof.proof.len()
    );
    assert_eq!(r.batchNumber().call().await.unwrap(), 1);
    assert_eq!(
        r.stateRoot().call().await.unwrap(),
        u(&witness.batch.new_root)
    );
}
