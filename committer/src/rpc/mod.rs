//! The L1 over the network: a JSON-RPC 2.0 API in front of any [`EmbeddedChain`]
//! (what `keel l1` serves), and [`RpcL1`], an [`EmbeddedChain`] that calls it. A committer, a
//! follower, a standby or `keel exit` given an [`RpcL1`] runs unchanged against an L1 in
//! another process.
//!
//! Requests are `POST /` with a JSON-RPC 2.0 object, or a batch array of up to
//! [`MAX_BATCH_REQUESTS`] of them (answered in order, in one array); parameters are named. What
//! is not JSON-RPC at all (another path or method, a body over [`MAX_REQUEST_BYTES`], a client
//! too slow) gets the typed refusal of every Keel server ([`keel_http`]). Numbers stay numbers
//! (batch numbers, epochs, account indices, amounts, `…_ms` times); roots and hashes are `0x` and
//! 64 hex digits, the integer big-endian; keys, queue entries, transactions, batch data and
//! proofs are `0x` and the hex of their canonical encoding; addresses are `0x` and 40 digits.
//!
//! | method | params | result |
//! |---|---|---|
//! | `keel_chainId` | — | the chain id |
//! | `keel_head` | — | `{height, time_ms}` |
//! | `keel_rollup` | — | the rollup contract's state ([`RollupView`](crate::RollupView)) |
//! | `keel_nonce` | `{address}` | the address's next nonce |
//! | `keel_balance` | `{address}` | its L1 balance |
//! | `keel_submit` | `{tx}`: the signed [`L1Tx`](crate::L1Tx)'s canonical encoding | the [`Receipt`](crate::Receipt) |
//! | `keel_queue` | `{position, max}` | up to `max` (at most [`MAX_QUEUE_PAGE`]) queue entries |
//! | `keel_batch` | `{number}` | the settled batch's data and proof, or `null` |
//! | `keel_accountIndex` | `{pk}` | the account index the L1 assigned to the key, or `null` |
//! | `keel_exited` | `{account}` | whether the account has exited |
//!
//! Errors use JSON-RPC's codes for bad requests, and three of Keel's:
//!
//! | code | meaning | `data` |
//! |---|---|---|
//! | -32700 / -32600 / -32601 / -32602 | not JSON / not a request / no such method / bad params | — |
//! | [`REJECTED`] (-32000) | the L1's rules refused the transaction; nothing changed | the [`Rejection`](crate::Rejection): `{"rule": …, "detail": …}` |
//! | [`STORE`] (-32001) | the L1's store failed; nothing was applied | — |
//! | [`CORRUPT`] (-32002) | the L1's store is corrupt | — |
//!
//! ```text
//! $ curl -s localhost:8545 -d '{"jsonrpc":"2.0","id":1,"method":"keel_head"}'
//! {"id":1,"jsonrpc":"2.0","result":{"height":42,"time_ms":1763800000000}}
//! ```

mod client;
pub mod methods;
mod server;
pub(crate) mod wire;

pub use client::{RpcL1, DEFAULT_TIMEOUT};
pub use methods::Method;
pub use server::{
    call, router, serve, RpcError, RpcServer, MAX_BATCH_REQUESTS, MAX_QUEUE_PAGE, MAX_REQUEST_BYTES,
};

/// The request is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a JSON-RPC 2.0 request.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The parameters are missing or malformed.
pub const INVALID_PARAMS: i64 = -32602;
/// The server failed to run the call.
pub const INTERNAL_ERROR: i64 = -32603;
/// The L1's rules refused the transaction (`data` is the rejection).
pub const REJECTED: i64 = -32000;
/// The L1's store failed.
pub const STORE: i64 = -32001;
/// The L1's store is corrupt.
pub const CORRUPT: i64 = -32002;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keel_state::{
        test_utils::{deposit_entry, key},
        AccountIndex, BatchNumber, Epoch, Fr, L1Address,
    };
    use proptest::prelude::*;
    use rand_chacha::{rand_core::SeedableRng, ChaCha20Rng};
    use serde_json::json;

    use crate::{
        address_of,
        settlement::{Checkpoint, Event, ExitMode, ExitReason, QueuedEntry, Rejection},
        Deadlines, Genesis, Head, Lease, PostedBatch, Receipt, RollupView, Sequencer,
    };

    fn round_trip<T>(v: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    fn every_rejection() -> Vec<Rejection> {
        use Rejection::*;
        vec![
            Malformed("x".into()),
            BadSignature,
            BadNonce {
                expected: 3,
                got: 2,
            },
            ExitModeActive,
            BadData("y".into()),
            DataMismatch,
            StaleEpoch {
                current: Epoch(2),
                got: Epoch(1),
            },
            NotLeaseHolder,
            WrongBatchNumber {
                expected: BatchNumber(4),
                got: BatchNumber(6),
            },
            WrongPrevRoot,
            WrongQueueStart,
            QueueOrder { position: 9 },
            WrongQueueEnd,
            InvalidProof("z".into()),
            ZeroAmount,
            InsufficientBalance {
                balance: 1,
                needed: 2,
            },
            TreeFull,
            ForcedWithdrawal,
            ExitModeNotDue {
                queue_due_ms: Some(5),
                proof_due_ms: 6,
            },
            ExitModeNotDue {
                queue_due_ms: None,
                proof_due_ms: 6,
            },
            NotInExitMode,
            NotReclaimable { position: 3 },
            AlreadyReclaimed { position: 4 },
            AlreadyExited(AccountIndex(7)),
            NotAccountOwner,
            WrongMerkleProof,
            BadCouncilSignature,
            CouncilReplay {
                expected: 1,
                got: 0,
            },
            EmptySequencerSet,
            NotRegistered,
            AlreadyLeaseHolder,
            LeaseNotExpired { claimable_at_ms: 8 },
        ]
    }

    #[test]
    fn every_rejection_crosses_the_wire_unchanged() {
        for r in every_rejection() {
            assert_eq!(round_trip(&r), r);
        }
        // the form a non-Rust client reads
        assert_eq!(
            serde_json::to_value(Rejection::BadNonce {
                expected: 3,
                got: 2
            })
            .unwrap(),
            json!({"rule": "bad_nonce", "detail": {"expected": 3, "got": 2}})
        );
        assert_eq!(
            serde_json::to_value(Rejection::AlreadyExited(AccountIndex(7))).unwrap(),
            json!({"rule": "already_exited", "detail": 7})
        );
        assert_eq!(
            serde_json::to_value(Rejection::TreeFull).unwrap(),
            json!({"rule": "tree_full"})
        );
    }

    #[test]
    fn receipts_and_views_cross_the_wire_unchanged() {
        let pk = key(3).public_key();
        let receipt = Receipt {
            height: 12,
            events: vec![
                Event::BatchProven {
                    number: BatchNumber(2),
                    root: Fr::from(99),
                },
                Event::WithdrawalPaid {
                    recipient: L1Address([4; 20]),
                    amount: 5,
                },
                Event::Enqueued {
                    position: 3,
                    account: Some(AccountIndex(1)),
                },
                Event::Enqueued {
                    position: 4,
                    account: None,
                },
                Event::ExitModeActivated(ExitReason::ProofDeadline),
                Event::LeaseClaimed {
                    epoch: Epoch(2),
                    sequencer: address_of(&pk),
                },
                Event::SequencersRotated { count: 3 },
                Event::Reclaimed {
                    position: 2,
                    recipient: L1Address([5; 20]),
                    amount: 8,
                },
                Event::Exited {
                    account: AccountIndex(0),
                    recipient: L1Address([6; 20]),
                    amount: 7,
                },
            ],
        };
        assert_eq!(round_trip(&receipt), receipt);
        let view = RollupView {
            head: Head {
                height: 1,
                time_ms: 2,
            },
            deadlines: Deadlines::default(),
            depth: 24,
            checkpoint: Checkpoint {
                batch: BatchNumber(3),
                root: -Fr::one(),
                queue_hash: Fr::from(5),
                queue_consumed: 6,
                proven_at_ms: 7,
            },
            lease: Lease {
                epoch: Epoch(8),
                sequencer: address_of(&pk),
                since_ms: 9,
                last_batch_ms: 10,
            },
            sequencers: vec![
                Sequencer::keyed(pk),
                Sequencer {
                    address: L1Address([9; 20]),
                    ack_key: None,
                },
            ],
            queue_len: 11,
            exit_mode: Some(ExitMode {
                reason: ExitReason::Council,
                since_ms: 12,
            }),
            council_sequence: 13,
        };
        assert_eq!(round_trip(&view), view);
        let v = serde_json::to_value(&view).unwrap();
        assert_eq!(
            v["checkpoint"]["root"],
            json!(keel_state::field::fr_to_hex(&-Fr::one()))
        );
        assert_eq!(v["deadlines"]["failover_timeout_ms"], json!(30_000));
        assert_eq!(v["exit_mode"]["reason"], json!("council"));
        let entry = QueuedEntry {
            position: 1,
            entry: deposit_entry(2, 30),
            enqueued_at_ms: 4,
            hash_after: Fr::from(5),
        };
        assert_eq!(round_trip(&entry), entry);
        let batch = PostedBatch {
            number: BatchNumber(1),
            data: vec![1, 2, 3],
            proof: vec![],
            height: 9,
        };
        assert_eq!(round_trip(&batch), batch);
        assert_eq!(
            serde_json::to_value(&batch).unwrap()["data"],
            json!("0x010203")
        );
    }

    #[test]
    fn a_genesis_file_reads_back_and_bad_values_are_refused() {
        let council = crate::CouncilKey::of(
            &crate::council::dkg(3, 2, ChaCha20Rng::seed_from_u64(1))
                .unwrap()
                .1,
        );
        let g = Genesis {
            chain_id: 9,
            time_ms: 1,
            depth: 20,
            deadlines: Deadlines {
                block_time: Duration::from_millis(250),
                ..Deadlines::default()
            },
            sequencers: vec![key(0).public_key()],
            allocations: vec![(L1Address([1; 20]), 5)],
            council,
        };
        assert_eq!(round_trip(&g), g);
        let mut v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["allocations"][0]["amount"], json!(5));
        // omitted deadlines take their defaults, one by one
        v["deadlines"] = json!({"block_time_ms": 100});
        let partial: Genesis = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(partial.deadlines.block_time, Duration::from_millis(100));
        assert_eq!(partial.deadlines.proof, Deadlines::default().proof);
        // a typo, a key off the curve, and an address of the wrong length are each refused
        let mut typo = v.clone();
        typo["chain_idd"] = json!(1);
        assert!(serde_json::from_value::<Genesis>(typo).is_err());
        let mut bad_key = v.clone();
        bad_key["sequencers"][0] = json!(format!("0x{}", "11".repeat(32)));
        assert!(serde_json::from_value::<Genesis>(bad_key).is_err());
        let mut bad_address = v;
        bad_address["allocations"][0]["address"] = json!("0x0102");
        assert!(serde_json::from_value::<Genesis>(bad_address).is_err());
    }

    #[test]
    fn a_root_at_or_above_the_modulus_is_refused() {
        let p_minus_1 = keel_state::field::fr_to_hex(&-Fr::one());
        let modulus = format!("{}1", &p_minus_1[..p_minus_1.len() - 1]);
        assert!(
            p_minus_1.ends_with('0'),
            "so the modulus is p - 1 with its last digit 1"
        );
        let full = |s: &str| {
            serde_json::from_value::<Checkpoint>(json!({
                "batch": 1, "root": s, "queue_hash": p_minus_1.clone(),
                "queue_consumed": 0, "proven_at_ms": 0
            }))
        };
        assert!(full(&p_minus_1).is_ok());
        assert!(full(&modulus).is_err());
        assert!(
            full("0x05").is_err(),
            "a root is written with all 64 digits"
        );
    }

    proptest! {
        #[test]
        fn checkpoints_round_trip(limbs in any::<[u64; 4]>(), batch in any::<u64>(), n in any::<u64>()) {
            // from_raw reduces, so any limbs give a canonical element
            let root = Fr::from_raw(limbs);
            let c = Checkpoint {
                batch: BatchNumber(batch),
                root,
                queue_hash: root.square(),
                queue_consumed: n,
                proven_at_ms: n ^ batch,
            };
            prop_assert_eq!(round_trip(&c), c);
        }
    }
}
