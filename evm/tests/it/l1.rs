//! `EvmL1`: typed refusals at connection, settled reads, and an exit made from L1 data alone
//! (the reorg, through the committer, is in `reorg.rs`).

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use keel_evm::{
    anvil::DEV_KEYS,
    contracts::{deploy, KeelRollup::KeelRollupErrors as E},
    l1::{exit_from_l1, EvmConfig, EvmL1, EvmL1Error},
};
use keel_state::test_utils::{deposit, key, transfer};

use crate::{harness::*, ok};

fn config(net: &Net, confirmations: u64) -> EvmConfig {
    EvmConfig {
        url: net.url(),
        evm_chain_id: 31337,
        rollup: *net.primary.address(),
        chain_id: Some(CHAIN_ID),
        confirmations,
    }
}

fn dev(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_refuses_bad_input_with_typed_errors_and_changes_nothing() {
    let net = Net::start().await;
    let good = config(&net, 1);
    let try_with = |c: EvmConfig, k: PrivateKeySigner| async move { EvmL1::connect(&c, k).await };

    let c = EvmConfig {
        url: "not a url".into(),
        ..good.clone()
    };
    assert!(matches!(
        try_with(c, dev(0)).await,
        Err(EvmL1Error::BadUrl { .. })
    ));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = EvmConfig {
        url: format!("http://{closed}"),
        ..good.clone()
    };
    assert!(matches!(
        try_with(c, dev(0)).await,
        Err(EvmL1Error::Unreachable { .. })
    ));
    let c = EvmConfig {
        evm_chain_id: 1,
        ..good.clone()
    };
    assert!(matches!(
        try_with(c, dev(0)).await,
        Err(EvmL1Error::WrongChain {
            expected: 1,
            got: 31337
        })
    ));
    let c = EvmConfig {
        rollup: Address::from([0x42; 20]),
        ..good.clone()
    };
    assert!(matches!(
        try_with(c, dev(0)).await,
        Err(EvmL1Error::NoContract { .. })
    ));
    let other = deploy(net.primary.provider(), "KeelPoseidon", &[])
        .await
        .unwrap();
    let c = EvmConfig {
        rollup: other,
        ..good.clone()
    };
    assert!(matches!(
        try_with(c, dev(0)).await,
        Err(EvmL1Error::NotKeelRollup { .. })
    ));
    let c = EvmConfig {
        chain_id: Some(CHAIN_ID + 1),
        ..good.clone()
    };
    assert!(matches!(
        try_with(c, dev(0)).await,
        Err(EvmL1Error::NotKeelRollup { .. })
    ));
    let broke = PrivateKeySigner::random();
    assert!(matches!(
        try_with(good.clone(), broke).await,
        Err(EvmL1Error::NoFunds { .. })
    ));

    let l1 = try_with(good, dev(0))
        .await
        .expect("the deployment's own settings connect");
    let s = l1.state().await.unwrap();
    assert_eq!(
        (s.epoch, s.batch_number, s.queue_len, s.exit_reason),
        (1, 0, 0, 0)
    );
    // a refusal comes back as the contract's named error
    let standby = EvmL1::connect(&config(&net, 1), dev(1)).await.unwrap();
    assert!(matches!(
        standby.claim_lease().await,
        Err(EvmL1Error::Refused(E::LeaseNotExpired(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_from_l1_data_alone() {
    let mut net = Net::start().await;
    net.deposit(0, 100).await;
    net.deposit(1, 40).await;
    for b in [
        net.build(1, vec![deposit(0, 100), deposit(1, 40)]),
        net.build(1, vec![transfer(0, 1, 25, 0)]),
    ] {
        ok!(net.primary.postBatch(data(&b), digest_proof(&b)));
    }
    net.advance(PROOF + 1).await;
    ok!(net.citizen.activateExitMode());
    let l1 = EvmL1::connect(&config(&net, 1), dev(2)).await.unwrap();
    let to = net.addresses[3];
    assert_eq!(exit_from_l1(&l1, &key(0), to).await.unwrap(), 75);
    assert_eq!(exit_from_l1(&l1, &key(1), to).await.unwrap(), 65);
    assert!(matches!(
        exit_from_l1(&l1, &key(0), to).await,
        Err(EvmL1Error::Refused(E::AlreadyExited(_)))
    ));
    assert_eq!(net.citizen.claimable(to).call().await.unwrap(), wei(140));
    // a key with no account on the L1
    assert!(matches!(
        exit_from_l1(&l1, &key(9), to).await,
        Err(EvmL1Error::Data(_))
    ));
}
