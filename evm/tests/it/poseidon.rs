//! The generated on-chain Poseidon computes keel-state's permutation.

use alloy::primitives::U256;
use keel_evm::{
    anvil::{Anvil, AnvilConfig},
    contracts::{deploy, KeelPoseidon},
};
use keel_state::{poseidon, Fr};

use crate::harness::{account, u};

#[tokio::test]
async fn on_chain_poseidon_is_keel_states() {
    let anvil = Anvil::start(&AnvilConfig::default()).expect("anvil");
    let (_, p) = account(&anvil, 0);
    let at = deploy(&p, "KeelPoseidon", &[]).await.expect("deploy");
    let contract = KeelPoseidon::new(at, p);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut states = vec![[Fr::zero(); 3], [-Fr::one(); 3], [0, 1, 2].map(Fr::from)];
    for _ in 0..13 {
        states
            .push([0; 3].map(|_| {
                Fr::from(next()) * Fr::from(next()) * Fr::from(next()) + Fr::from(next())
            }));
    }
    for s in states {
        let mut want = s;
        poseidon::permute(&mut want);
        let got = contract
            .permute(s.map(|v| u(&v)))
            .call()
            .await
            .expect("permute");
        assert_eq!(got, want.map(|v| u(&v)), "state {s:?}");
    }
    // a non-canonical element is refused, not reduced
    let modulus = u(&-Fr::one()) + U256::from(1);
    let err = contract
        .permute([modulus, U256::ZERO, U256::ZERO])
        .call()
        .await
        .expect_err("the modulus is not a field element");
    assert!(
        err.as_decoded_error::<KeelPoseidon::NotCanonical>()
            .is_some(),
        "{err}"
    );
}
