//! `EvmL1`: Keel's client of the rollup contract on an EVM chain, through alloy.
//!
//! It checks at connection what a deployment must agree on (the chain is reachable, its chain id
//! is the genesis's, the address holds this deployment's rollup, the key can pay for gas) and
//! answers each with a typed [`EvmL1Error`]. Reads are of *settled* state: `confirmations`
//! blocks deep (1 = the head), so a batch a reorg may still drop is not treated as settled.
//! Writes are role-level calls (post a batch, heartbeat, claim, deposit, force, exit mode,
//! exit); the client signs them and the node picks the nonce, and a refusal comes back as the
//! contract's named error ([`Rejection`]).
//!
//! What the chain holds is enough to rebuild the rollup: [`EvmL1::batches`] reads each
//! `BatchProven` event's transaction and decodes its calldata into keel-state's [`Batch`], and
//! [`exit_from_l1`] rebuilds the state from those batches alone, checks it against the contract's
//! root and exits an account with its Merkle proof.

use alloy::{
    eips::BlockId,
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use keel_state::{
    ops::exit_message, AccountIndex, Batch, Decode, Encode, L1Address, MemStore, SecretKey, State,
};

use crate::{
    contracts::KeelRollup::{self, KeelRollupErrors, KeelRollupInstance},
    word as fr,
};

/// A refusal by the rollup contract: its named custom error.
pub type Rejection = KeelRollupErrors;

/// What went wrong talking to the EVM L1.
#[derive(Debug, thiserror::Error)]
pub enum EvmL1Error {
    /// The RPC URL does not parse.
    #[error("{url:?} is not an RPC URL")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// Nothing answers at the URL.
    #[error("the L1 at {url} is unreachable")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport's error.
        #[source]
        source: alloy::transports::TransportError,
    },
    /// The chain is not the one the deployment's genesis names.
    #[error("the L1's chain id is {got}, but the deployment's genesis names {expected}")]
    WrongChain {
        /// The genesis's.
        expected: u64,
        /// The node's.
        got: u64,
    },
    /// No contract at the rollup's address.
    #[error("{address} holds no contract")]
    NoContract {
        /// The address.
        address: Address,
    },
    /// A contract that is not this deployment's rollup.
    #[error("{address} holds a contract that is not this deployment's Keel rollup: {why}")]
    NotKeelRollup {
        /// The address.
        address: Address,
        /// What gave it away.
        why: String,
    },
    /// The key's account cannot pay for gas.
    #[error("the key's account {address} has no funds on the L1")]
    NoFunds {
        /// The key's address.
        address: Address,
    },
    /// The rollup refused the call: its named error.
    #[error("the rollup refused: {0:?}")]
    Refused(Rejection),
    /// A transaction was mined but reverted (the state moved between estimate and inclusion).
    #[error("transaction {0} reverted")]
    Reverted(alloy::primitives::B256),
    /// Transport, decoding or node error.
    #[error("L1 call {what}")]
    Call {
        /// Which call.
        what: &'static str,
        /// The error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A write through a client connected to read only.
    #[error("{0}: this client reads only (it was given no key)")]
    ReadOnly(&'static str),
    /// Posted data that does not decode, or a rebuilt state that is not the contract's.
    #[error("L1 data: {0}")]
    Data(String),
}

impl EvmL1Error {
    fn call(what: &'static str) -> impl FnOnce(alloy::contract::Error) -> Self {
        move |e| match e.as_decoded_interface_error::<Rejection>() {
            Some(r) => Self::Refused(r),
            None => Self::Call {
                what,
                source: Box::new(e),
            },
        }
    }

    fn rpc(what: &'static str) -> impl FnOnce(alloy::transports::TransportError) -> Self {
        move |e| Self::Call {
            what,
            source: Box::new(e),
        }
    }
}

/// How to reach a deployment on an EVM chain.
#[derive(Clone, Debug)]
pub struct EvmConfig {
    /// The node's JSON-RPC URL.
    pub url: String,
    /// The EVM chain id the genesis names.
    pub evm_chain_id: u64,
    /// The rollup contract.
    pub rollup: Address,
    /// The rollup's own chain id (its genesis); `None` takes the contract's.
    pub chain_id: Option<u64>,
    /// Blocks a batch must be under before it counts as settled (1: the head).
    pub confirmations: u64,
}

/// A connected client (see the module docs).
#[derive(Debug, Clone)]
pub struct EvmL1 {
    provider: DynProvider,
    rollup: KeelRollupInstance<DynProvider>,
    sender: Address,
    /// Whether it has a key to sign with.
    writer: bool,
    confirmations: u64,
}

/// The rollup's state as of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupState {
    /// The block it was read at.
    pub block: u64,
    /// The epoch and its lease holder.
    pub epoch: u64,
    /// The lease holder.
    pub lease_holder: Address,
    /// The last proven batch.
    pub batch_number: u64,
    /// Its root, as the contract holds it (a field element).
    pub state_root: U256,
    /// Queue entries consumed, and ever queued.
    pub queue_consumed: u64,
    /// Queue entries ever queued.
    pub queue_len: u64,
    /// Exit mode's reason (0: running).
    pub exit_reason: u8,
}

impl EvmL1 {
    /// Connects with `key`, checking the chain, the contract and the key's funds.
    pub async fn connect(config: &EvmConfig, key: PrivateKeySigner) -> Result<Self, EvmL1Error> {
        Self::open(config, Some(key)).await
    }

    /// Connects to read only (a prover rebuilding the state, a watcher), checking the chain and
    /// the contract; a write through it fails at the node, which has no key to sign with.
    pub async fn connect_reader(config: &EvmConfig) -> Result<Self, EvmL1Error> {
        Self::open(config, None).await
    }

    async fn open(config: &EvmConfig, key: Option<PrivateKeySigner>) -> Result<Self, EvmL1Error> {
        use alloy::providers::ProviderBuilder;
        let url = config.url.parse().map_err(|_| EvmL1Error::BadUrl {
            url: config.url.clone(),
        })?;
        let sender = key.as_ref().map(|k| k.address());
        let provider = match key {
            Some(key) => crate::signing_provider(url, key),
            None => ProviderBuilder::new().connect_http(url).erased(),
        };
        let got = provider
            .get_chain_id()
            .await
            .map_err(|source| EvmL1Error::Unreachable {
                url: config.url.clone(),
                source,
            })?;
        if got != config.evm_chain_id {
            return Err(EvmL1Error::WrongChain {
                expected: config.evm_chain_id,
                got,
            });
        }
        let code = provider
            .get_code_at(config.rollup)
            .await
            .map_err(EvmL1Error::rpc("eth_getCode"))?;
        if code.is_empty() {
            return Err(EvmL1Error::NoContract {
                address: config.rollup,
            });
        }
        let rollup = KeelRollup::new(config.rollup, provider.clone());
        let not = |why: String| EvmL1Error::NotKeelRollup {
            address: config.rollup,
            why,
        };
        let chain_id = rollup
            .chainId()
            .call()
            .await
            .map_err(|e| not(format!("chainId() failed ({e})")))?;
        if let Some(expected) = config.chain_id.filter(|e| *e != chain_id) {
            return Err(not(format!(
                "its rollup chain id is {chain_id}, the genesis names {expected}"
            )));
        }
        if let Some(sender) = sender {
            let balance = provider
                .get_balance(sender)
                .await
                .map_err(EvmL1Error::rpc("eth_getBalance"))?;
            if balance.is_zero() {
                return Err(EvmL1Error::NoFunds { address: sender });
            }
        }
        Ok(Self {
            provider,
            rollup,
            sender: sender.unwrap_or(Address::ZERO),
            writer: sender.is_some(),
            confirmations: config.confirmations.max(1),
        })
    }

    /// The address that signs this client's transactions (zero for a reader).
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// Whether it can sign transactions (not a reader).
    pub fn writer(&self) -> bool {
        self.writer
    }

    /// The contract binding.
    pub fn rollup(&self) -> &KeelRollupInstance<DynProvider> {
        &self.rollup
    }

    /// The newest block that has `confirmations` blocks at or above it.
    pub async fn settled_block(&self) -> Result<u64, EvmL1Error> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(EvmL1Error::rpc("eth_blockNumber"))?;
        Ok(head.saturating_sub(self.confirmations - 1))
    }

    /// The rollup's settled state (the contract's one-call `state()` view).
    pub async fn state(&self) -> Result<RollupState, EvmL1Error> {
        let block = self.settled_block().await?;
        let st = self
            .rollup
            .state()
            .block(BlockId::number(block))
            .call()
            .await
            .map_err(EvmL1Error::call("state"))?;
        Ok(RollupState {
            block,
            epoch: st.epoch,
            lease_holder: st.leaseHolder,
            batch_number: st.batchNumber,
            state_root: st.stateRoot,
            queue_consumed: st.queueConsumed,
            queue_len: st.queueLength,
            exit_reason: st.exitReason,
        })
    }

    /// The settled batches numbered `from` and above, decoded from their transactions' calldata,
    /// in order.
    pub async fn batches(&self, from: u64) -> Result<Vec<Batch>, EvmL1Error> {
        let settled = self.settled_block().await?;
        let filter = Filter::new()
            .address(*self.rollup.address())
            .event_signature(KeelRollup::BatchProven::SIGNATURE_HASH)
            .from_block(0)
            .to_block(settled);
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(EvmL1Error::rpc("eth_getLogs"))?;
        let mut out: Vec<Batch> = Vec::new();
        for log in logs {
            let event = KeelRollup::BatchProven::decode_log_data(log.data())
                .map_err(|e| EvmL1Error::Data(format!("a BatchProven event: {e}")))?;
            if event.number < from {
                continue;
            }
            let hash = log
                .transaction_hash
                .ok_or_else(|| EvmL1Error::Data("a log without its transaction".into()))?;
            let tx = self
                .provider
                .get_transaction_by_hash(hash)
                .await
                .map_err(EvmL1Error::rpc("eth_getTransactionByHash"))?
                .ok_or_else(|| EvmL1Error::Data(format!("transaction {hash} is gone")))?;
            let input = alloy::consensus::Transaction::input(&tx);
            let call = KeelRollup::postBatchCall::abi_decode(input)
                .map_err(|e| EvmL1Error::Data(format!("transaction {hash}: {e}")))?;
            let batch = Batch::decode(&call.data)
                .map_err(|e| EvmL1Error::Data(format!("batch {}: {e}", event.number)))?;
            if batch.number.0 != event.number
                || out.last().is_some_and(|b| b.number.0 + 1 != batch.number.0)
            {
                return Err(EvmL1Error::Data(format!(
                    "batch {} out of order",
                    batch.number.0
                )));
            }
            out.push(batch);
        }
        Ok(out)
    }

    /// Sends `call` and waits for its receipt; a refusal is the contract's named error.
    pub(crate) async fn send<P: Provider, D: alloy::contract::CallDecoder>(
        &self,
        what: &'static str,
        call: alloy::contract::CallBuilder<P, D>,
    ) -> Result<TransactionReceipt, EvmL1Error> {
        if !self.writer {
            return Err(EvmL1Error::ReadOnly(what));
        }
        let receipt = crate::transact(call)
            .await
            .map_err(EvmL1Error::call(what))?;
        if !receipt.status() {
            return Err(EvmL1Error::Reverted(receipt.transaction_hash));
        }
        Ok(receipt)
    }

    /// Posts `batch` with `proof` (as the lease holder).
    pub async fn post_batch(
        &self,
        batch: &Batch,
        proof: &[u8],
    ) -> Result<TransactionReceipt, EvmL1Error> {
        let r = &self.rollup;
        self.send(
            "postBatch",
            r.postBatch(batch.encode().into(), proof.to_vec().into()),
        )
        .await
    }

    /// The holder's heartbeat.
    pub async fn heartbeat(&self) -> Result<TransactionReceipt, EvmL1Error> {
        let r = &self.rollup;
        self.send("heartbeat", r.heartbeat()).await
    }

    /// A registered standby's claim of the lease.
    pub async fn claim_lease(&self) -> Result<TransactionReceipt, EvmL1Error> {
        let r = &self.rollup;
        self.send("claimLease", r.claimLease()).await
    }

    /// Anyone's activation of exit mode past a deadline.
    pub async fn activate_exit_mode(&self) -> Result<TransactionReceipt, EvmL1Error> {
        let r = &self.rollup;
        self.send("activateExitMode", r.activateExitMode()).await
    }

    /// Pays this client's address what was credited to it.
    pub async fn claim(&self) -> Result<TransactionReceipt, EvmL1Error> {
        let r = &self.rollup;
        self.send("claim", r.claim()).await
    }

    /// Deposits `units` (gwei) for the account of `pk`.
    pub async fn deposit(
        &self,
        pk: &keel_state::PublicKey,
        units: u64,
    ) -> Result<TransactionReceipt, EvmL1Error> {
        let (x, y) = pk.xy();
        let r = &self.rollup;
        let value = U256::from(units) * U256::from(1_000_000_000u64);
        self.send("deposit", r.deposit(fr(&x), fr(&y)).value(value))
            .await
    }
}

/// The owner's authorisation of an exit of account `index` to `recipient` on the rollup
/// `chain_id`, as the contract's `exit` takes it: `(R.x, R.y, s)` of the signature over
/// [`exit_message`].
pub fn exit_signature(
    key: &SecretKey,
    chain_id: u64,
    index: AccountIndex,
    recipient: Address,
) -> [U256; 3] {
    let sig = key.sign(&exit_message(chain_id, index, &L1Address(recipient.0 .0)));
    let r = sig.r();
    [fr(&r.x), fr(&r.y), U256::from_le_bytes(sig.s_bytes())]
}

/// Rebuilds the rollup's state from the L1's batches alone (events and calldata), checks it
/// against the contract's root, and exits the account of `key` to `recipient` with its Merkle
/// proof and the owner's signature. Returns the amount credited.
pub async fn exit_from_l1(
    l1: &EvmL1,
    key: &SecretKey,
    recipient: Address,
) -> Result<u64, EvmL1Error> {
    let r = l1.rollup();
    let e = |what| EvmL1Error::call(what);
    let depth = r.depth().call().await.map_err(e("depth"))?;
    let chain_id = r.chainId().call().await.map_err(e("chainId"))?;
    let mut state = State::open(MemStore::new(), depth)
        .map_err(|err| EvmL1Error::Data(format!("a state of depth {depth}: {err}")))?;
    for batch in l1.batches(1).await? {
        state.apply_batch(&batch).map_err(|err| {
            EvmL1Error::Data(format!("batch {} does not apply: {err}", batch.number.0))
        })?;
    }
    let root = fr(&state
        .root()
        .map_err(|err| EvmL1Error::Data(err.to_string()))?);
    let onchain = r.stateRoot().call().await.map_err(e("stateRoot"))?;
    if root != onchain {
        return Err(EvmL1Error::Data(
            "the state rebuilt from the L1's batches is not the contract's root".into(),
        ));
    }
    let pk = key.public_key();
    let (x, y) = pk.xy();
    let found = r
        .accountOf(fr(&x), fr(&y))
        .call()
        .await
        .map_err(e("accountOf"))?;
    if !found.found {
        return Err(EvmL1Error::Data("the key has no account on the L1".into()));
    }
    let index = AccountIndex(found.index);
    let account = state
        .account(index)
        .map_err(|err| EvmL1Error::Data(err.to_string()))?
        .ok_or_else(|| EvmL1Error::Data(format!("account {} is in no proven batch", index.0)))?;
    let proof = state
        .proof(index)
        .map_err(|err| EvmL1Error::Data(err.to_string()))?;
    let call = r.exit(
        index.0,
        fr(&x),
        fr(&y),
        account.balance,
        account.nonce,
        proof.siblings.iter().map(fr).collect(),
        recipient,
        exit_signature(key, chain_id, index, recipient),
    );
    l1.send("exit", call).await?;
    Ok(account.balance)
}
