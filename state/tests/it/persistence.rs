//! The RocksDB state reopens at the same root, batch and queue hash; atomic batches.

use keel_state::{
    test_utils::{deposit, fund, key},
    AccountIndex, BatchOp, Epoch, OpenError, RocksStore, RocksStoreOptions, SignedOp, State,
    Transfer,
};

fn open(dir: &std::path::Path, depth: u8) -> Result<State<RocksStore>, OpenError> {
    State::open(RocksStore::open(dir, RocksStoreOptions::default())?, depth)
}

#[test]
fn reopens_at_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    let (root, queue, account) = {
        let mut s = open(dir.path(), 10).unwrap();
        fund(&mut s, 4, 500);
        let t = Transfer::sign(&key(0), AccountIndex(0), AccountIndex(3), 20, 0);
        s.execute_batch(
            Epoch(1),
            vec![BatchOp::L2(SignedOp::Transfer(t)), deposit(9, 1)],
        )
        .unwrap();
        (
            s.root().unwrap(),
            s.queue_hash(),
            s.account(AccountIndex(3)).unwrap(),
        )
    };
    let s = open(dir.path(), 10).unwrap();
    assert_eq!(s.root().unwrap(), root);
    assert_eq!(s.queue_hash(), queue);
    assert_eq!(s.last_batch().0, 1);
    assert_eq!(s.account(AccountIndex(3)).unwrap(), account);
    assert_eq!(account.unwrap().balance, 520);
    // the same operations in memory give the same root: the stores are interchangeable
    let mut m = keel_state::test_utils::funded_state(10, 4, 500);
    let t = Transfer::sign(&key(0), AccountIndex(0), AccountIndex(3), 20, 0);
    m.execute_batch(
        Epoch(1),
        vec![BatchOp::L2(SignedOp::Transfer(t)), deposit(9, 1)],
    )
    .unwrap();
    assert_eq!(m.root().unwrap(), root);
}

#[test]
fn refuses_another_depth() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), 8).unwrap());
    assert_eq!(
        open(dir.path(), 9).unwrap_err(),
        OpenError::DepthMismatch {
            stored: 8,
            requested: 9
        }
    );
    assert!(matches!(open(dir.path(), 0), Err(OpenError::BadDepth(0))));
    assert!(matches!(open(dir.path(), 33), Err(OpenError::BadDepth(33))));
}

#[test]
fn refused_batch_leaves_the_store_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let mut s = open(dir.path(), 8).unwrap();
        fund(&mut s, 2, 10);
        let bad = Transfer::sign(&key(0), AccountIndex(0), AccountIndex(1), 11, 0);
        assert!(s
            .execute_batch(
                Epoch(1),
                vec![deposit(5, 3), BatchOp::L2(SignedOp::Transfer(bad))]
            )
            .is_err());
        s.root().unwrap()
    };
    let s = open(dir.path(), 8).unwrap();
    assert_eq!(s.root().unwrap(), root);
    assert_eq!(s.last_batch().0, 0);
    assert_eq!(s.account(AccountIndex(5)).unwrap(), None);
}
