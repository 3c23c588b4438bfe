//! The verifier stage: signatures checked in groups. A forged signature that lands in a group
//! with valid ones fails the group; each submitter then checks its own, so the forgery alone is
//! refused and the others are accepted.

use keel_sequencer::{ClientError, Sequencer};
use keel_state::{test_utils::key, AccountIndex, SignedOp, Transfer};

use crate::common::{config, fund, serve, settle, transfer};

const ACCOUNTS: u32 = 16;

/// Accounts `i ≡ 3 (mod 4)` only ever send forgeries (signed with another account's key), so
/// their nonce stays 0 and the signature is the only thing wrong.
fn forger(i: u32) -> bool {
    i % 4 == 3
}

fn failed_groups(metrics: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("keel_sequencer_verify_failed_groups_total "))
        .expect("the verifier's counter is exported")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forgery_in_a_group_is_refused_alone_and_the_others_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let seq = Sequencer::open(config(dir.path())).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, ACCOUNTS))
        .await
        .unwrap();
    let client = serve(seq.clone()).await;

    let mut rounds = 0u64;
    let mut failed = 0.0;
    // concurrent submissions meet in the verifier's queue; keep going until a group with a
    // forgery in it has failed (the fallback path has run), and check every round
    while rounds < 5 || (failed == 0.0 && rounds < 200) {
        let nonce = rounds;
        let tasks: Vec<_> = (0..ACCOUNTS)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let op = if forger(i) {
                        SignedOp::Transfer(Transfer::sign(
                            &key(i + 1),
                            AccountIndex(i),
                            AccountIndex(0),
                            1,
                            0,
                        ))
                    } else {
                        transfer(i, (i + 1) % ACCOUNTS, 1, nonce)
                    };
                    (i, client.submit(&op).await)
                })
            })
            .collect();
        for t in tasks {
            let (i, got) = t.await.unwrap();
            if forger(i) {
                match got {
                    Err(ClientError::Refused { status, reason, .. }) => {
                        assert_eq!(
                            (status, reason.as_str()),
                            (422, "bad_signature"),
                            "account {i}"
                        )
                    }
                    other => panic!("round {rounds}: forgery from {i} got {other:?}"),
                }
            } else {
                got.unwrap_or_else(|e| panic!("round {rounds}: valid transfer from {i}: {e}"));
            }
        }
        rounds += 1;
        failed = failed_groups(&seq.metrics_text());
    }
    assert!(
        failed > 0.0,
        "no group with a forgery in it formed in {rounds} rounds"
    );
    eprintln!("{rounds} rounds, {failed} failed groups");

    settle(&client).await;
    for i in 0..ACCOUNTS {
        let a = seq.account(AccountIndex(i)).unwrap().unwrap();
        let expected = if forger(i) { 0 } else { rounds };
        assert_eq!(a.nonce, expected, "account {i}");
    }
    seq.shutdown();
}
