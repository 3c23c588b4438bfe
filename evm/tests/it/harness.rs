//! A rollup deployed on a fresh anvil, with a keel-state mirror that builds real batches.

use alloy::{
    primitives::{keccak256, Address, Bytes, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use std::collections::BTreeMap;

use keel_evm::{
    anvil::{Anvil, AnvilConfig, DEV_KEYS},
    contracts::{deploy, deploy_rollup, KeelRollup},
    council::{self, frost},
};
use keel_state::{test_utils::key, AccountIndex, Batch, BatchOp, Encode, Epoch, MemStore, State};
use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};

/// The rollup's chain id in these tests.
pub(crate) const CHAIN_ID: u64 = 7;
/// The tree depth (small: exits cost a permutation per level).
pub(crate) const DEPTH: u8 = 4;
pub(crate) const FAILOVER: u64 = 30;
pub(crate) const FORCED: u64 = 1800;
pub(crate) const PROOF: u64 = 7200;
/// The deterministic keys (`key(i)`) the two sequencers acknowledge with.
pub(crate) const ACK_KEYS: [u32; 2] = [1000, 1001];
/// Wei per L2 unit.
pub(crate) const GWEI: u64 = 1_000_000_000;

pub(crate) use keel_evm::word as u;

pub(crate) fn wei(units: u64) -> U256 {
    U256::from(units) * U256::from(GWEI)
}

/// One of anvil's dev accounts, as a provider that signs with its key.
pub(crate) fn account(anvil: &Anvil, i: usize) -> (Address, DynProvider) {
    let signer: PrivateKeySigner = DEV_KEYS[i].parse().expect("a dev key");
    let address = signer.address();
    let provider = keel_evm::signing_provider(anvil.url().parse().expect("a URL"), signer);
    (address, provider)
}

pub(crate) struct Net {
    anvil: Anvil,
    /// dev 0: the primary (and deployer); dev 1: the standby; dev 2: a citizen; dev 3: nobody.
    pub(crate) primary: KeelRollup::KeelRollupInstance<DynProvider>,
    pub(crate) standby: KeelRollup::KeelRollupInstance<DynProvider>,
    pub(crate) citizen: KeelRollup::KeelRollupInstance<DynProvider>,
    pub(crate) stranger: KeelRollup::KeelRollupInstance<DynProvider>,
    pub(crate) addresses: [Address; 4],
    /// What the rollup's state is once every built batch is posted.
    pub(crate) state: State<MemStore>,
    /// The council (3 of 5, from a DKG): each member's key package and the public package.
    pub(crate) council: (
        BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
        frost::keys::PublicKeyPackage,
    ),
}

/// The council members' identifiers `1..=n`.
pub(crate) fn members(ids: &[u16]) -> Vec<frost::Identifier> {
    ids.iter()
        .map(|&i| frost::Identifier::try_from(i).expect("nonzero"))
        .collect()
}

impl Net {
    pub(crate) async fn start() -> Self {
        Self::start_with_depth(DEPTH).await
    }

    /// [`Net::start`] with a tree of `depth`.
    pub(crate) async fn start_with_depth(depth: u8) -> Self {
        let anvil = Anvil::start(&AnvilConfig::default()).expect("anvil (npm ci in contracts/)");
        let accounts: Vec<_> = (0..4).map(|i| account(&anvil, i)).collect();
        let verifier = deploy(&accounts[0].1, "DigestVerifier", &[])
            .await
            .expect("verifier");
        let council = council::dkg(5, 3, ChaCha20Rng::seed_from_u64(25)).expect("DKG");
        let (council_x, council_y) = council::group_key(&council.1).expect("group key");
        let genesis = KeelRollup::Genesis {
            chainId: CHAIN_ID,
            depth,
            failoverTimeout: FAILOVER,
            forcedInclusionDeadline: FORCED,
            proofDeadline: PROOF,
            sequencers: vec![accounts[0].0, accounts[1].0],
            ackKeys: council::ack_key_words(&ACK_KEYS.map(|i| key(i).public_key())),
            poseidon: Address::ZERO,
            verifier,
            councilX: council_x,
            councilY: council_y,
        };
        let (rollup, _) = deploy_rollup(&accounts[0].1, genesis)
            .await
            .expect("rollup");
        let at = |i: usize| KeelRollup::new(rollup, accounts[i].1.clone());
        Self {
            primary: at(0),
            standby: at(1),
            citizen: at(2),
            stranger: at(3),
            addresses: [0, 1, 2, 3].map(|i| accounts[i].0),
            state: State::open(MemStore::new(), depth).expect("state"),
            council,
            anvil,
        }
    }

    /// Deploys another rollup with this one's genesis but `verifier`, as the primary; the
    /// mirror state is fresh. Returns it as the primary sees it.
    pub(crate) async fn redeploy_with_verifier(
        &mut self,
        verifier: Address,
    ) -> KeelRollup::KeelRollupInstance<DynProvider> {
        let r = &self.primary;
        let genesis = KeelRollup::Genesis {
            chainId: r.chainId().call().await.unwrap(),
            depth: r.depth().call().await.unwrap(),
            failoverTimeout: FAILOVER,
            forcedInclusionDeadline: FORCED,
            proofDeadline: PROOF,
            sequencers: r.sequencers().call().await.unwrap(),
            ackKeys: r.ackKeys().call().await.unwrap(),
            poseidon: Address::ZERO,
            verifier,
            councilX: r.councilX().call().await.unwrap(),
            councilY: r.councilY().call().await.unwrap(),
        };
        let (at, _) = deploy_rollup(r.provider(), genesis).await.expect("rollup");
        KeelRollup::new(at, r.provider().clone())
    }

    /// Deposits `units` for demo account `i`'s key into `rollup` (from its provider).
    pub(crate) async fn deposit_to(
        &self,
        rollup: &KeelRollup::KeelRollupInstance<DynProvider>,
        i: u32,
        units: u64,
    ) {
        let (x, y) = key(i).public_key().xy();
        let receipt = keel_evm::transact(rollup.deposit(u(&x), u(&y)).value(wei(units)))
            .await
            .expect("deposit");
        assert!(receipt.status(), "the deposit reverted");
    }

    /// Deposits `units` for demo account `i`'s key from the citizen.
    pub(crate) async fn deposit(&self, i: u32, units: u64) {
        let (x, y) = key(i).public_key().xy();
        let receipt = keel_evm::transact(self.citizen.deposit(u(&x), u(&y)).value(wei(units)))
            .await
            .expect("deposit");
        assert!(receipt.status(), "the deposit reverted");
    }

    /// Executes `ops` on the mirror as the next batch of `epoch`; returns the batch.
    pub(crate) fn build(&mut self, epoch: u64, ops: Vec<BatchOp>) -> Batch {
        self.state
            .execute_batch(Epoch(epoch), ops)
            .expect("a valid batch")
            .batch
    }

    /// The anvil's URL.
    pub(crate) fn url(&self) -> String {
        self.anvil.url()
    }

    /// Moves the chain's clock forward and mines a block.
    pub(crate) async fn advance(&self, seconds: u64) {
        let p = self.primary.provider();
        p.raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,))
            .await
            .expect("evm_increaseTime");
        p.raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .expect("evm_mine");
    }
}

pub(crate) use keel_evm::deploy::deploy_verifier;

/// The public inputs the contract builds for `batch`.
pub(crate) fn public_inputs(batch: &Batch) -> [U256; 6] {
    [
        u(&batch.prev_root),
        u(&batch.new_root),
        U256::from(batch.number.0),
        u(&batch.data_commitment()),
        u(&batch.queue_before),
        u(&batch.queue_after),
    ]
}

/// The test verifier's "proof" of `batch`: the digest of its public inputs.
pub(crate) fn digest_proof(batch: &Batch) -> Bytes {
    Bytes::from(keccak256(public_inputs(batch).abi_encode()).to_vec())
}

pub(crate) fn data(batch: &Batch) -> Bytes {
    Bytes::from(batch.encode())
}

/// The account at `i` of the mirror.
pub(crate) fn account_of(state: &State<MemStore>, i: u32) -> keel_state::Account {
    state.account(AccountIndex(i)).unwrap().expect("an account")
}

/// Decodes a refusal into the rollup's named errors; panics on success or another error.
#[macro_export]
macro_rules! refused {
    ($call:expr) => {{
        match keel_evm::transact($call).await {
            Ok(_) => panic!("{} was accepted", stringify!($call)),
            Err(e) => e
                .as_decoded_interface_error::<keel_evm::contracts::KeelRollup::KeelRollupErrors>()
                .unwrap_or_else(|| {
                    panic!("{} failed without a named error: {e}", stringify!($call))
                }),
        }
    }};
}

/// Sends a call and waits for a successful receipt.
#[macro_export]
macro_rules! ok {
    ($call:expr) => {{
        let receipt = keel_evm::transact($call)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", stringify!($call)));
        assert!(receipt.status(), "{} reverted", stringify!($call));
        receipt
    }};
}
