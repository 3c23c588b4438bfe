//! [`EvmSettlement`]: the rollup contract behind Keel's seam, so the committer, the standbys, the
//! follower and the exit tool run unchanged on any EVM chain.
//!
//! It implements both halves of the seam over one [`EvmL1`]:
//! - [`SettlementLayer`] reads *settled* state, `confirmations` blocks deep: the head is the
//!   newest settled block, and the view, the queue and the batches are as of that block. A batch
//!   a reorg may still drop is not settled, so no service acts on it.
//! - [`Settler`] writes role by role, signed by the client's key. Writes are serialised (one
//!   nonce at a time), and a refusal is the contract's named error mapped to Keel's
//!   [`Rejection`].
//!
//! The traits are synchronous; the client runs its own runtime, and a call blocks its caller
//! until the node answers (from any thread, inside another runtime too).
//!
//! Units: the contract keeps seconds, the seam milliseconds (`× 1000`). Sequencers are EVM
//! accounts, each registered with the Grumpkin key its acknowledgements are signed with.

use std::{
    future::Future,
    sync::{mpsc, Mutex},
    time::Duration,
};

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::{Filter, Log, TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use keel_committer::{
    Checkpoint, Deadlines, Event, ExitMode, ExitReason, Head, L1Error, Lease, PostedBatch,
    QueuedEntry, Receipt, Rejection, RollupView, Sequencer, SettlementLayer, Settler,
};
use keel_state::{
    ops::Deposit, Account, AccountIndex, BatchNumber, Decode, Encode, Epoch, Fr, L1Address,
    MerkleProof, PublicKey, QueueEntry, SecretKey, SignedOp,
};

use crate::{
    contracts::KeelRollup::{self, KeelRollupErrors as E},
    l1::{exit_signature, EvmConfig, EvmL1, EvmL1Error},
    word,
};

/// The rollup on an EVM chain, as Keel's services see an L1 (see the module docs).
pub struct EvmSettlement {
    l1: EvmL1,
    rt: Option<tokio::runtime::Runtime>,
    chain_id: u64,
    deadlines: Deadlines,
    depth: u8,
    writing: Mutex<()>,
}

impl std::fmt::Debug for EvmSettlement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmSettlement")
            .field("rollup", self.l1.rollup().address())
            .field("sender", &self.l1.sender())
            .finish_non_exhaustive()
    }
}

impl Drop for EvmSettlement {
    fn drop(&mut self) {
        // a runtime may not be dropped where blocking is not allowed (inside another runtime)
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn seconds(ms: u64) -> Duration {
    Duration::from_secs(ms)
}

fn fr(x: U256) -> Result<Fr, L1Error> {
    keel_state::field::fr_from_bytes(&x.to_le_bytes::<32>())
        .ok_or_else(|| L1Error::unavailable(format!("{x} is not a field element")))
}

fn address(a: Address) -> L1Address {
    L1Address(a.0 .0)
}

/// The contract's named error as Keel's rejection.
pub fn rejection(e: &E) -> Rejection {
    let ms = |s: u64| s.saturating_mul(1000);
    match e {
        E::ExitModeActive(_) => Rejection::ExitModeActive,
        E::NotInExitMode(_) => Rejection::NotInExitMode,
        E::ExitModeNotDue(x) => Rejection::ExitModeNotDue {
            queue_due_ms: (x.queueDue != u64::MAX).then(|| ms(x.queueDue)),
            proof_due_ms: ms(x.proofDue),
        },
        E::NotRegistered(_) => Rejection::NotRegistered,
        E::NotLeaseHolder(_) => Rejection::NotLeaseHolder,
        E::AlreadyLeaseHolder(_) => Rejection::AlreadyLeaseHolder,
        E::LeaseNotExpired(x) => Rejection::LeaseNotExpired {
            claimable_at_ms: ms(x.claimableAt),
        },
        E::StaleEpoch(x) => Rejection::StaleEpoch {
            current: Epoch(x.current),
            got: Epoch(x.got),
        },
        E::WrongBatchNumber(x) => Rejection::WrongBatchNumber {
            expected: BatchNumber(x.expected),
            got: BatchNumber(x.got),
        },
        E::WrongPrevRoot(_) => Rejection::WrongPrevRoot,
        E::WrongQueueStart(_) => Rejection::WrongQueueStart,
        E::WrongQueueEnd(_) => Rejection::WrongQueueEnd,
        E::QueueOrder(x) => Rejection::QueueOrder {
            position: x.position,
        },
        E::DataMismatch(_) => Rejection::DataMismatch,
        E::BadData(x) => Rejection::BadData(format!("at byte {}", x.offset)),
        E::InvalidProof(_) => Rejection::InvalidProof("the verifier contract refused it".into()),
        E::ZeroAmount(_) => Rejection::ZeroAmount,
        E::NotWholeUnits(_) => Rejection::NotWholeUnits,
        E::AmountTooLarge(_) => Rejection::AmountTooLarge,
        E::BadKey(_) => Rejection::BadKey,
        E::BadSignatureEncoding(_) => Rejection::BadSignature,
        E::ForcedWithdrawal(_) => Rejection::ForcedWithdrawal,
        E::TreeFull(_) => Rejection::TreeFull,
        E::AlreadyExited(x) => Rejection::AlreadyExited(AccountIndex(x.account)),
        E::WrongMerkleProof(_) => Rejection::WrongMerkleProof,
        E::NotAccountOwner(_) => Rejection::NotAccountOwner,
        E::NotReclaimable(x) => Rejection::NotReclaimable {
            position: x.position,
        },
        E::AlreadyReclaimed(x) => Rejection::AlreadyReclaimed {
            position: x.position,
        },
        E::NothingToClaim(_) => Rejection::NothingToClaim,
        E::PaymentFailed(_) => Rejection::PaymentFailed,
        E::BadGenesis(_) => Rejection::Malformed("the genesis is invalid".into()),
        E::BadCouncilSignature(_) => Rejection::BadCouncilSignature,
        E::EmptySequencerSet(_) => Rejection::EmptySequencerSet,
    }
}

/// A client error as the seam's.
fn l1_error(e: EvmL1Error) -> L1Error {
    match e {
        EvmL1Error::Refused(r) => L1Error::Rejected(rejection(&r)),
        e => L1Error::Unavailable {
            what: e.to_string(),
            source: Some(Box::new(e)),
        },
    }
}

fn call_error(what: &'static str) -> impl FnOnce(alloy::contract::Error) -> L1Error {
    move |e| match e.as_decoded_interface_error::<E>() {
        Some(r) => L1Error::Rejected(rejection(&r)),
        None => L1Error::Unavailable {
            what: format!("L1 call {what}"),
            source: Some(Box::new(e)),
        },
    }
}

fn rpc_error(what: &'static str) -> impl FnOnce(alloy::transports::TransportError) -> L1Error {
    move |e| L1Error::Unavailable {
        what: format!("L1 call {what}"),
        source: Some(Box::new(e)),
    }
}

/// The rollup's logs of `events` whose first indexed field is one of `first`, up to block `to`.
async fn rollup_logs(
    l1: &EvmL1,
    events: &[B256],
    first: Vec<B256>,
    to: u64,
) -> Result<Vec<Log>, L1Error> {
    let r = l1.rollup();
    let filter = Filter::new()
        .address(*r.address())
        .event_signature(events.to_vec())
        .topic1(first)
        .from_block(0)
        .to_block(to);
    r.provider()
        .get_logs(&filter)
        .await
        .map_err(rpc_error("eth_getLogs"))
}

/// The rollup's events in a receipt, as the seam names them.
fn events(rollup: Address, logs: &[Log]) -> Vec<Event> {
    let mut out = Vec::new();
    for log in logs.iter().filter(|l| l.address() == rollup) {
        let data = log.data();
        let Some(topic) = data.topics().first() else {
            continue;
        };
        let event = match *topic {
            KeelRollup::BatchProven::SIGNATURE_HASH => {
                KeelRollup::BatchProven::decode_log_data(data)
                    .ok()
                    .and_then(|e| {
                        Some(Event::BatchProven {
                            number: BatchNumber(e.number),
                            root: fr(e.root).ok()?,
                        })
                    })
            }
            KeelRollup::WithdrawalCredited::SIGNATURE_HASH => {
                KeelRollup::WithdrawalCredited::decode_log_data(data)
                    .ok()
                    .map(|e| Event::WithdrawalPaid {
                        recipient: address(e.recipient),
                        amount: e.amount,
                    })
            }
            KeelRollup::DepositQueued::SIGNATURE_HASH => {
                KeelRollup::DepositQueued::decode_log_data(data)
                    .ok()
                    .map(|e| Event::Enqueued {
                        position: e.position,
                        account: Some(AccountIndex(e.account)),
                    })
            }
            KeelRollup::ForcedQueued::SIGNATURE_HASH => {
                KeelRollup::ForcedQueued::decode_log_data(data)
                    .ok()
                    .map(|e| Event::Enqueued {
                        position: e.position,
                        account: None,
                    })
            }
            KeelRollup::ExitModeActivated::SIGNATURE_HASH => {
                KeelRollup::ExitModeActivated::decode_log_data(data)
                    .ok()
                    .and_then(|e| exit_reason(e.reason).map(Event::ExitModeActivated))
            }
            KeelRollup::LeaseClaimed::SIGNATURE_HASH => {
                KeelRollup::LeaseClaimed::decode_log_data(data)
                    .ok()
                    .map(|e| Event::LeaseClaimed {
                        epoch: Epoch(e.epoch),
                        sequencer: address(e.sequencer),
                    })
            }
            KeelRollup::SequencersRotated::SIGNATURE_HASH => {
                KeelRollup::SequencersRotated::decode_log_data(data)
                    .ok()
                    .map(|e| Event::SequencersRotated {
                        count: e.count.saturating_to(),
                    })
            }
            KeelRollup::Reclaimed::SIGNATURE_HASH => KeelRollup::Reclaimed::decode_log_data(data)
                .ok()
                .map(|e| Event::Reclaimed {
                    position: e.position,
                    recipient: address(e.recipient),
                    amount: e.amount,
                }),
            KeelRollup::Exited::SIGNATURE_HASH => KeelRollup::Exited::decode_log_data(data)
                .ok()
                .map(|e| Event::Exited {
                    account: AccountIndex(e.account),
                    recipient: address(e.recipient),
                    amount: e.amount,
                }),
            _ => None,
        };
        out.extend(event);
    }
    out
}

fn exit_reason(code: u8) -> Option<ExitReason> {
    match code {
        1 => Some(ExitReason::ForcedInclusion),
        2 => Some(ExitReason::ProofDeadline),
        3 => Some(ExitReason::Council),
        _ => None,
    }
}

impl EvmSettlement {
    /// Connects with `key` (every check of [`EvmL1::connect`]) and reads the deployment's
    /// constants. The block time is the one observed between the last two blocks (1 s at least).
    pub fn connect(config: &EvmConfig, key: PrivateKeySigner) -> Result<Self, EvmL1Error> {
        Self::start(config, Some(key))
    }

    /// Connects to read only ([`EvmL1::connect_reader`]): a prover's view of the rollup. Its
    /// writes fail with [`EvmL1Error::ReadOnly`] as an unavailable L1.
    pub fn connect_reader(config: &EvmConfig) -> Result<Self, EvmL1Error> {
        Self::start(config, None)
    }

    fn start(config: &EvmConfig, key: Option<PrivateKeySigner>) -> Result<Self, EvmL1Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("keel-evm-l1")
            .enable_all()
            .build()
            .map_err(|e| EvmL1Error::Call {
                what: "starting the client's runtime",
                source: Box::new(e),
            })?;
        let config = config.clone();
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(Self::open(config, key).await);
        });
        let (l1, chain_id, deadlines, depth) = rx.recv().expect("the client's runtime stopped")?;
        Ok(Self {
            l1,
            rt: Some(rt),
            chain_id,
            deadlines,
            depth,
            writing: Mutex::new(()),
        })
    }

    /// Connects, and reads the deployment's constants.
    async fn open(
        config: EvmConfig,
        key: Option<PrivateKeySigner>,
    ) -> Result<(EvmL1, u64, Deadlines, u8), EvmL1Error> {
        {
            let l1 = match key {
                Some(key) => EvmL1::connect(&config, key).await?,
                None => EvmL1::connect_reader(&config).await?,
            };
            let r = l1.rollup();
            let e = |what| {
                move |err: alloy::contract::Error| EvmL1Error::Call {
                    what,
                    source: Box::new(err),
                }
            };
            let chain_id = r.chainId().call().await.map_err(e("chainId"))?;
            let depth = r.depth().call().await.map_err(e("depth"))?;
            let failover = r
                .failoverTimeout()
                .call()
                .await
                .map_err(e("failoverTimeout"))?;
            let forced = r
                .forcedInclusionDeadline()
                .call()
                .await
                .map_err(e("forcedInclusionDeadline"))?;
            let proof = r.proofDeadline().call().await.map_err(e("proofDeadline"))?;
            let p = r.provider();
            let rpc = |what| {
                move |err| EvmL1Error::Call {
                    what,
                    source: Box::new(err),
                }
            };
            let head = p.get_block_number().await.map_err(rpc("eth_blockNumber"))?;
            let stamp = |n: u64| async move {
                Ok::<_, EvmL1Error>(
                    p.get_block_by_number(n.into())
                        .await
                        .map_err(rpc("eth_getBlockByNumber"))?
                        .map(|b| b.header.timestamp),
                )
            };
            let block_time = match (stamp(head).await?, stamp(head.saturating_sub(1)).await?) {
                (Some(a), Some(b)) if head > 0 => a.saturating_sub(b).max(1),
                _ => 1,
            };
            let deadlines = Deadlines {
                block_time: seconds(block_time),
                failover_timeout: seconds(failover),
                forced_inclusion: seconds(forced),
                proof: seconds(proof),
            };
            Ok((l1, chain_id, deadlines, depth))
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &EvmL1 {
        &self.l1
    }

    /// Runs `f` on the client's runtime and waits for it (from any thread).
    pub fn block_on<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the client")
            .spawn(async move {
                let _ = tx.send(f.await);
            });
        rx.recv().expect("the client's runtime stopped")
    }

    /// A write, one at a time, and its receipt as the seam's.
    fn write<F>(&self, f: impl FnOnce(EvmL1) -> F) -> Result<Receipt, L1Error>
    where
        F: Future<Output = Result<TransactionReceipt, EvmL1Error>> + Send + 'static,
    {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let receipt = self.block_on(f(self.l1.clone())).map_err(l1_error)?;
        Ok(Receipt {
            height: receipt.block_number.unwrap_or_default(),
            events: events(*self.l1.rollup().address(), receipt.logs()),
        })
    }

    fn settled_at(&self) -> Result<u64, L1Error> {
        let l1 = self.l1.clone();
        self.block_on(async move { l1.settled_block().await })
            .map_err(l1_error)
    }
}

impl SettlementLayer for EvmSettlement {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn head(&self) -> Result<Head, L1Error> {
        let l1 = self.l1.clone();
        self.block_on(async move {
            let height = l1.settled_block().await.map_err(l1_error)?;
            let block = l1
                .rollup()
                .provider()
                .get_block_by_number(height.into())
                .await
                .map_err(rpc_error("eth_getBlockByNumber"))?
                .ok_or_else(|| L1Error::unavailable(format!("block {height} is gone")))?;
            Ok(Head {
                height,
                time_ms: block.header.timestamp.saturating_mul(1000),
            })
        })
    }

    fn rollup(&self) -> Result<RollupView, L1Error> {
        let (l1, deadlines, depth) = (self.l1.clone(), self.deadlines, self.depth);
        self.block_on(async move {
            let height = l1.settled_block().await.map_err(l1_error)?;
            let at = BlockId::number(height);
            let r = l1.rollup();
            let block = r
                .provider()
                .get_block_by_number(height.into())
                .await
                .map_err(rpc_error("eth_getBlockByNumber"))?
                .ok_or_else(|| L1Error::unavailable(format!("block {height} is gone")))?;
            let st = r
                .state()
                .block(at)
                .call()
                .await
                .map_err(call_error("state"))?;
            let ms = |s: u64| s.saturating_mul(1000);
            let ack_key = |i: usize| -> Result<Option<PublicKey>, L1Error> {
                match (st.ackKeys.get(2 * i), st.ackKeys.get(2 * i + 1)) {
                    (Some(x), Some(y)) => Ok(PublicKey::from_xy(fr(*x)?, fr(*y)?).ok()),
                    _ => Ok(None),
                }
            };
            Ok(RollupView {
                head: Head {
                    height,
                    time_ms: ms(block.header.timestamp),
                },
                deadlines,
                depth,
                checkpoint: Checkpoint {
                    batch: BatchNumber(st.batchNumber),
                    root: fr(st.stateRoot)?,
                    queue_hash: fr(st.queueHash)?,
                    queue_consumed: st.queueConsumed,
                    proven_at_ms: ms(st.provenAt),
                },
                lease: Lease {
                    epoch: Epoch(st.epoch),
                    sequencer: address(st.leaseHolder),
                    since_ms: ms(st.leaseSince),
                    last_batch_ms: ms(st.lastActive),
                },
                sequencers: st
                    .sequencers
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        Ok(Sequencer {
                            address: address(*a),
                            ack_key: ack_key(i)?,
                        })
                    })
                    .collect::<Result<_, L1Error>>()?,
                queue_len: st.queueLength,
                exit_mode: exit_reason(st.exitReason).map(|reason| ExitMode {
                    reason,
                    since_ms: ms(st.exitSince),
                }),
                council_sequence: st.councilSequence,
            })
        })
    }

    fn queue(&self, position: u64, max: usize) -> Result<Vec<QueuedEntry>, L1Error> {
        let height = self.settled_at()?;
        let l1 = self.l1.clone();
        self.block_on(async move {
            let r = l1.rollup();
            let at = BlockId::number(height);
            let len = r
                .queueLength()
                .block(at)
                .call()
                .await
                .map_err(call_error("queueLength"))?;
            let end = len.min(position.saturating_add(max as u64));
            if position >= end {
                return Ok(Vec::new());
            }
            let positions: Vec<B256> = (position..end).map(|p| B256::from(U256::from(p))).collect();
            let events = [
                KeelRollup::DepositQueued::SIGNATURE_HASH,
                KeelRollup::ForcedQueued::SIGNATURE_HASH,
            ];
            let logs = rollup_logs(&l1, &events, positions, height).await?;
            let mut entries = std::collections::BTreeMap::new();
            for log in &logs {
                let data = log.data();
                let bad = |e: alloy::sol_types::Error| {
                    L1Error::unavailable(format!("a queue event does not decode: {e}"))
                };
                let (at, entry) = if data.topics()[0] == KeelRollup::DepositQueued::SIGNATURE_HASH {
                    let e = KeelRollup::DepositQueued::decode_log_data(data).map_err(bad)?;
                    let pk = PublicKey::from_xy(fr(e.pkX)?, fr(e.pkY)?).map_err(|err| {
                        L1Error::unavailable(format!("deposit {}'s key: {err}", e.position))
                    })?;
                    let deposit = Deposit {
                        to: AccountIndex(e.account),
                        pk,
                        amount: e.amount,
                    };
                    (e.position, QueueEntry::Deposit(deposit))
                } else {
                    let e = KeelRollup::ForcedQueued::decode_log_data(data).map_err(bad)?;
                    let op = SignedOp::decode(&e.op).map_err(|err| {
                        L1Error::unavailable(format!("forced entry {}: {err}", e.position))
                    })?;
                    (e.position, QueueEntry::Forced(op))
                };
                entries.insert(at, entry);
            }
            let mut out = Vec::new();
            for p in position..end {
                let Some(entry) = entries.remove(&p) else {
                    return Err(L1Error::unavailable(format!(
                        "queue entry {p} has no event up to block {height}"
                    )));
                };
                let enqueued = r
                    .queuedAt(p)
                    .block(at)
                    .call()
                    .await
                    .map_err(call_error("queuedAt"))?;
                let hash = r
                    .queueHashAt(p + 1)
                    .block(at)
                    .call()
                    .await
                    .map_err(call_error("queueHashAt"))?;
                out.push(QueuedEntry {
                    position: p,
                    entry,
                    enqueued_at_ms: enqueued.saturating_mul(1000),
                    hash_after: fr(hash)?,
                });
            }
            Ok(out)
        })
    }

    fn batch(&self, number: BatchNumber) -> Result<Option<PostedBatch>, L1Error> {
        let height = self.settled_at()?;
        let l1 = self.l1.clone();
        self.block_on(async move {
            let r = l1.rollup();
            let events = [KeelRollup::BatchProven::SIGNATURE_HASH];
            let logs =
                rollup_logs(&l1, &events, vec![B256::from(U256::from(number.0))], height).await?;
            let Some(log) = logs.last() else {
                return Ok(None);
            };
            let hash = log
                .transaction_hash
                .ok_or_else(|| L1Error::unavailable("a log without its transaction"))?;
            let tx = r
                .provider()
                .get_transaction_by_hash(hash)
                .await
                .map_err(rpc_error("eth_getTransactionByHash"))?
                .ok_or_else(|| L1Error::unavailable(format!("transaction {hash} is gone")))?;
            let input = alloy::consensus::Transaction::input(&tx);
            let call = KeelRollup::postBatchCall::abi_decode(input).map_err(|e| {
                L1Error::unavailable(format!("batch {}'s transaction: {e}", number.0))
            })?;
            Ok(Some(PostedBatch {
                number,
                data: call.data.to_vec(),
                proof: call.proof.to_vec(),
                height: log.block_number.unwrap_or(height),
            }))
        })
    }

    fn account_index(&self, pk: &PublicKey) -> Result<Option<AccountIndex>, L1Error> {
        let height = self.settled_at()?;
        let (x, y) = pk.xy();
        let l1 = self.l1.clone();
        self.block_on(async move {
            let found = l1
                .rollup()
                .accountOf(word(&x), word(&y))
                .block(BlockId::number(height))
                .call()
                .await
                .map_err(call_error("accountOf"))?;
            Ok(found.found.then_some(AccountIndex(found.index)))
        })
    }

    fn exited(&self, account: AccountIndex) -> Result<bool, L1Error> {
        let height = self.settled_at()?;
        let l1 = self.l1.clone();
        self.block_on(async move {
            l1.rollup()
                .exited(account.0)
                .block(BlockId::number(height))
                .call()
                .await
                .map_err(call_error("exited"))
        })
    }
}

impl Settler for EvmSettlement {
    fn address(&self) -> L1Address {
        address(self.l1.sender())
    }

    fn post_batch(&self, data: &[u8], proof: &[u8]) -> Result<Receipt, L1Error> {
        let (data, proof) = (data.to_vec(), proof.to_vec());
        self.write(|l1| async move {
            let call = l1.rollup().postBatch(data.into(), proof.into());
            l1.send("postBatch", call).await
        })
    }

    fn heartbeat(&self) -> Result<Receipt, L1Error> {
        self.write(|l1| async move { l1.heartbeat().await })
    }

    fn claim_lease(&self) -> Result<Receipt, L1Error> {
        self.write(|l1| async move { l1.claim_lease().await })
    }

    fn deposit(&self, owner: &PublicKey, amount: u64) -> Result<Receipt, L1Error> {
        let owner = *owner;
        self.write(move |l1| async move { l1.deposit(&owner, amount).await })
    }

    fn force(&self, op: &SignedOp) -> Result<Receipt, L1Error> {
        let op = op.encode();
        self.write(|l1| async move {
            let call = l1.rollup().force(op.into());
            l1.send("force", call).await
        })
    }

    fn activate_exit_mode(&self) -> Result<Receipt, L1Error> {
        self.write(|l1| async move { l1.activate_exit_mode().await })
    }

    fn exit(
        &self,
        owner: &SecretKey,
        account: &Account,
        proof: &MerkleProof,
        recipient: L1Address,
    ) -> Result<Receipt, L1Error> {
        let (x, y) = account.pk.xy();
        let siblings: Vec<U256> = proof.siblings.iter().map(word).collect();
        let to = Address::from(recipient.0);
        let signature = exit_signature(owner, self.chain_id, proof.index, to);
        let (index, balance, nonce) = (proof.index.0, account.balance, account.nonce);
        self.write(move |l1| async move {
            let call = l1.rollup().exit(
                index,
                word(&x),
                word(&y),
                balance,
                nonce,
                siblings,
                to,
                signature,
            );
            l1.send("exit", call).await
        })
    }

    fn reclaim(&self, position: u64) -> Result<Receipt, L1Error> {
        self.write(move |l1| async move {
            let call = l1.rollup().reclaim(position);
            l1.send("reclaim", call).await
        })
    }
}
