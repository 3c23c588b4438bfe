//! The gas table of Keel's contracts, measured on a local anvil:
//!
//! ```text
//! cargo run -p keel-evm --example gas
//! ```
//!
//! Every figure is a transaction's `gasUsed` (21,000 of intrinsic cost included) on a fresh
//! anvil; batches are real keel-state batches of signed transfers. The batch rows use the test
//! verifier's digest, so they show the rollup's own work; the halo2 verifier's cost is its own
//! row, measured with a real proof of the smallest batch circuit (one operation, depth 3; the
//! verifier's work does not grow with the circuit's capacity or depth).

#[path = "../tests/it/harness.rs"]
#[allow(dead_code)]
mod harness;

use alloy::{network::ReceiptResponse, primitives::Address, providers::Provider};
use harness::*;
use keel_evm::contracts::{artifact, KeelPoseidon};
use keel_state::{
    test_utils::{deposit, key, signed_transfer, transfer},
    AccountIndex, Encode,
};

macro_rules! gas {
    ($call:expr) => {{
        let r = keel_evm::transact($call).await.expect("sent");
        assert!(r.status(), "{} reverted: {r:?}", stringify!($call));
        r.gas_used()
    }};
}

/// Gas of posting a batch of `n` transfers among 8 funded accounts on a rollup of `depth`.
async fn batch_gas(depth: u8, n: usize) -> u64 {
    let mut net = Net::start_with_depth(depth).await;
    for i in 0..8 {
        net.deposit(i, 1_000_000).await;
    }
    let b = net.build(1, (0..8).map(|i| deposit(i, 1_000_000)).collect());
    gas!(net.primary.postBatch(data(&b), digest_proof(&b)));
    let mut nonces = [0u64; 8];
    let ops = (0..n)
        .map(|j| {
            let from = (j % 8) as u32;
            let op = transfer(from, (from + 1) % 8, 1, nonces[from as usize]);
            nonces[from as usize] += 1;
            op
        })
        .collect();
    let b = net.build(1, ops);
    gas!(net.primary.postBatch(data(&b), digest_proof(&b)))
}

/// Calldata's gas: 16 a nonzero byte, 4 a zero byte.
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// One Poseidon permutation's execution gas (the estimate less 21,000 and the calldata): ours
/// (`KeelPoseidon.permute`) and the peer's, poseidon-solidity 0.0.5's `PoseidonT3.hash` (one
/// permutation of the same width and rounds), compiled here with the same solc and optimizer
/// settings as our contracts.
async fn poseidon_gas(net: &Net) -> (u64, u64) {
    use alloy::{rpc::types::TransactionRequest, sol_types::SolCall};
    alloy::sol! {
        function hash(uint256[2] memory) public pure returns (uint256);
    }
    let p = net.primary.provider();
    let ours = net.primary.poseidon().call().await.unwrap();
    let input =
        KeelPoseidon::permuteCall([1, 2, 3].map(alloy::primitives::U256::from)).abi_encode();
    let tx = TransactionRequest::default()
        .to(ours)
        .input(input.clone().into());
    let mine = p.estimate_gas(tx).await.unwrap() - 21_000 - calldata_gas(&input);
    let path =
        keel_evm::repo_root().join("contracts/node_modules/poseidon-solidity/PoseidonT3.sol");
    let source = std::fs::read_to_string(&path).expect("npm ci in contracts/ installs the peer");
    let peer = keel_evm::verifier::compile_with(&source, true).expect("the peer compiles");
    let at = keel_evm::contracts::deploy_code(p, "PoseidonT3", peer.bytecode.to_vec())
        .await
        .unwrap();
    let input = hashCall([1, 2].map(alloy::primitives::U256::from)).abi_encode();
    let tx = TransactionRequest::default()
        .to(at)
        .input(input.clone().into());
    let theirs = p.estimate_gas(tx).await.unwrap() - 21_000 - calldata_gas(&input);
    (mine, theirs)
}

/// Gas of the halo2 verifier (the split pair) on a real proof, and of `postBatch` with it.
async fn verifier_gas() -> (u64, u64, usize, Vec<usize>) {
    use keel_prover::{
        keys::{kzg_params, BatchKeys, Srs},
        kzg::{cpu_factory, MsmParams},
        BatchProver, Shape, Transcript,
    };
    let shape = Shape {
        capacity: 1,
        depth: 3,
        k: 11,
    };
    let srs = kzg_params(&Srs::Dev, shape.k).unwrap();
    let params = MsmParams::new(srs.clone(), cpu_factory());
    let keys = BatchKeys::generate(&params, shape).unwrap();
    let prover = BatchProver::new(params, keys).with_transcript(Transcript::Keccak);
    let contracts = keel_evm::verifier::generate(&srs, prover.keys().vk()).unwrap();
    let mut net = Net::start_with_depth(shape.depth).await;
    let verifier = deploy_verifier(net.primary.provider(), &contracts)
        .await
        .unwrap();
    let rollup = net.redeploy_with_verifier(verifier).await;
    net.deposit_to(&rollup, 0, 100).await;
    let witness = net
        .state
        .execute_batch(keel_state::Epoch(1), vec![deposit(0, 100)])
        .unwrap();
    let (proof, _) = prover.prove(&witness, |_| {}).unwrap();
    let mut calldata = public_inputs(&witness.batch)
        .iter()
        .flat_map(|x| x.to_be_bytes::<32>())
        .collect::<Vec<u8>>();
    calldata.extend_from_slice(&proof.proof);
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(verifier)
        .input(calldata.into());
    let alone = net.primary.provider().estimate_gas(tx).await.unwrap();
    let post = gas!(rollup.postBatch(data(&witness.batch), proof.proof.clone().into()));
    let sizes = contracts
        .parts
        .iter()
        .map(|p| p.deployed_bytecode.len())
        .collect();
    (alone, post, proof.proof.len(), sizes)
}

#[tokio::main]
async fn main() {
    let mut rows: Vec<(String, u64, String)> = Vec::new();

    let (alone, post, proof_bytes, verifier_sizes) = verifier_gas().await;
    rows.push((
        "halo2 batch verifier (SHPLONK, split in two contracts), called alone".into(),
        alone,
        format!("estimate; {proof_bytes}-byte proof, 21,000 intrinsic and calldata included"),
    ));
    rows.push((
        "batch with the halo2 verifier (1 deposit, depth 3)".into(),
        post,
        "postBatch: the rollup's work and the verifier's".into(),
    ));

    // one Poseidon permutation, ours and the peer's, in the same run
    {
        let net = Net::start_with_depth(8).await;
        let (mine, theirs) = poseidon_gas(&net).await;
        rows.push((
            "Poseidon permutation, execution only (ours: generated KeelPoseidon)".into(),
            mine,
            format!(
                "peer poseidon-solidity 0.0.5 PoseidonT3.hash, same run: {theirs} ({:.2}× the peer's gas)",
                mine as f64 / theirs as f64
            ),
        ));
    }

    for (label, depth, n) in [("default", 8u8, 12usize), ("production", 26, 51)] {
        let g = batch_gas(depth, n).await;
        rows.push((
            format!("batch, {label} capacity ({n} transfers, depth {depth})"),
            g,
            format!("{} per transfer; verifier not included", g / n as u64),
        ));
    }

    let mut net = Net::start_with_depth(24).await;
    let (x, y) = key(0).public_key().xy();
    rows.push((
        "deposit (new account)".into(),
        gas!(net.citizen.deposit(u(&x), u(&y)).value(wei(100))),
        String::new(),
    ));
    rows.push((
        "deposit (top-up)".into(),
        gas!(net.citizen.deposit(u(&x), u(&y)).value(wei(100))),
        String::new(),
    ));
    net.deposit(1, 100).await;
    let b = net.build(
        1,
        vec![
            deposit(0, 100),
            deposit(0, 100),
            deposit(1, 100),
            transfer(0, 1, 5, 0),
        ],
    );
    gas!(net.primary.postBatch(data(&b), digest_proof(&b)));
    let forced = signed_transfer(1, 0, 1, 0);
    rows.push((
        "forced transfer".into(),
        gas!(net.citizen.force(forced.encode().into())),
        String::new(),
    ));
    net.deposit(2, 50).await; // position 4, never included: reclaimed below
    {
        // the council (3 of 5): a rotation and an activation, on a second rollup so that this
        // one's lease and exit mode go on below
        use keel_evm::council::{self, Action};
        use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
        let c = Net::start_with_depth(24).await;
        let r = &c.citizen;
        let evm = r.provider().get_chain_id().await.unwrap();
        let (keys, public) = &c.council;
        let signers = members(&[1, 2, 3]);
        let set = vec![c.addresses[0], c.addresses[1], c.addresses[2]];
        let ack_keys =
            council::ack_key_words(&[0, 1, 2].map(|i| keel_state::test_utils::key(i).public_key()));
        let payload = council::rotation_payload(&set, &ack_keys);
        let msg = council::message(evm, *r.address(), CHAIN_ID, 0, Action::Rotate, payload);
        let sig = council::sign(keys, public, &signers, &msg, ChaCha20Rng::seed_from_u64(1));
        let [rx, ry, z] = council::signature_words(sig.unwrap().inner()).unwrap();
        rows.push((
            "council rotation (3 sequencers, FROST 3 of 5)".into(),
            gas!(r.councilRotateSequencers(set, ack_keys, rx, ry, z)),
            String::new(),
        ));
        let msg = council::message(evm, *r.address(), CHAIN_ID, 1, Action::ExitMode, [0; 32]);
        let sig = council::sign(keys, public, &signers, &msg, ChaCha20Rng::seed_from_u64(2));
        let [rx, ry, z] = council::signature_words(sig.unwrap().inner()).unwrap();
        rows.push((
            "council exit mode activation (FROST 3 of 5)".into(),
            gas!(r.councilActivateExitMode(rx, ry, z)),
            String::new(),
        ));
    }
    rows.push((
        "heartbeat".into(),
        gas!(net.primary.heartbeat()),
        String::new(),
    ));
    net.advance(FAILOVER + 1).await;
    rows.push((
        "lease claim".into(),
        gas!(net.standby.claimLease()),
        String::new(),
    ));
    net.advance(FORCED + 1).await;
    rows.push((
        "exit mode activation (deadline)".into(),
        gas!(net.citizen.activateExitMode()),
        String::new(),
    ));
    let a = account_of(&net.state, 0);
    let proof = net.state.proof(AccountIndex(0)).unwrap();
    let recipient = Address::from([9; 20]);
    let exit = gas!(net.citizen.exit(
        0,
        u(&x),
        u(&y),
        a.balance,
        a.nonce,
        proof.siblings.iter().map(u).collect(),
        recipient,
        keel_evm::l1::exit_signature(&key(0), CHAIN_ID, AccountIndex(0), recipient),
    ));
    rows.push((
        "exit (depth 24, Merkle proof + owner's Schnorr signature)".into(),
        exit,
        String::new(),
    ));
    rows.push((
        "reclaim of an unincluded deposit".into(),
        gas!(net.citizen.reclaim(4)),
        String::new(),
    ));

    println!("| operation | gas | note |\n|---|---:|---|");
    for (what, gas, note) in rows {
        println!("| {what} | {gas} | {note} |");
    }
    println!("\n| contract | runtime bytes (EIP-170: 24,576) |\n|---|---:|");
    for name in ["KeelRollup", "KeelPoseidon"] {
        println!(
            "| {name} | {} |",
            artifact(name).unwrap().deployed_bytecode.len()
        );
    }
    for (i, size) in verifier_sizes.iter().enumerate() {
        let n = verifier_sizes.len();
        println!(
            "| batch verifier, part {} of {n} (generated) | {size} |",
            i + 1
        );
    }
}
